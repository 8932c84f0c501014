//! What the coordinator needs from the rest of the broker to end a transaction: writing its
//! COMMIT or ABORT marker into each partition of the transaction (Kafka's
//! TransactionMarkerChannelManager). The broker layer implements [`TxnMarkerSender`]: in the
//! partition's leader on this broker directly, on another broker with WriteTxnMarkers over the
//! inter-broker link.

use async_trait::async_trait;

use super::TxnResult;
use crate::log::TopicPartition;

/// One transaction's marker, as every partition of the transaction gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub result: TxnResult,
    /// The leader epoch of the coordinator's `__transaction_state` partition: a partition
    /// refuses markers from an older coordinator (TRANSACTION_COORDINATOR_FENCED).
    pub coordinator_epoch: i32,
}

/// What became of one partition's marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerOutcome {
    /// The marker is on the partition's in-sync replicas.
    Written,
    /// Not now (no leader, leader moved, too few replicas, timeout): send it again later.
    Retry(String),
    /// The partition is gone (its topic was deleted): it leaves the transaction unmarked.
    Gone,
    /// The partition refused it for good (a newer producer epoch or a newer coordinator has
    /// taken over): this coordinator stops completing the transaction.
    Fenced(String),
}

/// Writes transaction markers into partitions, wherever their leaders are.
#[async_trait]
pub trait TxnMarkerSender: Send + Sync {
    /// Writes `marker` into each partition and reports each outcome (in any order).
    async fn write_markers(
        &self,
        marker: TxnMarker,
        partitions: Vec<TopicPartition>,
    ) -> Vec<(TopicPartition, MarkerOutcome)>;
}
