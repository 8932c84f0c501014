//! What the controller does on request: partition moves (AlterPartitionReassignments, KIP-455)
//! and leader elections (ElectLeaders, KIP-460), asked through the API of the broker in office
//! or through the ZooKeeper-era znodes `/admin/reassign_partitions` and
//! `/admin/preferred_replica_election`. Every write is fenced by the controller epoch and
//! conditional on the version read; the progress of a move is `decisions`' business.

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::client::ZkError;
use super::elections::elect;
use super::paths;
use super::store::{ControllerFence, StoreError, ZkStore};
use super::view::ClusterView;
use super::znodes::{
    PartitionStateZnode, PreferredElectionZnode, ReassignEntry, ReassignPartitionsZnode,
};
use crate::cluster::reassignment::{plan, refuse_unknown, ReplicaSet};
use crate::cluster::{ControllerError, ElectionType, PartitionKey, PartitionReassignment};

/// How often a move retries its topic write after losing a race.
const WRITE_ATTEMPTS: usize = 5;

/// The outcome of one partition's election: its new leader epoch.
pub type ElectionOutcome = (PartitionKey, Result<i32, ControllerError>);

/// A request only the controller in office answers. Dropping it unanswered tells the asker
/// this broker is not (or no longer) the controller.
pub enum ControllerRequest {
    Reassign {
        changes: Vec<PartitionReassignment>,
        reply: oneshot::Sender<Vec<Result<(), ControllerError>>>,
    },
    Elect {
        kind: ElectionType,
        /// `None`: every partition.
        partitions: Option<Vec<PartitionKey>>,
        reply: oneshot::Sender<Vec<ElectionOutcome>>,
    },
}

/// Who may take part: registered brokers, and those that may lead (registered and not in a
/// controlled shutdown).
pub struct Brokers<'a> {
    pub live: &'a BTreeMap<i32, i64>,
    pub shutting_down: &'a BTreeSet<i32>,
}

impl Brokers<'_> {
    fn live(&self, id: i32) -> bool {
        self.live.contains_key(&id)
    }

    fn eligible(&self, id: i32) -> bool {
        self.live(id) && !self.shutting_down.contains(&id)
    }
}

/// Answers one request.
pub async fn answer(
    store: &ZkStore,
    fence: ControllerFence,
    view: &ClusterView,
    brokers: &Brokers<'_>,
    request: ControllerRequest,
) {
    match request {
        ControllerRequest::Reassign { changes, reply } => {
            let results = reassign(store, fence, brokers, &changes).await;
            let moved: Vec<PartitionKey> = changes
                .iter()
                .zip(&results)
                .filter(|(_, r)| r.is_ok())
                .map(|(c, _)| (c.topic.clone(), c.partition))
                .collect();
            // The latest request wins over one made through the znode, as in Kafka.
            if let Err(e) = forget_legacy_moves(store, &moved).await {
                debug!(error = %e, "updating /admin/reassign_partitions failed");
            }
            let _ = reply.send(results);
        }
        ControllerRequest::Elect {
            kind,
            partitions,
            reply,
        } => {
            let partitions = partitions.unwrap_or_else(|| every_partition(view));
            let _ = reply.send(elect_all(store, fence, view, brokers, kind, &partitions).await);
        }
    }
}

fn every_partition(view: &ClusterView) -> Vec<PartitionKey> {
    view.topics
        .values()
        .flat_map(|t| t.assignment.partitions.keys().map(|p| (t.name.clone(), *p)))
        .collect()
}

// -- moves -------------------------------------------------------------------------------------

/// Starts, replaces or cancels moves, one topic write each; answers each change in order.
pub async fn reassign(
    store: &ZkStore,
    fence: ControllerFence,
    brokers: &Brokers<'_>,
    changes: &[PartitionReassignment],
) -> Vec<Result<(), ControllerError>> {
    let mut results = vec![Ok(()); changes.len()];
    let mut by_topic: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, change) in changes.iter().enumerate() {
        by_topic.entry(&change.topic).or_default().push(i);
    }
    for (topic, indexes) in by_topic {
        let picked: Vec<&PartitionReassignment> = indexes.iter().map(|i| &changes[*i]).collect();
        let outcome = reassign_topic(store, fence, brokers, topic, &picked).await;
        for (i, r) in indexes.into_iter().zip(outcome) {
            results[i] = r;
        }
    }
    results
}

/// One topic's changes: read its assignment, apply each change, write it back if anything
/// moved (retrying on a lost race), then bump the leader epoch of each partition that started
/// moving so its leader takes the new replicas in.
async fn reassign_topic(
    store: &ZkStore,
    fence: ControllerFence,
    brokers: &Brokers<'_>,
    topic: &str,
    changes: &[&PartitionReassignment],
) -> Vec<Result<(), ControllerError>> {
    for _ in 0..WRITE_ATTEMPTS {
        let (mut assignment, version) = match store.get_topic(topic).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                return changes
                    .iter()
                    .map(|c| Err(refuse_unknown(c.target.as_deref(), |b| brokers.live(b))))
                    .collect()
            }
            Err(e) => return vec![Err(unavailable(e)); changes.len()],
        };
        let mut results = Vec::with_capacity(changes.len());
        let mut started = Vec::new();
        let mut changed = false;
        for change in changes {
            let Some(current) = ReplicaSet::of(&assignment, change.partition) else {
                results.push(Err(refuse_unknown(change.target.as_deref(), |b| {
                    brokers.live(b)
                })));
                continue;
            };
            match plan(&current, change.target.as_deref(), |b| brokers.live(b)) {
                Ok(next) => {
                    if next != current {
                        changed = true;
                        log_move(topic, change.partition, &current, &next);
                        if next.is_reassigning() {
                            started.push(change.partition);
                        }
                        next.write_into(&mut assignment, change.partition);
                    }
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if !changed {
            return results;
        }
        match store
            .set_topic_assignment_fenced(fence, topic, &assignment, version)
            .await
        {
            Ok(()) => {
                for p in started {
                    bump_leader_epoch(store, fence, topic, p).await;
                }
                return results;
            }
            Err(StoreError::Zk(ZkError::BadVersion)) => continue,
            Err(e) => {
                return results
                    .into_iter()
                    .map(|r| r.and(Err(unavailable(&e))))
                    .collect()
            }
        }
    }
    vec![
        Err(ControllerError::Unavailable(format!(
            "topic {topic} kept changing"
        )));
        changes.len()
    ]
}

fn log_move(topic: &str, partition: i32, current: &ReplicaSet, next: &ReplicaSet) {
    if next.is_reassigning() {
        info!(topic, partition, replicas = ?next.replicas, adding = ?next.adding,
            removing = ?next.removing, "partition reassignment started");
    } else {
        info!(topic, partition, from = ?current.replicas, to = ?next.replicas,
            "partition reassignment cancelled or made without moving data");
    }
}

/// Same leader and ISR at the next leader epoch: every replica re-reads the state, the leader
/// with the full replica set of the move.
async fn bump_leader_epoch(store: &ZkStore, fence: ControllerFence, topic: &str, p: i32) {
    let Ok(Some((state, version))) = store.get_partition_state(topic, p).await else {
        return;
    };
    let next = PartitionStateZnode::new(
        state.leader,
        state.leader_epoch + 1,
        state.isr.clone(),
        fence.epoch,
    );
    if let Err(e) = store
        .update_partition_state_fenced(fence, topic, p, &next, version)
        .await
    {
        debug!(topic, partition = p, error = %e, "leader epoch bump at the start of a move lost a race");
    }
}

fn unavailable(e: impl std::fmt::Display) -> ControllerError {
    ControllerError::Unavailable(e.to_string())
}

// -- elections ---------------------------------------------------------------------------------

async fn elect_all(
    store: &ZkStore,
    fence: ControllerFence,
    view: &ClusterView,
    brokers: &Brokers<'_>,
    kind: ElectionType,
    partitions: &[PartitionKey],
) -> Vec<ElectionOutcome> {
    let mut outcomes = Vec::with_capacity(partitions.len());
    for key in partitions {
        let outcome = elect_one(store, fence, view, brokers, kind, key).await;
        if let Ok(epoch) = &outcome {
            info!(topic = %key.0, partition = key.1, leader_epoch = epoch, ?kind, "leader elected on request");
        }
        outcomes.push((key.clone(), outcome));
    }
    outcomes
}

/// One partition's election, decided on the view's state and written if that state is
/// still current (re-read once if it is not).
async fn elect_one(
    store: &ZkStore,
    fence: ControllerFence,
    view: &ClusterView,
    brokers: &Brokers<'_>,
    kind: ElectionType,
    (topic, p): &PartitionKey,
) -> Result<i32, ControllerError> {
    let entry = view
        .topics
        .get(topic)
        .ok_or(ControllerError::UnknownTopicOrPartition)?;
    let replicas = entry
        .assignment
        .partitions
        .get(p)
        .ok_or(ControllerError::UnknownTopicOrPartition)?;
    let mut known = entry.states.get(p).map(|s| (s.state.clone(), s.version));
    for _ in 0..2 {
        let Some((state, version)) = known else {
            return Err(no_leader_possible(kind, "the partition has no state yet"));
        };
        let next = elect(kind, replicas, &state, |b| brokers.eligible(b), fence.epoch)?;
        match store
            .update_partition_state_fenced(fence, topic, *p, &next, version)
            .await
        {
            Ok(_) => return Ok(next.leader_epoch),
            Err(StoreError::Zk(ZkError::BadVersion)) => {
                known = store
                    .get_partition_state(topic, *p)
                    .await
                    .map_err(unavailable)?;
            }
            Err(e) => return Err(unavailable(e)),
        }
    }
    Err(ControllerError::Unavailable(format!(
        "the state of {topic}-{p} kept changing"
    )))
}

fn no_leader_possible(kind: ElectionType, why: &str) -> ControllerError {
    match kind {
        ElectionType::Preferred => ControllerError::PreferredLeaderNotAvailable(why.into()),
        ElectionType::Unclean => ControllerError::EligibleLeadersNotAvailable(why.into()),
    }
}

// -- the ZooKeeper-era znodes ------------------------------------------------------------------

/// Acts on `/admin/reassign_partitions` (given its content): starts the moves not started
/// yet, drops the partitions whose move is done or cannot be made, and deletes the znode once
/// it names none.
pub async fn legacy_reassignments(
    store: &ZkStore,
    fence: ControllerFence,
    view: &ClusterView,
    brokers: &Brokers<'_>,
    (data, version): (Vec<u8>, i32),
) -> Result<(), StoreError> {
    let requested = match ReassignPartitionsZnode::decode(&data) {
        Ok(r) => r.partitions,
        Err(e) => {
            warn!(error = %e, "unreadable /admin/reassign_partitions deleted");
            Vec::new()
        }
    };
    let mut kept = Vec::new();
    for entry in &requested {
        if legacy_move_pending(store, fence, view, brokers, entry).await {
            kept.push(entry.clone());
        }
    }
    if kept.len() == requested.len() && !requested.is_empty() {
        return Ok(());
    }
    let path = paths::ADMIN_REASSIGN_PARTITIONS;
    let written = if kept.is_empty() {
        store.client().delete(path, Some(version)).await
    } else {
        let data = ReassignPartitionsZnode::new(kept).encode();
        store
            .client()
            .set(path, &data, Some(version))
            .await
            .map(|_| ())
    };
    match written {
        Ok(()) | Err(ZkError::BadVersion) | Err(ZkError::NoNode) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether a znode-requested move still runs: done or impossible ones are dropped, new ones
/// are started.
async fn legacy_move_pending(
    store: &ZkStore,
    fence: ControllerFence,
    view: &ClusterView,
    brokers: &Brokers<'_>,
    entry: &ReassignEntry,
) -> bool {
    let current = view
        .topics
        .get(&entry.topic)
        .and_then(|t| ReplicaSet::of(&t.assignment, entry.partition));
    let Some(current) = current else {
        warn!(topic = %entry.topic, partition = entry.partition, "move of an unknown partition dropped from /admin/reassign_partitions");
        return false;
    };
    if current.target() == entry.replicas {
        return current.is_reassigning();
    }
    let change = PartitionReassignment {
        topic: entry.topic.clone(),
        partition: entry.partition,
        target: Some(entry.replicas.clone()),
    };
    match reassign(store, fence, brokers, std::slice::from_ref(&change)).await[0].clone() {
        Ok(()) => true,
        Err(e) => {
            warn!(topic = %entry.topic, partition = entry.partition, error = %e,
                "move dropped from /admin/reassign_partitions");
            false
        }
    }
}

/// Removes partitions moved through the API from `/admin/reassign_partitions`.
async fn forget_legacy_moves(store: &ZkStore, moved: &[PartitionKey]) -> Result<(), StoreError> {
    if moved.is_empty() {
        return Ok(());
    }
    let path = paths::ADMIN_REASSIGN_PARTITIONS;
    let Some((data, stat)) = store.client().get_opt(path).await? else {
        return Ok(());
    };
    let Ok(mut znode) = ReassignPartitionsZnode::decode(&data) else {
        return Ok(());
    };
    let before = znode.partitions.len();
    znode
        .partitions
        .retain(|e| !moved.contains(&(e.topic.clone(), e.partition)));
    if znode.partitions.len() == before {
        return Ok(());
    }
    let written = if znode.partitions.is_empty() {
        store.client().delete(path, Some(stat.version)).await
    } else {
        store
            .client()
            .set(path, &znode.encode(), Some(stat.version))
            .await
            .map(|_| ())
    };
    match written {
        Ok(()) | Err(ZkError::BadVersion) | Err(ZkError::NoNode) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Acts on `/admin/preferred_replica_election` (given its content): elects the preferred
/// replica of each named partition where possible, then deletes the znode.
pub async fn legacy_preferred_elections(
    store: &ZkStore,
    fence: ControllerFence,
    view: &ClusterView,
    brokers: &Brokers<'_>,
    (data, version): (Vec<u8>, i32),
) -> Result<(), StoreError> {
    match PreferredElectionZnode::decode(&data) {
        Ok(znode) => {
            let partitions: Vec<PartitionKey> = znode
                .partitions
                .into_iter()
                .map(|p| (p.topic, p.partition))
                .collect();
            for (key, outcome) in elect_all(
                store,
                fence,
                view,
                brokers,
                ElectionType::Preferred,
                &partitions,
            )
            .await
            {
                if let Err(e) = outcome {
                    debug!(topic = %key.0, partition = key.1, error = %e, "preferred election from the znode not made");
                }
            }
        }
        Err(e) => warn!(error = %e, "unreadable /admin/preferred_replica_election deleted"),
    }
    match store
        .client()
        .delete(paths::ADMIN_PREFERRED_REPLICA_ELECTION, Some(version))
        .await
    {
        Ok(()) | Err(ZkError::BadVersion) | Err(ZkError::NoNode) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
