//! Group membership APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! ListGroups, DescribeGroups and DeleteGroups. Each decodes its request into the group
//! coordinator's terms, calls it and encodes the result at the request's version.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;

use super::authorized::{authorize, authorize_cluster, if_requested};
use super::str_bytes;
use super::RequestContext;
use crate::auth::acl::{Operation, ResourceType};
use crate::broker::Broker;
use crate::group::{JoinRequest, JoinResult, MemberLeave, SyncRequest};

/// Whether the request may perform `operation` on the group.
fn on_group(broker: &Broker, ctx: &RequestContext, operation: Operation, group: &str) -> bool {
    authorize(broker, ctx, operation, ResourceType::Group, group)
}

const GROUP_DENIED: i16 = 30; // GROUP_AUTHORIZATION_FAILED

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn find_coordinator(
    broker: &Broker,
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let version = ctx.api_version;
    let keys: Vec<String> = if version >= 4 {
        req.coordinator_keys.iter().map(|k| k.to_string()).collect()
    } else {
        vec![req.key.to_string()]
    };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        let result = match req.key_type {
            _ if key.is_empty() => Err(ResponseError::InvalidRequest),
            KEY_TYPE_GROUP if !on_group(broker, ctx, Operation::Describe, &key) => {
                Err(ResponseError::GroupAuthorizationFailed)
            }
            KEY_TYPE_TRANSACTION
                if !authorize(
                    broker,
                    ctx,
                    Operation::Describe,
                    ResourceType::TransactionalId,
                    &key,
                ) =>
            {
                Err(ResponseError::TransactionalIdAuthorizationFailed)
            }
            KEY_TYPE_GROUP => broker.groups.find_coordinator(&key).await,
            KEY_TYPE_TRANSACTION => broker.txn.find_coordinator(&key).await.map_err(|e| {
                ResponseError::try_from_code(e.code())
                    .unwrap_or(ResponseError::CoordinatorNotAvailable)
            }),
            _ => Err(ResponseError::InvalidRequest),
        };
        // The coordinator as reached on the request's listener; a coordinator without that
        // listener is not available to this client (as Kafka).
        let result = result.and_then(|node| {
            let e = node
                .endpoint(&ctx.listener)
                .ok_or(ResponseError::CoordinatorNotAvailable)?;
            Ok((node.id, e.host.clone(), e.port))
        });
        let c = Coordinator::default().with_key(str_bytes(key));
        coordinators.push(match result {
            Ok((id, host, port)) => c
                .with_node_id(BrokerId(id))
                .with_host(str_bytes(host))
                .with_port(i32::from(port)),
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
    ctx: &RequestContext,
    req: JoinGroupRequest,
) -> JoinGroupResponse {
    let version = ctx.api_version;
    if !on_group(broker, ctx, Operation::Read, &req.group_id) {
        return JoinGroupResponse::default()
            .with_error_code(GROUP_DENIED)
            .with_generation_id(-1)
            .with_member_id(req.member_id.clone())
            .with_protocol_name((version < 7).then(Default::default));
    }
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: ctx.client_host(),
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
    let result = broker.groups.join_group(&req.group_id, join).await;
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

pub async fn sync_group(
    broker: &Broker,
    ctx: &RequestContext,
    req: SyncGroupRequest,
) -> SyncGroupResponse {
    if !on_group(broker, ctx, Operation::Read, &req.group_id) {
        return SyncGroupResponse::default().with_error_code(GROUP_DENIED);
    }
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
    let result = broker.groups.sync_group(&req.group_id, sync).await;
    let mut resp = SyncGroupResponse::default()
        .with_error_code(result.error.map_or(0, |e| e.code()))
        .with_assignment(result.assignment);
    if ctx.api_version >= 5 {
        resp = resp
            .with_protocol_type(result.protocol_type.map(str_bytes))
            .with_protocol_name(result.protocol.map(str_bytes));
    }
    resp
}

pub async fn heartbeat(
    broker: &Broker,
    ctx: &RequestContext,
    req: HeartbeatRequest,
) -> HeartbeatResponse {
    if !on_group(broker, ctx, Operation::Read, &req.group_id) {
        return HeartbeatResponse::default().with_error_code(GROUP_DENIED);
    }
    let result = broker
        .groups
        .heartbeat(
            &req.group_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
        )
        .await;
    HeartbeatResponse::default().with_error_code(result.err().map_or(0, |e| e.code()))
}

pub async fn leave_group(
    broker: &Broker,
    ctx: &RequestContext,
    req: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let version = ctx.api_version;
    if !on_group(broker, ctx, Operation::Read, &req.group_id) {
        return LeaveGroupResponse::default().with_error_code(GROUP_DENIED);
    }
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
    let results = match broker.groups.leave_group(&req.group_id, leaving).await {
        Ok(results) => results,
        Err(e) => return LeaveGroupResponse::default().with_error_code(e.code()),
    };
    if version < 3 {
        let error = results.first().and_then(|r| r.error);
        return LeaveGroupResponse::default().with_error_code(error.map_or(0, |e| e.code()));
    }
    let members = results
        .into_iter()
        .map(|r: MemberLeave| {
            MemberResponse::default()
                .with_member_id(str_bytes(r.member_id))
                .with_group_instance_id(r.group_instance_id.map(str_bytes))
                .with_error_code(r.error.map_or(0, |e| e.code()))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

pub async fn list_groups(
    broker: &Broker,
    ctx: &RequestContext,
    req: ListGroupsRequest,
) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    // DESCRIBE on the cluster lists every group, else only the groups the principal may describe.
    let every = authorize_cluster(broker, ctx, Operation::Describe);
    let groups = broker
        .groups
        .list_groups(&states, &types)
        .into_iter()
        .filter(|g| every || on_group(broker, ctx, Operation::Describe, &g.group_id))
        .map(|g| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type));
            if ctx.api_version >= 4 {
                listed = listed.with_group_state(str_bytes(g.state.name()));
            }
            if ctx.api_version >= 5 {
                listed = listed.with_group_type(str_bytes("classic"));
            }
            listed
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub async fn describe_groups(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    // Authorized operations exist from v3 on, when asked for.
    let mut described = Vec::with_capacity(req.groups.len());
    for id in &req.groups {
        let base = DescribedGroup::default().with_group_id(id.clone());
        if !on_group(broker, ctx, Operation::Describe, id) {
            described.push(base.with_error_code(GROUP_DENIED));
            continue;
        }
        let operations = if_requested(
            ctx.api_version >= 3 && req.include_authorized_operations,
            broker,
            ctx,
            ResourceType::Group,
            id,
        );
        let group = match broker.groups.describe_group(id).await {
            Ok(group) => group,
            Err(e) => {
                described.push(base.with_error_code(e.code()));
                continue;
            }
        };
        let members = group
            .members
            .into_iter()
            .map(|m| {
                let member = DescribedGroupMember::default()
                    .with_member_id(str_bytes(m.member_id))
                    .with_client_id(str_bytes(m.client_id))
                    .with_client_host(str_bytes(m.client_host))
                    .with_member_metadata(m.metadata)
                    .with_member_assignment(m.assignment);
                if ctx.api_version >= 4 {
                    member.with_group_instance_id(m.group_instance_id.map(str_bytes))
                } else {
                    member
                }
            })
            .collect();
        described.push(
            base.with_group_state(str_bytes(group.state.name()))
                .with_protocol_type(str_bytes(group.protocol_type))
                .with_protocol_data(str_bytes(group.protocol_data))
                .with_members(members)
                .with_authorized_operations(operations),
        );
    }
    DescribeGroupsResponse::default().with_groups(described)
}

pub async fn delete_groups(
    broker: &Broker,
    ctx: &RequestContext,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in &req.groups_names {
        let result = if on_group(broker, ctx, Operation::Delete, id) {
            broker.groups.delete_group(id).await
        } else {
            Err(ResponseError::GroupAuthorizationFailed)
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id.clone())
                .with_error_code(result.err().map_or(0, |e| e.code())),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
