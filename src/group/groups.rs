//! The groups this broker coordinates, in memory: each group with its committed offsets under
//! its own lock, and which `__consumer_offsets` partitions are loaded. Rebuilt from the records
//! of those partitions; no I/O happens here.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use dashmap::DashMap;
use kafka_protocol::records::RecordBatchDecoder;
use parking_lot::Mutex;
use tracing::{info, warn};

use super::records::{partition_for, GroupValue, MemberValue, OffsetValue, RecordKey, TxnMarker};
use super::state::{self, Group, GroupState};
use super::{GroupEntry, KeyValue};
use crate::config::GroupSettings;
use crate::log::whole_batches;

/// Every group of this broker's loaded `__consumer_offsets` partitions.
pub struct Groups {
    pub settings: GroupSettings,
    groups: DashMap<String, Arc<Mutex<GroupEntry>>>,
    /// `__consumer_offsets` partitions whose groups are loaded (this broker coordinates them).
    loaded: Mutex<BTreeSet<i32>>,
    /// The groups each producer has pending transactional offsets in (Kafka's
    /// `openGroupsForProducer`); may name groups that have gone since.
    producer_groups: Mutex<HashMap<i64, BTreeSet<String>>>,
}

/// What a record's batch says about it while loading: where the batch starts and, for a
/// transactional batch, its producer.
#[derive(Clone, Copy)]
struct BatchContext {
    base_offset: i64,
    txn_producer: Option<i64>,
}

impl Groups {
    pub fn new(settings: GroupSettings) -> Groups {
        Groups {
            settings,
            groups: DashMap::new(),
            loaded: Mutex::new(BTreeSet::new()),
            producer_groups: Mutex::new(HashMap::new()),
        }
    }

    /// The `__consumer_offsets` partition that holds `group`.
    pub fn partition_of(&self, group: &str) -> i32 {
        partition_for(group, self.settings.offsets_topic_num_partitions)
    }

    /// The entry of a group, created empty when `create` is set.
    pub fn entry(&self, group: &str, create: bool, now_ms: i64) -> Option<Arc<Mutex<GroupEntry>>> {
        if let Some(e) = self.groups.get(group) {
            return Some(e.clone());
        }
        if !create {
            return None;
        }
        Some(
            self.groups
                .entry(group.to_string())
                .or_insert_with(|| Arc::new(Mutex::new(GroupEntry::new(Group::new(group, now_ms)))))
                .clone(),
        )
    }

    pub fn group_ids(&self) -> Vec<String> {
        self.groups.iter().map(|e| e.key().clone()).collect()
    }

    /// Notes that `group` has pending transactional offsets of `producer_id`.
    pub fn add_producer_group(&self, producer_id: i64, group: &str) {
        self.producer_groups
            .lock()
            .entry(producer_id)
            .or_default()
            .insert(group.to_string());
    }

    /// Takes out the groups of offsets partition `index` with pending transactional offsets of
    /// `producer_id` (their transaction is ending).
    pub fn take_producer_groups(&self, producer_id: i64, index: i32) -> Vec<String> {
        let mut all = self.producer_groups.lock();
        let Some(groups) = all.get_mut(&producer_id) else {
            return Vec::new();
        };
        let taken: Vec<String> = groups
            .iter()
            .filter(|g| self.partition_of(g) == index)
            .cloned()
            .collect();
        for g in &taken {
            groups.remove(g);
        }
        if groups.is_empty() {
            all.remove(&producer_id);
        }
        taken
    }

    /// Forgets which producers have offsets pending in the groups of offsets partition `index`.
    fn forget_producer_groups(&self, index: i32) {
        let mut all = self.producer_groups.lock();
        for groups in all.values_mut() {
            groups.retain(|g| self.partition_of(g) != index);
        }
        all.retain(|_, groups| !groups.is_empty());
    }

    /// Completes the transaction of `producer_id` in the groups of offsets partition `index`:
    /// their pending offsets of the producer are committed or dropped.
    pub fn complete_transaction(&self, index: i32, producer_id: i64, commit: bool) -> usize {
        let mut completed = 0;
        for group in self.take_producer_groups(producer_id, index) {
            if let Some(entry) = self.groups.get(&group).map(|e| e.clone()) {
                let mut e = entry.lock();
                if e.complete_txn(producer_id, commit) {
                    completed += 1;
                }
            }
        }
        completed
    }

    /// Forgets a group entirely (after DeleteGroups or expiry).
    pub fn remove(&self, group: &str) {
        self.groups.remove(group);
    }

    /// The group metadata record for the group's current state.
    pub fn group_record(group: &Group) -> KeyValue {
        let key = RecordKey::Group {
            group: group.group_id.clone(),
        }
        .encode();
        if group.state == GroupState::Dead {
            return (key, None);
        }
        let value = GroupValue {
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            generation: group.generation,
            protocol: group.protocol.clone(),
            leader: group.leader.clone(),
            current_state_timestamp: group.current_state_timestamp_ms,
            members: group
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: group
                        .protocol
                        .as_ref()
                        .and_then(|p| m.protocols.iter().find(|(n, _)| n == p))
                        .map(|(_, md)| md.clone())
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        };
        (key, Some(value.encode()))
    }

    /// Whether the groups of offsets partition `index` are loaded here.
    pub fn is_loaded(&self, index: i32) -> bool {
        self.loaded.lock().contains(&index)
    }

    /// Forgets the groups of offsets partition `index` (another broker coordinates them now).
    pub fn unload_partition(&self, index: i32) {
        if self.loaded.lock().remove(&index) {
            self.groups.retain(|g, _| self.partition_of(g) != index);
            self.forget_producer_groups(index);
            info!(
                partition = index,
                "groups of this offsets partition unloaded"
            );
        }
    }

    /// Starts rebuilding the groups of offsets partition `index`: its groups are forgotten until
    /// [`Groups::apply_batches`] has replayed the partition's records.
    pub fn begin_load(&self, index: i32) {
        self.groups.retain(|g, _| self.partition_of(g) != index);
        self.forget_producer_groups(index);
    }

    /// Ends rebuilding offsets partition `index`: its groups are served from now on.
    pub fn finish_load(&self, index: i32) {
        self.loaded.lock().insert(index);
        // A group tombstone followed by new commits is an empty group again.
        self.groups.retain(|_, e| {
            let mut e = e.lock();
            if e.group.state == GroupState::Dead && e.has_offsets() {
                e.group.state = GroupState::Empty;
            }
            e.group.state != GroupState::Dead
        });
        if !self.groups.is_empty() {
            info!(
                groups = self.groups.len(),
                "consumer groups loaded from __consumer_offsets"
            );
        }
    }

    /// Applies the records of stored batches of offsets partition `index`; returns the offset
    /// after the last whole batch. Offsets of a transactional batch stay pending for its producer
    /// until a control batch of that producer commits or aborts them (as Kafka loads them).
    pub fn apply_batches(&self, index: i32, data: Bytes, now_ms: i64) -> Option<i64> {
        let mut next = None;
        for (header, mut one) in whole_batches(data) {
            let base = header.base_offset;
            next = Some(header.next_offset());
            let batch = BatchContext {
                base_offset: base,
                txn_producer: header.is_transactional().then_some(header.producer_id),
            };
            match RecordBatchDecoder::decode_all(&mut one) {
                Ok(sets) => {
                    let mut records = sets.into_iter().flat_map(|s| s.records);
                    if header.is_control() {
                        let marker = records
                            .next()
                            .and_then(|r| r.key.as_deref().and_then(TxnMarker::from_control_key));
                        if let Some(marker) = marker {
                            let commit = marker == TxnMarker::Commit;
                            self.complete_transaction(index, header.producer_id, commit);
                        }
                        continue;
                    }
                    for record in records {
                        let (key, value) = (record.key.as_deref(), record.value.as_deref());
                        self.apply_record(key, value, batch, now_ms);
                    }
                }
                Err(e) => {
                    warn!(offset = base, error = %e, "undecodable batch in __consumer_offsets skipped")
                }
            }
        }
        next
    }

    fn apply_record(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        batch: BatchContext,
        now_ms: i64,
    ) {
        let Some(key) = key.and_then(|k| RecordKey::decode(k).ok()) else {
            return;
        };
        let Some(entry) = self.entry(key.group(), true, now_ms) else {
            return;
        };
        let mut e = entry.lock();
        match (key, value) {
            (
                RecordKey::Offset {
                    group,
                    topic,
                    partition,
                },
                value,
            ) => {
                let value = match value.map(OffsetValue::decode) {
                    Some(Ok(v)) => Some(v),
                    Some(Err(_)) => return,
                    None => None,
                };
                let tp = (topic, partition);
                match (batch.txn_producer, value) {
                    (Some(producer_id), value) => {
                        self.add_producer_group(producer_id, &group);
                        e.load_txn_record(producer_id, tp, value, batch.base_offset);
                    }
                    (None, Some(v)) => e.set_committed(tp, v, batch.base_offset),
                    (None, None) => {
                        e.offsets.remove(&tp);
                    }
                }
            }
            (RecordKey::Group { .. }, None) => {
                e.group = Group::new(&e.group.group_id.clone(), now_ms);
                e.group.state = GroupState::Dead;
            }
            (RecordKey::Group { .. }, Some(v)) => {
                if let Ok(v) = GroupValue::decode(v) {
                    restore_group(&mut e.group, v, now_ms);
                }
            }
        }
    }

    /// Session expiry and overdue rebalances of every group. Returns the group records to
    /// persist, and when the next group deadline after `now_ms` falls.
    pub fn tick(&self, now_ms: i64) -> (Vec<(String, KeyValue)>, Option<i64>) {
        let mut out = Vec::new();
        let mut next: Option<i64> = None;
        for entry in self.groups.iter() {
            let mut e = entry.lock();
            if e.group.tick(now_ms) {
                out.push((e.group.group_id.clone(), Self::group_record(&e.group)));
            }
            if let Some(t) = e.group.next_deadline(now_ms) {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        (out, next)
    }

    /// Removes offsets past retention: of empty groups (counted from when they became empty)
    /// and of groups without a protocol (simple consumers, counted from each commit). Returns
    /// the tombstones to write per group.
    pub fn expire_offsets(&self, now_ms: i64) -> Vec<(String, Vec<KeyValue>)> {
        let retention = self.settings.offsets_retention_ms;
        let mut out = Vec::new();
        let mut dead = Vec::new();
        for entry in self.groups.iter() {
            let mut e = entry.lock();
            if !e.group.members.is_empty() {
                continue;
            }
            let group_id = e.group.group_id.clone();
            let empty_since = e.group.current_state_timestamp_ms;
            let simple = e.group.protocol_type.is_none();
            let expired: Vec<(String, i32)> = e
                .offsets
                .iter()
                .filter(|(_, v)| {
                    let base = if simple {
                        v.commit_timestamp
                    } else {
                        empty_since.max(v.commit_timestamp)
                    };
                    match v.expire_timestamp {
                        Some(expire) if expire >= 0 => now_ms >= expire,
                        _ => now_ms >= base.saturating_add(retention),
                    }
                })
                .map(|(k, _)| k.clone())
                .collect();
            let mut tombstones = Vec::new();
            for (topic, partition) in expired {
                tombstones.push(RecordKey::offset(&group_id, &topic, partition).tombstone());
                e.offsets.remove(&(topic, partition));
            }
            if !e.has_offsets() && e.group.state == GroupState::Empty {
                e.group.state = GroupState::Dead;
                let key = RecordKey::Group {
                    group: group_id.clone(),
                };
                tombstones.push(key.tombstone());
                dead.push(group_id.clone());
            }
            if !tombstones.is_empty() {
                out.push((group_id, tombstones));
            }
        }
        for g in dead {
            self.groups.remove(&g);
        }
        out
    }
}

fn restore_group(group: &mut Group, v: GroupValue, now_ms: i64) {
    let id = group.group_id.clone();
    *group = Group::new(&id, now_ms);
    group.protocol_type = (!v.protocol_type.is_empty()).then_some(v.protocol_type);
    group.generation = v.generation;
    group.protocol = v.protocol.clone();
    group.leader = v.leader;
    if v.current_state_timestamp >= 0 {
        group.current_state_timestamp_ms = v.current_state_timestamp;
    }
    let protocol = v.protocol.unwrap_or_default();
    for m in v.members {
        if let Some(instance) = &m.group_instance_id {
            group
                .static_members
                .insert(instance.clone(), m.member_id.clone());
        }
        group.members.insert(
            m.member_id.clone(),
            state::Member {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout,
                rebalance_timeout_ms: m.rebalance_timeout,
                protocols: vec![(protocol.clone(), m.subscription)],
                assignment: m.assignment,
                session_deadline_ms: now_ms + i64::from(m.session_timeout),
                pending_join: None,
                pending_sync: None,
            },
        );
    }
    group.state = if group.members.is_empty() {
        GroupState::Empty
    } else {
        GroupState::Stable
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(retention_ms: i64) -> GroupSettings {
        GroupSettings {
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 0,
            max_size: 100,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 1,
            offsets_topic_segment_bytes: 100 << 20,
            offsets_retention_ms: retention_ms,
            offsets_retention_check_interval_ms: 1000,
            offset_metadata_max_bytes: 4096,
        }
    }

    fn commit(c: &Groups, group: &str, partition: i32, at: i64) {
        let entry = c.entry(group, true, at).unwrap();
        entry.lock().offsets.insert(
            ("t".to_string(), partition),
            OffsetValue {
                offset: 5,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: at,
                expire_timestamp: None,
            },
        );
    }

    #[test]
    fn simple_consumer_offsets_expire_per_commit_and_the_group_goes() {
        let c = Groups::new(settings(1000));
        commit(&c, "simple", 0, 0);
        commit(&c, "simple", 1, 800);
        assert!(c.expire_offsets(999).is_empty());
        let out = c.expire_offsets(1000);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.len(), 1, "only partition 0 expired");
        assert!(out[0].1.iter().all(|(_, v)| v.is_none()), "tombstones");
        let out = c.expire_offsets(1800);
        assert_eq!(out[0].1.len(), 2, "partition 1 and the group record");
        assert!(c.entry("simple", false, 0).is_none());
    }

    #[test]
    fn offsets_of_a_group_with_members_never_expire() {
        let c = Groups::new(settings(1000));
        commit(&c, "busy", 0, 0);
        let entry = c.entry("busy", false, 0).unwrap();
        let req = state::JoinRequest {
            member_id: String::new(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/h".into(),
            session_timeout_ms: 60_000,
            rebalance_timeout_ms: 60_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::new())],
            require_known_member_id: false,
        };
        let _ = entry.lock().group.join(req, 0, 0);
        assert!(c.expire_offsets(10_000).is_empty());
    }

    #[test]
    fn load_rebuilds_groups_and_offsets_from_records() {
        let c = Groups::new(settings(1000));
        let key = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 2,
        }
        .encode();
        let value = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 7,
            expire_timestamp: None,
        };
        let gone = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 9,
        }
        .encode();
        let batch = super::super::records::build_batch(
            vec![
                (gone.clone(), Some(value.encode())),
                (key, Some(value.encode())),
                (gone, None),
            ],
            7,
        )
        .unwrap();
        c.apply_batches(c.partition_of("g"), batch, 10);
        let entry = c.entry("g", false, 0).unwrap();
        let e = entry.lock();
        assert_eq!(e.offsets.len(), 1);
        assert_eq!(e.offsets[&("t".to_string(), 2)].offset, 42);
    }
}
