//! User, client-id and IP config entities in Kafka's ZooKeeper layout: where each
//! [`ClientEntity`] lives (`/config/users/<user>`, `/config/users/<user>/clients/<client>`,
//! `/config/clients/<client>`, `/config/ips/<ip>`, with `<default>` for the default entity),
//! the `entity_path` its change notifications carry, and how names are sanitized for znode
//! names (Kafka's `Sanitizer`: URL-encoding, with `*` and space percent-encoded).

use std::collections::BTreeMap;

use tracing::warn;

use super::client::{CreateMode, Op, ZkError};
use super::paths::{self, CONFIG, DEFAULT_ENTITY};
use super::store::{StoreError, StoreResult, ZkStore};
use super::znodes::{ConfigChangeNotification, EntityConfig};
use crate::config::{ClientEntity, ClientEntityConfigs, EntityName};

/// How many times a change of entity configs is retried after losing a race.
const MAX_ATTEMPTS: usize = 10;

/// Entity type of user configs (and of user/client-id configs, nested under a user).
pub const USERS: &str = "users";
/// Entity type of client-id configs.
pub const CLIENTS: &str = "clients";
/// Entity type of IP configs.
pub const IPS: &str = "ips";

/// A name as Kafka writes it into a znode name: UTF-8 bytes, letters, digits, `.`, `-` and `_`
/// kept, every other byte `%XX` (upper-case hex), as Java's `URLEncoder` followed by Kafka's
/// replacement of `*` and `+` (space).
pub fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`sanitize`] as Java's `URLDecoder` does (`+` is a space); `None` for a malformed
/// escape or bytes that are not UTF-8.
pub fn desanitize(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = name.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn sanitized(name: &EntityName) -> String {
    match name {
        EntityName::Default => DEFAULT_ENTITY.to_string(),
        EntityName::Named(n) => sanitize(n),
    }
}

/// Reads a znode name back into an entity name (`<default>` is the default).
pub fn entity_name(sanitized: &str) -> Option<EntityName> {
    if sanitized == DEFAULT_ENTITY {
        Some(EntityName::Default)
    } else {
        desanitize(sanitized).map(EntityName::Named)
    }
}

/// The notification `entity_path` of an entity: `users/<u>`, `users/<u>/clients/<c>`,
/// `clients/<c>` or `ips/<ip>` (sanitized names, as Kafka's `AdminZkClient` writes them).
pub fn entity_path(entity: &ClientEntity) -> String {
    match entity {
        ClientEntity::User(u) => format!("{USERS}/{}", sanitized(u)),
        ClientEntity::UserClientId(u, c) => {
            format!("{USERS}/{}/{CLIENTS}/{}", sanitized(u), sanitized(c))
        }
        ClientEntity::ClientId(c) => format!("{CLIENTS}/{}", sanitized(c)),
        ClientEntity::Ip(ip) => format!("{IPS}/{}", sanitized(ip)),
    }
}

/// The znode holding an entity's configs.
pub fn config_path(entity: &ClientEntity) -> String {
    format!("{CONFIG}/{}", entity_path(entity))
}

/// The entity a notification's `entity_path` (or a path below `/config`) names, if it is a
/// user, client-id or IP entity.
pub fn parse_entity_path(path: &str) -> Option<ClientEntity> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        [USERS, u] => Some(ClientEntity::User(entity_name(u)?)),
        [USERS, u, CLIENTS, c] => {
            Some(ClientEntity::UserClientId(entity_name(u)?, entity_name(c)?))
        }
        [CLIENTS, c] => Some(ClientEntity::ClientId(entity_name(c)?)),
        [IPS, ip] => Some(ClientEntity::Ip(entity_name(ip)?)),
        _ => None,
    }
}

/// Changes of entity configs: per entity, each key set (`Some`) or removed (`None`).
pub type EntityChanges = Vec<(ClientEntity, BTreeMap<String, Option<String>>)>;

impl ZkStore {
    /// The configs of one entity (empty when its znode is missing or holds none).
    pub async fn client_entity_config(
        &self,
        entity: &ClientEntity,
    ) -> StoreResult<BTreeMap<String, String>> {
        Ok(self
            .client_entity_znode(&config_path(entity))
            .await?
            .map(|(config, _)| config)
            .unwrap_or_default())
    }

    async fn client_entity_znode(
        &self,
        path: &str,
    ) -> StoreResult<Option<(BTreeMap<String, String>, i32)>> {
        match self.client().get_opt(path).await? {
            Some((data, stat)) => Ok(Some((EntityConfig::decode(&data)?.config, stat.version))),
            None => Ok(None),
        }
    }

    /// Every user, user/client-id, client-id and IP entity with configs, as Kafka's
    /// `fetchAllEntityConfigs` / `fetchAllChildEntityConfigs` read them. Unreadable znodes
    /// are skipped with a warning.
    pub async fn client_entities(&self) -> StoreResult<ClientEntityConfigs> {
        let mut all = ClientEntityConfigs::default();
        for kind in [USERS, CLIENTS, IPS] {
            for name in self.children_or_empty(&format!("{CONFIG}/{kind}")).await? {
                let path = format!("{kind}/{name}");
                self.load_entity(&path, &mut all).await?;
                if kind == USERS {
                    let clients = format!("{CONFIG}/{path}/{CLIENTS}");
                    for client in self.children_or_empty(&clients).await? {
                        self.load_entity(&format!("{path}/{CLIENTS}/{client}"), &mut all)
                            .await?;
                    }
                }
            }
        }
        Ok(all)
    }

    async fn children_or_empty(&self, path: &str) -> StoreResult<Vec<String>> {
        match self.client().children(path).await {
            Ok(names) => Ok(names),
            Err(ZkError::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    async fn load_entity(&self, path: &str, into: &mut ClientEntityConfigs) -> StoreResult<()> {
        let Some(entity) = parse_entity_path(path) else {
            warn!(
                entity = path,
                "config znode with an unreadable entity name ignored"
            );
            return Ok(());
        };
        match self.client_entity_znode(&format!("{CONFIG}/{path}")).await {
            Ok(Some((config, _))) if !config.is_empty() => {
                into.entities.insert(entity, config);
            }
            Ok(_) => {}
            Err(StoreError::Zk(ZkError::Corrupt(e))) => {
                warn!(entity = path, error = %e, "unreadable entity config ignored")
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Applies `changes` to the stored configs in one transaction, each entity's znode
    /// written as Kafka's `AdminZkClient.changeConfigs` does (`{"version":1,"config":{..}}`,
    /// an empty config when none is left) and followed by a `config_change_<seq>` notification
    /// naming it. Returns every changed entity's new configs.
    pub async fn alter_client_entities(
        &self,
        changes: &EntityChanges,
    ) -> StoreResult<Vec<(ClientEntity, BTreeMap<String, String>)>> {
        for (entity, _) in changes {
            if let ClientEntity::UserClientId(..) = entity {
                // The user's znode is the parent; Kafka creates it with no data.
                self.client()
                    .ensure_path(&format!("{CONFIG}/{USERS}"))
                    .await?;
                self.client()
                    .ensure_path(paths::parent(&config_path(entity)))
                    .await?;
            }
        }
        for _ in 0..MAX_ATTEMPTS {
            let mut ops = Vec::new();
            let mut written = Vec::new();
            let mut current: BTreeMap<ClientEntity, (BTreeMap<String, String>, Option<i32>)> =
                BTreeMap::new();
            for (entity, keys) in changes {
                if !current.contains_key(entity) {
                    let read = self.client_entity_znode(&config_path(entity)).await?;
                    let (config, version) = match read {
                        Some((c, v)) => (c, Some(v)),
                        None => (BTreeMap::new(), None),
                    };
                    current.insert(entity.clone(), (config, version));
                }
                if let Some((config, _)) = current.get_mut(entity) {
                    for (key, value) in keys {
                        match value {
                            Some(v) => config.insert(key.clone(), v.clone()),
                            None => config.remove(key),
                        };
                    }
                }
            }
            for (entity, (config, version)) in &current {
                let path = config_path(entity);
                let data = EntityConfig::new(config.clone()).encode();
                ops.push(match version {
                    Some(version) => Op::SetData {
                        path,
                        data,
                        version: *version,
                    },
                    None => Op::Create {
                        path,
                        data,
                        mode: CreateMode::Persistent,
                    },
                });
                ops.push(Op::Create {
                    path: paths::CONFIG_CHANGE_SEQUENCE.to_string(),
                    data: ConfigChangeNotification::new(entity_path(entity)).encode(),
                    mode: CreateMode::PersistentSequential,
                });
                written.push((entity.clone(), config.clone()));
            }
            match self.client().multi(&ops).await {
                Ok(_) => return Ok(written),
                Err(ZkError::BadVersion | ZkError::NodeExists | ZkError::NoNode) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Contention(format!("{CONFIG}/{USERS}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(n: &str) -> EntityName {
        EntityName::Named(n.into())
    }

    #[test]
    fn sanitizes_as_kafka() {
        assert_eq!(sanitize("alice"), "alice");
        assert_eq!(sanitize("a.b-c_d"), "a.b-c_d");
        assert_eq!(sanitize("user 1"), "user%201");
        assert_eq!(sanitize("a*b"), "a%2Ab");
        assert_eq!(sanitize("CN=x,O=y"), "CN%3Dx%2CO%3Dy");
        assert_eq!(sanitize("a~b/c"), "a%7Eb%2Fc");
        assert_eq!(sanitize("é"), "%C3%A9");
        assert_eq!(sanitize("::1"), "%3A%3A1");
        assert_eq!(sanitize("<default>"), "%3Cdefault%3E");
    }

    #[test]
    fn desanitizes_as_url_decoder() {
        for name in [
            "alice",
            "user 1",
            "a*b",
            "CN=x,O=y",
            "é",
            "a~b/c",
            "<default>",
        ] {
            assert_eq!(desanitize(&sanitize(name)).as_deref(), Some(name));
        }
        assert_eq!(desanitize("a+b").as_deref(), Some("a b"));
        assert_eq!(desanitize("a%2"), None);
        assert_eq!(desanitize("%ZZ"), None);
        assert_eq!(desanitize("%FF"), None);
    }

    #[test]
    fn paths_in_kafka_layout() {
        let cases = [
            (ClientEntity::User(named("alice")), "users/alice"),
            (ClientEntity::User(EntityName::Default), "users/<default>"),
            (ClientEntity::ClientId(named("c 1")), "clients/c%201"),
            (
                ClientEntity::ClientId(EntityName::Default),
                "clients/<default>",
            ),
            (
                ClientEntity::UserClientId(named("alice"), named("c1")),
                "users/alice/clients/c1",
            ),
            (
                ClientEntity::UserClientId(EntityName::Default, named("c1")),
                "users/<default>/clients/c1",
            ),
            (
                ClientEntity::UserClientId(named("alice"), EntityName::Default),
                "users/alice/clients/<default>",
            ),
            (ClientEntity::Ip(named("10.0.0.1")), "ips/10.0.0.1"),
            (ClientEntity::Ip(EntityName::Default), "ips/<default>"),
        ];
        for (entity, path) in cases {
            assert_eq!(entity_path(&entity), path);
            assert_eq!(config_path(&entity), format!("/config/{path}"));
            assert_eq!(parse_entity_path(path), Some(entity));
        }
        assert_eq!(parse_entity_path("topics/t"), None);
        assert_eq!(parse_entity_path("users/a/topics/b"), None);
        assert_eq!(parse_entity_path("users/%Z"), None);
    }
}
