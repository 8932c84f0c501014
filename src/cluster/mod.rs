//! Cluster metadata: brokers, topics, partition assignments and producer-id blocks, behind one
//! trait with one backend per deployment mode.
//!
//! `standalone` keeps everything in a file in the data directory (one broker, no ZooKeeper). The
//! ZooKeeper backend implements the same trait in Kafka's ZooKeeper layout, membership included
//! (registration, controller election, controlled shutdown), dynamic configs included
//! (`/config/topics`, `/config/brokers`, change notifications under `/config/changes`). Nothing outside this module talks
//! to the metadata store directly; [`open`] picks the backend.

pub mod acls;
pub mod assignment;
pub mod model;
pub mod names;
pub mod reassignment;
pub mod standalone;
pub mod zookeeper;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::config::{
    BrokerConfig, BrokerEntity, ClientEntity, ClientEntityConfigs, DynamicBrokerConfigs,
};
use crate::util::task::Shutdown;

pub use model::{is_internal_topic, BrokerInfo, Endpoint, PartitionState, TopicMetadata};

/// Upper bound on partitions of one topic, so a request cannot make the broker allocate without
/// limit (Kafka has no such bound and would exhaust memory instead).
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

/// A topic creation request, already resolved to concrete counts.
#[derive(Clone, Debug)]
pub struct NewTopic {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// Explicit replica lists, one per partition, instead of counts.
    pub assignments: Option<Vec<Vec<i32>>>,
    pub configs: BTreeMap<String, String>,
}

/// Failures of metadata operations, each mapping to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("topic {0} already exists")]
    TopicAlreadyExists(String),
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("metadata storage failed: {0}")]
    Storage(#[from] std::io::Error),
    #[error("metadata file is corrupt: {0}")]
    Corrupt(String),
    /// The metadata store cannot be reached or the change raced another; retriable.
    #[error("cluster metadata unavailable: {0}")]
    Unavailable(String),
}

/// Announces metadata changes: `generation` grows with every change of the view or the link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetadataVersion {
    pub generation: u64,
    pub link: MetadataLink,
}

impl MetadataVersion {
    /// Whether the view is current and the metadata store can be written.
    pub fn usable(&self) -> bool {
        self.link == MetadataLink::Connected
    }
}

/// How far this broker can trust its metadata view and its own registration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetadataLink {
    /// Session connected and the view current.
    Connected,
    /// The connection to the store is down but the session may still be alive: the registration
    /// and the leaderships it backs stand until the session times out on the store's side. The
    /// view may be stale and nothing can be written.
    Disconnected {
        /// The negotiated session timeout.
        session_timeout_ms: u64,
    },
    /// The session is gone or the view could not be read: nothing in it can be trusted.
    #[default]
    Lost,
}

/// Why a leader's ISR write failed.
#[derive(Debug, thiserror::Error)]
pub enum IsrWriteError {
    /// The partition state changed since it was read (another leader or the controller wrote
    /// it): the leader keeps its ISR and waits for the next state.
    #[error("partition state changed")]
    Conflict,
    /// The store could not be reached; the leader retries later.
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
}

/// Failures of the controller's operations on partitions (reassignment, elections), each
/// mapping to one Kafka error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControllerError {
    #[error("this broker is not the controller")]
    NotController,
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("no partition reassignment is in progress")]
    NoReassignmentInProgress,
    #[error("leader election not needed")]
    ElectionNotNeeded,
    #[error("{0}")]
    PreferredLeaderNotAvailable(String),
    #[error("{0}")]
    EligibleLeadersNotAvailable(String),
    /// The change was made but had not reached this broker's view within the timeout.
    #[error("timed out waiting for the change to propagate")]
    TimedOut,
    /// The metadata store could not be reached or kept changing underneath.
    #[error("cluster metadata unavailable: {0}")]
    Unavailable(String),
}

/// What a leader election on request may do (KIP-460).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionType {
    /// Move leadership back to the first assigned replica, if it is in sync.
    Preferred,
    /// Give a partition without a live leader one, even from outside the ISR.
    Unclean,
}

/// A partition named by topic and index.
pub type PartitionKey = (String, i32);

/// One partition's requested move: `Some(target)` replicas, or `None` to cancel the move in
/// progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionReassignment {
    pub topic: String,
    pub partition: i32,
    pub target: Option<Vec<i32>>,
}

/// Cluster metadata and this broker's membership, behind one trait: every broker component uses
/// this view, whatever the backend.
#[async_trait]
pub trait ClusterMetadata: Send + Sync {
    fn cluster_id(&self) -> String;
    fn controller_id(&self) -> i32;
    fn live_brokers(&self) -> Vec<BrokerInfo>;
    fn topics(&self) -> Vec<Arc<TopicMetadata>>;
    fn topic(&self, name: &str) -> Option<Arc<TopicMetadata>>;
    fn topic_by_id(&self, id: Uuid) -> Option<Arc<TopicMetadata>>;
    /// Notified on every metadata change (topic configs and dynamic broker configs included).
    fn subscribe(&self) -> tokio::sync::watch::Receiver<MetadataVersion>;
    /// The dynamic broker configs stored for the cluster-wide default entity and for this
    /// broker, as stored (not yet checked).
    fn broker_configs(&self) -> DynamicBrokerConfigs;
    /// The configs of every user and client entity (SCRAM credentials, quotas), as stored.
    /// Changes announce themselves through [`ClusterMetadata::subscribe`].
    fn client_entities(&self) -> Arc<ClientEntityConfigs> {
        Arc::default()
    }
    /// Changes user and client entity configs: per entity, each key set (`Some`) or removed
    /// (`None`); all of it, or nothing on error. Every broker's metadata follows.
    async fn alter_client_entities(
        &self,
        changes: Vec<(ClientEntity, BTreeMap<String, Option<String>>)>,
    ) -> Result<(), ClusterError> {
        let _ = changes;
        Err(ClusterError::Unavailable(
            "user and client configs are not stored by this backend".into(),
        ))
    }
    /// Replaces every config override of a topic; every broker's metadata follows.
    async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), ClusterError>;
    /// Replaces the dynamic configs of a broker entity; every broker's metadata follows.
    async fn set_broker_configs(
        &self,
        entity: BrokerEntity,
        configs: BTreeMap<String, String>,
    ) -> Result<(), ClusterError>;
    /// Creates a topic (assigning replicas when not given). With `validate_only` nothing changes.
    async fn create_topic(
        &self,
        spec: NewTopic,
        validate_only: bool,
    ) -> Result<Arc<TopicMetadata>, ClusterError>;
    async fn delete_topic(&self, name: &str) -> Result<Arc<TopicMetadata>, ClusterError>;
    /// Grows a topic to `total` partitions.
    async fn create_partitions(
        &self,
        name: &str,
        total: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<Arc<TopicMetadata>, ClusterError>;
    /// A producer id never handed out before in this cluster, also across restarts.
    async fn allocate_producer_id(&self) -> Result<i64, ClusterError>;
    /// Records a leader's new ISR: writes `state` (same leader, leader epoch and controller
    /// epoch; a new ISR) if the partition's stored state is still at `state.state_version`;
    /// returns the new version.
    async fn write_isr(&self, topic: &str, state: &PartitionState) -> Result<i32, IsrWriteError>;
    /// Starts, replaces or cancels partition moves; only the controller does (else
    /// [`ControllerError::NotController`]). Answers each change in order.
    async fn alter_partition_reassignments(
        &self,
        changes: Vec<PartitionReassignment>,
    ) -> Result<Vec<Result<(), ControllerError>>, ControllerError>;
    /// Elects leaders of `partitions` (`None`: every partition, answering only those where an
    /// election happened or failed); only the controller does. Waits up to `timeout` for the
    /// new leaders to show in this broker's metadata.
    async fn elect_leaders(
        &self,
        kind: ElectionType,
        partitions: Option<Vec<PartitionKey>>,
        timeout: std::time::Duration,
    ) -> Result<Vec<(PartitionKey, Result<(), ControllerError>)>, ControllerError>;
    /// Joins the cluster once this broker's listeners are up: registers the broker and starts
    /// following the metadata, with tasks that end at `shutdown`.
    async fn join(
        self: Arc<Self>,
        shutdown: Shutdown,
        tasks: &mut JoinSet<()>,
    ) -> Result<(), ClusterError>;
    /// Before stopping: hands this broker's leaderships over (controlled shutdown).
    async fn leave(&self);
    /// Once serving has stopped: ends this broker's membership.
    async fn close(&self);
}

/// Opens the metadata backend `config` asks for: ZooKeeper when `zookeeper.connect` is set
/// (connecting within `zookeeper.connection.timeout.ms`), else the standalone file in the log
/// directory. Either way the log directory must belong to the cluster.
pub async fn open(config: &BrokerConfig) -> anyhow::Result<Arc<dyn ClusterMetadata>> {
    let dir = &config.log_dirs[0];
    let me = BrokerInfo::advertised(config);
    let Some(connect) = &config.zookeeper_connect else {
        let metadata = standalone::StandaloneMetadata::open(dir, me)
            .with_context(|| format!("opening metadata in {}", dir.display()))?;
        return Ok(Arc::new(metadata));
    };
    if config.broker_id < 0 {
        anyhow::bail!("cluster mode needs an explicit broker.id (generated ids are not supported)");
    }
    let proposed = standalone::stored_cluster_id(dir).unwrap_or_else(standalone::new_cluster_id);
    let protocols = config
        .listener_protocols
        .iter()
        .map(|(name, protocol)| (name.clone(), protocol.name().to_string()))
        .collect();
    let zk =
        zookeeper::ZkCluster::connect(connect, me, protocols, config.cluster.clone(), &proposed)
            .await
            .with_context(|| format!("joining the cluster at zookeeper.connect={connect}"))?;
    standalone::check_meta_properties(dir, config.broker_id, &zk.cluster_id()).with_context(
        || {
            format!(
                "data directory {} does not belong to this cluster",
                dir.display()
            )
        },
    )?;
    Ok(zk)
}

/// Checks a CreatePartitions request against the topic's `existing` partition count: `total` must
/// grow it within the limit, and explicit `assignments` must name one replica list per added
/// partition. Returns how many partitions are added.
pub fn partitions_to_add(
    existing: i32,
    total: i32,
    assignments: Option<&[Vec<i32>]>,
) -> Result<usize, ClusterError> {
    if total <= existing {
        return Err(ClusterError::InvalidPartitions(format!(
            "topic currently has {existing} partitions, {total} would not be an increase"
        )));
    }
    check_partition_count(total)?;
    let added = (total - existing) as usize;
    if let Some(lists) = assignments.filter(|l| l.len() != added) {
        return Err(ClusterError::InvalidReplicaAssignment(format!(
            "increasing the number of partitions by {added} but {} assignments provided",
            lists.len()
        )));
    }
    Ok(added)
}

/// Checks a topic's partition count: at least 1, at most [`MAX_PARTITIONS_PER_TOPIC`].
pub fn check_partition_count(count: i32) -> Result<(), ClusterError> {
    if count < 1 {
        return Err(ClusterError::InvalidPartitions(
            "number of partitions must be larger than 0".into(),
        ));
    }
    if count > MAX_PARTITIONS_PER_TOPIC {
        return Err(ClusterError::InvalidPartitions(format!(
            "number of partitions {count} exceeds the limit of {MAX_PARTITIONS_PER_TOPIC}"
        )));
    }
    Ok(())
}

/// Why an internal topic (`__consumer_offsets`, `__transaction_state`) was not created.
#[derive(Debug, thiserror::Error)]
pub enum InternalTopicError {
    #[error("replication factor {required} needs more than the {live} live brokers")]
    TooFewBrokers { required: i16, live: usize },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Creates an internal topic on first use, as Kafka does: refused while fewer brokers are
/// alive than its replication factor. `Ok(None)`: it exists already (perhaps created by
/// another broker meanwhile); `Ok(Some)`: created, for the caller to host its replicas.
pub async fn create_internal_topic(
    cluster: &dyn ClusterMetadata,
    spec: NewTopic,
) -> Result<Option<Arc<TopicMetadata>>, InternalTopicError> {
    if cluster.topic(&spec.name).is_some() {
        return Ok(None);
    }
    let live = cluster.live_brokers().len();
    if spec.replication_factor as usize > live {
        return Err(InternalTopicError::TooFewBrokers {
            required: spec.replication_factor,
            live,
        });
    }
    match cluster.create_topic(spec, false).await {
        Ok(topic) => Ok(Some(topic)),
        Err(ClusterError::TopicAlreadyExists(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
