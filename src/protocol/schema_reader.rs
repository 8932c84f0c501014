//! Bounded readers for records in Kafka's message-schema encoding (the `__consumer_offsets` and
//! `__transaction_state` keys and values): every read checks the bytes left first, so bad input
//! is an error, never a panic or an allocation sized by a length field.

use bytes::Buf;

/// Why a schema-encoded record could not be read; callers map it into their own error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Fewer bytes left than the named field needs.
    Truncated(&'static str),
    /// The named field holds an impossible value.
    Invalid(&'static str),
}

/// At least `n` bytes are left.
pub fn need(buf: &[u8], n: usize, what: &'static str) -> Result<(), ReadError> {
    if buf.len() < n {
        Err(ReadError::Truncated(what))
    } else {
        Ok(())
    }
}

/// `count` entries of at least `min_entry` bytes each can fit in what is left.
pub fn check_count(
    buf: &[u8],
    count: usize,
    min_entry: usize,
    what: &'static str,
) -> Result<(), ReadError> {
    if count > buf.len() / min_entry.max(1) {
        Err(ReadError::Truncated(what))
    } else {
        Ok(())
    }
}

pub fn get_i8(buf: &mut &[u8], what: &'static str) -> Result<i8, ReadError> {
    need(buf, 1, what)?;
    Ok(buf.get_i8())
}

pub fn get_i16(buf: &mut &[u8], what: &'static str) -> Result<i16, ReadError> {
    need(buf, 2, what)?;
    Ok(buf.get_i16())
}

pub fn get_i32(buf: &mut &[u8], what: &'static str) -> Result<i32, ReadError> {
    need(buf, 4, what)?;
    Ok(buf.get_i32())
}

pub fn get_i64(buf: &mut &[u8], what: &'static str) -> Result<i64, ReadError> {
    need(buf, 8, what)?;
    Ok(buf.get_i64())
}

/// An unsigned varint of at most 5 bytes.
pub fn get_uvarint(buf: &mut &[u8], what: &'static str) -> Result<u32, ReadError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        need(buf, 1, what)?;
        let b = buf.get_u8();
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(ReadError::Invalid(what))
}

/// Skips a flexible version's tagged fields.
pub fn skip_tagged_fields(buf: &mut &[u8]) -> Result<(), ReadError> {
    let count = get_uvarint(buf, "tagged field count")?;
    for _ in 0..count {
        get_uvarint(buf, "tag")?;
        let size = get_uvarint(buf, "tag size")? as usize;
        need(buf, size, "tagged field")?;
        buf.advance(size);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_check_the_bytes_left() {
        let mut buf: &[u8] = &[0, 7, 1];
        assert_eq!(get_i16(&mut buf, "a"), Ok(7));
        assert_eq!(get_i16(&mut buf, "b"), Err(ReadError::Truncated("b")));
        let mut varint: &[u8] = &[0xac, 0x02];
        assert_eq!(get_uvarint(&mut varint, "v"), Ok(300));
        let mut endless: &[u8] = &[0xff; 6];
        assert_eq!(get_uvarint(&mut endless, "v"), Err(ReadError::Invalid("v")));
        assert!(check_count(&[0; 8], 3, 4, "n").is_err());
        let mut tagged: &[u8] = &[1, 0, 2, 9, 9, 5];
        assert_eq!(skip_tagged_fields(&mut tagged), Ok(()));
        assert_eq!(tagged, &[5]);
    }
}
