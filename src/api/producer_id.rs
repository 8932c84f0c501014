//! InitProducerId: producer ids for idempotent producers; a request with a transactional id
//! goes to the transaction coordinator ([`super::transactions::init_producer_id`]).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tracing::warn;

use super::RequestContext;
use crate::broker::Broker;

/// Hands out a fresh producer id at epoch 0 to an idempotent producer.
pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    if req.transactional_id.is_some() {
        return super::transactions::init_producer_id(broker, ctx, req).await;
    }
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
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
