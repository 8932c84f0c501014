//! Group coordinator: Kafka's classic consumer-group protocol and committed offsets.
//!
//! [`GroupCoordinator`] is the front door: one operation per group request, taking plain values
//! and returning results (Kafka error codes where a client can act on them); handlers decode,
//! call and encode. Behind it:
//! - [`state`]: one group's membership state machine (no I/O);
//! - [`groups`]: the groups of the loaded `__consumer_offsets` partitions, in memory;
//! - [`records`]: the records of `__consumer_offsets` in Kafka's own formats;
//! - `txn_offsets`: offsets committed inside transactions (TxnOffsetCommit), pending per
//!   producer until the transaction's COMMIT or ABORT marker reaches the offsets partition.
//!
//! The coordinator of a group is the leader of the group's partition of `__consumer_offsets`;
//! it rebuilds its groups from the partition when it starts leading it and appends every change
//! to it. Each group has its own lock; one group never blocks another.

pub mod coordinator;
pub mod groups;
mod membership;
mod offsets;
pub mod records;
pub mod state;
mod txn_offsets;

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

pub use coordinator::{GroupCoordinator, Replication};
pub use membership::{GroupDescription, GroupListing, MemberDescription, MemberLeave};
pub use offsets::{CommittedOffsets, OffsetCommit, OffsetToCommit};
pub use state::{Group, GroupState, JoinRequest, JoinResult, Reply, SyncRequest, SyncResult};
pub use txn_offsets::{PendingOffset, TxnOffsetCommit};

use records::OffsetValue;

/// The internal topic holding group metadata and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A record of `__consumer_offsets`: encoded key and value (`None` for a tombstone).
pub type KeyValue = (Bytes, Option<Bytes>);

/// A group and its committed offsets, guarded together.
pub struct GroupEntry {
    pub group: Group,
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
    /// Where in `__consumer_offsets` each committed offset was written (the batch's base offset;
    /// missing counts as older than any record): a transaction's offset committed later only
    /// replaces an offset written before it (Kafka's `CommitRecordMetadataAndOffset.olderThan`).
    pub committed_at: HashMap<(String, i32), i64>,
    /// Transactional offsets written but not yet committed or aborted, per producer id.
    pub pending_txn: BTreeMap<i64, BTreeMap<(String, i32), PendingOffset>>,
}
