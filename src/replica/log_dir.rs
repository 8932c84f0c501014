//! What DescribeLogDirs reports of this broker's one log directory (Kafka's
//! `ReplicaManager.describeLogDirs`): its absolute path, the size of its volume (KIP-827), and
//! each partition log in it with its size and offset lag. A failed directory reports only that.

use std::path::PathBuf;

use super::ReplicaManager;
use crate::log::TopicPartition;

/// One partition log in the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaLogInfo {
    pub tp: TopicPartition,
    /// Bytes of its segment files.
    pub size_bytes: u64,
    /// Kafka's offset lag of a current (not future) log: how far its log end is behind its high
    /// watermark, never negative; -1 when the replica is not hosted (its log is open but stopped).
    pub offset_lag: i64,
}

/// Why the directory cannot be described.
#[derive(Debug, thiserror::Error)]
pub enum LogDirError {
    /// A write failed there: the directory is offline (KAFKA_STORAGE_ERROR).
    #[error("the log directory has failed: {0}")]
    Failed(String),
    /// Its volume could not be measured (Kafka answers the I/O error as UNKNOWN_SERVER_ERROR).
    #[error("cannot read the size of the log directory's volume: {0}")]
    Volume(#[from] std::io::Error),
}

/// The log directory as DescribeLogDirs reports it.
#[derive(Debug)]
pub struct LogDirDescription {
    /// The absolute path of the directory.
    pub path: PathBuf,
    pub state: Result<LogDirContents, LogDirError>,
}

/// The size of the directory's volume and the partition logs in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogDirContents {
    pub total_bytes: u64,
    pub usable_bytes: u64,
    /// Sorted by topic and partition.
    pub logs: Vec<ReplicaLogInfo>,
}

impl ReplicaManager {
    /// Describes the log directory and the partition logs in it that `wanted` selects.
    pub fn describe_log_dir(&self, wanted: impl Fn(&TopicPartition) -> bool) -> LogDirDescription {
        let dir = self.logs.dir();
        let path = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        if self.shared.dir_failure.is_failed() {
            return LogDirDescription {
                path,
                state: Err(LogDirError::Failed(
                    "a write to it failed; the broker is stopping".to_string(),
                )),
            };
        }
        let state = self
            .logs
            .volume_space()
            .map_err(LogDirError::from)
            .map(|space| {
                let logs = self
                    .logs
                    .open_partitions()
                    .into_iter()
                    .filter(|(tp, _)| wanted(tp))
                    .map(|(tp, log)| {
                        let offset_lag = self
                            .hosted_partition(&tp)
                            .map_or(-1, |p| (p.high_watermark() - p.log_end_offset()).max(0));
                        ReplicaLogInfo {
                            size_bytes: log.size_bytes(),
                            offset_lag,
                            tp,
                        }
                    })
                    .collect();
                LogDirContents {
                    total_bytes: space.total_bytes,
                    usable_bytes: space.usable_bytes,
                    logs,
                }
            });
        LogDirDescription { path, state }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReplicationSettings;
    use crate::log::batch::test_util::batch;
    use crate::log::{LogConfig, LogManager};
    use crate::replica::LeaderAndIsr;

    #[test]
    fn hosted_logs_with_their_sizes_and_a_failed_directory_alone() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogManager::open(dir.path()).unwrap();
        let rm = ReplicaManager::new(0, logs, ReplicationSettings::default());
        for (topic, records) in [("a", 3), ("b", 1)] {
            let tp = TopicPartition::new(topic, 0);
            rm.apply_state(&tp, LogConfig::default(), 1, LeaderAndIsr::standalone(0, 0))
                .unwrap();
            let p = rm.hosted_partition(&tp).unwrap();
            p.append_as_leader(&batch(records, 0), 1, 0).unwrap();
        }
        // A stopped replica whose log is kept: its lag is unknown.
        rm.stop_replica(&TopicPartition::new("b", 0), false)
            .unwrap();
        let d = rm.describe_log_dir(|_| true);
        assert!(d.path.is_absolute());
        let contents = d.state.unwrap();
        assert!(contents.total_bytes >= contents.usable_bytes && contents.total_bytes > 0);
        let a = rm.logs().get(&TopicPartition::new("a", 0)).unwrap();
        let b = rm.logs().get(&TopicPartition::new("b", 0)).unwrap();
        assert_eq!(
            contents.logs,
            vec![
                ReplicaLogInfo {
                    tp: TopicPartition::new("a", 0),
                    size_bytes: a.size_bytes(),
                    offset_lag: 0,
                },
                ReplicaLogInfo {
                    tp: TopicPartition::new("b", 0),
                    size_bytes: b.size_bytes(),
                    offset_lag: -1,
                },
            ]
        );
        assert!(a.size_bytes() > b.size_bytes() && b.size_bytes() > 0);
        let only_b = rm.describe_log_dir(|tp| &*tp.topic == "b").state.unwrap();
        assert_eq!(only_b.logs.len(), 1);

        rm.dir_failure()
            .report("append to a-0", &"No space left on device");
        assert!(matches!(
            rm.describe_log_dir(|_| true).state,
            Err(LogDirError::Failed(_))
        ));
    }
}
