//! Replica placement for new topics and partitions, following Kafka's spread: partition leaders
//! round-robin over the brokers from a random start, followers shifted so replicas of consecutive
//! partitions land on different broker pairs, and, when every broker has a `broker.rack`, at most
//! one replica per rack until every rack holds one.

use std::collections::{BTreeMap, BTreeSet};

/// A broker as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementBroker {
    pub id: i32,
    pub rack: Option<String>,
}

/// Why replicas cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("replication factor must be larger than 0")]
    ReplicationFactorTooSmall,
    #[error("replication factor: {rf} larger than available brokers: {brokers}")]
    ReplicationFactorTooLarge { rf: usize, brokers: usize },
    #[error("number of partitions must be larger than 0")]
    NoPartitions,
    #[error("not all brokers have rack information for replica rack aware assignment")]
    PartialRackInformation,
}

/// Where the spread starts: Kafka picks both at random; fixed values make placement repeatable.
#[derive(Clone, Copy, Debug)]
pub struct Start {
    /// Index (into the arranged broker list) of the first partition's leader.
    pub index: usize,
    /// Initial shift between a leader and its first follower.
    pub shift: usize,
}

impl Start {
    /// A random start, as Kafka uses for new topics.
    pub fn random(brokers: usize) -> Start {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let n = brokers.max(1);
        Start {
            index: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize % n,
            shift: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize % n,
        }
    }
}

/// Replica lists for partitions `first_partition..first_partition + partitions`.
pub fn assign_replicas(
    brokers: &[PlacementBroker],
    partitions: usize,
    replication_factor: usize,
    first_partition: usize,
    start: Start,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    if partitions == 0 {
        return Err(PlacementError::NoPartitions);
    }
    if replication_factor == 0 {
        return Err(PlacementError::ReplicationFactorTooSmall);
    }
    if replication_factor > brokers.len() {
        return Err(PlacementError::ReplicationFactorTooLarge {
            rf: replication_factor,
            brokers: brokers.len(),
        });
    }
    let with_rack = brokers.iter().filter(|b| b.rack.is_some()).count();
    if with_rack == 0 {
        let mut ids: Vec<i32> = brokers.iter().map(|b| b.id).collect();
        ids.sort_unstable();
        return Ok(spread(
            &ids,
            partitions,
            replication_factor,
            first_partition,
            start,
        ));
    }
    if with_rack != brokers.len() {
        return Err(PlacementError::PartialRackInformation);
    }
    Ok(spread_across_racks(
        brokers,
        partitions,
        replication_factor,
        first_partition,
        start,
    ))
}

/// The broker index of follower `j` of a partition whose leader is at `first`.
fn replica_index(first: usize, shift: usize, j: usize, n: usize) -> usize {
    let step = 1 + (shift + j) % (n - 1).max(1);
    (first + step) % n
}

fn spread(
    ids: &[i32],
    partitions: usize,
    rf: usize,
    first_partition: usize,
    start: Start,
) -> Vec<Vec<i32>> {
    let n = ids.len();
    let mut shift = start.shift;
    let mut out = Vec::with_capacity(partitions);
    for partition in first_partition..first_partition + partitions {
        if partition > 0 && partition % n == 0 {
            shift += 1;
        }
        let first = (partition + start.index) % n;
        let mut replicas = vec![ids[first]];
        for j in 0..rf - 1 {
            replicas.push(ids[replica_index(first, shift, j, n)]);
        }
        out.push(replicas);
    }
    out
}

/// Brokers ordered so consecutive entries come from different racks (racks and ids sorted).
fn rack_alternated(brokers: &[PlacementBroker]) -> Vec<(i32, String)> {
    let mut by_rack: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for b in brokers {
        by_rack
            .entry(b.rack.clone().unwrap_or_default())
            .or_default()
            .push(b.id);
    }
    for ids in by_rack.values_mut() {
        ids.sort_unstable();
        ids.reverse();
    }
    let racks: Vec<String> = by_rack.keys().cloned().collect();
    let mut out = Vec::with_capacity(brokers.len());
    let mut rack = 0;
    while out.len() < brokers.len() {
        if let Some(id) = by_rack.get_mut(&racks[rack]).and_then(Vec::pop) {
            out.push((id, racks[rack].clone()));
        }
        rack = (rack + 1) % racks.len();
    }
    out
}

fn spread_across_racks(
    brokers: &[PlacementBroker],
    partitions: usize,
    rf: usize,
    first_partition: usize,
    start: Start,
) -> Vec<Vec<i32>> {
    let arranged = rack_alternated(brokers);
    let n = arranged.len();
    let num_racks = arranged
        .iter()
        .map(|(_, r)| r)
        .collect::<BTreeSet<_>>()
        .len();
    let mut shift = start.shift;
    let mut out = Vec::with_capacity(partitions);
    for partition in first_partition..first_partition + partitions {
        if partition > 0 && partition % n == 0 {
            shift += 1;
        }
        let first = (partition + start.index) % n;
        let (leader, leader_rack) = arranged[first].clone();
        let mut replicas = vec![leader];
        let mut racks_used = BTreeSet::from([leader_rack]);
        let mut brokers_used = BTreeSet::from([leader]);
        let mut k = 0;
        for _ in 0..rf - 1 {
            loop {
                let (id, rack) = &arranged[replica_index(first, shift * num_racks, k, n)];
                k += 1;
                let rack_ok = !racks_used.contains(rack) || racks_used.len() == num_racks;
                let broker_ok = !brokers_used.contains(id) || brokers_used.len() == n;
                if rack_ok && broker_ok {
                    replicas.push(*id);
                    racks_used.insert(rack.clone());
                    brokers_used.insert(*id);
                    break;
                }
            }
        }
        out.push(replicas);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(ids: &[i32]) -> Vec<PlacementBroker> {
        ids.iter()
            .map(|&id| PlacementBroker { id, rack: None })
            .collect()
    }

    fn racked(spec: &[(i32, &str)]) -> Vec<PlacementBroker> {
        spec.iter()
            .map(|&(id, r)| PlacementBroker {
                id,
                rack: Some(r.to_string()),
            })
            .collect()
    }

    #[test]
    fn matches_kafkas_documented_example() {
        // Kafka's AdminUtils doc: 5 brokers, 10 partitions, RF 3, start index 0, shift 0.
        let got = assign_replicas(
            &plain(&[0, 1, 2, 3, 4]),
            10,
            3,
            0,
            Start { index: 0, shift: 0 },
        )
        .unwrap();
        let expected = vec![
            vec![0, 1, 2],
            vec![1, 2, 3],
            vec![2, 3, 4],
            vec![3, 4, 0],
            vec![4, 0, 1],
            vec![0, 2, 3],
            vec![1, 3, 4],
            vec![2, 4, 0],
            vec![3, 0, 1],
            vec![4, 1, 2],
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn replicas_are_distinct_and_leaders_balanced() {
        for n in 1..=6 {
            let ids: Vec<i32> = (1..=n).collect();
            for rf in 1..=n as usize {
                let start = Start::random(n as usize);
                let got = assign_replicas(&plain(&ids), 12, rf, 0, start).unwrap();
                for r in &got {
                    assert_eq!(r.iter().collect::<BTreeSet<_>>().len(), rf, "{r:?}");
                }
                let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
                for r in &got {
                    *leaders.entry(r[0]).or_default() += 1;
                }
                let (min, max) = (
                    leaders.values().min().unwrap(),
                    leaders.values().max().unwrap(),
                );
                assert!(max - min <= 1, "leaders {leaders:?}");
            }
        }
    }

    #[test]
    fn racks_get_one_replica_each_before_any_gets_two() {
        let brokers = racked(&[(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")]);
        let rack_of = |id: i32| {
            brokers
                .iter()
                .find(|b| b.id == id)
                .unwrap()
                .rack
                .clone()
                .unwrap()
        };
        let got = assign_replicas(&brokers, 12, 3, 0, Start::random(6)).unwrap();
        for r in &got {
            let racks: BTreeSet<String> = r.iter().map(|id| rack_of(*id)).collect();
            assert_eq!(racks.len(), 3, "{r:?}");
        }
        assert_eq!(
            rack_alternated(&brokers)
                .iter()
                .map(|b| b.0)
                .collect::<Vec<_>>(),
            vec![1, 3, 5, 2, 4, 6]
        );
    }

    #[test]
    fn refuses_impossible_requests() {
        assert_eq!(
            assign_replicas(&plain(&[1, 2]), 1, 3, 0, Start { index: 0, shift: 0 }),
            Err(PlacementError::ReplicationFactorTooLarge { rf: 3, brokers: 2 })
        );
        assert_eq!(
            assign_replicas(&plain(&[1]), 0, 1, 0, Start { index: 0, shift: 0 }),
            Err(PlacementError::NoPartitions)
        );
        let mixed = vec![
            PlacementBroker {
                id: 1,
                rack: Some("a".into()),
            },
            PlacementBroker { id: 2, rack: None },
        ];
        assert_eq!(
            assign_replicas(&mixed, 1, 1, 0, Start { index: 0, shift: 0 }),
            Err(PlacementError::PartialRackInformation)
        );
    }

    #[test]
    fn added_partitions_continue_the_spread() {
        let all =
            assign_replicas(&plain(&[0, 1, 2]), 6, 2, 0, Start { index: 1, shift: 2 }).unwrap();
        let tail =
            assign_replicas(&plain(&[0, 1, 2]), 3, 2, 3, Start { index: 1, shift: 2 }).unwrap();
        assert_eq!(&all[3..], &tail[..]);
    }
}
