//! ListOffsets: earliest, latest, by timestamp and max-timestamp offsets of partitions, each
//! looked up by the partition's leader.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::authorized::authorize;
use super::error_codes::KafkaCode;
use super::RequestContext;
use crate::auth::acl::{Operation, ResourceType};
use crate::broker::Broker;
use crate::replica::{FetchIsolation, OffsetSpec};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
/// Isolation level read_committed (v2+): offsets are bounded by the last stable offset.
const READ_COMMITTED: i8 = 1;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let isolation = if req.isolation_level == READ_COMMITTED {
        FetchIsolation::TxnCommitted
    } else {
        FetchIsolation::HighWatermark
    };
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            // DESCRIBE on the topic, as Kafka checks it.
            let describable = authorize(
                broker,
                ctx,
                Operation::Describe,
                ResourceType::Topic,
                &topic.name,
            );
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let answer = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let epoch = p.current_leader_epoch;
                    let found = Some(())
                        .filter(|_| describable)
                        .ok_or(ResponseError::TopicAuthorizationFailed)
                        .and_then(|_| {
                            broker
                                .replicas
                                .partition(&topic.name, p.partition_index)
                                .ok_or(ResponseError::UnknownTopicOrPartition)
                                .and_then(|partition| match offset_spec(p.timestamp) {
                                    Some(spec) => partition
                                        .offset_lookup_isolated(spec, epoch, isolation)
                                        .map_err(|e| e.kafka_error()),
                                    None => match partition.check_serving(epoch) {
                                        Ok(()) => Err(ResponseError::InvalidRequest),
                                        Err(e) => Err(e.kafka_error()),
                                    },
                                })
                        });
                    match found {
                        Err(e) => answer.with_error_code(e.code()),
                        Ok(lookup) => {
                            let (timestamp, offset) =
                                lookup.found.map_or((-1, -1), |t| (t.timestamp, t.offset));
                            // The leader epoch field exists from v4 on; encoding it earlier fails.
                            let answer = if ctx.api_version >= 4 {
                                answer.with_leader_epoch(lookup.leader_epoch)
                            } else {
                                answer
                            };
                            answer.with_timestamp(timestamp).with_offset(offset)
                        }
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// The lookup a request's timestamp field asks for; `None` for an unknown negative value.
fn offset_spec(timestamp: i64) -> Option<OffsetSpec> {
    match timestamp {
        LATEST => Some(OffsetSpec::Latest),
        EARLIEST | EARLIEST_LOCAL => Some(OffsetSpec::Earliest),
        LATEST_TIERED => Some(OffsetSpec::LatestTiered),
        MAX_TIMESTAMP => Some(OffsetSpec::MaxTimestamp),
        ts if ts >= 0 => Some(OffsetSpec::Timestamp(ts)),
        _ => None,
    }
}
