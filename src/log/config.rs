//! Per-partition log configuration (Kafka topic-level settings that matter to storage).

use std::collections::BTreeMap;

use super::codec::{self, CompressionLevels, CompressionType};
use crate::config::topic::{topic_def, value_in_force};
use crate::config::BrokerConfig;

/// How the broker treats record timestamps (Kafka `message.timestamp.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// Keep the producer's timestamps.
    #[default]
    CreateTime,
    /// Overwrite the batch max timestamp with the broker's wall clock at append.
    LogAppendTime,
}

/// Kafka `cleanup.policy`. `Compact` logs are compacted by the log cleaner and not subject to time
/// or size retention; `DeleteAndCompact` gets both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CleanupPolicy {
    #[default]
    Delete,
    Compact,
    DeleteAndCompact,
}

/// Storage settings of one partition log. Defaults are Kafka's.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// Roll a segment before it would grow past this many bytes.
    pub segment_bytes: u64,
    /// Roll a segment this long after its first batch's timestamp.
    pub segment_ms: i64,
    /// Time retention; -1 means unlimited.
    pub retention_ms: i64,
    /// Size retention; -1 means unlimited.
    pub retention_bytes: i64,
    /// Largest record batch accepted.
    pub max_message_bytes: usize,
    /// Bytes between two sparse offset-index entries.
    pub index_interval_bytes: usize,
    /// Maximum size of an index file; a full index rolls the segment.
    pub segment_index_bytes: usize,
    /// fsync after this many unflushed records.
    pub flush_interval_messages: i64,
    /// fsync when the last flush is this old (see `LogManager::flush_due`).
    pub flush_interval_ms: i64,
    pub timestamp_type: TimestampType,
    pub cleanup_policy: CleanupPolicy,
    /// Kafka delays file deletion by this much; Odradek deletes right away and ignores it.
    pub file_delete_delay_ms: i64,
    /// Idle producers are forgotten after this long.
    pub producer_id_expiration_ms: i64,
    /// Kafka `min.compaction.lag.ms`: a record stays uncompacted at least this long (segment
    /// granularity: a segment whose largest timestamp is younger is not cleaned).
    pub min_compaction_lag_ms: i64,
    /// Kafka `delete.retention.ms`: how long tombstones survive after their batch was first cleaned.
    pub delete_retention_ms: i64,
    /// Kafka `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// Kafka `max.compaction.lag.ms`: a log whose oldest dirty segment is older than this is cleaned
    /// whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// Kafka `compression.type`: the codec leader appends are stored with.
    pub compression: CompressionType,
    /// Kafka `compression.{gzip,lz4,zstd}.level` (KIP-390): levels of the broker's own compression.
    pub compression_levels: CompressionLevels,
    /// Kafka `message.timestamp.before.max.ms` (KIP-937): how far in the past a CreateTime record
    /// timestamp may be (i64::MAX: unbounded).
    pub timestamp_before_max_ms: i64,
    /// Kafka `message.timestamp.after.max.ms`: how far in the future it may be.
    pub timestamp_after_max_ms: i64,
}

impl CleanupPolicy {
    pub fn compact(self) -> bool {
        matches!(
            self,
            CleanupPolicy::Compact | CleanupPolicy::DeleteAndCompact
        )
    }

    pub fn delete(self) -> bool {
        matches!(
            self,
            CleanupPolicy::Delete | CleanupPolicy::DeleteAndCompact
        )
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            flush_interval_messages: i64::MAX,
            flush_interval_ms: i64::MAX,
            timestamp_type: TimestampType::CreateTime,
            cleanup_policy: CleanupPolicy::Delete,
            file_delete_delay_ms: 60_000,
            producer_id_expiration_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            delete_retention_ms: 86_400_000,
            min_cleanable_dirty_ratio: 0.5,
            max_compaction_lag_ms: i64::MAX,
            compression: CompressionType::Producer,
            compression_levels: CompressionLevels::default(),
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
        }
    }
}

impl LogConfig {
    /// The storage settings of a topic: its overrides over the broker's defaults.
    pub fn for_topic(overrides: &BTreeMap<String, String>, broker: &BrokerConfig) -> LogConfig {
        let get = |key: &str| -> String {
            topic_def(key)
                .and_then(|d| value_in_force(d, overrides, broker))
                .unwrap_or_default()
        };
        let long = |key: &str| -> i64 { get(key).trim().parse().unwrap_or(i64::MAX) };
        let int = |key: &str, default: i32| -> i32 { get(key).trim().parse().unwrap_or(default) };
        let difference = long("message.timestamp.difference.max.ms");
        let or_difference = |bound: i64| if bound == i64::MAX { difference } else { bound };
        let policy = get("cleanup.policy");
        let cleanup_policy = match (policy.contains("delete"), policy.contains("compact")) {
            (true, true) => CleanupPolicy::DeleteAndCompact,
            (false, true) => CleanupPolicy::Compact,
            _ => CleanupPolicy::Delete,
        };
        LogConfig {
            segment_bytes: long("segment.bytes").max(14) as u64,
            segment_ms: long("segment.ms"),
            retention_ms: long("retention.ms"),
            retention_bytes: long("retention.bytes"),
            max_message_bytes: long("max.message.bytes").max(0) as usize,
            index_interval_bytes: long("index.interval.bytes").max(0) as usize,
            segment_index_bytes: long("segment.index.bytes").max(4) as usize,
            flush_interval_messages: long("flush.messages"),
            flush_interval_ms: long("flush.ms"),
            timestamp_type: if get("message.timestamp.type") == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            cleanup_policy,
            file_delete_delay_ms: long("file.delete.delay.ms"),
            producer_id_expiration_ms: broker.producer_id_expiration_ms,
            // Compaction settings (min/max compaction lag, delete.retention.ms, dirty ratio): Kafka
            // defaults until wired.
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            delete_retention_ms: long("delete.retention.ms"),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio")
                .trim()
                .parse()
                .unwrap_or(0.5),
            max_compaction_lag_ms: long("max.compaction.lag.ms"),
            compression: CompressionType::parse(get("compression.type").trim()).unwrap_or_default(),
            compression_levels: CompressionLevels {
                gzip: int("compression.gzip.level", codec::GZIP_DEFAULT_LEVEL),
                lz4: int("compression.lz4.level", codec::LZ4_DEFAULT_LEVEL),
                zstd: int("compression.zstd.level", codec::ZSTD_DEFAULT_LEVEL),
            },
            // Kafka 3.x: the deprecated difference bound applies while a bound is left at its default.
            timestamp_before_max_ms: or_difference(long("message.timestamp.before.max.ms")),
            timestamp_after_max_ms: or_difference(long("message.timestamp.after.max.ms")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::properties::parse;
    use crate::config::QUICKSTART_PROPERTIES;

    fn broker(extra: &[(&str, &str)]) -> BrokerConfig {
        let mut p = parse(QUICKSTART_PROPERTIES);
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        BrokerConfig::from_properties(p).unwrap().0
    }

    #[test]
    fn topic_override_beats_broker_default() {
        let o = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        assert_eq!(LogConfig::for_topic(&o, &broker(&[])).retention_ms, 1000);
    }

    #[test]
    fn broker_ms_beats_hours() {
        let b = broker(&[("log.retention.ms", "5000"), ("log.segment.bytes", "2048")]);
        let c = LogConfig::for_topic(&BTreeMap::new(), &b);
        assert_eq!(c.retention_ms, 5000);
        assert_eq!(c.segment_bytes, 2048);
        assert_eq!(c.max_message_bytes, 1048588);
        assert_eq!(c.timestamp_type, TimestampType::CreateTime);
    }

    #[test]
    fn compression_and_timestamp_bounds_resolve() {
        use crate::log::codec::Codec;
        let c = LogConfig::for_topic(&BTreeMap::new(), &broker(&[]));
        assert_eq!(c.compression, CompressionType::Producer);
        assert_eq!(c.compression_levels, CompressionLevels::default());
        assert_eq!(
            (c.timestamp_before_max_ms, c.timestamp_after_max_ms),
            (i64::MAX, i64::MAX)
        );
        let b = broker(&[
            ("compression.type", "zstd"),
            ("compression.zstd.level", "-5"),
            ("log.message.timestamp.difference.max.ms", "60000"),
            ("log.message.timestamp.after.max.ms", "1000"),
        ]);
        let c = LogConfig::for_topic(&BTreeMap::new(), &b);
        assert_eq!(c.compression, CompressionType::Codec(Codec::Zstd));
        assert_eq!(c.compression_levels.zstd, -5);
        // the deprecated difference bound fills in a bound left at its default
        assert_eq!(
            (c.timestamp_before_max_ms, c.timestamp_after_max_ms),
            (60_000, 1000)
        );
        // __consumer_offsets is created with compression.type=producer: it wins over the broker's
        let o = BTreeMap::from([
            ("compression.type".to_string(), "producer".to_string()),
            ("compression.gzip.level".to_string(), "9".to_string()),
        ]);
        let c = LogConfig::for_topic(&o, &b);
        assert_eq!(c.compression, CompressionType::Producer);
        assert_eq!(c.compression_levels.gzip, 9);
    }
}
