//! Group membership APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! ListGroups, DescribeGroups and DeleteGroups.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;

use super::str_bytes;
use crate::broker::Broker;
use crate::group::records::RecordKey;
use crate::group::state::SyncRequest;
use crate::group::{GroupCoordinator, GroupState, JoinRequest, JoinResult, Reply, SyncResult};
use crate::maintenance::now_ms;

/// Who sent a request, for JoinGroup's member bookkeeping.
pub struct ClientInfo {
    pub client_id: String,
    pub client_host: String,
}

const KEY_TYPE_GROUP: i8 = 0;

fn group_name(id: &str) -> GroupId {
    GroupId(str_bytes(id))
}

pub async fn find_coordinator(
    broker: &Broker,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let keys: Vec<String> = if version >= 4 {
        req.coordinator_keys.iter().map(|k| k.to_string()).collect()
    } else {
        vec![req.key.to_string()]
    };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        let result = if req.key_type != KEY_TYPE_GROUP {
            Err(ResponseError::CoordinatorNotAvailable)
        } else if key.is_empty() {
            Err(ResponseError::InvalidRequest)
        } else {
            broker.group_coordinator_node(&key).await
        };
        let c = Coordinator::default().with_key(str_bytes(key));
        coordinators.push(match result {
            Ok(me) => c
                .with_node_id(BrokerId(me.id))
                .with_host(str_bytes(me.host))
                .with_port(i32::from(me.port)),
            Err(e) => c
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(e.code()),
        });
    }
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let c = coordinators.pop().unwrap_or_default();
    let mut resp = FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port);
    if version >= 1 && c.error_code != 0 {
        resp = resp.with_error_message(Some(str_bytes("the coordinator is not available")));
    }
    resp
}

pub async fn join_group(
    broker: &Broker,
    req: JoinGroupRequest,
    version: i16,
    client: &ClientInfo,
) -> JoinGroupResponse {
    let group_id = req.group_id.0.to_string();
    let settings = &broker.groups.settings;
    let failed = |e: ResponseError| to_join_response(JoinResult::error(&req.member_id, e), version);
    if let Err(e) = broker.check_group_coordinator(&group_id).await {
        return failed(e);
    }
    if req.session_timeout_ms < settings.min_session_timeout_ms
        || req.session_timeout_ms > settings.max_session_timeout_ms
    {
        return failed(ResponseError::InvalidSessionTimeout);
    }
    let now = now_ms();
    let Some(entry) = broker
        .groups
        .entry(&group_id, req.member_id.is_empty(), now)
    else {
        return failed(ResponseError::UnknownMemberId);
    };
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client.client_id.clone(),
        client_host: client.client_host.clone(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let reply = {
        let mut e = entry.lock();
        let new_member = join.member_id.is_empty() && join.group_instance_id.is_none();
        if new_member && e.group.members.len() >= settings.max_size {
            return failed(ResponseError::GroupMaxSizeReached);
        }
        e.group
            .join(join, now, i64::from(settings.initial_rebalance_delay_ms))
    };
    let result = match reply {
        Reply::Now(r) => r,
        Reply::Wait(rx) => rx.await.unwrap_or_else(|_| {
            JoinResult::error(&req.member_id, ResponseError::CoordinatorNotAvailable)
        }),
    };
    to_join_response(result, version)
}

fn to_join_response(r: JoinResult, version: i16) -> JoinGroupResponse {
    let members = r
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            let m = JoinGroupResponseMember::default()
                .with_member_id(str_bytes(id))
                .with_metadata(metadata);
            if version >= 5 {
                m.with_group_instance_id(instance.map(str_bytes))
            } else {
                m
            }
        })
        .collect();
    let mut resp = JoinGroupResponse::default()
        .with_error_code(r.error.map_or(0, |e| e.code()))
        .with_generation_id(r.generation)
        .with_protocol_name(Some(str_bytes(r.protocol.unwrap_or_default())))
        .with_leader(str_bytes(r.leader))
        .with_member_id(str_bytes(r.member_id))
        .with_members(members);
    if version >= 7 {
        resp = resp.with_protocol_type(r.protocol_type.map(str_bytes));
        if r.error.is_some() {
            resp = resp.with_protocol_name(None);
        }
    }
    resp
}

pub async fn sync_group(broker: &Broker, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let group_id = req.group_id.0.to_string();
    let result = match sync_inner(broker, &req, &group_id).await {
        Ok(r) => r,
        Err(e) => SyncResult::error(e),
    };
    let mut resp = SyncGroupResponse::default()
        .with_error_code(result.error.map_or(0, |e| e.code()))
        .with_assignment(result.assignment);
    if version >= 5 {
        resp = resp
            .with_protocol_type(result.protocol_type.map(str_bytes))
            .with_protocol_name(result.protocol.map(str_bytes));
    }
    resp
}

async fn sync_inner(
    broker: &Broker,
    req: &SyncGroupRequest,
    group_id: &str,
) -> Result<SyncResult, ResponseError> {
    broker.check_group_coordinator(group_id).await?;
    let now = now_ms();
    let entry = broker
        .groups
        .entry(group_id, false, now)
        .ok_or(ResponseError::UnknownMemberId)?;
    let (reply, pending) = {
        let mut e = entry.lock();
        let sync = SyncRequest {
            member_id: &req.member_id,
            instance: req.group_instance_id.as_deref(),
            generation: req.generation_id,
            protocol_type: req.protocol_type.as_deref(),
            protocol: req.protocol_name.as_deref(),
            assignments: req
                .assignments
                .iter()
                .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                .collect(),
        };
        let (reply, persist) = e.group.sync(sync, now);
        let mut pending = None;
        if persist {
            // Appended under the group lock so records of one group are written in order.
            let generation = e.group.generation;
            let record = GroupCoordinator::group_record(&e.group);
            match broker
                .groups
                .persist(&broker.replicas, group_id, vec![record], now)
            {
                Ok(replication) => pending = Some((generation, replication)),
                Err(err) => e
                    .group
                    .finish_sync(generation, Some(sync_failure(group_id, err)), now),
            }
        }
        (reply, pending)
    };
    // As Kafka: the members get the assignment once it is on the ISR of the offsets partition.
    if let Some((generation, replication)) = pending {
        let failure = replication
            .committed()
            .await
            .err()
            .map(|err| sync_failure(group_id, err));
        entry
            .lock()
            .group
            .finish_sync(generation, failure, now_ms());
    }
    Ok(match reply {
        Reply::Now(r) => r,
        Reply::Wait(rx) => rx
            .await
            .unwrap_or_else(|_| SyncResult::error(ResponseError::CoordinatorNotAvailable)),
    })
}

/// The error every member waiting in SyncGroup gets when the assignment cannot be stored.
fn sync_failure(group_id: &str, err: ResponseError) -> ResponseError {
    tracing::warn!(group = group_id, error = %err, "group assignment not persisted");
    match err {
        // As Kafka: a group record too large for the topic is a server error.
        ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge => {
            ResponseError::UnknownServerError
        }
        other => other,
    }
}

pub async fn heartbeat(broker: &Broker, req: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
    let group_id = req.group_id.0.to_string();
    let error = match broker.check_group_coordinator(&group_id).await {
        Err(e) => Some(e),
        Ok(()) => match broker.groups.entry(&group_id, false, now_ms()) {
            None => Some(ResponseError::UnknownMemberId),
            Some(entry) => entry.lock().group.heartbeat(
                &req.member_id,
                req.group_instance_id.as_deref(),
                req.generation_id,
                now_ms(),
            ),
        },
    };
    HeartbeatResponse::default().with_error_code(error.map_or(0, |e| e.code()))
}

pub async fn leave_group(
    broker: &Broker,
    req: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group_id = req.group_id.0.to_string();
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    if let Err(e) = broker.check_group_coordinator(&group_id).await {
        return LeaveGroupResponse::default().with_error_code(e.code());
    }
    let now = now_ms();
    let Some(entry) = broker.groups.entry(&group_id, false, now) else {
        // As Kafka: an unknown group answers NONE at the top (v3+) with each member unknown.
        if version < 3 {
            return LeaveGroupResponse::default()
                .with_error_code(ResponseError::UnknownMemberId.code());
        }
        let members = leaving
            .into_iter()
            .map(|(id, instance)| {
                MemberResponse::default()
                    .with_member_id(str_bytes(id))
                    .with_group_instance_id(instance.map(str_bytes))
                    .with_error_code(ResponseError::UnknownMemberId.code())
            })
            .collect();
        return LeaveGroupResponse::default().with_members(members);
    };
    let mut results = Vec::with_capacity(leaving.len());
    {
        let mut e = entry.lock();
        for (member_id, instance) in &leaving {
            let error = e.group.leave(member_id, instance.as_deref(), now);
            results.push((member_id.clone(), instance.clone(), error));
        }
        if e.group.state == GroupState::Empty {
            let record = GroupCoordinator::group_record(&e.group);
            // As Kafka, the answer does not wait for the Empty group's record to replicate.
            match broker
                .groups
                .persist(&broker.replicas, &group_id, vec![record], now)
            {
                Ok(replication) => replication.detach(),
                Err(err) => {
                    tracing::warn!(group = %group_id, error = %err, "group metadata not persisted")
                }
            }
        }
    }
    if version < 3 {
        let error = results.first().and_then(|r| r.2);
        return LeaveGroupResponse::default().with_error_code(error.map_or(0, |e| e.code()));
    }
    let members = results
        .into_iter()
        .map(|(id, instance, error)| {
            MemberResponse::default()
                .with_member_id(str_bytes(id))
                .with_group_instance_id(instance.map(str_bytes))
                .with_error_code(error.map_or(0, |e| e.code()))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

pub async fn list_groups(
    broker: &Broker,
    req: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let mut groups = Vec::new();
    for id in broker.groups.group_ids() {
        let Some(entry) = broker.groups.entry(&id, false, 0) else {
            continue;
        };
        let e = entry.lock();
        let state = e.group.state;
        if state == GroupState::Dead {
            continue;
        }
        if !states.is_empty() && !states.contains(&state.name().to_lowercase()) {
            continue;
        }
        if !types.is_empty() && !types.iter().any(|t| t == "classic") {
            continue;
        }
        let mut listed = ListedGroup::default()
            .with_group_id(group_name(&id))
            .with_protocol_type(str_bytes(e.group.protocol_type.clone().unwrap_or_default()));
        if version >= 4 {
            listed = listed.with_group_state(str_bytes(state.name()));
        }
        if version >= 5 {
            listed = listed.with_group_type(str_bytes("classic"));
        }
        groups.push(listed);
    }
    ListGroupsResponse::default().with_groups(groups)
}

pub async fn describe_groups(
    broker: &Broker,
    req: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut described = Vec::with_capacity(req.groups.len());
    for id in &req.groups {
        let group_id = id.0.to_string();
        let base = DescribedGroup::default().with_group_id(id.clone());
        if let Err(e) = broker.check_group_coordinator(&group_id).await {
            described.push(base.with_error_code(e.code()));
            continue;
        }
        let Some(entry) = broker.groups.entry(&group_id, false, 0) else {
            described.push(base.with_group_state(str_bytes(GroupState::Dead.name())));
            continue;
        };
        let e = entry.lock();
        let g = &e.group;
        let stable = g.state == GroupState::Stable;
        let protocol = g.protocol.clone().unwrap_or_default();
        let members = g
            .members
            .values()
            .map(|m| {
                let metadata = if stable {
                    m.protocols
                        .iter()
                        .find(|(n, _)| *n == protocol)
                        .map(|(_, md)| md.clone())
                        .unwrap_or_default()
                } else {
                    Bytes::new()
                };
                let member = DescribedGroupMember::default()
                    .with_member_id(str_bytes(m.member_id.clone()))
                    .with_client_id(str_bytes(m.client_id.clone()))
                    .with_client_host(str_bytes(m.client_host.clone()))
                    .with_member_metadata(metadata)
                    .with_member_assignment(if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    });
                if version >= 4 {
                    member.with_group_instance_id(m.group_instance_id.clone().map(str_bytes))
                } else {
                    member
                }
            })
            .collect();
        described.push(
            base.with_group_state(str_bytes(g.state.name()))
                .with_protocol_type(str_bytes(g.protocol_type.clone().unwrap_or_default()))
                .with_protocol_data(str_bytes(if stable { protocol } else { String::new() }))
                .with_members(members),
        );
    }
    DescribeGroupsResponse::default().with_groups(described)
}

pub async fn delete_groups(
    broker: &Broker,
    req: DeleteGroupsRequest,
    _version: i16,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in &req.groups_names {
        let group_id = id.0.to_string();
        let error = match broker.check_group_coordinator(&group_id).await {
            Err(e) => Some(e),
            Ok(()) => delete_one(broker, &group_id),
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id.clone())
                .with_error_code(error.map_or(0, |e| e.code())),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

fn delete_one(broker: &Broker, group_id: &str) -> Option<ResponseError> {
    let now = now_ms();
    let Some(entry) = broker.groups.entry(group_id, false, now) else {
        return Some(ResponseError::GroupIdNotFound);
    };
    let mut e = entry.lock();
    if e.group.state == GroupState::Dead {
        return Some(ResponseError::GroupIdNotFound);
    }
    if !e.group.members.is_empty() {
        return Some(ResponseError::NonEmptyGroup);
    }
    let mut tombstones: Vec<crate::group::KeyValue> = e
        .offsets
        .keys()
        .map(|(topic, partition)| {
            (
                RecordKey::Offset {
                    group: group_id.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                }
                .encode(),
                None,
            )
        })
        .collect();
    tombstones.push((
        RecordKey::Group {
            group: group_id.to_string(),
        }
        .encode(),
        None,
    ));
    // As Kafka, tombstones are not awaited: a group whose tombstone is lost in a failover is
    // deleted again by the next DeleteGroups or expiry.
    match broker
        .groups
        .persist(&broker.replicas, group_id, tombstones, now)
    {
        Ok(replication) => replication.detach(),
        Err(err) => return Some(err),
    }
    e.offsets.clear();
    e.group.state = GroupState::Dead;
    drop(e);
    broker.groups.remove(group_id);
    None
}
