//! Replication between in-process brokers: partition states are applied by hand (as the cluster
//! layer would after reading them from ZooKeeper), ISR writes go to an in-memory "znode".

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{batch, decode_records, Client, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use odradek::log::{Codec, CompressionType, LogConfig, TopicPartition};
use odradek::replica::{
    ClusterLink, DeleteRecordsError, DeleteRecordsOutcome, IsrWriteError, LeaderAndIsr, Partition,
    RoleChange,
};

const TOPIC: &str = "replicated";
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const NOT_ENOUGH_REPLICAS: i16 = 19;
const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;

/// The metadata store of the test: one state "znode" per partition and the broker addresses.
#[derive(Default)]
struct TestLink {
    endpoints: Mutex<HashMap<i32, SocketAddr>>,
    states: Mutex<HashMap<TopicPartition, LeaderAndIsr>>,
    /// Every successful ISR write, in order.
    writes: Mutex<Vec<Vec<i32>>>,
}

#[async_trait::async_trait]
impl ClusterLink for TestLink {
    async fn write_isr(
        &self,
        tp: &TopicPartition,
        state: &LeaderAndIsr,
    ) -> Result<i32, IsrWriteError> {
        let mut states = self.states.lock().unwrap();
        let Some(current) = states.get_mut(tp) else {
            return Err(IsrWriteError::Unavailable("no such znode".into()));
        };
        if current.state_version != state.state_version
            || current.leader_epoch != state.leader_epoch
        {
            return Err(IsrWriteError::Conflict);
        }
        *current = LeaderAndIsr {
            state_version: state.state_version + 1,
            ..state.clone()
        };
        self.writes.lock().unwrap().push(state.isr.clone());
        Ok(current.state_version)
    }

    fn broker_endpoint(&self, broker_id: i32) -> Option<(String, u16)> {
        let endpoints = self.endpoints.lock().unwrap();
        endpoints
            .get(&broker_id)
            .map(|a| (a.ip().to_string(), a.port()))
    }
}

impl TestLink {
    fn isr(&self, tp: &TopicPartition) -> Vec<i32> {
        self.states.lock().unwrap()[tp].isr.clone()
    }
    fn writes(&self) -> Vec<Vec<i32>> {
        self.writes.lock().unwrap().clone()
    }
}

/// Brokers 1..=n sharing one `TestLink`.
struct Cluster {
    brokers: HashMap<i32, TestBroker>,
    link: Arc<TestLink>,
    tp: TopicPartition,
    min_isr: i32,
    /// The log config every broker applies, unless it has its own in `configs`.
    config: LogConfig,
    /// Per-broker log configs.
    configs: HashMap<i32, LogConfig>,
}

impl Cluster {
    async fn start(n: i32, min_isr: i32) -> Cluster {
        let link = Arc::new(TestLink::default());
        let mut brokers = HashMap::new();
        for id in 1..=n {
            let b = TestBroker::start(&[
                &format!("broker.id={id}"),
                "replica.lag.time.max.ms=1500",
                "replica.fetch.backoff.ms=50",
                "replica.fetch.wait.max.ms=100",
                "replica.socket.timeout.ms=5000",
            ])
            .await;
            link.endpoints.lock().unwrap().insert(id, b.addr());
            broker_of(&b).replicas.set_cluster_link(link.clone());
            brokers.insert(id, b);
        }
        Cluster {
            brokers,
            link,
            tp: TopicPartition::new(TOPIC, 0),
            min_isr,
            config: LogConfig::default(),
            configs: HashMap::new(),
        }
    }

    /// Writes a new state "znode" (as the controller would) and applies it on every live broker.
    fn elect(&self, leader: i32, epoch: i32, isr: &[i32], replicas: &[i32]) {
        let version = self
            .link
            .states
            .lock()
            .unwrap()
            .get(&self.tp)
            .map_or(0, |s| s.state_version + 1);
        let state = LeaderAndIsr {
            leader,
            leader_epoch: epoch,
            isr: isr.to_vec(),
            replicas: replicas.to_vec(),
            controller_epoch: 1,
            state_version: version,
        };
        self.link
            .states
            .lock()
            .unwrap()
            .insert(self.tp.clone(), state.clone());
        for id in replicas {
            if let Some(b) = self.brokers.get(id) {
                let change = broker_of(b)
                    .replicas
                    .apply_state(&self.tp, self.config(*id), self.min_isr, state.clone())
                    .expect("apply_state");
                let expected = if *id == leader {
                    RoleChange::BecameLeader
                } else {
                    RoleChange::BecameFollower
                };
                assert_eq!(change, expected, "broker {id}");
            }
        }
    }

    fn config(&self, id: i32) -> LogConfig {
        self.configs
            .get(&id)
            .cloned()
            .unwrap_or_else(|| self.config.clone())
    }

    fn partition(&self, id: i32) -> Arc<Partition> {
        broker_of(&self.brokers[&id])
            .replicas
            .partition(TOPIC, 0)
            .expect("hosted")
    }

    async fn client(&self, id: i32) -> Client {
        self.brokers[&id].client().await
    }

    /// Ends a broker as a crash would: fetchers stop, connections drop.
    async fn kill(&mut self, id: i32) {
        let mut b = self.brokers.remove(&id).expect("running broker");
        let running = b.running.take().expect("running");
        running.broker.replicas.shutdown().await;
        drop(running);
    }
}

fn broker_of(b: &TestBroker) -> &odradek::broker::Broker {
    &b.running.as_ref().expect("running").broker
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn produce(c: &mut Client, values: &[&str], acks: i16, timeout_ms: i32) -> (i16, i64) {
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(values, Compression::None))),
            ])]);
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// A consumer fetch (replica id -1) from offset 0: (error, high watermark, records).
async fn consume(c: &mut Client) -> (i16, i64, Bytes) {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(1 << 20)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &req).await;
    let p = &r.responses[0].partitions[0];
    (
        p.error_code,
        p.high_watermark,
        p.records.clone().unwrap_or_default(),
    )
}

fn values(records: Bytes) -> Vec<String> {
    decode_records(records)
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned())
        .collect()
}

fn log_bytes(p: &Partition) -> Bytes {
    p.read_local(p.log_start_offset(), 1 << 20, p.log_end_offset())
        .expect("read")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_replicate_join_the_isr_and_hold_the_high_watermark() {
    let c = Cluster::start(3, 1).await;
    c.elect(1, 1, &[1], &[1, 2, 3]);
    let mut producer = c.client(1).await;
    assert_eq!(produce(&mut producer, &["a", "b"], 1, 5000).await, (0, 0));
    // Both followers catch up and are added to the ISR through the link.
    eventually("ISR expands to all replicas", || {
        let mut isr = c.partition(1).isr();
        isr.sort();
        isr == vec![1, 2, 3]
    })
    .await;
    assert_eq!(c.link.isr(&c.tp).len(), 3);
    assert_eq!(c.link.writes().len(), 2, "one write per joining follower");
    eventually("followers copy the log", || {
        log_bytes(&c.partition(2)) == log_bytes(&c.partition(1))
            && log_bytes(&c.partition(3)) == log_bytes(&c.partition(1))
    })
    .await;
    eventually("followers learn the high watermark", || {
        c.partition(2).high_watermark() == 2 && c.partition(3).high_watermark() == 2
    })
    .await;

    // Follower 3 stops fetching: the leader's high watermark stays where 3 left it.
    broker_of(&c.brokers[&3])
        .replicas
        .stop_replica(&c.tp, false)
        .unwrap();
    assert_eq!(produce(&mut producer, &["c"], 1, 5000).await, (0, 2));
    eventually("follower 2 has the new record", || {
        c.partition(2).log_end_offset() == 3
    })
    .await;
    let leader = c.partition(1);
    assert_eq!(leader.log_end_offset(), 3);
    // (The ISR shrinks only after replica.lag.time.max.ms = 1.5 s; we are well within it.)
    assert!(leader.isr().contains(&3));
    assert_eq!(leader.high_watermark(), 2, "HW waits for ISR member 3");
    let mut consumer = c.client(1).await;
    let (err, hw, records) = consume(&mut consumer).await;
    assert_eq!(err, 0);
    assert_eq!(
        values(records).len() as i64,
        hw,
        "consumers read exactly what is below the high watermark"
    );
    // After replica.lag.time.max.ms the leader drops 3 from the ISR and the HW moves on.
    eventually("ISR shrinks to [1, 2]", || {
        let mut isr = leader.isr();
        isr.sort();
        isr == vec![1, 2]
    })
    .await;
    eventually("HW advances", || leader.high_watermark() == 3).await;
    let mut consumer = c.client(1).await;
    let (err, hw, records) = consume(&mut consumer).await;
    assert_eq!((err, hw), (0, 3));
    assert_eq!(values(records), vec!["a", "b", "c"]);

    // A follower serves neither produce nor consumers.
    let mut on_follower = c.client(2).await;
    assert_eq!(
        produce(&mut on_follower, &["x"], 1, 5000).await.0,
        NOT_LEADER_OR_FOLLOWER
    );
    assert_eq!(
        produce(&mut on_follower, &["x"], -1, 5000).await.0,
        NOT_LEADER_OR_FOLLOWER
    );
    assert_eq!(consume(&mut on_follower).await.0, NOT_LEADER_OR_FOLLOWER);
    assert_eq!(
        epoch_end(&mut on_follower, 1, 1).await.0,
        NOT_LEADER_OR_FOLLOWER
    );
}

/// A leader re-encodes produced batches for its topic's `compression.type`; a follower stores
/// them as the leader stored them (here its own config even says gzip).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_store_the_batches_the_leader_reencoded() {
    let mut c = Cluster::start(2, 1).await;
    let compressed = |codec| LogConfig {
        compression: CompressionType::Codec(codec),
        ..LogConfig::default()
    };
    c.configs.insert(1, compressed(Codec::Zstd));
    c.configs.insert(2, compressed(Codec::Gzip));
    c.elect(1, 1, &[1, 2], &[1, 2]);
    let mut producer = c.client(1).await;
    assert_eq!(
        produce(&mut producer, &["a", "b", "c"], -1, 5000).await,
        (0, 0)
    );
    eventually("the follower copies the log", || {
        c.partition(2).log_end_offset() == 3
    })
    .await;
    let stored = log_bytes(&c.partition(1));
    assert_eq!(log_bytes(&c.partition(2)), stored, "byte for byte");
    let mut pos = 0;
    while pos < stored.len() {
        assert_eq!(
            stored[pos + 22] & 0x07,
            4,
            "batch at {pos} stored with zstd"
        );
        pos += 12 + i32::from_be_bytes(stored[pos + 8..pos + 12].try_into().unwrap()) as usize;
    }
    assert_eq!(values(stored), ["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_needs_min_insync_replicas() {
    let mut c = Cluster::start(2, 2).await;
    c.elect(1, 1, &[1, 2], &[1, 2]);
    let mut producer = c.client(1).await;
    assert_eq!(produce(&mut producer, &["a"], -1, 10_000).await, (0, 0));
    assert_eq!(
        produce(&mut producer, &["b", "c"], -1, 10_000).await,
        (0, 1)
    );
    assert_eq!(c.partition(1).high_watermark(), 3);
    eventually("follower has everything", || {
        c.partition(2).log_end_offset() == 3
    })
    .await;

    c.kill(2).await;
    // The append succeeds but the ISR shrinks (after the lag time) before it is replicated.
    assert_eq!(
        produce(&mut producer, &["d"], -1, 10_000).await,
        (NOT_ENOUGH_REPLICAS_AFTER_APPEND, -1)
    );
    assert_eq!(c.link.isr(&c.tp), vec![1]);
    assert_eq!(c.partition(1).isr(), vec![1]);
    assert_eq!(
        produce(&mut producer, &["e"], -1, 10_000).await,
        (NOT_ENOUGH_REPLICAS, -1)
    );
    // acks=1 is unaffected.
    assert_eq!(produce(&mut producer, &["f"], 1, 10_000).await, (0, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_times_out_while_the_isr_lags() {
    let c = Cluster::start(2, 1).await;
    c.elect(1, 1, &[1, 2], &[1, 2]);
    let mut producer = c.client(1).await;
    assert_eq!(produce(&mut producer, &["a"], -1, 10_000).await, (0, 0));
    broker_of(&c.brokers[&2])
        .replicas
        .stop_replica(&c.tp, false)
        .unwrap();
    // Far below the lag time: the follower stays in the ISR and the request times out.
    let (err, _) = produce(&mut producer, &["b"], -1, 100).await;
    assert_eq!(err, 7, "REQUEST_TIMED_OUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn divergent_follower_truncates_after_leader_change() {
    let c = Cluster::start(2, 1).await;
    c.elect(1, 1, &[1, 2], &[1, 2]);
    let mut p1 = c.client(1).await;
    assert_eq!(produce(&mut p1, &["a", "b"], -1, 10_000).await, (0, 0));
    eventually("follower has a, b and knows they are committed", || {
        c.partition(2).log_end_offset() == 2 && c.partition(2).high_watermark() == 2
    })
    .await;
    // Broker 2 stops following; broker 1 writes a tail only it has.
    broker_of(&c.brokers[&2])
        .replicas
        .stop_replica(&c.tp, false)
        .unwrap();
    assert_eq!(
        produce(&mut p1, &["lost-1", "lost-2"], 1, 10_000).await,
        (0, 2)
    );
    assert_eq!(c.partition(1).log_end_offset(), 4);

    // Broker 2 (in the ISR) becomes leader at epoch 2; broker 1 follows.
    c.elect(2, 2, &[1, 2], &[1, 2]);
    assert_eq!(
        c.partition(2).high_watermark(),
        2,
        "the stopped replica's high watermark was kept"
    );
    let mut p2 = c.client(2).await;
    assert_eq!(produce(&mut p2, &["c"], 1, 10_000).await, (0, 2));
    eventually(
        "old leader truncated its tail and copied the new leader",
        || log_bytes(&c.partition(1)) == log_bytes(&c.partition(2)),
    )
    .await;
    let old = c.partition(1);
    assert_eq!(old.log_end_offset(), 3);
    assert_eq!(values(log_bytes(&old)), vec!["a", "b", "c"]);
    assert_eq!(old.epoch_entries(), vec![(1, 0), (2, 2)]);
    eventually("new leader HW", || c.partition(2).high_watermark() == 3).await;
    let (err, hw, records) = consume(&mut p2).await;
    assert_eq!((err, hw), (0, 3));
    assert_eq!(values(records), vec!["a", "b", "c"]);
    // The old leader refuses produce at its old epoch.
    assert_eq!(
        produce(&mut p1, &["x"], 1, 10_000).await.0,
        NOT_LEADER_OR_FOLLOWER
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_leader_refuses_produce_until_next_state() {
    let c = Cluster::start(1, 1).await;
    c.elect(1, 1, &[1], &[1]);
    let mut p = c.client(1).await;
    assert_eq!(produce(&mut p, &["a"], -1, 1000).await, (0, 0));
    broker_of(&c.brokers[&1]).replicas.fence_leaders();
    assert_eq!(
        produce(&mut p, &["b"], 1, 1000).await.0,
        NOT_LEADER_OR_FOLLOWER
    );
    // Reads still work.
    assert_eq!(consume(&mut p).await.1, 1);
    // Same epoch re-read from the store: leadership resumes.
    let state = c.link.states.lock().unwrap()[&c.tp].clone();
    broker_of(&c.brokers[&1])
        .replicas
        .apply_state(&c.tp, LogConfig::default(), 1, state)
        .unwrap();
    assert_eq!(produce(&mut p, &["b"], -1, 1000).await, (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_cut_off_from_the_store_writes_only_while_its_isr_fetches() {
    let c = Cluster::start(2, 1).await;
    c.elect(1, 1, &[1, 2], &[1, 2]);
    let mut p = c.client(1).await;
    assert_eq!(produce(&mut p, &["a"], -1, 10_000).await, (0, 0));
    let leader = &broker_of(&c.brokers[&1]).replicas;
    leader.metadata_unreachable(Duration::from_millis(1000));
    // ZooKeeper is not in the data path: with the follower fetching, acks=all goes on.
    assert_eq!(produce(&mut p, &["b"], -1, 10_000).await, (0, 1));
    broker_of(&c.brokers[&2])
        .replicas
        .stop_replica(&c.tp, false)
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (err, _) = produce(&mut p, &["c"], 1, 10_000).await;
        if err == NOT_LEADER_OR_FOLLOWER {
            break;
        }
        assert_eq!(err, 0);
        assert!(
            tokio::time::Instant::now() < deadline,
            "an isolated leader whose follower went silent still takes acks=1 writes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    leader.metadata_reachable();
    assert_eq!(produce(&mut p, &["d"], 1, 10_000).await.0, 0);
}

/// A follower fetch (Fetch v12 with a replica id) of partition 0 at `offset`.
async fn follower_fetch(
    c: &mut Client,
    replica_id: i32,
    epoch: i32,
    offset: i64,
) -> fetch_response::PartitionData {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_max_bytes(1 << 20)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(epoch)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let mut r: FetchResponse = c.call(ApiKey::Fetch, 12, &req).await;
    r.responses.remove(0).partitions.remove(0)
}

async fn epoch_end(c: &mut Client, current: i32, epoch: i32) -> (i16, i32, i64) {
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(current)
                        .with_leader_epoch(epoch),
                ]),
        ]);
    let r: OffsetForLeaderEpochResponse = c.call(ApiKey::OffsetForLeaderEpoch, 4, &req).await;
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_serves_followers_to_the_log_end_and_consumers_to_the_high_watermark() {
    let c = Cluster::start(2, 1).await;
    c.elect(1, 1, &[1, 2], &[1, 2]);
    // This test plays broker 2's fetcher by hand.
    broker_of(&c.brokers[&2])
        .replicas
        .stop_replica(&c.tp, false)
        .unwrap();
    let mut leader = c.client(1).await;
    assert_eq!(produce(&mut leader, &["a", "b"], 1, 5000).await, (0, 0));
    assert_eq!(
        c.partition(1).high_watermark(),
        0,
        "ISR member 2 has nothing"
    );
    assert_eq!(consume(&mut leader).await.2.len(), 0);

    assert_eq!(
        follower_fetch(&mut leader, 7, 1, 0).await.error_code,
        NOT_LEADER_OR_FOLLOWER,
        "not a replica"
    );
    assert_eq!(follower_fetch(&mut leader, 2, 0, 0).await.error_code, 74);
    assert_eq!(follower_fetch(&mut leader, 2, 2, 0).await.error_code, 75);
    let d = follower_fetch(&mut leader, 2, 1, 0).await;
    assert_eq!((d.error_code, d.high_watermark), (0, 0));
    assert_eq!(values(d.records.unwrap_or_default()), vec!["a", "b"]);
    let d = follower_fetch(&mut leader, 2, 1, 2).await;
    assert_eq!((d.error_code, d.high_watermark), (0, 2));
    assert_eq!(
        c.partition(1).follower_state(2).map(|f| f.log_end_offset),
        Some(2)
    );
    let (err, hw, records) = consume(&mut leader).await;
    assert_eq!((err, hw), (0, 2));
    assert_eq!(values(records), vec!["a", "b"]);

    // OffsetForLeaderEpoch: the leader answers from its epoch cache, a follower refuses.
    assert_eq!(epoch_end(&mut leader, 1, 1).await, (0, 1, 2));
    assert_eq!(epoch_end(&mut leader, -1, 0).await, (0, 0, 0));
    assert_eq!(epoch_end(&mut leader, 0, 1).await.0, 74);
    // A stopped replica is not hosted any more.
    let mut stopped = c.client(2).await;
    assert_eq!(
        consume(&mut stopped).await.0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_behind_the_leader_log_start_restarts_there() {
    let c = Cluster::start(2, 1).await;
    c.elect(1, 1, &[1], &[1]);
    // The leader's log starts at 100 (as after retention).
    broker_of(&c.brokers[&1])
        .replicas
        .logs()
        .get(&c.tp)
        .expect("log")
        .truncate_fully_and_start_at(100)
        .unwrap();
    let mut p = c.client(1).await;
    assert_eq!(produce(&mut p, &["a", "b"], 1, 5000).await, (0, 100));
    // Broker 2 joins with an empty log: its fetch at 0 is out of the leader's range.
    c.elect(1, 2, &[1], &[1, 2]);
    eventually("follower restarted at 100 and copied the leader", || {
        let f = c.partition(2);
        f.log_start_offset() == 100 && log_bytes(&f) == log_bytes(&c.partition(1))
    })
    .await;
    eventually("follower joins the ISR", || {
        c.partition(1).isr() == vec![1, 2]
    })
    .await;
    assert_eq!(produce(&mut p, &["c"], -1, 5000).await, (0, 102));
}

/// DeleteRecords of partition 0 below `offset` through broker `id`'s replica layer (this
/// harness's topic is not in the brokers' metadata; `tests/records.rs` covers the protocol).
async fn delete_records(
    c: &Cluster,
    id: i32,
    offset: i64,
    timeout_ms: u64,
) -> DeleteRecordsOutcome {
    broker_of(&c.brokers[&id])
        .replicas
        .delete_records(
            vec![(c.tp.clone(), offset)],
            Duration::from_millis(timeout_ms),
        )
        .await
        .remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_waits_for_every_live_replica_and_followers_delete_their_segments() {
    let mut c = Cluster::start(3, 1).await;
    // Small segments: a few one-record batches each.
    c.config = LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    };
    c.elect(1, 1, &[1, 2, 3], &[1, 2, 3]);
    let mut leader = c.client(1).await;
    for i in 0..30 {
        let (err, _) = produce(&mut leader, &[&format!("r{i}")], -1, 10_000).await;
        assert_eq!(err, 0);
    }
    let log_of = |id: i32| {
        broker_of(&c.brokers[&id])
            .replicas
            .logs()
            .get(&c.tp)
            .expect("log")
    };
    let segments = log_of(2).num_segments();
    assert!(segments > 5, "{segments} segments");

    // Answered only once both followers reported a log start of at least 20: by then each has
    // moved its own and checkpointed it.
    assert_eq!(delete_records(&c, 1, 20, 10_000).await.unwrap(), 20);
    for id in [2, 3] {
        let f = c.partition(id);
        assert_eq!(f.log_start_offset(), 20, "follower {id}");
        let starts = std::fs::read_to_string(
            c.brokers[&id]
                .dir
                .path()
                .join("log-start-offset-checkpoint"),
        )
        .unwrap();
        assert!(starts.contains(&format!("{TOPIC} 0 20")), "{starts}");
    }
    eventually(
        "followers delete the segments below their log start",
        || {
            [2, 3].iter().all(|id| {
                let f = log_of(*id);
                f.num_segments() < segments && f.segment_base_offsets()[1] > 20
            })
        },
    )
    .await;
    assert_eq!(
        consume(&mut c.client(2).await).await.0,
        NOT_LEADER_OR_FOLLOWER
    );

    // Follower 3 stops fetching but its broker is alive: the low watermark stays at 20.
    broker_of(&c.brokers[&3])
        .replicas
        .stop_replica(&c.tp, false)
        .unwrap();
    assert!(
        matches!(
            delete_records(&c, 1, 25, 300).await,
            Err(DeleteRecordsError::Timeout { low_watermark: 20 })
        ),
        "REQUEST_TIMED_OUT with the low watermark of the local deletion"
    );
    assert_eq!(c.partition(1).log_start_offset(), 25);
    // Once its broker is gone it no longer counts.
    c.link.endpoints.lock().unwrap().remove(&3);
    assert_eq!(delete_records(&c, 1, 25, 10_000).await.unwrap(), 25);
    assert_eq!(c.partition(2).log_start_offset(), 25);

    // Broker 2 takes over with the deleted records still deleted.
    c.elect(2, 2, &[1, 2], &[1, 2]);
    let mut new_leader = c.client(2).await;
    let (err, _, records) = consume(&mut new_leader).await;
    assert_eq!(err, 1, "OFFSET_OUT_OF_RANGE below the log start");
    assert!(records.is_empty());
    assert!(matches!(
        delete_records(&c, 1, 27, 10_000).await,
        Err(DeleteRecordsError::NotLeader)
    ));
    assert_eq!(delete_records(&c, 2, 27, 10_000).await.unwrap(), 27);
    eventually("the old leader follows the new leader's start", || {
        c.partition(1).log_start_offset() == 27
    })
    .await;
}
