//! Named listeners: each client is answered with the addresses of the listener it came in on
//! (Metadata, FindCoordinator, DescribeCluster), and a listener that is bound but not advertised
//! sees no broker at all.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Client, TestBroker};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// Three listeners on free ports; INTERNAL and EXTERNAL advertised at made-up addresses,
/// HIDDEN bound but not advertised.
async fn broker() -> TestBroker {
    TestBroker::start(&[
        "listeners=INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0,HIDDEN://127.0.0.1:0",
        "advertised.listeners=INTERNAL://internal.example:19092,EXTERNAL://external.example:9092",
        "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,HIDDEN:PLAINTEXT",
        "inter.broker.listener.name=INTERNAL",
    ])
    .await
}

/// A client of the listener at `index` in `listeners`.
async fn client(b: &TestBroker, index: usize) -> Client {
    Client::connect(b.running.as_ref().unwrap().addrs()[index]).await
}

async fn metadata(c: &mut Client, version: i16, topic: &str) -> MetadataResponse {
    let req = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(topic.into()))))]));
    c.call(ApiKey::Metadata, version, &req).await
}

async fn find_group_coordinator(c: &mut Client, version: i16) -> (i16, String, i32) {
    let req = if version >= 4 {
        FindCoordinatorRequest::default()
            .with_coordinator_keys(vec![StrBytes::from_static_str("g")])
    } else {
        FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"))
    };
    let r: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, version, &req).await;
    if version >= 4 {
        let c = &r.coordinators[0];
        (c.error_code, c.host.to_string(), c.port)
    } else {
        (r.error_code, r.host.to_string(), r.port)
    }
}

#[tokio::test]
async fn each_listener_sees_its_own_addresses() {
    let b = broker().await;
    for (index, host, port) in [
        (0, "internal.example", 19092),
        (1, "external.example", 9092),
    ] {
        let mut c = client(&b, index).await;
        let m = metadata(&mut c, 12, "t").await;
        assert_eq!(m.brokers.len(), 1);
        assert_eq!(
            (m.brokers[0].host.as_str(), m.brokers[0].port),
            (host, port)
        );
        assert_eq!(m.topics[0].error_code, 0);
        assert_eq!(m.topics[0].partitions[0].error_code, 0);
        for version in [3, 4] {
            let (error, h, p) = find_group_coordinator(&mut c, version).await;
            assert_eq!((error, h.as_str(), p), (0, host, port), "v{version}");
        }
        let d: DescribeClusterResponse = c
            .call(
                ApiKey::DescribeCluster,
                0,
                &DescribeClusterRequest::default(),
            )
            .await;
        assert_eq!(
            (d.brokers[0].host.as_str(), d.brokers[0].port),
            (host, port)
        );
    }
}

#[tokio::test]
async fn a_listener_not_advertised_sees_no_broker() {
    let b = broker().await;
    // Create the topic (and the offsets topic) through an advertised listener first.
    let mut internal = client(&b, 0).await;
    assert_eq!(
        metadata(&mut internal, 12, "t").await.topics[0].error_code,
        0
    );
    assert_eq!(find_group_coordinator(&mut internal, 4).await.0, 0);

    let mut hidden = client(&b, 2).await;
    let m = metadata(&mut hidden, 12, "t").await;
    assert!(m.brokers.is_empty());
    let p = &m.topics[0].partitions[0];
    assert_eq!(p.error_code, 72, "LISTENER_NOT_FOUND from v6 on");
    assert_eq!(p.leader_id.0, -1);
    let m = metadata(&mut hidden, 5, "t").await;
    assert_eq!(
        m.topics[0].partitions[0].error_code, 5,
        "LEADER_NOT_AVAILABLE before v6"
    );
    for version in [3, 4] {
        let (error, _, _) = find_group_coordinator(&mut hidden, version).await;
        assert_eq!(error, 15, "COORDINATOR_NOT_AVAILABLE (v{version})");
    }
}

#[tokio::test]
async fn secured_listeners_stop_start_up_naming_the_key() {
    let refusal = |listeners: &str| {
        let err = odradek::app::load_config(None, &[format!("listeners={listeners}")])
            .expect_err("refused");
        format!("{err:#}")
    };
    // SASL is served, but not with Kafka's default mechanism (GSSAPI).
    let text = refusal("PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0");
    assert!(text.contains("sasl.enabled.mechanisms"), "{text}");
    assert!(
        text.contains("GSSAPI") && text.contains("not supported"),
        "{text}"
    );
    // SSL is served, but not without a keystore.
    let text = refusal("PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0");
    assert!(text.contains("ssl.keystore.location"), "{text}");
}
