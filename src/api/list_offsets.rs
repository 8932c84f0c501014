//! ListOffsets: earliest, latest, by timestamp and max-timestamp offsets of partitions.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::error_codes::KafkaCode;
use crate::broker::Broker;
use crate::replica::Partition;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub async fn handle(broker: &Broker, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let topics =
        req.topics
            .into_iter()
            .map(|topic| {
                let name = topic.name.0.to_string();
                let partitions = topic
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let answer = ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index);
                        match broker.replicas.partition(&name, p.partition_index) {
                            None => answer
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                            Some(partition) => lookup(
                                &partition,
                                p.timestamp,
                                p.current_leader_epoch,
                                answer,
                                version,
                            ),
                        }
                    })
                    .collect();
                ListOffsetsTopicResponse::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

fn lookup(
    partition: &Partition,
    timestamp: i64,
    current_leader_epoch: i32,
    answer: ListOffsetsPartitionResponse,
    version: i16,
) -> ListOffsetsPartitionResponse {
    if !partition.is_leader() {
        return answer.with_error_code(ResponseError::NotLeaderOrFollower.code());
    }
    if let Err(e) = partition.check_leader_epoch(current_leader_epoch) {
        return answer.with_error_code(e.code());
    }
    // The leader epoch field exists from v4 on; encoding it earlier is an error.
    let answer = if version >= 4 {
        answer.with_leader_epoch(partition.leader_epoch())
    } else {
        answer
    };
    let hw = partition.high_watermark();
    let found =
        |timestamp: i64, offset: i64| answer.clone().with_timestamp(timestamp).with_offset(offset);
    let not_found = || found(-1, -1);
    let result = match timestamp {
        LATEST => Ok(Some((-1, hw))),
        EARLIEST | EARLIEST_LOCAL => Ok(Some((-1, partition.log.log_start_offset()))),
        LATEST_TIERED => Ok(None),
        MAX_TIMESTAMP => partition
            .log
            .max_timestamp_offset()
            .map(|r| r.filter(|t| t.offset < hw).map(|t| (t.timestamp, t.offset))),
        ts if ts >= 0 => partition
            .log
            .offset_for_timestamp(ts)
            .map(|r| r.filter(|t| t.offset < hw).map(|t| (t.timestamp, t.offset))),
        _ => return answer.with_error_code(ResponseError::InvalidRequest.code()),
    };
    match result {
        Ok(Some((timestamp, offset))) => found(timestamp, offset),
        Ok(None) => not_found(),
        Err(e) => {
            tracing::warn!(topic = %partition.tp.topic, partition = partition.tp.partition, error = %e, "offset lookup failed");
            answer.with_error_code(ResponseError::KafkaStorageError.code())
        }
    }
}
