//! The ZooKeeper metadata backend and the controller against a real ZooKeeper, with three
//! brokers' metadata sessions in one process (no logs, no replication): leader election on
//! topic creation, failover when a broker's session ends, controller failover, controlled
//! shutdown, partition addition, deletion and producer ids.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/zookeeper.rs"]
mod zk_harness;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use odradek::cluster::zookeeper::{CreateMode, ZkClient, ZkCluster};
use odradek::cluster::{BrokerInfo, ClusterMetadata, Endpoint, NewTopic, TopicMetadata};
use odradek::config::{BrokerEntity, ClusterSettings};
use odradek::util::task::ShutdownTrigger;
use zk_harness::{bounded, start_server, ZkServer};

async fn eventually<F: FnMut() -> bool>(limit: Duration, mut check: F) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

fn settings() -> ClusterSettings {
    ClusterSettings {
        zookeeper_session_timeout_ms: 6000,
        zookeeper_connection_timeout_ms: 6000,
        unclean_leader_election_enable: false,
        auto_leader_rebalance_enable: true,
        leader_imbalance_check_interval_ms: 1000,
        leader_imbalance_per_broker_percentage: 10,
        controlled_shutdown_enable: true,
        controlled_shutdown_max_retries: 1,
        controlled_shutdown_retry_backoff_ms: 5000,
    }
}

/// One broker's metadata side: its session, watcher and controller loop.
struct Node {
    cluster: Arc<ZkCluster>,
    stop: ShutdownTrigger,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Node {
    async fn start(connect: &str, id: i32) -> Node {
        let me = BrokerInfo {
            id,
            endpoints: vec![Endpoint {
                listener: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9000 + id as u16,
            }],
            rack: None,
        };
        let protocols = BTreeMap::from([("PLAINTEXT".to_string(), "PLAINTEXT".to_string())]);
        let cluster =
            ZkCluster::connect(connect, me, protocols, settings(), "test-cluster-id-000001")
                .await
                .expect("connect");
        cluster.register().await.expect("register");
        let stop = ShutdownTrigger::new();
        let tasks = vec![
            cluster.spawn_watcher(stop.subscribe()),
            cluster.spawn_controller(stop.subscribe()),
        ];
        Node {
            cluster,
            stop,
            tasks,
        }
    }

    /// Stops the loops and closes the session, as a broker that exits.
    async fn stop(self) {
        self.stop.trigger();
        for t in self.tasks {
            let _ = t.await;
        }
        self.cluster.close_session().await;
    }
}

async fn three_nodes(zk: &ZkServer) -> Vec<Node> {
    let connect = zk.connect_string_with_chroot("/kafka");
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(Node::start(&connect, id).await);
    }
    for n in &nodes {
        assert!(
            eventually(Duration::from_secs(10), || n.cluster.live_brokers().len()
                == 3)
            .await,
            "broker {} does not see 3 brokers",
            n.cluster.broker_id()
        );
    }
    nodes
}

fn spec(name: &str, partitions: i32, rf: i16) -> NewTopic {
    NewTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        assignments: None,
        configs: Default::default(),
    }
}

fn all_led(t: &TopicMetadata) -> bool {
    t.partitions.iter().all(|p| p.leader >= 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_creation_elects_leaders_seen_by_every_broker() {
    let zk = start_server().await;
    bounded(60, async {
        let nodes = three_nodes(&zk).await;
        let topic = nodes[1]
            .cluster
            .create_topic(spec("events", 5, 3), false)
            .await
            .expect("create");
        assert_eq!(topic.partitions.len(), 5);
        assert!(
            all_led(&topic),
            "create returns once leaders are elected: {topic:?}"
        );
        let leaders: BTreeSet<i32> = topic.partitions.iter().map(|p| p.leader).collect();
        assert_eq!(leaders.len(), 3, "leaders spread over the brokers");
        for p in &topic.partitions {
            assert_eq!(p.isr.len(), 3);
            assert_eq!(p.leader, p.replicas[0], "the preferred replica leads");
        }
        for n in &nodes {
            assert!(
                eventually(Duration::from_secs(5), || n
                    .cluster
                    .topic("events")
                    .is_some_and(|t| t.partitions == topic.partitions))
                .await
            );
        }
        let controllers: BTreeSet<i32> = nodes.iter().map(|n| n.cluster.controller_id()).collect();
        assert_eq!(controllers.len(), 1, "one controller seen by all");
        assert!(matches!(
            nodes[0]
                .cluster
                .create_topic(spec("events", 1, 1), false)
                .await,
            Err(odradek::cluster::ClusterError::TopicAlreadyExists(_))
        ));
        assert!(matches!(
            nodes[0]
                .cluster
                .create_topic(spec("big", 1, 4), false)
                .await,
            Err(odradek::cluster::ClusterError::InvalidReplicationFactor(_))
        ));
        for n in nodes {
            n.stop().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_broker_loses_leadership_and_isr_membership_and_the_controller_fails_over() {
    let zk = start_server().await;
    bounded(90, async {
        let mut nodes = three_nodes(&zk).await;
        nodes[0]
            .cluster
            .create_topic(spec("t", 6, 3), false)
            .await
            .expect("create");
        let controller = nodes[0].cluster.controller_id();
        let victim_index = nodes
            .iter()
            .position(|n| n.cluster.broker_id() == controller)
            .expect("controller is one of ours");
        let victim = nodes.remove(victim_index);
        let victim_id = victim.cluster.broker_id();
        victim.stop().await;
        let observer = &nodes[0].cluster;
        assert!(
            eventually(Duration::from_secs(15), || {
                let Some(t) = observer.topic("t") else {
                    return false;
                };
                observer.controller_id() >= 0
                    && observer.controller_id() != victim_id
                    && t.partitions.iter().all(|p| {
                        p.leader >= 0 && p.leader != victim_id && !p.isr.contains(&victim_id)
                    })
            })
            .await,
            "new controller, leaders and ISRs without broker {victim_id}: {:?}",
            observer.topic("t")
        );
        // The new controller still creates topics.
        let t2 = observer
            .create_topic(spec("after", 2, 2), false)
            .await
            .expect("create");
        assert!(all_led(&t2));
        for n in nodes {
            n.stop().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controlled_shutdown_hands_leadership_over_and_a_returning_broker_outside_the_isr_leads_nothing(
) {
    let zk = start_server().await;
    bounded(90, async {
        let mut nodes = three_nodes(&zk).await;
        let connect = zk.connect_string_with_chroot("/kafka");
        nodes[0]
            .cluster
            .create_topic(spec("t", 6, 3), false)
            .await
            .expect("create");
        let leaving = nodes.remove(2);
        let id = leaving.cluster.broker_id();
        leaving.cluster.controlled_shutdown().await;
        let view = nodes[0].cluster.clone();
        assert!(
            eventually(Duration::from_secs(5), || view
                .topic("t")
                .is_some_and(|t| t.partitions.iter().all(|p| p.leader != id)))
            .await,
            "broker {id} still leads after controlled shutdown: {:?}",
            view.topic("t")
        );
        leaving.stop().await;
        // Back again: not in any ISR (nothing replicates here), so nothing moves to it.
        let back = Node::start(&connect, id).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let t = view.topic("t").expect("topic");
        assert!(t.partitions.iter().all(|p| p.leader != id));
        assert!(t.partitions.iter().all(|p| !p.isr.contains(&id)));
        back.stop().await;
        for n in nodes {
            n.stop().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_added_topics_deleted_and_producer_ids_unique() {
    let zk = start_server().await;
    bounded(60, async {
        let nodes = three_nodes(&zk).await;
        let c = &nodes[0].cluster;
        c.create_topic(spec("grow", 2, 2), false)
            .await
            .expect("create");
        let grown = c
            .create_partitions("grow", 5, None, false)
            .await
            .expect("grow");
        assert_eq!(grown.partitions.len(), 5);
        assert!(all_led(&grown), "{grown:?}");
        assert!(matches!(
            c.create_partitions("grow", 3, None, false).await,
            Err(odradek::cluster::ClusterError::InvalidPartitions(_))
        ));
        c.delete_topic("grow").await.expect("delete");
        for n in &nodes {
            assert!(eventually(Duration::from_secs(5), || n.cluster.topic("grow").is_none()).await);
        }
        let mut ids = BTreeSet::new();
        for _ in 0..5 {
            for n in &nodes {
                assert!(ids.insert(n.cluster.allocate_producer_id().await.expect("pid")));
            }
        }
        for n in nodes {
            n.stop().await;
        }
    })
    .await;
}

fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_configs_reach_every_broker_also_when_written_by_an_old_tool() {
    let zk = start_server().await;
    bounded(60, async {
        let nodes = three_nodes(&zk).await;
        nodes[0]
            .cluster
            .create_topic(spec("events", 1, 3), false)
            .await
            .expect("create");
        let retention = configs(&[("retention.ms", "1000")]);
        nodes[1]
            .cluster
            .set_topic_configs("events", retention.clone())
            .await
            .unwrap();
        let defaults = configs(&[("log.retention.ms", "5000")]);
        nodes[2]
            .cluster
            .set_broker_configs(BrokerEntity::Default, defaults.clone())
            .await
            .unwrap();
        let own = configs(&[("num.io.threads", "4")]);
        nodes[1]
            .cluster
            .set_broker_configs(BrokerEntity::Broker(2), own.clone())
            .await
            .unwrap();
        for n in &nodes {
            let id = n.cluster.broker_id();
            assert!(
                eventually(Duration::from_secs(10), || {
                    let b = n.cluster.broker_configs();
                    n.cluster
                        .topic("events")
                        .is_some_and(|t| t.configs == retention)
                        && b.default == defaults
                        && (b.broker == own) == (id == 2)
                })
                .await,
                "broker {id}: {:?}",
                n.cluster.broker_configs()
            );
        }
        assert!(matches!(
            nodes[0]
                .cluster
                .set_topic_configs("nope", BTreeMap::new())
                .await,
            Err(odradek::cluster::ClusterError::UnknownTopic(_))
        ));

        // A ZooKeeper-era tool: the config znode, then a version-1 notification.
        let tool = ZkClient::connect(
            &zk.connect_string_with_chroot("/kafka"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        tool.set(
            "/config/topics/events",
            br#"{"version":1,"config":{"cleanup.policy":"compact"}}"#,
            None,
        )
        .await
        .unwrap();
        tool.create(
            "/config/changes/config_change_",
            br#"{"version":1,"entity_type":"topics","entity_name":"events"}"#,
            CreateMode::PersistentSequential,
        )
        .await
        .unwrap();
        let compact = configs(&[("cleanup.policy", "compact")]);
        for n in &nodes {
            assert!(
                eventually(Duration::from_secs(10), || n
                    .cluster
                    .topic("events")
                    .is_some_and(|t| t.configs == compact))
                .await,
                "broker {} missed the tool's change",
                n.cluster.broker_id()
            );
        }

        // A restarted broker reads every entity at start.
        let mut nodes = nodes;
        let last = nodes.pop().unwrap();
        last.stop().await;
        let back = Node::start(&zk.connect_string_with_chroot("/kafka"), 3).await;
        let b = back.cluster.broker_configs();
        assert_eq!(b.default, defaults);
        assert!(b.broker.is_empty());
        assert_eq!(back.cluster.topic("events").unwrap().configs, compact);
        back.stop().await;
        for n in nodes {
            n.stop().await;
        }
    })
    .await;
}
