//! Odradek: a message broker that speaks Apache Kafka's binary protocol.
//!
//! Layers, top to bottom (README.md's "Rules of the house"; `tests/house_rules.rs` checks that
//! no module uses a layer above its own): [`server`] and [`app`] (network front, lifecycle) →
//! [`api`] (one handler file per API family) → [`broker`] (the assembled whole and its glue) →
//! [`group`], [`txn`] (coordinators) → [`replica`] (hosted partitions, replication) → [`cluster`]
//! (metadata and membership behind one trait) → [`log`] (segments on disk) → the ground:
//! [`util`], [`config`], [`protocol`], [`metrics`], [`auth`].

pub mod api;
pub mod app;
pub mod auth;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod group;
pub mod log;
pub mod metrics;
pub mod protocol;
pub mod replica;
pub mod server;
pub mod txn;
pub mod util;
