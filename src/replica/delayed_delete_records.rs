//! DeleteRecords (Kafka's `ReplicaManager.deleteRecords` and DelayedDeleteRecords "purgatory",
//! per request): each partition's leader moves its log start offset, the new starts are made
//! durable in `log-start-offset-checkpoint`, the segments below them are deleted, and the answer
//! waits until every partition's low watermark (the smallest log start over its live replicas)
//! has reached the offset asked for, an error, or the request timeout. Each waiting request is
//! its own future woken by its partitions' signals; nothing blocks other connections.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::partition::{DeleteRecordsError, Partition, RecordsDeleted};
use super::{ReplicaManager, Shared};
use crate::cluster::is_internal_topic;
use crate::log::TopicPartition;

/// One partition's outcome: its low watermark, or why it failed.
pub type DeleteRecordsOutcome = Result<i64, DeleteRecordsError>;

impl ReplicaManager {
    /// Deletes the records below each `(partition, offset)` (-1: the high watermark) on the
    /// partitions this broker leads, then waits up to `timeout` for every replica to follow.
    /// The caller has answered partitions the metadata does not know; a known partition not
    /// hosted here is NOT_LEADER_OR_FOLLOWER. Answers are in the order of `targets`.
    pub async fn delete_records(
        &self,
        targets: Vec<(TopicPartition, i64)>,
        timeout: Duration,
    ) -> Vec<DeleteRecordsOutcome> {
        let deadline = Instant::now() + timeout;
        let count = targets.len();
        let resolved: Vec<Target> = targets
            .into_iter()
            .map(|(tp, offset)| Target {
                partition: self.hosted_partition(&tp),
                tp,
                offset,
            })
            .collect();
        let shared = self.shared.clone();
        // The local step writes a checkpoint and deletes files: off the async threads.
        let local =
            match tokio::task::spawn_blocking(move || delete_locally(&shared, resolved)).await {
                Ok(local) => local,
                Err(e) => {
                    warn!(error = %e, "DeleteRecords local step failed");
                    return (0..count)
                        .map(|_| Err(DeleteRecordsError::Internal(e.to_string())))
                        .collect();
                }
            };
        join_all(local.into_iter().map(|local| async move {
            let deleted = local.result?;
            match local.partition {
                Some(p) if deleted.low_watermark < deleted.requested_offset => {
                    p.wait_for_low_watermark(
                        deleted.requested_offset,
                        deleted.low_watermark,
                        deadline,
                    )
                    .await
                }
                _ => Ok(deleted.low_watermark),
            }
        }))
        .await
    }
}

/// One partition of a DeleteRecords, with its replica if hosted here.
struct Target {
    tp: TopicPartition,
    offset: i64,
    partition: Option<Arc<Partition>>,
}

/// What the local step did to one partition.
struct LocalDeletion {
    partition: Option<Arc<Partition>>,
    result: Result<RecordsDeleted, DeleteRecordsError>,
}

impl LocalDeletion {
    fn moved(&self) -> bool {
        self.result.as_ref().is_ok_and(|d| d.moved)
    }
}

/// The local step of every partition: move the leaders' log starts, checkpoint them once, then
/// delete the segments below them.
fn delete_locally(shared: &Shared, targets: Vec<Target>) -> Vec<LocalDeletion> {
    let mut out: Vec<LocalDeletion> = targets
        .into_iter()
        .map(
            |Target {
                 tp,
                 offset,
                 partition,
             }| {
                let result = if is_internal_topic(&tp.topic) {
                    Err(DeleteRecordsError::InternalTopic(tp.topic.to_string()))
                } else {
                    match &partition {
                        None => Err(DeleteRecordsError::NotLeader),
                        Some(p) => p.delete_records_on_leader(offset),
                    }
                };
                if let Err(e) = &result {
                    debug!(partition = %tp, offset, error = %e, "DeleteRecords refused");
                }
                LocalDeletion { partition, result }
            },
        )
        .collect();
    if !out.iter().any(LocalDeletion::moved) {
        return out;
    }
    // Durable before it is acknowledged and before any segment goes.
    if let Err(e) = shared.checkpoint_log_starts() {
        for d in out.iter_mut().filter(|d| d.moved()) {
            d.result = Err(DeleteRecordsError::Storage(e.to_string()));
        }
        return out;
    }
    for d in out.iter_mut().filter(|d| d.moved()) {
        let Some(p) = &d.partition else { continue };
        if let Err(e) = p.delete_segments_below_log_start() {
            d.result = Err(DeleteRecordsError::Storage(e.to_string()));
        }
    }
    out
}

impl Partition {
    /// Waits until the low watermark reaches `required_offset`, then answers it; ends with the
    /// partition's error when leadership is lost (NOT_LEADER_OR_FOLLOWER) or the replica is no
    /// longer hosted, and with `Timeout` (REQUEST_TIMED_OUT, carrying `initial_low_watermark`,
    /// as Kafka answers the status of the local step) at `deadline`.
    pub async fn wait_for_low_watermark(
        &self,
        required_offset: i64,
        initial_low_watermark: i64,
        deadline: Instant,
    ) -> DeleteRecordsOutcome {
        // Subscribe before checking, so a change in between still wakes us.
        let mut changes = self.subscribe();
        loop {
            let low_watermark = self.low_watermark()?;
            if low_watermark >= required_offset {
                return Ok(low_watermark);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Err(_) => {
                    let low_watermark = self.low_watermark()?;
                    if low_watermark >= required_offset {
                        return Ok(low_watermark);
                    }
                    return Err(DeleteRecordsError::Timeout {
                        low_watermark: initial_low_watermark,
                    });
                }
                Ok(Err(_)) => return Err(DeleteRecordsError::NotLeader),
                Ok(Ok(())) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::ReplicationSettings;
    use crate::log::batch::test_util::batch;
    use crate::log::checkpoint::{read_checkpoint, LOG_START_OFFSET_CHECKPOINT};
    use crate::log::{LogConfig, LogManager};
    use crate::replica::link::LeaderAndIsr;

    const SEGMENT_BYTES: u64 = 600;

    /// A manager leading `t-0` with followers `followers`, and 100 records in 10 batches, in
    /// several segments, all replicated (followers at 100, log start 0).
    fn leading(dir: &std::path::Path, followers: &[i32]) -> (ReplicaManager, Arc<Partition>) {
        let logs = LogManager::open(dir).unwrap();
        let rm = ReplicaManager::new(1, logs, ReplicationSettings::default());
        let tp = TopicPartition::new("t", 0);
        let replicas: Vec<i32> = std::iter::once(1)
            .chain(followers.iter().copied())
            .collect();
        let config = LogConfig {
            segment_bytes: SEGMENT_BYTES,
            ..LogConfig::default()
        };
        let state = LeaderAndIsr {
            leader: 1,
            leader_epoch: 0,
            isr: replicas.clone(),
            replicas,
            controller_epoch: 0,
            state_version: 0,
        };
        rm.apply_state(&tp, config, 1, state).unwrap();
        let p = rm.hosted_partition(&tp).unwrap();
        for i in 0..10 {
            p.append_as_leader(&batch(10, i * 100), 1, 0).unwrap();
        }
        for f in followers {
            p.record_follower_fetch(*f, 100, 0, 0).unwrap();
        }
        assert_eq!(p.high_watermark(), 100);
        (rm, p)
    }

    fn t0() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    #[tokio::test]
    async fn a_sole_replica_answers_at_once_after_the_checkpoint_and_the_segment_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let (rm, p) = leading(dir.path(), &[]);
        let segments = rm.logs().get(&t0()).unwrap().num_segments();
        assert!(segments >= 4);
        let out = rm
            .delete_records(vec![(t0(), 45)], Duration::from_secs(5))
            .await;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ref().ok(), Some(&45));
        let saved = read_checkpoint(&dir.path().join(LOG_START_OFFSET_CHECKPOINT)).unwrap();
        assert_eq!(saved.get(&t0()), Some(&45));
        let log = rm.logs().get(&t0()).unwrap();
        assert!(log.num_segments() < segments);
        assert!(log.segment_base_offsets()[0] <= 45 && log.segment_base_offsets()[0] > 20);
        assert_eq!(p.log_start_offset(), 45);
    }

    #[tokio::test]
    async fn internal_unhosted_and_refused_partitions_answer_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (rm, _p) = leading(dir.path(), &[]);
        let out = rm
            .delete_records(
                vec![
                    (TopicPartition::new("__consumer_offsets", 0), 1),
                    (TopicPartition::new("t", 7), 1),
                    (t0(), 101),
                    (t0(), -1),
                ],
                Duration::from_secs(5),
            )
            .await;
        assert!(matches!(out[0], Err(DeleteRecordsError::InternalTopic(_))));
        assert!(matches!(out[1], Err(DeleteRecordsError::NotLeader)));
        assert!(matches!(
            out[2],
            Err(DeleteRecordsError::OffsetOutOfRange { offset: 101, .. })
        ));
        assert_eq!(out[3].as_ref().ok(), Some(&100));
    }

    #[tokio::test]
    async fn waits_until_every_live_follower_reported_the_new_start() {
        let dir = tempfile::tempdir().unwrap();
        let (rm, p) = leading(dir.path(), &[2, 3]);
        let rm = Arc::new(rm);
        let waiter = {
            let rm = rm.clone();
            tokio::spawn(async move {
                rm.delete_records(vec![(t0(), 30)], Duration::from_secs(10))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        assert_eq!(p.log_start_offset(), 30);
        p.record_follower_fetch(2, 100, 30, 1).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "follower 3 is still at 0");
        p.record_follower_fetch(3, 100, 35, 1).unwrap();
        let out = waiter.await.unwrap();
        assert_eq!(out[0].as_ref().ok(), Some(&30));
    }

    #[tokio::test]
    async fn times_out_with_the_first_low_watermark_or_ends_on_leadership_loss() {
        let dir = tempfile::tempdir().unwrap();
        let (rm, p) = leading(dir.path(), &[2]);
        let out = rm
            .delete_records(vec![(t0(), 30)], Duration::from_millis(50))
            .await;
        assert!(matches!(
            out[0],
            Err(DeleteRecordsError::Timeout { low_watermark: 0 })
        ));
        // The leader's own start moved all the same, as in Kafka.
        assert_eq!(p.log_start_offset(), 30);
        let waiter = {
            let p = p.clone();
            tokio::spawn(async move {
                p.wait_for_low_watermark(40, 0, Instant::now() + Duration::from_secs(10))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        p.apply(
            &LeaderAndIsr {
                leader: 2,
                leader_epoch: 1,
                isr: vec![1, 2],
                replicas: vec![1, 2],
                controller_epoch: 0,
                state_version: 1,
            },
            1,
        );
        assert!(matches!(
            waiter.await.unwrap(),
            Err(DeleteRecordsError::NotLeader)
        ));
        rm.stop_replica(&t0(), false).unwrap();
        assert!(matches!(
            p.low_watermark(),
            Err(DeleteRecordsError::UnknownTopicOrPartition)
        ));
    }
}
