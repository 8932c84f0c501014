//! The metadata sync: applies each new metadata view to this broker's replicas, in every mode.
//! Every partition this broker is assigned becomes leader or follower at the state's leader
//! epoch, partitions no longer assigned stop (and are deleted with their topic), and group
//! coordination follows the leadership of `__consumer_offsets` partitions. While the metadata
//! store is unreachable leaders go on under the replica manager's isolation rule
//! (unclean-election topics are fenced at once); once the session is lost every leader is fenced.

use std::sync::Arc;
use std::time::Duration;

use tracing::error;

use crate::cluster::{ClusterMetadata, MetadataLink, TopicMetadata};
use crate::config::topic::unclean_leader_election;
use crate::config::ConfigHandle;
use crate::group::GroupCoordinator;
use crate::log::TopicPartition;
use crate::replica::ReplicaManager;
use crate::util::task::Shutdown;

/// What applying metadata touches; cheap to clone into the sync task.
#[derive(Clone)]
pub struct MetadataSync {
    pub(super) cluster: Arc<dyn ClusterMetadata>,
    pub(super) replicas: Arc<ReplicaManager>,
    pub(super) groups: Arc<GroupCoordinator>,
    pub(super) config: ConfigHandle,
}

impl MetadataSync {
    /// Brings every hosted replica in line with the current metadata.
    pub fn apply_all(&self) {
        let applied = self
            .replicas
            .apply_metadata(|| self.cluster.topics(), &self.config.current());
        self.groups.on_role_changes(&applied.changes);
        self.groups.on_replicas_stopped(&applied.stopped);
    }

    /// Applies one topic's metadata (a topic this broker just created or grew).
    pub fn apply_topic(&self, topic: &TopicMetadata) {
        let changes = self.replicas.apply_topic(topic, &self.config.current());
        self.groups.on_role_changes(&changes);
    }

    /// Applies metadata changes until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) {
        let mut versions = self.cluster.subscribe();
        loop {
            let version = *versions.borrow_and_update();
            match version.link {
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
