//! Committed offsets: OffsetCommit, OffsetFetch and OffsetDelete.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;

use super::str_bytes;
use crate::broker::Broker;
use crate::group::records::{OffsetValue, RecordKey};
use crate::group::{GroupEntry, GroupState};
use crate::maintenance::now_ms;

/// Checks whether a commit from (member, generation) may be applied to the group.
fn check_commit(
    e: &mut GroupEntry,
    member_id: &str,
    instance: Option<&str>,
    generation: i32,
    now: i64,
) -> Result<(), ResponseError> {
    let g = &mut e.group;
    if generation < 0 && member_id.is_empty() && g.members.is_empty() {
        // A simple (non-member) consumer committing for an empty group.
        return Ok(());
    }
    if let Some(instance) = instance {
        if g.static_members
            .get(instance)
            .is_some_and(|known| known != member_id)
        {
            return Err(ResponseError::FencedInstanceId);
        }
    }
    let Some(member) = g.members.get_mut(member_id) else {
        return Err(if g.members.is_empty() && generation >= 0 {
            ResponseError::IllegalGeneration
        } else {
            ResponseError::UnknownMemberId
        });
    };
    member.session_deadline_ms = now + i64::from(member.session_timeout_ms);
    if generation != g.generation {
        return Err(ResponseError::IllegalGeneration);
    }
    if g.state == GroupState::CompletingRebalance {
        return Err(ResponseError::RebalanceInProgress);
    }
    Ok(())
}

pub async fn offset_commit(
    broker: &Broker,
    req: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group_id = req.group_id.0.to_string();
    let now = now_ms();
    let answer = |error: Option<ResponseError>,
                  per: &dyn Fn(&str, i32) -> Option<ResponseError>| {
        let topics = req
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let e = error.or_else(|| per(&t.name.0, p.partition_index));
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(e.map_or(0, |e| e.code()))
                    })
                    .collect();
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    };
    if let Err(e) = broker.check_group_coordinator(&group_id).await {
        return answer(Some(e), &|_, _| None);
    }
    let generation = req.generation_id_or_member_epoch;
    let Some(entry) = broker.groups.entry(&group_id, generation < 0, now) else {
        return answer(Some(ResponseError::IllegalGeneration), &|_, _| None);
    };
    let (replication, refused) = {
        let mut e = entry.lock();
        if let Err(err) = check_commit(
            &mut e,
            &req.member_id,
            req.group_instance_id.as_deref(),
            generation,
            now,
        ) {
            return answer(Some(err), &|_, _| None);
        }
        let expire = (version <= 4 && req.retention_time_ms >= 0)
            .then(|| now.saturating_add(req.retention_time_ms));
        let max_metadata = broker.groups.settings.offset_metadata_max_bytes;
        let mut records: Vec<crate::group::KeyValue> = Vec::new();
        let mut accepted: Vec<((String, i32), OffsetValue)> = Vec::new();
        let mut refused: Vec<((String, i32), ResponseError)> = Vec::new();
        for t in &req.topics {
            let topic = t.name.0.to_string();
            for p in &t.partitions {
                let key = (topic.clone(), p.partition_index);
                let metadata = p
                    .committed_metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                if metadata.len() > max_metadata {
                    refused.push((key, ResponseError::OffsetMetadataTooLarge));
                    continue;
                }
                let known = broker
                    .cluster
                    .topic(&topic)
                    .is_some_and(|t| t.partition(p.partition_index).is_some());
                if !known {
                    refused.push((key, ResponseError::UnknownTopicOrPartition));
                    continue;
                }
                let value = OffsetValue {
                    offset: p.committed_offset,
                    leader_epoch: if version >= 6 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata,
                    commit_timestamp: now,
                    expire_timestamp: expire,
                };
                records.push((
                    RecordKey::Offset {
                        group: group_id.clone(),
                        topic: topic.clone(),
                        partition: p.partition_index,
                    }
                    .encode(),
                    Some(value.encode()),
                ));
                accepted.push((key, value));
            }
        }
        let replication = match broker
            .groups
            .persist(&broker.replicas, &group_id, records, now)
        {
            Ok(r) => r,
            Err(err) => {
                // As Kafka: a commit too large for the offsets topic is INVALID_COMMIT_OFFSET_SIZE.
                let err = match err {
                    ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge => {
                        ResponseError::InvalidCommitOffsetSize
                    }
                    other => other,
                };
                return answer(Some(err), &|_, _| None);
            }
        };
        for (key, value) in accepted {
            e.offsets.insert(key, value);
        }
        (replication, refused)
    };
    // Answered once the commit is on the in-sync replicas, so it survives a coordinator failover.
    if let Err(err) = replication.committed().await {
        return answer(Some(err), &|_, _| None);
    }
    answer(None, &|topic, partition| {
        refused
            .iter()
            .find(|((t, p), _)| t == topic && *p == partition)
            .map(|(_, err)| *err)
    })
}

pub async fn offset_fetch(
    broker: &Broker,
    req: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in &req.groups {
            let wanted: Option<Vec<(String, Vec<i32>)>> = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let group_id = g.group_id.0.to_string();
            let (error, found) = fetch_group(broker, &group_id, wanted).await;
            let topics = found
                .into_iter()
                .map(|(topic, parts)| {
                    let partitions = parts
                        .into_iter()
                        .map(|(p, v)| {
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(p)
                                .with_committed_offset(v.as_ref().map_or(-1, |v| v.offset))
                                .with_committed_leader_epoch(
                                    v.as_ref().map_or(-1, |v| v.leader_epoch),
                                )
                                .with_metadata(Some(str_bytes(
                                    v.map(|v| v.metadata).unwrap_or_default(),
                                )))
                        })
                        .collect();
                    OffsetFetchResponseTopics::default()
                        .with_name(super::topic_name(topic))
                        .with_partitions(partitions)
                })
                .collect();
            groups.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_topics(topics)
                    .with_error_code(error.map_or(0, |e| e.code())),
            );
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let (error, found) = fetch_group(broker, &req.group_id.0, wanted).await;
    let topics = found
        .into_iter()
        .map(|(topic, parts)| {
            let partitions = parts
                .into_iter()
                .map(|(p, v)| {
                    let mut part = OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_committed_offset(v.as_ref().map_or(-1, |v| v.offset))
                        .with_metadata(Some(str_bytes(
                            v.as_ref().map(|v| v.metadata.clone()).unwrap_or_default(),
                        )));
                    if version >= 5 {
                        part = part
                            .with_committed_leader_epoch(v.as_ref().map_or(-1, |v| v.leader_epoch));
                    }
                    if version < 2 {
                        part = part.with_error_code(error.map_or(0, |e| e.code()));
                    }
                    part
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(super::topic_name(topic))
                .with_partitions(partitions)
        })
        .collect();
    let mut resp = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        resp = resp.with_error_code(error.map_or(0, |e| e.code()));
    }
    resp
}

type FetchedTopics = Vec<(String, Vec<(i32, Option<OffsetValue>)>)>;

/// Committed offsets of a group: the asked partitions (unknown ones as None), or all of them.
async fn fetch_group(
    broker: &Broker,
    group_id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> (Option<ResponseError>, FetchedTopics) {
    if let Err(e) = broker.check_group_coordinator(group_id).await {
        let topics = wanted
            .unwrap_or_default()
            .into_iter()
            .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, None)).collect()))
            .collect();
        return (Some(e), topics);
    }
    let entry = broker.groups.entry(group_id, false, now_ms());
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
            let mut out: FetchedTopics = Vec::new();
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

pub async fn offset_delete(
    broker: &Broker,
    req: OffsetDeleteRequest,
    _version: i16,
) -> OffsetDeleteResponse {
    let group_id = req.group_id.0.to_string();
    if let Err(e) = broker.check_group_coordinator(&group_id).await {
        return OffsetDeleteResponse::default().with_error_code(e.code());
    }
    let now = now_ms();
    let Some(entry) = broker.groups.entry(&group_id, false, now) else {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupIdNotFound.code());
    };
    let mut e = entry.lock();
    if e.group.state == GroupState::Dead {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupIdNotFound.code());
    }
    let subscribed = e.group.subscribed_topics();
    if subscribed.is_none() && !e.group.members.is_empty() {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::NonEmptyGroup.code());
    }
    let subscribed = subscribed.unwrap_or_default();
    let mut tombstones = Vec::new();
    let mut results = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let topic = t.name.0.to_string();
        let in_use = subscribed.contains(&topic);
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                let error = if in_use {
                    Some(ResponseError::GroupSubscribedToTopic)
                } else {
                    None
                };
                if error.is_none() && e.offsets.contains_key(&(topic.clone(), p.partition_index)) {
                    tombstones.push((topic.clone(), p.partition_index));
                }
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(error.map_or(0, |e| e.code()))
            })
            .collect();
        results.push(
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions),
        );
    }
    let records = tombstones
        .iter()
        .map(|(t, p)| {
            (
                RecordKey::Offset {
                    group: group_id.clone(),
                    topic: t.clone(),
                    partition: *p,
                }
                .encode(),
                None,
            )
        })
        .collect();
    // As Kafka, offset tombstones are not awaited (see DeleteGroups).
    match broker
        .groups
        .persist(&broker.replicas, &group_id, records, now)
    {
        Ok(replication) => replication.detach(),
        Err(err) => return OffsetDeleteResponse::default().with_error_code(err.code()),
    }
    for key in tombstones {
        e.offsets.remove(&key);
    }
    OffsetDeleteResponse::default().with_topics(results)
}
