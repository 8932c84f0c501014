//! The web console over HTTP, against an in-process broker with its HTTP listener on a free
//! port: a topic of three partitions with records, a group with committed offsets, and each
//! page fetched with a plain HTTP/1.1 GET.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{batch, Client, TestBroker};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOPIC: &str = "console-t";
/// Needs percent-encoding: a space, a slash, markup.
const GROUP: &str = "g/1 <b>";
const PRODUCED: [usize; 3] = [5, 3, 0];
const COMMITTED: [i64; 3] = [2, 3, 0];

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Status and body of `GET path`.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: console\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("answer within 10 s")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

async fn produce(c: &mut Client, partition: i32, n: usize) {
    let values: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(s(TOPIC)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch(&refs, Compression::None)))])]);
    let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
}

/// Commits `COMMITTED` for `GROUP` as a simple (memberless) group, retrying while the offsets
/// topic is being created and loaded.
async fn commit(c: &mut Client) {
    let partitions = COMMITTED
        .iter()
        .enumerate()
        .filter(|(_, o)| **o > 0)
        .map(|(p, o)| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(p as i32)
                .with_committed_offset(*o)
        })
        .collect();
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(TOPIC)))
            .with_partitions(partitions)]);
    for _ in 0..100 {
        let resp: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &req).await;
        let codes: Vec<i16> = resp.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        if codes.iter().all(|c| *c == 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("offsets never committed");
}

/// The body rows of table `id`, each as its cells' text (tags stripped).
fn rows(body: &str, id: &str) -> Vec<Vec<String>> {
    let table = body
        .split(&format!("<table id=\"{id}\">"))
        .nth(1)
        .unwrap_or_else(|| panic!("no table {id} in {body}"));
    let table = table.split("</table>").next().unwrap();
    let strip = |cell: &str| {
        let mut out = String::new();
        let mut in_tag = false;
        for ch in cell.chars() {
            match ch {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    };
    // Rows may carry attributes (`<tr class="override">`).
    table
        .split("<tr")
        .skip(2)
        .map(|r| {
            r.split("<td>")
                .skip(1)
                .map(|c| strip(c.split("</td>").next().unwrap()))
                .collect()
        })
        .collect()
}

/// The body row of table `id` whose first cell is `first`.
fn row(body: &str, id: &str, first: &str) -> Vec<String> {
    rows(body, id)
        .into_iter()
        .find(|cells| cells.first().map(String::as_str) == Some(first))
        .unwrap_or_else(|| panic!("no row {first} in table {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_topics_partitions_groups_and_lag() {
    let b = TestBroker::start(&["http.listener=127.0.0.1:0"]).await;
    let http = b.http_addr().expect("HTTP listener bound");
    let mut c = b.client().await;
    let req = common::create_topics_request(TOPIC, 3, &[("retention.ms", "7777777")]);
    let created: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req).await;
    assert_eq!(created.topics[0].error_code, 0);
    for (p, n) in PRODUCED.iter().enumerate() {
        if *n > 0 {
            produce(&mut c, p as i32, *n).await;
        }
    }
    commit(&mut c).await;

    let (status, body) = get(http, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("controller"), "{body}");

    let (status, body) = get(http, "/topics").await;
    assert_eq!(status, 200);
    assert!(body.contains(&format!("<a href=\"/topics/{TOPIC}\">{TOPIC}</a>")));

    let (status, body) = get(http, &format!("/topics/{TOPIC}")).await;
    assert_eq!(status, 200);
    for (p, n) in PRODUCED.iter().enumerate() {
        let cells = row(&body, "partitions", &p.to_string());
        // partition, leader, epoch, replicas, ISR, offline, log start, HW, log end, size
        assert_eq!(cells[6..9], ["0".to_string(), n.to_string(), n.to_string()]);
    }
    let retention = row(&body, "topic-configs", "retention.ms");
    assert_eq!(retention[1..3], ["7777777", "DYNAMIC_TOPIC_CONFIG"]);
    assert!(retention[3].contains("override"));

    // The group id is escaped in the list and percent-encoded in its link.
    let (status, body) = get(http, "/groups").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("<a href=\"/groups/g%2F1%20%3Cb%3E\">g/1 &lt;b&gt;</a>"),
        "{body}"
    );
    assert!(!body.contains("<b>"));

    let (status, body) = get(http, "/groups/g%2F1%20%3Cb%3E").await;
    assert_eq!(status, 200);
    let lag: Vec<Vec<String>> = rows(&body, "lag")
        .into_iter()
        .map(|cells| cells[..5].to_vec())
        .collect();
    let wanted: Vec<Vec<String>> = [0usize, 1]
        .iter()
        .map(|&p| {
            vec![
                TOPIC.to_string(),
                p.to_string(),
                COMMITTED[p].to_string(),
                PRODUCED[p].to_string(),
                (PRODUCED[p] as i64 - COMMITTED[p]).to_string(),
            ]
        })
        .collect();
    assert_eq!(lag, wanted);
    assert!(body.contains("<span id=\"total-lag\">3</span>"), "{body}");

    for path in [
        "/topics/nope",
        "/groups/nope",
        "/groups/%zz",
        "/brokers/99/configs",
    ] {
        let (status, body) = get(http, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("does not exist"), "{path}: {body}");
    }
    let (status, body) = get(http, "/configs").await;
    assert_eq!(status, 200);
    assert!(row(&body, "broker-configs", "inter.broker.protocol.version")[1].len() > 1);
}
