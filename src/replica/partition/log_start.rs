//! Moving a replica's log start offset (Kafka's `Partition.deleteRecordsOnLeader`,
//! `lowWatermarkIfLeader` and the follower's `maybeIncrementLogStartOffset`): DeleteRecords on
//! the leader, followers taking the leader's log start from each fetch answer, and the low
//! watermark a DeleteRecords waits for (the smallest log start over the live replicas).
//!
//! A moved start is made durable (`log-start-offset-checkpoint`) before segments below it are
//! deleted and before anyone learns of it: the leader answers only after the checkpoint, and a
//! follower reports its new start in its next fetch only after its own checkpoint.

use super::Partition;
use crate::log::{LogError, LogStartError};
use crate::replica::isr;
use tracing::debug;

/// DeleteRecords' offset meaning "up to the high watermark".
const HIGH_WATERMARK_OFFSET: i64 = -1;

/// Why a DeleteRecords on one partition failed; each maps to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum DeleteRecordsError {
    #[error("this broker does not host the partition")]
    UnknownTopicOrPartition,
    #[error("this broker is not the leader of the partition")]
    NotLeader,
    #[error("cannot delete records of internal topic {0}")]
    InternalTopic(String),
    /// The topic's cleanup.policy does not include `delete` (POLICY_VIOLATION).
    #[error("records of a topic whose cleanup.policy does not include delete cannot be deleted")]
    PolicyViolation,
    #[error("offset {offset} is not valid: it must be -1 or within 0..={high_watermark}")]
    OffsetOutOfRange { offset: i64, high_watermark: i64 },
    /// The low watermark had not reached the offset at the request's deadline; it was
    /// `low_watermark` right after the local deletion.
    #[error("the replicas did not all move their log start within the request timeout")]
    Timeout { low_watermark: i64 },
    #[error("storage error: {0}")]
    Storage(String),
    /// An unexpected failure of the broker (UNKNOWN_SERVER_ERROR).
    #[error("internal error: {0}")]
    Internal(String),
}

/// A DeleteRecords carried out on the leader's own log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordsDeleted {
    /// The offset asked for (-1 resolved to the high watermark).
    pub requested_offset: i64,
    /// The low watermark right after the leader's log start moved.
    pub low_watermark: i64,
    /// Whether the leader's log start moved (it must then be checkpointed and the segments below
    /// it deleted: `ReplicaManager::delete_records` does both).
    pub moved: bool,
}

impl Partition {
    /// DeleteRecords on the leader: moves this replica's log start offset up to `offset` (-1:
    /// the high watermark) in memory, as Kafka's `deleteRecordsOnLeader`. Refused on followers
    /// and fenced leaders (NOT_LEADER_OR_FOLLOWER), on topics whose cleanup.policy lacks `delete`
    /// (POLICY_VIOLATION), for negative offsets other than -1 and offsets beyond the high
    /// watermark (OFFSET_OUT_OF_RANGE); nothing changes then.
    pub fn delete_records_on_leader(
        &self,
        offset: i64,
    ) -> Result<RecordsDeleted, DeleteRecordsError> {
        let st = self.state.read();
        if !st.is_leader(self.me()) || st.fenced {
            return Err(DeleteRecordsError::NotLeader);
        }
        self.check_dir_usable()
            .map_err(|e| DeleteRecordsError::Storage(e.to_string()))?;
        if !self.log.config().cleanup_policy.delete() {
            return Err(DeleteRecordsError::PolicyViolation);
        }
        let high_watermark = self.high_watermark();
        let requested_offset = match offset {
            HIGH_WATERMARK_OFFSET => high_watermark,
            o => o,
        };
        let out_of_range = DeleteRecordsError::OffsetOutOfRange {
            offset: requested_offset,
            high_watermark,
        };
        if requested_offset < 0 {
            return Err(out_of_range);
        }
        let moved = match self
            .log
            .increment_log_start_offset(requested_offset, high_watermark)
        {
            Ok(moved) => moved,
            Err(LogStartError::BeyondHighWatermark { .. }) => return Err(out_of_range),
            Err(LogStartError::Log(e)) => {
                self.on_log_error("log start increment", &e);
                return Err(DeleteRecordsError::Storage(e.to_string()));
            }
        };
        let replicas = st.replicas.clone();
        drop(st);
        let low_watermark = self.low_watermark_over(&replicas);
        Ok(RecordsDeleted {
            requested_offset,
            low_watermark,
            moved,
        })
    }

    /// The low watermark while this broker leads the partition; otherwise why not (Kafka's
    /// DelayedDeleteRecords check: a replica no longer hosted is UNKNOWN_TOPIC_OR_PARTITION, a
    /// follower NOT_LEADER_OR_FOLLOWER, a failed log directory KAFKA_STORAGE_ERROR).
    pub fn low_watermark(&self) -> Result<i64, DeleteRecordsError> {
        let st = self.state.read();
        if st.stopped {
            return Err(DeleteRecordsError::UnknownTopicOrPartition);
        }
        if !st.is_leader(self.me()) {
            return Err(DeleteRecordsError::NotLeader);
        }
        if self.shared.dir_failure.is_failed() {
            return Err(DeleteRecordsError::Storage(
                "the log directory has failed".to_string(),
            ));
        }
        let replicas = st.replicas.clone();
        drop(st);
        Ok(self.low_watermark_over(&replicas))
    }

    /// The low watermark over `replicas` (the assignment); which brokers are live is asked of
    /// the metadata store before any partition lock is taken.
    fn low_watermark_over(&self, replicas: &[i32]) -> i64 {
        let me = self.me();
        let live: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|id| *id != me && self.shared.is_alive(*id))
            .collect();
        let followers = self.followers.lock();
        isr::low_watermark(
            me,
            self.log.log_start_offset(),
            replicas,
            &followers,
            |id| live.contains(&id),
        )
    }

    /// Follower: takes the leader's log start offset from a fetch answer at `epoch` (Kafka's
    /// `maybeIncrementLogStartOffset` with reason LeaderOffsetIncremented). Returns whether the
    /// start moved; the caller then checkpoints it and deletes the segments below it. A start
    /// beyond this replica's high watermark is left for a later answer, as Kafka refuses it.
    pub(in crate::replica) fn follow_leader_log_start(
        &self,
        epoch: i32,
        leader_log_start: i64,
    ) -> Result<bool, LogError> {
        let st = self.state.read();
        if !self.is_following_at(&st, epoch) || leader_log_start < 0 {
            return Ok(false);
        }
        match self
            .log
            .increment_log_start_offset(leader_log_start, self.high_watermark())
        {
            Ok(moved) => Ok(moved),
            Err(LogStartError::BeyondHighWatermark {
                offset,
                high_watermark,
            }) => {
                debug!(partition = %self.tp, offset, high_watermark,
                    "leader's log start beyond this follower's high watermark; not taken yet");
                Ok(false)
            }
            Err(LogStartError::Log(e)) => {
                self.on_log_error("log start increment", &e);
                Err(e)
            }
        }
    }

    /// Deletes the segments wholly below the log start offset (after it was checkpointed).
    pub(in crate::replica) fn delete_segments_below_log_start(&self) -> Result<usize, LogError> {
        self.log
            .delete_segments_below_log_start()
            .inspect_err(|e| self.on_log_error("segment deletion", e))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::ReplicationSettings;
    use crate::log::batch::test_util::batch;
    use crate::log::{CleanupPolicy, LogConfig, LogManager, TopicPartition};
    use crate::replica::link::LeaderAndIsr;
    use crate::replica::{RoleChange, Shared};

    fn replica(dir: &std::path::Path, me: i32) -> Arc<Partition> {
        let logs = LogManager::open(dir).unwrap();
        let tp = TopicPartition::new("t", 0);
        let log = logs.open_partition(&tp, LogConfig::default()).unwrap();
        let shared = Arc::new(Shared::new(me, ReplicationSettings::default(), logs));
        Arc::new(Partition::new(tp, log, shared, 1, None))
    }

    fn state(leader: i32, epoch: i32) -> LeaderAndIsr {
        LeaderAndIsr {
            leader,
            leader_epoch: epoch,
            isr: vec![1, 2],
            replicas: vec![1, 2],
            controller_epoch: 0,
            state_version: 0,
        }
    }

    /// Leader 1 with 10 records, all replicated to follower 2 (high watermark 10), whose log
    /// start is 0.
    fn leader(dir: &std::path::Path) -> Arc<Partition> {
        let p = replica(dir, 1);
        assert_eq!(p.apply(&state(1, 0), 1), RoleChange::BecameLeader);
        p.append_as_leader(&batch(10, 0), 1, 0).unwrap();
        p.record_follower_fetch(2, 10, 0, 0).unwrap();
        assert_eq!(p.high_watermark(), 10);
        p
    }

    fn code(r: Result<RecordsDeleted, DeleteRecordsError>) -> String {
        match r {
            Ok(d) => format!("{d:?}"),
            Err(e) => format!("{e:?}"),
        }
    }

    #[test]
    fn the_leader_moves_its_start_within_the_high_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let p = leader(dir.path());
        let deleted = p.delete_records_on_leader(4).unwrap();
        assert_eq!(
            deleted,
            RecordsDeleted {
                requested_offset: 4,
                low_watermark: 0,
                moved: true
            },
            "follower 2 still starts at 0"
        );
        assert_eq!(p.log_start_offset(), 4);
        p.record_follower_fetch(2, 10, 4, 0).unwrap();
        assert_eq!(p.low_watermark().unwrap(), 4);
        // -1 means the high watermark.
        let all = p.delete_records_on_leader(-1).unwrap();
        assert_eq!((all.requested_offset, all.moved), (10, true));
        // Below the start: nothing moves, the answer is the low watermark.
        assert!(!p.delete_records_on_leader(2).unwrap().moved);
    }

    #[test]
    fn bad_offsets_and_policies_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = leader(dir.path());
        for offset in [-2, i64::MIN, 11, i64::MAX] {
            assert!(
                matches!(
                    p.delete_records_on_leader(offset),
                    Err(DeleteRecordsError::OffsetOutOfRange { .. })
                ),
                "{offset}"
            );
        }
        p.set_log_config(LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            ..LogConfig::default()
        });
        assert!(matches!(
            p.delete_records_on_leader(5),
            Err(DeleteRecordsError::PolicyViolation)
        ));
        p.set_log_config(LogConfig {
            cleanup_policy: CleanupPolicy::DeleteAndCompact,
            ..LogConfig::default()
        });
        assert_eq!(p.log_start_offset(), 0);
        p.fence();
        assert!(
            matches!(
                p.delete_records_on_leader(5),
                Err(DeleteRecordsError::NotLeader)
            ),
            "{}",
            code(p.delete_records_on_leader(5))
        );
        p.apply(&state(2, 1), 1);
        assert!(matches!(
            p.delete_records_on_leader(5),
            Err(DeleteRecordsError::NotLeader)
        ));
        assert!(matches!(
            p.low_watermark(),
            Err(DeleteRecordsError::NotLeader)
        ));
        assert_eq!(p.log_start_offset(), 0);
    }

    #[test]
    fn a_follower_takes_the_leaders_start_at_its_epoch_within_its_high_watermark() {
        let leader_dir = tempfile::tempdir().unwrap();
        let l = leader(leader_dir.path());
        let data = l.read_local(0, 1 << 20, 10).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let f = replica(dir.path(), 2);
        f.apply(&state(1, 0), 1);
        f.append_as_follower(0, &data, 6, 0).unwrap();
        assert_eq!(f.high_watermark(), 6);
        assert!(!f.follow_leader_log_start(1, 4).unwrap(), "another epoch");
        assert!(
            !f.follow_leader_log_start(0, 7).unwrap(),
            "beyond its high watermark"
        );
        assert!(f.follow_leader_log_start(0, 4).unwrap());
        assert!(!f.follow_leader_log_start(0, 3).unwrap());
        assert_eq!(f.log_start_offset(), 4);
    }

    #[test]
    fn an_empty_follower_restarts_at_the_batch_holding_the_leaders_start() {
        let leader_dir = tempfile::tempdir().unwrap();
        let l = leader(leader_dir.path());
        l.append_as_leader(&batch(10, 0), 1, 0).unwrap();
        l.record_follower_fetch(2, 20, 0, 0).unwrap();
        l.delete_records_on_leader(15).unwrap();
        // The follower restarted empty at the leader's start (its fetch was out of range) and
        // fetches from there: the answer starts with the batch 10..=19.
        let dir = tempfile::tempdir().unwrap();
        let f = replica(dir.path(), 2);
        f.apply(&state(1, 0), 1);
        assert!(f.restart_as_follower(0, 15).unwrap());
        let from_start = l.read_local(15, 1 << 20, 20).unwrap();
        let info = f
            .append_as_follower(0, &from_start, 20, 0)
            .unwrap()
            .unwrap();
        assert_eq!((info.first_offset, info.last_offset), (10, 19));
        assert_eq!(f.log_end_offset(), 20);
        assert!(f.follow_leader_log_start(0, 15).unwrap());
        assert_eq!(f.log_start_offset(), 15);
    }
}
