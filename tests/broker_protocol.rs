//! Raw-protocol tests against an in-process broker: API behaviour as Kafka clients see it.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{batch, batch_with, decode_records, Client, TestBroker};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

async fn create_topic(
    c: &mut Client,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> CreateTopicsResponse {
    let req = common::create_topics_request(topic, partitions, configs);
    c.call(ApiKey::CreateTopics, 7, &req).await
}

fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

async fn produce(c: &mut Client, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let resp: ProduceResponse = c
        .call(
            ApiKey::Produce,
            9,
            &produce_request(topic, partition, records, -1),
        )
        .await;
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn fetch_request(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(50 * 1024 * 1024)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1024 * 1024)])])
}

async fn fetch(
    c: &mut Client,
    topic: &str,
    partition: i32,
    offset: i64,
) -> fetch_response::PartitionData {
    let resp: FetchResponse = c
        .call(
            ApiKey::Fetch,
            12,
            &fetch_request(topic, partition, offset, 0),
        )
        .await;
    resp.responses[0].partitions[0].clone()
}

#[tokio::test]
async fn api_versions_lists_served_apis_and_refuses_unknown_version() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let resp: ApiVersionsResponse = c
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    assert_eq!(resp.error_code, 0);
    let produce = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == 0)
        .expect("produce advertised");
    assert_eq!(produce.min_version, 0);
    assert!(resp
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Fetch as i16));
    assert!(resp.supported_features.is_empty() && resp.finalized_features.is_empty());

    // A version from the future: error 35 with a v0 body.
    let mut raw = bytes::BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(99)
        .with_correlation_id(2);
    kafka_protocol::protocol::Encodable::encode(&header, &mut raw, 2).unwrap();
    kafka_protocol::protocol::Encodable::encode(&ApiVersionsRequest::default(), &mut raw, 3)
        .unwrap();
    c.send_raw(&raw).await;
    let mut frame = c.receive_frame().await.expect("answer");
    let _ = <ResponseHeader as kafka_protocol::protocol::Decodable>::decode(&mut frame, 0).unwrap();
    let v0 = <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut frame, 0)
        .unwrap();
    assert_eq!(v0.error_code, 35);
    assert!(!v0.api_keys.is_empty());
}

#[tokio::test]
async fn produce_then_fetch_round_trip_with_contiguous_offsets() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(
        create_topic(&mut c, "rt", 2, &[]).await.topics[0].error_code,
        0
    );
    let mut expected = Vec::new();
    for i in 0..20 {
        let values: Vec<String> = (0..3).map(|j| format!("v{i}-{j}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let compression = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ][i % 5];
        let (err, base) = produce(&mut c, "rt", 1, batch(&refs, compression)).await;
        assert_eq!(err, 0);
        assert_eq!(base, (i * 3) as i64);
        expected.extend(values);
    }
    let mut offset = 0;
    let mut got = Vec::new();
    while offset < 60 {
        let p = fetch(&mut c, "rt", 1, offset).await;
        assert_eq!(p.error_code, 0);
        assert_eq!(p.high_watermark, 60);
        for r in decode_records(p.records.unwrap()) {
            if r.offset >= offset {
                assert_eq!(r.offset, offset, "offsets are contiguous");
                got.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
                offset += 1;
            }
        }
    }
    assert_eq!(got, expected);
    // Partition 0 untouched; offset past the end is out of range.
    assert_eq!(fetch(&mut c, "rt", 0, 0).await.high_watermark, 0);
    assert_eq!(fetch(&mut c, "rt", 1, 61).await.error_code, 1);
    assert_eq!(fetch(&mut c, "nope", 0, 0).await.error_code, 3);
}

#[tokio::test]
async fn metadata_auto_creates_and_reports_unknown_topics() {
    let b = TestBroker::start(&["num.partitions=3"]).await;
    let mut c = b.client().await;
    let req = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("auto")))
        ]));
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 12, &req).await;
    assert_eq!(resp.topics[0].error_code, 0);
    assert_eq!(resp.topics[0].partitions.len(), 3);
    assert_eq!(resp.brokers.len(), 1);
    let req = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("absent")))
        ]));
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 12, &req).await;
    assert_eq!(resp.topics[0].error_code, 3);
    let req = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name("bad name!")))
    ]));
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 12, &req).await;
    assert_eq!(resp.topics[0].error_code, 17);
    let all: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
        .await;
    assert_eq!(all.topics.len(), 1);
}

#[tokio::test]
async fn oversized_and_corrupt_batches_are_refused_without_storing() {
    let b = TestBroker::start(&["message.max.bytes=1000"]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "limits", 1, &[]).await;
    let big = "x".repeat(2000);
    let (err, _) = produce(&mut c, "limits", 0, batch(&[&big], Compression::None)).await;
    assert_eq!(err, 10, "MESSAGE_TOO_LARGE");
    let mut corrupt = batch(&["hello"], Compression::None).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let (err, _) = produce(&mut c, "limits", 0, Bytes::from(corrupt)).await;
    assert_eq!(err, 2, "CORRUPT_MESSAGE");
    let (err, base) = produce(&mut c, "limits", 0, batch(&["ok"], Compression::None)).await;
    assert_eq!(
        (err, base),
        (0, 0),
        "nothing was stored by the refused batches"
    );
}

#[tokio::test]
async fn idempotent_retries_are_deduplicated_and_gaps_refused() {
    let mut b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "idem", 1, &[]).await;
    let id = common::init_producer_id(&mut c).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let first = batch_with(&["a", "b"], Compression::None, id, 0, 0, now);
    assert_eq!(produce(&mut c, "idem", 0, first.clone()).await, (0, 0));
    assert_eq!(
        produce(
            &mut c,
            "idem",
            0,
            batch_with(&["c"], Compression::None, id, 0, 2, now)
        )
        .await,
        (0, 2)
    );
    // A retry of the first batch gets its original offset and is not stored again.
    assert_eq!(produce(&mut c, "idem", 0, first.clone()).await, (0, 0));
    let (err, _) = produce(
        &mut c,
        "idem",
        0,
        batch_with(&["gap"], Compression::None, id, 0, 10, now),
    )
    .await;
    assert_eq!(err, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");
    assert_eq!(fetch(&mut c, "idem", 0, 0).await.high_watermark, 3);
    // Recognised after a restart too; and producer ids are never reused.
    b.restart().await;
    let mut c = b.client().await;
    assert_eq!(produce(&mut c, "idem", 0, first).await, (0, 0));
    assert_eq!(fetch(&mut c, "idem", 0, 0).await.high_watermark, 3);
    let again: InitProducerIdResponse = c
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert!(again.producer_id.0 > id);
}

#[tokio::test]
async fn describe_producers_lists_each_partitions_producers() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "producers", 2, &[]).await;
    let id = common::init_producer_id(&mut c).await;
    let at = 1_700_000_000_123;
    let written = batch_with(&["a", "b", "c"], Compression::None, id, 0, 0, at);
    assert_eq!(produce(&mut c, "producers", 0, written).await, (0, 0));
    let describe = |partitions: Vec<i32>, topic: &str| {
        DescribeProducersRequest::default().with_topics(vec![
            describe_producers_request::TopicRequest::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partition_indexes(partitions),
        ])
    };
    let r: DescribeProducersResponse = c
        .call(
            ApiKey::DescribeProducers,
            0,
            &describe(vec![0, 1, 7], "producers"),
        )
        .await;
    let parts = &r.topics[0].partitions;
    assert_eq!((parts[0].partition_index, parts[0].error_code), (0, 0));
    let p = &parts[0].active_producers;
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].producer_id.0, id);
    assert_eq!(
        (p[0].producer_epoch, p[0].last_sequence, p[0].last_timestamp),
        (0, 2, at + 2)
    );
    assert_eq!(
        (p[0].coordinator_epoch, p[0].current_txn_start_offset),
        (-1, -1)
    );
    assert!(parts[1].error_code == 0 && parts[1].active_producers.is_empty());
    assert_eq!(parts[2].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    let r: DescribeProducersResponse = c
        .call(ApiKey::DescribeProducers, 0, &describe(vec![0], "nope"))
        .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 3);
}

#[tokio::test]
async fn acks_zero_gets_no_response_but_is_stored() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "fire", 1, &[]).await;
    c.send(
        ApiKey::Produce,
        9,
        &produce_request("fire", 0, batch(&["x"], Compression::None), 0),
    )
    .await;
    // The next response on this connection belongs to the next request.
    let p = fetch(&mut c, "fire", 0, 0).await;
    assert_eq!(p.high_watermark, 1);
}

#[tokio::test]
async fn long_poll_fetch_is_answered_when_data_arrives() {
    let b = TestBroker::start(&[]).await;
    let mut admin = b.client().await;
    create_topic(&mut admin, "poll", 1, &[]).await;
    let mut consumer = b.client().await;
    consumer
        .send(ApiKey::Fetch, 12, &fetch_request("poll", 0, 0, 120_000))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    produce(&mut admin, "poll", 0, batch(&["wake"], Compression::None)).await;
    // Without the wake-up the answer would come only after two minutes; the client waits 30 s.
    let resp: FetchResponse = consumer.receive(12).await.expect("fetch answered");
    let records = decode_records(resp.responses[0].partitions[0].records.clone().unwrap());
    assert_eq!(records.len(), 1);
}

#[tokio::test]
async fn list_offsets_by_kind_and_timestamp() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "times", 1, &[]).await;
    produce(
        &mut c,
        "times",
        0,
        batch_with(&["a", "b"], Compression::None, -1, -1, -1, 1000),
    )
    .await;
    produce(
        &mut c,
        "times",
        0,
        batch_with(&["c", "d"], Compression::None, -1, -1, -1, 5000),
    )
    .await;
    async fn answer(c: &mut Client, ts: i64) -> (i16, i64, i64) {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("times"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(ts)])]);
        let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 7, &req).await;
        let p = r.topics[0].partitions[0].clone();
        (p.error_code, p.offset, p.timestamp)
    }
    assert_eq!(answer(&mut c, -2).await.1, 0);
    assert_eq!(answer(&mut c, -1).await.1, 4);
    assert_eq!(answer(&mut c, 1001).await, (0, 1, 1001));
    assert_eq!(answer(&mut c, 4000).await, (0, 2, 5000));
    assert_eq!(answer(&mut c, 9999).await.1, -1);
    assert_eq!(answer(&mut c, -3).await, (0, 3, 5001));
}

#[tokio::test]
async fn topic_admin_create_describe_extend_delete() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let r = create_topic(
        &mut c,
        "adm",
        2,
        &[("retention.ms", "1234"), ("cleanup.policy", "delete")],
    )
    .await;
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(r.topics[0].num_partitions, 2);
    assert_eq!(
        create_topic(&mut c, "adm", 2, &[]).await.topics[0].error_code,
        36
    );
    assert_eq!(
        create_topic(&mut c, "badcfg", 1, &[("retention.ms", "soon")])
            .await
            .topics[0]
            .error_code,
        40
    );
    let rf2 = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(name("rf2"))
        .with_num_partitions(1)
        .with_replication_factor(2)]);
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &rf2).await;
    assert_eq!(resp.topics[0].error_code, 38, "INVALID_REPLICATION_FACTOR");
    let validate = CreateTopicsRequest::default()
        .with_validate_only(true)
        .with_topics(vec![CreatableTopic::default()
            .with_name(name("dry"))
            .with_num_partitions(1)
            .with_replication_factor(1)]);
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &validate).await;
    assert_eq!(resp.topics[0].error_code, 0);

    let describe = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("adm")),
            DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_static_str("0")),
        ]);
    let resp: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &describe).await;
    let topic = &resp.results[0];
    assert_eq!(topic.error_code, 0);
    let retention = topic
        .configs
        .iter()
        .find(|e| e.name.as_str() == "retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_deref(), Some("1234"));
    assert_eq!(retention.config_source, 1);
    let segment = topic
        .configs
        .iter()
        .find(|e| e.name.as_str() == "segment.bytes")
        .unwrap();
    assert_eq!(segment.config_source, 5);
    assert_eq!(resp.results[1].error_code, 0);
    assert!(resp.results[1]
        .configs
        .iter()
        .any(|e| e.name.as_str() == "log.dirs"));

    let grow = CreatePartitionsRequest::default().with_topics(vec![
        create_partitions_request::CreatePartitionsTopic::default()
            .with_name(name("adm"))
            .with_count(4)
            .with_assignments(None),
    ]);
    let resp: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &grow).await;
    assert_eq!(resp.results[0].error_code, 0);
    assert_eq!(
        produce(&mut c, "adm", 3, batch(&["p3"], Compression::None)).await,
        (0, 0)
    );
    let shrink = CreatePartitionsRequest::default().with_topics(vec![
        create_partitions_request::CreatePartitionsTopic::default()
            .with_name(name("adm"))
            .with_count(2)
            .with_assignments(None),
    ]);
    let resp: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &shrink).await;
    assert_eq!(resp.results[0].error_code, 37);

    let cluster: DescribeClusterResponse = c
        .call(
            ApiKey::DescribeCluster,
            1,
            &DescribeClusterRequest::default().with_endpoint_type(1),
        )
        .await;
    assert_eq!(cluster.brokers.len(), 1);
    assert!(!cluster.cluster_id.is_empty());

    let delete = DeleteTopicsRequest::default().with_topic_names(vec![name("adm"), name("ghost")]);
    let resp: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 5, &delete).await;
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(resp.responses[1].error_code, 3);
    assert_eq!(
        produce(&mut c, "adm", 0, batch(&["gone"], Compression::None))
            .await
            .0,
        3
    );
}

#[tokio::test]
async fn data_survives_clean_restart() {
    let mut b = TestBroker::start(&["log.segment.bytes=1024"]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "keep", 1, &[]).await;
    for i in 0..50 {
        let v = format!("value-{i:04}-{}", "p".repeat(40));
        assert_eq!(
            produce(&mut c, "keep", 0, batch(&[&v], Compression::None)).await,
            (0, i)
        );
    }
    b.restart().await;
    let mut c = b.client().await;
    let mut offset = 0;
    while offset < 50 {
        let p = fetch(&mut c, "keep", 0, offset).await;
        assert_eq!(p.high_watermark, 50);
        for r in decode_records(p.records.unwrap()) {
            assert_eq!(r.offset, offset);
            assert!(String::from_utf8_lossy(r.value.as_ref().unwrap())
                .starts_with(&format!("value-{offset:04}")));
            offset += 1;
        }
    }
    assert_eq!(
        produce(&mut c, "keep", 0, batch(&["next"], Compression::None)).await,
        (0, 50)
    );
}

#[tokio::test]
async fn a_second_broker_cannot_open_the_same_data_directory() {
    let b = TestBroker::start(&[]).await;
    let overrides = vec![
        "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
        format!("log.dirs={}", b.dir.path().display()),
        "http.listener=".to_string(),
    ];
    let config = odradek::app::load_config(None, &overrides).unwrap();
    let err = odradek::app::RunningBroker::start(config)
        .await
        .err()
        .expect("second broker refused");
    assert!(format!("{err:#}").contains("in use"), "{err:#}");
}

#[tokio::test]
async fn clients_cannot_append_to_the_offsets_topic() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let find = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"));
    let r: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 3, &find).await;
    assert_eq!(r.error_code, 0);
    let (err, _) = produce(
        &mut c,
        "__consumer_offsets",
        0,
        batch(&["x"], Compression::None),
    )
    .await;
    assert_eq!(err, 17, "INVALID_TOPIC_EXCEPTION");
}

#[tokio::test]
async fn fetch_checks_the_callers_leader_epoch() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "epochs", 1, &[]).await;
    let ask = |epoch: i32| {
        let mut req = fetch_request("epochs", 0, 0, 0);
        req.topics[0].partitions[0].current_leader_epoch = epoch;
        req
    };
    for (epoch, expected) in [(-1, 0), (0, 0), (5, 75)] {
        let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &ask(epoch)).await;
        assert_eq!(
            resp.responses[0].partitions[0].error_code, expected,
            "epoch {epoch}"
        );
    }
}

/// Kafka's ACL operation bits of what a topic, the cluster and a group support (no authorizer:
/// every supported operation is allowed).
const TOPIC_OPERATIONS: i32 =
    1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 8 | 1 << 10 | 1 << 11;
const CLUSTER_OPERATIONS: i32 = 1 << 5 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 10 | 1 << 11 | 1 << 12;
const GROUP_OPERATIONS: i32 = 1 << 3 | 1 << 6 | 1 << 8;

#[tokio::test]
async fn authorized_operations_are_reported_when_asked_for() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "ops", 1, &[]).await;
    let metadata = |include: bool| {
        MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("ops")))
            ]))
            .with_include_cluster_authorized_operations(include)
            .with_include_topic_authorized_operations(include)
    };
    for v in [8, 10] {
        let r: MetadataResponse = c.call(ApiKey::Metadata, v, &metadata(true)).await;
        assert_eq!(
            r.topics[0].topic_authorized_operations, TOPIC_OPERATIONS,
            "v{v}"
        );
        assert_eq!(r.cluster_authorized_operations, CLUSTER_OPERATIONS, "v{v}");
        let r: MetadataResponse = c.call(ApiKey::Metadata, v, &metadata(false)).await;
        assert_eq!(r.topics[0].topic_authorized_operations, i32::MIN, "v{v}");
        assert_eq!(r.cluster_authorized_operations, i32::MIN, "v{v}");
    }
    // From v11 the cluster's operations come from DescribeCluster only.
    let topic_only = metadata(true).with_include_cluster_authorized_operations(false);
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &topic_only).await;
    assert_eq!(r.topics[0].topic_authorized_operations, TOPIC_OPERATIONS);
    for include in [true, false] {
        let req =
            DescribeClusterRequest::default().with_include_cluster_authorized_operations(include);
        let r: DescribeClusterResponse = c.call(ApiKey::DescribeCluster, 1, &req).await;
        let expected = if include {
            CLUSTER_OPERATIONS
        } else {
            i32::MIN
        };
        assert_eq!(r.cluster_authorized_operations, expected);
    }
    for include in [true, false] {
        let req = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(StrBytes::from_static_str("some-group"))])
            .with_include_authorized_operations(include);
        let r: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, 5, &req).await;
        assert_eq!(r.groups[0].error_code, 0);
        let expected = if include { GROUP_OPERATIONS } else { i32::MIN };
        assert_eq!(r.groups[0].authorized_operations, expected);
    }
}

/// Joins `group` as its only member (session `session_ms`) and syncs an empty assignment.
async fn join_alone(c: &mut Client, group: &str, session_ms: i32) -> String {
    let group_id = GroupId(StrBytes::from_string(group.to_string()));
    let join = |member: StrBytes| {
        JoinGroupRequest::default()
            .with_group_id(group_id.clone())
            .with_member_id(member)
            .with_session_timeout_ms(session_ms)
            .with_rebalance_timeout_ms(session_ms)
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))])
    };
    let r: JoinGroupResponse = c
        .call(ApiKey::JoinGroup, 5, &join(StrBytes::default()))
        .await;
    assert_eq!(r.error_code, 79, "MEMBER_ID_REQUIRED");
    let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &join(r.member_id)).await;
    assert_eq!(r.error_code, 0);
    let sync = SyncGroupRequest::default()
        .with_group_id(group_id)
        .with_generation_id(r.generation_id)
        .with_member_id(r.member_id.clone())
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(r.member_id.clone())
                .with_assignment(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        ]);
    let s: SyncGroupResponse = c.call(ApiKey::SyncGroup, 3, &sync).await;
    assert_eq!(s.error_code, 0);
    r.member_id.to_string()
}

#[tokio::test]
async fn a_member_is_gone_as_soon_as_its_session_ends() {
    let b = TestBroker::start(&["group.min.session.timeout.ms=100"]).await;
    let mut c = b.client().await;
    let find = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("lapsing"));
    let r: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 3, &find).await;
    assert_eq!(r.error_code, 0);
    let member = join_alone(&mut c, "lapsing", 400).await;
    // A heartbeat at an arbitrary moment renews the session: it ends 400 ms after the heartbeat
    // arrives.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("lapsing")))
        .with_generation_id(1)
        .with_member_id(StrBytes::from_string(member));
    let r: HeartbeatResponse = c.call(ApiKey::Heartbeat, 3, &heartbeat).await;
    assert_eq!(r.error_code, 0);
    // Just past the session timeout (Kafka expires the member at its deadline, not at the next
    // sweep): the group is empty and can be deleted.
    tokio::time::sleep(Duration::from_millis(401)).await;
    let delete = DeleteGroupsRequest::default()
        .with_groups_names(vec![GroupId(StrBytes::from_static_str("lapsing"))]);
    let r: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, 2, &delete).await;
    assert_eq!(r.results[0].error_code, 0, "not NON_EMPTY_GROUP (68)");
}

#[tokio::test]
async fn an_idle_group_is_emptied_by_the_timer_at_the_deadline() {
    let b = TestBroker::start(&["group.min.session.timeout.ms=100"]).await;
    let mut c = b.client().await;
    let find = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("idle"));
    let _: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 3, &find).await;
    join_alone(&mut c, "idle", 300).await;
    // Nobody touches the group: the timer alone expires the member (and writes the Empty group).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let listed: ListGroupsResponse = c
        .call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())
        .await;
    let idle = listed
        .groups
        .iter()
        .find(|g| g.group_id.as_str() == "idle")
        .expect("listed");
    assert_eq!(idle.group_state.as_str(), "Empty");
}
