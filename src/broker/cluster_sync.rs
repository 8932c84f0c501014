//! Cluster mode: applies each new metadata view to this broker's replicas. Every partition
//! this broker is assigned becomes leader or follower at the state's leader epoch, partitions
//! no longer assigned stop (and are deleted with their topic), and group coordination follows
//! the leadership of `__consumer_offsets` partitions. While the metadata store is unreachable
//! leaders go on under the replica manager's isolation rule (unclean-election topics are fenced
//! at once); once the session is lost every leader is fenced.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info};

use super::Broker;
use crate::cluster::{MetadataLink, PartitionState, TopicMetadata};
use crate::config::topic::{log_config, min_insync_replicas, unclean_leader_election};
use crate::group::OFFSETS_TOPIC;
use crate::log::TopicPartition;
use crate::maintenance::now_ms;
use crate::replica::{LeaderAndIsr, RoleChange};

/// Applies metadata changes until `stop`.
pub async fn run(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut versions = broker.cluster.subscribe();
    loop {
        let version = *versions.borrow_and_update();
        match version.link {
            MetadataLink::Connected => {
                broker.replicas.metadata_reachable();
                let b = broker.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || apply_all(&b)).await {
                    error!(error = %e, "applying cluster metadata panicked");
                }
            }
            MetadataLink::Disconnected { session_timeout_ms } => {
                let grace = Duration::from_millis(session_timeout_ms / 3);
                broker.replicas.metadata_unreachable(grace);
                fence_unclean_topics(&broker);
            }
            MetadataLink::Lost => broker.replicas.fence_leaders(),
        }
        tokio::select! {
            _ = stop.changed() => return,
            changed = versions.changed() => if changed.is_err() { return },
        }
    }
}

/// Fences the leaderships of topics with unclean leader election enabled: any of their replicas
/// may be elected once this broker's session expires, fetching or not.
fn fence_unclean_topics(broker: &Broker) {
    for topic in broker.cluster.topics() {
        if !unclean_leader_election(&topic.configs, &broker.config) {
            continue;
        }
        let name: Arc<str> = Arc::from(topic.name.as_str());
        for p in &topic.partitions {
            broker.replicas.fence(&TopicPartition {
                topic: name.clone(),
                partition: p.partition,
            });
        }
    }
}

/// Brings every hosted replica in line with the current metadata.
pub fn apply_all(broker: &Broker) {
    let topics = broker.cluster.topics();
    let mut assigned = HashSet::new();
    for topic in &topics {
        for tp in apply_topic(broker, topic) {
            assigned.insert(tp);
        }
    }
    let known: HashSet<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    for tp in broker.replicas.hosted() {
        if assigned.contains(&tp) {
            continue;
        }
        let deleted = !known.contains(&*tp.topic);
        if let Err(e) = broker.replicas.stop_replica(&tp, deleted) {
            error!(partition = %tp, error = %e, "stopping replica failed");
        }
        if &*tp.topic == OFFSETS_TOPIC {
            broker.groups.unload_partition(tp.partition);
        }
    }
}

/// Applies the states of one topic's partitions assigned to this broker; returns them.
pub fn apply_topic(broker: &Broker, topic: &TopicMetadata) -> Vec<TopicPartition> {
    let me = broker.broker_id();
    let name: Arc<str> = Arc::from(topic.name.as_str());
    let config = log_config(&topic.configs, &broker.config);
    let min_isr = min_insync_replicas(&topic.configs, &broker.config);
    let _applying = broker.applying.lock();
    let mut applied = Vec::new();
    for p in topic.partitions.iter().filter(|p| p.replicas.contains(&me)) {
        let tp = TopicPartition {
            topic: name.clone(),
            partition: p.partition,
        };
        applied.push(tp.clone());
        if p.leader_epoch < 0 {
            continue; // No state written yet.
        }
        if !claimed(broker, &tp, topic) {
            continue;
        }
        match broker
            .replicas
            .apply_state(&tp, config.clone(), min_isr, leader_and_isr(p))
        {
            Ok(change) => on_role_change(broker, &tp, change),
            Err(e) => {
                error!(partition = %tp, error = %e, "cannot host replica: its log is unusable")
            }
        }
    }
    applied
}

/// Before a partition is first hosted, its directory is claimed for the topic's id (a stale
/// directory of an earlier topic of the same name is deleted). False if that failed.
fn claimed(broker: &Broker, tp: &TopicPartition, topic: &TopicMetadata) -> bool {
    if topic.id.is_nil() || broker.replicas.is_hosted(tp) {
        return true;
    }
    match broker.replicas.logs().claim_for_topic(tp, topic.id) {
        Ok(()) => true,
        Err(e) => {
            error!(partition = %tp, error = %e, "cannot host replica: its directory is unusable");
            false
        }
    }
}

fn leader_and_isr(p: &PartitionState) -> LeaderAndIsr {
    LeaderAndIsr {
        leader: p.leader,
        leader_epoch: p.leader_epoch,
        isr: p.isr.clone(),
        replicas: p.replicas.clone(),
        controller_epoch: p.controller_epoch,
        state_version: p.state_version,
    }
}

fn on_role_change(broker: &Broker, tp: &TopicPartition, change: RoleChange) {
    if &*tp.topic != OFFSETS_TOPIC {
        return;
    }
    match change {
        RoleChange::BecameLeader => {
            broker
                .groups
                .load_partition(&broker.replicas, tp.partition, now_ms());
            info!(
                partition = tp.partition,
                "now coordinating the groups of this offsets partition"
            );
        }
        RoleChange::BecameFollower => broker.groups.unload_partition(tp.partition),
        RoleChange::Unchanged => {}
    }
}
