//! The controller's decisions as a pure function of a [`ClusterView`]: which partition states
//! to create or rewrite. No I/O here; `controller` executes the actions with fenced writes.
//!
//! Rules (Kafka's ZooKeeper-era controller):
//! - A new partition gets the first live assigned replica as leader, epoch 0, and every live
//!   assigned replica in its ISR.
//! - A partition whose leader is gone (dead, or shutting down), or whose leader registered after
//!   the state was written (it restarted and distrusts that state), gets the first
//!   assigned replica that is live, in the ISR and not shutting down, at epoch + 1; the ISR
//!   keeps only live replicas (and drops shutting-down ones).
//! - With no such replica: unclean election (if enabled for the topic) takes any live replica
//!   with an ISR of itself; otherwise the partition goes offline (leader -1) and keeps its last
//!   ISR member, so that replica can lead again when it returns.
//! - A dead follower leaves the ISR (same leader epoch: only the ISR changes).
//! - A leader or ISR member that is no longer an assigned replica (a cancelled move, a tool's
//!   rewrite of the assignment) is treated as gone.
//! - A move in progress (`reassignment`) completes once every target replica is in the ISR:
//!   leadership and ISR move into the target, then the assignment becomes the target.
//! - Preferred leader rebalance: when a broker leads less than its preferred share by more than
//!   `leader.imbalance.per.broker.percentage`, leadership moves back to it where it is in the ISR.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::reassignment::{progress, Progress};
use super::view::{ClusterView, StoredState, TopicEntry};
use super::znodes::{PartitionStateZnode, TopicAssignment};
use crate::cluster::reassignment::ReplicaSet;

/// What the controller knows besides the view.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// Registered brokers and the czxid of their registration (broker epoch).
    pub live: BTreeMap<i32, i64>,
    /// Brokers that asked for a controlled shutdown.
    pub shutting_down: BTreeSet<i32>,
    pub controller_epoch: i32,
    /// The broker default of `unclean.leader.election.enable` (topics may override it).
    pub unclean_default: bool,
    /// Check the preferred-leader balance this round.
    pub rebalance: bool,
    pub imbalance_percentage: i32,
}

/// One write the controller must make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    CreateState {
        topic: String,
        partition: i32,
        state: PartitionStateZnode,
    },
    UpdateState {
        topic: String,
        partition: i32,
        state: PartitionStateZnode,
        expected_version: i32,
    },
    /// A topic written without a topic id (ZooKeeper-era tools) gets one, as Kafka 2.8+ does.
    AssignTopicId {
        topic: String,
        assignment: TopicAssignment,
        expected_version: i32,
    },
    /// The moves of `partitions` are done: their replicas become their targets.
    CompleteMoves {
        topic: String,
        assignment: TopicAssignment,
        expected_version: i32,
        partitions: Vec<i32>,
    },
}

impl Action {
    /// The topic the action writes.
    pub fn topic(&self) -> &str {
        match self {
            Action::CreateState { topic, .. }
            | Action::UpdateState { topic, .. }
            | Action::AssignTopicId { topic, .. }
            | Action::CompleteMoves { topic, .. } => topic,
        }
    }
}

/// Every action needed to bring the view in line with the rules.
pub fn decide(view: &ClusterView, inputs: &Inputs) -> Vec<Action> {
    let mut actions = Vec::new();
    for topic in view.topics.values() {
        if topic.assignment.topic_id.is_none() {
            let mut assignment = topic.assignment.clone();
            assignment.version = 3;
            assignment.topic_id = Some(Uuid::new_v4());
            actions.push(Action::AssignTopicId {
                topic: topic.name.clone(),
                assignment,
                expected_version: topic.assignment_version,
            });
        }
        let unclean = topic
            .configs
            .get("unclean.leader.election.enable")
            .map_or(inputs.unclean_default, |v| v.trim() == "true");
        let mut completed = Vec::new();
        for (&partition, replicas) in &topic.assignment.partitions {
            let action = match topic.states.get(&partition) {
                None => new_partition(replicas, inputs).map(|state| Action::CreateState {
                    topic: topic.name.clone(),
                    partition,
                    state,
                }),
                Some(stored) => {
                    existing_partition(replicas, stored, inputs, unclean).map(|state| {
                        Action::UpdateState {
                            topic: topic.name.clone(),
                            partition,
                            state,
                            expected_version: stored.version,
                        }
                    })
                }
            };
            match action {
                Some(action) => actions.push(action),
                None => {
                    if let Some(step) = move_step(topic, partition, inputs) {
                        completed.push(partition);
                        actions.extend(step);
                    }
                }
            }
        }
        if !completed.is_empty() && topic.assignment.topic_id.is_some() {
            actions.push(complete_moves(topic, completed));
        }
    }
    if inputs.rebalance {
        actions.extend(preferred_leader_moves(view, inputs, &actions));
    }
    actions
}

/// The next step of partition `p`'s move if one is in progress and its target is in sync:
/// `Some(None)` when only the assignment is left to write, `Some(Some(state))` when leadership
/// and ISR move into the target first.
fn move_step(topic: &TopicEntry, p: i32, inputs: &Inputs) -> Option<Option<Action>> {
    let moving = |m: &BTreeMap<i32, Vec<i32>>| m.get(&p).is_some_and(|l| !l.is_empty());
    if !moving(&topic.assignment.adding_replicas) && !moving(&topic.assignment.removing_replicas) {
        return None;
    }
    let set = ReplicaSet::of(&topic.assignment, p)?;
    let stored = topic.states.get(&p)?;
    match progress(
        &set,
        stored,
        |b| eligible(b, inputs),
        inputs.controller_epoch,
    ) {
        Progress::CatchingUp => None,
        Progress::Complete => Some(None),
        Progress::MoveLeadership(state) => Some(Some(Action::UpdateState {
            topic: topic.name.clone(),
            partition: p,
            state,
            expected_version: stored.version,
        })),
    }
}

fn complete_moves(topic: &TopicEntry, partitions: Vec<i32>) -> Action {
    let mut assignment = topic.assignment.clone();
    for &p in &partitions {
        if let Some(set) = ReplicaSet::of(&assignment, p) {
            set.completed().write_into(&mut assignment, p);
        }
    }
    Action::CompleteMoves {
        topic: topic.name.clone(),
        assignment,
        expected_version: topic.assignment_version,
        partitions,
    }
}

fn eligible(broker: i32, inputs: &Inputs) -> bool {
    inputs.live.contains_key(&broker) && !inputs.shutting_down.contains(&broker)
}

fn live(broker: &i32, inputs: &Inputs) -> bool {
    inputs.live.contains_key(broker)
}

fn new_partition(replicas: &[i32], inputs: &Inputs) -> Option<PartitionStateZnode> {
    let leader = *replicas.iter().find(|r| eligible(**r, inputs))?;
    let isr = replicas
        .iter()
        .copied()
        .filter(|r| live(r, inputs))
        .collect();
    Some(PartitionStateZnode::new(
        leader,
        0,
        isr,
        inputs.controller_epoch,
    ))
}

fn existing_partition(
    replicas: &[i32],
    stored: &StoredState,
    inputs: &Inputs,
    unclean: bool,
) -> Option<PartitionStateZnode> {
    let s = &stored.state;
    let next = |leader: i32, leader_epoch: i32, isr: Vec<i32>| {
        PartitionStateZnode::new(leader, leader_epoch, isr, inputs.controller_epoch)
    };
    let leader_current = replicas.contains(&s.leader)
        && inputs
            .live
            .get(&s.leader)
            .is_some_and(|registered| stored.mzxid > *registered);
    if leader_current && eligible(s.leader, inputs) {
        // Leader fine: only drop dead followers (and replicas no longer assigned) from the ISR.
        let isr: Vec<i32> = s
            .isr
            .iter()
            .copied()
            .filter(|r| live(r, inputs) && replicas.contains(r))
            .collect();
        return (isr.len() != s.isr.len() && isr.contains(&s.leader))
            .then(|| next(s.leader, s.leader_epoch, isr));
    }
    let candidate = replicas
        .iter()
        .copied()
        .find(|r| s.isr.contains(r) && eligible(*r, inputs));
    if let Some(leader) = candidate {
        let isr = s
            .isr
            .iter()
            .copied()
            .filter(|r| eligible(*r, inputs) && replicas.contains(r))
            .collect();
        return Some(next(leader, s.leader_epoch + 1, isr));
    }
    // A shutting-down leader with nobody to hand over to keeps leading.
    if s.leader >= 0 && leader_current {
        return None;
    }
    if unclean {
        if let Some(leader) = replicas.iter().copied().find(|r| eligible(*r, inputs)) {
            return Some(next(leader, s.leader_epoch + 1, vec![leader]));
        }
    }
    if s.leader < 0 {
        return None;
    }
    // Offline: no leader, keep the last ISR member so it can come back as leader.
    let mut isr: Vec<i32> = s.isr.iter().copied().filter(|r| live(r, inputs)).collect();
    if isr.is_empty() {
        isr = if s.isr.contains(&s.leader) {
            vec![s.leader]
        } else {
            s.isr.iter().copied().take(1).collect()
        };
    }
    Some(next(-1, s.leader_epoch + 1, isr))
}

/// Per preferred broker: how many partitions it should lead, and those it does not.
type PreferredShare<'a> = (usize, Vec<(&'a TopicEntry, i32)>);

/// Moves leadership back to preferred replicas of imbalanced brokers. Partitions already
/// touched by `pending` actions are left for the next round.
fn preferred_leader_moves(view: &ClusterView, inputs: &Inputs, pending: &[Action]) -> Vec<Action> {
    let touched: BTreeSet<(&str, i32)> = pending
        .iter()
        .filter_map(|a| match a {
            Action::CreateState {
                topic, partition, ..
            }
            | Action::UpdateState {
                topic, partition, ..
            } => Some((topic.as_str(), *partition)),
            Action::AssignTopicId { .. } | Action::CompleteMoves { .. } => None,
        })
        .collect();
    let mut share: BTreeMap<i32, PreferredShare> = BTreeMap::new();
    for topic in view.topics.values() {
        for (&partition, replicas) in &topic.assignment.partitions {
            let (Some(&preferred), Some(stored)) = (replicas.first(), topic.states.get(&partition))
            else {
                continue;
            };
            let entry = share.entry(preferred).or_default();
            entry.0 += 1;
            if stored.state.leader != preferred {
                entry.1.push((topic, partition));
            }
        }
    }
    let mut moves = Vec::new();
    for (preferred, (total, misplaced)) in share {
        if !eligible(preferred, inputs)
            || misplaced.len() * 100 <= total * inputs.imbalance_percentage.max(0) as usize
        {
            continue;
        }
        for (topic, partition) in misplaced {
            let Some(stored) = topic.states.get(&partition) else {
                continue;
            };
            let s = &stored.state;
            if touched.contains(&(topic.name.as_str(), partition)) || !s.isr.contains(&preferred) {
                continue;
            }
            moves.push(Action::UpdateState {
                topic: topic.name.clone(),
                partition,
                state: PartitionStateZnode::new(
                    preferred,
                    s.leader_epoch + 1,
                    s.isr.clone(),
                    inputs.controller_epoch,
                ),
                expected_version: stored.version,
            });
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::zookeeper::view::Me;

    /// (leader, leader epoch, ISR) of a stored state.
    type State = (i32, i32, Vec<i32>);

    fn view(states: &[(i32, Option<State>)], replicas: Vec<i32>) -> ClusterView {
        let lists: Vec<Vec<i32>> = states.iter().map(|_| replicas.clone()).collect();
        let assignment = TopicAssignment::new(Uuid::new_v4(), &lists);
        let stored = states
            .iter()
            .filter_map(|(p, s)| {
                s.clone().map(|(leader, epoch, isr)| {
                    (
                        *p,
                        StoredState {
                            state: PartitionStateZnode::new(leader, epoch, isr, 1),
                            version: 7,
                            mzxid: 100,
                        },
                    )
                })
            })
            .collect();
        let me = Me::default();
        let entry = TopicEntry::new("t".into(), assignment, 0, BTreeMap::new(), stored, &me);
        let mut v = ClusterView::default();
        v.topics.insert("t".into(), entry);
        v
    }

    fn inputs(live: &[i32]) -> Inputs {
        Inputs {
            live: live.iter().map(|b| (*b, 1)).collect(),
            controller_epoch: 5,
            imbalance_percentage: 10,
            ..Inputs::default()
        }
    }

    fn only_state(actions: &[Action]) -> (i32, i32, Vec<i32>) {
        match actions {
            [Action::CreateState { state, .. }] | [Action::UpdateState { state, .. }] => {
                (state.leader, state.leader_epoch, state.isr.clone())
            }
            other => panic!("expected one state action, got {other:?}"),
        }
    }

    #[test]
    fn new_partition_leads_with_first_live_replica() {
        let v = view(&[(0, None)], vec![1, 2, 3]);
        assert_eq!(
            only_state(&decide(&v, &inputs(&[2, 3]))),
            (2, 0, vec![2, 3])
        );
        assert!(decide(&v, &inputs(&[])).is_empty());
    }

    #[test]
    fn dead_leader_is_replaced_from_the_isr() {
        let v = view(&[(0, Some((1, 4, vec![1, 3])))], vec![1, 2, 3]);
        // 2 is live but not in the ISR: 3 must lead.
        assert_eq!(only_state(&decide(&v, &inputs(&[2, 3]))), (3, 5, vec![3]));
    }

    #[test]
    fn no_isr_replica_left_goes_offline_keeping_the_last_member() {
        let v = view(&[(0, Some((1, 4, vec![1])))], vec![1, 2]);
        assert_eq!(only_state(&decide(&v, &inputs(&[2]))), (-1, 5, vec![1]));
        // Already offline: nothing more to do until 1 returns.
        let v = view(&[(0, Some((-1, 5, vec![1])))], vec![1, 2]);
        assert!(decide(&v, &inputs(&[2])).is_empty());
        // 1 returns and leads again.
        assert_eq!(only_state(&decide(&v, &inputs(&[1, 2]))), (1, 6, vec![1]));
    }

    #[test]
    fn a_leader_registered_after_its_state_is_elected_again() {
        let v = view(&[(0, Some((1, 4, vec![1, 2])))], vec![1, 2]);
        let mut i = inputs(&[1, 2]);
        i.live.insert(1, 200);
        assert_eq!(only_state(&decide(&v, &i)), (1, 5, vec![1, 2]));
    }

    #[test]
    fn unclean_election_only_when_enabled() {
        let v = view(&[(0, Some((1, 4, vec![1])))], vec![1, 2]);
        let mut i = inputs(&[2]);
        i.unclean_default = true;
        assert_eq!(only_state(&decide(&v, &i)), (2, 5, vec![2]));
    }

    #[test]
    fn dead_follower_leaves_the_isr_without_epoch_bump() {
        let v = view(&[(0, Some((1, 4, vec![1, 2, 3])))], vec![1, 2, 3]);
        assert_eq!(
            only_state(&decide(&v, &inputs(&[1, 3]))),
            (1, 4, vec![1, 3])
        );
        assert!(decide(&v, &inputs(&[1, 2, 3])).is_empty());
    }

    #[test]
    fn controlled_shutdown_moves_leadership_and_drops_the_broker_from_the_isr() {
        let v = view(&[(0, Some((1, 4, vec![1, 2, 3])))], vec![1, 2, 3]);
        let mut i = inputs(&[1, 2, 3]);
        i.shutting_down.insert(1);
        assert_eq!(only_state(&decide(&v, &i)), (2, 5, vec![2, 3]));
        // Sole ISR member shutting down: it keeps leading.
        let v = view(&[(0, Some((1, 4, vec![1])))], vec![1, 2, 3]);
        assert!(decide(&v, &i).is_empty());
    }

    #[test]
    fn preferred_leader_returns_when_in_isr() {
        let v = view(
            &[(0, Some((2, 4, vec![1, 2]))), (1, Some((2, 4, vec![2])))],
            vec![1, 2],
        );
        let mut i = inputs(&[1, 2]);
        i.rebalance = true;
        // Partition 1 has 1 outside its ISR: only partition 0 moves.
        assert_eq!(only_state(&decide(&v, &i)), (1, 5, vec![1, 2]));
        i.rebalance = false;
        assert!(decide(&v, &i).is_empty());
    }

    #[test]
    fn topics_without_id_get_one() {
        let mut v = view(&[(0, Some((1, 0, vec![1])))], vec![1]);
        if let Some(t) = v.topics.get_mut("t") {
            t.assignment.topic_id = None;
            t.assignment.version = 2;
        }
        let actions = decide(&v, &inputs(&[1]));
        assert!(matches!(
            actions.as_slice(),
            [Action::AssignTopicId { assignment, .. }] if assignment.topic_id.is_some() && assignment.version == 3
        ));
    }

    fn moving_view(leader: i32, isr: Vec<i32>) -> ClusterView {
        let mut v = view(&[(0, Some((leader, 4, isr)))], vec![2, 3, 1]);
        if let Some(t) = v.topics.get_mut("t") {
            t.assignment.adding_replicas.insert(0, vec![3]);
            t.assignment.removing_replicas.insert(0, vec![1]);
        }
        v
    }

    #[test]
    fn a_move_waits_for_its_target_then_moves_leadership_and_completes() {
        let i = inputs(&[1, 2, 3]);
        assert!(
            decide(&moving_view(1, vec![1, 2]), &i).is_empty(),
            "3 not in sync yet"
        );
        let actions = decide(&moving_view(1, vec![1, 2, 3]), &i);
        let [Action::UpdateState { state, .. }, Action::CompleteMoves {
            assignment,
            partitions,
            ..
        }] = actions.as_slice()
        else {
            panic!("expected a state write then the completion, got {actions:?}");
        };
        assert_eq!(
            (state.leader, state.leader_epoch, state.isr.clone()),
            (2, 5, vec![2, 3])
        );
        assert_eq!(partitions, &vec![0]);
        assert_eq!(assignment.partitions[&0], vec![2, 3]);
        assert!(assignment.adding_replicas.is_empty() && assignment.removing_replicas.is_empty());
        // Leadership already inside the target: only the assignment is written.
        let actions = decide(&moving_view(2, vec![2, 3]), &i);
        assert!(
            matches!(actions.as_slice(), [Action::CompleteMoves { .. }]),
            "{actions:?}"
        );
    }

    #[test]
    fn a_leader_no_longer_assigned_is_replaced() {
        // A cancelled move left 3 leading although the replicas are back to [1, 2].
        let v = view(&[(0, Some((3, 4, vec![1, 2, 3])))], vec![1, 2]);
        assert_eq!(
            only_state(&decide(&v, &inputs(&[1, 2, 3]))),
            (1, 5, vec![1, 2])
        );
        // A follower no longer assigned leaves the ISR.
        let v = view(&[(0, Some((1, 4, vec![1, 2, 3])))], vec![1, 2]);
        assert_eq!(
            only_state(&decide(&v, &inputs(&[1, 2, 3]))),
            (1, 4, vec![1, 2])
        );
    }
}
