//! AlterPartitionReassignments and ListPartitionReassignments (KIP-455): start, replace or
//! cancel partition moves, and list those in progress. As in Kafka's ZooKeeper mode only the
//! controller answers; other brokers answer NOT_CONTROLLER and clients ask the controller.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use super::authorized::authorize_cluster;
use super::error_codes::KafkaCode;
use super::{str_bytes, RequestContext};
use crate::auth::acl::Operation;
use crate::broker::Broker;
use crate::cluster::{ControllerError, PartitionReassignment, TopicMetadata};

pub async fn alter(
    broker: &Broker,
    ctx: &RequestContext,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    if !authorize_cluster(broker, ctx, Operation::Alter) {
        return AlterPartitionReassignmentsResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code(),
        );
    }
    let allow_rf_change = ctx.api_version < 1 || req.allow_replication_factor_change;
    let mut changes = Vec::new();
    let mut refused: Vec<Option<ControllerError>> = Vec::new();
    for topic in &req.topics {
        for p in &topic.partitions {
            let target = p
                .replicas
                .as_ref()
                .map(|r| r.iter().map(|b| b.0).collect::<Vec<_>>());
            let change = PartitionReassignment {
                topic: topic.name.to_string(),
                partition: p.partition_index,
                target,
            };
            refused.push(if allow_rf_change {
                None
            } else {
                replication_factor_change(broker, &change)
            });
            changes.push(change);
        }
    }
    let accepted: Vec<PartitionReassignment> = changes
        .iter()
        .zip(&refused)
        .filter(|(_, r)| r.is_none())
        .map(|(c, _)| c.clone())
        .collect();
    let outcomes = match broker.cluster.alter_partition_reassignments(accepted).await {
        Ok(outcomes) => outcomes,
        Err(e) => {
            return AlterPartitionReassignmentsResponse::default()
                .with_allow_replication_factor_change(allow_rf_change)
                .with_error_code(e.code())
                .with_error_message(Some(str_bytes(e.to_string())))
        }
    };
    let mut outcomes = outcomes.into_iter();
    let results = refused.into_iter().map(|r| match r {
        Some(e) => ErrorOr::Kafka(e.code(), e.to_string()),
        None => match outcomes.next() {
            Some(Ok(())) => ErrorOr::None,
            Some(Err(e)) => ErrorOr::Kafka(e.code(), e.to_string()),
            None => ErrorOr::Kafka(
                ResponseError::UnknownServerError.code(),
                "no answer".to_string(),
            ),
        },
    });
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_rf_change)
        .with_responses(group_answers(&changes, results))
}

/// KIP-860: the target must keep the replication factor when the request says so.
fn replication_factor_change(
    broker: &Broker,
    change: &PartitionReassignment,
) -> Option<ControllerError> {
    let target = change.target.as_ref()?;
    let topic = broker.cluster.topic(&change.topic)?;
    let p = topic
        .partitions
        .iter()
        .find(|p| p.partition == change.partition)?;
    let origin = p
        .replicas
        .iter()
        .filter(|r| !p.adding_replicas.contains(r))
        .count();
    (origin != target.len()).then(|| {
        ControllerError::InvalidReplicationFactor(format!(
            "The replication factor is changed from {origin} to {}",
            target.len()
        ))
    })
}

/// One partition's answer.
enum ErrorOr {
    None,
    Kafka(i16, String),
}

fn group_answers(
    changes: &[PartitionReassignment],
    results: impl Iterator<Item = ErrorOr>,
) -> Vec<ReassignableTopicResponse> {
    let mut topics: Vec<ReassignableTopicResponse> = Vec::new();
    for (change, result) in changes.iter().zip(results) {
        let (code, message) = match result {
            ErrorOr::None => (0, None),
            ErrorOr::Kafka(code, message) => (code, Some(str_bytes(message))),
        };
        let answer = ReassignablePartitionResponse::default()
            .with_partition_index(change.partition)
            .with_error_code(code)
            .with_error_message(message);
        match topics.last_mut() {
            Some(t) if t.name.as_str() == change.topic => t.partitions.push(answer),
            _ => topics.push(
                ReassignableTopicResponse::default()
                    .with_name(super::topic_name(change.topic.clone()))
                    .with_partitions(vec![answer]),
            ),
        }
    }
    topics
}

pub async fn list(
    broker: &Broker,
    ctx: &RequestContext,
    req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    if !authorize_cluster(broker, ctx, Operation::Describe) {
        return ListPartitionReassignmentsResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code(),
        );
    }
    if broker.cluster.controller_id() != broker.broker_id() {
        let e = ControllerError::NotController;
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(str_bytes(e.to_string())));
    }
    let wanted = |topic: &str, p: i32| match &req.topics {
        None => true,
        Some(topics) => topics
            .iter()
            .any(|t| t.name.as_str() == topic && t.partition_indexes.contains(&p)),
    };
    let topics = broker
        .cluster
        .topics()
        .iter()
        .filter_map(|t| ongoing(t, &wanted))
        .collect();
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}

/// The moves in progress of `topic` that the request asks about.
fn ongoing(
    topic: &TopicMetadata,
    wanted: &impl Fn(&str, i32) -> bool,
) -> Option<OngoingTopicReassignment> {
    let ids = |list: &[i32]| list.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let partitions: Vec<OngoingPartitionReassignment> = topic
        .partitions
        .iter()
        .filter(|p| !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty())
        .filter(|p| wanted(&topic.name, p.partition))
        .map(|p| {
            OngoingPartitionReassignment::default()
                .with_partition_index(p.partition)
                .with_replicas(ids(&p.replicas))
                .with_adding_replicas(ids(&p.adding_replicas))
                .with_removing_replicas(ids(&p.removing_replicas))
        })
        .collect();
    (!partitions.is_empty()).then(|| {
        OngoingTopicReassignment::default()
            .with_name(super::topic_name(topic.name.clone()))
            .with_partitions(partitions)
    })
}
