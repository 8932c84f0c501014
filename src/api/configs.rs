//! DescribeConfigs for topics and brokers, with sources and synonyms.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::str_bytes;
use super::RequestContext;
use crate::broker::Broker;
use crate::config::broker::BROKER_CONFIGS;
use crate::config::topic::resolve_all;
use crate::config::ConfigSource;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

pub async fn describe(
    broker: &Broker,
    _ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let config = broker.config.current();
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            // A null or empty key list means every config.
            let keys: Option<Vec<String>> = r
                .configuration_keys
                .filter(|k| !k.is_empty())
                .map(|k| k.iter().map(|s| s.to_string()).collect());
            let wanted = |key: &str| keys.as_ref().is_none_or(|k| k.iter().any(|w| w == key));
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name);
            match r.resource_type {
                RESOURCE_TOPIC => match broker.cluster.topic(&name) {
                    None => result.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                    Some(topic) => result.with_configs(
                        resolve_all(&topic.configs, &config)
                            .into_iter()
                            .filter(|c| wanted(c.name))
                            .map(|c| {
                                let synonyms = if req.include_synonyms {
                                    c.synonyms
                                        .into_iter()
                                        .map(|(n, v, s)| synonym(n, v, s))
                                        .collect()
                                } else {
                                    Vec::new()
                                };
                                entry(c.name, c.value, c.source, c.kind.wire_code(), false)
                                    .with_synonyms(synonyms)
                            })
                            .collect(),
                    ),
                },
                RESOURCE_BROKER if name.is_empty() => result,
                RESOURCE_BROKER if name == broker.broker_id().to_string() => result.with_configs(
                    BROKER_CONFIGS
                        .iter()
                        .filter(|d| wanted(d.name))
                        .filter_map(|d| {
                            let (value, source) = config.value_of(d.name)?;
                            let synonyms = if req.include_synonyms {
                                vec![synonym(d.name.to_string(), value.clone(), source)]
                            } else {
                                Vec::new()
                            };
                            Some(
                                entry(d.name, value, source, d.kind.wire_code(), true)
                                    .with_synonyms(synonyms),
                            )
                        })
                        .collect(),
                ),
                RESOURCE_BROKER => result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(format!(
                        "this is broker {}",
                        broker.broker_id()
                    )))),
                _ => result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes("unsupported resource type"))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn entry(
    name: &str,
    value: Option<String>,
    source: ConfigSource,
    kind: i8,
    read_only: bool,
) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(str_bytes(name))
        .with_value(value.map(str_bytes))
        .with_config_source(source.wire_code())
        .with_config_type(kind)
        .with_read_only(read_only)
        .with_is_sensitive(false)
}

fn synonym(name: String, value: Option<String>, source: ConfigSource) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(str_bytes(name))
        .with_value(value.map(str_bytes))
        .with_source(source.wire_code())
}
