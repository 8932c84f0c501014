//! The decisions and transitions of [`TransactionMetadata`], following Kafka's
//! `TransactionCoordinator` (request checks) and `TransactionMetadata` (prepare and complete a
//! transition) for transactions v1.

use std::collections::BTreeSet;

use super::{
    illegal, is_epoch_exhausted, AddPartitionsAction, EndTxnAction, InitProducerIdAction,
    ProducerIdAndEpoch, TransactionMetadata, TransactionState, TxnError, TxnResult, TxnTransit,
    CONSUMER_OFFSETS_TOPIC, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, S,
};
use crate::log::TopicPartition;
use crate::txn::records::TxnLogValue;

/// The fields of a transit that vary; the rest come from the metadata.
struct Target {
    state: TransactionState,
    producer_id: i64,
    epoch: i16,
    last_epoch: i16,
    timeout_ms: i32,
    partitions: BTreeSet<TopicPartition>,
    start: i64,
    update: i64,
}

impl TransactionMetadata {
    /// A new transactional id with a freshly allocated producer id and no epoch yet: the
    /// following InitProducerId gives it epoch 0.
    pub fn new(
        transactional_id: &str,
        producer_id: i64,
        txn_timeout_ms: i32,
        now_ms: i64,
    ) -> TransactionMetadata {
        TransactionMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            previous_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            txn_timeout_ms,
            state: S::Empty,
            partitions: BTreeSet::new(),
            txn_start_timestamp: -1,
            txn_last_update_timestamp: now_ms,
            pending_state: None,
            has_failed_epoch_fence: false,
            client_transaction_version: 0,
        }
    }

    /// The metadata a `__transaction_state` value describes (when loading the partition).
    /// The last epoch is not persisted and reads as -1; an Empty value's partitions are ignored.
    pub fn from_log(
        transactional_id: &str,
        value: &TxnLogValue,
    ) -> Result<TransactionMetadata, TxnError> {
        let state = TransactionState::from_id(value.transaction_status).ok_or_else(|| {
            illegal(format!(
                "unknown transaction status {}",
                value.transaction_status
            ))
        })?;
        let mut partitions = BTreeSet::new();
        if state != S::Empty {
            for p in value.transaction_partitions.iter().flatten() {
                for id in &p.partition_ids {
                    partitions.insert(TopicPartition::new(&p.topic, *id));
                }
            }
        }
        Ok(TransactionMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id: value.producer_id,
            previous_producer_id: value.previous_producer_id,
            next_producer_id: value.next_producer_id,
            producer_epoch: value.producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            txn_timeout_ms: value.transaction_timeout_ms,
            state,
            partitions,
            txn_start_timestamp: value.transaction_start_timestamp_ms,
            txn_last_update_timestamp: value.transaction_last_update_timestamp_ms,
            pending_state: None,
            has_failed_epoch_fence: false,
            client_transaction_version: value.client_transaction_version,
        })
    }

    pub fn pending_transition_in_progress(&self) -> bool {
        self.pending_state.is_some()
    }

    pub fn is_producer_epoch_exhausted(&self) -> bool {
        is_epoch_exhausted(self.producer_epoch)
    }

    /// The markers a loaded Prepare* state still owes: the loader calls
    /// [`Self::prepare_complete`] with this result and sends them again.
    pub fn pending_markers(&self) -> Option<TxnResult> {
        match self.state {
            S::PrepareCommit => Some(TxnResult::Commit),
            S::PrepareAbort => Some(TxnResult::Abort),
            _ => None,
        }
    }

    /// InitProducerId for an existing (or just created) transactional id. The caller has
    /// checked the id is not empty and the timeout ([`super::validate_transaction_timeout`]).
    /// `expected` is the KIP-360 producer id and epoch, if the request carried them;
    /// `allocate_producer_id` is called only when a new producer id is needed.
    pub fn prepare_init_producer_id(
        &mut self,
        txn_timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
        now_ms: i64,
        allocate_producer_id: &mut dyn FnMut() -> Result<i64, TxnError>,
    ) -> Result<InitProducerIdAction, TxnError> {
        if self.pending_transition_in_progress() {
            return Err(TxnError::ConcurrentTransactions);
        }
        if expected.is_some_and(|e| !self.is_valid_expected_producer_id(e)) {
            return Err(TxnError::ProducerFenced);
        }
        match self.state {
            S::PrepareAbort | S::PrepareCommit => Err(TxnError::ConcurrentTransactions),
            S::Empty | S::CompleteAbort | S::CompleteCommit => self
                .prepare_new_epoch(txn_timeout_ms, expected, now_ms, allocate_producer_id)
                .map(InitProducerIdAction::Persist),
            S::Ongoing => match self.fence_and_abort(now_ms)? {
                EndTxnAction::Persist(transit) => Ok(InitProducerIdAction::AbortOngoing(transit)),
                EndTxnAction::AlreadyCompleted => Err(illegal("fencing found no transaction")),
            },
            S::Dead | S::PrepareEpochFence => Err(self.never_here()),
        }
    }

    /// KIP-360: a producer naming its old id and epoch is fenced unless the metadata was just
    /// created, the id is the current one (the epoch is checked when bumping), or it is the
    /// previous id with an exhausted epoch (a retry after a producer id rotation).
    fn is_valid_expected_producer_id(&self, expected: ProducerIdAndEpoch) -> bool {
        self.producer_epoch == NO_PRODUCER_EPOCH
            || expected.producer_id == self.producer_id
            || (expected.producer_id == self.previous_producer_id
                && is_epoch_exhausted(expected.epoch))
    }

    fn prepare_new_epoch(
        &mut self,
        txn_timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
        now_ms: i64,
        allocate_producer_id: &mut dyn FnMut() -> Result<i64, TxnError>,
    ) -> Result<TxnTransit, TxnError> {
        let rotate = self.is_producer_epoch_exhausted()
            && expected.is_none_or(|e| e.epoch == self.producer_epoch);
        if rotate {
            let producer_id = allocate_producer_id()?;
            self.prepare_producer_id_rotation(
                producer_id,
                txn_timeout_ms,
                now_ms,
                expected.is_some(),
            )
        } else {
            self.prepare_increment_producer_epoch(txn_timeout_ms, expected.map(|e| e.epoch), now_ms)
        }
    }

    fn prepare_increment_producer_epoch(
        &mut self,
        txn_timeout_ms: i32,
        expected_epoch: Option<i16>,
        now_ms: i64,
    ) -> Result<TxnTransit, TxnError> {
        if self.is_producer_epoch_exhausted() {
            return Err(illegal(format!(
                "no producer epochs left for producer id {}",
                self.producer_id
            )));
        }
        let bumped = self.producer_epoch + 1;
        let (epoch, last_epoch) = match expected_epoch {
            None => (bumped, NO_PRODUCER_EPOCH),
            Some(e) if self.producer_epoch == NO_PRODUCER_EPOCH || e == self.producer_epoch => {
                (bumped, self.producer_epoch)
            }
            // A retry of a bump whose answer was lost: the same epoch again.
            Some(e) if e == self.last_producer_epoch => {
                (self.producer_epoch, self.last_producer_epoch)
            }
            Some(_) => return Err(TxnError::ProducerFenced),
        };
        self.transition_to(Target {
            state: S::Empty,
            producer_id: self.producer_id,
            epoch,
            last_epoch,
            timeout_ms: txn_timeout_ms,
            partitions: BTreeSet::new(),
            start: -1,
            update: now_ms,
        })
    }

    fn prepare_producer_id_rotation(
        &mut self,
        new_producer_id: i64,
        txn_timeout_ms: i32,
        now_ms: i64,
        record_last_epoch: bool,
    ) -> Result<TxnTransit, TxnError> {
        if matches!(self.state, S::Ongoing | S::PrepareAbort | S::PrepareCommit) {
            return Err(illegal(
                "cannot rotate producer ids while a transaction is pending",
            ));
        }
        self.transition_to(Target {
            state: S::Empty,
            producer_id: new_producer_id,
            epoch: 0,
            last_epoch: if record_last_epoch {
                self.producer_epoch
            } else {
                NO_PRODUCER_EPOCH
            },
            timeout_ms: txn_timeout_ms,
            partitions: BTreeSet::new(),
            start: -1,
            update: now_ms,
        })
    }

    /// Fences the open transaction: bumps the epoch (unless a previous fence's write failed)
    /// and prepares its abort as the coordinator's own EndTxn.
    fn fence_and_abort(&mut self, now_ms: i64) -> Result<EndTxnAction, TxnError> {
        if self.producer_epoch == i16::MAX {
            return Err(illegal("cannot fence a producer at epoch i16::MAX"));
        }
        let bumped = if self.has_failed_epoch_fence {
            self.producer_epoch
        } else {
            self.producer_epoch + 1
        };
        self.check_transition(S::PrepareEpochFence, self.producer_id, bumped)?;
        self.pending_state = Some(S::PrepareEpochFence);
        let producer_id = self.producer_id;
        let result = self.prepare_end_txn(producer_id, bumped, TxnResult::Abort, false, now_ms);
        if result.is_err() && self.pending_state == Some(S::PrepareEpochFence) {
            self.pending_state = None;
        }
        result
    }

    /// AddPartitionsToTxn: Empty/Complete* open a transaction, Ongoing adds to it.
    pub fn prepare_add_partitions(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
        now_ms: i64,
    ) -> Result<AddPartitionsAction, TxnError> {
        if self.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if self.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if self.pending_transition_in_progress() || self.state.is_prepare() {
            return Err(TxnError::ConcurrentTransactions);
        }
        if self.state == S::Ongoing && partitions.is_subset(&self.partitions) {
            return Ok(AddPartitionsAction::AlreadyInTransaction);
        }
        let start = match self.state {
            S::Empty | S::CompleteAbort | S::CompleteCommit => now_ms,
            _ => self.txn_start_timestamp,
        };
        let transit = self.transition_to(Target {
            state: S::Ongoing,
            producer_id: self.producer_id,
            epoch: self.producer_epoch,
            last_epoch: self.last_producer_epoch,
            timeout_ms: self.txn_timeout_ms,
            partitions: self.partitions.union(partitions).cloned().collect(),
            start,
            update: now_ms,
        })?;
        Ok(AddPartitionsAction::Persist(transit))
    }

    /// AddOffsetsToTxn: adds the `__consumer_offsets` partition of `group_id` (among
    /// `offsets_partitions`, `offsets.topic.num.partitions`).
    pub fn prepare_add_offsets(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
        offsets_partitions: i32,
        now_ms: i64,
    ) -> Result<AddPartitionsAction, TxnError> {
        let partition = crate::txn::partitioner::partition_for(group_id, offsets_partitions);
        let partitions = BTreeSet::from([TopicPartition::new(CONSUMER_OFFSETS_TOPIC, partition)]);
        self.prepare_add_partitions(producer_id, producer_epoch, &partitions, now_ms)
    }

    /// AddPartitionsToTxn's verify-only form (KIP-890 part 1, asked by a partition leader
    /// before a transactional append): each partition gets `None` when it is in the ongoing
    /// transaction, else TRANSACTION_ABORTABLE (the produce path answers old clients
    /// INVALID_TXN_STATE, and PRODUCER_FENCED as INVALID_PRODUCER_EPOCH, as Kafka does).
    /// The pending state is not checked: the append itself is validated again.
    pub fn verify_partitions(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
    ) -> Result<Vec<(TopicPartition, Option<TxnError>)>, TxnError> {
        if self.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if self.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if self.state.is_prepare() {
            return Err(TxnError::ConcurrentTransactions);
        }
        Ok(partitions
            .iter()
            .map(|tp| {
                let missing = !self.partitions.contains(tp);
                (
                    tp.clone(),
                    missing.then_some(TxnError::TransactionAbortable),
                )
            })
            .collect())
    }

    /// EndTxn (`from_client`), or the coordinator's own abort of a fenced or timed-out
    /// transaction (not from the client: a higher epoch is accepted).
    pub fn prepare_end_txn(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        result: TxnResult,
        from_client: bool,
        now_ms: i64,
    ) -> Result<EndTxnAction, TxnError> {
        if self.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if (from_client && producer_epoch != self.producer_epoch)
            || producer_epoch < self.producer_epoch
        {
            return Err(TxnError::ProducerFenced);
        }
        let fencing = self.pending_state == Some(S::PrepareEpochFence);
        if self.pending_transition_in_progress() && !fencing {
            return Err(TxnError::ConcurrentTransactions);
        }
        let wanted = match result {
            TxnResult::Commit => (S::PrepareCommit, S::CompleteCommit),
            TxnResult::Abort => (S::PrepareAbort, S::CompleteAbort),
        };
        match self.state {
            S::Ongoing => self.prepare_abort_or_commit(wanted.0, producer_epoch, fencing, now_ms),
            s if s == wanted.1 => Ok(EndTxnAction::AlreadyCompleted),
            s if s == wanted.0 => Err(TxnError::ConcurrentTransactions),
            S::Empty
            | S::PrepareCommit
            | S::PrepareAbort
            | S::CompleteCommit
            | S::CompleteAbort => Err(TxnError::InvalidTxnState),
            S::Dead | S::PrepareEpochFence => Err(self.never_here()),
        }
    }

    fn prepare_abort_or_commit(
        &mut self,
        next: TransactionState,
        producer_epoch: i16,
        fencing: bool,
        now_ms: i64,
    ) -> Result<EndTxnAction, TxnError> {
        let epoch_fence = fencing && next == S::PrepareAbort;
        if epoch_fence {
            // The fence takes effect now: the old producer's requests are refused from here on.
            self.pending_state = None;
            self.producer_epoch = producer_epoch;
            self.last_producer_epoch = NO_PRODUCER_EPOCH;
        }
        let mut transit = self.transition_to(Target {
            state: next,
            producer_id: self.producer_id,
            epoch: self.producer_epoch,
            last_epoch: self.last_producer_epoch,
            timeout_ms: self.txn_timeout_ms,
            partitions: self.partitions.clone(),
            start: self.txn_start_timestamp,
            update: now_ms,
        })?;
        transit.epoch_fence = epoch_fence;
        Ok(EndTxnAction::Persist(transit))
    }

    /// After a PrepareCommit/PrepareAbort was written (or loaded): checks the transaction is
    /// still the one that ended and prepares its Complete* transit, pending while the markers
    /// are sent. Write it once every partition has its marker ([`Self::marker_written`]).
    pub fn prepare_complete(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        result: TxnResult,
        now_ms: i64,
    ) -> Result<TxnTransit, TxnError> {
        if self.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if self.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if self.pending_transition_in_progress() {
            return Err(TxnError::ConcurrentTransactions);
        }
        let next = match (self.state, result) {
            (S::PrepareCommit, TxnResult::Commit) => S::CompleteCommit,
            (S::PrepareAbort, TxnResult::Abort) => S::CompleteAbort,
            (S::Dead | S::PrepareEpochFence, _) => return Err(self.never_here()),
            _ => return Err(TxnError::InvalidTxnState),
        };
        self.has_failed_epoch_fence = false;
        self.transition_to(Target {
            state: next,
            producer_id: self.producer_id,
            epoch: self.producer_epoch,
            last_epoch: self.last_producer_epoch,
            timeout_ms: self.txn_timeout_ms,
            partitions: BTreeSet::new(),
            start: self.txn_start_timestamp,
            update: now_ms,
        })
    }

    /// A partition leader wrote the marker: the partition leaves the transaction. Returns
    /// whether none is left (then the Complete* transit is written).
    pub fn marker_written(&mut self, partition: &TopicPartition) -> Result<bool, TxnError> {
        if !self.state.is_prepare() {
            return Err(illegal(format!(
                "marker written for {}-{} in state {}",
                partition.topic,
                partition.partition,
                self.state.name()
            )));
        }
        self.partitions.remove(partition);
        Ok(self.partitions.is_empty())
    }

    /// Whether the open transaction ran past its timeout (`abortTimedOutTransactions`).
    pub fn is_timed_out(&self, now_ms: i64) -> bool {
        self.pending_state.is_none()
            && self.state == S::Ongoing
            && self.txn_start_timestamp + i64::from(self.txn_timeout_ms) < now_ms
    }

    /// Aborts a timed-out transaction: fences it (epoch bump) and prepares its PrepareAbort.
    /// `None` when it changed since it was found timed out (another producer id, a pending
    /// transition, or no longer open).
    pub fn prepare_abort_timed_out(
        &mut self,
        producer_id: i64,
        now_ms: i64,
    ) -> Result<Option<TxnTransit>, TxnError> {
        if self.producer_id != producer_id
            || self.pending_transition_in_progress()
            || self.state != S::Ongoing
        {
            return Ok(None);
        }
        match self.fence_and_abort(now_ms)? {
            EndTxnAction::Persist(transit) => Ok(Some(transit)),
            EndTxnAction::AlreadyCompleted => Ok(None),
        }
    }

    /// Whether an idle id expires (`transactional.id.expiration.ms`): Empty or Complete*, no
    /// pending transition, unchanged for at least `expiration_ms`.
    pub fn should_expire(&self, now_ms: i64, expiration_ms: i64) -> bool {
        self.pending_state.is_none()
            && self.state.is_expiration_allowed()
            && self.txn_last_update_timestamp <= now_ms - expiration_ms
    }

    /// Prepares the expiry: the transit is Dead, written as a tombstone of the key; once it is
    /// written the caller drops the metadata (there is no completing a Dead transition).
    pub fn prepare_dead(&mut self) -> Result<TxnTransit, TxnError> {
        self.transition_to(Target {
            state: S::Dead,
            producer_id: self.producer_id,
            epoch: self.producer_epoch,
            last_epoch: self.last_producer_epoch,
            timeout_ms: self.txn_timeout_ms,
            partitions: BTreeSet::new(),
            start: self.txn_start_timestamp,
            update: self.txn_last_update_timestamp,
        })
    }

    /// The transit's write failed: the pending transition is dropped; a failed fence is
    /// remembered (its epoch bump stays, and the next fence does not bump again). A caller
    /// that retries the write (the Complete* after markers) keeps it pending instead.
    pub fn abort_transition(&mut self, transit: &TxnTransit) {
        self.pending_state = None;
        if transit.epoch_fence {
            self.has_failed_epoch_fence = true;
        }
    }

    /// The transit was written and replicated: the metadata takes it, after Kafka's checks
    /// that it is the pending one and consistent with the metadata.
    pub fn complete_transition(&mut self, transit: &TxnTransit) -> Result<(), TxnError> {
        let Some(to) = self.pending_state else {
            return Err(illegal("completing a transition that is not pending"));
        };
        if to != transit.state {
            return Err(self.transition_failure(transit));
        }
        match to {
            S::Empty => self.complete_empty(transit)?,
            S::Ongoing => self.complete_ongoing(transit)?,
            S::PrepareAbort | S::PrepareCommit => self.complete_prepare(transit)?,
            S::CompleteAbort | S::CompleteCommit => self.complete_complete(transit)?,
            S::PrepareEpochFence => return Err(self.transition_failure(transit)),
            S::Dead => return Err(illegal("a Dead transition is completed by removing the id")),
        }
        self.client_transaction_version = transit.client_transaction_version;
        self.txn_last_update_timestamp = transit.txn_last_update_timestamp;
        self.pending_state = None;
        self.state = to;
        Ok(())
    }

    fn complete_empty(&mut self, t: &TxnTransit) -> Result<(), TxnError> {
        let epoch_ok = self.producer_epoch == t.producer_epoch
            || t.producer_epoch == self.producer_epoch.wrapping_add(1)
            || (t.producer_epoch == 0 && t.producer_id != self.producer_id);
        if !epoch_ok || !t.partitions.is_empty() || t.txn_start_timestamp != -1 {
            return Err(self.transition_failure(t));
        }
        self.txn_timeout_ms = t.txn_timeout_ms;
        self.producer_epoch = t.producer_epoch;
        self.last_producer_epoch = t.last_producer_epoch;
        self.producer_id = t.producer_id;
        self.previous_producer_id = t.previous_producer_id;
        Ok(())
    }

    fn complete_ongoing(&mut self, t: &TxnTransit) -> Result<(), TxnError> {
        if !self.same_producer(t)
            || !self.partitions.is_subset(&t.partitions)
            || self.txn_timeout_ms != t.txn_timeout_ms
        {
            return Err(self.transition_failure(t));
        }
        self.txn_start_timestamp = t.txn_start_timestamp;
        self.partitions.extend(t.partitions.iter().cloned());
        Ok(())
    }

    fn complete_prepare(&mut self, t: &TxnTransit) -> Result<(), TxnError> {
        if !self.same_producer(t)
            || self.partitions != t.partitions
            || self.txn_timeout_ms != t.txn_timeout_ms
            || self.txn_start_timestamp != t.txn_start_timestamp
        {
            return Err(self.transition_failure(t));
        }
        Ok(())
    }

    fn complete_complete(&mut self, t: &TxnTransit) -> Result<(), TxnError> {
        if !self.same_producer(t)
            || self.txn_timeout_ms != t.txn_timeout_ms
            || t.txn_start_timestamp == -1
        {
            return Err(self.transition_failure(t));
        }
        self.txn_start_timestamp = t.txn_start_timestamp;
        self.partitions.clear();
        Ok(())
    }

    fn same_producer(&self, t: &TxnTransit) -> bool {
        t.producer_epoch == self.producer_epoch && t.producer_id == self.producer_id
    }

    fn transition_failure(&self, t: &TxnTransit) -> TxnError {
        illegal(format!(
            "transactional id {} cannot move from {} to {:?}",
            self.transactional_id,
            self.state.name(),
            t
        ))
    }

    fn never_here(&self) -> TxnError {
        illegal(format!(
            "transactional id {} is in state {}, which requests never see",
            self.transactional_id,
            self.state.name()
        ))
    }

    /// Kafka's `prepareTransitionTo` checks: nothing pending, a valid producer id and epoch,
    /// and a valid previous state.
    fn check_transition(
        &self,
        to: TransactionState,
        producer_id: i64,
        epoch: i16,
    ) -> Result<(), TxnError> {
        if let Some(pending) = self.pending_state {
            return Err(illegal(format!(
                "transition to {} while {} is pending",
                to.name(),
                pending.name()
            )));
        }
        if producer_id < 0 {
            return Err(illegal(format!("illegal new producer id {producer_id}")));
        }
        if to != S::Dead && epoch < 0 {
            return Err(illegal(format!("illegal new producer epoch {epoch}")));
        }
        if !to.can_follow(self.state) {
            return Err(illegal(format!(
                "{} cannot follow {}",
                to.name(),
                self.state.name()
            )));
        }
        Ok(())
    }

    /// Builds the transit and marks it pending.
    fn transition_to(&mut self, target: Target) -> Result<TxnTransit, TxnError> {
        self.check_transition(target.state, target.producer_id, target.epoch)?;
        self.pending_state = Some(target.state);
        Ok(TxnTransit {
            producer_id: target.producer_id,
            previous_producer_id: self.producer_id,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: target.epoch,
            last_producer_epoch: target.last_epoch,
            txn_timeout_ms: target.timeout_ms,
            state: target.state,
            partitions: target.partitions,
            txn_start_timestamp: target.start,
            txn_last_update_timestamp: target.update,
            client_transaction_version: 0,
            epoch_fence: false,
        })
    }
}
