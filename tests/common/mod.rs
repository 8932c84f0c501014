//! Test harness: an in-process broker on an ephemeral port and a minimal raw-protocol client.
#![allow(dead_code)]

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use odradek::app::{load_config, RunningBroker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A broker running inside the test process, with its own data directory.
pub struct TestBroker {
    pub running: Option<RunningBroker>,
    pub dir: tempfile::TempDir,
    pub extra: Vec<String>,
}

impl TestBroker {
    pub async fn start(extra: &[&str]) -> TestBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let running = Self::launch(dir.path(), &extra).await;
        TestBroker {
            running: Some(running),
            dir,
            extra,
        }
    }

    async fn launch(dir: &std::path::Path, extra: &[String]) -> RunningBroker {
        let mut overrides = vec![
            "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
            format!("log.dirs={}", dir.display()),
            // No HTTP listener unless a test asks for one (`http.listener=127.0.0.1:0`).
            "http.listener=".to_string(),
        ];
        overrides.extend(extra.iter().cloned());
        let config = load_config(None, &overrides).expect("config");
        RunningBroker::start(config).await.expect("broker starts")
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.as_ref().expect("running").addrs()[0]
    }

    /// The bound HTTP listener, when the test asked for one.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.running.as_ref().expect("running").http_addr()
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr()).await
    }

    /// Clean shutdown and start again on the same data directory (new port).
    pub async fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("clean shutdown");
        }
        self.running = Some(Self::launch(self.dir.path(), &self.extra).await);
    }
}

/// A raw Kafka protocol client: one request at a time.
pub struct Client {
    pub stream: TcpStream,
    correlation: i32,
}

impl Client {
    pub async fn connect(addr: std::net::SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Client {
            stream,
            correlation: 0,
        }
    }

    /// Sends a request and decodes its response.
    pub async fn call<Req, Resp>(&mut self, key: ApiKey, version: i16, req: &Req) -> Resp
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        self.send(key, version, req).await;
        self.receive::<Resp>(version).await.expect("response")
    }

    pub async fn send<Req: Encodable + HeaderVersion>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("odradek-test")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, Req::header_version(version))
            .expect("encode header");
        req.encode(&mut body, version).expect("encode body");
        self.send_raw(&body).await;
    }

    pub async fn send_raw(&mut self, frame_body: &[u8]) {
        let mut frame = BytesMut::with_capacity(frame_body.len() + 4);
        frame.put_i32(frame_body.len() as i32);
        frame.put_slice(frame_body);
        self.stream.write_all(&frame).await.expect("write");
    }

    /// Reads one response; `None` if the broker closed the connection.
    pub async fn receive<Resp: Decodable + HeaderVersion>(&mut self, version: i16) -> Option<Resp> {
        let mut frame = self.receive_frame().await?;
        let header =
            ResponseHeader::decode(&mut frame, Resp::header_version(version)).expect("header");
        assert_eq!(
            header.correlation_id, self.correlation,
            "responses arrive in order"
        );
        Some(Resp::decode(&mut frame, version).expect("decode response"))
    }

    pub async fn receive_frame(&mut self) -> Option<Bytes> {
        let fut = async {
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).await.ok()?;
            let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
            self.stream.read_exact(&mut buf).await.ok()?;
            Some(Bytes::from(buf))
        };
        tokio::time::timeout(Duration::from_secs(30), fut)
            .await
            .expect("no answer within 30 s")
    }

    /// True when the broker has closed this connection.
    pub async fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// Encodes records `values` as one v2 batch.
pub fn batch(values: &[&str], compression: Compression) -> Bytes {
    batch_with(values, compression, -1, -1, -1, 1_700_000_000_000)
}

/// Encodes one transactional v2 batch of `producer_id` at `producer_epoch`, stamped now (a
/// marker is stamped now too: an older batch would make it roll a new segment).
pub fn txn_batch(
    values: &[&str],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    encode_batch(
        values,
        Compression::None,
        producer_id,
        producer_epoch,
        base_sequence,
        now,
        true,
    )
}

/// Encodes one v2 batch with producer id/epoch/base sequence.
pub fn batch_with(
    values: &[&str],
    compression: Compression,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    timestamp: i64,
) -> Bytes {
    encode_batch(
        values,
        compression,
        producer_id,
        producer_epoch,
        base_sequence,
        timestamp,
        false,
    )
}

fn encode_batch(
    values: &[&str],
    compression: Compression,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    timestamp: i64,
    transactional: bool,
) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if base_sequence < 0 {
                -1
            } else {
                base_sequence + i as i32
            },
            timestamp: timestamp + i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    buf.freeze()
}

/// Decodes every record of fetched bytes (ignoring a partial trailing batch).
pub fn decode_records(mut bytes: Bytes) -> Vec<Record> {
    let mut out = Vec::new();
    while bytes.remaining() >= 12 {
        let len = i32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
        if bytes.len() < 12 + len {
            break;
        }
        let mut one = bytes.split_to(12 + len);
        for set in RecordBatchDecoder::decode_all(&mut one).expect("decode batch") {
            out.extend(set.records);
        }
    }
    out
}

/// A CreateTopics request (v7 fields) for one topic with replication factor 1 and `configs`.
pub fn create_topics_request(
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> kafka_protocol::messages::CreateTopicsRequest {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_value(Some(StrBytes::from_string(v.to_string())))
        })
        .collect();
    CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(configs)])
}

/// A Produce request (acks=1) of `records` to one partition.
pub fn produce_request(
    topic: &str,
    partition: i32,
    records: Bytes,
    timeout_ms: i32,
) -> kafka_protocol::messages::ProduceRequest {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

/// A fresh idempotent producer id (InitProducerId v4 without a transactional id).
pub async fn init_producer_id(c: &mut Client) -> i64 {
    use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
    let resp: InitProducerIdResponse = c
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
                .with_transaction_timeout_ms(60000),
        )
        .await;
    assert_eq!(resp.error_code, 0);
    resp.producer_id.0
}
