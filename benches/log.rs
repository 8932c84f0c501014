//! Storage hot paths: `PartitionLog::append`, `PartitionLog::read` (fetch) and the
//! offset -> position lookup behind every read.
//!
//! Logs live in temporary directories (`$TMPDIR`, so the file system under test is whatever that
//! is). Nothing is fsynced: `flush_interval_messages` stays at its default (never), as on a broker
//! that leaves flushing to the OS.
//!
//! Run: `cargo bench -j 1 --bench log` (filter with e.g. `-- fetch_read`).

// Benchmarks are test harnesses: a failed setup may panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use odradek::log::{LogConfig, LogManager, PartitionLog, TopicPartition};
use tempfile::TempDir;

const LEADER_EPOCH: i32 = 0;
const NOW_MS: i64 = 1_700_000_000_000;
/// A "large" segment: 1 GiB (Kafka's default and maximum practical size), so append never rolls.
const SEGMENT_BYTES: u64 = 1 << 30;
/// The append bench starts a fresh log once this much was appended, to bound disk and page-cache
/// use (the recycling happens outside the timed section).
const APPEND_LOG_CAP: usize = 64 << 20;

/// A log manager in its own temporary directory with one open partition.
struct TempLog {
    log: Arc<PartitionLog>,
    _manager: Arc<LogManager>,
    // Dropped last: removes the directory after the log's files are closed.
    _dir: TempDir,
}

impl TempLog {
    fn new(config: LogConfig) -> TempLog {
        let dir = tempfile::Builder::new()
            .prefix("odradek-bench-")
            .tempdir()
            .expect("temp dir");
        let manager = LogManager::open(dir.path()).expect("open log manager");
        let log = manager
            .open_partition(&TopicPartition::new("bench", 0), config)
            .expect("open partition");
        TempLog {
            log,
            _manager: manager,
            _dir: dir,
        }
    }

    /// A log holding `batches` copies of `batch` (offsets assigned by append).
    fn filled(config: LogConfig, batch: &[u8], batches: usize) -> TempLog {
        let t = TempLog::new(config);
        for _ in 0..batches {
            t.log
                .append(batch, LEADER_EPOCH, NOW_MS)
                .expect("append while filling");
        }
        t
    }
}

fn large_segments() -> LogConfig {
    LogConfig {
        segment_bytes: SEGMENT_BYTES,
        ..LogConfig::default()
    }
}

/// `PartitionLog::append` of one client-built batch (validation, CRC check, offset assignment,
/// producer/epoch bookkeeping, the segment write and the index entries).
fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for (name, records, value_size) in [("100x100B", 100usize, 100usize), ("100x1KiB", 100, 1024)] {
        let batch: Bytes = common::v2_batch(records, value_size);
        let per_log = (APPEND_LOG_CAP / batch.len()).max(1) as u64;
        // The same measurement, reported once per unit: bytes/s and records/s.
        for (unit, throughput) in [
            ("bytes", Throughput::Bytes(batch.len() as u64)),
            ("records", Throughput::Elements(records as u64)),
        ] {
            group.throughput(throughput);
            let mut current: Option<TempLog> = None;
            let mut in_current = 0u64;
            group.bench_function(BenchmarkId::new(name, unit), |b| {
                b.iter_custom(|iters| {
                    let mut elapsed = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        if current.is_none() || in_current >= per_log {
                            // Untimed: drop the full log (and its directory), start a fresh one.
                            current = None;
                            current = Some(TempLog::new(large_segments()));
                            in_current = 0;
                        }
                        let log = &current.as_ref().expect("log").log;
                        let n = left.min(per_log - in_current);
                        let start = Instant::now();
                        for _ in 0..n {
                            black_box(
                                log.append(black_box(&batch), LEADER_EPOCH, NOW_MS)
                                    .expect("append"),
                            );
                        }
                        elapsed += start.elapsed();
                        in_current += n;
                        left -= n;
                    }
                    elapsed
                })
            });
        }
    }
    group.finish();
}

/// `PartitionLog::read` of up to 1 MiB from the middle of a log of 100k records (1000 batches of
/// 100 x 100 B), as a consumer fetch does: lookup, one positioned read, cut to whole batches.
fn fetch_read(c: &mut Criterion) {
    const MAX_BYTES: usize = 1 << 20;
    let batch = common::v2_batch(100, 100);
    let t = TempLog::filled(large_segments(), &batch, 1000);
    let mut group = c.benchmark_group("fetch_read");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    // At a batch boundary, and inside a batch (the read starts at the batch holding the offset).
    for (name, offset) in [("batch_start", 50_000i64), ("mid_batch", 50_037)] {
        let got = t.log.read(offset, MAX_BYTES, true, None).expect("read");
        assert!(!got.records.is_empty(), "fetch_read setup: nothing read");
        group.throughput(Throughput::Bytes(got.records.len() as u64));
        group.bench_function(BenchmarkId::new("1MiB", name), |b| {
            b.iter(|| {
                t.log
                    .read(black_box(offset), MAX_BYTES, true, None)
                    .expect("read")
            })
        });
    }
    group.finish();
}

/// The offset -> file position path of a read (segment choice, sparse offset index lookup, header
/// scan to the batch holding the offset) at random offsets. The index is private, so this goes
/// through `read` with `max_bytes` = 1 and `min_one_batch` = false: the lookup runs in full, then
/// the read stops because the first batch does not fit, before any record bytes are read.
///
/// The logs hold 100k records in 10k batches of 10 x 100 B (~1.3 KiB), so with the default
/// `index_interval_bytes` (4096) an index entry covers about three batches.
fn index_lookup(c: &mut Criterion) {
    const LOOKUPS: usize = 4096;
    let batch = common::v2_batch(10, 100);
    let mut group = c.benchmark_group("index_lookup");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for segment_bytes in [SEGMENT_BYTES, 512 << 10] {
        let config = LogConfig {
            segment_bytes,
            ..LogConfig::default()
        };
        let t = TempLog::filled(config, &batch, 10_000);
        let name = match t.log.num_segments() {
            1 => "1_segment".to_string(),
            n => format!("{n}_segments"),
        };
        let end = t.log.log_end_offset();
        // Deterministic pseudo-random offsets (xorshift64*), so runs are comparable.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let offsets: Vec<i64> = (0..LOOKUPS)
            .map(|_| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_f491_4f6c_dd1d) % end as u64) as i64
            })
            .collect();
        let probe = t.log.read(offsets[0], 1, false, None).expect("read");
        assert!(
            probe.records.is_empty(),
            "index_lookup setup: data was read"
        );
        group.throughput(Throughput::Elements(1));
        let mut i = 0usize;
        group.bench_function(BenchmarkId::new("random_offset", &name), |b| {
            b.iter(|| {
                let offset = offsets[i % LOOKUPS];
                i = i.wrapping_add(1);
                t.log.read(black_box(offset), 1, false, None).expect("read")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, append, fetch_read, index_lookup);
criterion_main!(benches);
