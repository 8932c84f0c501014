//! `odradek add-scram`: adds the first SCRAM users before a broker runs (a broker that
//! requires SASL/SCRAM cannot be reached to add them through AlterUserScramCredentials).
//! Arguments are written as for Kafka's `kafka-storage format --add-scram`:
//! `SCRAM-SHA-256=[name=alice,password=alice-secret]`, or with `iterations=`, a base64
//! `salt=` and a base64 `saltedpassword=` (which needs `salt=`); values may be quoted.
//! Standalone, the credentials go into the data directory's metadata (refused while a broker
//! holds the directory's lock); in cluster mode into ZooKeeper, as AlterUserScramCredentials
//! writes them, without registering a broker.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use crate::auth::scram::{
    random_bytes, ScramCredential, ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS,
};
use crate::broker::DirLock;
use crate::config::{BrokerConfig, ClientEntity, EntityName};

/// Kafka's default iteration count for `--add-scram`.
const DEFAULT_ITERATIONS: u32 = 4096;

/// One parsed `--add-scram` argument.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramUser {
    pub mechanism: ScramMechanism,
    pub name: String,
    pub iterations: u32,
    pub salt: Option<Vec<u8>>,
    pub secret: Secret,
}

/// What the credential is derived from.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Password(String),
    SaltedPassword(Vec<u8>),
}

impl std::fmt::Debug for ScramUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Passwords stay out of logs and error messages.
        f.debug_struct("ScramUser")
            .field("mechanism", &self.mechanism)
            .field("name", &self.name)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramUser {
    /// Parses `MECHANISM=[key=value,...]` as Kafka's `ScramParser` does.
    pub fn parse(argument: &str) -> anyhow::Result<ScramUser> {
        let argument = argument.trim();
        let (mechanism, config) = argument
            .split_once('=')
            .context("expected MECHANISM=[name=...,password=...]: no equals sign")?;
        let mechanism = ScramMechanism::from_name(mechanism)
            .with_context(|| format!("the add-scram mechanism {mechanism} is not supported"))?;
        let inner = config
            .strip_prefix('[')
            .context("expected the configuration to start with [")?
            .strip_suffix(']')
            .context("expected the configuration to end with ]")?;
        let mut components = BTreeMap::new();
        for component in inner.split(',') {
            let (key, value) = component
                .split_once('=')
                .with_context(|| format!("no equals sign in SCRAM component {component:?}"))?;
            let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(unquoted) => unquoted,
                None => value,
            };
            components.insert(key.to_string(), value.to_string());
        }
        let name = components
            .remove("name")
            .context("you must supply 'name' to add-scram")?;
        if name.is_empty() {
            bail!("'name' must not be empty");
        }
        let salt = match components.remove("salt") {
            None => None,
            Some(s) => Some(
                BASE64
                    .decode(&s)
                    .with_context(|| format!("failed to decode the given salt {s:?}"))?,
            ),
        };
        let iterations = match components.remove("iterations") {
            None => DEFAULT_ITERATIONS,
            Some(i) => i
                .parse::<u32>()
                .with_context(|| format!("failed to parse the iteration count {i:?}"))?,
        };
        if iterations < MIN_ITERATIONS {
            bail!("the 'iterations' value must be >= {MIN_ITERATIONS} for add-scram using {mechanism}");
        }
        if iterations > MAX_ITERATIONS {
            bail!("the 'iterations' value must be <= {MAX_ITERATIONS} for add-scram using {mechanism}");
        }
        let secret = match (
            components.remove("password"),
            components.remove("saltedpassword"),
        ) {
            (Some(password), _) => Secret::Password(password),
            (None, None) => {
                bail!("you must supply one of 'password' or 'saltedpassword' to add-scram")
            }
            (None, Some(_)) if salt.is_none() => {
                bail!("you must supply 'salt' with 'saltedpassword' to add-scram")
            }
            (None, Some(salted)) => Secret::SaltedPassword(
                BASE64
                    .decode(&salted)
                    .context("failed to decode the given saltedpassword")?,
            ),
        };
        if !components.is_empty() {
            let keys: Vec<&str> = components.keys().map(String::as_str).collect();
            bail!("unknown SCRAM configurations: {}", keys.join(", "));
        }
        Ok(ScramUser {
            mechanism,
            name,
            iterations,
            salt,
            secret,
        })
    }

    /// The credential as the broker stores it (a random salt unless one was given).
    pub fn credential(&self) -> anyhow::Result<ScramCredential> {
        let salt = match &self.salt {
            Some(s) => s.clone(),
            None => random_bytes(32).map_err(|_| anyhow::anyhow!("no secure random source"))?,
        };
        let salted = match &self.secret {
            Secret::Password(p) => {
                self.mechanism
                    .salted_password(p.as_bytes(), &salt, self.iterations)
            }
            Secret::SaltedPassword(s) => s.clone(),
        };
        Ok(ScramCredential::from_salted_password(
            self.mechanism,
            salt,
            &salted,
            self.iterations,
        ))
    }
}

/// Stores the users' credentials where the broker `config` describes will read them.
pub async fn add_scram_users(config: &BrokerConfig, users: &[ScramUser]) -> anyhow::Result<()> {
    let mut changes: BTreeMap<ClientEntity, BTreeMap<String, Option<String>>> = BTreeMap::new();
    for user in users {
        let keys = changes
            .entry(ClientEntity::User(EntityName::Named(user.name.clone())))
            .or_default();
        if keys.contains_key(user.mechanism.name()) {
            bail!(
                "user {} is given twice for {}",
                user.name,
                user.mechanism.name()
            );
        }
        keys.insert(
            user.mechanism.name().to_string(),
            Some(user.credential()?.to_stored()),
        );
    }
    let changes: Vec<_> = changes.into_iter().collect();
    let dir = config
        .log_dirs
        .first()
        .context("no log directory configured")?;
    // Standalone, no broker may hold the directory meanwhile; in cluster mode the backend
    // connects without registering a broker.
    // In cluster mode the data directory is only checked to belong to the cluster, as the
    // broker checks it at start (created if missing, as the broker would).
    let _lock = match config.zookeeper_connect {
        // The lock a running broker holds: refused while one runs, and none starts meanwhile.
        None => Some(
            DirLock::acquire(dir)
                .context("stop the broker first, or add users through AlterUserScramCredentials")?,
        ),
        Some(_) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            None
        }
    };
    let metadata = crate::cluster::open(config).await?;
    let result = metadata.alter_client_entities(changes).await;
    metadata.close().await;
    result?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_storage_syntax() {
        let u = ScramUser::parse("SCRAM-SHA-256=[name=alice,password=alice-secret]").unwrap();
        assert_eq!(u.mechanism, ScramMechanism::Sha256);
        assert_eq!(u.name, "alice");
        assert_eq!(u.iterations, 4096);
        assert!(u.secret == Secret::Password("alice-secret".into()));
        let u = ScramUser::parse(
            "SCRAM-SHA-512=[name=bob,iterations=8192,salt=\"MWx6NHBkbnc0ZndxN25vdGN4bTB5eTFrN3E=\",\
             saltedpassword=\"mT0yyUUxnlJaC99HXgRTSYlbuqa4FSGtJCJfTMvjYCE=\"]",
        )
        .unwrap();
        assert_eq!(u.iterations, 8192);
        assert_eq!(u.salt.as_deref(), Some(&b"1lz4pdnw4fwq7notcxm0yy1k7q"[..]));
        assert!(matches!(u.secret, Secret::SaltedPassword(ref s) if s.len() == 32));
        let cred = u.credential().unwrap();
        assert_eq!(cred.iterations, 8192);
        assert_eq!(cred.salt, b"1lz4pdnw4fwq7notcxm0yy1k7q");
    }

    #[test]
    fn password_credential_verifies() {
        let u = ScramUser::parse("SCRAM-SHA-256=[name=a,password=pw,salt=\"c2FsdA==\"]").unwrap();
        let cred = u.credential().unwrap();
        let salted = ScramMechanism::Sha256.salted_password(b"pw", b"salt", 4096);
        assert_eq!(
            cred,
            ScramCredential::from_salted_password(
                ScramMechanism::Sha256,
                b"salt".to_vec(),
                &salted,
                4096
            )
        );
    }

    #[test]
    fn refuses_what_kafka_refuses() {
        for bad in [
            "SCRAM-SHA-1=[name=a,password=b]",
            "SCRAM-SHA-256",
            "SCRAM-SHA-256=name=a,password=b",
            "SCRAM-SHA-256=[password=b]",
            "SCRAM-SHA-256=[name=a]",
            "SCRAM-SHA-256=[name=a,saltedpassword=AAAA]",
            "SCRAM-SHA-256=[name=a,password=b,iterations=100]",
            "SCRAM-SHA-256=[name=a,password=b,iterations=20000]",
            "SCRAM-SHA-256=[name=a,password=b,colour=red]",
            "SCRAM-SHA-256=[name=a,password=b,salt=!!]",
            "SCRAM-SHA-256=[name=,password=b]",
        ] {
            assert!(ScramUser::parse(bad).is_err(), "{bad}");
        }
    }
}
