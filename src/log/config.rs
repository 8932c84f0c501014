//! Per-partition log configuration (Kafka topic-level settings that matter to storage).

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
#[derive(Clone, Debug)]
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
        }
    }
}
