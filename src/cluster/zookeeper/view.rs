//! The cluster as one broker last read it from ZooKeeper: registered brokers, the controller,
//! topic assignments, configs and partition states, each with the znode version it was read at.
//!
//! A [`ClusterView`] is immutable; the watcher builds a new one per change and publishes it, so
//! request handlers, the replica sync and the controller all read one consistent snapshot.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use super::znodes::{BrokerRegistration, PartitionStateZnode, TopicAssignment};
use crate::cluster::{BrokerInfo, PartitionState, TopicMetadata};
use crate::config::{ClientEntityConfigs, DynamicBrokerConfigs};

/// A registered broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveBroker {
    pub info: BrokerInfo,
    /// The czxid of its registration znode (Kafka's broker epoch): a new value means the broker
    /// restarted, even if the controller never saw it gone.
    pub epoch: i64,
}

/// A partition state and the znode stat it was read at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredState {
    pub state: PartitionStateZnode,
    pub version: i32,
    /// zxid of the write that produced this state.
    pub mzxid: i64,
}

/// One topic as stored.
#[derive(Clone, Debug)]
pub struct TopicEntry {
    pub name: String,
    pub assignment: TopicAssignment,
    pub assignment_version: i32,
    pub configs: BTreeMap<String, String>,
    pub states: BTreeMap<i32, StoredState>,
    /// What clients and the replica manager see, rebuilt when anything above changes.
    pub metadata: Arc<TopicMetadata>,
}

impl TopicEntry {
    /// Builds the entry; `distrust_own_leadership_before` hides this broker's leadership in
    /// states written before its current registration (see [`ClusterView::me`]).
    pub fn new(
        name: String,
        assignment: TopicAssignment,
        assignment_version: i32,
        configs: BTreeMap<String, String>,
        states: BTreeMap<i32, StoredState>,
        me: &Me,
    ) -> TopicEntry {
        let metadata = Arc::new(build_metadata(&name, &assignment, &configs, &states, me));
        TopicEntry {
            name,
            assignment,
            assignment_version,
            configs,
            states,
            metadata,
        }
    }

    /// Replaces the topic's config overrides and rebuilds the metadata.
    pub fn with_configs(&self, configs: BTreeMap<String, String>, me: &Me) -> TopicEntry {
        TopicEntry::new(
            self.name.clone(),
            self.assignment.clone(),
            self.assignment_version,
            configs,
            self.states.clone(),
            me,
        )
    }

    /// Replaces one partition state and rebuilds the metadata.
    pub fn with_state(&self, partition: i32, state: Option<StoredState>, me: &Me) -> TopicEntry {
        let mut states = self.states.clone();
        match state {
            Some(s) => states.insert(partition, s),
            None => states.remove(&partition),
        };
        TopicEntry::new(
            self.name.clone(),
            self.assignment.clone(),
            self.assignment_version,
            self.configs.clone(),
            states,
            me,
        )
    }
}

/// This broker's identity in the view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Me {
    pub id: i32,
    /// czxid of this broker's current registration; 0 before it registered.
    pub registration_zxid: i64,
}

/// An immutable snapshot of the cluster metadata.
#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    pub cluster_id: String,
    pub controller: Option<i32>,
    pub brokers: BTreeMap<i32, LiveBroker>,
    pub topics: BTreeMap<String, TopicEntry>,
    pub by_id: HashMap<Uuid, String>,
    pub me: Me,
    /// The stored dynamic configs of `/config/brokers/<default>` and of this broker, as read
    /// (checked only when applied).
    pub broker_configs: DynamicBrokerConfigs,
    /// The configs of every user, client-id and IP entity, as read.
    pub client_entities: Arc<ClientEntityConfigs>,
    /// The highest `config_change_<seq>` already acted on.
    pub last_config_change: Option<i64>,
}

impl ClusterView {
    pub fn topic_metadata(&self, name: &str) -> Option<Arc<TopicMetadata>> {
        self.topics.get(name).map(|t| t.metadata.clone())
    }

    /// Rebuilds the topic-id index after topics changed.
    pub fn reindex(&mut self) {
        self.by_id = self
            .topics
            .values()
            .filter(|t| !t.metadata.id.is_nil())
            .map(|t| (t.metadata.id, t.name.clone()))
            .collect();
    }

    /// Rebuilds every topic's metadata (after this broker's registration changed).
    pub fn rebuild_all(&mut self) {
        let me = self.me.clone();
        for entry in self.topics.values_mut() {
            *entry = TopicEntry::new(
                entry.name.clone(),
                entry.assignment.clone(),
                entry.assignment_version,
                entry.configs.clone(),
                entry.states.clone(),
                &me,
            );
        }
    }
}

/// Converts the stored topic into what handlers and the replica manager use. A partition with
/// no state yet has leader -1. This broker's own leadership from a state written before its
/// current registration is hidden (leader -1): that state predates a restart, and only the
/// controller's next election (which it makes for every restarted broker) may hand it back.
fn build_metadata(
    name: &str,
    assignment: &TopicAssignment,
    configs: &BTreeMap<String, String>,
    states: &BTreeMap<i32, StoredState>,
    me: &Me,
) -> TopicMetadata {
    let partitions = assignment
        .partitions
        .iter()
        .map(|(&partition, replicas)| match states.get(&partition) {
            Some(s) => {
                let stale_self = s.state.leader == me.id && s.mzxid < me.registration_zxid;
                PartitionState {
                    partition,
                    replicas: replicas.clone(),
                    leader: if stale_self { -1 } else { s.state.leader },
                    leader_epoch: s.state.leader_epoch,
                    isr: s.state.isr.clone(),
                    controller_epoch: s.state.controller_epoch,
                    state_version: s.version,
                    adding_replicas: listed(&assignment.adding_replicas, partition),
                    removing_replicas: listed(&assignment.removing_replicas, partition),
                }
            }
            None => PartitionState::unelected(partition, replicas.clone()),
        })
        .collect();
    TopicMetadata {
        name: name.to_string(),
        id: assignment.topic_id.unwrap_or(Uuid::nil()),
        partitions,
        configs: configs.clone(),
    }
}

fn listed(lists: &BTreeMap<i32, Vec<i32>>, partition: i32) -> Vec<i32> {
    lists.get(&partition).cloned().unwrap_or_default()
}

/// A broker registration as a live broker of the view.
pub fn live_broker(id: i32, reg: &BrokerRegistration, epoch: i64) -> Option<LiveBroker> {
    let info = reg.to_broker_info(id);
    (!info.endpoints.is_empty()).then_some(LiveBroker { info, epoch })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(leader: i32, epoch: i32, isr: Vec<i32>, mzxid: i64) -> StoredState {
        StoredState {
            state: PartitionStateZnode::new(leader, epoch, isr, 1),
            version: 3,
            mzxid,
        }
    }

    #[test]
    fn partitions_without_state_have_no_leader() {
        let me = Me {
            id: 1,
            registration_zxid: 10,
        };
        let assignment = TopicAssignment::new(Uuid::new_v4(), &[vec![1, 2], vec![2, 1]]);
        let states = BTreeMap::from([(1, stored(2, 4, vec![2, 1], 5))]);
        let entry = TopicEntry::new("t".into(), assignment, 0, BTreeMap::new(), states, &me);
        let p = &entry.metadata.partitions;
        assert_eq!((p[0].leader, p[0].leader_epoch), (-1, -1));
        assert_eq!(
            (p[1].leader, p[1].leader_epoch, p[1].state_version),
            (2, 4, 3)
        );
    }

    #[test]
    fn own_leadership_from_before_registration_is_hidden() {
        let me = Me {
            id: 1,
            registration_zxid: 10,
        };
        let assignment = TopicAssignment::new(Uuid::new_v4(), &[vec![1, 2], vec![1, 2]]);
        let states = BTreeMap::from([
            (0, stored(1, 4, vec![1, 2], 5)),
            (1, stored(1, 5, vec![1, 2], 11)),
        ]);
        let entry = TopicEntry::new("t".into(), assignment, 0, BTreeMap::new(), states, &me);
        assert_eq!(entry.metadata.partitions[0].leader, -1);
        assert_eq!(entry.metadata.partitions[1].leader, 1);
    }
}
