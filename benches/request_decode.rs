//! Request intake before any handler runs: `parse_request` (frame -> header + body), the
//! pre-decode guard `check_request_body`, and kafka-protocol's decode of the body, as
//! `server::dispatch` does them.
//!
//! Requests, built with kafka-protocol's encoder as a client would:
//! - Produce v9 (acks=all): 1 topic x 6 partitions, each an uncompressed v2 batch of
//!   16 records x 1 KiB (~16.5 KiB per partition, ~99 KiB in all);
//! - Fetch v12 (a consumer's fetch): 5 topics x 10 partitions = 50 partitions.
//!
//! Run: `cargo bench -j 1 --bench request_decode`.

// Benchmarks are test harnesses: a failed setup may panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, FetchRequest, ProduceRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use odradek::protocol::guard::check_request_body;
use odradek::server::frame::parse_request;

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;

fn topic(name: String) -> TopicName {
    TopicName(StrBytes::from_string(name))
}

fn produce_request() -> ProduceRequest {
    let batch = common::v2_batch(16, 1024);
    let partitions = (0..6)
        .map(|p| {
            PartitionProduceData::default()
                .with_index(p)
                .with_records(Some(batch.clone()))
        })
        .collect();
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic("bench-produce".into()))
            .with_partition_data(partitions)])
}

fn fetch_request() -> FetchRequest {
    let topics = (0..5)
        .map(|t| {
            FetchTopic::default()
                .with_topic(topic(format!("bench-topic-{t}")))
                .with_partitions(
                    (0..10)
                        .map(|p| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_current_leader_epoch(3)
                                .with_fetch_offset(1_234_567 + i64::from(p))
                                .with_last_fetched_epoch(-1)
                                .with_log_start_offset(-1)
                                .with_partition_max_bytes(1 << 20)
                        })
                        .collect(),
                )
        })
        .collect();
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
        .with_rack_id(StrBytes::from_static_str(""))
}

fn encode_body<T: Encodable>(req: &T, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    req.encode(&mut buf, version).expect("encode request");
    buf.freeze()
}

/// A frame as `read_frame` hands it to `parse_request`: header + body, without the size prefix.
fn frame(key: ApiKey, version: i16, body: &Bytes) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(42)
        .with_client_id(Some(StrBytes::from_static_str("rdkafka")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .expect("encode header");
    buf.extend_from_slice(body);
    buf.freeze()
}

fn decode<T: Decodable>(body: &Bytes, version: i16) -> T {
    T::decode(&mut body.clone(), version).expect("decode")
}

/// guard, decode, and guard + decode (what dispatch runs) of one request body.
///
/// Throughput is in partitions: decode does not copy record data (it stays a `Bytes` slice of the
/// frame), so bytes/s would only reflect the payload size.
fn body_benches<T: Decodable>(
    c: &mut Criterion,
    name: &str,
    key: ApiKey,
    version: i16,
    body: Bytes,
    partitions: u64,
) {
    let mut group = c.benchmark_group(format!("request_decode/{name}"));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(partitions));
    let k = key as i16;
    group.bench_function("guard", |b| {
        b.iter(|| check_request_body(k, version, black_box(&body)).expect("guard"))
    });
    group.bench_function("decode", |b| {
        b.iter(|| decode::<T>(black_box(&body), version))
    });
    group.bench_function("guard+decode", |b| {
        b.iter(|| {
            check_request_body(k, version, black_box(&body)).expect("guard");
            decode::<T>(&body, version)
        })
    });
    group.finish();
}

fn request_decode(c: &mut Criterion) {
    let produce = encode_body(&produce_request(), PRODUCE_VERSION);
    let fetch = encode_body(&fetch_request(), FETCH_VERSION);
    // Sanity (not timing): the bodies decode to what was built.
    let p: ProduceRequest = decode(&produce, PRODUCE_VERSION);
    assert_eq!(p.topic_data[0].partition_data.len(), 6);
    let f: FetchRequest = decode(&fetch, FETCH_VERSION);
    assert_eq!(
        f.topics.iter().map(|t| t.partitions.len()).sum::<usize>(),
        50
    );

    body_benches::<ProduceRequest>(
        c,
        "produce_v9",
        ApiKey::Produce,
        PRODUCE_VERSION,
        produce.clone(),
        6,
    );
    body_benches::<FetchRequest>(
        c,
        "fetch_v12",
        ApiKey::Fetch,
        FETCH_VERSION,
        fetch.clone(),
        50,
    );

    // parse_request alone, and the whole intake: parse_request + guard + decode.
    let mut group = c.benchmark_group("parse_request");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(2));
    let frames = [
        (
            "produce_v9",
            frame(ApiKey::Produce, PRODUCE_VERSION, &produce),
        ),
        ("fetch_v12", frame(ApiKey::Fetch, FETCH_VERSION, &fetch)),
    ];
    // No throughput: the figure of merit is the time per request.
    for (name, frame) in &frames {
        group.bench_with_input(BenchmarkId::new("frame", name), frame, |b, frame| {
            b.iter(|| parse_request(black_box(frame.clone())).expect("parse"))
        });
        group.bench_with_input(
            BenchmarkId::new("frame+guard+decode", name),
            frame,
            |b, frame| {
                b.iter(|| {
                    let req = parse_request(black_box(frame.clone())).expect("parse");
                    check_request_body(req.api_key as i16, req.api_version, &req.body)
                        .expect("guard");
                    match req.api_key {
                        ApiKey::Produce => {
                            black_box(decode::<ProduceRequest>(&req.body, req.api_version));
                        }
                        _ => {
                            black_box(decode::<FetchRequest>(&req.body, req.api_version));
                        }
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, request_decode);
criterion_main!(benches);
