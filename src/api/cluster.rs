//! DescribeCluster: cluster id, controller and live brokers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::authorized::if_requested;
use super::str_bytes;
use super::RequestContext;
use crate::auth::acl::{ResourceType, CLUSTER_NAME};
use crate::broker::Broker;

/// Endpoint type "brokers" (the only one a broker serves; controllers are KRaft-only).
const ENDPOINT_TYPE_BROKERS: i8 = 1;

pub async fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let version = ctx.api_version;
    let response = DescribeClusterResponse::default().with_endpoint_type(ENDPOINT_TYPE_BROKERS);
    if version >= 1 && req.endpoint_type != ENDPOINT_TYPE_BROKERS {
        return response
            .with_error_code(ResponseError::MismatchedEndpointType.code())
            .with_error_message(Some(str_bytes("this endpoint serves brokers only")));
    }
    let brokers = broker
        .cluster
        .live_brokers()
        .into_iter()
        .filter_map(|b| {
            // Only brokers reachable on the request's listener, at that listener's address.
            let e = b.endpoint(&ctx.listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.id))
                    .with_host(str_bytes(e.host.clone()))
                    .with_port(i32::from(e.port))
                    .with_rack(b.rack.map(str_bytes)),
            )
        })
        .collect();
    response
        .with_cluster_id(str_bytes(broker.cluster.cluster_id()))
        .with_controller_id(BrokerId(broker.cluster.controller_id()))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(if_requested(
            req.include_cluster_authorized_operations,
            broker,
            ctx,
            ResourceType::Cluster,
            CLUSTER_NAME,
        ))
}
