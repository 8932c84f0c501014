//! The boundary between replication and the cluster layer: the partition state the cluster layer
//! reads from the metadata store and hands to `ReplicaManager::apply_state`, and the `ClusterLink`
//! it implements so leaders can record ISR changes and followers can find their leader.

use crate::log::TopicPartition;

/// A partition's state as the cluster layer read it from
/// `/brokers/topics/<t>/partitions/<p>/state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderAndIsr {
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub replicas: Vec<i32>,
    pub controller_epoch: i32,
    /// znode version this was read at (for conditional ISR writes)
    pub state_version: i32,
}

impl LeaderAndIsr {
    /// The state of a standalone partition: this broker alone leads at `leader_epoch`.
    pub fn standalone(broker_id: i32, leader_epoch: i32) -> LeaderAndIsr {
        LeaderAndIsr {
            leader: broker_id,
            leader_epoch,
            isr: vec![broker_id],
            replicas: vec![broker_id],
            controller_epoch: 0,
            state_version: 0,
        }
    }
}

/// Why an ISR write failed.
#[derive(Debug, thiserror::Error)]
pub enum IsrWriteError {
    /// The znode changed since it was read (another leader or the controller wrote it): the leader
    /// keeps its ISR and waits for the next `apply_state`.
    #[error("partition state changed")]
    Conflict,
    /// The store could not be reached; the leader retries later.
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
}

/// Implemented by the cluster layer (ZooKeeper backend). Absent in standalone mode.
#[async_trait::async_trait]
pub trait ClusterLink: Send + Sync {
    /// Conditionally writes `state` (same leader/leader_epoch/controller_epoch, new isr) to the
    /// partition's state znode if its version is still `state.state_version`; returns the new
    /// version.
    async fn write_isr(
        &self,
        tp: &TopicPartition,
        state: &LeaderAndIsr,
    ) -> Result<i32, IsrWriteError>;
    /// host:port of a live broker, for follower fetchers.
    fn broker_endpoint(&self, broker_id: i32) -> Option<(String, u16)>;
}
