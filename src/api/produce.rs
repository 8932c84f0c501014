//! Produce: append record batches to partition logs. With acks=-1 the answer waits (per request,
//! all partitions concurrently) until the in-sync replicas have the records, the request timeout
//! expires or leadership is lost; other connections are never blocked.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use tokio::time::Instant;
use tracing::debug;

use super::error_codes::KafkaCode;
use super::str_bytes;
use super::{Reply, RequestContext};
use crate::broker::Broker;
use crate::log::{AppendError, RecordError};
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
    _ctx: &RequestContext,
    req: ProduceRequest,
) -> Reply<ProduceResponse> {
    let acks = req.acks;
    let transactional = req.transactional_id.is_some();
    let now = now_ms();
    let deadline = Instant::now() + Duration::from_millis(req.timeout_ms.max(0) as u64);
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let outcomes: Vec<Outcome> = topic
            .partition_data
            .into_iter()
            .map(|p| {
                if !matches!(acks, -1..=1) {
                    Outcome::Done(failure(p.index, ResponseError::InvalidRequiredAcks, None))
                } else if transactional {
                    Outcome::Done(failure(
                        p.index,
                        ResponseError::InvalidRequest,
                        Some("transactions are not supported yet"),
                    ))
                } else {
                    append(broker, &name, p.index, p.records.as_deref(), acks, now)
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
    if acks == 0 {
        // acks=0: the client expects no answer at all.
        return Reply::none();
    }
    ProduceResponse::default().with_responses(responses).into()
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

fn append(
    broker: &Broker,
    topic: &str,
    index: i32,
    records: Option<&[u8]>,
    acks: i16,
    now: i64,
) -> Outcome {
    if topic == crate::group::OFFSETS_TOPIC {
        return Outcome::Done(failure(
            index,
            ResponseError::InvalidTopicException,
            Some("cannot append to an internal topic"),
        ));
    }
    let Some(partition) = broker.replicas.partition(topic, index) else {
        return Outcome::Done(failure(index, ResponseError::UnknownTopicOrPartition, None));
    };
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Outcome::Done(failure(
            index,
            ResponseError::CorruptMessage,
            Some("no record batches"),
        ));
    };
    match partition.append_as_leader(records, acks, now) {
        Ok(info) => {
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
