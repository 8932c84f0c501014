//! The transaction coordinator of this broker: which broker coordinates a transactional id,
//! the `__transaction_state` topic (created on first use, as Kafka does), loading and
//! unloading its partitions as this broker's leaderships change, and writing transitions to it
//! (answered only once on the partition's in-sync replicas). The requests themselves are in
//! `operations`, ending transactions and the periodic jobs in `completion`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use parking_lot::{Mutex, RwLock};
use tracing::{info, warn};

use super::markers::TxnMarkerSender;
use super::records::{TxnLogKey, TxnLogValue, TxnRecordError, VALUE_VERSION_CLASSIC};
use super::{partition_for, TransactionMetadata, TxnError, TxnTransit, TRANSACTION_STATE_TOPIC};
use crate::cluster::{create_internal_topic, BrokerInfo, ClusterMetadata, NewTopic};
use crate::config::{ConfigHandle, TransactionSettings};
use crate::group::records::build_batch;
use crate::log::{whole_batches, AppendError, AppendOrigin, TopicPartition};
use crate::replica::{ProduceError, ReplicaManager, RoleChange};
use crate::util::clock::now_ms;

/// How long a `__transaction_state` write may take to reach the in-sync replicas (Kafka uses
/// the request timeout, `request.timeout.ms`, 30 s by default).
const STATE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read from `__transaction_state` at a time while loading.
const LOAD_CHUNK_BYTES: usize = 1 << 20;

/// One transactional id's metadata, locked for each decision and each completed write (never
/// across an await).
pub type SharedMetadata = Arc<Mutex<TransactionMetadata>>;

/// Where a transactional id's state lives: its `__transaction_state` partition and the leader
/// epoch this broker leads it at (the coordinator epoch markers carry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub partition: i32,
    pub coordinator_epoch: i32,
}

/// A `__transaction_state` partition this broker leads.
enum Slot {
    Loading,
    Loaded {
        coordinator_epoch: i32,
        ids: HashMap<String, SharedMetadata>,
    },
}

/// The transaction coordinator of this broker.
pub struct TransactionCoordinator {
    replicas: Arc<ReplicaManager>,
    cluster: Arc<dyn ClusterMetadata>,
    config: ConfigHandle,
    slots: RwLock<HashMap<i32, Slot>>,
    markers: OnceLock<Arc<dyn TxnMarkerSender>>,
    /// This coordinator, for the tasks it spawns (completing transactions after a load).
    me: Weak<TransactionCoordinator>,
}

impl TransactionCoordinator {
    pub fn new(
        config: ConfigHandle,
        replicas: Arc<ReplicaManager>,
        cluster: Arc<dyn ClusterMetadata>,
    ) -> Arc<TransactionCoordinator> {
        Arc::new_cyclic(|me| TransactionCoordinator {
            replicas,
            cluster,
            config,
            slots: RwLock::new(HashMap::new()),
            markers: OnceLock::new(),
            me: me.clone(),
        })
    }

    /// Connects the marker writer (the broker layer's); set once at start-up.
    pub fn set_marker_sender(&self, sender: Arc<dyn TxnMarkerSender>) {
        let _ = self.markers.set(sender);
    }

    pub(super) fn marker_sender(&self) -> Option<Arc<dyn TxnMarkerSender>> {
        self.markers.get().cloned()
    }

    pub(super) fn arc(&self) -> Option<Arc<TransactionCoordinator>> {
        self.me.upgrade()
    }

    pub fn settings(&self) -> TransactionSettings {
        self.config.current().txn.clone()
    }

    pub(super) fn cluster(&self) -> &Arc<dyn ClusterMetadata> {
        &self.cluster
    }

    /// The number of `__transaction_state` partitions: the topic's, once it exists.
    fn state_partitions(&self) -> i32 {
        self.cluster
            .topic(TRANSACTION_STATE_TOPIC)
            .map(|t| t.partitions.len() as i32)
            .filter(|n| *n > 0)
            .unwrap_or_else(|| self.settings().state_log_num_partitions)
    }

    /// The `__transaction_state` partition of `transactional_id` (Kafka's hash).
    pub fn partition_of(&self, transactional_id: &str) -> i32 {
        partition_for(transactional_id, self.state_partitions())
    }

    /// The broker coordinating `transactional_id` (FindCoordinator): the leader of its
    /// `__transaction_state` partition, the topic being created on first use.
    pub async fn find_coordinator(&self, transactional_id: &str) -> Result<BrokerInfo, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest("empty transactional id"));
        }
        self.ensure_state_topic().await?;
        let leader = self
            .cluster
            .topic(TRANSACTION_STATE_TOPIC)
            .and_then(|t| {
                t.partition(self.partition_of(transactional_id))
                    .map(|p| p.leader)
            })
            .ok_or(TxnError::CoordinatorNotAvailable)?;
        let live = self.cluster.live_brokers();
        if let Some(b) = live.iter().find(|b| b.id == leader) {
            return Ok(b.clone());
        }
        if leader == self.replicas.broker_id() {
            return Ok(BrokerInfo::advertised(&self.config.current()));
        }
        Err(TxnError::CoordinatorNotAvailable)
    }

    /// Creates `__transaction_state` with the `transaction.state.log.*` settings if it does
    /// not exist yet, and hosts this broker's replicas of it.
    pub async fn ensure_state_topic(&self) -> Result<(), TxnError> {
        if self.cluster.topic(TRANSACTION_STATE_TOPIC).is_some() {
            return Ok(());
        }
        let settings = self.settings();
        let configs = [
            ("cleanup.policy", "compact".to_string()),
            ("compression.type", "uncompressed".to_string()),
            (
                "min.insync.replicas",
                settings.state_log_min_isr.to_string(),
            ),
            (
                "segment.bytes",
                settings.state_log_segment_bytes.to_string(),
            ),
            ("unclean.leader.election.enable", "false".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let spec = NewTopic {
            name: TRANSACTION_STATE_TOPIC.to_string(),
            num_partitions: settings.state_log_num_partitions,
            replication_factor: settings.state_log_replication_factor,
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
                warn!(error = %e, "creating __transaction_state failed; transactions are unavailable");
                Err(TxnError::CoordinatorNotAvailable)
            }
        }
    }

    /// Follows this broker's leaderships of `__transaction_state` partitions: the state of a
    /// partition it now leads is loaded (and transactions found half-ended are completed),
    /// that of one it now follows is forgotten.
    pub fn on_role_changes(&self, changes: &[(TopicPartition, RoleChange)]) {
        for (tp, change) in changes {
            if &*tp.topic != TRANSACTION_STATE_TOPIC {
                continue;
            }
            match change {
                RoleChange::BecameLeader => self.load_partition(tp.partition),
                RoleChange::BecameFollower => {
                    if self.slots.write().remove(&tp.partition).is_some() {
                        info!(
                            partition = tp.partition,
                            "no longer coordinating the transactions of this partition"
                        );
                    }
                }
                RoleChange::Unchanged => {}
            }
        }
    }

    /// This broker no longer hosts these replicas: their transaction state goes.
    pub fn on_replicas_stopped(&self, stopped: &[TopicPartition]) {
        let mut slots = self.slots.write();
        for tp in stopped
            .iter()
            .filter(|tp| &*tp.topic == TRANSACTION_STATE_TOPIC)
        {
            slots.remove(&tp.partition);
        }
    }

    /// Rebuilds the transactional ids of one led `__transaction_state` partition from its log
    /// (to its end, as Kafka does), then completes the transactions left in PrepareCommit or
    /// PrepareAbort.
    fn load_partition(&self, index: i32) {
        let Some(partition) = self.replicas.partition(TRANSACTION_STATE_TOPIC, index) else {
            return;
        };
        self.slots.write().insert(index, Slot::Loading);
        let coordinator_epoch = partition.leader_epoch();
        let mut ids: HashMap<String, TransactionMetadata> = HashMap::new();
        let end = partition.log_end_offset();
        let mut offset = partition.log_start_offset();
        while offset < end {
            let data = match partition.read_local(offset, LOAD_CHUNK_BYTES, end) {
                Ok(d) if !d.is_empty() => d,
                Ok(_) => break,
                Err(e) => {
                    warn!(partition = index, error = %e, "reading __transaction_state failed");
                    break;
                }
            };
            let Some(next) = apply_batches(index, data, &mut ids) else {
                break;
            };
            offset = next.max(offset + 1);
        }
        let loaded: HashMap<String, SharedMetadata> = ids
            .into_iter()
            .map(|(id, m)| (id, Arc::new(Mutex::new(m))))
            .collect();
        let owed: Vec<(String, SharedMetadata)> = loaded
            .iter()
            .filter(|(_, m)| m.lock().pending_markers().is_some())
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect();
        info!(
            partition = index,
            coordinator_epoch,
            transactional_ids = loaded.len(),
            completing = owed.len(),
            "now coordinating the transactions of this partition"
        );
        {
            let mut slots = self.slots.write();
            // Only if the leadership did not change while loading.
            if matches!(slots.get(&index), Some(Slot::Loading)) {
                slots.insert(
                    index,
                    Slot::Loaded {
                        coordinator_epoch,
                        ids: loaded,
                    },
                );
            } else {
                return;
            }
        }
        let place = Place {
            partition: index,
            coordinator_epoch,
        };
        let Some(me) = self.arc() else { return };
        for (id, meta) in owed {
            let (producer_id, epoch, result) = {
                let m = meta.lock();
                match m.pending_markers() {
                    Some(r) => (m.producer_id, m.producer_epoch, r),
                    None => continue,
                }
            };
            me.clone()
                .spawn_completion(id, place, meta, producer_id, epoch, result);
        }
    }

    /// The place and metadata of `transactional_id` if this broker coordinates it
    /// (`Ok(None)`: coordinated here, unknown).
    pub(super) fn lookup(
        &self,
        transactional_id: &str,
    ) -> Result<(Place, Option<SharedMetadata>), TxnError> {
        let index = self.partition_of(transactional_id);
        match self.slots.read().get(&index) {
            None => Err(TxnError::NotCoordinator),
            Some(Slot::Loading) => Err(TxnError::CoordinatorLoadInProgress),
            Some(Slot::Loaded {
                coordinator_epoch,
                ids,
            }) => Ok((
                Place {
                    partition: index,
                    coordinator_epoch: *coordinator_epoch,
                },
                ids.get(transactional_id).cloned(),
            )),
        }
    }

    /// The metadata of `transactional_id`, `create`d if it is not known yet.
    pub(super) fn get_or_insert(
        &self,
        transactional_id: &str,
        place: Place,
        create: TransactionMetadata,
    ) -> Result<SharedMetadata, TxnError> {
        let mut slots = self.slots.write();
        match slots.get_mut(&place.partition) {
            Some(Slot::Loaded {
                coordinator_epoch,
                ids,
            }) if *coordinator_epoch == place.coordinator_epoch => Ok(ids
                .entry(transactional_id.to_string())
                .or_insert_with(|| Arc::new(Mutex::new(create)))
                .clone()),
            Some(Slot::Loading) => Err(TxnError::CoordinatorLoadInProgress),
            _ => Err(TxnError::NotCoordinator),
        }
    }

    /// Forgets an expired id (its tombstone is written), if it is still this metadata.
    pub(super) fn remove(&self, transactional_id: &str, place: Place, meta: &SharedMetadata) {
        if let Some(Slot::Loaded { ids, .. }) = self.slots.write().get_mut(&place.partition) {
            if ids
                .get(transactional_id)
                .is_some_and(|m| Arc::ptr_eq(m, meta))
            {
                ids.remove(transactional_id);
            }
        }
    }

    /// Whether this broker still coordinates `place` at the same coordinator epoch.
    pub(super) fn still_coordinating(&self, place: Place) -> bool {
        matches!(
            self.slots.read().get(&place.partition),
            Some(Slot::Loaded { coordinator_epoch, .. }) if *coordinator_epoch == place.coordinator_epoch
        )
    }

    /// Every loaded id, with its place (for the periodic jobs and ListTransactions).
    /// `Err(CoordinatorLoadInProgress)` while a partition is loading.
    pub(super) fn loaded_ids(&self) -> Result<Vec<(String, Place, SharedMetadata)>, TxnError> {
        let slots = self.slots.read();
        let mut out = Vec::new();
        for (index, slot) in slots.iter() {
            match slot {
                Slot::Loading => return Err(TxnError::CoordinatorLoadInProgress),
                Slot::Loaded {
                    coordinator_epoch,
                    ids,
                } => {
                    let place = Place {
                        partition: *index,
                        coordinator_epoch: *coordinator_epoch,
                    };
                    out.extend(ids.iter().map(|(id, m)| (id.clone(), place, m.clone())));
                }
            }
        }
        Ok(out)
    }

    /// Writes `transit` of `transactional_id` to its `__transaction_state` partition and waits
    /// until the in-sync replicas have it; then checks this broker still coordinates the id at
    /// the same epoch. The caller completes (or aborts) the transition on the metadata.
    pub(super) async fn persist(
        &self,
        transactional_id: &str,
        place: Place,
        transit: &TxnTransit,
    ) -> Result<(), TxnError> {
        let key = TxnLogKey::new(transactional_id).encode();
        let value =
            (!transit.is_tombstone()).then(|| transit.to_log_value().encode(VALUE_VERSION_CLASSIC));
        let now = now_ms();
        let batch = build_batch(vec![(key, value)], now)
            .map_err(|e| TxnError::IllegalState(format!("encoding a state record: {e}")))?;
        let partition = self
            .replicas
            .partition(TRANSACTION_STATE_TOPIC, place.partition)
            .ok_or(TxnError::NotCoordinator)?;
        if partition.leader_epoch() != place.coordinator_epoch {
            return Err(TxnError::NotCoordinator);
        }
        let info = partition
            .append_as_leader_from(&batch, -1, now, AppendOrigin::Client)
            .map_err(|e| state_write_error(transactional_id, &e))?;
        let deadline = tokio::time::Instant::now() + STATE_WRITE_TIMEOUT;
        partition
            .wait_for_replication(info.last_offset + 1, deadline)
            .await
            .map_err(|e| state_write_error(transactional_id, &e))?;
        if self.still_coordinating(place) {
            Ok(())
        } else {
            Err(TxnError::NotCoordinator)
        }
    }
}

/// How a failed `__transaction_state` write is answered (Kafka's mapping in
/// `TransactionStateManager.appendTransactionToLog`).
fn state_write_error(transactional_id: &str, e: &ProduceError) -> TxnError {
    warn!(transactional_id, error = %e, "writing to __transaction_state failed");
    match e {
        ProduceError::NotLeader => TxnError::NotCoordinator,
        ProduceError::Append(AppendError::Storage(_)) => TxnError::NotCoordinator,
        ProduceError::NotEnoughReplicas { .. }
        | ProduceError::NotEnoughReplicasAfterAppend { .. }
        | ProduceError::Timeout => TxnError::CoordinatorNotAvailable,
        ProduceError::Append(other) => TxnError::IllegalState(other.to_string()),
    }
}

/// Replays the batches of `data` into `ids`; returns the offset after the last whole batch
/// (`None` when not one batch could be read).
fn apply_batches(
    index: i32,
    data: Bytes,
    ids: &mut HashMap<String, TransactionMetadata>,
) -> Option<i64> {
    let mut next = None;
    for (header, mut one) in whole_batches(data) {
        next = Some(header.next_offset());
        if header.is_control() {
            continue;
        }
        match RecordBatchDecoder::decode_all(&mut one) {
            Ok(sets) => {
                for record in sets.into_iter().flat_map(|s| s.records) {
                    if let Err(e) = apply_record(record.key, record.value, ids) {
                        warn!(partition = index, offset = header.base_offset, error = %e,
                            "unreadable __transaction_state record skipped");
                    }
                }
            }
            Err(e) => {
                warn!(partition = index, offset = header.base_offset, error = %e,
                    "undecodable batch in __transaction_state skipped")
            }
        }
    }
    next
}

/// The error of a record that cannot be replayed.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error(transparent)]
    Record(#[from] TxnRecordError),
    #[error(transparent)]
    State(#[from] TxnError),
    #[error("record without a key")]
    NoKey,
}

fn apply_record(
    key: Option<Bytes>,
    value: Option<Bytes>,
    ids: &mut HashMap<String, TransactionMetadata>,
) -> Result<(), LoadError> {
    let key = key.ok_or(LoadError::NoKey)?;
    let key = match TxnLogKey::decode(&key) {
        Ok(k) => k,
        // Kafka skips keys of versions it does not know.
        Err(TxnRecordError::UnknownVersion { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    match value {
        None => {
            ids.remove(&key.transactional_id);
        }
        Some(value) => {
            let value = TxnLogValue::decode(&value)?;
            let meta = TransactionMetadata::from_log(&key.transactional_id, &value)?;
            ids.insert(key.transactional_id, meta);
        }
    }
    Ok(())
}
