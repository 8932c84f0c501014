//! Integration-style tests of the partition log and the log manager (real files in a temp dir).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::test_util::{batch, TestBatch};
use super::batch::{compute_crc, BatchHeader};
use super::manager::CLEAN_SHUTDOWN_FILE;
use super::*;

fn tp() -> TopicPartition {
    TopicPartition::new("topic", 0)
}

fn cfg() -> LogConfig {
    LogConfig {
        retention_ms: -1,
        ..Default::default()
    }
}

fn small_cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 2000,
        index_interval_bytes: 200,
        ..cfg()
    }
}

fn open(dir: &Path, c: LogConfig) -> (Arc<LogManager>, Arc<PartitionLog>) {
    let m = LogManager::open(dir).unwrap();
    let l = m.open_partition(&tp(), c).unwrap();
    (m, l)
}

fn headers(bytes: &[u8]) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let h = BatchHeader::parse(&bytes[pos..]).expect("whole header");
        let sz = h.size().unwrap();
        assert!(pos + sz <= bytes.len(), "partial batch returned");
        assert_eq!(
            compute_crc(&bytes[pos..pos + sz]),
            h.crc,
            "stored CRC valid"
        );
        out.push(h);
        pos += sz;
    }
    out
}

/// Reads the whole log batch by batch from the log start.
fn read_all(l: &PartitionLog) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut off = l.log_start_offset();
    loop {
        let d = l.read(off, 1 << 20, true, None).unwrap();
        if d.records.is_empty() {
            break;
        }
        let hs = headers(&d.records);
        off = hs.last().unwrap().next_offset();
        out.extend(hs);
    }
    out
}

fn assert_contiguous(hs: &[BatchHeader], from: i64) {
    let mut next = from;
    for h in hs {
        assert_eq!(h.base_offset, next);
        next = h.next_offset();
    }
}

fn seg_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir.join(tp().dir_name()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(suffix))
        .collect();
    v.sort();
    v
}

#[test]
fn append_read_round_trip_across_rolls() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), small_cfg());
    for i in 0..200i64 {
        let info = l.append(&batch(3, 1000 + i), 7, 5000).unwrap();
        assert_eq!(info.first_offset, 3 * i);
        assert_eq!(info.last_offset, 3 * i + 2);
        assert_eq!(info.records_count, 3);
        assert_eq!(info.log_append_time_ms, -1);
        assert!(!info.duplicate);
    }
    assert_eq!(l.log_end_offset(), 600);
    assert!(l.num_segments() > 5, "rolled: {}", l.num_segments());
    let hs = read_all(&l);
    assert_eq!(hs.len(), 200);
    assert_contiguous(&hs, 0);
    assert!(hs.iter().all(|h| h.partition_leader_epoch == 7));
    // Reads from middle offsets start at the containing batch.
    for off in [1i64, 4, 299, 301, 599] {
        let r = l.read(off, 100_000, false, None).unwrap();
        let h = headers(&r.records);
        assert_eq!(h[0].base_offset, off - off % 3, "offset {off}");
    }
    // Segment files are named by base offset and sizes respect segment_bytes.
    let logs = seg_files(d.path(), ".log");
    assert_eq!(logs.len(), l.num_segments());
    for p in &logs {
        assert!(fs::metadata(p).unwrap().len() <= 2000);
    }
    assert_eq!(
        logs[0].file_name().unwrap().to_str().unwrap(),
        "00000000000000000000.log"
    );
    assert_eq!(
        l.size_bytes(),
        logs.iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum::<u64>()
    );
}

#[test]
fn read_limits_min_one_batch_and_high_watermark() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), cfg());
    let b = batch(3, 0);
    let s = b.len();
    for _ in 0..5 {
        l.append(&b, 0, 0).unwrap();
    }
    assert_eq!(
        headers(&l.read(0, 2 * s + 10, false, None).unwrap().records).len(),
        2
    );
    assert!(l.read(0, s - 1, false, None).unwrap().records.is_empty());
    let one = l.read(0, s - 1, true, None).unwrap().records;
    assert_eq!(one.len(), s);
    assert_eq!(
        headers(&l.read(3, 10 * s, false, None).unwrap().records).len(),
        4
    );
    // High watermark: batches whose last offset reaches it are not returned.
    assert_eq!(
        headers(&l.read(0, 10 * s, false, Some(6)).unwrap().records).len(),
        2
    );
    assert_eq!(
        headers(&l.read(0, 10 * s, false, Some(5)).unwrap().records).len(),
        1
    );
    assert!(l.read(0, 10 * s, true, Some(0)).unwrap().records.is_empty());
    assert!(l.read(15, 100, true, None).unwrap().records.is_empty());
    assert!(matches!(
        l.read(16, 100, true, None),
        Err(ReadError::OffsetOutOfRange {
            offset: 16,
            log_start_offset: 0,
            log_end_offset: 15
        })
    ));
    assert!(matches!(
        l.read(-1, 100, true, None),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn invalid_payloads_store_nothing() {
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        max_message_bytes: 300,
        ..cfg()
    };
    let (_m, l) = open(d.path(), c);
    let mut bad = batch(2, 0);
    let n = bad.len();
    bad[n - 3] ^= 0xff;
    assert!(matches!(
        l.append(&bad, 0, 0),
        Err(AppendError::CorruptMessage(_))
    ));
    let big = TestBatch::new(1, 0).value_size(400).build();
    assert!(matches!(
        l.append(&big, 0, 0),
        Err(AppendError::MessageTooLarge { max: 300, .. })
    ));
    // Multi-batch: one bad batch means nothing is stored.
    let mut payload = batch(2, 0);
    payload.extend_from_slice(&bad);
    assert!(matches!(
        l.append(&payload, 0, 0),
        Err(AppendError::CorruptMessage(_))
    ));
    let mut payload = batch(2, 0);
    payload.extend_from_slice(&batch(1, 0)[..50]);
    assert!(l.append(&payload, 0, 0).is_err());
    assert!(l.append(&[], 0, 0).is_err());
    assert_eq!(l.log_end_offset(), 0);
    assert_eq!(l.size_bytes(), 0);
    // Two valid batches in one payload get contiguous offsets.
    let mut payload = batch(2, 0);
    payload.extend_from_slice(&batch(3, 0));
    let info = l.append(&payload, 0, 0).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.records_count),
        (0, 4, 5)
    );
    let hs = read_all(&l);
    assert_eq!(hs.len(), 2);
    assert_contiguous(&hs, 0);
}

#[test]
fn log_append_time_rewrites_timestamp_and_crc() {
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..cfg()
    };
    let (_m, l) = open(d.path(), c);
    let info = l.append(&batch(3, 10), 2, 12345).unwrap();
    assert_eq!(info.log_append_time_ms, 12345);
    let r = l.read(0, 1 << 20, true, None).unwrap().records;
    let h = headers(&r)[0]; // headers() re-verifies the CRC
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, 12345);
    assert_eq!(h.base_timestamp, 10);
    assert_eq!(
        l.max_timestamp_offset().unwrap(),
        Some(TimestampOffset {
            timestamp: 12345,
            offset: 0
        })
    );
    assert_eq!(
        l.offset_for_timestamp(12000).unwrap(),
        Some(TimestampOffset {
            timestamp: 12345,
            offset: 0
        })
    );
}

/// An idempotent batch stamped with the current wall clock (older producers expire at load).
fn idem(records: usize, pid: i64, epoch: i16, seq: i32) -> Vec<u8> {
    TestBatch::new(records, crate::util::clock::now_ms())
        .idempotent(pid, epoch, seq)
        .build()
}

#[test]
fn idempotent_producer_rules() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), cfg());
    let first = idem(3, 1, 0, 0);
    assert_eq!(l.append(&first, 0, 0).unwrap().first_offset, 0);
    assert_eq!(l.append(&idem(3, 1, 0, 3), 0, 0).unwrap().first_offset, 3);
    let dup = l.append(&first, 0, 0).unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.first_offset, dup.last_offset), (0, 2));
    assert_eq!(l.log_end_offset(), 6);
    assert!(matches!(
        l.append(&idem(1, 1, 0, 10), 0, 0),
        Err(AppendError::OutOfOrderSequence(_))
    ));
    assert!(matches!(
        l.append(&idem(1, 1, 1, 5), 0, 0),
        Err(AppendError::OutOfOrderSequence(_))
    ));
    assert_eq!(l.append(&idem(1, 1, 1, 0), 0, 0).unwrap().first_offset, 6);
    assert!(matches!(
        l.append(&idem(1, 1, 0, 6), 0, 0),
        Err(AppendError::InvalidProducerEpoch(_))
    ));
    // Old-epoch duplicate is not a duplicate any more: fenced.
    assert!(l.append(&first, 0, 0).is_err());
    // Unknown producer: any starting sequence; sequences wrap at i32::MAX.
    l.append(&idem(2, 2, 0, i32::MAX - 1), 0, 0).unwrap();
    l.append(&idem(1, 2, 0, 0), 0, 0).unwrap();
    // Only the last 5 batches are remembered.
    let p3: Vec<Vec<u8>> = (0..7).map(|i| idem(1, 3, 0, i)).collect();
    for b in &p3 {
        assert!(!l.append(b, 0, 0).unwrap().duplicate);
    }
    assert!(l.append(&p3[6], 0, 0).unwrap().duplicate);
    assert!(l.append(&p3[2], 0, 0).unwrap().duplicate);
    assert!(matches!(
        l.append(&p3[1], 0, 0),
        Err(AppendError::OutOfOrderSequence(_))
    ));
    // Two batches of one producer in one payload; a bad second batch rejects both.
    let leo = l.log_end_offset();
    let mut payload = idem(2, 4, 0, 0);
    payload.extend_from_slice(&idem(2, 4, 0, 5));
    assert!(l.append(&payload, 0, 0).is_err());
    assert_eq!(l.log_end_offset(), leo);
    let mut payload = idem(2, 4, 0, 0);
    payload.extend_from_slice(&idem(2, 4, 0, 2));
    assert_eq!(l.append(&payload, 0, 0).unwrap().records_count, 4);
    assert!(l.append(&idem(2, 4, 0, 2), 0, 0).unwrap().duplicate);
    // Producer id without a sequence is invalid.
    assert!(matches!(
        l.append(&TestBatch::new(1, 0).idempotent(9, 0, -1).build(), 0, 0),
        Err(AppendError::InvalidRecord(_))
    ));
}

#[test]
fn duplicates_recognised_after_clean_reopen() {
    let d = tempfile::tempdir().unwrap();
    let b0 = idem(2, 7, 0, 0);
    let b1 = idem(2, 7, 0, 2);
    {
        let (m, l) = open(d.path(), small_cfg());
        l.append(&b0, 0, 0).unwrap();
        l.append(&b1, 0, 0).unwrap();
        for _ in 0..30 {
            l.append(&batch(2, 0), 0, 0).unwrap();
        }
        m.shutdown().unwrap();
        assert!(
            l.append(&batch(1, 0), 0, 0).is_err(),
            "closed after shutdown"
        );
        assert!(d.path().join(CLEAN_SHUTDOWN_FILE).exists());
    }
    let (m, l) = open(d.path(), small_cfg());
    assert!(m.had_clean_shutdown());
    assert!(!d.path().join(CLEAN_SHUTDOWN_FILE).exists());
    let st = l.recovery_stats();
    assert!(st.segments_loaded > 1);
    assert_eq!(st.segments_recovered, 0, "{st:?}");
    assert_eq!(st.batches_replayed, 0, "{st:?}");
    assert_eq!(l.log_end_offset(), 64);
    let dup = l.append(&b1, 0, 0).unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.first_offset, dup.last_offset), (2, 3));
    assert!(matches!(
        l.append(&idem(1, 7, 0, 9), 0, 0),
        Err(AppendError::OutOfOrderSequence(_))
    ));
    assert_eq!(l.append(&idem(1, 7, 0, 4), 0, 0).unwrap().first_offset, 64);
    assert_eq!(read_all(&l).len(), 33);
}

#[test]
fn duplicates_recognised_after_crash() {
    let d = tempfile::tempdir().unwrap();
    let b0 = idem(2, 7, 0, 0);
    let late = idem(2, 7, 0, 2);
    {
        let (_m, l) = open(d.path(), small_cfg());
        l.append(&b0, 0, 0).unwrap();
        for _ in 0..30 {
            l.append(&batch(2, 0), 0, 0).unwrap();
        }
        // After a roll (snapshot written) the producer appends again.
        l.append(&late, 0, 0).unwrap();
        assert!(l.snapshots_written() > 0);
        // no shutdown: crash
    }
    let (m, l) = open(d.path(), small_cfg());
    assert!(!m.had_clean_shutdown());
    assert!(l.recovery_stats().segments_recovered > 0);
    assert!(l.recovery_stats().batches_replayed > 0);
    assert_eq!(l.log_end_offset(), 64);
    let dup = l.append(&late, 0, 0).unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.first_offset, 62);
    // Without any snapshot, replay from the log start works too.
    drop((m, l));
    for p in seg_files(d.path(), ".snapshot") {
        fs::remove_file(p).unwrap();
    }
    let (_m, l) = open(d.path(), small_cfg());
    assert!(l.append(&late, 0, 0).unwrap().duplicate);
    assert_eq!(l.append(&b0, 0, 0).unwrap().first_offset, 0);
}

/// Writes `n` batches of 2 records, crashes (no shutdown) and returns the active log file path.
fn crash_with(d: &Path, c: LogConfig, n: usize) -> Vec<usize> {
    let (_m, l) = open(d, c);
    let mut sizes = Vec::new();
    for i in 0..n {
        let b = batch(2, i as i64);
        sizes.push(b.len());
        l.append(&b, 0, 0).unwrap();
    }
    sizes
}

fn last_log(d: &Path) -> PathBuf {
    seg_files(d, ".log").pop().unwrap()
}

#[test]
fn recovery_cuts_torn_tail() {
    let d = tempfile::tempdir().unwrap();
    let sizes = crash_with(d.path(), cfg(), 10);
    let p = last_log(d.path());
    let len = fs::metadata(&p).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    let (_m, l) = open(d.path(), cfg());
    assert_eq!(l.log_end_offset(), 18);
    assert_eq!(l.recovery_stats().bytes_truncated, (sizes[9] - 5) as u64);
    assert_eq!(fs::metadata(&p).unwrap().len(), len - sizes[9] as u64);
    assert_eq!(l.append(&batch(1, 0), 0, 0).unwrap().first_offset, 18);
    assert_eq!(read_all(&l).len(), 10);
}

#[test]
fn recovery_removes_appended_garbage() {
    let d = tempfile::tempdir().unwrap();
    crash_with(d.path(), cfg(), 10);
    let p = last_log(d.path());
    let len = fs::metadata(&p).unwrap().len();
    let mut data = fs::read(&p).unwrap();
    data.extend((0..200u32).map(|i| (i * 37 % 251) as u8));
    fs::write(&p, data).unwrap();
    let (_m, l) = open(d.path(), cfg());
    assert_eq!(l.log_end_offset(), 20);
    assert_eq!(fs::metadata(&p).unwrap().len(), len);
    assert_eq!(l.recovery_stats().bytes_truncated, 200);
}

#[test]
fn recovery_truncates_at_corrupt_crc_in_active_segment() {
    let d = tempfile::tempdir().unwrap();
    let sizes = crash_with(d.path(), cfg(), 10);
    let p = last_log(d.path());
    let mut data = fs::read(&p).unwrap();
    let at: usize = sizes[..5].iter().sum::<usize>() + 70;
    data[at] ^= 0x55;
    fs::write(&p, data).unwrap();
    let (_m, l) = open(d.path(), cfg());
    assert_eq!(l.log_end_offset(), 10);
    assert_eq!(read_all(&l).len(), 5);
    assert_eq!(
        fs::metadata(&p).unwrap().len(),
        sizes[..5].iter().sum::<usize>() as u64
    );
}

#[test]
fn recovery_deletes_segments_after_corruption() {
    let d = tempfile::tempdir().unwrap();
    crash_with(d.path(), small_cfg(), 100);
    let logs = seg_files(d.path(), ".log");
    assert!(logs.len() >= 3);
    // Corrupt the second batch of the second segment.
    let p = &logs[1];
    let mut data = fs::read(p).unwrap();
    let h = BatchHeader::parse(&data).unwrap();
    let second = h.size().unwrap();
    let h2 = BatchHeader::parse(&data[second..]).unwrap();
    data[second + 30] ^= 1;
    fs::write(p, data).unwrap();
    let (_m, l) = open(d.path(), small_cfg());
    let st = l.recovery_stats();
    assert_eq!(st.segments_deleted, logs.len() - 2, "{st:?}");
    assert_eq!(l.log_end_offset(), h2.base_offset);
    assert_eq!(seg_files(d.path(), ".log").len(), 2);
    assert_eq!(seg_files(d.path(), ".index").len(), 2);
    let hs = read_all(&l);
    assert_contiguous(&hs, 0);
    assert_eq!(hs.last().unwrap().next_offset(), h2.base_offset);
    assert_eq!(
        l.append(&batch(1, 0), 0, 0).unwrap().first_offset,
        h2.base_offset
    );
}

#[test]
fn recovery_point_limits_scanning() {
    let d = tempfile::tempdir().unwrap();
    {
        let (m, l) = open(d.path(), small_cfg());
        for i in 0..100 {
            l.append(&batch(2, i), 0, 0).unwrap();
        }
        m.checkpoint().unwrap(); // recovery point = start of the active segment (rolls fsync)
        assert!(l.recovery_point() > 0);
    }
    let (_m, l) = open(d.path(), small_cfg());
    assert_eq!(l.recovery_stats().segments_recovered, 1);
    assert_eq!(l.log_end_offset(), 200);
}

#[test]
fn damaged_index_files_are_rebuilt_after_clean_shutdown() {
    let d = tempfile::tempdir().unwrap();
    {
        let (m, l) = open(d.path(), small_cfg());
        for i in 0..100 {
            l.append(&batch(2, 1000 + 10 * i), 0, 0).unwrap();
        }
        m.shutdown().unwrap();
    }
    let idx = seg_files(d.path(), ".index");
    let tidx = seg_files(d.path(), ".timeindex");
    let orig_idx = fs::read(&idx[0]).unwrap();
    assert!(!orig_idx.is_empty());
    fs::remove_file(&idx[0]).unwrap();
    fs::write(&tidx[1], [9u8; 13]).unwrap();
    // Garble the last (active) segment's index: position beyond the file.
    let last = idx.last().unwrap();
    fs::write(last, [0, 0, 0, 1, 0x7f, 0, 0, 0]).unwrap();
    let (_m, l) = open(d.path(), small_cfg());
    let st = l.recovery_stats();
    assert_eq!(st.indexes_rebuilt, 3, "{st:?}");
    assert_eq!(st.segments_recovered, 3, "{st:?}");
    assert_eq!(fs::read(&idx[0]).unwrap(), orig_idx, "rebuilt identically");
    assert_eq!(l.log_end_offset(), 200);
    let hs = read_all(&l);
    assert_eq!(hs.len(), 100);
    for i in [0i64, 17, 55, 99] {
        assert_eq!(
            l.offset_for_timestamp(1000 + 10 * i).unwrap(),
            Some(TimestampOffset {
                timestamp: 1000 + 10 * i,
                offset: 2 * i
            })
        );
    }
}

#[test]
fn time_queries() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), small_cfg());
    assert_eq!(l.max_timestamp_offset().unwrap(), None);
    assert_eq!(l.offset_for_timestamp(0).unwrap(), None);
    // Batch i has records with timestamps 1000*i + {0, 10, 20}; batch 50 holds the largest timestamp
    // in its middle record.
    for i in 0..100i64 {
        let mut t = TestBatch::new(3, 1000 * i);
        t.ts_deltas = vec![0, 10, 20];
        if i == 50 {
            t.ts_deltas = vec![0, 999_999, 5];
        }
        l.append(&t.build(), 0, 0).unwrap();
    }
    assert!(l.num_segments() > 3);
    assert_eq!(
        l.offset_for_timestamp(-5).unwrap(),
        Some(TimestampOffset {
            timestamp: 0,
            offset: 0
        })
    );
    assert_eq!(
        l.offset_for_timestamp(7005).unwrap(),
        Some(TimestampOffset {
            timestamp: 7010,
            offset: 22
        })
    );
    assert_eq!(
        l.offset_for_timestamp(7020).unwrap(),
        Some(TimestampOffset {
            timestamp: 7020,
            offset: 23
        })
    );
    assert_eq!(
        l.offset_for_timestamp(7021).unwrap(),
        Some(TimestampOffset {
            timestamp: 8000,
            offset: 24
        })
    );
    // 51_000 is first reached by batch 50's second record.
    assert_eq!(
        l.offset_for_timestamp(50_500).unwrap(),
        Some(TimestampOffset {
            timestamp: 1_049_999,
            offset: 151
        })
    );
    assert_eq!(l.offset_for_timestamp(2_000_000).unwrap(), None);
    assert_eq!(
        l.max_timestamp_offset().unwrap(),
        Some(TimestampOffset {
            timestamp: 1_049_999,
            offset: 151
        })
    );
}

#[test]
fn truncate_to_offsets() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), small_cfg());
    for i in 0..100 {
        l.append(&idem(2, 5, 0, 2 * i), 0, 0).unwrap();
    }
    let segs = l.segment_base_offsets();
    assert!(segs.len() > 3);
    l.truncate_to(500).unwrap(); // beyond the end: no-op
    assert_eq!(l.log_end_offset(), 200);
    l.truncate_to(120).unwrap();
    assert_eq!(l.log_end_offset(), 120);
    assert!(l.segment_base_offsets().iter().all(|b| *b <= 120));
    let hs = read_all(&l);
    assert_eq!(hs.len(), 60);
    assert_contiguous(&hs, 0);
    // Mid-batch: the whole batch goes.
    l.truncate_to(101).unwrap();
    assert_eq!(l.log_end_offset(), 100);
    // Producer state follows the truncation: sequence 100 is next again.
    assert!(matches!(
        l.append(&idem(2, 5, 0, 102), 0, 0),
        Err(AppendError::OutOfOrderSequence(_))
    ));
    assert_eq!(
        l.append(&idem(2, 5, 0, 100), 0, 0).unwrap().first_offset,
        100
    );
    // Truncation at a segment base keeps that segment, empty.
    let base = *l.segment_base_offsets().last().unwrap();
    l.truncate_to(base).unwrap();
    assert_eq!(l.log_end_offset(), base);
    assert_eq!(l.read(base, 100, true, None).unwrap().records.len(), 0);
    // Reopen (crash) sees the same.
    drop(l);
    drop(_m);
    let (m, l) = open(d.path(), small_cfg());
    assert_eq!(l.log_end_offset(), base);
    // Full truncation restarts the log at the given offset.
    drop(l);
    let l = m.get(&tp()).unwrap();
    l.truncate_to(0).unwrap();
    assert_eq!((l.log_start_offset(), l.log_end_offset()), (0, 0));
    assert_eq!(l.num_segments(), 1);
    assert_eq!(l.append(&batch(1, 0), 0, 0).unwrap().first_offset, 0);
}

#[test]
fn retention_by_time() {
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        retention_ms: 10_000,
        ..small_cfg()
    };
    let (m, l) = open(d.path(), c);
    for i in 0..100i64 {
        l.append(&batch(2, 1_000_000 + 1000 * i), 0, 0).unwrap();
    }
    let segs = l.segment_base_offsets();
    assert!(segs.len() > 3);
    // Nothing expired yet.
    assert_eq!(m.run_retention(1_010_000), 0);
    // Everything up to timestamp 1_050_000 expired.
    let deleted = m.run_retention(1_060_001);
    assert!(deleted > 0);
    let lso = l.log_start_offset();
    assert_eq!(lso, l.segment_base_offsets()[0]);
    assert!(lso > 0 && lso <= 102, "lso {lso}");
    assert!(matches!(
        l.read(0, 100, true, None),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    assert_eq!(read_all(&l).first().unwrap().base_offset, lso);
    assert_eq!(seg_files(d.path(), ".log").len(), l.num_segments());
    let cp = checkpoint::read_checkpoint(&d.path().join(checkpoint::LOG_START_OFFSET_CHECKPOINT))
        .unwrap();
    assert_eq!(cp.get(&tp()), Some(&lso));
    // Segments at or beyond the high watermark are kept.
    l.set_high_watermark(l.segment_base_offsets()[1]);
    assert_eq!(m.run_retention(10_000_000), 1);
    l.set_high_watermark(-1);
    // All expired: a new empty active segment at the log end.
    let n = l.num_segments();
    assert_eq!(m.run_retention(10_000_000), n);
    assert_eq!(l.num_segments(), 1);
    assert_eq!(l.log_start_offset(), 200);
    assert_eq!(l.log_end_offset(), 200);
    assert!(l.read(200, 100, true, None).unwrap().records.is_empty());
    assert_eq!(l.append(&batch(1, 0), 0, 0).unwrap().first_offset, 200);
    // Log start offset survives a restart.
    drop(l);
    drop(m);
    let (_m, l) = open(d.path(), small_cfg());
    assert_eq!(l.log_start_offset(), 200);
    assert_eq!(l.log_end_offset(), 201);
}

#[test]
fn retention_by_size() {
    let d = tempfile::tempdir().unwrap();
    let (m, l) = open(d.path(), small_cfg());
    for i in 0..100 {
        l.append(&batch(2, i), 0, 0).unwrap();
    }
    let total = l.size_bytes() as i64;
    let c = LogConfig {
        retention_bytes: 5000,
        ..small_cfg()
    };
    m.update_config(&tp(), c);
    let deleted = m.run_retention(0);
    assert!(deleted > 0);
    let left = l.size_bytes() as i64;
    assert!((5000..7000).contains(&left), "left {left} of {total}");
    assert_eq!(l.log_start_offset(), l.segment_base_offsets()[0]);
    assert_eq!(m.run_retention(0), 0);
}

#[test]
fn rolls_on_time_and_full_index() {
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        segment_ms: 100,
        ..cfg()
    };
    let (_m, l) = open(d.path(), c);
    l.append(&batch(1, 1000), 0, 0).unwrap();
    l.append(&batch(1, 1050), 0, 0).unwrap();
    assert_eq!(l.num_segments(), 1);
    l.append(&batch(1, 1101), 0, 0).unwrap();
    assert_eq!(l.segment_base_offsets(), vec![0, 2]);
    let d2 = tempfile::tempdir().unwrap();
    let c = LogConfig {
        segment_index_bytes: 16,
        index_interval_bytes: 1,
        ..cfg()
    };
    let (_m2, l2) = open(d2.path(), c);
    for _ in 0..10 {
        l2.append(&batch(1, 0), 0, 0).unwrap();
    }
    assert!(l2.num_segments() >= 3, "{:?}", l2.segment_base_offsets());
    for f in seg_files(d2.path(), ".index") {
        assert!(fs::metadata(f).unwrap().len() <= 16);
    }
    assert_eq!(read_all(&l2).len(), 10);
}

#[test]
fn flush_by_message_count_and_time() {
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        flush_interval_messages: 3,
        ..cfg()
    };
    let (m, l) = open(d.path(), c);
    l.append(&batch(2, 0), 0, 0).unwrap();
    assert_eq!(l.recovery_point(), 0);
    l.append(&batch(2, 0), 0, 0).unwrap();
    assert_eq!(l.recovery_point(), 4);
    l.append(&batch(1, 0), 0, 0).unwrap();
    m.update_config(
        &tp(),
        LogConfig {
            flush_interval_ms: 1000,
            ..cfg()
        },
    );
    m.flush_due(0);
    assert_eq!(l.recovery_point(), 4);
    m.flush_due(i64::MAX / 2);
    assert_eq!(l.recovery_point(), 5);
}

#[test]
fn manager_checkpoints_partitions_and_deletion() {
    let d = tempfile::tempdir().unwrap();
    let m = LogManager::open(d.path()).unwrap();
    let a = TopicPartition::new("a", 0);
    let b = TopicPartition::new("b.c_d-e", 12);
    let la = m.open_partition(&a, cfg()).unwrap();
    let lb = m.open_partition(&b, cfg()).unwrap();
    assert!(Arc::ptr_eq(&la, &m.open_partition(&a, cfg()).unwrap()));
    assert!(m
        .open_partition(&TopicPartition::new("bad/name", 0), cfg())
        .is_err());
    assert!(m
        .open_partition(&TopicPartition::new("x", -1), cfg())
        .is_err());
    la.append(&batch(3, 0), 0, 0).unwrap();
    la.flush().unwrap();
    lb.append(&batch(1, 0), 0, 0).unwrap();
    fs::create_dir(d.path().join("stray-3")).unwrap();
    fs::create_dir(d.path().join("junk")).unwrap();
    fs::create_dir(d.path().join("old-1.abc-delete")).unwrap();
    assert_eq!(
        m.partitions_on_disk().unwrap(),
        vec![a.clone(), b.clone(), TopicPartition::new("stray", 3)]
    );
    m.checkpoint().unwrap();
    let rp =
        checkpoint::read_checkpoint(&d.path().join(checkpoint::RECOVERY_POINT_CHECKPOINT)).unwrap();
    assert_eq!(rp.get(&a), Some(&3));
    assert_eq!(rp.get(&b), Some(&0));
    assert_eq!(m.open_partitions().len(), 2);
    m.delete_partition(&b).unwrap();
    assert!(m.get(&b).is_none());
    assert!(lb.append(&batch(1, 0), 0, 0).is_err());
    assert!(!d.path().join(b.dir_name()).exists());
    m.checkpoint().unwrap();
    let rp =
        checkpoint::read_checkpoint(&d.path().join(checkpoint::RECOVERY_POINT_CHECKPOINT)).unwrap();
    assert_eq!(rp.len(), 1);
    drop(m);
    let m = LogManager::open(d.path()).unwrap();
    assert!(!d.path().join("old-1.abc-delete").exists());
    let la = m.open_partition(&a, cfg()).unwrap();
    // Recovery point 3 = log end: nothing to scan even without a clean shutdown marker.
    assert_eq!(la.recovery_stats().segments_recovered, 1);
    assert_eq!(la.log_end_offset(), 3);
}

#[test]
fn thousand_empty_partitions() {
    let d = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    {
        let m = LogManager::open(d.path()).unwrap();
        for p in 0..1000 {
            m.open_partition(&TopicPartition::new("many", p), cfg())
                .unwrap();
        }
        m.shutdown().unwrap();
    }
    let m = LogManager::open(d.path()).unwrap();
    assert_eq!(m.partitions_on_disk().unwrap().len(), 1000);
    for p in 0..1000 {
        let l = m
            .open_partition(&TopicPartition::new("many", p), cfg())
            .unwrap();
        assert_eq!(l.log_end_offset(), 0);
        assert_eq!(l.recovery_stats().segments_recovered, 0);
    }
    let l = m.get(&TopicPartition::new("many", 999)).unwrap();
    l.append(&batch(1, 0), 0, 0).unwrap();
    m.shutdown().unwrap();
    assert!(start.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn concurrent_reads_during_appends() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), small_cfg());
    let writer = {
        let l = l.clone();
        std::thread::spawn(move || {
            for i in 0..500 {
                l.append(&batch(2, i), 0, 0).unwrap();
            }
        })
    };
    let mut seen = 0;
    while seen < 1000 {
        let r = l.read(seen, 4096, true, None).unwrap();
        let hs = headers(&r.records);
        if let Some(h) = hs.last() {
            assert_eq!(hs[0].base_offset, seen);
            seen = h.next_offset();
        }
    }
    writer.join().unwrap();
}

#[test]
fn partition_not_opened_after_crash_stays_dirty_across_clean_shutdown() {
    let d = tempfile::tempdir().unwrap();
    crash_with(d.path(), cfg(), 5);
    let p = last_log(d.path());
    let mut data = fs::read(&p).unwrap();
    data.extend_from_slice(&[1, 2, 3]);
    fs::write(&p, data).unwrap();
    {
        // A run that never opens the partition, then shuts down cleanly.
        let m = LogManager::open(d.path()).unwrap();
        m.shutdown().unwrap();
    }
    let (m, l) = open(d.path(), cfg());
    assert!(m.had_clean_shutdown());
    assert_eq!(l.recovery_stats().segments_recovered, 1);
    assert_eq!(l.recovery_stats().bytes_truncated, 3);
    m.shutdown().unwrap();
    let (_m, l) = open(d.path(), cfg());
    assert_eq!(l.recovery_stats().segments_recovered, 0);
    assert_eq!(l.log_end_offset(), 10);
}

#[test]
fn idle_producers_expire() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), cfg());
    // Producer timestamps far in the past: forgotten on expiry, after which any sequence is accepted.
    let old = TestBatch::new(1, 1000).idempotent(3, 0, 0).build();
    l.append(&old, 0, 0).unwrap();
    assert!(l.append(&old, 0, 0).unwrap().duplicate);
    assert_eq!(l.expire_producers(1000 + 86_400_000 - 1), 0);
    assert_eq!(l.expire_producers(1000 + 86_400_000), 1);
    let later = TestBatch::new(1, 1000).idempotent(3, 0, 7).build();
    assert!(!l.append(&later, 0, 0).unwrap().duplicate);
}

#[test]
fn types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<PartitionLog>();
    check::<LogManager>();
}

#[test]
fn damaged_checkpoint_and_snapshot_fall_back_to_recovery() {
    let d = tempfile::tempdir().unwrap();
    let late = idem(1, 11, 0, 0);
    {
        let (m, l) = open(d.path(), cfg());
        for _ in 0..5 {
            l.append(&batch(2, crate::util::clock::now_ms()), 0, 0)
                .unwrap();
        }
        l.append(&late, 0, 0).unwrap();
        assert_eq!(l.num_segments(), 1);
        m.shutdown().unwrap();
    }
    fs::write(
        d.path().join(checkpoint::RECOVERY_POINT_CHECKPOINT),
        "garbage",
    )
    .unwrap();
    for p in seg_files(d.path(), ".snapshot") {
        fs::write(p, b"not a snapshot").unwrap();
    }
    fs::remove_file(d.path().join(CLEAN_SHUTDOWN_FILE)).unwrap();
    let (_m, l) = open(d.path(), cfg());
    assert_eq!(l.recovery_stats().segments_recovered, 1);
    assert_eq!(l.recovery_stats().batches_replayed, 6);
    assert_eq!(l.log_end_offset(), 11);
    assert!(l.append(&late, 0, 0).unwrap().duplicate);
}

#[test]
fn idle_partitions_are_not_synced_at_shutdown() {
    let d = tempfile::tempdir().unwrap();
    let all_clean = |l: &PartitionLog| l.segments.read().iter().all(|s| !s.is_dirty());
    {
        let (m, l) = open(d.path(), small_cfg());
        for _ in 0..30 {
            l.append(&batch(2, 0), 0, 0).unwrap();
        }
        assert!(!all_clean(&l), "appends leave unsynced data");
        m.shutdown().unwrap();
        assert!(all_clean(&l), "shutdown synced everything written");
    }
    {
        // Reopened after a clean shutdown and closed without appends: no file needs an fsync
        // and the producer-state snapshot at the log end is already there.
        let (m, l) = open(d.path(), small_cfg());
        assert_eq!(l.recovery_stats().segments_recovered, 0);
        assert!(all_clean(&l));
        m.shutdown().unwrap();
        assert!(all_clean(&l));
        assert_eq!(l.snapshots_written(), 0);
    }
    // The clean-shutdown guarantee still holds: nothing scanned, everything readable.
    let (m, l) = open(d.path(), small_cfg());
    assert!(m.had_clean_shutdown());
    assert_eq!(l.recovery_stats().segments_recovered, 0);
    assert_eq!(read_all(&l).len(), 30);
    l.append(&batch(2, 0), 0, 0).unwrap();
    assert!(l.segments.read().last().unwrap().is_dirty());
    l.flush().unwrap();
    assert!(all_clean(&l));
}

#[test]
fn recovered_segments_are_synced_before_the_recovery_point_passes_them() {
    let d = tempfile::tempdir().unwrap();
    {
        let (_m, l) = open(d.path(), small_cfg());
        for _ in 0..10 {
            l.append(&batch(2, 0), 0, 0).unwrap();
        }
        // no shutdown: crash, the data may exist only in the page cache
    }
    let (m, l) = open(d.path(), small_cfg());
    assert!(!m.had_clean_shutdown());
    assert!(l.recovery_stats().segments_recovered > 0);
    // Open flushed what it scanned and only then moved the recovery point to the log end.
    assert_eq!(l.recovery_point(), l.log_end_offset());
    assert!(l.segments.read().iter().all(|s| !s.is_dirty()));
    let seg = l.segments.read()[0].clone();
    seg.recover(200).unwrap();
    assert!(
        seg.is_dirty(),
        "a scan marks the log file for the next flush"
    );
}

/// (inode, modification time, content) of every file in the partition directory.
fn dir_state(d: &Path) -> Vec<(String, u64, std::time::SystemTime, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let mut v: Vec<_> = fs::read_dir(d.join(tp().dir_name()))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let md = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                md.ino(),
                md.modified().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn clean_reopen_rewrites_no_file() {
    for records in [0usize, 40] {
        let d = tempfile::tempdir().unwrap();
        {
            let (m, l) = open(d.path(), small_cfg());
            l.maybe_assign_epoch_start_offset(3, 0).unwrap();
            for i in 0..records {
                l.append(&batch(2, i as i64), 3, 0).unwrap();
            }
            m.shutdown().unwrap();
        }
        let before = dir_state(d.path());
        assert!(before
            .iter()
            .any(|(n, ..)| n == epoch_cache::LEADER_EPOCH_CHECKPOINT));
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (m, l) = open(d.path(), small_cfg());
        assert!(m.had_clean_shutdown());
        assert_eq!(l.recovery_stats().segments_recovered, 0);
        // Becoming leader again at the same epoch, as a restarted broker does.
        l.maybe_assign_epoch_start_offset(3, l.log_end_offset())
            .unwrap();
        assert_eq!(l.epoch_entries(), vec![(3, 0)], "{records} records");
        assert_eq!(
            dir_state(d.path()),
            before,
            "a clean reopen of a log of {records} records changed files"
        );
    }
}

#[test]
fn epoch_cut_at_open_is_written_by_the_next_change() {
    let d = tempfile::tempdir().unwrap();
    let path = d
        .path()
        .join(tp().dir_name())
        .join(epoch_cache::LEADER_EPOCH_CHECKPOINT);
    {
        let (m, l) = open(d.path(), cfg());
        l.maybe_assign_epoch_start_offset(3, 0).unwrap();
        m.shutdown().unwrap();
    }
    {
        // The entry at the (empty) log end is dropped in memory; the file keeps it.
        let (m, l) = open(d.path(), cfg());
        assert!(l.epoch_entries().is_empty());
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n1\n3 0\n");
        l.maybe_assign_epoch_start_offset(4, 0).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n1\n4 0\n");
        l.append(&batch(2, 0), 4, 0).unwrap();
        m.shutdown().unwrap();
    }
    let (_m, l) = open(d.path(), cfg());
    assert_eq!(l.epoch_entries(), vec![(4, 0)]);
}

#[test]
fn unclean_reopen_after_clean_one_still_recovers() {
    let d = tempfile::tempdir().unwrap();
    {
        let (m, l) = open(d.path(), small_cfg());
        for i in 0..20 {
            l.append(&batch(2, i), 0, 0).unwrap();
        }
        m.shutdown().unwrap();
    }
    // A clean reopen, then appends and a crash: the next open scans and cuts the torn tail.
    crash_with(d.path(), small_cfg(), 5);
    let log = last_log(d.path());
    let len = fs::metadata(&log).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(len - 7).unwrap();
    let (m, l) = open(d.path(), small_cfg());
    assert!(!m.had_clean_shutdown());
    let st = l.recovery_stats();
    assert!(st.segments_recovered >= 1, "{st:?}");
    assert!(st.bytes_truncated > 0, "{st:?}");
    assert_eq!(l.log_end_offset(), 48);
    assert_contiguous(&read_all(&l), 0);
}

#[test]
fn partitions_open_concurrently() {
    let d = tempfile::tempdir().unwrap();
    let m = LogManager::open(d.path()).unwrap();
    let tps: Vec<TopicPartition> = (0..32).map(|p| TopicPartition::new("par", p)).collect();
    let opened: Vec<Vec<Arc<PartitionLog>>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    tps.iter()
                        .map(|tp| m.open_partition(tp, cfg()).unwrap())
                        .collect()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for v in &opened[1..] {
        for (a, b) in v.iter().zip(&opened[0]) {
            assert!(Arc::ptr_eq(a, b), "one log per partition");
        }
    }
    assert_eq!(m.open_partitions().len(), 32);
}

#[test]
fn epoch_entry_cut_at_open_never_survives_appends() {
    // The file holds an entry beyond the log end; appends at the current epoch (no cache change)
    // must still rewrite it, or a later open would keep it once the log grew past it.
    let d = tempfile::tempdir().unwrap();
    let path = d
        .path()
        .join(tp().dir_name())
        .join(epoch_cache::LEADER_EPOCH_CHECKPOINT);
    {
        let (m, l) = open(d.path(), cfg());
        l.maybe_assign_epoch_start_offset(2, 0).unwrap();
        l.append(&batch(2, 0), 2, 0).unwrap();
        m.shutdown().unwrap();
    }
    fs::write(&path, "0\n2\n2 0\n9 5\n").unwrap();
    {
        let (m, l) = open(d.path(), cfg());
        assert_eq!(l.epoch_entries(), vec![(2, 0)]);
        for i in 0..5 {
            l.append(&batch(2, i), 2, 0).unwrap();
        }
        m.shutdown().unwrap();
    }
    assert_eq!(fs::read_to_string(&path).unwrap(), "0\n1\n2 0\n");
    let (_m, l) = open(d.path(), cfg());
    assert_eq!(l.epoch_entries(), vec![(2, 0)]);
}
