//! The broker: configuration, cluster metadata and hosted replicas, and the topic lifecycle
//! operations that must keep metadata and on-disk logs in step.
//!
//! Standalone, metadata lives in the data directory and this broker leads every partition. In
//! cluster mode (`zookeeper.connect`), metadata comes from ZooKeeper and [`cluster_sync`] turns
//! each change into leader/follower roles of the hosted replicas.

pub mod cluster_sync;

use std::sync::Arc;

use anyhow::Context;
use tracing::{info, warn};

use crate::cluster::standalone::{check_meta_properties, stored_cluster_id, StandaloneMetadata};
use crate::cluster::zookeeper::ZkCluster;
use crate::cluster::{BrokerInfo, ClusterError, ClusterMetadata, NewTopic, TopicMetadata};
use crate::config::BrokerConfig;
use crate::group::{GroupCoordinator, OFFSETS_TOPIC};
use crate::log::LogManager;
use crate::replica::ReplicaManager;

/// Shared state of one running broker; handlers receive `&Broker`.
pub struct Broker {
    pub config: BrokerConfig,
    pub cluster: Arc<dyn ClusterMetadata>,
    pub replicas: ReplicaManager,
    pub groups: GroupCoordinator,
    /// Cluster mode: the ZooKeeper session behind `cluster` (registration, controller, shutdown).
    pub zookeeper: Option<Arc<ZkCluster>>,
    /// Serializes applying a topic's metadata to the replicas (the sync task and topic
    /// operations both do it; a partition's directory must be claimed once).
    applying: parking_lot::Mutex<()>,
    /// Held for the broker's lifetime so no second process opens the same data.
    _dir_lock: DirLock,
}

/// Failures of topic lifecycle operations.
#[derive(Debug, thiserror::Error)]
pub enum TopicOpError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("storage: {0}")]
    Storage(#[from] crate::log::LogError),
}

impl Broker {
    /// Opens the broker in the mode its configuration asks for.
    pub async fn open(config: BrokerConfig) -> anyhow::Result<Broker> {
        match config.zookeeper_connect.clone() {
            Some(connect) => Self::open_clustered(config, &connect).await,
            None => tokio::task::spawn_blocking(move || Self::open_standalone(config)).await?,
        }
    }

    /// Opens a standalone broker: metadata and logs in the (single) log directory.
    pub fn open_standalone(config: BrokerConfig) -> anyhow::Result<Broker> {
        let dir = config.log_dirs[0].clone();
        let broker_id = config.broker_id.max(0);
        let me = self_info(&config, broker_id);
        let dir_lock = DirLock::acquire(&dir)?;
        let logs = open_logs(&config)?;
        let cluster = StandaloneMetadata::open(&dir, me)
            .with_context(|| format!("opening metadata in {}", dir.display()))?;
        let broker = Broker {
            replicas: ReplicaManager::new(broker_id, logs, config.replication.clone()),
            groups: GroupCoordinator::new(config.group.clone()),
            cluster: Arc::new(cluster),
            zookeeper: None,
            config,
            applying: parking_lot::Mutex::new(()),
            _dir_lock: dir_lock,
        };
        broker.host_all_topics()?;
        broker
            .groups
            .load(&broker.replicas, crate::maintenance::now_ms());
        Ok(broker)
    }

    /// Opens a broker of a ZooKeeper-coordinated cluster: connects (failing after
    /// `zookeeper.connection.timeout.ms`), checks the data directory belongs to this cluster,
    /// opens the logs and takes the roles the current metadata gives this broker. The broker
    /// registers only once its listener is up ([`Broker::join_cluster`]).
    pub async fn open_clustered(config: BrokerConfig, connect: &str) -> anyhow::Result<Broker> {
        if config.broker_id < 0 {
            anyhow::bail!(
                "cluster mode needs an explicit broker.id (generated ids are not supported)"
            );
        }
        let dir = config.log_dirs[0].clone();
        let broker_id = config.broker_id;
        let dir_lock = DirLock::acquire(&dir)?;
        let proposed =
            stored_cluster_id(&dir).unwrap_or_else(crate::cluster::standalone::new_cluster_id);
        let zk = ZkCluster::connect(
            connect,
            self_info(&config, broker_id),
            config.cluster.clone(),
            &proposed,
        )
        .await
        .with_context(|| format!("joining the cluster at zookeeper.connect={connect}"))?;
        check_meta_properties(&dir, broker_id, &zk.cluster_id()).with_context(|| {
            format!(
                "data directory {} does not belong to this cluster",
                dir.display()
            )
        })?;
        let logs = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || open_logs(&config)).await??
        };
        let replicas = ReplicaManager::new(broker_id, logs, config.replication.clone());
        replicas.set_cluster_link(zk.clone());
        let broker = Broker {
            replicas,
            groups: GroupCoordinator::new(config.group.clone()),
            cluster: zk.clone(),
            zookeeper: Some(zk),
            config,
            applying: parking_lot::Mutex::new(()),
            _dir_lock: dir_lock,
        };
        cluster_sync::apply_all(&broker);
        broker.warn_unknown_logs()?;
        info!(
            topics = broker.cluster.topics().len(),
            hosted = broker.replicas.hosted().len(),
            "cluster metadata loaded"
        );
        Ok(broker)
    }

    /// Cluster mode: registers this broker (its listener must be up) and starts following the
    /// metadata: the ZooKeeper watcher, the controller election loop and the replica sync.
    pub async fn join_cluster(
        self: &Arc<Self>,
        stop: tokio::sync::watch::Receiver<bool>,
        tasks: &mut tokio::task::JoinSet<()>,
    ) -> anyhow::Result<()> {
        let Some(zk) = self.zookeeper.clone() else {
            return Ok(());
        };
        zk.register().await.context("registering in ZooKeeper")?;
        let watcher = zk.spawn_watcher(stop.clone());
        tasks.spawn(async move {
            let _ = watcher.await;
        });
        tasks.spawn(crate::cluster::zookeeper::controller::run(zk, stop.clone()));
        tasks.spawn(cluster_sync::run(self.clone(), stop));
        Ok(())
    }

    /// Cluster mode, before stopping: hands leaderships over (controlled shutdown).
    pub async fn leave_cluster(&self) {
        if let Some(zk) = &self.zookeeper {
            zk.controlled_shutdown().await;
        }
    }

    /// Cluster mode, once serving has stopped: ends fetchers and closes the session.
    pub async fn disconnect(&self) {
        self.replicas.shutdown().await;
        if let Some(zk) = &self.zookeeper {
            zk.close().await;
        }
    }

    fn warn_unknown_logs(&self) -> anyhow::Result<()> {
        let known: std::collections::HashSet<(String, i32)> = self
            .cluster
            .topics()
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.partition)))
            .collect();
        for tp in self.replicas.logs().partitions_on_disk()? {
            if !known.contains(&(tp.topic.to_string(), tp.partition)) {
                warn!(topic = %tp.topic, partition = tp.partition, "log directory of an unknown partition left untouched");
            }
        }
        Ok(())
    }

    fn host_all_topics(&self) -> anyhow::Result<()> {
        let topics = self.cluster.topics();
        for topic in &topics {
            self.replicas
                .host_topic(topic, &self.config)
                .with_context(|| format!("opening logs of topic {}", topic.name))?;
        }
        self.warn_unknown_logs()?;
        info!(topics = topics.len(), "partitions opened");
        Ok(())
    }

    pub fn broker_id(&self) -> i32 {
        self.config.broker_id.max(0)
    }

    /// Creates a topic and opens its logs.
    pub async fn create_topic(
        &self,
        spec: NewTopic,
        validate_only: bool,
    ) -> Result<Arc<TopicMetadata>, TopicOpError> {
        let topic = self.cluster.create_topic(spec, validate_only).await?;
        if !validate_only {
            self.host(&topic)?;
            info!(topic = %topic.name, partitions = topic.partitions.len(), "topic created");
        }
        Ok(topic)
    }

    /// Creates a topic with the broker defaults (auto.create.topics.enable).
    pub async fn auto_create_topic(&self, name: &str) -> Result<Arc<TopicMetadata>, TopicOpError> {
        let spec = NewTopic {
            name: name.to_string(),
            num_partitions: self.config.num_partitions,
            replication_factor: self.config.default_replication_factor as i16,
            assignments: None,
            configs: Default::default(),
        };
        match self.create_topic(spec, false).await {
            Err(TopicOpError::Cluster(ClusterError::TopicAlreadyExists(_))) => self
                .cluster
                .topic(name)
                .ok_or_else(|| TopicOpError::Cluster(ClusterError::UnknownTopic(name.into()))),
            other => other,
        }
    }

    pub async fn delete_topic(&self, name: &str) -> Result<Arc<TopicMetadata>, TopicOpError> {
        let topic = self.cluster.delete_topic(name).await?;
        if self.zookeeper.is_none() {
            self.replicas.remove_topic(&topic)?;
        }
        info!(topic = %topic.name, "topic deleted");
        Ok(topic)
    }

    pub async fn create_partitions(
        &self,
        name: &str,
        total: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<Arc<TopicMetadata>, TopicOpError> {
        let topic = self
            .cluster
            .create_partitions(name, total, assignments, validate_only)
            .await?;
        if !validate_only {
            self.host(&topic)?;
            info!(topic = %topic.name, partitions = topic.partitions.len(), "partitions added");
        }
        Ok(topic)
    }

    /// Opens this broker's replicas of a new or grown topic: standalone as leader, in cluster
    /// mode in the role its metadata says (the sync task would do the same a moment later).
    fn host(&self, topic: &TopicMetadata) -> Result<(), TopicOpError> {
        if self.zookeeper.is_some() {
            cluster_sync::apply_topic(self, topic);
        } else {
            self.replicas.host_topic(topic, &self.config)?;
            if topic.name == OFFSETS_TOPIC {
                let now = crate::maintenance::now_ms();
                for p in &topic.partitions {
                    self.groups.load_partition(&self.replicas, p.partition, now);
                }
            }
        }
        Ok(())
    }

    /// This broker as clients reach it.
    pub fn advertised_self(&self) -> BrokerInfo {
        let id = self.broker_id();
        self.cluster
            .live_brokers()
            .into_iter()
            .find(|b| b.id == id)
            .unwrap_or_else(|| BrokerInfo {
                id,
                host: advertised_host(&self.config.advertised().host),
                port: self.config.advertised().port,
                rack: self.config.rack.clone(),
            })
    }

    /// Creates `__consumer_offsets` on first use, as Kafka does when a coordinator is first looked up.
    pub async fn ensure_offsets_topic(&self) -> Result<(), kafka_protocol::error::ResponseError> {
        use kafka_protocol::error::ResponseError;
        if self.cluster.topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let settings = &self.config.group;
        let live = self.cluster.live_brokers().len();
        if settings.offsets_topic_replication_factor as usize > live {
            warn!(
                required = settings.offsets_topic_replication_factor,
                live,
                "too few brokers for offsets.topic.replication.factor; groups are unavailable"
            );
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let configs = [
            ("cleanup.policy", "compact".to_string()),
            ("compression.type", "producer".to_string()),
            (
                "segment.bytes",
                settings.offsets_topic_segment_bytes.to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let spec = NewTopic {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: settings.offsets_topic_num_partitions,
            replication_factor: settings.offsets_topic_replication_factor,
            assignments: None,
            configs,
        };
        match self.create_topic(spec, false).await {
            Ok(_) | Err(TopicOpError::Cluster(ClusterError::TopicAlreadyExists(_))) => Ok(()),
            Err(e) => {
                warn!(error = %e, "creating __consumer_offsets failed");
                Err(ResponseError::CoordinatorNotAvailable)
            }
        }
    }

    /// The broker coordinating `group`: the leader of its `__consumer_offsets` partition
    /// (created on first use).
    pub async fn group_coordinator_node(
        &self,
        group: &str,
    ) -> Result<BrokerInfo, kafka_protocol::error::ResponseError> {
        use kafka_protocol::error::ResponseError;
        self.ensure_offsets_topic().await?;
        let leader = self
            .cluster
            .topic(OFFSETS_TOPIC)
            .and_then(|t| {
                t.partition(self.groups.partition_of(group))
                    .map(|p| p.leader)
            })
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        if leader == self.broker_id() {
            return Ok(self.advertised_self());
        }
        self.cluster
            .live_brokers()
            .into_iter()
            .find(|b| b.id == leader)
            .ok_or(ResponseError::CoordinatorNotAvailable)
    }

    /// Checks that this broker coordinates `group` (leads its `__consumer_offsets` partition),
    /// creating the offsets topic on first use.
    pub async fn check_group_coordinator(
        &self,
        group: &str,
    ) -> Result<(), kafka_protocol::error::ResponseError> {
        use kafka_protocol::error::ResponseError;
        if group.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        self.ensure_offsets_topic().await?;
        let index = self.groups.partition_of(group);
        match self.replicas.partition(OFFSETS_TOPIC, index) {
            Some(p) if p.is_leader() => {
                if self.groups.is_loaded(index) {
                    Ok(())
                } else {
                    Err(ResponseError::CoordinatorLoadInProgress)
                }
            }
            _ => Err(ResponseError::NotCoordinator),
        }
    }

    /// Flushes and checkpoints every log for a clean restart.
    pub fn shutdown(&self) -> Result<(), crate::log::LogError> {
        self.replicas.logs().shutdown()
    }
}

/// An exclusive `flock` on `<log dir>/.lock`, as Kafka takes, released when dropped.
struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    fn acquire(dir: &std::path::Path) -> anyhow::Result<DirLock> {
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            anyhow::bail!(
                "{} is in use by another process (failed to lock {})",
                dir.display(),
                path.display()
            );
        }
        Ok(DirLock { _file: file })
    }
}

/// This broker as clients reach it (its first advertised listener).
fn self_info(config: &BrokerConfig, broker_id: i32) -> BrokerInfo {
    let advertised = config.advertised();
    BrokerInfo {
        id: broker_id,
        host: advertised_host(&advertised.host),
        port: advertised.port,
        rack: config.rack.clone(),
    }
}

fn open_logs(config: &BrokerConfig) -> anyhow::Result<Arc<LogManager>> {
    let dir = &config.log_dirs[0];
    let logs = LogManager::open(dir)
        .with_context(|| format!("opening log directory {}", dir.display()))?;
    logs.set_cleaner_config(crate::log::cleaner::CleanerConfig {
        dedupe_buffer_bytes: config.cleaner_dedupe_buffer_bytes,
        ..logs.cleaner_config()
    });
    Ok(logs)
}

/// An empty advertised host means "this machine": use its hostname, as Kafka does.
fn advertised_host(host: &str) -> String {
    if !host.is_empty() && host != "0.0.0.0" {
        return host.to_string();
    }
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into a buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        if let Ok(name) = std::str::from_utf8(&buf[..end]) {
            if !name.is_empty() {
                return name.to_string();
            }
        }
    }
    "localhost".to_string()
}
