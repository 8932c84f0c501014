//! AlterConfigs (replaces every dynamic config of a resource) and IncrementalAlterConfigs
//! (SET, DELETE, APPEND, SUBTRACT) for topics, this broker and the cluster-wide broker default,
//! with validate_only. Requests are first checked as Kafka 3.9's ConfigAdminManager checks them
//! (each resource once, each key once, values present, a supported resource type); each
//! resource then gets its own error code.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use tracing::debug;

use super::authorized::config_resource_denied;
use super::configs::{
    RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_CLIENT_METRICS, RESOURCE_TOPIC,
};
use super::error_codes::KafkaCode;
use super::str_bytes;
use super::RequestContext;
use crate::auth::acl::Operation;
use crate::broker::configs::{ConfigChange, ConfigUpdateError};
use crate::broker::Broker;
use crate::config::incremental::ConfigOp;

/// One resource of either request, decoded.
struct Resource {
    resource_type: i8,
    name: StrBytes,
    /// The change, or why the request is malformed for this resource.
    change: Result<ConfigChange, String>,
}

/// The outcome of one resource: its error code (0 for none) and message.
struct Outcome {
    resource_type: i8,
    name: StrBytes,
    error: i16,
    message: Option<String>,
}

pub async fn alter(
    broker: &Broker,
    ctx: &RequestContext,
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let resources = req
        .resources
        .into_iter()
        .map(|r| {
            let configs: Vec<(String, Option<String>)> = r
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect();
            Resource {
                resource_type: r.resource_type,
                name: r.resource_name,
                change: legacy_change(configs),
            }
        })
        .collect();
    let responses = run(broker, ctx, resources, req.validate_only, false)
        .await
        .into_iter()
        .map(|o| {
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(o.resource_type)
                .with_resource_name(o.name)
                .with_error_code(o.error)
                .with_error_message(o.message.map(str_bytes))
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

pub async fn incremental_alter(
    broker: &Broker,
    ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let resources = req
        .resources
        .into_iter()
        .map(|r| {
            let ops: Vec<(String, i8, Option<String>)> = r
                .configs
                .iter()
                .map(|c| {
                    (
                        c.name.to_string(),
                        c.config_operation,
                        c.value.as_ref().map(|v| v.to_string()),
                    )
                })
                .collect();
            Resource {
                resource_type: r.resource_type,
                name: r.resource_name,
                change: incremental_change(ops),
            }
        })
        .collect();
    let responses = run(broker, ctx, resources, req.validate_only, true)
        .await
        .into_iter()
        .map(|o| {
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(o.resource_type)
                .with_resource_name(o.name)
                .with_error_code(o.error)
                .with_error_message(o.message.map(str_bytes))
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Checks and applies every resource in request order; a resource named twice fails both times.
async fn run(
    broker: &Broker,
    ctx: &RequestContext,
    resources: Vec<Resource>,
    validate_only: bool,
    incremental: bool,
) -> Vec<Outcome> {
    let mut seen = HashSet::new();
    let repeated: HashSet<(i8, String)> = resources
        .iter()
        .map(|r| (r.resource_type, r.name.to_string()))
        .filter(|id| !seen.insert(id.clone()))
        .collect();
    let mut outcomes = Vec::with_capacity(resources.len());
    for r in resources {
        let result = if repeated.contains(&(r.resource_type, r.name.to_string())) {
            Err(invalid_request("Each resource must appear at most once."))
        } else if let Some(error) = config_resource_denied(
            broker,
            ctx,
            Operation::AlterConfigs,
            r.resource_type,
            &r.name,
        ) {
            outcomes.push(Outcome {
                resource_type: r.resource_type,
                name: r.name,
                error: error.code(),
                message: None,
            });
            continue;
        } else {
            apply_one(broker, &r, validate_only, incremental).await
        };
        if let Err(e) = &result {
            debug!(resource_type = r.resource_type, name = %r.name, error = %e, "config change refused");
        }
        outcomes.push(Outcome {
            resource_type: r.resource_type,
            name: r.name,
            error: result.as_ref().err().map_or(0, |e| e.code()),
            message: result.err().map(|e| e.to_string()),
        });
    }
    outcomes
}

async fn apply_one(
    broker: &Broker,
    r: &Resource,
    validate_only: bool,
    incremental: bool,
) -> Result<(), ConfigUpdateError> {
    let change = r.change.as_ref().map_err(invalid_request)?;
    let name = r.name.as_str();
    match r.resource_type {
        RESOURCE_TOPIC => broker.alter_topic_configs(name, change, validate_only).await,
        RESOURCE_BROKER => {
            let entity = broker.broker_entity(name)?;
            broker.alter_broker_configs(entity, change, validate_only).await
        }
        RESOURCE_BROKER_LOGGER if incremental => Err(invalid_request(
            "Odradek does not change its log levels through IncrementalAlterConfigs",
        )),
        RESOURCE_CLIENT_METRICS => Err(invalid_request(
            "AlterConfigs is only supported for topics and brokers, but resource type is CLIENT_METRICS",
        )),
        other => Err(invalid_request(format!("Unknown resource type {other}"))),
    }
}

fn invalid_request(message: impl Into<String>) -> ConfigUpdateError {
    ConfigUpdateError::InvalidRequest(message.into())
}

/// The whole new set of an AlterConfigs resource: each key once, each with a value.
fn legacy_change(configs: Vec<(String, Option<String>)>) -> Result<ConfigChange, String> {
    check_keys_once(configs.iter().map(|(k, _)| k))?;
    let missing: Vec<&str> = configs
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "Null value not supported for : {}",
            missing.join(", ")
        ));
    }
    let set: BTreeMap<String, String> = configs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    Ok(ConfigChange::Replace(set))
}

/// The operations of an IncrementalAlterConfigs resource: each key once, a known operation,
/// a value for every operation but DELETE.
fn incremental_change(ops: Vec<(String, i8, Option<String>)>) -> Result<ConfigChange, String> {
    check_keys_once(ops.iter().map(|(k, _, _)| k))?;
    let missing: Vec<&str> = ops
        .iter()
        .filter(|(_, op, v)| *op != 1 && v.is_none())
        .map(|(k, _, _)| k.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "Null value not supported for : {}",
            missing.join(", ")
        ));
    }
    ops.into_iter()
        .map(|(key, code, value)| {
            ConfigOp::from_wire(code, value)
                .map(|op| (key, op))
                .ok_or_else(|| format!("Unknown operations type {code}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(ConfigChange::Incremental)
}

fn check_keys_once<'a>(keys: impl Iterator<Item = &'a String>) -> Result<(), String> {
    let mut seen = HashSet::new();
    for key in keys {
        if !seen.insert(key) {
            return Err("Error due to duplicate config keys".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_resources_need_unique_keys_and_values() {
        let ok = legacy_change(vec![("a".into(), Some("1".into()))]).unwrap();
        assert!(matches!(ok, ConfigChange::Replace(m) if m["a"] == "1"));
        assert_eq!(
            legacy_change(vec![
                ("a".into(), Some("1".into())),
                ("a".into(), Some("2".into()))
            ])
            .unwrap_err(),
            "Error due to duplicate config keys"
        );
        assert_eq!(
            legacy_change(vec![("a".into(), None), ("b".into(), None)]).unwrap_err(),
            "Null value not supported for : a, b"
        );
    }

    #[test]
    fn incremental_resources_need_known_operations() {
        let ok = incremental_change(vec![
            ("a".into(), 1, None),
            ("b".into(), 2, Some("x".into())),
        ])
        .unwrap();
        assert!(matches!(ok, ConfigChange::Incremental(ops) if ops.len() == 2));
        assert_eq!(
            incremental_change(vec![("a".into(), 0, None)]).unwrap_err(),
            "Null value not supported for : a"
        );
        assert_eq!(
            incremental_change(vec![("a".into(), 7, Some("x".into()))]).unwrap_err(),
            "Unknown operations type 7"
        );
    }
}
