//! Kafka's text form of a UUID (`Uuid.toString()`): the 16 bytes in URL-safe base64 without
//! padding, 22 characters. Topic ids, cluster ids and `partition.metadata` use it.

use uuid::Uuid;

/// Kafka's `Uuid.toString()`.
pub fn to_string(id: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Parses Kafka's `Uuid.toString()` form (padding optional); `None` if it is not one.
pub fn parse(s: &str) -> Option<Uuid> {
    let s = s.trim_end_matches('=');
    if s.len() != 22 {
        return None;
    }
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(16);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    if bits != 0 {
        return None;
    }
    Uuid::from_slice(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_uuid_round_trip() {
        // Kafka prints the all-zero Uuid as 22 'A's.
        assert_eq!(to_string(Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(parse("AAAAAAAAAAAAAAAAAAAAAA").unwrap(), Uuid::nil());
        // Kafka's Uuid(msb=1, lsb=2) has bytes 00..01 00..02.
        let id = Uuid::from_u64_pair(1, 2);
        assert_eq!(to_string(id), "AAAAAAAAAAEAAAAAAAAAAg");
        for _ in 0..100 {
            let id = Uuid::new_v4();
            let s = to_string(id);
            assert_eq!(s.len(), 22);
            assert_eq!(parse(&s).unwrap(), id);
        }
        let id = parse("ZOLr9CLNQjSW70hyIHx6BQ").unwrap();
        assert_eq!(to_string(id), "ZOLr9CLNQjSW70hyIHx6BQ");
        assert!(parse("short").is_none());
        assert!(parse("ZOLr9CLNQjSW70hyIHx6B+").is_none());
    }
}
