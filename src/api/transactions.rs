//! The transaction APIs: InitProducerId with a transactional id, AddPartitionsToTxn (client
//! versions and the brokers' batched, verify-only form), AddOffsetsToTxn, EndTxn,
//! TxnOffsetCommit, WriteTxnMarkers, DescribeTransactions and ListTransactions. The coordinator
//! is [`crate::txn::TransactionCoordinator`]; TxnOffsetCommit goes to the group coordinator.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{
    TopicData, TransactionState as DescribedTxn,
};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedTxn;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::*;
use tracing::debug;

use super::authorized::{authorize, authorize_cluster};
use super::error_codes::KafkaCode;
use super::{str_bytes, RequestContext};
use crate::auth::acl::{Operation, ResourceType};
use crate::broker::transactions::write_marker_here;
use crate::broker::Broker;
use crate::group::{OffsetToCommit, TxnOffsetCommit, OFFSETS_TOPIC};
use crate::log::TopicPartition;
use crate::txn::{ProducerIdAndEpoch, TxnError, TxnMarker, TxnResult, TRANSACTION_STATE_TOPIC};

/// PRODUCER_FENCED exists for clients from these versions (KIP-588); older ones get
/// INVALID_PRODUCER_EPOCH, as Kafka answers them.
fn client_code(e: &TxnError, version: i16, fenced_from: i16) -> i16 {
    match e {
        TxnError::ProducerFenced if version < fenced_from => {
            ResponseError::InvalidProducerEpoch.code()
        }
        TxnError::IllegalState(_) => ResponseError::UnknownServerError.code(),
        e => e.code(),
    }
}

/// InitProducerId with a transactional id.
pub async fn init_producer_id(
    broker: &Broker,
    ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let transactional_id = req
        .transactional_id
        .as_ref()
        .map(|t| t.to_string())
        .unwrap_or_default();
    let expected = match (req.producer_id.0, req.producer_epoch) {
        (-1, -1) => None,
        (id, epoch) if id >= 0 && epoch >= 0 => Some(ProducerIdAndEpoch {
            producer_id: id,
            epoch,
        }),
        _ => return response.with_error_code(ResponseError::InvalidRequest.code()),
    };
    match broker
        .txn
        .init_producer_id(&transactional_id, req.transaction_timeout_ms, expected)
        .await
    {
        Ok((id, epoch)) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(e) => {
            debug!(transactional_id, error = %e, "InitProducerId refused");
            response.with_error_code(client_code(&e, ctx.api_version, 4))
        }
    }
}

/// The partitions of an AddPartitionsToTxn topic list; unknown ones (and internal topics a
/// producer may not write) are split off.
fn requested_partitions(
    broker: &Broker,
    topics: &[AddPartitionsToTxnTopic],
) -> (BTreeSet<TopicPartition>, BTreeSet<TopicPartition>) {
    let mut known = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    for t in topics {
        let metadata = broker.cluster.topic(t.name.as_str());
        for p in &t.partitions {
            let tp = TopicPartition::new(t.name.as_str(), *p);
            let exists = metadata.as_ref().is_some_and(|m| m.partition(*p).is_some());
            let internal = t.name.as_str() == TRANSACTION_STATE_TOPIC;
            if exists && !internal {
                known.insert(tp);
            } else {
                unknown.insert(tp);
            }
        }
    }
    (known, unknown)
}

fn topic_results(codes: BTreeMap<TopicPartition, i16>) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut by_topic: BTreeMap<String, Vec<AddPartitionsToTxnPartitionResult>> = BTreeMap::new();
    for (tp, code) in codes {
        by_topic.entry(tp.topic.to_string()).or_default().push(
            AddPartitionsToTxnPartitionResult::default()
                .with_partition_index(tp.partition)
                .with_partition_error_code(code),
        );
    }
    by_topic
        .into_iter()
        .map(|(name, results)| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(TopicName(str_bytes(name)))
                .with_results_by_partition(results)
        })
        .collect()
}

/// One transaction of AddPartitionsToTxn: every partition's error code.
async fn add_partitions_for(
    broker: &Broker,
    version: i16,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
) -> BTreeMap<TopicPartition, i16> {
    let (known, unknown) = requested_partitions(broker, topics);
    if !unknown.is_empty() {
        // Kafka refuses the whole request: unknown partitions get their error, the rest
        // OPERATION_NOT_ATTEMPTED.
        return unknown
            .into_iter()
            .map(|tp| (tp, ResponseError::UnknownTopicOrPartition.code()))
            .chain(
                known
                    .into_iter()
                    .map(|tp| (tp, ResponseError::OperationNotAttempted.code())),
            )
            .collect();
    }
    let all = |code: i16| known.iter().map(|tp| (tp.clone(), code)).collect();
    if verify_only {
        return match broker.txn.verify_partitions(
            transactional_id,
            producer_id,
            producer_epoch,
            &known,
        ) {
            Ok(results) => results
                .into_iter()
                .map(|(tp, e)| (tp, e.map_or(0, |e| e.code())))
                .collect(),
            Err(e) => all(client_code(&e, version, 2)),
        };
    }
    match broker
        .txn
        .add_partitions(transactional_id, producer_id, producer_epoch, &known)
        .await
    {
        Ok(()) => all(0),
        Err(e) => {
            debug!(transactional_id, error = %e, "AddPartitionsToTxn refused");
            all(client_code(&e, version, 2))
        }
    }
}

/// Whether the request may WRITE to the transactional id.
fn may_write_txn(broker: &Broker, ctx: &RequestContext, id: &str) -> bool {
    authorize(
        broker,
        ctx,
        Operation::Write,
        ResourceType::TransactionalId,
        id,
    )
}

fn may_read_group(broker: &Broker, ctx: &RequestContext, group: &str) -> bool {
    authorize(broker, ctx, Operation::Read, ResourceType::Group, group)
}

/// Kafka's answer to a client AddPartitionsToTxn it may not make: the transactional id
/// refused for every partition, or the topics it may not WRITE refused and the rest not
/// attempted. `None`: allowed.
fn add_partitions_denied(
    broker: &Broker,
    ctx: &RequestContext,
    id: &str,
    topics: &[AddPartitionsToTxnTopic],
) -> Option<BTreeMap<TopicPartition, i16>> {
    let txn_ok = may_write_txn(broker, ctx, id);
    let writable: Vec<bool> = topics
        .iter()
        .map(|t| authorize(broker, ctx, Operation::Write, ResourceType::Topic, &t.name))
        .collect();
    if txn_ok && writable.iter().all(|w| *w) {
        return None;
    }
    let mut codes = BTreeMap::new();
    for (t, writable) in topics.iter().zip(writable) {
        let code = if !txn_ok {
            ResponseError::TransactionalIdAuthorizationFailed
        } else if !writable {
            ResponseError::TopicAuthorizationFailed
        } else {
            ResponseError::OperationNotAttempted
        };
        for p in &t.partitions {
            codes.insert(TopicPartition::new(t.name.as_str(), *p), code.code());
        }
    }
    Some(codes)
}

pub async fn add_partitions_to_txn(
    broker: &Broker,
    ctx: &RequestContext,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let version = ctx.api_version;
    if version <= 3 {
        if let Some(codes) = add_partitions_denied(
            broker,
            ctx,
            req.v3_and_below_transactional_id.as_str(),
            &req.v3_and_below_topics,
        ) {
            return AddPartitionsToTxnResponse::default()
                .with_results_by_topic_v3_and_below(topic_results(codes));
        }
        let codes = add_partitions_for(
            broker,
            version,
            req.v3_and_below_transactional_id.as_str(),
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            false,
            &req.v3_and_below_topics,
        )
        .await;
        return AddPartitionsToTxnResponse::default()
            .with_results_by_topic_v3_and_below(topic_results(codes));
    }
    // v4: sent by brokers (KIP-890), possibly for several transactions at once.
    if !authorize_cluster(broker, ctx, Operation::ClusterAction) {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut results = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let codes = add_partitions_for(
            broker,
            version,
            t.transactional_id.as_str(),
            t.producer_id.0,
            t.producer_epoch,
            t.verify_only,
            &t.topics,
        )
        .await;
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(topic_results(codes)),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

pub async fn add_offsets_to_txn(
    broker: &Broker,
    ctx: &RequestContext,
    req: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    if !may_write_txn(broker, ctx, &req.transactional_id) {
        return AddOffsetsToTxnResponse::default()
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    if !may_read_group(broker, ctx, &req.group_id) {
        return AddOffsetsToTxnResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let offsets_partitions = broker
        .cluster
        .topic(OFFSETS_TOPIC)
        .map(|t| t.partitions.len() as i32)
        .filter(|n| *n > 0)
        .unwrap_or(broker.groups.settings().offsets_topic_num_partitions);
    let outcome = broker
        .txn
        .add_offsets(
            req.transactional_id.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            req.group_id.as_str(),
            offsets_partitions,
        )
        .await;
    AddOffsetsToTxnResponse::default().with_error_code(match outcome {
        Ok(()) => 0,
        Err(e) => client_code(&e, ctx.api_version, 2),
    })
}

pub async fn end_txn(broker: &Broker, ctx: &RequestContext, req: EndTxnRequest) -> EndTxnResponse {
    if !may_write_txn(broker, ctx, &req.transactional_id) {
        return EndTxnResponse::default()
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    let result = if req.committed {
        TxnResult::Commit
    } else {
        TxnResult::Abort
    };
    let outcome = broker
        .txn
        .end_txn(
            req.transactional_id.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            result,
        )
        .await;
    let response = EndTxnResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    match outcome {
        Ok(()) => response,
        Err(e) => {
            debug!(transactional_id = %req.transactional_id.as_str(), error = %e, "EndTxn refused");
            response.with_error_code(client_code(&e, ctx.api_version, 2))
        }
    }
}

/// TxnOffsetCommit: the transactional id and the group are checked first (refusing every
/// partition); then, as Kafka does, partitions of topics the principal may not READ are refused
/// and the others committed.
pub async fn txn_offset_commit(
    broker: &Broker,
    ctx: &RequestContext,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let readable: Vec<bool> = req
        .topics
        .iter()
        .map(|t| authorize(broker, ctx, Operation::Read, ResourceType::Topic, &t.name))
        .collect();
    let outcome = if !may_write_txn(broker, ctx, &req.transactional_id) {
        Err(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !may_read_group(broker, ctx, &req.group_id) {
        Err(ResponseError::GroupAuthorizationFailed)
    } else if !readable.contains(&true) {
        Ok(Vec::new())
    } else {
        let commit = txn_commit_of(&req, ctx.api_version, &readable);
        broker.groups.commit_transactional_offsets(commit).await
    };
    // Per partition of the readable topics, in order: its own result.
    let mut errors = outcome.as_ref().ok().map(|v| v.iter());
    let failed = outcome.as_ref().err().copied();
    let topics = req
        .topics
        .into_iter()
        .zip(readable)
        .map(|(t, readable)| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = match (failed, readable) {
                        (Some(e), _) => Some(e),
                        (None, false) => Some(ResponseError::TopicAuthorizationFailed),
                        (None, true) => errors.as_mut().and_then(|e| e.next().copied().flatten()),
                    };
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code.map_or(0, |e| e.code()))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// The group coordinator's commit for the topics marked `include`.
fn txn_commit_of(req: &TxnOffsetCommitRequest, version: i16, include: &[bool]) -> TxnOffsetCommit {
    TxnOffsetCommit {
        group_id: req.group_id.to_string(),
        producer_id: req.producer_id.0,
        producer_epoch: req.producer_epoch,
        member_id: if version >= 3 {
            req.member_id.to_string()
        } else {
            String::new()
        },
        group_instance_id: req
            .group_instance_id
            .as_ref()
            .filter(|_| version >= 3)
            .map(|s| s.to_string()),
        generation: if version >= 3 { req.generation_id } else { -1 },
        offsets: req
            .topics
            .iter()
            .zip(include)
            .filter(|(_, included)| **included)
            .flat_map(|(t, _)| {
                t.partitions.iter().map(|p| OffsetToCommit {
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if version >= 2 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                })
            })
            .collect(),
    }
}

/// WriteTxnMarkers: sent by coordinators to partition leaders, and by `kafka-transactions
/// abort` to end a hanging transaction. Each marker is written into each named partition this
/// broker leads and answered once on its in-sync replicas.
pub async fn write_txn_markers(
    broker: &Broker,
    ctx: &RequestContext,
    req: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let allowed = authorize_cluster(broker, ctx, Operation::ClusterAction);
    let mut results = Vec::with_capacity(req.markers.len());
    for m in &req.markers {
        let marker = TxnMarker {
            producer_id: m.producer_id.0,
            producer_epoch: m.producer_epoch,
            result: if m.transaction_result {
                TxnResult::Commit
            } else {
                TxnResult::Abort
            },
            coordinator_epoch: m.coordinator_epoch,
        };
        let topics = futures::future::join_all(m.topics.iter().map(|t| async move {
            let partitions = futures::future::join_all(t.partition_indexes.iter().map(|p| {
                let tp = TopicPartition::new(t.name.as_str(), *p);
                async move {
                    let code = if allowed {
                        marker_code(broker, &marker, &tp).await
                    } else {
                        ResponseError::ClusterAuthorizationFailed.code()
                    };
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(tp.partition)
                        .with_error_code(code)
                }
            }))
            .await;
            WritableTxnMarkerTopicResult::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        }))
        .await;
        results.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(results)
}

async fn marker_code(broker: &Broker, marker: &TxnMarker, tp: &TopicPartition) -> i16 {
    if broker.replicas.partition(&tp.topic, tp.partition).is_none() {
        return ResponseError::UnknownTopicOrPartition.code();
    }
    match write_marker_here(&broker.replicas, &broker.groups, marker, tp).await {
        Ok(()) => 0,
        Err(e) => {
            debug!(partition = %tp, error = %e, "transaction marker not written");
            e.kafka_error().code()
        }
    }
}

pub async fn describe_transactions(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states = req
        .transactional_ids
        .iter()
        .map(|id| {
            let answer = DescribedTxn::default()
                .with_transactional_id(id.clone())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
                .with_transaction_start_time_ms(-1)
                .with_transaction_state(str_bytes(""));
            let describable = authorize(
                broker,
                ctx,
                Operation::Describe,
                ResourceType::TransactionalId,
                id.as_str(),
            );
            if !describable {
                return answer
                    .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
            }
            match broker.txn.describe(id.as_str()) {
                Ok(m) => {
                    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                    for tp in &m.partitions {
                        topics
                            .entry(tp.topic.to_string())
                            .or_default()
                            .push(tp.partition);
                    }
                    answer
                        .with_transaction_state(str_bytes(m.state.name()))
                        .with_transaction_timeout_ms(m.txn_timeout_ms)
                        .with_transaction_start_time_ms(m.txn_start_timestamp)
                        .with_producer_id(ProducerId(m.producer_id))
                        .with_producer_epoch(m.producer_epoch)
                        .with_topics(
                            topics
                                .into_iter()
                                .map(|(t, ps)| {
                                    TopicData::default()
                                        .with_topic(TopicName(str_bytes(t)))
                                        .with_partitions(ps)
                                })
                                .collect(),
                        )
                }
                Err(e) => answer.with_error_code(client_code(&e, 0, 0)),
            }
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

pub async fn list_transactions(
    broker: &Broker,
    ctx: &RequestContext,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let known = [
        "Empty",
        "Ongoing",
        "PrepareCommit",
        "PrepareAbort",
        "CompleteCommit",
        "CompleteAbort",
        "Dead",
        "PrepareEpochFence",
    ];
    let (states, unknown): (Vec<String>, Vec<String>) = req
        .state_filters
        .iter()
        .map(|s| s.to_string())
        .partition(|s| known.contains(&s.as_str()));
    let producer_ids: Vec<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let response = ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown.iter().map(str_bytes).collect());
    if !unknown.is_empty() && states.is_empty() {
        // Only unknown states asked for: nothing can match.
        return response;
    }
    let min_duration_ms = if ctx.api_version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    match broker.txn.list(&states, &producer_ids, min_duration_ms) {
        Ok(listed) => response.with_transaction_states(
            listed
                .into_iter()
                // Only the transactional ids the principal may describe.
                .filter(|l| {
                    authorize(
                        broker,
                        ctx,
                        Operation::Describe,
                        ResourceType::TransactionalId,
                        &l.transactional_id,
                    )
                })
                .map(|l| {
                    ListedTxn::default()
                        .with_transactional_id(TransactionalId(str_bytes(l.transactional_id)))
                        .with_producer_id(ProducerId(l.producer_id))
                        .with_transaction_state(str_bytes(l.state))
                })
                .collect(),
        ),
        Err(e) => response.with_error_code(client_code(&e, 0, 0)),
    }
}
