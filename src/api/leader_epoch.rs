//! OffsetForLeaderEpoch (API key 23): where a leader epoch ends in the leader's log. Followers ask it
//! before fetching at a new epoch (to truncate divergent history); KIP-320 consumers ask it to
//! detect log truncation after a leader change. Answered by the leader only; errors are per
//! partition.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::authorized::{authorize, authorize_cluster};
use super::error_codes::KafkaCode;
use super::RequestContext;
use crate::auth::acl::{Operation, ResourceType};
use crate::broker::Broker;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    // Followers (replica id set, v3+) need CLUSTER_ACTION; consumers DESCRIBE on each topic.
    let follower = ctx.api_version >= 3 && req.replica_id.0 >= 0;
    let cluster_ok = !follower || authorize_cluster(broker, ctx, Operation::ClusterAction);
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let denied = if !cluster_ok {
                Some(ResponseError::ClusterAuthorizationFailed)
            } else if !follower
                && !authorize(
                    broker,
                    ctx,
                    Operation::Describe,
                    ResourceType::Topic,
                    &topic.topic,
                )
            {
                Some(ResponseError::TopicAuthorizationFailed)
            } else {
                None
            };
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let answer = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let found = denied
                        .map_or(Ok(()), Err)
                        .and_then(|()| {
                            broker
                                .replicas
                                .partition(&topic.topic, p.partition)
                                .ok_or(ResponseError::UnknownTopicOrPartition)
                        })
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
