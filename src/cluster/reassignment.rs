//! A partition's replica set during a move (KIP-455) and the checks of a requested move, as
//! pure functions: during a move the replica list is the full set (target first, then the
//! original replicas not in the target), `adding` holds target − original and `removing`
//! original − target, as Kafka stores them in the topic znode.

use std::collections::BTreeMap;

use super::zookeeper::znodes::TopicAssignment;
use super::ControllerError;

/// A partition's replicas as stored in its topic znode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaSet {
    /// Every replica (during a move: target first, then the remaining original replicas).
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

impl ReplicaSet {
    /// Partition `p`'s replica set in `assignment`, if the partition exists.
    pub fn of(assignment: &TopicAssignment, p: i32) -> Option<ReplicaSet> {
        let replicas = assignment.partitions.get(&p)?.clone();
        let list = |m: &BTreeMap<i32, Vec<i32>>| m.get(&p).cloned().unwrap_or_default();
        Some(ReplicaSet {
            replicas,
            adding: list(&assignment.adding_replicas),
            removing: list(&assignment.removing_replicas),
        })
    }

    /// Whether a move is in progress.
    pub fn is_reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// The replicas before the move (all of them when none is in progress).
    pub fn origin(&self) -> Vec<i32> {
        without(&self.replicas, &self.adding)
    }

    /// The replicas after the move (all of them when none is in progress).
    pub fn target(&self) -> Vec<i32> {
        without(&self.replicas, &self.removing)
    }

    /// The set for a move from this set's origin to `target` (Kafka's `reassignTo`): a new move
    /// replaces one in progress; a move back to the origin is no move at all.
    pub fn reassign_to(&self, target: &[i32]) -> ReplicaSet {
        let origin = self.origin();
        let mut full: Vec<i32> = Vec::with_capacity(target.len() + origin.len());
        for r in target.iter().chain(origin.iter()) {
            if !full.contains(r) {
                full.push(*r);
            }
        }
        ReplicaSet {
            adding: without(&full, &origin),
            removing: without(&full, target),
            replicas: full,
        }
    }

    /// The set once the move is complete.
    pub fn completed(&self) -> ReplicaSet {
        ReplicaSet {
            replicas: self.target(),
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    /// Stores this set as partition `p`'s in `assignment`.
    pub fn write_into(&self, assignment: &mut TopicAssignment, p: i32) {
        assignment.partitions.insert(p, self.replicas.clone());
        let put = |m: &mut BTreeMap<i32, Vec<i32>>, list: &Vec<i32>| {
            if list.is_empty() {
                m.remove(&p);
            } else {
                m.insert(p, list.clone());
            }
        };
        put(&mut assignment.adding_replicas, &self.adding);
        put(&mut assignment.removing_replicas, &self.removing);
    }
}

fn without(list: &[i32], remove: &[i32]) -> Vec<i32> {
    list.iter()
        .copied()
        .filter(|r| !remove.contains(r))
        .collect()
}

/// The replica set a request leads to: `Some(target)` starts (or replaces) a move after Kafka's
/// checks; `None` cancels the move in progress. `live` tells whether a broker is registered:
/// replicas being added must be.
pub fn plan(
    current: &ReplicaSet,
    target: Option<&[i32]>,
    live: impl Fn(i32) -> bool,
) -> Result<ReplicaSet, ControllerError> {
    let Some(target) = target else {
        if !current.is_reassigning() {
            return Err(ControllerError::NoReassignmentInProgress);
        }
        return Ok(current.reassign_to(&current.origin()));
    };
    check_target(target)?;
    let next = current.reassign_to(target);
    let dead: Vec<i32> = next.adding.iter().copied().filter(|r| !live(*r)).collect();
    if !dead.is_empty() {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "Replica assignment has brokers that are not alive. Replica list: {:?}, \
             brokers not alive: {dead:?}",
            next.adding
        )));
    }
    Ok(next)
}

/// What a request for a partition that does not exist gets, in Kafka's order of checks: a bad
/// target list first (every replica of it would be added, so each must be live), a cancel finds
/// no move, and otherwise the partition is unknown.
pub fn refuse_unknown(target: Option<&[i32]>, live: impl Fn(i32) -> bool) -> ControllerError {
    match plan(&ReplicaSet::default(), target, live) {
        Err(e) => e,
        Ok(_) => ControllerError::UnknownTopicOrPartition,
    }
}

/// Kafka's checks of a target replica list that need no cluster state.
fn check_target(target: &[i32]) -> Result<(), ControllerError> {
    if target.is_empty() {
        return Err(ControllerError::InvalidReplicaAssignment(
            "Empty replica list specified in partition reassignment.".into(),
        ));
    }
    let mut seen = target.to_vec();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != target.len() {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "Duplicate replica ids in partition reassignment replica list: {target:?}"
        )));
    }
    if target.iter().any(|r| *r < 0) {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "Invalid broker id in replica list: {target:?}"
        )));
    }
    Ok(())
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

    #[test]
    fn a_move_keeps_target_first_and_names_adding_and_removing() {
        let moved = set(&[1, 2], &[], &[]).reassign_to(&[2, 3]);
        assert_eq!(moved, set(&[2, 3, 1], &[3], &[1]));
        assert_eq!(moved.origin(), vec![2, 1]);
        assert_eq!(moved.target(), vec![2, 3]);
        assert_eq!(moved.completed(), set(&[2, 3], &[], &[]));
    }

    #[test]
    fn a_new_move_replaces_the_one_in_progress_from_the_same_origin() {
        let moving = set(&[2, 3, 1], &[3], &[1]);
        assert_eq!(moving.reassign_to(&[1, 4]), set(&[1, 4, 2], &[4], &[2]));
        // Cancelling goes back to the origin, with nothing left to move.
        assert_eq!(
            plan(&moving, None, |_| true).unwrap(),
            set(&[2, 1], &[], &[])
        );
    }

    #[test]
    fn bad_targets_are_refused_with_kafkas_checks() {
        let current = set(&[1, 2], &[], &[]);
        let invalid = |t: &[i32]| {
            matches!(
                plan(&current, Some(t), |b| b <= 3),
                Err(ControllerError::InvalidReplicaAssignment(_))
            )
        };
        assert!(invalid(&[]));
        assert!(invalid(&[2, 2]));
        assert!(invalid(&[-1, 2]));
        assert!(invalid(&[2, 9]), "broker 9 is not alive");
        assert!(plan(&current, Some(&[2, 3]), |b| b <= 3).is_ok());
        // A dead broker that stays a replica is no reason to refuse.
        assert!(plan(&current, Some(&[1]), |b| b == 3).is_ok());
        assert_eq!(
            plan(&current, None, |_| true),
            Err(ControllerError::NoReassignmentInProgress)
        );
    }

    #[test]
    fn stored_sets_round_trip_through_the_topic_znode() {
        let mut assignment = TopicAssignment::new(uuid::Uuid::nil(), &[vec![1, 2], vec![2, 3]]);
        let moving = set(&[2, 3, 1], &[3], &[1]);
        moving.write_into(&mut assignment, 0);
        assert_eq!(ReplicaSet::of(&assignment, 0), Some(moving.clone()));
        moving.completed().write_into(&mut assignment, 0);
        assert!(assignment.adding_replicas.is_empty() && assignment.removing_replicas.is_empty());
        assert_eq!(assignment.partitions[&0], vec![2, 3]);
        assert_eq!(ReplicaSet::of(&assignment, 5), None);
    }

    #[test]
    fn unknown_partitions_are_refused_in_kafkas_order() {
        let live = |b: i32| b <= 3;
        assert!(matches!(
            refuse_unknown(Some(&[1, 9]), live),
            ControllerError::InvalidReplicaAssignment(_)
        ));
        assert_eq!(
            refuse_unknown(None, live),
            ControllerError::NoReassignmentInProgress
        );
        assert_eq!(
            refuse_unknown(Some(&[1, 2]), live),
            ControllerError::UnknownTopicOrPartition
        );
    }
}
