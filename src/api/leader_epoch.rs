//! OffsetForLeaderEpoch (API key 23): where a leader epoch ends in the leader's log. Followers ask it
//! before fetching at a new epoch (to truncate divergent history); KIP-320 consumers ask it to
//! detect log truncation after a leader change. Answered from the leader epoch cache, by the leader
//! only; errors are per partition.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use tracing::debug;

use super::error_codes::KafkaCode;
use crate::broker::Broker;

pub async fn handle(
    broker: &Broker,
    req: OffsetForLeaderEpochRequest,
    _version: i16,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.topic.0.to_string();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let answer = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let Some(partition) = broker.replicas.partition(&name, p.partition) else {
                        return answer
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if !partition.is_leader() {
                        return answer.with_error_code(ResponseError::NotLeaderOrFollower.code());
                    }
                    if let Err(e) = partition.check_leader_epoch(p.current_leader_epoch) {
                        return answer.with_error_code(e.code());
                    }
                    let (epoch, end_offset) = partition.log.leader_epoch_end_offset(p.leader_epoch);
                    debug!(partition = %partition.tp, replica_id = req.replica_id.0,
                        requested = p.leader_epoch, epoch, end_offset, "leader epoch end");
                    answer.with_leader_epoch(epoch).with_end_offset(end_offset)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
