//! Where ACLs are kept. Standalone brokers keep them in `<log.dirs>/odradek-acls.json`, one
//! record per resource pattern holding Kafka's ZooKeeper form of its entries, written with
//! `util::durable::write_atomically` before a CreateAcls or DeleteAcls is answered.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::auth::acl::{PatternType, ResourcePattern, ResourceType, StoredAcls};
use crate::auth::AclSet;
use crate::util::durable;

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
