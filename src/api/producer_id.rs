//! InitProducerId: producer ids for idempotent producers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tracing::{info, warn};

use super::RequestContext;
use crate::broker::Broker;

/// Hands out a fresh producer id at epoch 0. Transactions are not supported yet: a transactional
/// id is refused with INVALID_REQUEST.
pub async fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if let Some(txn) = req.transactional_id.as_ref() {
        info!(transactional_id = %txn.0.as_str(), "refusing InitProducerId: transactions are not supported yet");
        return response.with_error_code(ResponseError::InvalidRequest.code());
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
