//! The ZooKeeper data layer against a real ZooKeeper (Debian's `zookeeper` package): Kafka's
//! layout, ephemeral registration, controller election, fencing, producer-id blocks, chroot,
//! interop with what ZooKeeper-era Kafka tools write, and session expiry.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/zookeeper.rs"]
mod zk_harness;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use odradek::cluster::zookeeper::client::{EventType, SessionState};
use odradek::cluster::zookeeper::znodes::{
    kafka_uuid_to_string, BrokerRegistration, PartitionStateZnode, TopicAssignment,
};
use odradek::cluster::zookeeper::{
    paths, CreateMode, Election, Op, OpResult, StoreError, ZkClient, ZkError, ZkStore,
};
use uuid::Uuid;
use zk_harness::{bounded, start_server, CutProxy, ZkEnsemble};

const SESSION: Duration = Duration::from_secs(10);

async fn store(connect: &str) -> ZkStore {
    let client = ZkClient::connect(connect, SESSION).await.expect("connect");
    let store = ZkStore::new(client);
    store.ensure_layout().await.expect("layout");
    store
}

/// Polls `check` until it holds or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn registration(port: u16) -> BrokerRegistration {
    BrokerRegistration::plaintext("127.0.0.1", port, Some("r1".into()), 1_700_000_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_registration_is_visible_and_removed_when_the_session_closes() {
    let zk = start_server().await;
    bounded(30, async {
        let broker = store(&zk.connect_string()).await;
        let observer = store(&zk.connect_string()).await;
        let (before, watch) = observer
            .client()
            .children_and_watch(paths::BROKER_IDS)
            .await
            .unwrap();
        assert!(before.is_empty());

        let epoch = broker
            .register_broker(1, &registration(9092))
            .await
            .unwrap();
        assert!(epoch > 0, "broker epoch is the znode's czxid");
        let event = watch.changed().await;
        assert_eq!(event.path, paths::BROKER_IDS);

        let live = observer.live_brokers().await.unwrap();
        let reg = &live[&1];
        assert_eq!(reg.endpoints, vec!["PLAINTEXT://127.0.0.1:9092"]);
        assert_eq!(reg.version, 5);
        let info = reg.to_broker_info(1);
        assert_eq!(info.endpoints[0].port, 9092);
        assert_eq!(info.rack.as_deref(), Some("r1"));
        let stat = observer
            .client()
            .exists(&paths::broker(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stat.ephemeral_owner, broker.client().session_id());

        let client = broker.client().clone();
        drop(broker);
        client.close(Duration::from_secs(5)).await;
        assert!(
            eventually(Duration::from_secs(5), || async {
                observer.live_brokers().await.unwrap().is_empty()
            })
            .await,
            "registration must vanish with the session"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_broker_id_is_refused_naming_the_id() {
    let zk = start_server().await;
    bounded(30, async {
        let first = store(&zk.connect_string()).await;
        let second = store(&zk.connect_string()).await;
        first.register_broker(7, &registration(9092)).await.unwrap();
        // The same session registering again (a retried create) is fine.
        first.register_broker(7, &registration(9092)).await.unwrap();
        let err = second
            .register_broker(7, &registration(9093))
            .await
            .unwrap_err();
        match &err {
            StoreError::BrokerIdInUse { id, owner_session } => {
                assert_eq!(*id, 7);
                assert_eq!(*owner_session, first.client().session_id());
            }
            other => panic!("expected BrokerIdInUse, got {other:?}"),
        }
        assert!(err.to_string().contains("broker id 7"), "{err}");
        // The original registration is untouched.
        let live = second.live_brokers().await.unwrap();
        assert_eq!(live[&7].port, 9092);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_election_has_exactly_one_winner_and_bumps_the_epoch() {
    let zk = start_server().await;
    bounded(30, async {
        let a = store(&zk.connect_string()).await;
        let b = store(&zk.connect_string()).await;
        let (ra, rb) = tokio::join!(a.elect_controller(1), b.elect_controller(2));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let (winner, winner_id, loser, loser_id, lost) = match (&ra, &rb) {
            (Election::Won { .. }, Election::Lost { .. }) => (&a, 1, &b, 2, rb.clone()),
            (Election::Lost { .. }, Election::Won { .. }) => (&b, 2, &a, 1, ra.clone()),
            other => panic!("exactly one must win: {other:?}"),
        };
        let won = if winner_id == 1 {
            ra.clone()
        } else {
            rb.clone()
        };
        let Election::Won {
            epoch,
            epoch_zk_version,
        } = won
        else {
            unreachable!()
        };
        assert_eq!(epoch, 1);
        assert_eq!(
            lost,
            Election::Lost {
                controller: Some(winner_id)
            }
        );
        assert_eq!(loser.get_controller().await.unwrap(), Some(winner_id));
        assert_eq!(
            loser.controller_epoch().await.unwrap(),
            Some((1, epoch_zk_version))
        );
        // Trying again while the winner lives still loses.
        assert_eq!(
            loser.elect_controller(loser_id).await.unwrap(),
            Election::Lost {
                controller: Some(winner_id)
            }
        );

        // The winner asking again (a retried election) keeps its epoch; nothing is bumped.
        assert_eq!(
            winner.elect_controller(winner_id).await.unwrap(),
            Election::Won {
                epoch: 1,
                epoch_zk_version
            }
        );

        // The controller goes away: the other broker takes over with the next epoch.
        let (_, watch) = loser
            .client()
            .exists_and_watch(paths::CONTROLLER)
            .await
            .unwrap();
        winner.resign_controller().await.unwrap();
        watch.changed().await;
        match loser.elect_controller(loser_id).await.unwrap() {
            Election::Won {
                epoch,
                epoch_zk_version: v,
            } => {
                assert_eq!(epoch, 2);
                assert_eq!(v, epoch_zk_version + 1);
            }
            other => panic!("expected to win after resignation: {other:?}"),
        }
        assert_eq!(winner.get_controller().await.unwrap(), Some(loser_id));
        let (data, _) = winner.client().get(paths::CONTROLLER).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(json["version"], 2);
        assert_eq!(json["kraftControllerEpoch"], -1);
        assert!(json["timestamp"].is_string());
        let (data, _) = winner.client().get(paths::CONTROLLER_EPOCH).await.unwrap();
        assert_eq!(data, b"2");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_partition_state_update_fences_a_stale_writer() {
    let zk = start_server().await;
    bounded(30, async {
        let a = store(&zk.connect_string()).await;
        let b = store(&zk.connect_string()).await;
        let id = Uuid::new_v4();
        a.create_topic(
            "orders",
            &TopicAssignment::new(id, &[vec![1, 2], vec![2, 1]]),
            &BTreeMap::new(),
        )
        .await
        .unwrap();
        let v0 = a
            .create_partition_state("orders", 0, &PartitionStateZnode::new(1, 0, vec![1, 2], 1))
            .await
            .unwrap();
        let (state, seen_by_b) = b.get_partition_state("orders", 0).await.unwrap().unwrap();
        assert_eq!(seen_by_b, v0);
        assert_eq!(state.isr, vec![1, 2]);

        let (_, _, watch) = b
            .client()
            .get_and_watch(&paths::partition_state("orders", 0))
            .await
            .unwrap();
        // A shrinks the ISR at the version it read.
        let v1 = a
            .update_partition_state("orders", 0, &PartitionStateZnode::new(1, 1, vec![1], 1), v0)
            .await
            .unwrap();
        assert_eq!(v1, v0 + 1);
        assert_eq!(watch.changed().await.kind, EventType::NodeDataChanged);
        // B, still at the old version, is fenced.
        let err = b
            .update_partition_state("orders", 0, &PartitionStateZnode::new(2, 1, vec![2], 1), v0)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Zk(ZkError::BadVersion)),
            "{err:?}"
        );
        let (state, v) = b.get_partition_state("orders", 0).await.unwrap().unwrap();
        assert_eq!(
            (state.leader, state.leader_epoch, state.isr, v),
            (1, 1, vec![1], v1)
        );
        // Partition states of an unknown topic are refused.
        assert!(matches!(
            a.create_partition_state("nope", 0, &PartitionStateZnode::new(1, 0, vec![1], 1))
                .await,
            Err(StoreError::UnknownTopic(_))
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_id_blocks_from_concurrent_allocators_never_overlap() {
    let zk = start_server().await;
    bounded(40, async {
        let a = store(&zk.connect_string()).await;
        let b = store(&zk.connect_string()).await;
        let alloc = |s: ZkStore, broker: i32| async move {
            let mut blocks = Vec::new();
            for _ in 0..25 {
                blocks.push(s.allocate_producer_id_block(broker).await.unwrap());
            }
            blocks
        };
        let (ba, bb) = tokio::join!(
            tokio::spawn(alloc(a.clone(), 1)),
            tokio::spawn(alloc(b.clone(), 2))
        );
        let mut all: Vec<_> = ba.unwrap().into_iter().chain(bb.unwrap()).collect();
        all.sort_by_key(|blk| blk.block_start);
        assert_eq!(all.len(), 50);
        for (i, blk) in all.iter().enumerate() {
            assert_eq!(blk.block_start, i as i64 * 1000, "blocks are contiguous");
            assert_eq!(blk.block_end, blk.block_start + 999);
        }
        let (data, _) = a
            .client()
            .get(paths::LATEST_PRODUCER_ID_BLOCK)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(json["block_start"], "49000");
        assert_eq!(json["block_end"], "49999");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chroot_is_created_and_isolates_the_layout() {
    let zk = start_server().await;
    bounded(30, async {
        let chrooted = store(&zk.connect_string_with_chroot("/kafka/cluster-a")).await;
        chrooted
            .register_broker(3, &registration(9094))
            .await
            .unwrap();
        let id = chrooted.get_or_create_cluster_id("abc").await.unwrap();
        assert_eq!(id, "abc");
        let root = ZkClient::connect(&zk.connect_string(), SESSION)
            .await
            .unwrap();
        assert!(root
            .exists("/kafka/cluster-a/brokers/ids/3")
            .await
            .unwrap()
            .is_some());
        assert!(root.exists("/brokers").await.unwrap().is_none());
        let (data, _) = root.get("/kafka/cluster-a/cluster/id").await.unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&data).unwrap(),
            serde_json::json!({"version":"1","id":"abc"})
        );
        // Another chroot on the same ensemble sees nothing of the first.
        let other = store(&zk.connect_string_with_chroot("/kafka/cluster-b")).await;
        assert!(other.live_brokers().await.unwrap().is_empty());
        assert_eq!(other.get_or_create_cluster_id("xyz").await.unwrap(), "xyz");
        assert_eq!(
            chrooted.get_or_create_cluster_id("zzz").await.unwrap(),
            "abc"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_written_like_kafka_topics_zookeeper_is_readable_and_ours_readable_by_zkcli() {
    let zk = start_server().await;
    bounded(50, async {
        let s = store(&zk.connect_string()).await;
        // What `kafka-topics --zookeeper ... --create` (Kafka <= 2.8) writes: the config znode
        // first, then the assignment (no topic id, no partition state: the controller adds it).
        let connect = zk.connect_string();
        let cli = move |args: Vec<String>| {
            let connect = connect.clone();
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                zk_harness::zkcli(&connect, &args)
            })
        };
        let (ok, out) = cli(vec![
            "create".into(),
            "/config/topics/legacy".into(),
            r#"{"version":1,"config":{"retention.ms":"3600000"}}"#.into(),
        ])
        .await
        .unwrap();
        assert!(ok && out.contains("Created"), "{out}");
        let (ok, out) = cli(vec![
            "create".into(),
            "/brokers/topics/legacy".into(),
            r#"{"version":1,"partitions":{"2":[3,1],"1":[2,3],"0":[1,2]}}"#.into(),
        ])
        .await
        .unwrap();
        assert!(ok && out.contains("Created"), "{out}");

        assert_eq!(s.topics().await.unwrap(), vec!["legacy"]);
        let (assignment, _) = s.get_topic("legacy").await.unwrap().unwrap();
        assert_eq!(assignment.topic_id, None);
        assert_eq!(
            assignment.replica_lists().unwrap(),
            vec![vec![1, 2], vec![2, 3], vec![3, 1]]
        );
        assert_eq!(
            s.topic_config("legacy").await.unwrap()["retention.ms"],
            "3600000"
        );
        assert!(s.get_partition_state("legacy", 0).await.unwrap().is_none());

        // And the other way round: what the store writes, zkCli prints as Kafka's JSON.
        let id = Uuid::new_v4();
        s.create_topic(
            "fresh",
            &TopicAssignment::new(id, &[vec![1]]),
            &BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
        )
        .await
        .unwrap();
        let (ok, out) = cli(vec!["get".into(), "/brokers/topics/fresh".into()])
            .await
            .unwrap();
        assert!(ok, "{out}");
        let line = out
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON in zkCli output: {out}"));
        let json: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "version": 3,
                "partitions": {"0": [1]},
                "adding_replicas": {},
                "removing_replicas": {},
                "topic_id": kafka_uuid_to_string(id),
            })
        );
        assert!(matches!(
            s.create_topic(
                "fresh",
                &TopicAssignment::new(id, &[vec![1]]),
                &BTreeMap::new()
            )
            .await,
            Err(StoreError::TopicExists(_))
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_config_change_and_deletion_flow() {
    let zk = start_server().await;
    bounded(30, async {
        let s = store(&zk.connect_string()).await;
        s.create_topic(
            "t",
            &TopicAssignment::new(Uuid::new_v4(), &[vec![1], vec![1]]),
            &BTreeMap::new(),
        )
        .await
        .unwrap();
        s.create_partition_state("t", 0, &PartitionStateZnode::new(1, 0, vec![1], 1))
            .await
            .unwrap();
        s.create_partition_state("t", 1, &PartitionStateZnode::new(1, 0, vec![1], 1))
            .await
            .unwrap();

        let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        s.set_topic_config("t", &configs).await.unwrap();
        assert_eq!(s.topic_config("t").await.unwrap(), configs);
        let changes = s.config_changes().await.unwrap();
        assert_eq!(changes.len(), 1);
        assert!(changes[0].0.starts_with("config_change_"));
        assert_eq!(changes[0].1.entity_path, "topics/t");
        assert_eq!(changes[0].1.version, 2);

        s.mark_topic_for_deletion("t").await.unwrap();
        s.mark_topic_for_deletion("t").await.unwrap();
        assert_eq!(s.pending_deletions().await.unwrap(), vec!["t"]);
        let (marker, _) = s.client().get(&paths::delete_topic("t")).await.unwrap();
        assert!(marker.is_empty());
        s.delete_topic_znodes("t").await.unwrap();
        assert!(s.topics().await.unwrap().is_empty());
        assert!(s.pending_deletions().await.unwrap().is_empty());
        assert!(s
            .client()
            .exists(&paths::topic_config("t"))
            .await
            .unwrap()
            .is_none());
        assert!(matches!(
            s.mark_topic_for_deletion("t").await,
            Err(StoreError::UnknownTopic(_))
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_config_entities_in_kafkas_format() {
    let zk = start_server().await;
    bounded(30, async {
        let s = store(&zk.connect_string()).await;
        assert!(s
            .broker_config(paths::DEFAULT_ENTITY)
            .await
            .unwrap()
            .is_empty());
        let defaults = BTreeMap::from([("log.retention.ms".to_string(), "60000".to_string())]);
        s.set_broker_config(paths::DEFAULT_ENTITY, &defaults)
            .await
            .unwrap();
        let own = BTreeMap::from([("num.io.threads".to_string(), "4".to_string())]);
        s.set_broker_config("1", &own).await.unwrap();
        // What Kafka's AdminZkClient writes, and what its brokers read back.
        let (raw, _) = s.client().get("/config/brokers/<default>").await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version": 1, "config": {"log.retention.ms": "60000"}})
        );
        assert_eq!(s.broker_config("1").await.unwrap(), own);
        let changes = s.config_changes().await.unwrap();
        let paths_seen: Vec<&str> = changes
            .iter()
            .map(|(_, n)| n.entity_path.as_str())
            .collect();
        assert_eq!(paths_seen, vec!["brokers/<default>", "brokers/1"]);
        let (raw, _) = s
            .client()
            .get(&format!("/config/changes/{}", changes[0].0))
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version": 2, "entity_path": "brokers/<default>"})
        );
        // Replacing with an empty set leaves Kafka's empty config object.
        s.set_broker_config("1", &BTreeMap::new()).await.unwrap();
        let (raw, _) = s.client().get("/config/brokers/1").await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(json, serde_json::json!({"version": 1, "config": {}}));
        // Expired notifications are purged; younger ones stay.
        let names: Vec<String> = changes.iter().map(|(n, _)| n.clone()).collect();
        s.purge_config_changes(&names, 0).await.unwrap();
        assert_eq!(s.config_changes().await.unwrap().len(), 3);
        s.purge_config_changes(&names, i64::MAX).await.unwrap();
        assert_eq!(s.config_changes().await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_op_transactions_are_all_or_nothing() {
    let zk = start_server().await;
    bounded(30, async {
        let c = ZkClient::connect(&zk.connect_string(), SESSION)
            .await
            .unwrap();
        c.create("/x", b"1", CreateMode::Persistent).await.unwrap();
        let err = c
            .multi(&[
                Op::Create {
                    path: "/y".into(),
                    data: vec![],
                    mode: CreateMode::Persistent,
                },
                Op::SetData {
                    path: "/x".into(),
                    data: b"2".to_vec(),
                    version: 5,
                },
            ])
            .await
            .unwrap_err();
        assert_eq!(err, ZkError::BadVersion);
        assert!(c.exists("/y").await.unwrap().is_none(), "nothing applied");
        let results = c
            .multi(&[
                Op::Check {
                    path: "/x".into(),
                    version: 0,
                },
                Op::Create {
                    path: "/seq-".into(),
                    data: vec![],
                    mode: CreateMode::PersistentSequential,
                },
                Op::Delete {
                    path: "/x".into(),
                    version: 0,
                },
            ])
            .await
            .unwrap();
        assert_eq!(results.len(), 3);
        assert!(c.exists("/x").await.unwrap().is_none());
        let (created, _) = c
            .create("/seq-", b"", CreateMode::PersistentSequential)
            .await
            .unwrap();
        let OpResult::Created { path: in_multi, .. } = &results[1] else {
            panic!("expected a create result: {results:?}");
        };
        assert!(in_multi.starts_with("/seq-") && in_multi.len() == "/seq-".len() + 10);
        assert!(
            created.len() == in_multi.len() && created > *in_multi,
            "{created} {in_multi}"
        );
        assert_eq!(
            c.create("/a/b", b"", CreateMode::Persistent)
                .await
                .unwrap_err(),
            ZkError::NoNode
        );
        assert_eq!(
            c.create(&created, b"", CreateMode::Persistent)
                .await
                .unwrap_err(),
            ZkError::NodeExists
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_is_detected_and_a_new_client_registers_again() {
    let zk = start_server().await;
    bounded(40, async {
        let proxy = CutProxy::start(zk.port).await;
        let short = Duration::from_secs(2);
        let client = ZkClient::connect(&proxy.connect_string(), short)
            .await
            .unwrap();
        let broker = ZkStore::new(client.clone());
        broker.ensure_layout().await.unwrap();
        broker
            .register_broker(4, &registration(9092))
            .await
            .unwrap();
        let mut events = client.session_events();
        let observer = store(&zk.connect_string()).await;
        assert!(observer.live_brokers().await.unwrap().contains_key(&4));

        // The broker drops off the network: ZooKeeper expires the session and the
        // registration goes away.
        proxy.cut();
        assert!(
            eventually(Duration::from_secs(10), || async {
                !observer.live_brokers().await.unwrap().contains_key(&4)
            })
            .await,
            "ZooKeeper must expire the cut-off session"
        );
        // Back on the network, the client learns its session is gone for good.
        proxy.restore();
        let state = tokio::time::timeout(Duration::from_secs(15), events.session_lost())
            .await
            .expect("session loss reported");
        assert_eq!(state, SessionState::Expired);
        let err = broker.live_brokers().await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Zk(e) if e.is_session_lost()),
            "{err:?}"
        );

        // The owner builds a new client and re-registers its ephemerals.
        let fresh = store(&proxy.connect_string()).await;
        fresh.register_broker(4, &registration(9092)).await.unwrap();
        assert!(observer.live_brokers().await.unwrap().contains_key(&4));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_restart_keeps_data_and_sessions() {
    let mut zk = start_server().await;
    bounded(50, async {
        let s = store(&zk.connect_string()).await;
        s.register_broker(1, &registration(9092)).await.unwrap();
        let cluster = s.get_or_create_cluster_id("restart-test").await.unwrap();
        let session = s.client().session_id();

        tokio::task::block_in_place(|| zk.stop());
        let err = tokio::time::timeout(Duration::from_secs(8), s.topics())
            .await
            .map(|r| r.unwrap_err());
        if let Ok(e) = err {
            assert!(
                matches!(e, StoreError::Zk(ZkError::ConnectionLoss)),
                "{e:?}"
            );
        }
        tokio::task::block_in_place(|| zk.restart());

        // The client reconnects within its session timeout: same session, ephemerals kept.
        assert!(
            eventually(Duration::from_secs(15), || async {
                s.live_brokers().await.is_ok_and(|b| b.contains_key(&1))
            })
            .await,
            "client must reconnect to the restarted server"
        );
        assert_eq!(s.client().session_id(), session);
        assert_eq!(s.get_or_create_cluster_id("other").await.unwrap(), cluster);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_ensemble_survives_losing_its_leader() {
    assert!(zk_harness::zookeeper_available());
    let mut ensemble = tokio::task::spawn_blocking(|| ZkEnsemble::start(3))
        .await
        .unwrap();
    bounded(80, async {
        // A session long enough to outlast the two remaining servers' election on a loaded
        // machine (the whole suite runs in parallel): the failover, not the timeout, is tested.
        let client = ZkClient::connect(&ensemble.connect_string(), Duration::from_secs(30))
            .await
            .expect("connect");
        let s = ZkStore::new(client);
        s.ensure_layout().await.expect("layout");
        s.register_broker(1, &registration(9092)).await.unwrap();
        let first = s.allocate_producer_id_block(1).await.unwrap();
        let session = s.client().session_id();
        let leader = ensemble.leader().expect("a leader");
        tokio::task::block_in_place(|| ensemble.servers[leader].stop());
        // Two of three remain: a quorum; the client fails over and its session survives.
        assert!(
            eventually(Duration::from_secs(40), || async {
                s.allocate_producer_id_block(1).await.is_ok()
            })
            .await,
            "ensemble must keep serving with two of three nodes"
        );
        assert_eq!(
            s.client().session_id(),
            session,
            "the session survived the failover"
        );
        let live = s.live_brokers().await.unwrap();
        assert!(live.contains_key(&1));
        let next = s.allocate_producer_id_block(1).await.unwrap();
        assert!(next.block_start > first.block_end);
        let seen: BTreeSet<i64> = [first.block_start, next.block_start].into();
        assert_eq!(seen.len(), 2);
    })
    .await;
}
