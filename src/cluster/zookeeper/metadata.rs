//! [`ZkCluster`]: the ZooKeeper backend of [`ClusterMetadata`]. It owns this broker's session
//! (registration, re-registration after expiry), keeps a watched [`ClusterView`] of the
//! cluster (dynamic configs included, followed through `/config/changes`), performs topic and
//! config operations in Kafka's layout, and hands out producer ids in blocks.
//!
//! Every change of the view or of the session's health is announced on one
//! [`MetadataVersion`] channel; the broker's replica sync and the controller react to it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::RwLock;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::admin::ControllerRequest;
use super::client::{EventType, SessionState, Watch, ZkClient, ZkError};
use super::paths;
use super::store::{StoreError, ZkStore};
use super::view::{live_broker, ClusterView, Me, StoredState, TopicEntry};
use super::znodes::{
    BrokerRegistration, ConfigChangeNotification, PartitionStateZnode, TopicAssignment,
};
use crate::cluster::assignment::{assign_replicas, PlacementBroker, Start};
use crate::cluster::names::{collides, validate_topic_name};
use crate::cluster::{
    check_partition_count, partitions_to_add, BrokerInfo, ClusterError, ClusterMetadata,
    ControllerError, ElectionType, IsrWriteError, MetadataLink, MetadataVersion, NewTopic,
    PartitionKey, PartitionReassignment, PartitionState, TopicMetadata,
};
use crate::config::{
    BrokerEntity, ClientEntity, ClientEntityConfigs, ClusterSettings, DynamicBrokerConfigs,
};
use crate::util::task::Shutdown;

/// How long topic operations wait for the controller's result to show up in the view.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for the controller loop to answer it.
const CONTROLLER_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between attempts to reach ZooKeeper again.
const RETRY_BACKOFF: Duration = Duration::from_millis(500);
/// Config change notifications older than this are deleted (Kafka's 15 minutes).
const CONFIG_CHANGE_EXPIRY_MS: i64 = 15 * 60 * 1000;

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not reach ZooKeeper at {connect} within {timeout_ms} ms")]
    Unreachable { connect: String, timeout_ms: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Something in ZooKeeper to (re-)read; also what a fired watch reports.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Target {
    Everything,
    Brokers,
    Controller,
    Topics,
    Topic(String),
    State(String, i32),
    /// The children of `/config/changes`: new notifications name entities to re-read.
    ConfigChanges,
    /// The session with this id ended: build a new one.
    SessionLost(i64),
}

/// The ZooKeeper backend of cluster metadata for one broker.
pub struct ZkCluster {
    me: BrokerInfo,
    registration: BrokerRegistration,
    settings: ClusterSettings,
    connect: String,
    store: RwLock<ZkStore>,
    view: RwLock<Arc<ClusterView>>,
    version: watch::Sender<MetadataVersion>,
    refresh: mpsc::UnboundedSender<Target>,
    refresh_rx: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<Target>>>,
    producer_ids: tokio::sync::Mutex<(i64, i64)>,
    /// The reader until `spawn_watcher` takes it over.
    reader: parking_lot::Mutex<Option<Reader>>,
    /// Requests for the controller loop (answered only while this broker is in office).
    controller_requests: mpsc::UnboundedSender<ControllerRequest>,
    /// The controller loop's end of `controller_requests`, until `join` starts the loop.
    controller_inbox: parking_lot::Mutex<Option<super::controller::Inbox>>,
}

impl ZkCluster {
    /// Connects to ZooKeeper, creates Kafka's persistent paths, settles the cluster id
    /// (`proposed_cluster_id` if the cluster has none) and reads the whole cluster once.
    /// Does not register the broker yet: call [`ZkCluster::register`] once its listener is up.
    /// `protocols` maps listener names to security protocol names, for the registration.
    pub async fn connect(
        connect: &str,
        me: BrokerInfo,
        protocols: BTreeMap<String, String>,
        settings: ClusterSettings,
        proposed_cluster_id: &str,
    ) -> Result<Arc<ZkCluster>, StartError> {
        let client = connect_within(connect, &settings).await?;
        let store = ZkStore::new(client);
        store.ensure_layout().await?;
        let cluster_id = store.get_or_create_cluster_id(proposed_cluster_id).await?;
        let registration = BrokerRegistration::new(
            &me.endpoints,
            &protocols,
            me.rack.clone(),
            crate::util::clock::now_ms(),
        );
        let (refresh, refresh_rx) = mpsc::unbounded_channel();
        let (controller_requests, controller_inbox) = mpsc::unbounded_channel();
        let view = ClusterView {
            cluster_id,
            me: Me {
                id: me.id,
                registration_zxid: i64::MAX,
            },
            ..ClusterView::default()
        };
        let cluster = Arc::new(ZkCluster {
            me,
            registration,
            settings,
            connect: connect.to_string(),
            store: RwLock::new(store),
            view: RwLock::new(Arc::new(view)),
            version: watch::channel(MetadataVersion {
                generation: 0,
                link: MetadataLink::Lost,
            })
            .0,
            refresh,
            refresh_rx: parking_lot::Mutex::new(Some(refresh_rx)),
            producer_ids: tokio::sync::Mutex::new((0, 0)),
            reader: parking_lot::Mutex::new(None),
            controller_requests,
            controller_inbox: parking_lot::Mutex::new(Some(controller_inbox)),
        });
        let mut reader = Reader::new(cluster.clone());
        reader.read_everything().await?;
        reader.publish(MetadataLink::Lost);
        *cluster.reader.lock() = Some(reader);
        Ok(cluster)
    }

    /// Registers `/brokers/ids/<id>`. A registration left by a crashed predecessor goes away
    /// when its session expires, so this waits up to the session timeout before giving up.
    pub async fn register(self: &Arc<Self>) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(self.settings.zookeeper_session_timeout_ms)
            + Duration::from_secs(2);
        loop {
            let store = self.store();
            match store.register_broker(self.me.id, &self.registration).await {
                Ok(zxid) => {
                    info!(broker_id = self.me.id, "registered in ZooKeeper");
                    self.update_view(|v| {
                        v.me.registration_zxid = zxid;
                        v.rebuild_all();
                    });
                    let _ = self.refresh.send(Target::Brokers);
                    return Ok(());
                }
                Err(StoreError::BrokerIdInUse { .. }) if tokio::time::Instant::now() < deadline => {
                    debug!(
                        broker_id = self.me.id,
                        "broker id still registered by an older session; waiting"
                    );
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts watching ZooKeeper (and rebuilding the session when it expires) until `shutdown`.
    pub fn spawn_watcher(self: &Arc<Self>, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        let reader = self.reader.lock().take();
        let rx = self.refresh_rx.lock().take();
        let cluster = self.clone();
        tokio::spawn(async move {
            if let (Some(reader), Some(rx)) = (reader, rx) {
                reader.run(rx, shutdown).await;
            } else {
                warn!("ZooKeeper watcher started twice");
            }
            drop(cluster);
        })
    }

    /// Starts the controller election / controller loop until `shutdown`.
    pub fn spawn_controller(self: &Arc<Self>, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        let inbox = self.controller_inbox.lock().take();
        let cluster = self.clone();
        tokio::spawn(async move {
            match inbox {
                Some(inbox) => super::controller::run(cluster, inbox, shutdown).await,
                None => warn!("controller loop started twice"),
            }
        })
    }

    /// The current session's store.
    pub fn store(&self) -> ZkStore {
        self.store.read().clone()
    }

    /// The current view.
    pub fn view(&self) -> Arc<ClusterView> {
        self.view.read().clone()
    }

    pub fn broker_id(&self) -> i32 {
        self.me.id
    }

    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// Notified on every view or session-health change.
    pub fn subscribe_version(&self) -> watch::Receiver<MetadataVersion> {
        self.version.subscribe()
    }

    /// Whether the session is healthy and the view current.
    pub fn usable(&self) -> bool {
        self.version.borrow().usable()
    }

    fn update_view(&self, change: impl FnOnce(&mut ClusterView)) {
        let mut guard = self.view.write();
        let mut next = (**guard).clone();
        change(&mut next);
        *guard = Arc::new(next);
        drop(guard);
        self.version.send_modify(|v| v.generation += 1);
    }

    fn set_link(&self, link: MetadataLink) {
        self.version.send_if_modified(|v| {
            if v.link == link {
                return false;
            }
            v.link = link;
            v.generation += 1;
            true
        });
    }

    /// Waits until `done` holds for the view, or the timeout passes.
    async fn wait_for_view(&self, done: impl Fn(&ClusterView) -> bool) -> bool {
        let mut rx = self.version.subscribe();
        let wait = async {
            loop {
                if done(&self.view()) {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(PROPAGATION_TIMEOUT, wait)
            .await
            .is_ok()
    }

    /// Hands `request` to the controller loop if this broker is the controller, and waits for
    /// its answer.
    async fn ask_controller<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> ControllerRequest,
    ) -> Result<T, ControllerError> {
        if self.view().controller != Some(self.me.id) {
            return Err(ControllerError::NotController);
        }
        let (reply, answer) = oneshot::channel();
        if self.controller_requests.send(request(reply)).is_err() {
            return Err(ControllerError::NotController);
        }
        match tokio::time::timeout(CONTROLLER_ANSWER_TIMEOUT, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            // Dropped unanswered: not (or no longer) in office.
            Ok(Err(_)) => Err(ControllerError::NotController),
            Err(_) => Err(ControllerError::TimedOut),
        }
    }

    /// Asks the controller to move this broker's leaderships away, then waits until this
    /// broker leads nothing another in-sync replica could lead (or the retries run out).
    pub async fn controlled_shutdown(&self) {
        if !self.settings.controlled_shutdown_enable {
            return;
        }
        let attempts = self.settings.controlled_shutdown_max_retries.max(0) as u32 + 1;
        let per_attempt = Duration::from_millis(self.settings.controlled_shutdown_retry_backoff_ms)
            .max(Duration::from_secs(1));
        for attempt in 1..=attempts {
            if let Err(e) = self.store().request_controlled_shutdown(self.me.id).await {
                warn!(error = %e, attempt, "controlled shutdown request failed");
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            }
            let me = self.me.id;
            let mut rx = self.version.subscribe();
            let done = tokio::time::timeout(per_attempt, async {
                loop {
                    if leads_movable_partitions(&self.view(), me) == 0 {
                        return;
                    }
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            })
            .await
            .is_ok();
            if done {
                info!("controlled shutdown complete: leaderships handed over");
                return;
            }
        }
        warn!(
            remaining = leads_movable_partitions(&self.view(), self.me.id),
            "controlled shutdown incomplete; stopping anyway"
        );
    }

    /// Closes the session: the registration (and controllership) go away at once.
    pub async fn close_session(&self) {
        let store = self.store();
        let _ = store.resign_controller().await;
        store.client().clone().close(Duration::from_secs(2)).await;
    }

    fn live_placement(&self) -> Vec<PlacementBroker> {
        self.view()
            .brokers
            .values()
            .map(|b| PlacementBroker {
                id: b.info.id,
                rack: b.info.rack.clone(),
            })
            .collect()
    }

    fn check_assignments(&self, lists: &[Vec<i32>], rf: Option<usize>) -> Result<(), ClusterError> {
        check_partition_count(i32::try_from(lists.len()).unwrap_or(i32::MAX))?;
        let known: BTreeSet<i32> = self.view().brokers.keys().copied().collect();
        for list in lists {
            if list.is_empty() || rf.is_some_and(|rf| rf != list.len()) {
                return Err(ClusterError::InvalidReplicaAssignment(
                    "inconsistent replication factor between partitions".into(),
                ));
            }
            if let Some(bad) = list.iter().find(|b| !known.contains(b)) {
                return Err(ClusterError::InvalidReplicaAssignment(format!(
                    "unknown broker {bad} in replica assignment"
                )));
            }
            if list.iter().collect::<BTreeSet<_>>().len() != list.len() {
                return Err(ClusterError::InvalidReplicaAssignment(
                    "duplicate brokers in replica assignment".into(),
                ));
            }
        }
        Ok(())
    }

    fn place(
        &self,
        partitions: usize,
        rf: i16,
        first_partition: usize,
    ) -> Result<Vec<Vec<i32>>, ClusterError> {
        if rf < 1 {
            return Err(ClusterError::InvalidReplicationFactor(
                "replication factor must be larger than 0".into(),
            ));
        }
        let brokers = self.live_placement();
        assign_replicas(
            &brokers,
            partitions,
            rf as usize,
            first_partition,
            Start::random(brokers.len()),
        )
        .map_err(|e| match e {
            crate::cluster::assignment::PlacementError::NoPartitions => {
                ClusterError::InvalidPartitions(e.to_string())
            }
            _ => ClusterError::InvalidReplicationFactor(e.to_string()),
        })
    }
}

/// Partitions `me` leads that have another live in-sync replica to take over.
fn leads_movable_partitions(view: &ClusterView, me: i32) -> usize {
    view.topics
        .values()
        .flat_map(|t| t.metadata.partitions.iter())
        .filter(|p| {
            p.leader == me
                && p.isr
                    .iter()
                    .any(|r| *r != me && view.brokers.contains_key(r))
        })
        .count()
}

fn unavailable(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Unavailable(e.to_string())
}

async fn connect_within(connect: &str, settings: &ClusterSettings) -> Result<ZkClient, StartError> {
    let timeout = Duration::from_millis(settings.zookeeper_connection_timeout_ms);
    let session = Duration::from_millis(settings.zookeeper_session_timeout_ms);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ZkClient::connect(connect, session)).await {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(e)) if tokio::time::Instant::now() + RETRY_BACKOFF < deadline => {
                debug!(error = %e, "ZooKeeper not reachable yet");
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
            _ => {
                return Err(StartError::Unreachable {
                    connect: connect.to_string(),
                    timeout_ms: settings.zookeeper_connection_timeout_ms,
                })
            }
        }
    }
}

#[async_trait]
impl ClusterMetadata for ZkCluster {
    fn cluster_id(&self) -> String {
        self.view().cluster_id.clone()
    }

    fn controller_id(&self) -> i32 {
        self.view().controller.unwrap_or(-1)
    }

    fn live_brokers(&self) -> Vec<BrokerInfo> {
        self.view()
            .brokers
            .values()
            .map(|b| b.info.clone())
            .collect()
    }

    fn topics(&self) -> Vec<Arc<TopicMetadata>> {
        self.view()
            .topics
            .values()
            .map(|t| t.metadata.clone())
            .collect()
    }

    fn topic(&self, name: &str) -> Option<Arc<TopicMetadata>> {
        self.view().topic_metadata(name)
    }

    fn topic_by_id(&self, id: Uuid) -> Option<Arc<TopicMetadata>> {
        let view = self.view();
        view.by_id.get(&id).and_then(|n| view.topic_metadata(n))
    }

    fn subscribe(&self) -> watch::Receiver<MetadataVersion> {
        self.version.subscribe()
    }

    fn broker_configs(&self) -> DynamicBrokerConfigs {
        self.view().broker_configs.clone()
    }

    fn client_entities(&self) -> Arc<ClientEntityConfigs> {
        self.view().client_entities.clone()
    }

    /// Written in one ZooKeeper transaction; also before this broker has joined (the
    /// `add-scram` command), in which case nothing waits for the view.
    async fn alter_client_entities(
        &self,
        changes: Vec<(ClientEntity, BTreeMap<String, Option<String>>)>,
    ) -> Result<(), ClusterError> {
        let written = self
            .store()
            .alter_client_entities(&changes)
            .await
            .map_err(unavailable)?;
        if self.usable() {
            self.wait_for_view(|v| {
                written.iter().all(|(entity, config)| {
                    v.client_entities.get(entity).cloned().unwrap_or_default() == *config
                })
            })
            .await;
        }
        Ok(())
    }

    async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), ClusterError> {
        if !self.usable() {
            return Err(unavailable("ZooKeeper session not usable"));
        }
        match self.store().set_topic_config(name, &configs).await {
            Ok(()) => {}
            Err(StoreError::UnknownTopic(t)) => return Err(ClusterError::UnknownTopic(t)),
            Err(e) => return Err(unavailable(e)),
        }
        self.wait_for_view(|v| v.topics.get(name).is_some_and(|t| t.configs == configs))
            .await;
        Ok(())
    }

    async fn set_broker_configs(
        &self,
        entity: BrokerEntity,
        configs: BTreeMap<String, String>,
    ) -> Result<(), ClusterError> {
        if !self.usable() {
            return Err(unavailable("ZooKeeper session not usable"));
        }
        let name = match entity {
            BrokerEntity::Default => paths::DEFAULT_ENTITY.to_string(),
            BrokerEntity::Broker(id) => id.to_string(),
        };
        self.store()
            .set_broker_config(&name, &configs)
            .await
            .map_err(unavailable)?;
        let me = self.me.id;
        self.wait_for_view(|v| match entity {
            BrokerEntity::Default => v.broker_configs.default == configs,
            BrokerEntity::Broker(id) => id != me || v.broker_configs.broker == configs,
        })
        .await;
        Ok(())
    }

    async fn create_topic(
        &self,
        spec: NewTopic,
        validate_only: bool,
    ) -> Result<Arc<TopicMetadata>, ClusterError> {
        validate_topic_name(&spec.name).map_err(ClusterError::InvalidTopic)?;
        let view = self.view();
        if view.topics.contains_key(&spec.name) {
            return Err(ClusterError::TopicAlreadyExists(spec.name));
        }
        if let Some(other) = view.topics.keys().find(|t| collides(t, &spec.name)) {
            return Err(ClusterError::InvalidTopic(format!(
                "topic {} collides with existing topic {other}",
                spec.name
            )));
        }
        let lists = match &spec.assignments {
            Some(lists) => {
                self.check_assignments(lists, None)?;
                lists.clone()
            }
            None => {
                check_partition_count(spec.num_partitions)?;
                self.place(spec.num_partitions as usize, spec.replication_factor, 0)?
            }
        };
        let id = Uuid::new_v4();
        let assignment = TopicAssignment::new(id, &lists);
        let preview = Arc::new(TopicMetadata {
            name: spec.name.clone(),
            id,
            partitions: lists
                .iter()
                .enumerate()
                .map(|(i, r)| PartitionState::unelected(i as i32, r.clone()))
                .collect(),
            configs: spec.configs.clone(),
        });
        if validate_only {
            return Ok(preview);
        }
        match self
            .store()
            .create_topic(&spec.name, &assignment, &spec.configs)
            .await
        {
            Ok(()) => {}
            Err(StoreError::TopicExists(t)) => return Err(ClusterError::TopicAlreadyExists(t)),
            Err(e) => return Err(unavailable(e)),
        }
        let _ = self.refresh.send(Target::Topics);
        let name = spec.name.clone();
        self.wait_for_view(|v| {
            v.topics.get(&name).is_some_and(|t| {
                t.metadata.id == id && t.metadata.partitions.iter().all(|p| p.leader_epoch >= 0)
            })
        })
        .await;
        Ok(self.topic(&spec.name).unwrap_or(preview))
    }

    async fn delete_topic(&self, name: &str) -> Result<Arc<TopicMetadata>, ClusterError> {
        let Some(topic) = self.topic(name) else {
            return Err(ClusterError::UnknownTopic(name.to_string()));
        };
        match self.store().mark_topic_for_deletion(name).await {
            Ok(()) => {}
            Err(StoreError::UnknownTopic(t)) => return Err(ClusterError::UnknownTopic(t)),
            Err(e) => return Err(unavailable(e)),
        }
        let gone = self.wait_for_view(|v| !v.topics.contains_key(name)).await;
        if !gone {
            warn!(
                topic = name,
                "topic marked for deletion; the controller has not removed it yet"
            );
        }
        Ok(topic)
    }

    async fn create_partitions(
        &self,
        name: &str,
        total: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<Arc<TopicMetadata>, ClusterError> {
        let store = self.store();
        let (mut assignment, version) = match store.get_topic(name).await {
            Ok(Some(found)) => found,
            Ok(None) => return Err(ClusterError::UnknownTopic(name.to_string())),
            Err(e) => return Err(unavailable(e)),
        };
        let existing = assignment.partitions.len() as i32;
        let added = partitions_to_add(existing, total, assignments.as_deref())?;
        let rf = assignment.partitions.values().next().map_or(1, Vec::len);
        let lists = match assignments {
            Some(lists) => {
                self.check_assignments(&lists, Some(rf))?;
                lists
            }
            None => self.place(added, rf as i16, existing as usize)?,
        };
        for (i, replicas) in lists.into_iter().enumerate() {
            assignment.partitions.insert(existing + i as i32, replicas);
        }
        let preview = self.topic(name).map(|t| {
            let mut grown = (*t).clone();
            for (&p, replicas) in assignment.partitions.range(existing..) {
                grown
                    .partitions
                    .push(PartitionState::unelected(p, replicas.clone()));
            }
            Arc::new(grown)
        });
        if validate_only {
            return preview.ok_or_else(|| ClusterError::UnknownTopic(name.to_string()));
        }
        match store.set_topic_assignment(name, &assignment, version).await {
            Ok(_) => {}
            Err(StoreError::Zk(ZkError::BadVersion)) => {
                return Err(ClusterError::Unavailable(
                    "the topic changed concurrently; retry".into(),
                ))
            }
            Err(e) => return Err(unavailable(e)),
        }
        self.wait_for_view(|v| {
            v.topics.get(name).is_some_and(|t| {
                t.metadata.partitions.len() == total as usize
                    && t.metadata.partitions.iter().all(|p| p.leader_epoch >= 0)
            })
        })
        .await;
        self.topic(name)
            .or(preview)
            .ok_or_else(|| ClusterError::UnknownTopic(name.to_string()))
    }

    async fn allocate_producer_id(&self) -> Result<i64, ClusterError> {
        let mut ids = self.producer_ids.lock().await;
        if ids.0 > ids.1 || ids.1 == 0 {
            let block = self
                .store()
                .allocate_producer_id_block(self.me.id)
                .await
                .map_err(unavailable)?;
            debug!(
                start = block.block_start,
                end = block.block_end,
                "producer id block claimed"
            );
            *ids = (block.block_start, block.block_end);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    async fn write_isr(&self, topic: &str, state: &PartitionState) -> Result<i32, IsrWriteError> {
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
            .update_partition_state(topic, state.partition, &znode, state.state_version)
            .await
        {
            Ok(version) => Ok(version),
            Err(StoreError::Zk(ZkError::BadVersion | ZkError::NoNode)) => {
                Err(IsrWriteError::Conflict)
            }
            Err(e) => Err(IsrWriteError::Unavailable(e.to_string())),
        }
    }

    async fn alter_partition_reassignments(
        &self,
        changes: Vec<PartitionReassignment>,
    ) -> Result<Vec<Result<(), ControllerError>>, ControllerError> {
        self.ask_controller(|reply| ControllerRequest::Reassign { changes, reply })
            .await
    }

    async fn elect_leaders(
        &self,
        kind: ElectionType,
        partitions: Option<Vec<PartitionKey>>,
        timeout: Duration,
    ) -> Result<Vec<(PartitionKey, Result<(), ControllerError>)>, ControllerError> {
        let every = partitions.is_none();
        let outcomes = self
            .ask_controller(|reply| ControllerRequest::Elect {
                kind,
                partitions,
                reply,
            })
            .await?;
        let elected: Vec<(PartitionKey, i32)> = outcomes
            .iter()
            .filter_map(|(key, r)| r.as_ref().ok().map(|epoch| (key.clone(), *epoch)))
            .collect();
        let shown = |view: &ClusterView, (topic, p): &PartitionKey, epoch: i32| {
            view.topics
                .get(topic)
                .and_then(|t| t.states.get(p))
                .is_some_and(|s| s.state.leader_epoch >= epoch)
        };
        let _ = tokio::time::timeout(
            timeout,
            self.wait_for_view(|v| elected.iter().all(|(k, e)| shown(v, k, *e))),
        )
        .await;
        let view = self.view();
        Ok(outcomes
            .into_iter()
            // Asked for every partition: those that needed no election are not listed.
            .filter(|(_, r)| !(every && *r == Err(ControllerError::ElectionNotNeeded)))
            .map(|(key, r)| {
                let r = match r {
                    Ok(epoch) if !shown(&view, &key, epoch) => Err(ControllerError::TimedOut),
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                };
                (key, r)
            })
            .collect())
    }

    async fn join(
        self: Arc<Self>,
        shutdown: Shutdown,
        tasks: &mut JoinSet<()>,
    ) -> Result<(), ClusterError> {
        self.register()
            .await
            .map_err(|e| ClusterError::Unavailable(format!("registering in ZooKeeper: {e}")))?;
        let watcher = self.spawn_watcher(shutdown.clone());
        tasks.spawn(async move {
            let _ = watcher.await;
        });
        let controller = self.spawn_controller(shutdown);
        tasks.spawn(async move {
            let _ = controller.await;
        });
        Ok(())
    }

    async fn leave(&self) {
        self.controlled_shutdown().await;
    }

    async fn close(&self) {
        self.close_session().await;
    }
}

/// Reads ZooKeeper into the view, keeps watches armed, and rebuilds the session after expiry.
struct Reader {
    cluster: Arc<ZkCluster>,
    view: ClusterView,
    armed: HashSet<Target>,
    fired: mpsc::UnboundedSender<Target>,
}

impl Reader {
    fn new(cluster: Arc<ZkCluster>) -> Reader {
        let view = (*cluster.view()).clone();
        let fired = cluster.refresh.clone();
        Reader {
            cluster,
            view,
            armed: HashSet::new(),
            fired,
        }
    }

    fn store(&self) -> ZkStore {
        self.cluster.store()
    }

    /// Publishes the working view.
    fn publish(&mut self, link: MetadataLink) {
        self.view.reindex();
        let mut next = self.view.clone();
        // Registration is owned by `register`; keep whatever it set.
        next.me = self.cluster.view().me.clone();
        next.rebuild_all();
        self.view.me = next.me.clone();
        *self.cluster.view.write() = Arc::new(next);
        self.cluster.version.send_modify(|v| {
            v.generation += 1;
            v.link = link;
        });
    }

    fn arm(&mut self, watch: Watch, target: Target) {
        self.armed.insert(target.clone());
        let tx = self.fired.clone();
        let session = self.store().client().session_id();
        tokio::spawn(async move {
            let event = watch.changed().await;
            let target = if event.kind == EventType::Session {
                Target::SessionLost(session)
            } else {
                target
            };
            let _ = tx.send(target);
        });
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Target>, shutdown: Shutdown) {
        let mut session = self.store().client().session_events();
        self.cluster.set_link(MetadataLink::Connected);
        loop {
            let mut pending: Vec<Target> = Vec::new();
            tokio::select! {
                _ = shutdown.triggered() => return,
                target = rx.recv() => match target {
                    Some(t) => pending.push(t),
                    None => return,
                },
                state = session.next() => {
                    match state {
                        SessionState::Disconnected => {
                            warn!("ZooKeeper connection lost; the session stands until it times out");
                            self.cluster.set_link(self.disconnected());
                        }
                        SessionState::SyncConnected => {
                            info!("ZooKeeper connection back");
                            pending.push(Target::Everything);
                        }
                        s if s.is_terminated() => {
                            pending.push(Target::SessionLost(self.store().client().session_id()));
                        }
                        _ => {}
                    }
                }
            }
            while let Ok(t) = rx.try_recv() {
                pending.push(t);
            }
            let current = self.store().client().session_id();
            let lost = pending.contains(&Target::SessionLost(current));
            let result = if lost {
                Err(ZkError::SessionExpired)
            } else {
                self.apply(pending).await
            };
            match result {
                Ok(()) => {
                    let link = if self.store().client().state() == SessionState::SyncConnected {
                        MetadataLink::Connected
                    } else {
                        self.disconnected()
                    };
                    self.publish(link);
                }
                Err(e) if e.is_session_lost() || lost => {
                    self.cluster.set_link(MetadataLink::Lost);
                    if !self.renew_session(&shutdown).await {
                        return;
                    }
                    session = self.store().client().session_events();
                    self.publish(MetadataLink::Connected);
                }
                Err(e) => {
                    // The connection dropped mid-read (the session stands) or a read failed:
                    // keep the last view and read again.
                    if self.store().client().state() != SessionState::SyncConnected {
                        self.cluster.set_link(self.disconnected());
                    }
                    debug!(error = %e, "reading ZooKeeper failed; retrying");
                    tokio::time::sleep(RETRY_BACKOFF).await;
                    let _ = self.fired.send(Target::Everything);
                }
            }
        }
    }

    fn disconnected(&self) -> MetadataLink {
        MetadataLink::Disconnected {
            session_timeout_ms: self.store().client().session_timeout().as_millis() as u64,
        }
    }

    /// Builds a new session after expiry, registers again and re-reads everything.
    async fn renew_session(&mut self, shutdown: &Shutdown) -> bool {
        warn!("ZooKeeper session expired; leaders stop accepting writes, reconnecting");
        loop {
            if shutdown.is_triggered() {
                return false;
            }
            match connect_within(&self.cluster.connect, &self.cluster.settings).await {
                Ok(client) => {
                    *self.cluster.store.write() = ZkStore::new(client);
                    self.armed.clear();
                    match self.cluster.register().await {
                        Ok(()) => {}
                        Err(e) => {
                            warn!(error = %e, "re-registering after session expiry failed");
                            tokio::time::sleep(RETRY_BACKOFF).await;
                            continue;
                        }
                    }
                    match self.read_everything().await {
                        Ok(()) => {
                            info!("new ZooKeeper session established");
                            return true;
                        }
                        Err(e) => warn!(error = %e, "re-reading ZooKeeper failed"),
                    }
                }
                Err(e) => warn!(error = %e, "reconnecting to ZooKeeper failed"),
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }

    async fn apply(&mut self, pending: Vec<Target>) -> Result<(), ZkError> {
        if pending.contains(&Target::Everything) {
            return self.read_everything().await.map_err(store_zk);
        }
        let mut done = HashSet::new();
        for target in pending {
            if !done.insert(target.clone()) {
                continue;
            }
            // A fired watch is no longer armed.
            self.armed.remove(&target);
            match target {
                Target::Brokers => self.read_brokers().await?,
                Target::Controller => self.read_controller().await?,
                Target::Topics => self.read_topics().await?,
                Target::Topic(name) => self.read_topic(&name).await?,
                Target::State(t, p) => self.read_state(&t, p).await?,
                Target::ConfigChanges => self.read_config_changes(false).await?,
                Target::Everything | Target::SessionLost(_) => {}
            }
        }
        Ok(())
    }

    async fn read_everything(&mut self) -> Result<(), StoreError> {
        // Notifications first: every later one is acted on, the earlier ones are covered by
        // the full read below.
        self.read_config_changes(true).await?;
        self.read_brokers().await?;
        self.read_controller().await?;
        self.read_broker_configs().await?;
        self.view.client_entities = Arc::new(self.store().client_entities().await?);
        self.view.topics.clear();
        self.read_topics().await?;
        Ok(())
    }

    /// Reads the dynamic configs of the default entity and of this broker.
    async fn read_broker_configs(&mut self) -> Result<(), StoreError> {
        let store = self.store();
        self.view.broker_configs = DynamicBrokerConfigs {
            default: store.broker_config(paths::DEFAULT_ENTITY).await?,
            broker: store.broker_config(&self.view.me.id.to_string()).await?,
        };
        Ok(())
    }

    /// Lists `/config/changes` (re-arming its watch) and, unless `catch_up_only`, re-reads the
    /// entity of every notification newer than the last one acted on, as Kafka's config
    /// change listener does. Notifications past their expiry are deleted.
    async fn read_config_changes(&mut self, catch_up_only: bool) -> Result<(), ZkError> {
        let store = self.store();
        let names = if self.armed.contains(&Target::ConfigChanges) {
            store.client().children(paths::CONFIG_CHANGES).await?
        } else {
            let (names, watch) = store
                .client()
                .children_and_watch(paths::CONFIG_CHANGES)
                .await?;
            self.arm(watch, Target::ConfigChanges);
            names
        };
        let mut fresh: Vec<(i64, &String)> = names
            .iter()
            .filter_map(|n| paths::config_change_sequence(n).map(|seq| (seq, n)))
            .filter(|(seq, _)| self.view.last_config_change.is_none_or(|last| *seq > last))
            .collect();
        fresh.sort();
        for (seq, name) in fresh {
            if !catch_up_only {
                let path = format!("{}/{name}", paths::CONFIG_CHANGES);
                if let Some((data, _)) = store.client().get_opt(&path).await? {
                    match ConfigChangeNotification::decode(&data) {
                        Ok(note) => self.apply_config_change(&note).await?,
                        Err(e) => {
                            warn!(notification = %name, error = %e, "unreadable config change notification ignored")
                        }
                    }
                }
            }
            self.view.last_config_change = Some(seq);
        }
        let expired_before = crate::util::clock::now_ms() - CONFIG_CHANGE_EXPIRY_MS;
        if let Err(e) = store.purge_config_changes(&names, expired_before).await {
            debug!(error = %e, "purging old config change notifications failed");
        }
        Ok(())
    }

    /// Re-reads the entity a notification names: a topic's overrides, the default or this
    /// broker's dynamic configs, or a user, client-id or IP entity. Other brokers' configs are
    /// not used.
    async fn apply_config_change(
        &mut self,
        note: &ConfigChangeNotification,
    ) -> Result<(), ZkError> {
        let store = self.store();
        let me = self.view.me.clone();
        info!(entity = %note.entity_path, "config change notification: re-reading the entity");
        let client_entity = super::entities::parse_entity_path(&note.entity_path);
        match note.entity() {
            Some(("topics", topic)) => {
                let configs = store.topic_config(topic).await.map_err(store_zk)?;
                if let Some(entry) = self.view.topics.get_mut(topic) {
                    *entry = entry.with_configs(configs, &me);
                }
            }
            Some(("brokers", entity)) if entity == paths::DEFAULT_ENTITY => {
                self.view.broker_configs.default =
                    store.broker_config(entity).await.map_err(store_zk)?;
            }
            Some(("brokers", entity)) if entity == me.id.to_string() => {
                self.view.broker_configs.broker =
                    store.broker_config(entity).await.map_err(store_zk)?;
            }
            _ if client_entity.is_some() => {
                let Some(entity) = client_entity else {
                    return Ok(());
                };
                let config = store
                    .client_entity_config(&entity)
                    .await
                    .map_err(store_zk)?;
                let mut entities = (*self.view.client_entities).clone();
                entities.entities.remove(&entity);
                if !config.is_empty() {
                    entities.entities.insert(entity, config);
                }
                self.view.client_entities = Arc::new(entities);
            }
            _ => {
                debug!(entity = %note.entity_path, "config change of an entity this broker does not use")
            }
        }
        Ok(())
    }

    async fn read_brokers(&mut self) -> Result<(), ZkError> {
        let store = self.store();
        let client = store.client();
        let ids = if self.armed.contains(&Target::Brokers) {
            client.children(paths::BROKER_IDS).await?
        } else {
            let (ids, watch) = client.children_and_watch(paths::BROKER_IDS).await?;
            self.arm(watch, Target::Brokers);
            ids
        };
        let mut brokers = BTreeMap::new();
        for id in ids.iter().filter_map(|i| i.parse::<i32>().ok()) {
            if let Some((data, stat)) = client.get_opt(&paths::broker(id)).await? {
                match BrokerRegistration::decode(&data) {
                    Ok(reg) => {
                        if let Some(b) = live_broker(id, &reg, stat.czxid) {
                            brokers.insert(id, b);
                        }
                    }
                    Err(e) => warn!(broker = id, error = %e, "unreadable broker registration"),
                }
            }
        }
        self.view.brokers = brokers;
        Ok(())
    }

    async fn read_controller(&mut self) -> Result<(), ZkError> {
        let store = self.store();
        let client = store.client();
        let (stat, watch) = client.exists_and_watch(paths::CONTROLLER).await?;
        self.arm(watch, Target::Controller);
        self.view.controller = match stat {
            None => None,
            Some(_) => store.get_controller().await.map_err(store_zk)?,
        };
        Ok(())
    }

    async fn read_topics(&mut self) -> Result<(), ZkError> {
        let store = self.store();
        let names = if self.armed.contains(&Target::Topics) {
            store.client().children(paths::BROKER_TOPICS).await?
        } else {
            let (names, watch) = store
                .client()
                .children_and_watch(paths::BROKER_TOPICS)
                .await?;
            self.arm(watch, Target::Topics);
            names
        };
        let names: BTreeSet<String> = names.into_iter().collect();
        self.view.topics.retain(|t, _| names.contains(t));
        for name in names {
            if !self.view.topics.contains_key(&name) {
                self.read_topic(&name).await?;
            }
        }
        Ok(())
    }

    async fn read_topic(&mut self, name: &str) -> Result<(), ZkError> {
        let store = self.store();
        let client = store.client();
        let target = Target::Topic(name.to_string());
        let found = if self.armed.contains(&target) {
            client.get_opt(&paths::topic(name)).await?
        } else {
            match client.get_and_watch(&paths::topic(name)).await {
                Ok((data, stat, watch)) => {
                    self.arm(watch, target);
                    Some((data, stat))
                }
                Err(ZkError::NoNode) => None,
                Err(e) => return Err(e),
            }
        };
        let Some((data, stat)) = found else {
            self.view.topics.remove(name);
            return Ok(());
        };
        let assignment = match TopicAssignment::decode(&data) {
            Ok(a) if a.replica_lists().is_ok() => a,
            Ok(_) | Err(_) => {
                warn!(topic = name, "unreadable topic assignment ignored");
                return Ok(());
            }
        };
        let configs = store.topic_config(name).await.map_err(store_zk)?;
        let mut states = BTreeMap::new();
        for &p in assignment.partitions.keys() {
            if let Some(s) = self.fetch_state(name, p).await? {
                states.insert(p, s);
            }
        }
        let entry = TopicEntry::new(
            name.to_string(),
            assignment,
            stat.version,
            configs,
            states,
            &self.view.me,
        );
        self.view.topics.insert(name.to_string(), entry);
        Ok(())
    }

    /// Reads one state, arming a watch on it (an exists-watch while it does not exist yet).
    async fn fetch_state(&mut self, topic: &str, p: i32) -> Result<Option<StoredState>, ZkError> {
        let client = self.store().client().clone();
        let path = paths::partition_state(topic, p);
        let target = Target::State(topic.to_string(), p);
        let read = if self.armed.contains(&target) {
            client.get_opt(&path).await?
        } else {
            match client.get_and_watch(&path).await {
                Ok((data, stat, watch)) => {
                    self.arm(watch, target);
                    Some((data, stat))
                }
                Err(ZkError::NoNode) => {
                    let (stat, watch) = client.exists_and_watch(&path).await?;
                    self.arm(watch, target);
                    match stat {
                        // Created in between: the exists-watch fires on its next change only.
                        Some(_) => client.get_opt(&path).await?,
                        None => None,
                    }
                }
                Err(e) => return Err(e),
            }
        };
        Ok(read.and_then(
            |(data, stat)| match super::znodes::PartitionStateZnode::decode(&data) {
                Ok(state) => Some(StoredState {
                    state,
                    version: stat.version,
                    mzxid: stat.mzxid,
                }),
                Err(e) => {
                    warn!(topic, partition = p, error = %e, "unreadable partition state ignored");
                    None
                }
            },
        ))
    }

    async fn read_state(&mut self, topic: &str, p: i32) -> Result<(), ZkError> {
        if !self.view.topics.contains_key(topic) {
            return Ok(());
        }
        let state = self.fetch_state(topic, p).await?;
        let me = self.view.me.clone();
        if let Some(entry) = self.view.topics.get_mut(topic) {
            *entry = entry.with_state(p, state, &me);
        }
        Ok(())
    }
}

fn store_zk(e: StoreError) -> ZkError {
    match e {
        StoreError::Zk(z) => z,
        other => ZkError::Other(other.to_string()),
    }
}
