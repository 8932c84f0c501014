//! DescribeProducers (KIP-664): the producers with state in each named partition, as this
//! broker's replica holds them (leader or follower, as Kafka answers); a partition the metadata
//! does not know is UNKNOWN_TOPIC_OR_PARTITION, one not hosted here NOT_LEADER_OR_FOLLOWER.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use super::authorized::authorize;
use super::RequestContext;
use crate::auth::acl::{Operation, ResourceType};
use crate::broker::Broker;
use crate::log::{ActiveProducer, TopicPartition};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let readable = authorize(broker, ctx, Operation::Read, ResourceType::Topic, &t.name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|p| {
                    if readable {
                        describe_partition(broker, t.name.as_str(), *p)
                    } else {
                        PartitionResponse::default()
                            .with_partition_index(*p)
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

fn describe_partition(broker: &Broker, topic: &str, partition: i32) -> PartitionResponse {
    let answer = PartitionResponse::default().with_partition_index(partition);
    let known = broker
        .cluster
        .topic(topic)
        .is_some_and(|t| t.partitions.iter().any(|p| p.partition == partition));
    if !known {
        return answer.with_error_code(ResponseError::UnknownTopicOrPartition.code());
    }
    match broker
        .replicas
        .hosted_partition(&TopicPartition::new(topic, partition))
    {
        Some(p) => {
            answer.with_active_producers(p.active_producers().iter().map(producer_state).collect())
        }
        None => answer.with_error_code(ResponseError::NotLeaderOrFollower.code()),
    }
}

fn producer_state(p: &ActiveProducer) -> ProducerState {
    ProducerState::default()
        .with_producer_id(ProducerId(p.producer_id))
        .with_producer_epoch(i32::from(p.producer_epoch))
        .with_last_sequence(p.last_sequence)
        .with_last_timestamp(p.last_timestamp)
        .with_coordinator_epoch(p.coordinator_epoch)
        .with_current_txn_start_offset(p.current_txn_start_offset)
}
