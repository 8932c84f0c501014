//! The JSON of each znode, as Kafka 2.8–3.x writes and reads it (Kafka's `ZkData`).
//!
//! Encoding follows what Kafka writes today; decoding also accepts what older Kafka versions and
//! ZooKeeper-era tools wrote (older versions, missing optional fields).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::client::ZkError;
use crate::cluster::BrokerInfo;
pub use crate::cluster::Endpoint;

fn decode_json<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, ZkError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ZkError::Corrupt(format!(
            "{what}: {e}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(512)])
        ))
    })
}

#[expect(
    clippy::expect_used,
    reason = "znode types derive Serialize over strings, numbers, lists and string-keyed maps, \
              which serde_json cannot fail to write"
)]
fn encode_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("znode types always serialize")
}

/// Kafka writes some numbers as JSON strings (timestamps, producer-id block bounds); accept both.
mod string_number {
    use super::*;

    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            S(String),
            N(i64),
        }
        match Either::deserialize(d)? {
            Either::N(n) => Ok(n),
            Either::S(s) => s.trim().parse().map_err(serde::de::Error::custom),
        }
    }
}

pub use crate::util::kafka_uuid::to_string as kafka_uuid_to_string;

/// Parses Kafka's `Uuid.toString()` form found in a znode.
pub fn kafka_uuid_from_string(s: &str) -> Result<Uuid, ZkError> {
    crate::util::kafka_uuid::parse(s)
        .ok_or_else(|| ZkError::Corrupt(format!("invalid Kafka uuid {s:?}")))
}

// ---------------------------------------------------------------------------------------------
// /brokers/ids/<id>

/// `/brokers/ids/<id>` (ephemeral), version 5 as Kafka ≥ 2.7 writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub version: i32,
    /// Host of the first PLAINTEXT endpoint (for old clients); null without one.
    #[serde(default)]
    pub host: Option<String>,
    /// Port of the first PLAINTEXT endpoint; -1 without one.
    #[serde(default = "minus_one")]
    pub port: i32,
    /// `LISTENER://host:port` strings.
    #[serde(default)]
    pub endpoints: Vec<String>,
    #[serde(default = "minus_one")]
    pub jmx_port: i32,
    /// Milliseconds since the epoch, as a JSON string.
    #[serde(with = "string_number", default)]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    /// Listener name → security protocol name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_security_protocol_map: Option<BTreeMap<String, String>>,
    /// Supported features (KIP-584); `{}` for Odradek.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<BTreeMap<String, serde_json::Value>>,
}

fn minus_one() -> i32 {
    -1
}

impl BrokerRegistration {
    /// A version-5 registration with one PLAINTEXT listener, as Kafka writes it.
    pub fn plaintext(host: &str, port: u16, rack: Option<String>, timestamp_ms: i64) -> Self {
        let endpoint = Endpoint {
            listener: "PLAINTEXT".into(),
            host: host.into(),
            port,
        };
        let protocols = BTreeMap::from([("PLAINTEXT".to_string(), "PLAINTEXT".to_string())]);
        BrokerRegistration::new(&[endpoint], &protocols, rack, timestamp_ms)
    }

    /// A version-5 registration of `endpoints` as Kafka writes it: every endpoint, the
    /// security protocol of each endpoint's listener (from `protocols`, listener name →
    /// protocol name), and in `host`/`port` the first PLAINTEXT endpoint (null and -1 without).
    pub fn new(
        endpoints: &[Endpoint],
        protocols: &BTreeMap<String, String>,
        rack: Option<String>,
        timestamp_ms: i64,
    ) -> Self {
        let protocol_of = |e: &Endpoint| {
            protocols
                .get(&e.listener)
                .cloned()
                .unwrap_or_else(|| e.listener.clone())
        };
        let plaintext = endpoints.iter().find(|e| protocol_of(e) == "PLAINTEXT");
        BrokerRegistration {
            version: 5,
            host: plaintext.map(|e| e.host.clone()),
            port: plaintext.map_or(-1, |e| i32::from(e.port)),
            endpoints: endpoints.iter().map(Endpoint::connection_string).collect(),
            jmx_port: -1,
            timestamp: timestamp_ms,
            rack,
            listener_security_protocol_map: Some(
                endpoints
                    .iter()
                    .map(|e| (e.listener.clone(), protocol_of(e)))
                    .collect(),
            ),
            features: Some(BTreeMap::new()),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ZkError> {
        let reg: BrokerRegistration = decode_json("broker registration", bytes)?;
        if reg.version < 1 {
            return Err(ZkError::Corrupt(format!(
                "unsupported broker registration version {}",
                reg.version
            )));
        }
        Ok(reg)
    }

    /// Advertised endpoints; version 1 had only host and port (PLAINTEXT).
    pub fn parsed_endpoints(&self) -> Vec<Endpoint> {
        if self.version == 1 || self.endpoints.is_empty() {
            return match (&self.host, u16::try_from(self.port)) {
                (Some(host), Ok(port)) => vec![Endpoint {
                    listener: "PLAINTEXT".into(),
                    host: host.clone(),
                    port,
                }],
                _ => Vec::new(),
            };
        }
        self.endpoints
            .iter()
            .filter_map(|e| Endpoint::parse(e))
            .collect()
    }

    /// The broker with every endpoint it registered.
    pub fn to_broker_info(&self, id: i32) -> BrokerInfo {
        BrokerInfo {
            id,
            endpoints: self.parsed_endpoints(),
            rack: self.rack.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /brokers/topics/<t>

/// `/brokers/topics/<t>`: replica assignment. Kafka 3.x writes version 3 with `topic_id`;
/// versions 1 (≤ 2.3) and 2 (2.4–2.7, and `kafka-topics --zookeeper`) have no topic id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicAssignment {
    pub version: i32,
    /// Partition → replicas (JSON keys are the partition numbers as strings).
    #[serde(default)]
    pub partitions: BTreeMap<i32, Vec<i32>>,
    #[serde(default)]
    pub adding_replicas: BTreeMap<i32, Vec<i32>>,
    #[serde(default)]
    pub removing_replicas: BTreeMap<i32, Vec<i32>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_topic_id",
        deserialize_with = "de_topic_id"
    )]
    pub topic_id: Option<Uuid>,
}

fn ser_topic_id<S: Serializer>(id: &Option<Uuid>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.serialize_str(&kafka_uuid_to_string(*id)),
        None => s.serialize_none(),
    }
}

fn de_topic_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => kafka_uuid_from_string(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

impl TopicAssignment {
    /// A version-3 assignment of a new topic (nothing being reassigned).
    pub fn new(topic_id: Uuid, replicas: &[Vec<i32>]) -> Self {
        TopicAssignment {
            version: 3,
            partitions: replicas
                .iter()
                .enumerate()
                .map(|(p, r)| (p as i32, r.clone()))
                .collect(),
            adding_replicas: BTreeMap::new(),
            removing_replicas: BTreeMap::new(),
            topic_id: Some(topic_id),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ZkError> {
        decode_json("topic assignment", bytes)
    }

    /// Replica lists indexed by partition, or an error if partitions are not 0..n.
    pub fn replica_lists(&self) -> Result<Vec<Vec<i32>>, ZkError> {
        let lists: Vec<Vec<i32>> = self.partitions.values().cloned().collect();
        let dense = self
            .partitions
            .keys()
            .enumerate()
            .all(|(i, p)| *p == i as i32);
        if dense {
            Ok(lists)
        } else {
            Err(ZkError::Corrupt(format!(
                "topic partitions are not numbered 0..{}: {:?}",
                lists.len(),
                self.partitions.keys().collect::<Vec<_>>()
            )))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /admin/reassign_partitions, /admin/preferred_replica_election

/// One partition's move in `/admin/reassign_partitions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignEntry {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    /// Written by `kafka-reassign-partitions` JSON files; ignored (one log directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_dirs: Option<Vec<String>>,
}

/// `/admin/reassign_partitions`, version 1: moves requested by ZooKeeper-era tools; the
/// controller removes each partition once its move is done, and the znode with the last one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignPartitionsZnode {
    pub version: i32,
    #[serde(default)]
    pub partitions: Vec<ReassignEntry>,
}

/// One partition named in `/admin/preferred_replica_election`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRef {
    pub topic: String,
    pub partition: i32,
}

/// `/admin/preferred_replica_election`, version 1: partitions whose first replica should lead
/// again; the controller deletes it once the elections are made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferredElectionZnode {
    pub version: i32,
    #[serde(default)]
    pub partitions: Vec<PartitionRef>,
}

impl ReassignPartitionsZnode {
    pub fn new(partitions: Vec<ReassignEntry>) -> Self {
        ReassignPartitionsZnode {
            version: 1,
            partitions,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ZkError> {
        decode_json("partition reassignment", bytes)
    }
}

impl PreferredElectionZnode {
    pub fn decode(bytes: &[u8]) -> Result<Self, ZkError> {
        decode_json("preferred replica election", bytes)
    }
}

// ---------------------------------------------------------------------------------------------
// /brokers/topics/<t>/partitions/<p>/state

/// Leader recovery state written only when not RECOVERED (0); 1 = RECOVERING (KIP-704).
pub const LEADER_RECOVERY_RECOVERED: i8 = 0;

/// `/brokers/topics/<t>/partitions/<p>/state`, version 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStateZnode {
    pub version: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub controller_epoch: i32,
    pub isr: Vec<i32>,
    #[serde(default, skip_serializing_if = "is_recovered")]
    pub leader_recovery_state: i8,
}

fn is_recovered(s: &i8) -> bool {
    *s == LEADER_RECOVERY_RECOVERED
}

impl PartitionStateZnode {
    pub fn new(leader: i32, leader_epoch: i32, isr: Vec<i32>, controller_epoch: i32) -> Self {
        PartitionStateZnode {
            version: 1,
            leader,
            leader_epoch,
            controller_epoch,
            isr,
            leader_recovery_state: LEADER_RECOVERY_RECOVERED,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ZkError> {
        decode_json("partition state", bytes)
    }
}

// ---------------------------------------------------------------------------------------------
// /controller, /controller_epoch

/// `/controller` (ephemeral). Kafka ≥ 3.4 writes version 2 with `kraftControllerEpoch` -1;
/// earlier versions wrote version 1 without it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerZnode {
    pub version: i32,
    pub brokerid: i32,
    #[serde(with = "string_number", default)]
    pub timestamp: i64,
    #[serde(
        rename = "kraftControllerEpoch",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kraft_controller_epoch: Option<i32>,
}

impl ControllerZnode {
    pub fn new(broker_id: i32, timestamp_ms: i64) -> Self {
        ControllerZnode {
            version: 2,
            brokerid: broker_id,
            timestamp: timestamp_ms,
            kraft_controller_epoch: Some(-1),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ZkError> {
        decode_json("controller", bytes)
    }
}

/// `/controller_epoch`: the epoch as a plain decimal integer.
pub fn encode_controller_epoch(epoch: i32) -> Vec<u8> {
    epoch.to_string().into_bytes()
}

pub fn decode_controller_epoch(bytes: &[u8]) -> Result<i32, ZkError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            ZkError::Corrupt(format!(
                "controller epoch is not an integer: {:?}",
                String::from_utf8_lossy(bytes)
            ))
        })
}

// ---------------------------------------------------------------------------------------------
// /cluster/id

/// `/cluster/id`: `{"version":"1","id":"..."}` (the version is a string).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdZnode {
    pub version: String,
    pub id: String,
}

impl ClusterIdZnode {
    pub fn new(id: &str) -> Self {
        ClusterIdZnode {
            version: "1".into(),
            id: id.into(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ZkError> {
        #[derive(Deserialize)]
        struct Lenient {
            #[serde(default)]
            version: serde_json::Value,
            id: String,
        }
        let l: Lenient = decode_json("cluster id", bytes)?;
        let version = match l.version {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => "1".into(),
            other => other.to_string(),
        };
        Ok(ClusterIdZnode { version, id: l.id })
    }
}

// ---------------------------------------------------------------------------------------------
// /latest_producer_id_block

/// Size of the producer-id blocks Kafka hands out (`ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// `/latest_producer_id_block`: the last block handed out; bounds inclusive, JSON strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdBlock {
    pub version: i64,
    pub broker: i32,
    #[serde(with = "string_number")]
    pub block_start: i64,
    #[serde(with = "string_number")]
    pub block_end: i64,
}

impl ProducerIdBlock {
    /// The block after `previous` (or the first block), assigned to `broker`.
    pub fn next_after(previous: Option<&ProducerIdBlock>, broker: i32) -> Result<Self, ZkError> {
        let start = match previous {
            None => 0,
            Some(p) => p
                .block_end
                .checked_add(1)
                .ok_or_else(|| ZkError::Other("producer ids exhausted".to_string()))?,
        };
        let end = start
            .checked_add(PRODUCER_ID_BLOCK_SIZE - 1)
            .ok_or_else(|| ZkError::Other("producer ids exhausted".to_string()))?;
        Ok(ProducerIdBlock {
            version: 1,
            broker,
            block_start: start,
            block_end: end,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ZkError> {
        let block: ProducerIdBlock = decode_json("producer id block", bytes)?;
        if block.block_start < 0 || block.block_end < block.block_start {
            return Err(ZkError::Corrupt(format!(
                "invalid producer id block {}..={}",
                block.block_start, block.block_end
            )));
        }
        Ok(block)
    }
}

// ---------------------------------------------------------------------------------------------
// /config/<type>/<name>, /config/changes/config_change_<seq>

/// `/config/topics/<t>` (and `/config/brokers/<id>`): `{"version":1,"config":{k:v}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityConfig {
    pub version: i32,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

impl EntityConfig {
    pub fn new(config: BTreeMap<String, String>) -> Self {
        EntityConfig { version: 1, config }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    /// Empty data (or `null`) decodes as no overrides, as Kafka does.
    pub fn decode(bytes: &[u8]) -> Result<Self, ZkError> {
        if bytes.is_empty() || bytes == b"null" {
            return Ok(EntityConfig::new(BTreeMap::new()));
        }
        let value: serde_json::Value = decode_json("entity config", bytes)?;
        let version = value
            .get("version")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(1) as i32;
        let mut config = BTreeMap::new();
        if let Some(map) = value.get("config").and_then(serde_json::Value::as_object) {
            for (k, v) in map {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                config.insert(k.clone(), v);
            }
        }
        Ok(EntityConfig { version, config })
    }
}

/// `/config/changes/config_change_<seq>`: `{"version":2,"entity_path":"topics/<t>"}` (what
/// Kafka writes since 1.1); version 1, `{"version":1,"entity_type":"topics","entity_name":"t"}`,
/// written by older tools, decodes to the same entity path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChangeNotification {
    pub version: i32,
    pub entity_path: String,
}

impl ConfigChangeNotification {
    pub fn new(entity_path: String) -> Self {
        ConfigChangeNotification {
            version: 2,
            entity_path,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ZkError> {
        let value: serde_json::Value = decode_json("config change notification", bytes)?;
        let text = |key: &str| value.get(key).and_then(serde_json::Value::as_str);
        let bad = || ZkError::Other(format!("unreadable config change notification: {value}"));
        let entity_path = match value.get("version").and_then(serde_json::Value::as_i64) {
            Some(1) => format!(
                "{}/{}",
                text("entity_type").ok_or_else(bad)?,
                text("entity_name").ok_or_else(bad)?
            ),
            Some(2) => text("entity_path").ok_or_else(bad)?.to_string(),
            _ => return Err(bad()),
        };
        Ok(ConfigChangeNotification::new(entity_path))
    }

    /// The entity type and name (`("topics", "t")`, `("brokers", "<default>")`).
    pub fn entity(&self) -> Option<(&str, &str)> {
        self.entity_path
            .split_once('/')
            .filter(|(kind, name)| !kind.is_empty() && !name.is_empty())
    }
}

// ---------------------------------------------------------------------------------------------
// /admin/*, /isr_change_notification/*

/// `/admin/delete_topics/<t>` carries no data (Kafka creates it with null data).
pub fn encode_delete_topic_marker() -> Vec<u8> {
    Vec::new()
}

/// A `{"topic":..,"partition":..}` element of several admin znodes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartitionRef {
    pub topic: String,
    pub partition: i32,
}

/// `/isr_change_notification/isr_change_<seq>` and `/admin/preferred_replica_election`:
/// `{"version":1,"partitions":[{"topic":..,"partition":..}]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionList {
    pub version: i32,
    pub partitions: Vec<TopicPartitionRef>,
}

impl PartitionList {
    pub fn new(partitions: Vec<TopicPartitionRef>) -> Self {
        PartitionList {
            version: 1,
            partitions,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ZkError> {
        decode_json("partition list", bytes)
    }
}

/// One entry of the legacy `/admin/reassign_partitions` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignmentEntry {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
}

/// `/admin/reassign_partitions`: `{"version":1,"partitions":[{"topic","partition","replicas"}]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyReassignment {
    pub version: i32,
    pub partitions: Vec<ReassignmentEntry>,
}

impl LegacyReassignment {
    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ZkError> {
        decode_json("partition reassignment", bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn as_value(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn broker_registration_v5_as_kafka_writes_it() {
        let kafka = br#"{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},"endpoints":["PLAINTEXT://localhost:9091"],"jmx_port":-1,"port":9091,"host":"localhost","version":5,"timestamp":"1707276552023"}"#;
        let reg = BrokerRegistration::decode(kafka).unwrap();
        assert_eq!(
            reg,
            BrokerRegistration::plaintext("localhost", 9091, None, 1707276552023)
        );
        assert_eq!(as_value(&reg.encode()), as_value(kafka));
        let info = reg.to_broker_info(101);
        assert_eq!(info.id, 101);
        assert_eq!(
            info.address("PLAINTEXT"),
            Some(("localhost".to_string(), 9091))
        );
    }

    #[test]
    fn broker_registration_other_shapes() {
        let multi = br#"{"features":{},"listener_security_protocol_map":{"INTERNAL":"PLAINTEXT","EXTERNAL":"PLAINTEXT"},"endpoints":["INTERNAL://kafka3:29092","EXTERNAL://kafka3:9092"],"jmx_port":-1,"port":29092,"host":"kafka3","version":5,"timestamp":"1731163180710","rack":"dc1"}"#;
        let reg = BrokerRegistration::decode(multi).unwrap();
        assert_eq!(reg.rack.as_deref(), Some("dc1"));
        let info = reg.to_broker_info(3);
        assert_eq!(info.address("EXTERNAL"), Some(("kafka3".to_string(), 9092)));
        assert_eq!(
            info.address("INTERNAL"),
            Some(("kafka3".to_string(), 29092))
        );
        assert!(info.endpoint("SSL").is_none());
        // Written back as Kafka writes it.
        let protocols = reg.listener_security_protocol_map.clone().unwrap();
        let again =
            BrokerRegistration::new(&info.endpoints, &protocols, reg.rack.clone(), reg.timestamp);
        assert_eq!(as_value(&again.encode()), as_value(multi));
        // Without a PLAINTEXT endpoint, host is null and port -1, as in Kafka.
        let ssl = BTreeMap::from([
            ("INTERNAL".to_string(), "SSL".to_string()),
            ("EXTERNAL".to_string(), "SSL".to_string()),
        ]);
        let reg = BrokerRegistration::new(&info.endpoints, &ssl, None, 1);
        assert_eq!((reg.host, reg.port), (None, -1));
        // Version 1: host and port only.
        let v1 = br#"{"version":1,"host":"localhost","port":9092,"jmx_port":9999,"timestamp":"2233345666"}"#;
        let reg = BrokerRegistration::decode(v1).unwrap();
        assert_eq!(reg.parsed_endpoints()[0].port, 9092);
        // IPv6 endpoint.
        let e = Endpoint::parse("PLAINTEXT://[::1]:9092").unwrap();
        assert_eq!(e.host, "::1");
        assert_eq!(e.connection_string(), "PLAINTEXT://[::1]:9092");
        assert!(BrokerRegistration::decode(b"{\"version\":0}").is_err());
        assert!(BrokerRegistration::decode(b"not json").is_err());
    }

    #[test]
    fn topic_assignment_v3_as_kafka_writes_it() {
        let kafka = br#"{"removing_replicas":{},"partitions":{"0":[0]},"topic_id":"ZOLr9CLNQjSW70hyIHx6BQ","adding_replicas":{},"version":3}"#;
        let t = TopicAssignment::decode(kafka).unwrap();
        assert_eq!(t.version, 3);
        assert_eq!(t.replica_lists().unwrap(), vec![vec![0]]);
        assert_eq!(
            kafka_uuid_to_string(t.topic_id.unwrap()),
            "ZOLr9CLNQjSW70hyIHx6BQ"
        );
        assert_eq!(as_value(&t.encode()), as_value(kafka));
        let new = TopicAssignment::new(t.topic_id.unwrap(), &[vec![0]]);
        assert_eq!(new, t);
    }

    #[test]
    fn topic_assignment_old_versions() {
        // Kafka <= 2.3 / kafka-topics --zookeeper.
        let v1 = br#"{"version":1,"partitions":{"1":[2,1],"0":[1,2],"10":[1,2],"2":[1,2],"3":[1,2],"4":[1,2],"5":[1,2],"6":[1,2],"7":[1,2],"8":[1,2],"9":[1,2]}}"#;
        let t = TopicAssignment::decode(v1).unwrap();
        assert_eq!(t.topic_id, None);
        let lists = t.replica_lists().unwrap();
        assert_eq!(lists.len(), 11);
        assert_eq!(lists[1], vec![2, 1]);
        let v2 = br#"{"version":2,"partitions":{"0":[1,2,3]},"adding_replicas":{"0":[3]},"removing_replicas":{"0":[1]}}"#;
        let t = TopicAssignment::decode(v2).unwrap();
        assert_eq!(t.adding_replicas[&0], vec![3]);
        assert_eq!(t.removing_replicas[&0], vec![1]);
        let gap = br#"{"version":1,"partitions":{"0":[1],"2":[1]}}"#;
        assert!(TopicAssignment::decode(gap)
            .unwrap()
            .replica_lists()
            .is_err());
    }

    #[test]
    fn partition_state_as_kafka_writes_it() {
        let kafka = br#"{"controller_epoch":1,"leader":1,"version":1,"leader_epoch":0,"isr":[1]}"#;
        let s = PartitionStateZnode::decode(kafka).unwrap();
        assert_eq!(s, PartitionStateZnode::new(1, 0, vec![1], 1));
        assert_eq!(as_value(&s.encode()), as_value(kafka));
        let recovering = br#"{"controller_epoch":3,"leader":2,"version":1,"leader_epoch":7,"isr":[2],"leader_recovery_state":1}"#;
        let s = PartitionStateZnode::decode(recovering).unwrap();
        assert_eq!(s.leader_recovery_state, 1);
        assert_eq!(as_value(&s.encode()), as_value(recovering));
    }

    #[test]
    fn controller_as_kafka_writes_it() {
        let v2 =
            br#"{"version":2,"brokerid":2,"timestamp":"1723447688383","kraftControllerEpoch":-1}"#;
        let c = ControllerZnode::decode(v2).unwrap();
        assert_eq!(c, ControllerZnode::new(2, 1723447688383));
        assert_eq!(as_value(&c.encode()), as_value(v2));
        let v1 = br#"{"version":1,"brokerid":0,"timestamp":"1596527402458"}"#;
        let c = ControllerZnode::decode(v1).unwrap();
        assert_eq!(
            (c.version, c.brokerid, c.kraft_controller_epoch),
            (1, 0, None)
        );
        assert_eq!(encode_controller_epoch(12), b"12");
        assert_eq!(decode_controller_epoch(b"12").unwrap(), 12);
        assert!(decode_controller_epoch(b"x").is_err());
    }

    #[test]
    fn cluster_id_as_kafka_writes_it() {
        let kafka = br#"{"version":"1","id":"Sfr7YvlkRHSHrmSrwq9mug"}"#;
        let c = ClusterIdZnode::decode(kafka).unwrap();
        assert_eq!(c, ClusterIdZnode::new("Sfr7YvlkRHSHrmSrwq9mug"));
        assert_eq!(as_value(&c.encode()), as_value(kafka));
    }

    #[test]
    fn producer_id_block_as_kafka_writes_it() {
        let kafka = br#"{"version":1,"broker":0,"block_start":"1000","block_end":"1999"}"#;
        let b = ProducerIdBlock::decode(kafka).unwrap();
        assert_eq!((b.broker, b.block_start, b.block_end), (0, 1000, 1999));
        assert_eq!(as_value(&b.encode()), as_value(kafka));
        let next = ProducerIdBlock::next_after(Some(&b), 4).unwrap();
        assert_eq!(
            (next.broker, next.block_start, next.block_end),
            (4, 2000, 2999)
        );
        let first = ProducerIdBlock::next_after(None, 1).unwrap();
        assert_eq!((first.block_start, first.block_end), (0, 999));
        assert!(ProducerIdBlock::decode(
            br#"{"version":1,"broker":0,"block_start":"5","block_end":"1"}"#
        )
        .is_err());
    }

    #[test]
    fn entity_config_as_kafka_writes_it() {
        let kafka = br#"{"version":1,"config":{"cleanup.policy":"compact","retention.ms":"1000"}}"#;
        let c = EntityConfig::decode(kafka).unwrap();
        assert_eq!(c.config["cleanup.policy"], "compact");
        assert_eq!(as_value(&c.encode()), as_value(kafka));
        // kafka-topics --zookeeper writes {"version":1,"config":{}} for a topic without overrides.
        let empty = EntityConfig::decode(br#"{"version":1,"config":{}}"#).unwrap();
        assert!(empty.config.is_empty());
        assert!(EntityConfig::decode(b"").unwrap().config.is_empty());
    }

    #[test]
    fn config_change_and_admin_znodes() {
        let kafka = br#"{"version":2,"entity_path":"topics/my-topic"}"#;
        let n = ConfigChangeNotification::decode(kafka).unwrap();
        assert_eq!(n, ConfigChangeNotification::new("topics/my-topic".into()));
        assert_eq!(as_value(&n.encode()), as_value(kafka));
        assert_eq!(n.entity(), Some(("topics", "my-topic")));
        let v1 = br#"{"version":1,"entity_type":"brokers","entity_name":"<default>"}"#;
        let n = ConfigChangeNotification::decode(v1).unwrap();
        assert_eq!(n.entity_path, "brokers/<default>");
        assert!(ConfigChangeNotification::decode(br#"{"version":3}"#).is_err());
        assert!(encode_delete_topic_marker().is_empty());

        let isr = br#"{"version":1,"partitions":[{"topic":"t","partition":0}]}"#;
        let l = PartitionList::decode(isr).unwrap();
        assert_eq!(
            l.partitions[0],
            TopicPartitionRef {
                topic: "t".into(),
                partition: 0
            }
        );
        assert_eq!(
            as_value(&l.encode()),
            json!({"version":1,"partitions":[{"topic":"t","partition":0}]})
        );

        let reassign =
            br#"{"version":1,"partitions":[{"topic":"t","partition":1,"replicas":[1,2]}]}"#;
        let r = LegacyReassignment::decode(reassign).unwrap();
        assert_eq!(r.partitions[0].replicas, vec![1, 2]);
        assert_eq!(as_value(&r.encode()), as_value(reassign));
    }

    #[test]
    fn admin_znodes_read_what_kafka_tools_write() {
        let tool = br#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3],"log_dirs":["any","any"]}]}"#;
        let r = ReassignPartitionsZnode::decode(tool).unwrap();
        assert_eq!(r.partitions[0].replicas, vec![2, 3]);
        let written = ReassignPartitionsZnode::new(r.partitions.clone()).encode();
        assert_eq!(ReassignPartitionsZnode::decode(&written).unwrap(), r);
        let election = br#"{"version":1,"partitions":[{"topic":"t","partition":1}]}"#;
        let e = PreferredElectionZnode::decode(election).unwrap();
        assert_eq!(
            e.partitions,
            vec![PartitionRef {
                topic: "t".into(),
                partition: 1
            }]
        );
        assert!(ReassignPartitionsZnode::decode(b"{").is_err());
    }
}
