//! Offsets committed inside transactions (KIP-98, with KIP-447's member checks).
//!
//! A TxnOffsetCommit writes the group's offsets to its `__consumer_offsets` partition as one
//! transactional batch of the producer. They stay *pending* for that producer: OffsetFetch does
//! not return them, and with `require_stable` answers UNSTABLE_OFFSET_COMMIT for their
//! partitions, until the transaction's COMMIT marker reaches the partition and makes them the
//! committed offsets (unless an offset written later to the log already replaced them), or its
//! ABORT marker drops them. Loading a partition replays the same rules from the transactional
//! batches and the control batches in the log (see `Groups::apply_batches`).

use kafka_protocol::error::ResponseError;
use tracing::debug;

use super::coordinator::GroupCoordinator;
use super::offsets::{commit_write_error, offset_records, OffsetToCommit};
use super::records::{build_txn_batch, OffsetValue};
use super::{Group, GroupEntry, GroupState};
use crate::log::AppendOrigin;
use crate::util::clock::now_ms;

/// A TxnOffsetCommit request, as the group coordinator needs it.
#[derive(Clone, Debug)]
pub struct TxnOffsetCommit {
    pub group_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The committer's member id; empty before TxnOffsetCommit v3 (KIP-447).
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The committer's generation; -1 before TxnOffsetCommit v3.
    pub generation: i32,
    pub offsets: Vec<OffsetToCommit>,
}

/// A transactional offset waiting for its transaction's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingOffset {
    pub value: OffsetValue,
    /// The base offset of the batch holding its record in `__consumer_offsets`.
    pub log_offset: i64,
}

type PartitionKey = (String, i32);

impl GroupEntry {
    pub fn new(group: Group) -> GroupEntry {
        GroupEntry {
            group,
            offsets: Default::default(),
            committed_at: Default::default(),
            pending_txn: Default::default(),
        }
    }

    /// Makes `value` the committed offset of `key`, written at `log_offset`.
    pub fn set_committed(&mut self, key: PartitionKey, value: OffsetValue, log_offset: i64) {
        self.committed_at.insert(key.clone(), log_offset);
        self.offsets.insert(key, value);
    }

    /// Offsets of `producer_id`'s transaction written at `log_offset`: pending until the
    /// transaction ends (Kafka's prepareTxnOffsetCommit and onTxnOffsetCommitAppend).
    pub fn prepare_txn(
        &mut self,
        producer_id: i64,
        offsets: Vec<(PartitionKey, OffsetValue)>,
        log_offset: i64,
    ) {
        let pending = self.pending_txn.entry(producer_id).or_default();
        for (key, value) in offsets {
            pending.insert(key, PendingOffset { value, log_offset });
        }
    }

    /// A transactional offset record read while loading: a value is pending for the producer,
    /// a tombstone removes the producer's pending offset of the partition.
    pub fn load_txn_record(
        &mut self,
        producer_id: i64,
        key: PartitionKey,
        value: Option<OffsetValue>,
        log_offset: i64,
    ) {
        match value {
            Some(value) => self.prepare_txn(producer_id, vec![(key, value)], log_offset),
            None => {
                if let Some(pending) = self.pending_txn.get_mut(&producer_id) {
                    pending.remove(&key);
                    if pending.is_empty() {
                        self.pending_txn.remove(&producer_id);
                    }
                }
            }
        }
    }

    /// Forgets the pending offsets of `keys` written at `log_offset` by `producer_id`: their
    /// write did not complete (Kafka's failPendingTxnOffsetCommit).
    pub fn fail_txn(&mut self, producer_id: i64, keys: &[PartitionKey], log_offset: i64) {
        let Some(pending) = self.pending_txn.get_mut(&producer_id) else {
            return;
        };
        for key in keys {
            if pending.get(key).is_some_and(|p| p.log_offset == log_offset) {
                pending.remove(key);
            }
        }
        if pending.is_empty() {
            self.pending_txn.remove(&producer_id);
        }
    }

    /// Ends `producer_id`'s transaction in this group (Kafka's completePendingTxnOffsetCommit):
    /// on commit each pending offset becomes the committed one unless the committed offset was
    /// written after it; on abort they are dropped. Returns whether the producer had any.
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool) -> bool {
        let Some(pending) = self.pending_txn.remove(&producer_id) else {
            return false;
        };
        if commit {
            for (key, p) in pending {
                let newer_committed = self.offsets.contains_key(&key)
                    && self
                        .committed_at
                        .get(&key)
                        .is_some_and(|at| *at >= p.log_offset);
                if !newer_committed {
                    self.set_committed(key, p.value, p.log_offset);
                }
            }
        }
        true
    }

    /// Whether a transaction has an offset pending for this partition.
    pub fn has_pending_txn_for(&self, key: &PartitionKey) -> bool {
        self.pending_txn.values().any(|p| p.contains_key(key))
    }

    /// Whether `producer_id` has offsets pending in this group.
    pub fn has_pending_txn_from(&self, producer_id: i64) -> bool {
        self.pending_txn.contains_key(&producer_id)
    }

    /// Drops every transaction's pending offset of this partition (its offsets are deleted).
    pub fn remove_pending_txn(&mut self, key: &PartitionKey) {
        for pending in self.pending_txn.values_mut() {
            pending.remove(key);
        }
        self.pending_txn.retain(|_, p| !p.is_empty());
    }

    /// Whether the group has offsets, committed or pending (Kafka's hasOffsets): such a group
    /// is not removed when it is empty.
    pub fn has_offsets(&self) -> bool {
        !self.offsets.is_empty() || !self.pending_txn.is_empty()
    }
}

impl GroupCoordinator {
    /// TxnOffsetCommit: writes the offsets the committer may commit as one transactional batch
    /// of the producer and keeps them pending for it; answers once the batch is on the in-sync
    /// replicas of the offsets partition. A group that does not exist is created empty (as
    /// Kafka does). `Err` fails the whole request; otherwise each offset's own error, in order.
    pub async fn commit_transactional_offsets(
        &self,
        commit: TxnOffsetCommit,
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.check_coordinator(&commit.group_id).await?;
        let now = now_ms();
        let entry = self
            .groups
            .entry(&commit.group_id, true, now)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let producer_id = commit.producer_id;
        let (replication, written, results) = {
            let mut e = entry.lock();
            self.expire_due(&mut e, now);
            check_txn_commit(&e.group, &commit)?;
            let (accepted, results) = self.accept_offsets(commit.offsets, now, None);
            if accepted.is_empty() {
                return Ok(results);
            }
            let records = offset_records(&commit.group_id, &accepted);
            let batch = build_txn_batch(records, producer_id, commit.producer_epoch, now)
                .map_err(|_| ResponseError::UnknownServerError)?;
            let replication = self
                .append_batch(&commit.group_id, &batch, AppendOrigin::Coordinator, now)
                .map_err(commit_write_error)?;
            let at = replication.first_offset();
            let keys: Vec<PartitionKey> = accepted.iter().map(|(k, _)| k.clone()).collect();
            e.prepare_txn(producer_id, accepted, at);
            self.groups
                .add_producer_group(producer_id, &commit.group_id);
            debug!(group = %commit.group_id, producer_id, at, "transactional offsets pending");
            (replication, (keys, at), results)
        };
        if let Err(err) = replication.committed().await {
            let (keys, at) = written;
            entry.lock().fail_txn(producer_id, &keys, at);
            return Err(err);
        }
        Ok(results)
    }

    /// A COMMIT (`commit`) or ABORT marker of `producer_id` is in offsets partition
    /// `offsets_partition`: that producer's pending offsets in the partition's groups become
    /// committed or are dropped (Kafka's handleTxnCompletion). Returns how many groups had some.
    pub fn complete_transaction(
        &self,
        offsets_partition: i32,
        producer_id: i64,
        commit: bool,
    ) -> usize {
        let groups = self
            .groups
            .complete_transaction(offsets_partition, producer_id, commit);
        debug!(
            partition = offsets_partition,
            producer_id, commit, groups, "transaction completed in groups"
        );
        groups
    }
}

/// Whether a transactional commit may be applied to the group (Kafka's validateOffsetCommit for
/// TxnOffsetCommit): without member fields anyone may commit (before KIP-447 there were none);
/// with them, the member must be current (static ones not fenced) and of the current generation.
fn check_txn_commit(g: &Group, c: &TxnOffsetCommit) -> Result<(), ResponseError> {
    if g.state == GroupState::Dead {
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    if c.generation < 0 && g.state == GroupState::Empty {
        return Ok(());
    }
    if c.generation < 0 && c.member_id.is_empty() && c.group_instance_id.is_none() {
        return Ok(());
    }
    if let Some(instance) = &c.group_instance_id {
        match g.static_members.get(instance) {
            Some(known) if *known != c.member_id => return Err(ResponseError::FencedInstanceId),
            Some(_) => {}
            None => return Err(ResponseError::UnknownMemberId),
        }
    }
    if !g.members.contains_key(&c.member_id) {
        return Err(ResponseError::UnknownMemberId);
    }
    if c.generation != g.generation {
        return Err(ResponseError::IllegalGeneration);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
