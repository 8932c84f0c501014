//! Committed offsets: OffsetCommit, OffsetFetch and OffsetDelete on plain values, with the rules
//! of who may commit (members of the current generation, or anyone for a group without members).

use kafka_protocol::error::ResponseError;

use super::coordinator::GroupCoordinator;
use super::records::{OffsetValue, RecordKey};
use super::{GroupEntry, GroupState, KeyValue};
use crate::util::clock::now_ms;

/// An OffsetCommit request.
#[derive(Clone, Debug)]
pub struct OffsetCommit {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The committer's generation; negative for a simple (non-member) commit.
    pub generation: i32,
    /// How long the offsets are kept (OffsetCommit v2-v4); `None` means the broker's retention.
    pub retention_ms: Option<i64>,
    pub offsets: Vec<OffsetToCommit>,
}

/// One partition's offset in an [`OffsetCommit`].
#[derive(Clone, Debug)]
pub struct OffsetToCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// -1 when unknown (before OffsetCommit v6).
    pub leader_epoch: i32,
    pub metadata: String,
}

/// Committed offsets per topic: each asked partition with its offset (`None`: none committed)
/// and its own error (UNSTABLE_OFFSET_COMMIT when a stable offset was required and a
/// transaction has offsets pending for the partition).
pub type CommittedOffsets = Vec<(
    String,
    Vec<(i32, Option<OffsetValue>, Option<ResponseError>)>,
)>;

/// Offsets accepted for writing (partition and value) and each asked offset's own error.
pub(super) type Accepted = (
    Vec<((String, i32), OffsetValue)>,
    Vec<Option<ResponseError>>,
);

impl GroupCoordinator {
    /// OffsetCommit: stores the offsets the committer may commit and answers once they are on
    /// the in-sync replicas of the offsets partition, so they survive a coordinator failover.
    /// `Err` fails the whole request; otherwise each offset's own error, in request order.
    pub async fn commit_offsets(
        &self,
        commit: OffsetCommit,
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.check_coordinator(&commit.group_id).await?;
        let now = now_ms();
        let entry = self
            .groups
            .entry(&commit.group_id, commit.generation < 0, now)
            .ok_or(ResponseError::IllegalGeneration)?;
        let (replication, results) = {
            let mut e = entry.lock();
            self.expire_due(&mut e, now);
            check_commit(&mut e, &commit, now)?;
            let expire = commit.retention_ms.map(|ms| now.saturating_add(ms));
            let (accepted, results) = self.accept_offsets(commit.offsets, now, expire);
            let records = offset_records(&commit.group_id, &accepted);
            let replication = self
                .persist(&commit.group_id, records, now)
                .map_err(commit_write_error)?;
            let at = replication.first_offset();
            for (key, value) in accepted {
                e.set_committed(key, value, at);
            }
            (replication, results)
        };
        replication.committed().await?;
        Ok(results)
    }

    /// Which of `offsets` may be written (metadata within `offset.metadata.max.bytes`, the
    /// partition exists), as the values to store; and each offset's own error, in order.
    pub(super) fn accept_offsets(
        &self,
        offsets: Vec<OffsetToCommit>,
        now: i64,
        expire: Option<i64>,
    ) -> Accepted {
        let max_metadata = self.settings().offset_metadata_max_bytes;
        let mut accepted = Vec::new();
        let mut results = Vec::with_capacity(offsets.len());
        for o in offsets {
            let refused = if o.metadata.len() > max_metadata {
                Some(ResponseError::OffsetMetadataTooLarge)
            } else if !self.partition_exists(&o.topic, o.partition) {
                Some(ResponseError::UnknownTopicOrPartition)
            } else {
                None
            };
            results.push(refused);
            if refused.is_none() {
                let value = OffsetValue {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata,
                    commit_timestamp: now,
                    expire_timestamp: expire,
                };
                accepted.push(((o.topic, o.partition), value));
            }
        }
        (accepted, results)
    }

    /// OffsetFetch: the committed offsets of the asked partitions (`wanted`: topic and
    /// partitions; `None` asks for every committed offset of the group). An error comes with
    /// the asked partitions, none committed. With `require_stable` (OffsetFetch v7+), a
    /// partition with transactional offsets pending answers UNSTABLE_OFFSET_COMMIT instead.
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
    ) -> (Option<ResponseError>, CommittedOffsets) {
        if let Err(e) = self.check_coordinator(group_id).await {
            let topics = wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, None, None)).collect()))
                .collect();
            return (Some(e), topics);
        }
        let entry = self.groups.entry(group_id, false, now_ms());
        let guard = entry.as_ref().map(|e| e.lock());
        let entry = guard.as_deref();
        let wanted = wanted.unwrap_or_else(|| committed_partitions(entry));
        let topics = wanted
            .into_iter()
            .map(|(t, ps)| {
                let parts = ps
                    .into_iter()
                    .map(|p| {
                        let key = (t.clone(), p);
                        match entry {
                            Some(e) if require_stable && e.has_pending_txn_for(&key) => {
                                (p, None, Some(ResponseError::UnstableOffsetCommit))
                            }
                            Some(e) => (p, e.offsets.get(&key).cloned(), None),
                            None => (p, None, None),
                        }
                    })
                    .collect();
                (t, parts)
            })
            .collect();
        (None, topics)
    }

    /// OffsetDelete: removes the committed offsets of `topics` (topic, partitions) unless the
    /// group is subscribed to the topic. Returns each partition's error, in request order.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        topics: Vec<(String, Vec<i32>)>,
    ) -> Result<Vec<Vec<Option<ResponseError>>>, ResponseError> {
        self.check_coordinator(group_id).await?;
        let now = now_ms();
        let entry = self
            .groups
            .entry(group_id, false, now)
            .ok_or(ResponseError::GroupIdNotFound)?;
        let mut e = entry.lock();
        self.expire_due(&mut e, now);
        if e.group.state == GroupState::Dead {
            return Err(ResponseError::GroupIdNotFound);
        }
        let subscribed = e.group.subscribed_topics();
        if subscribed.is_none() && !e.group.members.is_empty() {
            return Err(ResponseError::NonEmptyGroup);
        }
        let subscribed = subscribed.unwrap_or_default();
        let mut tombstones = Vec::new();
        let mut results = Vec::with_capacity(topics.len());
        for (topic, partitions) in topics {
            let in_use = subscribed.contains(&topic);
            let errors = partitions
                .into_iter()
                .map(|p| {
                    if in_use {
                        return Some(ResponseError::GroupSubscribedToTopic);
                    }
                    if e.offsets.contains_key(&(topic.clone(), p)) {
                        tombstones.push((topic.clone(), p));
                    }
                    // As Kafka's removeOffsets: pending transactional offsets go too.
                    e.remove_pending_txn(&(topic.clone(), p));
                    None
                })
                .collect();
            results.push(errors);
        }
        let records = tombstones
            .iter()
            .map(|(t, p)| RecordKey::offset(group_id, t, *p).tombstone())
            .collect();
        // As Kafka, offset tombstones are not awaited (see DeleteGroups).
        self.persist(group_id, records, now)?.detach();
        for key in tombstones {
            e.offsets.remove(&key);
        }
        Ok(results)
    }
}

/// Every partition with a committed offset in the group, per topic in order.
fn committed_partitions(entry: Option<&GroupEntry>) -> Vec<(String, Vec<i32>)> {
    let mut out: Vec<(String, Vec<i32>)> = Vec::new();
    for (t, p) in entry.into_iter().flat_map(|e| e.offsets.keys()) {
        match out.last_mut() {
            Some((last, parts)) if last == t => parts.push(*p),
            _ => out.push((t.clone(), vec![*p])),
        }
    }
    out
}

/// The offset commit records of `group` for these offsets.
pub(super) fn offset_records(
    group: &str,
    offsets: &[((String, i32), OffsetValue)],
) -> Vec<KeyValue> {
    offsets
        .iter()
        .map(|((topic, partition), value)| {
            let key = RecordKey::offset(group, topic, *partition);
            (key.encode(), Some(value.encode()))
        })
        .collect()
}

/// How a failed write of offsets is answered: as Kafka, a commit too large for the offsets
/// topic is INVALID_COMMIT_OFFSET_SIZE.
pub(super) fn commit_write_error(err: ResponseError) -> ResponseError {
    match err {
        ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge => {
            ResponseError::InvalidCommitOffsetSize
        }
        other => other,
    }
}

/// Checks whether a commit from (member, generation) may be applied to the group.
fn check_commit(e: &mut GroupEntry, commit: &OffsetCommit, now: i64) -> Result<(), ResponseError> {
    let g = &mut e.group;
    if commit.generation < 0 && commit.member_id.is_empty() && g.members.is_empty() {
        // A simple (non-member) consumer committing for an empty group.
        return Ok(());
    }
    if let Some(instance) = &commit.group_instance_id {
        if g.static_members
            .get(instance)
            .is_some_and(|known| *known != commit.member_id)
        {
            return Err(ResponseError::FencedInstanceId);
        }
    }
    let Some(member) = g.members.get_mut(&commit.member_id) else {
        return Err(if g.members.is_empty() && commit.generation >= 0 {
            ResponseError::IllegalGeneration
        } else {
            ResponseError::UnknownMemberId
        });
    };
    member.session_deadline_ms = now + i64::from(member.session_timeout_ms);
    if commit.generation != g.generation {
        return Err(ResponseError::IllegalGeneration);
    }
    if g.state == GroupState::CompletingRebalance {
        return Err(ResponseError::RebalanceInProgress);
    }
    Ok(())
}
