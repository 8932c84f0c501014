//! The state machine of one transactional id, as Kafka's transaction coordinator runs it
//! (transactions v1, Kafka 3.x): the states and their valid predecessors, the metadata the
//! coordinator keeps, and its decisions for InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn, EndTxn, marker completion, timeout abort and transactional-id expiry.
//!
//! Every decision is a method on [`TransactionMetadata`] that does no I/O. It checks the
//! request against the metadata and either answers at once (an error, or "nothing to write")
//! or returns a [`TxnTransit`]: the metadata to persist in `__transaction_state`. Preparing a
//! transit marks it pending (`pending_state`), so a concurrent request gets
//! CONCURRENT_TRANSACTIONS until the caller reports the outcome of the write:
//! [`TransactionMetadata::complete_transition`] after it is replicated, or
//! [`TransactionMetadata::abort_transition`] when it failed. Apart from the pending marker, the
//! metadata changes before the write only where Kafka's does: fencing an ongoing transaction
//! (InitProducerId over an open transaction, or its timeout) bumps the epoch in memory at once,
//! and remembers a failed fence so that a retry does not bump it twice.
//!
//! Transactions v2 (KIP-890 part 2, an epoch bump per transaction) is not implemented; its
//! seams are the `next_producer_id` and `client_transaction_version` fields, which v1 leaves at
//! -1 and 0.

use std::collections::BTreeSet;

use super::records::{TxnLogPartitions, TxnLogValue};
use crate::log::TopicPartition;

/// No producer id (Kafka's `RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;
/// No producer epoch (Kafka's `RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// The topic an AddOffsetsToTxn adds a partition of.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The state of a transactional id, with Kafka's ids (the `TransactionStatus` of the log value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransactionState {
    /// No transaction open (after InitProducerId).
    Empty,
    /// Partitions were added; the transaction is open.
    Ongoing,
    /// EndTxn(commit) was written; markers are being sent.
    PrepareCommit,
    /// EndTxn(abort) (or a fence/timeout) was written; markers are being sent.
    PrepareAbort,
    /// All commit markers were written.
    CompleteCommit,
    /// All abort markers were written.
    CompleteAbort,
    /// The id expired and is being removed.
    Dead,
    /// A fence of the open transaction is under way (only ever a pending state).
    PrepareEpochFence,
}

use TransactionState as S;

impl TransactionState {
    pub const ALL: [TransactionState; 8] = [
        S::Empty,
        S::Ongoing,
        S::PrepareCommit,
        S::PrepareAbort,
        S::CompleteCommit,
        S::CompleteAbort,
        S::Dead,
        S::PrepareEpochFence,
    ];

    /// Kafka's id, written as `TransactionStatus`.
    pub fn id(self) -> i8 {
        match self {
            S::Empty => 0,
            S::Ongoing => 1,
            S::PrepareCommit => 2,
            S::PrepareAbort => 3,
            S::CompleteCommit => 4,
            S::CompleteAbort => 5,
            S::Dead => 6,
            S::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TransactionState> {
        S::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Kafka's name (DescribeTransactions and ListTransactions report it).
    pub fn name(self) -> &'static str {
        match self {
            S::Empty => "Empty",
            S::Ongoing => "Ongoing",
            S::PrepareCommit => "PrepareCommit",
            S::PrepareAbort => "PrepareAbort",
            S::CompleteCommit => "CompleteCommit",
            S::CompleteAbort => "CompleteAbort",
            S::Dead => "Dead",
            S::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The states this one may be entered from (Kafka's `validPreviousStates`).
    pub fn valid_previous_states(self) -> &'static [TransactionState] {
        match self {
            S::Empty => &[S::Empty, S::CompleteCommit, S::CompleteAbort],
            S::Ongoing => &[S::Ongoing, S::Empty, S::CompleteCommit, S::CompleteAbort],
            S::PrepareCommit => &[S::Ongoing],
            S::PrepareAbort => &[S::Ongoing, S::PrepareEpochFence],
            S::CompleteCommit => &[S::PrepareCommit],
            S::CompleteAbort => &[S::PrepareAbort],
            S::Dead => &[S::Empty, S::CompleteAbort, S::CompleteCommit],
            S::PrepareEpochFence => &[S::Ongoing],
        }
    }

    pub fn can_follow(self, previous: TransactionState) -> bool {
        self.valid_previous_states().contains(&previous)
    }

    /// Whether an idle id in this state may expire (`transactional.id.expiration.ms`).
    pub fn is_expiration_allowed(self) -> bool {
        matches!(self, S::Empty | S::CompleteCommit | S::CompleteAbort)
    }

    fn is_prepare(self) -> bool {
        matches!(self, S::PrepareCommit | S::PrepareAbort)
    }
}

/// Why the coordinator refuses a request, or an internal inconsistency. Each maps to one Kafka
/// error code ([`TxnError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("another operation on this transactional id is in progress")]
    ConcurrentTransactions,
    #[error("the producer epoch is stale")]
    InvalidProducerEpoch,
    #[error("a newer producer with this transactional id fenced this one")]
    ProducerFenced,
    #[error("the transaction is not in a state that allows this operation")]
    InvalidTxnState,
    #[error("the producer id is not the one this transactional id uses")]
    InvalidProducerIdMapping,
    #[error("transaction timeout {0} ms is not in 1..=transaction.max.timeout.ms")]
    InvalidTransactionTimeout(i32),
    #[error("the transaction coordinator is loading its state")]
    CoordinatorLoadInProgress,
    #[error("this broker is not the transaction coordinator of the id")]
    NotCoordinator,
    #[error("the transaction coordinator is not available")]
    CoordinatorNotAvailable,
    #[error("unknown transactional id")]
    TransactionalIdNotFound,
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    #[error("the partition is not in the ongoing transaction")]
    TransactionAbortable,
    /// Kafka's IllegalStateException: a state the coordinator should never reach.
    #[error("illegal transaction state: {0}")]
    IllegalState(String),
}

impl TxnError {
    /// The Kafka error code.
    pub fn code(&self) -> i16 {
        match self {
            TxnError::ConcurrentTransactions => 51,
            TxnError::InvalidProducerEpoch => 47,
            TxnError::ProducerFenced => 90,
            TxnError::InvalidTxnState => 48,
            TxnError::InvalidProducerIdMapping => 49,
            TxnError::InvalidTransactionTimeout(_) => 50,
            TxnError::CoordinatorLoadInProgress => 14,
            TxnError::NotCoordinator => 16,
            TxnError::CoordinatorNotAvailable => 15,
            TxnError::TransactionalIdNotFound => 105,
            TxnError::InvalidRequest(_) => 42,
            TxnError::TransactionAbortable => 120,
            TxnError::IllegalState(_) => -1,
        }
    }
}

/// Commit or abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnResult {
    Commit,
    Abort,
}

/// The producer id and epoch a KIP-360 InitProducerId says the producer had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub epoch: i16,
}

/// The metadata a transition will persist (Kafka's `TxnTransitMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnTransit {
    pub producer_id: i64,
    /// The producer id before this transition (Kafka 3.x's `lastProducerId`).
    pub previous_producer_id: i64,
    /// Transactions v2 seam: always -1 here.
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub last_producer_epoch: i16,
    pub txn_timeout_ms: i32,
    pub state: TransactionState,
    pub partitions: BTreeSet<TopicPartition>,
    pub txn_start_timestamp: i64,
    pub txn_last_update_timestamp: i64,
    /// Transactions v2 seam: always 0 here.
    pub client_transaction_version: i16,
    /// This PrepareAbort fences an open transaction (not persisted): a failed write is
    /// remembered so that the next fence does not bump the epoch again.
    pub epoch_fence: bool,
}

impl TxnTransit {
    /// A Dead transit is written as a tombstone (null value), not as a value.
    pub fn is_tombstone(&self) -> bool {
        self.state == S::Dead
    }

    /// The `__transaction_state` value; partitions are grouped by topic and null when Empty.
    pub fn to_log_value(&self) -> TxnLogValue {
        TxnLogValue {
            producer_id: self.producer_id,
            previous_producer_id: self.previous_producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            transaction_timeout_ms: self.txn_timeout_ms,
            transaction_status: self.state.id(),
            transaction_partitions: (self.state != S::Empty)
                .then(|| group_by_topic(&self.partitions)),
            transaction_last_update_timestamp_ms: self.txn_last_update_timestamp,
            transaction_start_timestamp_ms: self.txn_start_timestamp,
            client_transaction_version: self.client_transaction_version,
        }
    }
}

fn group_by_topic(partitions: &BTreeSet<TopicPartition>) -> Vec<TxnLogPartitions> {
    let mut out: Vec<TxnLogPartitions> = Vec::new();
    for tp in partitions {
        match out.last_mut() {
            Some(last) if *last.topic == *tp.topic => last.partition_ids.push(tp.partition),
            _ => out.push(TxnLogPartitions {
                topic: tp.topic.to_string(),
                partition_ids: vec![tp.partition],
            }),
        }
    }
    out
}

/// What InitProducerId does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitProducerIdAction {
    /// Write this Empty transit; once written, answer its producer id and epoch.
    Persist(TxnTransit),
    /// A transaction was open: write this PrepareAbort (epoch bumped, fencing the old
    /// producer), send the abort markers, and answer CONCURRENT_TRANSACTIONS so that the
    /// producer retries (and gets the next epoch, or a new producer id if this one ran out).
    AbortOngoing(TxnTransit),
}

/// What AddPartitionsToTxn / AddOffsetsToTxn does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddPartitionsAction {
    /// Every partition is already in the ongoing transaction: answer success, write nothing.
    AlreadyInTransaction,
    /// Write this Ongoing transit; once written, answer success.
    Persist(TxnTransit),
}

/// What EndTxn does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndTxnAction {
    /// A retry of a commit or abort that already completed: answer success, write nothing.
    AlreadyCompleted,
    /// Write this PrepareCommit/PrepareAbort transit; once written, call
    /// [`TransactionMetadata::prepare_complete`], answer success and send the markers.
    Persist(TxnTransit),
}

/// A transactional id's state in the coordinator (Kafka's `TransactionMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last InitProducerId (Kafka 3.x's `lastProducerId`); a
    /// KIP-360 retry with it and an exhausted epoch is not fenced.
    pub previous_producer_id: i64,
    /// Transactions v2 seam: always -1 here.
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, for retried InitProducerId (not persisted; -1 after
    /// a load, as in Kafka).
    pub last_producer_epoch: i16,
    pub txn_timeout_ms: i32,
    pub state: TransactionState,
    pub partitions: BTreeSet<TopicPartition>,
    /// When the first partition of the open transaction was added; -1 when none.
    pub txn_start_timestamp: i64,
    /// When the metadata last changed (drives expiry).
    pub txn_last_update_timestamp: i64,
    /// The state a prepared transit will move to, until its write is reported.
    pub pending_state: Option<TransactionState>,
    /// A fence's write failed: its epoch bump is kept, and the next fence does not bump again.
    pub has_failed_epoch_fence: bool,
    /// Transactions v2 seam: always 0 here.
    pub client_transaction_version: i16,
}

/// Checks a requested transaction timeout against `transaction.max.timeout.ms`.
pub fn validate_transaction_timeout(timeout_ms: i32, max_timeout_ms: i32) -> Result<(), TxnError> {
    if timeout_ms > 0 && timeout_ms <= max_timeout_ms {
        Ok(())
    } else {
        Err(TxnError::InvalidTransactionTimeout(timeout_ms))
    }
}

/// Whether `epoch` leaves no room for a further bump (Kafka keeps `i16::MAX` for fencing).
pub fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

fn illegal(what: impl Into<String>) -> TxnError {
    TxnError::IllegalState(what.into())
}

mod transitions;

#[cfg(test)]
mod tests;
