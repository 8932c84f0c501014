//! Produce: append record batches to partition logs. With acks=-1 the answer waits (per request,
//! all partitions concurrently) until the in-sync replicas have the records, the request timeout
//! expires or leadership is lost; other connections are never blocked. A transactional batch that
//! would open a transaction in a partition is verified with the coordinator first (KIP-890).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use tokio::time::Instant;
use tracing::debug;

use super::authorized::authorize;
use super::error_codes::KafkaCode;
use super::str_bytes;
use super::{Reply, RequestContext};
use crate::auth::acl::{Operation, ResourceType};
use crate::broker::transactions::produce_error_of_verification;
use crate::broker::Broker;
use crate::log::{AppendError, BatchHeader, RecordError, TopicPartition, VerificationGuard};
use crate::metrics::TopicCounters;
use crate::replica::{Partition, ProduceError};
use crate::util::clock::now_ms;

/// A partition answer that may still wait for replication.
enum Outcome {
    Done(PartitionProduceResponse),
    /// Appended with acks=-1: wait until the high watermark reaches `required_offset`.
    Replicating {
        partition: Arc<Partition>,
        required_offset: i64,
        response: PartitionProduceResponse,
    },
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: ProduceRequest,
) -> Reply<ProduceResponse> {
    let acks = req.acks;
    // Kafka's produce quota counts the request's header and body; sized only when a quota is set.
    let request_size = broker
        .quotas
        .produce_enabled()
        .then(|| request_size(ctx, &req));
    let now = now_ms();
    let deadline = Instant::now() + Duration::from_millis(req.timeout_ms.max(0) as u64);
    // Kafka's checks: WRITE on the transactional id (if any), WRITE on each topic.
    let txn_denied = req.transactional_id.as_ref().is_some_and(|t| {
        !authorize(
            broker,
            ctx,
            Operation::Write,
            ResourceType::TransactionalId,
            t,
        )
    });
    let verified = match req.transactional_id.as_ref() {
        Some(_) if txn_denied => Verified::default(),
        Some(txn) => verify_transaction(broker, txn.as_str(), &req, ctx.api_version).await,
        None => Verified::default(),
    };
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let denied = if txn_denied {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        } else if !authorize(broker, ctx, Operation::Write, ResourceType::Topic, &name) {
            Some(ResponseError::TopicAuthorizationFailed)
        } else {
            None
        };
        let mut target = TargetTopic {
            name: &name,
            counters: None,
        };
        let outcomes: Vec<Outcome> = topic
            .partition_data
            .into_iter()
            .map(|p| {
                let tp = TopicPartition::new(&name, p.index);
                if let Some(error) = denied {
                    Outcome::Done(failure(p.index, error, None))
                } else if !matches!(acks, -1..=1) {
                    Outcome::Done(failure(p.index, ResponseError::InvalidRequiredAcks, None))
                } else if let Some(error) = verified.refused.get(&tp) {
                    Outcome::Done(failure(
                        p.index,
                        *error,
                        Some("the partition is not in the producer's transaction"),
                    ))
                } else {
                    let guard = verified.guards.get(&tp).copied();
                    append(
                        broker,
                        &mut target,
                        p.index,
                        p.records.as_deref(),
                        acks,
                        now,
                        guard,
                    )
                }
            })
            .collect();
        topics.push((topic.name, topic.topic_id, outcomes));
    }
    // Every partition was appended (in request order); now wait for all of them at once.
    let responses = join_all(
        topics
            .into_iter()
            .map(|(name, topic_id, outcomes)| async move {
                let partitions = join_all(outcomes.into_iter().map(|o| settle(o, deadline))).await;
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_topic_id(topic_id)
                    .with_partition_responses(partitions)
            }),
    )
    .await;
    // As Kafka: recorded once the answer is ready; a violation throttles even with acks=0
    // (the connection is muted without an answer).
    let throttle_ms = request_size.map_or(0, |size| {
        let client_id = ctx.client_id.as_deref().unwrap_or("");
        broker
            .quotas
            .record_produce(&ctx.principal.name, client_id, size)
    });
    if acks == 0 {
        // acks=0: the client expects no answer at all.
        return Reply::none().throttled(throttle_ms);
    }
    Reply::from(
        ProduceResponse::default()
            .with_responses(responses)
            .with_throttle_time_ms(throttle_ms.min(i32::MAX as i64) as i32),
    )
    .throttled(throttle_ms)
}

/// The size of a Produce request as Kafka's quota counts it: header and body, without the size
/// prefix (the header's tagged fields are taken to be empty).
fn request_size(ctx: &RequestContext, req: &ProduceRequest) -> usize {
    let client_id = ctx.client_id.as_ref().map_or(0, String::len);
    // api key, api version, correlation id, client id (length and bytes).
    let mut header = 2 + 2 + 4 + 2 + client_id;
    if ProduceRequest::header_version(ctx.api_version) >= 2 {
        header += 1;
    }
    header + req.compute_size(ctx.api_version).unwrap_or(0)
}

/// The outcome of KIP-890 part 1 verification for one transactional Produce.
#[derive(Default)]
struct Verified {
    /// Partitions whose first batch of a transaction was verified: the guard to append with.
    guards: HashMap<TopicPartition, VerificationGuard>,
    /// Partitions refused: not in the producer's transaction, or it could not be verified.
    refused: HashMap<TopicPartition, ResponseError>,
}

/// Before a transactional batch opens a transaction in a partition led here, asks the
/// transaction coordinator whether the partition is in the producer's transaction (KIP-890
/// part 1). A guard is taken first: a marker written meanwhile voids it, so a late batch cannot
/// open a transaction nobody will end.
async fn verify_transaction(
    broker: &Broker,
    transactional_id: &str,
    req: &ProduceRequest,
    version: i16,
) -> Verified {
    let mut verified = Verified::default();
    let mut producer = None;
    for topic in &req.topic_data {
        for p in &topic.partition_data {
            let Some(header) = p.records.as_deref().and_then(BatchHeader::parse) else {
                continue;
            };
            if !header.is_transactional() {
                continue;
            }
            let Some(partition) = broker.replicas.partition(topic.name.as_str(), p.index) else {
                continue;
            };
            if partition.is_leader() && partition.transaction_needs_verification(header.producer_id)
            {
                let tp = TopicPartition::new(topic.name.as_str(), p.index);
                verified
                    .guards
                    .insert(tp, partition.verification_guard(header.producer_id));
                producer = Some((header.producer_id, header.producer_epoch));
            }
        }
    }
    let Some((producer_id, producer_epoch)) = producer else {
        return verified;
    };
    if !broker.config.current().txn.partition_verification_enable {
        return verified;
    }
    let partitions: BTreeSet<TopicPartition> = verified.guards.keys().cloned().collect();
    let codes = broker
        .txn_link
        .verify(
            &broker.txn,
            transactional_id,
            producer_id,
            producer_epoch,
            &partitions,
        )
        .await;
    for (tp, code) in codes {
        if code != 0 {
            debug!(partition = %tp, transactional_id, code, "transactional produce not verified");
            verified.guards.remove(&tp);
            verified
                .refused
                .insert(tp, produce_error_of_verification(code, version));
        }
    }
    verified
}

async fn settle(outcome: Outcome, deadline: Instant) -> PartitionProduceResponse {
    match outcome {
        Outcome::Done(r) => r,
        Outcome::Replicating {
            partition,
            required_offset,
            response,
        } => match partition
            .wait_for_replication(required_offset, deadline)
            .await
        {
            Ok(()) => response,
            Err(e) => {
                debug!(partition = %partition.tp, error = %e, "acks=all produce not acknowledged");
                failure(response.index, e.kafka_error(), Some(&e.to_string()))
            }
        },
    }
}

/// The topic a request's partitions are appended to, with its counters, looked up once per
/// request (and only once a partition of it is found hosted here).
struct TargetTopic<'a> {
    name: &'a str,
    counters: Option<Arc<TopicCounters>>,
}

fn append(
    broker: &Broker,
    target: &mut TargetTopic<'_>,
    index: i32,
    records: Option<&[u8]>,
    acks: i16,
    now: i64,
    guard: Option<VerificationGuard>,
) -> Outcome {
    let topic = target.name;
    if topic == crate::group::OFFSETS_TOPIC || topic == crate::txn::TRANSACTION_STATE_TOPIC {
        return Outcome::Done(failure(
            index,
            ResponseError::InvalidTopicException,
            Some("cannot append to an internal topic"),
        ));
    }
    let metrics = broker.metrics();
    let Some(partition) = broker.replicas.partition(topic, index) else {
        metrics.count(None, |c| c.total_produce_requests.inc());
        return Outcome::Done(failure(index, ResponseError::UnknownTopicOrPartition, None));
    };
    let counters = &**target.counters.get_or_insert_with(|| metrics.topic(topic));
    metrics.count(Some(counters), |c| c.total_produce_requests.inc());
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        metrics.count(Some(counters), |c| c.failed_produce_requests.inc());
        return Outcome::Done(failure(
            index,
            ResponseError::CorruptMessage,
            Some("no record batches"),
        ));
    };
    match partition.append_as_leader_verified(records, acks, now, guard) {
        Ok(info) => {
            let appended = if info.duplicate {
                0
            } else {
                u64::from(info.records_count)
            };
            metrics.count(Some(counters), |c| {
                c.messages_in.add(appended);
                c.bytes_in.add(records.len() as u64);
            });
            let response = PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(info.first_offset)
                .with_log_append_time_ms(info.log_append_time_ms)
                .with_log_start_offset(info.log_start_offset);
            if acks == -1 {
                Outcome::Replicating {
                    partition,
                    required_offset: info.last_offset + 1,
                    response,
                }
            } else {
                Outcome::Done(response)
            }
        }
        Err(e) => {
            debug!(topic, partition = index, error = %e, "produce rejected");
            if counts_as_failed(e.kafka_error()) {
                metrics.count(Some(counters), |c| c.failed_produce_requests.inc());
            }
            let response = failure(index, e.kafka_error(), Some(&e.to_string()));
            Outcome::Done(match &e {
                ProduceError::Append(AppendError::RejectedRecords { errors, .. }) => {
                    with_record_errors(response, errors, partition.log_start_offset())
                }
                _ => response,
            })
        }
    }
}

/// Whether a partition's produce error counts in failedproducerequests: as in Kafka, every
/// error but those a client meets in normal operation (leadership moved, unknown partition, a
/// batch too large or corrupt, a failed disk).
fn counts_as_failed(error: ResponseError) -> bool {
    !matches!(
        error,
        ResponseError::UnknownTopicOrPartition
            | ResponseError::NotLeaderOrFollower
            | ResponseError::MessageTooLarge
            | ResponseError::RecordListTooLarge
            | ResponseError::CorruptMessage
            | ResponseError::KafkaStorageError
    )
}

/// KIP-467: the records a partition's data was rejected for (Produce v8+ carries them), with the
/// log start offset, as Kafka answers a `RecordValidationException`.
fn with_record_errors(
    response: PartitionProduceResponse,
    errors: &[RecordError],
    log_start_offset: i64,
) -> PartitionProduceResponse {
    let record_errors = errors
        .iter()
        .map(|e| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(e.batch_index)
                .with_batch_index_error_message(Some(str_bytes(e.message.as_str())))
        })
        .collect();
    response
        .with_record_errors(record_errors)
        .with_log_start_offset(log_start_offset)
}

fn failure(index: i32, error: ResponseError, message: Option<&str>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(error.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(str_bytes))
}
