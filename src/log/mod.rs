//! Partition logs on disk: Kafka-compatible segment files (`.log`, `.index`, `.timeindex`,
//! `.txnindex`), offset assignment and validation of raw v2 record batches, idempotent and
//! transactional producer state, recovery after a crash, retention, and the checkpoint files of a
//! log directory.
//!
//! The storage layer works on raw record-batch bytes only; it never sees protocol types.
//!
//! Layout: `{log_dir}/{topic}-{partition}/{base_offset:020}.log|.index|.timeindex|.txnindex` plus
//! producer state snapshots `{offset:020}.snapshot` (and, only while the cleaner swaps segments,
//! `.cleaned`/`.swap` files and a `.swapend` sidecar) and the `leader-epoch-checkpoint` (see
//! `epoch_cache`); in `{log_dir}`:
//! `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`, `cleaner-offset-checkpoint` and
//! the `.kafka_cleanshutdown` marker.
//!
//! Offsets inside a compacted log have gaps, within and between batches (a cleaned batch keeps its
//! baseOffset and lastOffset but may hold fewer records than lastOffsetDelta+1, or none): reads,
//! index lookups and recovery never assume contiguity; only produce validation checks
//! lastOffsetDelta+1 == recordsCount.
//!
//! Compaction: see `cleaner` (the `cleaner-offset-checkpoint` file sits in `{log_dir}` too).
//!
//! Replication, storage side: the leader epoch cache (`epoch_cache`, Kafka's LeaderEpochFileCache
//! and `leader-epoch-checkpoint`) is fed by every append (leader: the epoch passed to `append`;
//! follower: each batch's partitionLeaderEpoch in `append_as_follower`), cut from the end by
//! `truncate_to`, from the start by retention, cleared by `truncate_fully_and_start_at`, and answers
//! `leader_epoch_end_offset` (OffsetForLeaderEpoch). Truncation rebuilds producer state from the
//! newest snapshot at or below the new log end, so truncated batches are forgotten.
//!
//! The log start offset moves with retention, and beyond it with
//! `PartitionLog::increment_log_start_offset` (DeleteRecords on a leader, a follower taking its
//! leader's start): the start may fall inside a segment or a batch, reads below it are
//! `OffsetOutOfRange`, and once the caller made it durable
//! (`LogManager::checkpoint_log_start_offsets`) the segments wholly below it are deleted
//! (retention deletes any left after a crash). `volume` measures the directory's volume.
//!
//! Leader appends store each batch as received (base offset and partition leader epoch patched in)
//! unless the topic needs its records: `validator` checks keys of compacted topics and timestamp
//! bounds, and re-encodes batches for a topic's `compression.type` (codecs in `codec`).
//!
//! Transactions (Kafka's KIP-98 storage side): transactional batches start a transaction of their
//! producer (`producer_state`), COMMIT/ABORT control batches (`batch::end_txn_marker_batch`,
//! written by `PartitionLog::append_marker` on a leader, stored verbatim on followers) complete
//! it. `PartitionLog::first_unstable_offset` is the first offset of the oldest transaction still
//! ongoing or whose marker the high watermark has not passed (the replica's last stable offset is
//! its minimum with the high watermark). Each ABORT enters the `{base:020}.txnindex` file of the
//! marker's segment (`txn_index`, Kafka's format), which read_committed fetches consult through
//! `PartitionLog::collect_aborted_transactions`; it is cut by truncation, deleted with its
//! segment, rewritten by the cleaner and rebuilt by recovery from the markers in the log. The
//! cleaner removes the data of aborted transactions and, once no data of their transaction is
//! left and their delete horizon has passed, markers (Kafka's transaction-aware cleaning, see
//! `cleaner`).
//!
//! Transaction verification (KIP-890 part 1): a client's transactional batch that would start a
//! transaction is appended only with the producer's current [`VerificationGuard`]
//! (`PartitionLog::verification_guard`, `PartitionLog::append_from_verified`), which the Produce
//! path obtains before asking the transaction coordinator whether the partition is part of the
//! transaction. The guard is cleared when the transaction starts and by the producer's next
//! marker, so a late batch of an aborted transaction cannot open a new one.
//!
//! Not implemented yet: delayed file deletion
//! (`file_delete_delay_ms` is ignored: files are deleted right away), decoding compressed batches
//! (see `PartitionLog::offset_for_timestamp`).

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod codec;
pub mod config;
pub mod dir_failure;
pub mod epoch_cache;
pub mod error;
mod index;
pub mod maintenance;
pub mod manager;
pub mod partition;
pub mod partition_metadata;
mod producer_state;
mod read_pool;
pub mod records;
mod segment;
pub mod txn_index;
mod validator;
pub mod volume;

#[cfg(test)]
mod log_start_tests;
#[cfg(test)]
mod replication_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;

use std::sync::Arc;

pub use batch::{whole_batches, BatchHeader};
pub use cleaner::{CleanerConfig, CleanerStats};
pub use codec::{Codec, CompressionLevels, CompressionType};
pub use config::{CleanupPolicy, LogConfig, TimestampType};
pub use epoch_cache::{EpochEntry, LeaderEpochCache, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};
pub use error::{
    AppendError, FollowerAppendError, LogError, LogStartError, ReadError, RecordError,
    RejectionKind,
};
pub use manager::LogManager;
pub use partition::{
    AppendInfo, AppendOrigin, FetchData, PartitionLog, RecoveryStats, TimestampOffset,
};
pub use producer_state::{ActiveProducer, VerificationGuard};
pub use txn_index::AbortedTxn;
pub use volume::VolumeSpace;

/// A topic partition; its directory is `{topic}-{partition}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: Arc::from(topic),
            partition,
        }
    }

    /// Directory name `{topic}-{partition}`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a partition directory name; `None` for anything else (including `-delete`,
    /// `-future` and `-stray` directories and invalid topic names).
    pub fn parse_dir_name(name: &str) -> Option<TopicPartition> {
        let (topic, p) = name.rsplit_once('-')?;
        let partition: i32 = p.parse().ok()?;
        if p.starts_with('+') || (p.len() > 1 && p.starts_with('0')) {
            return None;
        }
        let tp = TopicPartition::new(topic, partition);
        tp.validate().ok()?;
        Some(tp)
    }

    /// Kafka's topic name rules ([`validate_topic_name`]) and a non-negative partition.
    pub fn validate(&self) -> Result<(), LogError> {
        validate_topic_name(&self.topic).map_err(LogError::InvalidName)?;
        if self.partition < 0 {
            return Err(LogError::InvalidName(format!(
                "invalid partition {}",
                self.partition
            )));
        }
        Ok(())
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The longest legal topic name.
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// Checks a topic name the way Kafka does: 1..=249 chars of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be {name:?}"));
    }
    if name.len() > MAX_TOPIC_NAME_LENGTH {
        return Err(format!(
            "topic name is longer than {MAX_TOPIC_NAME_LENGTH} characters"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        return Err(format!(
            "topic name {name:?} contains illegal character {bad:?}"
        ));
    }
    Ok(())
}
