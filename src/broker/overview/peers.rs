//! Asking another broker about the groups it coordinates, as an admin client would: ListGroups,
//! DescribeGroups and OffsetFetch over one short-lived connection, everything within
//! [`PEER_TIMEOUT`].

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, GroupId, ListGroupsRequest,
    ListGroupsResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::BrokerInfo;
use crate::group::{GroupDescription, GroupState, MemberDescription};
use crate::replica::peer::{PeerConnection, PeerError};

use super::groups::GroupSummary;

/// The longest a page waits for one peer broker.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);
const CLIENT_ID: &str = "odradek-console";
const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// Kafka's error code for success (a group its coordinator does not know is described as
/// `Dead`, without an error).
const NONE: i16 = 0;

/// A group as its coordinator describes it, with its committed offsets (topic, partition,
/// offset); `None` when the coordinator does not know the group.
pub type DescribedGroup = Option<(GroupDescription, Vec<(String, i32, i64)>)>;

async fn connect(broker: &BrokerInfo) -> Result<PeerConnection, PeerError> {
    PeerConnection::connect(
        &broker.host,
        broker.port,
        CLIENT_ID.to_string(),
        MAX_RESPONSE_BYTES,
        PEER_TIMEOUT,
    )
    .await
}

/// The groups `broker` coordinates, with their member counts (no lag: that takes an
/// OffsetFetch per group, done for one group on its page).
pub async fn list_groups(broker: &BrokerInfo) -> Result<Vec<GroupSummary>, PeerError> {
    within(async {
        let mut conn = connect(broker).await?;
        let listed: ListGroupsResponse = conn
            .call(ApiKey::ListGroups, 3, &ListGroupsRequest::default(), Duration::ZERO)
            .await?;
        check(listed.error_code, "ListGroups")?;
        let ids: Vec<GroupId> = listed.groups.iter().map(|g| g.group_id.clone()).collect();
        let described: DescribeGroupsResponse = if ids.is_empty() {
            DescribeGroupsResponse::default()
        } else {
            let req = DescribeGroupsRequest::default().with_groups(ids);
            conn.call(ApiKey::DescribeGroups, 5, &req, Duration::ZERO)
                .await?
        };
        let mut out: Vec<GroupSummary> = listed
            .groups
            .into_iter()
            .map(|g| {
                let members = described
                    .groups
                    .iter()
                    .find(|d| d.group_id == g.group_id)
                    .map_or(0, |d| d.members.len());
                GroupSummary {
                    group_id: g.group_id.0.to_string(),
                    state: g.group_state.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                    coordinator: broker.id,
                    members,
                    total_lag: None,
                }
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    })
    .await
}

/// One group as `broker` (its coordinator) describes it, with its committed offsets.
pub async fn describe_group(broker: &BrokerInfo, group: &str) -> Result<DescribedGroup, PeerError> {
    within(async {
        let mut conn = connect(broker).await?;
        let id = GroupId(StrBytes::from_string(group.to_string()));
        let req = DescribeGroupsRequest::default().with_groups(vec![id.clone()]);
        let described: DescribeGroupsResponse = conn
            .call(ApiKey::DescribeGroups, 5, &req, Duration::ZERO)
            .await?;
        let Some(d) = described.groups.into_iter().next() else {
            return Err(PeerError::Protocol("DescribeGroups answered no group".into()));
        };
        check(d.error_code, "DescribeGroups")?;
        let state = state_of(&d.group_state);
        let req = OffsetFetchRequest::default().with_group_id(id).with_topics(None);
        let fetched: OffsetFetchResponse = conn
            .call(ApiKey::OffsetFetch, 7, &req, Duration::ZERO)
            .await?;
        check(fetched.error_code, "OffsetFetch")?;
        let committed: Vec<(String, i32, i64)> = fetched
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| p.error_code == NONE && p.committed_offset >= 0)
                    .map(|p| (t.name.0.to_string(), p.partition_index, p.committed_offset))
            })
            .collect();
        if state == GroupState::Dead && committed.is_empty() {
            return Ok(None);
        }
        let members = d
            .members
            .into_iter()
            .map(|m| MemberDescription {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|s| s.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                metadata: Bytes::new(),
                assignment: m.member_assignment,
            })
            .collect();
        let description = GroupDescription {
            state,
            protocol_type: d.protocol_type.to_string(),
            protocol_data: d.protocol_data.to_string(),
            members,
        };
        Ok(Some((description, committed)))
    })
    .await
}

async fn within<T>(
    work: impl std::future::Future<Output = Result<T, PeerError>>,
) -> Result<T, PeerError> {
    tokio::time::timeout(PEER_TIMEOUT, work)
        .await
        .map_err(|_| PeerError::Timeout(PEER_TIMEOUT))?
}

fn check(code: i16, api: &str) -> Result<(), PeerError> {
    if code == NONE {
        Ok(())
    } else {
        Err(PeerError::Protocol(format!("{api} answered error code {code}")))
    }
}

/// Kafka's state names back to states (an unknown name counts as `Dead`).
fn state_of(name: &str) -> GroupState {
    [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
    ]
    .into_iter()
    .find(|s| s.name() == name)
    .unwrap_or(GroupState::Dead)
}
