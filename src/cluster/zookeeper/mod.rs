//! Cluster metadata in ZooKeeper, in Kafka's own layout (Kafka's `ZkData`), so ZooKeeper-era
//! tools (`kafka-topics --zookeeper` of Kafka <= 2.8, lag checkers) keep working.
//!
//! - [`paths`]: every znode path of the layout, and the `zookeeper.connect` string (chroot).
//! - [`znodes`]: the JSON of each znode, exactly as Kafka writes and reads it.
//! - [`client`]: a thin async wrapper over `zookeeper-client` (typed errors, versions,
//!   transactions, watches, session events).
//! - [`store`]: the operations brokers and the controller need, over one session.
//! - [`acls`]: ACLs under `/kafka-acl` and `/kafka-acl-extended` with Kafka's change
//!   notifications, over the authorizer's own session (as Kafka's `AclAuthorizer`).
//! - [`entities`]: user, client-id and IP config entities (`/config/users`, `/config/clients`,
//!   `/config/ips`) with Kafka's name sanitizing.
//!
//! # How state reaches brokers (design for cluster mode)
//!
//! Kafka 4 dropped the ZooKeeper-era controller-to-broker RPCs (LeaderAndIsr, UpdateMetadata,
//! StopReplica), and kafka-protocol has no codecs for them. Odradek uses ZooKeeper itself as
//! the channel instead:
//!
//! - The controller (the broker holding `/controller`) is the only writer of topic
//!   assignments it creates and of leader elections in
//!   `/brokers/topics/<t>/partitions/<p>/state`. Every write carries its `controller_epoch`
//!   and is conditional on the znode version it read, so a deposed controller's writes fail.
//! - Every broker watches `/brokers/ids`, `/brokers/topics` and the state znodes of the
//!   partitions it hosts, and applies what it reads: it becomes leader or follower at the
//!   state's `leader_epoch`, or stops hosting. Its Metadata answers come from the same watched
//!   view, so clients and brokers see one source of truth.
//! - Dynamic configs live where Kafka keeps them: `/config/topics/<t>`, `/config/brokers/<id>`
//!   and `/config/brokers/<default>`, user and client entities (SCRAM credentials, quotas) under
//!   `/config/users`, `/config/clients` and `/config/ips`. Every write is followed by a sequential
//!   `/config/changes/config_change_<seq>` notification naming the entity; every broker watches
//!   `/config/changes` and re-reads the entity of each new notification (also those written by
//!   ZooKeeper-era tools), so its view, and through the replica sync its logs and its broker
//!   configuration, follow.
//! - The partition leader shrinks and expands the ISR itself with a conditional write of the
//!   state znode (as Kafka did before AlterPartition). A leader that loses that race stops
//!   changing the ISR until it has re-read the state: acks=all writes are acknowledged only
//!   once the ISR that a successful ZooKeeper write recorded has them, so a leader cut off
//!   from ZooKeeper cannot acknowledge writes the new leader lacks.
//!
//! # Fencing when ZooKeeper is away
//!
//! ZooKeeper is not in the data path, as in Kafka: while the connection is down but the
//! session may still be alive, leaders keep accepting writes (the ISR cannot change, so acks=all
//! still needs every ISR member). A leader stops accepting writes, also acks=1 ones, as soon as
//! an ISR follower has not fetched for a third of the session timeout: another replica can only
//! be elected after the session has expired, and a leader cut off from ZooKeeper is usually cut
//! off from its followers too (see `crate::replica` for the rule). Topics with unclean election
//! enabled stop at once, since any replica may replace their leader. Once the session is known
//! to be lost, every leadership is fenced until a new session has re-read the state.

pub mod acls;
pub mod admin;
pub mod client;
pub mod controller;
pub mod decisions;
pub mod elections;
pub mod entities;
pub mod metadata;
pub mod paths;
pub mod reassignment;
pub mod store;
pub mod view;
pub mod znodes;

pub use client::{CreateMode, Op, OpResult, SessionEvents, Watch, WatchEvent, ZkClient, ZkError};
pub use metadata::{StartError, ZkCluster};
pub use paths::ConnectString;
pub use store::{ControllerFence, Election, StoreError, ZkStore};
