//! Plain data describing brokers, topics and partitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::BrokerConfig;

/// One advertised endpoint of a broker: where its listener `listener` is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// Parses `LISTENER://host:port` (IPv6 hosts in brackets).
    pub fn parse(s: &str) -> Option<Endpoint> {
        let (listener, rest) = s.split_once("://")?;
        let (host, port) = rest.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some(Endpoint {
            listener: listener.to_string(),
            host: host.to_string(),
            port: port.parse().ok()?,
        })
    }

    /// `LISTENER://host:port`, IPv6 hosts in brackets.
    pub fn connection_string(&self) -> String {
        if self.host.contains(':') {
            format!("{}://[{}]:{}", self.listener, self.host, self.port)
        } else {
            format!("{}://{}:{}", self.listener, self.host, self.port)
        }
    }
}

/// A live broker and the endpoints it advertises, one per listener name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// This broker as others reach it, from its configuration: every advertised listener.
    pub fn advertised(config: &BrokerConfig) -> BrokerInfo {
        BrokerInfo {
            id: config.broker_id.max(0),
            endpoints: config
                .advertised_listeners
                .iter()
                .map(|l| Endpoint {
                    listener: l.name.clone(),
                    host: advertised_host(&l.host),
                    port: l.port,
                })
                .collect(),
            rack: config.rack.clone(),
        }
    }

    /// Its endpoint on listener `listener`, if it advertises one.
    pub fn endpoint(&self, listener: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.listener == listener)
    }

    /// Its `(host, port)` on `listener`, if it advertises that listener.
    pub fn address(&self, listener: &str) -> Option<(String, u16)> {
        self.endpoint(listener).map(|e| (e.host.clone(), e.port))
    }
}

/// An empty advertised host means "this machine": use its hostname, as Kafka does.
fn advertised_host(host: &str) -> String {
    if !host.is_empty() && host != "0.0.0.0" {
        return host.to_string();
    }
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into a buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        if let Ok(name) = std::str::from_utf8(&buf[..end]) {
            if !name.is_empty() {
                return name.to_string();
            }
        }
    }
    "localhost".to_string()
}

/// Replica placement and leadership of one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    /// Controller epoch that last wrote this state (cluster mode; 0 standalone).
    #[serde(default)]
    pub controller_epoch: i32,
    /// Version of the state's znode (cluster mode; 0 standalone), for conditional writes.
    #[serde(default)]
    pub state_version: i32,
    /// Replicas being added by a move in progress (KIP-455); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<i32>,
    /// Replicas being removed by a move in progress; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<i32>,
}

/// One topic: identity, partitions and per-topic config overrides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadata {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<PartitionState>,
    pub configs: BTreeMap<String, String>,
}

impl PartitionState {
    /// A partition whose state the controller has not written yet: no leader, no ISR.
    pub fn unelected(partition: i32, replicas: Vec<i32>) -> PartitionState {
        PartitionState {
            partition,
            replicas,
            leader: -1,
            leader_epoch: -1,
            isr: Vec::new(),
            controller_epoch: -1,
            state_version: -1,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }
}

/// Whether `name` is one of Kafka's internal topics (`__consumer_offsets`, `__transaction_state`).
pub fn is_internal_topic(name: &str) -> bool {
    name == "__consumer_offsets" || name == "__transaction_state"
}

impl TopicMetadata {
    /// Kafka's internal topics (`__consumer_offsets`, `__transaction_state`).
    pub fn is_internal(&self) -> bool {
        is_internal_topic(&self.name)
    }

    pub fn partition(&self, index: i32) -> Option<&PartitionState> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    pub fn replication_factor(&self) -> i16 {
        self.partitions
            .first()
            .map_or(0, |p| p.replicas.len() as i16)
    }
}
