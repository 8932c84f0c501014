//! Replica manager: the partitions this broker hosts, as leader or follower, and replication between
//! brokers (Kafka's ReplicaManager).
//!
//! - [`partition`]: one replica: role at a leader epoch, ISR, high watermark, leader appends,
//!   follower appends and truncation, and the reads it serves behind one gate (leader at the
//!   caller's leader epoch): fetches, offset lookups, leader-epoch lookups. Its log is private.
//! - [`isr`]: the leader's view of its followers and the pure rules built on it (high watermark =
//!   min log end offset over the ISR, ISR shrink and expand decisions).
//! - [`delayed_produce`]: acks=-1 produce waiting for the ISR.
//! - [`delayed_delete_records`]: DeleteRecords: leaders move their log start offsets, which are
//!   checkpointed before segments below them go, and the answer waits for the low watermark.
//! - [`log_dir`]: what DescribeLogDirs reports of the log directory and its replicas.
//! - [`delayed_fetch`]: a whole Fetch request: reads through each partition's gate, records
//!   followers' positions, long-polls until enough data, an error or the deadline.
//! - [`fetcher`]: follower fetcher tasks (one per leader broker), truncation on leader change.
//! - [`quota`]: replication throttles (Kafka's replication quotas): the leader and follower
//!   byte-rate quotas and the topics' throttled-replica lists.
//! - [`peer`]: outbound broker-to-broker connections.
//! - [`link`]: the state applied to a replica (`LeaderAndIsr`) and what replication needs from
//!   the metadata store (`ClusterLink`).
//!
//! Every mode is the same model: [`ReplicaManager::apply_topic`] turns a topic's metadata into
//! roles, the one way a replica becomes leader or follower. Standalone, ISR = replicas = {this
//! broker}, so the high watermark follows the log end offset. In cluster mode leaders record ISR
//! changes through `ClusterLink::write_isr` and use a new ISR only once that write succeeded.
//!
//! High watermarks survive restarts in Kafka's `replication-offset-checkpoint` file in the log
//! directory, written every replica.high.watermark.checkpoint.interval.ms and by `shutdown`.
//!
//! Followers take their leader's log start offset from each fetch answer (checkpointed before
//! their next fetch reports it), so every replica's log start moves with the leader's.
//!
//! Not implemented yet: fetch sessions between brokers, KIP-392 reads from followers, and a size
//! check of the array counts in responses from peer brokers before decoding (peers are trusted
//! brokers of the cluster).

pub mod delayed_delete_records;
pub mod delayed_fetch;
pub mod delayed_produce;
pub mod fetcher;
pub mod isr;
pub mod link;
pub mod log_dir;
mod partition;
pub mod peer;
mod peer_tls;
pub mod quota;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
use std::collections::HashSet;
use tokio::task::JoinSet;

use tracing::{error, info, warn};

/// Threads opening partition logs in parallel (`open_logs_in_parallel`): enough to overlap the
/// fsyncs of new files, bounded so a start-up does not spawn a thread per partition.
const OPEN_THREADS: usize = 8;

use crate::cluster::{PartitionState, TopicMetadata};
use crate::config::topic::min_insync_replicas;
use crate::config::{BrokerConfig, ThrottledRates};
use crate::log::checkpoint::{read_checkpoint, write_checkpoint};
use crate::log::dir_failure::LogDirFailure;
use crate::log::{LogConfig, LogError, LogManager, TopicPartition};
use crate::util::clock::now_ms;
use crate::util::task::{self, Shutdown};

pub use crate::config::ReplicationSettings;
pub use delayed_delete_records::DeleteRecordsOutcome;
pub use delayed_fetch::{FetchParams, FetchReader, PartitionFetch};
pub use link::{ClusterLink, IsrWriteError, LeaderAndIsr};
pub use log_dir::{LogDirContents, LogDirDescription, LogDirError, ReplicaLogInfo};
pub use partition::{
    DeleteRecordsError, EpochMismatch, FetchIsolation, FetchedPartition, FollowerFetchError,
    OffsetLookup, OffsetSpec, Partition, ProduceError, RecordsDeleted, ReplicaStatus, ServeError,
    Throttled,
};

use crate::metrics::Metrics;
use fetcher::Fetchers;
use quota::{
    ReplicationQuotas, ThrottledReplicas, FOLLOWER_THROTTLED_REPLICAS, LEADER_THROTTLED_REPLICAS,
};

/// What applying the metadata did: role changes of the replicas assigned here (in topic
/// order), and the replicas it stopped.
#[derive(Debug, Default)]
pub struct Applied {
    pub changes: Vec<(TopicPartition, RoleChange)>,
    pub stopped: Vec<TopicPartition>,
}

/// What `apply_state` did to the replica's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleChange {
    /// This broker leads the partition at the state's (new) leader epoch.
    BecameLeader,
    /// This broker follows the partition's leader at the state's (new) leader epoch.
    BecameFollower,
    /// Same or older epoch: at most the ISR and state version were refreshed.
    Unchanged,
}

/// What every partition of this broker shares: identity, settings, the cluster link.
pub(crate) struct Shared {
    pub(crate) broker_id: i32,
    pub(crate) settings: ReplicationSettings,
    link: RwLock<Option<Arc<dyn ClusterLink>>>,
    /// The runtime fetchers and ISR writes run on (captured when the manager is made or the
    /// link set inside it).
    pub(crate) runtime: OnceLock<tokio::runtime::Handle>,
    /// While the metadata store is unreachable: how long an ISR follower may go without
    /// fetching before leaders stop accepting writes (ms); -1 while it is reachable.
    unreachable_grace_ms: AtomicI64,
    /// Set by the first storage error on a write path; no writes after it.
    pub(crate) dir_failure: Arc<LogDirFailure>,
    /// The log directory: its checkpoints make moved log start offsets durable.
    pub(crate) logs: Arc<LogManager>,
    /// The replication throttles (leader and follower byte-rate quotas).
    pub(crate) quotas: ReplicationQuotas,
    /// The broker's metric registry (ISR shrinks and expands are counted here).
    pub(crate) metrics: Arc<Metrics>,
}

impl Shared {
    pub(crate) fn new(
        broker_id: i32,
        settings: ReplicationSettings,
        logs: Arc<LogManager>,
    ) -> Shared {
        Shared {
            broker_id,
            link: RwLock::new(None),
            runtime: OnceLock::new(),
            unreachable_grace_ms: AtomicI64::new(-1),
            dir_failure: Arc::new(LogDirFailure::default()),
            logs,
            quotas: ReplicationQuotas::new(&settings),
            settings,
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Writes `log-start-offset-checkpoint` now; a failure fails the log directory (what the
    /// file should hold may not be on disk).
    pub(crate) fn checkpoint_log_starts(&self) -> Result<(), LogError> {
        self.logs.checkpoint_log_start_offsets().inspect_err(|e| {
            self.dir_failure
                .report("writing the log start checkpoint", e)
        })
    }

    /// Whether `broker_id` is a live broker of the cluster (Kafka's `hasAliveBroker`); without a
    /// link to the metadata store every broker counts as live.
    pub(crate) fn is_alive(&self, broker_id: i32) -> bool {
        self.link()
            .is_none_or(|l| l.broker_endpoint(broker_id).is_some())
    }

    /// The link to the metadata store, once set.
    pub(crate) fn link(&self) -> Option<Arc<dyn ClusterLink>> {
        self.link.read().clone()
    }

    pub(crate) fn set_link(&self, link: Arc<dyn ClusterLink>) {
        *self.link.write() = Some(link);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let _ = self.runtime.set(runtime);
        }
    }

    /// The follower grace while the metadata store is unreachable; `None` while it is reachable.
    pub(crate) fn unreachable_grace_ms(&self) -> Option<i64> {
        let grace = self.unreachable_grace_ms.load(Ordering::Acquire);
        (grace >= 0).then_some(grace)
    }
}

/// Kafka's high watermark checkpoint file, in the log directory.
pub const HIGH_WATERMARK_CHECKPOINT: &str = "replication-offset-checkpoint";

/// Owns every partition replica hosted by this broker.
pub struct ReplicaManager {
    shared: Arc<Shared>,
    logs: Arc<LogManager>,
    partitions: Arc<DashMap<TopicPartition, Arc<Partition>>>,
    fetchers: Fetchers,
    /// High watermarks of partitions not hosted right now (read at start-up, or kept by
    /// `stop_replica` without delete), consumed as partitions open.
    checkpointed: Arc<Checkpointed>,
    /// Serializes applying metadata (the sync task and topic operations both do it): a
    /// partition's directory is claimed once, and a replica is stopped only by an apply that read
    /// the metadata after every earlier apply finished.
    applying: Mutex<()>,
}

impl ReplicaManager {
    /// A manager without partitions. Standalone brokers need nothing more; cluster mode also calls
    /// `set_cluster_link` (inside the tokio runtime).
    pub fn new(
        broker_id: i32,
        logs: Arc<LogManager>,
        settings: ReplicationSettings,
    ) -> ReplicaManager {
        let shared = Arc::new(Shared::new(broker_id, settings, logs.clone()));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let _ = shared.runtime.set(runtime);
        }
        let path = logs.dir().join(HIGH_WATERMARK_CHECKPOINT);
        let checkpointed = read_checkpoint(&path).unwrap_or_else(|e| {
            warn!(error = %e, "high watermark checkpoint unreadable; starting from log starts");
            Default::default()
        });
        ReplicaManager {
            fetchers: Fetchers::new(shared.clone()),
            shared,
            logs,
            partitions: Arc::new(DashMap::new()),
            checkpointed: Arc::new(Mutex::new(checkpointed)),
            applying: Mutex::new(()),
        }
    }

    /// The broker's metric registry. It lives here, made with the manager, because every layer
    /// that counts (handlers, the network front, replication) reaches the replica manager.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    pub fn logs(&self) -> &Arc<LogManager> {
        &self.logs
    }

    /// The log directory's failure state: replicas report storage errors of their writes to it.
    pub fn dir_failure(&self) -> &Arc<LogDirFailure> {
        &self.shared.dir_failure
    }

    pub fn broker_id(&self) -> i32 {
        self.shared.broker_id
    }

    pub fn settings(&self) -> &ReplicationSettings {
        &self.shared.settings
    }

    /// The link to the metadata store: leaders record ISR changes through it and follower
    /// fetchers find their leaders with it. Call it inside the tokio runtime (fetchers and ISR
    /// writes run there). A later call replaces the link (tests drive replication by hand).
    pub fn set_cluster_link(&self, link: Arc<dyn ClusterLink>) {
        self.shared.set_link(link);
    }

    /// Starts Kafka's isr-expiration task (every leader drops followers that lag, every
    /// replica.lag.time.max.ms / 2) and highwatermark-checkpoint task (every
    /// replica.high.watermark.checkpoint.interval.ms); both end at `shutdown`.
    pub fn spawn_tasks(&self, shutdown: &Shutdown, tasks: &mut JoinSet<()>) {
        let s = &self.shared.settings;
        let lag_period = Duration::from_millis((s.lag_time_max_ms / 2).max(10));
        let partitions = self.partitions.clone();
        tasks.spawn(task::every(lag_period, shutdown.clone(), move || {
            let now = now_ms();
            let led: Vec<Arc<Partition>> = partitions.iter().map(|e| e.value().clone()).collect();
            for p in led {
                p.maybe_shrink_isr(now);
            }
            async {}
        }));
        let checkpoint_period = Duration::from_millis(s.high_watermark_checkpoint_interval_ms);
        let (partitions, kept) = (self.partitions.clone(), self.checkpointed.clone());
        let path = self.logs.dir().join(HIGH_WATERMARK_CHECKPOINT);
        let failure = self.shared.dir_failure.clone();
        tasks.spawn(task::every_blocking(
            checkpoint_period,
            shutdown.clone(),
            move || {
                if let Err(e) = write_high_watermarks(&partitions, &kept, &path) {
                    failure.report("writing the high watermark checkpoint", &e);
                }
            },
        ));
    }

    /// Brings this broker's replicas of `topic` in line with its metadata: each partition
    /// assigned here is opened if needed (its directory first claimed for the topic's id) and
    /// takes the role its state gives, at the state's leader epoch; partitions whose state was
    /// not written yet wait. This is the one way a replica becomes leader or follower, in every
    /// mode. Returns the partitions assigned here and what happened to each role.
    pub fn apply_topic(
        &self,
        topic: &TopicMetadata,
        broker: &BrokerConfig,
    ) -> Vec<(TopicPartition, RoleChange)> {
        let _applying = self.applying.lock();
        self.apply_topic_locked(topic, broker)
    }

    fn apply_topic_locked(
        &self,
        topic: &TopicMetadata,
        broker: &BrokerConfig,
    ) -> Vec<(TopicPartition, RoleChange)> {
        let me = self.shared.broker_id;
        let config = LogConfig::for_topic(&topic.configs, broker);
        let min_isr = min_insync_replicas(&topic.configs, broker);
        let throttles = TopicThrottles::of(&topic.configs);
        let name: Arc<str> = Arc::from(topic.name.as_str());
        self.log_config_change(topic, &name, &config);
        self.open_logs_in_parallel(topic, &name, &config);
        let mut applied = Vec::new();
        for p in topic.partitions.iter().filter(|p| p.replicas.contains(&me)) {
            let tp = TopicPartition {
                topic: name.clone(),
                partition: p.partition,
            };
            let change = if p.leader_epoch < 0 || !self.claimed(&tp, topic) {
                // No state written yet, or the directory cannot be used.
                RoleChange::Unchanged
            } else {
                match self.apply_state(&tp, config.clone(), min_isr, LeaderAndIsr::of(p)) {
                    Ok(change) => change,
                    Err(e) => {
                        error!(partition = %tp, error = %e, "cannot host replica: its log is unusable");
                        RoleChange::Unchanged
                    }
                }
            };
            if let Some(partition) = self.hosted_partition(&tp) {
                partition.set_throttled(throttles.of_partition(p.partition, me));
            }
            applied.push((tp, change));
        }
        applied
    }

    /// Applies every topic of the metadata ([`ReplicaManager::apply_topic`]) and stops the
    /// replicas no longer assigned here, deleting their logs (their topic was deleted, or a
    /// move took the replica away from this broker, as Kafka's StopReplica with delete does).
    /// `topics` reads the
    /// metadata once no other apply is running, so a topic created meanwhile is never taken for
    /// a deleted one.
    pub fn apply_metadata(
        &self,
        topics: impl FnOnce() -> Vec<Arc<TopicMetadata>>,
        broker: &BrokerConfig,
    ) -> Applied {
        let _applying = self.applying.lock();
        let topics = topics();
        let mut applied = Applied::default();
        let mut assigned = HashSet::new();
        for topic in &topics {
            for (tp, change) in self.apply_topic_locked(topic, broker) {
                assigned.insert(tp.clone());
                applied.changes.push((tp, change));
            }
        }
        let known: HashSet<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        for tp in self.hosted() {
            if assigned.contains(&tp) {
                continue;
            }
            if known.contains(&*tp.topic) {
                info!(partition = %tp, "replica no longer assigned to this broker");
            }
            if let Err(e) = self.stop_replica(&tp, true) {
                error!(partition = %tp, error = %e, "stopping replica failed");
            }
            applied.stopped.push(tp);
        }
        applied
    }

    /// Logs (once per topic, at info) that a hosted topic's log config is about to change: a
    /// topic config or broker default was altered. Rare, and the record of which overrides a
    /// topic's partitions were given.
    fn log_config_change(&self, topic: &TopicMetadata, name: &Arc<str>, config: &LogConfig) {
        let me = self.shared.broker_id;
        let hosted = topic
            .partitions
            .iter()
            .filter(|p| p.replicas.contains(&me))
            .find_map(|p| {
                self.hosted_partition(&TopicPartition {
                    topic: name.clone(),
                    partition: p.partition,
                })
            });
        if hosted.is_some_and(|p| p.log_config() != *config) {
            info!(topic = %topic.name, overrides = ?topic.configs, "topic log config changed");
        }
    }

    /// Claims and opens, on a bounded pool of threads, the logs of `topic`'s partitions that are
    /// assigned here, have a state and are not hosted yet (a broker starting, a topic created),
    /// and records the leader epoch of those this broker leads, as becoming leader would: the
    /// file work of many partitions (directory listings, reads, the fsyncs of new files) overlaps
    /// instead of running one partition after another (Kafka opens logs on
    /// num.recovery.threads.per.data.dir threads). Failures are left to the sequential pass that
    /// follows, which retries and reports them.
    fn open_logs_in_parallel(&self, topic: &TopicMetadata, name: &Arc<str>, config: &LogConfig) {
        let me = self.shared.broker_id;
        let todo: Vec<(TopicPartition, &PartitionState)> = topic
            .partitions
            .iter()
            .filter(|p| p.replicas.contains(&me) && p.leader_epoch >= 0)
            .map(|p| {
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition: p.partition,
                };
                (tp, p)
            })
            .filter(|(tp, _)| !self.is_hosted(tp) && self.logs.get(tp).is_none())
            .collect();
        if todo.len() < 2 {
            return;
        }
        let next = AtomicUsize::new(0);
        let threads = OPEN_THREADS.min(todo.len());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((tp, p)) = todo.get(i) else { break };
                    if self.logs.fd_exhausted() {
                        break;
                    }
                    if !topic.id.is_nil() && self.logs.claim_for_topic(tp, topic.id).is_err() {
                        continue;
                    }
                    let Ok(log) = self.logs.open_partition(tp, config.clone()) else {
                        continue;
                    };
                    if p.leader == me {
                        // What Partition::apply does first on becoming leader; it then finds the
                        // epoch recorded and writes nothing.
                        let _ = log
                            .maybe_assign_epoch_start_offset(p.leader_epoch, log.log_end_offset());
                    }
                });
            }
        });
    }

    /// Before a partition is first hosted, its directory is claimed for the topic's id (a stale
    /// directory of an earlier topic of the same name is deleted). False if that failed.
    fn claimed(&self, tp: &TopicPartition, topic: &TopicMetadata) -> bool {
        if topic.id.is_nil() || self.is_hosted(tp) {
            return true;
        }
        match self.logs.claim_for_topic(tp, topic.id) {
            Ok(()) => true,
            Err(e) => {
                error!(partition = %tp, error = %e, "cannot host replica: its directory is unusable");
                false
            }
        }
    }

    fn open(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
        min_isr: i32,
    ) -> Result<Arc<Partition>, LogError> {
        let log = self.logs.open_partition(tp, config)?;
        let hw = self.checkpointed.lock().remove(tp);
        let fresh = Arc::new(Partition::new(
            tp.clone(),
            log,
            self.shared.clone(),
            min_isr,
            hw,
        ));
        Ok(self
            .partitions
            .entry(tp.clone())
            .or_insert(fresh)
            .value()
            .clone())
    }

    /// Opens the log if needed and makes this broker leader or follower at `state.leader_epoch`.
    /// States with a lower leader_epoch than the current one are ignored (Unchanged); same epoch
    /// with a new isr/state_version just refreshes those (an older state_version is ignored).
    /// Idempotent. The log config of an open log is replaced by `config`.
    pub fn apply_state(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
        min_isr: i32,
        state: LeaderAndIsr,
    ) -> Result<RoleChange, LogError> {
        let existing = self.partitions.get(tp).map(|p| p.value().clone());
        let partition = match existing {
            Some(p) => {
                p.set_log_config(config);
                p
            }
            None => self.open(tp, config, min_isr)?,
        };
        let change = partition.apply(&state, min_isr);
        match change {
            RoleChange::BecameLeader => self.fetchers.remove(tp),
            RoleChange::BecameFollower => {
                self.fetchers
                    .add(partition.clone(), state.leader, state.leader_epoch)
            }
            // A follower whose fetcher was stopped (stop_replica without delete) resumes.
            RoleChange::Unchanged if partition.is_follower() => self.fetchers.ensure(
                partition.clone(),
                partition.leader(),
                partition.leader_epoch(),
            ),
            RoleChange::Unchanged => {}
        }
        Ok(change)
    }

    /// Stops replicating a partition: its fetcher is removed and it is no longer hosted (produce
    /// and reads get UNKNOWN_TOPIC_OR_PARTITION, waiting produces end with
    /// NOT_LEADER_OR_FOLLOWER). With `delete` its log is deleted; without, the log stays open and
    /// its high watermark is remembered (and checkpointed) for a later `apply_state`.
    pub fn stop_replica(&self, tp: &TopicPartition, delete: bool) -> Result<(), LogError> {
        self.fetchers.remove(tp);
        if let Some((_, p)) = self.partitions.remove(tp) {
            p.stop();
            info!(partition = %tp, delete, "stopped replica");
            if !delete {
                self.checkpointed
                    .lock()
                    .insert(tp.clone(), p.high_watermark());
            }
        }
        if delete {
            self.checkpointed.lock().remove(tp);
            self.logs.delete_partition(tp)?;
        }
        Ok(())
    }

    /// Metadata store session lost / shutting down: every leader stops accepting produce
    /// (NOT_LEADER_OR_FOLLOWER) until its next `apply_state`.
    pub fn fence_leaders(&self) {
        for p in self.all() {
            p.fence();
        }
    }

    /// Suspends one partition's leadership (if this broker leads it) until its next `apply_state`.
    pub fn fence(&self, tp: &TopicPartition) {
        if let Some(p) = self.partitions.get(tp) {
            p.fence();
        }
    }

    /// Cluster mode: the metadata store cannot be reached, but this broker's session may still be
    /// alive. Until `metadata_reachable`, a leader accepts writes only while every other ISR
    /// member has fetched within `follower_grace` (see `Partition::append_as_leader`).
    pub fn metadata_unreachable(&self, follower_grace: Duration) {
        let grace = i64::try_from(follower_grace.as_millis()).unwrap_or(i64::MAX);
        let before = self
            .shared
            .unreachable_grace_ms
            .swap(grace, Ordering::AcqRel);
        if before < 0 {
            info!(
                grace_ms = grace,
                "metadata store unreachable: leaders keep writing while their ISR keeps fetching"
            );
        }
    }

    /// The metadata store is reachable again (see `metadata_unreachable`).
    pub fn metadata_reachable(&self) {
        self.shared
            .unreachable_grace_ms
            .store(-1, Ordering::Release);
    }

    /// Stops every fetcher and background task, waits for the fetchers to end, then writes the
    /// high watermark checkpoint. Call it before closing the logs.
    pub async fn shutdown(&self) {
        self.fetchers.shutdown().await;
        if let Err(e) = self.checkpoint_high_watermarks() {
            warn!(error = %e, "writing the high watermark checkpoint failed");
        }
    }

    /// Writes the high watermark of every hosted partition (and of stopped ones whose logs are
    /// kept) to `replication-offset-checkpoint`.
    pub fn checkpoint_high_watermarks(&self) -> Result<(), LogError> {
        write_high_watermarks(
            &self.partitions,
            &self.checkpointed,
            &self.logs.dir().join(HIGH_WATERMARK_CHECKPOINT),
        )
    }

    /// Whether this broker hosts the partition (as leader or follower).
    pub fn is_hosted(&self, tp: &TopicPartition) -> bool {
        self.partitions.contains_key(tp)
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.hosted_partition(&TopicPartition::new(topic, partition))
    }

    /// The replica of `tp`, if this broker hosts it.
    pub fn hosted_partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.get(tp).map(|p| p.clone())
    }

    /// Every hosted partition, sorted.
    pub fn hosted(&self) -> Vec<TopicPartition> {
        let mut v: Vec<TopicPartition> = self.partitions.iter().map(|e| e.key().clone()).collect();
        v.sort();
        v
    }

    /// Sets the replication throttle rates (dynamic broker configs); each takes effect at the
    /// next fetch. A change is logged.
    pub fn set_throttled_rates(&self, rates: ThrottledRates) {
        self.shared.quotas.leader.set_bound(rates.leader);
        self.shared.quotas.follower.set_bound(rates.follower);
    }

    /// The replication throttle rates in force.
    pub fn throttled_rates(&self) -> ThrottledRates {
        ThrottledRates {
            leader: self.shared.quotas.leader.bound(),
            follower: self.shared.quotas.follower.bound(),
        }
    }

    /// Leader broker ids this broker runs a fetcher for (diagnostics, tests).
    pub fn fetcher_leaders(&self) -> Vec<i32> {
        self.fetchers.leaders()
    }

    /// Runs one ISR lag check over every led partition now (the periodic task does the same).
    pub fn check_isr_lag(&self) {
        let now = now_ms();
        for p in self.all() {
            p.maybe_shrink_isr(now);
        }
    }

    fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.iter().map(|e| e.value().clone()).collect()
    }
}

/// A topic's throttled-replica lists, parsed once per apply.
struct TopicThrottles {
    leader: ThrottledReplicas,
    follower: ThrottledReplicas,
}

impl TopicThrottles {
    fn of(configs: &std::collections::BTreeMap<String, String>) -> TopicThrottles {
        TopicThrottles {
            leader: ThrottledReplicas::of_topic(configs, LEADER_THROTTLED_REPLICAS),
            follower: ThrottledReplicas::of_topic(configs, FOLLOWER_THROTTLED_REPLICAS),
        }
    }

    /// Whether this broker's replica of `partition` is throttled on each side.
    fn of_partition(&self, partition: i32, me: i32) -> Throttled {
        Throttled {
            leader: self.leader.covers(partition, me),
            follower: self.follower.covers(partition, me),
        }
    }
}

type Checkpointed = Mutex<std::collections::HashMap<TopicPartition, i64>>;

fn write_high_watermarks(
    partitions: &DashMap<TopicPartition, Arc<Partition>>,
    kept: &Checkpointed,
    path: &std::path::Path,
) -> Result<(), LogError> {
    let mut entries = kept.lock().clone();
    for e in partitions.iter() {
        entries.insert(e.key().clone(), e.value().high_watermark());
    }
    write_checkpoint(path, &entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::test_util::batch;

    fn state(leader: i32, epoch: i32, isr: &[i32]) -> LeaderAndIsr {
        LeaderAndIsr {
            leader,
            leader_epoch: epoch,
            isr: isr.to_vec(),
            replicas: vec![1, 2],
            controller_epoch: 1,
            state_version: 0,
        }
    }

    #[test]
    fn high_watermark_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let tp = TopicPartition::new("t", 0);
        {
            let logs = LogManager::open(dir.path()).unwrap();
            let rm = ReplicaManager::new(1, logs.clone(), ReplicationSettings::default());
            let change = rm
                .apply_state(&tp, LogConfig::default(), 1, state(1, 0, &[1, 2]))
                .unwrap();
            assert_eq!(change, RoleChange::BecameLeader);
            let p = rm.partition("t", 0).unwrap();
            p.append_as_leader(&batch(5, 0), 1, 0).unwrap();
            p.record_follower_fetch(2, 3, 0, 0).unwrap();
            assert_eq!(p.high_watermark(), 3);
            rm.checkpoint_high_watermarks().unwrap();
            logs.shutdown().unwrap();
        }
        let logs = LogManager::open(dir.path()).unwrap();
        let rm = ReplicaManager::new(1, logs, ReplicationSettings::default());
        rm.apply_state(&tp, LogConfig::default(), 1, state(2, 1, &[1, 2]))
            .unwrap();
        let p = rm.partition("t", 0).unwrap();
        assert_eq!(p.high_watermark(), 3);
        assert!(!p.is_leader());
        assert_eq!(rm.hosted(), vec![tp.clone()]);
        rm.stop_replica(&tp, true).unwrap();
        assert!(rm.hosted().is_empty());
        assert!(rm.logs().get(&tp).is_none());
    }

    #[test]
    fn stopped_replica_keeps_its_log_and_high_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogManager::open(dir.path()).unwrap();
        let rm = ReplicaManager::new(1, logs, ReplicationSettings::default());
        let tp = TopicPartition::new("t", 0);
        rm.apply_state(&tp, LogConfig::default(), 1, state(1, 0, &[1, 2]))
            .unwrap();
        let p = rm.partition("t", 0).unwrap();
        p.append_as_leader(&batch(5, 0), 1, 0).unwrap();
        p.record_follower_fetch(2, 4, 0, 0).unwrap();
        rm.stop_replica(&tp, false).unwrap();
        assert!(rm.hosted().is_empty());
        assert!(matches!(
            p.append_as_leader(&batch(1, 0), 1, 0),
            Err(ProduceError::NotLeader)
        ));
        rm.checkpoint_high_watermarks().unwrap();
        let saved = read_checkpoint(&dir.path().join(HIGH_WATERMARK_CHECKPOINT)).unwrap();
        assert_eq!(saved.get(&tp), Some(&4));
        let change = rm
            .apply_state(&tp, LogConfig::default(), 1, state(2, 1, &[1, 2]))
            .unwrap();
        assert_eq!(change, RoleChange::BecameFollower);
        let p = rm.partition("t", 0).unwrap();
        assert_eq!((p.log_end_offset(), p.high_watermark()), (5, 4));
    }

    #[test]
    fn apply_topic_reports_role_changes_once() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogManager::open(dir.path()).unwrap();
        let rm = ReplicaManager::new(0, logs, ReplicationSettings::default());
        let (config, _) = BrokerConfig::from_properties(Default::default()).unwrap();
        // Through serde so the test does not depend on every field of PartitionState.
        let topic: TopicMetadata = serde_json::from_value(serde_json::json!({
            "name": "t",
            "id": uuid::Uuid::new_v4(),
            "partitions": [
                {"partition": 0, "replicas": [0], "leader": 0, "leader_epoch": 0, "isr": [0]},
                {"partition": 1, "replicas": [1], "leader": 1, "leader_epoch": 0, "isr": [1]},
                {"partition": 2, "replicas": [0], "leader": -1, "leader_epoch": -1, "isr": []},
            ],
            "configs": {},
        }))
        .unwrap();
        let tp = |p| TopicPartition::new("t", p);
        assert_eq!(
            rm.apply_topic(&topic, &config),
            vec![
                (tp(0), RoleChange::BecameLeader),
                (tp(2), RoleChange::Unchanged)
            ],
            "partition 1 is not assigned here; 2 has no state yet"
        );
        assert_eq!(
            rm.apply_topic(&topic, &config),
            vec![
                (tp(0), RoleChange::Unchanged),
                (tp(2), RoleChange::Unchanged)
            ]
        );
        assert!(rm.partition("t", 0).unwrap().is_leader());
        assert_eq!(rm.hosted(), vec![tp(0)]);
        // The topic is gone from the metadata: its replica stops and its log is deleted.
        let applied = rm.apply_metadata(Vec::new, &config);
        assert_eq!(applied.stopped, vec![tp(0)]);
        assert!(rm.hosted().is_empty());
        assert!(rm.logs().get(&tp(0)).is_none());
    }

    #[test]
    fn standalone_hosting_keeps_hw_at_log_end() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogManager::open(dir.path()).unwrap();
        let rm = ReplicaManager::new(0, logs, ReplicationSettings::default());
        let tp = TopicPartition::new("t", 0);
        rm.apply_state(&tp, LogConfig::default(), 1, LeaderAndIsr::standalone(0, 0))
            .unwrap();
        let p = rm.partition("t", 0).unwrap();
        p.append_as_leader(&batch(4, 0), -1, 0).unwrap();
        assert_eq!(p.high_watermark(), 4);
        assert_eq!(p.replication_status(4).map(|r| r.is_ok()), Some(true));
    }
}
