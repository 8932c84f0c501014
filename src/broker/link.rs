//! Glue: the cluster backend serving the replica layer's [`ClusterLink`] (ISR writes and the
//! endpoints follower fetchers connect to).

use std::sync::Arc;

use async_trait::async_trait;

use crate::cluster::{ClusterMetadata, IsrWriteError, PartitionState};
use crate::log::TopicPartition;
use crate::replica::peer::PeerDialer;
use crate::replica::{ClusterLink, LeaderAndIsr};

/// The replica layer's link to whichever metadata backend the broker runs with.
pub struct ReplicaLink {
    cluster: Arc<dyn ClusterMetadata>,
    /// How other brokers are reached: the inter-broker listener and its security.
    dialer: PeerDialer,
}

impl ReplicaLink {
    pub fn new(cluster: Arc<dyn ClusterMetadata>, dialer: PeerDialer) -> ReplicaLink {
        ReplicaLink { cluster, dialer }
    }
}

#[async_trait]
impl ClusterLink for ReplicaLink {
    async fn write_isr(
        &self,
        tp: &TopicPartition,
        state: &LeaderAndIsr,
    ) -> Result<i32, IsrWriteError> {
        let state = PartitionState {
            partition: tp.partition,
            replicas: state.replicas.clone(),
            leader: state.leader,
            leader_epoch: state.leader_epoch,
            isr: state.isr.clone(),
            controller_epoch: state.controller_epoch,
            state_version: state.state_version,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        };
        self.cluster.write_isr(&tp.topic, &state).await
    }

    fn broker_endpoint(&self, broker_id: i32) -> Option<(String, u16)> {
        self.cluster
            .live_brokers()
            .into_iter()
            .find(|b| b.id == broker_id)
            .and_then(|b| b.address(self.dialer.listener()))
    }

    fn dialer(&self) -> PeerDialer {
        self.dialer.clone()
    }
}
