//! Ending transactions and the coordinator's periodic jobs: after PrepareCommit/PrepareAbort
//! is written, the markers go to every partition of the transaction (retried until written
//! or until this broker stops coordinating the id), then CompleteCommit/CompleteAbort is
//! written. Open transactions past their timeout are fenced and aborted; idle ids expire.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::coordinator::{Place, SharedMetadata};
use super::markers::{MarkerOutcome, TxnMarker};
use super::{TransactionCoordinator, TxnError, TxnResult};
use crate::log::TopicPartition;
use crate::util::clock::now_ms;
use crate::util::task::{self, Shutdown};

const FIRST_RETRY: Duration = Duration::from_millis(50);
const LAST_RETRY: Duration = Duration::from_secs(1);

impl TransactionCoordinator {
    /// Completes a transaction whose PrepareCommit/PrepareAbort is written (or was loaded):
    /// markers, then the Complete* state, in a task of its own.
    pub(super) fn spawn_completion(
        self: Arc<Self>,
        transactional_id: String,
        place: Place,
        meta: SharedMetadata,
        producer_id: i64,
        producer_epoch: i16,
        result: TxnResult,
    ) {
        tokio::spawn(async move {
            let marker = TxnMarker {
                producer_id,
                producer_epoch,
                result,
                coordinator_epoch: place.coordinator_epoch,
            };
            if let Err(e) = self.complete(&transactional_id, place, &meta, marker).await {
                warn!(transactional_id, error = %e, "transaction not completed by this coordinator");
            }
        });
    }

    async fn complete(
        &self,
        transactional_id: &str,
        place: Place,
        meta: &SharedMetadata,
        marker: TxnMarker,
    ) -> Result<(), TxnError> {
        let transit = meta.lock().prepare_complete(
            marker.producer_id,
            marker.producer_epoch,
            marker.result,
            now_ms(),
        )?;
        let sender = self
            .marker_sender()
            .ok_or(TxnError::CoordinatorNotAvailable)?;
        let mut backoff = FIRST_RETRY;
        loop {
            if !self.still_coordinating(place) {
                return Err(TxnError::NotCoordinator);
            }
            let remaining: Vec<TopicPartition> = meta.lock().partitions.iter().cloned().collect();
            if remaining.is_empty() {
                break;
            }
            for (tp, outcome) in sender.write_markers(marker, remaining).await {
                match outcome {
                    MarkerOutcome::Written | MarkerOutcome::Gone => {
                        meta.lock().marker_written(&tp)?;
                    }
                    MarkerOutcome::Retry(why) => {
                        debug!(transactional_id, partition = %tp, why, "marker to be sent again");
                    }
                    MarkerOutcome::Fenced(why) => {
                        // A newer coordinator or producer epoch owns the partition: this
                        // coordinator is stale and leaves the transaction to the new one.
                        warn!(transactional_id, partition = %tp, why, "marker refused; not completing");
                        return Err(TxnError::NotCoordinator);
                    }
                }
            }
            if meta.lock().partitions.is_empty() {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(LAST_RETRY);
        }
        loop {
            match self.persist(transactional_id, place, &transit).await {
                Ok(()) => {
                    meta.lock().complete_transition(&transit)?;
                    debug!(transactional_id, result = ?marker.result, "transaction completed");
                    return Ok(());
                }
                Err(TxnError::NotCoordinator) => return Err(TxnError::NotCoordinator),
                Err(e) => {
                    warn!(transactional_id, error = %e, "writing the completed state failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(LAST_RETRY);
                }
            }
        }
    }

    /// Starts the periodic jobs: aborting timed-out transactions
    /// (`transaction.abort.timed.out.transaction.cleanup.interval.ms`) and expiring idle ids
    /// (`transaction.remove.expired.transaction.cleanup.interval.ms`).
    pub fn spawn_timers(self: &Arc<Self>, shutdown: &Shutdown, tasks: &mut JoinSet<()>) {
        let settings = self.settings();
        let coordinator = self.clone();
        tasks.spawn(task::every(
            Duration::from_millis(settings.abort_timed_out_interval_ms.max(1)),
            shutdown.clone(),
            move || {
                let coordinator = coordinator.clone();
                async move { coordinator.abort_timed_out().await }
            },
        ));
        let coordinator = self.clone();
        tasks.spawn(task::every(
            Duration::from_millis(settings.remove_expired_interval_ms.max(1)),
            shutdown.clone(),
            move || {
                let coordinator = coordinator.clone();
                async move { coordinator.expire_ids().await }
            },
        ));
    }

    /// Fences and aborts every open transaction past its timeout.
    async fn abort_timed_out(self: Arc<Self>) {
        let now = now_ms();
        let Ok(ids) = self.loaded_ids() else { return };
        for (id, place, meta) in ids {
            let transit = {
                let mut m = meta.lock();
                if !m.is_timed_out(now) {
                    continue;
                }
                let producer_id = m.producer_id;
                match m.prepare_abort_timed_out(producer_id, now) {
                    Ok(Some(t)) => t,
                    Ok(None) => continue,
                    Err(e) => {
                        warn!(transactional_id = %id, error = %e, "cannot abort a timed-out transaction");
                        continue;
                    }
                }
            };
            info!(transactional_id = %id, producer_id = transit.producer_id,
                epoch = transit.producer_epoch, "aborting a transaction past its timeout");
            match self.write(&id, place, &meta, &transit).await {
                Ok(()) => self.clone().spawn_completion(
                    id,
                    place,
                    meta,
                    transit.producer_id,
                    transit.producer_epoch,
                    TxnResult::Abort,
                ),
                Err(e) => {
                    warn!(transactional_id = %id, error = %e, "aborting a timed-out transaction failed")
                }
            }
        }
    }

    /// Removes ids idle for `transactional.id.expiration.ms` (a tombstone in the log).
    async fn expire_ids(self: Arc<Self>) {
        let now = now_ms();
        let expiration = self.settings().transactional_id_expiration_ms;
        let Ok(ids) = self.loaded_ids() else { return };
        for (id, place, meta) in ids {
            let transit = {
                let mut m = meta.lock();
                if !m.should_expire(now, expiration) {
                    continue;
                }
                match m.prepare_dead() {
                    Ok(t) => t,
                    Err(e) => {
                        warn!(transactional_id = %id, error = %e, "cannot expire a transactional id");
                        continue;
                    }
                }
            };
            match self.persist(&id, place, &transit).await {
                Ok(()) => {
                    self.remove(&id, place, &meta);
                    info!(transactional_id = %id, "expired an idle transactional id");
                }
                Err(e) => {
                    meta.lock().abort_transition(&transit);
                    warn!(transactional_id = %id, error = %e, "expiring a transactional id failed");
                }
            }
        }
    }
}
