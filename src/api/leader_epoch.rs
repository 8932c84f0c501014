//! OffsetForLeaderEpoch (API key 23): where a leader epoch ends in the leader's log. Followers ask it
//! before fetching at a new epoch (to truncate divergent history); KIP-320 consumers ask it to
//! detect log truncation after a leader change. Answered by the leader only; errors are per
//! partition.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::error_codes::KafkaCode;
use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let answer = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let found = broker
                        .replicas
                        .partition(&topic.topic, p.partition)
                        .ok_or(ResponseError::UnknownTopicOrPartition)
                        .and_then(|partition| {
                            partition
                                .epoch_end_offset(p.leader_epoch, p.current_leader_epoch)
                                .map_err(|e| e.kafka_error())
                        });
                    match found {
                        Ok((epoch, end_offset)) => {
                            answer.with_leader_epoch(epoch).with_end_offset(end_offset)
                        }
                        Err(e) => answer.with_error_code(e.code()),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
