//! Validator tests: record errors and broker-side compression on single batches, and through a
//! partition log (idempotent retries after re-encoding).

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::log::batch::{compute_crc, test_util::TestBatch, validate_payload};
use crate::log::records::test_util::{keyed_batch, rec};
use crate::log::records::{decode_records, put_varlong, Record};
use crate::log::{CleanupPolicy, LogManager, PartitionLog};

const NOW: i64 = 1_700_000_000_000;

fn tp() -> TopicPartition {
    TopicPartition::new("v", 3)
}

fn cfg(compression: CompressionType) -> LogConfig {
    LogConfig {
        compression,
        retention_ms: -1,
        ..Default::default()
    }
}

/// A record with a key, a value and two headers; timestamps are not monotonic.
fn full_record(i: i64) -> Record {
    let mut headers = Vec::new();
    put_varlong(&mut headers, 2);
    for (k, v) in [
        ("h1", format!("x{i}")),
        ("trace", "y".repeat(i as usize % 5)),
    ] {
        put_varlong(&mut headers, k.len() as i64);
        headers.extend_from_slice(k.as_bytes());
        put_varlong(&mut headers, v.len() as i64);
        headers.extend_from_slice(v.as_bytes());
    }
    Record {
        attributes: 0,
        timestamp: NOW - 1000 + (i * 37) % 11,
        offset: i,
        key: Some(format!("key-{i}").into_bytes()),
        value: (i % 9 != 4).then(|| format!("value-{i}-{}", "z".repeat(i as usize)).into_bytes()),
        headers,
    }
}

fn records(n: i64) -> Vec<Record> {
    (0..n).map(full_record).collect()
}

/// Runs the validator on one client batch.
fn run<'a>(bytes: &'a [u8], c: &LogConfig) -> Result<Validated<'a>, AppendError> {
    let batches = validate_payload(bytes, c.max_message_bytes).unwrap();
    validate(bytes, batches, c, &tp(), NOW)
}

fn only_batch(v: &Validated<'_>) -> (BatchHeader, Vec<Record>) {
    assert_eq!(v.batches.len(), 1);
    let b = v.batches[0];
    assert_eq!(b.position, 0);
    assert_eq!(b.size, v.bytes.len());
    let (h, recs) = decode_records(&v.bytes).unwrap();
    assert_eq!(h, b.header);
    assert_eq!(compute_crc(&v.bytes), h.crc, "CRC valid");
    (h, recs)
}

fn codec(id: u8) -> Codec {
    Codec::from_id(id).unwrap()
}

#[test]
fn reencodes_every_codec_pair_keeping_records_and_producer_fields() {
    let recs = records(40);
    for source in 0..=4u8 {
        let mut input = keyed_batch(source, 42, 1000, &recs);
        // producer epoch 7 and the transactional bit, CRC fixed up
        input[51..53].copy_from_slice(&7i16.to_be_bytes());
        input[22] |= 0x10;
        let crc = compute_crc(&input);
        input[17..21].copy_from_slice(&crc.to_be_bytes());
        for target in 0..=4u8 {
            let c = cfg(CompressionType::Codec(codec(target)));
            let v = run(&input, &c).unwrap();
            let (h, back) = only_batch(&v);
            if source == target {
                assert!(
                    matches!(v.bytes, Cow::Borrowed(_)),
                    "{source}->{target} kept"
                );
                continue;
            }
            assert!(
                matches!(v.bytes, Cow::Owned(_)),
                "{source}->{target} converted"
            );
            assert_eq!(h.compression(), target, "{source}->{target}");
            assert!(h.is_transactional() && !h.is_control() && !h.is_log_append_time());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (42, 7, 1000)
            );
            assert_eq!((h.last_offset_delta, h.records_count), (39, 40));
            assert_eq!(h.last_sequence(), 1039);
            assert_eq!(h.base_timestamp, recs[0].timestamp);
            assert_eq!(
                h.max_timestamp,
                recs.iter().map(|r| r.timestamp).max().unwrap()
            );
            assert_eq!(back, recs, "{source}->{target}: records, offsets, headers");
        }
    }
}

#[test]
fn producer_passes_batches_through_untouched() {
    // even a compressed batch with inner offsets Kafka would rewrite: no decode with `producer`
    let mut odd = records(5);
    odd[3].offset = 9;
    for source in 0..=4u8 {
        let input = keyed_batch(source, -1, -1, &odd);
        let v = run(&input, &cfg(CompressionType::Producer)).unwrap();
        assert!(matches!(v.bytes, Cow::Borrowed(b) if b == &input[..]));
    }
    // an explicit `uncompressed` never reads uncompressed batches either
    let garbage_records = {
        let mut b = TestBatch::new(3, NOW).build();
        b[HEADER] ^= 0x55; // breaks the first record's length, CRC fixed up
        let crc = compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    };
    let v = run(&garbage_records, &cfg(CompressionType::Codec(Codec::None))).unwrap();
    assert!(matches!(v.bytes, Cow::Borrowed(_)));
    let compact = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..cfg(CompressionType::Producer)
    };
    assert!(matches!(
        run(&garbage_records, &compact),
        Err(AppendError::CorruptMessage(_))
    ));
}

const HEADER: usize = 61;

#[test]
fn same_codec_with_bad_inner_offsets_is_reencoded() {
    let mut odd = records(6);
    odd[2].offset = 7;
    odd[5].offset = 12;
    let input = keyed_batch(4, -1, -1, &odd);
    let v = run(&input, &cfg(CompressionType::Codec(Codec::Zstd))).unwrap();
    let (h, back) = only_batch(&v);
    assert_eq!(h.compression(), 4);
    let offsets: Vec<i64> = back.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..6).collect::<Vec<_>>());
    assert_eq!(back[2].value, odd[2].value);
}

#[test]
fn records_read_for_a_check_get_their_max_timestamp() {
    let recs = records(4);
    let mut input = keyed_batch(1, -1, -1, &recs);
    input[35..43].copy_from_slice(&5i64.to_be_bytes()); // a wrong maxTimestamp
    let crc = compute_crc(&input);
    input[17..21].copy_from_slice(&crc.to_be_bytes());
    let compact = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..cfg(CompressionType::Producer)
    };
    let v = run(&input, &compact).unwrap();
    let (h, back) = only_batch(&v);
    assert_eq!(h.compression(), 1, "codec kept");
    assert_eq!(
        h.max_timestamp,
        recs.iter().map(|r| r.timestamp).max().unwrap()
    );
    assert_eq!(back, recs);
    // without a check the header is trusted and nothing is read
    let v = run(&input, &cfg(CompressionType::Producer)).unwrap();
    assert!(matches!(v.bytes, Cow::Borrowed(_)));
}

#[test]
fn keyless_records_on_compacted_topics_are_named() {
    let mut recs = records(6);
    for i in [1, 4, 5] {
        recs[i].key = None;
    }
    let compact = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..cfg(CompressionType::Codec(Codec::Zstd))
    };
    for source in [0u8, 3] {
        let input = keyed_batch(source, -1, -1, &recs);
        match run(&input, &compact) {
            Err(AppendError::RejectedRecords { kind, errors }) => {
                assert_eq!(kind, RejectionKind::InvalidRecord);
                let idx: Vec<i32> = errors.iter().map(|e| e.batch_index).collect();
                assert_eq!(idx, [1, 4, 5]);
                assert!(errors.iter().all(|e| e.message
                    == "Compacted topic cannot accept message without key in topic partition v-3"));
                let msg = AppendError::RejectedRecords { kind, errors }.to_string();
                assert!(msg.starts_with(
                    "One or more records have been rejected due to 3 record errors in total, and \
                     only showing the first three errors at most: [RecordError(batchIndex=1, \
                     message='Compacted topic cannot"
                ), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn timestamps_out_of_bounds_are_named() {
    let ts = [NOW - 5000, NOW, NOW + 2000, -1, NOW - 10_001, NOW + 999];
    let recs: Vec<Record> = ts
        .iter()
        .enumerate()
        .map(|(i, &t)| rec(i as i64, t, Some("k"), Some("v")))
        .collect();
    let bounded = LogConfig {
        timestamp_before_max_ms: 10_000,
        timestamp_after_max_ms: 1000,
        ..cfg(CompressionType::Producer)
    };
    let input = keyed_batch(2, -1, -1, &recs);
    match run(&input, &bounded) {
        Err(AppendError::RejectedRecords { kind, errors }) => {
            assert_eq!(kind, RejectionKind::InvalidTimestamp);
            let idx: Vec<i32> = errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(idx, [2, 4], "NO_TIMESTAMP (-1) is never out of range");
            assert_eq!(
                errors[0].message,
                format!(
                    "Timestamp {} of message with offset 2 is out of range. The timestamp should \
                     be within [{}, {}]",
                    NOW + 2000,
                    NOW - 10_000,
                    NOW + 1000
                )
            );
            let msg = AppendError::RejectedRecords { kind, errors }.to_string();
            assert_eq!(
                msg,
                "One or more records have been rejected due to invalid timestamp"
            );
        }
        other => panic!("{other:?}"),
    }
    // only one bound set: the other is unbounded
    let before_only = LogConfig {
        timestamp_after_max_ms: i64::MAX,
        ..bounded.clone()
    };
    match run(&input, &before_only) {
        Err(AppendError::RejectedRecords { errors, .. }) => {
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].batch_index, 4);
        }
        other => panic!("{other:?}"),
    }
    // LogAppendTime topics do not check producer timestamps
    let lat = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..bounded
    };
    assert!(run(&input, &lat).is_ok());
}

#[test]
fn a_missing_key_is_reported_before_a_bad_timestamp() {
    let recs = vec![
        rec(0, NOW + 1_000_000, None, Some("a")),
        rec(1, NOW + 1_000_000, Some("k"), Some("b")),
    ];
    let c = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        timestamp_after_max_ms: 0,
        ..cfg(CompressionType::Producer)
    };
    match run(&keyed_batch(0, -1, -1, &recs), &c) {
        Err(AppendError::RejectedRecords { kind, errors }) => {
            assert_eq!(
                kind,
                RejectionKind::InvalidTimestamp,
                "any timestamp error wins"
            );
            assert!(errors[0].message.starts_with("Compacted topic"));
            assert!(errors[1].message.starts_with("Timestamp"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn producer_set_log_append_time_is_refused_on_log_append_time_topics() {
    let mut t = TestBatch::new(3, NOW);
    t.attributes = 0x08;
    let input = t.build();
    let lat = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..cfg(CompressionType::Producer)
    };
    match run(&input, &lat) {
        Err(AppendError::RejectedRecords { kind, errors }) => {
            assert_eq!(kind, RejectionKind::InvalidTimestamp);
            assert_eq!(errors.len(), 3);
            assert_eq!(
                errors[1].message,
                format!(
                    "Invalid timestamp type in message DefaultRecord(offset=1, timestamp={}, \
                     key=0 bytes, value=10 bytes). Producer should not set timestamp type to \
                     LogAppendTime.",
                    NOW + 2
                )
            );
        }
        other => panic!("{other:?}"),
    }
    // a CreateTime topic takes it with the bit cleared (Kafka's setMaxTimestamp(CreateTime, ..))
    let v = run(&input, &cfg(CompressionType::Producer)).unwrap();
    let (h, _) = only_batch(&v);
    assert!(!h.is_log_append_time());
    assert_eq!(h.max_timestamp, NOW + 2);
    // ... unless its records have no timestamp: then it is refused there too
    let mut t = TestBatch::new(2, -1);
    t.attributes = 0x08;
    t.ts_deltas = vec![0, 0];
    assert!(matches!(
        run(&t.build(), &cfg(CompressionType::Producer)),
        Err(AppendError::RejectedRecords { kind: RejectionKind::InvalidTimestamp, ref errors }) if errors.len() == 2
    ));
}

#[test]
fn a_batch_grown_by_conversion_must_fit_max_message_bytes() {
    let recs: Vec<Record> = (0..50)
        .map(|i| rec(i, NOW, Some("k"), Some(&"a".repeat(200))))
        .collect();
    let input = keyed_batch(4, -1, -1, &recs);
    let c = LogConfig {
        max_message_bytes: input.len() + 100,
        ..cfg(CompressionType::Codec(Codec::None))
    };
    match run(&input, &c) {
        Err(AppendError::MessageTooLarge { size, max }) => {
            assert!(size > 50 * 200);
            assert_eq!(max, input.len() + 100);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn converted_batches_are_reassembled_in_order() {
    let a = keyed_batch(0, -1, -1, &records(3));
    let b = keyed_batch(4, -1, -1, &records(2));
    let payload = [a.clone(), b.clone()].concat();
    let v = run_many(&payload, &cfg(CompressionType::Codec(Codec::Zstd)));
    assert_eq!(v.batches.len(), 2);
    assert_eq!(v.batches[0].header.compression(), 4);
    assert_eq!(v.batches[1].position, v.batches[0].size);
    assert_eq!(
        &v.bytes[v.batches[1].position..],
        &b[..],
        "the zstd batch is kept byte for byte"
    );
}

fn run_many<'a>(bytes: &'a [u8], c: &LogConfig) -> Validated<'a> {
    let batches = validate_payload(bytes, c.max_message_bytes).unwrap();
    validate(bytes, batches, c, &tp(), NOW).unwrap()
}

fn open(dir: &Path, c: LogConfig) -> (Arc<LogManager>, Arc<PartitionLog>) {
    let m = LogManager::open(dir).unwrap();
    let l = m.open_partition(&tp(), c).unwrap();
    (m, l)
}

#[test]
fn an_idempotent_retry_after_reencoding_is_a_duplicate() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), cfg(CompressionType::Codec(Codec::Lz4)));
    let first = keyed_batch(0, 5, 0, &records(4));
    let second = keyed_batch(0, 5, 4, &records(3));
    assert_eq!(l.append(&first, 2, NOW).unwrap().first_offset, 0);
    assert_eq!(l.append(&second, 2, NOW).unwrap().first_offset, 4);
    let retry = l.append(&first, 2, NOW).unwrap();
    assert!(retry.duplicate);
    assert_eq!((retry.first_offset, retry.last_offset), (0, 3));
    assert_eq!(l.log_end_offset(), 7);
    // a gap in the sequence is still refused
    let gap = keyed_batch(0, 5, 9, &records(1));
    assert!(matches!(
        l.append(&gap, 2, NOW),
        Err(AppendError::OutOfOrderSequence(_))
    ));
    let stored = l.read(0, 1 << 20, true, None).unwrap().records;
    let first_stored = BatchHeader::parse(&stored).unwrap();
    assert_eq!(first_stored.compression(), 3);
    assert_eq!(first_stored.partition_leader_epoch, 2);
    assert_eq!(
        (first_stored.producer_id, first_stored.base_sequence),
        (5, 0)
    );
    let size = first_stored.size().unwrap();
    assert_eq!(decode_records(&stored[..size]).unwrap().1, records(4));
}

#[test]
fn log_append_time_applies_to_reencoded_batches() {
    let d = tempfile::tempdir().unwrap();
    let c = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..cfg(CompressionType::Codec(Codec::Gzip))
    };
    let (_m, l) = open(d.path(), c);
    let info = l
        .append(&keyed_batch(0, -1, -1, &records(3)), 0, NOW + 5)
        .unwrap();
    assert_eq!(info.log_append_time_ms, NOW + 5);
    let stored = l.read(0, 1 << 20, true, None).unwrap().records;
    let h = BatchHeader::parse(&stored).unwrap();
    assert_eq!(h.compression(), 1);
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, NOW + 5);
    assert_eq!(compute_crc(&stored), h.crc);
    assert_eq!(h.base_timestamp, records(1)[0].timestamp);
}

#[test]
fn followers_store_what_the_leader_stored() {
    let d = tempfile::tempdir().unwrap();
    let (_m, l) = open(d.path(), cfg(CompressionType::Codec(Codec::Gzip)));
    // a leader's zstd batch at offset 0, epoch 4: stored byte for byte, never re-encoded
    let mut leader_batch = keyed_batch(4, 9, 0, &records(5));
    crate::log::batch::patch_offset_and_epoch(&mut leader_batch, 0, 4);
    let info = l.append_as_follower(&leader_batch, NOW).unwrap();
    assert_eq!(info.records_count, 5);
    let stored = l.read(0, 1 << 20, true, None).unwrap().records;
    assert_eq!(&stored[..], &leader_batch[..]);
}
