//! Storage side of replication: leader epoch cache in the partition log, truncation, follower
//! appends (real files in temp dirs; a "leader" and a "follower" log in separate directories).

use std::fs;
use std::path::Path;
use std::sync::Arc;

use super::batch::test_util::{batch, TestBatch};
use super::batch::{compute_crc, BatchHeader};
use super::epoch_cache::LEADER_EPOCH_CHECKPOINT;
use super::records::test_util::{keyed_batch, rec};
use super::*;

fn tp() -> TopicPartition {
    TopicPartition::new("repl", 0)
}

fn small_cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 2000,
        index_interval_bytes: 200,
        retention_ms: -1,
        ..Default::default()
    }
}

fn open(dir: &Path, c: LogConfig) -> (Arc<LogManager>, Arc<PartitionLog>) {
    let m = LogManager::open(dir).unwrap();
    let l = m.open_partition(&tp(), c).unwrap();
    (m, l)
}

fn now() -> i64 {
    crate::util::clock::now_ms()
}

fn idem(records: usize, pid: i64, epoch: i16, seq: i32) -> Vec<u8> {
    TestBatch::new(records, now())
        .idempotent(pid, epoch, seq)
        .build()
}

/// Every stored byte from the log start, batch by batch, and the headers.
fn all_bytes(l: &PartitionLog) -> (Vec<u8>, Vec<BatchHeader>) {
    let mut out = Vec::new();
    let mut hs = Vec::new();
    let mut off = l.log_start_offset();
    loop {
        let d = l.read(off, 1 << 20, true, None).unwrap();
        if d.records.is_empty() {
            break;
        }
        let mut pos = 0;
        while pos < d.records.len() {
            let h = BatchHeader::parse(&d.records[pos..]).unwrap();
            let sz = h.size().unwrap();
            assert_eq!(compute_crc(&d.records[pos..pos + sz]), h.crc);
            off = h.next_offset();
            hs.push(h);
            pos += sz;
        }
        out.extend_from_slice(&d.records);
    }
    (out, hs)
}

/// A replica fetcher in miniature: fetches from the follower's log end in `chunk`-byte responses
/// (cut mid-batch like a Fetch response limited by bytes) until the follower caught up.
fn replicate(leader: &PartitionLog, follower: &PartitionLog, chunk: usize) {
    for _ in 0..10_000 {
        let leo = follower.log_end_offset();
        if leo >= leader.log_end_offset() {
            return;
        }
        let d = leader.read(leo, 1 << 20, true, None).unwrap();
        assert!(!d.records.is_empty());
        // Cut like a byte-limited response: possibly a partial trailing batch.
        let first = BatchHeader::parse(&d.records).unwrap().size().unwrap();
        let cut = d.records.len().min(chunk.max(first));
        let info = follower
            .append_as_follower(&d.records[..cut], now())
            .unwrap();
        assert!(info.valid_bytes > 0 && info.valid_bytes <= cut);
        assert_eq!(follower.log_end_offset(), info.last_offset + 1);
    }
    panic!("replication did not converge");
}

fn assert_identical(a: &PartitionLog, b: &PartitionLog) {
    assert_eq!(a.log_end_offset(), b.log_end_offset());
    assert_eq!(a.log_start_offset(), b.log_start_offset());
    assert_eq!(a.epoch_entries(), b.epoch_entries());
    let (ab, ah) = all_bytes(a);
    let (bb, bh) = all_bytes(b);
    assert_eq!(ah, bh);
    assert!(ab == bb, "stored bytes differ");
}

#[test]
fn leader_appends_record_epoch_starts() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), small_cfg());
    assert_eq!(l.latest_epoch(), None);
    assert_eq!(l.leader_epoch_end_offset(0), (-1, -1));
    for _ in 0..3 {
        l.append(&batch(2, now()), 0, now()).unwrap();
    }
    for _ in 0..2 {
        l.append(&batch(3, now()), 1, now()).unwrap();
    }
    for _ in 0..2 {
        l.append(&batch(1, now()), 3, now()).unwrap();
    }
    assert_eq!(l.epoch_entries(), vec![(0, 0), (1, 6), (3, 12)]);
    assert_eq!(l.latest_epoch(), Some(3));
    assert_eq!(l.log_end_offset(), 14);
    assert_eq!(l.leader_epoch_end_offset(0), (0, 6));
    assert_eq!(l.leader_epoch_end_offset(1), (1, 12));
    assert_eq!(l.leader_epoch_end_offset(2), (1, 12));
    assert_eq!(l.leader_epoch_end_offset(3), (3, 14));
    assert_eq!(l.leader_epoch_end_offset(4), (-1, -1));
    assert_eq!(l.leader_epoch_end_offset(-1), (-1, -1));
    // The stored batches carry the epochs.
    let (_, hs) = all_bytes(&l);
    let epochs: Vec<i32> = hs.iter().map(|h| h.partition_leader_epoch).collect();
    assert_eq!(epochs, vec![0, 0, 0, 1, 1, 3, 3]);
    // Persisted in Kafka's format.
    let text =
        fs::read_to_string(d.path().join(tp().dir_name()).join(LEADER_EPOCH_CHECKPOINT)).unwrap();
    assert_eq!(text, "0\n3\n0 0\n1 6\n3 12\n");
    // A duplicate is not an append: no entry for its epoch.
    let b = idem(1, 4, 0, 0);
    l.append(&b, 3, now()).unwrap();
    assert!(l.append(&b, 5, now()).unwrap().duplicate);
    assert_eq!(l.latest_epoch(), Some(3));
}

#[test]
fn truncate_to_drops_epochs_and_truncated_producer_batches() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(
        d.path(),
        LogConfig {
            segment_bytes: 600,
            ..small_cfg()
        },
    );
    // Producer 9: 40 batches of 2 records, epoch 0 for the first 30, epoch 2 after; segments roll
    // (each roll writes a producer state snapshot).
    for i in 0..40 {
        let le = if i < 30 { 0 } else { 2 };
        l.append(&idem(2, 9, 0, 2 * i), le, now()).unwrap();
    }
    assert!(l.num_segments() > 3);
    assert_eq!(l.epoch_entries(), vec![(0, 0), (2, 60)]);
    // Truncate into epoch 0, in the middle of a segment that is not the first.
    let target = 50;
    let segs = l.segment_base_offsets();
    assert!(segs.iter().any(|b| *b > 0 && *b < target));
    l.truncate_to(target).unwrap();
    assert_eq!(l.log_end_offset(), target);
    assert_eq!(l.epoch_entries(), vec![(0, 0)]);
    assert_eq!(l.leader_epoch_end_offset(0), (0, target));
    assert_eq!(l.leader_epoch_end_offset(2), (-1, -1));
    // The batch at 48 (seq 48) is kept: a retry is a duplicate with its original offsets.
    let dup = l.append(&idem(2, 9, 0, 48), 3, now()).unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.first_offset, dup.last_offset), (48, 49));
    // The batch that was at 50 (seq 50) was truncated away: its retry is appended again, not
    // mistaken for a duplicate (which would lose it).
    let again = l.append(&idem(2, 9, 0, 50), 3, now()).unwrap();
    assert!(!again.duplicate);
    assert_eq!(again.first_offset, 50);
    assert_eq!(l.epoch_entries(), vec![(0, 0), (3, 50)]);
    // Sequences continue from the retried batch.
    assert!(matches!(
        l.append(&idem(2, 9, 0, 60), 3, now()),
        Err(AppendError::OutOfOrderSequence(_))
    ));
    assert_eq!(
        l.append(&idem(2, 9, 0, 52), 3, now()).unwrap().first_offset,
        52
    );
    // Full truncation below the log start clears the cache.
    l.truncate_to(0).unwrap();
    assert_eq!(l.epoch_entries(), Vec::<(i32, i64)>::new());
    assert_eq!(l.latest_epoch(), None);
}

#[test]
fn follower_copy_is_identical() {
    let dl = tempfile::tempdir().unwrap();
    let df = tempfile::tempdir().unwrap();
    let (_ml, leader) = open(dl.path(), small_cfg());
    // The follower has other segment sizes: only offsets and bytes must match.
    let (_mf, follower) = open(
        df.path(),
        LogConfig {
            segment_bytes: 1500,
            ..small_cfg()
        },
    );
    let lat = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..small_cfg()
    };
    let mut seq = 0i32;
    for i in 0..45usize {
        let le = match i {
            0..15 => 0,
            15..30 => 1,
            _ => 3,
        };
        if i == 20 {
            // Batches written with LogAppendTime on the leader are copied untouched.
            leader.set_config(lat.clone());
        }
        if i == 25 {
            leader.set_config(small_cfg());
        }
        let b = if i % 3 == 0 {
            let n = 1 + i % 4;
            let b = idem(n, 11, 0, seq);
            seq += n as i32;
            b
        } else {
            batch(1 + i % 5, now())
        };
        leader.append(&b, le, now()).unwrap();
    }
    replicate(&leader, &follower, 700);
    assert_identical(&leader, &follower);
    assert_eq!(follower.epoch_entries().len(), 3);
    // More leader data arrives; the follower continues.
    for _ in 0..5 {
        leader.append(&batch(2, now()), 4, now()).unwrap();
    }
    replicate(&leader, &follower, 10_000);
    assert_identical(&leader, &follower);
    assert_eq!(follower.latest_epoch(), Some(4));
}

#[test]
fn follower_refuses_offset_mismatch_and_ignores_partial_trailing_batch() {
    let dl = tempfile::tempdir().unwrap();
    let df = tempfile::tempdir().unwrap();
    let (_ml, leader) = open(dl.path(), small_cfg());
    let (_mf, follower) = open(df.path(), small_cfg());
    for _ in 0..4 {
        leader.append(&batch(3, now()), 2, now()).unwrap();
    }
    let d = leader.read(0, 1 << 20, true, None).unwrap().records;
    let sizes: Vec<usize> = {
        let (_, hs) = all_bytes(&leader);
        hs.iter().map(|h| h.size().unwrap()).collect()
    };
    // Two whole batches and part of the third (also: only a few bytes of a length field).
    let cut = sizes[0] + sizes[1] + 30;
    let info = follower.append_as_follower(&d[..cut], now()).unwrap();
    assert_eq!(info.valid_bytes, sizes[0] + sizes[1]);
    assert_eq!((info.first_offset, info.last_offset), (0, 5));
    assert_eq!(info.records_count, 6);
    assert_eq!(follower.log_end_offset(), 6);
    // Nothing whole: nothing stored.
    let rest = &d[sizes[0] + sizes[1]..];
    let none = follower.append_as_follower(&rest[..5], now()).unwrap();
    assert_eq!((none.valid_bytes, none.records_count), (0, 0));
    assert_eq!(
        follower.append_as_follower(&[], now()).unwrap().valid_bytes,
        0
    );
    // Re-sending batches below the log end is refused with a typed error.
    match follower.append_as_follower(&d[sizes[0]..], now()) {
        Err(FollowerAppendError::OffsetMismatch { expected, got, .. }) => {
            assert_eq!((expected, got), (6, 3))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(follower.log_end_offset(), 6);
    // A corrupt whole batch is refused, nothing of the payload stored.
    let mut bad = rest.to_vec();
    bad[sizes[2] - 1] ^= 0xff;
    assert!(matches!(
        follower.append_as_follower(&bad, now()),
        Err(FollowerAppendError::Append(AppendError::CorruptMessage(_)))
    ));
    assert_eq!(follower.log_end_offset(), 6);
    // A negative batch length is corruption, not a partial batch.
    let mut neg = rest[..20].to_vec();
    neg[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(follower.append_as_follower(&neg, now()).is_err());
    // The rest goes in, even with a max.message.bytes below the batch size (the leader accepted
    // them; Kafka does not check record sizes on followers).
    follower.set_config(LogConfig {
        max_message_bytes: 64,
        ..small_cfg()
    });
    follower.append_as_follower(rest, now()).unwrap();
    assert_identical(&leader, &follower);
    assert_eq!(follower.epoch_entries(), vec![(2, 0)]);
}

/// A batch as a cleaned leader sends it: fewer records than its offset range, at `base`.
fn compacted_batch(base: i64, epoch: i32, delta: i32, count: usize) -> Vec<u8> {
    let mut b = TestBatch::new(count, now()).build();
    b[0..8].copy_from_slice(&base.to_be_bytes());
    b[12..16].copy_from_slice(&epoch.to_be_bytes());
    b[23..27].copy_from_slice(&delta.to_be_bytes());
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn follower_accepts_compaction_gaps_and_rejects_disorder() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), small_cfg());
    // Offsets 0..=4 hold only 2 records; the next batch starts after a gap (a dropped batch).
    let mut payload = compacted_batch(0, 1, 4, 2);
    payload.extend(compacted_batch(8, 2, 1, 1));
    let info = l.append_as_follower(&payload, now()).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 9));
    assert_eq!(info.records_count, 3);
    assert_eq!(l.log_end_offset(), 10);
    assert_eq!(l.epoch_entries(), vec![(1, 0), (2, 8)]);
    // The client path keeps the strict lastOffsetDelta+1 == recordsCount check.
    assert!(matches!(
        l.append(&compacted_batch(0, 0, 4, 2), 2, now()),
        Err(AppendError::InvalidRecord(_))
    ));
    // Offsets going backwards inside a payload are refused.
    let mut disorder = compacted_batch(20, 2, 3, 2);
    disorder.extend(compacted_batch(22, 2, 0, 1));
    assert!(matches!(
        l.append_as_follower(&disorder, now()),
        Err(FollowerAppendError::Append(AppendError::InvalidRecord(_)))
    ));
    // More records than offsets is not a valid batch.
    assert!(l
        .append_as_follower(&compacted_batch(10, 2, 0, 2), now())
        .is_err());
    assert_eq!(l.log_end_offset(), 10);
}

#[test]
fn producer_dedup_survives_failover_to_follower() {
    let dl = tempfile::tempdir().unwrap();
    let df = tempfile::tempdir().unwrap();
    let (_ml, leader) = open(dl.path(), small_cfg());
    let (_mf, follower) = open(df.path(), small_cfg());
    let batches: Vec<Vec<u8>> = (0..8).map(|i| idem(3, 77, 1, 3 * i)).collect();
    let mut offsets = Vec::new();
    for b in &batches {
        let info = leader.append(b, 4, now()).unwrap();
        offsets.push((info.first_offset, info.last_offset));
    }
    replicate(&leader, &follower, 900);
    assert_identical(&leader, &follower);
    // The follower becomes leader at epoch 5; the producer retries its last batches.
    for i in 3..8 {
        let dup = follower.append(&batches[i], 5, now()).unwrap();
        assert!(dup.duplicate, "batch {i}");
        assert_eq!((dup.first_offset, dup.last_offset), offsets[i]);
    }
    // Older than the last 5: not recognised, and out of sequence.
    assert!(matches!(
        follower.append(&batches[2], 5, now()),
        Err(AppendError::OutOfOrderSequence(_))
    ));
    // The next sequence is accepted; the new epoch starts there.
    let next = follower.append(&idem(3, 77, 1, 24), 5, now()).unwrap();
    assert_eq!(next.first_offset, 24);
    assert_eq!(follower.epoch_entries(), vec![(4, 0), (5, 24)]);
}

#[test]
fn divergent_follower_truncates_to_leader_epoch_end() {
    let da = tempfile::tempdir().unwrap();
    let db = tempfile::tempdir().unwrap();
    let (_ma, a) = open(da.path(), small_cfg());
    let (_mb, b) = open(db.path(), small_cfg());
    // A leads epochs 0 and 1; B replicates up to offset 10.
    for _ in 0..3 {
        a.append(&batch(2, now()), 0, now()).unwrap();
    }
    for _ in 0..2 {
        a.append(&batch(2, now()), 1, now()).unwrap();
    }
    replicate(&a, &b, 10_000);
    assert_eq!(b.log_end_offset(), 10);
    // A writes more in epoch 1 that never reaches B (including an idempotent batch).
    a.append(&batch(2, now()), 1, now()).unwrap();
    let lost = idem(2, 3, 0, 0);
    a.append(&lost, 1, now()).unwrap();
    assert_eq!(a.log_end_offset(), 14);
    // B becomes leader in epoch 2 and writes its own data at 10.
    for _ in 0..3 {
        b.append(&batch(1, now()), 2, now()).unwrap();
    }
    assert_eq!(b.epoch_entries(), vec![(0, 0), (1, 6), (2, 10)]);
    // A becomes follower: OffsetForLeaderEpoch(its latest epoch) to the new leader.
    let (epoch, end) = b.leader_epoch_end_offset(a.latest_epoch().unwrap());
    assert_eq!((epoch, end), (1, 10));
    // KIP-279: truncate to the leader's end offset for that epoch (A has that epoch too).
    let own_end = a.leader_epoch_end_offset(epoch).1;
    a.truncate_to(end.min(own_end)).unwrap();
    assert_eq!(a.log_end_offset(), 10);
    assert_eq!(a.epoch_entries(), vec![(0, 0), (1, 6)]);
    replicate(&b, &a, 10_000);
    assert_identical(&a, &b);
    // The idempotent batch A lost is not a duplicate anywhere: its retry is written again.
    let retry = b.append(&lost, 2, now()).unwrap();
    assert!(!retry.duplicate);
    replicate(&b, &a, 10_000);
    assert_identical(&a, &b);
    let retry_on_a = a.append(&lost, 3, now()).unwrap();
    assert!(retry_on_a.duplicate);
    assert_eq!(retry_on_a.first_offset, retry.first_offset);
}

#[test]
fn divergence_at_unknown_epoch_uses_floor_epoch() {
    // The follower wrote in epoch 1, which the leader never saw: the leader answers with its
    // largest epoch below (0) and the start of its next epoch (2).
    let da = tempfile::tempdir().unwrap();
    let db = tempfile::tempdir().unwrap();
    let (_ma, a) = open(da.path(), small_cfg());
    let (_mb, b) = open(db.path(), small_cfg());
    for _ in 0..2 {
        a.append(&batch(2, now()), 0, now()).unwrap();
    }
    replicate(&a, &b, 10_000);
    for _ in 0..3 {
        a.append(&batch(1, now()), 1, now()).unwrap();
    }
    for _ in 0..2 {
        b.append(&batch(3, now()), 2, now()).unwrap();
    }
    let (epoch, end) = b.leader_epoch_end_offset(1);
    assert_eq!((epoch, end), (0, 4));
    // The follower uses its own end offset of the epoch the leader answered with.
    let own = a.leader_epoch_end_offset(epoch);
    assert_eq!(own, (0, 4));
    a.truncate_to(end.min(own.1)).unwrap();
    assert_eq!(a.epoch_entries(), vec![(0, 0)]);
    replicate(&b, &a, 10_000);
    assert_identical(&a, &b);
}

fn epoch_file(d: &Path) -> std::path::PathBuf {
    d.join(tp().dir_name()).join(LEADER_EPOCH_CHECKPOINT)
}

#[test]
fn restarts_keep_the_epoch_cache() {
    let d = tempfile::tempdir().unwrap();
    let expected = vec![(0, 0), (2, 30), (5, 60)];
    {
        let (m, l) = open(d.path(), small_cfg());
        for i in 0..40 {
            let le = match i {
                0..15 => 0,
                15..30 => 2,
                _ => 5,
            };
            l.append(&batch(2, now()), le, now()).unwrap();
        }
        assert_eq!(l.epoch_entries(), expected);
        m.shutdown().unwrap();
    }
    // Clean restart.
    {
        let (_m, l) = open(d.path(), small_cfg());
        assert_eq!(l.epoch_entries(), expected);
        assert!(!l.recovery_stats().epoch_cache_rebuilt);
        // More data in epoch 6, then a crash (no shutdown).
        l.append(&batch(2, now()), 6, now()).unwrap();
    }
    let expected6 = vec![(0, 0), (2, 30), (5, 60), (6, 80)];
    {
        let (_m, l) = open(d.path(), small_cfg());
        assert!(l.recovery_stats().segments_recovered > 0);
        assert_eq!(l.epoch_entries(), expected6);
        assert!(!l.recovery_stats().epoch_cache_rebuilt);
    }
    // A file that lacks the entry of data past the recovery point (as a broker that flushes the
    // file lazily could leave it), after a crash: the recovered segments restore it.
    fs::write(epoch_file(d.path()), "0\n3\n0 0\n2 30\n5 60\n").unwrap();
    {
        let (_m, l) = open(d.path(), small_cfg());
        assert_eq!(l.epoch_entries(), expected6);
    }
    // Missing file: rebuilt from the batch headers.
    fs::remove_file(epoch_file(d.path())).unwrap();
    {
        let (_m, l) = open(d.path(), small_cfg());
        assert!(l.recovery_stats().epoch_cache_rebuilt);
        assert_eq!(l.epoch_entries(), expected6);
    }
    assert_eq!(
        fs::read_to_string(epoch_file(d.path())).unwrap(),
        "0\n4\n0 0\n2 30\n5 60\n6 80\n"
    );
    // Damaged file: rebuilt.
    fs::write(epoch_file(d.path()), "0\n4\n0 0\n2 x\n").unwrap();
    {
        let (m, l) = open(d.path(), small_cfg());
        assert!(l.recovery_stats().epoch_cache_rebuilt);
        assert_eq!(l.epoch_entries(), expected6);
        m.shutdown().unwrap();
    }
    // Entries beyond the log end (written just before a crash lost the data) are dropped, even
    // after a clean shutdown; the file is rewritten before anything is appended (here: the
    // leader re-assigning its epoch).
    fs::write(
        epoch_file(d.path()),
        "0\n5\n0 0\n2 30\n5 60\n6 80\n9 5000\n",
    )
    .unwrap();
    {
        let (_m, l) = open(d.path(), small_cfg());
        assert_eq!(l.epoch_entries(), expected6);
        l.maybe_assign_epoch_start_offset(6, l.log_end_offset())
            .unwrap();
    }
    assert_eq!(
        fs::read_to_string(epoch_file(d.path())).unwrap(),
        "0\n4\n0 0\n2 30\n5 60\n6 80\n"
    );
}

#[test]
fn unclean_restart_after_truncated_tail_cuts_epochs() {
    let d = tempfile::tempdir().unwrap();
    let (sizes, path) = {
        let (_m, l) = open(
            d.path(),
            LogConfig {
                segment_bytes: 1 << 20,
                ..small_cfg()
            },
        );
        let mut sizes = Vec::new();
        for le in [0, 0, 1, 1, 2] {
            let b = batch(2, now());
            sizes.push(b.len());
            l.append(&b, le, now()).unwrap();
        }
        assert_eq!(l.epoch_entries(), vec![(0, 0), (1, 4), (2, 8)]);
        (sizes, l.dir().join(format!("{:020}.log", 0)))
    };
    // Tear the last batch (epoch 2): recovery cuts it, and the epoch goes with it.
    let keep: usize = sizes[..4].iter().sum::<usize>() + 7;
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(keep as u64).unwrap();
    drop(f);
    let (_m, l) = open(d.path(), small_cfg());
    assert_eq!(l.log_end_offset(), 8);
    assert_eq!(l.epoch_entries(), vec![(0, 0), (1, 4)]);
    assert_eq!(l.leader_epoch_end_offset(1), (1, 8));
}

#[test]
fn retention_moves_the_first_epoch_start() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), small_cfg());
    for i in 0..40 {
        let le = if i < 10 { 0 } else { 1 };
        l.append(&batch(2, now()), le, now()).unwrap();
    }
    assert_eq!(l.epoch_entries(), vec![(0, 0), (1, 20)]);
    let mut c = small_cfg();
    c.retention_bytes = 1000;
    l.set_config(c);
    assert!(l.apply_retention(now()).unwrap() > 0);
    let lso = l.log_start_offset();
    assert!(lso > 20, "{lso}");
    assert_eq!(l.epoch_entries(), vec![(1, lso)]);
    // Epoch 0 now ends where the log starts (Kafka: an epoch older than the earliest).
    assert_eq!(l.leader_epoch_end_offset(0), (0, lso));
    assert_eq!(
        fs::read_to_string(epoch_file(d.path())).unwrap(),
        format!("0\n1\n1 {lso}\n")
    );
}

#[test]
fn compaction_keeps_epochs_and_followers_copy_cleaned_batches() {
    let d = tempfile::tempdir().unwrap();
    let df = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 700,
        index_interval_bytes: 100,
        retention_ms: -1,
        ..Default::default()
    };
    let (_m, l) = open(d.path(), cfg.clone());
    let (_mf, f) = open(df.path(), cfg.clone());
    let t = now();
    // Epoch 0: one 3-record batch (its middle key is overwritten later: an inner gap after
    // cleaning), then overwrites.
    let first = keyed_batch(
        0,
        -1,
        -1,
        &[
            rec(0, t, Some("e0"), Some("x")),
            rec(1, t, Some("k"), Some("old")),
            rec(2, t, Some("c"), Some("y")),
        ],
    );
    l.append(&first, 0, t).unwrap();
    for epoch in 0..3 {
        let start = keyed_batch(
            0,
            -1,
            -1,
            &[rec(0, t, Some(&format!("start{epoch}")), Some("s"))],
        );
        l.append(&start, epoch, t).unwrap();
        for i in 0..12 {
            let b = keyed_batch(
                0,
                -1,
                -1,
                &[rec(0, t, Some(&format!("k{}", i % 3)), Some("v"))],
            );
            l.append(&b, epoch, t).unwrap();
        }
    }
    let overwrite = keyed_batch(0, -1, -1, &[rec(0, t, Some("k"), Some("new"))]);
    l.append(&overwrite, 2, t).unwrap();
    l.roll_for_test();
    let before = l.epoch_entries();
    assert_eq!(before, vec![(0, 0), (1, 16), (2, 29)]);
    let stats = l.clean(t, &CleanerConfig::default()).unwrap();
    assert!(stats.records_retained < stats.records_read);
    assert_eq!(l.epoch_entries(), before);
    // The cleaned leader log has gaps between and inside batches.
    let (_, hs) = all_bytes(&l);
    assert!(hs
        .iter()
        .any(|h| i64::from(h.last_offset_delta) + 1 != i64::from(h.records_count)));
    assert!(hs
        .windows(2)
        .any(|w| w[1].base_offset != w[0].next_offset()));
    replicate(&l, &f, 500);
    assert_identical(&l, &f);
    // Restart of the cleaned leader (unclean, the file rebuilt): the same epochs.
    drop(l);
    drop(_m);
    fs::remove_file(epoch_file(d.path())).unwrap();
    let (_m, l) = open(d.path(), cfg);
    assert_eq!(l.epoch_entries(), before);
}

#[test]
fn follower_restarts_at_leader_log_start() {
    let dl = tempfile::tempdir().unwrap();
    let df = tempfile::tempdir().unwrap();
    let (_ml, leader) = open(dl.path(), small_cfg());
    let (_mf, follower) = open(df.path(), small_cfg());
    for i in 0..40 {
        let le = if i < 10 { 0 } else { 1 };
        leader.append(&batch(2, now()), le, now()).unwrap();
    }
    // The follower has diverging data from an old epoch at offset 0.
    follower.append(&batch(5, now()), 0, now()).unwrap();
    let mut c = small_cfg();
    c.retention_bytes = 1000;
    leader.set_config(c);
    assert!(leader.apply_retention(now()).unwrap() > 0);
    let start = leader.log_start_offset();
    // Fetching at 0 is out of the leader's range: restart the follower at the leader's log start.
    assert!(leader.read(0, 1000, true, None).is_err());
    follower.truncate_fully_and_start_at(start).unwrap();
    assert_eq!(follower.log_start_offset(), start);
    assert_eq!(follower.log_end_offset(), start);
    assert_eq!(follower.epoch_entries(), Vec::<(i32, i64)>::new());
    replicate(&leader, &follower, 800);
    assert_identical(&leader, &follower);
    // Restarting at the current first segment's base offset works too (the files are replaced).
    let base = follower.segment_base_offsets()[0];
    follower.truncate_fully_and_start_at(base).unwrap();
    assert_eq!(follower.num_segments(), 1);
    assert_eq!(
        (follower.log_start_offset(), follower.log_end_offset()),
        (base, base)
    );
    replicate(&leader, &follower, 800);
    assert_identical(&leader, &follower);
    // Survives a restart.
    drop(follower);
    drop(_mf);
    let (_mf, follower) = open(df.path(), small_cfg());
    assert_identical(&leader, &follower);
}

#[test]
fn new_leader_assigns_its_epoch_before_writing() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), small_cfg());
    for _ in 0..3 {
        l.append(&batch(2, now()), 1, now()).unwrap();
    }
    // Becoming leader in epoch 4 at the log end.
    l.maybe_assign_epoch_start_offset(4, l.log_end_offset())
        .unwrap();
    assert_eq!(l.epoch_entries(), vec![(1, 0), (4, 6)]);
    assert_eq!(l.leader_epoch_end_offset(1), (1, 6));
    assert_eq!(l.leader_epoch_end_offset(3), (1, 6));
    assert_eq!(l.leader_epoch_end_offset(4), (4, 6));
    // Appends of that epoch add nothing.
    l.append(&batch(2, now()), 4, now()).unwrap();
    assert_eq!(l.epoch_entries(), vec![(1, 0), (4, 6)]);
    assert_eq!(l.leader_epoch_end_offset(4), (4, 8));
}
