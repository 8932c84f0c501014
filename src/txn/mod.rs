//! The transaction coordinator (KIP-98, with KIP-360, KIP-447, KIP-664 and KIP-890 part 1),
//! beside the group coordinator in [`crate::group`].
//!
//! What it owns: for every transactional id whose `__transaction_state` partition this broker
//! leads ([`partitioner::partition_for`], Kafka's hash), the id's producer id and epoch, its
//! transaction timeout, the state of its transaction and the partitions in it
//! ([`state::TransactionMetadata`]). It answers InitProducerId (with a transactional id),
//! AddPartitionsToTxn (including the verify-only form partition leaders use before a
//! transactional append, KIP-890 part 1), AddOffsetsToTxn, EndTxn, and later
//! DescribeTransactions and ListTransactions.
//!
//! How the pieces fit:
//! - [`records`]: the `__transaction_state` key and value formats, byte for byte as Kafka
//!   writes them. The topic is compacted; a tombstone removes an expired id. Loading a
//!   partition replays its records into metadata ([`state::TransactionMetadata::from_log`]).
//! - [`state`]: the state machine. Every request is decided by a method that does no I/O and
//!   returns either an answer or a transition ([`state::TxnTransit`]) to write to
//!   `__transaction_state` (acks=all); the metadata takes the transition only once the write is
//!   replicated, and refuses concurrent requests while it is pending.
//! - Ending a transaction writes PrepareCommit/PrepareAbort, answers the producer, then sends
//!   WriteTxnMarkers to the leader of every partition in the transaction (including a
//!   `__consumer_offsets` partition for offsets sent in it); when all have written their marker,
//!   CompleteCommit/CompleteAbort is written. Open transactions past their timeout are aborted
//!   with an epoch bump that fences their producer; idle ids expire after
//!   `transactional.id.expiration.ms` (settings in [`crate::config::TransactionSettings`]).
//!
//! - [`coordinator`]: the runtime: the `__transaction_state` topic, the ids of the partitions
//!   this broker leads (loaded on leadership), writes answered once on the ISR; `operations`
//!   holds the requests, `completion` the markers and periodic jobs, [`markers`] what the
//!   broker layer provides to write markers wherever partition leaders are.
//!
//! Transactions v2 (KIP-890 part 2) is left out; [`state`] keeps its seams.

mod completion;
pub mod coordinator;
pub mod markers;
mod operations;
pub mod partitioner;
pub mod records;
pub mod state;

pub use coordinator::TransactionCoordinator;
pub use markers::{MarkerOutcome, TxnMarker, TxnMarkerSender};
pub use operations::TxnListing;
pub use partitioner::partition_for;
pub use records::{
    TxnLogKey, TxnLogPartitions, TxnLogValue, TxnRecordError, TRANSACTION_STATE_TOPIC,
};
pub use state::{
    is_epoch_exhausted, validate_transaction_timeout, AddPartitionsAction, EndTxnAction,
    InitProducerIdAction, ProducerIdAndEpoch, TransactionMetadata, TransactionState, TxnError,
    TxnResult, TxnTransit,
};
