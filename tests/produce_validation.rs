//! Raw-protocol tests of what a leader does to produced batches beyond storing them: broker-side
//! compression (`compression.type`, KIP-390 levels) and per-record errors (KIP-467) for keyless
//! records on compacted topics and timestamps outside the KIP-937 bounds.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::{Bytes, BytesMut};
use common::{batch_with, decode_records, produce_request, Client, TestBroker};
use indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const INVALID_RECORD: i16 = 87;
const INVALID_TIMESTAMP: i16 = 32;
const INVALID_CONFIG: i16 = 40;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// CreateTopics v7 of one single-partition topic; returns the topic's error code.
async fn create_topic(c: &mut Client, topic: &str, configs: &[(&str, &str)]) -> i16 {
    let req = common::create_topics_request(topic, 1, configs);
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req).await;
    resp.topics[0].error_code
}

/// Produce (acks=1) of one batch at `version`; the partition's answer.
async fn produce(
    c: &mut Client,
    version: i16,
    topic: &str,
    records: Bytes,
) -> PartitionProduceResponse {
    let req = produce_request(topic, 0, records, 5000);
    let resp: ProduceResponse = c.call(ApiKey::Produce, version, &req).await;
    resp.responses[0].partition_responses[0].clone()
}

/// The raw record-set bytes of partition 0 from `offset` (Fetch v12).
async fn fetch_raw(c: &mut Client, topic: &str, offset: i64) -> (i64, Bytes) {
    let p = fetch_at(c, 12, topic, offset).await;
    assert_eq!(p.error_code, 0);
    (p.high_watermark, p.records.clone().unwrap_or_default())
}

/// Fetch of partition 0 from `offset` at `version`.
async fn fetch_at(
    c: &mut Client,
    version: i16,
    topic: &str,
    offset: i64,
) -> fetch_response::PartitionData {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let resp: FetchResponse = c.call(ApiKey::Fetch, version, &req).await;
    resp.responses[0].partitions[0].clone()
}

/// One uncompressed v2 batch (a single one) of (key, value, timestamp) records.
fn batch_of(records: &[(Option<&str>, &str, i64)]) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v, ts))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // kafka-protocol starts a new batch where offset - sequence changes: keep it constant
            // (base sequence -1, as non-idempotent clients write).
            sequence: i as i32 - 1,
            timestamp: *ts,
            key: k.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    assert_eq!(i32_at(&buf, 8) as usize + 12, buf.len(), "one batch");
    buf.freeze()
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

#[tokio::test]
async fn topic_compression_reencodes_batches_and_keeps_idempotence() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let zstd = [
        ("compression.type", "zstd"),
        ("compression.zstd.level", "10"),
    ];
    assert_eq!(create_topic(&mut c, "z", &zstd).await, 0);
    let pid = common::init_producer_id(&mut c).await;
    let ts = now_ms();
    let values: Vec<String> = (0..30)
        .map(|i| format!("value {i} {}", "x".repeat(i)))
        .collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let first = batch_with(&refs, Compression::None, pid, 0, 0, ts);
    let r = produce(&mut c, 9, "z", first.clone()).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));

    let (hw, raw) = fetch_raw(&mut c, "z", 0).await;
    assert_eq!(hw, 30);
    assert_eq!(i16_at(&raw, 21) & 0x07, 4, "stored with zstd");
    assert!(raw.len() < first.len(), "{} >= {}", raw.len(), first.len());
    assert_eq!(i64_at(&raw, 43), pid, "producer id kept");
    assert_eq!(i16_at(&raw, 51), 0, "producer epoch kept");
    assert_eq!(i32_at(&raw, 53), 0, "base sequence kept");
    assert_eq!(i32_at(&raw, 23), 29, "last offset delta");
    let stored = decode_records(raw.clone());
    let sent = decode_records(first.clone());
    assert_eq!(stored.len(), 30);
    for (i, (s, o)) in stored.iter().zip(&sent).enumerate() {
        assert_eq!(s.offset, i as i64);
        assert_eq!(
            (&s.key, &s.value, s.timestamp),
            (&o.key, &o.value, o.timestamp)
        );
    }

    // The retry of the re-encoded batch is recognised: its original offset, nothing stored.
    let retry = produce(&mut c, 9, "z", first).await;
    assert_eq!((retry.error_code, retry.base_offset), (0, 0));
    let next = batch_with(&["next"], Compression::Gzip, pid, 0, 30, ts);
    let r = produce(&mut c, 9, "z", next).await;
    assert_eq!((r.error_code, r.base_offset), (0, 30));
    let (hw, raw) = fetch_raw(&mut c, "z", 30).await;
    assert_eq!(hw, 31);
    assert_eq!(i16_at(&raw, 21) & 0x07, 4, "gzip re-encoded as zstd");
    assert_eq!(decode_records(raw)[0].value.as_deref(), Some(&b"next"[..]));

    // Consumers fetching below v10 cannot take a zstd topic (Kafka's UNSUPPORTED_COMPRESSION_TYPE).
    assert_eq!(fetch_at(&mut c, 9, "z", 0).await.error_code, 76);
    assert_eq!(fetch_at(&mut c, 10, "z", 0).await.error_code, 0);

    // An explicit `uncompressed` topic stores a compressed batch decompressed.
    let plain = [("compression.type", "uncompressed")];
    assert_eq!(create_topic(&mut c, "plain", &plain).await, 0);
    let r = produce(
        &mut c,
        9,
        "plain",
        batch_with(&["a", "b"], Compression::Lz4, -1, -1, -1, ts),
    )
    .await;
    assert_eq!(r.error_code, 0);
    let (_, raw) = fetch_raw(&mut c, "plain", 0).await;
    assert_eq!(i16_at(&raw, 21) & 0x07, 0);
    assert_eq!(decode_records(raw).len(), 2);
    assert_eq!(fetch_at(&mut c, 9, "plain", 0).await.error_code, 0);
}

#[tokio::test]
async fn compression_configs_are_validated_at_creation() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    for (i, v) in ["uncompressed", "gzip", "snappy", "lz4", "zstd", "producer"]
        .iter()
        .enumerate()
    {
        let code = create_topic(&mut c, &format!("ok{i}"), &[("compression.type", v)]).await;
        assert_eq!(code, 0, "compression.type={v}");
    }
    let good = [
        ("compression.gzip.level", "-1"),
        ("compression.gzip.level", "9"),
        ("compression.lz4.level", "17"),
        ("compression.zstd.level", "-131072"),
        ("compression.zstd.level", "22"),
    ];
    for (i, (k, v)) in good.iter().enumerate() {
        assert_eq!(
            create_topic(&mut c, &format!("lv{i}"), &[(k, v)]).await,
            0,
            "{k}={v}"
        );
    }
    let bad = [
        ("compression.type", "none"),
        ("compression.type", "LZ4"),
        ("compression.gzip.level", "0"),
        ("compression.lz4.level", "18"),
        ("compression.zstd.level", "23"),
    ];
    for (i, (k, v)) in bad.iter().enumerate() {
        let code = create_topic(&mut c, &format!("bad{i}"), &[(k, v)]).await;
        assert_eq!(code, INVALID_CONFIG, "{k}={v}");
    }
}

#[tokio::test]
async fn record_errors_name_the_rejected_records() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(
        create_topic(&mut c, "compacted", &[("cleanup.policy", "compact")]).await,
        0
    );
    let ts = now_ms();
    let mixed = batch_of(&[
        (Some("k0"), "a", ts),
        (None, "b", ts),
        (Some("k2"), "c", ts),
        (None, "d", ts),
        (None, "e", ts),
    ]);
    let r = produce(&mut c, 9, "compacted", mixed.clone()).await;
    assert_eq!(r.error_code, INVALID_RECORD, "{r:?}");
    let indexes: Vec<i32> = r.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, [1, 3, 4], "{r:?}");
    let expected =
        "Compacted topic cannot accept message without key in topic partition compacted-0";
    for e in &r.record_errors {
        assert_eq!(e.batch_index_error_message.as_deref(), Some(expected));
    }
    let message = r.error_message.as_deref().unwrap_or_default().to_string();
    assert!(
        message.starts_with(
            "One or more records have been rejected due to 3 record errors in total, and only \
             showing the first three errors at most: [RecordError(batchIndex=1, message='Compacted"
        ),
        "{message}"
    );
    assert_eq!(r.base_offset, -1);
    // Produce v7 has no record errors: only the code.
    let r7 = produce(&mut c, 7, "compacted", mixed).await;
    assert_eq!(r7.error_code, INVALID_RECORD);
    assert!(r7.record_errors.is_empty());
    assert_eq!(
        fetch_raw(&mut c, "compacted", 0).await.0,
        0,
        "nothing stored"
    );

    let bounds = [
        ("message.timestamp.before.max.ms", "3600000"),
        ("message.timestamp.after.max.ms", "60000"),
    ];
    assert_eq!(create_topic(&mut c, "bounded", &bounds).await, 0);
    let hour = 3_600_000;
    let batch = batch_of(&[
        (None, "too old", ts - 2 * hour),
        (None, "fine", ts - hour / 2),
        (None, "too new", ts + hour),
        (None, "fine too", ts + 1000),
    ]);
    let r = produce(&mut c, 11, "bounded", batch).await;
    assert_eq!(r.error_code, INVALID_TIMESTAMP);
    let indexes: Vec<i32> = r.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, [0, 2]);
    let m = r.record_errors[2 - 1]
        .batch_index_error_message
        .as_deref()
        .unwrap()
        .to_string();
    assert!(
        m.starts_with(&format!(
            "Timestamp {} of message with offset 2 is out of range.",
            ts + hour
        )),
        "{m}"
    );
    assert_eq!(
        r.error_message.as_deref(),
        Some("One or more records have been rejected due to invalid timestamp")
    );
    assert_eq!(fetch_raw(&mut c, "bounded", 0).await.0, 0, "nothing stored");
    let ok = batch_of(&[(None, "now", ts)]);
    assert_eq!(produce(&mut c, 11, "bounded", ok).await.error_code, 0);
}
