//! Delayed fetch (Kafka's `ReplicaManager.fetchMessages` and DelayedFetch "purgatory", per
//! request): every partition of a Fetch is read through its replica's gate, and the answer waits
//! until `min_bytes` are there, a partition has an error, or `max_wait` expires. Each waiting
//! request is its own future woken by its partitions' signals; nothing blocks other connections.
//!
//! A follower broker's fetch is recorded on each partition once, before the first read, as Kafka
//! does: its position may move the high watermark and the ISR.
//!
//! Leader-side replication throttle (Kafka's `shouldLeaderThrottle`): a partition its topic's
//! `leader.replication.throttled.replicas` names on this broker, fetched by a follower outside
//! the ISR while the leader quota is exceeded, is answered without records (and its bytes do
//! not count towards `min_bytes`); the records sent to followers for partitions the list names
//! are recorded against the leader quota once the answer is final.

use std::sync::Arc;
use std::time::Duration;

use futures::future::select_all;
use tokio::time::Instant;
use tracing::debug;

use super::partition::{FetchIsolation, FetchedPartition, Partition, ServeError};
use super::quota::{should_leader_throttle, ReplicationQuota};
use super::ReplicaManager;
use crate::log::TopicPartition;
use crate::util::clock::now_ms;

/// Who fetches, which decides how far they may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchReader {
    /// A consumer, reading up to what its isolation level allows.
    Consumer(FetchIsolation),
    /// A follower broker with this id, reading up to the log end.
    Follower(i32),
}

impl FetchReader {
    fn isolation(self) -> FetchIsolation {
        match self {
            FetchReader::Consumer(isolation) => isolation,
            FetchReader::Follower(_) => FetchIsolation::LogEnd,
        }
    }
}

/// The request-wide settings of a fetch.
#[derive(Clone, Copy, Debug)]
pub struct FetchParams {
    pub reader: FetchReader,
    pub max_wait: Duration,
    /// Answer as soon as this many bytes are there.
    pub min_bytes: usize,
    /// Bytes of the whole answer (at least one batch is handed out regardless).
    pub max_bytes: usize,
}

/// One partition of a fetch.
#[derive(Clone, Debug)]
pub struct PartitionFetch {
    pub tp: TopicPartition,
    pub fetch_offset: i64,
    /// Bytes of this partition's part of the answer.
    pub max_bytes: usize,
    /// The leader epoch the caller knows (-1: not given).
    pub current_leader_epoch: i32,
    /// A follower's own log start offset (-1 from consumers).
    pub log_start_offset: i64,
}

/// A partition of the request as it is served: its replica, or why there is none. A failed
/// partition ends the fetch at its first read, so its error is handed out once.
enum Target {
    Serving {
        fetch: PartitionFetch,
        partition: Arc<Partition>,
    },
    Failed(Option<ServeError>),
}

impl ReplicaManager {
    /// Serves one Fetch request. `partitions` are in request order; entries the caller could not
    /// resolve (an unknown topic id) come as errors and are answered as such. The answers are in
    /// the same order.
    pub async fn fetch(
        &self,
        params: FetchParams,
        partitions: Vec<Result<PartitionFetch, ServeError>>,
    ) -> Vec<FetchedPartition> {
        let mut targets: Vec<Target> = partitions.into_iter().map(|p| self.resolve(p)).collect();
        if let FetchReader::Follower(replica_id) = params.reader {
            record_follower_fetches(&mut targets, replica_id, now_ms());
        }
        let quota = &self.shared.quotas.leader;
        let deadline = Instant::now() + params.max_wait;
        loop {
            // Subscribe before reading so data arriving in between still wakes us.
            let mut watchers: Vec<_> = targets
                .iter()
                .filter_map(|t| match t {
                    Target::Serving { partition, .. } => Some(partition.subscribe()),
                    Target::Failed(_) => None,
                })
                .collect();
            let (answers, total, any_error) = read_all(&mut targets, &params, quota);
            let done = total >= params.min_bytes
                || any_error
                || Instant::now() >= deadline
                || watchers.is_empty();
            if done {
                return answered(&targets, answers, &params, quota);
            }
            let changed = select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let answers = read_all(&mut targets, &params, quota).0;
                return answered(&targets, answers, &params, quota);
            }
        }
    }

    fn resolve(&self, fetch: Result<PartitionFetch, ServeError>) -> Target {
        match fetch {
            Err(e) => Target::Failed(Some(e)),
            Ok(fetch) => match self.hosted_partition(&fetch.tp) {
                Some(partition) => Target::Serving { fetch, partition },
                None => Target::Failed(Some(ServeError::UnknownTopicOrPartition)),
            },
        }
    }
}

/// A follower's fetch: recorded once, before the first read. A refusal becomes the partition's
/// error, and the partition is not read.
fn record_follower_fetches(targets: &mut [Target], replica_id: i32, now_ms: i64) {
    for t in targets.iter_mut() {
        let Target::Serving { fetch, partition } = t else {
            continue;
        };
        if let Err(e) = partition.accept_follower_fetch(
            replica_id,
            fetch.fetch_offset,
            fetch.log_start_offset,
            fetch.current_leader_epoch,
            now_ms,
        ) {
            debug!(partition = %partition.tp, replica_id, error = %e, "follower fetch refused");
            *t = Target::Failed(Some(e));
        }
    }
}

/// Whether the leader throttle holds back this partition's records from `reader` now.
fn leader_throttled(partition: &Partition, reader: FetchReader, quota: &ReplicationQuota) -> bool {
    let FetchReader::Follower(replica_id) = reader else {
        return false;
    };
    let throttled = should_leader_throttle(
        partition.throttled().leader,
        partition.in_isr(replica_id),
        || quota.is_exceeded(),
    );
    if throttled {
        debug!(partition = %partition.tp, replica_id, "leader replication throttle: no records sent");
    }
    throttled
}

/// Reads every target within the response budget; returns the answers, their total bytes and
/// whether any partition has an error. Throttled partitions are answered without records.
fn read_all(
    targets: &mut [Target],
    params: &FetchParams,
    quota: &ReplicationQuota,
) -> (Vec<FetchedPartition>, usize, bool) {
    let isolation = params.reader.isolation();
    let mut budget = params.max_bytes;
    let mut total = 0usize;
    let mut any_error = false;
    let mut out = Vec::with_capacity(targets.len());
    for t in targets.iter_mut() {
        let answer = match t {
            Target::Serving { fetch, partition } => {
                // A throttled partition is still checked (errors are answered), not read.
                let throttled = leader_throttled(partition, params.reader, quota);
                partition.fetch_read(
                    fetch.fetch_offset,
                    if throttled {
                        0
                    } else {
                        fetch.max_bytes.min(budget)
                    },
                    total == 0 && !throttled,
                    fetch.current_leader_epoch,
                    isolation,
                )
            }
            Target::Failed(error) => FetchedPartition::failed(
                error.take().unwrap_or(ServeError::UnknownTopicOrPartition),
            ),
        };
        let size = answer.records.len();
        any_error |= answer.error.is_some();
        total += size;
        budget = budget.saturating_sub(size);
        out.push(answer);
    }
    (out, total, any_error)
}

/// The final answer of a fetch: records sent to a follower for partitions named by their
/// topic's leader throttled-replica list are recorded against the leader quota (Kafka records
/// them whether or not the follower is in the ISR).
fn answered(
    targets: &[Target],
    answers: Vec<FetchedPartition>,
    params: &FetchParams,
    quota: &ReplicationQuota,
) -> Vec<FetchedPartition> {
    if !matches!(params.reader, FetchReader::Follower(_)) {
        return answers;
    }
    let throttled_bytes: usize = targets
        .iter()
        .zip(&answers)
        .filter(
            |(t, _)| matches!(t, Target::Serving { partition, .. } if partition.throttled().leader),
        )
        .map(|(_, a)| a.records.len())
        .sum();
    if throttled_bytes > 0 {
        quota.record(throttled_bytes);
    }
    answers
}
