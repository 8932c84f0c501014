//! Decoding a member's assignment blob of protocol type `consumer` (Kafka's
//! ConsumerProtocolAssignment: version i16, then topics as (string, [i32]), then user data),
//! without trusting the counts in it: a count larger than the bytes left ends decoding.

use bytes::Buf;

/// The topics and partitions in an assignment blob; empty when it is empty or malformed.
pub fn decode_assignment(blob: &[u8]) -> Vec<(String, Vec<i32>)> {
    decode(blob).unwrap_or_default()
}

fn decode(mut buf: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    if buf.remaining() < 6 {
        return None;
    }
    let _version = buf.get_i16();
    let topics = count(&mut buf, 2)?;
    let mut out = Vec::new();
    for _ in 0..topics {
        if buf.remaining() < 2 {
            return None;
        }
        let len = usize::try_from(buf.get_i16()).ok()?;
        if buf.remaining() < len {
            return None;
        }
        let name = std::str::from_utf8(&buf[..len]).ok()?.to_string();
        buf.advance(len);
        let partitions = count(&mut buf, 4)?;
        let mut ps = Vec::new();
        for _ in 0..partitions {
            ps.push(buf.get_i32());
        }
        ps.sort_unstable();
        out.push((name, ps));
    }
    out.sort();
    Some(out)
}

/// Reads an i32 array count; `None` when negative-but-not-null or when the remaining bytes
/// cannot hold that many elements of `min_size` bytes.
fn count(buf: &mut &[u8], min_size: usize) -> Option<usize> {
    if buf.remaining() < 4 {
        return None;
    }
    let n = buf.get_i32();
    if n < 0 {
        return Some(0);
    }
    let n = n as usize;
    (n.saturating_mul(min_size) <= buf.remaining()).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn blob(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i16(1);
        b.put_i32(topics.len() as i32);
        for (t, ps) in topics {
            b.put_i16(t.len() as i16);
            b.put_slice(t.as_bytes());
            b.put_i32(ps.len() as i32);
            for p in *ps {
                b.put_i32(*p);
            }
        }
        b.put_i32(-1); // no user data
        b
    }

    #[test]
    fn topics_and_partitions_sorted() {
        let b = blob(&[("zeta", &[2, 0]), ("alpha", &[1])]);
        assert_eq!(
            decode_assignment(&b),
            vec![
                ("alpha".to_string(), vec![1]),
                ("zeta".to_string(), vec![0, 2])
            ]
        );
    }

    #[test]
    fn empty_and_hostile_blobs_decode_to_nothing() {
        assert!(decode_assignment(&[]).is_empty());
        let mut huge = Vec::new();
        huge.put_i16(0);
        huge.put_i32(i32::MAX);
        assert!(decode_assignment(&huge).is_empty());
        let mut b = blob(&[("t", &[0, 1, 2])]);
        b.truncate(b.len() - 8); // cut inside the partition list
        assert!(decode_assignment(&b).is_empty());
    }
}
