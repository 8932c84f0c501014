//! The log start offset moved by a client (DeleteRecords) or a leader: in memory first, durable
//! through `log-start-offset-checkpoint`, then the segments wholly below it deleted; reads below
//! it refused; a restart (clean or not) keeps it.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use super::batch::test_util::batch;
use super::checkpoint::{read_checkpoint, LOG_START_OFFSET_CHECKPOINT};
use super::*;

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

/// Small segments: two 10-record batches (about 250 bytes each) per segment.
fn cfg() -> LogConfig {
    LogConfig {
        retention_ms: -1,
        segment_bytes: 600,
        ..Default::default()
    }
}

/// A log of 10 batches of 10 records (offsets 0..100) in several segments.
fn filled(dir: &Path) -> (Arc<LogManager>, Arc<PartitionLog>) {
    let m = LogManager::open(dir).unwrap();
    let l = m.open_partition(&tp(), cfg()).unwrap();
    for i in 0..10 {
        l.append(&batch(10, i * 100), 0, 0).unwrap();
    }
    l.set_high_watermark(l.log_end_offset());
    (m, l)
}

fn log_files(dir: &Path) -> Vec<i64> {
    let mut v: Vec<i64> = fs::read_dir(dir.join(tp().dir_name()))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".log").map(|s| s.parse().unwrap())
        })
        .collect();
    v.sort_unstable();
    v
}

fn checkpointed_start(dir: &Path) -> Option<i64> {
    read_checkpoint(&dir.join(LOG_START_OFFSET_CHECKPOINT))
        .unwrap()
        .get(&tp())
        .copied()
}

#[test]
fn moving_the_start_refuses_reads_below_it_and_deletes_whole_segments_after_the_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    let (m, l) = filled(d.path());
    let bases = l.segment_base_offsets();
    assert!(bases.len() >= 4, "segments {bases:?}");
    // Inside the third segment, inside a batch.
    let start = bases[2] + 5;
    assert!(l.increment_log_start_offset(start, 100).unwrap());
    assert_eq!(l.log_start_offset(), start);
    assert!(matches!(
        l.read(start - 1, 1 << 20, true, None),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    // The batch holding the start is served whole from it (clients skip what is below).
    let from = l.read(start, 1 << 20, true, None).unwrap().records;
    assert_eq!(
        BatchHeader::parse(&from).unwrap().base_offset,
        start - 5,
        "the batch holding the new start"
    );
    // Nothing deleted before the caller made the start durable.
    assert_eq!(log_files(d.path()), bases);
    m.checkpoint_log_start_offsets().unwrap();
    assert_eq!(checkpointed_start(d.path()), Some(start));
    assert_eq!(l.delete_segments_below_log_start().unwrap(), 2);
    assert_eq!(l.segment_base_offsets(), bases[2..].to_vec());
    assert_eq!(log_files(d.path()), bases[2..].to_vec());
    assert_eq!(l.delete_segments_below_log_start().unwrap(), 0);
    // Moving back, or to where it is, changes nothing.
    assert!(!l.increment_log_start_offset(start - 1, 100).unwrap());
    assert!(!l.increment_log_start_offset(start, 100).unwrap());
    assert_eq!(l.log_start_offset(), start);
    // Appends go on at the log end.
    assert_eq!(l.append(&batch(1, 0), 0, 0).unwrap().first_offset, 100);
}

#[test]
fn the_start_never_passes_the_high_watermark() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = filled(d.path());
    match l.increment_log_start_offset(61, 60) {
        Err(LogStartError::BeyondHighWatermark {
            offset: 61,
            high_watermark: 60,
        }) => {}
        other => panic!("{other:?}"),
    }
    // The log end bounds a high watermark beyond it.
    assert!(matches!(
        l.increment_log_start_offset(101, 500),
        Err(LogStartError::BeyondHighWatermark {
            high_watermark: 100,
            ..
        })
    ));
    assert_eq!(l.log_start_offset(), 0);
    // Up to the high watermark itself: everything before it is gone, the active segment stays.
    assert!(l.increment_log_start_offset(100, 100).unwrap());
    l.delete_segments_below_log_start().unwrap();
    assert_eq!(l.num_segments(), 1);
    assert_eq!(l.read(100, 1 << 20, true, None).unwrap().records.len(), 0);
}

#[test]
fn the_start_survives_a_crash_once_checkpointed_and_retention_finishes_the_deletion() {
    let d = tempfile::tempdir().unwrap();
    let start;
    {
        let (m, l) = filled(d.path());
        start = l.segment_base_offsets()[3] + 1;
        l.increment_log_start_offset(start, 100).unwrap();
        m.checkpoint_log_start_offsets().unwrap();
        // A crash here: the start is durable, no segment deleted, no clean shutdown.
    }
    let m = LogManager::open(d.path()).unwrap();
    assert!(!m.had_clean_shutdown());
    let l = m.open_partition(&tp(), cfg()).unwrap();
    assert_eq!(l.log_start_offset(), start);
    assert!(matches!(
        l.read(start - 1, 1 << 20, true, None),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    // Kafka's deleteLogStartOffsetBreachedSegments, whatever the cleanup policy.
    m.update_config(
        &tp(),
        LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            ..cfg()
        },
    );
    assert_eq!(m.run_retention(0), 3);
    assert_eq!(l.segment_base_offsets()[0], start - 1);
    // And a clean restart.
    m.shutdown().unwrap();
    drop((l, m));
    let m = LogManager::open(d.path()).unwrap();
    assert!(m.had_clean_shutdown());
    let l = m.open_partition(&tp(), cfg()).unwrap();
    assert_eq!(l.log_start_offset(), start);
    assert_eq!(l.log_end_offset(), 100);
}
