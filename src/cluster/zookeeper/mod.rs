//! Cluster metadata in ZooKeeper, in Kafka's own layout (Kafka's `ZkData`), so ZooKeeper-era
//! tools (`kafka-topics --zookeeper` of Kafka <= 2.8, lag checkers) keep working.
//!
//! - [`paths`]: every znode path of the layout, and the `zookeeper.connect` string (chroot).
//! - [`znodes`]: the JSON of each znode, exactly as Kafka writes and reads it.
//! - [`client`]: a thin async wrapper over `zookeeper-client` (typed errors, versions,
//!   transactions, watches, session events).
//! - [`store`]: the operations brokers and the controller need, over one session.

pub mod client;
pub mod paths;
pub mod store;
pub mod znodes;

pub use client::{CreateMode, Op, OpResult, SessionEvents, Watch, WatchEvent, ZkClient, ZkError};
pub use paths::ConnectString;
pub use store::{Election, StoreError, ZkStore};
