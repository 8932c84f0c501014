//! ListPartitionReassignments. Reassignment itself is a later feature, so none is ever in
//! progress; kafka-topics asks for this while describing topics.

use kafka_protocol::messages::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use super::RequestContext;
use crate::broker::Broker;

pub async fn list(
    _broker: &Broker,
    _ctx: &RequestContext,
    _req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default()
}
