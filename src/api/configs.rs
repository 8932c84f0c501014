//! DescribeConfigs for topics, this broker and the cluster-wide broker defaults, as Kafka 3.9
//! answers it: values in force, sources, synonyms, types, documentation, read-only and
//! sensitive flags (see `config::describe`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::authorized::config_resource_denied;
use super::error_codes::KafkaCode;
use super::str_bytes;
use super::RequestContext;
use crate::auth::acl::Operation;
use crate::broker::Broker;
use crate::cluster::names::validate_topic_name;
use crate::config::describe::{
    broker_entries, default_entity_entries, topic_entries, DescribedConfig,
};
use crate::config::BrokerEntity;

/// Kafka's config resource types (`ConfigResource.Type`).
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
pub const RESOURCE_CLIENT_METRICS: i8 = 16;

pub async fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let options = Options {
        synonyms: req.include_synonyms,
        documentation: req.include_documentation,
    };
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            match config_resource_denied(
                broker,
                ctx,
                Operation::DescribeConfigs,
                r.resource_type,
                &r.resource_name,
            ) {
                Some(error) => DescribeConfigsResult::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name)
                    .with_error_code(error.code()),
                None => describe_resource(broker, r, options),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

#[derive(Clone, Copy)]
struct Options {
    synonyms: bool,
    documentation: bool,
}

fn describe_resource(
    broker: &Broker,
    resource: DescribeConfigsResource,
    options: Options,
) -> DescribeConfigsResult {
    let name = resource.resource_name.to_string();
    // A null or empty key list means every config.
    let keys: Option<Vec<String>> = resource
        .configuration_keys
        .filter(|k| !k.is_empty())
        .map(|k| k.iter().map(|s| s.to_string()).collect());
    let result = DescribeConfigsResult::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name);
    match entries(broker, resource.resource_type, &name) {
        Ok(entries) => result.with_configs(
            entries
                .into_iter()
                .filter(|e| keys.as_ref().is_none_or(|k| k.contains(&e.name)))
                .map(|e| wire_entry(e, options))
                .collect(),
        ),
        Err((error, message)) => result
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(message))),
    }
}

/// The entries of one resource, or its error.
fn entries(
    broker: &Broker,
    resource_type: i8,
    name: &str,
) -> Result<Vec<DescribedConfig>, (ResponseError, String)> {
    let config = broker.config.current();
    match resource_type {
        RESOURCE_TOPIC => {
            validate_topic_name(name).map_err(|e| (ResponseError::InvalidTopicException, e))?;
            let topic = broker.cluster.topic(name).ok_or_else(|| {
                (
                    ResponseError::UnknownTopicOrPartition,
                    format!("The topic '{name}' does not exist."),
                )
            })?;
            Ok(topic_entries(&topic.configs, &config))
        }
        RESOURCE_BROKER => match broker.broker_entity(name) {
            Ok(BrokerEntity::Default) => Ok(default_entity_entries(&config)),
            Ok(BrokerEntity::Broker(_)) => Ok(broker_entries(&config)),
            Err(e) => Err((e.kafka_error(), e.to_string())),
        },
        other => Err((
            ResponseError::InvalidRequest,
            format!("Unsupported resource type: {other}"),
        )),
    }
}

fn wire_entry(e: DescribedConfig, options: Options) -> DescribeConfigsResourceResult {
    let synonyms = if options.synonyms {
        e.synonyms
            .into_iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(name))
                    .with_value(value.map(str_bytes))
                    .with_source(source.wire_code())
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(str_bytes(e.name))
        .with_value(e.value.map(str_bytes))
        .with_config_source(e.source.wire_code())
        .with_config_type(e.kind.wire_code())
        .with_read_only(e.read_only)
        .with_is_sensitive(e.sensitive)
        .with_synonyms(synonyms)
        .with_documentation(
            e.documentation
                .filter(|_| options.documentation)
                .map(str_bytes),
        )
}
