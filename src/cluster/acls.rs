//! Where ACLs are kept, behind one [`AclStore`]: standalone brokers keep them in
//! `<log.dirs>/odradek-acls.json` ([`FileAclStore`]: one record per resource pattern holding
//! Kafka's ZooKeeper form of its entries, written with `util::durable::write_atomically`);
//! cluster brokers keep them in ZooKeeper in Kafka's layout ([`ZkAclStore`]), followed by every
//! broker through Kafka's change notifications. Either way a CreateAcls or DeleteAcls is
//! stored before it is answered, and the ACLs in force live in one [`AclCache`], swapped whole
//! on every change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::auth::acl::{
    AccessControlEntry, AclBinding, AclFilter, PatternFilter, PatternType, ResourcePattern,
    ResourceType, StoredAcls,
};
use crate::auth::AclSet;
use crate::cluster::zookeeper::acls::{self as zk_acls, ZkAclStore};
use crate::cluster::zookeeper::ZkError;
use crate::config::BrokerConfig;
use crate::util::durable;
use crate::util::task::Shutdown;

/// The file name of the standalone ACL file.
pub const ACL_FILE: &str = "odradek-acls.json";

/// Why ACLs could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AclStoreError {
    #[error("ACL file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ACL file {path} is not valid: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("ACL store task failed: {0}")]
    Task(String),
    #[error("ACLs in ZooKeeper: {0}")]
    ZooKeeper(#[from] ZkError),
}

/// One resource pattern's record in the file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    resource_type: String,
    pattern_type: String,
    name: String,
    acls: StoredAcls,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AclFile {
    version: i32,
    resources: Vec<Record>,
}

/// The standalone ACL file.
#[derive(Clone, Debug)]
pub struct FileAclStore {
    path: PathBuf,
}

fn pattern_name(t: PatternType) -> &'static str {
    match t {
        PatternType::Literal => "LITERAL",
        PatternType::Prefixed => "PREFIXED",
    }
}

impl FileAclStore {
    /// The store in the data directory `dir`.
    pub fn in_dir(dir: &Path) -> FileAclStore {
        FileAclStore {
            path: dir.join(ACL_FILE),
        }
    }

    /// Every stored ACL (none when the file does not exist).
    pub fn load(&self) -> Result<AclSet, AclStoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AclSet::default()),
            Err(source) => {
                return Err(AclStoreError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let file: AclFile =
            serde_json::from_slice(&bytes).map_err(|source| AclStoreError::Json {
                path: self.path.clone(),
                source,
            })?;
        let mut set = AclSet::default();
        for r in file.resources {
            let Some(resource_type) = ResourceType::from_zk_name(&r.resource_type) else {
                continue;
            };
            let pattern_type = match r.pattern_type.as_str() {
                "LITERAL" => PatternType::Literal,
                "PREFIXED" => PatternType::Prefixed,
                _ => continue,
            };
            let pattern = ResourcePattern {
                resource_type,
                name: r.name,
                pattern_type,
            };
            set.set_entries(pattern, r.acls.entries());
        }
        Ok(set)
    }

    /// Writes every ACL of `acls`, replacing the file.
    pub fn save(&self, acls: &AclSet) -> Result<(), AclStoreError> {
        let resources = acls
            .patterns()
            .map(|p| Record {
                resource_type: p.resource_type.zk_name().to_string(),
                pattern_type: pattern_name(p.pattern_type).to_string(),
                name: p.name.clone(),
                acls: StoredAcls::from_entries(&acls.entries_of(p)),
            })
            .collect();
        let file = AclFile {
            version: 1,
            resources,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|source| AclStoreError::Json {
            path: self.path.clone(),
            source,
        })?;
        durable::write_atomically(&self.path, &bytes).map_err(|source| AclStoreError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// The ACLs in force: read by every authorization, replaced whole on every change.
#[derive(Debug, Default)]
pub struct AclCache {
    current: RwLock<Arc<AclSet>>,
    /// Serializes changes (read, change, write, publish), local or from notifications.
    changes: tokio::sync::Mutex<()>,
}

impl AclCache {
    /// A cache holding `acls`.
    pub fn new(acls: AclSet) -> AclCache {
        AclCache {
            current: RwLock::new(Arc::new(acls)),
            changes: tokio::sync::Mutex::new(()),
        }
    }

    /// The ACLs in force now.
    pub fn snapshot(&self) -> Arc<AclSet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces every ACL.
    pub fn replace(&self, acls: AclSet) {
        let acls = Arc::new(acls);
        match self.current.write() {
            Ok(mut g) => *g = acls,
            Err(poisoned) => *poisoned.into_inner() = acls,
        }
    }

    /// Replaces the entries of some patterns (no entries: the pattern goes).
    pub fn set_entries(
        &self,
        changed: impl IntoIterator<Item = (ResourcePattern, Vec<AccessControlEntry>)>,
    ) {
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = (**guard).clone();
        for (pattern, entries) in changed {
            next.set_entries(pattern, entries);
        }
        *guard = Arc::new(next);
    }

    /// Held while a change is read, written and published.
    pub async fn lock_changes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changes.lock().await
    }
}

/// Where ACLs are stored.
#[derive(Clone, Debug)]
pub enum AclStore {
    /// Standalone: the ACL file in the data directory.
    File(FileAclStore),
    /// Cluster mode: ZooKeeper, in Kafka's layout.
    ZooKeeper(Arc<ZkAclStore>),
}

impl AclStore {
    /// The store of this configuration: ZooKeeper when `zookeeper.connect` is set (over a
    /// session of its own, as Kafka's authorizer), else the file in the first log dir.
    pub async fn open(config: &BrokerConfig) -> Result<AclStore, AclStoreError> {
        let Some(connect) = &config.zookeeper_connect else {
            return Ok(AclStore::File(FileAclStore::in_dir(&config.log_dirs[0])));
        };
        let store = ZkAclStore::connect(
            connect,
            Duration::from_millis(config.cluster.zookeeper_session_timeout_ms),
            Duration::from_millis(config.cluster.zookeeper_connection_timeout_ms),
        )
        .await?;
        Ok(AclStore::ZooKeeper(Arc::new(store)))
    }

    /// Where the ACLs are, for the log.
    pub fn location(&self) -> String {
        match self {
            AclStore::File(f) => f.path.display().to_string(),
            AclStore::ZooKeeper(_) => "ZooKeeper (/kafka-acl, /kafka-acl-extended)".to_string(),
        }
    }

    /// Every stored ACL.
    pub async fn load(&self) -> Result<AclSet, AclStoreError> {
        match self {
            AclStore::File(f) => {
                let f = f.clone();
                tokio::task::spawn_blocking(move || f.load())
                    .await
                    .map_err(|e| AclStoreError::Task(e.to_string()))?
            }
            AclStore::ZooKeeper(zk) => Ok(zk.load_all().await?),
        }
    }

    /// Starts following changes made elsewhere (cluster mode: the change notifications) until
    /// `shutdown`; nothing to follow for the file.
    pub fn follow(&self, cache: Arc<AclCache>, shutdown: Shutdown, tasks: &mut JoinSet<()>) {
        if let AclStore::ZooKeeper(zk) = self {
            tasks.spawn(zk_acls::follow(zk.clone(), cache, shutdown));
        }
    }

    /// Adds ACLs, stores them and puts them in force.
    pub async fn create(
        &self,
        cache: &AclCache,
        bindings: Vec<AclBinding>,
    ) -> Result<(), AclStoreError> {
        let _guard = cache.lock_changes().await;
        match self {
            AclStore::File(f) => {
                let mut acls = (*cache.snapshot()).clone();
                for b in bindings {
                    acls.add(b);
                }
                save_file(f, &acls).await?;
                cache.replace(acls);
                Ok(())
            }
            AclStore::ZooKeeper(zk) => {
                let mut by_pattern: BTreeMap<ResourcePattern, BTreeSet<AccessControlEntry>> =
                    BTreeMap::new();
                for b in bindings {
                    by_pattern.entry(b.pattern).or_default().insert(b.entry);
                }
                for (pattern, added) in by_pattern {
                    let update = zk
                        .update(&pattern, &|current| {
                            current.union(&added).cloned().collect()
                        })
                        .await?;
                    cache.set_entries([(pattern, update.after.into_iter().collect())]);
                }
                Ok(())
            }
        }
    }

    /// Removes the ACLs each filter selects, stores the rest and puts them in force; per
    /// filter, what it removed (an ACL several filters select counts for the first).
    pub async fn delete(
        &self,
        cache: &AclCache,
        filters: &[AclFilter],
    ) -> Result<Vec<Vec<AclBinding>>, AclStoreError> {
        let _guard = cache.lock_changes().await;
        match self {
            AclStore::File(f) => {
                let mut acls = (*cache.snapshot()).clone();
                let removed: Vec<Vec<AclBinding>> =
                    filters.iter().map(|f| acls.remove_matching(f)).collect();
                if removed.iter().any(|r| !r.is_empty()) {
                    save_file(f, &acls).await?;
                    cache.replace(acls);
                }
                Ok(removed)
            }
            AclStore::ZooKeeper(zk) => {
                let mut removed = vec![Vec::new(); filters.len()];
                for pattern in delete_candidates(&cache.snapshot(), filters) {
                    let selected =
                        |e: &AccessControlEntry| first_match(filters, &pattern, e).is_some();
                    let update = zk
                        .update(&pattern, &|current| {
                            current.iter().filter(|e| !selected(e)).cloned().collect()
                        })
                        .await?;
                    for entry in update.before.difference(&update.after) {
                        if let Some(i) = first_match(filters, &pattern, entry) {
                            removed[i].push(AclBinding {
                                pattern: pattern.clone(),
                                entry: entry.clone(),
                            });
                        }
                    }
                    cache.set_entries([(pattern, update.after.into_iter().collect())]);
                }
                Ok(removed)
            }
        }
    }
}

async fn save_file(f: &FileAclStore, acls: &AclSet) -> Result<(), AclStoreError> {
    let (f, acls) = (f.clone(), acls.clone());
    tokio::task::spawn_blocking(move || f.save(&acls))
        .await
        .map_err(|e| AclStoreError::Task(e.to_string()))?
}

/// The index of the first filter selecting this ACL.
fn first_match(
    filters: &[AclFilter],
    pattern: &ResourcePattern,
    entry: &AccessControlEntry,
) -> Option<usize> {
    let binding = AclBinding {
        pattern: pattern.clone(),
        entry: entry.clone(),
    };
    filters.iter().position(|f| f.matches(&binding))
}

/// The patterns a delete may change (Kafka's `deleteAcls`): those in force with an ACL some
/// filter selects, and the one pattern a filter names exactly (type, name and LITERAL or
/// PREFIXED), which may hold ACLs not yet seen here.
fn delete_candidates(acls: &AclSet, filters: &[AclFilter]) -> BTreeSet<ResourcePattern> {
    let mut out: BTreeSet<ResourcePattern> = acls
        .bindings()
        .filter(|b| filters.iter().any(|f| f.matches(b)))
        .map(|b| b.pattern)
        .collect();
    for f in filters {
        if let (Some(resource_type), Some(name), PatternFilter::Exactly(pattern_type)) =
            (f.resource_type, &f.name, f.pattern)
        {
            if valid_znode_name(name) {
                out.insert(ResourcePattern {
                    resource_type,
                    name: name.clone(),
                    pattern_type,
                });
            }
        }
    }
    out
}

/// Whether a name can be a stored pattern's znode (no empty name, no `/`, no `.` or `..`).
fn valid_znode_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".."
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::acl::{AccessControlEntry, AclBinding, Operation, Permission};

    #[test]
    fn acls_survive_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileAclStore::in_dir(dir.path());
        assert_eq!(store.load().unwrap(), AclSet::default());
        let acls = AclSet::from_bindings([
            AclBinding {
                pattern: ResourcePattern {
                    resource_type: ResourceType::TransactionalId,
                    name: "tx".into(),
                    pattern_type: PatternType::Prefixed,
                },
                entry: AccessControlEntry {
                    principal: "User:alice".into(),
                    host: "*".into(),
                    operation: Operation::Write,
                    permission: Permission::Allow,
                },
            },
            AclBinding {
                pattern: ResourcePattern {
                    resource_type: ResourceType::Cluster,
                    name: "kafka-cluster".into(),
                    pattern_type: PatternType::Literal,
                },
                entry: AccessControlEntry {
                    principal: "User:*".into(),
                    host: "10.0.0.1".into(),
                    operation: Operation::IdempotentWrite,
                    permission: Permission::Deny,
                },
            },
        ]);
        store.save(&acls).unwrap();
        assert_eq!(store.load().unwrap(), acls);
        let text = std::fs::read_to_string(dir.path().join(ACL_FILE)).unwrap();
        assert!(text.contains("\"permissionType\": \"Deny\""), "{text}");
        assert!(
            text.contains("\"operation\": \"IdempotentWrite\""),
            "{text}"
        );
    }
}
