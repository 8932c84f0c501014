//! Consumer-group lag as the group's coordinator sees it: each committed offset against its
//! partition's end offset (the high watermark, what a read_uncommitted consumer can reach).
//! Partitions led here answer from the replica; for those led elsewhere the leader is asked
//! with ListOffsets (latest) over the inter-broker link, at most once per
//! [`LEADER_ASK_INTERVAL`] per leader, the answer cached in between.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::future::join_all;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListOffsetsRequest, ListOffsetsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tracing::debug;

use super::peers::PeerPool;
use super::Broker;
use crate::replica::peer::PeerDialer;

/// How often one leader is asked for end offsets, at most.
pub const LEADER_ASK_INTERVAL: Duration = Duration::from_secs(5);
/// Connect and request timeout of an end-offset question (a scrape must not hang on it).
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
const ASK_MAX_RESPONSE_BYTES: usize = 4 << 20;
/// ListOffsets v4: isolation level and current leader epoch, not yet flexible.
const LIST_OFFSETS_VERSION: i16 = 4;
/// ListOffsets' timestamp asking for the latest offset.
const LATEST: i64 = -1;

/// A consumer group's position on one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
    /// The partition's high watermark; `None` when unknown (no leader, leader unreachable).
    pub end_offset: Option<i64>,
    /// `end_offset - committed_offset`, when the end offset is known.
    pub lag: Option<i64>,
}

/// What one leader answered last, and when it was asked.
struct LeaderAnswer {
    asked_at: Instant,
    offsets: HashMap<(String, i32), i64>,
}

/// End offsets of partitions led by other brokers, asked of their leaders and cached.
pub(crate) struct EndOffsetCache {
    peers: PeerPool,
    answers: tokio::sync::Mutex<HashMap<i32, LeaderAnswer>>,
}

impl EndOffsetCache {
    /// A cache asking leaders through `dialer` (the inter-broker listener).
    pub(crate) fn new(broker_id: i32, dialer: PeerDialer) -> EndOffsetCache {
        EndOffsetCache {
            peers: PeerPool::new(
                format!("broker-{broker_id}-offsets"),
                dialer,
                ASK_TIMEOUT,
                ASK_MAX_RESPONSE_BYTES,
            ),
            answers: tokio::sync::Mutex::new(HashMap::new()),
        }
    }
}

impl Broker {
    /// Groups this broker coordinates, with the partitions they committed offsets for.
    pub async fn consumer_group_lag(&self) -> Vec<PartitionLag> {
        let mut committed = Vec::new();
        for listing in self.groups.list_groups(&[], &[]) {
            let (error, topics) = self
                .groups
                .fetch_offsets(&listing.group_id, None, false)
                .await;
            if error.is_some() {
                continue;
            }
            for (topic, partitions) in topics {
                for (partition, value, _) in partitions {
                    if let Some(v) = value.filter(|v| v.offset >= 0) {
                        committed.push((
                            listing.group_id.clone(),
                            topic.clone(),
                            partition,
                            v.offset,
                        ));
                    }
                }
            }
        }
        let mut wanted: Vec<(String, i32)> = committed
            .iter()
            .map(|(_, t, p, _)| (t.clone(), *p))
            .collect();
        wanted.sort();
        wanted.dedup();
        let ends = self.leader_end_offsets(&wanted).await;
        committed
            .into_iter()
            .map(|(group, topic, partition, committed_offset)| {
                let end_offset = ends.get(&(topic.clone(), partition)).copied();
                PartitionLag {
                    group,
                    topic,
                    partition,
                    committed_offset,
                    end_offset,
                    lag: end_offset.map(|end| end - committed_offset),
                }
            })
            .collect()
    }

    /// The end offset (high watermark) of each of `partitions` whose leader answers: from the
    /// replica for partitions led here, else asked of the leader (at most every
    /// [`LEADER_ASK_INTERVAL`] per leader, cached in between). Unknown partitions are missing.
    pub async fn leader_end_offsets(
        &self,
        partitions: &[(String, i32)],
    ) -> HashMap<(String, i32), i64> {
        let me = self.broker_id();
        let mut ends = HashMap::new();
        let mut remote: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        for (topic, partition) in partitions {
            if let Some(p) = self
                .replicas
                .partition(topic, *partition)
                .filter(|p| p.is_leader())
            {
                ends.insert((topic.clone(), *partition), p.high_watermark());
                continue;
            }
            let leader = self
                .cluster
                .topic(topic)
                .and_then(|t| t.partition(*partition).map(|p| p.leader));
            match leader {
                Some(l) if l >= 0 && l != me => remote
                    .entry(l)
                    .or_default()
                    .push((topic.clone(), *partition)),
                _ => {}
            }
        }
        if remote.is_empty() {
            return ends;
        }
        let mut answers = self.end_offsets.answers.lock().await;
        let now = Instant::now();
        let due: Vec<(i32, Vec<(String, i32)>)> = remote
            .iter()
            .filter(|(leader, _)| {
                answers
                    .get(*leader)
                    .is_none_or(|a| now.duration_since(a.asked_at) >= LEADER_ASK_INTERVAL)
            })
            .map(|(l, ps)| (*l, ps.clone()))
            .collect();
        let asked = join_all(
            due.into_iter()
                .map(|(leader, ps)| async move { (leader, self.ask_leader(leader, &ps).await) }),
        )
        .await;
        for (leader, offsets) in asked {
            answers.insert(
                leader,
                LeaderAnswer {
                    asked_at: now,
                    offsets,
                },
            );
        }
        for (leader, ps) in remote {
            let Some(answer) = answers.get(&leader) else {
                continue;
            };
            for tp in ps {
                if let Some(end) = answer.offsets.get(&tp) {
                    ends.insert(tp, *end);
                }
            }
        }
        ends
    }

    /// Asks `leader` for the latest offsets of `partitions`; those it does not answer (or all,
    /// on an error) are missing.
    async fn ask_leader(
        &self,
        leader: i32,
        partitions: &[(String, i32)],
    ) -> HashMap<(String, i32), i64> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            by_topic.entry(t.as_str()).or_default().push(*p);
        }
        let topics = by_topic
            .into_iter()
            .map(|(t, ps)| {
                ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(t.to_string())))
                    .with_partitions(
                        ps.into_iter()
                            .map(|p| {
                                ListOffsetsPartition::default()
                                    .with_partition_index(p)
                                    .with_current_leader_epoch(-1)
                                    .with_timestamp(LATEST)
                            })
                            .collect(),
                    )
            })
            .collect();
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(0)
            .with_topics(topics);
        let response: ListOffsetsResponse = match self
            .end_offsets
            .peers
            .call(
                &self.cluster,
                leader,
                ApiKey::ListOffsets,
                LIST_OFFSETS_VERSION,
                &request,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                debug!(leader, error = %e, "asking a leader for end offsets failed");
                return HashMap::new();
            }
        };
        let mut out = HashMap::new();
        for topic in response.topics {
            for p in topic
                .partitions
                .into_iter()
                .filter(|p| p.error_code == 0 && p.offset >= 0)
            {
                out.insert((topic.name.0.to_string(), p.partition_index), p.offset);
            }
        }
        out
    }
}
