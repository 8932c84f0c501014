//! The transaction coordinator's requests: InitProducerId with a transactional id,
//! AddPartitionsToTxn (and its verify-only form), AddOffsetsToTxn, EndTxn, DescribeTransactions
//! and ListTransactions. Each decides under the id's lock ([`super::state`]), writes the
//! transition without the lock, then completes it.

use std::collections::BTreeSet;

use tracing::{debug, info};

use super::coordinator::{Place, SharedMetadata};
use super::{
    validate_transaction_timeout, AddPartitionsAction, EndTxnAction, InitProducerIdAction,
    ProducerIdAndEpoch, TransactionCoordinator, TransactionMetadata, TxnError, TxnResult,
    TxnTransit,
};
use crate::log::TopicPartition;
use crate::util::clock::now_ms;

/// One transactional id as ListTransactions lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: &'static str,
}

impl TransactionCoordinator {
    /// InitProducerId with a transactional id: the id's producer id and a new epoch (fencing
    /// the previous producer; an open transaction is aborted first and the producer retries on
    /// CONCURRENT_TRANSACTIONS). `expected` is the KIP-360 producer id and epoch.
    pub async fn init_producer_id(
        &self,
        transactional_id: &str,
        txn_timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
    ) -> Result<(i64, i16), TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest("empty transactional id"));
        }
        validate_transaction_timeout(txn_timeout_ms, self.settings().max_timeout_ms)?;
        let (place, meta) = self.lookup(transactional_id)?;
        let meta = match meta {
            Some(m) => m,
            None => {
                let producer_id = self.allocate_producer_id().await?;
                let fresh = TransactionMetadata::new(
                    transactional_id,
                    producer_id,
                    txn_timeout_ms,
                    now_ms(),
                );
                self.get_or_insert(transactional_id, place, fresh)?
            }
        };
        let action = match self.decide_init(&meta, txn_timeout_ms, expected, None) {
            Err(NeedsProducerId) => {
                let id = self.allocate_producer_id().await?;
                self.decide_init(&meta, txn_timeout_ms, expected, Some(id))
                    .map_err(|_| TxnError::CoordinatorNotAvailable)?
            }
            Ok(decided) => decided,
        }?;
        match action {
            InitProducerIdAction::Persist(transit) => {
                self.write(transactional_id, place, &meta, &transit).await?;
                info!(
                    transactional_id,
                    producer_id = transit.producer_id,
                    epoch = transit.producer_epoch,
                    "transactional producer initialized"
                );
                Ok((transit.producer_id, transit.producer_epoch))
            }
            InitProducerIdAction::AbortOngoing(transit) => {
                self.write(transactional_id, place, &meta, &transit).await?;
                info!(
                    transactional_id,
                    producer_id = transit.producer_id,
                    epoch = transit.producer_epoch,
                    "open transaction fenced and aborted for a new producer"
                );
                self.complete_in_background(transactional_id, place, &meta, &transit);
                Err(TxnError::ConcurrentTransactions)
            }
        }
    }

    /// One decision of InitProducerId; `Err(NeedsProducerId)` when a new producer id is
    /// needed and `fresh` has none.
    fn decide_init(
        &self,
        meta: &SharedMetadata,
        txn_timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
        mut fresh: Option<i64>,
    ) -> Result<Result<InitProducerIdAction, TxnError>, NeedsProducerId> {
        let mut needed = false;
        let decided =
            meta.lock()
                .prepare_init_producer_id(txn_timeout_ms, expected, now_ms(), &mut || match fresh
                    .take()
                {
                    Some(id) => Ok(id),
                    None => {
                        needed = true;
                        Err(TxnError::CoordinatorNotAvailable)
                    }
                });
        if needed && decided.is_err() {
            return Err(NeedsProducerId);
        }
        Ok(decided)
    }

    async fn allocate_producer_id(&self) -> Result<i64, TxnError> {
        self.cluster().allocate_producer_id().await.map_err(|e| {
            tracing::warn!(error = %e, "producer id allocation failed");
            TxnError::CoordinatorNotAvailable
        })
    }

    /// AddPartitionsToTxn: the partitions join the producer's transaction (opening one).
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
    ) -> Result<(), TxnError> {
        let (place, meta) = self.lookup(transactional_id)?;
        let meta = meta.ok_or(TxnError::InvalidProducerIdMapping)?;
        let action = meta.lock().prepare_add_partitions(
            producer_id,
            producer_epoch,
            partitions,
            now_ms(),
        )?;
        self.write_added(transactional_id, place, &meta, action)
            .await
    }

    /// AddOffsetsToTxn: the `__consumer_offsets` partition of `group_id` joins the transaction.
    pub async fn add_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
        offsets_partitions: i32,
    ) -> Result<(), TxnError> {
        let (place, meta) = self.lookup(transactional_id)?;
        let meta = meta.ok_or(TxnError::InvalidProducerIdMapping)?;
        let action = meta.lock().prepare_add_offsets(
            producer_id,
            producer_epoch,
            group_id,
            offsets_partitions,
            now_ms(),
        )?;
        self.write_added(transactional_id, place, &meta, action)
            .await
    }

    async fn write_added(
        &self,
        transactional_id: &str,
        place: Place,
        meta: &SharedMetadata,
        action: AddPartitionsAction,
    ) -> Result<(), TxnError> {
        match action {
            AddPartitionsAction::AlreadyInTransaction => Ok(()),
            AddPartitionsAction::Persist(transit) => {
                self.write(transactional_id, place, meta, &transit).await?;
                debug!(
                    transactional_id,
                    partitions = transit.partitions.len(),
                    "partitions added to the transaction"
                );
                Ok(())
            }
        }
    }

    /// AddPartitionsToTxn's verify-only form (KIP-890 part 1): whether each partition is in
    /// the producer's ongoing transaction.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
    ) -> Result<Vec<(TopicPartition, Option<TxnError>)>, TxnError> {
        let (_, meta) = self.lookup(transactional_id)?;
        let meta = meta.ok_or(TxnError::InvalidProducerIdMapping)?;
        let verified = meta
            .lock()
            .verify_partitions(producer_id, producer_epoch, partitions);
        verified
    }

    /// EndTxn: writes PrepareCommit or PrepareAbort, answers, and completes the transaction in
    /// the background (markers, then CompleteCommit or CompleteAbort).
    pub async fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        result: TxnResult,
    ) -> Result<(), TxnError> {
        let (place, meta) = self.lookup(transactional_id)?;
        let meta = meta.ok_or(TxnError::InvalidProducerIdMapping)?;
        let action =
            meta.lock()
                .prepare_end_txn(producer_id, producer_epoch, result, true, now_ms())?;
        match action {
            EndTxnAction::AlreadyCompleted => Ok(()),
            EndTxnAction::Persist(transit) => {
                self.write(transactional_id, place, &meta, &transit).await?;
                debug!(
                    transactional_id,
                    producer_id,
                    ?result,
                    "transaction prepared to end"
                );
                self.complete_in_background(transactional_id, place, &meta, &transit);
                Ok(())
            }
        }
    }

    /// DescribeTransactions: a copy of the id's metadata.
    pub fn describe(&self, transactional_id: &str) -> Result<TransactionMetadata, TxnError> {
        let (_, meta) = self.lookup(transactional_id)?;
        let meta = meta.ok_or(TxnError::TransactionalIdNotFound)?;
        let copy = meta.lock().clone();
        Ok(copy)
    }

    /// ListTransactions: the ids this broker coordinates, filtered by state names and producer
    /// ids (an empty filter keeps all) and by how long they have run (`min_duration_ms`, Kafka's
    /// duration filter: negative keeps all).
    pub fn list(
        &self,
        states: &[String],
        producer_ids: &[i64],
        min_duration_ms: i64,
    ) -> Result<Vec<TxnListing>, TxnError> {
        let now = now_ms();
        let mut out: Vec<TxnListing> = self
            .loaded_ids()?
            .into_iter()
            .filter_map(|(id, _, meta)| {
                let m = meta.lock();
                let state = m.state.name();
                let keep = (states.is_empty() || states.iter().any(|s| s == state))
                    && (producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
                    && (min_duration_ms < 0 || now - m.txn_start_timestamp >= min_duration_ms);
                keep.then(|| TxnListing {
                    transactional_id: id,
                    producer_id: m.producer_id,
                    state,
                })
            })
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }

    /// Writes a prepared transit and completes it on the metadata; a failed write drops it.
    pub(super) async fn write(
        &self,
        transactional_id: &str,
        place: Place,
        meta: &SharedMetadata,
        transit: &TxnTransit,
    ) -> Result<(), TxnError> {
        match self.persist(transactional_id, place, transit).await {
            Ok(()) => meta.lock().complete_transition(transit).map_err(|e| {
                tracing::error!(transactional_id, error = %e, "completing a written transition failed");
                e
            }),
            Err(e) => {
                meta.lock().abort_transition(transit);
                Err(e)
            }
        }
    }

    /// Starts sending the markers of a written PrepareCommit/PrepareAbort.
    fn complete_in_background(
        &self,
        transactional_id: &str,
        place: Place,
        meta: &SharedMetadata,
        prepared: &TxnTransit,
    ) {
        let result = match prepared.state {
            super::TransactionState::PrepareCommit => TxnResult::Commit,
            _ => TxnResult::Abort,
        };
        if let Some(me) = self.arc() {
            me.spawn_completion(
                transactional_id.to_string(),
                place,
                meta.clone(),
                prepared.producer_id,
                prepared.producer_epoch,
                result,
            );
        }
    }
}

/// A new producer id must be allocated before InitProducerId can decide.
struct NeedsProducerId;
