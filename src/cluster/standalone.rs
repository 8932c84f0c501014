//! Standalone metadata: a single broker whose topics, partitions, topic configs, dynamic broker
//! configs, user and client configs (SCRAM credentials, quotas) and producer-id blocks live in `odradek-metadata.json` inside its log directory,
//! written atomically on every change.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::names::{collides, validate_topic_name};
use super::reassignment::{plan, refuse_unknown, ReplicaSet};
use super::{
    check_partition_count, partitions_to_add, BrokerInfo, ClusterError, ClusterMetadata,
    ControllerError, ElectionType, IsrWriteError, NewTopic, PartitionKey, PartitionReassignment,
    PartitionState, TopicMetadata,
};
use crate::config::{BrokerEntity, ClientEntity, ClientEntityConfigs, DynamicBrokerConfigs};
use crate::util::durable::write_atomically;
use crate::util::task::Shutdown;

const METADATA_FILE: &str = "odradek-metadata.json";
const META_PROPERTIES: &str = "meta.properties";
/// Producer ids are reserved from the file in blocks of this size.
const PRODUCER_ID_BLOCK: i64 = 1000;

#[derive(Serialize, Deserialize)]
struct StoredState {
    version: u32,
    cluster_id: String,
    /// First producer id not yet reserved on disk.
    next_producer_id_block: i64,
    topics: Vec<TopicMetadata>,
    /// Dynamic broker configs: the cluster-wide default entity and this broker's.
    #[serde(default)]
    broker_configs: DynamicBrokerConfigs,
    /// User and client entity configs.
    #[serde(default)]
    client_entities: Vec<StoredClientEntity>,
}

#[derive(Serialize, Deserialize)]
struct StoredClientEntity {
    entity: ClientEntity,
    configs: BTreeMap<String, String>,
}

struct State {
    cluster_id: String,
    topics: BTreeMap<String, Arc<TopicMetadata>>,
    broker_configs: DynamicBrokerConfigs,
    client_entities: Arc<ClientEntityConfigs>,
    next_producer_id_block: i64,
    next_producer_id: i64,
    producer_id_block_end: i64,
}

/// Metadata of a single-broker deployment.
pub struct StandaloneMetadata {
    broker: BrokerInfo,
    path: PathBuf,
    state: Mutex<State>,
    version: tokio::sync::watch::Sender<crate::cluster::MetadataVersion>,
}

impl StandaloneMetadata {
    /// Loads (or creates) the metadata of the broker whose log directory is `dir`.
    pub fn open(dir: &Path, broker: BrokerInfo) -> Result<StandaloneMetadata, ClusterError> {
        fs::create_dir_all(dir)?;
        let path = dir.join(METADATA_FILE);
        let stored = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<StoredState>(&bytes)
                .map_err(|e| ClusterError::Corrupt(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StoredState {
                version: 1,
                cluster_id: new_cluster_id(),
                next_producer_id_block: 0,
                topics: Vec::new(),
                broker_configs: DynamicBrokerConfigs::default(),
                client_entities: Vec::new(),
            },
            Err(e) => return Err(e.into()),
        };
        check_meta_properties(dir, broker.id, &stored.cluster_id)?;
        let state = State {
            cluster_id: stored.cluster_id,
            topics: stored
                .topics
                .into_iter()
                .map(|t| (t.name.clone(), Arc::new(t)))
                .collect(),
            broker_configs: stored.broker_configs,
            client_entities: Arc::new(ClientEntityConfigs {
                entities: stored
                    .client_entities
                    .into_iter()
                    .map(|e| (e.entity, e.configs))
                    .collect(),
            }),
            next_producer_id_block: stored.next_producer_id_block,
            next_producer_id: stored.next_producer_id_block,
            producer_id_block_end: stored.next_producer_id_block,
        };
        let metadata = StandaloneMetadata {
            broker,
            path,
            state: Mutex::new(state),
            version: tokio::sync::watch::channel(crate::cluster::MetadataVersion {
                generation: 0,
                link: crate::cluster::MetadataLink::Connected,
            })
            .0,
        };
        metadata.persist(&metadata.state.lock())?;
        Ok(metadata)
    }

    fn persist(&self, state: &State) -> Result<(), ClusterError> {
        let stored = StoredState {
            version: 1,
            cluster_id: state.cluster_id.clone(),
            next_producer_id_block: state.next_producer_id_block,
            topics: state.topics.values().map(|t| (**t).clone()).collect(),
            broker_configs: state.broker_configs.clone(),
            client_entities: state
                .client_entities
                .entities
                .iter()
                .map(|(entity, configs)| StoredClientEntity {
                    entity: entity.clone(),
                    configs: configs.clone(),
                })
                .collect(),
        };
        let bytes =
            serde_json::to_vec_pretty(&stored).map_err(|e| ClusterError::Corrupt(e.to_string()))?;
        write_atomically(&self.path, &bytes)?;
        Ok(())
    }

    /// Tells subscribers the topics changed.
    fn announce_change(&self) {
        self.version.send_modify(|v| v.generation += 1);
    }

    fn check_new_topic(
        &self,
        state: &State,
        spec: &NewTopic,
    ) -> Result<Vec<Vec<i32>>, ClusterError> {
        validate_topic_name(&spec.name).map_err(ClusterError::InvalidTopic)?;
        if state.topics.contains_key(&spec.name) {
            return Err(ClusterError::TopicAlreadyExists(spec.name.clone()));
        }
        if let Some(other) = state.topics.keys().find(|t| collides(t, &spec.name)) {
            return Err(ClusterError::InvalidTopic(format!(
                "topic {} collides with existing topic {other}",
                spec.name
            )));
        }
        match &spec.assignments {
            Some(lists) => {
                self.check_assignments(lists, None)?;
                Ok(lists.clone())
            }
            None => {
                check_partition_count(spec.num_partitions)?;
                self.check_replication_factor(spec.replication_factor)?;
                Ok(vec![vec![self.broker.id]; spec.num_partitions as usize])
            }
        }
    }

    fn check_replication_factor(&self, rf: i16) -> Result<(), ClusterError> {
        if rf < 1 {
            return Err(ClusterError::InvalidReplicationFactor(
                "replication factor must be larger than 0".into(),
            ));
        }
        if rf > 1 {
            return Err(ClusterError::InvalidReplicationFactor(format!(
                "replication factor: {rf} larger than available brokers: 1"
            )));
        }
        Ok(())
    }

    fn check_assignments(&self, lists: &[Vec<i32>], rf: Option<usize>) -> Result<(), ClusterError> {
        check_partition_count(i32::try_from(lists.len()).unwrap_or(i32::MAX))?;
        if lists.is_empty() {
            return Err(ClusterError::InvalidReplicaAssignment(
                "empty replica assignment".into(),
            ));
        }
        for list in lists {
            if list.is_empty() || rf.is_some_and(|rf| rf != list.len()) {
                return Err(ClusterError::InvalidReplicaAssignment(
                    "inconsistent replication factor between partitions".into(),
                ));
            }
            if let Some(bad) = list.iter().find(|b| **b != self.broker.id) {
                return Err(ClusterError::InvalidReplicaAssignment(format!(
                    "unknown broker {bad} in replica assignment"
                )));
            }
            if list.len() > 1 {
                return Err(ClusterError::InvalidReplicaAssignment(
                    "duplicate brokers in replica assignment".into(),
                ));
            }
        }
        Ok(())
    }
}

fn partition(index: usize, replicas: Vec<i32>) -> PartitionState {
    PartitionState {
        partition: index as i32,
        leader: replicas[0],
        leader_epoch: 0,
        isr: replicas.clone(),
        replicas,
        controller_epoch: 0,
        state_version: 0,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    }
}

#[async_trait]
impl ClusterMetadata for StandaloneMetadata {
    fn cluster_id(&self) -> String {
        self.state.lock().cluster_id.clone()
    }

    fn controller_id(&self) -> i32 {
        self.broker.id
    }

    fn live_brokers(&self) -> Vec<BrokerInfo> {
        vec![self.broker.clone()]
    }

    fn topics(&self) -> Vec<Arc<TopicMetadata>> {
        self.state.lock().topics.values().cloned().collect()
    }

    fn topic(&self, name: &str) -> Option<Arc<TopicMetadata>> {
        self.state.lock().topics.get(name).cloned()
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<crate::cluster::MetadataVersion> {
        self.version.subscribe()
    }

    fn broker_configs(&self) -> DynamicBrokerConfigs {
        self.state.lock().broker_configs.clone()
    }

    fn client_entities(&self) -> Arc<ClientEntityConfigs> {
        self.state.lock().client_entities.clone()
    }

    async fn alter_client_entities(
        &self,
        changes: Vec<(ClientEntity, BTreeMap<String, Option<String>>)>,
    ) -> Result<(), ClusterError> {
        let mut state = self.state.lock();
        let before = state.client_entities.clone();
        let mut changed = (*before).clone();
        changed.apply(changes);
        state.client_entities = Arc::new(changed);
        if let Err(e) = self.persist(&state) {
            state.client_entities = before;
            return Err(e);
        }
        self.announce_change();
        Ok(())
    }

    async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), ClusterError> {
        let mut state = self.state.lock();
        let current = state
            .topics
            .get(name)
            .cloned()
            .ok_or_else(|| ClusterError::UnknownTopic(name.into()))?;
        let changed = Arc::new(TopicMetadata {
            configs,
            ..(*current).clone()
        });
        state.topics.insert(name.to_string(), changed);
        if let Err(e) = self.persist(&state) {
            state.topics.insert(name.to_string(), current);
            return Err(e);
        }
        self.announce_change();
        Ok(())
    }

    async fn set_broker_configs(
        &self,
        entity: BrokerEntity,
        configs: BTreeMap<String, String>,
    ) -> Result<(), ClusterError> {
        let mut state = self.state.lock();
        let before = state.broker_configs.clone();
        match entity {
            BrokerEntity::Default => state.broker_configs.default = configs,
            BrokerEntity::Broker(id) if id == self.broker.id => {
                state.broker_configs.broker = configs
            }
            // Not this broker's entity: a standalone cluster has no other broker to use it.
            BrokerEntity::Broker(_) => return Ok(()),
        }
        if let Err(e) = self.persist(&state) {
            state.broker_configs = before;
            return Err(e);
        }
        self.announce_change();
        Ok(())
    }

    fn topic_by_id(&self, id: Uuid) -> Option<Arc<TopicMetadata>> {
        self.state
            .lock()
            .topics
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    async fn create_topic(
        &self,
        spec: NewTopic,
        validate_only: bool,
    ) -> Result<Arc<TopicMetadata>, ClusterError> {
        let mut state = self.state.lock();
        let assignments = self.check_new_topic(&state, &spec)?;
        let topic = Arc::new(TopicMetadata {
            name: spec.name.clone(),
            id: Uuid::new_v4(),
            partitions: assignments
                .into_iter()
                .enumerate()
                .map(|(i, r)| partition(i, r))
                .collect(),
            configs: spec.configs,
        });
        if !validate_only {
            state.topics.insert(spec.name, topic.clone());
            if let Err(e) = self.persist(&state) {
                state.topics.remove(&topic.name);
                return Err(e);
            }
            self.announce_change();
        }
        Ok(topic)
    }

    async fn delete_topic(&self, name: &str) -> Result<Arc<TopicMetadata>, ClusterError> {
        let mut state = self.state.lock();
        let removed = state
            .topics
            .remove(name)
            .ok_or_else(|| ClusterError::UnknownTopic(name.into()))?;
        if let Err(e) = self.persist(&state) {
            state.topics.insert(name.to_string(), removed);
            return Err(e);
        }
        self.announce_change();
        Ok(removed)
    }

    async fn create_partitions(
        &self,
        name: &str,
        total: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<Arc<TopicMetadata>, ClusterError> {
        let mut state = self.state.lock();
        let current = state
            .topics
            .get(name)
            .cloned()
            .ok_or_else(|| ClusterError::UnknownTopic(name.into()))?;
        let existing = current.partitions.len() as i32;
        let added = partitions_to_add(existing, total, assignments.as_deref())?;
        let lists = match assignments {
            Some(lists) => {
                self.check_assignments(&lists, Some(current.replication_factor() as usize))?;
                lists
            }
            None => vec![vec![self.broker.id]; added],
        };
        let mut grown = (*current).clone();
        for (i, replicas) in lists.into_iter().enumerate() {
            grown
                .partitions
                .push(partition(existing as usize + i, replicas));
        }
        let grown = Arc::new(grown);
        if !validate_only {
            state.topics.insert(name.to_string(), grown.clone());
            if let Err(e) = self.persist(&state) {
                state.topics.insert(name.to_string(), current);
                return Err(e);
            }
            self.announce_change();
        }
        Ok(grown)
    }

    async fn allocate_producer_id(&self) -> Result<i64, ClusterError> {
        let mut state = self.state.lock();
        if state.next_producer_id >= state.producer_id_block_end {
            let start = state.next_producer_id_block;
            state.next_producer_id_block = start + PRODUCER_ID_BLOCK;
            if let Err(e) = self.persist(&state) {
                state.next_producer_id_block = start;
                return Err(e);
            }
            state.next_producer_id = start;
            state.producer_id_block_end = start + PRODUCER_ID_BLOCK;
        }
        let id = state.next_producer_id;
        state.next_producer_id += 1;
        Ok(id)
    }

    /// The only broker holds every replica: a move to itself is no move, any other broker is
    /// not alive.
    async fn alter_partition_reassignments(
        &self,
        changes: Vec<PartitionReassignment>,
    ) -> Result<Vec<Result<(), ControllerError>>, ControllerError> {
        let me = self.broker.id;
        Ok(changes
            .iter()
            .map(|change| {
                let replicas = self
                    .topic(&change.topic)
                    .and_then(|t| {
                        let p = usize::try_from(change.partition).ok()?;
                        t.partitions.get(p).map(|p| p.replicas.clone())
                    })
                    .ok_or_else(|| refuse_unknown(change.target.as_deref(), |b| b == me))?;
                let current = ReplicaSet {
                    replicas,
                    ..ReplicaSet::default()
                };
                plan(&current, change.target.as_deref(), |b| b == me).map(|_| ())
            })
            .collect())
    }

    /// Every partition is led by its only (preferred, live) replica: no election is needed.
    async fn elect_leaders(
        &self,
        _kind: ElectionType,
        partitions: Option<Vec<PartitionKey>>,
        _timeout: std::time::Duration,
    ) -> Result<Vec<(PartitionKey, Result<(), ControllerError>)>, ControllerError> {
        let Some(partitions) = partitions else {
            return Ok(Vec::new());
        };
        Ok(partitions
            .into_iter()
            .map(|(topic, p)| {
                let known = self
                    .topic(&topic)
                    .is_some_and(|t| usize::try_from(p).is_ok_and(|i| i < t.partitions.len()));
                let outcome = if known {
                    Err(ControllerError::ElectionNotNeeded)
                } else {
                    Err(ControllerError::UnknownTopicOrPartition)
                };
                ((topic, p), outcome)
            })
            .collect())
    }

    async fn write_isr(&self, _topic: &str, _state: &PartitionState) -> Result<i32, IsrWriteError> {
        Err(IsrWriteError::Unavailable(
            "a standalone broker is every partition's only replica: its ISR never changes".into(),
        ))
    }

    async fn join(
        self: Arc<Self>,
        _shutdown: Shutdown,
        _tasks: &mut tokio::task::JoinSet<()>,
    ) -> Result<(), ClusterError> {
        Ok(())
    }

    async fn leave(&self) {}

    async fn close(&self) {}
}

/// A new cluster id in Kafka's form: a random UUID as Kafka prints it (22 characters).
pub fn new_cluster_id() -> String {
    crate::util::kafka_uuid::to_string(Uuid::new_v4())
}

/// Writes Kafka's `meta.properties` on first start and refuses a directory of another broker or cluster.
/// The cluster id recorded in `<dir>/meta.properties`, if any.
pub fn stored_cluster_id(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join(META_PROPERTIES)).ok()?;
    crate::config::properties::parse(&text).remove("cluster.id")
}

/// Checks (or writes) `<dir>/meta.properties`: the data must belong to this broker id and
/// this cluster.
pub fn check_meta_properties(
    dir: &Path,
    broker_id: i32,
    cluster_id: &str,
) -> Result<(), ClusterError> {
    let path = dir.join(META_PROPERTIES);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let props = crate::config::properties::parse(&text);
            let stored_broker = props.get("broker.id").and_then(|v| v.parse::<i32>().ok());
            if stored_broker.is_some_and(|id| id != broker_id) {
                return Err(ClusterError::Corrupt(format!(
                    "{} belongs to broker.id {} but this broker is {broker_id}",
                    path.display(),
                    stored_broker.unwrap_or_default()
                )));
            }
            if props.get("cluster.id").is_some_and(|id| id != cluster_id) {
                return Err(ClusterError::Corrupt(format!(
                    "{} names another cluster than {}",
                    path.display(),
                    METADATA_FILE
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = format!("version=0\nbroker.id={broker_id}\ncluster.id={cluster_id}\n");
            write_atomically(&path, text.as_bytes())?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker() -> BrokerInfo {
        BrokerInfo {
            id: 0,
            endpoints: vec![crate::cluster::Endpoint {
                listener: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092,
            }],
            rack: None,
        }
    }

    fn spec(name: &str, partitions: i32, rf: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            assignments: None,
            configs: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn topics_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let m = StandaloneMetadata::open(dir.path(), broker()).unwrap();
        let t = m.create_topic(spec("a", 3, 1), false).await.unwrap();
        assert_eq!(t.partitions.len(), 3);
        assert!(matches!(
            m.create_topic(spec("a", 1, 1), false).await,
            Err(ClusterError::TopicAlreadyExists(_))
        ));
        assert!(matches!(
            m.create_topic(spec("huge", i32::MAX, 1), false).await,
            Err(ClusterError::InvalidPartitions(_))
        ));
        assert!(matches!(
            m.create_partitions("a", i32::MAX, None, false).await,
            Err(ClusterError::InvalidPartitions(_))
        ));
        assert!(matches!(
            m.create_topic(spec("b", 1, 2), false).await,
            Err(ClusterError::InvalidReplicationFactor(_))
        ));
        m.create_topic(spec("v", 1, 1), true).await.unwrap();
        m.create_partitions("a", 5, None, false).await.unwrap();
        let id = m.cluster_id();
        drop(m);
        let m = StandaloneMetadata::open(dir.path(), broker()).unwrap();
        assert_eq!(m.cluster_id(), id);
        assert_eq!(m.topic("a").unwrap().partitions.len(), 5);
        assert_eq!(m.topic("a").unwrap().id, t.id);
        assert!(m.topic("v").is_none());
        m.delete_topic("a").await.unwrap();
        assert!(m.topic("a").is_none());
    }

    #[tokio::test]
    async fn configs_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let m = StandaloneMetadata::open(dir.path(), broker()).unwrap();
        m.create_topic(spec("a", 1, 1), false).await.unwrap();
        let overrides = BTreeMap::from([("retention.ms".to_string(), "100".to_string())]);
        m.set_topic_configs("a", overrides.clone()).await.unwrap();
        assert!(matches!(
            m.set_topic_configs("nope", BTreeMap::new()).await,
            Err(ClusterError::UnknownTopic(_))
        ));
        let default = BTreeMap::from([("log.retention.ms".to_string(), "5".to_string())]);
        let own = BTreeMap::from([("num.io.threads".to_string(), "4".to_string())]);
        m.set_broker_configs(BrokerEntity::Default, default.clone())
            .await
            .unwrap();
        m.set_broker_configs(BrokerEntity::Broker(0), own.clone())
            .await
            .unwrap();
        drop(m);
        let m = StandaloneMetadata::open(dir.path(), broker()).unwrap();
        assert_eq!(m.topic("a").unwrap().configs, overrides);
        assert_eq!(
            m.broker_configs(),
            DynamicBrokerConfigs {
                default,
                broker: own
            }
        );
    }

    #[tokio::test]
    async fn client_entity_configs_survive_reopen_and_announce_changes() {
        use crate::config::EntityName;
        let dir = tempfile::tempdir().unwrap();
        let m = StandaloneMetadata::open(dir.path(), broker()).unwrap();
        let changes = m.subscribe();
        let alice = ClientEntity::User(EntityName::Named("alice".into()));
        let set = |k: &str, v: Option<&str>| (k.to_string(), v.map(str::to_string));
        m.alter_client_entities(vec![(
            alice.clone(),
            BTreeMap::from([
                set("SCRAM-SHA-256", Some("salt=AA==")),
                set("producer_byte_rate", Some("10")),
            ]),
        )])
        .await
        .unwrap();
        assert!(changes.has_changed().unwrap(), "subscribers are told");
        m.alter_client_entities(vec![(
            alice.clone(),
            BTreeMap::from([set("producer_byte_rate", None)]),
        )])
        .await
        .unwrap();
        drop(m);
        let m = StandaloneMetadata::open(dir.path(), broker()).unwrap();
        let stored = m.client_entities();
        assert_eq!(stored.value(&alice, "SCRAM-SHA-256"), Some("salt=AA=="));
        assert_eq!(stored.value(&alice, "producer_byte_rate"), None);
    }

    #[test]
    fn a_file_without_broker_configs_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        drop(StandaloneMetadata::open(dir.path(), broker()).unwrap());
        let path = dir.path().join(METADATA_FILE);
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        json.as_object_mut().unwrap().remove("broker_configs");
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
        let m = StandaloneMetadata::open(dir.path(), broker()).unwrap();
        assert_eq!(m.broker_configs(), DynamicBrokerConfigs::default());
    }

    #[tokio::test]
    async fn producer_ids_never_repeat_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let m = StandaloneMetadata::open(dir.path(), broker()).unwrap();
        let first = m.allocate_producer_id().await.unwrap();
        let second = m.allocate_producer_id().await.unwrap();
        assert_eq!(second, first + 1);
        drop(m);
        let m = StandaloneMetadata::open(dir.path(), broker()).unwrap();
        assert!(m.allocate_producer_id().await.unwrap() > second);
    }

    #[test]
    fn refuses_another_brokers_directory() {
        let dir = tempfile::tempdir().unwrap();
        drop(StandaloneMetadata::open(dir.path(), broker()).unwrap());
        let other = BrokerInfo { id: 7, ..broker() };
        assert!(StandaloneMetadata::open(dir.path(), other).is_err());
    }

    #[test]
    fn cluster_id_is_kafka_shaped() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
    }
}
