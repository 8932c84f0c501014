//! Transactions over the raw protocol against an in-process standalone broker: the
//! coordinator's requests, transactional Produce with KIP-890 part 1 verification, markers,
//! the last stable offset and read_committed fetches, fencing and the coordinator's abort of a
//! transaction past its timeout (also across a restart).

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{create_topics_request, decode_records, txn_batch, Client, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const TOPIC: &str = "txn-topic";

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_string()))
}

async fn start(extra: &[&str]) -> (TestBroker, Client) {
    let mut overrides = vec!["transaction.state.log.num.partitions=3"];
    overrides.extend_from_slice(extra);
    let b = TestBroker::start(&overrides).await;
    let mut c = b.client().await;
    let r: CreateTopicsResponse = c
        .call(
            ApiKey::CreateTopics,
            7,
            &create_topics_request(TOPIC, 2, &[]),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 0);
    (b, c)
}

async fn find_coordinator(c: &mut Client, id: &str) -> i16 {
    let r: FindCoordinatorResponse = c
        .call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_key(StrBytes::from_string(id.to_string())),
        )
        .await;
    r.error_code
}

/// InitProducerId v4 with a transactional id: (error, producer id, epoch).
async fn init(c: &mut Client, id: &str, timeout_ms: i32) -> (i16, i64, i16) {
    let r: InitProducerIdResponse = c
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(txn_id(id)))
                .with_transaction_timeout_ms(timeout_ms)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// InitProducerId until it stops answering CONCURRENT_TRANSACTIONS (an open transaction of a
/// previous producer is being aborted).
async fn init_retrying(c: &mut Client, id: &str, timeout_ms: i32) -> (i64, i16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (error, pid, epoch) = init(c, id, timeout_ms).await;
        if error == 0 {
            return (pid, epoch);
        }
        assert_eq!(error, ResponseError::ConcurrentTransactions.code());
        assert!(Instant::now() < deadline, "InitProducerId kept failing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn add_partitions(
    c: &mut Client,
    version: i16,
    id: &str,
    pid: i64,
    epoch: i16,
    partitions: &[i32],
) -> Vec<i16> {
    let r: AddPartitionsToTxnResponse = c
        .call(
            ApiKey::AddPartitionsToTxn,
            version,
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(txn_id(id))
                .with_v3_and_below_producer_id(ProducerId(pid))
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(topic())
                        .with_partitions(partitions.to_vec()),
                ]),
        )
        .await;
    r.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect()
}

async fn end_txn(
    c: &mut Client,
    version: i16,
    id: &str,
    pid: i64,
    epoch: i16,
    commit: bool,
) -> i16 {
    let r: EndTxnResponse = c
        .call(
            ApiKey::EndTxn,
            version,
            &EndTxnRequest::default()
                .with_transactional_id(txn_id(id))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_committed(commit),
        )
        .await;
    r.error_code
}

/// A transactional Produce of `values` to partition `partition` (Produce `version`).
async fn produce(
    c: &mut Client,
    version: i16,
    id: &str,
    partition: i32,
    records: bytes::Bytes,
) -> (i16, i64) {
    let r: ProduceResponse = c
        .call(
            ApiKey::Produce,
            version,
            &ProduceRequest::default()
                .with_transactional_id(Some(txn_id(id)))
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![produce_request::TopicProduceData::default()
                    .with_name(topic())
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(records)),
                    ])]),
        )
        .await;
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// A Fetch v11 of partition `partition` from `offset` at `isolation` (0 uncommitted, 1 committed).
async fn fetch(
    c: &mut Client,
    partition: i32,
    offset: i64,
    isolation: i8,
) -> fetch_response::PartitionData {
    let r: FetchResponse = c
        .call(
            ApiKey::Fetch,
            11,
            &FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_bytes(1 << 20)
                .with_isolation_level(isolation)
                .with_topics(vec![fetch_request::FetchTopic::default()
                    .with_topic(topic())
                    .with_partitions(vec![fetch_request::FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20)])]),
        )
        .await;
    r.responses[0].partitions[0].clone()
}

/// The data records of a fetch as a read_committed consumer keeps them: control records
/// dropped, and the records of the listed aborted transactions (from the transaction's first
/// offset to its producer's next marker) skipped.
fn values(p: &fetch_response::PartitionData) -> Vec<String> {
    let records = p.records.clone().map(decode_records).unwrap_or_default();
    let aborted = p.aborted_transactions.clone().unwrap_or_default();
    let mut skipping: Vec<i64> = Vec::new();
    let mut out = Vec::new();
    for r in records {
        for a in &aborted {
            if a.first_offset == r.offset && !skipping.contains(&a.producer_id.0) {
                skipping.push(a.producer_id.0);
            }
        }
        if r.control {
            skipping.retain(|pid| *pid != r.producer_id);
            continue;
        }
        if skipping.contains(&r.producer_id) {
            continue;
        }
        if let Some(v) = r.value {
            out.push(String::from_utf8_lossy(&v).to_string());
        }
    }
    out
}

/// Waits until the partition's last stable offset reaches its high watermark (every
/// transaction in it ended).
async fn wait_stable(c: &mut Client, partition: i32) -> fetch_response::PartitionData {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = fetch(c, partition, 0, 1).await;
        if p.last_stable_offset == p.high_watermark {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "LSO {} stayed below the high watermark {}",
            p.last_stable_offset,
            p.high_watermark
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn committed_data_is_read_committed_and_aborted_data_is_skipped() {
    let (_b, mut c) = start(&[]).await;
    assert_eq!(find_coordinator(&mut c, "t-commit").await, 0);
    let (error, pid, epoch) = init(&mut c, "t-commit", 60_000).await;
    assert_eq!((error, epoch), (0, 0));

    // A committed transaction over both partitions.
    assert_eq!(
        add_partitions(&mut c, 3, "t-commit", pid, epoch, &[0, 1]).await,
        vec![0, 0]
    );
    let (e, base) = produce(
        &mut c,
        9,
        "t-commit",
        0,
        txn_batch(&["c1", "c2"], pid, epoch, 0),
    )
    .await;
    assert_eq!((e, base), (0, 0));
    let (e, _) = produce(&mut c, 9, "t-commit", 1, txn_batch(&["c3"], pid, epoch, 0)).await;
    assert_eq!(e, 0);
    let open = fetch(&mut c, 0, 0, 1).await;
    assert_eq!(
        open.last_stable_offset, 0,
        "an open transaction holds the LSO"
    );
    assert!(
        values(&open).is_empty(),
        "read_committed sees nothing of an open transaction"
    );
    assert_eq!(end_txn(&mut c, 3, "t-commit", pid, epoch, true).await, 0);
    let p0 = wait_stable(&mut c, 0).await;
    assert_eq!(values(&p0), vec!["c1", "c2"]);
    assert_eq!(p0.high_watermark, 3, "two records and the COMMIT marker");
    assert_eq!(values(&wait_stable(&mut c, 1).await), vec!["c3"]);

    // An aborted one: hidden from read_committed, visible to read_uncommitted.
    assert_eq!(
        add_partitions(&mut c, 3, "t-commit", pid, epoch, &[0]).await,
        vec![0]
    );
    let (e, base) = produce(&mut c, 9, "t-commit", 0, txn_batch(&["a1"], pid, epoch, 2)).await;
    assert_eq!((e, base), (0, 3));
    assert_eq!(end_txn(&mut c, 3, "t-commit", pid, epoch, false).await, 0);
    let committed = wait_stable(&mut c, 0).await;
    assert_eq!(committed.high_watermark, 5);
    let aborted = committed.aborted_transactions.clone().unwrap_or_default();
    assert_eq!(aborted.len(), 1, "the aborted transaction is listed");
    assert_eq!(
        (aborted[0].producer_id.0, aborted[0].first_offset),
        (pid, 3)
    );
    assert_eq!(
        values(&fetch(&mut c, 0, 0, 0).await),
        vec!["c1", "c2", "a1"]
    );

    // A retried EndTxn of the completed abort is answered success; a commit now is not.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match end_txn(&mut c, 3, "t-commit", pid, epoch, false).await {
            0 => break,
            e if e == ResponseError::ConcurrentTransactions.code() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            e => panic!("retried abort answered {e}"),
        }
    }
    assert_eq!(
        end_txn(&mut c, 3, "t-commit", pid, epoch, true).await,
        ResponseError::InvalidTxnState.code()
    );
}

#[tokio::test]
async fn a_batch_for_a_partition_not_in_the_transaction_is_refused() {
    let (_b, mut c) = start(&[]).await;
    assert_eq!(find_coordinator(&mut c, "t-verify").await, 0);
    let (_, pid, epoch) = init(&mut c, "t-verify", 60_000).await;
    // Produce v9 (before TRANSACTION_ABORTABLE) and v11.
    let (e, _) = produce(&mut c, 9, "t-verify", 0, txn_batch(&["x"], pid, epoch, 0)).await;
    assert_eq!(e, ResponseError::InvalidTxnState.code());
    let (e, _) = produce(&mut c, 11, "t-verify", 0, txn_batch(&["x"], pid, epoch, 0)).await;
    assert_eq!(e, ResponseError::TransactionAbortable.code());
    // Nothing stored, nothing open: the LSO is not held back.
    let p = fetch(&mut c, 0, 0, 1).await;
    assert_eq!((p.high_watermark, p.last_stable_offset), (0, 0));
    let r: DescribeProducersResponse = c
        .call(
            ApiKey::DescribeProducers,
            0,
            &DescribeProducersRequest::default().with_topics(vec![
                describe_producers_request::TopicRequest::default()
                    .with_name(topic())
                    .with_partition_indexes(vec![0]),
            ]),
        )
        .await;
    assert!(r.topics[0].partitions[0].active_producers.is_empty());
    // Once added, the same batch goes in.
    assert_eq!(
        add_partitions(&mut c, 3, "t-verify", pid, epoch, &[0]).await,
        vec![0]
    );
    let (e, _) = produce(&mut c, 9, "t-verify", 0, txn_batch(&["x"], pid, epoch, 0)).await;
    assert_eq!(e, 0);
}

#[tokio::test]
async fn a_new_producer_fences_the_old_one_and_aborts_its_transaction() {
    let (_b, mut c) = start(&[]).await;
    assert_eq!(find_coordinator(&mut c, "t-fence").await, 0);
    let (_, pid, old) = init(&mut c, "t-fence", 60_000).await;
    assert_eq!(
        add_partitions(&mut c, 3, "t-fence", pid, old, &[0]).await,
        vec![0]
    );
    assert_eq!(
        produce(&mut c, 9, "t-fence", 0, txn_batch(&["zombie"], pid, old, 0))
            .await
            .0,
        0
    );

    let (new_pid, new) = init_retrying(&mut c, "t-fence", 60_000).await;
    assert_eq!(new_pid, pid);
    assert!(new > old, "epoch {new} after {old}");
    // The zombie's transaction was aborted: read_committed never sees it.
    let p = wait_stable(&mut c, 0).await;
    assert!(values(&p).is_empty());
    // The zombie is refused: PRODUCER_FENCED from v2 of these APIs (KIP-588), before that
    // INVALID_PRODUCER_EPOCH; its batches are refused by the partition.
    assert_eq!(
        end_txn(&mut c, 3, "t-fence", pid, old, true).await,
        ResponseError::ProducerFenced.code()
    );
    assert_eq!(
        end_txn(&mut c, 1, "t-fence", pid, old, true).await,
        ResponseError::InvalidProducerEpoch.code()
    );
    assert_eq!(
        add_partitions(&mut c, 3, "t-fence", pid, old, &[1]).await,
        vec![ResponseError::ProducerFenced.code()]
    );
    let (e, _) = produce(&mut c, 9, "t-fence", 0, txn_batch(&["late"], pid, old, 1)).await;
    assert_ne!(e, 0, "a fenced producer's batch is refused");
    // Unknown ids and a missing transaction.
    assert_eq!(
        end_txn(&mut c, 3, "t-nobody", 1, 0, true).await,
        ResponseError::InvalidProducerIdMapping.code()
    );
    assert_eq!(
        end_txn(&mut c, 3, "t-fence", pid, new, true).await,
        ResponseError::InvalidTxnState.code()
    );
}

#[tokio::test]
async fn the_coordinator_aborts_a_transaction_past_its_timeout_also_after_a_restart() {
    let (mut b, mut c) =
        start(&["transaction.abort.timed.out.transaction.cleanup.interval.ms=100"]).await;
    assert_eq!(find_coordinator(&mut c, "t-timeout").await, 0);
    let (_, pid, epoch) = init(&mut c, "t-timeout", 1_000).await;
    assert_eq!(
        add_partitions(&mut c, 3, "t-timeout", pid, epoch, &[0]).await,
        vec![0]
    );
    assert_eq!(
        produce(
            &mut c,
            9,
            "t-timeout",
            0,
            txn_batch(&["late"], pid, epoch, 0)
        )
        .await
        .0,
        0
    );
    let p = wait_stable(&mut c, 0).await;
    assert!(
        values(&p).is_empty(),
        "the timed-out transaction was aborted"
    );
    assert_eq!(p.aborted_transactions.unwrap_or_default().len(), 1);
    // The producer was fenced by the abort.
    assert_eq!(
        end_txn(&mut c, 3, "t-timeout", pid, epoch, true).await,
        ResponseError::ProducerFenced.code()
    );

    // An open transaction survives a restart and is aborted once it times out.
    let (pid, epoch) = init_retrying(&mut c, "t-timeout", 1_000).await;
    assert_eq!(
        add_partitions(&mut c, 3, "t-timeout", pid, epoch, &[1]).await,
        vec![0]
    );
    assert_eq!(
        produce(
            &mut c,
            9,
            "t-timeout",
            1,
            txn_batch(&["open"], pid, epoch, 0)
        )
        .await
        .0,
        0
    );
    b.restart().await;
    let mut c = b.client().await;
    let p = wait_stable(&mut c, 1).await;
    assert!(values(&p).is_empty());
    assert_eq!(p.high_watermark, 2, "the record and the ABORT marker");
    let r: DescribeTransactionsResponse = c
        .call(
            ApiKey::DescribeTransactions,
            0,
            &DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![txn_id("t-timeout")]),
        )
        .await;
    let s = &r.transaction_states[0];
    assert_eq!(s.error_code, 0);
    assert_eq!(s.producer_id.0, pid);
    assert!(s.producer_epoch > epoch);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r: DescribeTransactionsResponse = c
            .call(
                ApiKey::DescribeTransactions,
                0,
                &DescribeTransactionsRequest::default()
                    .with_transactional_ids(vec![txn_id("t-timeout")]),
            )
            .await;
        if r.transaction_states[0].transaction_state.as_str() == "CompleteAbort" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "state {:?}",
            r.transaction_states[0].transaction_state
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
