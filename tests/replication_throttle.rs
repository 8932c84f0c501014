//! Replication throttles against in-process brokers. Rates are set with IncrementalAlterConfigs,
//! the topic's state and throttled-replica lists are applied by hand (as the cluster layer would
//! after reading them). Leader side (Kafka's `shouldLeaderThrottle`): the test plays follower
//! broker 2 with raw Fetch requests carrying a replica id. Follower side
//! (`shouldFollowerThrottle`): a real follower broker fetches from a real leader. Assertions are
//! on bytes and offsets only: with a rate of 1 byte/s the first bytes recorded exceed the quota
//! for the whole measurement window (11 windows of 10 s here).

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{batch, produce_request, Client, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use odradek::cluster::{PartitionState, TopicMetadata};
use odradek::config::ThrottledRates;
use odradek::log::TopicPartition;
use odradek::replica::{ClusterLink, IsrWriteError, LeaderAndIsr};

const TOPIC: &str = "throttled";
const BROKER: i8 = 4;
const SET: i8 = 0;
const LEADER_LIST: &str = "leader.replication.throttled.replicas";
const FOLLOWER_LIST: &str = "follower.replication.throttled.replicas";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn broker_of(b: &TestBroker) -> &odradek::broker::Broker {
    &b.running.as_ref().expect("running").broker
}

/// IncrementalAlterConfigs SET of one key of broker entity `name`; the error code.
async fn set_broker_config(c: &mut Client, name: &str, key: &str, value: &str) -> i16 {
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(s(name))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s(key))
                    .with_config_operation(SET)
                    .with_value(Some(s(value))),
            ]),
    ]);
    let r: IncrementalAlterConfigsResponse = c.call(ApiKey::IncrementalAlterConfigs, 1, &req).await;
    r.responses[0].error_code
}

/// Applies the topic (partitions 0 and 1, replicas 1 and 2, broker 1 leading at `epoch` with
/// `isr`) with `leader_list` as its leader throttled-replica list.
fn apply(b: &TestBroker, epoch: i32, isr: &[i32], leader_list: &str) {
    apply_with(b, epoch, isr, &[(LEADER_LIST, leader_list)]);
}

/// Applies the topic (as [`apply`]) with these config overrides.
fn apply_with(b: &TestBroker, epoch: i32, isr: &[i32], configs: &[(&str, &str)]) {
    let partition = |p| PartitionState {
        partition: p,
        replicas: vec![1, 2],
        leader: 1,
        leader_epoch: epoch,
        isr: isr.to_vec(),
        controller_epoch: 1,
        state_version: epoch,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    };
    let topic = TopicMetadata {
        name: TOPIC.into(),
        id: uuid::Uuid::new_v4(),
        partitions: vec![partition(0), partition(1)],
        configs: configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let broker = broker_of(b);
    broker
        .replicas
        .apply_topic(&topic, &broker.config.current());
}

/// Produces three records to `partition`.
async fn produce(c: &mut Client, partition: i32) {
    let req = produce_request(
        TOPIC,
        partition,
        batch(&["a", "b", "c"], Compression::None),
        5000,
    );
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
}

/// A Fetch v12 of partitions 0 and 1 from offset 0 by `replica_id` (-1: a consumer); per
/// partition, its error code and the bytes of records answered.
async fn fetch(c: &mut Client, replica_id: i32, epoch: i32) -> Vec<(i16, usize)> {
    let partition = |p| {
        fetch_request::FetchPartition::default()
            .with_partition(p)
            .with_current_leader_epoch(epoch)
            .with_fetch_offset(0)
            .with_partition_max_bytes(1 << 20)
    };
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(s(TOPIC)))
            .with_partitions(vec![partition(0), partition(1)])]);
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &req).await;
    let mut got: Vec<(i32, i16, usize)> = r
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            let bytes = p.records.as_ref().map_or(0, |r| r.len());
            (p.partition_index, p.error_code, bytes)
        })
        .collect();
    got.sort_unstable();
    got.into_iter().map(|(_, e, b)| (e, b)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_throttle_holds_back_named_partitions_from_out_of_sync_followers() {
    let b = TestBroker::start(&["broker.id=1", "replication.quota.window.size.seconds=10"]).await;
    let mut c = b.client().await;
    assert_eq!(
        set_broker_config(&mut c, "1", "leader.replication.throttled.rate", "1").await,
        0
    );
    let rates = broker_of(&b).replicas.throttled_rates();
    assert_eq!((rates.leader, rates.follower), (1, i64::MAX));
    // Partition 0 is throttled on this leader (broker 1); follower 2 is not in the ISR.
    apply(&b, 1, &[1], "0:1");
    produce(&mut c, 0).await;
    produce(&mut c, 1).await;

    // Nothing recorded yet: the first follower fetch gets everything, and exceeds the quota.
    let first = fetch(&mut c, 2, 1).await;
    assert!(first.iter().all(|&(e, n)| e == 0 && n > 0), "{first:?}");
    // Over quota: the named partition is answered without records, and without an error.
    let second = fetch(&mut c, 2, 1).await;
    assert_eq!(second[0], (0, 0), "throttled partition");
    assert_eq!(second[1], first[1], "partition 1 is not named");
    // Consumers are never throttled.
    assert_eq!(fetch(&mut c, -1, 1).await, first);

    // A follower in the ISR is never throttled.
    apply(&b, 2, &[1, 2], "0:1");
    assert_eq!(fetch(&mut c, 2, 2).await, first);
    // A list naming another broker's replica does not throttle this leader.
    apply(&b, 3, &[1], "0:2");
    assert_eq!(fetch(&mut c, 2, 3).await, first);
    // `*` names every replica of the topic.
    apply(&b, 4, &[1], "*");
    assert_eq!(fetch(&mut c, 2, 4).await, vec![(0, 0), (0, 0)]);

    // A new rate takes effect at once: unlimited again.
    broker_of(&b)
        .replicas
        .set_throttled_rates(ThrottledRates::default());
    assert_eq!(fetch(&mut c, 2, 4).await, first);
}

/// The metadata store of the follower-side test: broker addresses, ISR writes accepted.
#[derive(Default)]
struct TestLink {
    endpoints: Mutex<HashMap<i32, SocketAddr>>,
}

#[async_trait::async_trait]
impl ClusterLink for TestLink {
    async fn write_isr(
        &self,
        _tp: &TopicPartition,
        state: &LeaderAndIsr,
    ) -> Result<i32, IsrWriteError> {
        Ok(state.state_version + 1)
    }

    fn broker_endpoint(&self, broker_id: i32) -> Option<(String, u16)> {
        let endpoints = self.endpoints.lock().unwrap();
        endpoints
            .get(&broker_id)
            .map(|a| (a.ip().to_string(), a.port()))
    }
}

/// The log end offset of `partition` on broker `b`.
fn log_end(b: &TestBroker, partition: i32) -> i64 {
    broker_of(b)
        .replicas
        .partition(TOPIC, partition)
        .map_or(-1, |p| p.log_end_offset())
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_throttle_leaves_named_out_of_sync_partitions_out_of_its_fetches() {
    let link = Arc::new(TestLink::default());
    let mut brokers = Vec::new();
    for id in [1, 2] {
        let b = TestBroker::start(&[
            &format!("broker.id={id}"),
            "replication.quota.window.size.seconds=10",
            // One batch per answer, so a follower catches up over several fetches (each record
            // of the test's produce requests is encoded as a batch of its own).
            "replica.fetch.max.bytes=1",
            "replica.fetch.backoff.ms=50",
            "replica.fetch.wait.max.ms=100",
        ])
        .await;
        link.endpoints.lock().unwrap().insert(id, b.addr());
        broker_of(&b).replicas.set_cluster_link(link.clone());
        brokers.push(b);
    }
    let (leader, follower) = (&brokers[0], &brokers[1]);
    let mut f = follower.client().await;
    assert_eq!(
        set_broker_config(&mut f, "2", "follower.replication.throttled.rate", "1").await,
        0
    );
    assert_eq!(broker_of(follower).replicas.throttled_rates().follower, 1);
    // Broker 2's replica of partition 0 is throttled; partition 1 is not.
    let mut c = leader.client().await;
    apply_with(leader, 1, &[1], &[(FOLLOWER_LIST, "0:2")]);
    for _ in 0..3 {
        produce(&mut c, 0).await;
    }
    produce(&mut c, 1).await;
    apply_with(follower, 1, &[1], &[(FOLLOWER_LIST, "0:2")]);

    // Partition 0's first answer exceeds the quota while the follower is still behind: no more
    // of it is fetched, while partition 1 goes on replicating.
    eventually("partition 1 replicated", || log_end(follower, 1) == 3).await;
    eventually("a first batch of partition 0", || log_end(follower, 0) > 0).await;
    let throttled_at = log_end(follower, 0);
    assert!(throttled_at < 9, "one answer holds one batch");
    produce(&mut c, 1).await;
    eventually("more of partition 1", || log_end(follower, 1) == 6).await;
    assert_eq!(
        log_end(follower, 0),
        throttled_at,
        "not fetched since its first batch"
    );

    // A new rate takes effect at once: unlimited again, the follower catches up.
    broker_of(follower)
        .replicas
        .set_throttled_rates(ThrottledRates::default());
    eventually("partition 0 caught up", || log_end(follower, 0) == 9).await;
}
