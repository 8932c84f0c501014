//! DeleteRecords: moves partitions' log start offsets (records below them are gone for every
//! reader). Partitions the metadata does not know are UNKNOWN_TOPIC_OR_PARTITION; the rest go to
//! the replica layer, which answers once every live replica has moved its log start, or at the
//! request's timeout. A partition named twice is deleted once, at its last offset (Kafka keys
//! the request by partition).

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, TopicName};

use super::authorized::authorize;
use super::error_codes::KafkaCode;
use super::RequestContext;
use crate::auth::acl::{Operation, ResourceType};
use crate::broker::Broker;
use crate::log::TopicPartition;
use crate::replica::DeleteRecordsOutcome;

/// The low watermark of a partition that failed.
const INVALID_LOW_WATERMARK: i64 = -1;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64);
    // Each partition once, in the order first named, with the last offset given for it.
    let mut order: Vec<(TopicName, i32)> = Vec::new();
    let mut offsets: HashMap<(TopicName, i32), i64> = HashMap::new();
    for topic in req.topics {
        for p in topic.partitions {
            let key = (topic.name.clone(), p.partition_index);
            if offsets.insert(key.clone(), p.offset).is_none() {
                order.push(key);
            }
        }
    }
    // DELETE on the topic; refused partitions answer TOPIC_AUTHORIZATION_FAILED below.
    let deletable: HashMap<TopicName, bool> = order
        .iter()
        .map(|(name, _)| {
            let ok = authorize(broker, ctx, Operation::Delete, ResourceType::Topic, name);
            (name.clone(), ok)
        })
        .collect();
    let known = |(name, index): &(TopicName, i32)| {
        deletable.get(name).copied().unwrap_or(false)
            && broker
                .cluster
                .topic(name)
                .is_some_and(|t| t.partition(*index).is_some())
    };
    // Looked up once: the answers below pair with the partitions sent to the replica layer.
    let is_known: Vec<bool> = order.iter().map(known).collect();
    let targets: Vec<(TopicPartition, i64)> = order
        .iter()
        .zip(&is_known)
        .filter(|(_, known)| **known)
        .map(|(key, _)| (TopicPartition::new(&key.0, key.1), offsets[key]))
        .collect();
    let mut outcomes = broker
        .replicas
        .delete_records(targets, timeout)
        .await
        .into_iter();
    let mut topics: Vec<DeleteRecordsTopicResult> = Vec::new();
    for (key, known) in order.iter().zip(is_known) {
        let result = if known {
            outcome_result(key.1, outcomes.next())
        } else if !deletable.get(&key.0).copied().unwrap_or(false) {
            failed(key.1, ResponseError::TopicAuthorizationFailed)
        } else {
            failed(key.1, ResponseError::UnknownTopicOrPartition)
        };
        match topics.iter_mut().find(|t| t.name == key.0) {
            Some(t) => t.partitions.push(result),
            None => topics.push(
                DeleteRecordsTopicResult::default()
                    .with_name(key.0.clone())
                    .with_partitions(vec![result]),
            ),
        }
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

fn outcome_result(
    index: i32,
    outcome: Option<DeleteRecordsOutcome>,
) -> DeleteRecordsPartitionResult {
    match outcome {
        Some(Ok(low_watermark)) => DeleteRecordsPartitionResult::default()
            .with_partition_index(index)
            .with_low_watermark(low_watermark),
        // Kafka answers a timed-out partition with the low watermark of its local step.
        Some(Err(e @ crate::replica::DeleteRecordsError::Timeout { low_watermark })) => {
            DeleteRecordsPartitionResult::default()
                .with_partition_index(index)
                .with_low_watermark(low_watermark)
                .with_error_code(e.code())
        }
        Some(Err(e)) => failed(index, e.kafka_error()),
        None => failed(index, ResponseError::UnknownServerError),
    }
}

fn failed(index: i32, error: ResponseError) -> DeleteRecordsPartitionResult {
    DeleteRecordsPartitionResult::default()
        .with_partition_index(index)
        .with_low_watermark(INVALID_LOW_WATERMARK)
        .with_error_code(error.code())
}
