//! CreateAcls, DescribeAcls and DeleteAcls (KIP-140, prefixed patterns from v1). Creating and
//! deleting need ALTER on the cluster, describing DESCRIBE; without an authorizer each answers
//! SECURITY_DISABLED, and a filter or ACL with unknown or unusable codes INVALID_REQUEST.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::*;
use tracing::{info, warn};

use super::authorized::authorize_cluster;
use super::{str_bytes, RequestContext};
use crate::auth::acl::{AclBinding, AclFilter, Operation, ResourcePattern};
use crate::broker::Broker;

const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";

/// Why a request is refused as a whole: no authorizer, or not allowed.
fn refused(
    broker: &Broker,
    ctx: &RequestContext,
    needs: Operation,
) -> Option<(ResponseError, String)> {
    if !broker.authorizer.enabled() {
        return Some((ResponseError::SecurityDisabled, NO_AUTHORIZER.to_string()));
    }
    if !authorize_cluster(broker, ctx, needs) {
        return Some((
            ResponseError::ClusterAuthorizationFailed,
            format!("{needs:?} on the cluster is needed"),
        ));
    }
    None
}

pub async fn create_acls(
    broker: &Broker,
    ctx: &RequestContext,
    req: CreateAclsRequest,
) -> CreateAclsResponse {
    let failed = |code: ResponseError, message: String| {
        AclCreationResult::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)))
    };
    if let Some((code, message)) = refused(broker, ctx, Operation::Alter) {
        let results = req
            .creations
            .iter()
            .map(|_| failed(code, message.clone()))
            .collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let parsed: Vec<Result<AclBinding, String>> = req
        .creations
        .iter()
        .map(|c| {
            AclBinding::from_wire(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
            .map_err(|e| e.to_string())
        })
        .collect();
    let valid: Vec<AclBinding> = parsed.iter().filter_map(|p| p.clone().ok()).collect();
    let stored = if valid.is_empty() {
        Ok(())
    } else {
        broker.authorizer.create(valid.clone()).await
    };
    if let Err(e) = &stored {
        warn!(error = %e, "storing ACLs failed");
    } else if !valid.is_empty() {
        info!(principal = %ctx.principal, count = valid.len(), "ACLs created");
    }
    let results = parsed
        .into_iter()
        .map(|p| match (p, &stored) {
            (Err(message), _) => failed(ResponseError::InvalidRequest, message),
            (Ok(_), Err(e)) => failed(ResponseError::UnknownServerError, e.to_string()),
            (Ok(_), Ok(())) => AclCreationResult::default(),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

pub async fn describe_acls(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let failed = |code: ResponseError, message: String| {
        DescribeAclsResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)))
    };
    if let Some((code, message)) = refused(broker, ctx, Operation::Describe) {
        return failed(code, message);
    }
    let filter = match AclFilter::from_wire(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        req.pattern_type_filter,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    ) {
        Ok(f) => f,
        Err(e) => return failed(ResponseError::InvalidRequest, e.to_string()),
    };
    let mut by_pattern: BTreeMap<ResourcePattern, Vec<AclDescription>> = BTreeMap::new();
    for b in broker.authorizer.describe(&filter) {
        by_pattern.entry(b.pattern).or_default().push(
            AclDescription::default()
                .with_principal(str_bytes(b.entry.principal))
                .with_host(str_bytes(b.entry.host))
                .with_operation(b.entry.operation as i8)
                .with_permission_type(b.entry.permission as i8),
        );
    }
    let resources = by_pattern
        .into_iter()
        .map(|(p, acls)| {
            DescribeAclsResource::default()
                .with_resource_type(p.resource_type as i8)
                .with_resource_name(str_bytes(p.name))
                .with_pattern_type(p.pattern_type as i8)
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

pub async fn delete_acls(
    broker: &Broker,
    ctx: &RequestContext,
    req: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let failed = |code: ResponseError, message: String| {
        DeleteAclsFilterResult::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)))
    };
    if let Some((code, message)) = refused(broker, ctx, Operation::Alter) {
        let results = req
            .filters
            .iter()
            .map(|_| failed(code, message.clone()))
            .collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let parsed: Vec<Result<AclFilter, String>> = req
        .filters
        .iter()
        .map(|f| {
            AclFilter::from_wire(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                f.pattern_type_filter,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            )
            .map_err(|e| e.to_string())
        })
        .collect();
    let valid: Vec<AclFilter> = parsed.iter().filter_map(|p| p.clone().ok()).collect();
    let mut removed = match broker.authorizer.delete(&valid).await {
        Ok(removed) => removed.into_iter(),
        Err(e) => {
            warn!(error = %e, "storing ACLs failed");
            let results = parsed
                .iter()
                .map(|_| failed(ResponseError::UnknownServerError, e.to_string()))
                .collect();
            return DeleteAclsResponse::default().with_filter_results(results);
        }
    };
    let results = parsed
        .into_iter()
        .map(|p| match p {
            Err(message) => failed(ResponseError::InvalidRequest, message),
            Ok(_) => DeleteAclsFilterResult::default().with_matching_acls(
                removed
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .map(matching_acl)
                    .collect(),
            ),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn matching_acl(b: AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(b.pattern.resource_type as i8)
        .with_resource_name(str_bytes(b.pattern.name))
        .with_pattern_type(b.pattern.pattern_type as i8)
        .with_principal(str_bytes(b.entry.principal))
        .with_host(str_bytes(b.entry.host))
        .with_operation(b.entry.operation as i8)
        .with_permission_type(b.entry.permission as i8)
}
