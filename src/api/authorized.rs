//! The one place handlers ask whether a request may do something: [`authorize`] checks the
//! request's principal and client address against the broker's authorizer (every check passes,
//! at the cost of one branch, when no authorizer is configured). Also the operations a client
//! may perform on a resource, as Metadata (v8+), DescribeCluster and DescribeGroups (v3+) report
//! them when asked: a bit field with bit `1 << code` set for each of Kafka's ACL operations
//! allowed (every operation the resource supports when no authorizer is configured, as in Kafka).

use super::RequestContext;
use crate::auth::acl::{Operation, ResourceType, CLUSTER_NAME};
use crate::broker::acls::Authorizer;
use crate::broker::Broker;

/// "Not provided": what the field carries when the client did not ask for it.
pub const NOT_PROVIDED: i32 = i32::MIN;

/// Whether the request may perform `operation` on the resource `name` of `resource_type`.
pub fn authorize(
    broker: &Broker,
    ctx: &RequestContext,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    allows(&broker.authorizer, ctx, operation, resource_type, name)
}

/// Whether the request may perform `operation` on the cluster.
pub fn authorize_cluster(broker: &Broker, ctx: &RequestContext, operation: Operation) -> bool {
    authorize(broker, ctx, operation, ResourceType::Cluster, CLUSTER_NAME)
}

/// Whether the request may perform `operation` on some resource of the type.
pub fn authorize_any(
    broker: &Broker,
    ctx: &RequestContext,
    operation: Operation,
    resource_type: ResourceType,
) -> bool {
    let authorizer = &broker.authorizer;
    !authorizer.enabled()
        || authorizer.allows_any(
            &ctx.principal.to_string(),
            ctx.client_address.ip(),
            operation,
            resource_type,
        )
}

/// The error for a config resource (DescribeConfigs, AlterConfigs) the request may not use
/// with `operation`: topics need it on the topic, brokers and broker loggers on the cluster.
pub fn config_resource_denied(
    broker: &Broker,
    ctx: &RequestContext,
    operation: Operation,
    resource_type: i8,
    name: &str,
) -> Option<kafka_protocol::error::ResponseError> {
    use kafka_protocol::error::ResponseError;
    const TOPIC: i8 = 2;
    const BROKER: i8 = 4;
    const BROKER_LOGGER: i8 = 8;
    match resource_type {
        TOPIC if !authorize(broker, ctx, operation, ResourceType::Topic, name) => {
            Some(ResponseError::TopicAuthorizationFailed)
        }
        BROKER | BROKER_LOGGER if !authorize_cluster(broker, ctx, operation) => {
            Some(ResponseError::ClusterAuthorizationFailed)
        }
        _ => None,
    }
}

fn allows(
    authorizer: &Authorizer,
    ctx: &RequestContext,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    if !authorizer.enabled() {
        return true;
    }
    let allowed = authorizer.allows(
        &ctx.principal.to_string(),
        ctx.client_address.ip(),
        operation,
        resource_type,
        name,
    );
    if !allowed {
        tracing::debug!(
            principal = %ctx.principal,
            host = %ctx.client_address.ip(),
            ?operation,
            ?resource_type,
            name,
            api = ?ctx.api_key,
            "denied"
        );
    }
    allowed
}

/// The bit field of the operations the request's principal may perform on the resource.
pub fn authorized_operations(
    broker: &Broker,
    ctx: &RequestContext,
    resource_type: ResourceType,
    name: &str,
) -> i32 {
    operation_bits(&broker.authorizer, ctx, resource_type, name)
}

fn operation_bits(
    authorizer: &Authorizer,
    ctx: &RequestContext,
    resource_type: ResourceType,
    name: &str,
) -> i32 {
    resource_type
        .supported_operations()
        .iter()
        .filter(|op| allows(authorizer, ctx, **op, resource_type, name))
        .fold(0, |bits, op| bits | 1 << (*op as i8))
}

/// The field's value: the operations if the client asked for them, else [`NOT_PROVIDED`].
pub fn if_requested(
    requested: bool,
    broker: &Broker,
    ctx: &RequestContext,
    resource_type: ResourceType,
    name: &str,
) -> i32 {
    if requested {
        authorized_operations(broker, ctx, resource_type, name)
    } else {
        NOT_PROVIDED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext {
            api_key: kafka_protocol::messages::ApiKey::Metadata,
            api_version: 12,
            correlation_id: 1,
            client_id: None,
            client_address: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
            listener: "PLAINTEXT".into(),
            principal: super::super::Principal::anonymous(),
        }
    }

    #[test]
    fn every_supported_operation_is_allowed_without_an_authorizer() {
        let off = Authorizer::disabled();
        // READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
        assert_eq!(
            operation_bits(&off, &ctx(), ResourceType::Topic, "t"),
            0b1101_1111_1000
        );
        // CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
        assert_eq!(
            operation_bits(&off, &ctx(), ResourceType::Cluster, CLUSTER_NAME),
            0b1_1111_1010_0000
        );
        // READ, DELETE, DESCRIBE.
        assert_eq!(
            operation_bits(&off, &ctx(), ResourceType::Group, "g"),
            0b1_0100_1000
        );
    }
}
