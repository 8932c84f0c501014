//! Log cleaner tests on real partition directories.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::*;
use crate::log::batch::test_util::TestBatch;
use crate::log::batch::{compute_crc, BatchHeader};
use crate::log::checkpoint::{read_checkpoint, CLEANER_OFFSET_CHECKPOINT};
use crate::log::records::test_util::{keyed_batch, rec};
use crate::log::records::{decode_records, has_delete_horizon};
use crate::log::{
    AppendError, CleanupPolicy, LogConfig, LogError, LogManager, PartitionLog, RejectionKind,
    TopicPartition,
};
use std::os::unix::fs::FileExt;

/// Records are stamped around the real clock: producer expiry and the mtime of empty segments
/// use it.
fn t0() -> i64 {
    static T: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *T.get_or_init(crate::util::clock::now_ms)
}

fn tp() -> TopicPartition {
    TopicPartition::new("compacted", 0)
}

fn ccfg() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 700,
        index_interval_bytes: 100,
        retention_ms: -1,
        ..Default::default()
    }
}

fn open(dir: &Path, c: LogConfig) -> (Arc<LogManager>, Arc<PartitionLog>) {
    let m = LogManager::open(dir).unwrap();
    let l = m.open_partition(&tp(), c).unwrap();
    (m, l)
}

/// Appends one single-record batch `key = value`; returns its offset.
fn put(l: &PartitionLog, key: &str, value: Option<&str>) -> i64 {
    let b = keyed_batch(0, -1, -1, &[rec(0, t0(), Some(key), value)]);
    l.append(&b, 0, t0()).unwrap().first_offset
}

/// (offset, key, value) of every record readable from the log start, checking CRCs and that
/// batch offsets increase.
type Row = (i64, String, Option<String>);
fn read_records(l: &PartitionLog) -> (Vec<Row>, Vec<BatchHeader>) {
    let mut out = Vec::new();
    let mut hs = Vec::new();
    let mut off = l.log_start_offset();
    loop {
        let d = l.read(off, 1 << 20, true, None).unwrap();
        if d.records.is_empty() {
            break;
        }
        let bytes = &d.records[..];
        let mut pos = 0;
        while pos < bytes.len() {
            let h = BatchHeader::parse(&bytes[pos..]).unwrap();
            let sz = h.size().unwrap();
            let b = &bytes[pos..pos + sz];
            assert_eq!(compute_crc(b), h.crc, "CRC of batch at {}", h.base_offset);
            if let Some(p) = hs.last() {
                let p: &BatchHeader = p;
                assert!(h.base_offset > p.last_offset(), "offsets increase");
            }
            let (_, recs) = decode_records(b).unwrap();
            for r in recs {
                assert!(r.offset >= h.base_offset && r.offset <= h.last_offset());
                out.push((
                    r.offset,
                    String::from_utf8(r.key.unwrap()).unwrap(),
                    r.value.map(|v| String::from_utf8(v).unwrap()),
                ));
            }
            off = h.next_offset();
            hs.push(h);
            pos += sz;
        }
    }
    (out, hs)
}

/// Kafka's expected result: below `clean_end` only the latest record of each key (considering
/// records below `clean_end` only); everything from `clean_end` on untouched.
fn expected(all: &[Row], clean_end: i64) -> Vec<Row> {
    let mut latest: HashMap<&str, i64> = HashMap::new();
    for (o, k, _) in all.iter().filter(|r| r.0 < clean_end) {
        latest.insert(k, *o);
    }
    all.iter()
        .filter(|(o, k, _)| *o >= clean_end || latest[k.as_str()] == *o)
        .cloned()
        .collect()
}

fn seg_file(dir: &Path, base: i64) -> PathBuf {
    dir.join(tp().dir_name()).join(file_name(base, LOG_SUFFIX))
}

#[test]
fn keeps_latest_per_key_preserves_offsets_and_spares_active_segment() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), ccfg());
    for i in 0..60 {
        put(&l, &format!("k{}", i % 7), Some(&format!("v{i}")));
    }
    assert!(l.num_segments() > 4);
    let (before, _) = read_records(&l);
    let active_base = *l.segment_base_offsets().last().unwrap();
    let active_bytes = fs::read(seg_file(d.path(), active_base)).unwrap();
    let stats = l.clean(t0(), &CleanerConfig::default()).unwrap();
    assert_eq!(stats.partition, Some(tp()));
    assert_eq!(stats.end_offset, active_base);
    assert!(stats.records_retained < stats.records_read);
    let (after, hs) = read_records(&l);
    assert_eq!(after, expected(&before, active_base));
    // offsets preserved, active segment byte for byte
    assert_eq!(
        fs::read(seg_file(d.path(), active_base)).unwrap(),
        active_bytes
    );
    assert_eq!(*l.segment_base_offsets().last().unwrap(), active_base);
    // reading a removed offset returns the next surviving batch
    let removed = (0..active_base)
        .find(|o| !after.iter().any(|r| r.0 == *o))
        .unwrap();
    let next = after.iter().find(|r| r.0 > removed).unwrap().0;
    let data = l.read(removed, 1 << 20, true, None).unwrap();
    let h = BatchHeader::parse(&data.records).unwrap();
    assert!(h.base_offset <= next && h.last_offset() >= next);
    assert!(hs.iter().all(|h| h.last_offset() - h.base_offset == 0));
    // offset_for_timestamp still answers
    assert!(l.offset_for_timestamp(t0()).unwrap().is_some());
    // second pass with nothing new: nothing to do
    let again = l.clean(t0(), &CleanerConfig::default()).unwrap();
    assert_eq!(again.partition, None);
    // the cleaned log reopens (full recovery scan after a crash) with the same content
    drop(l);
    drop(_m);
    let (_m2, l2) = open(d.path(), ccfg());
    assert_eq!(read_records(&l2).0, after);
}

#[test]
fn fully_surviving_batches_are_copied_verbatim() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), ccfg());
    // distinct keys: nothing to remove
    for i in 0..20 {
        put(&l, &format!("u{i}"), Some("x"));
    }
    let first = l.read(0, 1 << 20, true, None).unwrap().records;
    let stats = l.clean(t0(), &CleanerConfig::default()).unwrap();
    assert!(stats.batches_copied > 0);
    assert_eq!(stats.batches_rewritten, 0);
    let again = l.read(0, 1 << 20, true, None).unwrap().records;
    let n = BatchHeader::parse(&first).unwrap().size().unwrap();
    assert_eq!(&first[..n], &again[..n]);
}

#[test]
fn batches_are_filtered_and_recompressed_with_their_codec() {
    for codec in 0..=4u8 {
        let d = tempfile::tempdir().unwrap();
        let c = LogConfig {
            segment_bytes: 4000,
            ..ccfg()
        };
        let (_m, l) = open(d.path(), c);
        let mut all = Vec::new();
        for b in 0..6i64 {
            let recs: Vec<_> = (0..10i64)
                .map(|i| {
                    let off = b * 10 + i;
                    all.push((off, format!("k{}", off % 13), Some(format!("value-{off}"))));
                    rec(
                        i,
                        t0() + off,
                        Some(&format!("k{}", off % 13)),
                        Some(&format!("value-{off}")),
                    )
                })
                .collect();
            l.append(&keyed_batch(codec, -1, -1, &recs), 3, t0())
                .unwrap();
        }
        l.roll_for_test();
        let stats = l.clean(t0(), &CleanerConfig::default()).unwrap();
        assert!(stats.batches_rewritten > 0, "codec {codec}");
        let (after, hs) = read_records(&l);
        assert_eq!(after, expected(&all, 60), "codec {codec}");
        for h in &hs {
            assert_eq!(h.compression(), codec);
            assert_eq!(h.partition_leader_epoch, 3);
            assert_eq!(h.last_offset_delta, 9, "original last offset kept");
            assert!(h.records_count < 10 || h.base_offset == 50);
        }
        // max timestamp is the retained records' maximum
        let h = hs[0];
        let (_, recs) = decode_records(&l.read(0, 1 << 20, true, None).unwrap().records).unwrap();
        assert_eq!(
            h.max_timestamp,
            recs.iter().map(|r| r.timestamp).max().unwrap()
        );
    }
}

#[test]
fn keyless_records_rejected_on_compacted_topics() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), ccfg());
    let keyless = TestBatch::new(2, t0()).build();
    match l.append(&keyless, 0, t0()) {
        Err(AppendError::RejectedRecords { kind, errors }) => {
            assert_eq!(kind, RejectionKind::InvalidRecord);
            assert_eq!(
                errors.iter().map(|e| e.batch_index).collect::<Vec<_>>(),
                [0, 1]
            );
            assert_eq!(
                errors[0].message,
                "Compacted topic cannot accept message without key in topic partition compacted-0"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(l.log_end_offset(), 0);
    let mixed = keyed_batch(
        2,
        -1,
        -1,
        &[
            rec(0, t0(), Some("a"), Some("1")),
            rec(1, t0(), None, Some("2")),
        ],
    );
    assert!(matches!(
        l.append(&mixed, 0, t0()),
        Err(AppendError::RejectedRecords { ref errors, .. }) if errors.len() == 1 && errors[0].batch_index == 1
    ));
    // delete-only topics take keyless records; a later switch to compact drops them when cleaning
    let dl = LogConfig {
        cleanup_policy: CleanupPolicy::Delete,
        ..ccfg()
    };
    l.set_config(dl);
    l.append(&keyless, 0, t0()).unwrap();
    put(&l, "a", Some("1"));
    l.set_config(ccfg());
    l.roll_for_test();
    let s = l.clean(t0(), &CleanerConfig::default()).unwrap();
    assert_eq!(s.keyless_dropped, 2);
    assert_eq!(read_records(&l).0, vec![(2, "a".into(), Some("1".into()))]);
}

#[test]
fn tombstones_kept_until_delete_horizon() {
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        delete_retention_ms: 1000,
        ..ccfg()
    };
    let (m, l) = open(d.path(), c);
    put(&l, "a", Some("1"));
    put(&l, "b", Some("1"));
    put(&l, "a", None);
    l.roll_for_test();
    let s = l.clean(t0(), &CleanerConfig::default()).unwrap();
    assert_eq!(s.tombstones_dropped, 0);
    let (recs, hs) = read_records(&l);
    assert_eq!(
        recs,
        vec![(1, "b".into(), Some("1".into())), (2, "a".into(), None)]
    );
    let th = hs.iter().find(|h| h.base_offset == 2).unwrap();
    assert!(has_delete_horizon(th));
    assert_eq!(
        th.base_timestamp,
        t0() + 1000,
        "delete horizon in baseTimestamp"
    );
    assert_eq!(th.max_timestamp, t0(), "record timestamps unchanged");
    assert!(!has_delete_horizon(&hs[0]));
    // before the horizon: still there (a forced pass keeps it)
    l.clean(t0() + 999, &CleanerConfig::default()).unwrap();
    assert_eq!(read_records(&l).0.len(), 2);
    // the manager does not pick the log before the horizon, does after it
    assert_eq!(m.run_cleaner(t0() + 999).partition, None);
    let s = m.run_cleaner(t0() + 1000);
    assert_eq!(s.partition, Some(tp()));
    assert_eq!(s.tombstones_dropped, 1);
    assert_eq!(read_records(&l).0, vec![(1, "b".into(), Some("1".into()))]);
    assert_eq!(m.run_cleaner(t0() + 5000).partition, None);
}

#[test]
fn interrupted_swaps_are_rolled_back_or_completed_on_reopen() {
    let d = tempfile::tempdir().unwrap();
    let pdir = d.path().join(tp().dir_name());
    let (m, l) = open(d.path(), ccfg());
    for i in 0..40 {
        put(&l, &format!("k{}", i % 5), Some(&format!("v{i}")));
    }
    let (before, _) = read_records(&l);
    let old_bases = l.segment_base_offsets();
    // 1. crash while writing .cleaned files: rolled back
    fs::write(pdir.join(format!("{:020}.log.cleaned", 0)), b"partial").unwrap();
    fs::write(pdir.join(format!("{:020}.index.cleaned", 0)), b"").unwrap();
    fs::write(pdir.join(format!("{:020}.index.swap", 0)), b"").unwrap();
    fs::write(pdir.join(format!("{:020}.swapend", 0)), b"77").unwrap();
    drop(l);
    drop(m); // no clean shutdown
    let (m, l) = open(d.path(), ccfg());
    assert_eq!(read_records(&l).0, before);
    assert_eq!(l.segment_base_offsets(), old_bases);
    for e in fs::read_dir(&pdir).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        assert!(!n.ends_with(".cleaned") && !n.ends_with(".swap") && !n.ends_with(".swapend"));
    }
    // 2. crash after the commit point: keep copies of the old segment files, clean, then rebuild
    //    the state "log .swap written, old segments not yet deleted, indexes not renamed".
    let backup: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".log") || n.ends_with(".index") || n.ends_with(".timeindex")
        })
        .map(|p| {
            let b = fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    l.clean(t0(), &CleanerConfig::default()).unwrap();
    let (cleaned, _) = read_records(&l);
    assert_ne!(cleaned, before);
    let new_bases = l.segment_base_offsets();
    let (b0, end) = (new_bases[0], new_bases[1]);
    drop(l);
    drop(m);
    crate::util::durable::rename(
        &seg_file(d.path(), b0),
        &pdir.join(format!("{b0:020}.log.swap")),
    )
    .unwrap();
    fs::write(pdir.join(format!("{b0:020}.swapend")), end.to_string()).unwrap();
    for (p, bytes) in &backup {
        let base: i64 = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        if base >= b0 && base < end {
            fs::write(p, bytes).unwrap();
        }
    }
    // the old segment at b0 keeps its (stale) index: recovery must not trust it
    let (m, l) = open(d.path(), ccfg());
    assert_eq!(l.segment_base_offsets(), new_bases);
    assert_eq!(read_records(&l).0, cleaned);
    assert!(l.recovery_stats().segments_recovered >= 1);
    // no data lost: the latest value of every key is still there
    let last: BTreeMap<String, Option<String>> =
        before.iter().map(|r| (r.1.clone(), r.2.clone())).collect();
    let now: BTreeMap<String, Option<String>> =
        cleaned.iter().map(|r| (r.1.clone(), r.2.clone())).collect();
    assert_eq!(last, now);
    drop(m);
}

#[test]
fn cleaner_checkpoint_persists_and_next_pass_maps_only_new_data() {
    let d = tempfile::tempdir().unwrap();
    let (m, l) = open(d.path(), ccfg());
    for i in 0..40 {
        put(&l, &format!("k{}", i % 5), Some(&format!("v{i}")));
    }
    let s = m.run_cleaner(t0());
    assert_eq!(s.partition, Some(tp()));
    assert_eq!(s.first_dirty_offset, 0);
    assert!(s.dirty_ratio > 0.99);
    let end = s.end_offset;
    let cp = read_checkpoint(&d.path().join(CLEANER_OFFSET_CHECKPOINT)).unwrap();
    assert_eq!(cp.get(&tp()), Some(&end));
    // nothing dirty: the ratio is 0
    assert_eq!(m.run_cleaner(t0()).partition, None);
    m.shutdown().unwrap();
    drop(l);
    drop(m);
    let (m, l) = open(d.path(), ccfg());
    assert_eq!(l.cleaner_checkpoint(), end);
    // new data with two new keys only: the map holds just those
    for i in 0..30 {
        put(&l, &format!("n{}", i % 2), Some(&format!("w{i}")));
    }
    let (dirty, _) = read_records(&l);
    let s = m.run_cleaner(t0());
    assert_eq!(s.partition, Some(tp()));
    assert_eq!(s.first_dirty_offset, end);
    // keys of the records at or after the checkpoint only (old active segment + new data)
    let keys: std::collections::BTreeSet<_> = dirty
        .iter()
        .filter(|r| r.0 >= end && r.0 < s.end_offset)
        .map(|r| r.1.clone())
        .collect();
    assert!(keys.len() < 7 && keys.contains("n0") && keys.contains("n1"));
    assert_eq!(s.map_entries, keys.len());
    assert!(s.end_offset > end);
    // a dirty ratio below min_cleanable_dirty_ratio is not cleaned, unless max lag forces it
    for i in 0..12 {
        put(&l, "n0", Some(&format!("z{i}")));
    }
    l.set_config(LogConfig {
        min_cleanable_dirty_ratio: 0.99,
        ..ccfg()
    });
    let c = l.cleanable(t0()).unwrap();
    assert!(c.dirty_bytes > 0 && c.ratio < 0.99, "{c:?}");
    assert_eq!(m.run_cleaner(t0()).partition, None);
    l.set_config(LogConfig {
        min_cleanable_dirty_ratio: 0.99,
        max_compaction_lag_ms: 1000,
        ..ccfg()
    });
    assert_eq!(m.run_cleaner(t0() + 1000).partition, None);
    assert_eq!(m.run_cleaner(t0() + 1001).partition, Some(tp()));
}

#[test]
fn bounded_map_cleans_a_prefix() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), ccfg());
    for i in 0..40 {
        put(&l, &format!("k{}", i % 20), Some(&format!("v{i}")));
    }
    let (before, _) = read_records(&l);
    let small = CleanerConfig {
        dedupe_buffer_bytes: 24 * 8,
        load_factor: 1.0,
    };
    assert_eq!(small.map_capacity(), 8);
    let s = l.clean(t0(), &small).unwrap();
    assert!(s.map_full);
    assert_eq!(s.map_entries, 8);
    assert_eq!(s.end_offset, 8);
    assert_eq!(l.cleaner_checkpoint(), 8);
    // offsets 0..8 hold keys k0..k7 whose newer copies are beyond: only keys mapped are removed
    assert_eq!(read_records(&l).0, expected(&before, 8));
    let mut passes = 1;
    while l.cleaner_checkpoint() < *l.segment_base_offsets().last().unwrap() {
        l.clean(t0(), &small).unwrap();
        passes += 1;
        assert!(passes < 20);
    }
    let active = *l.segment_base_offsets().last().unwrap();
    let got = read_records(&l).0;
    let latest: BTreeMap<_, _> = before
        .iter()
        .filter(|r| r.0 < active)
        .map(|r| (r.1.clone(), r.0))
        .collect();
    for r in got.iter().filter(|r| r.0 < active) {
        assert_eq!(latest[&r.1], r.0, "only the latest of {} remains", r.1);
    }
}

#[test]
fn producer_dedup_survives_cleaning_and_last_batch_kept_empty() {
    let d = tempfile::tempdir().unwrap();
    let (m, l) = open(d.path(), ccfg());
    let pb = |seq: i32, key: &str| keyed_batch(0, 7, seq, &[rec(0, t0(), Some(key), Some("p"))]);
    for seq in 0..10 {
        l.append(&pb(seq, "same"), 0, t0()).unwrap();
    }
    // a plain producer overwrites the key: the idempotent producer's last batch loses its record
    for _ in 0..10 {
        put(&l, "same", Some("plain"));
    }
    l.roll_for_test();
    let s = l.clean(t0(), &CleanerConfig::default()).unwrap();
    assert_eq!(s.empty_batches_kept, 1);
    let (recs, hs) = read_records(&l);
    assert_eq!(recs, vec![(19, "same".into(), Some("plain".into()))]);
    let empty = hs.iter().find(|h| h.producer_id == 7).unwrap();
    assert_eq!((empty.base_offset, empty.records_count), (9, 0));
    assert_eq!(empty.last_sequence(), 9);
    // retry of the last batch is a duplicate with its original offsets; the next sequence fits
    let dup = l.append(&pb(9, "same"), 0, t0()).unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.first_offset, 9);
    assert!(matches!(
        l.append(&pb(12, "same"), 0, t0()),
        Err(AppendError::OutOfOrderSequence(_))
    ));
    l.append(&pb(10, "same"), 0, t0()).unwrap();
    // after a crash the state is rebuilt from snapshots and the cleaned segments
    drop(l);
    drop(m);
    let (_m, l) = open(d.path(), ccfg());
    assert!(l.append(&pb(10, "same"), 0, t0()).unwrap().duplicate);
    l.append(&pb(11, "same"), 0, t0()).unwrap();
}

#[test]
fn concurrent_appends_and_reads_while_cleaning() {
    let d = tempfile::tempdir().unwrap();
    let (m, l) = open(d.path(), ccfg());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let l = l.clone();
        std::thread::spawn(move || {
            for i in 0..1500 {
                put(&l, &format!("k{}", i % 37), Some(&format!("{i}")));
            }
        })
    };
    let reader = {
        let (l, stop) = (l.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Acquire) {
                let (recs, _) = read_records(&l);
                let mut prev = -1;
                for r in &recs {
                    assert!(r.0 > prev);
                    prev = r.0;
                }
                n += 1;
            }
            n
        })
    };
    let mut passes = 0;
    while !writer.is_finished() {
        if l.clean(t0(), &CleanerConfig::default())
            .unwrap()
            .partition
            .is_some()
        {
            passes += 1;
        }
        std::thread::yield_now();
    }
    writer.join().unwrap();
    l.roll_for_test();
    l.clean(t0(), &CleanerConfig::default()).unwrap();
    stop.store(true, Ordering::Release);
    assert!(reader.join().unwrap() > 0);
    assert!(passes > 0);
    let (recs, _) = read_records(&l);
    assert_eq!(
        recs.len(),
        37,
        "one record per key once everything is cleaned"
    );
    for (_, k, v) in &recs {
        let i: usize = v.as_ref().unwrap().parse().unwrap();
        assert_eq!(format!("k{}", i % 37), *k);
        assert!(i >= 1500 - 37, "latest value of {k}");
    }
    assert_eq!(l.log_end_offset(), 1500);
    drop(m);
}

#[test]
fn min_compaction_lag_and_policy_specific_retention() {
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        min_compaction_lag_ms: 60_000,
        retention_ms: 1,
        ..ccfg()
    };
    let (_m, l) = open(d.path(), c.clone());
    for i in 0..30 {
        put(&l, &format!("k{}", i % 3), Some("v"));
    }
    // records stamped t0() are too young at t0() + 1000
    assert_eq!(
        l.clean(t0() + 1000, &CleanerConfig::default())
            .unwrap()
            .partition,
        None
    );
    let s = l.clean(t0() + 60_001, &CleanerConfig::default()).unwrap();
    assert_eq!(s.partition, Some(tp()));
    // compact-only: time retention does not delete; compact,delete does
    let n = l.num_segments();
    assert_eq!(l.apply_retention(t0() + 10_000_000).unwrap(), 0);
    assert_eq!(l.num_segments(), n);
    l.set_config(LogConfig {
        cleanup_policy: CleanupPolicy::DeleteAndCompact,
        ..c
    });
    assert!(l.apply_retention(t0() + 10_000_000).unwrap() > 0);
}

#[test]
fn corrupt_segment_is_not_rewritten_and_partition_marked_uncleanable() {
    let d = tempfile::tempdir().unwrap();
    let (m, l) = open(d.path(), ccfg());
    for i in 0..30 {
        put(&l, &format!("k{}", i % 3), Some(&format!("v{i}")));
    }
    let bases = l.segment_base_offsets();
    // flip a byte inside the second batch's records of the second segment (CRC now wrong)
    let path = seg_file(d.path(), bases[1]);
    let mut bytes = fs::read(&path).unwrap();
    let first = BatchHeader::parse(&bytes).unwrap().size().unwrap();
    bytes[first + 70] ^= 0x55;
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all_at(&bytes[first + 70..first + 71], (first + 70) as u64)
        .unwrap();
    let before: Vec<_> = bases
        .iter()
        .map(|b| fs::read(seg_file(d.path(), *b)).unwrap())
        .collect();
    assert!(matches!(
        l.clean(t0(), &CleanerConfig::default()),
        Err(LogError::Corrupt(_))
    ));
    assert_eq!(m.run_cleaner(t0()).partition, None);
    assert_eq!(
        m.run_cleaner(t0()).partition,
        None,
        "skipped once uncleanable"
    );
    assert_eq!(l.segment_base_offsets(), bases);
    let after: Vec<_> = bases
        .iter()
        .map(|b| fs::read(seg_file(d.path(), *b)).unwrap())
        .collect();
    // the first segment may have been cleaned before the damage was met; nothing else changed
    assert_eq!(after[1..], before[1..]);
    for e in fs::read_dir(d.path().join(tp().dir_name())).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        assert!(!n.ends_with(".cleaned") && !n.ends_with(".swap"), "{n}");
    }
}

// ---- transactions (Kafka's transaction-aware cleaning) ----

/// A keyed transactional batch of producer `pid` (epoch 0) from sequence `seq`.
fn txn_batch(pid: i64, seq: i32, kvs: &[(&str, &str)]) -> Vec<u8> {
    let recs: Vec<_> = kvs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| rec(i as i64, t0(), Some(k), Some(v)))
        .collect();
    let mut b = keyed_batch(0, pid, seq, &recs);
    b[22] |= 0x10; // transactional
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// A transactional batch appended as a verified client batch (KIP-890 part 1).
fn txn_put(l: &PartitionLog, pid: i64, seq: i32, kvs: &[(&str, &str)]) -> i64 {
    let guard = l.verification_guard(pid);
    l.append_from_verified(
        &txn_batch(pid, seq, kvs),
        0,
        t0(),
        crate::log::AppendOrigin::Client,
        Some(guard),
    )
    .unwrap()
    .first_offset
}

fn end_txn(l: &PartitionLog, pid: i64, commit: bool) -> i64 {
    l.append_marker(pid, 0, commit, 0, 0, t0()).unwrap()
}

/// Every batch readable from the log start: (header, bytes).
fn read_batches(l: &PartitionLog) -> Vec<(BatchHeader, Vec<u8>)> {
    let mut out = Vec::new();
    let mut off = l.log_start_offset();
    loop {
        let d = l.read(off, 1 << 20, true, None).unwrap();
        if d.records.is_empty() {
            return out;
        }
        let bytes = &d.records[..];
        let mut pos = 0;
        while pos < bytes.len() {
            let h = BatchHeader::parse(&bytes[pos..]).unwrap();
            let sz = h.size().unwrap();
            assert_eq!(compute_crc(&bytes[pos..pos + sz]), h.crc);
            out.push((h, bytes[pos..pos + sz].to_vec()));
            off = h.next_offset();
            pos += sz;
        }
    }
}

/// What a read_committed consumer sees (Kafka's fetcher): data records, skipping the batches of
/// the aborted transactions that `collect_aborted_transactions` lists until their ABORT marker.
fn read_committed(l: &PartitionLog) -> Vec<Row> {
    let mut aborted = l.collect_aborted_transactions(l.log_start_offset(), l.log_end_offset());
    aborted.reverse();
    let mut skipping = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (h, b) in read_batches(l) {
        while aborted
            .last()
            .is_some_and(|t| t.first_offset <= h.last_offset())
        {
            skipping.insert(aborted.pop().unwrap().producer_id);
        }
        if h.is_control() {
            if crate::log::batch::parse_end_txn_marker(&b).is_some_and(|m| !m.commit) {
                skipping.remove(&h.producer_id);
            }
            continue;
        }
        if h.is_transactional() && skipping.contains(&h.producer_id) {
            continue;
        }
        for r in decode_records(&b).unwrap().1 {
            out.push((
                r.offset,
                String::from_utf8(r.key.unwrap()).unwrap(),
                r.value.map(|v| String::from_utf8(v).unwrap()),
            ));
        }
    }
    out
}

fn markers(l: &PartitionLog) -> Vec<(i64, i64, bool)> {
    read_batches(l)
        .iter()
        .filter(|(h, _)| h.is_control())
        .filter_map(|(h, b)| {
            crate::log::batch::parse_end_txn_marker(b)
                .map(|m| (h.base_offset, h.producer_id, m.commit))
        })
        .collect()
}

fn row(o: i64, k: &str, v: &str) -> Row {
    (o, k.into(), Some(v.into()))
}

#[test]
fn aborted_data_is_removed_committed_kept_and_the_key_map_not_poisoned() {
    let d = tempfile::tempdir().unwrap();
    let (m, l) = open(d.path(), ccfg());
    put(&l, "a", Some("c1")); // 0
    txn_put(&l, 100, 0, &[("a", "x1"), ("b", "x1")]); // 1-2, aborted below
    put(&l, "b", Some("c1")); // 3
    txn_put(&l, 101, 0, &[("c", "c1")]); // 4, committed
    let abort1 = end_txn(&l, 100, false); // 5
    let commit = end_txn(&l, 101, true); // 6
                                         // An aborted transaction whose marker lands in the active segment: its data in the cleaned
                                         // segments goes all the same (the marker's segment index names it).
    txn_put(&l, 102, 0, &[("d", "x2")]); // 7
    for i in 0..8 {
        put(&l, &format!("pad{i}"), Some("p")); // 8..15
    }
    l.roll_for_test();
    let abort2 = end_txn(&l, 102, false); // 16
                                          // Producers 100 and 102 write again (their last batches are in the active segment).
    txn_put(&l, 100, 2, &[("e", "c1")]);
    end_txn(&l, 100, true);
    txn_put(&l, 102, 1, &[("e", "c2")]);
    end_txn(&l, 102, true);
    let before = read_committed(&l);
    assert!(before.contains(&row(0, "a", "c1")) && !before.iter().any(|r| r.0 == 1));
    let entries_before = l.collect_aborted_transactions(0, l.log_end_offset());
    assert_eq!(entries_before.len(), 2);

    let s = l.clean(t0(), &CleanerConfig::default()).unwrap();
    assert_eq!(s.aborted_records_dropped, 3, "{s:?}");
    let (recs, _) = read_records(&l);
    let data: Vec<_> = recs
        .iter()
        .filter(|r| !r.1.starts_with('\0'))
        .cloned()
        .collect();
    // Committed values stay, even though aborted values of the same keys came later.
    assert!(data.contains(&row(0, "a", "c1")));
    assert!(data.contains(&row(3, "b", "c1")));
    assert!(data.contains(&row(4, "c", "c1")));
    assert!(!data
        .iter()
        .any(|r| r.2.as_deref().is_some_and(|v| v.starts_with('x'))));
    // read_committed sees what it saw before.
    assert_eq!(read_committed(&l), before);
    // Markers: the COMMIT's data remains; the ABORT in the cleaned range stays for this pass
    // (its data was removed by it) with its index entry; the one in the active segment stays.
    let ms = markers(&l);
    assert!(ms.contains(&(abort1, 100, false)));
    assert!(ms.contains(&(commit, 101, true)));
    assert!(ms.contains(&(abort2, 102, false)));
    assert_eq!(
        l.collect_aborted_transactions(0, l.log_end_offset()),
        entries_before
    );
    // The next pass (the manager runs it at once) finds the aborted transaction empty: its
    // marker gets a delete horizon and leaves the cleaned segment's transaction index.
    let s = m.run_cleaner(t0());
    assert_eq!(s.partition, Some(tp()));
    assert_eq!(s.markers_horizon_set, 1, "{s:?}");
    let left = l.collect_aborted_transactions(0, l.log_end_offset());
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].last_offset, abort2);
    assert_eq!(read_committed(&l), before);
    // A clean reopen and an unclean one (indexes rebuilt from the log) read the same.
    let batches = read_batches(&l);
    drop(l);
    m.shutdown().unwrap();
    drop(m);
    let (m, l) = open(d.path(), ccfg());
    assert_eq!(read_batches(&l).len(), batches.len());
    assert_eq!(read_committed(&l), before);
    assert_eq!(l.collect_aborted_transactions(0, l.log_end_offset()), left);
    drop(l);
    drop(m);
    let pdir = d.path().join(tp().dir_name());
    for e in fs::read_dir(&pdir).unwrap() {
        let p = e.unwrap().path();
        let n = p.file_name().unwrap().to_string_lossy().to_string();
        if n.ends_with(".index") || n.ends_with(".txnindex") || n.ends_with(".snapshot") {
            fs::remove_file(&p).unwrap();
        }
    }
    let _ = fs::remove_file(d.path().join(".kafka_cleanshutdown"));
    let (_m, l) = open(d.path(), ccfg());
    assert_eq!(read_committed(&l), before);
    assert_eq!(
        read_batches(&l)
            .iter()
            .map(|b| b.1.clone())
            .collect::<Vec<_>>(),
        batches.iter().map(|b| b.1.clone()).collect::<Vec<_>>()
    );
}

#[test]
fn markers_are_removed_after_their_data_and_delete_retention() {
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        delete_retention_ms: 1000,
        ..ccfg()
    };
    let (m, l) = open(d.path(), c.clone());
    txn_put(&l, 200, 0, &[("a", "1")]); // 0
    let commit = end_txn(&l, 200, true); // 1
    txn_put(&l, 201, 0, &[("b", "x")]); // 2
    let abort = end_txn(&l, 201, false); // 3
    put(&l, "a", Some("2")); // 4: the committed value is overwritten
    l.roll_for_test();
    // Nobody keeps the producers' last batches: they expired.
    assert_eq!(l.expire_producers(t0() + 30 * 86_400_000), 2);
    let s = l.clean(t0(), &CleanerConfig::default()).unwrap();
    assert_eq!(s.aborted_records_dropped, 1);
    assert_eq!(
        s.markers_horizon_set, 0,
        "data of both was read by this pass"
    );
    assert_eq!(markers(&l), vec![(commit, 200, true), (abort, 201, false)]);
    assert_eq!(l.collect_aborted_transactions(0, 10).len(), 1);
    assert_eq!(read_committed(&l), vec![row(4, "a", "2")]);
    // Second pass: no data left for either; both markers get the horizon.
    let s = m.run_cleaner(t0() + 10);
    assert_eq!(s.markers_horizon_set, 2, "{s:?}");
    let hs: Vec<_> = read_batches(&l)
        .into_iter()
        .filter(|(h, _)| h.is_control())
        .collect();
    assert_eq!(hs.len(), 2);
    for (h, b) in &hs {
        assert!(has_delete_horizon(h));
        assert_eq!(h.base_timestamp, t0() + 10 + 1000);
        assert_eq!(h.max_timestamp, t0(), "the marker's timestamp is kept");
        assert!(crate::log::batch::parse_end_txn_marker(b).is_some());
    }
    assert!(l.collect_aborted_transactions(0, 10).is_empty());
    // Before the horizon they stay (and the manager has nothing to do); at it they go.
    assert_eq!(m.run_cleaner(t0() + 1009).partition, None);
    let s = l.clean(t0() + 1009, &CleanerConfig::default()).unwrap();
    assert_eq!(s.markers_removed, 0);
    assert_eq!(markers(&l).len(), 2);
    let s = m.run_cleaner(t0() + 1010);
    assert_eq!(s.markers_removed, 2, "{s:?}");
    assert!(markers(&l).is_empty());
    assert_eq!(read_committed(&l), vec![row(4, "a", "2")]);
    assert_eq!(m.run_cleaner(t0() + 5000).partition, None);
    drop(l);
    drop(m);
    let (_m, l) = open(d.path(), c);
    assert!(markers(&l).is_empty());
    assert_eq!(read_committed(&l), vec![row(4, "a", "2")]);
}

#[test]
fn a_marker_stays_while_data_of_its_transaction_remains() {
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        delete_retention_ms: 0,
        ..ccfg()
    };
    let (_m, l) = open(d.path(), c);
    txn_put(&l, 300, 0, &[("a", "1"), ("b", "1")]); // 0-1
    let commit = end_txn(&l, 300, true); // 2
    put(&l, "a", Some("2")); // 3: half of the transaction is overwritten
    l.roll_for_test();
    l.expire_producers(t0() + 30 * 86_400_000);
    let marker_bytes = |l: &PartitionLog| {
        read_batches(l)
            .into_iter()
            .find(|(h, _)| h.base_offset == commit)
            .map(|(_, b)| b)
    };
    let original = marker_bytes(&l).unwrap();
    for later in [0, 1, 86_400_000] {
        l.clean(t0() + later, &CleanerConfig::default()).unwrap();
        assert_eq!(marker_bytes(&l).as_ref(), Some(&original), "at +{later}");
    }
    assert_eq!(read_committed(&l), vec![row(1, "b", "1"), row(3, "a", "2")]);
    // Once its last record is overwritten, the marker goes: horizon first, then removal.
    put(&l, "b", Some("2"));
    l.roll_for_test();
    let later = t0() + 2 * 86_400_000;
    l.clean(later, &CleanerConfig::default()).unwrap();
    assert!(marker_bytes(&l).is_some(), "its data was read by this pass");
    l.clean(later, &CleanerConfig::default()).unwrap();
    let (h, _) = read_batches(&l)
        .into_iter()
        .find(|(h, _)| h.base_offset == commit)
        .unwrap();
    assert!(has_delete_horizon(&h));
    l.clean(later, &CleanerConfig::default()).unwrap();
    assert_eq!(marker_bytes(&l), None);
}

#[test]
fn an_active_producers_last_batches_are_kept_empty_with_their_marker() {
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        delete_retention_ms: 0,
        ..ccfg()
    };
    let (_m, l) = open(d.path(), c.clone());
    txn_put(&l, 400, 0, &[("a", "x"), ("b", "x")]); // 0-1, aborted: the producer's last batch
    let abort = end_txn(&l, 400, false); // 2
    put(&l, "z", Some("1"));
    l.roll_for_test();
    for t in [0, 1, 2] {
        l.clean(t0() + t, &CleanerConfig::default()).unwrap();
    }
    let bs = read_batches(&l);
    let empty = bs
        .iter()
        .find(|(h, _)| h.producer_id == 400 && !h.is_control());
    let (h, _) = empty.expect("the last batch of producer 400 is kept");
    assert_eq!(
        (h.base_offset, h.records_count, h.last_sequence()),
        (0, 0, 1)
    );
    assert!(h.is_transactional());
    // The transaction's (empty) batch is still there: so are its marker and index entry.
    assert_eq!(markers(&l), vec![(abort, 400, false)]);
    assert_eq!(l.collect_aborted_transactions(0, 10).len(), 1);
    assert_eq!(read_committed(&l), vec![row(3, "z", "1")]);
    // The producer's state survives: a retry of its last batch is a duplicate, the next
    // sequence fits.
    let dup = l.append(&txn_batch(400, 0, &[("a", "x"), ("b", "x")]), 0, t0());
    assert!(dup.unwrap().duplicate);
    // A producer whose state holds no data batch (a new epoch) keeps its markers of that epoch.
    l.append_marker(400, 1, false, 0, 0, t0()).unwrap();
    put(&l, "y", Some("1"));
    l.roll_for_test();
    for t in [0, 1, 2, 3] {
        l.clean(t0() + t, &CleanerConfig::default()).unwrap();
    }
    assert!(read_batches(&l)
        .iter()
        .any(|(h, _)| h.is_control() && h.producer_epoch == 1));
}

#[test]
fn fetches_never_see_aborted_transactions_below_the_log_start() {
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        cleanup_policy: CleanupPolicy::Delete,
        ..ccfg()
    };
    let (_m, l) = open(d.path(), c);
    txn_put(&l, 500, 0, &[("a", "x")]); // 0
    end_txn(&l, 500, false); // 1
    for i in 0..20 {
        put(&l, &format!("k{i}"), Some("v"));
    }
    assert_eq!(l.collect_aborted_transactions(0, 5).len(), 1);
    l.set_high_watermark(l.log_end_offset());
    l.increment_log_start_offset(2, l.log_end_offset()).unwrap();
    assert!(l.collect_aborted_transactions(0, 5).is_empty());
    assert!(l.collect_aborted_transactions(2, 5).is_empty());
    let txn_files = || {
        fs::read_dir(d.path().join(tp().dir_name()))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".txnindex")
            })
            .count()
    };
    assert_eq!(txn_files(), 1);
    // The segment is wholly below the start only once the start passes its end.
    let second = l.segment_base_offsets()[1];
    l.increment_log_start_offset(second, l.log_end_offset())
        .unwrap();
    assert_eq!(l.delete_segments_below_log_start().unwrap(), 1);
    assert_eq!(txn_files(), 0, "deleted with its segment");
}
