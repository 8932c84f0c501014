//! One consumer group's membership state machine (Kafka's classic group protocol).
//!
//! No I/O happens here: callers hold the group's lock, apply an event, and act on the outcome
//! (answer a waiting request, persist the group). Waiting JoinGroup/SyncGroup requests are
//! represented by oneshot senders completed when the rebalance reaches the matching step.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

/// Kafka's group states, with the names DescribeGroups and ListGroups report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a JoinGroup caller eventually receives.
#[derive(Clone, Debug)]
pub struct JoinResult {
    pub error: Option<ResponseError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// (member id, group instance id, metadata) — only for the leader.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub fn error(member_id: &str, error: ResponseError) -> JoinResult {
        JoinResult {
            error: Some(error),
            generation: -1,
            protocol_type: None,
            protocol: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// What a SyncGroup caller eventually receives.
#[derive(Clone, Debug)]
pub struct SyncResult {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: ResponseError) -> SyncResult {
        SyncResult {
            error: Some(error),
            protocol_type: None,
            protocol: None,
            assignment: Bytes::new(),
        }
    }
}

/// A group member.
#[derive(Debug)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// Session deadline (ms since epoch); renewed by heartbeats, joins and syncs.
    pub session_deadline_ms: i64,
    pub pending_join: Option<oneshot::Sender<JoinResult>>,
    pub pending_sync: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn supports_all(&self, names: &[String]) -> bool {
        names
            .iter()
            .all(|n| self.protocols.iter().any(|(p, _)| p == n))
    }
}

/// A consumer group.
#[derive(Debug)]
pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Static members: group instance id → member id.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pub pending_members: HashMap<String, i64>,
    /// When the current rebalance must complete even if members are missing.
    pub rebalance_deadline_ms: i64,
    /// Earliest completion of the initial rebalance of an empty group.
    pub initial_delay_until_ms: i64,
    pub current_state_timestamp_ms: i64,
}

/// Parameters of a JoinGroup request.
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

/// Parameters of a SyncGroup request.
pub struct SyncRequest<'a> {
    pub member_id: &'a str,
    pub instance: Option<&'a str>,
    pub generation: i32,
    pub protocol_type: Option<&'a str>,
    pub protocol: Option<&'a str>,
    /// (member id, assignment), only from the leader.
    pub assignments: Vec<(String, Bytes)>,
}

/// The immediate outcome of an event on a group.
pub enum Reply<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

impl Group {
    pub fn new(group_id: &str, now_ms: i64) -> Group {
        Group {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_deadline_ms: 0,
            initial_delay_until_ms: 0,
            current_state_timestamp_ms: now_ms,
        }
    }

    fn transition(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.current_state_timestamp_ms = now_ms;
    }

    /// Whether every member (and `extra` protocols, if given) supports at least one common protocol.
    fn protocols_compatible(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocols.is_empty() || protocol_type.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(p, _)| p == name))
        })
    }

    /// Handles JoinGroup. `initial_delay_ms` applies when an empty group starts its first rebalance.
    pub fn join(
        &mut self,
        req: JoinRequest,
        now_ms: i64,
        initial_delay_ms: i64,
    ) -> Reply<JoinResult> {
        if self.state == GroupState::Dead {
            return Reply::Now(JoinResult::error(
                &req.member_id,
                ResponseError::CoordinatorNotAvailable,
            ));
        }
        if !self.protocols_compatible(&req.protocol_type, &req.protocols) {
            return Reply::Now(JoinResult::error(
                &req.member_id,
                ResponseError::InconsistentGroupProtocol,
            ));
        }
        if req.member_id.is_empty() {
            return self.join_new_member(req, now_ms, initial_delay_ms);
        }
        if let Some(instance) = &req.group_instance_id {
            if let Some(known) = self.static_members.get(instance) {
                if known != &req.member_id {
                    return Reply::Now(JoinResult::error(
                        &req.member_id,
                        ResponseError::FencedInstanceId,
                    ));
                }
            }
        }
        if self.pending_members.remove(&req.member_id).is_some() {
            return self.add_member_and_rebalance(
                req.member_id.clone(),
                req,
                now_ms,
                initial_delay_ms,
            );
        }
        if !self.members.contains_key(&req.member_id) {
            return Reply::Now(JoinResult::error(
                &req.member_id,
                ResponseError::UnknownMemberId,
            ));
        }
        self.join_known_member(req, now_ms)
    }

    fn join_new_member(
        &mut self,
        req: JoinRequest,
        now_ms: i64,
        initial_delay_ms: i64,
    ) -> Reply<JoinResult> {
        let member_id = format!(
            "{}-{}",
            req.group_instance_id.as_deref().unwrap_or(&req.client_id),
            uuid::Uuid::new_v4()
        );
        if let Some(instance) = req.group_instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.replace_static_member(old_id, member_id, req, now_ms);
            }
            return self.add_member_and_rebalance(member_id, req, now_ms, initial_delay_ms);
        }
        if req.require_known_member_id {
            let deadline = now_ms + i64::from(req.session_timeout_ms);
            self.pending_members.insert(member_id.clone(), deadline);
            return Reply::Now(JoinResult::error(
                &member_id,
                ResponseError::MemberIdRequired,
            ));
        }
        self.add_member_and_rebalance(member_id, req, now_ms, initial_delay_ms)
    }

    /// A static member rejoined with a new member id: the old id is fenced and takes no part.
    fn replace_static_member(
        &mut self,
        old_id: String,
        new_id: String,
        req: JoinRequest,
        now_ms: i64,
    ) -> Reply<JoinResult> {
        let Some(mut member) = self.members.remove(&old_id) else {
            return self.add_member_and_rebalance(new_id, req, now_ms, 0);
        };
        if let Some(tx) = member.pending_join.take() {
            let _ = tx.send(JoinResult::error(&old_id, ResponseError::FencedInstanceId));
        }
        if let Some(tx) = member.pending_sync.take() {
            let _ = tx.send(SyncResult::error(ResponseError::FencedInstanceId));
        }
        let same_protocols = member.protocols == req.protocols;
        member.member_id = new_id.clone();
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.protocols = req.protocols.clone();
        member.session_deadline_ms = now_ms + i64::from(req.session_timeout_ms);
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), member);
        if self.state == GroupState::Stable && same_protocols {
            // Nothing changed for the group: hand the current generation back without a rebalance.
            let is_leader = self.leader.as_deref() == Some(new_id.as_str());
            return Reply::Now(self.join_result_for(&new_id, is_leader));
        }
        self.join_known_member(req_with_id(req, new_id), now_ms)
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        req: JoinRequest,
        now_ms: i64,
        initial_delay_ms: i64,
    ) -> Reply<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocols: req.protocols,
            assignment: Bytes::new(),
            session_deadline_ms: now_ms + i64::from(req.session_timeout_ms),
            pending_join: Some(tx),
            pending_sync: None,
        };
        self.members.insert(member_id, member);
        let was_empty = self.state == GroupState::Empty;
        self.prepare_rebalance(now_ms);
        if was_empty && initial_delay_ms > 0 {
            self.initial_delay_until_ms = now_ms + initial_delay_ms;
        }
        self.maybe_complete_join(now_ms);
        Reply::Wait(rx)
    }

    fn join_known_member(&mut self, req: JoinRequest, now_ms: i64) -> Reply<JoinResult> {
        let member_id = req.member_id.clone();
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        let state = self.state;
        let Some(member) = self.members.get_mut(&member_id) else {
            return Reply::Now(JoinResult::error(
                &member_id,
                ResponseError::UnknownMemberId,
            ));
        };
        member.session_deadline_ms = now_ms + i64::from(req.session_timeout_ms);
        let same_protocols = member.protocols == req.protocols;
        match state {
            GroupState::CompletingRebalance | GroupState::Stable
                if same_protocols && !(state == GroupState::Stable && is_leader) =>
            {
                // A retried join (lost response): answer with the current generation.
                Reply::Now(self.join_result_for(&member_id, is_leader))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                member.protocols = req.protocols;
                member.session_timeout_ms = req.session_timeout_ms;
                member.rebalance_timeout_ms = req.rebalance_timeout_ms;
                member.client_id = req.client_id;
                member.client_host = req.client_host;
                if let Some(old) = member.pending_join.replace(tx) {
                    let _ = old.send(JoinResult::error(
                        &member_id,
                        ResponseError::UnknownMemberId,
                    ));
                }
                if state != GroupState::PreparingRebalance {
                    self.prepare_rebalance(now_ms);
                }
                self.maybe_complete_join(now_ms);
                Reply::Wait(rx)
            }
        }
    }

    fn join_result_for(&self, member_id: &str, is_leader: bool) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if is_leader {
                self.members
                    .values()
                    .map(|m| {
                        (
                            m.member_id.clone(),
                            m.group_instance_id.clone(),
                            m.metadata_for(&protocol),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Starts a rebalance: pending syncs are told to rejoin; joins are awaited until the deadline.
    pub fn prepare_rebalance(&mut self, now_ms: i64) {
        for member in self.members.values_mut() {
            if let Some(tx) = member.pending_sync.take() {
                let _ = tx.send(SyncResult::error(ResponseError::RebalanceInProgress));
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        self.rebalance_deadline_ms = now_ms + i64::from(timeout);
        self.transition(GroupState::PreparingRebalance, now_ms);
    }

    /// Completes the join phase when every member has rejoined (or, with `force`, drops the rest).
    pub fn maybe_complete_join(&mut self, now_ms: i64) -> bool {
        if self.state != GroupState::PreparingRebalance {
            return false;
        }
        let all_joined = self.members.values().all(|m| m.pending_join.is_some())
            && self.pending_members.is_empty();
        let deadline_passed = now_ms >= self.rebalance_deadline_ms;
        if now_ms < self.initial_delay_until_ms && !deadline_passed {
            return false;
        }
        if !all_joined && !deadline_passed {
            return false;
        }
        self.pending_members.clear();
        let missing: Vec<String> = self
            .members
            .values()
            .filter(|m| m.pending_join.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in missing {
            self.remove_member(&id);
        }
        self.complete_join(now_ms);
        true
    }

    fn complete_join(&mut self, now_ms: i64) {
        if self.members.is_empty() {
            self.generation += 1;
            self.protocol = None;
            self.leader = None;
            self.transition(GroupState::Empty, now_ms);
            return;
        }
        self.generation += 1;
        self.protocol = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.transition(GroupState::CompletingRebalance, now_ms);
        let leader = self.leader.clone().unwrap_or_default();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.join_result_for(&id, id == leader);
            if let Some(member) = self.members.get_mut(&id) {
                member.assignment = Bytes::new();
                // The session clock restarts when the join completes (a member may have waited
                // longer than its session timeout for the others).
                member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                if let Some(tx) = member.pending_join.take() {
                    let _ = tx.send(result);
                }
            }
        }
    }

    /// Kafka's vote: candidates are protocols every member supports; each member votes for its
    /// most preferred candidate; most votes wins (ties go to the leader's preference).
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<String> = first
            .protocols
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.supports_all(std::slice::from_ref(n)))
            })
            .collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let preference = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .unwrap_or(first);
        preference
            .protocols
            .iter()
            .filter(|(n, _)| votes.contains_key(n.as_str()))
            .max_by_key(|(n, _)| {
                (
                    votes[n.as_str()],
                    std::cmp::Reverse(preference.protocols.iter().position(|(p, _)| p == n)),
                )
            })
            .map(|(n, _)| n.clone())
    }

    fn remove_member(&mut self, member_id: &str) {
        if let Some(mut m) = self.members.remove(member_id) {
            if let Some(instance) = &m.group_instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                    self.static_members.remove(instance);
                }
            }
            if let Some(tx) = m.pending_join.take() {
                let _ = tx.send(JoinResult::error(member_id, ResponseError::UnknownMemberId));
            }
            if let Some(tx) = m.pending_sync.take() {
                let _ = tx.send(SyncResult::error(ResponseError::UnknownMemberId));
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
    }

    /// Checks member id, static instance and generation of a request from a member.
    fn validate_member(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if let Some(instance) = instance {
            match self.static_members.get(instance) {
                Some(known) if known != member_id => return Err(ResponseError::FencedInstanceId),
                None if !self.members.contains_key(member_id) => {
                    return Err(ResponseError::UnknownMemberId)
                }
                _ => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// Handles SyncGroup. Returns the reply and whether the group must now be persisted.
    pub fn sync(&mut self, req: SyncRequest<'_>, now_ms: i64) -> (Reply<SyncResult>, bool) {
        let SyncRequest {
            member_id,
            instance,
            generation,
            protocol_type,
            protocol,
            assignments,
        } = req;
        if let Err(e) = self.validate_member(member_id, instance, generation) {
            return (Reply::Now(SyncResult::error(e)), false);
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol.is_some_and(|p| Some(p) != self.protocol.as_deref())
        {
            return (
                Reply::Now(SyncResult::error(ResponseError::InconsistentGroupProtocol)),
                false,
            );
        }
        let result_for = |g: &Group, assignment: Bytes| SyncResult {
            error: None,
            protocol_type: g.protocol_type.clone(),
            protocol: g.protocol.clone(),
            assignment,
        };
        if let Some(m) = self.members.get_mut(member_id) {
            m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
        }
        match self.state {
            GroupState::PreparingRebalance => (
                Reply::Now(SyncResult::error(ResponseError::RebalanceInProgress)),
                false,
            ),
            GroupState::Stable => {
                let assignment = self
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                (Reply::Now(result_for(self, assignment)), false)
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(member_id) {
                    m.pending_sync = Some(tx);
                }
                if self.leader.as_deref() != Some(member_id) {
                    return (Reply::Wait(rx), false);
                }
                // Stored now, handed out once persisted (finish_sync).
                let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                for m in self.members.values_mut() {
                    m.assignment = given.remove(&m.member_id).unwrap_or_default();
                }
                (Reply::Wait(rx), true)
            }
            GroupState::Empty | GroupState::Dead => (
                Reply::Now(SyncResult::error(ResponseError::UnknownMemberId)),
                false,
            ),
        }
    }

    /// Completes a leader's SyncGroup for `generation` once the group's assignment was persisted
    /// (`None`) or could not be (`Some(error)`: everyone waiting gets the error and the group
    /// rebalances). Nothing happens if the group has moved on to another generation or state
    /// meanwhile (members left or joined while the write was replicating).
    pub fn finish_sync(&mut self, generation: i32, failure: Option<ResponseError>, now_ms: i64) {
        if self.state != GroupState::CompletingRebalance || self.generation != generation {
            return;
        }
        if let Some(error) = failure {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(tx) = m.pending_sync.take() {
                    let _ = tx.send(SyncResult::error(error));
                }
            }
            self.prepare_rebalance(now_ms);
            return;
        }
        let (protocol_type, protocol) = (self.protocol_type.clone(), self.protocol.clone());
        for m in self.members.values_mut() {
            if let Some(tx) = m.pending_sync.take() {
                let _ = tx.send(SyncResult {
                    error: None,
                    protocol_type: protocol_type.clone(),
                    protocol: protocol.clone(),
                    assignment: m.assignment.clone(),
                });
            }
        }
        self.transition(GroupState::Stable, now_ms);
    }

    /// Handles Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> Option<ResponseError> {
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return Some(ResponseError::UnknownMemberId);
        }
        if let Err(e) = self.validate_member(member_id, instance, generation) {
            return Some(e);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
        }
        match self.state {
            GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            _ => None,
        }
    }

    /// Handles one member of LeaveGroup. Returns the member's error, if any.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        now_ms: i64,
    ) -> Option<ResponseError> {
        let resolved = match instance {
            Some(instance) => match self.static_members.get(instance) {
                None => return Some(ResponseError::UnknownMemberId),
                Some(known) if !member_id.is_empty() && known != member_id => {
                    return Some(ResponseError::FencedInstanceId)
                }
                Some(known) => known.clone(),
            },
            None => member_id.to_string(),
        };
        if self.pending_members.remove(&resolved).is_some() {
            return None;
        }
        if !self.members.contains_key(&resolved) {
            return Some(ResponseError::UnknownMemberId);
        }
        self.remove_member(&resolved);
        self.rebalance_after_departure(now_ms);
        None
    }

    fn rebalance_after_departure(&mut self, now_ms: i64) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now_ms);
                self.maybe_complete_join(now_ms);
            }
            GroupState::PreparingRebalance => {
                self.maybe_complete_join(now_ms);
            }
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// When [`Group::tick`] may next have something to do, after `now_ms`: the earliest session
    /// deadline of a member not waiting in JoinGroup/SyncGroup, of a pending member id, or of the
    /// rebalance in progress (its end, or the end of the initial delay).
    pub fn next_deadline(&self, now_ms: i64) -> Option<i64> {
        let sessions = self
            .members
            .values()
            .filter(|m| m.pending_join.is_none() && m.pending_sync.is_none())
            .map(|m| m.session_deadline_ms);
        let pending = self.pending_members.values().copied();
        let rebalance = (self.state == GroupState::PreparingRebalance)
            .then_some([self.rebalance_deadline_ms, self.initial_delay_until_ms])
            .into_iter()
            .flatten();
        sessions
            .chain(pending)
            .chain(rebalance)
            .filter(|t| *t > now_ms)
            .min()
    }

    /// Expires members whose session ended and completes overdue rebalances. Returns whether the
    /// group changed in a way that should be persisted.
    pub fn tick(&mut self, now_ms: i64) -> bool {
        let before = (self.state, self.generation);
        self.pending_members
            .retain(|_, deadline| *deadline > now_ms);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline_ms <= now_ms
                    && m.pending_join.is_none()
                    && m.pending_sync.is_none()
            })
            .map(|m| m.member_id.clone())
            .collect();
        if !expired.is_empty() {
            tracing::info!(group = %self.group_id, members = ?expired, "member sessions expired");
            for id in &expired {
                self.remove_member(id);
            }
            self.rebalance_after_departure(now_ms);
        }
        self.maybe_complete_join(now_ms);
        before != (self.state, self.generation) && matches!(self.state, GroupState::Empty)
    }

    /// The topics the consumer-protocol members subscribe to, `None` when the group has no
    /// active consumer-protocol members (for OffsetDelete).
    pub fn subscribed_topics(&self) -> Option<Vec<String>> {
        if self.protocol_type.as_deref() != Some("consumer") || self.members.is_empty() {
            return None;
        }
        let protocol = self.protocol.clone()?;
        Some(
            self.members
                .values()
                .flat_map(|m| decode_subscription_topics(&m.metadata_for(&protocol)))
                .collect(),
        )
    }
}

fn req_with_id(mut req: JoinRequest, member_id: String) -> JoinRequest {
    req.member_id = member_id;
    req
}

/// Topics of a ConsumerProtocolSubscription (int16 version, then an int16-length string array in
/// every version), read with bounds checks; empty if it cannot be read.
pub fn decode_subscription_topics(metadata: &[u8]) -> Vec<String> {
    use bytes::Buf;
    let mut buf = metadata;
    if buf.remaining() < 6 {
        return Vec::new();
    }
    let _version = buf.get_i16();
    let count = buf.get_i32();
    let mut topics = Vec::new();
    for _ in 0..count.max(0) {
        if buf.remaining() < 2 {
            return Vec::new();
        }
        let len = buf.get_i16();
        if len < 0 || buf.remaining() < len as usize {
            return Vec::new();
        }
        match std::str::from_utf8(&buf[..len as usize]) {
            Ok(t) => topics.push(t.to_string()),
            Err(_) => return Vec::new(),
        }
        buf.advance(len as usize);
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join_req(member_id: &str, instance: Option<&str>, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            member_id: member_id.to_string(),
            group_instance_id: instance.map(str::to_string),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 5_000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from(p.to_string())))
                .collect(),
            require_known_member_id: true,
        }
    }

    fn now_result(reply: Reply<JoinResult>) -> JoinResult {
        match reply {
            Reply::Now(r) => r,
            Reply::Wait(_) => panic!("expected an immediate answer"),
        }
    }

    fn waiting(reply: Reply<JoinResult>) -> oneshot::Receiver<JoinResult> {
        match reply {
            Reply::Wait(rx) => rx,
            Reply::Now(r) => panic!("expected to wait, got {r:?}"),
        }
    }

    /// Joins a new dynamic member through MEMBER_ID_REQUIRED; returns its id and pending answer.
    fn join_new(
        g: &mut Group,
        now: i64,
        protocols: &[&str],
    ) -> (String, oneshot::Receiver<JoinResult>) {
        let first = now_result(g.join(join_req("", None, protocols), now, 0));
        assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
        let id = first.member_id.clone();
        (
            id.clone(),
            waiting(g.join(join_req(&id, None, protocols), now, 0)),
        )
    }

    /// SyncGroup as the coordinator runs it: a leader's assignment is persisted, then handed out.
    fn sync_done(g: &mut Group, req: SyncRequest<'_>, now: i64) -> (Reply<SyncResult>, bool) {
        let (reply, persist) = g.sync(req, now);
        if persist {
            assert_eq!(
                g.state,
                GroupState::CompletingRebalance,
                "stable only once persisted"
            );
            let generation = g.generation;
            g.finish_sync(generation, None, now);
        }
        (reply, persist)
    }

    #[test]
    fn next_deadline_is_the_earliest_thing_tick_would_act_on() {
        let mut g = Group::new("g", 0);
        assert_eq!(g.next_deadline(0), None, "an empty group waits for nothing");
        let first = now_result(g.join(join_req("", None, &["range"]), 0, 0));
        // The member id handed out with MEMBER_ID_REQUIRED expires after the session timeout.
        assert_eq!(g.next_deadline(0), Some(10_000));
        let _rx = waiting(g.join(join_req(&first.member_id, None, &["range"]), 5, 0));
        assert_eq!(g.state, GroupState::CompletingRebalance);
        // A member waiting for its SyncGroup answer does not expire; once it has it, its session
        // deadline counts.
        assert_eq!(g.next_deadline(5), Some(10_005));
        assert_eq!(
            g.next_deadline(10_005),
            None,
            "nothing after the last deadline"
        );
        assert!(g.tick(10_005), "the member expired at its deadline");
        assert_eq!(g.state, GroupState::Empty);
    }

    fn sync_req<'a>(
        member: &'a str,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncRequest<'a> {
        SyncRequest {
            member_id: member,
            instance: None,
            generation,
            protocol_type: None,
            protocol: None,
            assignments,
        }
    }

    #[test]
    fn single_member_becomes_leader_of_generation_one() {
        let mut g = Group::new("g", 0);
        let (id, mut rx) = join_new(&mut g, 0, &["range"]);
        let r = rx.try_recv().expect("join completed at once");
        assert_eq!(
            (r.error, r.generation, r.leader.as_str()),
            (None, 1, id.as_str())
        );
        assert_eq!(r.members.len(), 1);
        assert_eq!(g.state, GroupState::CompletingRebalance);
        let (reply, persist) = sync_done(
            &mut g,
            sync_req(&id, 1, vec![(id.clone(), Bytes::from_static(b"a"))]),
            1,
        );
        assert!(persist);
        let Reply::Wait(mut rx) = reply else {
            panic!("leader waits for its own answer")
        };
        assert_eq!(rx.try_recv().unwrap().assignment, Bytes::from_static(b"a"));
        assert_eq!(g.state, GroupState::Stable);
    }

    #[test]
    fn second_member_triggers_rebalance_and_everyone_rejoins() {
        let mut g = Group::new("g", 0);
        let (a, mut ra) = join_new(&mut g, 0, &["range"]);
        ra.try_recv().unwrap();
        sync_done(
            &mut g,
            sync_req(&a, 1, vec![(a.clone(), Bytes::from_static(b"all"))]),
            0,
        );
        let (b, mut rb) = join_new(&mut g, 10, &["range"]);
        assert_eq!(g.state, GroupState::PreparingRebalance);
        assert!(rb.try_recv().is_err(), "waits for the existing member");
        assert_eq!(
            g.heartbeat(&a, None, 1, 20),
            Some(ResponseError::RebalanceInProgress)
        );
        let mut ra = waiting(g.join(join_req(&a, None, &["range"]), 30, 0));
        let (ja, jb) = (ra.try_recv().unwrap(), rb.try_recv().unwrap());
        assert_eq!((ja.generation, jb.generation), (2, 2));
        assert_eq!(ja.leader, a, "the previous leader stays leader");
        assert_eq!(ja.members.len(), 2);
        assert!(jb.members.is_empty(), "followers get no member list");
        let (reply_b, _) = sync_done(&mut g, sync_req(&b, 2, vec![]), 40);
        let Reply::Wait(mut sb) = reply_b else {
            panic!("follower waits for the leader")
        };
        assert!(sb.try_recv().is_err());
        sync_done(
            &mut g,
            sync_req(
                &a,
                2,
                vec![
                    (a.clone(), Bytes::from_static(b"p0")),
                    (b.clone(), Bytes::from_static(b"p1")),
                ],
            ),
            50,
        );
        assert_eq!(sb.try_recv().unwrap().assignment, Bytes::from_static(b"p1"));
        assert_eq!(g.heartbeat(&b, None, 2, 60), None);
    }

    #[test]
    fn stale_generation_and_unknown_member_are_fenced() {
        let mut g = Group::new("g", 0);
        let (a, mut ra) = join_new(&mut g, 0, &["range"]);
        ra.try_recv().unwrap();
        assert_eq!(
            g.heartbeat(&a, None, 0, 1),
            Some(ResponseError::IllegalGeneration)
        );
        assert_eq!(
            g.heartbeat("nobody", None, 1, 1),
            Some(ResponseError::UnknownMemberId)
        );
        let (reply, _) = sync_done(&mut g, sync_req(&a, 7, vec![]), 1);
        let Reply::Now(r) = reply else { panic!() };
        assert_eq!(r.error, Some(ResponseError::IllegalGeneration));
        let r = now_result(g.join(join_req("made-up", None, &["range"]), 1, 0));
        assert_eq!(r.error, Some(ResponseError::UnknownMemberId));
    }

    #[test]
    fn inconsistent_protocols_are_refused() {
        let mut g = Group::new("g", 0);
        let (_, mut ra) = join_new(&mut g, 0, &["range"]);
        ra.try_recv().unwrap();
        let r = now_result(g.join(join_req("", None, &["roundrobin"]), 1, 0));
        assert_eq!(r.error, Some(ResponseError::InconsistentGroupProtocol));
        let mut other = join_req("", None, &["range"]);
        other.protocol_type = "connect".into();
        assert_eq!(
            now_result(g.join(other, 1, 0)).error,
            Some(ResponseError::InconsistentGroupProtocol)
        );
    }

    #[test]
    fn protocol_is_chosen_by_vote_among_common_ones() {
        let mut g = Group::new("g", 0);
        let (a, _ra) = join_new(&mut g, 0, &["sticky", "range", "roundrobin"]);
        // Complete generation 1, then add two members preferring roundrobin.
        sync_done(&mut g, sync_req(&a, 1, vec![]), 0);
        let (_, _rb) = join_new(&mut g, 1, &["roundrobin", "range"]);
        let (_, _rc) = join_new(&mut g, 1, &["roundrobin", "range"]);
        let mut ra = waiting(g.join(join_req(&a, None, &["sticky", "range", "roundrobin"]), 2, 0));
        let r = ra.try_recv().unwrap();
        assert_eq!(
            r.protocol.as_deref(),
            Some("roundrobin"),
            "two votes beat one; sticky is not common"
        );
    }

    #[test]
    fn session_expiry_removes_member_and_rebalances() {
        let mut g = Group::new("g", 0);
        let (a, mut ra) = join_new(&mut g, 0, &["range"]);
        ra.try_recv().unwrap();
        sync_done(&mut g, sync_req(&a, 1, vec![]), 0);
        let (b, mut rb) = join_new(&mut g, 100, &["range"]);
        let mut ra = waiting(g.join(join_req(&a, None, &["range"]), 100, 0));
        ra.try_recv().unwrap();
        rb.try_recv().unwrap();
        sync_done(&mut g, sync_req(&a, 2, vec![]), 100);
        sync_done(&mut g, sync_req(&b, 2, vec![]), 100);
        assert_eq!(g.state, GroupState::Stable);
        // Only a heartbeats; b's session (10 s) runs out.
        assert_eq!(g.heartbeat(&a, None, 2, 9_000), None);
        g.tick(10_200);
        assert!(!g.members.contains_key(&b));
        assert_eq!(g.state, GroupState::PreparingRebalance);
        let mut ra = waiting(g.join(join_req(&a, None, &["range"]), 10_300, 0));
        assert_eq!(ra.try_recv().unwrap().generation, 3);
    }

    #[test]
    fn rebalance_timeout_drops_members_that_do_not_rejoin() {
        let mut g = Group::new("g", 0);
        let (a, mut ra) = join_new(&mut g, 0, &["range"]);
        ra.try_recv().unwrap();
        sync_done(&mut g, sync_req(&a, 1, vec![]), 0);
        let (b, mut rb) = join_new(&mut g, 10, &["range"]);
        g.tick(2_000);
        assert!(
            rb.try_recv().is_err(),
            "still waiting within the rebalance timeout"
        );
        g.tick(10 + 5_001);
        let r = rb.try_recv().expect("completed at the rebalance deadline");
        assert_eq!((r.generation, r.leader.as_str()), (2, b.as_str()));
        assert!(!g.members.contains_key(&a), "a never rejoined");
    }

    #[test]
    fn leave_empties_group_and_unknown_leave_is_reported() {
        let mut g = Group::new("g", 0);
        let (a, mut ra) = join_new(&mut g, 0, &["range"]);
        ra.try_recv().unwrap();
        assert_eq!(
            g.leave("ghost", None, 1),
            Some(ResponseError::UnknownMemberId)
        );
        assert_eq!(g.leave(&a, None, 1), None);
        assert_eq!(g.state, GroupState::Empty);
        assert!(g.members.is_empty());
    }

    #[test]
    fn static_member_rejoining_keeps_assignment_and_fences_old_id() {
        let mut g = Group::new("g", 0);
        let mut ra = waiting(g.join(join_req("", Some("inst-1"), &["range"]), 0, 0));
        let first = ra.try_recv().unwrap();
        let old = first.member_id.clone();
        sync_done(
            &mut g,
            sync_req(&old, 1, vec![(old.clone(), Bytes::from_static(b"mine"))]),
            0,
        );
        assert_eq!(g.state, GroupState::Stable);
        // Restarted process: same instance id, no member id.
        let r = now_result(g.join(join_req("", Some("inst-1"), &["range"]), 100, 0));
        assert_eq!(r.error, None);
        assert_eq!(
            r.generation, 1,
            "no rebalance for a returning static member"
        );
        assert_ne!(r.member_id, old);
        assert_eq!(
            g.heartbeat(&old, Some("inst-1"), 1, 101),
            Some(ResponseError::FencedInstanceId)
        );
        let (reply, _) = sync_done(&mut g, sync_req(&r.member_id, 1, vec![]), 102);
        let Reply::Now(s) = reply else { panic!() };
        assert_eq!(s.assignment, Bytes::from_static(b"mine"));
    }

    #[test]
    fn a_long_rebalance_does_not_expire_members_that_waited() {
        let mut g = Group::new("g", 0);
        let (a, mut ra) = join_new(&mut g, 0, &["range"]);
        ra.try_recv().unwrap();
        sync_done(&mut g, sync_req(&a, 1, vec![]), 0);
        // b joins at 100 and waits; a rejoins only at 4_900 (rebalance timeout 5 s, session 10 s),
        // then the group completes; nobody may be expired right after.
        let mut req = join_req("", None, &["range"]);
        req.session_timeout_ms = 1_000;
        let first = now_result(g.join(req, 100, 0));
        let mut req = join_req(&first.member_id, None, &["range"]);
        req.session_timeout_ms = 1_000;
        let mut rb = waiting(g.join(req, 100, 0));
        let mut ra = waiting(g.join(join_req(&a, None, &["range"]), 4_900, 0));
        ra.try_recv().unwrap();
        rb.try_recv().unwrap();
        g.tick(5_000);
        assert_eq!(
            g.members.len(),
            2,
            "b's session restarted when the join completed"
        );
        assert_eq!(g.state, GroupState::CompletingRebalance);
    }

    #[test]
    fn a_persisted_sync_of_an_older_generation_changes_nothing() {
        let mut g = Group::new("g", 0);
        let (a, mut ra) = join_new(&mut g, 0, &["range"]);
        ra.try_recv().unwrap();
        let (reply, persist) = g.sync(
            sync_req(&a, 1, vec![(a.clone(), Bytes::from_static(b"x"))]),
            1,
        );
        assert!(persist);
        let Reply::Wait(mut rx) = reply else { panic!() };
        // While the assignment replicates, the group reaches generation 2.
        g.generation = 2;
        g.finish_sync(1, None, 2);
        assert_eq!(g.state, GroupState::CompletingRebalance);
        assert!(
            rx.try_recv().is_err(),
            "no answer for a superseded generation"
        );
        g.finish_sync(2, None, 3);
        assert_eq!(g.state, GroupState::Stable);
        assert_eq!(rx.try_recv().unwrap().assignment, Bytes::from_static(b"x"));
    }

    #[test]
    fn failed_persistence_fails_the_sync_and_rebalances() {
        let mut g = Group::new("g", 0);
        let (a, mut ra) = join_new(&mut g, 0, &["range"]);
        ra.try_recv().unwrap();
        let (reply, persist) = g.sync(
            sync_req(&a, 1, vec![(a.clone(), Bytes::from_static(b"x"))]),
            1,
        );
        assert!(persist);
        g.finish_sync(1, Some(ResponseError::UnknownServerError), 1);
        let Reply::Wait(mut rx) = reply else { panic!() };
        assert_eq!(
            rx.try_recv().unwrap().error,
            Some(ResponseError::UnknownServerError)
        );
        assert_eq!(g.state, GroupState::PreparingRebalance);
    }

    #[test]
    fn subscription_topics_are_read_with_bounds_checks() {
        // version 1, two topics "a" and "bc", then user data.
        let md = [
            0u8, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c', 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(
            decode_subscription_topics(&md),
            vec!["a".to_string(), "bc".to_string()]
        );
        assert!(decode_subscription_topics(&[0, 1, 0x7f, 0xff, 0xff, 0xff, 0, 1]).is_empty());
        assert!(decode_subscription_topics(&[0]).is_empty());
    }
}
