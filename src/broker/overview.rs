//! A read-only snapshot of the cluster as this broker sees it, for display (the web console):
//! the live brokers and the controller, topics with their partitions (leader, replicas, ISR,
//! offline replicas; log start, high watermark and size where a replica is hosted here), topic
//! and broker configs as DescribeConfigs reports them, and consumer groups (see [`groups`]).
//! Gathering never changes anything: it creates no topic and writes nothing.

mod assignment;
pub mod groups;
mod peers;

use std::collections::HashSet;

use crate::cluster::{BrokerInfo, PartitionState, TopicMetadata};
use crate::config::describe::{broker_entries, topic_entries, DescribedConfig};
use crate::log::TopicPartition;

use super::Broker;

pub use assignment::decode_assignment;
pub use groups::{GroupSummary, GroupView, LagRow, MemberView};

/// Internal topics, shown apart from user topics.
const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

/// The cluster at a glance.
#[derive(Clone, Debug)]
pub struct ClusterView {
    pub cluster_id: String,
    /// The broker answering.
    pub this_broker: i32,
    /// The controller's id, -1 when there is none.
    pub controller: i32,
    /// Live brokers, by id.
    pub brokers: Vec<BrokerInfo>,
    /// Every topic, by name.
    pub topics: Vec<TopicSummary>,
}

/// One line of the topic list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSummary {
    pub name: String,
    pub internal: bool,
    pub partitions: usize,
    /// Replicas of the first partition (the topic's replication factor).
    pub replication_factor: usize,
    /// Partitions whose ISR is smaller than their replica set.
    pub under_replicated: usize,
    /// Partitions without a live leader.
    pub offline: usize,
    /// Bytes of this topic's logs on this broker.
    pub size_here: u64,
}

/// One topic in detail.
#[derive(Clone, Debug)]
pub struct TopicView {
    pub name: String,
    pub id: String,
    pub internal: bool,
    pub partitions: Vec<PartitionView>,
    /// Every topic config as DescribeConfigs reports it; overrides have source `TopicOverride`.
    pub configs: Vec<DescribedConfig>,
}

/// One partition of a [`TopicView`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionView {
    pub partition: i32,
    /// -1 without a leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Replicas on brokers that are not alive.
    pub offline: Vec<i32>,
    /// The log of the replica hosted here, if any.
    pub log: Option<LogView>,
    /// Without a replica here: the leader's high watermark, when it answered.
    pub end_offset: Option<i64>,
}

/// Offsets and size of a replica hosted on this broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogView {
    pub log_start: i64,
    pub high_watermark: i64,
    pub log_end: i64,
    pub size_bytes: u64,
}

impl Broker {
    /// The brokers, the controller and a summary of every topic.
    pub fn cluster_view(&self) -> ClusterView {
        let mut brokers = self.cluster.live_brokers();
        brokers.sort_by_key(|b| b.id);
        let live: HashSet<i32> = brokers.iter().map(|b| b.id).collect();
        let mut topics: Vec<TopicSummary> = self
            .cluster
            .topics()
            .iter()
            .map(|t| self.topic_summary(t, &live))
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        ClusterView {
            cluster_id: self.cluster.cluster_id(),
            this_broker: self.broker_id(),
            controller: self.cluster.controller_id(),
            brokers,
            topics,
        }
    }

    fn topic_summary(&self, t: &TopicMetadata, live: &HashSet<i32>) -> TopicSummary {
        let size_here = t
            .partitions
            .iter()
            .filter_map(|p| self.log_view(&t.name, p.partition))
            .map(|l| l.size_bytes)
            .sum();
        TopicSummary {
            name: t.name.clone(),
            internal: is_internal(&t.name),
            partitions: t.partitions.len(),
            replication_factor: t.partitions.first().map_or(0, |p| p.replicas.len()),
            under_replicated: t
                .partitions
                .iter()
                .filter(|p| p.isr.len() < p.replicas.len())
                .count(),
            offline: t
                .partitions
                .iter()
                .filter(|p| p.leader < 0 || !live.contains(&p.leader))
                .count(),
            size_here,
        }
    }

    /// One topic with its partitions and configs; `None` for an unknown topic. Partitions
    /// without a replica here get their leader's end offset ([`Broker::leader_end_offsets`]).
    pub async fn topic_view(&self, name: &str) -> Option<TopicView> {
        let topic = self.cluster.topic(name)?;
        let live: HashSet<i32> = self.cluster.live_brokers().iter().map(|b| b.id).collect();
        let mut partitions: Vec<PartitionView> = topic
            .partitions
            .iter()
            .map(|p| self.partition_view(&topic.name, p, &live))
            .collect();
        partitions.sort_by_key(|p| p.partition);
        let elsewhere: Vec<(String, i32)> = partitions
            .iter()
            .filter(|p| p.log.is_none())
            .map(|p| (topic.name.clone(), p.partition))
            .collect();
        if !elsewhere.is_empty() {
            let ends = self.leader_end_offsets(&elsewhere).await;
            for p in partitions.iter_mut().filter(|p| p.log.is_none()) {
                p.end_offset = ends.get(&(topic.name.clone(), p.partition)).copied();
            }
        }
        let config = self.config.current();
        Some(TopicView {
            name: topic.name.clone(),
            id: topic.id.to_string(),
            internal: is_internal(&topic.name),
            partitions,
            configs: topic_entries(&topic.configs, &config),
        })
    }

    fn partition_view(
        &self,
        topic: &str,
        p: &PartitionState,
        live: &HashSet<i32>,
    ) -> PartitionView {
        PartitionView {
            partition: p.partition,
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            offline: p
                .replicas
                .iter()
                .copied()
                .filter(|r| !live.contains(r))
                .collect(),
            log: self.log_view(topic, p.partition),
            end_offset: None,
        }
    }

    /// Offsets and size of this broker's replica of a partition, if it hosts one.
    pub fn log_view(&self, topic: &str, partition: i32) -> Option<LogView> {
        let tp = TopicPartition::new(topic, partition);
        let hosted = self.replicas.hosted_partition(&tp)?;
        let size_bytes = self.replicas.logs().get(&tp).map_or(0, |l| l.size_bytes());
        Some(LogView {
            log_start: hosted.log_start_offset(),
            high_watermark: hosted.high_watermark(),
            log_end: hosted.log_end_offset(),
            size_bytes,
        })
    }

    /// This broker's configs as DescribeConfigs reports them (sensitive values without a value).
    pub fn broker_config_view(&self) -> Vec<DescribedConfig> {
        let mut entries = broker_entries(&self.config.current());
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }

    /// The configs of broker `id`: this broker's own, or a live peer's as it answers
    /// DescribeConfigs (an error text when it does not); `None` when no such broker is alive.
    pub async fn broker_config_view_of(
        &self,
        id: i32,
    ) -> Option<Result<Vec<DescribedConfig>, String>> {
        if id == self.broker_id() {
            return Some(Ok(self.broker_config_view()));
        }
        let peer = self
            .cluster
            .live_brokers()
            .into_iter()
            .find(|b| b.id == id)?;
        Some(
            peers::broker_configs(&peer, &self.dialer)
                .await
                .map_err(|e| e.to_string()),
        )
    }
}

/// Whether `name` is one of Kafka's internal topics.
pub fn is_internal(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}
