//! Record-level decoding and encoding of v2 record batches, and the four Kafka codecs. Used by the
//! log cleaner (filter and rewrite batches) and by the key check of compacted topics on append; the
//! hot append/fetch path of other topics never decodes records.
//!
//! Codecs (attribute bits 0-2), as Kafka writes them in v2 batches: 1 gzip (a gzip stream), 2 snappy
//! (xerial `SnappyOutputStream` framing: 16-byte header then `[len i32 BE][raw snappy block]`
//! chunks; unframed raw snappy is accepted on decode, like xerial's `SnappyInputStream`), 3 lz4 (LZ4
//! frame format, independent 64 KiB blocks), 4 zstd (a zstd frame).

use std::io::{Read, Write};

use super::batch::{compute_crc, BatchHeader, HEADER_SIZE, LOG_OVERHEAD};
use super::error::AppendError;

/// Attribute bit 6 (Kafka 3.x, KIP-534): `baseTimestamp` holds the delete horizon of the batch.
pub const ATTR_DELETE_HORIZON: i16 = 0x40;
const ATTR_COMPRESSION_MASK: i16 = 0x07;

/// Refuse to inflate a batch beyond this (a decompression bomb on the produce path).
pub const MAX_DECOMPRESSED: usize = 256 << 20;

const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
const XERIAL_BLOCK: usize = 32 * 1024;

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

fn read_bytes(buf: &[u8], pos: &mut usize) -> Result<Option<Vec<u8>>, String> {
    let len = read_varlong(buf, pos)?;
    if len < 0 {
        return Ok(None);
    }
    let end = pos
        .checked_add(len as usize)
        .filter(|&e| e <= buf.len())
        .ok_or("field runs past its record")?;
    let v = buf[*pos..end].to_vec();
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

fn read_limited(mut r: impl Read) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    (&mut r)
        .take(MAX_DECOMPRESSED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("decompression failed: {e}"))?;
    if out.len() > MAX_DECOMPRESSED {
        return Err(format!(
            "batch inflates beyond {MAX_DECOMPRESSED} bytes; refused"
        ));
    }
    Ok(out)
}

/// Decompresses the records section of a batch compressed with `codec`.
pub fn decompress(codec: u8, data: &[u8]) -> Result<Vec<u8>, String> {
    match codec {
        0 => Ok(data.to_vec()),
        1 => read_limited(flate2::read::MultiGzDecoder::new(data)),
        2 => snappy_decompress(data),
        3 => read_limited(lz4::Decoder::new(data).map_err(|e| format!("lz4: {e}"))?),
        4 => {
            read_limited(zstd::stream::read::Decoder::new(data).map_err(|e| format!("zstd: {e}"))?)
        }
        c => Err(format!("unknown compression codec {c}")),
    }
}

fn snappy_block(data: &[u8], budget: usize) -> Result<Vec<u8>, String> {
    let n = snap::raw::decompress_len(data).map_err(|e| format!("snappy: {e}"))?;
    if n > budget {
        return Err(format!(
            "batch inflates beyond {MAX_DECOMPRESSED} bytes; refused"
        ));
    }
    snap::raw::Decoder::new()
        .decompress_vec(data)
        .map_err(|e| format!("snappy: {e}"))
}

fn snappy_decompress(data: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < XERIAL_HEADER.len() || data[..8] != XERIAL_HEADER[..8] {
        return snappy_block(data, MAX_DECOMPRESSED);
    }
    let mut out = Vec::new();
    let mut pos = XERIAL_HEADER.len();
    while pos < data.len() {
        if pos + 4 > data.len() {
            return Err("snappy: truncated xerial chunk length".into());
        }
        let len = u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        pos += 4;
        let end = pos
            .checked_add(len as usize)
            .filter(|&e| e <= data.len())
            .ok_or("snappy: xerial chunk runs past the batch")?;
        let chunk = snappy_block(&data[pos..end], MAX_DECOMPRESSED - out.len())?;
        out.extend_from_slice(&chunk);
        pos = end;
    }
    Ok(out)
}

/// Compresses a records section with `codec`, in the framing Kafka's producers and broker use.
pub fn compress(codec: u8, data: &[u8]) -> Result<Vec<u8>, String> {
    let io = |e: std::io::Error| format!("compression failed: {e}");
    match codec {
        0 => Ok(data.to_vec()),
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)
        }
        2 => {
            let mut out = XERIAL_HEADER.to_vec();
            let mut enc = snap::raw::Encoder::new();
            for chunk in data.chunks(XERIAL_BLOCK) {
                let c = enc
                    .compress_vec(chunk)
                    .map_err(|e| format!("snappy: {e}"))?;
                out.extend_from_slice(&(c.len() as u32).to_be_bytes());
                out.extend_from_slice(&c);
            }
            Ok(out)
        }
        3 => {
            let mut e = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(Vec::new())
                .map_err(io)?;
            e.write_all(data).map_err(io)?;
            let (out, r) = e.finish();
            r.map_err(io)?;
            Ok(out)
        }
        4 => zstd::stream::encode_all(data, 3).map_err(io),
        c => Err(format!("unknown compression codec {c}")),
    }
}

/// Decodes every record of a whole v2 batch (decompressing if needed). Checks the record framing
/// against `recordsCount`; the CRC is the caller's business.
pub fn decode_records(batch: &[u8]) -> Result<(BatchHeader, Vec<Record>), String> {
    let h = BatchHeader::parse(batch).ok_or("batch shorter than its header")?;
    let size = h.size().ok_or("negative batch length")?;
    if size > batch.len() || size < HEADER_SIZE {
        return Err("batch length does not match the bytes".into());
    }
    if h.magic != 2 {
        return Err(format!("unsupported magic {}", h.magic));
    }
    let body = decompress(h.compression(), &batch[HEADER_SIZE..size])?;
    let count = usize::try_from(h.records_count).map_err(|_| "negative records count")?;
    let mut out = Vec::with_capacity(count.min(body.len() / 7 + 1));
    let mut pos = 0usize;
    for _ in 0..count {
        let len = read_varlong(&body, &mut pos)?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| pos.checked_add(l))
            .filter(|&e| e <= body.len())
            .ok_or("record length runs past the batch")?;
        let rec = &body[..end];
        let attributes = *rec.get(pos).ok_or("empty record")? as i8;
        pos += 1;
        let ts_delta = read_varlong(rec, &mut pos)?;
        let off_delta = read_varlong(rec, &mut pos)?;
        let key = read_bytes(rec, &mut pos)?;
        let value = read_bytes(rec, &mut pos)?;
        if pos >= end {
            return Err("record without headers count".into());
        }
        let headers = rec[pos..end].to_vec();
        out.push(Record {
            attributes,
            timestamp: h.base_timestamp.wrapping_add(ts_delta),
            offset: h.base_offset.wrapping_add(off_delta),
            key,
            value,
            headers,
        });
        pos = end;
    }
    if pos != body.len() {
        return Err(format!(
            "{} bytes after the last of {count} records",
            body.len() - pos
        ));
    }
    Ok((h, out))
}

/// Writes a v2 batch: fields of `template` (base offset, leader epoch, attributes, lastOffsetDelta,
/// producer id/epoch, base sequence) with the given timestamps and records, compressed with the
/// template's codec; recordsCount and CRC are computed.
pub fn encode_batch(
    template: &BatchHeader,
    base_timestamp: i64,
    max_timestamp: i64,
    records: &[Record],
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut rec = Vec::new();
    for r in records {
        rec.clear();
        rec.push(r.attributes as u8);
        put_varlong(&mut rec, r.timestamp.wrapping_sub(base_timestamp));
        put_varlong(&mut rec, r.offset - template.base_offset);
        put_bytes(&mut rec, r.key.as_deref());
        put_bytes(&mut rec, r.value.as_deref());
        rec.extend_from_slice(&r.headers);
        put_varlong(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
    }
    let codec = (template.attributes & ATTR_COMPRESSION_MASK) as u8;
    let payload = compress(codec, &body)?;
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

fn write_batch(h: &BatchHeader, payload: &[u8]) -> Vec<u8> {
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

/// Kafka's produce check for compacted topics: every record must have a key (INVALID_RECORD).
pub fn check_keys(batch: &[u8]) -> Result<(), AppendError> {
    let (_, recs) = decode_records(batch).map_err(AppendError::CorruptMessage)?;
    if recs.iter().any(|r| r.key.is_none()) {
        return Err(AppendError::InvalidRecord(
            "compacted topic requires keys".into(),
        ));
    }
    Ok(())
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
    fn snappy_is_xerial_framed_and_raw_accepted() {
        let data = b"hello hello hello hello".repeat(5000);
        let c = compress(2, &data).unwrap();
        assert_eq!(&c[..16], XERIAL_HEADER);
        assert_eq!(decompress(2, &c).unwrap(), data);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(2, &raw).unwrap(), data);
    }

    #[test]
    fn keyless_records_detected_and_garbage_refused() {
        let ok = keyed_batch(1, -1, -1, &[rec(0, 0, Some("a"), Some("1"))]);
        check_keys(&ok).unwrap();
        let bad = keyed_batch(
            3,
            -1,
            -1,
            &[rec(0, 0, Some("a"), Some("1")), rec(1, 0, None, Some("2"))],
        );
        assert!(matches!(
            check_keys(&bad),
            Err(AppendError::InvalidRecord(_))
        ));
        let mut broken = ok.clone();
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
