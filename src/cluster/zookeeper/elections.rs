//! Elections on request (ElectLeaders, KIP-460, and the `/admin/preferred_replica_election`
//! znode) as pure functions of a partition's replicas and stored state, with Kafka's outcomes.

use super::znodes::PartitionStateZnode;
use crate::cluster::{ControllerError, ElectionType};

/// The state an election of `kind` writes for a partition with `replicas` (preferred first)
/// and `state`, or why there is none. `eligible` tells whether a broker may lead (registered
/// and not shutting down).
pub fn elect(
    kind: ElectionType,
    replicas: &[i32],
    state: &PartitionStateZnode,
    eligible: impl Fn(i32) -> bool,
    controller_epoch: i32,
) -> Result<PartitionStateZnode, ControllerError> {
    match kind {
        ElectionType::Preferred => preferred(replicas, state, eligible, controller_epoch),
        ElectionType::Unclean => unclean(replicas, state, eligible, controller_epoch),
    }
}

/// The first assigned replica leads again if it is eligible and in the ISR.
fn preferred(
    replicas: &[i32],
    state: &PartitionStateZnode,
    eligible: impl Fn(i32) -> bool,
    controller_epoch: i32,
) -> Result<PartitionStateZnode, ControllerError> {
    let Some(&preferred) = replicas.first() else {
        return Err(ControllerError::PreferredLeaderNotAvailable(
            "the partition has no replicas".into(),
        ));
    };
    if state.leader == preferred {
        return Err(ControllerError::ElectionNotNeeded);
    }
    if !eligible(preferred) || !state.isr.contains(&preferred) {
        return Err(ControllerError::PreferredLeaderNotAvailable(format!(
            "Failed to elect leader for partition under strategy \
             PreferredReplicaPartitionLeaderElectionStrategy: preferred replica {preferred} is \
             not alive or not in the ISR {:?}",
            state.isr
        )));
    }
    Ok(PartitionStateZnode::new(
        preferred,
        state.leader_epoch + 1,
        state.isr.clone(),
        controller_epoch,
    ))
}

/// A partition without a live leader gets one: an eligible ISR member if any, else any eligible
/// replica, whose ISR is then itself alone (data may be lost, as the caller asked).
fn unclean(
    replicas: &[i32],
    state: &PartitionStateZnode,
    eligible: impl Fn(i32) -> bool,
    controller_epoch: i32,
) -> Result<PartitionStateZnode, ControllerError> {
    if state.leader >= 0 && eligible(state.leader) {
        return Err(ControllerError::ElectionNotNeeded);
    }
    let in_sync = replicas
        .iter()
        .copied()
        .find(|r| state.isr.contains(r) && eligible(*r));
    let (leader, isr) = match in_sync {
        Some(leader) => (
            leader,
            state.isr.iter().copied().filter(|r| eligible(*r)).collect(),
        ),
        None => match replicas.iter().copied().find(|r| eligible(*r)) {
            Some(leader) => (leader, vec![leader]),
            None => {
                return Err(ControllerError::EligibleLeadersNotAvailable(format!(
                    "Failed to elect leader for partition under strategy \
                     UncleanLeaderElectionStrategy: none of the replicas {replicas:?} is alive"
                )))
            }
        },
    };
    Ok(PartitionStateZnode::new(
        leader,
        state.leader_epoch + 1,
        isr,
        controller_epoch,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(leader: i32, isr: &[i32]) -> PartitionStateZnode {
        PartitionStateZnode::new(leader, 4, isr.to_vec(), 1)
    }

    #[test]
    fn preferred_election_outcomes() {
        let all = |_| true;
        let elect_p = |s: &PartitionStateZnode, live: &dyn Fn(i32) -> bool| {
            elect(ElectionType::Preferred, &[1, 2, 3], s, live, 9)
        };
        assert_eq!(
            elect_p(&state(2, &[1, 2, 3]), &all),
            Ok(PartitionStateZnode::new(1, 5, vec![1, 2, 3], 9))
        );
        assert_eq!(
            elect_p(&state(1, &[1, 2]), &all),
            Err(ControllerError::ElectionNotNeeded)
        );
        assert!(matches!(
            elect_p(&state(2, &[2, 3]), &all),
            Err(ControllerError::PreferredLeaderNotAvailable(_))
        ));
        assert!(matches!(
            elect_p(&state(2, &[1, 2]), &|b| b != 1),
            Err(ControllerError::PreferredLeaderNotAvailable(_))
        ));
    }

    #[test]
    fn unclean_election_outcomes() {
        let elect_u = |s: &PartitionStateZnode, live: &dyn Fn(i32) -> bool| {
            elect(ElectionType::Unclean, &[1, 2, 3], s, live, 9)
        };
        assert_eq!(
            elect_u(&state(1, &[1]), &|_| true),
            Err(ControllerError::ElectionNotNeeded)
        );
        // The leader is gone, an ISR member is live: a clean choice.
        assert_eq!(
            elect_u(&state(1, &[1, 3]), &|b| b != 1),
            Ok(PartitionStateZnode::new(3, 5, vec![3], 9))
        );
        // Offline, the last ISR member is gone: any live replica, alone in the ISR.
        assert_eq!(
            elect_u(&state(-1, &[1]), &|b| b == 2),
            Ok(PartitionStateZnode::new(2, 5, vec![2], 9))
        );
        assert!(matches!(
            elect_u(&state(-1, &[1]), &|_| false),
            Err(ControllerError::EligibleLeadersNotAvailable(_))
        ));
    }
}
