//! Record-level validation and conversion of a leader append (Kafka's `LogValidator`): the checks
//! that need the records of a batch, not only its header, and broker-side compression.
//!
//! - Keyless records on a compacted topic are refused (INVALID_RECORD), and so are CreateTime
//!   timestamps outside `message.timestamp.before.max.ms` / `message.timestamp.after.max.ms` and
//!   producer-set LogAppendTime (INVALID_TIMESTAMP), each named by its index in the batch (KIP-467
//!   record errors, with Kafka's messages).
//! - A topic's `compression.type` other than `producer` re-encodes a batch whose codec differs
//!   (Kafka's `buildRecordsAndAssignOffsets`): offsets deltas 0..n-1, the records' own timestamps,
//!   keys, values and headers, record attributes 0, baseTimestamp = the first record's timestamp,
//!   maxTimestamp = the records' maximum, producer id, epoch, base sequence and the transactional
//!   bit kept, CRC recomputed. A batch already in the target codec is re-encoded too when its
//!   records' offset deltas are not 0..n-1, as Kafka does.
//! - When the records were read and the batch is kept, a CreateTime batch gets the records' maximum
//!   timestamp as maxTimestamp (Kafka's `setMaxTimestamp`).
//!
//! Records are read only when a check or a conversion needs them. With `compression.type=producer`
//! a batch is read only on a compacted topic, with timestamp bounds set, or when the producer set
//! the LogAppendTime bit; otherwise it passes through untouched (no decode, no copy). Unlike
//! Kafka, a compressed batch kept in the producer's codec is therefore not read just to check its
//! inner offsets.
//!
//! Base offset and partition leader epoch are left to the caller (outside the CRC); so is the
//! LogAppendTime patch of LogAppendTime topics.

use std::borrow::Cow;

use super::batch::{self, BatchHeader, PayloadBatch};
use super::codec::{self, Codec, CompressionLevels, CompressionType};
use super::config::{LogConfig, TimestampType};
use super::error::{AppendError, RecordError, RejectionKind};
use super::records::{self, RecordView};
use super::TopicPartition;

const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;

/// The batches to store after validation: the payload itself when nothing changed, else a copy in
/// which converted batches replace the originals.
#[derive(Debug)]
pub(super) struct Validated<'a> {
    pub bytes: Cow<'a, [u8]>,
    pub batches: Vec<PayloadBatch>,
}

/// What a topic's configuration asks of each produced batch.
struct Rules<'c> {
    tp: &'c TopicPartition,
    now_ms: i64,
    compacted: bool,
    log_append_time: bool,
    /// `(before, after)` when CreateTime timestamps can be out of bounds.
    bounds: Option<(i64, i64)>,
    compression: CompressionType,
    levels: CompressionLevels,
    max_message_bytes: usize,
}

impl<'c> Rules<'c> {
    fn new(cfg: &LogConfig, tp: &'c TopicPartition, now_ms: i64) -> Rules<'c> {
        let create_time = cfg.timestamp_type == TimestampType::CreateTime;
        let (before, after) = (cfg.timestamp_before_max_ms, cfg.timestamp_after_max_ms);
        Rules {
            tp,
            now_ms,
            compacted: cfg.cleanup_policy.compact(),
            log_append_time: !create_time,
            // With both bounds at i64::MAX no timestamp can be out of range.
            bounds: (create_time && (before != i64::MAX || after != i64::MAX))
                .then_some((before, after)),
            compression: cfg.compression,
            levels: cfg.compression_levels,
            max_message_bytes: cfg.max_message_bytes,
        }
    }

    /// Whether the records of a batch must be read: a per-record check applies, a conversion may
    /// be needed, or the producer set the LogAppendTime bit (Kafka refuses it on LogAppendTime
    /// topics and clears it on CreateTime topics).
    fn must_read(&self, h: &BatchHeader) -> bool {
        let source = h.compression();
        let converts = match self.compression {
            CompressionType::Producer => false,
            // Same codec: read to check the inner offsets (only compressed batches have them checked).
            CompressionType::Codec(target) => target.id() != source || source != 0,
        };
        self.compacted || self.bounds.is_some() || converts || h.is_log_append_time()
    }
}

/// Validates the batches of a leader append against the topic's configuration and converts them
/// when its `compression.type` asks for it (see the module docs). `batches` are the payload's
/// batches as `batch::validate_payload` returned them. Errors: `RejectedRecords` naming the
/// records of the first batch that has any, `CorruptMessage` when records must be read and
/// cannot be, `MessageTooLarge` when a converted batch exceeds `max.message.bytes`.
pub(super) fn validate<'a>(
    records: &'a [u8],
    batches: Vec<PayloadBatch>,
    cfg: &LogConfig,
    tp: &TopicPartition,
    now_ms: i64,
) -> Result<Validated<'a>, AppendError> {
    let rules = Rules::new(cfg, tp, now_ms);
    let mut replaced: Vec<Option<Vec<u8>>> = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        if !rules.must_read(&b.header) {
            continue;
        }
        let bytes = &records[b.position..b.position + b.size];
        if let Some(new) = check_and_convert(bytes, &rules)? {
            replaced.resize(i + 1, None);
            replaced[i] = Some(new);
        }
    }
    if replaced.is_empty() {
        return Ok(Validated {
            bytes: Cow::Borrowed(records),
            batches,
        });
    }
    Ok(reassemble(records, &batches, replaced))
}

/// The payload with converted batches in place of their originals.
fn reassemble(
    records: &[u8],
    batches: &[PayloadBatch],
    mut replaced: Vec<Option<Vec<u8>>>,
) -> Validated<'static> {
    replaced.resize(batches.len(), None);
    let mut bytes = Vec::with_capacity(records.len());
    let mut out = Vec::with_capacity(batches.len());
    for (b, new) in batches.iter().zip(replaced) {
        let position = bytes.len();
        let (size, header) = match new {
            Some(n) => {
                let header = BatchHeader::parse(&n).unwrap_or(b.header);
                bytes.extend_from_slice(&n);
                (n.len(), header)
            }
            None => {
                bytes.extend_from_slice(&records[b.position..b.position + b.size]);
                (b.size, b.header)
            }
        };
        out.push(PayloadBatch {
            position,
            size,
            header,
        });
    }
    Validated {
        bytes: Cow::Owned(bytes),
        batches: out,
    }
}

/// Reads the records of one batch, checks them and returns the batch to store instead of it, if
/// any.
fn check_and_convert(bytes: &[u8], rules: &Rules<'_>) -> Result<Option<Vec<u8>>, AppendError> {
    let (h, body) = records::batch_body(bytes).map_err(AppendError::CorruptMessage)?;
    let views =
        records::parse_records(&body, h.records_count).map_err(AppendError::CorruptMessage)?;
    reject_invalid_records(&h, &views, rules)?;
    let source = Codec::from_id(h.compression()).ok_or_else(|| {
        AppendError::CorruptMessage(format!("unknown compression codec {}", h.compression()))
    })?;
    let target = rules.compression.target(source);
    let inner_offsets_ok = views
        .iter()
        .enumerate()
        .all(|(i, r)| r.offset_delta == i as i64);
    let in_place =
        (source == Codec::None && target == Codec::None) || (source == target && inner_offsets_ok);
    if in_place {
        return Ok(fix_max_timestamp(bytes, &h, &views, rules));
    }
    let converted = reencode(&h, &views, target, &rules.levels)?;
    if converted.len() > rules.max_message_bytes {
        return Err(AppendError::MessageTooLarge {
            size: converted.len(),
            max: rules.max_message_bytes,
        });
    }
    tracing::trace!(partition = %rules.tp, from = ?source, to = ?target,
        size = converted.len(), "re-encoded a produced batch");
    Ok(Some(converted))
}

/// The timestamp of a record as Kafka reads it: the batch's maxTimestamp in a LogAppendTime
/// batch, else baseTimestamp + delta.
fn record_timestamp(h: &BatchHeader, r: &RecordView<'_>) -> i64 {
    if h.is_log_append_time() {
        h.max_timestamp
    } else {
        h.base_timestamp.wrapping_add(r.timestamp_delta)
    }
}

/// Kafka's `validateRecord` over every record of a batch: `RejectedRecords` with one entry per
/// rejected record, in record order.
fn reject_invalid_records(
    h: &BatchHeader,
    views: &[RecordView<'_>],
    rules: &Rules<'_>,
) -> Result<(), AppendError> {
    let errors: Vec<(RejectionKind, RecordError)> = views
        .iter()
        .enumerate()
        .filter_map(|(i, r)| record_error(h, r, i as i32, rules))
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    let kind = if errors
        .iter()
        .any(|(k, _)| *k == RejectionKind::InvalidTimestamp)
    {
        RejectionKind::InvalidTimestamp
    } else {
        RejectionKind::InvalidRecord
    };
    Err(AppendError::RejectedRecords {
        kind,
        errors: errors.into_iter().map(|(_, e)| e).collect(),
    })
}

/// Why one record is refused, if it is: a missing key first, then its timestamp.
fn record_error(
    h: &BatchHeader,
    r: &RecordView<'_>,
    batch_index: i32,
    rules: &Rules<'_>,
) -> Option<(RejectionKind, RecordError)> {
    let error = |kind, message| {
        Some((
            kind,
            RecordError {
                batch_index,
                message,
            },
        ))
    };
    if rules.compacted && r.key.is_none() {
        return error(
            RejectionKind::InvalidRecord,
            format!(
                "Compacted topic cannot accept message without key in topic partition {}",
                rules.tp
            ),
        );
    }
    let ts = record_timestamp(h, r);
    let offset = h.base_offset.wrapping_add(r.offset_delta);
    if !rules.log_append_time && ts != NO_TIMESTAMP {
        let (before, after) = rules.bounds?;
        let diff = rules.now_ms.wrapping_sub(ts);
        if diff > before || diff.wrapping_neg() > after {
            return error(
                RejectionKind::InvalidTimestamp,
                format!(
                    "Timestamp {ts} of message with offset {offset} is out of range. The \
                     timestamp should be within [{}, {}]",
                    rules.now_ms.wrapping_sub(before),
                    rules.now_ms.wrapping_add(after)
                ),
            );
        }
        return None;
    }
    if h.is_log_append_time() {
        let record = format!(
            "DefaultRecord(offset={offset}, timestamp={ts}, key={} bytes, value={} bytes)",
            r.key.map_or(0, <[u8]>::len),
            r.value.map_or(0, <[u8]>::len)
        );
        return error(
            RejectionKind::InvalidTimestamp,
            format!(
                "Invalid timestamp type in message {record}. Producer should not set timestamp \
                 type to LogAppendTime."
            ),
        );
    }
    None
}

/// The largest record timestamp, NO_TIMESTAMP when there is none (Kafka's builder).
fn max_record_timestamp(h: &BatchHeader, views: &[RecordView<'_>]) -> i64 {
    views
        .iter()
        .map(|r| record_timestamp(h, r))
        .fold(NO_TIMESTAMP, i64::max)
}

/// Kafka's `setMaxTimestamp(CreateTime, recordsMax)` on a batch kept as it is: on a CreateTime
/// topic the stored maxTimestamp is the records' maximum and the timestamp-type bit is clear. `None`
/// when the batch already says so (or the topic uses LogAppendTime, patched later).
fn fix_max_timestamp(
    bytes: &[u8],
    h: &BatchHeader,
    views: &[RecordView<'_>],
    rules: &Rules<'_>,
) -> Option<Vec<u8>> {
    if rules.log_append_time {
        return None;
    }
    let max = max_record_timestamp(h, views);
    if max == h.max_timestamp && !h.is_log_append_time() {
        return None;
    }
    let mut b = bytes.to_vec();
    let attributes = h.attributes & !ATTR_TIMESTAMP_TYPE;
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    b[35..43].copy_from_slice(&max.to_be_bytes());
    let crc = batch::compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Some(b)
}

/// Kafka's `buildRecordsAndAssignOffsets` for one batch: its records written anew with `target`.
fn reencode(
    h: &BatchHeader,
    views: &[RecordView<'_>],
    target: Codec,
    levels: &CompressionLevels,
) -> Result<Vec<u8>, AppendError> {
    let base_timestamp = views
        .first()
        .map_or(NO_TIMESTAMP, |r| record_timestamp(h, r));
    let mut body = Vec::with_capacity(views.len() * 16);
    let mut scratch = Vec::new();
    for (i, r) in views.iter().enumerate() {
        let record = RecordView {
            attributes: 0,
            timestamp_delta: record_timestamp(h, r).wrapping_sub(base_timestamp),
            offset_delta: i as i64,
            ..*r
        };
        records::put_record(&mut body, &mut scratch, &record);
    }
    let payload = codec::compress_with(target, &body, levels).map_err(AppendError::Conversion)?;
    let header = BatchHeader {
        attributes: i16::from(target.id()) | (h.attributes & ATTR_TRANSACTIONAL),
        last_offset_delta: views.len() as i32 - 1,
        base_timestamp,
        max_timestamp: max_record_timestamp(h, views),
        records_count: views.len() as i32,
        ..*h
    };
    Ok(records::write_batch(&header, &payload))
}

#[cfg(test)]
mod tests;
