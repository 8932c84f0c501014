//! One hosted partition replica: its log, role (leader or follower) at a leader epoch, ISR, high
//! watermark, the followers' positions as the leader sees them, and the signal that wakes
//! long-polling fetches and waiting produces.
//!
//! One model for every mode: the high watermark is the smallest log end offset over the ISR, the
//! leader's own included. Standalone partitions have the ISR {this broker}, so the high watermark
//! follows the log end offset.
//!
//! Locking (all per partition, none shared across partitions): `state` (an `RwLock`) is read by
//! appends, reads and follower-fetch bookkeeping and written by role and ISR changes, so a role
//! change waits for an append in progress; `followers` (a `Mutex`) holds the leader's view of each
//! follower and is taken briefly, after `state` when both are needed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tracing::{debug, info, warn};

mod log_start;
mod read;
mod throttle;

pub use log_start::{DeleteRecordsError, RecordsDeleted};
pub use read::{FetchIsolation, FetchedPartition, OffsetLookup, OffsetSpec, ServeError};
pub use throttle::Throttled;

use super::isr::{self, FollowerState};
use super::link::{IsrWriteError, LeaderAndIsr};
use super::{RoleChange, Shared};
use crate::log::{
    AppendError, AppendInfo, AppendOrigin, FollowerAppendError, LogError, PartitionLog,
    TopicPartition, VerificationGuard,
};
use crate::util::clock::now_ms;

/// A request's `current_leader_epoch` that does not match this replica's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EpochMismatch {
    /// The client's epoch is older: it must refresh metadata (FENCED_LEADER_EPOCH).
    #[error("leader epoch is older than this replica's")]
    Fenced,
    /// The client's epoch is newer than this replica knows (UNKNOWN_LEADER_EPOCH).
    #[error("leader epoch is newer than this replica's")]
    Unknown,
}

/// Why a produce to this partition failed before, during or after the append.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// This broker does not lead the partition, or its leadership is fenced
    /// (NOT_LEADER_OR_FOLLOWER).
    #[error("this broker is not the leader of the partition")]
    NotLeader,
    #[error("in-sync replicas {isr} below min.insync.replicas {min_isr}")]
    NotEnoughReplicas { isr: usize, min_isr: i32 },
    /// The records were written but the ISR shrank below min.insync.replicas before they were
    /// acknowledged (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    #[error("in-sync replicas {isr} below min.insync.replicas {min_isr} after the append")]
    NotEnoughReplicasAfterAppend { isr: usize, min_isr: i32 },
    /// The ISR did not replicate the records within the request timeout (REQUEST_TIMED_OUT).
    #[error("records not replicated to the in-sync replicas within the request timeout")]
    Timeout,
    #[error(transparent)]
    Append(#[from] AppendError),
}

/// Why a follower's fetch is refused by the leader (both are NOT_LEADER_OR_FOLLOWER on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FollowerFetchError {
    #[error("this broker is not the leader of the partition")]
    NotLeader,
    #[error("broker {0} is not a replica of the partition")]
    NotAReplica(i32),
}

/// Role, epoch and ISR of the replica; see the module docs for locking.
#[derive(Debug)]
struct ReplicaState {
    /// The leader broker id; -1 when there is none.
    leader: i32,
    leader_epoch: i32,
    isr: Vec<i32>,
    replicas: Vec<i32>,
    controller_epoch: i32,
    state_version: i32,
    min_isr: i32,
    /// Leadership suspended until the next `apply` (metadata store session lost).
    fenced: bool,
    /// No longer hosted (`stop_replica`).
    stopped: bool,
    /// This broker's log end offset when it became leader at `leader_epoch`.
    epoch_start_offset: i64,
    /// The ISR of a write in flight.
    pending_isr: Option<Vec<i32>>,
    /// A write lost a race: no new proposal before the next `apply`.
    isr_conflict: bool,
    /// After a failed write, no new proposal before this time (ms).
    isr_retry_after_ms: i64,
}

impl ReplicaState {
    fn is_leader(&self, me: i32) -> bool {
        self.leader == me && !self.stopped
    }

    /// The ISR the high watermark is computed over: the recorded ISR plus a member being added
    /// (Kafka's maximal ISR).
    fn maximal_isr(&self) -> Vec<i32> {
        let mut isr = self.isr.clone();
        if let Some(pending) = &self.pending_isr {
            for id in pending {
                if !isr.contains(id) {
                    isr.push(*id);
                }
            }
        }
        isr
    }

    fn can_propose_isr(&self, now_ms: i64) -> bool {
        self.pending_isr.is_none()
            && !self.isr_conflict
            && !self.fenced
            && now_ms >= self.isr_retry_after_ms
    }
}

/// A replica's role and replication health (see [`Partition::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// Whether this broker leads the partition (and is not fenced).
    pub is_leader: bool,
    /// Size of the ISR.
    pub isr: usize,
    /// Number of assigned replicas.
    pub replicas: usize,
    /// The topic's min.insync.replicas.
    pub min_isr: i32,
}

/// A partition replica hosted by this broker.
pub struct Partition {
    pub tp: TopicPartition,
    log: Arc<PartitionLog>,
    shared: Arc<Shared>,
    state: RwLock<ReplicaState>,
    followers: Mutex<HashMap<i32, FollowerState>>,
    /// Mirror of the state's leader epoch for lock-free checks.
    leader_epoch: AtomicI32,
    high_watermark: AtomicI64,
    /// Bumped whenever the high watermark, the log end (with followers) or the role changes.
    signal: watch::Sender<u64>,
    /// Whether this replica is named by its topic's throttled-replica lists
    /// ([`Throttled`] bits), set as the topic's configs are applied.
    throttled: AtomicU8,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("tp", &self.tp)
            .field("state", &*self.state.read())
            .field("high_watermark", &self.high_watermark())
            .finish()
    }
}

impl Partition {
    /// A replica without a role yet (call `apply` to take one). Its high watermark starts at
    /// `checkpointed_hw` (the `replication-offset-checkpoint` value) kept within the log, else at
    /// the log start; a sole-replica leader moves it to the log end as soon as it applies its
    /// state.
    pub(super) fn new(
        tp: TopicPartition,
        log: Arc<PartitionLog>,
        shared: Arc<Shared>,
        min_isr: i32,
        checkpointed_hw: Option<i64>,
    ) -> Partition {
        let (signal, _) = watch::channel(0);
        let start = log.log_start_offset();
        let hw = checkpointed_hw
            .unwrap_or(start)
            .clamp(start, log.log_end_offset().max(start));
        log.set_high_watermark(hw);
        Partition {
            tp,
            log,
            shared,
            state: RwLock::new(ReplicaState {
                leader: -1,
                leader_epoch: -1,
                isr: Vec::new(),
                replicas: Vec::new(),
                controller_epoch: -1,
                state_version: -1,
                min_isr,
                fenced: false,
                stopped: false,
                epoch_start_offset: 0,
                pending_isr: None,
                isr_conflict: false,
                isr_retry_after_ms: 0,
            }),
            followers: Mutex::new(HashMap::new()),
            leader_epoch: AtomicI32::new(-1),
            high_watermark: AtomicI64::new(hw),
            signal,
            throttled: AtomicU8::new(0),
        }
    }

    fn me(&self) -> i32 {
        self.shared.broker_id
    }

    /// Applies a partition state read from the metadata store (see `ReplicaManager::apply_state`).
    pub(super) fn apply(&self, new: &LeaderAndIsr, min_isr: i32) -> RoleChange {
        let me = self.me();
        let now = now_ms();
        let mut st = self.state.write();
        st.min_isr = min_isr;
        if new.leader_epoch < st.leader_epoch {
            debug!(partition = %self.tp, epoch = new.leader_epoch, current = st.leader_epoch,
                "stale partition state ignored");
            return RoleChange::Unchanged;
        }
        let same_epoch = new.leader_epoch == st.leader_epoch && new.leader == st.leader;
        st.stopped = false;
        if same_epoch {
            let nothing_new = new.state_version == st.state_version
                && new.isr == st.isr
                && new.replicas == st.replicas
                && new.controller_epoch == st.controller_epoch;
            if new.state_version < st.state_version || (nothing_new && !st.fenced) {
                // An older read, or the state we already have (an ISR write of ours may be in
                // flight: keep waiting for its answer).
                return RoleChange::Unchanged;
            }
            let changed = st.isr != new.isr || st.replicas != new.replicas || st.fenced;
            if st.isr != new.isr {
                info!(partition = %self.tp, isr = ?new.isr, previous = ?st.isr, "ISR updated");
            }
            if st.fenced {
                info!(partition = %self.tp, epoch = st.leader_epoch, "leadership unfenced");
            }
            if st.replicas != new.replicas && st.leader == me {
                // A move changed the replica set within the epoch: follow the new replicas.
                let mut followers = self.followers.lock();
                followers.retain(|id, _| new.replicas.contains(id));
                for id in new.replicas.iter().filter(|id| **id != me) {
                    followers
                        .entry(*id)
                        .or_insert_with(|| FollowerState::reset(new.isr.contains(id), now));
                }
            }
            st.isr = new.isr.clone();
            st.replicas = new.replicas.clone();
            st.controller_epoch = new.controller_epoch;
            st.state_version = new.state_version;
            st.fenced = false;
            st.pending_isr = None;
            st.isr_conflict = false;
            drop(st);
            // The cluster layer re-applies every state on each metadata change: wake waiters only
            // when something they depend on changed.
            if changed {
                self.bump();
                self.maybe_advance_high_watermark();
            }
            return RoleChange::Unchanged;
        }
        st.leader = new.leader;
        st.leader_epoch = new.leader_epoch;
        st.isr = new.isr.clone();
        st.replicas = new.replicas.clone();
        st.controller_epoch = new.controller_epoch;
        st.state_version = new.state_version;
        st.fenced = false;
        st.pending_isr = None;
        st.isr_conflict = false;
        st.isr_retry_after_ms = 0;
        self.leader_epoch.store(new.leader_epoch, Ordering::Release);
        let change = if new.leader == me {
            let leo = self.log.log_end_offset();
            // OffsetForLeaderEpoch answers must reflect the new epoch before it writes anything.
            if let Err(e) = self
                .log
                .maybe_assign_epoch_start_offset(new.leader_epoch, leo)
            {
                warn!(partition = %self.tp, error = %e, "recording the leader epoch start failed");
            }
            st.epoch_start_offset = leo;
            let mut followers = self.followers.lock();
            followers.clear();
            for id in new.replicas.iter().filter(|id| **id != me) {
                followers.insert(*id, FollowerState::reset(new.isr.contains(id), now));
            }
            drop(followers);
            if new.replicas.iter().any(|id| *id != me) {
                info!(partition = %self.tp, epoch = new.leader_epoch, isr = ?new.isr,
                    log_end = leo, high_watermark = self.high_watermark(), "became leader");
            } else {
                // Single-replica partitions (all of standalone mode): one line per partition at
                // start-up would drown the log.
                debug!(partition = %self.tp, epoch = new.leader_epoch, log_end = leo,
                    "became leader (sole replica)");
            }
            RoleChange::BecameLeader
        } else {
            self.followers.lock().clear();
            // A follower's high watermark never exceeds its log end.
            let hw = self.high_watermark().min(self.log.log_end_offset());
            self.high_watermark.store(hw, Ordering::Release);
            info!(partition = %self.tp, epoch = new.leader_epoch, leader = new.leader,
                "became follower");
            RoleChange::BecameFollower
        };
        drop(st);
        self.bump();
        self.maybe_advance_high_watermark();
        change
    }

    /// Stops serving: produce and reads answer NOT_LEADER_OR_FOLLOWER, waiting produces end.
    pub(super) fn stop(&self) {
        self.state.write().stopped = true;
        self.bump();
    }

    /// Suspends leadership (produce answers NOT_LEADER_OR_FOLLOWER) until the next `apply`.
    pub(super) fn fence(&self) {
        let mut st = self.state.write();
        if st.is_leader(self.me()) && !st.fenced {
            st.fenced = true;
            info!(partition = %self.tp, epoch = st.leader_epoch, "leadership fenced");
        }
        drop(st);
        self.bump();
    }

    /// Replaces the storage settings of this replica's log (a topic config change).
    pub(super) fn set_log_config(&self, config: crate::log::LogConfig) {
        self.log.set_config(config);
    }

    /// The config the log applies now.
    pub(super) fn log_config(&self) -> crate::log::LogConfig {
        self.log.config()
    }

    /// Appends a produce payload as leader. `acks == -1` requires the ISR to meet
    /// min.insync.replicas; waiting for the ISR is `wait_for_replication`.
    pub fn append_as_leader(
        &self,
        records: &[u8],
        acks: i16,
        now_ms: i64,
    ) -> Result<AppendInfo, ProduceError> {
        self.append_as_leader_from(records, acks, now_ms, AppendOrigin::Client)
    }

    /// [`Partition::append_as_leader`] for a coordinator's batches (see `AppendOrigin`).
    pub fn append_as_leader_from(
        &self,
        records: &[u8],
        acks: i16,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<AppendInfo, ProduceError> {
        self.leader_write(acks, now_ms, "append", |log, leader_epoch| {
            log.append_from(records, leader_epoch, now_ms, origin)
        })
    }

    /// [`Partition::append_as_leader`] with a verification guard (KIP-890): a transactional
    /// batch that starts a transaction of its producer needs the guard
    /// [`Partition::verification_guard`] handed out for it, else `InvalidTxnState` (see
    /// `PartitionLog::append_from_verified`).
    pub fn append_as_leader_verified(
        &self,
        records: &[u8],
        acks: i16,
        now_ms: i64,
        guard: Option<VerificationGuard>,
    ) -> Result<AppendInfo, ProduceError> {
        self.leader_write(acks, now_ms, "append", |log, leader_epoch| {
            log.append_from_verified(records, leader_epoch, now_ms, AppendOrigin::Client, guard)
        })
    }

    /// Whether a transactional batch of `producer_id` would start a transaction in this
    /// replica's log (see `PartitionLog::transaction_needs_verification`).
    pub fn transaction_needs_verification(&self, producer_id: i64) -> bool {
        self.log.transaction_needs_verification(producer_id)
    }

    /// The producer's verification guard in this replica's log, created if it has none (see
    /// `PartitionLog::verification_guard`).
    pub fn verification_guard(&self, producer_id: i64) -> VerificationGuard {
        self.log.verification_guard(producer_id)
    }

    /// Leader: writes a COMMIT (`commit`) or ABORT marker of the producer's transaction at the
    /// current leader epoch (`PartitionLog::append_marker`: `InvalidProducerEpoch` for an older
    /// producer epoch, `TransactionCoordinatorFenced` for an older coordinator epoch). Checked
    /// like an `acks = -1` append (Kafka writes markers with acks = -1): leader and not fenced,
    /// ISR at min.insync.replicas, a usable log directory; then followers are woken and the high
    /// watermark advanced. Returns the marker's offset; wait with
    /// `wait_for_replication(offset + 1, deadline)`.
    pub fn append_txn_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<i64, ProduceError> {
        self.leader_write(-1, now_ms, "transaction marker", |log, leader_epoch| {
            log.append_marker(
                producer_id,
                producer_epoch,
                commit,
                coordinator_epoch,
                leader_epoch,
                now_ms,
            )
        })
    }

    /// A leader's write to the log: refused unless this replica leads (unfenced, and with the
    /// metadata store unreachable, only while the ISR still fetches), the ISR meets
    /// min.insync.replicas for `acks == -1` and the log directory is usable. `write` runs with
    /// the state lock held (a role change waits for it) and gets the leader epoch; a storage
    /// error fails the directory. Afterwards followers are woken and the high watermark advanced.
    fn leader_write<T>(
        &self,
        acks: i16,
        now_ms: i64,
        what: &str,
        write: impl FnOnce(&PartitionLog, i32) -> Result<T, AppendError>,
    ) -> Result<T, ProduceError> {
        let st = self.state.read();
        if !st.is_leader(self.me()) || st.fenced {
            return Err(ProduceError::NotLeader);
        }
        if let Some(grace_ms) = self.shared.unreachable_grace_ms() {
            let followers = self.followers.lock();
            if !isr::isr_still_fetching(self.me(), &st.isr, &followers, now_ms, grace_ms) {
                debug!(partition = %self.tp, isr = ?st.isr,
                    "metadata store unreachable and an ISR follower stopped fetching: refusing writes");
                return Err(ProduceError::NotLeader);
            }
        }
        if acks == -1 && (st.isr.len() as i64) < i64::from(st.min_isr) {
            return Err(ProduceError::NotEnoughReplicas {
                isr: st.isr.len(),
                min_isr: st.min_isr,
            });
        }
        self.check_dir_usable()?;
        let out =
            write(&self.log, st.leader_epoch).inspect_err(|e| self.on_append_error(what, e))?;
        let has_followers = st.replicas.iter().any(|id| *id != self.me());
        drop(st);
        if has_followers {
            // Wake follower fetches waiting for data.
            self.bump();
        }
        self.maybe_advance_high_watermark();
        Ok(out)
    }

    /// Where replication of a leader append stands: `None` while the high watermark is below
    /// `required_offset` (last offset + 1), else the produce outcome (Kafka's DelayedProduce check).
    pub fn replication_status(&self, required_offset: i64) -> Option<Result<(), ProduceError>> {
        let st = self.state.read();
        if !st.is_leader(self.me()) {
            return Some(Err(ProduceError::NotLeader));
        }
        if self.high_watermark() < required_offset {
            return None;
        }
        if (st.isr.len() as i64) < i64::from(st.min_isr) {
            return Some(Err(ProduceError::NotEnoughReplicasAfterAppend {
                isr: st.isr.len(),
                min_isr: st.min_isr,
            }));
        }
        Some(Ok(()))
    }

    /// Records a follower's fetch (leader side): its position, caught-up time, a possible ISR
    /// expansion and high watermark advance.
    pub fn record_follower_fetch(
        self: &Arc<Self>,
        replica_id: i32,
        fetch_offset: i64,
        log_start_offset: i64,
        now_ms: i64,
    ) -> Result<(), FollowerFetchError> {
        let me = self.me();
        let st = self.state.read();
        if !st.is_leader(me) {
            return Err(FollowerFetchError::NotLeader);
        }
        if replica_id == me || !st.replicas.contains(&replica_id) {
            return Err(FollowerFetchError::NotAReplica(replica_id));
        }
        let leo = self.log.log_end_offset();
        let start_moved = {
            let mut followers = self.followers.lock();
            let follower = followers
                .entry(replica_id)
                .or_insert_with(|| FollowerState::reset(false, now_ms));
            let start_before = follower.log_start_offset;
            follower.record_fetch(fetch_offset, log_start_offset, leo, now_ms);
            follower.log_start_offset != start_before
        };
        let join = !st.isr.contains(&replica_id)
            && st.can_propose_isr(now_ms)
            && isr::may_join_isr(fetch_offset, self.high_watermark(), st.epoch_start_offset);
        drop(st);
        if join {
            let mut st = self.state.write();
            let still = st.is_leader(me)
                && !st.isr.contains(&replica_id)
                && st.can_propose_isr(now_ms)
                && isr::may_join_isr(fetch_offset, self.high_watermark(), st.epoch_start_offset);
            if still {
                let mut isr = st.isr.clone();
                isr.push(replica_id);
                info!(partition = %self.tp, replica = replica_id, isr = ?isr, "expanding ISR");
                self.propose_isr(&mut st, isr);
            }
        }
        if start_moved {
            // The low watermark may have moved: wake waiting DeleteRecords.
            self.bump();
        }
        self.maybe_advance_high_watermark();
        Ok(())
    }

    /// Leader side of the lag check: proposes removing ISR followers that have not caught up within
    /// replica.lag.time.max.ms. Returns whether a change was proposed.
    pub fn maybe_shrink_isr(self: &Arc<Self>, now_ms: i64) -> bool {
        let me = self.me();
        let lag = self.shared.settings.lag_time_max_ms;
        let out = {
            let st = self.state.read();
            if !st.is_leader(me) || !st.can_propose_isr(now_ms) {
                return false;
            }
            let followers = self.followers.lock();
            isr::out_of_sync(
                me,
                self.log.log_end_offset(),
                &st.isr,
                &followers,
                now_ms,
                lag,
            )
        };
        if out.is_empty() {
            return false;
        }
        let mut st = self.state.write();
        if !st.is_leader(me) || !st.can_propose_isr(now_ms) {
            return false;
        }
        let isr: Vec<i32> = st
            .isr
            .iter()
            .copied()
            .filter(|id| !out.contains(id))
            .collect();
        info!(partition = %self.tp, out_of_sync = ?out, isr = ?isr, lag_time_max_ms = lag,
            "shrinking ISR");
        self.propose_isr(&mut st, isr);
        true
    }

    /// Starts a conditional ISR write through the cluster link; the new ISR is used only once the
    /// write succeeded. Without a link (standalone) nothing happens.
    fn propose_isr(self: &Arc<Self>, st: &mut ReplicaState, isr: Vec<i32>) {
        let Some(link) = self.shared.link() else {
            debug!(partition = %self.tp, "no cluster link: ISR change not recorded");
            st.isr_retry_after_ms = now_ms().saturating_add(self.retry_backoff_ms());
            return;
        };
        let runtime = self
            .shared
            .runtime
            .get()
            .cloned()
            .or_else(|| tokio::runtime::Handle::try_current().ok());
        let Some(runtime) = runtime else {
            warn!(partition = %self.tp, "no async runtime: ISR change not recorded");
            return;
        };
        let proposal = LeaderAndIsr {
            leader: st.leader,
            leader_epoch: st.leader_epoch,
            isr: isr.clone(),
            replicas: st.replicas.clone(),
            controller_epoch: st.controller_epoch,
            state_version: st.state_version,
        };
        st.pending_isr = Some(isr);
        let me = self.clone();
        runtime.spawn(async move {
            let result = link.write_isr(&me.tp, &proposal).await;
            me.complete_isr_write(&proposal, result);
        });
    }

    /// Pause before proposing again after a failed ISR write (replica.fetch.backoff.ms).
    fn retry_backoff_ms(&self) -> i64 {
        self.shared.settings.fetch_backoff_ms.max(10) as i64
    }

    fn complete_isr_write(&self, proposal: &LeaderAndIsr, result: Result<i32, IsrWriteError>) {
        let mut st = self.state.write();
        if st.leader_epoch != proposal.leader_epoch
            || st.pending_isr.as_ref() != Some(&proposal.isr)
        {
            debug!(partition = %self.tp, "ISR write result for an older state ignored");
            return;
        }
        st.pending_isr = None;
        match result {
            Ok(version) => {
                info!(partition = %self.tp, isr = ?proposal.isr, previous = ?st.isr,
                    version, "ISR changed");
                let metrics = &self.shared.metrics;
                match proposal.isr.len().cmp(&st.isr.len()) {
                    std::cmp::Ordering::Less => metrics.isr_shrinks.inc(),
                    std::cmp::Ordering::Greater => metrics.isr_expands.inc(),
                    std::cmp::Ordering::Equal => {}
                }
                st.isr = proposal.isr.clone();
                st.state_version = version;
            }
            Err(IsrWriteError::Conflict) => {
                info!(partition = %self.tp, isr = ?proposal.isr,
                    "ISR write lost a race; waiting for the new partition state");
                st.isr_conflict = true;
            }
            Err(IsrWriteError::Unavailable(e)) => {
                warn!(partition = %self.tp, error = %e, "ISR write failed; will retry");
                st.isr_retry_after_ms = now_ms().saturating_add(self.retry_backoff_ms());
            }
        }
        drop(st);
        self.bump();
        self.maybe_advance_high_watermark();
    }

    /// Leader: moves the high watermark to the smallest log end offset over the ISR (never back).
    /// Returns whether it moved.
    pub fn maybe_advance_high_watermark(&self) -> bool {
        let me = self.me();
        let st = self.state.read();
        if !st.is_leader(me) {
            return false;
        }
        let current = self.high_watermark();
        let leo = self.log.log_end_offset();
        let hw = {
            let followers = self.followers.lock();
            isr::high_watermark(me, leo, &st.maximal_isr(), &followers, current)
        };
        drop(st);
        if hw <= current {
            return false;
        }
        let previous = self.high_watermark.fetch_max(hw, Ordering::AcqRel);
        if hw > previous {
            self.log.set_high_watermark(hw);
            self.bump();
            return true;
        }
        false
    }

    /// Follower: appends batches fetched at `epoch` and takes the leader's high watermark (capped
    /// at the own log end). `Ok(None)` when the replica is no longer a follower at `epoch`.
    pub(super) fn append_as_follower(
        &self,
        epoch: i32,
        records: &[u8],
        leader_high_watermark: i64,
        now_ms: i64,
    ) -> Result<Option<AppendInfo>, FollowerAppendError> {
        let st = self.state.read();
        if !self.is_following_at(&st, epoch) {
            return Ok(None);
        }
        let info = if records.is_empty() {
            None
        } else {
            self.check_dir_usable()?;
            let appended = match self.log.append_as_follower(records, now_ms) {
                Err(FollowerAppendError::OffsetMismatch {
                    expected,
                    got,
                    last,
                }) if expected == self.log.log_start_offset() && last >= expected => {
                    self.restart_at_first_batch(records, got, now_ms)
                }
                other => other,
            };
            if let Err(FollowerAppendError::Append(e)) = &appended {
                self.on_append_error("replica append", e);
            }
            Some(appended?)
        };
        self.set_follower_high_watermark(leader_high_watermark);
        drop(st);
        Ok(info.or(Some(AppendInfo {
            first_offset: -1,
            last_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: self.log.log_start_offset(),
            duplicate: false,
            records_count: 0,
            valid_bytes: 0,
        })))
    }

    /// Follower whose log is empty at a log start inside the leader's first batch (DeleteRecords
    /// can put the leader's log start inside a batch, and a fetch from it starts at the batch):
    /// the log restarts at the batch's base offset and takes the whole batch, as Kafka's
    /// `appendRecordsToFollowerOrFutureReplica`; the log start then follows the leader's again.
    fn restart_at_first_batch(
        &self,
        records: &[u8],
        first_offset: i64,
        now_ms: i64,
    ) -> Result<AppendInfo, FollowerAppendError> {
        info!(partition = %self.tp, log_start = self.log.log_start_offset(), first_offset,
            "first fetched batch starts below the empty log's start; restarting the log there");
        self.log
            .truncate_fully_and_start_at(first_offset)
            .map_err(|e| match e {
                LogError::Io(io) => FollowerAppendError::from(io),
                other => FollowerAppendError::from(std::io::Error::other(other.to_string())),
            })?;
        self.log.append_as_follower(records, now_ms)
    }

    /// Follower: truncates the log to `offset` (divergence with the leader at `epoch`). Returns
    /// `false` when the replica is no longer a follower at `epoch`.
    pub(super) fn truncate_as_follower(&self, epoch: i32, offset: i64) -> Result<bool, LogError> {
        let st = self.state.read();
        if !self.is_following_at(&st, epoch) {
            return Ok(false);
        }
        self.log
            .truncate_to(offset)
            .inspect_err(|e| self.on_log_error("truncation", e))?;
        self.set_follower_high_watermark(self.high_watermark());
        Ok(true)
    }

    /// After the log directory failed nothing more is written (KAFKA_STORAGE_ERROR).
    fn check_dir_usable(&self) -> Result<(), AppendError> {
        if self.shared.dir_failure.is_failed() {
            return Err(AppendError::Storage(std::io::Error::other(
                "the log directory has failed",
            )));
        }
        Ok(())
    }

    fn on_append_error(&self, what: &str, e: &AppendError) {
        if let AppendError::Storage(io) = e {
            self.shared
                .dir_failure
                .report(&format!("{what} to {}", self.tp), io);
        }
    }

    fn on_log_error(&self, what: &str, e: &LogError) {
        if let LogError::Io(io) = e {
            self.shared
                .dir_failure
                .report(&format!("{what} of {}", self.tp), io);
        }
    }

    /// Follower: restarts the log empty at `offset` (fetch offset below the leader's log start).
    pub(super) fn restart_as_follower(&self, epoch: i32, offset: i64) -> Result<bool, LogError> {
        let st = self.state.read();
        if !self.is_following_at(&st, epoch) {
            return Ok(false);
        }
        self.log
            .truncate_fully_and_start_at(offset)
            .inspect_err(|e| self.on_log_error("restart", e))?;
        self.high_watermark.store(offset, Ordering::Release);
        self.log.set_high_watermark(offset);
        self.bump();
        Ok(true)
    }

    fn is_following_at(&self, st: &ReplicaState, epoch: i32) -> bool {
        !st.stopped && st.leader != self.me() && st.leader_epoch == epoch
    }

    /// Follower high watermark: the leader's, capped at the own log end (may move back after a
    /// truncation).
    fn set_follower_high_watermark(&self, leader_hw: i64) {
        let hw = leader_hw.min(self.log.log_end_offset()).max(0);
        let previous = self.high_watermark.swap(hw, Ordering::AcqRel);
        if previous != hw {
            self.log.set_high_watermark(hw);
            self.bump();
        }
    }

    fn bump(&self) {
        self.signal.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Checks a request's `current_leader_epoch`; -1 (not given) always passes.
    pub fn check_leader_epoch(&self, current: i32) -> Result<(), EpochMismatch> {
        let epoch = self.leader_epoch();
        match current {
            c if c < 0 || c == epoch => Ok(()),
            c if c < epoch => Err(EpochMismatch::Fenced),
            _ => Err(EpochMismatch::Unknown),
        }
    }

    /// The leader epoch this replica is at (-1 before its first state).
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// Whether this broker currently leads the partition (fenced leaders included: they still
    /// serve reads).
    pub fn is_leader(&self) -> bool {
        self.state.read().is_leader(self.me())
    }

    /// Whether this broker follows the partition (a leader other than this broker, or none).
    pub fn is_follower(&self) -> bool {
        let st = self.state.read();
        !st.stopped && st.leader_epoch >= 0 && st.leader != self.me()
    }

    /// The leader broker id (-1 when none is known).
    pub fn leader(&self) -> i32 {
        self.state.read().leader
    }

    /// The recorded ISR.
    pub fn isr(&self) -> Vec<i32> {
        self.state.read().isr.clone()
    }

    /// The assigned replicas.
    pub fn replicas(&self) -> Vec<i32> {
        self.state.read().replicas.clone()
    }

    /// Role and replication health at one instant, for metrics and the console.
    pub fn status(&self) -> ReplicaStatus {
        let st = self.state.read();
        ReplicaStatus {
            is_leader: st.is_leader(self.me()),
            isr: st.isr.len(),
            replicas: st.replicas.len(),
            min_isr: st.min_isr,
        }
    }

    /// Bytes of this replica's log on disk (every segment).
    pub fn log_size_bytes(&self) -> u64 {
        self.log.size_bytes()
    }

    /// The producers with state in this replica's log (DescribeProducers: leader or follower).
    pub fn active_producers(&self) -> Vec<crate::log::ActiveProducer> {
        self.log.active_producers()
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// The leader's view of a follower (tests, diagnostics).
    pub fn follower_state(&self, replica_id: i32) -> Option<FollowerState> {
        self.followers.lock().get(&replica_id).copied()
    }

    /// A receiver that changes whenever the high watermark advances, the log end advances on a
    /// leader with followers, or the role changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.signal.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReplicationSettings;
    use crate::log::LogManager;
    use crate::replica::link::LeaderAndIsr;

    pub(crate) fn batch(n: usize) -> Vec<u8> {
        crate::log::batch::test_util::batch(n, 1_000)
    }

    fn partition(dir: &std::path::Path, me: i32) -> Arc<Partition> {
        let logs = LogManager::open(dir).unwrap();
        let tp = TopicPartition::new("t", 0);
        let log = logs.open_partition(&tp, Default::default()).unwrap();
        let shared = Arc::new(Shared::new(me, ReplicationSettings::default(), logs));
        Arc::new(Partition::new(tp, log, shared, 2, None))
    }

    fn state(leader: i32, epoch: i32, isr: &[i32], version: i32) -> LeaderAndIsr {
        LeaderAndIsr {
            leader,
            leader_epoch: epoch,
            isr: isr.to_vec(),
            replicas: vec![1, 2, 3],
            controller_epoch: 1,
            state_version: version,
        }
    }

    #[test]
    fn hw_follows_the_slowest_isr_member() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition(dir.path(), 1);
        assert!(matches!(
            p.apply(&state(1, 0, &[1, 2], 0), 2),
            RoleChange::BecameLeader
        ));
        p.append_as_leader(&batch(3), 1, 0).unwrap();
        assert_eq!(p.log.log_end_offset(), 3);
        assert_eq!(p.high_watermark(), 0, "follower 2 has nothing yet");
        p.record_follower_fetch(2, 2, 0, 10).unwrap();
        assert_eq!(p.high_watermark(), 2);
        // Replica 3 is not in the ISR: it does not hold the HW back.
        p.record_follower_fetch(3, 0, 0, 10).unwrap();
        p.record_follower_fetch(2, 3, 0, 20).unwrap();
        assert_eq!(p.high_watermark(), 3);
        assert_eq!(p.replication_status(3).map(|r| r.is_ok()), Some(true));
    }

    #[test]
    fn non_replicas_and_followers_refuse_follower_fetches() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition(dir.path(), 1);
        p.apply(&state(1, 0, &[1, 2], 0), 1);
        assert_eq!(
            p.record_follower_fetch(9, 0, 0, 0),
            Err(FollowerFetchError::NotAReplica(9))
        );
        p.apply(&state(2, 1, &[1, 2], 1), 1);
        assert_eq!(
            p.record_follower_fetch(3, 0, 0, 0),
            Err(FollowerFetchError::NotLeader)
        );
        assert!(matches!(
            p.append_as_leader(&batch(1), 1, 0),
            Err(ProduceError::NotLeader)
        ));
    }

    #[test]
    fn stale_and_refreshing_states() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition(dir.path(), 1);
        p.apply(&state(1, 5, &[1, 2], 3), 1);
        assert!(matches!(
            p.apply(&state(2, 4, &[2], 9), 1),
            RoleChange::Unchanged
        ));
        assert!(p.is_leader());
        assert!(matches!(
            p.apply(&state(1, 5, &[1], 4), 1),
            RoleChange::Unchanged
        ));
        assert_eq!(p.isr(), vec![1]);
        // An older read of the same epoch does not undo a newer ISR.
        p.apply(&state(1, 5, &[1, 2], 2), 1);
        assert_eq!(p.isr(), vec![1]);
        assert_eq!(p.log.epoch_entries(), vec![(5, 0)]);
    }

    #[test]
    fn min_isr_is_checked_before_and_after_append() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition(dir.path(), 1);
        p.apply(&state(1, 0, &[1], 0), 2);
        assert!(matches!(
            p.append_as_leader(&batch(1), -1, 0),
            Err(ProduceError::NotEnoughReplicas { isr: 1, min_isr: 2 })
        ));
        let info = p.append_as_leader(&batch(1), 1, 0).unwrap();
        assert!(matches!(
            p.replication_status(info.last_offset + 1),
            Some(Err(ProduceError::NotEnoughReplicasAfterAppend { .. }))
        ));
        p.fence();
        assert!(matches!(
            p.append_as_leader(&batch(1), 1, 0),
            Err(ProduceError::NotLeader)
        ));
        p.apply(&state(1, 0, &[1], 1), 1);
        assert!(p.append_as_leader(&batch(1), -1, 0).is_ok());
    }

    #[test]
    fn follower_appends_only_at_its_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let leader_dir = tempfile::tempdir().unwrap();
        let leader = partition(leader_dir.path(), 2);
        leader.apply(&state(2, 3, &[2], 0), 1);
        leader.append_as_leader(&batch(4), 1, 0).unwrap();
        let data = leader.log.read(0, 1 << 20, true, None).unwrap().records;
        let p = partition(dir.path(), 1);
        p.apply(&state(2, 3, &[2, 1], 0), 1);
        assert!(p.append_as_follower(2, &data, 4, 0).unwrap().is_none());
        let info = p.append_as_follower(3, &data, 2, 0).unwrap().unwrap();
        assert_eq!(info.last_offset, 3);
        assert_eq!(p.high_watermark(), 2);
        assert_eq!(p.log.epoch_entries(), vec![(3, 0)]);
        assert!(p.truncate_as_follower(3, 1).unwrap());
        assert_eq!(p.log.log_end_offset(), 0, "cut at the start of the batch");
        assert_eq!(p.high_watermark(), 0);
    }

    #[test]
    fn transaction_markers_are_written_by_the_leader_and_pass_the_high_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition(dir.path(), 1);
        p.apply(
            &LeaderAndIsr {
                replicas: vec![1],
                ..state(1, 2, &[1], 0)
            },
            1,
        );
        let txn = crate::log::batch::test_util::TestBatch::new(2, 1_000)
            .transactional(7, 0, 0)
            .build();
        // Starting a transaction needs the producer's guard.
        assert!(p.transaction_needs_verification(7));
        assert!(matches!(
            p.append_as_leader_verified(&txn, -1, 0, None),
            Err(ProduceError::Append(AppendError::InvalidTxnState(_)))
        ));
        let guard = p.verification_guard(7);
        assert_eq!(p.verification_guard(7), guard);
        let info = p
            .append_as_leader_verified(&txn, -1, 0, Some(guard))
            .unwrap();
        assert_eq!(info.last_offset, 1);
        assert!(!p.transaction_needs_verification(7));
        assert_eq!(p.high_watermark(), 2);
        // The marker goes at the log end, at the leader epoch; the sole replica's high watermark
        // passes it at once.
        let at = p.append_txn_marker(7, 0, false, 3, 0).unwrap();
        assert_eq!(at, 2);
        assert_eq!(p.high_watermark(), 3);
        assert!(matches!(p.replication_status(at + 1), Some(Ok(()))));
        assert_eq!(p.log.first_unstable_offset(), None);
        assert!(p.transaction_needs_verification(7));
        assert_eq!(p.log.epoch_entries(), vec![(2, 0)]);
        let m = p.log.read(at, 1 << 20, true, None).unwrap().records;
        let h = crate::log::BatchHeader::parse(&m).unwrap();
        assert_eq!((h.base_offset, h.partition_leader_epoch), (2, 2));
        assert!(h.is_control());
        // The guard used before the abort cannot open a transaction after it (the same batch
        // would be a duplicate: the next one).
        let next = crate::log::batch::test_util::TestBatch::new(1, 1_000)
            .transactional(7, 0, 2)
            .build();
        assert!(matches!(
            p.append_as_leader_verified(&next, -1, 0, Some(guard)),
            Err(ProduceError::Append(AppendError::InvalidTxnState(_)))
        ));
        // The producer's state is checked: older producer or coordinator epochs are refused.
        assert!(matches!(
            p.append_txn_marker(7, -1, true, 3, 0),
            Err(ProduceError::Append(AppendError::InvalidProducerEpoch(_)))
        ));
        assert!(matches!(
            p.append_txn_marker(7, 0, true, 2, 0),
            Err(ProduceError::Append(
                AppendError::TransactionCoordinatorFenced(_)
            ))
        ));
        assert_eq!(p.log.log_end_offset(), 3);
        // A fenced leader and a follower refuse.
        p.fence();
        assert!(matches!(
            p.append_txn_marker(7, 0, true, 3, 0),
            Err(ProduceError::NotLeader)
        ));
        p.apply(
            &LeaderAndIsr {
                replicas: vec![1, 2],
                ..state(2, 3, &[2, 1], 1)
            },
            1,
        );
        assert!(p.is_follower());
        assert!(matches!(
            p.append_txn_marker(7, 0, true, 3, 0),
            Err(ProduceError::NotLeader)
        ));
        assert_eq!(p.log.log_end_offset(), 3, "nothing written when refused");
    }

    #[test]
    fn transaction_markers_need_the_min_isr_and_wait_for_followers() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition(dir.path(), 1);
        p.apply(&state(1, 0, &[1], 0), 2);
        assert!(matches!(
            p.append_txn_marker(7, 0, true, 0, 0),
            Err(ProduceError::NotEnoughReplicas { isr: 1, min_isr: 2 })
        ));
        p.apply(&state(1, 0, &[1, 2], 1), 2);
        let at = p.append_txn_marker(7, 0, true, 0, 0).unwrap();
        assert_eq!(at, 0);
        assert_eq!(p.high_watermark(), 0, "follower 2 has not fetched it");
        assert!(p.replication_status(at + 1).is_none());
        p.record_follower_fetch(2, at + 1, 0, 10).unwrap();
        assert_eq!(p.high_watermark(), 1);
        assert!(matches!(p.replication_status(at + 1), Some(Ok(()))));
    }

    /// A link whose ISR writes answer from a script and are counted.
    struct ScriptedLink {
        answers: Mutex<Vec<Result<i32, IsrWriteError>>>,
        calls: Mutex<Vec<Vec<i32>>>,
    }

    #[async_trait::async_trait]
    impl crate::replica::ClusterLink for ScriptedLink {
        async fn write_isr(
            &self,
            _tp: &TopicPartition,
            state: &LeaderAndIsr,
        ) -> Result<i32, IsrWriteError> {
            self.calls.lock().push(state.isr.clone());
            self.answers.lock().remove(0)
        }
        fn broker_endpoint(&self, _broker_id: i32) -> Option<(String, u16)> {
            None
        }
    }

    fn linked(
        dir: &std::path::Path,
        answers: Vec<Result<i32, IsrWriteError>>,
    ) -> (Arc<Partition>, Arc<ScriptedLink>) {
        let logs = LogManager::open(dir).unwrap();
        let tp = TopicPartition::new("t", 0);
        let log = logs.open_partition(&tp, Default::default()).unwrap();
        let settings = ReplicationSettings {
            fetch_backoff_ms: 300,
            lag_time_max_ms: 50,
            ..Default::default()
        };
        let shared = Arc::new(Shared::new(1, settings, logs));
        let link = Arc::new(ScriptedLink {
            answers: Mutex::new(answers),
            calls: Mutex::new(Vec::new()),
        });
        shared.set_link(link.clone());
        (Arc::new(Partition::new(tp, log, shared, 1, None)), link)
    }

    async fn settle() {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }

    #[tokio::test]
    async fn isr_write_conflict_waits_for_the_next_state() {
        let dir = tempfile::tempdir().unwrap();
        let (p, link) = linked(dir.path(), vec![Err(IsrWriteError::Conflict), Ok(5)]);
        p.apply(&state(1, 0, &[1], 0), 1);
        p.record_follower_fetch(2, 0, 0, now_ms()).unwrap();
        settle().await;
        assert_eq!(p.isr(), vec![1], "not used before a successful write");
        p.record_follower_fetch(2, 0, 0, now_ms()).unwrap();
        settle().await;
        assert_eq!(link.calls.lock().len(), 1, "no retry after a conflict");
        p.apply(&state(1, 0, &[1], 1), 1);
        p.record_follower_fetch(2, 0, 0, now_ms()).unwrap();
        settle().await;
        assert_eq!(p.isr(), vec![1, 2]);
        assert_eq!(p.state.read().state_version, 5);
        assert_eq!(*link.calls.lock(), vec![vec![1, 2], vec![1, 2]]);
    }

    #[tokio::test]
    async fn isr_write_unavailable_is_retried_after_a_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let (p, link) = linked(
            dir.path(),
            vec![Err(IsrWriteError::Unavailable("down".into())), Ok(1)],
        );
        p.apply(&state(1, 0, &[1, 2], 0), 1);
        // Follower 2 never fetches: after the lag time (50 ms) the leader proposes to drop it.
        assert!(!p.maybe_shrink_isr(now_ms()), "within the lag time");
        tokio::time::sleep(std::time::Duration::from_millis(70)).await;
        assert!(p.maybe_shrink_isr(now_ms()));
        settle().await;
        assert_eq!(p.isr(), vec![1, 2]);
        assert_eq!(
            p.shared.metrics.isr_shrinks.get(),
            0,
            "a failed write is no shrink"
        );
        assert!(
            !p.maybe_shrink_isr(now_ms()),
            "backing off after the failure"
        );
        tokio::time::sleep(std::time::Duration::from_millis(320)).await;
        assert!(p.maybe_shrink_isr(now_ms()));
        settle().await;
        assert_eq!(p.isr(), vec![1]);
        assert_eq!(link.calls.lock().len(), 2);
        assert_eq!(p.shared.metrics.isr_shrinks.get(), 1);
        assert_eq!(p.shared.metrics.isr_expands.get(), 0);
    }

    #[tokio::test]
    async fn re_reading_the_same_state_keeps_an_isr_write_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let (p, _link) = linked(dir.path(), vec![Ok(1)]);
        let s0 = state(1, 0, &[1], 0);
        p.apply(&s0, 1);
        p.record_follower_fetch(2, 0, 0, now_ms()).unwrap();
        // The write task has not run yet (single-threaded runtime): the watcher re-delivers the
        // state it already had.
        assert!(matches!(p.apply(&s0, 1), RoleChange::Unchanged));
        settle().await;
        assert_eq!(p.isr(), vec![1, 2]);
        assert_eq!(p.state.read().state_version, 1);
        assert_eq!(
            p.shared.metrics.isr_expands.get(),
            1,
            "the expansion is counted"
        );
    }
}
