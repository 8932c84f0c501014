//! Replica manager: the partitions this broker hosts, their logs, high watermarks and the
//! notifications that wake long-polling fetches.
//!
//! In standalone mode every partition has one replica (this broker), so the high watermark follows
//! the log end offset. The cluster issue adds followers, ISR tracking and delayed produce here.

mod partition;

use std::sync::Arc;

use dashmap::DashMap;

use crate::cluster::TopicMetadata;
use crate::config::topic::{log_config, min_insync_replicas};
use crate::config::BrokerConfig;
use crate::log::{LogError, LogManager, TopicPartition};

pub use partition::{EpochMismatch, Partition, ProduceError};

/// Owns every partition replica hosted by this broker.
pub struct ReplicaManager {
    broker_id: i32,
    logs: Arc<LogManager>,
    partitions: DashMap<TopicPartition, Arc<Partition>>,
}

impl ReplicaManager {
    pub fn new(broker_id: i32, logs: Arc<LogManager>) -> ReplicaManager {
        ReplicaManager {
            broker_id,
            logs,
            partitions: DashMap::new(),
        }
    }

    pub fn logs(&self) -> &Arc<LogManager> {
        &self.logs
    }

    /// Opens (or creates) the logs of every partition of `topic` that this broker hosts.
    pub fn host_topic(&self, topic: &TopicMetadata, broker: &BrokerConfig) -> Result<(), LogError> {
        let config = log_config(&topic.configs, broker);
        let min_isr = min_insync_replicas(&topic.configs, broker);
        let name: Arc<str> = Arc::from(topic.name.as_str());
        for state in &topic.partitions {
            if !state.replicas.contains(&self.broker_id) {
                continue;
            }
            let tp = TopicPartition {
                topic: name.clone(),
                partition: state.partition,
            };
            if self.partitions.contains_key(&tp) {
                continue;
            }
            let log = self.logs.open_partition(&tp, config.clone())?;
            let partition = Partition::new(
                tp.clone(),
                log,
                state.leader_epoch,
                state.isr.len(),
                min_isr,
            );
            self.partitions.insert(tp, Arc::new(partition));
        }
        Ok(())
    }

    /// Stops hosting and deletes the data of every partition of `topic`.
    pub fn remove_topic(&self, topic: &TopicMetadata) -> Result<(), LogError> {
        let name: Arc<str> = Arc::from(topic.name.as_str());
        for state in &topic.partitions {
            let tp = TopicPartition {
                topic: name.clone(),
                partition: state.partition,
            };
            if self.partitions.remove(&tp).is_some() || self.logs.get(&tp).is_some() {
                self.logs.delete_partition(&tp)?;
            }
        }
        Ok(())
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let tp = TopicPartition {
            topic: Arc::from(topic),
            partition,
        };
        self.partitions.get(&tp).map(|p| p.clone())
    }
}
