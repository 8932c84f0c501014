//! DeleteRecords and DescribeLogDirs over the raw protocol against an in-process broker: the log
//! start moves (data below it gone, ListOffsets earliest there, fetches below it
//! OFFSET_OUT_OF_RANGE), it is on disk when the answer comes, a restart keeps it, bad input
//! changes nothing; the log directory's sizes are its files' sizes.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{batch_with, decode_records, Client, TestBroker};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const POLICY_VIOLATION: i16 = 44;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

async fn create_topic(c: &mut Client, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let req = common::create_topics_request(topic, partitions, configs);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req).await;
    assert_eq!(r.topics[0].error_code, 0, "create {topic}");
}

/// Produces `batches` batches of 10 records to `topic`-`partition` (one v2 batch each: the
/// records' sequence numbers run with their offsets, or the encoder starts a batch per record).
async fn produce(c: &mut Client, topic: &str, partition: i32, batches: usize) {
    for i in 0..batches {
        let values: Vec<String> = (0..10).map(|j| format!("{topic}-{i}-{j}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(batch_with(
                            &refs,
                            Compression::None,
                            -1,
                            -1,
                            0,
                            1_700_000_000_000,
                        ))),
                ])]);
        let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "{:?}", p.error_message);
    }
}

/// DeleteRecords of `(topic, partition, offset)`s at `version`: (topic, partition) → (error,
/// low watermark).
async fn delete_records(
    c: &mut Client,
    version: i16,
    targets: &[(&str, i32, i64)],
) -> BTreeMap<(String, i32), (i16, i64)> {
    let mut topics: Vec<DeleteRecordsTopic> = Vec::new();
    for (topic, partition, offset) in targets {
        let p = DeleteRecordsPartition::default()
            .with_partition_index(*partition)
            .with_offset(*offset);
        match topics.iter_mut().find(|t| t.name == name(topic)) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                DeleteRecordsTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![p]),
            ),
        }
    }
    let req = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(topics);
    let r: DeleteRecordsResponse = c.call(ApiKey::DeleteRecords, version, &req).await;
    let mut out = BTreeMap::new();
    for t in r.topics {
        for p in t.partitions {
            let key = (t.name.0.to_string(), p.partition_index);
            assert!(out.insert(key, (p.error_code, p.low_watermark)).is_none());
        }
    }
    out
}

async fn one_delete(c: &mut Client, topic: &str, partition: i32, offset: i64) -> (i16, i64) {
    let r = delete_records(c, 2, &[(topic, partition, offset)]).await;
    assert_eq!(r.len(), 1);
    r[&(topic.to_string(), partition)]
}

async fn list_offset(c: &mut Client, topic: &str, partition: i32, timestamp: i64) -> i64 {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp),
            ])]);
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 7, &req).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

async fn earliest(c: &mut Client, topic: &str, partition: i32) -> i64 {
    list_offset(c, topic, partition, -2).await
}

/// A consumer fetch at `offset`: (error, log start offset, offsets of the records returned).
async fn fetch(c: &mut Client, topic: &str, partition: i32, offset: i64) -> (i16, i64, Vec<i64>) {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(1 << 20)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &req).await;
    let p = &r.responses[0].partitions[0];
    let offsets = decode_records(p.records.clone().unwrap_or_default())
        .into_iter()
        .map(|r| r.offset)
        .collect();
    (p.error_code, p.log_start_offset, offsets)
}

/// Base offsets of the segment files of a partition directory.
fn segment_bases(data: &Path, topic: &str, partition: i32) -> Vec<i64> {
    let mut v: Vec<i64> = std::fs::read_dir(data.join(format!("{topic}-{partition}")))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".log").map(|s| s.parse().unwrap())
        })
        .collect();
    v.sort_unstable();
    v
}

/// The log start offsets in `log-start-offset-checkpoint`, as its lines.
fn checkpointed_starts(data: &Path) -> Vec<String> {
    std::fs::read_to_string(data.join("log-start-offset-checkpoint"))
        .unwrap_or_default()
        .lines()
        .skip(2)
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn delete_records_moves_the_log_start_durably_and_a_restart_keeps_it() {
    let mut b = TestBroker::start(&[]).await;
    let data = b.dir.path().to_path_buf();
    let mut c = b.client().await;
    // About 250 bytes a batch: two batches a segment.
    create_topic(&mut c, "dr", 2, &[("segment.bytes", "600")]).await;
    produce(&mut c, "dr", 0, 10).await;
    let bases = segment_bases(&data, "dr", 0);
    assert!(bases.len() >= 4, "segments {bases:?}");

    // Inside a batch of the third segment.
    let first = bases[2] + 5;
    assert_eq!(one_delete(&mut c, "dr", 0, first).await, (0, first));
    // Durable when the answer comes: a crash now would restart from this.
    assert!(checkpointed_starts(&data).contains(&format!("dr 0 {first}")));
    assert_eq!(segment_bases(&data, "dr", 0), bases[2..].to_vec());
    assert_eq!(earliest(&mut c, "dr", 0).await, first);
    let (err, start, _) = fetch(&mut c, "dr", 0, first - 1).await;
    assert_eq!((err, start), (OFFSET_OUT_OF_RANGE, first));
    let (err, start, offsets) = fetch(&mut c, "dr", 0, first).await;
    assert_eq!((err, start), (0, first));
    // The batch holding the start comes whole; what is below the start is the client's to skip.
    assert_eq!(offsets.first(), Some(&(first - 5)));
    assert!(offsets.contains(&first));

    // Below the start: nothing moves, the answer is where it is.
    assert_eq!(one_delete(&mut c, "dr", 0, 3).await, (0, first));
    // Bad offsets: OFFSET_OUT_OF_RANGE, low watermark -1, nothing changes.
    for bad in [101, -2, i64::MIN] {
        assert_eq!(
            one_delete(&mut c, "dr", 0, bad).await,
            (OFFSET_OUT_OF_RANGE, -1),
            "{bad}"
        );
    }
    assert_eq!(earliest(&mut c, "dr", 0).await, first);
    // Several partitions in one request, with unknown ones, at the older versions too.
    let r = delete_records(
        &mut c,
        0,
        &[("dr", 0, 60), ("dr", 1, 0), ("dr", 2, 0), ("nope", 0, 5)],
    )
    .await;
    assert_eq!(r[&("dr".to_string(), 0)], (0, 60));
    assert_eq!(r[&("dr".to_string(), 1)], (0, 0), "an empty partition");
    assert_eq!(r[&("dr".to_string(), 2)], (UNKNOWN_TOPIC_OR_PARTITION, -1));
    assert_eq!(
        r[&("nope".to_string(), 0)],
        (UNKNOWN_TOPIC_OR_PARTITION, -1)
    );
    assert_eq!(earliest(&mut c, "dr", 0).await, 60);
    // -1: up to the high watermark; only the active segment is left.
    let r = delete_records(&mut c, 1, &[("dr", 0, -1)]).await;
    assert_eq!(r[&("dr".to_string(), 0)], (0, 100));
    assert_eq!(segment_bases(&data, "dr", 0).len(), 1);
    assert_eq!(earliest(&mut c, "dr", 0).await, 100);
    assert_eq!(list_offset(&mut c, "dr", 0, -1).await, 100);
    let (err, _, offsets) = fetch(&mut c, "dr", 0, 100).await;
    assert_eq!((err, offsets.len()), (0, 0));

    b.restart().await;
    let mut c = b.client().await;
    assert_eq!(earliest(&mut c, "dr", 0).await, 100);
    assert_eq!(fetch(&mut c, "dr", 0, 99).await.0, OFFSET_OUT_OF_RANGE);
    produce(&mut c, "dr", 0, 1).await;
    assert_eq!(fetch(&mut c, "dr", 0, 100).await.2.len(), 10);
}

#[tokio::test]
async fn internal_and_compacted_topics_refuse_record_deletion() {
    let b = TestBroker::start(&["offsets.topic.num.partitions=1"]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "compacted", 1, &[("cleanup.policy", "compact")]).await;
    create_topic(&mut c, "both", 1, &[("cleanup.policy", "compact,delete")]).await;
    let find = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"));
    let r: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 3, &find).await;
    assert_eq!(r.error_code, 0, "the offsets topic exists");
    let r = delete_records(
        &mut c,
        2,
        &[
            ("compacted", 0, 0),
            ("both", 0, 0),
            ("__consumer_offsets", 0, 0),
        ],
    )
    .await;
    assert_eq!(r[&("compacted".to_string(), 0)], (POLICY_VIOLATION, -1));
    assert_eq!(r[&("both".to_string(), 0)], (0, 0));
    assert_eq!(
        r[&("__consumer_offsets".to_string(), 0)],
        (INVALID_TOPIC_EXCEPTION, -1)
    );
}

/// DescribeLogDirs at `version` with `topics` (None: all).
async fn describe_log_dirs(
    c: &mut Client,
    version: i16,
    topics: Option<&[(&str, &[i32])]>,
) -> DescribeLogDirsResponse {
    let topics = topics.map(|ts| {
        ts.iter()
            .map(|(t, ps)| {
                DescribableLogDirTopic::default()
                    .with_topic(name(t))
                    .with_partitions(ps.to_vec())
            })
            .collect()
    });
    let req = DescribeLogDirsRequest::default().with_topics(topics);
    c.call(ApiKey::DescribeLogDirs, version, &req).await
}

/// (topic, partition) → (size, offset lag, future) of one log directory's answer.
fn dir_logs(
    result: &describe_log_dirs_response::DescribeLogDirsResult,
) -> BTreeMap<(String, i32), (i64, i64, bool)> {
    let mut out = BTreeMap::new();
    for t in &result.topics {
        for p in &t.partitions {
            let key = (t.name.0.to_string(), p.partition_index);
            let value = (p.partition_size, p.offset_lag, p.is_future_key);
            assert!(out.insert(key, value).is_none());
        }
    }
    out
}

/// Bytes of a partition directory's segment files.
fn segment_bytes(data: &Path, topic: &str, partition: i32) -> i64 {
    std::fs::read_dir(data.join(format!("{topic}-{partition}")))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len() as i64)
        .sum()
}

#[tokio::test]
async fn describe_log_dirs_reports_each_log_with_its_size_on_disk() {
    let b = TestBroker::start(&[]).await;
    let data = b.dir.path().to_path_buf();
    let mut c = b.client().await;
    create_topic(&mut c, "la", 2, &[("segment.bytes", "600")]).await;
    create_topic(&mut c, "lb", 1, &[]).await;
    produce(&mut c, "la", 0, 5).await;
    produce(&mut c, "la", 1, 1).await;
    produce(&mut c, "lb", 0, 2).await;

    let r = describe_log_dirs(&mut c, 4, None).await;
    assert_eq!((r.error_code, r.results.len()), (0, 1));
    let dir = &r.results[0];
    assert_eq!(dir.error_code, 0);
    assert_eq!(
        dir.log_dir.to_string(),
        std::path::absolute(&data).unwrap().to_string_lossy()
    );
    assert!(dir.total_bytes > 0 && (0..=dir.total_bytes).contains(&dir.usable_bytes));
    let logs = dir_logs(dir);
    let mut expected = BTreeMap::new();
    for (t, p) in [("la", 0), ("la", 1), ("lb", 0)] {
        let size = segment_bytes(&data, t, p);
        assert!(size > 0);
        expected.insert((t.to_string(), p), (size, 0, false));
    }
    assert_eq!(logs, expected);

    // Deleting records below whole segments shrinks the reported size with the files.
    assert_eq!(one_delete(&mut c, "la", 0, 40).await.0, 0);
    let r = describe_log_dirs(&mut c, 3, Some(&[("la", &[0]), ("zz", &[0]), ("lb", &[])])).await;
    let logs = dir_logs(&r.results[0]);
    let size = segment_bytes(&data, "la", 0);
    assert!(size < expected[&("la".to_string(), 0)].0);
    assert_eq!(
        logs,
        BTreeMap::from([(("la".to_string(), 0), (size, 0, false))]),
        "only the partitions asked for that are here"
    );
    // The oldest version served reports the same, without the volume's size.
    let r = describe_log_dirs(&mut c, 1, Some(&[("lb", &[0, 5])])).await;
    assert_eq!(r.results[0].error_code, 0);
    assert_eq!(r.results[0].total_bytes, -1);
    assert_eq!(
        dir_logs(&r.results[0]),
        BTreeMap::from([(
            ("lb".to_string(), 0),
            (segment_bytes(&data, "lb", 0), 0, false)
        )])
    );
}
