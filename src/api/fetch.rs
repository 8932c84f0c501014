//! Fetch: translates the request into a fetch of the replica layer (which reads, long-polls and
//! records followers' positions) and its answer back, keeping the record sets as they were read.
//!
//! Fetch sessions (KIP-227) are not created: every answer carries session id 0, which tells
//! clients to keep sending full requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};
use kafka_protocol::protocol::Encodable;

use super::authorized::{authorize, authorize_cluster};
use super::error_codes::KafkaCode;
use super::{Reply, RequestContext};
use crate::auth::acl::{Operation, ResourceType};
use crate::broker::Broker;
use crate::log::{Codec, CompressionType, TopicPartition};
use crate::metrics::TopicCounters;
use crate::replica::{
    FetchIsolation, FetchParams, FetchReader, FetchedPartition, PartitionFetch, ServeError,
};

/// Session epoch of a sessionless (full) fetch.
const FINAL_EPOCH: i32 = -1;
/// The first Fetch version that may carry zstd batches (KIP-110).
const ZSTD_FETCH_VERSION: i16 = 10;
/// Isolation level read_committed.
const READ_COMMITTED: i8 = 1;
/// Record sets at least this long are written from their read buffers instead of being copied
/// into the encoded answer (below it a copy is cheaper than another iovec).
pub const SHARE_RECORDS_MIN: usize = 4096;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: FetchRequest,
) -> Reply<FetchResponse> {
    if req.session_id != 0 || (req.session_epoch != FINAL_EPOCH && req.session_epoch != 0) {
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0)
            .into();
    }
    let mut params = params(&req, ctx.api_version);
    if !matches!(params.reader, FetchReader::Consumer(_))
        && !authorize_cluster(broker, ctx, Operation::ClusterAction)
    {
        // Followers need CLUSTER_ACTION on the cluster.
        return FetchResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_session_id(0)
            .into();
    }
    let mut partitions = partitions(broker, &req, ctx.api_version);
    if matches!(params.reader, FetchReader::Consumer(_)) {
        refuse_unreadable_topics(broker, ctx, &mut partitions);
    }
    if ctx.api_version < ZSTD_FETCH_VERSION && matches!(params.reader, FetchReader::Consumer(_)) {
        refuse_zstd_topics(broker, &mut partitions);
    }
    let consumer = matches!(params.reader, FetchReader::Consumer(_));
    // Client quotas apply to consumers only, never to followers (Kafka's isFromFollower).
    let (user, client_id) = (&*ctx.principal.name, ctx.client_id.as_deref().unwrap_or(""));
    let quota = consumer && broker.quotas.fetch_enabled();
    if quota {
        cap_to_quota_window(broker, &mut params, user, client_id);
    }
    let topics: Vec<Option<Arc<str>>> = partitions
        .iter()
        .map(|p| p.as_ref().ok().map(|f| f.tp.topic.clone()))
        .collect();
    let fetched = broker.replicas.fetch(params, partitions).await;
    let mut parts = fetched.iter();
    let responses = req
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .zip(parts.by_ref())
                .map(|(p, f)| partition_data(p.partition, f))
                .collect();
            FetchableTopicResponse::default()
                .with_topic(topic.topic)
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    let response = FetchResponse::default()
        .with_session_id(0)
        .with_responses(responses);
    // As Kafka: the answer's size (prefix and body) is recorded; over the quota the answer is
    // sent empty (and not counted), with the throttle time, and the connection muted.
    let throttle_ms = if quota {
        let size = 4 + response.compute_size(ctx.api_version).unwrap_or(0);
        broker.quotas.record_fetch(user, client_id, size)
    } else {
        0
    };
    count_fetch(broker, &topics, &fetched, consumer && throttle_ms == 0);
    if throttle_ms > 0 {
        let empty = FetchResponse::default()
            .with_session_id(0)
            .with_throttle_time_ms(throttle_ms.min(i32::MAX as i64) as i32);
        return Reply::from(empty).throttled(throttle_ms);
    }
    let shared = fetch_record_sets(&response, SHARE_RECORDS_MIN);
    Reply::sharing(response, shared)
}

/// Kafka caps a consumer's fetch to the bytes its quota allows in one measurement window
/// (more would certainly be throttled): `max_bytes` and, below it, `min_bytes`.
fn cap_to_quota_window(broker: &Broker, params: &mut FetchParams, user: &str, client_id: &str) {
    if let Some(max) = broker.quotas.fetch_max_bytes(user, client_id) {
        params.max_bytes = params.max_bytes.min(max);
        params.min_bytes = params.min_bytes.min(params.max_bytes);
    }
}

/// Kafka's BrokerTopicMetrics of a fetch: per partition a fetch request, a failure for an
/// unexpected error, and, with `bytes_out`, the bytes sent to a consumer (bytes to followers
/// are replication; a throttled answer sends none).
/// A topic's counters are looked up once per run of its partitions; an unknown topic counts
/// broker-wide only.
fn count_fetch(
    broker: &Broker,
    topics: &[Option<Arc<str>>],
    fetched: &[FetchedPartition],
    bytes_out: bool,
) {
    let metrics = broker.metrics();
    let mut current: Option<(&Arc<str>, Arc<TopicCounters>)> = None;
    for (topic, f) in topics.iter().zip(fetched) {
        let error = f
            .error
            .as_ref()
            .and_then(|e| ResponseError::try_from_code(e.code()));
        let unknown = matches!(
            error,
            Some(ResponseError::UnknownTopicOrPartition | ResponseError::UnknownTopicId)
        );
        let counters = match topic {
            Some(name) if !unknown => {
                if current.as_ref().is_none_or(|(n, _)| *n != name) {
                    current = Some((name, metrics.topic(name)));
                }
                current.as_ref().map(|(_, c)| &**c)
            }
            _ => None,
        };
        let failed = error.is_some_and(fetch_counts_as_failed);
        let bytes = if bytes_out { f.records.len() as u64 } else { 0 };
        metrics.count(counters, |c| {
            c.total_fetch_requests.inc();
            c.bytes_out.add(bytes);
            if failed {
                c.failed_fetch_requests.inc();
            }
        });
    }
}

/// Whether a partition's fetch error counts in failedfetchrequests: as in Kafka, every error
/// but those of normal operation (leadership moved, epochs, unknown partitions, a failed disk).
fn fetch_counts_as_failed(error: ResponseError) -> bool {
    !matches!(
        error,
        ResponseError::UnknownTopicOrPartition
            | ResponseError::UnknownTopicId
            | ResponseError::NotLeaderOrFollower
            | ResponseError::UnknownLeaderEpoch
            | ResponseError::FencedLeaderEpoch
            | ResponseError::ReplicaNotAvailable
            | ResponseError::KafkaStorageError
            | ResponseError::InconsistentTopicId
    )
}

fn params(req: &FetchRequest, version: i16) -> FetchParams {
    // The replica id is in the body up to v14, in the replica state from v15.
    let replica_id = if version <= 14 {
        req.replica_id.0
    } else {
        req.replica_state.replica_id.0
    };
    let reader = if replica_id >= 0 {
        FetchReader::Follower(replica_id)
    } else if req.isolation_level == READ_COMMITTED {
        FetchReader::Consumer(FetchIsolation::TxnCommitted)
    } else {
        FetchReader::Consumer(FetchIsolation::HighWatermark)
    };
    FetchParams {
        reader,
        max_wait: Duration::from_millis(req.max_wait_ms.max(0) as u64),
        min_bytes: req.min_bytes.max(0) as usize,
        max_bytes: if req.max_bytes <= 0 {
            usize::MAX
        } else {
            req.max_bytes as usize
        },
    }
}

/// The requested partitions in request order; topics are named by id from v13.
fn partitions(
    broker: &Broker,
    req: &FetchRequest,
    version: i16,
) -> Vec<Result<PartitionFetch, ServeError>> {
    let mut out = Vec::new();
    for topic in &req.topics {
        let name: Option<Arc<str>> = if version >= 13 {
            broker
                .cluster
                .topic_by_id(topic.topic_id)
                .map(|t| t.name.as_str().into())
        } else {
            Some(topic.topic.0.as_str().into())
        };
        for p in &topic.partitions {
            out.push(match &name {
                None => Err(ServeError::UnknownTopicId),
                Some(name) => Ok(PartitionFetch {
                    tp: TopicPartition {
                        topic: Arc::clone(name),
                        partition: p.partition,
                    },
                    fetch_offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes.max(0) as usize,
                    current_leader_epoch: p.current_leader_epoch,
                    log_start_offset: p.log_start_offset,
                }),
            });
        }
    }
    out
}

/// Kafka refuses consumer fetches below `ZSTD_FETCH_VERSION` of partitions whose topic is
/// configured `compression.type=zstd` (UNSUPPORTED_COMPRESSION_TYPE): those clients may not
/// decode zstd. Batches a producer compressed with zstd on other topics are served as they are.
/// Consumers need READ on each topic.
fn refuse_unreadable_topics(
    broker: &Broker,
    ctx: &RequestContext,
    partitions: &mut [Result<PartitionFetch, ServeError>],
) {
    if !broker.authorizer.enabled() {
        return;
    }
    let mut decided: std::collections::HashMap<Arc<str>, bool> = Default::default();
    for p in partitions.iter_mut() {
        let Ok(fetch) = p else { continue };
        let topic = fetch.tp.topic.clone();
        let readable = *decided.entry(topic.clone()).or_insert_with(|| {
            authorize(broker, ctx, Operation::Read, ResourceType::Topic, &topic)
        });
        if !readable {
            *p = Err(ServeError::TopicAuthorizationFailed);
        }
    }
}

fn refuse_zstd_topics(broker: &Broker, partitions: &mut [Result<PartitionFetch, ServeError>]) {
    for p in partitions.iter_mut() {
        let Ok(fetch) = p else { continue };
        let zstd = broker
            .replicas
            .hosted_partition(&fetch.tp)
            .is_some_and(|r| r.compression() == CompressionType::Codec(Codec::Zstd));
        if zstd {
            *p = Err(ServeError::UnsupportedCompressionType);
        }
    }
}

fn partition_data(index: i32, f: &FetchedPartition) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(f.error.as_ref().map_or(0, KafkaCode::code))
        .with_high_watermark(f.high_watermark)
        .with_last_stable_offset(f.last_stable_offset)
        .with_log_start_offset(f.log_start_offset)
        .with_aborted_transactions(f.aborted_transactions.as_ref().map(|txns| {
            txns.iter()
                .map(|t| {
                    AbortedTransaction::default()
                        .with_producer_id(ProducerId(t.producer_id))
                        .with_first_offset(t.first_offset)
                })
                .collect()
        }))
        .with_records(Some(f.records.clone()))
}

/// The record sets of a Fetch answer of at least `min_len` bytes, in the order they are encoded.
pub fn fetch_record_sets(response: &FetchResponse, min_len: usize) -> Vec<Bytes> {
    response
        .responses
        .iter()
        .flat_map(|topic| &topic.partitions)
        .filter_map(|p| p.records.as_ref())
        .filter(|r| r.len() >= min_len)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use kafka_protocol::messages::ApiKey;

    use super::*;
    use crate::api::Principal;

    fn ctx(version: i16) -> RequestContext {
        RequestContext {
            api_key: ApiKey::Fetch,
            api_version: version,
            correlation_id: 9,
            client_id: None,
            client_address: SocketAddr::from(([127, 0, 0, 1], 1)),
            listener: "PLAINTEXT".into(),
            principal: Principal::anonymous(),
        }
    }

    #[test]
    fn fetch_frames_share_record_sets_and_match_the_copied_encoding() {
        let set = |len: usize, seed: u8| -> Bytes {
            (0..len)
                .map(|i| (i as u8) ^ seed)
                .collect::<Vec<u8>>()
                .into()
        };
        let partition = |i: i32, records: Bytes| {
            PartitionData::default()
                .with_partition_index(i)
                .with_records(Some(records))
        };
        let topic = |parts| FetchableTopicResponse::default().with_partitions(parts);
        let response = FetchResponse::default().with_responses(vec![
            topic(vec![
                partition(0, set(100_000, 1)),
                partition(1, set(10, 2)),
            ]),
            topic(vec![partition(0, Bytes::new()), partition(1, set(4096, 3))]),
        ]);
        let shared = fetch_record_sets(&response, SHARE_RECORDS_MIN);
        assert_eq!(shared.len(), 2);
        for v in 4..=17 {
            let copied = Reply::from(response.clone())
                .encode(&ctx(v))
                .unwrap()
                .unwrap();
            let vectored = Reply::sharing(response.clone(), shared.clone())
                .encode(&ctx(v))
                .unwrap()
                .unwrap();
            assert_eq!(copied.part_count(), 1);
            assert!(vectored.part_count() >= 4, "v{v}: record sets are parts");
            assert_eq!(vectored.to_bytes(), copied.to_bytes(), "v{v}");
        }
    }
}
