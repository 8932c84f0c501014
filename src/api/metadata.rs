//! Metadata: brokers, controller, and topic/partition leadership; auto-creates topics when enabled.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use uuid::Uuid;

use super::authorized::{authorize, authorize_cluster, authorized_operations, if_requested};
use super::error_codes::KafkaCode;
use super::RequestContext;
use super::{str_bytes, topic_name};
use crate::auth::acl::{Operation, ResourceType, CLUSTER_NAME};
use crate::broker::Broker;
use crate::cluster::names::validate_topic_name;
use crate::cluster::TopicMetadata;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: MetadataRequest,
) -> MetadataResponse {
    let version = ctx.api_version;
    let live_brokers = broker.cluster.live_brokers();
    let live = Live {
        ids: live_brokers.iter().map(|b| b.id).collect(),
        on_listener: live_brokers
            .iter()
            .filter(|b| b.endpoint(&ctx.listener).is_some())
            .map(|b| b.id)
            .collect(),
        listener_not_found: version >= 6,
    };
    // Only the brokers reachable on the listener the request came in on, at that address.
    let brokers = live_brokers
        .into_iter()
        .filter_map(|b| {
            let e = b.endpoint(&ctx.listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id))
                    .with_host(str_bytes(e.host.clone()))
                    .with_port(i32::from(e.port))
                    .with_rack(b.rack.map(str_bytes)),
            )
        })
        .collect();
    let mut topics: Vec<MetadataResponseTopic> = match requested(&req, version) {
        None => broker
            .cluster
            .topics()
            .iter()
            // Only the topics the principal may describe are listed.
            .filter(|t| {
                authorize(
                    broker,
                    ctx,
                    Operation::Describe,
                    ResourceType::Topic,
                    &t.name,
                )
            })
            .map(|t| describe_topic(&live, t))
            .collect(),
        Some(list) => {
            let auto_create = broker.config.current().auto_create_topics_enable
                && (version < 4 || req.allow_auto_topic_creation);
            let mut out = Vec::with_capacity(list.len());
            for wanted in list {
                out.push(lookup(broker, ctx, &live, wanted, auto_create).await);
            }
            out
        }
    };
    if version < 5 {
        // offline_replicas exists from v5 on; a non-empty list would not encode.
        for p in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            p.offline_replicas.clear();
        }
    }
    // Authorized operations exist from v8 on (the cluster's only up to v10), when asked for.
    if version >= 8 && req.include_topic_authorized_operations {
        for t in &mut topics {
            if let Some(name) = &t.name {
                t.topic_authorized_operations =
                    authorized_operations(broker, ctx, ResourceType::Topic, name);
            }
        }
    }
    let cluster_operations = if_requested(
        (8..=10).contains(&version) && req.include_cluster_authorized_operations,
        broker,
        ctx,
        ResourceType::Cluster,
        CLUSTER_NAME,
    );
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(broker.cluster.cluster_id())))
        .with_controller_id(BrokerId(broker.cluster.controller_id()))
        .with_cluster_authorized_operations(cluster_operations)
        .with_topics(topics)
}

/// The live brokers, as seen from the listener a request came in on.
struct Live {
    ids: BTreeSet<i32>,
    /// Those advertising that listener.
    on_listener: BTreeSet<i32>,
    /// Whether a leader without the listener is LISTENER_NOT_FOUND (v6+, as Kafka) rather than
    /// LEADER_NOT_AVAILABLE.
    listener_not_found: bool,
}

/// A topic asked for by name or (v10+) by id.
enum Wanted {
    Name(String),
    Id(Uuid),
}

/// `None` means every topic: a null list (v1+) or an empty list (v0).
fn requested(req: &MetadataRequest, version: i16) -> Option<Vec<Wanted>> {
    let topics = req.topics.as_ref()?;
    if topics.is_empty() && version == 0 {
        return None;
    }
    Some(
        topics
            .iter()
            .map(|t| match &t.name {
                Some(name) => Wanted::Name(name.0.to_string()),
                None => Wanted::Id(t.topic_id),
            })
            .collect(),
    )
}

async fn lookup(
    broker: &Broker,
    ctx: &RequestContext,
    live: &Live,
    wanted: Wanted,
    auto_create: bool,
) -> MetadataResponseTopic {
    let name = match wanted {
        Wanted::Id(id) => {
            return match broker.cluster.topic_by_id(id) {
                Some(t)
                    if !authorize(
                        broker,
                        ctx,
                        Operation::Describe,
                        ResourceType::Topic,
                        &t.name,
                    ) =>
                {
                    MetadataResponseTopic::default()
                        .with_topic_id(id)
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                }
                Some(t) => describe_topic(live, &t),
                None => MetadataResponseTopic::default()
                    .with_topic_id(id)
                    .with_error_code(ResponseError::UnknownTopicId.code()),
            }
        }
        Wanted::Name(name) => name,
    };
    let failed = |code: ResponseError| {
        MetadataResponseTopic::default()
            .with_name(Some(topic_name(name.clone())))
            .with_error_code(code.code())
    };
    let existing = broker.cluster.topic(&name);
    let may_create = || {
        authorize_cluster(broker, ctx, Operation::Create)
            || authorize(broker, ctx, Operation::Create, ResourceType::Topic, &name)
    };
    if !authorize(broker, ctx, Operation::Describe, ResourceType::Topic, &name)
        || (existing.is_none() && auto_create && !may_create())
    {
        return failed(ResponseError::TopicAuthorizationFailed);
    }
    if validate_topic_name(&name).is_err() {
        return failed(ResponseError::InvalidTopicException);
    }
    if let Some(topic) = existing {
        return describe_topic(live, &topic);
    }
    if name == crate::group::OFFSETS_TOPIC {
        // Created by the group coordinator with its own settings, never as an ordinary topic.
        return match broker
            .groups
            .ensure_offsets_topic()
            .await
            .ok()
            .and_then(|_| broker.cluster.topic(&name))
        {
            Some(topic) => describe_topic(live, &topic),
            None => failed(ResponseError::LeaderNotAvailable),
        };
    }
    if !auto_create {
        return failed(ResponseError::UnknownTopicOrPartition);
    }
    match broker.auto_create_topic(&name).await {
        Ok(topic) => describe_topic(live, &topic),
        Err(e) => {
            tracing::info!(topic = %name, error = %e, "auto-creating topic failed");
            failed(e.kafka_error())
        }
    }
}

/// `live`: the live brokers (partitions led elsewhere are LEADER_NOT_AVAILABLE; led by a broker
/// without the request's listener, LISTENER_NOT_FOUND from v6 on, with no leader id, as Kafka).
fn describe_topic(live: &Live, topic: &Arc<TopicMetadata>) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let ids = |v: &[i32]| v.iter().copied().map(BrokerId).collect::<Vec<_>>();
            let offline: Vec<i32> = p
                .replicas
                .iter()
                .copied()
                .filter(|r| !live.ids.contains(r))
                .collect();
            let (error, leader) = if p.leader < 0 || !live.ids.contains(&p.leader) {
                (ResponseError::LeaderNotAvailable.code(), p.leader)
            } else if !live.on_listener.contains(&p.leader) {
                let error = if live.listener_not_found {
                    ResponseError::ListenerNotFound
                } else {
                    ResponseError::LeaderNotAvailable
                };
                (error.code(), -1)
            } else {
                (0, p.leader)
            };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_offline_replicas(ids(&offline))
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr))
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(topic.name.clone())))
        .with_topic_id(topic.id)
        .with_is_internal(topic.is_internal())
        .with_partitions(partitions)
}
