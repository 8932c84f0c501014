//! Topic administration: CreateTopics, DeleteTopics and CreatePartitions.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::*;
use uuid::Uuid;

use super::authorized::{authorize, authorize_cluster};
use super::error_codes::KafkaCode;
use super::RequestContext;
use super::{str_bytes, topic_name};
use crate::auth::acl::{Operation, ResourceType};
use crate::broker::Broker;
use crate::cluster::NewTopic;
use crate::config::topic::{resolve_all, validate_overrides};

pub async fn create_topics(
    broker: &Broker,
    ctx: &RequestContext,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    // CREATE on the cluster covers every topic; else CREATE on each topic.
    let cluster_create = authorize_cluster(broker, ctx, Operation::Create);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *seen.entry(t.name.0.to_string()).or_default() += 1;
    }
    let mut results = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let result = if seen.get(&name).copied().unwrap_or(0) > 1 {
            failed_create(
                &name,
                ResponseError::InvalidRequest,
                "topic appears more than once in the request".into(),
            )
        } else if !cluster_create
            && !authorize(broker, ctx, Operation::Create, ResourceType::Topic, &name)
        {
            failed_create(
                &name,
                ResponseError::TopicAuthorizationFailed,
                "not authorized to create the topic".into(),
            )
        } else {
            create_one(broker, topic, req.validate_only).await
        };
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn create_one(
    broker: &Broker,
    topic: CreatableTopic,
    validate_only: bool,
) -> CreatableTopicResult {
    let name = topic.name.0.to_string();
    let configs: BTreeMap<String, String> = topic
        .configs
        .iter()
        .filter_map(|c| {
            c.value
                .as_ref()
                .map(|v| (c.name.to_string(), v.to_string()))
        })
        .collect();
    if let Err(e) = validate_overrides(&configs) {
        return failed_create(&name, ResponseError::InvalidConfig, e.to_string());
    }
    let assignments = if topic.assignments.is_empty() {
        None
    } else if topic.num_partitions != -1 || topic.replication_factor != -1 {
        return failed_create(
            &name,
            ResponseError::InvalidRequest,
            "both replica assignments and partition count/replication factor were given".into(),
        );
    } else {
        let mut lists: Vec<_> = topic.assignments.iter().collect();
        lists.sort_by_key(|a| a.partition_index);
        if lists
            .iter()
            .enumerate()
            .any(|(i, a)| a.partition_index != i as i32)
        {
            return failed_create(
                &name,
                ResponseError::InvalidReplicaAssignment,
                "partitions must be numbered 0..n".into(),
            );
        }
        Some(
            lists
                .iter()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect(),
        )
    };
    let spec = NewTopic {
        name: name.clone(),
        num_partitions: if topic.num_partitions == -1 {
            broker.config.current().num_partitions
        } else {
            topic.num_partitions
        },
        replication_factor: if topic.replication_factor == -1 {
            broker.config.current().default_replication_factor as i16
        } else {
            topic.replication_factor
        },
        assignments,
        configs: configs.clone(),
    };
    match broker.create_topic(spec, validate_only).await {
        Ok(created) => {
            let described = resolve_all(&configs, &broker.config.current())
                .into_iter()
                .map(|c| {
                    CreatableTopicConfigs::default()
                        .with_name(str_bytes(c.name))
                        .with_value(c.value.map(str_bytes))
                        .with_config_source(c.source.wire_code())
                        .with_read_only(false)
                        .with_is_sensitive(false)
                })
                .collect();
            CreatableTopicResult::default()
                .with_name(topic_name(name))
                .with_topic_id(created.id)
                .with_num_partitions(created.partitions.len() as i32)
                .with_replication_factor(created.replication_factor())
                .with_configs(Some(described))
        }
        Err(e) => failed_create(&name, e.kafka_error(), e.to_string()),
    }
}

fn failed_create(name: &str, error: ResponseError, message: String) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(topic_name(name))
        .with_error_code(error.code())
        .with_error_message(Some(str_bytes(message)))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_topic_config_error_code(error.code())
}

pub async fn delete_topics(
    broker: &Broker,
    ctx: &RequestContext,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let version = ctx.api_version;
    let wanted: Vec<(Option<String>, Uuid)> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let result = DeletableTopicResult::default()
            .with_name(name.clone().map(topic_name))
            .with_topic_id(id);
        let name = match name {
            Some(n) => Some(n),
            None => broker.cluster.topic_by_id(id).map(|t| t.name.clone()),
        };
        let Some(name) = name else {
            responses.push(result.with_error_code(ResponseError::UnknownTopicId.code()));
            continue;
        };
        let result = result.with_name(Some(topic_name(name.clone())));
        if !authorize(broker, ctx, Operation::Delete, ResourceType::Topic, &name) {
            responses.push(result.with_error_code(ResponseError::TopicAuthorizationFailed.code()));
            continue;
        }
        if !broker.config.current().delete_topic_enable {
            responses.push(result.with_error_code(ResponseError::TopicDeletionDisabled.code()));
            continue;
        }
        responses.push(match broker.delete_topic(&name).await {
            Ok(t) => result.with_topic_id(t.id),
            Err(e) => result
                .with_error_code(e.code())
                .with_error_message(Some(str_bytes(e.to_string()))),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

pub async fn create_partitions(
    broker: &Broker,
    ctx: &RequestContext,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let assignments = topic.assignments.map(|a| {
            a.into_iter()
                .map(|x| x.broker_ids.into_iter().map(|b| b.0).collect())
                .collect()
        });
        let result = CreatePartitionsTopicResult::default().with_name(topic.name);
        if !authorize(broker, ctx, Operation::Alter, ResourceType::Topic, &name) {
            results.push(result.with_error_code(ResponseError::TopicAuthorizationFailed.code()));
            continue;
        }
        results.push(
            match broker
                .create_partitions(&name, topic.count, assignments, req.validate_only)
                .await
            {
                Ok(_) => result,
                Err(e) => result
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(e.to_string()))),
            },
        );
    }
    CreatePartitionsResponse::default().with_results(results)
}
