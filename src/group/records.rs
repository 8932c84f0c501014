//! The record formats of `__consumer_offsets`, written from Kafka's group-coordinator schemas
//! (OffsetCommitKey/Value, GroupMetadataKey/Value), so that Kafka tooling reading the topic
//! understands what Odradek writes and the coordinator can reload its state from it.
//!
//! A key is an int16 record type followed by the key struct: types 0 and 1 are offset commits
//! (group, topic, partition), type 2 is group metadata (group). A value is an int16 version
//! followed by the value struct at that version; versions 4+ are flexible (compact strings and
//! tagged fields). A null value is a tombstone.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::KeyValue;
use crate::protocol::schema_reader::{
    get_i16, get_i32, get_i64, get_uvarint, need, skip_tagged_fields, ReadError,
};

/// A record in `__consumer_offsets` that this layer cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record truncated reading {0}")]
    Truncated(&'static str),
    #[error("unknown record type {0}")]
    UnknownType(i16),
    #[error("unknown {what} version {version}")]
    UnknownVersion { what: &'static str, version: i16 },
    #[error("invalid {0}")]
    Invalid(&'static str),
}

impl From<ReadError> for RecordError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Truncated(what) => RecordError::Truncated(what),
            ReadError::Invalid(what) => RecordError::Invalid(what),
        }
    }
}

/// The key of a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
}

/// A committed offset (OffsetCommitValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Only version 1 carries an explicit expiry.
    pub expire_timestamp: Option<i64>,
}

/// One member in GroupMetadataValue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: i32,
    pub session_timeout: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's membership and generation (GroupMetadataValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

const OFFSET_KEY_TYPE: i16 = 1;
const GROUP_KEY_TYPE: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const OFFSET_VALUE_VERSION_WITH_EXPIRY: i16 = 1;
const GROUP_VALUE_VERSION: i16 = 3;

impl RecordKey {
    /// The key of `group`'s committed offset of a partition.
    pub fn offset(group: &str, topic: &str, partition: i32) -> RecordKey {
        RecordKey::Offset {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
        }
    }

    /// A record that deletes this key.
    pub fn tombstone(&self) -> KeyValue {
        (self.encode(), None)
    }

    pub fn group(&self) -> &str {
        match self {
            RecordKey::Offset { group, .. } | RecordKey::Group { group } => group,
        }
    }

    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                out.put_i16(OFFSET_KEY_TYPE);
                put_string(&mut out, group);
                put_string(&mut out, topic);
                out.put_i32(*partition);
            }
            RecordKey::Group { group } => {
                out.put_i16(GROUP_KEY_TYPE);
                put_string(&mut out, group);
            }
        }
        out.freeze()
    }

    pub fn decode(mut buf: &[u8]) -> Result<RecordKey, RecordError> {
        let kind = get_i16(&mut buf, "key type")?;
        match kind {
            0 | 1 => Ok(RecordKey::Offset {
                group: get_str(&mut buf, false, "group")?,
                topic: get_str(&mut buf, false, "topic")?,
                partition: get_i32(&mut buf, "partition")?,
            }),
            2 => Ok(RecordKey::Group {
                group: get_str(&mut buf, false, "group")?,
            }),
            other => Err(RecordError::UnknownType(other)),
        }
    }
}

impl OffsetValue {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self.expire_timestamp {
            Some(expire) => {
                out.put_i16(OFFSET_VALUE_VERSION_WITH_EXPIRY);
                out.put_i64(self.offset);
                put_string(&mut out, &self.metadata);
                out.put_i64(self.commit_timestamp);
                out.put_i64(expire);
            }
            None => {
                out.put_i16(OFFSET_VALUE_VERSION);
                out.put_i64(self.offset);
                out.put_i32(self.leader_epoch);
                put_string(&mut out, &self.metadata);
                out.put_i64(self.commit_timestamp);
            }
        }
        out.freeze()
    }

    pub fn decode(mut buf: &[u8]) -> Result<OffsetValue, RecordError> {
        let version = get_i16(&mut buf, "offset value version")?;
        if !(0..=4).contains(&version) {
            return Err(RecordError::UnknownVersion {
                what: "offset value",
                version,
            });
        }
        let flexible = version >= 4;
        let offset = get_i64(&mut buf, "offset")?;
        let leader_epoch = if version >= 3 {
            get_i32(&mut buf, "leader epoch")?
        } else {
            -1
        };
        let metadata = get_str(&mut buf, flexible, "metadata")?;
        let commit_timestamp = get_i64(&mut buf, "commit timestamp")?;
        let expire_timestamp = if version == 1 {
            Some(get_i64(&mut buf, "expire timestamp")?)
        } else {
            None
        };
        if flexible {
            skip_tagged_fields(&mut buf)?;
        }
        Ok(OffsetValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
            expire_timestamp,
        })
    }
}

impl GroupValue {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(GROUP_VALUE_VERSION);
        put_string(&mut out, &self.protocol_type);
        out.put_i32(self.generation);
        put_nullable_string(&mut out, self.protocol.as_deref());
        put_nullable_string(&mut out, self.leader.as_deref());
        out.put_i64(self.current_state_timestamp);
        out.put_i32(self.members.len() as i32);
        for m in &self.members {
            put_string(&mut out, &m.member_id);
            put_nullable_string(&mut out, m.group_instance_id.as_deref());
            put_string(&mut out, &m.client_id);
            put_string(&mut out, &m.client_host);
            out.put_i32(m.rebalance_timeout);
            out.put_i32(m.session_timeout);
            put_bytes(&mut out, &m.subscription);
            put_bytes(&mut out, &m.assignment);
        }
        out.freeze()
    }

    pub fn decode(mut buf: &[u8]) -> Result<GroupValue, RecordError> {
        let version = get_i16(&mut buf, "group value version")?;
        if !(0..=4).contains(&version) {
            return Err(RecordError::UnknownVersion {
                what: "group value",
                version,
            });
        }
        let flexible = version >= 4;
        let protocol_type = get_str(&mut buf, flexible, "protocol type")?;
        let generation = get_i32(&mut buf, "generation")?;
        let protocol = get_nullable_str(&mut buf, flexible, "protocol")?;
        let leader = get_nullable_str(&mut buf, flexible, "leader")?;
        let current_state_timestamp = if version >= 2 {
            get_i64(&mut buf, "current state timestamp")?
        } else {
            -1
        };
        let count = get_array_len(&mut buf, flexible, "members")?;
        let mut members = Vec::with_capacity(count.min(buf.len()));
        for _ in 0..count {
            let member_id = get_str(&mut buf, flexible, "member id")?;
            let group_instance_id = if version >= 3 {
                get_nullable_str(&mut buf, flexible, "group instance id")?
            } else {
                None
            };
            let client_id = get_str(&mut buf, flexible, "client id")?;
            let client_host = get_str(&mut buf, flexible, "client host")?;
            let session_or_rebalance = get_i32(&mut buf, "timeout")?;
            let (rebalance_timeout, session_timeout) = if version >= 1 {
                (session_or_rebalance, get_i32(&mut buf, "session timeout")?)
            } else {
                (session_or_rebalance, session_or_rebalance)
            };
            let subscription = get_bytes(&mut buf, flexible, "subscription")?;
            let assignment = get_bytes(&mut buf, flexible, "assignment")?;
            if flexible {
                skip_tagged_fields(&mut buf)?;
            }
            members.push(MemberValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout,
                session_timeout,
                subscription,
                assignment,
            });
        }
        if flexible {
            skip_tagged_fields(&mut buf)?;
        }
        Ok(GroupValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }
}

/// An uncompressed v2 batch holding key/value records.
pub fn build_batch(records: Vec<KeyValue>, now_ms: i64) -> anyhow::Result<Bytes> {
    encode_records(records, None, now_ms)
}

/// One uncompressed v2 transactional batch of `producer_id` at `producer_epoch` holding the
/// records, as Kafka's group coordinator writes a TxnOffsetCommit: base sequence 0 (the log
/// does not check a coordinator's sequences) and the transactional attribute set.
pub fn build_txn_batch(
    records: Vec<KeyValue>,
    producer_id: i64,
    producer_epoch: i16,
    now_ms: i64,
) -> anyhow::Result<Bytes> {
    encode_records(records, Some((producer_id, producer_epoch)), now_ms)
}

fn encode_records(
    records: Vec<KeyValue>,
    producer: Option<(i64, i16)>,
    now_ms: i64,
) -> anyhow::Result<Bytes> {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Sequences that follow the offsets keep every record in one batch.
            sequence: if producer.is_some() { i as i32 } else { -1 },
            timestamp: now_ms,
            key: Some(key),
            value,
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )?;
    Ok(buf.freeze())
}

/// The outcome a transaction marker records (Kafka's `ControlRecordType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnMarker {
    Abort,
    Commit,
}

impl TxnMarker {
    /// Reads the key of a control record (int16 version, int16 type: 0 ABORT, 1 COMMIT);
    /// other control records (such as LEADER_CHANGE) are no transaction markers.
    pub fn from_control_key(key: &[u8]) -> Option<TxnMarker> {
        let mut buf = key;
        get_i16(&mut buf, "control record version").ok()?;
        match get_i16(&mut buf, "control record type").ok()? {
            0 => Some(TxnMarker::Abort),
            1 => Some(TxnMarker::Commit),
            _ => None,
        }
    }
}

/// The `__consumer_offsets` partition of a group: Java's `String.hashCode`, made non-negative
/// as Kafka's `Utils.abs` does (absolute value, `i32::MIN` → 0), modulo the partition count.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let mut hash: i32 = 0;
    for unit in group.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    let non_negative = if hash == i32::MIN { 0 } else { hash.abs() };
    non_negative % partitions.max(1)
}

fn put_string(out: &mut BytesMut, s: &str) {
    out.put_i16(s.len().min(i16::MAX as usize) as i16);
    out.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
}

fn put_nullable_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.put_i16(-1),
    }
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.put_slice(b);
}

/// Length of a string/bytes field: `None` for null.
fn get_len(
    buf: &mut &[u8],
    flexible: bool,
    wide: bool,
    what: &'static str,
) -> Result<Option<usize>, RecordError> {
    let len: i64 = if flexible {
        i64::from(get_uvarint(buf, what)?) - 1
    } else if wide {
        i64::from(get_i32(buf, what)?)
    } else {
        i64::from(get_i16(buf, what)?)
    };
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    need(buf, len, what)?;
    Ok(Some(len))
}

fn get_nullable_str(
    buf: &mut &[u8],
    flexible: bool,
    what: &'static str,
) -> Result<Option<String>, RecordError> {
    match get_len(buf, flexible, false, what)? {
        None => Ok(None),
        Some(len) => {
            let s = std::str::from_utf8(&buf[..len])
                .map_err(|_| RecordError::Invalid(what))?
                .to_string();
            buf.advance(len);
            Ok(Some(s))
        }
    }
}

fn get_str(buf: &mut &[u8], flexible: bool, what: &'static str) -> Result<String, RecordError> {
    get_nullable_str(buf, flexible, what)?.ok_or(RecordError::Invalid(what))
}

fn get_bytes(buf: &mut &[u8], flexible: bool, what: &'static str) -> Result<Bytes, RecordError> {
    let len = get_len(buf, flexible, true, what)?.unwrap_or(0);
    let out = Bytes::copy_from_slice(&buf[..len]);
    buf.advance(len);
    Ok(out)
}

fn get_array_len(
    buf: &mut &[u8],
    flexible: bool,
    what: &'static str,
) -> Result<usize, RecordError> {
    let len: i64 = if flexible {
        i64::from(get_uvarint(buf, what)?) - 1
    } else {
        i64::from(get_i32(buf, what)?)
    };
    if len < 0 {
        return Err(RecordError::Invalid(what));
    }
    Ok(len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_match_kafka_layout() {
        let key = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        let bytes = key.encode();
        assert_eq!(&bytes[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]);
        assert_eq!(RecordKey::decode(&bytes).unwrap(), key);
        let key = RecordKey::Group {
            group: "grp".into(),
        };
        assert_eq!(RecordKey::decode(&key.encode()).unwrap(), key);
        // Key type 0 (Kafka before 3.x) is an offset commit too.
        assert!(matches!(
            RecordKey::decode(&[0, 0, 0, 1, b'g', 0, 0, 0, 0, 0, 1]),
            Ok(RecordKey::Offset { .. })
        ));
        assert!(RecordKey::decode(&[0, 9]).is_err());
        assert!(RecordKey::decode(&[0, 1, 0, 10, b'g']).is_err());
    }

    #[test]
    fn offset_values_round_trip() {
        let v = OffsetValue {
            offset: 42,
            leader_epoch: 7,
            metadata: "m".into(),
            commit_timestamp: 1000,
            expire_timestamp: None,
        };
        let bytes = v.encode();
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(OffsetValue::decode(&bytes).unwrap(), v);
        let v1 = OffsetValue {
            expire_timestamp: Some(5000),
            leader_epoch: -1,
            ..v
        };
        assert_eq!(OffsetValue::decode(&v1.encode()).unwrap(), v1);
        // Version 4 (flexible): offset, epoch, compact metadata, timestamp, tagged fields.
        let mut flex = BytesMut::new();
        flex.put_i16(4);
        flex.put_i64(9);
        flex.put_i32(2);
        flex.put_u8(3);
        flex.put_slice(b"ab");
        flex.put_i64(77);
        flex.put_u8(0);
        let d = OffsetValue::decode(&flex).unwrap();
        assert_eq!(
            (
                d.offset,
                d.leader_epoch,
                d.metadata.as_str(),
                d.commit_timestamp
            ),
            (9, 2, "ab", 77)
        );
    }

    #[test]
    fn group_values_round_trip() {
        let v = GroupValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp: 123,
            members: vec![MemberValue {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout: 300000,
                session_timeout: 45000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(GroupValue::decode(&v.encode()).unwrap(), v);
        let empty = GroupValue {
            protocol: None,
            leader: None,
            members: vec![],
            ..v
        };
        assert_eq!(GroupValue::decode(&empty.encode()).unwrap(), empty);
        let huge = [
            0u8, 3, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff,
            0xff, 0xff,
        ];
        assert!(GroupValue::decode(&huge).is_err());
    }

    #[test]
    fn partition_matches_java_string_hash() {
        // "test-group".hashCode() == 627841412 in Java; 627841412 % 50 == 12.
        assert_eq!(partition_for("test-group", 50), 12);
        assert_eq!(partition_for("", 50), 0);
        // i32::MIN maps to 0; other negative hashes use their absolute value:
        // "orders-consumer-1ec948xxx".hashCode() == -150216709 → 150216709 % 50 == 9.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("orders-consumer-1ec948xxx", 50), 9);
    }
}
