//! Asking another broker what only it knows, as an admin client would, over one short-lived
//! connection and within [`PEER_TIMEOUT`]: the groups it coordinates (ListGroups,
//! DescribeGroups, OffsetFetch) and its own configs (DescribeConfigs).

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, GroupId, ListGroupsRequest, ListGroupsResponse, OffsetFetchRequest,
    OffsetFetchResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::BrokerInfo;
use crate::config::broker::broker_def;
use crate::config::describe::DescribedConfig;
use crate::config::{ConfigSource, ConfigType};
use crate::group::{GroupDescription, GroupState, MemberDescription};
use crate::replica::peer::{PeerConnection, PeerDialer, PeerError};

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

/// Dials `broker` with `dialer` (on its inter-broker listener endpoint).
async fn connect(broker: &BrokerInfo, dialer: &PeerDialer) -> Result<PeerConnection, PeerError> {
    let Some((host, port)) = broker.address(dialer.listener()) else {
        return Err(PeerError::Protocol(format!(
            "broker {} has no {} listener",
            broker.id,
            dialer.listener()
        )));
    };
    dialer
        .connect(
            &host,
            port,
            CLIENT_ID.to_string(),
            MAX_RESPONSE_BYTES,
            PEER_TIMEOUT,
        )
        .await
}

/// The groups `broker` coordinates, with their member counts (no lag: that takes an
/// OffsetFetch per group, done for one group on its page).
pub async fn list_groups(
    broker: &BrokerInfo,
    dialer: &PeerDialer,
) -> Result<Vec<GroupSummary>, PeerError> {
    within(async {
        let mut conn = connect(broker, dialer).await?;
        let listed: ListGroupsResponse = conn
            .call(
                ApiKey::ListGroups,
                3,
                &ListGroupsRequest::default(),
                Duration::ZERO,
            )
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
pub async fn describe_group(
    broker: &BrokerInfo,
    dialer: &PeerDialer,
    group: &str,
) -> Result<DescribedGroup, PeerError> {
    within(async {
        let mut conn = connect(broker, dialer).await?;
        let id = GroupId(StrBytes::from_string(group.to_string()));
        let req = DescribeGroupsRequest::default().with_groups(vec![id.clone()]);
        let described: DescribeGroupsResponse = conn
            .call(ApiKey::DescribeGroups, 5, &req, Duration::ZERO)
            .await?;
        let Some(d) = described.groups.into_iter().next() else {
            return Err(PeerError::Protocol(
                "DescribeGroups answered no group".into(),
            ));
        };
        check(d.error_code, "DescribeGroups")?;
        let state = state_of(&d.group_state);
        let req = OffsetFetchRequest::default()
            .with_group_id(id)
            .with_topics(None);
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

/// Kafka's resource type of a broker in DescribeConfigs.
const RESOURCE_BROKER: i8 = 4;

/// The configs of `broker` as it reports them (DescribeConfigs of its own broker resource, v3:
/// sources, types, sensitive flags; values of sensitive entries are never sent).
pub async fn broker_configs(
    broker: &BrokerInfo,
    dialer: &PeerDialer,
) -> Result<Vec<DescribedConfig>, PeerError> {
    within(async {
        let mut conn = connect(broker, dialer).await?;
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_BROKER)
                .with_resource_name(StrBytes::from_string(broker.id.to_string()))
                .with_configuration_keys(None),
        ]);
        let resp: DescribeConfigsResponse = conn
            .call(ApiKey::DescribeConfigs, 3, &req, Duration::ZERO)
            .await?;
        let Some(result) = resp.results.into_iter().next() else {
            return Err(PeerError::Protocol(
                "DescribeConfigs answered no resource".into(),
            ));
        };
        check(result.error_code, "DescribeConfigs")?;
        let mut configs: Vec<DescribedConfig> = result.configs.into_iter().map(described).collect();
        configs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(configs)
    })
    .await
}

fn described(c: DescribeConfigsResourceResult) -> DescribedConfig {
    let name = c.name.to_string();
    DescribedConfig {
        kind: broker_def(&name).map_or(ConfigType::Unknown, |d| d.kind),
        value: if c.is_sensitive {
            None
        } else {
            c.value.map(|v| v.to_string())
        },
        source: source_of(c.config_source),
        read_only: c.read_only,
        sensitive: c.is_sensitive,
        synonyms: Vec::new(),
        documentation: None,
        name,
    }
}

/// A wire config source back to [`ConfigSource`] (codes a broker does not report for its own
/// resource count as the default).
fn source_of(code: i8) -> ConfigSource {
    [
        ConfigSource::TopicOverride,
        ConfigSource::DynamicBroker,
        ConfigSource::DynamicDefaultBroker,
        ConfigSource::StaticBroker,
    ]
    .into_iter()
    .find(|s| s.wire_code() == code)
    .unwrap_or(ConfigSource::Default)
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
        Err(PeerError::Protocol(format!(
            "{api} answered error code {code}"
        )))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_and_codes_map_back() {
        for s in [
            GroupState::Empty,
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
            GroupState::Stable,
        ] {
            assert_eq!(state_of(s.name()), s);
        }
        assert_eq!(state_of("Assigning"), GroupState::Dead);
        assert_eq!(source_of(4), ConfigSource::StaticBroker);
        assert_eq!(source_of(2), ConfigSource::DynamicBroker);
        assert_eq!(source_of(5), ConfigSource::Default);
        assert_eq!(source_of(6), ConfigSource::Default);
    }
}
