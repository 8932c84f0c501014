//! Moves in progress (KIP-455), driven by Kafka's ZooKeeper-era controller rules as a pure
//! function of a partition's stored replica set and state.
//!
//! The in-flight state lives in the topic znode, as in Kafka, so any controller resumes a move
//! from what is stored. A move completes once every target replica is in the ISR: leadership
//! moves into the target and the ISR keeps only target replicas (one leader-epoch bump), then
//! the replica list becomes the target and the removed replicas stop and delete their data.

use super::view::StoredState;
use super::znodes::PartitionStateZnode;
use crate::cluster::reassignment::ReplicaSet;

/// Where a move in progress stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Some target replica is not in the ISR yet (or no target replica can lead).
    CatchingUp,
    /// Every target replica is in sync: write this state (leader in the target, ISR within it,
    /// leader epoch + 1), then the completed replica set.
    MoveLeadership(PartitionStateZnode),
    /// The state already fits the target: write the completed replica set.
    Complete,
}

/// The next step of the move of a partition whose stored state is `stored`. `eligible` tells
/// whether a broker may lead (registered and not shutting down).
pub fn progress(
    set: &ReplicaSet,
    stored: &StoredState,
    eligible: impl Fn(i32) -> bool,
    controller_epoch: i32,
) -> Progress {
    let state = &stored.state;
    let target = set.target();
    if !target.iter().all(|r| state.isr.contains(r)) {
        return Progress::CatchingUp;
    }
    let leader_fits = target.contains(&state.leader) && eligible(state.leader);
    let isr_fits = state.isr.iter().all(|r| target.contains(r));
    if leader_fits && isr_fits {
        return Progress::Complete;
    }
    let leader = if leader_fits {
        Some(state.leader)
    } else {
        target.iter().copied().find(|r| eligible(*r))
    };
    let Some(leader) = leader else {
        return Progress::CatchingUp;
    };
    let isr = state
        .isr
        .iter()
        .copied()
        .filter(|r| target.contains(r))
        .collect();
    Progress::MoveLeadership(PartitionStateZnode::new(
        leader,
        state.leader_epoch + 1,
        isr,
        controller_epoch,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(replicas: &[i32], adding: &[i32], removing: &[i32]) -> ReplicaSet {
        ReplicaSet {
            replicas: replicas.to_vec(),
            adding: adding.to_vec(),
            removing: removing.to_vec(),
        }
    }

    fn stored(leader: i32, epoch: i32, isr: &[i32]) -> StoredState {
        StoredState {
            state: PartitionStateZnode::new(leader, epoch, isr.to_vec(), 1),
            version: 3,
            mzxid: 10,
        }
    }

    #[test]
    fn the_move_completes_once_every_target_replica_is_in_sync() {
        let moving = set(&[2, 3, 1], &[3], &[1]);
        let live = |_| true;
        assert_eq!(
            progress(&moving, &stored(1, 4, &[1, 2]), live, 7),
            Progress::CatchingUp
        );
        // 3 caught up: leadership leaves 1, the ISR keeps only the target.
        assert_eq!(
            progress(&moving, &stored(1, 4, &[1, 2, 3]), live, 7),
            Progress::MoveLeadership(PartitionStateZnode::new(2, 5, vec![2, 3], 7))
        );
        // A leader inside the target keeps leading; only the ISR shrinks.
        assert_eq!(
            progress(&moving, &stored(3, 4, &[1, 2, 3]), live, 7),
            Progress::MoveLeadership(PartitionStateZnode::new(3, 5, vec![2, 3], 7))
        );
        assert_eq!(
            progress(&moving, &stored(2, 5, &[2, 3]), live, 7),
            Progress::Complete
        );
        // No target replica may lead: wait.
        assert_eq!(
            progress(&moving, &stored(1, 4, &[1, 2, 3]), |b| b == 1, 7),
            Progress::CatchingUp
        );
    }
}
