//! Kafka's user and client config entities: the things `/config/users`, `/config/clients` and
//! `/config/ips` hold configs for (SCRAM credentials of a user, byte-rate quotas of a user, a
//! client id or both). Where they are stored is the cluster layer's business; this is the model
//! every layer shares.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One part of an entity: a named user / client id / IP, or the default for all of them
/// (`<default>` in ZooKeeper paths, a null name in KIP-546 requests).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityName {
    Default,
    Named(String),
}

/// A config entity of Kafka's client-quota model (KIP-546): a user, a client id, a user and a
/// client id together, or an IP address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ClientEntity {
    User(EntityName),
    ClientId(EntityName),
    UserClientId(EntityName, EntityName),
    Ip(EntityName),
}

/// SCRAM credential keys a user entity may hold, as Kafka stores them: the mechanism name,
/// valued `salt=<base64>,stored_key=<base64>,server_key=<base64>,iterations=<n>`.
pub const SCRAM_MECHANISMS: [&str; 2] = ["SCRAM-SHA-256", "SCRAM-SHA-512"];

/// Quota keys (Kafka's `QuotaConfigs`): bytes per second produced / fetched by the entity.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";

/// Every stored config of every user and client entity, as stored (values are strings, as in
/// ZooKeeper's `{"version":1,"config":{...}}`). Entities without configs are absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientEntityConfigs {
    pub entities: BTreeMap<ClientEntity, BTreeMap<String, String>>,
}

impl ClientEntityConfigs {
    /// The configs stored for `entity`, if any.
    pub fn get(&self, entity: &ClientEntity) -> Option<&BTreeMap<String, String>> {
        self.entities.get(entity)
    }

    /// The value of `key` stored for `entity`.
    pub fn value(&self, entity: &ClientEntity, key: &str) -> Option<&str> {
        self.get(entity)
            .and_then(|c| c.get(key))
            .map(String::as_str)
    }

    /// Applies changes: per entity, each key set (`Some`) or removed (`None`); an entity left
    /// without configs is dropped.
    pub fn apply(&mut self, changes: Vec<(ClientEntity, BTreeMap<String, Option<String>>)>) {
        for (entity, keys) in changes {
            let configs = self.entities.entry(entity.clone()).or_default();
            for (key, value) in keys {
                match value {
                    Some(v) => configs.insert(key, v),
                    None => configs.remove(&key),
                };
            }
            if configs.is_empty() {
                self.entities.remove(&entity);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_sets_removes_and_drops_empty_entities() {
        let alice = ClientEntity::User(EntityName::Named("alice".into()));
        let default_client = ClientEntity::ClientId(EntityName::Default);
        let mut configs = ClientEntityConfigs::default();
        configs.apply(vec![
            (
                alice.clone(),
                BTreeMap::from([
                    (PRODUCER_BYTE_RATE.to_string(), Some("1024".to_string())),
                    (CONSUMER_BYTE_RATE.to_string(), Some("2048".to_string())),
                ]),
            ),
            (
                default_client.clone(),
                BTreeMap::from([(CONSUMER_BYTE_RATE.to_string(), Some("10".to_string()))]),
            ),
        ]);
        assert_eq!(configs.value(&alice, PRODUCER_BYTE_RATE), Some("1024"));
        configs.apply(vec![
            (
                alice.clone(),
                BTreeMap::from([(PRODUCER_BYTE_RATE.to_string(), None)]),
            ),
            (
                default_client.clone(),
                BTreeMap::from([(CONSUMER_BYTE_RATE.to_string(), None)]),
            ),
        ]);
        assert_eq!(configs.value(&alice, PRODUCER_BYTE_RATE), None);
        assert_eq!(configs.value(&alice, CONSUMER_BYTE_RATE), Some("2048"));
        assert_eq!(configs.get(&default_client), None, "empty entity dropped");
    }
}
