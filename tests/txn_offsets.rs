//! Transactional offset commits in an in-process broker's group coordinator (the TxnOffsetCommit
//! API is not served yet, so the coordinator is called directly): offsets stay pending for their
//! producer until the transaction completes, OffsetFetch with require_stable (v7+) answers
//! UNSTABLE_OFFSET_COMMIT meanwhile, and the pending offsets are rebuilt from the log on restart.
// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestBroker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek::broker::Broker;
use odradek::cluster::NewTopic;
use odradek::group::{OffsetCommit, OffsetToCommit, TxnOffsetCommit, OFFSETS_TOPIC};

const GROUP: &str = "txn-group";
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

fn broker(b: &TestBroker) -> Arc<Broker> {
    b.running.as_ref().expect("running").broker.clone()
}

fn offset(partition: i32, offset: i64) -> OffsetToCommit {
    OffsetToCommit {
        topic: "t".into(),
        partition,
        offset,
        leader_epoch: -1,
        metadata: String::new(),
    }
}

fn txn(producer_id: i64, producer_epoch: i16, offsets: Vec<OffsetToCommit>) -> TxnOffsetCommit {
    TxnOffsetCommit {
        group_id: GROUP.into(),
        producer_id,
        producer_epoch,
        member_id: String::new(),
        group_instance_id: None,
        generation: -1,
        offsets,
    }
}

/// Waits until this broker coordinates the group (offsets topic created and loaded).
async fn wait_coordinator(b: &Broker) {
    b.groups.find_coordinator(GROUP).await.expect("coordinator");
    for _ in 0..200 {
        if b.groups.fetch_offsets(GROUP, None, false).await.0.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the offsets partition never loaded");
}

/// (committed offset, error) of partitions 0 and 1 of "t".
async fn fetch(b: &Broker, require_stable: bool) -> Vec<(Option<i64>, Option<ResponseError>)> {
    let wanted = Some(vec![("t".to_string(), vec![0, 1])]);
    let (error, topics) = b.groups.fetch_offsets(GROUP, wanted, require_stable).await;
    assert_eq!(error, None);
    topics[0]
        .1
        .iter()
        .map(|(_, v, e)| (v.as_ref().map(|v| v.offset), *e))
        .collect()
}

fn log_end(b: &Broker) -> i64 {
    let index = b.groups.partition_of(GROUP);
    b.replicas
        .partition(OFFSETS_TOPIC, index)
        .expect("offsets partition")
        .log_end_offset()
}

#[tokio::test]
async fn transactional_offsets_are_pending_until_the_transaction_completes() {
    let mut tb = TestBroker::start(&[]).await;
    let b = broker(&tb);
    let spec = NewTopic {
        name: "t".into(),
        num_partitions: 2,
        replication_factor: 1,
        assignments: None,
        configs: Default::default(),
    };
    b.create_topic(spec, false).await.expect("topic");
    wait_coordinator(&b).await;

    let plain = OffsetCommit {
        group_id: GROUP.into(),
        member_id: String::new(),
        group_instance_id: None,
        generation: -1,
        retention_ms: None,
        offsets: vec![offset(0, 5)],
    };
    assert_eq!(b.groups.commit_offsets(plain).await, Ok(vec![None]));

    // Two writes of one transaction (same producer and epoch) are both stored.
    let start = log_end(&b);
    let first = txn(1000, 1, vec![offset(0, 10), offset(1, 11)]);
    assert_eq!(
        b.groups.commit_transactional_offsets(first).await,
        Ok(vec![None, None])
    );
    let second = txn(1000, 1, vec![offset(1, 12), offset(9, 1)]);
    assert_eq!(
        b.groups.commit_transactional_offsets(second).await,
        Ok(vec![None, Some(ResponseError::UnknownTopicOrPartition)])
    );
    assert_eq!(log_end(&b), start + 3, "one record per accepted offset");
    // An older epoch of the producer is fenced by the log.
    assert_eq!(
        b.groups
            .commit_transactional_offsets(txn(1000, 0, vec![offset(0, 99)]))
            .await,
        Err(ResponseError::InvalidProducerEpoch)
    );

    assert_eq!(fetch(&b, false).await, vec![(Some(5), None), (None, None)]);
    let unstable = Some(ResponseError::UnstableOffsetCommit);
    assert_eq!(
        fetch(&b, true).await,
        vec![(None, unstable), (None, unstable)]
    );
    wire_fetches_answer_unstable(&tb).await;

    let index = b.groups.partition_of(GROUP);
    assert_eq!(b.groups.complete_transaction(index, 1000, true), 1);
    assert_eq!(
        fetch(&b, true).await,
        vec![(Some(10), None), (Some(12), None)]
    );

    // An aborted transaction leaves the committed offsets as they were.
    let aborted = txn(2000, 0, vec![offset(0, 20)]);
    assert_eq!(
        b.groups.commit_transactional_offsets(aborted).await,
        Ok(vec![None])
    );
    assert_eq!(b.groups.complete_transaction(index, 2000, false), 1);
    assert_eq!(fetch(&b, true).await[0], (Some(10), None));

    // The markers are not in this log (writing them is the transaction coordinator's): after
    // a restart every transaction is open again, its offsets pending.
    drop(b);
    tb.restart().await;
    let b = broker(&tb);
    wait_coordinator(&b).await;
    assert_eq!(fetch(&b, false).await, vec![(Some(5), None), (None, None)]);
    assert_eq!(
        fetch(&b, true).await,
        vec![(None, unstable), (None, unstable)]
    );
    assert_eq!(b.groups.complete_transaction(index, 1000, true), 1);
    assert_eq!(b.groups.complete_transaction(index, 2000, false), 1);
    assert_eq!(
        fetch(&b, true).await,
        vec![(Some(10), None), (Some(12), None)]
    );
}

/// OffsetFetch v7 and v8 with require_stable name the unstable partitions; v6 (and v7 without
/// require_stable) answer the committed offsets as before.
async fn wire_fetches_answer_unstable(tb: &TestBroker) {
    let mut c = tb.client().await;
    let group = || GroupId(StrBytes::from_static_str(GROUP));
    let topic = || TopicName(StrBytes::from_static_str("t"));
    let v7 = |stable: bool| {
        OffsetFetchRequest::default()
            .with_group_id(group())
            .with_require_stable(stable)
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(topic())
                .with_partition_indexes(vec![0, 1])]))
    };
    for (version, stable) in [(6, false), (7, false), (7, true)] {
        let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, version, &v7(stable)).await;
        assert_eq!(r.error_code, 0);
        let parts: Vec<(i64, i16)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.committed_offset, p.error_code))
            .collect();
        let expected = if stable {
            vec![(-1, UNSTABLE_OFFSET_COMMIT), (-1, UNSTABLE_OFFSET_COMMIT)]
        } else {
            vec![(5, 0), (-1, 0)]
        };
        assert_eq!(parts, expected, "v{version} require_stable={stable}");
    }
    let v8 = OffsetFetchRequest::default()
        .with_require_stable(true)
        .with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group())
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(topic())
                .with_partition_indexes(vec![0])]))]);
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 8, &v8).await;
    let p = &r.groups[0].topics[0].partitions[0];
    assert_eq!(
        (r.groups[0].error_code, p.committed_offset, p.error_code),
        (0, -1, 88)
    );
}
