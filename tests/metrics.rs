//! The HTTP listener and `/metrics` of an in-process broker, scraped over HTTP: Kafka's
//! BrokerTopicMetrics move with produce and fetch (per topic and broker-wide), failed produce
//! requests are counted, consumer-group lag is end offset minus committed offset, unknown
//! paths and methods are refused, and a bad `http.listener` stops start-up naming the key.
// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{batch, produce_request, Client, TestBroker};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsResponse, FetchRequest, FetchResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, OffsetCommitRequest, OffsetCommitResponse, ProduceResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HTTP_ON: &str = "http.listener=127.0.0.1:0";

/// One HTTP/1.1 exchange; returns the status code, the raw head and the body.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("answered in time")
        .expect("read");
    let text = String::from_utf8(raw).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, head.to_string(), body.to_string())
}

/// The samples of a scrape: `name{labels}` -> value (labels as written).
async fn scrape(b: &TestBroker) -> BTreeMap<String, f64> {
    let (status, head, body) = http(b.http_addr().expect("HTTP on"), "GET", "/metrics").await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("sample line");
            (k.to_string(), v.parse().expect("number"))
        })
        .collect()
}

fn value(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("{key} missing from {:#?}", m.keys().collect::<Vec<_>>()))
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

async fn create_topic(c: &mut Client, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let req = common::create_topics_request(topic, partitions, configs);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req).await;
    assert_eq!(r.topics[0].error_code, 0, "{r:?}");
}

/// Produce (acks=1, v9) of one batch of `values`; the partition's error code.
async fn produce(c: &mut Client, topic: &str, partition: i32, values: &[&str]) -> i16 {
    produce_batch(c, topic, partition, batch(values, Compression::None)).await
}

async fn produce_batch(c: &mut Client, topic: &str, partition: i32, records: bytes::Bytes) -> i16 {
    let req = produce_request(topic, partition, records, 5000);
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
    r.responses[0].partition_responses[0].error_code
}

#[tokio::test]
async fn produce_moves_messages_and_bytes_in_per_topic_and_in_total() {
    let b = TestBroker::start(&[HTTP_ON]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "m1", 1, &[]).await;
    create_topic(&mut c, "m2", 1, &[]).await;
    let before = scrape(&b).await;
    let total_in = "kafka_server_brokertopicmetrics_messagesin_total";
    assert_eq!(value(&before, total_in), 0.0);

    assert_eq!(produce(&mut c, "m1", 0, &["a", "b", "c"]).await, 0);
    assert_eq!(produce(&mut c, "m2", 0, &["d", "e"]).await, 0);
    let after = scrape(&b).await;
    assert_eq!(value(&after, total_in), 5.0);
    assert_eq!(value(&after, &format!("{total_in}{{topic=\"m1\"}}")), 3.0);
    assert_eq!(value(&after, &format!("{total_in}{{topic=\"m2\"}}")), 2.0);
    let bytes_in = "kafka_server_brokertopicmetrics_bytesin_total";
    let batch_len = |n: &[&str]| batch(n, Compression::None).len() as f64;
    assert_eq!(
        value(&after, &format!("{bytes_in}{{topic=\"m1\"}}")),
        batch_len(&["a", "b", "c"])
    );
    assert_eq!(
        value(&after, bytes_in),
        batch_len(&["a", "b", "c"]) + batch_len(&["d", "e"])
    );
    let requests = "kafka_server_brokertopicmetrics_totalproducerequests_total";
    assert_eq!(value(&after, requests), 2.0);
    assert_eq!(value(&after, &format!("{requests}{{topic=\"m2\"}}")), 1.0);

    // Request times: Produce has a sample, with its quantiles.
    let count = value(
        &after,
        "kafka_network_requestmetrics_totaltimems_count{request=\"Produce\"}",
    );
    assert!(count >= 2.0, "{count}");
    let p99 = value(
        &after,
        "kafka_network_requestmetrics_totaltimems{request=\"Produce\",quantile=\"0.99\"}",
    );
    assert!(p99 >= 0.0, "{p99}");
    assert_eq!(
        value(
            &after,
            "kafka_server_socket_server_metrics_connection_count{listener=\"PLAINTEXT\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&after, "kafka_server_replicamanager_leadercount"),
        2.0
    );
    assert_eq!(
        value(&after, "kafka_server_replicamanager_partitioncount"),
        2.0
    );
    assert_eq!(
        value(
            &after,
            "kafka_server_replicamanager_underreplicatedpartitions"
        ),
        0.0
    );
    assert_eq!(
        value(
            &after,
            "kafka_controller_kafkacontroller_activecontrollercount"
        ),
        1.0
    );
    assert!(value(&after, "kafka_log_log_size{topic=\"m1\",partition=\"0\"}") > 0.0);
}

#[tokio::test]
async fn a_consumer_fetch_moves_bytes_out_and_fetch_requests() {
    let b = TestBroker::start(&[HTTP_ON]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "out", 1, &[]).await;
    assert_eq!(produce(&mut c, "out", 0, &["a", "b"]).await, 0);
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name("out"))
            .with_partitions(vec![
                FetchPartition::default()
                    .with_partition(0)
                    .with_partition_max_bytes(1 << 20),
                FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(99)
                    .with_partition_max_bytes(1 << 20),
            ])]);
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &req).await;
    let sent = r.responses[0].partitions[0].records.as_ref().unwrap().len() as f64;
    assert!(sent > 0.0);
    // OFFSET_OUT_OF_RANGE: counted as a failed fetch, as Kafka counts it.
    assert_eq!(r.responses[0].partitions[1].error_code, 1);
    let m = scrape(&b).await;
    let out = "kafka_server_brokertopicmetrics_bytesout_total";
    assert_eq!(value(&m, out), sent);
    assert_eq!(value(&m, &format!("{out}{{topic=\"out\"}}")), sent);
    let fetches = "kafka_server_brokertopicmetrics_totalfetchrequests_total";
    assert_eq!(value(&m, &format!("{fetches}{{topic=\"out\"}}")), 2.0);
    let failed = "kafka_server_brokertopicmetrics_failedfetchrequests_total";
    assert_eq!(value(&m, &format!("{failed}{{topic=\"out\"}}")), 1.0);
    let consumer = "kafka_network_requestmetrics_totaltimems_count{request=\"FetchConsumer\"}";
    assert_eq!(value(&m, consumer), 1.0);
}

#[tokio::test]
async fn a_refused_produce_counts_as_failed() {
    let b = TestBroker::start(&[HTTP_ON]).await;
    let mut c = b.client().await;
    create_topic(
        &mut c,
        "strict",
        1,
        &[("message.timestamp.before.max.ms", "3600000")],
    )
    .await;
    // A record from 1970 on a topic that takes the last hour only: INVALID_TIMESTAMP (32).
    let old = common::batch_with(&["old"], Compression::None, -1, -1, -1, 1000);
    assert_eq!(produce_batch(&mut c, "strict", 0, old).await, 32);
    // An unknown partition is a client's everyday error, not a failure (as in Kafka).
    assert_eq!(produce(&mut c, "strict", 7, &["x"]).await, 3);
    let m = scrape(&b).await;
    let failed = "kafka_server_brokertopicmetrics_failedproducerequests_total";
    assert_eq!(value(&m, failed), 1.0);
    assert_eq!(value(&m, &format!("{failed}{{topic=\"strict\"}}")), 1.0);
    let requests = "kafka_server_brokertopicmetrics_totalproducerequests_total";
    assert_eq!(value(&m, requests), 2.0);
    assert_eq!(value(&m, &format!("{requests}{{topic=\"strict\"}}")), 1.0);
    assert_eq!(
        value(&m, "kafka_server_brokertopicmetrics_messagesin_total"),
        0.0
    );
}

/// Commits `offset` for `group` on partition 0 of `topic` (a simple commit, no membership),
/// retrying while the coordinator is being set up.
async fn commit(c: &mut Client, group: &str, topic: &str, offset: i64) {
    let find = FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.into()));
    for _ in 0..100 {
        let r: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 3, &find).await;
        if r.error_code == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])]);
    for _ in 0..100 {
        let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &req).await;
        let code = r.topics[0].partitions[0].error_code;
        if code == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("offset commit did not succeed");
}

#[tokio::test]
async fn consumer_group_lag_is_produced_minus_committed() {
    let b = TestBroker::start(&[HTTP_ON]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "lagging", 1, &[]).await;
    for _ in 0..4 {
        assert_eq!(produce(&mut c, "lagging", 0, &["1", "2", "3"]).await, 0);
    }
    commit(&mut c, "readers", "lagging", 5).await;
    let key =
        "kafka_consumergroup_lag{consumergroup=\"readers\",topic=\"lagging\",partition=\"0\"}";
    assert_eq!(value(&scrape(&b).await, key), 12.0 - 5.0);
    assert_eq!(produce(&mut c, "lagging", 0, &["4"]).await, 0);
    commit(&mut c, "readers", "lagging", 13).await;
    assert_eq!(value(&scrape(&b).await, key), 0.0);
    let lag = b
        .running
        .as_ref()
        .unwrap()
        .broker
        .consumer_group_lag()
        .await;
    assert_eq!(lag.len(), 1, "{lag:?}");
    assert_eq!((lag[0].committed_offset, lag[0].end_offset), (13, Some(13)));
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405() {
    let b = TestBroker::start(&[HTTP_ON]).await;
    let addr = b.http_addr().expect("HTTP on");
    assert_eq!(http(addr, "GET", "/no/such/page").await.0, 404);
    let (status, head, _) = http(addr, "POST", "/metrics").await;
    assert_eq!(status, 405);
    assert!(head.to_lowercase().contains("allow: get, head"), "{head}");
    assert_eq!(http(addr, "DELETE", "/").await.0, 405);
    let (status, head, body) = http(addr, "HEAD", "/metrics").await;
    assert_eq!(status, 200, "{head}");
    assert!(body.is_empty(), "HEAD has no body: {body}");
    assert_eq!(http(addr, "GET", "/").await.0, 200);
}

#[tokio::test]
async fn the_http_listener_is_off_when_empty() {
    let b = TestBroker::start(&["http.listener="]).await;
    assert_eq!(b.http_addr(), None);
}

#[tokio::test]
async fn a_bad_http_listener_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let overrides = |value: &str| {
        vec![
            "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
            format!("log.dirs={}", dir.path().display()),
            format!("http.listener={value}"),
        ]
    };
    for bad in ["9644", "localhost", "127.0.0.1:99999"] {
        let err = odradek::app::load_config(None, &overrides(bad))
            .err()
            .unwrap_or_else(|| panic!("{bad} accepted"));
        assert!(format!("{err:#}").contains("http.listener"), "{err:#}");
    }
    // A port already in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = odradek::app::load_config(None, &overrides(&format!("127.0.0.1:{port}"))).unwrap();
    let err = odradek::app::RunningBroker::start(config)
        .await
        .err()
        .expect("start-up refused");
    let text = format!("{err:#}");
    assert!(text.contains("http.listener"), "{text}");
    assert!(text.contains(&port.to_string()), "{text}");
}
