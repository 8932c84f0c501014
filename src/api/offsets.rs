//! Committed offsets: OffsetCommit, OffsetFetch and OffsetDelete, translated to and from the
//! group coordinator's terms.

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

use super::authorized::authorize;
use super::{str_bytes, topic_name, RequestContext};
use crate::auth::acl::{Operation, ResourceType};
use crate::broker::Broker;
use crate::group::{CommittedOffsets, OffsetCommit, OffsetToCommit};

fn may(broker: &Broker, ctx: &RequestContext, op: Operation, t: ResourceType, name: &str) -> bool {
    authorize(broker, ctx, op, t, name)
}

/// Offsets of topics the principal may not DESCRIBE: dropped when every topic was asked for,
/// else answered TOPIC_AUTHORIZATION_FAILED.
async fn fetch_authorized(
    broker: &Broker,
    ctx: &RequestContext,
    group_id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> (Option<ResponseError>, CommittedOffsets) {
    if !may(
        broker,
        ctx,
        Operation::Describe,
        ResourceType::Group,
        group_id,
    ) {
        return (Some(ResponseError::GroupAuthorizationFailed), Vec::new());
    }
    let every_topic = wanted.is_none();
    let (error, found) = broker
        .groups
        .fetch_offsets(group_id, wanted, require_stable)
        .await;
    if !broker.authorizer.enabled() {
        return (error, found);
    }
    let found = found
        .into_iter()
        .filter_map(|(topic, parts)| {
            if may(
                broker,
                ctx,
                Operation::Describe,
                ResourceType::Topic,
                &topic,
            ) {
                return Some((topic, parts));
            }
            let denied = parts
                .into_iter()
                .map(|(p, _, _)| (p, None, Some(ResponseError::TopicAuthorizationFailed)))
                .collect();
            (!every_topic).then_some((topic, denied))
        })
        .collect();
    (error, found)
}

pub async fn offset_commit(
    broker: &Broker,
    ctx: &RequestContext,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let version = ctx.api_version;
    let group_denied = !may(
        broker,
        ctx,
        Operation::Read,
        ResourceType::Group,
        &req.group_id,
    );
    let readable: Vec<bool> = req
        .topics
        .iter()
        .map(|t| may(broker, ctx, Operation::Read, ResourceType::Topic, &t.name))
        .collect();
    let commit = OffsetCommit {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: req.generation_id_or_member_epoch,
        retention_ms: (version <= 4 && req.retention_time_ms >= 0).then_some(req.retention_time_ms),
        offsets: req
            .topics
            .iter()
            .zip(&readable)
            .filter(|(_, readable)| **readable)
            .flat_map(|(t, _)| {
                t.partitions.iter().map(|p| OffsetToCommit {
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if version >= 6 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                })
            })
            .collect(),
    };
    let outcome = if group_denied {
        Err(ResponseError::GroupAuthorizationFailed)
    } else {
        broker.groups.commit_offsets(commit).await
    };
    // One error for every partition, or each partition's own, in request order.
    let mut errors = outcome.as_ref().ok().map(|v| v.iter());
    let failed = outcome.as_ref().err().copied();
    let topics = req
        .topics
        .into_iter()
        .zip(readable)
        .map(|(t, readable)| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = if group_denied {
                        failed
                    } else if !readable {
                        Some(ResponseError::TopicAuthorizationFailed)
                    } else {
                        let own = errors.as_mut().and_then(|e| e.next().copied().flatten());
                        failed.or(own)
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

pub async fn offset_fetch(
    broker: &Broker,
    ctx: &RequestContext,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let version = ctx.api_version;
    if version >= 8 {
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in &req.groups {
            let wanted = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let (error, found) =
                fetch_authorized(broker, ctx, &g.group_id, wanted, req.require_stable).await;
            let topics = found
                .into_iter()
                .map(|(topic, parts)| {
                    let partitions = parts
                        .into_iter()
                        .map(|(p, v, own)| {
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(p)
                                .with_error_code(own.map_or(0, |e| e.code()))
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
                        .with_name(topic_name(topic))
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
    let wanted = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    // require_stable is read from v7 on (false before).
    let (error, found) =
        fetch_authorized(broker, ctx, &req.group_id, wanted, req.require_stable).await;
    let topics = found
        .into_iter()
        .map(|(topic, parts)| {
            let partitions = parts
                .into_iter()
                .map(|(p, v, own)| {
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
                    } else if let Some(own) = own {
                        part = part.with_error_code(own.code());
                    }
                    part
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(partitions)
        })
        .collect();
    let mut resp = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        resp = resp.with_error_code(error.map_or(0, |e| e.code()));
    }
    resp
}

pub async fn offset_delete(
    broker: &Broker,
    ctx: &RequestContext,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    if !may(
        broker,
        ctx,
        Operation::Delete,
        ResourceType::Group,
        &req.group_id,
    ) {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let asked = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| p.partition_index).collect();
            (t.name.to_string(), partitions)
        })
        .collect();
    let errors = match broker.groups.delete_offsets(&req.group_id, asked).await {
        Ok(errors) => errors,
        Err(e) => return OffsetDeleteResponse::default().with_error_code(e.code()),
    };
    let results = req
        .topics
        .into_iter()
        .zip(errors)
        .map(|(t, errors)| {
            let partitions = t
                .partitions
                .iter()
                .zip(errors)
                .map(|(p, error): (_, Option<ResponseError>)| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(results)
}
