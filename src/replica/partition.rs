//! One hosted partition replica: its log, leader epoch, high watermark and data-arrival signal.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use crate::log::{AppendError, AppendInfo, PartitionLog, TopicPartition};

/// A request's `current_leader_epoch` that does not match this replica's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EpochMismatch {
    /// The client's epoch is older: it must refresh metadata (FENCED_LEADER_EPOCH).
    #[error("leader epoch is older than this replica's")]
    Fenced,
    /// The client's epoch is newer than this replica knows (UNKNOWN_LEADER_EPOCH).
    #[error("leader epoch is newer than this replica's")]
    Unknown,
}

/// Why a produce to this partition failed before or during the append.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("in-sync replicas {isr} below min.insync.replicas {min_isr}")]
    NotEnoughReplicas { isr: usize, min_isr: i32 },
    #[error(transparent)]
    Append(#[from] AppendError),
}

/// A partition replica hosted by this broker (standalone: always the leader).
pub struct Partition {
    pub tp: TopicPartition,
    pub log: Arc<PartitionLog>,
    pub leader_epoch: i32,
    isr_size: usize,
    min_isr: i32,
    high_watermark: AtomicI64,
    /// Carries the high watermark; fetches waiting for data subscribe to it.
    hw_signal: watch::Sender<i64>,
}

impl Partition {
    pub fn new(
        tp: TopicPartition,
        log: Arc<PartitionLog>,
        leader_epoch: i32,
        isr_size: usize,
        min_isr: i32,
    ) -> Partition {
        let hw = log.log_end_offset();
        let (hw_signal, _) = watch::channel(hw);
        Partition {
            tp,
            log,
            leader_epoch,
            isr_size,
            min_isr,
            high_watermark: AtomicI64::new(hw),
            hw_signal,
        }
    }

    /// Appends a produce payload as leader. `acks == -1` requires the ISR to meet min.insync.replicas.
    pub fn append_as_leader(
        &self,
        records: &[u8],
        acks: i16,
        now_ms: i64,
    ) -> Result<AppendInfo, ProduceError> {
        if acks == -1 && (self.isr_size as i64) < i64::from(self.min_isr) {
            return Err(ProduceError::NotEnoughReplicas {
                isr: self.isr_size,
                min_isr: self.min_isr,
            });
        }
        let info = self.log.append(records, self.leader_epoch, now_ms)?;
        // Single replica: everything appended is committed.
        self.advance_high_watermark(self.log.log_end_offset());
        Ok(info)
    }

    fn advance_high_watermark(&self, hw: i64) {
        let previous = self.high_watermark.fetch_max(hw, Ordering::AcqRel);
        if hw > previous {
            self.hw_signal.send_replace(hw);
        }
    }

    /// Checks a request's `current_leader_epoch`; -1 (not given) always passes.
    pub fn check_leader_epoch(&self, current: i32) -> Result<(), EpochMismatch> {
        match current {
            c if c < 0 || c == self.leader_epoch => Ok(()),
            c if c < self.leader_epoch => Err(EpochMismatch::Fenced),
            _ => Err(EpochMismatch::Unknown),
        }
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// A receiver that changes whenever the high watermark advances.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.hw_signal.subscribe()
    }
}
