//! Configuration: server.properties parsing, broker keys, topic keys and their defaults.

pub mod broker;
pub mod client_entity;
pub mod def;
pub mod describe;
pub mod docs;
pub mod dynamic;
pub mod handle;
pub mod incremental;
pub mod keystore;
pub mod listener;
pub mod properties;
pub mod sasl;
pub mod ssl;
pub mod topic;

pub use broker::{
    BrokerConfig, ClusterSettings, ConfigError, GroupSettings, LogFormat, ReplicationSettings,
    ThrottledRates, TransactionSettings, QUICKSTART_PROPERTIES,
};
pub use client_entity::{ClientEntity, ClientEntityConfigs, EntityName};
pub use def::{ConfigSource, ConfigType};
pub use dynamic::{BrokerEntity, DynamicBrokerConfigs};
pub use handle::ConfigHandle;
pub use listener::Listener;
