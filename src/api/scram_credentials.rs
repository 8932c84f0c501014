//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554): which SCRAM
//! mechanisms each user has credentials for (with their iteration counts), and adding,
//! replacing or deleting credentials from a client-side salted password. Credentials are
//! stored as Kafka stores them, under the mechanism name of the user entity's configs. The
//! rules are Kafka's ZooKeeper-mode broker's (`ZkAdminManager`): per user an error code;
//! the alteration is answered by the controller only (else NOT_CONTROLLER).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use tracing::{debug, info};

use super::authorized::authorize_cluster;
use super::error_codes::KafkaCode;
use super::{str_bytes, RequestContext};
use crate::auth::acl::Operation;
use crate::auth::scram::{ScramCredential, ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS};
use crate::broker::Broker;
use crate::config::{ClientEntity, ClientEntityConfigs, EntityName};

const EMPTY_USER: &str = "Username must not be empty";

// -- DescribeUserScramCredentials --------------------------------------------------------------

pub async fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if !authorize_cluster(broker, ctx, Operation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let stored = broker.cluster.client_entities();
    let names: Vec<String> = req
        .users
        .unwrap_or_default()
        .iter()
        .map(|u| u.name.to_string())
        .collect();
    debug!(users = names.len(), "describe user SCRAM credentials");
    DescribeUserScramCredentialsResponse::default().with_results(describe_users(&stored, &names))
}

/// The answer for `names` (every user with a credential, by name, when empty).
fn describe_users(
    stored: &ClientEntityConfigs,
    names: &[String],
) -> Vec<DescribeUserScramCredentialsResult> {
    if names.is_empty() {
        return stored
            .entities
            .iter()
            .filter_map(|(entity, configs)| match entity {
                ClientEntity::User(EntityName::Named(user)) => {
                    has_credential(configs).then(|| describe_user(user, configs))
                }
                _ => None,
            })
            .collect();
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for n in names {
        *counts.entry(n.as_str()).or_default() += 1;
    }
    let mut seen = BTreeSet::new();
    let mut results = Vec::new();
    for name in names {
        if !seen.insert(name.as_str()) {
            continue;
        }
        let result = if name.is_empty() {
            user_error(name, ResponseError::ResourceNotFound, EMPTY_USER.into())
        } else if counts[name.as_str()] > 1 {
            user_error(
                name,
                ResponseError::DuplicateResource,
                format!(
                    "Cannot describe SCRAM credentials for the same user twice in a single \
                     request: {name}"
                ),
            )
        } else {
            match stored.get(&user_entity(name)).filter(|c| has_credential(c)) {
                Some(configs) => describe_user(name, configs),
                None => user_error(
                    name,
                    ResponseError::ResourceNotFound,
                    format!("Attempt to describe a user credential that does not exist: {name}"),
                ),
            }
        };
        results.push(result);
    }
    results
}

fn user_entity(name: &str) -> ClientEntity {
    ClientEntity::User(EntityName::Named(name.to_string()))
}

fn has_credential(configs: &BTreeMap<String, String>) -> bool {
    ScramMechanism::ALL
        .iter()
        .any(|m| configs.contains_key(m.name()))
}

fn describe_user(
    user: &str,
    configs: &BTreeMap<String, String>,
) -> DescribeUserScramCredentialsResult {
    let mut infos = Vec::new();
    for m in ScramMechanism::ALL {
        let Some(stored) = configs.get(m.name()) else {
            continue;
        };
        match ScramCredential::parse(stored) {
            Ok(c) => infos.push(
                CredentialInfo::default()
                    .with_mechanism(m.code())
                    .with_iterations(c.iterations.min(i32::MAX as u32) as i32),
            ),
            Err(e) => {
                return user_error(user, ResponseError::UnknownServerError, e.to_string());
            }
        }
    }
    DescribeUserScramCredentialsResult::default()
        .with_user(str_bytes(user))
        .with_credential_infos(infos)
}

fn user_error(
    user: &str,
    error: ResponseError,
    message: String,
) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult::default()
        .with_user(str_bytes(user))
        .with_error_code(error.code())
        .with_error_message(Some(str_bytes(message)))
}

// -- AlterUserScramCredentials -----------------------------------------------------------------

/// One requested change, decoded.
struct Change {
    user: String,
    mechanism: Option<ScramMechanism>,
    /// `None` for a deletion.
    upsert: Option<Upsert>,
}

struct Upsert {
    iterations: i32,
    salt: Vec<u8>,
    salted_password: Vec<u8>,
}

/// A user's outcome: an error (`None`: altered) and message.
type Outcome = (String, Option<ResponseError>, Option<String>);

pub async fn alter(
    broker: &Broker,
    ctx: &RequestContext,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let changes = decode_changes(&req);
    let users: BTreeSet<String> = changes.iter().map(|c| c.user.clone()).collect();
    let refuse_all = |error: ResponseError| {
        users
            .iter()
            .map(|u| (u.clone(), Some(error), None))
            .collect::<Vec<Outcome>>()
    };
    let outcomes = if broker.cluster.controller_id() != broker.broker_id() {
        refuse_all(ResponseError::NotController)
    } else if !authorize_cluster(broker, ctx, Operation::Alter) {
        refuse_all(ResponseError::ClusterAuthorizationFailed)
    } else {
        alter_users(broker, changes).await
    };
    let results = outcomes
        .into_iter()
        .map(|(user, error, message)| {
            AlterUserScramCredentialsResult::default()
                .with_user(str_bytes(user))
                .with_error_code(error.map_or(0, |e| e.code()))
                .with_error_message(message.map(str_bytes))
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

fn decode_changes(req: &AlterUserScramCredentialsRequest) -> Vec<Change> {
    let deletions = req.deletions.iter().map(|d| Change {
        user: d.name.to_string(),
        mechanism: ScramMechanism::from_code(d.mechanism),
        upsert: None,
    });
    let upsertions = req.upsertions.iter().map(|u| Change {
        user: u.name.to_string(),
        mechanism: ScramMechanism::from_code(u.mechanism),
        upsert: Some(Upsert {
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        }),
    });
    deletions.chain(upsertions).collect()
}

/// Why a change is refused on its own (empty user, unknown mechanism, iterations out of
/// Kafka's bounds).
fn illegal(change: &Change) -> Option<(ResponseError, &'static str)> {
    if change.user.is_empty() {
        return Some((ResponseError::UnacceptableCredential, EMPTY_USER));
    }
    if change.mechanism.is_none() {
        return Some((
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism",
        ));
    }
    match &change.upsert {
        Some(u) if u.iterations < MIN_ITERATIONS as i32 => {
            Some((ResponseError::UnacceptableCredential, "Too few iterations"))
        }
        Some(u) if u.iterations > MAX_ITERATIONS as i32 => {
            Some((ResponseError::UnacceptableCredential, "Too many iterations"))
        }
        _ => None,
    }
}

/// Checks every change as Kafka does, then writes each remaining user's changes.
async fn alter_users(broker: &Broker, changes: Vec<Change>) -> Vec<Outcome> {
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    for change in &changes {
        if let Some((error, message)) = illegal(change) {
            outcomes.insert(
                change.user.clone(),
                (change.user.clone(), Some(error), Some(message.to_string())),
            );
        }
    }
    let mut pairs: HashMap<(&str, Option<ScramMechanism>), usize> = HashMap::new();
    for c in changes.iter().filter(|c| !outcomes.contains_key(&c.user)) {
        *pairs.entry((c.user.as_str(), c.mechanism)).or_default() += 1;
    }
    let duplicated: BTreeSet<String> = pairs
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|((u, _), _)| u.to_string())
        .collect();
    for user in duplicated {
        let message = "A user credential cannot be altered twice in the same request";
        outcomes.insert(
            user.clone(),
            (
                user,
                Some(ResponseError::DuplicateResource),
                Some(message.into()),
            ),
        );
    }
    let stored = broker.cluster.client_entities();
    let mut per_user: BTreeMap<String, BTreeMap<String, Option<String>>> = BTreeMap::new();
    let candidates: Vec<&Change> = changes
        .iter()
        .filter(|c| !outcomes.contains_key(&c.user))
        .collect();
    for c in candidates {
        let Some(mechanism) = c.mechanism else {
            continue;
        };
        let value = match &c.upsert {
            None => {
                if stored
                    .value(&user_entity(&c.user), mechanism.name())
                    .is_none()
                {
                    let message = "Attempt to delete a user credential that does not exist";
                    outcomes.insert(
                        c.user.clone(),
                        (
                            c.user.clone(),
                            Some(ResponseError::ResourceNotFound),
                            Some(message.into()),
                        ),
                    );
                    continue;
                }
                None
            }
            Some(u) => Some(
                ScramCredential::from_salted_password(
                    mechanism,
                    u.salt.clone(),
                    &u.salted_password,
                    u.iterations as u32,
                )
                .to_stored(),
            ),
        };
        per_user
            .entry(c.user.clone())
            .or_default()
            .insert(mechanism.name().to_string(), value);
    }
    for (user, keys) in per_user {
        if outcomes.contains_key(&user) {
            continue;
        }
        let outcome = match broker
            .cluster
            .alter_client_entities(vec![(user_entity(&user), keys)])
            .await
        {
            Ok(()) => {
                info!(user = %user, "SCRAM credentials altered");
                (user.clone(), None, None)
            }
            Err(e) => (user.clone(), Some(e.kafka_error()), Some(e.to_string())),
        };
        outcomes.insert(user, outcome);
    }
    outcomes.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> ClientEntityConfigs {
        let cred = ScramCredential::from_password(ScramMechanism::Sha512, "pw", 8192).unwrap();
        let mut all = ClientEntityConfigs::default();
        all.entities.insert(
            user_entity("alice"),
            BTreeMap::from([("SCRAM-SHA-512".to_string(), cred.to_stored())]),
        );
        all.entities.insert(
            user_entity("bob"),
            BTreeMap::from([("producer_byte_rate".to_string(), "10".to_string())]),
        );
        all
    }

    #[test]
    fn describe_all_lists_users_with_credentials() {
        let results = describe_users(&stored(), &[]);
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].user.as_str(), "alice");
        assert_eq!(results[0].credential_infos[0].mechanism, 2);
        assert_eq!(results[0].credential_infos[0].iterations, 8192);
    }

    #[test]
    fn describe_named_users_reports_each() {
        let names: Vec<String> = ["alice", "bob", "", "x", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let results = describe_users(&stored(), &names);
        let codes: Vec<(&str, i16)> = results
            .iter()
            .map(|r| (r.user.as_str(), r.error_code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("alice", 0),
                ("bob", ResponseError::ResourceNotFound.code()),
                ("", ResponseError::ResourceNotFound.code()),
                ("x", ResponseError::DuplicateResource.code()),
            ]
        );
    }

    #[test]
    fn illegal_changes_are_named() {
        let change = |user: &str, mechanism, iterations| Change {
            user: user.into(),
            mechanism,
            upsert: Some(Upsert {
                iterations,
                salt: vec![1],
                salted_password: vec![2],
            }),
        };
        let sha = Some(ScramMechanism::Sha256);
        assert_eq!(illegal(&change("a", sha, 4096)), None);
        assert_eq!(
            illegal(&change("", sha, 4096)).unwrap().0,
            ResponseError::UnacceptableCredential
        );
        assert_eq!(
            illegal(&change("a", None, 4096)).unwrap().0,
            ResponseError::UnsupportedSaslMechanism
        );
        assert_eq!(
            illegal(&change("a", sha, 4095)).unwrap().1,
            "Too few iterations"
        );
        assert_eq!(
            illegal(&change("a", sha, 16385)).unwrap().1,
            "Too many iterations"
        );
    }
}
