//! Glue between the transaction coordinator and the partitions: transaction markers written
//! into a partition led here (and, for `__consumer_offsets`, the group coordinator told of the
//! outcome) or sent with WriteTxnMarkers to the broker leading it; and the KIP-890 part 1 check
//! a partition leader makes before the first transactional batch of a transaction, asked of
//! the coordinator here or with AddPartitionsToTxn (verify-only) over the inter-broker link.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, ProducerId, TopicName,
    TransactionalId, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;
use tracing::debug;

use super::peers::PeerPool;
use crate::cluster::ClusterMetadata;
use crate::group::{GroupCoordinator, OFFSETS_TOPIC};
use crate::log::{AppendError, TopicPartition};
use crate::replica::peer::{PeerDialer, PeerError};
use crate::replica::{ProduceError, ReplicaManager};
use crate::txn::{
    MarkerOutcome, TransactionCoordinator, TxnError, TxnMarker, TxnMarkerSender, TxnResult,
};
use crate::util::clock::now_ms;

/// How long a marker may take to reach a partition's in-sync replicas.
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of one inter-broker transaction request.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);
const PEER_MAX_RESPONSE_BYTES: usize = 16 << 20;
const WRITE_TXN_MARKERS_VERSION: i16 = 1;
/// The broker-to-broker AddPartitionsToTxn version (batched, with verify-only, KIP-890).
const VERIFY_VERSION: i16 = 4;

/// Writes `marker` into `tp`, led by this broker, and waits until its in-sync replicas have it;
/// a `__consumer_offsets` partition's group coordinator then applies or drops the producer's
/// pending offsets. Serves the coordinator here and WriteTxnMarkers requests alike.
pub async fn write_marker_here(
    replicas: &ReplicaManager,
    groups: &GroupCoordinator,
    marker: &TxnMarker,
    tp: &TopicPartition,
) -> Result<(), ProduceError> {
    let partition = replicas
        .partition(&tp.topic, tp.partition)
        .ok_or(ProduceError::NotLeader)?;
    let commit = marker.result == TxnResult::Commit;
    let offset = partition.append_txn_marker(
        marker.producer_id,
        marker.producer_epoch,
        commit,
        marker.coordinator_epoch,
        now_ms(),
    )?;
    let deadline = tokio::time::Instant::now() + MARKER_TIMEOUT;
    partition.wait_for_replication(offset + 1, deadline).await?;
    if &*tp.topic == OFFSETS_TOPIC {
        groups.complete_transaction(tp.partition, marker.producer_id, commit);
    }
    Ok(())
}

/// What the coordinator and the produce path reach other brokers and partitions through.
pub struct TxnLink {
    cluster: Arc<dyn ClusterMetadata>,
    replicas: Arc<ReplicaManager>,
    groups: Arc<GroupCoordinator>,
    peers: PeerPool,
}

impl TxnLink {
    pub fn new(
        cluster: Arc<dyn ClusterMetadata>,
        replicas: Arc<ReplicaManager>,
        groups: Arc<GroupCoordinator>,
        dialer: PeerDialer,
    ) -> TxnLink {
        let client_id = format!("broker-{}-txn", replicas.broker_id());
        TxnLink {
            cluster,
            replicas,
            groups,
            peers: PeerPool::new(client_id, dialer, PEER_TIMEOUT, PEER_MAX_RESPONSE_BYTES),
        }
    }

    fn leader_of(&self, tp: &TopicPartition) -> Option<i32> {
        self.cluster
            .topic(&tp.topic)
            .and_then(|t| t.partition(tp.partition).map(|p| p.leader))
    }

    fn outcome_of_code(&self, tp: &TopicPartition, code: i16) -> MarkerOutcome {
        match ResponseError::try_from_code(code) {
            None => MarkerOutcome::Written,
            Some(
                ResponseError::InvalidProducerEpoch | ResponseError::TransactionCoordinatorFenced,
            ) => MarkerOutcome::Fenced(format!("error code {code}")),
            Some(
                ResponseError::UnsupportedForMessageFormat | ResponseError::UnsupportedVersion,
            ) => MarkerOutcome::Gone,
            Some(_) if self.leader_of(tp).is_none() => MarkerOutcome::Gone,
            Some(e) => MarkerOutcome::Retry(format!("{e:?}")),
        }
    }

    async fn write_here(
        &self,
        marker: TxnMarker,
        tp: TopicPartition,
    ) -> (TopicPartition, MarkerOutcome) {
        let outcome = match write_marker_here(&self.replicas, &self.groups, &marker, &tp).await {
            Ok(()) => MarkerOutcome::Written,
            Err(ProduceError::Append(
                e @ (AppendError::InvalidProducerEpoch(_)
                | AppendError::TransactionCoordinatorFenced(_)),
            )) => MarkerOutcome::Fenced(e.to_string()),
            Err(e) => MarkerOutcome::Retry(e.to_string()),
        };
        (tp, outcome)
    }

    async fn write_remote(
        &self,
        leader: i32,
        marker: TxnMarker,
        partitions: Vec<TopicPartition>,
    ) -> Vec<(TopicPartition, MarkerOutcome)> {
        let mut topics: BTreeMap<Arc<str>, Vec<i32>> = BTreeMap::new();
        for tp in &partitions {
            topics
                .entry(tp.topic.clone())
                .or_default()
                .push(tp.partition);
        }
        let request =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(marker.producer_id))
                .with_producer_epoch(marker.producer_epoch)
                .with_transaction_result(marker.result == TxnResult::Commit)
                .with_coordinator_epoch(marker.coordinator_epoch)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(name, partition_indexes)| {
                            WritableTxnMarkerTopic::default()
                                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                                .with_partition_indexes(partition_indexes)
                        })
                        .collect(),
                )]);
        let answer: Result<WriteTxnMarkersResponse, PeerError> = self
            .peers
            .call(
                &self.cluster,
                leader,
                ApiKey::WriteTxnMarkers,
                WRITE_TXN_MARKERS_VERSION,
                &request,
            )
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                let why = format!("WriteTxnMarkers to broker {leader}: {e}");
                return partitions
                    .into_iter()
                    .map(|tp| (tp, MarkerOutcome::Retry(why.clone())))
                    .collect();
            }
        };
        let mut codes: HashMap<TopicPartition, i16> = HashMap::new();
        for m in &answer.markers {
            for t in &m.topics {
                for p in &t.partitions {
                    codes.insert(
                        TopicPartition::new(t.name.as_str(), p.partition_index),
                        p.error_code,
                    );
                }
            }
        }
        partitions
            .into_iter()
            .map(|tp| {
                let outcome = match codes.get(&tp) {
                    Some(code) => self.outcome_of_code(&tp, *code),
                    None => MarkerOutcome::Retry("no answer for the partition".into()),
                };
                (tp, outcome)
            })
            .collect()
    }

    /// Asks the coordinator on broker `coordinator` whether each partition is in the
    /// producer's ongoing transaction (AddPartitionsToTxn v4, verify-only).
    async fn verify_remote(
        &self,
        coordinator: i32,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
    ) -> HashMap<TopicPartition, i16> {
        let mut topics: BTreeMap<Arc<str>, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            topics
                .entry(tp.topic.clone())
                .or_default()
                .push(tp.partition);
        }
        let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(
                    transactional_id.to_string(),
                )))
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(producer_epoch)
                .with_verify_only(true)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(name, ps)| {
                            AddPartitionsToTxnTopic::default()
                                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                                .with_partitions(ps)
                        })
                        .collect(),
                ),
        ]);
        let answer: Result<AddPartitionsToTxnResponse, PeerError> = self
            .peers
            .call(
                &self.cluster,
                coordinator,
                ApiKey::AddPartitionsToTxn,
                VERIFY_VERSION,
                &request,
            )
            .await;
        let all = |code: i16| partitions.iter().map(|tp| (tp.clone(), code)).collect();
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                debug!(coordinator, error = %e, "transaction verification request failed");
                return all(ResponseError::CoordinatorNotAvailable.code());
            }
        };
        if answer.error_code != 0 {
            return all(answer.error_code);
        }
        let mut codes: HashMap<TopicPartition, i16> = HashMap::new();
        for r in &answer.results_by_transaction {
            for t in &r.topic_results {
                for p in &t.results_by_partition {
                    codes.insert(
                        TopicPartition::new(t.name.as_str(), p.partition_index),
                        p.partition_error_code,
                    );
                }
            }
        }
        partitions
            .iter()
            .map(|tp| {
                let code = codes
                    .get(tp)
                    .copied()
                    .unwrap_or(ResponseError::CoordinatorNotAvailable.code());
                (tp.clone(), code)
            })
            .collect()
    }

    /// KIP-890 part 1: whether each partition is in the ongoing transaction of the producer,
    /// asked of its coordinator (here or on another broker); 0 or a Kafka error code each.
    pub async fn verify(
        &self,
        txn: &TransactionCoordinator,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
    ) -> HashMap<TopicPartition, i16> {
        let all = |code: i16| partitions.iter().map(|tp| (tp.clone(), code)).collect();
        let coordinator = match txn.find_coordinator(transactional_id).await {
            Ok(b) => b.id,
            Err(e) => return all(e.code()),
        };
        if coordinator != self.replicas.broker_id() {
            return self
                .verify_remote(
                    coordinator,
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    partitions,
                )
                .await;
        }
        match txn.verify_partitions(transactional_id, producer_id, producer_epoch, partitions) {
            Ok(results) => results
                .into_iter()
                .map(|(tp, e)| (tp, e.map_or(0, |e| e.code())))
                .collect(),
            Err(e) => all(e.code()),
        }
    }
}

#[async_trait]
impl TxnMarkerSender for TxnLink {
    async fn write_markers(
        &self,
        marker: TxnMarker,
        partitions: Vec<TopicPartition>,
    ) -> Vec<(TopicPartition, MarkerOutcome)> {
        let me = self.replicas.broker_id();
        let mut here = Vec::new();
        let mut remote: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        let mut out = Vec::new();
        for tp in partitions {
            match self.leader_of(&tp) {
                // The topic or partition no longer exists.
                None => out.push((tp, MarkerOutcome::Gone)),
                Some(leader) if leader < 0 => {
                    out.push((tp, MarkerOutcome::Retry("no leader".into())))
                }
                Some(leader) if leader == me => here.push(tp),
                Some(leader) => remote.entry(leader).or_default().push(tp),
            }
        }
        let local = join_all(here.into_iter().map(|tp| self.write_here(marker, tp)));
        let others = join_all(
            remote
                .into_iter()
                .map(|(leader, tps)| self.write_remote(leader, marker, tps)),
        );
        let (local, others) = tokio::join!(local, others);
        out.extend(local);
        out.extend(others.into_iter().flatten());
        out
    }
}

/// How a verification error is answered to a Produce (Kafka's translation for producers:
/// coordinator trouble becomes the retriable NOT_ENOUGH_REPLICAS, a partition missing from
/// the transaction TRANSACTION_ABORTABLE from Produce v11 and INVALID_TXN_STATE before, a
/// fenced producer INVALID_PRODUCER_EPOCH).
pub fn produce_error_of_verification(code: i16, produce_version: i16) -> ResponseError {
    let txn_abortable = TxnError::TransactionAbortable.code();
    match ResponseError::try_from_code(code) {
        _ if code == txn_abortable && produce_version >= 11 => ResponseError::TransactionAbortable,
        _ if code == txn_abortable => ResponseError::InvalidTxnState,
        Some(
            ResponseError::ConcurrentTransactions
            | ResponseError::NetworkException
            | ResponseError::CoordinatorLoadInProgress
            | ResponseError::CoordinatorNotAvailable
            | ResponseError::NotCoordinator,
        ) => ResponseError::NotEnoughReplicas,
        Some(ResponseError::ProducerFenced) => ResponseError::InvalidProducerEpoch,
        Some(e) => e,
        None => ResponseError::UnknownServerError,
    }
}
