//! The boundary between replication and the metadata store: the partition state applied with
//! `ReplicaManager::apply_state`, and the [`ClusterLink`] through which leaders record ISR
//! changes and followers find their leader.

use crate::cluster::PartitionState;
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
    /// The state of a partition as the metadata describes it.
    pub fn of(p: &PartitionState) -> LeaderAndIsr {
        LeaderAndIsr {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            isr: p.isr.clone(),
            replicas: p.replicas.clone(),
            controller_epoch: p.controller_epoch,
            state_version: p.state_version,
        }
    }

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

pub use crate::cluster::IsrWriteError;

/// What replication needs from the metadata store; the broker implements it over the cluster
/// backend.
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
    /// How follower fetchers connect to those endpoints (plain TCP unless the link says).
    fn dialer(&self) -> super::peer::PeerDialer {
        super::peer::PeerDialer::plaintext("PLAINTEXT")
    }
}
