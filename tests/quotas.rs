//! Client byte-rate quotas against an in-process standalone broker, over the raw protocol.
//! Quotas are written with `cluster.alter_client_entities` (what AlterClientQuotas will do).
//! With `quota.window.num=2` and 1 s windows, the first request of S bytes against a quota of
//! Q bytes/s measures S over one (assumed) window of 1 s, so its throttle time is exactly
//! `round((S - Q) / Q * 1000)` ms: the tests check that, which also checks which bytes count.
//! The mute is checked as an invariant, not a timing: the answer to a request sent right after
//! a throttled one cannot come before the throttle time has passed since the throttled request
//! was sent (without the mute it comes in milliseconds).

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{batch, create_topics_request, produce_request, Client, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::Compression;
use odradek::config::client_entity::{
    ClientEntity, EntityName, CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE,
};

const TOPIC: &str = "quoted";
/// The client id of the test client (tests/common).
const CLIENT: &str = "odradek-test";
const PRODUCE_V: i16 = 9;
const FETCH_V: i16 = 12;

fn named(s: &str) -> EntityName {
    EntityName::Named(s.into())
}

async fn start() -> TestBroker {
    let b = TestBroker::start(&["quota.window.num=2", "quota.window.size.seconds=1"]).await;
    let mut c = b.client().await;
    let r: CreateTopicsResponse = c
        .call(
            ApiKey::CreateTopics,
            7,
            &create_topics_request(TOPIC, 1, &[]),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 0);
    b
}

/// Sets (`Some`) or removes (`None`) one quota key of `entity`.
async fn set_quota(b: &TestBroker, entity: ClientEntity, key: &str, value: Option<f64>) {
    let broker = &b.running.as_ref().expect("running").broker;
    broker
        .cluster
        .alter_client_entities(vec![(
            entity,
            BTreeMap::from([(key.to_string(), value.map(|v| v.to_string()))]),
        )])
        .await
        .expect("quota stored");
}

/// A produce request of about `bytes` bytes of record values.
fn big_produce(bytes: usize) -> ProduceRequest {
    let value = "x".repeat(bytes);
    produce_request(TOPIC, 0, batch(&[&value], Compression::None), 5000)
}

/// The size Kafka's produce quota records: request header and body.
fn request_size<R: Encodable + HeaderVersion>(version: i16, req: &R) -> usize {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT)));
    header.compute_size(R::header_version(version)).unwrap() + req.compute_size(version).unwrap()
}

/// Kafka's throttle time for a first request of `size` bytes against `quota` (one 1 s window).
fn expected_throttle(size: usize, quota: f64) -> i32 {
    ((size as f64 - quota) / quota * 1000.0).round() as i32
}

async fn produce(c: &mut Client, req: &ProduceRequest) -> ProduceResponse {
    let r: ProduceResponse = c.call(ApiKey::Produce, PRODUCE_V, req).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    r
}

/// Sends an ApiVersions request and waits for its answer.
async fn ping(c: &mut Client) {
    let r: ApiVersionsResponse = c
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    assert_eq!(r.error_code, 0);
}

fn fetch_request(replica_id: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])])
}

#[tokio::test]
async fn a_produce_over_the_quota_is_throttled_and_the_connection_muted() {
    let b = start().await;
    let quota = 1000.0;
    set_quota(
        &b,
        ClientEntity::ClientId(named(CLIENT)),
        PRODUCER_BYTE_RATE,
        Some(quota),
    )
    .await;
    let mut c = b.client().await;
    let req = big_produce(1500);
    let sent = Instant::now();
    let r = produce(&mut c, &req).await;
    let throttle = expected_throttle(request_size(PRODUCE_V, &req), quota);
    assert!(throttle > 300, "the test's request is well over the quota");
    assert_eq!(
        r.throttle_time_ms, throttle,
        "Kafka's throttle time of the request's size"
    );
    // The next request is read only once the mute is over.
    ping(&mut c).await;
    assert!(
        sent.elapsed() >= Duration::from_millis(throttle as u64),
        "answered after {:?}, before the {throttle} ms mute ended",
        sent.elapsed()
    );
    // The records were appended all the same.
    let f: FetchResponse = b
        .client()
        .await
        .call(ApiKey::Fetch, FETCH_V, &fetch_request(-1))
        .await;
    assert_eq!(f.responses[0].partitions[0].high_watermark, 1);
}

#[tokio::test]
async fn acks_0_is_muted_without_an_answer() {
    let b = start().await;
    let quota = 1000.0;
    set_quota(
        &b,
        ClientEntity::ClientId(EntityName::Default),
        PRODUCER_BYTE_RATE,
        Some(quota),
    )
    .await;
    let mut c = b.client().await;
    let req = big_produce(1500).with_acks(0);
    let throttle = expected_throttle(request_size(PRODUCE_V, &req), quota);
    let sent = Instant::now();
    c.send(ApiKey::Produce, PRODUCE_V, &req).await;
    // No answer to the produce: the next frame is the ApiVersions answer, after the mute.
    ping(&mut c).await;
    assert!(
        sent.elapsed() >= Duration::from_millis(throttle as u64),
        "answered after {:?}, before the {throttle} ms mute ended",
        sent.elapsed()
    );
}

#[tokio::test]
async fn no_quota_no_throttle() {
    let b = start().await;
    // A quota of another client changes nothing for this one.
    set_quota(
        &b,
        ClientEntity::ClientId(named("other")),
        PRODUCER_BYTE_RATE,
        Some(1.0),
    )
    .await;
    let mut c = b.client().await;
    for _ in 0..3 {
        let r = produce(&mut c, &big_produce(100_000)).await;
        assert_eq!(r.throttle_time_ms, 0);
    }
    let f: FetchResponse = c.call(ApiKey::Fetch, FETCH_V, &fetch_request(-1)).await;
    assert_eq!(f.throttle_time_ms, 0);
    assert_eq!(f.responses[0].partitions[0].high_watermark, 3);
}

#[tokio::test]
async fn the_user_quota_wins_over_the_client_quota_and_removal_applies_live() {
    let b = start().await;
    // PLAINTEXT: the principal is User:ANONYMOUS.
    let user = ClientEntity::User(named("ANONYMOUS"));
    set_quota(&b, user.clone(), PRODUCER_BYTE_RATE, Some(1e12)).await;
    set_quota(
        &b,
        ClientEntity::ClientId(named(CLIENT)),
        PRODUCER_BYTE_RATE,
        Some(100.0),
    )
    .await;
    let mut c = b.client().await;
    let r = produce(&mut c, &big_produce(5_000)).await;
    assert_eq!(
        r.throttle_time_ms, 0,
        "/users/ANONYMOUS precedes /clients/{CLIENT}"
    );
    // Removing the user quota: the next request falls to the client-id quota.
    set_quota(&b, user, PRODUCER_BYTE_RATE, None).await;
    let req = big_produce(500);
    let r = produce(&mut c, &req).await;
    assert_eq!(
        r.throttle_time_ms,
        expected_throttle(request_size(PRODUCE_V, &req), 100.0),
        "a fresh client-id rate, throttled"
    );
    // A user+client quota precedes both (new connection: the other one is muted).
    set_quota(
        &b,
        ClientEntity::UserClientId(EntityName::Default, named(CLIENT)),
        PRODUCER_BYTE_RATE,
        Some(1e12),
    )
    .await;
    let mut c = b.client().await;
    assert_eq!(
        produce(&mut c, &big_produce(5_000)).await.throttle_time_ms,
        0
    );
}

#[tokio::test]
async fn a_fetch_over_the_quota_is_answered_empty_and_followers_are_never_throttled() {
    let b = start().await;
    let mut c = b.client().await;
    produce(&mut c, &big_produce(5_000)).await;
    set_quota(
        &b,
        ClientEntity::ClientId(EntityName::Default),
        CONSUMER_BYTE_RATE,
        Some(100.0),
    )
    .await;
    // A follower's fetch (replica id >= 0) is not a client's: never throttled.
    for _ in 0..3 {
        let f: FetchResponse = c.call(ApiKey::Fetch, FETCH_V, &fetch_request(1)).await;
        assert_eq!(f.throttle_time_ms, 0);
    }
    // A consumer's: its answer is over 100 bytes, so it comes back empty with a throttle.
    let f: FetchResponse = c.call(ApiKey::Fetch, FETCH_V, &fetch_request(-1)).await;
    assert!(f.throttle_time_ms > 0);
    assert!(f.responses.is_empty(), "throttled: an empty answer");
    assert_eq!(f.error_code, 0);
    // The throttled answer was not counted: after raising the quota, the fetch goes through.
    set_quota(
        &b,
        ClientEntity::ClientId(EntityName::Default),
        CONSUMER_BYTE_RATE,
        Some(1e9),
    )
    .await;
    let f: FetchResponse = b
        .client()
        .await
        .call(ApiKey::Fetch, FETCH_V, &fetch_request(-1))
        .await;
    assert_eq!(f.throttle_time_ms, 0);
    assert!(f.responses[0].partitions[0].records.as_ref().unwrap().len() > 5_000);
}
