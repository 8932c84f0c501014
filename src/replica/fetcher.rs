//! Follower side (Kafka's ReplicaFetcherThread / AbstractFetcherThread): one tokio task per leader
//! broker fetches every partition this broker follows from that leader.
//!
//! A partition joins its leader's fetcher in the `Truncating` phase: before fetching at a new
//! leader epoch it asks the leader where its latest epoch ends (OffsetForLeaderEpoch) and cuts its
//! log there, so divergent history is never kept. Then `Fetching`: Fetch v12 with
//! `replica_id` = this broker, appends with `append_as_follower`, high watermark = min(leader's
//! high watermark, own log end), log start = the leader's (checkpointed before the next fetch
//! reports it, then the segments below it are deleted). Errors back off `replica.fetch.backoff.ms`; a partition whose
//! leader changed waits for the next `apply_state`, which moves it to another fetcher.
//!
//! Follower-side replication throttle (Kafka's `shouldFollowerThrottle`): a partition its
//! topic's `follower.replication.throttled.replicas` names on this broker is left out of the
//! fetch while it is not in sync (its log end was below the leader's high watermark at the last
//! answer, or no answer came yet) and the follower quota is exceeded; the records received for
//! partitions the list names are recorded against the quota. When every partition is left out
//! the fetcher waits `replica.fetch.backoff.ms` (or until its partitions change).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::partition::Partition;
use super::peer::{PeerConnection, PeerError};
use super::quota::{should_follower_throttle, ReplicationQuota};
use super::Shared;
use crate::log::{FollowerAppendError, TopicPartition, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};
use crate::util::clock::now_ms;

/// Fetch version used by followers: the last one with `replica_id` in the body and topic names.
pub const FOLLOWER_FETCH_VERSION: i16 = 12;
/// OffsetForLeaderEpoch version used by followers.
pub const FOLLOWER_EPOCH_VERSION: i16 = 4;

/// Where a follower cuts its log after the leader answered OffsetForLeaderEpoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncation {
    pub offset: i64,
    /// `false`: truncate, then ask the leader again with the (now older) latest epoch.
    pub completed: bool,
}

/// Kafka's `getOffsetTruncationState`. `leader_epoch`/`leader_end_offset` are the leader's answer
/// for the follower's latest epoch; `follower_end_for(e)` is the follower's own
/// `leader_epoch_end_offset(e)` ((-1, -1) when unknown).
pub fn truncation_for(
    leader_epoch: i32,
    leader_end_offset: i64,
    follower_end_for: impl Fn(i32) -> (i32, i64),
    follower_leo: i64,
    follower_hw: i64,
) -> Truncation {
    if leader_end_offset == UNDEFINED_EPOCH_OFFSET {
        // The leader knows no epoch <= ours: keep only what was committed.
        return Truncation {
            offset: follower_hw.min(follower_leo),
            completed: true,
        };
    }
    if leader_epoch == UNDEFINED_EPOCH {
        // An end offset without an epoch (old leaders): trust the offset.
        return Truncation {
            offset: leader_end_offset.min(follower_leo),
            completed: true,
        };
    }
    let (own_epoch, own_end) = follower_end_for(leader_epoch);
    if own_end == UNDEFINED_EPOCH_OFFSET {
        // No epoch <= the leader's in our log.
        return Truncation {
            offset: follower_hw.min(follower_leo),
            completed: true,
        };
    }
    if own_epoch != leader_epoch {
        // We never saw the leader's epoch: cut to the end of our largest older epoch and ask again.
        return Truncation {
            offset: own_end.min(follower_leo),
            completed: false,
        };
    }
    Truncation {
        offset: leader_end_offset.min(own_end).min(follower_leo),
        completed: true,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Truncating,
    Fetching,
}

#[derive(Clone)]
struct Entry {
    partition: Arc<Partition>,
    epoch: i32,
    phase: Phase,
    retry_at: Option<Instant>,
    /// How far the log end was below the leader's high watermark at the last answer (`None`:
    /// no answer yet at this epoch); 0 is in sync (Kafka's `PartitionFetchState.lag`).
    lag: Option<i64>,
}

/// The partitions one fetcher task serves.
struct Work {
    leader: i32,
    partitions: Mutex<HashMap<TopicPartition, Entry>>,
    wake: Notify,
}

impl Work {
    /// Updates the entry of `tp` if it is still at `epoch`.
    fn update(&self, tp: &TopicPartition, epoch: i32, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.partitions.lock().get_mut(tp) {
            if e.epoch == epoch {
                f(e);
            }
        }
    }
}

struct Fetcher {
    work: Arc<Work>,
    task: JoinHandle<()>,
}

/// Every fetcher task of this broker, keyed by leader broker id.
pub(super) struct Fetchers {
    shared: Arc<Shared>,
    by_leader: Mutex<HashMap<i32, Fetcher>>,
}

impl Fetchers {
    pub(super) fn new(shared: Arc<Shared>) -> Fetchers {
        Fetchers {
            shared,
            by_leader: Mutex::new(HashMap::new()),
        }
    }

    /// Makes `partition` fetch from `leader` at `epoch`, starting with truncation. A leader of -1
    /// (none) only removes it from its current fetcher.
    pub(super) fn add(&self, partition: Arc<Partition>, leader: i32, epoch: i32) {
        let tp = partition.tp.clone();
        let mut by_leader = self.by_leader.lock();
        remove_locked(&mut by_leader, &tp, Some(leader));
        if leader < 0 {
            return;
        }
        let fetcher = match by_leader.entry(leader) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let Some(runtime) = self.shared.runtime.get() else {
                    warn!(partition = %tp, leader, "no cluster link set: follower cannot fetch");
                    return;
                };
                let work = Arc::new(Work {
                    leader,
                    partitions: Mutex::new(HashMap::new()),
                    wake: Notify::new(),
                });
                let task = runtime.spawn(run(work.clone(), self.shared.clone()));
                info!(leader, "started replica fetcher");
                v.insert(Fetcher { work, task })
            }
        };
        fetcher.work.partitions.lock().insert(
            tp,
            Entry {
                partition,
                epoch,
                phase: Phase::Truncating,
                retry_at: None,
                lag: None,
            },
        );
        fetcher.work.wake.notify_one();
    }

    /// Like `add`, unless `leader`'s fetcher already serves the partition at `epoch`.
    pub(super) fn ensure(&self, partition: Arc<Partition>, leader: i32, epoch: i32) {
        let present = self.by_leader.lock().get(&leader).is_some_and(|f| {
            f.work
                .partitions
                .lock()
                .get(&partition.tp)
                .is_some_and(|e| e.epoch == epoch)
        });
        if !present {
            self.add(partition, leader, epoch);
        }
    }

    /// Stops fetching `tp`; a fetcher left without partitions ends.
    pub(super) fn remove(&self, tp: &TopicPartition) {
        remove_locked(&mut self.by_leader.lock(), tp, None);
    }

    /// Ends every fetcher task and waits for them.
    pub(super) async fn shutdown(&self) {
        let fetchers: Vec<Fetcher> = self.by_leader.lock().drain().map(|(_, f)| f).collect();
        for f in &fetchers {
            f.task.abort();
        }
        for f in fetchers {
            let _ = f.task.await;
        }
    }

    /// Leader ids with a running fetcher (tests, diagnostics).
    pub(super) fn leaders(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.by_leader.lock().keys().copied().collect();
        v.sort_unstable();
        v
    }
}

impl Drop for Fetchers {
    fn drop(&mut self) {
        for (_, f) in self.by_leader.lock().drain() {
            f.task.abort();
        }
    }
}

/// Removes `tp` from every fetcher except `keep`'s; idle fetchers stop.
fn remove_locked(by_leader: &mut HashMap<i32, Fetcher>, tp: &TopicPartition, keep: Option<i32>) {
    by_leader.retain(|leader, f| {
        if Some(*leader) == keep {
            return true;
        }
        let mut parts = f.work.partitions.lock();
        parts.remove(tp);
        if parts.is_empty() {
            f.task.abort();
            info!(leader, "stopped idle replica fetcher");
            return false;
        }
        true
    });
}

/// The fetcher task of one leader.
async fn run(work: Arc<Work>, shared: Arc<Shared>) {
    let settings = shared.settings.clone();
    let backoff = Duration::from_millis(settings.fetch_backoff_ms);
    let mut conn: Option<PeerConnection> = None;
    loop {
        let now = Instant::now();
        let (ready, next_retry): (Vec<(TopicPartition, Entry)>, Option<Instant>) = {
            let parts = work.partitions.lock();
            let ready = parts
                .iter()
                .filter(|(_, e)| e.retry_at.is_none_or(|t| t <= now))
                .map(|(tp, e)| (tp.clone(), e.clone()))
                .collect();
            let next = parts.values().filter_map(|e| e.retry_at).min();
            (ready, next)
        };
        if ready.is_empty() {
            let until = next_retry.unwrap_or(now + Duration::from_secs(3600));
            tokio::select! {
                _ = work.wake.notified() => {}
                _ = tokio::time::sleep_until(until) => {}
            }
            continue;
        }
        if conn.is_none() {
            match connect(&work, &shared).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    debug!(leader = work.leader, error = %e, "cannot reach leader");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let truncating: Vec<(TopicPartition, Entry)> = ready
            .iter()
            .filter(|(_, e)| e.phase == Phase::Truncating)
            .cloned()
            .collect();
        let result = if !truncating.is_empty() {
            truncate(c, &work, &shared, truncating).await
        } else {
            fetch(c, &work, &shared, ready).await
        };
        if let Err(e) = result {
            info!(leader = work.leader, error = %e, "replica fetch failed; reconnecting");
            conn = None;
            tokio::time::sleep(backoff).await;
        }
    }
}

async fn connect(work: &Work, shared: &Shared) -> Result<PeerConnection, PeerError> {
    let link = shared.link();
    let Some((host, port)) = link.as_ref().and_then(|l| l.broker_endpoint(work.leader)) else {
        return Err(PeerError::Protocol(format!(
            "no endpoint known for broker {}",
            work.leader
        )));
    };
    let s = &shared.settings;
    // A fetch answer holds up to the response limit, and at least one whole batch.
    let cap = (s.fetch_response_max_bytes.max(s.fetch_max_bytes).max(0) as usize)
        .saturating_add(16 << 20);
    let dialer = link
        .map(|l| l.dialer())
        .ok_or_else(|| PeerError::Protocol("no cluster link".into()))?;
    dialer
        .connect(
            &host,
            port,
            format!("broker-{}-fetcher-{}", shared.broker_id, work.leader),
            cap,
            Duration::from_millis(s.socket_timeout_ms),
        )
        .await
}

fn topic_name(tp: &TopicPartition) -> TopicName {
    TopicName(StrBytes::from_string(tp.topic.to_string()))
}

/// Runs the truncation step of `entries` (OffsetForLeaderEpoch, then truncate).
async fn truncate(
    conn: &mut PeerConnection,
    work: &Work,
    shared: &Shared,
    entries: Vec<(TopicPartition, Entry)>,
) -> Result<(), PeerError> {
    let backoff = Duration::from_millis(shared.settings.fetch_backoff_ms);
    let mut asked: HashMap<(String, i32), (TopicPartition, Entry)> = HashMap::new();
    let mut topics: Vec<OffsetForLeaderTopic> = Vec::new();
    for (tp, e) in entries {
        let Some(latest) = e.partition.latest_local_epoch() else {
            // No epoch history (empty log or pre-epoch data): keep what was committed.
            let hw = e.partition.high_watermark();
            finish_truncation(work, &tp, &e, hw, backoff);
            continue;
        };
        let p = OffsetForLeaderPartition::default()
            .with_partition(tp.partition)
            .with_current_leader_epoch(e.epoch)
            .with_leader_epoch(latest);
        match topics.iter_mut().find(|t| *t.topic.0 == *tp.topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                OffsetForLeaderTopic::default()
                    .with_topic(topic_name(&tp))
                    .with_partitions(vec![p]),
            ),
        }
        asked.insert((tp.topic.to_string(), tp.partition), (tp, e));
    }
    if topics.is_empty() {
        return Ok(());
    }
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(shared.broker_id))
        .with_topics(topics);
    let resp: OffsetForLeaderEpochResponse = conn
        .call(
            ApiKey::OffsetForLeaderEpoch,
            FOLLOWER_EPOCH_VERSION,
            &req,
            Duration::ZERO,
        )
        .await?;
    for t in resp.topics {
        for r in t.partitions {
            let Some((tp, e)) = asked.remove(&(t.topic.0.to_string(), r.partition)) else {
                continue;
            };
            if r.error_code != 0 {
                debug!(partition = %tp, error = r.error_code, "OffsetForLeaderEpoch refused");
                work.update(&tp, e.epoch, |x| {
                    x.retry_at = Some(Instant::now() + backoff)
                });
                continue;
            }
            let p = &e.partition;
            let decision = truncation_for(
                r.leader_epoch,
                r.end_offset,
                |epoch| p.local_epoch_end_offset(epoch),
                p.log_end_offset(),
                e.partition.high_watermark(),
            );
            if decision.completed {
                finish_truncation(work, &tp, &e, decision.offset, backoff);
            } else if let Err(err) = e.partition.truncate_as_follower(e.epoch, decision.offset) {
                warn!(partition = %tp, error = %err, "truncation failed");
                work.update(&tp, e.epoch, |x| {
                    x.retry_at = Some(Instant::now() + backoff)
                });
            }
        }
    }
    // Partitions the leader did not answer for: try again later.
    for (_, (tp, e)) in asked {
        work.update(&tp, e.epoch, |x| {
            x.retry_at = Some(Instant::now() + backoff)
        });
    }
    Ok(())
}

fn finish_truncation(work: &Work, tp: &TopicPartition, e: &Entry, offset: i64, backoff: Duration) {
    let before = e.partition.log_end_offset();
    match e.partition.truncate_as_follower(e.epoch, offset) {
        Ok(true) => {
            info!(partition = %tp, epoch = e.epoch, leader = work.leader, offset,
                log_end_before = before, "follower truncation done; fetching");
            work.update(tp, e.epoch, |x| {
                x.phase = Phase::Fetching;
                x.retry_at = None;
            });
        }
        Ok(false) => {}
        Err(err) => {
            warn!(partition = %tp, error = %err, "truncation failed");
            work.update(tp, e.epoch, |x| x.retry_at = Some(Instant::now() + backoff));
        }
    }
}

/// One Fetch round for `entries` (all in the `Fetching` phase).
async fn fetch(
    conn: &mut PeerConnection,
    work: &Work,
    shared: &Shared,
    entries: Vec<(TopicPartition, Entry)>,
) -> Result<(), PeerError> {
    let s = &shared.settings;
    let backoff = Duration::from_millis(s.fetch_backoff_ms);
    let quota = &shared.quotas.follower;
    let entries = unthrottled(entries, quota);
    if entries.is_empty() {
        // Every partition is throttled: back off as Kafka does, rather than spin.
        tokio::select! {
            _ = work.wake.notified() => {}
            _ = tokio::time::sleep(backoff) => {}
        }
        return Ok(());
    }
    let mut topics: Vec<FetchTopic> = Vec::new();
    let mut asked: HashMap<(String, i32), (TopicPartition, Entry, i64)> = HashMap::new();
    for (tp, e) in entries {
        let offset = e.partition.log_end_offset();
        let p = FetchPartition::default()
            .with_partition(tp.partition)
            .with_current_leader_epoch(e.epoch)
            .with_fetch_offset(offset)
            .with_log_start_offset(e.partition.log_start_offset())
            .with_partition_max_bytes(s.fetch_max_bytes);
        match topics.iter_mut().find(|t| *t.topic.0 == *tp.topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(topic_name(&tp))
                    .with_partitions(vec![p]),
            ),
        }
        asked.insert((tp.topic.to_string(), tp.partition), (tp, e, offset));
    }
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(shared.broker_id))
        .with_max_wait_ms(s.fetch_wait_max_ms)
        .with_min_bytes(s.fetch_min_bytes)
        .with_max_bytes(s.fetch_response_max_bytes)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics);
    let wait = Duration::from_millis(s.fetch_wait_max_ms.max(0) as u64);
    let resp: FetchResponse = conn
        .call(ApiKey::Fetch, FOLLOWER_FETCH_VERSION, &req, wait)
        .await?;
    if resp.error_code != 0 {
        debug!(
            leader = work.leader,
            error = resp.error_code,
            "fetch refused"
        );
        for (tp, e, _) in asked.values() {
            work.update(tp, e.epoch, |x| x.retry_at = Some(Instant::now() + backoff));
        }
        return Ok(());
    }
    let now = now_ms();
    let mut starts_moved: Vec<Arc<Partition>> = Vec::new();
    for t in resp.responses {
        for pd in t.partitions {
            let Some((tp, e, offset)) = asked.remove(&(t.topic.0.to_string(), pd.partition_index))
            else {
                continue;
            };
            let code = pd.error_code;
            if code == 0 {
                let records = pd.records.unwrap_or_default();
                match e
                    .partition
                    .append_as_follower(e.epoch, &records, pd.high_watermark, now)
                {
                    Ok(_) => {
                        after_append(work, &tp, &e, records.len(), pd.high_watermark, quota);
                        match e
                            .partition
                            .follow_leader_log_start(e.epoch, pd.log_start_offset)
                        {
                            Ok(true) => starts_moved.push(e.partition.clone()),
                            Ok(false) => {}
                            Err(err) => {
                                warn!(partition = %tp, error = %err, "moving the log start failed");
                            }
                        }
                    }
                    Err(FollowerAppendError::OffsetMismatch { expected, got, .. }) => {
                        debug!(partition = %tp, expected, got, "stale fetch answer ignored");
                    }
                    Err(err) => {
                        warn!(partition = %tp, error = %err, "appending replicated data failed");
                        work.update(&tp, e.epoch, |x| {
                            x.retry_at = Some(Instant::now() + backoff)
                        });
                    }
                }
            } else if code == ResponseError::OffsetOutOfRange.code() {
                handle_out_of_range(work, &tp, &e, offset, pd.log_start_offset, backoff);
            } else {
                debug!(partition = %tp, error = code, leader = work.leader, "fetch error; backing off");
                work.update(&tp, e.epoch, |x| {
                    x.retry_at = Some(Instant::now() + backoff)
                });
            }
        }
    }
    for (_, (tp, e, _)) in asked {
        work.update(&tp, e.epoch, |x| {
            x.retry_at = Some(Instant::now() + backoff)
        });
    }
    follow_log_starts(shared, &starts_moved);
    Ok(())
}

/// The entries to fetch now: those the follower throttle does not hold back.
fn unthrottled(
    entries: Vec<(TopicPartition, Entry)>,
    quota: &ReplicationQuota,
) -> Vec<(TopicPartition, Entry)> {
    entries
        .into_iter()
        .filter(|(tp, e)| {
            let throttled =
                should_follower_throttle(e.partition.throttled().follower, e.lag, || {
                    quota.is_exceeded()
                });
            if throttled {
                debug!(partition = %tp, lag = ?e.lag, "follower replication throttle: not fetched");
            }
            !throttled
        })
        .collect()
}

/// After an answer was appended: the lag behind the leader's high watermark is kept, and the
/// bytes of a partition the follower throttled-replica list names are recorded.
fn after_append(
    work: &Work,
    tp: &TopicPartition,
    e: &Entry,
    bytes: usize,
    leader_hw: i64,
    quota: &ReplicationQuota,
) {
    let lag = (leader_hw - e.partition.log_end_offset()).max(0);
    work.update(tp, e.epoch, |x| x.lag = Some(lag));
    if bytes > 0 && e.partition.throttled().follower {
        quota.record(bytes);
    }
}

/// Log starts taken from the leader are checkpointed before the next fetch reports them (the
/// leader answers a DeleteRecords once every live replica reported it), then the segments below
/// them are deleted.
fn follow_log_starts(shared: &Shared, moved: &[Arc<Partition>]) {
    if moved.is_empty() {
        return;
    }
    if let Err(e) = shared.checkpoint_log_starts() {
        warn!(error = %e, "checkpointing follower log starts failed");
        return;
    }
    for p in moved {
        if let Err(e) = p.delete_segments_below_log_start() {
            warn!(partition = %p.tp, error = %e, "deleting segments below the log start failed");
        }
    }
}

/// OFFSET_OUT_OF_RANGE: below the leader's log start → restart the log there; otherwise (ahead of
/// the leader) → truncate again through OffsetForLeaderEpoch.
fn handle_out_of_range(
    work: &Work,
    tp: &TopicPartition,
    e: &Entry,
    offset: i64,
    leader_log_start: i64,
    backoff: Duration,
) {
    if leader_log_start > offset {
        match e.partition.restart_as_follower(e.epoch, leader_log_start) {
            Ok(_) => info!(partition = %tp, offset, leader_log_start,
                "fetch offset below the leader's log start; restarted the log there"),
            Err(err) => {
                warn!(partition = %tp, error = %err, "restarting the log failed");
                work.update(tp, e.epoch, |x| x.retry_at = Some(Instant::now() + backoff));
            }
        }
    } else {
        info!(partition = %tp, offset, "fetch offset out of the leader's range; truncating again");
        work.update(tp, e.epoch, |x| {
            x.phase = Phase::Truncating;
            x.retry_at = Some(Instant::now() + backoff);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A follower epoch cache: (epoch, start offset) entries and a log end.
    fn cache(entries: &[(i32, i64)], leo: i64) -> impl Fn(i32) -> (i32, i64) + '_ {
        move |requested| {
            let cache = crate::log::LeaderEpochCache::in_memory(
                entries
                    .iter()
                    .map(|&(epoch, start_offset)| crate::log::EpochEntry {
                        epoch,
                        start_offset,
                    })
                    .collect(),
            );
            cache.end_offset_for(requested, leo)
        }
    }

    #[test]
    fn same_epoch_truncates_to_the_smaller_end() {
        // Follower wrote epoch 1 up to 12; the leader's epoch 1 ended at 10.
        let t = truncation_for(1, 10, cache(&[(0, 0), (1, 5)], 12), 12, 8);
        assert_eq!(
            t,
            Truncation {
                offset: 10,
                completed: true
            }
        );
        // Leader has more of the epoch: nothing to cut.
        let t = truncation_for(1, 20, cache(&[(0, 0), (1, 5)], 12), 12, 8);
        assert_eq!(t.offset, 12);
    }

    #[test]
    fn unknown_leader_epoch_cuts_to_older_epoch_and_asks_again() {
        // Follower has epochs 0 and 2; the leader answers with epoch 1 (which the follower lacks).
        let t = truncation_for(1, 7, cache(&[(0, 0), (2, 5)], 9), 9, 3);
        assert_eq!(
            t,
            Truncation {
                offset: 5,
                completed: false
            }
        );
    }

    #[test]
    fn undefined_answers_fall_back_to_hw_or_offset() {
        let t = truncation_for(-1, -1, cache(&[(3, 0)], 9), 9, 4);
        assert_eq!(
            t,
            Truncation {
                offset: 4,
                completed: true
            }
        );
        let t = truncation_for(-1, 6, cache(&[(3, 0)], 9), 9, 4);
        assert_eq!(t.offset, 6);
        let t = truncation_for(-1, 60, cache(&[(3, 0)], 9), 9, 4);
        assert_eq!(t.offset, 9);
        // The leader's epoch is older than anything the follower has: the follower's answer for
        // it is its earliest start offset (Kafka's endOffsetFor), so it cuts there.
        let t = truncation_for(1, 3, cache(&[(3, 2)], 9), 9, 4);
        assert_eq!(
            t,
            Truncation {
                offset: 2,
                completed: true
            }
        );
    }

    #[test]
    fn follower_without_the_epoch_uses_hw() {
        let t = truncation_for(2, 5, |_| (-1, -1), 9, 4);
        assert_eq!(
            t,
            Truncation {
                offset: 4,
                completed: true
            }
        );
    }
}
