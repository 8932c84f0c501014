//! Consumer groups for display. Groups this broker coordinates come from the group coordinator
//! (state, protocol, members with their assignments) with their lag from
//! [`Broker::consumer_group_lag`]; groups coordinated by other brokers are asked of those
//! brokers over the inter-broker connection (ListGroups, DescribeGroups, OffsetFetch, each
//! peer within [`peers::PEER_TIMEOUT`]); a peer that does not answer is reported, not waited for.

use std::collections::BTreeMap;

use crate::group::{GroupDescription, GroupState};

use super::super::Broker;
use super::assignment::decode_assignment;
use super::peers;

/// `__consumer_offsets`, whose partition leaders coordinate the groups.
const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// One line of the group list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSummary {
    pub group_id: String,
    /// Kafka's state name (`Stable`, `Empty`, ...).
    pub state: String,
    pub protocol_type: String,
    /// The coordinating broker.
    pub coordinator: i32,
    pub members: usize,
    /// Sum of the partition lags, for groups whose lag was gathered.
    pub total_lag: Option<i64>,
}

/// One group in detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    pub group_id: String,
    pub coordinator: i32,
    pub state: String,
    pub protocol_type: String,
    /// The chosen assignor while the group is stable.
    pub protocol: String,
    pub members: Vec<MemberView>,
    /// Committed offset and lag per partition, by topic and partition.
    pub lag: Vec<LagRow>,
    /// What could not be gathered (a coordinator that did not answer), for the page to say.
    pub note: Option<String>,
}

/// One member of a [`GroupView`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Assigned partitions by topic (decoded for protocol type `consumer`).
    pub assignment: Vec<(String, Vec<i32>)>,
}

/// Committed offset and lag of one partition of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LagRow {
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
    /// The partition's high watermark, when known.
    pub end_offset: Option<i64>,
    /// `end_offset - committed_offset`, never negative, when the end offset is known.
    pub lag: Option<i64>,
    /// The member the partition is assigned to, if any.
    pub owner: Option<String>,
}

/// The groups of one peer coordinator, or why they are missing.
#[derive(Clone, Debug)]
pub struct PeerGroups {
    pub broker: i32,
    pub groups: Result<Vec<GroupSummary>, String>,
}

impl Broker {
    /// Groups this broker coordinates, by id, with their total lag.
    pub async fn local_groups(&self) -> Vec<GroupSummary> {
        if self.cluster.topic(OFFSETS_TOPIC).is_none() {
            return Vec::new();
        }
        let mut totals: BTreeMap<String, i64> = BTreeMap::new();
        for l in self.consumer_group_lag().await {
            *totals.entry(l.group.clone()).or_default() += l.lag.unwrap_or(0);
        }
        let me = self.broker_id();
        let mut out = Vec::new();
        for listing in self.groups.list_groups(&[], &[]) {
            let members = match self.groups.describe_group(&listing.group_id).await {
                Ok(d) => d.members.len(),
                Err(_) => 0,
            };
            out.push(GroupSummary {
                total_lag: totals.get(&listing.group_id).copied(),
                group_id: listing.group_id,
                state: listing.state.name().to_string(),
                protocol_type: listing.protocol_type,
                coordinator: me,
                members,
            });
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// The groups of every other live broker, asked of them concurrently.
    pub async fn peer_groups(&self) -> Vec<PeerGroups> {
        let me = self.broker_id();
        let peers: Vec<_> = self
            .cluster
            .live_brokers()
            .into_iter()
            .filter(|b| b.id != me)
            .collect();
        let dialer = &self.dialer;
        let asks = peers.iter().map(|b| async move {
            PeerGroups {
                broker: b.id,
                groups: peers::list_groups(b, dialer)
                    .await
                    .map_err(|e| e.to_string()),
            }
        });
        let mut out = futures::future::join_all(asks).await;
        out.sort_by_key(|p| p.broker);
        out
    }

    /// The broker coordinating `group` by the current metadata (the leader of its
    /// `__consumer_offsets` partition), without creating that topic.
    pub fn coordinator_of(&self, group: &str) -> Option<i32> {
        let topic = self.cluster.topic(OFFSETS_TOPIC)?;
        let p = topic.partition(self.groups.partition_of(group))?;
        (p.leader >= 0).then_some(p.leader)
    }

    /// One group in detail; `None` when its coordinator does not know it (or there is none).
    pub async fn group_view(&self, group: &str) -> Option<GroupView> {
        let coordinator = self.coordinator_of(group)?;
        if coordinator == self.broker_id() {
            return self.local_group_view(group).await;
        }
        let broker = self
            .cluster
            .live_brokers()
            .into_iter()
            .find(|b| b.id == coordinator)?;
        match peers::describe_group(&broker, &self.dialer, group).await {
            Ok(Some((description, committed))) => {
                let wanted: Vec<(String, i32)> =
                    committed.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
                let ends = self.leader_end_offsets(&wanted).await;
                let lag = committed
                    .into_iter()
                    .map(|(topic, partition, committed_offset)| {
                        let end_offset = ends.get(&(topic.clone(), partition)).copied();
                        lag_row(topic, partition, committed_offset, end_offset)
                    })
                    .collect();
                Some(view(group, coordinator, description, lag, None))
            }
            Ok(None) => None,
            Err(e) => Some(GroupView {
                group_id: group.to_string(),
                coordinator,
                state: "unknown".into(),
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
                lag: Vec::new(),
                note: Some(format!("coordinator {coordinator} did not answer: {e}")),
            }),
        }
    }

    async fn local_group_view(&self, group: &str) -> Option<GroupView> {
        let description = self.groups.describe_group(group).await.ok()?;
        let lag: Vec<LagRow> = self
            .consumer_group_lag()
            .await
            .into_iter()
            .filter(|l| l.group == group)
            .map(|l| LagRow {
                topic: l.topic,
                partition: l.partition,
                committed_offset: l.committed_offset,
                end_offset: l.end_offset,
                lag: l.lag,
                owner: None,
            })
            .collect();
        if description.state == GroupState::Dead && lag.is_empty() {
            return None;
        }
        let me = self.broker_id();
        Some(view(group, me, description, lag, None))
    }
}

/// A lag row from a committed offset and, when known, the partition's end offset.
pub fn lag_row(topic: String, partition: i32, committed: i64, end: Option<i64>) -> LagRow {
    LagRow {
        topic,
        partition,
        committed_offset: committed,
        end_offset: end,
        lag: end.map(|e| (e - committed).max(0)),
        owner: None,
    }
}

fn view(
    group: &str,
    coordinator: i32,
    d: GroupDescription,
    mut lag: Vec<LagRow>,
    note: Option<String>,
) -> GroupView {
    let consumer = d.protocol_type == "consumer";
    let members: Vec<MemberView> = d
        .members
        .into_iter()
        .map(|m| MemberView {
            assignment: if consumer {
                decode_assignment(&m.assignment)
            } else {
                Vec::new()
            },
            member_id: m.member_id,
            group_instance_id: m.group_instance_id,
            client_id: m.client_id,
            client_host: m.client_host,
        })
        .collect();
    for row in &mut lag {
        row.owner = members
            .iter()
            .find(|m| {
                m.assignment
                    .iter()
                    .any(|(t, ps)| *t == row.topic && ps.contains(&row.partition))
            })
            .map(|m| m.member_id.clone());
    }
    lag.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    GroupView {
        group_id: group.to_string(),
        coordinator,
        state: d.state.name().to_string(),
        protocol_type: d.protocol_type,
        protocol: d.protocol_data,
        members,
        lag,
        note,
    }
}
