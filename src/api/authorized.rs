//! The operations a client may perform on a resource, as Metadata (v8+), DescribeCluster and
//! DescribeGroups (v3+) report them when asked: a bit field with bit `1 << code` set for each of
//! Kafka's ACL operations allowed. With no authorizer configured Kafka allows every operation a
//! resource supports, and so does this broker until the security issue brings an authorizer,
//! which will narrow the answer to what `ctx.principal` may do.

use super::RequestContext;

/// "Not provided": what the field carries when the client did not ask for it.
pub const NOT_PROVIDED: i32 = i32::MIN;

/// Kafka's ACL operations (`AclOperation`) with their wire codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum AclOperation {
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
}

/// The kinds of resource whose operations are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    Topic,
    Cluster,
    Group,
}

impl ResourceKind {
    /// The operations Kafka defines for this kind of resource (`AclEntry.supportedOperations`).
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            ResourceKind::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceKind::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceKind::Group => &[Read, Describe, Delete],
        }
    }
}

/// The bit field of the operations the request's principal may perform on a resource of `kind`
/// (every supported one: no authorizer is configured).
pub fn authorized_operations(_ctx: &RequestContext, kind: ResourceKind) -> i32 {
    kind.supported_operations()
        .iter()
        .fold(0, |bits, op| bits | 1 << (*op as i8))
}

/// The field's value: the operations if the client asked for them, else [`NOT_PROVIDED`].
pub fn if_requested(requested: bool, ctx: &RequestContext, kind: ResourceKind) -> i32 {
    if requested {
        authorized_operations(ctx, kind)
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
        // READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
        assert_eq!(
            authorized_operations(&ctx(), ResourceKind::Topic),
            0b1101_1111_1000
        );
        // CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
        assert_eq!(
            authorized_operations(&ctx(), ResourceKind::Cluster),
            0b1_1111_1010_0000
        );
        // READ, DELETE, DESCRIBE.
        assert_eq!(
            authorized_operations(&ctx(), ResourceKind::Group),
            0b1_0100_1000
        );
        assert_eq!(
            if_requested(false, &ctx(), ResourceKind::Group),
            NOT_PROVIDED
        );
    }
}
