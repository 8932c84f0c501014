//! DescribeLogDirs: the broker's log directory (its absolute path, the size of its volume from
//! v4 on), and each partition log in it with its size in bytes and offset lag. `topics` null
//! asks for every log; otherwise the named partitions, those not here simply absent. A failed
//! directory answers KAFKA_STORAGE_ERROR for the directory, as Kafka.

use std::collections::HashSet;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

use super::authorized::authorize_cluster;
use super::error_codes::KafkaCode;
use super::{str_bytes, topic_name, RequestContext};
use crate::auth::acl::Operation;
use crate::broker::Broker;
use crate::log::TopicPartition;
use crate::replica::ReplicaLogInfo;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    if !authorize_cluster(broker, ctx, Operation::Describe) {
        // No directories (the error field exists from v3 on).
        return DescribeLogDirsResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code(),
        );
    }
    let wanted: Option<HashSet<TopicPartition>> = req.topics.map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| TopicPartition::new(&t.topic, *p))
            })
            .collect()
    });
    let dir = broker
        .replicas
        .describe_log_dir(|tp| wanted.as_ref().is_none_or(|w| w.contains(tp)));
    let result =
        DescribeLogDirsResult::default().with_log_dir(str_bytes(dir.path.to_string_lossy()));
    let result = match dir.state {
        Ok(contents) => result
            .with_topics(by_topic(contents.logs))
            .with_total_bytes(size(contents.total_bytes))
            .with_usable_bytes(size(contents.usable_bytes)),
        Err(e) => {
            tracing::warn!(dir = %dir.path.display(), error = %e, "cannot describe the log directory");
            result.with_error_code(e.code())
        }
    };
    DescribeLogDirsResponse::default().with_results(vec![result])
}

/// Logs (sorted by topic and partition) grouped by topic.
fn by_topic(logs: Vec<ReplicaLogInfo>) -> Vec<DescribeLogDirsTopic> {
    let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
    for log in logs {
        let partition = DescribeLogDirsPartition::default()
            .with_partition_index(log.tp.partition)
            .with_partition_size(size(log.size_bytes))
            .with_offset_lag(log.offset_lag)
            .with_is_future_key(false);
        match topics.last_mut() {
            Some(t) if *t.name.0 == *log.tp.topic => t.partitions.push(partition),
            _ => topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(topic_name(log.tp.topic.to_string()))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    topics
}

/// A byte count as Kafka's int64 (a size past i64::MAX is reported as i64::MAX, as Kafka does
/// for volumes Java reports as negative).
fn size(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}
