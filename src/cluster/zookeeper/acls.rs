//! ACLs in ZooKeeper, in Kafka's layout (`ZkData`'s `LiteralAclStore`, `ExtendedAclStore`,
//! `LiteralAclChangeStore`, `ExtendedAclChangeStore`), as Kafka 3's `AclAuthorizer` keeps them:
//!
//! - literal patterns at `/kafka-acl/<ResourceType>/<name>`, prefixed ones at
//!   `/kafka-acl-extended/prefixed/<ResourceType>/<name>` (`Topic`, `Group`, `Cluster` with the
//!   name `kafka-cluster`, `TransactionalId`), each holding
//!   `{"version":1,"acls":[{"principal":..,"permissionType":..,"operation":..,"host":..}]}`;
//!   a pattern left without entries loses its znode;
//! - every change is a conditional write at the znode version just read, retried (after a
//!   fresh read) when another writer got there first, so two brokers changing one pattern at
//!   once lose nothing; it is followed by a sequential `acl_changes_<seq>` notification under
//!   `/kafka-acl-changes` (`TOPIC:<name>`) or `/kafka-acl-extended-changes` (Kafka's JSON);
//! - every broker watches both change roots ([`follow`]), re-reads the pattern each new
//!   notification names, and deletes notifications older than 15 minutes.
//!
//! Like Kafka's authorizer, the store has its own ZooKeeper session; once that session has
//! expired, a new one is made and every ACL read again.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::client::{CreateMode, EventType, SessionState, Watch, ZkClient, ZkError};
use super::paths;
use crate::auth::acl::{
    AccessControlEntry, PatternType, ResourcePattern, ResourceType, StoredAcls,
};
use crate::auth::AclSet;
use crate::cluster::acls::AclCache;
use crate::util::task::Shutdown;

/// The resource-type directories Kafka creates under each ACL root at start
/// (`SecurityUtils.resourceTypeName` of every concrete `ResourceType`), also those this broker
/// does not authorize (delegation tokens, users).
pub const RESOURCE_TYPE_DIRS: [&str; 6] = [
    "Topic",
    "Group",
    "Cluster",
    "TransactionalId",
    "DelegationToken",
    "User",
];

/// Change notifications older than this are deleted (Kafka's 15 minutes).
pub const ACL_CHANGE_EXPIRY_MS: i64 = 15 * 60 * 1000;
/// Attempts after a conflicting write before giving up (Kafka's `maxUpdateRetries`).
const MAX_UPDATE_RETRIES: u32 = 10;
/// Pause before retrying a conflicting write: 100 ms plus up to 50 ms of jitter, as Kafka.
const RETRY_BACKOFF_MS: u64 = 100;
const RETRY_JITTER_MS: u64 = 50;
/// Pause before reading again after a failed read, or reconnecting after a failed attempt.
const READ_RETRY: Duration = Duration::from_millis(500);

/// The ACL root of a pattern type.
pub fn acl_root(pattern_type: PatternType) -> &'static str {
    match pattern_type {
        PatternType::Literal => paths::KAFKA_ACL,
        PatternType::Prefixed => paths::KAFKA_ACL_EXTENDED_PREFIXED,
    }
}

/// The change-notification root of a pattern type.
pub fn change_root(pattern_type: PatternType) -> &'static str {
    match pattern_type {
        PatternType::Literal => paths::KAFKA_ACL_CHANGES,
        PatternType::Prefixed => paths::KAFKA_ACL_EXTENDED_CHANGES,
    }
}

/// The znode of one resource pattern's ACLs.
pub fn resource_path(pattern: &ResourcePattern) -> String {
    format!(
        "{}/{}/{}",
        acl_root(pattern.pattern_type),
        pattern.resource_type.zk_name(),
        pattern.name
    )
}

/// Every path Kafka's `createAclPaths` makes sure exists: both ACL roots with one directory
/// per resource type, and both change roots.
pub fn acl_paths() -> Vec<String> {
    let mut out = Vec::new();
    for pattern_type in [PatternType::Literal, PatternType::Prefixed] {
        let root = acl_root(pattern_type);
        out.push(root.to_string());
        out.extend(RESOURCE_TYPE_DIRS.iter().map(|t| format!("{root}/{t}")));
    }
    out.push(paths::KAFKA_ACL_CHANGES.to_string());
    out.push(paths::KAFKA_ACL_EXTENDED_CHANGES.to_string());
    out
}

/// The sequence number of an `acl_changes_<seq>` child, if it is one.
pub fn change_sequence(child: &str) -> Option<i64> {
    child.strip_prefix(paths::ACL_CHANGE_PREFIX)?.parse().ok()
}

/// Kafka's Java enum name of a resource type (`TOPIC`, `TRANSACTIONAL_ID`), which literal
/// change notifications and extended change events carry.
fn enum_name(t: ResourceType) -> &'static str {
    match t {
        ResourceType::Topic => "TOPIC",
        ResourceType::Group => "GROUP",
        ResourceType::Cluster => "CLUSTER",
        ResourceType::TransactionalId => "TRANSACTIONAL_ID",
    }
}

/// A resource type from a notification, case-insensitively as Kafka's `ResourceType.fromString`;
/// the `TransactionalId` of pre-2.0 tools is accepted too.
fn resource_type_named(name: &str) -> Option<ResourceType> {
    let upper = name.trim().to_ascii_uppercase();
    ResourceType::ALL
        .into_iter()
        .find(|t| enum_name(*t) == upper || t.zk_name().to_ascii_uppercase() == upper)
}

/// Kafka's extended ACL change event (`ExtendedAclChangeEvent`).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExtendedChangeEvent {
    version: i32,
    resource_type: String,
    name: String,
    pattern_type: String,
}

/// The notification data for a changed pattern: `TOPIC:<name>` for literal patterns,
/// `{"version":1,"resourceType":"TOPIC","name":..,"patternType":"PREFIXED"}` for others.
pub fn encode_change(pattern: &ResourcePattern) -> Vec<u8> {
    match pattern.pattern_type {
        PatternType::Literal => {
            format!("{}:{}", enum_name(pattern.resource_type), pattern.name).into_bytes()
        }
        PatternType::Prefixed => {
            let event = ExtendedChangeEvent {
                version: 1,
                resource_type: enum_name(pattern.resource_type).to_string(),
                name: pattern.name.clone(),
                pattern_type: "PREFIXED".to_string(),
            };
            serde_json::to_vec(&event).unwrap_or_default()
        }
    }
}

/// Why a notification names nothing this broker can re-read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadNotification {
    #[error("expected ResourceType:ResourceName, got {0:?}")]
    Literal(String),
    #[error("not an ACL change event: {0}")]
    Json(String),
    #[error("unsupported ACL change event version {0}")]
    Version(i32),
    #[error("unknown resource type {0:?}")]
    ResourceType(String),
    #[error("unsupported pattern type {0:?}")]
    PatternType(String),
}

/// The pattern a notification under `root` names (Kafka's `decode` of each change store; a
/// literal name is everything after the first `:`).
pub fn decode_change(root: &str, data: &[u8]) -> Result<ResourcePattern, BadNotification> {
    if root == paths::KAFKA_ACL_CHANGES {
        let text = String::from_utf8_lossy(data);
        let (kind, name) = text
            .split_once(':')
            .ok_or_else(|| BadNotification::Literal(text.to_string()))?;
        let resource_type = resource_type_named(kind)
            .ok_or_else(|| BadNotification::ResourceType(kind.to_string()))?;
        return Ok(ResourcePattern {
            resource_type,
            name: name.to_string(),
            pattern_type: PatternType::Literal,
        });
    }
    let event: ExtendedChangeEvent =
        serde_json::from_slice(data).map_err(|e| BadNotification::Json(e.to_string()))?;
    if event.version > 1 {
        return Err(BadNotification::Version(event.version));
    }
    let resource_type = resource_type_named(&event.resource_type)
        .ok_or(BadNotification::ResourceType(event.resource_type))?;
    let pattern_type = match event.pattern_type.to_ascii_uppercase().as_str() {
        "PREFIXED" => PatternType::Prefixed,
        "LITERAL" => PatternType::Literal,
        _ => return Err(BadNotification::PatternType(event.pattern_type)),
    };
    Ok(ResourcePattern {
        resource_type,
        name: event.name,
        pattern_type,
    })
}

/// A pattern's znode data: Kafka's ACL JSON.
pub fn encode_acls(entries: &BTreeSet<AccessControlEntry>) -> Vec<u8> {
    serde_json::to_vec(&StoredAcls::from_entries(entries)).unwrap_or_default()
}

/// The entries of a pattern's znode data (none for empty data, as Kafka reads it).
pub fn decode_acls(data: &[u8]) -> Result<BTreeSet<AccessControlEntry>, ZkError> {
    if data.is_empty() {
        return Ok(BTreeSet::new());
    }
    let stored: StoredAcls =
        serde_json::from_slice(data).map_err(|e| ZkError::Corrupt(format!("ACL znode: {e}")))?;
    Ok(stored.entries().into_iter().collect())
}

/// A pattern's entries as stored, with the znode version (`None`: no znode).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionedAcls {
    pub entries: BTreeSet<AccessControlEntry>,
    pub version: Option<i32>,
}

/// A pattern's entries before and after a change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclUpdate {
    pub before: BTreeSet<AccessControlEntry>,
    pub after: BTreeSet<AccessControlEntry>,
}

/// ACLs in ZooKeeper, over a session of their own.
#[derive(Debug)]
pub struct ZkAclStore {
    connect: String,
    session_timeout: Duration,
    connection_timeout: Duration,
    client: parking_lot::RwLock<ZkClient>,
}

impl ZkAclStore {
    /// Connects (waiting up to `connection_timeout` for ZooKeeper) and creates the ACL paths.
    pub async fn connect(
        connect: &str,
        session_timeout: Duration,
        connection_timeout: Duration,
    ) -> Result<ZkAclStore, ZkError> {
        let client = connect_within(connect, session_timeout, connection_timeout).await?;
        create_acl_paths(&client).await?;
        Ok(ZkAclStore {
            connect: connect.to_string(),
            session_timeout,
            connection_timeout,
            client: parking_lot::RwLock::new(client),
        })
    }

    /// The current session.
    pub fn client(&self) -> ZkClient {
        self.client.read().clone()
    }

    /// Replaces an expired session with a new one (paths created again).
    async fn reconnect(&self) -> Result<(), ZkError> {
        let client =
            connect_within(&self.connect, self.session_timeout, self.connection_timeout).await?;
        create_acl_paths(&client).await?;
        *self.client.write() = client;
        Ok(())
    }

    /// Ends the session.
    pub async fn close(&self) {
        self.client().close(Duration::from_secs(2)).await;
    }

    /// The stored entries of one pattern.
    pub async fn read(&self, pattern: &ResourcePattern) -> Result<VersionedAcls, ZkError> {
        match self.client().get_opt(&resource_path(pattern)).await? {
            None => Ok(VersionedAcls::default()),
            Some((data, stat)) => Ok(VersionedAcls {
                entries: decode_acls(&data)?,
                version: Some(stat.version),
            }),
        }
    }

    /// Every stored ACL (Kafka's `loadAllAcls`); directories of types this broker does not
    /// authorize are skipped.
    pub async fn load_all(&self) -> Result<AclSet, ZkError> {
        let client = self.client();
        let mut set = AclSet::default();
        for pattern_type in [PatternType::Literal, PatternType::Prefixed] {
            let root = acl_root(pattern_type);
            for type_dir in children_or_none(&client, root).await? {
                let Some(resource_type) = ResourceType::from_zk_name(&type_dir) else {
                    debug!(path = %format!("{root}/{type_dir}"), "ACLs of a resource type not authorized here skipped");
                    continue;
                };
                for name in children_or_none(&client, &format!("{root}/{type_dir}")).await? {
                    let pattern = ResourcePattern {
                        resource_type,
                        name,
                        pattern_type,
                    };
                    let stored = self.read(&pattern).await?;
                    set.set_entries(pattern, stored.entries.into_iter().collect());
                }
            }
        }
        Ok(set)
    }

    /// Changes one pattern's entries to `change(stored entries)` with a write conditional on
    /// the version read; when another writer got there first, reads again and retries (Kafka's
    /// `updateResourceAcls`). No entries left: the znode is deleted. A real change is followed
    /// by a change notification.
    pub async fn update(
        &self,
        pattern: &ResourcePattern,
        change: &(dyn Fn(&BTreeSet<AccessControlEntry>) -> BTreeSet<AccessControlEntry> + Sync),
    ) -> Result<AclUpdate, ZkError> {
        let path = resource_path(pattern);
        let mut current = self.read(pattern).await?;
        for attempt in 0..=MAX_UPDATE_RETRIES {
            let next = change(&current.entries);
            if next == current.entries {
                return Ok(AclUpdate {
                    before: current.entries,
                    after: next,
                });
            }
            if self.write(&path, &next, current.version).await? {
                info!(resource = %path, acls = next.len(), "ACLs updated in ZooKeeper");
                self.notify(pattern).await?;
                return Ok(AclUpdate {
                    before: current.entries,
                    after: next,
                });
            }
            debug!(resource = %path, attempt, "ACL znode changed concurrently; reading again");
            tokio::time::sleep(retry_backoff()).await;
            current = self.read(pattern).await?;
        }
        Err(ZkError::Other(format!(
            "failed to update ACLs for {path} after {MAX_UPDATE_RETRIES} retries"
        )))
    }

    /// One conditional write; false when the znode is no longer at `version`.
    async fn write(
        &self,
        path: &str,
        entries: &BTreeSet<AccessControlEntry>,
        version: Option<i32>,
    ) -> Result<bool, ZkError> {
        let client = self.client();
        let result = match (entries.is_empty(), version) {
            (true, None) => Ok(()),
            (true, Some(v)) => match client.delete(path, Some(v)).await {
                Err(ZkError::NoNode) => Ok(()),
                other => other,
            },
            (false, Some(v)) => client
                .set(path, &encode_acls(entries), Some(v))
                .await
                .map(drop),
            (false, None) => client
                .create_with_parents(path, &encode_acls(entries), CreateMode::Persistent)
                .await
                .map(drop),
        };
        match result {
            Ok(()) => Ok(true),
            Err(ZkError::BadVersion | ZkError::NodeExists) => Ok(false),
            Err(ZkError::NoNode) if version.is_some() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes the change notification of a pattern.
    async fn notify(&self, pattern: &ResourcePattern) -> Result<(), ZkError> {
        let path = format!(
            "{}/{}",
            change_root(pattern.pattern_type),
            paths::ACL_CHANGE_PREFIX
        );
        self.client()
            .create_with_parents(
                &path,
                &encode_change(pattern),
                CreateMode::PersistentSequential,
            )
            .await?;
        Ok(())
    }
}

fn retry_backoff() -> Duration {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()) % RETRY_JITTER_MS);
    Duration::from_millis(RETRY_BACKOFF_MS + jitter)
}

async fn children_or_none(client: &ZkClient, path: &str) -> Result<Vec<String>, ZkError> {
    match client.children(path).await {
        Err(ZkError::NoNode) => Ok(Vec::new()),
        other => other,
    }
}

async fn create_acl_paths(client: &ZkClient) -> Result<(), ZkError> {
    for path in acl_paths() {
        client.ensure_path(&path).await?;
    }
    Ok(())
}

async fn connect_within(
    connect: &str,
    session_timeout: Duration,
    connection_timeout: Duration,
) -> Result<ZkClient, ZkError> {
    let deadline = tokio::time::Instant::now() + connection_timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ZkClient::connect(connect, session_timeout)).await {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(e)) if tokio::time::Instant::now() + READ_RETRY < deadline => {
                debug!(error = %e, "ZooKeeper not reachable yet (ACL store)");
                tokio::time::sleep(READ_RETRY).await;
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(ZkError::ConnectionLoss),
        }
    }
}

/// What woke the follower.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Fired {
    /// New children under this change root.
    Root(&'static str),
    /// The session with this id ended.
    SessionLost(i64),
}

const CHANGE_ROOTS: [&str; 2] = [paths::KAFKA_ACL_CHANGES, paths::KAFKA_ACL_EXTENDED_CHANGES];

/// Follows both change roots until `shutdown`, keeping `cache` current, then ends the session.
pub async fn follow(store: Arc<ZkAclStore>, cache: Arc<AclCache>, shutdown: Shutdown) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut follower = Follower {
        store: store.clone(),
        cache,
        armed: HashSet::new(),
        last: HashMap::new(),
        fired: tx,
    };
    follower.run(rx, &shutdown).await;
    store.close().await;
}

struct Follower {
    store: Arc<ZkAclStore>,
    cache: Arc<AclCache>,
    /// Change roots with a child watch in place.
    armed: HashSet<&'static str>,
    /// Per change root, the last notification acted on (Kafka's `lastExecutedChange`).
    last: HashMap<&'static str, i64>,
    fired: mpsc::UnboundedSender<Fired>,
}

impl Follower {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Fired>, shutdown: &Shutdown) {
        // Catch up with what changed since the ACLs were loaded at start.
        if let Err(e) = self.reload().await {
            warn!(error = %e, "re-reading ACLs from ZooKeeper failed; retrying");
            let _ = self.fired.send(Fired::SessionLost(-1));
        }
        let mut session = self.store.client().session_events();
        loop {
            let mut pending: Vec<Fired> = Vec::new();
            tokio::select! {
                _ = shutdown.triggered() => return,
                fired = rx.recv() => match fired {
                    Some(f) => pending.push(f),
                    None => return,
                },
                state = session.next() => match state {
                    SessionState::SyncConnected => {
                        pending.extend(CHANGE_ROOTS.into_iter().map(Fired::Root));
                    }
                    s if s.is_terminated() => {
                        pending.push(Fired::SessionLost(self.store.client().session_id()));
                    }
                    _ => {}
                },
            }
            while let Ok(f) = rx.try_recv() {
                pending.push(f);
            }
            let current = self.store.client().session_id();
            let lost = pending
                .iter()
                .any(|f| *f == Fired::SessionLost(current) || *f == Fired::SessionLost(-1));
            let result = if lost {
                Err(ZkError::SessionExpired)
            } else {
                self.read_roots(&pending).await
            };
            match result {
                Ok(()) => {}
                Err(e) if e.is_session_lost() || lost => {
                    if !self.renew(shutdown).await {
                        return;
                    }
                    session = self.store.client().session_events();
                }
                Err(e) => {
                    debug!(error = %e, "reading ACL change notifications failed; retrying");
                    tokio::time::sleep(READ_RETRY).await;
                    for root in CHANGE_ROOTS {
                        let _ = self.fired.send(Fired::Root(root));
                    }
                }
            }
        }
    }

    async fn read_roots(&mut self, pending: &[Fired]) -> Result<(), ZkError> {
        for root in CHANGE_ROOTS {
            if pending.contains(&Fired::Root(root)) {
                self.armed.remove(root);
                self.read_root(root, true).await?;
            }
        }
        Ok(())
    }

    /// A new session, then everything read again; false once shutting down.
    async fn renew(&mut self, shutdown: &Shutdown) -> bool {
        warn!("ZooKeeper session of the ACL store lost; reconnecting and reading every ACL again");
        loop {
            if shutdown.is_triggered() {
                return false;
            }
            match self.store.reconnect().await {
                Ok(()) => match self.reload().await {
                    Ok(()) => {
                        info!("ACL store has a new ZooKeeper session; ACLs re-read");
                        return true;
                    }
                    Err(e) => warn!(error = %e, "re-reading ACLs from ZooKeeper failed"),
                },
                Err(e) => warn!(error = %e, "reconnecting the ACL store to ZooKeeper failed"),
            }
            tokio::time::sleep(READ_RETRY).await;
        }
    }

    /// Arms both watches (noting the notifications present, which the full read covers),
    /// then reads every ACL and replaces the cache.
    async fn reload(&mut self) -> Result<(), ZkError> {
        self.armed.clear();
        for root in CHANGE_ROOTS {
            self.read_root(root, false).await?;
        }
        let _guard = self.cache.lock_changes().await;
        let acls = self.store.load_all().await?;
        info!(acls = acls.bindings().count(), "ACLs read from ZooKeeper");
        self.cache.replace(acls);
        Ok(())
    }

    /// Lists a change root (re-arming its watch), re-reads the pattern of every notification
    /// newer than the last one acted on (unless only catching up), and deletes expired ones.
    async fn read_root(&mut self, root: &'static str, act: bool) -> Result<(), ZkError> {
        let client = self.store.client();
        let names = if self.armed.contains(root) {
            client.children(root).await?
        } else {
            let (names, watch) = match client.children_and_watch(root).await {
                Err(ZkError::NoNode) => {
                    client.ensure_path(root).await?;
                    client.children_and_watch(root).await?
                }
                other => other?,
            };
            self.arm(watch, root, client.session_id());
            names
        };
        let last = self.last.get(root).copied().unwrap_or(-1);
        let mut fresh: Vec<(i64, &String)> = names
            .iter()
            .filter_map(|n| change_sequence(n).map(|seq| (seq, n)))
            .filter(|(seq, _)| *seq > last)
            .collect();
        fresh.sort();
        for (seq, name) in fresh {
            if act {
                let path = format!("{root}/{name}");
                if let Some((data, _)) = client.get_opt(&path).await? {
                    match decode_change(root, &data) {
                        Ok(pattern) => self.refresh(&pattern).await?,
                        Err(e) => {
                            warn!(notification = %path, error = %e, "unreadable ACL change notification ignored")
                        }
                    }
                }
            }
            self.last.insert(root, seq);
        }
        purge(&client, root, &names).await;
        Ok(())
    }

    /// Re-reads one pattern and puts what is stored in the cache.
    async fn refresh(&self, pattern: &ResourcePattern) -> Result<(), ZkError> {
        let _guard = self.cache.lock_changes().await;
        let stored = self.store.read(pattern).await?;
        info!(
            resource = %resource_path(pattern),
            acls = stored.entries.len(),
            "ACL change notification: resource re-read"
        );
        self.cache
            .set_entries([(pattern.clone(), stored.entries.into_iter().collect())]);
        Ok(())
    }

    fn arm(&mut self, watch: Watch, root: &'static str, session: i64) {
        self.armed.insert(root);
        let tx = self.fired.clone();
        tokio::spawn(async move {
            let event = watch.changed().await;
            let fired = if event.kind == EventType::Session {
                Fired::SessionLost(session)
            } else {
                Fired::Root(root)
            };
            let _ = tx.send(fired);
        });
    }
}

/// Deletes the notifications of `names` created more than 15 minutes ago (another broker may
/// have deleted them first).
async fn purge(client: &ZkClient, root: &str, names: &[String]) {
    let before = crate::util::clock::now_ms() - ACL_CHANGE_EXPIRY_MS;
    for name in names {
        let path = format!("{root}/{name}");
        let old = match client.exists(&path).await {
            Ok(Some(stat)) => stat.ctime < before,
            _ => false,
        };
        if old {
            match client.delete(&path, None).await {
                Ok(()) | Err(ZkError::NoNode) => {
                    debug!(notification = %path, "old ACL change notification purged")
                }
                Err(e) => {
                    debug!(notification = %path, error = %e, "purging an ACL change notification failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::acl::{Operation, Permission};

    fn pattern(t: ResourceType, name: &str, p: PatternType) -> ResourcePattern {
        ResourcePattern {
            resource_type: t,
            name: name.into(),
            pattern_type: p,
        }
    }

    #[test]
    fn paths_follow_kafkas_layout() {
        use PatternType::*;
        assert_eq!(
            resource_path(&pattern(ResourceType::Topic, "orders", Literal)),
            "/kafka-acl/Topic/orders"
        );
        assert_eq!(
            resource_path(&pattern(ResourceType::Cluster, "kafka-cluster", Literal)),
            "/kafka-acl/Cluster/kafka-cluster"
        );
        assert_eq!(
            resource_path(&pattern(ResourceType::TransactionalId, "tx", Prefixed)),
            "/kafka-acl-extended/prefixed/TransactionalId/tx"
        );
        assert_eq!(
            resource_path(&pattern(ResourceType::Group, "g", Prefixed)),
            "/kafka-acl-extended/prefixed/Group/g"
        );
        let created = acl_paths();
        for p in [
            "/kafka-acl",
            "/kafka-acl/Topic",
            "/kafka-acl/DelegationToken",
            "/kafka-acl-extended/prefixed",
            "/kafka-acl-extended/prefixed/TransactionalId",
            "/kafka-acl-changes",
            "/kafka-acl-extended-changes",
        ] {
            assert!(
                created.contains(&p.to_string()),
                "{p} missing from {created:?}"
            );
        }
        assert_eq!(change_sequence("acl_changes_0000000007"), Some(7));
        assert_eq!(change_sequence("config_change_0000000007"), None);
    }

    #[test]
    fn literal_notifications_carry_kafkas_enum_names() {
        let p = pattern(ResourceType::TransactionalId, "a:b", PatternType::Literal);
        assert_eq!(encode_change(&p), b"TRANSACTIONAL_ID:a:b");
        assert_eq!(
            decode_change(paths::KAFKA_ACL_CHANGES, &encode_change(&p)),
            Ok(p)
        );
        // Older writers used the znode names; Kafka parses case-insensitively.
        assert_eq!(
            decode_change(paths::KAFKA_ACL_CHANGES, b"Topic:orders"),
            Ok(pattern(ResourceType::Topic, "orders", PatternType::Literal))
        );
        assert!(decode_change(paths::KAFKA_ACL_CHANGES, b"no-separator").is_err());
        assert!(decode_change(paths::KAFKA_ACL_CHANGES, b"Broker:1").is_err());
    }

    #[test]
    fn extended_notifications_are_kafkas_json() {
        let p = pattern(ResourceType::Topic, "pay", PatternType::Prefixed);
        let data = encode_change(&p);
        let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version":1,"resourceType":"TOPIC","name":"pay","patternType":"PREFIXED"})
        );
        assert_eq!(
            decode_change(paths::KAFKA_ACL_EXTENDED_CHANGES, &data),
            Ok(p)
        );
        assert_eq!(
            decode_change(
                paths::KAFKA_ACL_EXTENDED_CHANGES,
                br#"{"version":2,"resourceType":"TOPIC","name":"x","patternType":"PREFIXED"}"#
            ),
            Err(BadNotification::Version(2))
        );
        assert!(decode_change(paths::KAFKA_ACL_EXTENDED_CHANGES, b"TOPIC:x").is_err());
    }

    #[test]
    fn acl_znodes_are_kafkas_json() {
        let entries: BTreeSet<AccessControlEntry> = [AccessControlEntry {
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::DescribeConfigs,
            permission: Permission::Deny,
        }]
        .into_iter()
        .collect();
        let data = encode_acls(&entries);
        assert_eq!(
            String::from_utf8(data.clone()).unwrap(),
            r#"{"version":1,"acls":[{"principal":"User:alice","permissionType":"Deny","operation":"DescribeConfigs","host":"*"}]}"#
        );
        assert_eq!(decode_acls(&data).unwrap(), entries);
        assert!(decode_acls(b"").unwrap().is_empty());
        assert!(matches!(decode_acls(b"{"), Err(ZkError::Corrupt(_))));
    }
}
