//! Hostile and broken input: each class closes (or answers) only the offending connection and
//! leaves the broker serving everyone else, with stored data intact.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::{BufMut, BytesMut};
use common::{batch, decode_records, produce_request, Client, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use tokio::io::AsyncWriteExt;

/// The broker still answers a normal client and still has the one record stored before the attack.
async fn assert_healthy(b: &TestBroker) {
    let mut c = b.client().await;
    let resp: ApiVersionsResponse = c
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    assert_eq!(resp.error_code, 0);
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName("victim".into()))
            .with_partitions(vec![
                fetch_request::FetchPartition::default().with_partition_max_bytes(1 << 20)
            ])]);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &req).await;
    let records = decode_records(resp.responses[0].partitions[0].records.clone().unwrap());
    assert_eq!(records.len(), 1);
}

async fn broker_with_data() -> TestBroker {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let req = produce_request("victim", 0, batch(&["safe"], Compression::None), 1000);
    // Auto-create through Metadata first.
    let md = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(TopicName("victim".into())))]));
    let _: MetadataResponse = c.call(ApiKey::Metadata, 12, &md).await;
    let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    b
}

#[tokio::test]
async fn length_prefix_above_limit_closes_connection() {
    let b = broker_with_data().await;
    let mut c = b.client().await;
    c.stream.write_all(&[0x7f, 0xff, 0xff, 0xff]).await.unwrap();
    assert!(c.is_closed().await);
    let mut c = b.client().await;
    c.stream.write_all(&[0xff, 0xff, 0xff, 0xfe]).await.unwrap();
    assert!(c.is_closed().await);
    assert_healthy(&b).await;
}

#[tokio::test]
async fn huge_array_count_in_a_tiny_request_is_refused() {
    let b = broker_with_data().await;
    // Metadata v1: header (key 3, version 1, correlation 1, client id null) + topics count 2^31-1.
    let mut body = BytesMut::new();
    body.put_i16(3);
    body.put_i16(1);
    body.put_i32(1);
    body.put_i16(-1);
    body.put_i32(i32::MAX);
    assert!(body.len() < 20);
    let mut c = b.client().await;
    c.send_raw(&body).await;
    assert!(c.is_closed().await);
    // Compact (flexible) variant: Metadata v12 with varint count 2^32-1.
    let mut body = BytesMut::new();
    body.put_i16(3);
    body.put_i16(12);
    body.put_i32(2);
    body.put_i16(-1);
    body.put_u8(0); // header tagged fields
    body.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let mut c = b.client().await;
    c.send_raw(&body).await;
    assert!(c.is_closed().await);
    assert_healthy(&b).await;
}

#[tokio::test]
async fn garbage_truncation_and_unknown_keys_close_only_that_connection() {
    let b = broker_with_data().await;
    let mut bystander = b.client().await;

    let mut c = b.client().await;
    c.send_raw(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02])
        .await;
    assert!(c.is_closed().await);

    let mut c = b.client().await;
    c.send_raw(&[0x27, 0x0f, 0, 0, 0, 0, 0, 9, 0xff, 0xff])
        .await; // api key 9999
    assert!(c.is_closed().await);

    let mut c = b.client().await;
    c.stream
        .write_all(&[0, 0, 0, 50, 0, 18, 0, 3])
        .await
        .unwrap();
    drop(c); // truncated frame, then gone

    let mut c = b.client().await;
    c.send_raw(&[0, 0]).await; // shorter than any header
    assert!(c.is_closed().await);

    // A served API at a version never served.
    let mut c = b.client().await;
    c.send_raw(&[0, 3, 0x7f, 0x00, 0, 0, 0, 1, 0xff, 0xff])
        .await;
    assert!(c.is_closed().await);

    // Produce v0-v2 are advertised (for old librdkafka) but refused.
    let mut c = b.client().await;
    c.send_raw(&[0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff, 0, 1, 0, 0, 0, 0])
        .await;
    assert!(c.is_closed().await);

    let resp: ApiVersionsResponse = bystander
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    assert_eq!(resp.error_code, 0);
    assert_healthy(&b).await;
}

#[tokio::test]
async fn malformed_records_get_error_codes() {
    let b = broker_with_data().await;
    let mut c: Client = b.client().await;
    for junk in [vec![0u8; 10], vec![0xffu8; 100], {
        let mut v = batch(&["x"], Compression::None).to_vec();
        v[16] = 1; // magic 1
        v
    }] {
        let req = produce_request("victim", 0, junk.into(), 1000);
        let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
        assert_ne!(resp.responses[0].partition_responses[0].error_code, 0);
    }
    assert_healthy(&b).await;
}
