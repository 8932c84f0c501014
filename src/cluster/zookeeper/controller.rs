//! The controller: every broker runs this loop; the one that wins the election in ZooKeeper
//! (`/controller` + `/controller_epoch`) applies [`decide`] to each new view of the cluster,
//! deletes topics marked for deletion, moves leaderships of brokers in controlled shutdown and
//! answers requests only the controller answers (`admin`: moves, elections, and the
//! ZooKeeper-era admin znodes asking for them). Every write is fenced by the controller epoch,
//! so a deposed controller changes nothing.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::admin::{self, Brokers, ControllerRequest};
use super::client::ZkError;
use super::decisions::{decide, Action, Inputs};
use super::metadata::ZkCluster;
use super::paths;
use super::store::{ControllerFence, Election, StoreError, ZkStore};
use crate::util::task::Shutdown;

/// Pause after a failed election or ZooKeeper error.
const BACKOFF: Duration = Duration::from_millis(500);

/// Why this broker stopped being controller.
#[derive(Debug)]
enum Deposed {
    Stopping,
    /// Another controller took over, or the session is gone.
    Lost(String),
}

/// Requests for the controller; those arriving while this broker is not in office are dropped
/// (the asker then answers NOT_CONTROLLER).
pub type Inbox = mpsc::UnboundedReceiver<ControllerRequest>;

/// Runs the election / controller loop until `shutdown`, answering `inbox` while in office.
pub async fn run(cluster: Arc<ZkCluster>, mut inbox: Inbox, shutdown: Shutdown) {
    let mut version = cluster.subscribe_version();
    loop {
        if shutdown.is_triggered() {
            return;
        }
        while inbox.try_recv().is_ok() {}
        if !cluster.usable() || cluster.view().me.registration_zxid == i64::MAX {
            tokio::select! {
                _ = shutdown.triggered() => return,
                _ = version.changed() => continue,
                _ = inbox.recv() => continue,
            }
        }
        let store = cluster.store();
        match store.elect_controller(cluster.broker_id()).await {
            Ok(Election::Won {
                epoch,
                epoch_zk_version,
            }) => {
                let fence = ControllerFence {
                    epoch,
                    epoch_zk_version,
                };
                info!(epoch, "this broker is now the controller");
                match serve(&cluster, &store, fence, &mut inbox, &shutdown).await {
                    Deposed::Stopping => {
                        let _ = store.resign_controller().await;
                        return;
                    }
                    Deposed::Lost(why) => info!(epoch, reason = %why, "no longer controller"),
                }
            }
            Ok(Election::Lost { controller }) => {
                debug!(?controller, "another broker is controller");
                if wait_for_vacancy(&store, &shutdown, &mut version, &mut inbox)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                debug!(error = %e, "controller election failed");
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
}

/// Waits until `/controller` is gone (or the session changes). Err when stopping.
async fn wait_for_vacancy(
    store: &ZkStore,
    shutdown: &Shutdown,
    version: &mut watch::Receiver<crate::cluster::MetadataVersion>,
    inbox: &mut Inbox,
) -> Result<(), ()> {
    match store.client().exists_and_watch(paths::CONTROLLER).await {
        Ok((Some(_), w)) => {
            let session = store.client().session_id();
            let vacated = w.changed();
            tokio::pin!(vacated);
            loop {
                tokio::select! {
                    _ = shutdown.triggered() => return Err(()),
                    _ = &mut vacated => return Ok(()),
                    // Not in office: dropping a request answers NOT_CONTROLLER.
                    _ = inbox.recv() => {}
                    _ = version.changed() => {
                        // A new session: the watch belongs to the old one.
                        if store.client().session_id() != session || !matches!(store.client().state(), super::client::SessionState::SyncConnected) {
                            tokio::time::sleep(BACKOFF).await;
                            return Ok(());
                        }
                    }
                }
            }
        }
        Ok((None, _)) => Ok(()),
        Err(_) => {
            tokio::time::sleep(BACKOFF).await;
            Ok(())
        }
    }
}

/// The controller's work while in office.
async fn serve(
    cluster: &Arc<ZkCluster>,
    store: &ZkStore,
    fence: ControllerFence,
    inbox: &mut Inbox,
    shutdown: &Shutdown,
) -> Deposed {
    let settings = cluster.settings().clone();
    let mut requests: Vec<ControllerRequest> = Vec::new();
    let reassign_watch = Armed::default();
    let election_watch = Armed::default();
    let mut version = cluster.subscribe_version();
    let (kick_tx, mut kick) = mpsc::unbounded_channel::<()>();
    let shutdown_watch = Armed::default();
    let deletions_watch = Armed::default();
    let rebalance_every = Duration::from_millis(settings.leader_imbalance_check_interval_ms);
    let mut next_rebalance = Instant::now() + rebalance_every;
    loop {
        if shutdown.is_triggered() {
            return Deposed::Stopping;
        }
        if store.client().session_id() != cluster.store().client().session_id() {
            return Deposed::Lost("ZooKeeper session replaced".into());
        }
        match still_controller(store, fence).await {
            Ok(true) => {}
            Ok(false) => return Deposed::Lost("controller epoch moved on".into()),
            Err(e) if e.is_session_lost() => return Deposed::Lost(e.to_string()),
            Err(_) => {}
        }
        let shutting_down =
            match watched_children(store, paths::CONTROLLED_SHUTDOWN, &shutdown_watch, &kick_tx)
                .await
            {
                Ok(ids) => ids.iter().filter_map(|n| n.parse().ok()).collect(),
                Err(e) => {
                    debug!(error = %e, "reading controlled shutdown requests failed");
                    BTreeSet::new()
                }
            };
        if let Err(e) = delete_marked_topics(store, &deletions_watch, &kick_tx).await {
            debug!(error = %e, "topic deletion pass failed");
        }
        let rebalance = settings.auto_leader_rebalance_enable && Instant::now() >= next_rebalance;
        if rebalance {
            next_rebalance = Instant::now() + rebalance_every;
        }
        let view = cluster.view();
        let inputs = Inputs {
            live: view.brokers.iter().map(|(id, b)| (*id, b.epoch)).collect(),
            shutting_down,
            controller_epoch: fence.epoch,
            unclean_default: unclean_default(&view, settings.unclean_leader_election_enable),
            rebalance,
            imbalance_percentage: settings.leader_imbalance_per_broker_percentage,
        };
        let brokers = Brokers {
            live: &inputs.live,
            shutting_down: &inputs.shutting_down,
        };
        for request in requests.drain(..) {
            admin::answer(store, fence, &view, &brokers, request).await;
        }
        if let Err(e) = admin_znodes(
            store,
            fence,
            &view,
            &brokers,
            [&reassign_watch, &election_watch],
            &kick_tx,
        )
        .await
        {
            debug!(error = %e, "acting on the admin znodes failed");
        }
        let actions = decide(&view, &inputs);
        // A failed write leaves the rest of its topic for the next round: a completed move
        // must not be recorded when moving its leadership failed.
        let mut failed: BTreeSet<&str> = BTreeSet::new();
        for action in &actions {
            if failed.contains(action.topic()) {
                continue;
            }
            if let Err(e) = execute(store, fence, action).await {
                failed.insert(action.topic());
                match e {
                    StoreError::Zk(ZkError::BadVersion)
                    | StoreError::Zk(ZkError::NodeExists)
                    | StoreError::Zk(ZkError::NoNode)
                    | StoreError::UnknownTopic(_) => {
                        debug!(?action, "controller write lost a race; will re-read");
                    }
                    StoreError::Zk(ref z) if z.is_session_lost() => {
                        return Deposed::Lost(e.to_string())
                    }
                    other => warn!(?action, error = %other, "controller write failed"),
                }
            }
        }
        tokio::select! {
            _ = shutdown.triggered() => return Deposed::Stopping,
            _ = version.changed() => {}
            _ = kick.recv() => {}
            Some(request) = inbox.recv() => requests.push(request),
            _ = tokio::time::sleep_until(next_rebalance) => {}
        }
    }
}

/// Acts on `/admin/reassign_partitions` and `/admin/preferred_replica_election` when present,
/// keeping a watch armed on each.
async fn admin_znodes(
    store: &ZkStore,
    fence: ControllerFence,
    view: &super::view::ClusterView,
    brokers: &Brokers<'_>,
    [reassign, election]: [&Armed; 2],
    kick: &mpsc::UnboundedSender<()>,
) -> Result<(), StoreError> {
    if let Some(found) =
        watched_data(store, paths::ADMIN_REASSIGN_PARTITIONS, reassign, kick).await?
    {
        admin::legacy_reassignments(store, fence, view, brokers, found).await?;
    }
    if let Some(found) = watched_data(
        store,
        paths::ADMIN_PREFERRED_REPLICA_ELECTION,
        election,
        kick,
    )
    .await?
    {
        admin::legacy_preferred_elections(store, fence, view, brokers, found).await?;
    }
    Ok(())
}

/// The data and version of `path` if it exists, arming a watch on it unless one is armed.
async fn watched_data(
    store: &ZkStore,
    path: &str,
    armed: &Armed,
    kick: &mpsc::UnboundedSender<()>,
) -> Result<Option<(Vec<u8>, i32)>, StoreError> {
    let client = store.client();
    if armed.is_armed() {
        return Ok(client.get_opt(path).await?.map(|(d, s)| (d, s.version)));
    }
    match client.get_and_watch(path).await {
        Ok((data, stat, watch)) => {
            armed.arm(watch, kick);
            Ok(Some((data, stat.version)))
        }
        Err(ZkError::NoNode) => {
            let (stat, watch) = client.exists_and_watch(path).await?;
            armed.arm(watch, kick);
            match stat {
                Some(_) => Ok(client.get_opt(path).await?.map(|(d, s)| (d, s.version))),
                None => Ok(None),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The broker default of `unclean.leader.election.enable` in force on this (the controller's)
/// broker: its dynamic per-broker value, else the dynamic default, else the static setting. A
/// change takes effect at the next decision round, as in Kafka's controller.
fn unclean_default(view: &super::view::ClusterView, static_value: bool) -> bool {
    const KEY: &str = "unclean.leader.election.enable";
    let dynamic = &view.broker_configs;
    [&dynamic.broker, &dynamic.default]
        .into_iter()
        .find_map(
            |layer| match layer.get(KEY)?.trim().to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                // An unreadable value is ignored, as the broker's own merge ignores it.
                _ => None,
            },
        )
        .unwrap_or(static_value)
}

async fn still_controller(store: &ZkStore, fence: ControllerFence) -> Result<bool, ZkError> {
    match store.controller_epoch().await {
        Ok(current) => Ok(current == Some((fence.epoch, fence.epoch_zk_version))),
        Err(StoreError::Zk(e)) => Err(e),
        Err(e) => Err(ZkError::Other(e.to_string())),
    }
}

async fn execute(
    store: &ZkStore,
    fence: ControllerFence,
    action: &Action,
) -> Result<(), StoreError> {
    match action {
        Action::CreateState {
            topic,
            partition,
            state,
        } => {
            store
                .create_partition_state_fenced(fence, topic, *partition, state)
                .await?;
            info!(topic, partition, leader = state.leader, leader_epoch = state.leader_epoch, isr = ?state.isr, "partition online");
        }
        Action::UpdateState {
            topic,
            partition,
            state,
            expected_version,
        } => {
            store
                .update_partition_state_fenced(fence, topic, *partition, state, *expected_version)
                .await?;
            info!(topic, partition, leader = state.leader, leader_epoch = state.leader_epoch, isr = ?state.isr, "partition state changed");
        }
        Action::AssignTopicId {
            topic,
            assignment,
            expected_version,
        } => {
            store
                .set_topic_assignment_fenced(fence, topic, assignment, *expected_version)
                .await?;
            info!(topic, "topic id assigned");
        }
        Action::CompleteMoves {
            topic,
            assignment,
            expected_version,
            partitions,
        } => {
            store
                .set_topic_assignment_fenced(fence, topic, assignment, *expected_version)
                .await?;
            info!(topic, ?partitions, "partition reassignment completed");
        }
    }
    Ok(())
}

/// Whether a one-shot watch is armed; cleared when it fires.
#[derive(Clone, Default)]
struct Armed(Arc<AtomicBool>);

impl Armed {
    fn is_armed(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Arms `watch`: when it fires, the controller loop is kicked.
    fn arm(&self, watch: super::client::Watch, kick: &mpsc::UnboundedSender<()>) {
        self.0.store(true, Ordering::Release);
        let flag = self.0.clone();
        let kick = kick.clone();
        tokio::spawn(async move {
            watch.changed().await;
            flag.store(false, Ordering::Release);
            let _ = kick.send(());
        });
    }
}

/// Children of `path`, arming a watch on it unless one is armed already.
async fn watched_children(
    store: &ZkStore,
    path: &str,
    armed: &Armed,
    kick: &mpsc::UnboundedSender<()>,
) -> Result<Vec<String>, StoreError> {
    store.client().ensure_path(path).await?;
    if armed.is_armed() {
        return Ok(store.client().children(path).await?);
    }
    let (names, watch) = store.client().children_and_watch(path).await?;
    armed.arm(watch, kick);
    Ok(names)
}

async fn delete_marked_topics(
    store: &ZkStore,
    armed: &Armed,
    kick: &mpsc::UnboundedSender<()>,
) -> Result<(), StoreError> {
    for name in watched_children(store, paths::ADMIN_DELETE_TOPICS, armed, kick).await? {
        store.delete_topic_znodes(&name).await?;
        info!(topic = %name, "topic deleted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DynamicBrokerConfigs;

    #[test]
    fn unclean_default_follows_dynamic_configs() {
        let key = "unclean.leader.election.enable".to_string();
        let mut view = super::super::view::ClusterView::default();
        assert!(!unclean_default(&view, false));
        view.broker_configs = DynamicBrokerConfigs {
            default: [(key.clone(), "true".to_string())].into(),
            broker: Default::default(),
        };
        assert!(
            unclean_default(&view, false),
            "the dynamic default beats static"
        );
        view.broker_configs.broker = [(key.clone(), "false".to_string())].into();
        assert!(
            !unclean_default(&view, true),
            "the broker's own beats the default"
        );
        view.broker_configs.broker = [(key, "maybe".to_string())].into();
        assert!(
            unclean_default(&view, false),
            "an unreadable value falls through"
        );
    }
}
