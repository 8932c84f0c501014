//! Transactions in the log: markers, ongoing transactions and the first unstable offset, the
//! aborted-transaction index (append, truncation, deletion, recovery) and the read side.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::test_util::{batch, TestBatch};
use super::batch::{parse_end_txn_marker, BatchHeader};
use super::*;

fn tp() -> TopicPartition {
    TopicPartition::new("txn", 0)
}

fn cfg() -> LogConfig {
    LogConfig {
        retention_ms: -1,
        ..Default::default()
    }
}

fn small_cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 100,
        ..cfg()
    }
}

fn open(dir: &Path, c: LogConfig) -> (Arc<LogManager>, Arc<PartitionLog>) {
    let m = LogManager::open(dir).unwrap();
    let l = m.open_partition(&tp(), c).unwrap();
    (m, l)
}

fn txn(records: usize, pid: i64, epoch: i16, seq: i32) -> Vec<u8> {
    TestBatch::new(records, 1000)
        .transactional(pid, epoch, seq)
        .build()
}

/// A client's append with the verification guard of the payload's (first) producer, as the
/// Produce path passes it after verifying the partition with the transaction coordinator.
fn vappend(
    l: &PartitionLog,
    records: &[u8],
    leader_epoch: i32,
    now_ms: i64,
) -> Result<AppendInfo, AppendError> {
    let pid = BatchHeader::parse(records).unwrap().producer_id;
    let guard = l.verification_guard(pid);
    l.append_from_verified(
        records,
        leader_epoch,
        now_ms,
        AppendOrigin::Client,
        Some(guard),
    )
}

fn aborted(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: pid,
        first_offset: first,
        last_offset: last,
        last_stable_offset: lso,
    }
}

fn txn_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir.join(tp().dir_name()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".txnindex"))
        .collect();
    v.sort();
    v
}

fn all_aborted(l: &PartitionLog) -> Vec<AbortedTxn> {
    l.segments
        .read()
        .iter()
        .flat_map(|s| s.meta.lock().txn_index.entries().to_vec())
        .collect()
}

#[test]
fn markers_complete_transactions_and_move_the_first_unstable_offset() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), cfg());
    l.append(&batch(2, 0), 0, 0).unwrap(); // 0-1
    assert_eq!(l.first_unstable_offset(), None);
    vappend(&l, &txn(2, 10, 0, 0), 0, 0).unwrap(); // 2-3, producer 10
    vappend(&l, &txn(1, 11, 0, 0), 0, 0).unwrap(); // 4, producer 11
    vappend(&l, &txn(1, 10, 0, 2), 0, 0).unwrap(); // 5, producer 10 again
    assert_eq!(l.first_unstable_offset(), Some(2));
    // A non-transactional write while the transaction is ongoing is refused.
    let plain = TestBatch::new(1, 0).idempotent(10, 0, 3).build();
    assert!(matches!(
        l.append(&plain, 0, 0),
        Err(AppendError::InvalidTxnState(_))
    ));
    // Producer 10 aborts: its index entry's LSO is producer 11's first offset.
    let at = l.append_marker(10, 0, false, 3, 0, 2000).unwrap();
    assert_eq!(at, 6);
    assert_eq!(l.first_unstable_offset(), Some(4));
    assert_eq!(all_aborted(&l), vec![aborted(10, 2, 6, 4)]);
    // Producer 11 commits: nothing is unstable, no index entry.
    assert_eq!(l.append_marker(11, 0, true, 3, 0, 2000).unwrap(), 7);
    assert_eq!(l.first_unstable_offset(), None);
    assert_eq!(all_aborted(&l).len(), 1);
    assert_eq!(l.log_end_offset(), 8);
    // The stored marker is Kafka's batch.
    let m = l.read(6, 1 << 20, true, Some(7)).unwrap().records;
    let h = BatchHeader::parse(&m).unwrap();
    assert_eq!((h.base_offset, h.producer_id, h.attributes), (6, 10, 0x30));
    assert_eq!(parse_end_txn_marker(&m).map(|x| x.commit), Some(false));
    // Producer 10's next transaction starts at its next transactional batch.
    vappend(&l, &txn(1, 10, 0, 3), 0, 0).unwrap();
    assert_eq!(l.first_unstable_offset(), Some(8));
}

#[test]
fn marker_epoch_checks() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), cfg());
    vappend(&l, &txn(1, 5, 3, 0), 0, 0).unwrap();
    assert!(matches!(
        l.append_marker(5, 2, false, 0, 0, 0),
        Err(AppendError::InvalidProducerEpoch(_))
    ));
    assert_eq!(l.log_end_offset(), 1, "a refused marker stores nothing");
    assert_eq!(l.first_unstable_offset(), Some(0));
    // A newer epoch (the coordinator bumped it on abort) is taken.
    l.append_marker(5, 4, false, 2, 0, 0).unwrap();
    assert_eq!(l.first_unstable_offset(), None);
    assert!(matches!(
        vappend(&l, &txn(1, 5, 3, 1), 0, 0),
        Err(AppendError::InvalidProducerEpoch(_))
    ));
    // An older coordinator epoch is fenced.
    assert!(matches!(
        l.append_marker(5, 4, true, 1, 0, 0),
        Err(AppendError::TransactionCoordinatorFenced(_))
    ));
    vappend(&l, &txn(1, 5, 4, 0), 0, 0).unwrap();
    assert_eq!(l.first_unstable_offset(), Some(2));
}

#[test]
fn unreplicated_markers_keep_the_transaction_unstable_until_the_high_watermark_passes() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), cfg());
    l.set_high_watermark(0);
    vappend(&l, &txn(2, 1, 0, 0), 0, 0).unwrap(); // 0-1
    l.append_marker(1, 0, true, 0, 0, 0).unwrap(); // 2
    l.set_high_watermark(2);
    assert_eq!(l.first_unstable_offset(), Some(0), "marker not replicated");
    l.set_high_watermark(3);
    assert_eq!(l.first_unstable_offset(), None);
}

#[test]
fn collect_aborted_transactions_across_segments() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), small_cfg());
    // Interleave two producers' transactions over several segments.
    let mut seq = [0i32; 3];
    let mut expect = Vec::new();
    for round in 0..6 {
        for pid in [1i64, 2] {
            let first = l.log_end_offset();
            for _ in 0..2 {
                vappend(&l, &txn(2, pid, 0, seq[pid as usize]), 0, 0).unwrap();
                seq[pid as usize] += 2;
            }
            let abort = (round + pid) % 2 == 0;
            let at = l.append_marker(pid, 0, !abort, 0, 0, 0).unwrap();
            if abort {
                expect.push(aborted(pid, first, at, at + 1));
            }
        }
    }
    assert!(l.num_segments() > 3, "{} segments", l.num_segments());
    assert_eq!(all_aborted(&l), expect);
    assert_eq!(txn_files(d.path()).len(), {
        let mut bases: Vec<i64> = Vec::new();
        for s in l.segments.read().iter() {
            if !s.meta.lock().txn_index.entries().is_empty() {
                bases.push(s.base_offset);
            }
        }
        bases.len()
    });
    let leo = l.log_end_offset();
    for from in 0..leo {
        for upper in from + 1..=leo {
            let want: Vec<_> = expect
                .iter()
                .filter(|t| t.last_offset >= from && t.first_offset < upper)
                .copied()
                .collect();
            assert_eq!(
                l.collect_aborted_transactions(from, upper),
                want,
                "[{from}, {upper})"
            );
        }
    }
}

#[test]
fn truncation_and_retention_cut_the_txn_index() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), small_cfg());
    let mut seq = 0;
    let mut markers = Vec::new();
    for _ in 0..12 {
        vappend(&l, &txn(3, 7, 0, seq), 0, 0).unwrap();
        seq += 3;
        markers.push(l.append_marker(7, 0, false, 0, 0, 0).unwrap());
    }
    assert_eq!(all_aborted(&l).len(), 12);
    // Ongoing transaction cut away by truncation is forgotten.
    vappend(&l, &txn(1, 7, 0, seq), 0, 0).unwrap();
    assert!(l.first_unstable_offset().is_some());
    let cut = markers[9];
    l.truncate_to(cut).unwrap();
    assert_eq!(l.log_end_offset(), cut);
    let left = all_aborted(&l);
    assert_eq!(left.len(), 9);
    assert!(left.iter().all(|t| t.last_offset < cut));
    // The transaction whose marker was cut is ongoing again.
    assert_eq!(l.first_unstable_offset(), Some(markers[8] + 1));
    // DeleteRecords-style removal of head segments deletes their txn index files.
    let files_before = txn_files(d.path()).len();
    let bases = l.segment_base_offsets();
    l.set_high_watermark(l.log_end_offset());
    l.increment_log_start_offset(bases[2], l.log_end_offset())
        .unwrap();
    assert_eq!(l.delete_segments_below_log_start().unwrap(), 2);
    let after = txn_files(d.path());
    assert!(after.len() < files_before, "{after:?}");
    for p in after {
        let base: i64 = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        assert!(base >= bases[2]);
    }
}

#[test]
fn recovery_rebuilds_ongoing_transactions_and_the_txn_index() {
    let d = tempfile::tempdir().unwrap();
    let expect;
    {
        let (_m, l) = open(d.path(), small_cfg());
        let mut seq = [0i32; 3];
        for pid in [1i64, 2, 1, 2, 1, 2, 1] {
            vappend(&l, &txn(2, pid, 0, seq[pid as usize]), 0, 0).unwrap();
            seq[pid as usize] += 2;
            l.append_marker(pid, 0, pid == 1, 0, 0, 0).unwrap();
        }
        vappend(&l, &txn(2, 2, 0, seq[2]), 0, 0).unwrap(); // ongoing at the crash
        l.append(&batch(1, 0), 0, 0).unwrap();
        expect = all_aborted(&l);
        assert_eq!(expect.len(), 3);
        assert_eq!(l.first_unstable_offset(), Some(l.log_end_offset() - 3));
        // Crash: no clean shutdown; lose every txn index file and snapshot too.
    }
    for p in txn_files(d.path()) {
        fs::remove_file(p).unwrap();
    }
    let dir = d.path().join(tp().dir_name());
    for e in fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".snapshot") {
            fs::remove_file(p).unwrap();
        }
    }
    let (_m, l) = open(d.path(), small_cfg());
    assert!(l.recovery_stats().segments_recovered > 1);
    assert_eq!(all_aborted(&l), expect);
    assert_eq!(l.first_unstable_offset(), Some(l.log_end_offset() - 3));
    assert!(!txn_files(d.path()).is_empty());
}

#[test]
fn snapshots_carry_ongoing_transactions_across_a_clean_restart() {
    let d = tempfile::tempdir().unwrap();
    {
        let (m, l) = open(d.path(), cfg());
        vappend(&l, &txn(2, 9, 1, 0), 0, 0).unwrap();
        vappend(&l, &txn(1, 9, 1, 2), 0, 0).unwrap();
        m.shutdown().unwrap();
    }
    let (_m, l) = open(d.path(), cfg());
    assert_eq!(l.recovery_stats().batches_replayed, 0);
    assert_eq!(l.first_unstable_offset(), Some(0));
    l.append_marker(9, 1, false, 0, 0, 0).unwrap();
    assert_eq!(all_aborted(&l), vec![aborted(9, 0, 3, 4)]);
}

#[test]
fn follower_markers_complete_transactions_like_the_leader() {
    let d = tempfile::tempdir().unwrap();
    let (_m, leader) = open(&d.path().join("a"), small_cfg());
    let (_n, follower) = open(&d.path().join("b"), small_cfg());
    let mut seq = 0;
    for i in 0..6 {
        vappend(&leader, &txn(2, 4, 0, seq), 1, 0).unwrap();
        seq += 2;
        vappend(&leader, &txn(1, 5, 0, i), 1, 0).unwrap();
        leader.append_marker(4, 0, i % 2 == 0, 0, 1, 0).unwrap();
    }
    // Copy the leader's log over, chunk by chunk.
    while follower.log_end_offset() < leader.log_end_offset() {
        let d = leader
            .read(follower.log_end_offset(), 1 << 20, true, None)
            .unwrap();
        follower.append_as_follower(&d.records, 0).unwrap();
    }
    assert_eq!(all_aborted(&follower), all_aborted(&leader));
    assert_eq!(all_aborted(&leader).len(), 3);
    assert_eq!(
        follower.first_unstable_offset(),
        leader.first_unstable_offset()
    );
    assert_eq!(leader.first_unstable_offset(), Some(2));
    // After a failover, the follower's state refuses a stale marker too.
    assert!(matches!(
        follower.append_marker(5, -1, true, 0, 2, 0),
        Err(AppendError::InvalidProducerEpoch(_))
    ));
    assert_eq!(follower.append_marker(5, 0, true, 0, 2, 0).unwrap(), 24);
    assert_eq!(follower.first_unstable_offset(), None);
}

#[test]
fn the_cleaner_stops_below_an_open_transaction() {
    use super::batch::compute_crc;
    use super::records::test_util::{keyed_batch, rec};
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 300,
        index_interval_bytes: 100,
        retention_ms: -1,
        ..Default::default()
    };
    let (_m, l) = open(d.path(), c);
    let mut t = keyed_batch(0, 3, 0, &[rec(0, 1000, Some("k"), Some("v"))]);
    t[22] |= 0x10; // transactional
    let crc = compute_crc(&t);
    t[17..21].copy_from_slice(&crc.to_be_bytes());
    vappend(&l, &t, 0, 1000).unwrap();
    for i in 0..20 {
        let b = keyed_batch(0, -1, -1, &[rec(0, 1000 + i, Some("k"), Some("v"))]);
        l.append(&b, 0, 1000).unwrap();
    }
    assert!(l.num_segments() > 3);
    let segments = |l: &PartitionLog| l.cleanable(2000).map_or(0, |c| c.segments);
    assert_eq!(
        segments(&l),
        0,
        "the open transaction starts in the first segment"
    );
    l.append_marker(3, 0, true, 0, 0, 2000).unwrap();
    assert!(segments(&l) > 0);
}

#[test]
fn cleaning_keeps_the_aborted_transactions_of_merged_segments() {
    use super::batch::compute_crc;
    use super::records::test_util::{keyed_batch, rec};
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 400,
        index_interval_bytes: 100,
        retention_ms: -1,
        ..Default::default()
    };
    let (_m, l) = open(d.path(), c);
    for i in 0..12 {
        let mut t = keyed_batch(0, 3, i, &[rec(0, 1000, Some("k"), Some("v"))]);
        t[22] |= 0x10;
        let crc = compute_crc(&t);
        t[17..21].copy_from_slice(&crc.to_be_bytes());
        vappend(&l, &t, 0, 1000).unwrap();
        l.append_marker(3, 0, i % 2 == 1, 0, 0, 1000).unwrap();
        l.roll_for_test();
    }
    let before = all_aborted(&l);
    assert_eq!(before.len(), 6);
    let segs = l.num_segments();
    let stats = l
        .clean(crate::util::clock::now_ms(), &CleanerConfig::default())
        .unwrap();
    assert!(
        l.num_segments() < segs,
        "segments were merged: {segs} {:?} {stats:?}",
        l.segment_base_offsets()
    );
    assert_eq!(all_aborted(&l), before);
    for p in txn_files(d.path()) {
        let base: i64 = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        assert!(l.segment_base_offsets().contains(&base), "orphan {p:?}");
    }
}

// ---- Transaction verification (KIP-890 part 1) ----

fn verified(
    l: &PartitionLog,
    records: &[u8],
    guard: Option<VerificationGuard>,
) -> Result<AppendInfo, AppendError> {
    l.append_from_verified(records, 0, 0, AppendOrigin::Client, guard)
}

fn has_guard(l: &PartitionLog, pid: i64) -> bool {
    l.append.lock().verification.has(pid)
}

#[test]
fn a_transaction_starts_only_with_the_producers_guard() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), cfg());
    assert!(l.transaction_needs_verification(10));
    // No guard: refused, nothing stored, no transaction.
    assert!(matches!(
        verified(&l, &txn(2, 10, 0, 0), None),
        Err(AppendError::InvalidTxnState(_))
    ));
    assert!(matches!(
        l.append(&txn(2, 10, 0, 0), 0, 0),
        Err(AppendError::InvalidTxnState(_))
    ));
    assert_eq!(l.log_end_offset(), 0);
    assert_eq!(l.first_unstable_offset(), None);
    // Guards are non-zero, unique per log, and stable until used.
    let g = l.verification_guard(10);
    assert_ne!(g.value(), 0);
    assert_eq!(l.verification_guard(10), g);
    let other = l.verification_guard(11);
    assert_ne!(other, g);
    // Another producer's guard is not this producer's.
    assert!(matches!(
        verified(&l, &txn(2, 10, 0, 0), Some(other)),
        Err(AppendError::InvalidTxnState(_))
    ));
    assert_eq!(l.log_end_offset(), 0);
    // The right guard starts the transaction and is used up.
    let info = verified(&l, &txn(2, 10, 0, 0), Some(g)).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 1));
    assert_eq!(l.first_unstable_offset(), Some(0));
    assert!(!l.transaction_needs_verification(10));
    assert!(!has_guard(&l, 10));
    assert!(has_guard(&l, 11), "only the starting producer's guard goes");
    // Later batches of the ongoing transaction need no guard, and a stale one does not matter.
    verified(&l, &txn(1, 10, 0, 2), None).unwrap();
    l.append(&txn(1, 10, 0, 3), 0, 0).unwrap();
    verified(&l, &txn(1, 10, 0, 4), Some(g)).unwrap();
    assert_eq!(l.log_end_offset(), 5);
    // A new guard of the producer differs from the used one.
    assert_ne!(l.verification_guard(10), g);
}

#[test]
fn a_payload_whose_first_batch_starts_the_transaction_needs_one_guard() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), cfg());
    let mut payload = txn(2, 4, 0, 0);
    payload.extend_from_slice(&txn(1, 4, 0, 2));
    assert!(matches!(
        verified(&l, &payload, None),
        Err(AppendError::InvalidTxnState(_))
    ));
    let g = l.verification_guard(4);
    let info = verified(&l, &payload, Some(g)).unwrap();
    assert_eq!(info.last_offset, 2);
    assert_eq!(l.first_unstable_offset(), Some(0));
    assert!(!has_guard(&l, 4));
}

#[test]
fn a_guard_taken_before_a_marker_never_opens_a_transaction_after_it() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), cfg());
    // The produce path takes a guard and asks the coordinator; meanwhile the coordinator
    // aborts the transaction and writes its marker.
    let old = l.verification_guard(10);
    l.append_marker(10, 0, false, 0, 0, 0).unwrap();
    assert!(!has_guard(&l, 10));
    assert!(matches!(
        verified(&l, &txn(1, 10, 0, 0), Some(old)),
        Err(AppendError::InvalidTxnState(_))
    ));
    assert_eq!(l.log_end_offset(), 1, "only the marker");
    assert_eq!(l.first_unstable_offset(), None);
    // A guard taken during an ongoing transaction is cleared by its abort too: a late batch of
    // the aborted transaction carrying it is refused.
    let g = l.verification_guard(10);
    verified(&l, &txn(1, 10, 0, 0), Some(g)).unwrap(); // 1, starts
    let during = l.verification_guard(10);
    verified(&l, &txn(1, 10, 0, 1), Some(during)).unwrap(); // 2, ongoing: guard kept
    assert!(has_guard(&l, 10));
    l.append_marker(10, 0, false, 0, 0, 0).unwrap(); // 3
    assert!(!has_guard(&l, 10));
    for stale in [g, during] {
        assert!(matches!(
            verified(&l, &txn(1, 10, 0, 2), Some(stale)),
            Err(AppendError::InvalidTxnState(_))
        ));
    }
    assert_eq!(l.log_end_offset(), 4);
    assert_eq!(l.first_unstable_offset(), None);
    // A fresh guard opens the next transaction; a commit then clears the following guard too.
    let fresh = l.verification_guard(10);
    verified(&l, &txn(1, 10, 0, 2), Some(fresh)).unwrap(); // 4
    assert_eq!(l.first_unstable_offset(), Some(4));
    let before_commit = l.verification_guard(10);
    l.append_marker(10, 0, true, 0, 0, 0).unwrap(); // 5
    assert!(matches!(
        verified(&l, &txn(1, 10, 0, 3), Some(before_commit)),
        Err(AppendError::InvalidTxnState(_))
    ));
}

#[test]
fn non_transactional_idempotent_and_coordinator_appends_need_no_guard() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), cfg());
    let g = l.verification_guard(20);
    verified(&l, &batch(2, 0), None).unwrap();
    verified(&l, &batch(1, 0), Some(g)).unwrap();
    let idem = |seq| TestBatch::new(1, 0).idempotent(20, 0, seq).build();
    verified(&l, &idem(0), None).unwrap();
    verified(&l, &idem(1), Some(g)).unwrap();
    l.append(&idem(2), 0, 0).unwrap();
    // Duplicates are still recognised.
    assert!(verified(&l, &idem(2), None).unwrap().duplicate);
    assert!(has_guard(&l, 20), "no transaction started");
    assert_eq!(l.verification_guard(20), g);
    assert_eq!(l.log_end_offset(), 6);
    // A coordinator's transactional batches (offset commits) are never checked.
    l.append_from_verified(&txn(1, 30, 0, 0), 0, 0, AppendOrigin::Coordinator, None)
        .unwrap();
    l.append_from(&txn(1, 31, 0, 0), 0, 0, AppendOrigin::Coordinator)
        .unwrap();
    assert_eq!(l.first_unstable_offset(), Some(6));
    assert!(!l.transaction_needs_verification(30));
    assert!(!l.transaction_needs_verification(31));
}

#[test]
fn follower_appends_need_no_guard_and_replicated_markers_clear_guards() {
    let d = tempfile::tempdir().unwrap();
    let fd = tempfile::tempdir().unwrap();
    let (_m, leader) = open(d.path(), cfg());
    let (_fm, follower) = open(fd.path(), cfg());
    vappend(&leader, &txn(2, 4, 0, 0), 1, 0).unwrap(); // 0-1
    let copy = |from: i64| {
        let data = leader.read(from, 1 << 20, true, None).unwrap();
        follower.append_as_follower(&data.records, 0).unwrap();
    };
    // A guard the follower handed out (a former leader's, say) ends when the replicated
    // transaction starts.
    follower.verification_guard(4);
    copy(0);
    assert_eq!(follower.first_unstable_offset(), Some(0));
    assert!(!has_guard(&follower, 4));
    // A guard taken before a replicated marker is cleared by it.
    let g = follower.verification_guard(4);
    leader.append_marker(4, 0, false, 0, 1, 0).unwrap(); // 2
    copy(2);
    assert_eq!(follower.log_end_offset(), 3);
    assert!(!has_guard(&follower, 4));
    assert!(matches!(
        verified(&follower, &txn(1, 4, 0, 2), Some(g)),
        Err(AppendError::InvalidTxnState(_))
    ));
}

#[test]
fn guards_expire_and_truncation_clears_them() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), cfg());
    l.append(&batch(1, 0), 0, 0).unwrap();
    let g = l.verification_guard(1);
    l.truncate_to(0).unwrap();
    assert!(!has_guard(&l, 1));
    assert!(matches!(
        verified(&l, &txn(1, 1, 0, 0), Some(g)),
        Err(AppendError::InvalidTxnState(_))
    ));
    l.verification_guard(2);
    let exp = l.config().producer_id_expiration_ms;
    l.expire_producers(crate::util::clock::now_ms() - 1000);
    assert!(has_guard(&l, 2), "not expired yet");
    l.expire_producers(crate::util::clock::now_ms() + exp);
    assert!(!has_guard(&l, 2));
}
