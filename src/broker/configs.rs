//! Dynamic configuration changes (AlterConfigs, IncrementalAlterConfigs): a topic's overrides
//! or a broker entity's dynamic configs are checked as Kafka 3.9 checks them, stored through the
//! metadata backend (which tells every broker), and applied here at once; the other brokers
//! apply them when their metadata sync sees the change.

use std::collections::BTreeMap;

use tracing::info;

use super::Broker;
use crate::cluster::ClusterError;
use crate::config::broker::broker_def;
use crate::config::dynamic::{check_update, sanitize, BrokerUpdateError};
use crate::config::incremental::{apply, ConfigOp, KeyInfo};
use crate::config::topic::{topic_def, validate_overrides, TopicConfigError};
use crate::config::BrokerEntity;

/// Why a config change is refused, each mapping to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum ConfigUpdateError {
    /// INVALID_REQUEST: a malformed resource, or a broker config that fails its checks.
    #[error("{0}")]
    InvalidRequest(String),
    /// INVALID_CONFIG: a topic config that fails its checks, or a list operation on a key that
    /// is not a list.
    #[error("{0}")]
    InvalidConfig(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl From<BrokerUpdateError> for ConfigUpdateError {
    fn from(e: BrokerUpdateError) -> Self {
        ConfigUpdateError::InvalidRequest(e.to_string())
    }
}

impl From<TopicConfigError> for ConfigUpdateError {
    fn from(e: TopicConfigError) -> Self {
        ConfigUpdateError::InvalidConfig(e.to_string())
    }
}

/// A change of one entity's configs.
#[derive(Clone, Debug)]
pub enum ConfigChange {
    /// AlterConfigs: these become the entity's whole set of dynamic configs.
    Replace(BTreeMap<String, String>),
    /// IncrementalAlterConfigs: operations on the stored set, in order.
    Incremental(Vec<(String, ConfigOp)>),
}

impl ConfigChange {
    /// The new set of configs, from the stored one.
    fn applied_to(
        &self,
        mut stored: BTreeMap<String, String>,
        info: impl Fn(&str) -> Option<KeyInfo>,
    ) -> Result<BTreeMap<String, String>, ConfigUpdateError> {
        match self {
            ConfigChange::Replace(configs) => Ok(configs.clone()),
            ConfigChange::Incremental(ops) => {
                apply(&mut stored, ops, info)
                    .map_err(|e| ConfigUpdateError::InvalidConfig(e.to_string()))?;
                Ok(stored)
            }
        }
    }
}

impl Broker {
    /// The broker entity a resource name denotes: empty for the cluster-wide default, else
    /// this broker's id (another broker's id is refused, as Kafka refuses it).
    pub fn broker_entity(&self, name: &str) -> Result<BrokerEntity, ConfigUpdateError> {
        if name.is_empty() {
            return Ok(BrokerEntity::Default);
        }
        let id: i32 = name.parse().map_err(|_| {
            ConfigUpdateError::InvalidRequest(format!(
                "Node id must be an integer, but it is: {name}"
            ))
        })?;
        if id != self.broker_id() {
            return Err(ConfigUpdateError::InvalidRequest(format!(
                "Unexpected broker id, expected {}, but received {name}",
                self.broker_id()
            )));
        }
        Ok(BrokerEntity::Broker(id))
    }

    /// Changes a topic's config overrides. With `validate_only` nothing is stored.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        change: &ConfigChange,
        validate_only: bool,
    ) -> Result<(), ConfigUpdateError> {
        if name.is_empty() {
            return Err(ConfigUpdateError::InvalidRequest(
                "Default topic resources are not allowed.".into(),
            ));
        }
        // Kafka applies the operations before it looks the topic up.
        let topic = self.cluster.topic(name);
        let stored = topic
            .as_ref()
            .map(|t| t.configs.clone())
            .unwrap_or_default();
        let configs = change.applied_to(stored, topic_key_info)?;
        if topic.is_none() {
            return Err(ClusterError::UnknownTopic(name.to_string()).into());
        }
        validate_overrides(&configs)?;
        if validate_only {
            return Ok(());
        }
        self.cluster
            .set_topic_configs(name, configs.clone())
            .await?;
        info!(topic = name, configs = ?configs, "topic configuration changed");
        if let Some(topic) = self.cluster.topic(name) {
            self.sync.apply_topic(&topic);
        }
        Ok(())
    }

    /// Changes the dynamic configs of a broker entity (from [`Broker::broker_entity`]). With
    /// `validate_only` nothing is stored.
    pub async fn alter_broker_configs(
        &self,
        entity: BrokerEntity,
        change: &ConfigChange,
        validate_only: bool,
    ) -> Result<(), ConfigUpdateError> {
        let stored = self.cluster.broker_configs();
        let layer = match entity {
            BrokerEntity::Default => stored.default,
            BrokerEntity::Broker(_) => stored.broker,
        };
        // What Kafka does with stored configs before an incremental change: keys that could
        // not apply are dropped.
        let (base, _) = sanitize(&layer);
        let configs = change.applied_to(base, broker_key_info)?;
        check_update(&self.config.current(), entity, &configs)?;
        if validate_only {
            return Ok(());
        }
        self.cluster
            .set_broker_configs(entity, configs.clone())
            .await?;
        info!(entity = ?entity, keys = ?configs.keys().collect::<Vec<_>>(), "dynamic broker configuration stored");
        self.sync.apply_all();
        Ok(())
    }
}

fn topic_key_info(key: &str) -> Option<KeyInfo> {
    topic_def(key).map(|d| (d.def.kind, d.def.default))
}

fn broker_key_info(key: &str) -> Option<KeyInfo> {
    broker_def(key).map(|d| (d.kind, d.default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_ignores_the_stored_set_and_incremental_builds_on_it() {
        let stored = BTreeMap::from([("retention.ms".to_string(), "1".to_string())]);
        let replace = ConfigChange::Replace(BTreeMap::new());
        assert!(replace
            .applied_to(stored.clone(), topic_key_info)
            .unwrap()
            .is_empty());
        let incremental = ConfigChange::Incremental(vec![(
            "cleanup.policy".into(),
            ConfigOp::Append("compact".into()),
        )]);
        let got = incremental.applied_to(stored, topic_key_info).unwrap();
        assert_eq!(got["retention.ms"], "1");
        assert_eq!(got["cleanup.policy"], "delete,compact");
        let bad =
            ConfigChange::Incremental(vec![("retention.ms".into(), ConfigOp::Append("5".into()))]);
        assert!(matches!(
            bad.applied_to(BTreeMap::new(), topic_key_info),
            Err(ConfigUpdateError::InvalidConfig(_))
        ));
    }
}
