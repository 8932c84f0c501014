//! Error types of the storage layer.

use std::io;

/// Errors of log management (open, recovery, checkpoints, flush).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("corrupt log data: {0}")]
    Corrupt(String),
    #[error("invalid name: {0}")]
    InvalidName(String),
}

/// Why a produce payload was refused. Nothing of the payload is stored on error.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("corrupt message: {0}")]
    CorruptMessage(String),
    #[error("record batch of {size} bytes exceeds the maximum of {max}")]
    MessageTooLarge { size: usize, max: usize },
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    #[error("storage error: {0}")]
    Storage(#[from] io::Error),
}

/// Why a follower append (`PartitionLog::append_as_follower`) was refused. Nothing of the payload
/// is stored on error, except after a storage error, when the batches before the failing one may
/// have been written (the log end offset says how far).
///
/// A separate type rather than a new `AppendError` variant: `AppendError` is matched exhaustively
/// by the produce path's error-code mapping, and this error never reaches a client.
#[derive(Debug, thiserror::Error)]
pub enum FollowerAppendError {
    /// The payload does not continue the log: its first batch starts below the log end offset
    /// (Kafka's UnexpectedAppendOffsetException; the fetcher must truncate or refetch).
    /// `last` is the last offset of the payload's whole batches: a follower whose log is empty
    /// at a log start inside the first batch restarts its log at that batch (Kafka's
    /// `appendRecordsToFollowerOrFutureReplica`).
    #[error("replicated batches start at offset {got}, below the log end offset {expected}")]
    OffsetMismatch { expected: i64, got: i64, last: i64 },
    #[error(transparent)]
    Append(#[from] AppendError),
}

impl From<io::Error> for FollowerAppendError {
    fn from(e: io::Error) -> Self {
        FollowerAppendError::Append(AppendError::Storage(e))
    }
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("offset {offset} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("storage error: {0}")]
    Storage(#[from] io::Error),
}

/// Why the log start offset cannot move (`PartitionLog::increment_log_start_offset`).
#[derive(Debug, thiserror::Error)]
pub enum LogStartError {
    /// Kafka never moves the log start beyond the high watermark (OFFSET_OUT_OF_RANGE).
    #[error("log start offset {offset} would be beyond the high watermark {high_watermark}")]
    BeyondHighWatermark { offset: i64, high_watermark: i64 },
    #[error(transparent)]
    Log(#[from] LogError),
}

impl From<io::Error> for LogStartError {
    fn from(e: io::Error) -> Self {
        LogStartError::Log(LogError::Io(e))
    }
}
