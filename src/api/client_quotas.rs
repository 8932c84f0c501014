//! DescribeClientQuotas and AlterClientQuotas (KIP-546): the quotas of user, client-id,
//! user/client-id and IP entities, stored as entity configs by the cluster backend. The rules
//! are Kafka's ZooKeeper-mode broker's (`ZkAdminManager`): filters match an entity type
//! exactly, its default or any name, `strict` leaves out entities with unnamed types; keys
//! are checked per entity type (`producer_byte_rate`, `consumer_byte_rate`,
//! `request_percentage`, `controller_mutation_rate` for users and client ids,
//! `connection_creation_rate` for IPs) and each entity gets its own error code.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    alter_client_quotas_response, describe_client_quotas_response, AlterClientQuotasRequest,
    AlterClientQuotasResponse, DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;
use tracing::debug;

use super::authorized::authorize_cluster;
use super::error_codes::KafkaCode;
use super::{str_bytes, RequestContext};
use crate::auth::acl::Operation;
use crate::broker::Broker;
use crate::config::{ClientEntity, ClientEntityConfigs, EntityName};

/// Entity types of KIP-546 (`ClientQuotaEntity`).
const USER: &str = "user";
const CLIENT_ID: &str = "client-id";
const IP: &str = "ip";

/// Filter match types of DescribeClientQuotas.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// How a quota key's value is stored (Kafka's `ConfigDef.Type` of the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QuotaType {
    Long,
    Int,
    Double,
}

/// The quota keys of user and client-id entities (Kafka's `QuotaConfigs`).
const USER_CLIENT_KEYS: [(&str, QuotaType); 4] = [
    ("producer_byte_rate", QuotaType::Long),
    ("consumer_byte_rate", QuotaType::Long),
    ("request_percentage", QuotaType::Double),
    ("controller_mutation_rate", QuotaType::Double),
];
/// The quota key of IP entities.
const IP_KEYS: [(&str, QuotaType); 1] = [("connection_creation_rate", QuotaType::Int)];

/// A request failure answered with a Kafka error code and message.
#[derive(Debug, Clone, PartialEq)]
struct Refusal(ResponseError, String);

fn invalid_request(message: impl Into<String>) -> Refusal {
    Refusal(ResponseError::InvalidRequest, message.into())
}

// -- DescribeClientQuotas ----------------------------------------------------------------------

/// One filter component: `Some(name)` matches exactly that name (or the default), `None` any
/// name.
type Component = Option<EntityName>;

/// A decoded filter: per entity type at most one component.
#[derive(Debug, Default, PartialEq)]
struct Filter {
    user: Option<Component>,
    client: Option<Component>,
    ip: Option<Component>,
    strict: bool,
}

pub async fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    if !authorize_cluster(broker, ctx, Operation::DescribeConfigs) {
        return describe_error(Refusal(
            ResponseError::ClusterAuthorizationFailed,
            "not authorized to describe client quotas".into(),
        ));
    }
    let filter = match decode_filter(&req) {
        Ok(f) => f,
        Err(refusal) => return describe_error(refusal),
    };
    let found = matching(&broker.cluster.client_entities(), &filter);
    debug!(entries = found.len(), "describe client quotas");
    let entries = found
        .into_iter()
        .map(|(entity, values)| {
            describe_client_quotas_response::EntryData::default()
                .with_entity(
                    entity_parts(&entity)
                        .into_iter()
                        .map(|(kind, name)| {
                            describe_client_quotas_response::EntityData::default()
                                .with_entity_type(str_bytes(kind))
                                .with_entity_name(name.map(str_bytes))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .into_iter()
                        .map(|(key, value)| {
                            describe_client_quotas_response::ValueData::default()
                                .with_key(str_bytes(key))
                                .with_value(value)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

fn describe_error(Refusal(error, message): Refusal) -> DescribeClientQuotasResponse {
    DescribeClientQuotasResponse::default()
        .with_error_code(error.code())
        .with_error_message(Some(str_bytes(message)))
        .with_entries(None)
}

fn decode_filter(req: &DescribeClientQuotasRequest) -> Result<Filter, Refusal> {
    let mut filter = Filter {
        strict: req.strict,
        ..Filter::default()
    };
    for c in &req.components {
        let component = match (c.match_type, &c._match) {
            (MATCH_EXACT, Some(name)) => Some(EntityName::Named(name.to_string())),
            (MATCH_EXACT, None) => return Err(invalid_request("exact match without a name")),
            (MATCH_DEFAULT, _) => Some(EntityName::Default),
            (MATCH_SPECIFIED, _) => None,
            (other, _) => return Err(invalid_request(format!("unexpected match type {other}"))),
        };
        let slot = match c.entity_type.as_str() {
            USER => &mut filter.user,
            CLIENT_ID => &mut filter.client,
            IP => &mut filter.ip,
            "" => {
                return Err(invalid_request(
                    "unexpected empty filter component entity type",
                ))
            }
            other => {
                return Err(Refusal(
                    ResponseError::UnsupportedVersion,
                    format!("custom entity type '{other}' not supported"),
                ))
            }
        };
        if slot.is_some() {
            return Err(invalid_request(format!(
                "duplicate {} filter component entity type",
                c.entity_type.as_str()
            )));
        }
        *slot = Some(component);
    }
    if filter.ip.is_some() && (filter.user.is_some() || filter.client.is_some()) {
        return Err(invalid_request(
            "invalid entity filter component combination, IP filter component should not be \
             used with user or clientId filter component",
        ));
    }
    Ok(filter)
}

/// Whether an entity's name of one type (`None`: the entity has no such part) passes the
/// filter's component of that type.
fn matches(component: &Option<Component>, name: Option<&EntityName>, strict: bool) -> bool {
    match component {
        Some(Some(wanted)) => name == Some(wanted),
        Some(None) => name.is_some(),
        None => name.is_none() || !strict,
    }
}

/// The entities the filter selects that have quotas, with their quota values.
fn matching(
    all: &ClientEntityConfigs,
    filter: &Filter,
) -> Vec<(ClientEntity, BTreeMap<String, f64>)> {
    let wants_user_client = filter.ip.is_none();
    let wants_ip = filter.user.is_none() && filter.client.is_none();
    let mut out = Vec::new();
    for (entity, configs) in &all.entities {
        let selected = match entity {
            ClientEntity::Ip(ip) => {
                wants_ip
                    && match &filter.ip {
                        Some(Some(wanted)) => ip == wanted,
                        Some(None) => true,
                        None => !filter.strict,
                    }
            }
            _ => {
                let (user, client) = match entity {
                    ClientEntity::User(u) => (Some(u), None),
                    ClientEntity::ClientId(c) => (None, Some(c)),
                    ClientEntity::UserClientId(u, c) => (Some(u), Some(c)),
                    ClientEntity::Ip(_) => (None, None),
                };
                wants_user_client
                    && matches(&filter.user, user, filter.strict)
                    && matches(&filter.client, client, filter.strict)
            }
        };
        if !selected {
            continue;
        }
        let keys: &[(&str, QuotaType)] = match entity {
            ClientEntity::Ip(_) => &IP_KEYS,
            _ => &USER_CLIENT_KEYS,
        };
        let values: BTreeMap<String, f64> = configs
            .iter()
            .filter(|(k, _)| keys.iter().any(|(name, _)| name == k))
            .filter_map(|(k, v)| match v.trim().parse::<f64>() {
                Ok(v) => Some((k.clone(), v)),
                Err(_) => {
                    debug!(key = %k, "stored quota value is not a number; left out");
                    None
                }
            })
            .collect();
        if !values.is_empty() {
            out.push((entity.clone(), values));
        }
    }
    out
}

/// The `(entity type, name)` parts of an entity as KIP-546 names them (`None`: the default).
fn entity_parts(entity: &ClientEntity) -> Vec<(&'static str, Option<String>)> {
    let name = |n: &EntityName| match n {
        EntityName::Default => None,
        EntityName::Named(s) => Some(s.clone()),
    };
    match entity {
        ClientEntity::User(u) => vec![(USER, name(u))],
        ClientEntity::ClientId(c) => vec![(CLIENT_ID, name(c))],
        ClientEntity::UserClientId(u, c) => vec![(USER, name(u)), (CLIENT_ID, name(c))],
        ClientEntity::Ip(ip) => vec![(IP, name(ip))],
    }
}

// -- AlterClientQuotas -------------------------------------------------------------------------

pub async fn alter(
    broker: &Broker,
    ctx: &RequestContext,
    req: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let allowed = authorize_cluster(broker, ctx, Operation::AlterConfigs);
    let mut entries = Vec::with_capacity(req.entries.len());
    for entry in &req.entries {
        let outcome = if allowed {
            alter_entry(broker, entry, req.validate_only).await
        } else {
            Err(Refusal(
                ResponseError::ClusterAuthorizationFailed,
                "not authorized to alter client quotas".into(),
            ))
        };
        let (code, message) = match outcome {
            Ok(()) => (0, None),
            Err(Refusal(e, m)) => {
                debug!(error = ?e, message = %m, "client quota alteration refused");
                (e.code(), Some(str_bytes(m)))
            }
        };
        entries.push(
            alter_client_quotas_response::EntryData::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_entity(
                    entry
                        .entity
                        .iter()
                        .map(|e| {
                            alter_client_quotas_response::EntityData::default()
                                .with_entity_type(e.entity_type.clone())
                                .with_entity_name(e.entity_name.clone())
                        })
                        .collect(),
                ),
        );
    }
    AlterClientQuotasResponse::default().with_entries(entries)
}

async fn alter_entry(
    broker: &Broker,
    entry: &kafka_protocol::messages::alter_client_quotas_request::EntryData,
    validate_only: bool,
) -> Result<(), Refusal> {
    let parts: Vec<(&str, Option<&StrBytes>)> = entry
        .entity
        .iter()
        .map(|e| (e.entity_type.as_str(), e.entity_name.as_ref()))
        .collect();
    let entity = parse_entity(&parts)?;
    if let ClientEntity::Ip(EntityName::Named(ip)) = &entity {
        if !is_valid_ip_entity(ip).await {
            return Err(invalid_request(format!(
                "{ip} is not a valid IP or resolvable host."
            )));
        }
    }
    let ops: Vec<(&str, Option<f64>)> = entry
        .ops
        .iter()
        .map(|op| (op.key.as_str(), (!op.remove).then_some(op.value)))
        .collect();
    let changes = quota_changes(&entity, &ops)?;
    if validate_only || changes.is_empty() {
        return Ok(());
    }
    broker
        .cluster
        .alter_client_entities(vec![(entity, changes)])
        .await
        .map_err(|e| Refusal(e.kafka_error(), e.to_string()))
}

/// The entity a request entry names, as Kafka's `parseAndSanitizeQuotaEntity` reads it.
fn parse_entity(parts: &[(&str, Option<&StrBytes>)]) -> Result<ClientEntity, Refusal> {
    if parts.is_empty() {
        return Err(invalid_request("Invalid empty client quota entity"));
    }
    let (mut user, mut client, mut ip) = (None, None, None);
    for (kind, name) in parts {
        let slot = match *kind {
            USER => &mut user,
            CLIENT_ID => &mut client,
            IP => &mut ip,
            other => {
                return Err(invalid_request(format!(
                    "Unhandled client quota entity type: {other}"
                )))
            }
        };
        *slot = Some(match name {
            None => EntityName::Default,
            Some(n) if n.is_empty() => {
                return Err(invalid_request(format!("Empty {kind} not supported")))
            }
            Some(n) => EntityName::Named(n.to_string()),
        });
    }
    match (user, client, ip) {
        (Some(u), Some(c), None) => Ok(ClientEntity::UserClientId(u, c)),
        (Some(u), None, None) => Ok(ClientEntity::User(u)),
        (None, Some(c), None) => Ok(ClientEntity::ClientId(c)),
        (None, None, Some(ip)) => Ok(ClientEntity::Ip(ip)),
        (_, _, Some(_)) => Err(invalid_request(
            "Invalid quota entity combination, IP entity should not be used with user/client ID \
             entity.",
        )),
        _ => Err(invalid_request("Invalid client quota entity")),
    }
}

/// Kafka's `DynamicConfig.Ip.isValidIpEntity`: an IP address or a resolvable host name
/// (resolved off the async threads, as the lookup blocks).
async fn is_valid_ip_entity(ip: &str) -> bool {
    use std::net::ToSocketAddrs;
    if ip.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let host = ip.to_string();
    tokio::task::spawn_blocking(move || {
        (host.as_str(), 0)
            .to_socket_addrs()
            .is_ok_and(|mut addrs| addrs.next().is_some())
    })
    .await
    .unwrap_or(false)
}

/// Turns the ops of one entry into key changes: a removal, or a value checked against the
/// key's type (whole numbers for long and int keys) and stored as Kafka stores it.
fn quota_changes(
    entity: &ClientEntity,
    ops: &[(&str, Option<f64>)],
) -> Result<BTreeMap<String, Option<String>>, Refusal> {
    let keys: &[(&str, QuotaType)] = match entity {
        ClientEntity::Ip(_) => &IP_KEYS,
        _ => &USER_CLIENT_KEYS,
    };
    let mut changes = BTreeMap::new();
    for (key, value) in ops {
        let Some(value) = value else {
            changes.insert(key.to_string(), None);
            continue;
        };
        let Some((_, kind)) = keys.iter().find(|(k, _)| k == key) else {
            return Err(invalid_request(format!("Invalid configuration key {key}")));
        };
        let stored = stored_value(key, *kind, *value)?;
        changes.insert(key.to_string(), Some(stored));
    }
    Ok(changes)
}

fn stored_value(key: &str, kind: QuotaType, value: f64) -> Result<String, Refusal> {
    const EPSILON: f64 = 1e-6;
    if !value.is_finite() {
        return Err(Refusal(
            ResponseError::InvalidConfig,
            format!("Invalid value {value} for configuration {key}"),
        ));
    }
    match kind {
        QuotaType::Double => Ok(java_double(value)),
        QuotaType::Long | QuotaType::Int => {
            // Kafka's check: truncating `value + epsilon` must give `value` back (so negative
            // values are refused too).
            let whole = (value + EPSILON).trunc();
            let (min, max) = match kind {
                QuotaType::Int => (i32::MIN as f64, i32::MAX as f64),
                _ => (i64::MIN as f64, i64::MAX as f64),
            };
            if (whole - value).abs() > EPSILON || whole < min || whole > max {
                let type_name = if kind == QuotaType::Int {
                    "INT"
                } else {
                    "LONG"
                };
                return Err(invalid_request(format!(
                    "Configuration {key} must be a {type_name} value"
                )));
            }
            Ok(format!("{}", whole as i64))
        }
    }
}

/// A double as Java's `Double.toString` writes it (`1000.0`, `0.5`, `1.0E7`), which is how
/// Kafka stores double quotas.
fn java_double(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        return format!("{value:?}");
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_client_quotas_request::ComponentData;

    fn named(n: &str) -> EntityName {
        EntityName::Named(n.into())
    }

    fn stored() -> ClientEntityConfigs {
        let mut all = ClientEntityConfigs::default();
        let quota = |v: &str| BTreeMap::from([("producer_byte_rate".to_string(), v.to_string())]);
        for (entity, v) in [
            (ClientEntity::User(named("alice")), "1"),
            (ClientEntity::User(EntityName::Default), "2"),
            (ClientEntity::ClientId(named("c1")), "3"),
            (ClientEntity::UserClientId(named("alice"), named("c1")), "4"),
            (
                ClientEntity::UserClientId(named("bob"), EntityName::Default),
                "5",
            ),
        ] {
            all.entities.insert(entity, quota(v));
        }
        all.entities.insert(
            ClientEntity::Ip(named("10.0.0.1")),
            BTreeMap::from([("connection_creation_rate".to_string(), "7".to_string())]),
        );
        // A user with only a SCRAM credential has no quotas to show.
        all.entities.insert(
            ClientEntity::User(named("carol")),
            BTreeMap::from([("SCRAM-SHA-256".to_string(), "salt=..".to_string())]),
        );
        all
    }

    fn component(kind: &str, match_type: i8, name: Option<&str>) -> ComponentData {
        ComponentData::default()
            .with_entity_type(str_bytes(kind))
            .with_match_type(match_type)
            .with_match(name.map(str_bytes))
    }

    fn select(components: Vec<ComponentData>, strict: bool) -> Vec<f64> {
        let req = DescribeClientQuotasRequest::default()
            .with_components(components)
            .with_strict(strict);
        let filter = decode_filter(&req).unwrap();
        let mut values: Vec<f64> = matching(&stored(), &filter)
            .into_iter()
            .flat_map(|(_, v)| v.into_values())
            .collect();
        values.sort_by(f64::total_cmp);
        values
    }

    #[test]
    fn filters_match_as_kafka() {
        assert_eq!(select(vec![], false), vec![1.0, 2.0, 3.0, 4.0, 5.0, 7.0]);
        assert_eq!(select(vec![], true), Vec::<f64>::new());
        let alice = || component(USER, MATCH_EXACT, Some("alice"));
        assert_eq!(select(vec![alice()], false), vec![1.0, 4.0]);
        assert_eq!(select(vec![alice()], true), vec![1.0]);
        assert_eq!(
            select(vec![component(USER, MATCH_DEFAULT, None)], true),
            vec![2.0]
        );
        assert_eq!(
            select(vec![component(USER, MATCH_SPECIFIED, None)], true),
            vec![1.0, 2.0]
        );
        assert_eq!(
            select(
                vec![
                    component(USER, MATCH_SPECIFIED, None),
                    component(CLIENT_ID, MATCH_SPECIFIED, None)
                ],
                true
            ),
            vec![4.0, 5.0]
        );
        assert_eq!(
            select(vec![component(CLIENT_ID, MATCH_EXACT, Some("c1"))], false),
            vec![3.0, 4.0]
        );
        assert_eq!(
            select(vec![component(IP, MATCH_SPECIFIED, None)], false),
            vec![7.0]
        );
    }

    #[test]
    fn bad_filters_are_refused() {
        let refused = |components: Vec<ComponentData>| {
            decode_filter(&DescribeClientQuotasRequest::default().with_components(components))
                .unwrap_err()
                .0
        };
        assert_eq!(
            refused(vec![
                component(USER, MATCH_DEFAULT, None),
                component(USER, MATCH_SPECIFIED, None)
            ]),
            ResponseError::InvalidRequest
        );
        assert_eq!(
            refused(vec![
                component(USER, MATCH_DEFAULT, None),
                component(IP, MATCH_SPECIFIED, None)
            ]),
            ResponseError::InvalidRequest
        );
        assert_eq!(
            refused(vec![component("topic", MATCH_SPECIFIED, None)]),
            ResponseError::UnsupportedVersion
        );
        assert_eq!(
            refused(vec![component(USER, 7, None)]),
            ResponseError::InvalidRequest
        );
    }

    #[test]
    fn entities_parse_as_kafka() {
        let alice = str_bytes("alice");
        let empty = str_bytes("");
        assert_eq!(
            parse_entity(&[(USER, Some(&alice)), (CLIENT_ID, None)]),
            Ok(ClientEntity::UserClientId(
                named("alice"),
                EntityName::Default
            ))
        );
        assert_eq!(
            parse_entity(&[(IP, None)]),
            Ok(ClientEntity::Ip(EntityName::Default))
        );
        for bad in [
            vec![],
            vec![(USER, Some(&empty))],
            vec![(USER, None), (IP, None)],
            vec![("topic", None)],
        ] {
            assert_eq!(
                parse_entity(&bad).unwrap_err().0,
                ResponseError::InvalidRequest
            );
        }
    }

    #[test]
    fn values_are_checked_and_stored_as_kafka() {
        let user = ClientEntity::User(named("u"));
        let ip = ClientEntity::Ip(EntityName::Default);
        let changes = quota_changes(
            &user,
            &[
                ("producer_byte_rate", Some(1024.0)),
                ("request_percentage", Some(12.5)),
                ("controller_mutation_rate", Some(1e7)),
                ("consumer_byte_rate", None),
            ],
        )
        .unwrap();
        assert_eq!(changes["producer_byte_rate"].as_deref(), Some("1024"));
        assert_eq!(changes["request_percentage"].as_deref(), Some("12.5"));
        assert_eq!(
            changes["controller_mutation_rate"].as_deref(),
            Some("1.0E7")
        );
        assert_eq!(changes["consumer_byte_rate"], None);
        let code = |entity: &ClientEntity, key: &str, v: f64| {
            quota_changes(entity, &[(key, Some(v))]).unwrap_err().0
        };
        assert_eq!(
            code(&user, "producer_byte_rate", 1.5),
            ResponseError::InvalidRequest
        );
        assert_eq!(
            code(&user, "connection_creation_rate", 1.0),
            ResponseError::InvalidRequest
        );
        assert_eq!(
            code(&user, "SCRAM-SHA-256", 1.0),
            ResponseError::InvalidRequest
        );
        assert_eq!(
            code(&ip, "producer_byte_rate", 1.0),
            ResponseError::InvalidRequest
        );
        assert_eq!(
            code(&ip, "connection_creation_rate", -1.0),
            ResponseError::InvalidRequest
        );
        assert_eq!(
            quota_changes(&ip, &[("connection_creation_rate", Some(10.0))]).unwrap()
                ["connection_creation_rate"]
                .as_deref(),
            Some("10")
        );
        assert_eq!(
            code(&user, "request_percentage", f64::NAN),
            ResponseError::InvalidConfig
        );
        assert_eq!(java_double(0.5), "0.5");
        assert_eq!(java_double(100.0), "100.0");
        assert_eq!(java_double(0.0001), "1.0E-4");
    }
}
