//! Group membership operations of the coordinator: JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! ListGroups, DescribeGroups and DeleteGroups, each on plain values.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tracing::warn;

use super::coordinator::GroupCoordinator;
use super::groups::Groups;
use super::records::RecordKey;
use super::state::{JoinRequest, JoinResult, Reply, SyncRequest, SyncResult};
use super::{GroupState, KeyValue};
use crate::util::clock::now_ms;

/// The outcome of one member's leave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberLeave {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error: Option<ResponseError>,
}

/// A group as ListGroups shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

/// A group as DescribeGroups shows it; a group unknown here is `Dead` with no members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    /// The chosen protocol while the group is stable, else empty.
    pub protocol_data: String,
    pub members: Vec<MemberDescription>,
}

/// One member in a [`GroupDescription`]; metadata and assignment only while the group is stable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

impl GroupCoordinator {
    /// JoinGroup: adds or refreshes the member and answers once the rebalance has gathered the
    /// group (or at once with an error or a new member id).
    pub async fn join_group(&self, group_id: &str, join: JoinRequest) -> JoinResult {
        let settings = self.settings();
        let member_id = join.member_id.clone();
        let failed = |e: ResponseError| JoinResult::error(&member_id, e);
        if let Err(e) = self.check_coordinator(group_id).await {
            return failed(e);
        }
        if join.session_timeout_ms < settings.min_session_timeout_ms
            || join.session_timeout_ms > settings.max_session_timeout_ms
        {
            return failed(ResponseError::InvalidSessionTimeout);
        }
        let now = now_ms();
        let Some(entry) = self.groups.entry(group_id, join.member_id.is_empty(), now) else {
            return failed(ResponseError::UnknownMemberId);
        };
        let reply = {
            let mut e = entry.lock();
            self.expire_due(&mut e, now);
            let new_member = join.member_id.is_empty() && join.group_instance_id.is_none();
            if new_member && e.group.members.len() >= settings.max_size {
                return failed(ResponseError::GroupMaxSizeReached);
            }
            let reply = e
                .group
                .join(join, now, i64::from(settings.initial_rebalance_delay_ms));
            self.reschedule(&e, now);
            reply
        };
        match reply {
            Reply::Now(r) => r,
            Reply::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| failed(ResponseError::CoordinatorNotAvailable)),
        }
    }

    /// SyncGroup: the leader hands out the assignment; every member gets its part once the
    /// group record is on the ISR of the offsets partition (as Kafka).
    pub async fn sync_group(&self, group_id: &str, sync: SyncRequest<'_>) -> SyncResult {
        match self.sync_inner(group_id, sync).await {
            Ok(r) => r,
            Err(e) => SyncResult::error(e),
        }
    }

    async fn sync_inner(
        &self,
        group_id: &str,
        sync: SyncRequest<'_>,
    ) -> Result<SyncResult, ResponseError> {
        self.check_coordinator(group_id).await?;
        let now = now_ms();
        let entry = self
            .groups
            .entry(group_id, false, now)
            .ok_or(ResponseError::UnknownMemberId)?;
        let (reply, pending) = {
            let mut e = entry.lock();
            self.expire_due(&mut e, now);
            let (reply, persist) = e.group.sync(sync, now);
            self.reschedule(&e, now);
            let mut pending = None;
            if persist {
                // Appended under the group lock so records of one group are written in order.
                let generation = e.group.generation;
                let record = Groups::group_record(&e.group);
                match self.persist(group_id, vec![record], now) {
                    Ok(replication) => pending = Some((generation, replication)),
                    Err(err) => {
                        e.group
                            .finish_sync(generation, Some(sync_failure(group_id, err)), now)
                    }
                }
            }
            (reply, pending)
        };
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

    /// Heartbeat: keeps the member's session alive and tells it when to rejoin.
    pub async fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        self.check_coordinator(group_id).await?;
        let now = now_ms();
        let Some(entry) = self.groups.entry(group_id, false, now) else {
            return Err(ResponseError::UnknownMemberId);
        };
        let mut e = entry.lock();
        self.expire_due(&mut e, now);
        let error = e
            .group
            .heartbeat(member_id, group_instance_id, generation, now);
        error.map_or(Ok(()), Err)
    }

    /// LeaveGroup for each of `members` ((member id, group instance id)). An unknown group
    /// answers each member UNKNOWN_MEMBER_ID.
    pub async fn leave_group(
        &self,
        group_id: &str,
        members: Vec<(String, Option<String>)>,
    ) -> Result<Vec<MemberLeave>, ResponseError> {
        self.check_coordinator(group_id).await?;
        let now = now_ms();
        let Some(entry) = self.groups.entry(group_id, false, now) else {
            return Ok(members
                .into_iter()
                .map(|(member_id, group_instance_id)| MemberLeave {
                    member_id,
                    group_instance_id,
                    error: Some(ResponseError::UnknownMemberId),
                })
                .collect());
        };
        let mut e = entry.lock();
        self.expire_due(&mut e, now);
        let results = members
            .into_iter()
            .map(|(member_id, group_instance_id)| {
                let error = e.group.leave(&member_id, group_instance_id.as_deref(), now);
                MemberLeave {
                    member_id,
                    group_instance_id,
                    error,
                }
            })
            .collect();
        self.reschedule(&e, now);
        if e.group.state == GroupState::Empty {
            let record = Groups::group_record(&e.group);
            // As Kafka, the answer does not wait for the Empty group's record to replicate.
            match self.persist(group_id, vec![record], now) {
                Ok(replication) => replication.detach(),
                Err(err) => warn!(group = %group_id, error = %err, "group metadata not persisted"),
            }
        }
        Ok(results)
    }

    /// ListGroups: the live groups of this coordinator, filtered by state names and group types
    /// (lower case; empty filters match everything; every group here is of type `classic`).
    pub fn list_groups(&self, states: &[String], types: &[String]) -> Vec<GroupListing> {
        let mut listed = Vec::new();
        for id in self.groups.group_ids() {
            let Some(entry) = self.groups.entry(&id, false, 0) else {
                continue;
            };
            let mut e = entry.lock();
            self.expire_due(&mut e, now_ms());
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
            listed.push(GroupListing {
                group_id: id.clone(),
                protocol_type: e.group.protocol_type.clone().unwrap_or_default(),
                state,
            });
        }
        listed
    }

    /// DescribeGroups for one group.
    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDescription, ResponseError> {
        self.check_coordinator(group_id).await?;
        let now = now_ms();
        let Some(entry) = self.groups.entry(group_id, false, now) else {
            return Ok(GroupDescription {
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol_data: String::new(),
                members: Vec::new(),
            });
        };
        let mut e = entry.lock();
        self.expire_due(&mut e, now);
        let g = &e.group;
        let stable = g.state == GroupState::Stable;
        let protocol = g.protocol.clone().unwrap_or_default();
        let members = g
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.protocols
                        .iter()
                        .find(|(n, _)| *n == protocol)
                        .map(|(_, md)| md.clone())
                        .unwrap_or_default()
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        Ok(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable { protocol } else { String::new() },
            members,
        })
    }

    /// DeleteGroups for one group: only an empty group can go, with its committed offsets.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), ResponseError> {
        self.check_coordinator(group_id).await?;
        let now = now_ms();
        let Some(entry) = self.groups.entry(group_id, false, now) else {
            return Err(ResponseError::GroupIdNotFound);
        };
        let mut e = entry.lock();
        self.expire_due(&mut e, now);
        if e.group.state == GroupState::Dead {
            return Err(ResponseError::GroupIdNotFound);
        }
        if !e.group.members.is_empty() {
            return Err(ResponseError::NonEmptyGroup);
        }
        let mut tombstones: Vec<KeyValue> = e
            .offsets
            .keys()
            .map(|(topic, partition)| RecordKey::offset(group_id, topic, *partition).tombstone())
            .collect();
        let key = RecordKey::Group {
            group: group_id.to_string(),
        };
        tombstones.push(key.tombstone());
        // As Kafka, tombstones are not awaited: a group whose tombstone is lost in a failover is
        // deleted again by the next DeleteGroups or expiry.
        self.persist(group_id, tombstones, now)?.detach();
        e.offsets.clear();
        // The group goes with the transactional offsets still pending in it, as in Kafka.
        e.pending_txn.clear();
        e.group.state = GroupState::Dead;
        drop(e);
        self.groups.remove(group_id);
        Ok(())
    }
}

/// The error every member waiting in SyncGroup gets when the assignment cannot be stored.
fn sync_failure(group_id: &str, err: ResponseError) -> ResponseError {
    warn!(group = group_id, error = %err, "group assignment not persisted");
    match err {
        // As Kafka: a group record too large for the topic is a server error.
        ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge => {
            ResponseError::UnknownServerError
        }
        other => other,
    }
}
