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

/// Committed offsets per topic: each asked partition with its offset (`None`: none committed).
pub type CommittedOffsets = Vec<(String, Vec<(i32, Option<OffsetValue>)>)>;

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
            let max_metadata = self.settings().offset_metadata_max_bytes;
            let mut records: Vec<KeyValue> = Vec::new();
            let mut accepted: Vec<((String, i32), OffsetValue)> = Vec::new();
            let mut results = Vec::with_capacity(commit.offsets.len());
            for o in commit.offsets {
                let known = self.partition_exists(&o.topic, o.partition);
                let refused = if o.metadata.len() > max_metadata {
                    Some(ResponseError::OffsetMetadataTooLarge)
                } else if !known {
                    Some(ResponseError::UnknownTopicOrPartition)
                } else {
                    None
                };
                results.push(refused);
                if refused.is_some() {
                    continue;
                }
                let value = OffsetValue {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata,
                    commit_timestamp: now,
                    expire_timestamp: expire,
                };
                let key = RecordKey::offset(&commit.group_id, &o.topic, o.partition);
                records.push((key.encode(), Some(value.encode())));
                accepted.push(((o.topic, o.partition), value));
            }
            let replication =
                self.persist(&commit.group_id, records, now)
                    .map_err(|err| match err {
                        // As Kafka: a commit too large for the offsets topic.
                        ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge => {
                            ResponseError::InvalidCommitOffsetSize
                        }
                        other => other,
                    })?;
            for (key, value) in accepted {
                e.offsets.insert(key, value);
            }
            (replication, results)
        };
        replication.committed().await?;
        Ok(results)
    }

    /// OffsetFetch: the committed offsets of the asked partitions (`wanted`: topic and
    /// partitions; `None` asks for every committed offset of the group). An error comes with
    /// the asked partitions, none committed.
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<Vec<(String, Vec<i32>)>>,
    ) -> (Option<ResponseError>, CommittedOffsets) {
        if let Err(e) = self.check_coordinator(group_id).await {
            let topics = wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, None)).collect()))
                .collect();
            return (Some(e), topics);
        }
        let entry = self.groups.entry(group_id, false, now_ms());
        let guard = entry.as_ref().map(|e| e.lock());
        let offsets = guard.as_ref().map(|e| &e.offsets);
        let topics = match wanted {
            Some(list) => list
                .into_iter()
                .map(|(t, ps)| {
                    let parts = ps
                        .into_iter()
                        .map(|p| (p, offsets.and_then(|o| o.get(&(t.clone(), p)).cloned())))
                        .collect();
                    (t, parts)
                })
                .collect(),
            None => {
                let mut out: CommittedOffsets = Vec::new();
                for ((t, p), v) in offsets.into_iter().flatten() {
                    match out.last_mut() {
                        Some((last, parts)) if last == t => parts.push((*p, Some(v.clone()))),
                        _ => out.push((t.clone(), vec![(*p, Some(v.clone()))])),
                    }
                }
                out
            }
        };
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
