//! Fetch: serve stored record batches, long-polling until enough data arrives or max_wait expires.
//!
//! Fetch sessions (KIP-227) are not created: every answer carries session id 0, which tells
//! clients to keep sending full requests. The stored bytes are handed out as they are on disk.
//!
//! Consumers (replica id -1) read below the high watermark, from the leader only. A follower
//! broker (replica id >= 0: `replica_id` up to v14, `replica_state.replica_id` from v15) reads up
//! to the log end; its fetch offset is recorded as its log end offset, which may move the high
//! watermark and the ISR (see `Partition::record_follower_fetch`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use tokio::time::Instant;
use tracing::debug;
use uuid::Uuid;

use super::error_codes::KafkaCode;
use crate::broker::Broker;
use crate::maintenance::now_ms;
use crate::replica::Partition;

/// Session epoch of a sessionless (full) fetch.
const FINAL_EPOCH: i32 = -1;
/// Isolation level read_committed.
const READ_COMMITTED: i8 = 1;

/// One requested partition, resolved against this broker's replicas.
struct Target {
    topic_index: usize,
    index: i32,
    fetch_offset: i64,
    max_bytes: usize,
    current_leader_epoch: i32,
    /// The follower's log start offset (follower fetches).
    log_start_offset: i64,
    replica: Result<Arc<Partition>, ResponseError>,
}

pub async fn handle(broker: &Broker, req: FetchRequest, version: i16) -> FetchResponse {
    if req.session_id != 0 || (req.session_epoch != FINAL_EPOCH && req.session_epoch != 0) {
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0);
    }
    let replica_id = if version <= 14 {
        req.replica_id.0
    } else {
        req.replica_state.replica_id.0
    };
    let (topics, mut targets) = resolve(broker, &req, version);
    if replica_id >= 0 {
        record_follower_fetches(&mut targets, replica_id, now_ms());
    }
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let min_bytes = req.min_bytes.max(0) as usize;
    let max_bytes = if req.max_bytes <= 0 {
        usize::MAX
    } else {
        req.max_bytes as usize
    };
    let read_committed = req.isolation_level == READ_COMMITTED;
    loop {
        // Subscribe before reading so data arriving in between still wakes us.
        let mut watchers: Vec<_> = targets
            .iter()
            .filter_map(|t| t.replica.as_ref().ok().map(|p| p.subscribe()))
            .collect();
        let (partitions, total, any_error) =
            read_all(&targets, max_bytes, read_committed, replica_id);
        if total >= min_bytes || any_error || Instant::now() >= deadline || watchers.is_empty() {
            return assemble(topics, targets, partitions);
        }
        let changed = select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let (partitions, _, _) = read_all(&targets, max_bytes, read_committed, replica_id);
            return assemble(topics, targets, partitions);
        }
    }
}

fn resolve(
    broker: &Broker,
    req: &FetchRequest,
    version: i16,
) -> (Vec<(TopicName, Uuid)>, Vec<Target>) {
    let mut topics = Vec::with_capacity(req.topics.len());
    let mut targets = Vec::new();
    for (topic_index, topic) in req.topics.iter().enumerate() {
        let name = if version >= 13 {
            broker
                .cluster
                .topic_by_id(topic.topic_id)
                .map(|t| t.name.clone())
        } else {
            Some(topic.topic.0.to_string())
        };
        topics.push((topic.topic.clone(), topic.topic_id));
        for p in &topic.partitions {
            let replica = match &name {
                None => Err(ResponseError::UnknownTopicId),
                Some(name) => broker
                    .replicas
                    .partition(name, p.partition)
                    .ok_or(ResponseError::UnknownTopicOrPartition),
            };
            targets.push(Target {
                topic_index,
                index: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as usize,
                current_leader_epoch: p.current_leader_epoch,
                log_start_offset: p.log_start_offset,
                replica,
            });
        }
    }
    (topics, targets)
}

/// A follower's fetch: checks leadership, the follower's epoch and membership in the replica set,
/// then records its position once (before the first read, as Kafka does). Failures become the
/// partition's error.
fn record_follower_fetches(targets: &mut [Target], replica_id: i32, now_ms: i64) {
    for t in targets.iter_mut() {
        let Ok(p) = &t.replica else { continue };
        let checked = if !p.is_leader() {
            Err(ResponseError::NotLeaderOrFollower)
        } else if let Err(e) = p.check_leader_epoch(t.current_leader_epoch) {
            Err(e.kafka_error())
        } else if t.fetch_offset < p.log.log_start_offset()
            || t.fetch_offset > p.log.log_end_offset()
        {
            // Not a position in this log: answered OFFSET_OUT_OF_RANGE by the read, not recorded
            // (Kafka records only successful follower reads).
            Ok(())
        } else {
            p.record_follower_fetch(replica_id, t.fetch_offset, t.log_start_offset, now_ms)
                .map_err(|e| e.kafka_error())
        };
        if let Err(e) = checked {
            debug!(partition = %p.tp, replica_id, error = ?e, "follower fetch refused");
            t.replica = Err(e);
        }
    }
}

/// Reads every target within the response budget; returns per-target data, total bytes and
/// whether any partition carries an error.
fn read_all(
    targets: &[Target],
    max_bytes: usize,
    read_committed: bool,
    replica_id: i32,
) -> (Vec<PartitionData>, usize, bool) {
    let mut budget = max_bytes;
    let mut total = 0usize;
    let mut any_error = false;
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let data = read_one(t, budget, total == 0, read_committed, replica_id >= 0);
        let size = data.records.as_ref().map_or(0, Bytes::len);
        any_error |= data.error_code != 0;
        total += size;
        budget = budget.saturating_sub(size);
        out.push(data);
    }
    (out, total, any_error)
}

fn read_one(
    t: &Target,
    budget: usize,
    first: bool,
    _read_committed: bool,
    from_follower: bool,
) -> PartitionData {
    let empty = PartitionData::default()
        .with_partition_index(t.index)
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_records(Some(Bytes::new()));
    let partition = match &t.replica {
        Ok(p) => p,
        Err(code) => return empty.with_error_code(code.code()),
    };
    let hw = partition.high_watermark();
    let log_start = partition.log.log_start_offset();
    let base = empty
        .with_high_watermark(hw)
        .with_last_stable_offset(hw)
        .with_log_start_offset(log_start);
    // Only the leader serves reads (a follower's data may be cut at the next leader change).
    if !partition.is_leader() {
        return base.with_error_code(ResponseError::NotLeaderOrFollower.code());
    }
    if let Err(e) = partition.check_leader_epoch(t.current_leader_epoch) {
        return base.with_error_code(e.code());
    }
    let limit = t.max_bytes.min(budget);
    // Followers read up to the log end, consumers up to the high watermark.
    let upper = if from_follower {
        partition.log.log_end_offset()
    } else {
        hw
    };
    // The offset may equal the upper bound (nothing new yet); past it is out of range.
    if t.fetch_offset > upper || t.fetch_offset < log_start {
        return base.with_error_code(ResponseError::OffsetOutOfRange.code());
    }
    if t.fetch_offset == upper || (limit == 0 && !first) {
        return base;
    }
    match partition
        .log
        .read(t.fetch_offset, limit, first, Some(upper))
    {
        Ok(data) => base.with_records(Some(data.records)),
        Err(e) => base.with_error_code(e.code()),
    }
}

fn assemble(
    topics: Vec<(TopicName, Uuid)>,
    targets: Vec<Target>,
    partitions: Vec<PartitionData>,
) -> FetchResponse {
    let mut responses: Vec<FetchableTopicResponse> = topics
        .into_iter()
        .map(|(name, id)| {
            FetchableTopicResponse::default()
                .with_topic(name)
                .with_topic_id(id)
        })
        .collect();
    for (target, data) in targets.iter().zip(partitions) {
        responses[target.topic_index].partitions.push(data);
    }
    FetchResponse::default()
        .with_session_id(0)
        .with_responses(responses)
}
