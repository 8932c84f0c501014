//! The group coordinator of this broker: which broker coordinates a group, the
//! `__consumer_offsets` topic (created on first use, as Kafka does), loading and unloading its
//! partitions as this broker's leaderships change, appending group records, and the timers that
//! expire member sessions and committed offsets. The group operations themselves are in
//! `membership` and `offsets`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::groups::Groups;
use super::records::build_batch;
use super::{GroupEntry, KeyValue, OFFSETS_TOPIC};
use crate::cluster::{create_internal_topic, BrokerInfo, ClusterMetadata, NewTopic};
use crate::config::{ConfigHandle, GroupSettings};
use crate::log::{AppendError, AppendOrigin, TopicPartition};
use crate::replica::{Partition, ProduceError, ReplicaManager, RoleChange};
use crate::util::clock::now_ms;
use crate::util::task::{self, Shutdown};

/// Kafka's `offsets.commit.timeout.ms` default.
const OFFSETS_COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes read from `__consumer_offsets` at a time while loading.
const LOAD_CHUNK_BYTES: usize = 1 << 20;

/// Records appended to `__consumer_offsets` and the offset they are committed at.
#[must_use = "a persisted write should be awaited or explicitly not awaited"]
pub struct Replication {
    pending: Option<(Arc<Partition>, i64)>,
    /// The offset of the first record appended (-1 when nothing was).
    first_offset: i64,
}

impl Replication {
    fn nothing() -> Replication {
        Replication {
            pending: None,
            first_offset: -1,
        }
    }

    /// Where the records start in `__consumer_offsets` (-1 when nothing was appended).
    pub fn first_offset(&self) -> i64 {
        self.first_offset
    }

    /// Waits until the records are replicated to the ISR (`offsets.commit.timeout.ms`).
    pub async fn committed(self) -> Result<(), ResponseError> {
        let Some((partition, required)) = self.pending else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + OFFSETS_COMMIT_TIMEOUT;
        partition
            .wait_for_replication(required, deadline)
            .await
            .map_err(|e| coordinator_error(&e))
    }

    /// The caller does not answer anyone: the write completes in the background.
    pub fn detach(self) {}
}

/// How a failed `__consumer_offsets` write is reported to group clients (Kafka's mapping).
fn coordinator_error(e: &ProduceError) -> ResponseError {
    match e {
        ProduceError::Append(AppendError::MessageTooLarge { .. }) => ResponseError::MessageTooLarge,
        ProduceError::NotLeader => ResponseError::NotCoordinator,
        // Only transactional offset commits carry a producer epoch (passed on, as Kafka does).
        ProduceError::Append(AppendError::InvalidProducerEpoch(_)) => {
            ResponseError::InvalidProducerEpoch
        }
        _ => ResponseError::CoordinatorNotAvailable,
    }
}

/// The group coordinator of this broker.
pub struct GroupCoordinator {
    pub(super) groups: Groups,
    replicas: Arc<ReplicaManager>,
    cluster: Arc<dyn ClusterMetadata>,
    config: ConfigHandle,
    deadlines: DeadlineTimer,
}

/// Wakes the session timer ([`GroupCoordinator::spawn_timers`]) at the next group deadline,
/// and earlier when a group gets a deadline before the one it sleeps until (Kafka's heartbeat
/// purgatory expires a member at its deadline, not at the next sweep).
#[derive(Default)]
struct DeadlineTimer {
    /// The wall-clock time (ms) the timer sleeps until; `i64::MAX` when no group has a deadline.
    sleeping_until: AtomicI64,
    wake: Notify,
}

impl GroupCoordinator {
    pub fn new(
        config: ConfigHandle,
        replicas: Arc<ReplicaManager>,
        cluster: Arc<dyn ClusterMetadata>,
    ) -> GroupCoordinator {
        GroupCoordinator {
            groups: Groups::new(config.current().group.clone()),
            replicas,
            cluster,
            config,
            deadlines: DeadlineTimer::default(),
        }
    }

    pub fn settings(&self) -> &GroupSettings {
        &self.groups.settings
    }

    /// The `__consumer_offsets` partition that holds `group`.
    pub fn partition_of(&self, group: &str) -> i32 {
        self.groups.partition_of(group)
    }

    /// The broker coordinating `group` (FindCoordinator): the leader of its `__consumer_offsets`
    /// partition, the topic being created on first use.
    pub async fn find_coordinator(&self, group: &str) -> Result<BrokerInfo, ResponseError> {
        self.ensure_offsets_topic().await?;
        let leader = self
            .cluster
            .topic(OFFSETS_TOPIC)
            .and_then(|t| t.partition(self.partition_of(group)).map(|p| p.leader))
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let live = self.cluster.live_brokers();
        if leader == self.replicas.broker_id() {
            let config = self.config.current();
            return Ok(live
                .into_iter()
                .find(|b| b.id == leader)
                .unwrap_or_else(|| BrokerInfo::advertised(&config)));
        }
        live.into_iter()
            .find(|b| b.id == leader)
            .ok_or(ResponseError::CoordinatorNotAvailable)
    }

    /// Whether the cluster has this topic partition (offsets are committed for known ones only).
    pub(super) fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.cluster
            .topic(topic)
            .is_some_and(|t| t.partition(partition).is_some())
    }

    /// Checks that this broker coordinates `group` (leads its `__consumer_offsets` partition and
    /// has loaded it), creating the offsets topic on first use.
    pub(super) async fn check_coordinator(&self, group: &str) -> Result<(), ResponseError> {
        if group.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        self.ensure_offsets_topic().await?;
        let index = self.partition_of(group);
        match self.replicas.partition(OFFSETS_TOPIC, index) {
            Some(p) if p.is_leader() => {
                if self.groups.is_loaded(index) {
                    Ok(())
                } else {
                    Err(ResponseError::CoordinatorLoadInProgress)
                }
            }
            _ => Err(ResponseError::NotCoordinator),
        }
    }

    /// Creates `__consumer_offsets` with the group settings if it does not exist yet, and hosts
    /// this broker's replicas of it.
    pub async fn ensure_offsets_topic(&self) -> Result<(), ResponseError> {
        if self.cluster.topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let settings = self.settings();
        let configs = [
            ("cleanup.policy", "compact".to_string()),
            ("compression.type", "producer".to_string()),
            (
                "segment.bytes",
                settings.offsets_topic_segment_bytes.to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let spec = NewTopic {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: settings.offsets_topic_num_partitions,
            replication_factor: settings.offsets_topic_replication_factor,
            assignments: None,
            configs,
        };
        match create_internal_topic(self.cluster.as_ref(), spec).await {
            Ok(Some(topic)) => {
                let changes = self.replicas.apply_topic(&topic, &self.config.current());
                self.on_role_changes(&changes);
                info!(topic = %topic.name, partitions = topic.partitions.len(), "topic created");
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                warn!(error = %e, "creating __consumer_offsets failed; groups are unavailable");
                Err(ResponseError::CoordinatorNotAvailable)
            }
        }
    }

    /// Follows this broker's leaderships of `__consumer_offsets` partitions: the groups of a
    /// partition it now leads are loaded, those of one it now follows are forgotten.
    pub fn on_role_changes(&self, changes: &[(TopicPartition, RoleChange)]) {
        for (tp, change) in changes {
            if &*tp.topic != OFFSETS_TOPIC {
                continue;
            }
            match change {
                RoleChange::BecameLeader => {
                    self.load_partition(tp.partition, now_ms());
                    info!(
                        partition = tp.partition,
                        "now coordinating the groups of this offsets partition"
                    );
                }
                RoleChange::BecameFollower => self.groups.unload_partition(tp.partition),
                RoleChange::Unchanged => {}
            }
        }
    }

    /// This broker no longer hosts these replicas: groups of offsets partitions among them go.
    pub fn on_replicas_stopped(&self, stopped: &[TopicPartition]) {
        for tp in stopped.iter().filter(|tp| &*tp.topic == OFFSETS_TOPIC) {
            self.groups.unload_partition(tp.partition);
        }
    }

    /// Rebuilds the groups and offsets of one hosted `__consumer_offsets` partition, reading up
    /// to its log end (as Kafka does when it becomes coordinator).
    fn load_partition(&self, index: i32, now_ms: i64) {
        let Some(partition) = self.replicas.partition(OFFSETS_TOPIC, index) else {
            return;
        };
        self.groups.begin_load(index);
        let end = partition.log_end_offset();
        let mut offset = partition.log_start_offset();
        while offset < end {
            let data = match partition.read_local(offset, LOAD_CHUNK_BYTES, end) {
                Ok(d) if !d.is_empty() => d,
                Ok(_) => break,
                Err(e) => {
                    warn!(partition = index, error = %e, "reading __consumer_offsets failed");
                    break;
                }
            };
            let Some(next) = self.groups.apply_batches(index, data, now_ms) else {
                break;
            };
            offset = next.max(offset + 1);
        }
        self.groups.finish_load(index);
        // The loaded members' sessions run from now: let the timer see their deadlines.
        self.deadlines.wake.notify_one();
    }

    /// Appends records for `group` to its `__consumer_offsets` partition. With other replicas,
    /// the returned [`Replication`] tells when the records are committed; callers that answer a
    /// client wait for it once they have released the group's lock.
    pub(super) fn persist(
        &self,
        group: &str,
        records: Vec<KeyValue>,
        now_ms: i64,
    ) -> Result<Replication, ResponseError> {
        if records.is_empty() {
            return Ok(Replication::nothing());
        }
        let batch = build_batch(records, now_ms).map_err(|_| ResponseError::UnknownServerError)?;
        self.append_batch(group, &batch, AppendOrigin::Client, now_ms)
    }

    /// Appends an encoded payload for `group` to its `__consumer_offsets` partition (see
    /// [`GroupCoordinator::persist`]); `origin` is the coordinator's for transactional batches.
    pub(super) fn append_batch(
        &self,
        group: &str,
        batch: &[u8],
        origin: AppendOrigin,
        now_ms: i64,
    ) -> Result<Replication, ResponseError> {
        let partition = self
            .replicas
            .partition(OFFSETS_TOPIC, self.partition_of(group))
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        match partition.append_as_leader_from(batch, -1, now_ms, origin) {
            Ok(info) => Ok(Replication {
                first_offset: info.first_offset,
                pending: Some((partition, info.last_offset + 1)),
            }),
            Err(e) => {
                warn!(group, error = %e, "writing to __consumer_offsets failed");
                Err(coordinator_error(&e))
            }
        }
    }

    /// Starts the coordinator's timers: member session expiry and overdue rebalances (at each
    /// group deadline), and committed-offset expiry (every offsets.retention.check.interval.ms).
    pub fn spawn_timers(self: &Arc<Self>, shutdown: &Shutdown, tasks: &mut JoinSet<()>) {
        tasks.spawn(self.clone().run_session_timer(shutdown.clone()));
        let coordinator = self.clone();
        let every = Duration::from_millis(self.settings().offsets_retention_check_interval_ms);
        tasks.spawn(task::every(every, shutdown.clone(), move || {
            coordinator.expire_offsets(now_ms());
            async {}
        }));
    }

    /// Expires sessions and completes overdue rebalances at each group deadline.
    async fn run_session_timer(self: Arc<Self>, shutdown: Shutdown) {
        loop {
            let now = now_ms();
            let (records, next) = self.groups.tick(now);
            for (group, record) in records {
                self.persist_detached(&group, record, now);
            }
            let until = next.unwrap_or(i64::MAX);
            self.deadlines
                .sleeping_until
                .store(until, Ordering::Release);
            let sleep = async {
                match next {
                    Some(t) => {
                        tokio::time::sleep(Duration::from_millis((t - now_ms()).max(0) as u64))
                            .await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.triggered() => return,
                _ = sleep => {}
                _ = self.deadlines.wake.notified() => {}
            }
        }
    }

    /// Applies what fell due in `e`'s group by `now` (expired sessions, an overdue rebalance)
    /// before a request acts on it, so a request arriving after a deadline sees its effect even
    /// if the timer has not run yet.
    pub(super) fn expire_due(&self, e: &mut GroupEntry, now: i64) {
        if e.group.tick(now) {
            let record = Groups::group_record(&e.group);
            self.persist_detached(&e.group.group_id.clone(), record, now);
        }
    }

    /// Tells the session timer about `e`'s next deadline after a request changed the group.
    pub(super) fn reschedule(&self, e: &GroupEntry, now: i64) {
        if let Some(t) = e.group.next_deadline(now) {
            if t < self.deadlines.sleeping_until.load(Ordering::Acquire) {
                self.deadlines.wake.notify_one();
            }
        }
    }

    /// Appends a group record nobody waits for: it replicates in the background.
    fn persist_detached(&self, group: &str, record: KeyValue, now: i64) {
        match self.persist(group, vec![record], now) {
            Ok(replication) => replication.detach(),
            Err(e) => warn!(group, error = %e, "group metadata not persisted"),
        }
    }

    fn expire_offsets(&self, now: i64) {
        for (group, tombstones) in self.groups.expire_offsets(now) {
            info!(
                group,
                records = tombstones.len(),
                "expired committed offsets"
            );
            match self.persist(&group, tombstones, now) {
                Ok(replication) => replication.detach(),
                Err(e) => warn!(group, error = %e, "offset expiry not persisted"),
            }
        }
    }
}
