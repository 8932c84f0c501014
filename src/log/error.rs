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
    /// A non-transactional write from a producer whose transaction is ongoing (Kafka's
    /// `InvalidTxnStateException`).
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    /// A transaction marker from an older coordinator epoch than the producer's last marker.
    #[error("transaction coordinator fenced: {0}")]
    TransactionCoordinatorFenced(String),
    /// Records of a batch failed validation (Kafka's `RecordValidationException`): the answer
    /// names each of them (KIP-467). Displays as Kafka's message.
    #[error("{}", rejection_message(.kind, .errors))]
    RejectedRecords {
        kind: RejectionKind,
        errors: Vec<RecordError>,
    },
    /// Re-encoding a batch for the topic's `compression.type` failed.
    #[error("converting the batch failed: {0}")]
    Conversion(String),
    #[error("storage error: {0}")]
    Storage(#[from] io::Error),
}

/// One record a produce batch was rejected for (KIP-467): its index within the batch and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

/// The Kafka error of a batch with rejected records: INVALID_TIMESTAMP when any record has a bad
/// timestamp, else INVALID_RECORD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionKind {
    InvalidRecord,
    InvalidTimestamp,
}

/// Kafka's message for a batch with rejected records (`LogValidator.processRecordErrors`).
fn rejection_message(kind: &RejectionKind, errors: &[RecordError]) -> String {
    match kind {
        RejectionKind::InvalidTimestamp => {
            "One or more records have been rejected due to invalid timestamp".to_string()
        }
        RejectionKind::InvalidRecord => {
            let shown: Vec<String> = errors
                .iter()
                .take(3)
                .map(|e| {
                    format!(
                        "RecordError(batchIndex={}, message='{}')",
                        e.batch_index, e.message
                    )
                })
                .collect();
            format!(
                "One or more records have been rejected due to {} record errors in total, and \
                 only showing the first three errors at most: [{}]",
                errors.len(),
                shown.join(", ")
            )
        }
    }
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
