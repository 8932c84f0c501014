//! The record formats of `__transaction_state`, written from Kafka's transaction-coordinator
//! schemas (TransactionLogKey, TransactionLogValue), so that Kafka tooling reading the topic
//! understands what Odradek writes and the coordinator can reload its state from it.
//!
//! A key is an int16 version (only 0 exists) followed by the transactional id as a classic
//! string. A value is an int16 version followed by the value struct at that version: version 0
//! is the classic encoding; version 1 is flexible (compact strings and arrays, a tagged-field
//! section per struct) and carries three tagged fields (0: previous producer id, 1: next
//! producer id, 2: client transaction version), each written only when it differs from its
//! default. Kafka 3.x (transaction version 0) writes version 0; version 1 goes with
//! transaction version 1+. A null value is a tombstone: the transactional id expired.
//!
//! Decoding never panics and never allocates more than the input could describe: every length
//! is checked against the bytes that remain.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::protocol::schema_reader::{
    check_count, get_i16, get_i32, get_i64, get_i8, get_uvarint, need, skip_tagged_fields,
    ReadError,
};

/// The topic holding the transaction coordinator's state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// The value version Kafka 3.x writes (transaction version 0): classic, no tagged fields.
pub const VALUE_VERSION_CLASSIC: i16 = 0;
/// The flexible value version (transaction version 1+), with tagged fields.
pub const VALUE_VERSION_FLEXIBLE: i16 = 1;

const KEY_VERSION: i16 = 0;
const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
const TAG_NEXT_PRODUCER_ID: u32 = 1;
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;

/// A `__transaction_state` record this layer cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnRecordError {
    #[error("transaction log record truncated reading {0}")]
    Truncated(&'static str),
    /// Kafka skips keys of unknown versions when loading (left over from an aborted upgrade)
    /// and fails on values of unknown versions.
    #[error("unknown transaction log {what} version {version}")]
    UnknownVersion { what: &'static str, version: i16 },
    #[error("invalid {0} in a transaction log record")]
    Invalid(&'static str),
}

impl From<ReadError> for TxnRecordError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Truncated(what) => TxnRecordError::Truncated(what),
            ReadError::Invalid(what) => TxnRecordError::Invalid(what),
        }
    }
}

/// The key of a `__transaction_state` record (TransactionLogKey v0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogKey {
    pub transactional_id: String,
}

/// The partitions of one topic in a transaction (TransactionLogValue's PartitionsSchema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogPartitions {
    pub topic: String,
    pub partition_ids: Vec<i32>,
}

/// A transactional id's state (TransactionLogValue v0 and v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    pub producer_id: i64,
    /// Tagged field 0 (v1 only; default -1).
    pub previous_producer_id: i64,
    /// Tagged field 1 (v1 only; default -1).
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub transaction_timeout_ms: i32,
    /// The [`super::TransactionState`] id.
    pub transaction_status: i8,
    /// Null when the state is Empty (as Kafka writes it).
    pub transaction_partitions: Option<Vec<TxnLogPartitions>>,
    pub transaction_last_update_timestamp_ms: i64,
    pub transaction_start_timestamp_ms: i64,
    /// Tagged field 2 (v1 only; default 0).
    pub client_transaction_version: i16,
}

impl TxnLogKey {
    pub fn new(transactional_id: &str) -> TxnLogKey {
        TxnLogKey {
            transactional_id: transactional_id.to_string(),
        }
    }

    /// The key bytes: version 0, then the id as an int16-length string.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(4 + self.transactional_id.len());
        out.put_i16(KEY_VERSION);
        put_string(&mut out, &self.transactional_id, false);
        out.freeze()
    }

    /// Reads a key; a version other than 0 is [`TxnRecordError::UnknownVersion`] (which a
    /// loader skips, as Kafka does).
    pub fn decode(mut buf: &[u8]) -> Result<TxnLogKey, TxnRecordError> {
        let version = get_i16(&mut buf, "key version")?;
        if version != KEY_VERSION {
            return Err(TxnRecordError::UnknownVersion {
                what: "key",
                version,
            });
        }
        let transactional_id = get_string(&mut buf, false, "transactional id")?;
        Ok(TxnLogKey { transactional_id })
    }
}

impl TxnLogValue {
    /// The value bytes at `version` ([`VALUE_VERSION_CLASSIC`] or [`VALUE_VERSION_FLEXIBLE`];
    /// any other is written as the flexible one). Version 0 drops the tagged fields.
    pub fn encode(&self, version: i16) -> Bytes {
        let flexible = version >= VALUE_VERSION_FLEXIBLE;
        let mut out = BytesMut::with_capacity(64);
        out.put_i16(if flexible {
            VALUE_VERSION_FLEXIBLE
        } else {
            VALUE_VERSION_CLASSIC
        });
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.transaction_timeout_ms);
        out.put_i8(self.transaction_status);
        self.put_partitions(&mut out, flexible);
        out.put_i64(self.transaction_last_update_timestamp_ms);
        out.put_i64(self.transaction_start_timestamp_ms);
        if flexible {
            self.put_tagged_fields(&mut out);
        }
        out.freeze()
    }

    fn put_partitions(&self, out: &mut BytesMut, flexible: bool) {
        let Some(partitions) = &self.transaction_partitions else {
            put_array_len(out, None, flexible);
            return;
        };
        put_array_len(out, Some(partitions.len()), flexible);
        for p in partitions {
            put_string(out, &p.topic, flexible);
            put_array_len(out, Some(p.partition_ids.len()), flexible);
            for id in &p.partition_ids {
                out.put_i32(*id);
            }
            if flexible {
                put_uvarint(out, 0);
            }
        }
    }

    fn put_tagged_fields(&self, out: &mut BytesMut) {
        let previous = self.previous_producer_id != -1;
        let next = self.next_producer_id != -1;
        let version = self.client_transaction_version != 0;
        put_uvarint(
            out,
            u32::from(previous) + u32::from(next) + u32::from(version),
        );
        if previous {
            put_uvarint(out, TAG_PREVIOUS_PRODUCER_ID);
            put_uvarint(out, 8);
            out.put_i64(self.previous_producer_id);
        }
        if next {
            put_uvarint(out, TAG_NEXT_PRODUCER_ID);
            put_uvarint(out, 8);
            out.put_i64(self.next_producer_id);
        }
        if version {
            put_uvarint(out, TAG_CLIENT_TRANSACTION_VERSION);
            put_uvarint(out, 2);
            out.put_i16(self.client_transaction_version);
        }
    }

    /// Reads a (non-null) value of version 0 or 1; unknown tagged fields are skipped.
    pub fn decode(mut buf: &[u8]) -> Result<TxnLogValue, TxnRecordError> {
        let version = get_i16(&mut buf, "value version")?;
        if !(VALUE_VERSION_CLASSIC..=VALUE_VERSION_FLEXIBLE).contains(&version) {
            return Err(TxnRecordError::UnknownVersion {
                what: "value",
                version,
            });
        }
        let flexible = version >= VALUE_VERSION_FLEXIBLE;
        let mut value = TxnLogValue {
            producer_id: get_i64(&mut buf, "producer id")?,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: get_i16(&mut buf, "producer epoch")?,
            transaction_timeout_ms: get_i32(&mut buf, "transaction timeout")?,
            transaction_status: get_i8(&mut buf, "transaction status")?,
            transaction_partitions: get_partitions(&mut buf, flexible)?,
            transaction_last_update_timestamp_ms: get_i64(&mut buf, "last update timestamp")?,
            transaction_start_timestamp_ms: get_i64(&mut buf, "start timestamp")?,
            client_transaction_version: 0,
        };
        if flexible {
            value.read_tagged_fields(&mut buf)?;
        }
        Ok(value)
    }

    fn read_tagged_fields(&mut self, buf: &mut &[u8]) -> Result<(), TxnRecordError> {
        let count = get_uvarint(buf, "tagged field count")?;
        for _ in 0..count {
            let tag = get_uvarint(buf, "tag")?;
            let size = get_uvarint(buf, "tag size")? as usize;
            need(buf, size, "tagged field")?;
            let mut field = &buf[..size];
            match tag {
                TAG_PREVIOUS_PRODUCER_ID => {
                    self.previous_producer_id = exact_i64(&mut field, "previous producer id")?
                }
                TAG_NEXT_PRODUCER_ID => {
                    self.next_producer_id = exact_i64(&mut field, "next producer id")?
                }
                TAG_CLIENT_TRANSACTION_VERSION => {
                    if size != 2 {
                        return Err(TxnRecordError::Invalid("client transaction version"));
                    }
                    self.client_transaction_version = field.get_i16();
                }
                _ => {}
            }
            buf.advance(size);
        }
        Ok(())
    }
}

fn exact_i64(field: &mut &[u8], what: &'static str) -> Result<i64, TxnRecordError> {
    if field.len() != 8 {
        return Err(TxnRecordError::Invalid(what));
    }
    Ok(field.get_i64())
}

/// Reads the nullable TransactionPartitions array. Each entry takes at least 3 bytes (flexible)
/// or 6 (classic), so a count the remaining bytes cannot hold is refused before allocating.
fn get_partitions(
    buf: &mut &[u8],
    flexible: bool,
) -> Result<Option<Vec<TxnLogPartitions>>, TxnRecordError> {
    let Some(count) = get_array_len(buf, flexible, "transaction partitions")? else {
        return Ok(None);
    };
    check_count(
        buf,
        count,
        if flexible { 3 } else { 6 },
        "transaction partitions",
    )?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let topic = get_string(buf, flexible, "topic")?;
        let n = get_array_len(buf, flexible, "partition ids")?
            .ok_or(TxnRecordError::Invalid("partition ids"))?;
        check_count(buf, n, 4, "partition ids")?;
        let mut partition_ids = Vec::with_capacity(n);
        for _ in 0..n {
            partition_ids.push(get_i32(buf, "partition id")?);
        }
        if flexible {
            skip_tagged_fields(buf)?;
        }
        out.push(TxnLogPartitions {
            topic,
            partition_ids,
        });
    }
    Ok(Some(out))
}

fn put_string(out: &mut BytesMut, s: &str, flexible: bool) {
    let len = s.len().min(i16::MAX as usize);
    if flexible {
        put_uvarint(out, len as u32 + 1);
    } else {
        out.put_i16(len as i16);
    }
    out.put_slice(&s.as_bytes()[..len]);
}

fn put_array_len(out: &mut BytesMut, len: Option<usize>, flexible: bool) {
    match (len, flexible) {
        (None, true) => put_uvarint(out, 0),
        (None, false) => out.put_i32(-1),
        (Some(n), true) => put_uvarint(out, n as u32 + 1),
        (Some(n), false) => out.put_i32(n as i32),
    }
}

fn put_uvarint(out: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// A non-null string (int16 length, or compact length + 1 when flexible).
fn get_string(
    buf: &mut &[u8],
    flexible: bool,
    what: &'static str,
) -> Result<String, TxnRecordError> {
    let len: i64 = if flexible {
        i64::from(get_uvarint(buf, what)?) - 1
    } else {
        i64::from(get_i16(buf, what)?)
    };
    if len < 0 {
        return Err(TxnRecordError::Invalid(what));
    }
    let len = len as usize;
    need(buf, len, what)?;
    let s = std::str::from_utf8(&buf[..len])
        .map_err(|_| TxnRecordError::Invalid(what))?
        .to_string();
    buf.advance(len);
    Ok(s)
}

/// An array length: `None` for null (-1 classic, 0 compact).
fn get_array_len(
    buf: &mut &[u8],
    flexible: bool,
    what: &'static str,
) -> Result<Option<usize>, TxnRecordError> {
    let len: i64 = if flexible {
        i64::from(get_uvarint(buf, what)?) - 1
    } else {
        i64::from(get_i32(buf, what)?)
    };
    match len {
        -1 => Ok(None),
        n if n < 0 => Err(TxnRecordError::Invalid(what)),
        n => Ok(Some(n as usize)),
    }
}

#[cfg(test)]
mod tests;
