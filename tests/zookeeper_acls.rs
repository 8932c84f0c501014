//! ACLs in ZooKeeper against a real ZooKeeper (Debian's `zookeeper` package): two stores
//! changing one resource at once lose nothing, a follower keeps its cache in step with another
//! store and with what Kafka's tools write, and after its session expired it reads every ACL
//! again.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/zookeeper.rs"]
mod zk_harness;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use odradek::auth::acl::{
    AccessControlEntry, Operation, PatternType, Permission, ResourcePattern, ResourceType,
};
use odradek::cluster::acls::AclCache;
use odradek::cluster::zookeeper::acls::{self, ZkAclStore};
use odradek::cluster::zookeeper::{CreateMode, ZkClient};
use odradek::util::task::ShutdownTrigger;
use zk_harness::{bounded, start_server, CutProxy};

const SESSION: Duration = Duration::from_secs(10);
const CONNECT: Duration = Duration::from_secs(10);

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
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn topic(name: &str, pattern_type: PatternType) -> ResourcePattern {
    ResourcePattern {
        resource_type: ResourceType::Topic,
        name: name.into(),
        pattern_type,
    }
}

fn entry(principal: &str, operation: Operation) -> AccessControlEntry {
    AccessControlEntry {
        principal: principal.into(),
        host: "*".into(),
        operation,
        permission: Permission::Allow,
    }
}

fn cached(cache: &AclCache, pattern: &ResourcePattern) -> BTreeSet<AccessControlEntry> {
    cache.snapshot().entries_of(pattern).into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_adding_to_one_resource_at_once_lose_nothing() {
    let zk = start_server().await;
    bounded(60, async {
        let connect = zk.connect_string_with_chroot("/kafka");
        let a = Arc::new(
            ZkAclStore::connect(&connect, SESSION, CONNECT)
                .await
                .unwrap(),
        );
        let b = Arc::new(
            ZkAclStore::connect(&connect, SESSION, CONNECT)
                .await
                .unwrap(),
        );
        let pattern = topic("orders", PatternType::Literal);
        let writer = |store: Arc<ZkAclStore>, who: &'static str| {
            let pattern = pattern.clone();
            tokio::spawn(async move {
                for i in 0..15 {
                    let e = entry(&format!("User:{who}{i}"), Operation::Write);
                    store
                        .update(&pattern, &|cur| {
                            let mut next = cur.clone();
                            next.insert(e.clone());
                            next
                        })
                        .await
                        .unwrap();
                }
            })
        };
        let (ra, rb) = tokio::join!(writer(a.clone(), "a"), writer(b.clone(), "b"));
        ra.unwrap();
        rb.unwrap();
        let stored = a.read(&pattern).await.unwrap();
        assert_eq!(stored.entries.len(), 30, "{:?}", stored.entries);
        // One notification per change, in Kafka 3's literal form.
        let client = a.client();
        let notes = client.children("/kafka-acl-changes").await.unwrap();
        assert_eq!(notes.len(), 30, "{notes:?}");
        let (data, _) = client
            .get(&format!("/kafka-acl-changes/{}", notes[0]))
            .await
            .unwrap();
        assert_eq!(data, b"TOPIC:orders");
        // Removing every entry deletes the znode.
        a.update(&pattern, &|_| BTreeSet::new()).await.unwrap();
        assert!(client
            .exists("/kafka-acl/Topic/orders")
            .await
            .unwrap()
            .is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_sees_other_brokers_and_kafkas_tools() {
    let zk = start_server().await;
    bounded(60, async {
        let connect = zk.connect_string();
        let mine = Arc::new(ZkAclStore::connect(&connect, SESSION, CONNECT).await.unwrap());
        let other = ZkAclStore::connect(&connect, SESSION, CONNECT).await.unwrap();
        let early = topic("early", PatternType::Literal);
        let e = entry("User:alice", Operation::Read);
        // Written before the follower starts: picked up by its first full read.
        other
            .update(&early, &|_| [e.clone()].into_iter().collect())
            .await
            .unwrap();
        let cache = Arc::new(AclCache::default());
        let trigger = ShutdownTrigger::new();
        let follower = tokio::spawn(acls::follow(
            mine.clone(),
            cache.clone(),
            trigger.subscribe(),
        ));
        let has = |p: ResourcePattern, n: usize| {
            let cache = cache.clone();
            async move { cached(&cache, &p).len() == n }
        };
        assert!(eventually(Duration::from_secs(10), || has(early.clone(), 1)).await);

        // Another broker adds a prefixed ACL.
        let pay = topic("pay", PatternType::Prefixed);
        other
            .update(&pay, &|_| [e.clone()].into_iter().collect())
            .await
            .unwrap();
        assert!(eventually(Duration::from_secs(10), || has(pay.clone(), 1)).await);

        // Kafka's tools: the znode in Kafka's JSON, then a notification.
        let raw = ZkClient::connect(&connect, SESSION).await.unwrap();
        raw.create(
            "/kafka-acl/Group/g1",
            br#"{"version":1,"acls":[{"principal":"User:bob","permissionType":"Deny","operation":"Read","host":"10.0.0.1"}]}"#,
            CreateMode::Persistent,
        )
        .await
        .unwrap();
        raw.create(
            "/kafka-acl-changes/acl_changes_",
            b"Group:g1",
            CreateMode::PersistentSequential,
        )
        .await
        .unwrap();
        let g1 = ResourcePattern {
            resource_type: ResourceType::Group,
            name: "g1".into(),
            pattern_type: PatternType::Literal,
        };
        assert!(eventually(Duration::from_secs(10), || has(g1.clone(), 1)).await);
        let denied = cached(&cache, &g1).into_iter().next().unwrap();
        assert_eq!(
            (denied.permission, denied.host.as_str()),
            (Permission::Deny, "10.0.0.1")
        );

        // Removed elsewhere: gone here too.
        other.update(&pay, &|_| BTreeSet::new()).await.unwrap();
        assert!(eventually(Duration::from_secs(10), || has(pay.clone(), 0)).await);

        trigger.trigger();
        follower.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_its_session_expired_a_follower_reads_everything_again() {
    let zk = start_server().await;
    bounded(60, async {
        let proxy = CutProxy::start(zk.port).await;
        let short = Duration::from_secs(2);
        let mine = Arc::new(
            ZkAclStore::connect(&proxy.connect_string(), short, CONNECT)
                .await
                .unwrap(),
        );
        let other = ZkAclStore::connect(&zk.connect_string(), SESSION, CONNECT)
            .await
            .unwrap();
        let cache = Arc::new(AclCache::default());
        let trigger = ShutdownTrigger::new();
        let follower = tokio::spawn(acls::follow(
            mine.clone(),
            cache.clone(),
            trigger.subscribe(),
        ));
        let session = mine.client().session_id();

        // Cut off long enough for the session to expire; meanwhile an ACL is added and its
        // notification removed, so only a full read can find it.
        proxy.cut();
        let t = topic("while-away", PatternType::Literal);
        let e = entry("User:carol", Operation::Describe);
        other
            .update(&t, &|_| [e.clone()].into_iter().collect())
            .await
            .unwrap();
        let raw = other.client();
        for n in raw.children("/kafka-acl-changes").await.unwrap() {
            raw.delete(&format!("/kafka-acl-changes/{n}"), None)
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        proxy.restore();

        let c = cache.clone();
        let t2 = t.clone();
        assert!(
            eventually(Duration::from_secs(30), || {
                let (c, t2) = (c.clone(), t2.clone());
                async move { cached(&c, &t2).len() == 1 }
            })
            .await,
            "the ACL added while the session was lost must be read"
        );
        assert_ne!(mine.client().session_id(), session, "a new session");

        trigger.trigger();
        follower.await.unwrap();
    })
    .await;
}
