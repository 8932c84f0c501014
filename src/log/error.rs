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
