//! Leader-side bookkeeping of followers and the decisions built on it, as pure functions: each
//! follower's fetch position and last caught-up time (Kafka's `Replica.updateFetchState`), the high
//! watermark rule, and which followers join or leave the ISR. No I/O and no clock reads here; the
//! partition passes the time in.

use std::collections::HashMap;

/// What the leader knows of one follower replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerState {
    /// The follower's log end offset (= its last fetch offset); -1 until it fetched in this epoch.
    pub log_end_offset: i64,
    /// The follower's log start offset as it reported it; -1 unknown.
    pub log_start_offset: i64,
    /// The last time (ms) the follower was known to have everything the leader had.
    pub last_caught_up_ms: i64,
    /// The leader's log end offset when the previous fetch arrived.
    pub last_fetch_leader_leo: i64,
    /// When the previous fetch arrived (ms).
    pub last_fetch_ms: i64,
}

impl FollowerState {
    /// A follower as the leader sees it at the start of an epoch: ISR members count as caught up
    /// now (they were in sync when the ISR was recorded), others as never caught up.
    pub fn reset(in_isr: bool, now_ms: i64) -> FollowerState {
        FollowerState {
            log_end_offset: -1,
            log_start_offset: -1,
            last_caught_up_ms: if in_isr { now_ms } else { 0 },
            last_fetch_leader_leo: -1,
            last_fetch_ms: 0,
        }
    }

    /// Records a fetch at `fetch_offset` that arrived at `now_ms` while the leader's log ended at
    /// `leader_leo`. Kafka's rule: the follower is caught up now if it asked for the leader's log
    /// end; it was caught up at the previous fetch if it now asks for at least what the leader had
    /// then.
    pub fn record_fetch(
        &mut self,
        fetch_offset: i64,
        log_start_offset: i64,
        leader_leo: i64,
        now_ms: i64,
    ) {
        if fetch_offset >= leader_leo {
            self.last_caught_up_ms = self.last_caught_up_ms.max(now_ms);
        } else if self.last_fetch_leader_leo >= 0 && fetch_offset >= self.last_fetch_leader_leo {
            self.last_caught_up_ms = self.last_caught_up_ms.max(self.last_fetch_ms);
        }
        self.log_end_offset = fetch_offset;
        self.log_start_offset = log_start_offset;
        self.last_fetch_leader_leo = leader_leo;
        self.last_fetch_ms = now_ms;
    }

    /// Kafka's `isCaughtUp`: the follower has the leader's whole log, or caught up within the lag.
    pub fn is_caught_up(&self, leader_leo: i64, now_ms: i64, lag_time_max_ms: u64) -> bool {
        self.log_end_offset == leader_leo
            || now_ms.saturating_sub(self.last_caught_up_ms) <= lag_time_max_ms as i64
    }
}

/// Whether every ISR member other than the leader has fetched within `grace_ms` before `now_ms`.
/// While the metadata store is unreachable a leader accepts writes only under this condition: a
/// leader cut off from the store is usually cut off from its followers too, and they can only be
/// elected in its place once its session has expired, which takes longer than the grace.
pub fn isr_still_fetching(
    leader_id: i32,
    isr: &[i32],
    followers: &HashMap<i32, FollowerState>,
    now_ms: i64,
    grace_ms: i64,
) -> bool {
    isr.iter().filter(|id| **id != leader_id).all(|id| {
        followers.get(id).is_some_and(|f| {
            f.last_fetch_ms > 0 && now_ms.saturating_sub(f.last_fetch_ms) <= grace_ms
        })
    })
}

/// The high watermark the leader may expose: the smallest log end offset over `isr` (the leader's
/// own included, as `leader_leo`), never below `current` (the high watermark never moves back). A
/// member whose position is unknown holds the high watermark where it is.
pub fn high_watermark(
    leader_id: i32,
    leader_leo: i64,
    isr: &[i32],
    followers: &HashMap<i32, FollowerState>,
    current: i64,
) -> i64 {
    let mut hw = leader_leo;
    for id in isr.iter().filter(|id| **id != leader_id) {
        match followers.get(id) {
            Some(f) if f.log_end_offset >= 0 => hw = hw.min(f.log_end_offset),
            _ => return current,
        }
    }
    hw.max(current)
}

/// Kafka's `lowWatermarkIfLeader`: the smallest log start offset over the leader (`leader_start`)
/// and every other replica of the assignment on a live broker, in the ISR or not. A live replica
/// whose log start is not known yet (it has not fetched in this leader epoch) holds the low
/// watermark at -1. A DeleteRecords is answered once this reaches the offset it asked for.
pub fn low_watermark(
    leader_id: i32,
    leader_start: i64,
    replicas: &[i32],
    followers: &HashMap<i32, FollowerState>,
    is_alive: impl Fn(i32) -> bool,
) -> i64 {
    replicas
        .iter()
        .copied()
        .filter(|id| *id != leader_id && is_alive(*id))
        .map(|id| followers.get(&id).map_or(-1, |f| f.log_start_offset))
        .fold(leader_start, i64::min)
}

/// ISR members (the leader excepted) that have not caught up within `lag_time_max_ms`
/// (Kafka's `getOutOfSyncReplicas`).
pub fn out_of_sync(
    leader_id: i32,
    leader_leo: i64,
    isr: &[i32],
    followers: &HashMap<i32, FollowerState>,
    now_ms: i64,
    lag_time_max_ms: u64,
) -> Vec<i32> {
    isr.iter()
        .copied()
        .filter(|id| *id != leader_id)
        .filter(|id| {
            followers
                .get(id)
                .is_none_or(|f| !f.is_caught_up(leader_leo, now_ms, lag_time_max_ms))
        })
        .collect()
}

/// Whether a follower outside the ISR may join it (Kafka's `isFollowerInSync`): it has everything up
/// to the high watermark and everything this leader's epoch wrote before it became leader.
pub fn may_join_isr(follower_leo: i64, high_watermark: i64, epoch_start_offset: i64) -> bool {
    follower_leo >= 0 && follower_leo >= high_watermark && follower_leo >= epoch_start_offset
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(leo: i64) -> FollowerState {
        FollowerState {
            log_end_offset: leo,
            ..FollowerState::reset(true, 0)
        }
    }

    #[test]
    fn hw_is_min_leo_over_isr_including_leader() {
        let followers = HashMap::from([(2, at(7)), (3, at(3))]);
        assert_eq!(high_watermark(1, 10, &[1, 2], &followers, 0), 7);
        assert_eq!(high_watermark(1, 10, &[1, 2, 3], &followers, 0), 3);
        // Standalone: ISR {self} → HW = LEO.
        assert_eq!(high_watermark(1, 10, &[1], &HashMap::new(), 0), 10);
        // A follower outside the ISR does not hold the HW back.
        assert_eq!(high_watermark(1, 10, &[1, 2], &followers, 0), 7);
    }

    #[test]
    fn hw_never_moves_back_and_waits_for_unknown_positions() {
        let followers = HashMap::from([(2, at(4))]);
        assert_eq!(high_watermark(1, 10, &[1, 2], &followers, 6), 6);
        let unknown = HashMap::from([(2, FollowerState::reset(true, 0))]);
        assert_eq!(high_watermark(1, 10, &[1, 2], &unknown, 5), 5);
        assert_eq!(high_watermark(1, 10, &[1, 2], &HashMap::new(), 5), 5);
    }

    #[test]
    fn isolated_leader_keeps_writing_only_while_every_isr_follower_fetches() {
        let mut fresh = FollowerState::reset(true, 0);
        fresh.record_fetch(5, 0, 5, 9_500);
        let mut stale = FollowerState::reset(true, 0);
        stale.record_fetch(5, 0, 5, 7_000);
        let never = FollowerState::reset(true, 9_000);
        let followers = HashMap::from([(2, fresh), (3, stale), (4, never)]);
        // Members outside the ISR (3, 4) do not count.
        assert!(isr_still_fetching(1, &[1, 2], &followers, 10_000, 2_000));
        assert!(!isr_still_fetching(
            1,
            &[1, 2, 3],
            &followers,
            10_000,
            2_000
        ));
        // Not a single fetch in this epoch, or no record at all.
        assert!(!isr_still_fetching(1, &[1, 4], &followers, 10_000, 2_000));
        assert!(!isr_still_fetching(1, &[1, 5], &followers, 10_000, 2_000));
        // ISR = {leader}: nobody else can be elected cleanly.
        assert!(isr_still_fetching(1, &[1], &HashMap::new(), 10_000, 2_000));
    }

    #[test]
    fn caught_up_when_fetching_the_leader_log_end() {
        let mut f = FollowerState::reset(false, 0);
        f.record_fetch(10, 0, 10, 1_000);
        assert_eq!(f.last_caught_up_ms, 1_000);
        assert!(f.is_caught_up(12, 5_000, 30_000));
    }

    #[test]
    fn caught_up_at_previous_fetch_when_reaching_its_leader_leo() {
        let mut f = FollowerState::reset(false, 0);
        f.record_fetch(5, 0, 10, 1_000); // behind: not caught up
        assert_eq!(f.last_caught_up_ms, 0);
        f.record_fetch(10, 0, 15, 2_000); // has what the leader had at 1 000
        assert_eq!(f.last_caught_up_ms, 1_000);
        f.record_fetch(12, 0, 20, 3_000); // still behind the 15 of the previous fetch
        assert_eq!(f.last_caught_up_ms, 1_000);
    }

    #[test]
    fn shrink_only_lagging_followers() {
        let mut slow = at(5);
        slow.last_caught_up_ms = 1_000;
        let mut fresh = at(5);
        fresh.last_caught_up_ms = 9_500;
        let followers = HashMap::from([(2, slow), (3, fresh)]);
        assert_eq!(
            out_of_sync(1, 10, &[1, 2, 3], &followers, 10_000, 1_000),
            vec![2]
        );
        // A follower with the whole log stays in sync however long ago it fetched (Kafka).
        let idle = HashMap::from([(2, at(10))]);
        assert!(out_of_sync(1, 10, &[1, 2], &idle, 100_000, 1_000).is_empty());
        // An ISR member the leader has no state for counts as lagging.
        assert_eq!(
            out_of_sync(1, 10, &[1, 4], &HashMap::new(), 0, 1_000),
            vec![4]
        );
    }

    #[test]
    fn low_watermark_is_the_smallest_log_start_of_live_replicas() {
        let started = |start| FollowerState {
            log_start_offset: start,
            ..at(20)
        };
        let followers = HashMap::from([(2, started(7)), (3, started(4))]);
        let all = |_| true;
        assert_eq!(low_watermark(1, 10, &[1, 2, 3], &followers, all), 4);
        // Replicas outside the ISR count too; only the assignment matters.
        assert_eq!(low_watermark(1, 10, &[1, 2], &followers, all), 7);
        // The leader's own start can be the smallest.
        assert_eq!(low_watermark(1, 3, &[1, 2, 3], &followers, all), 3);
        // A replica on a dead broker does not hold it back.
        assert_eq!(
            low_watermark(1, 10, &[1, 2, 3], &followers, |id| id != 3),
            7
        );
        // A live replica that has not reported its log start holds it at -1.
        assert_eq!(low_watermark(1, 10, &[1, 2, 4], &followers, all), -1);
        let unknown = HashMap::from([(2, FollowerState::reset(true, 0))]);
        assert_eq!(low_watermark(1, 10, &[1, 2], &unknown, all), -1);
        // Standalone: the leader alone.
        assert_eq!(low_watermark(1, 10, &[1], &HashMap::new(), all), 10);
    }

    #[test]
    fn join_isr_needs_hw_and_epoch_start() {
        assert!(may_join_isr(10, 10, 8));
        assert!(!may_join_isr(9, 10, 8));
        assert!(!may_join_isr(10, 5, 12));
        assert!(!may_join_isr(-1, 0, 0));
    }
}
