//! InitProducerId: producer ids for idempotent producers; a request with a transactional id
//! goes to the transaction coordinator ([`super::transactions::init_producer_id`]).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tracing::warn;

use super::authorized::{authorize, authorize_any, authorize_cluster};
use super::RequestContext;
use crate::auth::acl::{Operation, ResourceType};
use crate::broker::Broker;

/// Hands out a fresh producer id at epoch 0 to an idempotent producer.
pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if let Some(id) = &req.transactional_id {
        if !authorize(
            broker,
            ctx,
            Operation::Write,
            ResourceType::TransactionalId,
            id,
        ) {
            return response
                .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
        }
        return super::transactions::init_producer_id(broker, ctx, req).await;
    }
    // Idempotence: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic (KIP-679).
    if !authorize_cluster(broker, ctx, Operation::IdempotentWrite)
        && !authorize_any(broker, ctx, Operation::Write, ResourceType::Topic)
    {
        return response.with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    match broker.cluster.allocate_producer_id().await {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            warn!(error = %e, "producer id allocation failed");
            response.with_error_code(ResponseError::CoordinatorNotAvailable.code())
        }
    }
}
