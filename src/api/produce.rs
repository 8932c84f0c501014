//! Produce: append record batches to partition logs.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use tracing::debug;

use super::error_codes::KafkaCode;
use super::str_bytes;
use crate::broker::Broker;
use crate::maintenance::now_ms;

pub async fn handle(broker: &Broker, req: ProduceRequest, _version: i16) -> ProduceResponse {
    let acks = req.acks;
    let transactional = req.transactional_id.is_some();
    let now = now_ms();
    let responses = req
        .topic_data
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partition_data
                .into_iter()
                .map(|p| {
                    let result = if !matches!(acks, -1..=1) {
                        failure(p.index, ResponseError::InvalidRequiredAcks, None)
                    } else if transactional {
                        failure(
                            p.index,
                            ResponseError::InvalidRequest,
                            Some("transactions are not supported yet"),
                        )
                    } else {
                        append(broker, &name, p.index, p.records.as_deref(), acks, now)
                    };
                    result
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}

fn append(
    broker: &Broker,
    topic: &str,
    index: i32,
    records: Option<&[u8]>,
    acks: i16,
    now: i64,
) -> PartitionProduceResponse {
    if topic == crate::group::OFFSETS_TOPIC {
        return failure(
            index,
            ResponseError::InvalidTopicException,
            Some("cannot append to an internal topic"),
        );
    }
    let Some(partition) = broker.replicas.partition(topic, index) else {
        return failure(index, ResponseError::UnknownTopicOrPartition, None);
    };
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return failure(
            index,
            ResponseError::CorruptMessage,
            Some("no record batches"),
        );
    };
    match partition.append_as_leader(records, acks, now) {
        Ok(info) => PartitionProduceResponse::default()
            .with_index(index)
            .with_base_offset(info.first_offset)
            .with_log_append_time_ms(info.log_append_time_ms)
            .with_log_start_offset(info.log_start_offset),
        Err(e) => {
            debug!(topic, partition = index, error = %e, "produce rejected");
            failure(index, e.kafka_error(), Some(&e.to_string()))
        }
    }
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
