//! Znode paths of Kafka's ZooKeeper layout (Kafka's `ZkData`), and the `zookeeper.connect`
//! string with its optional chroot.
//!
//! Every path here is relative to the chroot: the client applies the chroot itself.

use super::client::ZkError;

pub const BROKERS: &str = "/brokers";
pub const BROKER_IDS: &str = "/brokers/ids";
pub const BROKER_TOPICS: &str = "/brokers/topics";
/// Used by brokers with `broker.id.generation.enable` to draw ids (its zk version is the id).
pub const BROKER_SEQID: &str = "/brokers/seqid";
/// Ephemeral: the elected controller.
pub const CONTROLLER: &str = "/controller";
/// Plain integer, bumped by each newly elected controller.
pub const CONTROLLER_EPOCH: &str = "/controller_epoch";
pub const CLUSTER: &str = "/cluster";
pub const CLUSTER_ID: &str = "/cluster/id";
pub const ADMIN: &str = "/admin";
pub const ADMIN_DELETE_TOPICS: &str = "/admin/delete_topics";
/// Legacy (pre-2.4) reassignment request written by tools.
pub const ADMIN_REASSIGN_PARTITIONS: &str = "/admin/reassign_partitions";
pub const ADMIN_PREFERRED_REPLICA_ELECTION: &str = "/admin/preferred_replica_election";
pub const ISR_CHANGE_NOTIFICATION: &str = "/isr_change_notification";
/// Prefix of the sequential children of [`ISR_CHANGE_NOTIFICATION`].
pub const ISR_CHANGE_PREFIX: &str = "isr_change_";
pub const LOG_DIR_EVENT_NOTIFICATION: &str = "/log_dir_event_notification";
pub const CONFIG: &str = "/config";
pub const CONFIG_TOPICS: &str = "/config/topics";
pub const CONFIG_BROKERS: &str = "/config/brokers";
pub const CONFIG_CHANGES: &str = "/config/changes";
/// Create path of a config change notification (persistent sequential).
pub const CONFIG_CHANGE_SEQUENCE: &str = "/config/changes/config_change_";
pub const CONFIG_CHANGE_PREFIX: &str = "config_change_";
pub const LATEST_PRODUCER_ID_BLOCK: &str = "/latest_producer_id_block";
/// Old consumers' path; Kafka still creates it at startup.
pub const CONSUMERS: &str = "/consumers";
/// Literal ACLs: `/kafka-acl/<ResourceType>/<name>` (Kafka's `LiteralAclStore`).
pub const KAFKA_ACL: &str = "/kafka-acl";
/// Change notifications for literal ACLs (`acl_changes_<seq>` holding `TOPIC:<name>`).
pub const KAFKA_ACL_CHANGES: &str = "/kafka-acl-changes";
/// Root of the ACLs of non-literal patterns (Kafka's `ExtendedAclZNode`).
pub const KAFKA_ACL_EXTENDED: &str = "/kafka-acl-extended";
/// Prefixed ACLs: `/kafka-acl-extended/prefixed/<ResourceType>/<name>`.
pub const KAFKA_ACL_EXTENDED_PREFIXED: &str = "/kafka-acl-extended/prefixed";
/// Change notifications for extended ACLs (`acl_changes_<seq>` holding JSON).
pub const KAFKA_ACL_EXTENDED_CHANGES: &str = "/kafka-acl-extended-changes";
/// Prefix of the sequential children of both ACL change roots.
pub const ACL_CHANGE_PREFIX: &str = "acl_changes_";

/// Config entity types Kafka keeps under `/config` (`ConfigType.ALL`).
pub const CONFIG_ENTITY_TYPES: [&str; 5] = ["topics", "clients", "users", "brokers", "ips"];

/// Persistent paths Kafka makes sure exist when a broker starts (`ZkData.PersistentZkPaths`).
pub fn persistent_paths() -> Vec<String> {
    let mut paths: Vec<String> = [
        CONSUMERS,
        BROKER_IDS,
        BROKER_TOPICS,
        CONFIG_CHANGES,
        ADMIN_DELETE_TOPICS,
        BROKER_SEQID,
        ISR_CHANGE_NOTIFICATION,
        LATEST_PRODUCER_ID_BLOCK,
        LOG_DIR_EVENT_NOTIFICATION,
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    paths.extend(CONFIG_ENTITY_TYPES.iter().map(|t| format!("{CONFIG}/{t}")));
    paths
}

/// Odradek's channel for controlled shutdown (Kafka used the ControlledShutdown RPC): a broker
/// about to stop creates the ephemeral `<this>/<id>`, and the controller moves its leaderships.
pub const CONTROLLED_SHUTDOWN: &str = "/admin/controlled_shutdown";

pub fn controlled_shutdown(id: i32) -> String {
    format!("{CONTROLLED_SHUTDOWN}/{id}")
}

pub fn broker(id: i32) -> String {
    format!("{BROKER_IDS}/{id}")
}

pub fn topic(name: &str) -> String {
    format!("{BROKER_TOPICS}/{name}")
}

pub fn topic_partitions(name: &str) -> String {
    format!("{BROKER_TOPICS}/{name}/partitions")
}

pub fn partition(name: &str, partition: i32) -> String {
    format!("{BROKER_TOPICS}/{name}/partitions/{partition}")
}

pub fn partition_state(name: &str, partition: i32) -> String {
    format!("{BROKER_TOPICS}/{name}/partitions/{partition}/state")
}

pub fn delete_topic(name: &str) -> String {
    format!("{ADMIN_DELETE_TOPICS}/{name}")
}

pub fn topic_config(name: &str) -> String {
    format!("{CONFIG_TOPICS}/{name}")
}

pub fn broker_config(id: i32) -> String {
    format!("{CONFIG_BROKERS}/{id}")
}

/// The entity name of the cluster-wide default broker config (`/config/brokers/<default>`).
pub const DEFAULT_ENTITY: &str = "<default>";

/// A broker config entity's znode by entity name (a broker id or [`DEFAULT_ENTITY`]).
pub fn broker_entity_config(entity: &str) -> String {
    format!("{CONFIG_BROKERS}/{entity}")
}

/// `entity_path` of a config change notification for a topic (Kafka's sanitized entity path).
pub fn topic_entity_path(name: &str) -> String {
    format!("topics/{name}")
}

/// `entity_path` of a config change notification for a broker entity.
pub fn broker_entity_path(entity: &str) -> String {
    format!("brokers/{entity}")
}

/// The sequence number of a `config_change_<seq>` child, if it is one.
pub fn config_change_sequence(child: &str) -> Option<i64> {
    child.strip_prefix(CONFIG_CHANGE_PREFIX)?.parse().ok()
}

/// The parent of a path (`/a/b` → `/a`, `/a` → `/`).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// A parsed `zookeeper.connect` value: `host:port[,host:port...][/chroot]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectString {
    /// `host:port` pairs, in order.
    pub hosts: Vec<String>,
    /// The chroot, normalized without a trailing slash; `None` for the root.
    pub chroot: Option<String>,
}

impl ConnectString {
    pub fn parse(s: &str) -> Result<ConnectString, ZkError> {
        let bad = |why: &str| ZkError::Other(format!("bad zookeeper.connect {s:?}: {why}"));
        let s = s.trim();
        let (hosts_part, chroot) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i..])),
            None => (s, None),
        };
        let hosts: Vec<String> = hosts_part
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| {
                if h.rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
                {
                    Ok(h.to_string())
                } else if h.contains(':') && !h.ends_with(']') && !h.starts_with('[') {
                    Err(bad(&format!("bad port in {h:?}")))
                } else {
                    // Kafka (the ZooKeeper Java client) defaults the port to 2181.
                    Ok(format!("{h}:2181"))
                }
            })
            .collect::<Result<_, _>>()?;
        if hosts.is_empty() {
            return Err(bad("no host"));
        }
        let chroot = match chroot {
            None => None,
            Some(c) => {
                let c = c.trim_end_matches('/');
                if c.is_empty() {
                    None
                } else {
                    if c.split('/')
                        .skip(1)
                        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
                    {
                        return Err(bad("invalid chroot path"));
                    }
                    Some(c.to_string())
                }
            }
        };
        Ok(ConnectString { hosts, chroot })
    }

    /// The host list as the client library takes it (no chroot).
    pub fn hosts_string(&self) -> String {
        self.hosts.join(",")
    }
}

impl std::fmt::Display for ConnectString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}",
            self.hosts_string(),
            self.chroot.as_deref().unwrap_or("")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_paths() {
        assert_eq!(broker(3), "/brokers/ids/3");
        assert_eq!(topic("t"), "/brokers/topics/t");
        assert_eq!(
            partition_state("t", 2),
            "/brokers/topics/t/partitions/2/state"
        );
        assert_eq!(delete_topic("t"), "/admin/delete_topics/t");
        assert_eq!(topic_config("t"), "/config/topics/t");
        assert_eq!(broker_config(1), "/config/brokers/1");
        assert_eq!(topic_entity_path("t"), "topics/t");
        assert_eq!(
            broker_entity_config(DEFAULT_ENTITY),
            "/config/brokers/<default>"
        );
        assert_eq!(broker_entity_path("2"), "brokers/2");
        assert_eq!(config_change_sequence("config_change_0000000042"), Some(42));
        assert_eq!(config_change_sequence("other"), None);
        assert!(persistent_paths().contains(&"/config/topics".to_string()));
        assert!(persistent_paths().contains(&"/latest_producer_id_block".to_string()));
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(parent("/a"), "/");
    }

    #[test]
    fn connect_string_with_chroot() {
        let c = ConnectString::parse("zk1:2181,zk2:2182/kafka/prod").unwrap();
        assert_eq!(c.hosts, vec!["zk1:2181", "zk2:2182"]);
        assert_eq!(c.chroot.as_deref(), Some("/kafka/prod"));
        assert_eq!(c.to_string(), "zk1:2181,zk2:2182/kafka/prod");
    }

    #[test]
    fn connect_string_without_chroot() {
        let c = ConnectString::parse("127.0.0.1:2181").unwrap();
        assert_eq!(c.chroot, None);
        let c = ConnectString::parse("zk/").unwrap();
        assert_eq!(c.hosts, vec!["zk:2181"]);
        assert_eq!(c.chroot, None);
    }

    #[test]
    fn connect_string_rejects_garbage() {
        assert!(ConnectString::parse("").is_err());
        assert!(ConnectString::parse("/chroot").is_err());
        assert!(ConnectString::parse("zk:2181/a//b").is_err());
        assert!(ConnectString::parse("zk:notaport").is_err());
    }
}
