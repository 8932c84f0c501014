//! Odradek: a message broker that speaks Apache Kafka's binary protocol.
//!
//! Layers, top to bottom: [`server`] (TCP, framing, dispatch) → [`api`] (one handler per API
//! family) → [`replica`] (hosted partitions, high watermarks) → [`log`] (segments on disk).
//! [`cluster`] holds metadata behind one trait; [`config`] reads Kafka's server.properties.

pub mod api;
pub mod app;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod group;
pub mod kafka_uuid;
pub mod log;
pub mod maintenance;
pub mod protocol;
pub mod replica;
pub mod server;
