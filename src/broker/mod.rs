//! The broker: the assembled whole. It owns the configuration, the cluster metadata backend,
//! the hosted replicas and the group coordinator, the topic lifecycle operations that keep
//! metadata and on-disk logs in step, and the glue between the layers: the [`sync`] that applies
//! metadata to the replicas, the [`link`] that lets the metadata backend serve replication and
//! the [`transactions`] link that carries transaction markers and produce verification.
//!
//! Both modes run the same way; only the metadata backend differs (standalone: a file in the
//! data directory, this broker leads every partition; cluster: ZooKeeper).

pub mod acls;
pub mod configs;
pub mod lag;
pub mod link;
pub mod overview;
pub(crate) mod peers;
pub mod quotas;
pub mod sync;
pub mod transactions;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::Context;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::cluster::{self, ClusterError, ClusterMetadata, NewTopic, TopicMetadata};
use crate::config::{BrokerConfig, ConfigHandle};
use crate::group::GroupCoordinator;
use crate::log::LogManager;
use crate::replica::peer::PeerDialer;
use crate::replica::ReplicaManager;
use crate::txn::TransactionCoordinator;
use crate::util::task::Shutdown;
use link::ReplicaLink;
use sync::MetadataSync;
use transactions::TxnLink;

/// Shared state of one running broker; handlers receive `&Broker`.
pub struct Broker {
    pub config: ConfigHandle,
    /// The ACLs and whether they are enforced.
    pub authorizer: Arc<acls::Authorizer>,
    pub cluster: Arc<dyn ClusterMetadata>,
    pub replicas: Arc<ReplicaManager>,
    pub groups: Arc<GroupCoordinator>,
    pub txn: Arc<TransactionCoordinator>,
    /// Markers and produce verification across brokers.
    /// How this broker reaches its peers (the inter-broker listener and its security).
    pub dialer: PeerDialer,
    pub txn_link: Arc<TxnLink>,
    /// Produce and fetch byte-rate quotas of clients.
    pub quotas: quotas::ClientQuotas,
    /// End offsets asked of other leaders (consumer-group lag, the console).
    end_offsets: lag::EndOffsetCache,
    sync: MetadataSync,
    /// Held for the broker's lifetime so no second process opens the same data.
    _dir_lock: DirLock,
}

impl Broker {
    /// Opens the broker: locks and checks the data directory, opens the metadata backend the
    /// configuration asks for (connecting to ZooKeeper in cluster mode), opens the logs and
    /// takes the roles the current metadata gives this broker. In cluster mode the broker
    /// registers only once its listeners are up ([`Broker::join_cluster`]).
    pub async fn open(config: BrokerConfig) -> anyhow::Result<Broker> {
        let dir = config.log_dirs[0].clone();
        let dir_lock = DirLock::acquire(&dir)?;
        let authorizer = Arc::new(acls::Authorizer::open(&config).await?);
        raise_fd_limit();
        let cluster = cluster::open(&config).await?;
        let logs = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || open_logs(&config)).await??
        };
        let replicas = Arc::new(ReplicaManager::new(
            config.broker_id.max(0),
            logs,
            config.replication.clone(),
        ));
        let dialer = PeerDialer::for_inter_broker(&config)?;
        replicas.set_cluster_link(Arc::new(ReplicaLink::new(cluster.clone(), dialer.clone())));
        let config = ConfigHandle::new(config);
        let groups = Arc::new(GroupCoordinator::new(
            config.clone(),
            replicas.clone(),
            cluster.clone(),
        ));
        let txn = TransactionCoordinator::new(config.clone(), replicas.clone(), cluster.clone());
        let txn_link = Arc::new(TxnLink::new(
            cluster.clone(),
            replicas.clone(),
            groups.clone(),
            dialer.clone(),
        ));
        txn.set_marker_sender(txn_link.clone());
        let sync = MetadataSync {
            cluster: cluster.clone(),
            replicas: replicas.clone(),
            groups: groups.clone(),
            txn: txn.clone(),
            config: config.clone(),
            applied_generation: Arc::new(AtomicU64::new(u64::MAX)),
        };
        let end_offsets = lag::EndOffsetCache::new(replicas.broker_id(), dialer.clone());
        let quotas =
            quotas::ClientQuotas::new(cluster.clone(), quotas::QuotaWindow::of(&config.current()));
        let broker = Broker {
            dialer,
            quotas,
            end_offsets,
            authorizer,
            config,
            cluster,
            replicas,
            groups,
            txn,
            txn_link,
            sync,
            _dir_lock: dir_lock,
        };
        let sync = broker.sync.clone();
        tokio::task::spawn_blocking(move || sync.apply_all()).await?;
        if broker.replicas.logs().fd_exhausted() {
            // Leave the logs as a clean shutdown would, so the next start does not recover them.
            if let Err(e) = broker.shutdown() {
                warn!(error = %e, "closing the logs after running out of file descriptors failed");
            }
            anyhow::bail!(
                "out of file descriptors while opening {} partitions: the limit is {} \
                 (each partition keeps its active segment's .log file open, plus one per \
                 client connection); raise it with `ulimit -n` (or LimitNOFILE= under systemd) \
                 and start again",
                broker
                    .cluster
                    .topics()
                    .iter()
                    .map(|t| t.partitions.len())
                    .sum::<usize>(),
                fd_limit().map_or_else(|| "unknown".to_string(), |l| l.to_string())
            );
        }
        broker.tidy_logs_on_disk()?;
        info!(
            topics = broker.cluster.topics().len(),
            hosted = broker.replicas.hosted().len(),
            "partitions opened"
        );
        Ok(broker)
    }

    /// Joins the cluster once the listeners are up (registration, in cluster mode) and starts
    /// following the metadata; the tasks end at `shutdown`.
    pub async fn join_cluster(
        &self,
        shutdown: &Shutdown,
        tasks: &mut JoinSet<()>,
    ) -> anyhow::Result<()> {
        self.cluster
            .clone()
            .join(shutdown.clone(), tasks)
            .await
            .context("joining the cluster")?;
        tasks.spawn(self.sync.clone().run(shutdown.clone()));
        self.authorizer.follow(shutdown, tasks);
        Ok(())
    }

    /// Before stopping: hands leaderships over (controlled shutdown, in cluster mode).
    pub async fn leave_cluster(&self) {
        self.cluster.leave().await;
    }

    /// Once serving has stopped: ends fetchers and this broker's membership.
    pub async fn disconnect(&self) {
        self.replicas.shutdown().await;
        self.cluster.close().await;
    }

    /// Logs on disk of partitions the metadata does not know are left alone (with a warning);
    /// those of known partitions no longer assigned here (a move completed while this broker
    /// was down) are deleted, as the controller's StopReplica would have had them deleted.
    fn tidy_logs_on_disk(&self) -> anyhow::Result<()> {
        let me = self.broker_id();
        let assigned: std::collections::HashMap<(String, i32), bool> = self
            .cluster
            .topics()
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| ((t.name.clone(), p.partition), p.replicas.contains(&me)))
            })
            .collect();
        for tp in self.replicas.logs().partitions_on_disk()? {
            match assigned.get(&(tp.topic.to_string(), tp.partition)) {
                None => {
                    warn!(topic = %tp.topic, partition = tp.partition, "log directory of an unknown partition left untouched");
                }
                Some(false) => {
                    info!(partition = %tp, "deleting the log of a replica moved away from this broker");
                    self.replicas.stop_replica(&tp, true)?;
                }
                Some(true) => {}
            }
        }
        Ok(())
    }

    pub fn broker_id(&self) -> i32 {
        self.replicas.broker_id()
    }

    /// The broker's metric registry.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        self.replicas.metrics()
    }

    /// Creates a topic and opens this broker's replicas of it (a replica whose log cannot be
    /// opened is logged, as in Kafka; the topic exists).
    pub async fn create_topic(
        &self,
        spec: NewTopic,
        validate_only: bool,
    ) -> Result<Arc<TopicMetadata>, ClusterError> {
        let topic = self.cluster.create_topic(spec, validate_only).await?;
        if !validate_only {
            self.sync.apply_topic(&topic);
            info!(topic = %topic.name, partitions = topic.partitions.len(), overrides = ?topic.configs, "topic created");
        }
        Ok(topic)
    }

    /// Creates a topic with the broker defaults (auto.create.topics.enable).
    pub async fn auto_create_topic(&self, name: &str) -> Result<Arc<TopicMetadata>, ClusterError> {
        let config = self.config.current();
        let spec = NewTopic {
            name: name.to_string(),
            num_partitions: config.num_partitions,
            replication_factor: config.default_replication_factor as i16,
            assignments: None,
            configs: Default::default(),
        };
        match self.create_topic(spec, false).await {
            Err(ClusterError::TopicAlreadyExists(_)) => self
                .cluster
                .topic(name)
                .ok_or_else(|| ClusterError::UnknownTopic(name.into())),
            other => other,
        }
    }

    /// Deletes a topic; once the metadata no longer has it, this broker's replicas of it stop
    /// and their logs are deleted.
    pub async fn delete_topic(&self, name: &str) -> Result<Arc<TopicMetadata>, ClusterError> {
        let topic = self.cluster.delete_topic(name).await?;
        self.sync.apply_all();
        info!(topic = %topic.name, "topic deleted");
        Ok(topic)
    }

    pub async fn create_partitions(
        &self,
        name: &str,
        total: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<Arc<TopicMetadata>, ClusterError> {
        let topic = self
            .cluster
            .create_partitions(name, total, assignments, validate_only)
            .await?;
        if !validate_only {
            self.sync.apply_topic(&topic);
            info!(topic = %topic.name, partitions = topic.partitions.len(), "partitions added");
        }
        Ok(topic)
    }

    /// Flushes and checkpoints every log for a clean restart.
    pub fn shutdown(&self) -> Result<(), crate::log::LogError> {
        self.replicas.logs().shutdown()
    }
}

/// An exclusive `flock` on `<log dir>/.lock`, as Kafka takes, released when dropped: held by a
/// running broker, and by tools that change its data directory offline (`odradek add-scram`).
pub struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    /// Takes the lock, creating the directory if needed; fails while another process holds it.
    pub fn acquire(dir: &std::path::Path) -> anyhow::Result<DirLock> {
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

/// The soft limit on open file descriptors (`ulimit -n`), if it can be read.
fn fd_limit() -> Option<u64> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) };
    (rc == 0).then_some(l.rlim_cur)
}

/// Raises the soft limit on open file descriptors to the hard limit, as the JVM does for Kafka
/// (HotSpot's MaxFDLimit): a broker keeps one file open per partition and one per connection.
fn raise_fd_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read or write the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 || l.rlim_cur >= l.rlim_max {
            return;
        }
        let before = l.rlim_cur;
        l.rlim_cur = l.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &l) == 0 {
            info!(from = before, to = l.rlim_cur, "raised the open file limit");
        }
    }
}

fn open_logs(config: &BrokerConfig) -> anyhow::Result<Arc<LogManager>> {
    let dir = &config.log_dirs[0];
    let logs = LogManager::open(dir)
        .with_context(|| format!("opening log directory {}", dir.display()))?;
    logs.set_cleaner_config(sync::cleaner_config(config));
    Ok(logs)
}
