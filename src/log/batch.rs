//! Record batch (magic v2) header parsing, validation and in-place patching.
//!
//! Batches are stored verbatim; only `baseOffset`, `partitionLeaderEpoch` (outside the CRC) and, for
//! LogAppendTime, the attributes and `maxTimestamp` (inside the CRC, which is then recomputed) are changed.

use super::error::AppendError;

/// Size of the fixed v2 batch header.
pub const HEADER_SIZE: usize = 61;
/// baseOffset + batchLength: the bytes not counted by `batchLength`.
pub const LOG_OVERHEAD: usize = 12;
/// Start of the bytes covered by the CRC.
pub const CRC_START: usize = 21;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// The parsed 61-byte header of a v2 record batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

impl BatchHeader {
    /// Parses the header from the first 61 bytes of `buf`; `None` if `buf` is shorter.
    /// No field is validated here.
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        if buf.len() < HEADER_SIZE {
            return None;
        }
        Some(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, 12),
            magic: buf[16] as i8,
            crc: be_i32(buf, 17) as u32,
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        })
    }

    /// Total size on disk (batchLength + 12); `None` when batchLength is negative.
    pub fn size(&self) -> Option<usize> {
        usize::try_from(self.batch_length)
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Offset right after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Compression codec id (0 = none).
    pub fn compression(&self) -> u8 {
        (self.attributes & ATTR_COMPRESSION_MASK) as u8
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_TIMESTAMP_TYPE != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Sequence number of the last record, wrapping at i32::MAX to 0 as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// `seq + inc` wrapping past i32::MAX to 0.
/// The whole v2 batches at the start of `data`, each with its parsed header, in order; stops
/// at a partial batch or at a length that cannot be a batch (what a bounded log read returns).
pub fn whole_batches(data: bytes::Bytes) -> WholeBatches {
    WholeBatches { rest: data }
}

/// See [`whole_batches`].
pub struct WholeBatches {
    rest: bytes::Bytes,
}

impl Iterator for WholeBatches {
    type Item = (BatchHeader, bytes::Bytes);

    fn next(&mut self) -> Option<Self::Item> {
        let header = BatchHeader::parse(&self.rest)?;
        let size = header.size().filter(|s| *s <= self.rest.len())?;
        Some((header, self.rest.split_to(size)))
    }
}

pub fn increment_sequence(seq: i32, inc: i32) -> i32 {
    if seq > i32::MAX - inc {
        inc - (i32::MAX - seq) - 1
    } else {
        seq + inc
    }
}

/// CRC-32C of a whole batch, over bytes 21..end.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_START..])
}

/// Structural checks that need only the header and the available length: used both for client payloads
/// and for recovery. Returns the batch size.
pub fn check_structure(h: &BatchHeader, available: usize) -> Result<usize, String> {
    let size = h
        .size()
        .ok_or_else(|| format!("negative batch length {}", h.batch_length))?;
    if size < HEADER_SIZE {
        return Err(format!("batch size {size} smaller than the v2 header"));
    }
    if size > available {
        return Err(format!(
            "batch size {size} exceeds the {available} bytes available"
        ));
    }
    if h.magic != 2 {
        return Err(format!("unsupported magic {}", h.magic));
    }
    if h.last_offset_delta < 0 {
        return Err(format!("negative lastOffsetDelta {}", h.last_offset_delta));
    }
    Ok(size)
}

/// A validated batch of a produce payload: position inside the payload and header.
#[derive(Clone, Copy, Debug)]
pub struct PayloadBatch {
    pub position: usize,
    pub size: usize,
    pub header: BatchHeader,
}

/// Validates every batch of a produce payload (see `PartitionLog::append` for the rules).
pub fn validate_payload(
    records: &[u8],
    max_message_bytes: usize,
) -> Result<Vec<PayloadBatch>, AppendError> {
    if records.is_empty() {
        return Err(AppendError::CorruptMessage("empty produce payload".into()));
    }
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < records.len() {
        let rest = &records[pos..];
        let h = BatchHeader::parse(rest).ok_or_else(|| {
            AppendError::CorruptMessage(format!(
                "{} trailing bytes at {pos} are shorter than a batch header",
                rest.len()
            ))
        })?;
        let size = check_structure(&h, rest.len())
            .map_err(|e| AppendError::CorruptMessage(format!("batch at {pos}: {e}")))?;
        if size > max_message_bytes {
            return Err(AppendError::MessageTooLarge {
                size,
                max: max_message_bytes,
            });
        }
        let batch = &rest[..size];
        let crc = compute_crc(batch);
        if crc != h.crc {
            return Err(AppendError::CorruptMessage(format!(
                "batch at {pos}: CRC mismatch (stored {:#010x}, computed {crc:#010x})",
                h.crc
            )));
        }
        if h.records_count <= 0 {
            return Err(AppendError::InvalidRecord(format!(
                "batch at {pos} has records count {}",
                h.records_count
            )));
        }
        if i64::from(h.last_offset_delta) + 1 != i64::from(h.records_count) {
            return Err(AppendError::InvalidRecord(format!(
                "batch at {pos}: lastOffsetDelta {} does not match records count {}",
                h.last_offset_delta, h.records_count
            )));
        }
        if h.is_control() {
            return Err(AppendError::InvalidRecord(
                "control batches may not be produced by clients".into(),
            ));
        }
        if h.has_producer_id() && h.base_sequence < 0 {
            return Err(AppendError::InvalidRecord(format!(
                "producer id {} set but base sequence is {}",
                h.producer_id, h.base_sequence
            )));
        }
        out.push(PayloadBatch {
            position: pos,
            size,
            header: h,
        });
        pos += size;
    }
    Ok(out)
}

/// Validates the batches of a replicated payload (a leader's Fetch response, stored verbatim): no
/// offset assignment and no producer checks. Per whole batch: size >= 61, magic 2, CRC-32C,
/// baseOffset >= 0, 0 <= recordsCount <= lastOffsetDelta+1 (a batch
/// cleaned on the leader may hold fewer records than its offset range, or none), offsets strictly
/// increasing across batches. Control batches are allowed. A partial trailing batch (fewer bytes
/// left than its batchLength announces, or than the 12-byte log overhead) ends the payload and is
/// not returned; a malformed length is corruption. The batch size is not checked against
/// `max.message.bytes`: the leader accepted the batch (Kafka's `ignoreRecordSize` for followers).
pub fn validate_replicated(records: &[u8]) -> Result<Vec<PayloadBatch>, AppendError> {
    let mut out: Vec<PayloadBatch> = Vec::new();
    let mut pos = 0usize;
    while records.len() - pos >= LOG_OVERHEAD {
        let rest = &records[pos..];
        let len = be_i32(rest, 8);
        if len < (HEADER_SIZE - LOG_OVERHEAD) as i32 {
            return Err(AppendError::CorruptMessage(format!(
                "batch at {pos}: batch length {len} is smaller than the v2 header"
            )));
        }
        let size = len as usize + LOG_OVERHEAD;
        if size > rest.len() {
            break; // partial trailing batch
        }
        let h = BatchHeader::parse(rest)
            .ok_or_else(|| AppendError::CorruptMessage(format!("batch at {pos}: short header")))?;
        check_structure(&h, rest.len())
            .map_err(|e| AppendError::CorruptMessage(format!("batch at {pos}: {e}")))?;
        let crc = compute_crc(&rest[..size]);
        if crc != h.crc {
            return Err(AppendError::CorruptMessage(format!(
                "batch at {pos}: CRC mismatch (stored {:#010x}, computed {crc:#010x})",
                h.crc
            )));
        }
        if h.base_offset < 0 {
            return Err(AppendError::CorruptMessage(format!(
                "batch at {pos}: negative base offset {}",
                h.base_offset
            )));
        }
        if h.records_count < 0 || i64::from(h.records_count) > i64::from(h.last_offset_delta) + 1 {
            return Err(AppendError::InvalidRecord(format!(
                "batch at {pos}: records count {} does not fit lastOffsetDelta {}",
                h.records_count, h.last_offset_delta
            )));
        }
        if let Some(prev) = out.last() {
            if h.base_offset <= prev.header.last_offset() {
                return Err(AppendError::InvalidRecord(format!(
                    "batch at {pos}: offsets out of order (base {} after last {})",
                    h.base_offset,
                    prev.header.last_offset()
                )));
            }
        }
        out.push(PayloadBatch {
            position: pos,
            size,
            header: h,
        });
        pos += size;
    }
    Ok(out)
}

/// Writes baseOffset and partitionLeaderEpoch (outside the CRC).
pub fn patch_offset_and_epoch(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Sets the LogAppendTime attribute, writes `max_timestamp` and recomputes the CRC.
pub fn patch_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attrs = be_i16(batch, 21) | ATTR_TIMESTAMP_TYPE;
    batch[21..23].copy_from_slice(&attrs.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Control record type of a COMMIT marker (Kafka's `ControlRecordType.COMMIT`).
pub const CONTROL_TYPE_COMMIT: i16 = 1;
/// Control record type of an ABORT marker (Kafka's `ControlRecordType.ABORT`).
pub const CONTROL_TYPE_ABORT: i16 = 0;
/// Size of a marker batch as [`end_txn_marker_batch`] builds it.
pub const MARKER_BATCH_SIZE: usize = HEADER_SIZE + 17;

/// A transaction marker (Kafka's `EndTransactionMarker`) read from a control batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// Builds a COMMIT or ABORT marker batch as Kafka writes it: magic 2, attributes control +
/// transactional (CreateTime, uncompressed), the producer's id and epoch, base sequence -1,
/// base and max timestamp `timestamp`, one record at offset delta 0 whose key is
/// `[i16 version 0][i16 type]` and value `[i16 version 0][i32 coordinator epoch]`, CRC-32C.
pub fn end_txn_marker_batch(
    base_offset: i64,
    leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Vec<u8> {
    let kind = if commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    let mut b = Vec::with_capacity(MARKER_BATCH_SIZE);
    b.extend_from_slice(&base_offset.to_be_bytes());
    b.extend_from_slice(&((MARKER_BATCH_SIZE - LOG_OVERHEAD) as i32).to_be_bytes());
    b.extend_from_slice(&leader_epoch.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes()); // CRC, below
    b.extend_from_slice(&(ATTR_TRANSACTIONAL | ATTR_CONTROL).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // lastOffsetDelta
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&producer_id.to_be_bytes());
    b.extend_from_slice(&producer_epoch.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&1i32.to_be_bytes()); // records count
                                              // One record: length 16 (zigzag 0x20), attributes, timestamp delta 0, offset delta 0,
                                              // key length 4 (0x08), key, value length 6 (0x0c), value, no headers.
    b.extend_from_slice(&[0x20, 0, 0, 0, 0x08]);
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&kind.to_be_bytes());
    b.push(0x0c);
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&coordinator_epoch.to_be_bytes());
    b.push(0);
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// The transaction marker of a control batch: `None` unless the batch is an uncompressed control
/// batch whose first record's key has type COMMIT or ABORT (other control records, such as
/// Kafka's LEADER_CHANGE, are no markers). The value's coordinator epoch is read when present.
pub fn parse_end_txn_marker(batch: &[u8]) -> Option<EndTxnMarker> {
    let h = BatchHeader::parse(batch)?;
    if !h.is_control() || h.compression() != 0 || h.records_count < 1 {
        return None;
    }
    let mut pos = HEADER_SIZE;
    let len = usize::try_from(read_varlong(batch, &mut pos)?).ok()?;
    let end = pos.checked_add(len)?;
    let rec = batch.get(..end)?;
    pos += 1; // attributes
    read_varlong(rec, &mut pos)?; // timestamp delta
    read_varlong(rec, &mut pos)?; // offset delta
    let key_len = usize::try_from(read_varlong(rec, &mut pos)?).ok()?;
    let key = rec.get(pos..pos.checked_add(key_len)?)?;
    pos += key_len;
    if key.len() < 4 {
        return None;
    }
    let commit = match be_i16(key, 2) {
        CONTROL_TYPE_COMMIT => true,
        CONTROL_TYPE_ABORT => false,
        _ => return None,
    };
    let value_len = read_varlong(rec, &mut pos)?;
    let coordinator_epoch = match usize::try_from(value_len) {
        Ok(n) if n >= 6 => be_i32(rec.get(pos..pos + n)?, 2),
        _ => -1,
    };
    Some(EndTxnMarker {
        commit,
        coordinator_epoch,
    })
}

/// Reads a zigzag varint (up to 64 bits) at `*pos`.
fn read_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut raw: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        raw |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// (offset, timestamp) of every record of an uncompressed batch, in order. `None` if the batch is
/// compressed or its record framing is malformed. For LogAppendTime batches every record carries the
/// batch's maxTimestamp.
pub fn record_timestamps(batch: &[u8]) -> Option<Vec<(i64, i64)>> {
    let h = BatchHeader::parse(batch)?;
    if h.compression() != 0 {
        return None;
    }
    let count = usize::try_from(h.records_count).ok()?;
    // Each record takes at least a few bytes: bound the allocation by the data present.
    let mut out = Vec::with_capacity(count.min(batch.len() / 4 + 1));
    let mut pos = HEADER_SIZE;
    for _ in 0..count {
        let len = usize::try_from(read_varlong(batch, &mut pos)?).ok()?;
        let end = pos.checked_add(len)?;
        if end > batch.len() {
            return None;
        }
        let mut p = pos + 1; // attributes
        let ts_delta = read_varlong(&batch[..end], &mut p)?;
        let off_delta = read_varlong(&batch[..end], &mut p)?;
        let ts = if h.is_log_append_time() {
            h.max_timestamp
        } else {
            h.base_timestamp.wrapping_add(ts_delta)
        };
        out.push((h.base_offset.wrapping_add(off_delta), ts));
        pos = end;
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Builds valid uncompressed v2 batches for tests.

    fn put_varlong(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            if z < 0x80 {
                out.push(z as u8);
                return;
            }
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }

    /// Options of a test batch.
    #[derive(Clone, Debug)]
    pub struct TestBatch {
        pub producer_id: i64,
        pub producer_epoch: i16,
        pub base_sequence: i32,
        pub base_timestamp: i64,
        /// timestamps relative to base, one per record
        pub ts_deltas: Vec<i64>,
        pub value_size: usize,
        pub attributes: i16,
    }

    impl TestBatch {
        pub fn new(records: usize, base_timestamp: i64) -> Self {
            TestBatch {
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                base_timestamp,
                ts_deltas: (0..records as i64).collect(),
                value_size: 10,
                attributes: 0,
            }
        }
        pub fn idempotent(mut self, pid: i64, epoch: i16, seq: i32) -> Self {
            self.producer_id = pid;
            self.producer_epoch = epoch;
            self.base_sequence = seq;
            self
        }
        /// A transactional batch of producer `pid`.
        pub fn transactional(mut self, pid: i64, epoch: i16, seq: i32) -> Self {
            self = self.idempotent(pid, epoch, seq);
            self.attributes |= 0x10;
            self
        }
        pub fn value_size(mut self, n: usize) -> Self {
            self.value_size = n;
            self
        }
        pub fn build(&self) -> Vec<u8> {
            let mut recs = Vec::new();
            for (i, d) in self.ts_deltas.iter().enumerate() {
                let mut body = vec![0u8]; // attributes
                put_varlong(&mut body, *d);
                put_varlong(&mut body, i as i64);
                put_varlong(&mut body, -1); // null key
                put_varlong(&mut body, self.value_size as i64);
                body.extend(std::iter::repeat_n(b'v', self.value_size));
                put_varlong(&mut body, 0); // headers
                put_varlong(&mut recs, body.len() as i64);
                recs.extend_from_slice(&body);
            }
            let n = self.ts_deltas.len() as i32;
            let max_ts = self.base_timestamp + self.ts_deltas.iter().copied().max().unwrap_or(0);
            let mut b = Vec::with_capacity(61 + recs.len());
            b.extend_from_slice(&0i64.to_be_bytes());
            b.extend_from_slice(&((49 + recs.len()) as i32).to_be_bytes());
            b.extend_from_slice(&(-1i32).to_be_bytes());
            b.push(2);
            b.extend_from_slice(&0u32.to_be_bytes());
            b.extend_from_slice(&self.attributes.to_be_bytes());
            b.extend_from_slice(&(n - 1).to_be_bytes());
            b.extend_from_slice(&self.base_timestamp.to_be_bytes());
            b.extend_from_slice(&max_ts.to_be_bytes());
            b.extend_from_slice(&self.producer_id.to_be_bytes());
            b.extend_from_slice(&self.producer_epoch.to_be_bytes());
            b.extend_from_slice(&self.base_sequence.to_be_bytes());
            b.extend_from_slice(&n.to_be_bytes());
            b.extend_from_slice(&recs);
            let crc = super::compute_crc(&b);
            b[17..21].copy_from_slice(&crc.to_be_bytes());
            b
        }
    }

    /// A plain batch of `records` records with timestamps base_ts, base_ts+1, ...
    pub fn batch(records: usize, base_ts: i64) -> Vec<u8> {
        TestBatch::new(records, base_ts).build()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn header_round_trip_and_crc() {
        let b = batch(3, 1000);
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.magic, 2);
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.size(), Some(b.len()));
        assert_eq!(h.max_timestamp, 1002);
        assert_eq!(compute_crc(&b), h.crc);
        let v = validate_payload(&b, 1 << 20).unwrap();
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn record_walk() {
        let b = batch(4, 500);
        let ts = record_timestamps(&b).unwrap();
        assert_eq!(ts, vec![(0, 500), (1, 501), (2, 502), (3, 503)]);
    }

    #[test]
    fn marker_batch_bytes() {
        let b = end_txn_marker_batch(42, 3, 1000, 5, true, 7, 1_700_000_000_000);
        assert_eq!(b.len(), MARKER_BATCH_SIZE);
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.size(), Some(78));
        assert_eq!(h.partition_leader_epoch, 3);
        assert_eq!(h.attributes, 0x30);
        assert!(h.is_control() && h.is_transactional());
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (1000, 5, -1)
        );
        assert_eq!((h.last_offset_delta, h.records_count), (0, 1));
        assert_eq!(h.base_timestamp, 1_700_000_000_000);
        assert_eq!(h.max_timestamp, 1_700_000_000_000);
        assert_eq!(compute_crc(&b), h.crc);
        // The record, byte for byte (Kafka's DefaultRecord layout of an EndTransactionMarker).
        let rec: [u8; 17] = [0x20, 0, 0, 0, 0x08, 0, 0, 0, 1, 0x0c, 0, 0, 0, 0, 0, 7, 0];
        assert_eq!(&b[HEADER_SIZE..], &rec);
        assert_eq!(
            parse_end_txn_marker(&b),
            Some(EndTxnMarker {
                commit: true,
                coordinator_epoch: 7
            })
        );
        let a = end_txn_marker_batch(0, 0, 1, 0, false, 2, 0);
        assert_eq!(&a[HEADER_SIZE + 5..HEADER_SIZE + 9], &[0, 0, 0, 0]);
        assert_eq!(parse_end_txn_marker(&a).map(|m| m.commit), Some(false));
        // A replicated payload of markers passes the follower checks; a client may not send one.
        assert_eq!(validate_replicated(&a).unwrap().len(), 1);
        assert!(validate_payload(&a, 1 << 20).is_err());
        assert_eq!(parse_end_txn_marker(&batch(1, 0)), None);
    }

    #[test]
    fn sequence_wraps() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 3), 8);
    }

    #[test]
    fn rejects_bad_payloads() {
        let mut b = batch(2, 0);
        b[16] = 1;
        assert!(matches!(
            validate_payload(&b, 1 << 20),
            Err(AppendError::CorruptMessage(_))
        ));
        let b = batch(2, 0);
        assert!(matches!(
            validate_payload(&b[..40], 1 << 20),
            Err(AppendError::CorruptMessage(_))
        ));
        assert!(matches!(
            validate_payload(&b[..b.len() - 1], 1 << 20),
            Err(AppendError::CorruptMessage(_))
        ));
        let mut t = TestBatch::new(1, 0);
        t.attributes = 0x20;
        assert!(matches!(
            validate_payload(&t.build(), 1 << 20),
            Err(AppendError::InvalidRecord(_))
        ));
        // records count mismatch (patch count, fix CRC)
        let mut b = batch(2, 0);
        b[57..61].copy_from_slice(&5i32.to_be_bytes());
        let crc = compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_payload(&b, 1 << 20),
            Err(AppendError::InvalidRecord(_))
        ));
    }
}
