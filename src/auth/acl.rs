//! Kafka's ACL model: resource patterns, access-control entries, the filters that select them,
//! with Kafka's wire codes and the names Kafka writes in its stored ACL JSON.

use serde::{Deserialize, Serialize};

/// The name of the one cluster resource, as in Kafka.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The literal resource name matching every resource of its type.
pub const WILDCARD_RESOURCE: &str = "*";
/// The principal matching every principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The host matching every host.
pub const WILDCARD_HOST: &str = "*";

/// Kafka's resource types that ACLs protect (wire codes of `ResourceType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    Topic = 2,
    Group = 3,
    Cluster = 4,
    TransactionalId = 5,
}

impl ResourceType {
    /// Every concrete type, in wire-code order.
    pub const ALL: [ResourceType; 4] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
    ];

    /// The type of a wire code (`None` for UNKNOWN, ANY and types not protected here).
    pub fn from_code(code: i8) -> Option<ResourceType> {
        Self::ALL.into_iter().find(|t| *t as i8 == code)
    }

    /// Kafka's name in ZooKeeper paths and change notifications (`Topic`, `TransactionalId`).
    pub fn zk_name(self) -> &'static str {
        match self {
            ResourceType::Topic => "Topic",
            ResourceType::Group => "Group",
            ResourceType::Cluster => "Cluster",
            ResourceType::TransactionalId => "TransactionalId",
        }
    }

    /// The type of a ZooKeeper name.
    pub fn from_zk_name(name: &str) -> Option<ResourceType> {
        Self::ALL.into_iter().find(|t| t.zk_name() == name)
    }

    /// The operations Kafka defines for this type (`AclEntry.supportedOperations`), `All`
    /// excluded.
    pub fn supported_operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
        }
    }
}

/// How a stored pattern's name matches resource names (wire codes of `PatternType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternType {
    /// The exact name, or every name when it is `*`.
    Literal = 3,
    /// Every name starting with the pattern's name.
    Prefixed = 4,
}

impl PatternType {
    /// The pattern type of a wire code (`None` for UNKNOWN, ANY and MATCH).
    pub fn from_code(code: i8) -> Option<PatternType> {
        match code {
            3 => Some(PatternType::Literal),
            4 => Some(PatternType::Prefixed),
            _ => None,
        }
    }
}

/// Kafka's ACL operations (wire codes of `AclOperation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    All = 2,
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

impl Operation {
    const EVERY: [Operation; 11] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
    ];

    /// The operation of a wire code (`None` for UNKNOWN, ANY and token operations).
    pub fn from_code(code: i8) -> Option<Operation> {
        Self::EVERY.into_iter().find(|o| *o as i8 == code)
    }

    /// Kafka's name in stored ACLs (`Read`, `DescribeConfigs`, ...).
    pub fn json_name(self) -> &'static str {
        match self {
            Operation::All => "All",
            Operation::Read => "Read",
            Operation::Write => "Write",
            Operation::Create => "Create",
            Operation::Delete => "Delete",
            Operation::Alter => "Alter",
            Operation::Describe => "Describe",
            Operation::ClusterAction => "ClusterAction",
            Operation::DescribeConfigs => "DescribeConfigs",
            Operation::AlterConfigs => "AlterConfigs",
            Operation::IdempotentWrite => "IdempotentWrite",
        }
    }

    /// The operation of a stored name.
    pub fn from_json_name(name: &str) -> Option<Operation> {
        Self::EVERY.into_iter().find(|o| o.json_name() == name)
    }

    /// The operations whose ALLOW also allows this one: Kafka's implications (READ, WRITE,
    /// DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS).
    pub fn allowed_by(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            Describe => &[Describe, Read, Write, Delete, Alter],
            DescribeConfigs => &[DescribeConfigs, AlterConfigs],
            Read => &[Read],
            Write => &[Write],
            Create => &[Create],
            Delete => &[Delete],
            Alter => &[Alter],
            ClusterAction => &[ClusterAction],
            AlterConfigs => &[AlterConfigs],
            IdempotentWrite => &[IdempotentWrite],
            All => &[All],
        }
    }
}

/// ALLOW or DENY (wire codes of `AclPermissionType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    Deny = 2,
    Allow = 3,
}

impl Permission {
    /// The permission of a wire code (`None` for UNKNOWN and ANY).
    pub fn from_code(code: i8) -> Option<Permission> {
        match code {
            2 => Some(Permission::Deny),
            3 => Some(Permission::Allow),
            _ => None,
        }
    }

    /// Kafka's name in stored ACLs.
    pub fn json_name(self) -> &'static str {
        match self {
            Permission::Deny => "Deny",
            Permission::Allow => "Allow",
        }
    }
}

/// What an ACL protects: a type and a name matched literally or as a prefix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourcePattern {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern_type: PatternType,
}

impl ResourcePattern {
    /// Whether this pattern covers the resource `name` of its type.
    pub fn covers(&self, name: &str) -> bool {
        match self.pattern_type {
            PatternType::Literal => self.name == name || self.name == WILDCARD_RESOURCE,
            PatternType::Prefixed => name.starts_with(&self.name),
        }
    }
}

/// One access-control entry: who, from where, what, allowed or denied.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccessControlEntry {
    /// `<type>:<name>`, `User:*` for everyone.
    pub principal: String,
    /// An IP address, or `*`.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// An entry bound to a pattern: one ACL.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    pub pattern: ResourcePattern,
    pub entry: AccessControlEntry,
}

/// Why an ACL or a filter from a request is refused (Kafka answers INVALID_REQUEST).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAcl {
    #[error("unknown resource type {0}")]
    ResourceType(i8),
    #[error("unknown or unusable pattern type {0}")]
    PatternType(i8),
    #[error("unknown or unusable operation {0}")]
    Operation(i8),
    #[error("unknown or unusable permission type {0}")]
    Permission(i8),
    #[error("invalid principal {0:?}: expected a string in format principalType:principalName")]
    Principal(String),
    #[error("invalid empty resource name")]
    EmptyName,
    #[error("the only valid name for the CLUSTER resource is {CLUSTER_NAME}")]
    ClusterName,
    #[error("ACL binding contains invalid resource name: {0}")]
    Name(String),
}

/// Checks a principal's `<type>:<name>` form, as Kafka parses it.
pub fn check_principal(principal: &str) -> Result<(), InvalidAcl> {
    match principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
        _ => Err(InvalidAcl::Principal(principal.to_string())),
    }
}

impl AclBinding {
    /// A binding from a CreateAcls creation's wire fields, checked as Kafka checks them.
    pub fn from_wire(
        resource_type: i8,
        name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<AclBinding, InvalidAcl> {
        let resource_type = ResourceType::from_code(resource_type)
            .ok_or(InvalidAcl::ResourceType(resource_type))?;
        let pattern_type =
            PatternType::from_code(pattern_type).ok_or(InvalidAcl::PatternType(pattern_type))?;
        let operation = Operation::from_code(operation).ok_or(InvalidAcl::Operation(operation))?;
        let permission =
            Permission::from_code(permission).ok_or(InvalidAcl::Permission(permission))?;
        if name.is_empty() {
            return Err(InvalidAcl::EmptyName);
        }
        if resource_type == ResourceType::Cluster && name != CLUSTER_NAME {
            return Err(InvalidAcl::ClusterName);
        }
        if name.contains('/') {
            return Err(InvalidAcl::Name(name.to_string()));
        }
        check_principal(principal)?;
        Ok(AclBinding {
            pattern: ResourcePattern {
                resource_type,
                name: name.to_string(),
                pattern_type,
            },
            entry: AccessControlEntry {
                principal: principal.to_string(),
                host: host.to_string(),
                operation,
                permission,
            },
        })
    }
}

/// How a filter selects pattern types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternFilter {
    /// ANY: every pattern type, names compared exactly.
    Any,
    /// MATCH: every pattern that covers the filter's name.
    Match,
    /// One pattern type, names compared exactly.
    Exactly(PatternType),
}

/// A DescribeAcls / DeleteAcls filter. `None` fields match anything (Kafka's null and ANY).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

impl AclFilter {
    /// A filter from its wire fields; ANY (1) stands for "any", UNKNOWN and unknown codes are
    /// refused.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<AclFilter, InvalidAcl> {
        const ANY: i8 = 1;
        let resource_type = match resource_type {
            ANY => None,
            code => Some(ResourceType::from_code(code).ok_or(InvalidAcl::ResourceType(code))?),
        };
        let pattern = match pattern_type {
            ANY => PatternFilter::Any,
            2 => PatternFilter::Match,
            code => PatternFilter::Exactly(
                PatternType::from_code(code).ok_or(InvalidAcl::PatternType(code))?,
            ),
        };
        let operation = match operation {
            ANY => None,
            code => Some(Operation::from_code(code).ok_or(InvalidAcl::Operation(code))?),
        };
        let permission = match permission {
            ANY => None,
            code => Some(Permission::from_code(code).ok_or(InvalidAcl::Permission(code))?),
        };
        Ok(AclFilter {
            resource_type,
            name: name.map(str::to_string),
            pattern,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation,
            permission,
        })
    }

    /// Whether the filter selects this ACL (Kafka's `AclBindingFilter.matches`).
    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.matches_pattern(&acl.pattern) && self.matches_entry(&acl.entry)
    }

    fn matches_pattern(&self, pattern: &ResourcePattern) -> bool {
        if self
            .resource_type
            .is_some_and(|t| t != pattern.resource_type)
        {
            return false;
        }
        if let PatternFilter::Exactly(t) = self.pattern {
            if t != pattern.pattern_type {
                return false;
            }
        }
        let Some(name) = &self.name else {
            return true;
        };
        match self.pattern {
            PatternFilter::Match => pattern.covers(name),
            _ => *name == pattern.name,
        }
    }

    fn matches_entry(&self, entry: &AccessControlEntry) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|p| *p == entry.principal)
            && self.host.as_ref().is_none_or(|h| *h == entry.host)
            && self.operation.is_none_or(|o| o == entry.operation)
            && self.permission.is_none_or(|p| p == entry.permission)
    }
}

/// One stored entry in Kafka's ZooKeeper JSON form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEntry {
    pub principal: String,
    pub permission_type: String,
    pub operation: String,
    pub host: String,
}

/// The ACLs of one resource pattern in Kafka's ZooKeeper JSON form:
/// `{"version":1,"acls":[{"principal":..,"permissionType":..,"operation":..,"host":..}]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAcls {
    pub version: i32,
    pub acls: Vec<StoredEntry>,
}

impl StoredAcls {
    /// The stored form of these entries.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = &'a AccessControlEntry>) -> Self {
        StoredAcls {
            version: 1,
            acls: entries
                .into_iter()
                .map(|e| StoredEntry {
                    principal: e.principal.clone(),
                    permission_type: e.permission.json_name().to_string(),
                    operation: e.operation.json_name().to_string(),
                    host: e.host.clone(),
                })
                .collect(),
        }
    }

    /// The entries, skipping any whose operation or permission is unknown.
    pub fn entries(&self) -> Vec<AccessControlEntry> {
        self.acls
            .iter()
            .filter_map(|e| {
                let permission = match e.permission_type.as_str() {
                    "Allow" => Permission::Allow,
                    "Deny" => Permission::Deny,
                    _ => return None,
                };
                Some(AccessControlEntry {
                    principal: e.principal.clone(),
                    host: e.host.clone(),
                    operation: Operation::from_json_name(&e.operation)?,
                    permission,
                })
            })
            .collect()
    }
}
