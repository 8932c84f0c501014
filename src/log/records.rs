//! Record-level decoding and encoding of v2 record batches (the codecs are in `codec`). Used by
//! the log cleaner (filter and rewrite batches) and by produce validation (`validator`) when a
//! feature needs the records: the hot append/fetch path of other topics never decodes records.

use std::borrow::Cow;

use super::batch::{compute_crc, BatchHeader, HEADER_SIZE, LOG_OVERHEAD};
use super::codec::{self, Codec, CompressionLevels};

/// Attribute bit 6 (Kafka 3.x, KIP-534): `baseTimestamp` holds the delete horizon of the batch.
pub const ATTR_DELETE_HORIZON: i16 = 0x40;
const ATTR_COMPRESSION_MASK: i16 = 0x07;

/// One decoded record. Offsets and timestamps are absolute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub attributes: i8,
    pub timestamp: i64,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// The encoded headers: count varint followed by the headers, copied verbatim.
    pub headers: Vec<u8>,
}

/// Whether the batch carries a delete horizon (attribute bit 6) in its base timestamp.
pub fn has_delete_horizon(h: &BatchHeader) -> bool {
    h.attributes & ATTR_DELETE_HORIZON != 0
}

fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, String> {
    let mut raw: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        raw |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return Err("varint too long".into());
        }
    }
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

pub(crate) fn put_varlong(out: &mut Vec<u8>, v: i64) {
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

fn read_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, String> {
    let len = read_varlong(buf, pos)?;
    if len < 0 {
        return Ok(None);
    }
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| pos.checked_add(l))
        .filter(|&e| e <= buf.len())
        .ok_or("field runs past its record")?;
    let v = &buf[*pos..end];
    *pos = end;
    Ok(Some(v))
}

fn put_bytes(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// One record of a records section, borrowed: deltas as stored, key, value and the encoded
/// headers (count varint and headers) as slices of the section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [u8],
}

/// The header and the records section of a whole v2 batch, decompressed if needed (borrowed when
/// the batch is uncompressed).
pub fn batch_body(batch: &[u8]) -> Result<(BatchHeader, Cow<'_, [u8]>), String> {
    let h = BatchHeader::parse(batch).ok_or("batch shorter than its header")?;
    let size = h.size().ok_or("negative batch length")?;
    if size > batch.len() || size < HEADER_SIZE {
        return Err("batch length does not match the bytes".into());
    }
    if h.magic != 2 {
        return Err(format!("unsupported magic {}", h.magic));
    }
    let data = &batch[HEADER_SIZE..size];
    let body = match h.compression() {
        0 => Cow::Borrowed(data),
        c => Cow::Owned(codec::decompress(c, data)?),
    };
    Ok((h, body))
}

/// Splits a records section into its `count` records. The record framing must match: exactly
/// `count` records, each field inside its record, nothing after the last one.
pub fn parse_records(body: &[u8], count: i32) -> Result<Vec<RecordView<'_>>, String> {
    let count = usize::try_from(count).map_err(|_| "negative records count")?;
    // Each record takes at least 7 bytes: bound the allocation by the data present.
    let mut out = Vec::with_capacity(count.min(body.len() / 7 + 1));
    let mut pos = 0usize;
    for _ in 0..count {
        let len = read_varlong(body, &mut pos)?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| pos.checked_add(l))
            .filter(|&e| e <= body.len())
            .ok_or("record length runs past the batch")?;
        let rec = &body[..end];
        let attributes = *rec.get(pos).ok_or("empty record")? as i8;
        pos += 1;
        let timestamp_delta = read_varlong(rec, &mut pos)?;
        let offset_delta = read_varlong(rec, &mut pos)?;
        let key = read_bytes(rec, &mut pos)?;
        let value = read_bytes(rec, &mut pos)?;
        if pos >= end {
            return Err("record without headers count".into());
        }
        out.push(RecordView {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers: &rec[pos..end],
        });
        pos = end;
    }
    if pos != body.len() {
        return Err(format!(
            "{} bytes after the last of {count} records",
            body.len() - pos
        ));
    }
    Ok(out)
}

/// Decodes every record of a whole v2 batch (decompressing if needed). Checks the record framing
/// against `recordsCount`; the CRC is the caller's business.
pub fn decode_records(batch: &[u8]) -> Result<(BatchHeader, Vec<Record>), String> {
    let (h, body) = batch_body(batch)?;
    let out = parse_records(&body, h.records_count)?
        .into_iter()
        .map(|r| Record {
            attributes: r.attributes,
            timestamp: h.base_timestamp.wrapping_add(r.timestamp_delta),
            offset: h.base_offset.wrapping_add(r.offset_delta),
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.map(<[u8]>::to_vec),
            headers: r.headers.to_vec(),
        })
        .collect();
    Ok((h, out))
}

/// Appends one record, length-prefixed, to a records section.
pub(super) fn put_record(body: &mut Vec<u8>, scratch: &mut Vec<u8>, r: &RecordView<'_>) {
    scratch.clear();
    scratch.push(r.attributes as u8);
    put_varlong(scratch, r.timestamp_delta);
    put_varlong(scratch, r.offset_delta);
    put_bytes(scratch, r.key);
    put_bytes(scratch, r.value);
    scratch.extend_from_slice(r.headers);
    put_varlong(body, scratch.len() as i64);
    body.extend_from_slice(scratch);
}

/// Writes a v2 batch: fields of `template` (base offset, leader epoch, attributes, lastOffsetDelta,
/// producer id/epoch, base sequence) with the given timestamps and records, compressed with the
/// template's codec at Kafka's default level; recordsCount and CRC are computed.
pub fn encode_batch(
    template: &BatchHeader,
    base_timestamp: i64,
    max_timestamp: i64,
    records: &[Record],
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut scratch = Vec::new();
    for r in records {
        let view = RecordView {
            attributes: r.attributes,
            timestamp_delta: r.timestamp.wrapping_sub(base_timestamp),
            offset_delta: r.offset - template.base_offset,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &r.headers,
        };
        put_record(&mut body, &mut scratch, &view);
    }
    let codec = Codec::from_id((template.attributes & ATTR_COMPRESSION_MASK) as u8)
        .ok_or("unknown compression codec")?;
    let payload = codec::compress_with(codec, &body, &CompressionLevels::default())?;
    let mut h = *template;
    h.base_timestamp = base_timestamp;
    h.max_timestamp = max_timestamp;
    h.records_count = records.len() as i32;
    Ok(write_batch(&h, &payload))
}

/// Kafka's `writeEmptyHeader`: a record-less batch keeping the offsets, producer id, epoch and
/// sequence range of `h` (preserves an active producer's last sequence after compaction).
pub fn empty_batch(h: &BatchHeader) -> Vec<u8> {
    let mut e = *h;
    e.attributes &= !(ATTR_COMPRESSION_MASK | ATTR_DELETE_HORIZON);
    e.base_timestamp = h.max_timestamp;
    e.records_count = 0;
    write_batch(&e, &[])
}

/// Writes a v2 batch of header `h` (its batch length, magic and CRC aside) around an already
/// encoded (compressed) records section; batchLength and CRC are computed.
pub(super) fn write_batch(h: &BatchHeader, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_SIZE + payload.len());
    b.extend_from_slice(&h.base_offset.to_be_bytes());
    b.extend_from_slice(&((HEADER_SIZE - LOG_OVERHEAD + payload.len()) as i32).to_be_bytes());
    b.extend_from_slice(&h.partition_leader_epoch.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&h.attributes.to_be_bytes());
    b.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    b.extend_from_slice(&h.base_timestamp.to_be_bytes());
    b.extend_from_slice(&h.max_timestamp.to_be_bytes());
    b.extend_from_slice(&h.producer_id.to_be_bytes());
    b.extend_from_slice(&h.producer_epoch.to_be_bytes());
    b.extend_from_slice(&h.base_sequence.to_be_bytes());
    b.extend_from_slice(&h.records_count.to_be_bytes());
    b.extend_from_slice(payload);
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// A keyed record for tests: `value = None` is a tombstone.
    pub fn rec(offset_delta: i64, ts: i64, key: Option<&str>, value: Option<&str>) -> Record {
        Record {
            attributes: 0,
            timestamp: ts,
            offset: offset_delta,
            key: key.map(|k| k.as_bytes().to_vec()),
            value: value.map(|v| v.as_bytes().to_vec()),
            headers: vec![0],
        }
    }

    /// A client-style batch (base offset 0, lastOffsetDelta = n-1) of the given records.
    pub fn keyed_batch(codec: u8, pid: i64, seq: i32, records: &[Record]) -> Vec<u8> {
        let base_ts = records.first().map(|r| r.timestamp).unwrap_or(0);
        let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
        let h = BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: -1,
            magic: 2,
            crc: 0,
            attributes: i16::from(codec),
            last_offset_delta: records.len() as i32 - 1,
            base_timestamp: base_ts,
            max_timestamp: max_ts,
            producer_id: pid,
            producer_epoch: if pid >= 0 { 0 } else { -1 },
            base_sequence: if pid >= 0 { seq } else { -1 },
            records_count: records.len() as i32,
        };
        encode_batch(&h, base_ts, max_ts, records).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;
    use crate::log::batch::validate_payload;

    #[test]
    fn round_trip_every_codec() {
        let recs: Vec<Record> = (0..300)
            .map(|i| {
                let v = format!("value-{i}-{}", "x".repeat(i % 50));
                rec(
                    i as i64,
                    1000 + i as i64,
                    Some(&format!("k{}", i % 7)),
                    Some(&v),
                )
            })
            .collect();
        for codec in 0..=4u8 {
            let b = keyed_batch(codec, -1, -1, &recs);
            validate_payload(&b, 1 << 20).unwrap();
            let (h, back) = decode_records(&b).unwrap();
            assert_eq!(h.compression(), codec);
            assert_eq!(back, recs, "codec {codec}");
            if codec != 0 {
                assert!(b.len() < 300 * 20, "codec {codec} compresses");
            }
        }
    }

    #[test]
    fn views_borrow_uncompressed_batches_and_garbage_is_refused() {
        let ok = keyed_batch(0, -1, -1, &[rec(0, 7, Some("a"), None)]);
        let (h, body) = batch_body(&ok).unwrap();
        assert!(matches!(body, Cow::Borrowed(_)));
        let views = parse_records(&body, h.records_count).unwrap();
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].key, Some(&b"a"[..]));
        assert_eq!(views[0].value, None);
        assert_eq!(views[0].headers, &[0u8][..]);
        assert!(
            parse_records(&body, 2).is_err(),
            "fewer records than counted"
        );
        let mut broken = keyed_batch(1, -1, -1, &[rec(0, 0, Some("a"), Some("1"))]);
        let n = broken.len();
        broken[n - 3] ^= 0xff;
        assert!(decode_records(&broken).is_err());
    }

    #[test]
    fn empty_batch_keeps_offsets_and_sequence() {
        let b = keyed_batch(
            4,
            7,
            10,
            &[rec(0, 5, Some("a"), Some("1")), rec(1, 9, Some("b"), None)],
        );
        let h = BatchHeader::parse(&b).unwrap();
        let e = empty_batch(&h);
        let eh = BatchHeader::parse(&e).unwrap();
        assert_eq!(eh.size(), Some(61));
        assert_eq!(eh.records_count, 0);
        assert_eq!(eh.last_offset_delta, 1);
        assert_eq!(eh.last_sequence(), 11);
        assert_eq!(eh.compression(), 0);
        assert_eq!(compute_crc(&e), eh.crc);
        assert_eq!(decode_records(&e).unwrap().1, vec![]);
    }
}
