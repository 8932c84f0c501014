//! ElectLeaders (KIP-460): preferred or unclean leader elections on request, for named
//! partitions or all. Only the controller elects (else NOT_CONTROLLER); the answer waits up to
//! the request's timeout for the new leaders to show in this broker's metadata.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};

use super::authorized::authorize_cluster;
use super::error_codes::KafkaCode;
use super::{str_bytes, topic_name, RequestContext};
use crate::auth::acl::Operation;
use crate::broker::Broker;
use crate::cluster::{ControllerError, ElectionType, PartitionKey};

/// Kafka's election type codes.
fn election_type(code: i8) -> Option<ElectionType> {
    match code {
        0 => Some(ElectionType::Preferred),
        1 => Some(ElectionType::Unclean),
        _ => None,
    }
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: ElectLeadersRequest,
) -> ElectLeadersResponse {
    if !authorize_cluster(broker, ctx, Operation::Alter) {
        return refused(
            &req,
            ctx.api_version,
            ResponseError::ClusterAuthorizationFailed,
        );
    }
    let partitions: Option<Vec<PartitionKey>> = req.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.to_string(), *p)))
            .collect()
    });
    // v0 has no election type: it is always a preferred election.
    let kind = if ctx.api_version == 0 {
        Some(ElectionType::Preferred)
    } else {
        election_type(req.election_type)
    };
    let Some(kind) = kind else {
        return ElectLeadersResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code());
    };
    let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64);
    match broker
        .cluster
        .elect_leaders(kind, partitions.clone(), timeout)
        .await
    {
        Ok(outcomes) => ElectLeadersResponse::default()
            .with_replica_election_results(group(outcomes.into_iter().map(|(k, r)| (k, r.err())))),
        // v0 has no top-level error: each named partition carries it.
        Err(e) if ctx.api_version == 0 => ElectLeadersResponse::default()
            .with_replica_election_results(group(
                partitions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|k| (k, Some(e.clone()))),
            )),
        Err(e) => ElectLeadersResponse::default().with_error_code(e.code()),
    }
}

/// Answers grouped by topic, in the order given.
fn group(
    outcomes: impl Iterator<Item = (PartitionKey, Option<ControllerError>)>,
) -> Vec<ReplicaElectionResult> {
    let mut topics: Vec<ReplicaElectionResult> = Vec::new();
    for ((topic, p), error) in outcomes {
        let answer = PartitionResult::default()
            .with_partition_id(p)
            .with_error_code(error.as_ref().map_or(0, KafkaCode::code))
            .with_error_message(error.map(|e| str_bytes(e.to_string())));
        match topics.iter_mut().find(|t| t.topic.as_str() == topic) {
            Some(t) => t.partition_result.push(answer),
            None => topics.push(
                ReplicaElectionResult::default()
                    .with_topic(topic_name(topic))
                    .with_partition_result(vec![answer]),
            ),
        }
    }
    topics
}

/// A refusal of the whole request, as Kafka answers it: the error at the top (from v1) and on
/// every partition named (the only place a v0 client sees it).
fn refused(req: &ElectLeadersRequest, version: i16, error: ResponseError) -> ElectLeadersResponse {
    let results = req
        .topic_partitions
        .iter()
        .flatten()
        .map(|t| {
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(
                    t.partitions
                        .iter()
                        .map(|p| {
                            PartitionResult::default()
                                .with_partition_id(*p)
                                .with_error_code(error.code())
                        })
                        .collect(),
                )
        })
        .collect();
    let top = if version >= 1 { error.code() } else { 0 };
    ElectLeadersResponse::default()
        .with_error_code(top)
        .with_replica_election_results(results)
}
