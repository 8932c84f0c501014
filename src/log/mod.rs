//! TEMPORARY STUB of the storage contract (replaced by the real src/log from wip-log).
#![allow(unused)]
use std::path::{Path, PathBuf};
use std::sync::Arc;
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CleanupPolicy {
    Delete,
    Compact,
    DeleteAndCompact,
}
#[derive(Clone, Debug)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub max_message_bytes: usize,
    pub index_interval_bytes: usize,
    pub segment_index_bytes: usize,
    pub flush_interval_messages: i64,
    pub flush_interval_ms: i64,
    pub timestamp_type: TimestampType,
    pub cleanup_policy: CleanupPolicy,
    pub file_delete_delay_ms: i64,
    pub producer_id_expiration_ms: i64,
}
impl Default for LogConfig {
    fn default() -> Self {
        todo!()
    }
}
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("io {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt {0}")]
    Corrupt(String),
}
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("c {0}")]
    CorruptMessage(String),
    #[error("big")]
    MessageTooLarge { size: usize, max: usize },
    #[error("r {0}")]
    InvalidRecord(String),
    #[error("o {0}")]
    OutOfOrderSequence(String),
    #[error("e {0}")]
    InvalidProducerEpoch(String),
    #[error("s {0}")]
    Storage(#[from] std::io::Error),
}
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("oor")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("s {0}")]
    Storage(std::io::Error),
}
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    pub duplicate: bool,
    pub records_count: u32,
}
pub struct FetchData {
    pub records: bytes::Bytes,
}
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}
pub struct PartitionLog;
impl PartitionLog {
    pub fn append(
        &self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        todo!()
    }
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        max_offset_exclusive: Option<i64>,
    ) -> Result<FetchData, ReadError> {
        todo!()
    }
    pub fn log_start_offset(&self) -> i64 {
        todo!()
    }
    pub fn log_end_offset(&self) -> i64 {
        todo!()
    }
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<TimestampOffset>, LogError> {
        todo!()
    }
    pub fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>, LogError> {
        todo!()
    }
    pub fn flush(&self) -> Result<(), LogError> {
        todo!()
    }
    pub fn size_bytes(&self) -> u64 {
        todo!()
    }
    pub fn config(&self) -> LogConfig {
        todo!()
    }
    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        todo!()
    }
}
pub struct LogManager;
impl LogManager {
    pub fn open(dir: impl Into<PathBuf>) -> Result<Arc<LogManager>, LogError> {
        todo!()
    }
    pub fn open_partition(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
    ) -> Result<Arc<PartitionLog>, LogError> {
        todo!()
    }
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<PartitionLog>> {
        todo!()
    }
    pub fn partitions_on_disk(&self) -> Result<Vec<TopicPartition>, LogError> {
        todo!()
    }
    pub fn open_partitions(&self) -> Vec<(TopicPartition, Arc<PartitionLog>)> {
        todo!()
    }
    pub fn delete_partition(&self, tp: &TopicPartition) -> Result<(), LogError> {
        todo!()
    }
    pub fn update_config(&self, tp: &TopicPartition, config: LogConfig) {
        todo!()
    }
    pub fn run_retention(&self, now_ms: i64) -> usize {
        todo!()
    }
    pub fn flush_due(&self, now_ms: i64) {
        todo!()
    }
    pub fn checkpoint(&self) -> Result<(), LogError> {
        todo!()
    }
    pub fn shutdown(&self) -> Result<(), LogError> {
        todo!()
    }
    pub fn dir(&self) -> &Path {
        todo!()
    }
}
