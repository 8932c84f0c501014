//! The four Kafka record codecs, their compression levels (KIP-390) and a topic's
//! `compression.type`.
//!
//! Codecs (attribute bits 0-2 of a v2 batch), in the framing Kafka writes: 1 gzip (a gzip stream),
//! 2 snappy (xerial `SnappyOutputStream` framing: 16-byte header then `[len i32 BE][raw snappy
//! block]` chunks; unframed raw snappy is accepted on decode, like xerial's `SnappyInputStream`),
//! 3 lz4 (LZ4 frame format, independent 64 KiB blocks), 4 zstd (a zstd frame).

use std::io::{Read, Write};

/// Refuse to inflate a batch beyond this (a decompression bomb on the produce path).
pub const MAX_DECOMPRESSED: usize = 256 << 20;

const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
const XERIAL_BLOCK: usize = 32 * 1024;

/// A record codec: the value of attribute bits 0-2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Codec {
    /// The codec of attribute bits 0-2; `None` for the unused ids 5-7.
    pub fn from_id(id: u8) -> Option<Codec> {
        match id {
            0 => Some(Codec::None),
            1 => Some(Codec::Gzip),
            2 => Some(Codec::Snappy),
            3 => Some(Codec::Lz4),
            4 => Some(Codec::Zstd),
            _ => None,
        }
    }

    /// The attribute id of this codec.
    pub fn id(self) -> u8 {
        self as u8
    }
}

/// A topic's `compression.type`: what the leader stores (Kafka's `BrokerCompressionType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CompressionType {
    /// Keep each batch in the codec the producer chose (no decode, no re-encode).
    #[default]
    Producer,
    /// Store every batch with this codec (`uncompressed` is `Codec::None`).
    Codec(Codec),
}

impl CompressionType {
    /// Parses a Kafka `compression.type` value (`uncompressed`, `gzip`, `snappy`, `lz4`, `zstd`,
    /// `producer`); `None` for anything else.
    pub fn parse(name: &str) -> Option<CompressionType> {
        Some(match name {
            "producer" => CompressionType::Producer,
            "uncompressed" => CompressionType::Codec(Codec::None),
            "gzip" => CompressionType::Codec(Codec::Gzip),
            "snappy" => CompressionType::Codec(Codec::Snappy),
            "lz4" => CompressionType::Codec(Codec::Lz4),
            "zstd" => CompressionType::Codec(Codec::Zstd),
            _ => return None,
        })
    }

    /// The codec a batch written with `source` is stored with.
    pub fn target(self, source: Codec) -> Codec {
        match self {
            CompressionType::Producer => source,
            CompressionType::Codec(c) => c,
        }
    }
}

/// Compression levels of the broker's own compression (`compression.gzip.level`,
/// `compression.lz4.level`, `compression.zstd.level`). Defaults are Kafka's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompressionLevels {
    /// 1-9, or -1 for zlib's default (6).
    pub gzip: i32,
    /// 1-17; 9 (Kafka's default) is LZ4's fast mode, any other value its high-compression mode.
    pub lz4: i32,
    /// -131072..=22.
    pub zstd: i32,
}

/// Kafka's default gzip level (`Deflater.DEFAULT_COMPRESSION`).
pub const GZIP_DEFAULT_LEVEL: i32 = -1;
/// Kafka's default lz4 level: the fast compressor.
pub const LZ4_DEFAULT_LEVEL: i32 = 9;
/// Kafka's default zstd level.
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;

impl Default for CompressionLevels {
    fn default() -> Self {
        CompressionLevels {
            gzip: GZIP_DEFAULT_LEVEL,
            lz4: LZ4_DEFAULT_LEVEL,
            zstd: ZSTD_DEFAULT_LEVEL,
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

/// Decompresses the records section of a batch compressed with codec id `codec`.
pub fn decompress(codec: u8, data: &[u8]) -> Result<Vec<u8>, String> {
    match Codec::from_id(codec) {
        Some(Codec::None) => Ok(data.to_vec()),
        Some(Codec::Gzip) => read_limited(flate2::read::MultiGzDecoder::new(data)),
        Some(Codec::Snappy) => snappy_decompress(data),
        Some(Codec::Lz4) => read_limited(lz4::Decoder::new(data).map_err(|e| format!("lz4: {e}"))?),
        Some(Codec::Zstd) => {
            read_limited(zstd::stream::read::Decoder::new(data).map_err(|e| format!("zstd: {e}"))?)
        }
        None => Err(format!("unknown compression codec {codec}")),
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

/// Compresses a records section with codec id `codec` at Kafka's default levels.
pub fn compress(codec: u8, data: &[u8]) -> Result<Vec<u8>, String> {
    let codec =
        Codec::from_id(codec).ok_or_else(|| format!("unknown compression codec {codec}"))?;
    compress_with(codec, data, &CompressionLevels::default())
}

/// Compresses a records section with `codec` at the given levels, in the framing Kafka's
/// producers and broker use.
pub fn compress_with(
    codec: Codec,
    data: &[u8],
    levels: &CompressionLevels,
) -> Result<Vec<u8>, String> {
    let io = |e: std::io::Error| format!("compression failed: {e}");
    match codec {
        Codec::None => Ok(data.to_vec()),
        Codec::Gzip => {
            let level = match u32::try_from(levels.gzip) {
                Ok(l) => flate2::Compression::new(l.min(9)),
                Err(_) => flate2::Compression::default(),
            };
            let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)
        }
        Codec::Snappy => snappy_compress(data),
        Codec::Lz4 => {
            // Kafka: the default level is lz4-java's fast compressor, any other its HC compressor.
            let level = if levels.lz4 == LZ4_DEFAULT_LEVEL {
                0
            } else {
                u32::try_from(levels.lz4).unwrap_or(0)
            };
            let mut e = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .level(level)
                .build(Vec::new())
                .map_err(io)?;
            e.write_all(data).map_err(io)?;
            let (out, r) = e.finish();
            r.map_err(io)?;
            Ok(out)
        }
        Codec::Zstd => zstd::stream::encode_all(data, levels.zstd).map_err(io),
    }
}

fn snappy_compress(data: &[u8]) -> Result<Vec<u8>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_level_in_kafkas_ranges_round_trips() {
        let data: Vec<u8> = (0..50_000u32)
            .flat_map(|i| format!("record-{} ", i % 977).into_bytes())
            .collect();
        let cases: &[(Codec, &[i32])] = &[
            (Codec::Gzip, &[1, -1, 5, 9]),
            (Codec::Lz4, &[1, 3, 9, 12, 17]),
            (Codec::Zstd, &[-131072, -5, 1, 3, 19, 22]),
        ];
        for (codec, levels) in cases {
            let mut sizes = Vec::new();
            for &l in *levels {
                let lv = CompressionLevels {
                    gzip: l,
                    lz4: l,
                    zstd: l,
                };
                let c = compress_with(*codec, &data, &lv).unwrap();
                assert_eq!(decompress(codec.id(), &c).unwrap(), data, "{codec:?} {l}");
                sizes.push(c.len());
            }
            // levels are listed weakest first: the strongest compresses at least as well
            assert!(sizes.last() <= sizes.first(), "{codec:?}: {sizes:?}");
        }
    }

    #[test]
    fn compression_type_names_are_kafkas() {
        assert_eq!(
            CompressionType::parse("producer"),
            Some(CompressionType::Producer)
        );
        assert_eq!(
            CompressionType::parse("uncompressed"),
            Some(CompressionType::Codec(Codec::None))
        );
        assert_eq!(
            CompressionType::parse("lz4"),
            Some(CompressionType::Codec(Codec::Lz4))
        );
        for bad in ["none", "LZ4", "brotli", ""] {
            assert_eq!(CompressionType::parse(bad), None, "{bad}");
        }
        assert_eq!(CompressionType::Producer.target(Codec::Gzip), Codec::Gzip);
        assert_eq!(
            CompressionType::Codec(Codec::Zstd).target(Codec::Gzip),
            Codec::Zstd
        );
    }
}
