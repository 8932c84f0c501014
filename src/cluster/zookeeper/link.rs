//! [`ClusterLink`] over ZooKeeper: a partition leader's conditional ISR writes, and the
//! endpoints follower fetchers connect to.

use async_trait::async_trait;

use super::client::ZkError;
use super::metadata::ZkCluster;
use super::store::StoreError;
use super::znodes::PartitionStateZnode;
use crate::log::TopicPartition;
use crate::replica::{ClusterLink, IsrWriteError, LeaderAndIsr};

#[async_trait]
impl ClusterLink for ZkCluster {
    async fn write_isr(
        &self,
        tp: &TopicPartition,
        state: &LeaderAndIsr,
    ) -> Result<i32, IsrWriteError> {
        if !self.usable() {
            return Err(IsrWriteError::Unavailable(
                "ZooKeeper session not usable".into(),
            ));
        }
        let znode = PartitionStateZnode::new(
            state.leader,
            state.leader_epoch,
            state.isr.clone(),
            state.controller_epoch,
        );
        match self
            .store()
            .update_partition_state(&tp.topic, tp.partition, &znode, state.state_version)
            .await
        {
            Ok(version) => Ok(version),
            Err(StoreError::Zk(ZkError::BadVersion | ZkError::NoNode)) => {
                Err(IsrWriteError::Conflict)
            }
            Err(e) => Err(IsrWriteError::Unavailable(e.to_string())),
        }
    }

    fn broker_endpoint(&self, broker_id: i32) -> Option<(String, u16)> {
        self.view()
            .brokers
            .get(&broker_id)
            .map(|b| (b.info.host.clone(), b.info.port))
    }
}
