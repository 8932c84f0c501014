use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::*;
use crate::config::GroupSettings;
use crate::group::groups::Groups;
use crate::group::records::{build_batch, RecordKey, TxnMarker};
use crate::group::state::JoinRequest;
use crate::group::KeyValue;
use crate::log::BatchHeader;

fn value(offset: i64) -> OffsetValue {
    OffsetValue {
        offset,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp: 1,
        expire_timestamp: None,
    }
}

fn tp(p: i32) -> PartitionKey {
    ("t".to_string(), p)
}

fn entry() -> GroupEntry {
    GroupEntry::new(Group::new("g", 0))
}

#[test]
fn pending_offsets_are_not_committed_until_the_commit_marker() {
    let mut e = entry();
    e.prepare_txn(7, vec![(tp(0), value(10)), (tp(1), value(11))], 100);
    assert!(
        e.offsets.is_empty(),
        "pending offsets are not committed ones"
    );
    assert!(e.has_pending_txn_for(&tp(0)) && e.has_pending_txn_from(7));
    assert!(!e.has_pending_txn_for(&tp(2)) && !e.has_pending_txn_from(8));
    assert!(
        e.has_offsets(),
        "a group with only pending offsets has offsets"
    );
    assert!(
        !e.complete_txn(8, true),
        "another producer has nothing pending"
    );
    assert!(e.complete_txn(7, true));
    assert_eq!(e.offsets[&tp(0)].offset, 10);
    assert_eq!(e.offsets[&tp(1)].offset, 11);
    assert_eq!(e.committed_at[&tp(0)], 100);
    assert!(!e.has_pending_txn_for(&tp(0)) && !e.has_pending_txn_from(7));
}

#[test]
fn abort_drops_the_pending_offsets_and_keeps_the_committed_ones() {
    let mut e = entry();
    e.set_committed(tp(0), value(5), 50);
    e.prepare_txn(7, vec![(tp(0), value(10))], 100);
    assert!(e.complete_txn(7, false));
    assert_eq!(e.offsets[&tp(0)].offset, 5);
    assert!(e.pending_txn.is_empty());
}

#[test]
fn a_commit_written_after_the_transactional_offset_wins() {
    let mut e = entry();
    e.set_committed(tp(0), value(5), 50);
    e.prepare_txn(7, vec![(tp(0), value(10)), (tp(1), value(20))], 100);
    // A plain OffsetCommit of partition 1 lands after the transaction's record.
    e.set_committed(tp(1), value(21), 150);
    e.complete_txn(7, true);
    assert_eq!(
        e.offsets[&tp(0)].offset,
        10,
        "older committed offset replaced"
    );
    assert_eq!(e.offsets[&tp(1)].offset, 21, "newer committed offset kept");
    assert_eq!(e.committed_at[&tp(1)], 150);
}

#[test]
fn producers_are_independent_and_the_latest_write_of_a_producer_counts() {
    let mut e = entry();
    e.prepare_txn(7, vec![(tp(0), value(10))], 100);
    e.prepare_txn(8, vec![(tp(0), value(30))], 110);
    e.prepare_txn(7, vec![(tp(0), value(12))], 120);
    e.complete_txn(8, true);
    assert_eq!(e.offsets[&tp(0)].offset, 30);
    assert!(e.has_pending_txn_for(&tp(0)), "producer 7 is still open");
    e.complete_txn(7, true);
    assert_eq!(e.offsets[&tp(0)].offset, 12, "written at 120, after 110");
}

#[test]
fn a_failed_write_is_forgotten_but_a_later_one_is_not() {
    let mut e = entry();
    e.prepare_txn(7, vec![(tp(0), value(10)), (tp(1), value(11))], 100);
    e.prepare_txn(7, vec![(tp(1), value(12))], 200);
    e.fail_txn(7, &[tp(0), tp(1)], 100);
    assert!(!e.has_pending_txn_for(&tp(0)));
    assert_eq!(e.pending_txn[&7][&tp(1)].value.offset, 12);
    e.fail_txn(7, &[tp(1)], 200);
    assert!(e.pending_txn.is_empty() && !e.has_offsets());
}

#[test]
fn deleting_a_partition_offset_drops_pending_ones_too() {
    let mut e = entry();
    e.prepare_txn(7, vec![(tp(0), value(10)), (tp(1), value(11))], 100);
    e.prepare_txn(8, vec![(tp(0), value(20))], 110);
    e.remove_pending_txn(&tp(0));
    assert!(!e.has_pending_txn_for(&tp(0)));
    assert!(
        !e.has_pending_txn_from(8),
        "a producer left with nothing is gone"
    );
    assert!(e.has_pending_txn_from(7));
}

fn txn(member: &str, instance: Option<&str>, generation: i32) -> TxnOffsetCommit {
    TxnOffsetCommit {
        group_id: "g".into(),
        producer_id: 7,
        producer_epoch: 0,
        member_id: member.into(),
        group_instance_id: instance.map(str::to_string),
        generation,
        offsets: Vec::new(),
    }
}

/// A stable group of generation 1 with one static member ("inst") and its member id.
fn stable_group() -> (Group, String) {
    let mut g = Group::new("g", 0);
    let req = JoinRequest {
        member_id: String::new(),
        group_instance_id: Some("inst".into()),
        client_id: "c".into(),
        client_host: "/h".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::new())],
        require_known_member_id: false,
    };
    let _ = g.join(req, 0, 0);
    let member = g.members.keys().next().cloned().unwrap_or_default();
    (g, member)
}

#[test]
fn kip_447_member_checks() {
    let (g, member) = stable_group();
    assert_eq!(g.generation, 1);
    assert_eq!(check_txn_commit(&g, &txn(&member, Some("inst"), 1)), Ok(()));
    assert_eq!(check_txn_commit(&g, &txn(&member, None, 1)), Ok(()));
    assert_eq!(
        check_txn_commit(&g, &txn("other", None, 1)),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        check_txn_commit(&g, &txn(&member, None, 2)),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        check_txn_commit(&g, &txn("other", Some("inst"), 1)),
        Err(ResponseError::FencedInstanceId)
    );
    assert_eq!(
        check_txn_commit(&g, &txn(&member, Some("unknown-instance"), 1)),
        Err(ResponseError::UnknownMemberId)
    );
    // Before KIP-447 (TxnOffsetCommit v0-2) there are no member fields: anyone may commit.
    assert_eq!(check_txn_commit(&g, &txn("", None, -1)), Ok(()));
    // A generation alone names a member: the empty member id is unknown.
    assert_eq!(
        check_txn_commit(&g, &txn("", None, 1)),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn empty_and_dead_groups() {
    let mut g = Group::new("g", 0);
    assert_eq!(check_txn_commit(&g, &txn("", None, -1)), Ok(()));
    assert_eq!(check_txn_commit(&g, &txn("m", None, -1)), Ok(()));
    assert_eq!(
        check_txn_commit(&g, &txn("m", None, 0)),
        Err(ResponseError::UnknownMemberId)
    );
    g.state = GroupState::Dead;
    assert_eq!(
        check_txn_commit(&g, &txn("", None, -1)),
        Err(ResponseError::CoordinatorNotAvailable)
    );
}

#[test]
fn the_transactional_batch_is_one_batch_of_the_producer() {
    let records = vec![
        (
            RecordKey::offset("g", "t", 0).encode(),
            Some(value(1).encode()),
        ),
        (
            RecordKey::offset("g", "t", 1).encode(),
            Some(value(2).encode()),
        ),
        (
            RecordKey::offset("g", "t", 2).encode(),
            Some(value(3).encode()),
        ),
    ];
    let batch = build_txn_batch(records, 42, 3, 1000).unwrap();
    let h = BatchHeader::parse(&batch).unwrap();
    assert_eq!(h.size(), Some(batch.len()), "a single batch");
    assert!(h.is_transactional() && !h.is_control());
    assert_eq!((h.producer_id, h.producer_epoch), (42, 3));
    assert_eq!(
        (h.base_sequence, h.records_count, h.last_offset_delta),
        (0, 3, 2)
    );
    assert_eq!(h.magic, 2);
    assert_eq!(h.compression(), 0);
    assert_eq!(h.crc, crate::log::batch::compute_crc(&batch));
}

#[test]
fn control_record_keys() {
    assert_eq!(
        TxnMarker::from_control_key(&[0, 0, 0, 1]),
        Some(TxnMarker::Commit)
    );
    assert_eq!(
        TxnMarker::from_control_key(&[0, 0, 0, 0]),
        Some(TxnMarker::Abort)
    );
    assert_eq!(
        TxnMarker::from_control_key(&[0, 0, 0, 3]),
        None,
        "LEADER_CHANGE"
    );
    assert_eq!(TxnMarker::from_control_key(&[0, 0]), None);
}

// ---- loading: `__consumer_offsets` log bytes with transactional and control batches ----

fn settings() -> GroupSettings {
    GroupSettings {
        min_session_timeout_ms: 6000,
        max_session_timeout_ms: 1_800_000,
        initial_rebalance_delay_ms: 0,
        max_size: 100,
        offsets_topic_num_partitions: 1,
        offsets_topic_replication_factor: 1,
        offsets_topic_segment_bytes: 100 << 20,
        offsets_retention_ms: 1000,
        offsets_retention_check_interval_ms: 1000,
        offset_metadata_max_bytes: 4096,
    }
}

/// Builds a log: batches placed at consecutive offsets (base offsets patched as the log does).
#[derive(Default)]
struct LogBuilder {
    bytes: BytesMut,
    next: i64,
}

impl LogBuilder {
    fn push(&mut self, batch: Bytes) -> i64 {
        let h = BatchHeader::parse(&batch).unwrap();
        let at = self.next;
        let mut b = BytesMut::from(&batch[..]);
        b[0..8].copy_from_slice(&at.to_be_bytes());
        self.bytes.extend_from_slice(&b);
        self.next = at + i64::from(h.last_offset_delta) + 1;
        at
    }

    fn commit(&mut self, partition: i32, offset: i64) -> i64 {
        let rec = offset_record(partition, Some(offset));
        self.push(build_batch(vec![rec], 1).unwrap())
    }

    fn txn(&mut self, pid: i64, offsets: &[(i32, Option<i64>)]) -> i64 {
        let recs = offsets.iter().map(|(p, o)| offset_record(*p, *o)).collect();
        self.push(build_txn_batch(recs, pid, 0, 1).unwrap())
    }

    fn marker(&mut self, pid: i64, commit: bool) -> i64 {
        self.push(control_batch(pid, commit))
    }

    fn load(self) -> Groups {
        let groups = Groups::new(settings());
        groups.begin_load(0);
        assert_eq!(
            groups.apply_batches(0, self.bytes.freeze(), 10),
            Some(self.next)
        );
        groups.finish_load(0);
        groups
    }
}

fn offset_record(partition: i32, offset: Option<i64>) -> KeyValue {
    let key = RecordKey::offset("g", "t", partition).encode();
    (key, offset.map(|o| value(o).encode()))
}

/// A COMMIT or ABORT marker batch as Kafka writes it (control + transactional, one record
/// whose key is version 0 and the type, and whose value is version 0 and a coordinator epoch).
fn control_batch(pid: i64, commit: bool) -> Bytes {
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: pid,
        producer_epoch: 0,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1,
        key: Some(Bytes::from(vec![0, 0, 0, u8::from(commit)])),
        value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 5])),
        headers: IndexMap::new(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, [record].iter(), &options).unwrap();
    buf.freeze()
}

fn committed(groups: &Groups, partition: i32) -> Option<i64> {
    let entry = groups.entry("g", false, 0)?;
    let e = entry.lock();
    e.offsets.get(&tp(partition)).map(|v| v.offset)
}

fn pending(groups: &Groups, pid: i64, partition: i32) -> Option<i64> {
    let entry = groups.entry("g", false, 0)?;
    let e = entry.lock();
    let p = e.pending_txn.get(&pid)?.get(&tp(partition))?;
    Some(p.value.offset)
}

#[test]
fn loading_applies_committed_transactions_and_drops_aborted_ones() {
    let mut log = LogBuilder::default();
    log.commit(1, 5);
    log.txn(7, &[(0, Some(10))]);
    log.txn(8, &[(1, Some(20))]);
    log.txn(9, &[(2, Some(30))]);
    log.marker(7, true);
    log.marker(8, false);
    let groups = log.load();
    assert_eq!(committed(&groups, 0), Some(10), "committed transaction");
    assert_eq!(
        committed(&groups, 1),
        Some(5),
        "aborted transaction left the old offset"
    );
    assert_eq!(
        committed(&groups, 2),
        None,
        "open transaction not committed"
    );
    assert_eq!(
        pending(&groups, 9, 2),
        Some(30),
        "still pending after loading"
    );
    assert_eq!(pending(&groups, 7, 0), None);
    assert_eq!(pending(&groups, 8, 1), None);
    // The marker of the open transaction arriving later completes it.
    assert_eq!(groups.complete_transaction(0, 9, true), 1);
    assert_eq!(committed(&groups, 2), Some(30));
    assert_eq!(groups.complete_transaction(0, 9, true), 0, "nothing left");
}

#[test]
fn loading_keeps_a_commit_written_after_the_transaction() {
    let mut log = LogBuilder::default();
    log.txn(7, &[(0, Some(10)), (1, Some(11))]);
    log.commit(0, 12);
    log.marker(7, true);
    let groups = log.load();
    assert_eq!(
        committed(&groups, 0),
        Some(12),
        "written after the transaction's record"
    );
    assert_eq!(committed(&groups, 1), Some(11));
}

#[test]
fn loading_a_transactional_tombstone_and_a_marker_of_another_producer() {
    let mut log = LogBuilder::default();
    log.txn(7, &[(0, Some(10)), (1, Some(11))]);
    log.txn(7, &[(1, None)]);
    log.marker(8, true);
    let groups = log.load();
    assert_eq!(
        pending(&groups, 7, 0),
        Some(10),
        "another producer's marker"
    );
    assert_eq!(
        pending(&groups, 7, 1),
        None,
        "tombstoned inside the transaction"
    );
    let entry = groups.entry("g", false, 0).unwrap();
    assert_eq!(entry.lock().group.state, GroupState::Empty);
}

#[test]
fn a_marker_completes_only_the_groups_of_its_partition() {
    let groups = Groups::new(GroupSettings {
        offsets_topic_num_partitions: 50,
        ..settings()
    });
    let (a, b) = ("test-group", "g");
    assert_ne!(groups.partition_of(a), groups.partition_of(b));
    for g in [a, b] {
        let entry = groups.entry(g, true, 0).unwrap();
        entry.lock().prepare_txn(7, vec![(tp(0), value(1))], 0);
        groups.add_producer_group(7, g);
    }
    assert_eq!(
        groups.complete_transaction(groups.partition_of(a), 7, true),
        1
    );
    let committed_in = |g: &str| !groups.entry(g, false, 0).unwrap().lock().offsets.is_empty();
    assert!(committed_in(a) && !committed_in(b));
    assert_eq!(
        groups.complete_transaction(groups.partition_of(b), 7, false),
        1
    );
    assert!(!committed_in(b));
}

#[test]
fn a_group_with_pending_offsets_does_not_expire() {
    let groups = Groups::new(settings());
    let entry = groups.entry("g", true, 0).unwrap();
    entry.lock().prepare_txn(7, vec![(tp(0), value(1))], 0);
    assert!(groups.expire_offsets(1_000_000).is_empty());
    assert!(groups.entry("g", false, 0).is_some());
}

#[test]
fn unloading_a_partition_forgets_its_open_transactions() {
    let mut log = LogBuilder::default();
    log.txn(9, &[(0, Some(30))]);
    let groups = log.load();
    groups.unload_partition(0);
    assert!(groups.take_producer_groups(9, 0).is_empty());
}
