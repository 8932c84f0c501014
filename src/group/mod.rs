//! Group coordinator: Kafka's classic consumer-group protocol and committed offsets.
//!
//! [`GroupCoordinator`] is the front door: one operation per group request, taking plain values
//! and returning results (Kafka error codes where a client can act on them); handlers decode,
//! call and encode. Behind it:
//! - [`state`]: one group's membership state machine (no I/O);
//! - [`groups`]: the groups of the loaded `__consumer_offsets` partitions, in memory;
//! - [`records`]: the records of `__consumer_offsets` in Kafka's own formats.
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

use std::collections::BTreeMap;

use bytes::Bytes;

pub use coordinator::{GroupCoordinator, Replication};
pub use membership::{GroupDescription, GroupListing, MemberDescription, MemberLeave};
pub use offsets::{CommittedOffsets, OffsetCommit, OffsetToCommit};
pub use state::{Group, GroupState, JoinRequest, JoinResult, Reply, SyncRequest, SyncResult};

use records::OffsetValue;

/// The internal topic holding group metadata and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A record of `__consumer_offsets`: encoded key and value (`None` for a tombstone).
pub type KeyValue = (Bytes, Option<Bytes>);

/// A group and its committed offsets, guarded together.
pub struct GroupEntry {
    pub group: Group,
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
}
