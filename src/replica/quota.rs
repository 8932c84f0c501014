//! Replication throttles (Kafka's `ReplicationQuotaManager`, KIP-73): a byte rate measured over
//! sliding sample windows against a bound in bytes per second, one for the leader side (bytes
//! this broker sends to followers) and one for the follower side (bytes its fetchers receive).
//!
//! Only replicas a topic names in `leader.replication.throttled.replicas` /
//! `follower.replication.throttled.replicas` are throttled, and only while the follower is out
//! of sync: a leader answers such a follower's fetch with no records while its quota is
//! exceeded, and a follower leaves such a partition out of its fetch while its quota is
//! exceeded. Bytes of throttled partitions are recorded against the quota. Client traffic and
//! partitions not named are never slowed.
//!
//! The rate is Kafka's `SimpleRate`: `replication.quota.window.num` samples of
//! `replication.quota.window.size.seconds` each; the measured rate is the bytes of the samples
//! still in the window over the time since the oldest one started (at least one window). The
//! quota is exceeded when that rate is above the bound. The bound changes at once
//! (`leader.replication.throttled.rate`, `follower.replication.throttled.rate`, dynamic broker
//! configs); `i64::MAX` (the default) is unlimited.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::Mutex;
use tracing::info;

use crate::config::ReplicationSettings;
use crate::util::clock::now_ms;

/// The topic key naming the replicas throttled on the leader side.
pub const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
/// The topic key naming the replicas throttled on the follower side.
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";

/// The bound that never throttles (Kafka's `Long.MAX_VALUE` default).
pub const UNLIMITED: i64 = i64::MAX;

/// One sample window: when it started and the bytes recorded in it.
#[derive(Clone, Copy, Debug)]
struct Sample {
    start_ms: i64,
    bytes: u64,
}

impl Sample {
    fn starting(now_ms: i64) -> Sample {
        Sample {
            start_ms: now_ms,
            bytes: 0,
        }
    }
}

/// Kafka's `SampledStat` ring: at most `windows` samples, the current one receiving records.
#[derive(Debug)]
struct Samples {
    ring: Vec<Sample>,
    current: usize,
}

/// A replication quota: a sampled byte rate and its bound (bytes per second).
#[derive(Debug)]
pub struct ReplicationQuota {
    /// "leader" or "follower", for the log.
    side: &'static str,
    bound: AtomicI64,
    windows: usize,
    window_ms: i64,
    samples: Mutex<Samples>,
}

impl ReplicationQuota {
    /// An unlimited quota measured over `windows` samples of `window_ms` each.
    pub fn new(side: &'static str, windows: usize, window_ms: i64) -> ReplicationQuota {
        ReplicationQuota {
            side,
            bound: AtomicI64::new(UNLIMITED),
            windows: windows.max(1),
            window_ms: window_ms.max(1),
            samples: Mutex::new(Samples {
                ring: Vec::new(),
                current: 0,
            }),
        }
    }

    /// The bound in bytes per second.
    pub fn bound(&self) -> i64 {
        self.bound.load(Ordering::Acquire)
    }

    /// Sets the bound (negative values count as 0); logs a change. Takes effect at the next
    /// check.
    pub fn set_bound(&self, bytes_per_second: i64) {
        let bound = bytes_per_second.max(0);
        let before = self.bound.swap(bound, Ordering::AcqRel);
        if before != bound {
            info!(
                side = self.side,
                bytes_per_second = bound,
                unlimited = bound == UNLIMITED,
                "replication throttle rate changed"
            );
        }
    }

    /// Records bytes sent or received for throttled partitions.
    pub fn record(&self, bytes: usize) {
        self.record_at(bytes, now_ms());
    }

    /// Whether the measured rate is above the bound now.
    pub fn is_exceeded(&self) -> bool {
        self.is_exceeded_at(now_ms())
    }

    fn record_at(&self, bytes: usize, now_ms: i64) {
        let mut s = self.samples.lock();
        if s.ring.is_empty() {
            s.ring.push(Sample::starting(now_ms));
            s.current = 0;
        }
        let current = s.current;
        if now_ms - s.ring[current].start_ms >= self.window_ms {
            let next = (current + 1) % self.windows;
            if next >= s.ring.len() {
                s.ring.push(Sample::starting(now_ms));
            } else {
                s.ring[next] = Sample::starting(now_ms);
            }
            s.current = next;
        }
        let current = s.current;
        let sample = &mut s.ring[current];
        sample.bytes = sample.bytes.saturating_add(bytes as u64);
    }

    fn is_exceeded_at(&self, now_ms: i64) -> bool {
        let bound = self.bound();
        bound != UNLIMITED && self.rate_at(now_ms) > bound as f64
    }

    /// Bytes per second over the samples still in the window (Kafka's `SimpleRate`).
    fn rate_at(&self, now_ms: i64) -> f64 {
        let mut s = self.samples.lock();
        let span = self.window_ms.saturating_mul(self.windows as i64);
        for sample in s.ring.iter_mut() {
            if now_ms - sample.start_ms >= span {
                *sample = Sample::starting(now_ms);
            }
        }
        let total: u64 = s.ring.iter().map(|x| x.bytes).sum();
        let oldest = s.ring.iter().map(|x| x.start_ms).min().unwrap_or(now_ms);
        let elapsed_ms = (now_ms - oldest).max(self.window_ms);
        total as f64 * 1000.0 / elapsed_ms as f64
    }
}

/// The two replication quotas of a broker.
#[derive(Debug)]
pub struct ReplicationQuotas {
    pub leader: ReplicationQuota,
    pub follower: ReplicationQuota,
}

impl ReplicationQuotas {
    /// Unlimited quotas with the sample windows of `settings`.
    pub fn new(settings: &ReplicationSettings) -> ReplicationQuotas {
        let windows = settings.quota_window_num.max(1) as usize;
        let window_ms = (settings.quota_window_size_seconds.max(1) as i64).saturating_mul(1000);
        ReplicationQuotas {
            leader: ReplicationQuota::new("leader", windows, window_ms),
            follower: ReplicationQuota::new("follower", windows, window_ms),
        }
    }
}

/// A topic's throttled-replica list, parsed once when the topic's configs are applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ThrottledReplicas {
    /// Empty: nothing throttled.
    #[default]
    None,
    /// `*`: every replica of the topic.
    All,
    /// `partition:broker` pairs.
    Listed(Vec<(i32, i32)>),
}

impl ThrottledReplicas {
    /// Parses a list value (`*`, or `partition:broker` pairs separated by commas, whitespace
    /// allowed). Values are validated when stored; an entry that does not parse is skipped.
    pub fn parse(value: &str) -> ThrottledReplicas {
        let value = value.trim();
        if value.is_empty() {
            return ThrottledReplicas::None;
        }
        if value == "*" {
            return ThrottledReplicas::All;
        }
        let pairs: Vec<(i32, i32)> = value.split(',').filter_map(parse_pair).collect();
        if pairs.is_empty() {
            ThrottledReplicas::None
        } else {
            ThrottledReplicas::Listed(pairs)
        }
    }

    /// The list `key` holds in a topic's config overrides (these keys have no broker default).
    pub fn of_topic(configs: &BTreeMap<String, String>, key: &str) -> ThrottledReplicas {
        configs
            .get(key)
            .map_or(ThrottledReplicas::None, |v| ThrottledReplicas::parse(v))
    }

    /// Whether the list names the replica of `partition` on `broker`.
    pub fn covers(&self, partition: i32, broker: i32) -> bool {
        match self {
            ThrottledReplicas::None => false,
            ThrottledReplicas::All => true,
            ThrottledReplicas::Listed(pairs) => pairs.contains(&(partition, broker)),
        }
    }
}

fn parse_pair(entry: &str) -> Option<(i32, i32)> {
    let (partition, broker) = entry.split_once(':')?;
    Some((partition.trim().parse().ok()?, broker.trim().parse().ok()?))
}

/// Kafka's `shouldLeaderThrottle`: a throttled partition fetched by a follower outside the ISR,
/// while the leader quota is exceeded (asked last: it is the costly part).
pub fn should_leader_throttle(
    throttled: bool,
    follower_in_isr: bool,
    exceeded: impl FnOnce() -> bool,
) -> bool {
    throttled && !follower_in_isr && exceeded()
}

/// Kafka's `shouldFollowerThrottle`: a throttled partition whose follower is not in sync (its
/// lag behind the leader's high watermark, as last seen, is unknown or above 0), while the
/// follower quota is exceeded.
pub fn should_follower_throttle(
    throttled: bool,
    lag: Option<i64>,
    exceeded: impl FnOnce() -> bool,
) -> bool {
    let in_sync = lag.is_some_and(|l| l <= 0);
    throttled && !in_sync && exceeded()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 11 windows of 1 s, as Kafka's defaults.
    fn quota(bound: i64) -> ReplicationQuota {
        let q = ReplicationQuota::new("leader", 11, 1000);
        q.set_bound(bound);
        q
    }

    #[test]
    fn unlimited_by_default() {
        let q = ReplicationQuota::new("leader", 11, 1000);
        assert_eq!(q.bound(), UNLIMITED);
        q.record_at(usize::MAX / 2, 0);
        assert!(!q.is_exceeded_at(0));
        assert!(!q.is_exceeded_at(500));
    }

    #[test]
    fn nothing_recorded_is_never_exceeded() {
        let q = quota(0);
        assert_eq!(q.rate_at(10), 0.0);
        assert!(!q.is_exceeded_at(10), "0 bytes/s is not above a bound of 0");
    }

    #[test]
    fn exceeded_only_above_the_bound() {
        let q = quota(100);
        q.record_at(100, 0);
        // The first window counts as a whole second: 100 B/s is not above 100.
        assert!(!q.is_exceeded_at(0));
        q.record_at(1, 10);
        assert!(q.is_exceeded_at(10));
    }

    #[test]
    fn rate_spreads_over_the_windows_since_the_oldest_sample() {
        let q = quota(100);
        q.record_at(300, 0);
        assert!(q.is_exceeded_at(500), "300 bytes in the first second");
        assert!((q.rate_at(2000) - 150.0).abs() < 1e-9);
        assert!(q.is_exceeded_at(2000));
        // Three seconds after the sample started: 100 B/s, not above the bound.
        assert!(!q.is_exceeded_at(3000));
        // More bytes in a later window count with the older ones.
        q.record_at(200, 3000);
        assert!(q.is_exceeded_at(3500), "500 bytes over 3.5 s");
    }

    #[test]
    fn samples_older_than_every_window_are_forgotten() {
        let q = quota(1);
        q.record_at(1_000_000, 0);
        assert!(q.is_exceeded_at(10_999));
        assert!(!q.is_exceeded_at(11_000), "11 windows of 1 s later");
        assert_eq!(q.rate_at(11_000), 0.0);
    }

    #[test]
    fn the_ring_reuses_its_samples() {
        let q = ReplicationQuota::new("follower", 2, 1000);
        q.set_bound(150);
        q.record_at(100, 0);
        q.record_at(100, 1000);
        assert!((q.rate_at(1500) - 200.0 / 1.5).abs() < 1e-9);
        // A third window replaces the first sample.
        q.record_at(100, 2000);
        assert!((q.rate_at(2500) - 200.0 / 1.5).abs() < 1e-9);
        assert!(!q.is_exceeded_at(2500));
    }

    #[test]
    fn a_new_bound_takes_effect_at_once() {
        let q = quota(UNLIMITED);
        q.record_at(1000, 0);
        assert!(!q.is_exceeded_at(100));
        q.set_bound(10);
        assert!(q.is_exceeded_at(100));
        q.set_bound(1_000_000);
        assert!(!q.is_exceeded_at(100));
        q.set_bound(-5);
        assert_eq!(q.bound(), 0);
    }

    #[test]
    fn throttled_lists_name_partition_and_broker() {
        let all = ThrottledReplicas::parse("*");
        assert_eq!(all, ThrottledReplicas::All);
        assert!(all.covers(0, 1) && all.covers(7, 3));
        let listed = ThrottledReplicas::parse("0:1,1:2");
        assert!(listed.covers(0, 1));
        assert!(listed.covers(1, 2));
        assert!(!listed.covers(0, 2), "another broker");
        assert!(!listed.covers(1, 1), "another broker");
        assert!(!listed.covers(2, 1), "another partition");
        let spaced = ThrottledReplicas::parse("  0 : 1 ,  1:2 ");
        assert_eq!(spaced, ThrottledReplicas::Listed(vec![(0, 1), (1, 2)]));
        assert_eq!(ThrottledReplicas::parse(" * "), ThrottledReplicas::All);
        for empty in ["", "  ", "junk"] {
            let none = ThrottledReplicas::parse(empty);
            assert_eq!(none, ThrottledReplicas::None, "{empty:?}");
            assert!(!none.covers(0, 0));
        }
    }

    #[test]
    fn throttled_lists_come_from_the_topic_overrides() {
        let configs = BTreeMap::from([(LEADER_THROTTLED_REPLICAS.to_string(), "3:4".to_string())]);
        let leader = ThrottledReplicas::of_topic(&configs, LEADER_THROTTLED_REPLICAS);
        assert!(leader.covers(3, 4));
        let follower = ThrottledReplicas::of_topic(&configs, FOLLOWER_THROTTLED_REPLICAS);
        assert_eq!(follower, ThrottledReplicas::None);
    }

    #[test]
    fn only_out_of_sync_throttled_replicas_over_quota_are_throttled() {
        let never = || -> bool { panic!("the quota is asked only when it matters") };
        assert!(should_leader_throttle(true, false, || true));
        assert!(!should_leader_throttle(true, false, || false));
        assert!(!should_leader_throttle(true, true, never));
        assert!(!should_leader_throttle(false, false, never));
        assert!(should_follower_throttle(true, None, || true));
        assert!(should_follower_throttle(true, Some(5), || true));
        assert!(!should_follower_throttle(true, Some(0), never));
        assert!(!should_follower_throttle(true, Some(3), || false));
        assert!(!should_follower_throttle(false, None, never));
    }
}
