//! The metadata sync: applies each new metadata view to this broker's replicas, in every mode.
//! The stored dynamic broker configs are merged into the live configuration first; then every
//! partition this broker is assigned becomes leader or follower at the state's leader epoch
//! with its topic's log config and min ISR in force, partitions no longer assigned stop (and
//! are deleted with their topic), and group coordination follows the leadership of
//! `__consumer_offsets` partitions; the replication throttle rates follow the configuration,
//! and each topic's throttled-replica lists reach its replicas as it is applied. While the metadata
//! store is unreachable leaders go on under the replica manager's isolation rule
//! (unclean-election topics are fenced at once); once the session is lost every leader is fenced.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use crate::cluster::{ClusterMetadata, MetadataLink, TopicMetadata};
use crate::config::dynamic::{live_mode, sanitize, LiveMode};
use crate::config::topic::unclean_leader_election;
use crate::config::{BrokerConfig, ConfigHandle, ConfigType, DynamicBrokerConfigs};
use crate::group::GroupCoordinator;
use crate::log::cleaner::CleanerConfig;
use crate::log::TopicPartition;
use crate::replica::ReplicaManager;
use crate::txn::TransactionCoordinator;
use crate::util::task::Shutdown;

/// What applying metadata touches; cheap to clone into the sync task.
#[derive(Clone)]
pub struct MetadataSync {
    pub(super) cluster: Arc<dyn ClusterMetadata>,
    pub(super) replicas: Arc<ReplicaManager>,
    pub(super) groups: Arc<GroupCoordinator>,
    pub(super) txn: Arc<TransactionCoordinator>,
    pub(super) config: ConfigHandle,
    /// The metadata generation the last full apply read (`u64::MAX`: none yet).
    pub(super) applied_generation: Arc<AtomicU64>,
}

impl MetadataSync {
    /// Brings the configuration and every hosted replica in line with the current metadata.
    pub fn apply_all(&self) {
        let generation = self.cluster.subscribe().borrow().generation;
        self.applied_generation.store(generation, Ordering::Release);
        self.refresh_broker_config();
        let config = self.config.current();
        self.replicas.set_throttled_rates(config.throttled_rates);
        let applied = self
            .replicas
            .apply_metadata(|| self.cluster.topics(), &config);
        self.groups.on_role_changes(&applied.changes);
        self.groups.on_replicas_stopped(&applied.stopped);
        self.txn.on_role_changes(&applied.changes);
        self.txn.on_replicas_stopped(&applied.stopped);
    }

    /// Applies one topic's metadata (a topic this broker just created or grew).
    pub fn apply_topic(&self, topic: &TopicMetadata) {
        let changes = self.replicas.apply_topic(topic, &self.config.current());
        self.groups.on_role_changes(&changes);
        self.txn.on_role_changes(&changes);
    }

    /// Applies metadata changes until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) {
        let mut versions = self.cluster.subscribe();
        loop {
            let version = *versions.borrow_and_update();
            match version.link {
                // Nothing new since the last full apply (the one at start-up, usually).
                MetadataLink::Connected
                    if version.generation == self.applied_generation.load(Ordering::Acquire) =>
                {
                    self.replicas.metadata_reachable();
                }
                MetadataLink::Connected => {
                    self.replicas.metadata_reachable();
                    let sync = self.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || sync.apply_all()).await {
                        error!(error = %e, "applying cluster metadata panicked");
                    }
                }
                MetadataLink::Disconnected { session_timeout_ms } => {
                    let grace = Duration::from_millis(session_timeout_ms / 3);
                    self.replicas.metadata_unreachable(grace);
                    self.fence_unclean_topics();
                }
                MetadataLink::Lost => self.replicas.fence_leaders(),
            }
            tokio::select! {
                _ = shutdown.triggered() => return,
                changed = versions.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Merges the stored dynamic broker configs into the live configuration when they changed
    /// (keys that cannot apply are left out and logged, as Kafka does), and hands the new
    /// cleaner settings to the log manager. Topics pick the new defaults up as they are applied.
    fn refresh_broker_config(&self) {
        let stored = self.cluster.broker_configs();
        let (default, dropped_default) = sanitize(&stored.default);
        let (broker, dropped_broker) = sanitize(&stored.broker);
        let dynamic = DynamicBrokerConfigs { default, broker };
        let current = self.config.current();
        if current.dynamic() == &dynamic {
            return;
        }
        for (key, reason) in dropped_default.iter().chain(&dropped_broker) {
            warn!(key, %reason, "stored dynamic broker config ignored");
        }
        match current.with_dynamic(dynamic) {
            Ok(next) => {
                log_changes(&current, &next);
                self.replicas
                    .logs()
                    .set_cleaner_config(cleaner_config(&next));
                self.config.replace(next);
            }
            Err(e) => error!(error = %e, "dynamic broker configs could not be applied"),
        }
    }

    /// Fences the leaderships of topics with unclean leader election enabled: any of their
    /// replicas may be elected once this broker's session expires, fetching or not.
    fn fence_unclean_topics(&self) {
        let config = self.config.current();
        for topic in self.cluster.topics() {
            if !unclean_leader_election(&topic.configs, &config) {
                continue;
            }
            let name: Arc<str> = Arc::from(topic.name.as_str());
            for p in &topic.partitions {
                self.replicas.fence(&TopicPartition {
                    topic: name.clone(),
                    partition: p.partition,
                });
            }
        }
    }
}

/// The log cleaner's settings from the broker configuration.
pub fn cleaner_config(config: &BrokerConfig) -> CleanerConfig {
    let load_factor = config
        .effective("log.cleaner.io.buffer.load.factor")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|f| *f > 0.0 && *f <= 1.0)
        .unwrap_or(0.9);
    CleanerConfig {
        dedupe_buffer_bytes: config.cleaner_dedupe_buffer_bytes,
        load_factor,
    }
}

/// Logs every dynamic key (set before or after) whose value in force changed, sensitive values
/// hidden, saying whether it takes effect here.
fn log_changes(before: &BrokerConfig, after: &BrokerConfig) {
    let layers = [before.dynamic(), after.dynamic()];
    let keys: std::collections::BTreeSet<&str> = layers
        .iter()
        .flat_map(|d| d.default.keys().chain(d.broker.keys()))
        .map(String::as_str)
        .collect();
    for key in keys {
        let new = after.effective(key);
        if before.effective(key) == new {
            continue;
        }
        let sensitive = crate::config::broker::broker_def(key)
            .map_or(ConfigType::Unknown, |d| d.kind)
            .sensitive();
        let shown = match new {
            Some(_) if sensitive => "[hidden]",
            Some(v) => v,
            None => "(its default)",
        };
        match live_mode(key) {
            LiveMode::Applied => info!(key, value = shown, "dynamic broker config applied"),
            _ => info!(
                key,
                value = shown,
                "dynamic broker config stored; it has no effect in Odradek"
            ),
        }
    }
}
