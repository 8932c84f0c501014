//! The decisions: Kafka's AclAuthorizer rules over an in-memory set of ACLs. Super users may do
//! anything; otherwise the ACLs matching the resource (its literal name, the literal `*` of its
//! type, and every prefix of its name) decide: with none, `allow.everyone.if.no.acl.found`; with
//! some, a matching DENY (for the operation or ALL) refuses, else a matching ALLOW (for the
//! operation, an operation implying it, or ALL) allows.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

use super::acl::{
    AccessControlEntry, AclBinding, AclFilter, Operation, PatternType, Permission, ResourcePattern,
    ResourceType, WILDCARD_HOST, WILDCARD_PRINCIPAL,
};

/// Kafka's authorizer class names that turn ACLs on.
pub const ACL_AUTHORIZER_CLASSES: [&str; 2] = [
    "kafka.security.authorizer.AclAuthorizer",
    "kafka.security.auth.SimpleAclAuthorizer",
];

/// The authorizer's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizerSettings {
    /// `super.users`: principals allowed everything.
    pub super_users: HashSet<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
}

/// A refused `authorizer.class.name`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "authorizer.class.name={0} is not supported: only kafka.security.authorizer.AclAuthorizer \
     (or kafka.security.auth.SimpleAclAuthorizer) is, or leave it empty for no authorization"
)]
pub struct UnsupportedAuthorizer(pub String);

impl AuthorizerSettings {
    /// The settings from the three keys; `Ok(None)` when `authorizer.class.name` is empty (no
    /// authorization), an error for a class other than Kafka's ACL authorizer.
    pub fn from_keys(
        class_name: &str,
        super_users: &str,
        allow_if_no_acl: bool,
    ) -> Result<Option<AuthorizerSettings>, UnsupportedAuthorizer> {
        let class_name = class_name.trim();
        if class_name.is_empty() {
            return Ok(None);
        }
        if !ACL_AUTHORIZER_CLASSES.contains(&class_name) {
            return Err(UnsupportedAuthorizer(class_name.to_string()));
        }
        let super_users = super_users
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        Ok(Some(AuthorizerSettings {
            super_users,
            allow_if_no_acl,
        }))
    }
}

impl AuthorizerSettings {
    /// The settings of a broker configuration (`authorizer.class.name`, `super.users`,
    /// `allow.everyone.if.no.acl.found`).
    pub fn of(
        config: &crate::config::BrokerConfig,
    ) -> Result<Option<AuthorizerSettings>, UnsupportedAuthorizer> {
        Self::from_keys(
            config.effective("authorizer.class.name").unwrap_or(""),
            config.effective("super.users").unwrap_or(""),
            config
                .effective("allow.everyone.if.no.acl.found")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        )
    }
}

/// Every ACL, grouped by resource pattern.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclSet {
    by_pattern: BTreeMap<ResourcePattern, BTreeSet<AccessControlEntry>>,
}

impl AclSet {
    /// The set of these ACLs.
    pub fn from_bindings(bindings: impl IntoIterator<Item = AclBinding>) -> AclSet {
        let mut set = AclSet::default();
        for b in bindings {
            set.add(b);
        }
        set
    }

    /// Adds an ACL; false if it was there already.
    pub fn add(&mut self, binding: AclBinding) -> bool {
        self.by_pattern
            .entry(binding.pattern)
            .or_default()
            .insert(binding.entry)
    }

    /// Removes and returns the ACLs `filter` selects.
    pub fn remove_matching(&mut self, filter: &AclFilter) -> Vec<AclBinding> {
        let removed = self.matching(filter);
        for b in &removed {
            if let Some(entries) = self.by_pattern.get_mut(&b.pattern) {
                entries.remove(&b.entry);
                if entries.is_empty() {
                    self.by_pattern.remove(&b.pattern);
                }
            }
        }
        removed
    }

    /// The ACLs `filter` selects.
    pub fn matching(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.bindings().filter(|b| filter.matches(b)).collect()
    }

    /// Every ACL.
    pub fn bindings(&self) -> impl Iterator<Item = AclBinding> + '_ {
        self.by_pattern.iter().flat_map(|(pattern, entries)| {
            entries.iter().map(|entry| AclBinding {
                pattern: pattern.clone(),
                entry: entry.clone(),
            })
        })
    }

    /// The entries of one pattern.
    pub fn entries_of(&self, pattern: &ResourcePattern) -> Vec<AccessControlEntry> {
        self.by_pattern
            .get(pattern)
            .map(|e| e.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Replaces the entries of one pattern (none: the pattern goes).
    pub fn set_entries(&mut self, pattern: ResourcePattern, entries: Vec<AccessControlEntry>) {
        if entries.is_empty() {
            self.by_pattern.remove(&pattern);
        } else {
            self.by_pattern
                .insert(pattern, entries.into_iter().collect());
        }
    }

    /// The patterns holding ACLs.
    pub fn patterns(&self) -> impl Iterator<Item = &ResourcePattern> {
        self.by_pattern.keys()
    }

    /// The entries of every pattern covering the resource `name` of `resource_type`.
    fn covering<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AccessControlEntry> {
        self.by_pattern
            .iter()
            .filter(move |(p, _)| p.resource_type == resource_type && p.covers(name))
            .flat_map(|(_, entries)| entries.iter())
    }
}

/// Who asks, and from where.
#[derive(Clone, Copy, Debug)]
pub struct Requester<'a> {
    /// `<type>:<name>`.
    pub principal: &'a str,
    pub host: IpAddr,
}

/// Whether `who` may perform `operation` on the resource `name` of `resource_type`.
pub fn authorize(
    settings: &AuthorizerSettings,
    acls: &AclSet,
    who: Requester<'_>,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    if settings.super_users.contains(who.principal) {
        return true;
    }
    let entries: Vec<&AccessControlEntry> = acls.covering(resource_type, name).collect();
    if entries.is_empty() {
        return settings.allow_if_no_acl;
    }
    let host = who.host.to_string();
    let applies = |e: &AccessControlEntry, op: Operation, permission: Permission| {
        e.permission == permission
            && (e.principal == who.principal || e.principal == WILDCARD_PRINCIPAL)
            && (e.operation == op || e.operation == Operation::All)
            && (e.host == WILDCARD_HOST || e.host == host)
    };
    if entries
        .iter()
        .any(|e| applies(e, operation, Permission::Deny))
    {
        return false;
    }
    operation
        .allowed_by()
        .iter()
        .any(|op| entries.iter().any(|e| applies(e, *op, Permission::Allow)))
}

/// Whether `who` may perform `operation` on some resource of `resource_type` (Kafka's
/// `authorizeByResourceType`, used by idempotent InitProducerId: WRITE on any topic): a
/// literal `*` DENY refuses; `allow.everyone.if.no.acl.found` allows; otherwise some ALLOW
/// pattern must not be covered by a DENY (the same literal name, or a denied prefix of it).
pub fn authorize_any(
    settings: &AuthorizerSettings,
    acls: &AclSet,
    who: Requester<'_>,
    operation: Operation,
    resource_type: ResourceType,
) -> bool {
    if settings.super_users.contains(who.principal) {
        return true;
    }
    let host = who.host.to_string();
    let host = host.as_str();
    let matching = |permission: Permission| {
        acls.by_pattern
            .iter()
            .filter(move |(p, _)| p.resource_type == resource_type)
            .filter(move |(_, entries)| {
                entries.iter().any(|e| {
                    e.permission == permission
                        && (e.principal == who.principal || e.principal == WILDCARD_PRINCIPAL)
                        && (e.operation == operation || e.operation == Operation::All)
                        && (e.host == WILDCARD_HOST || e.host == host)
                })
            })
            .map(|(p, _)| p)
    };
    let denies: Vec<&ResourcePattern> = matching(Permission::Deny).collect();
    if denies
        .iter()
        .any(|p| p.pattern_type == PatternType::Literal && p.name == super::acl::WILDCARD_RESOURCE)
    {
        return false;
    }
    if settings.allow_if_no_acl {
        return true;
    }
    let denied_prefix = |name: &str| {
        denies
            .iter()
            .any(|d| d.pattern_type == PatternType::Prefixed && name.starts_with(&d.name))
    };
    matching(Permission::Allow).any(|a| match a.pattern_type {
        PatternType::Literal if a.name == super::acl::WILDCARD_RESOURCE => true,
        PatternType::Literal => {
            !denied_prefix(&a.name)
                && !denies
                    .iter()
                    .any(|d| d.pattern_type == PatternType::Literal && d.name == a.name)
        }
        PatternType::Prefixed => !denied_prefix(&a.name),
    })
}

/// The literal pattern of a resource, as checks name it.
pub fn literal(resource_type: ResourceType, name: &str) -> ResourcePattern {
    ResourcePattern {
        resource_type,
        name: name.to_string(),
        pattern_type: PatternType::Literal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::acl::{PatternFilter, CLUSTER_NAME};

    const ALICE: &str = "User:alice";

    fn who(principal: &str) -> Requester<'_> {
        Requester {
            principal,
            host: IpAddr::from([10, 0, 0, 1]),
        }
    }

    fn acl(
        t: ResourceType,
        name: &str,
        pattern: PatternType,
        principal: &str,
        host: &str,
        op: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            pattern: ResourcePattern {
                resource_type: t,
                name: name.into(),
                pattern_type: pattern,
            },
            entry: AccessControlEntry {
                principal: principal.into(),
                host: host.into(),
                operation: op,
                permission,
            },
        }
    }

    fn topic_acl(name: &str, op: Operation, permission: Permission) -> AclBinding {
        acl(
            ResourceType::Topic,
            name,
            PatternType::Literal,
            ALICE,
            "*",
            op,
            permission,
        )
    }

    fn strict() -> AuthorizerSettings {
        AuthorizerSettings::default()
    }

    fn can(acls: &AclSet, principal: &str, op: Operation, topic: &str) -> bool {
        authorize(
            &strict(),
            acls,
            who(principal),
            op,
            ResourceType::Topic,
            topic,
        )
    }

    #[test]
    fn no_acl_denies_unless_allow_everyone() {
        let acls = AclSet::default();
        assert!(!can(&acls, ALICE, Operation::Read, "t"));
        let open = AuthorizerSettings {
            allow_if_no_acl: true,
            ..strict()
        };
        assert!(authorize(
            &open,
            &acls,
            who(ALICE),
            Operation::Read,
            ResourceType::Topic,
            "t"
        ));
        // An ACL for someone else on the resource means "ACLs found": allow-everyone no longer applies.
        let acls = AclSet::from_bindings([acl(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            "User:bob",
            "*",
            Operation::Read,
            Permission::Allow,
        )]);
        assert!(!authorize(
            &open,
            &acls,
            who(ALICE),
            Operation::Read,
            ResourceType::Topic,
            "t"
        ));
        assert!(authorize(
            &open,
            &acls,
            who(ALICE),
            Operation::Read,
            ResourceType::Topic,
            "u"
        ));
    }

    #[test]
    fn super_users_bypass_acls() {
        let settings = AuthorizerSettings::from_keys(
            ACL_AUTHORIZER_CLASSES[0],
            " User:admin ; User:kafka",
            false,
        )
        .unwrap()
        .unwrap();
        let acls = AclSet::from_bindings([topic_acl("t", Operation::All, Permission::Deny)]);
        for su in ["User:admin", "User:kafka"] {
            assert!(authorize(
                &settings,
                &acls,
                who(su),
                Operation::Write,
                ResourceType::Topic,
                "t"
            ));
        }
        assert!(!authorize(
            &settings,
            &acls,
            who(ALICE),
            Operation::Write,
            ResourceType::Topic,
            "t"
        ));
    }

    #[test]
    fn allow_grants_only_its_operation_and_implied_describe() {
        let acls = AclSet::from_bindings([topic_acl("t", Operation::Write, Permission::Allow)]);
        assert!(can(&acls, ALICE, Operation::Write, "t"));
        assert!(can(&acls, ALICE, Operation::Describe, "t"));
        assert!(!can(&acls, ALICE, Operation::Read, "t"));
        assert!(!can(&acls, ALICE, Operation::DescribeConfigs, "t"));
        for implying in [Operation::Read, Operation::Delete, Operation::Alter] {
            let acls = AclSet::from_bindings([topic_acl("t", implying, Permission::Allow)]);
            assert!(can(&acls, ALICE, Operation::Describe, "t"), "{implying:?}");
        }
        let acls =
            AclSet::from_bindings([topic_acl("t", Operation::AlterConfigs, Permission::Allow)]);
        assert!(can(&acls, ALICE, Operation::DescribeConfigs, "t"));
        assert!(!can(&acls, ALICE, Operation::Describe, "t"));
        let acls = AclSet::from_bindings([topic_acl("t", Operation::Create, Permission::Allow)]);
        assert!(!can(&acls, ALICE, Operation::Describe, "t"));
    }

    #[test]
    fn deny_wins_and_does_not_imply() {
        let acls = AclSet::from_bindings([
            topic_acl("t", Operation::All, Permission::Allow),
            topic_acl("t", Operation::Write, Permission::Deny),
        ]);
        assert!(!can(&acls, ALICE, Operation::Write, "t"));
        assert!(can(&acls, ALICE, Operation::Read, "t"));
        // A DENY on READ does not deny the DESCRIBE that READ would imply.
        let acls = AclSet::from_bindings([
            topic_acl("t", Operation::Read, Permission::Allow),
            topic_acl("t", Operation::Read, Permission::Deny),
            topic_acl("t", Operation::Describe, Permission::Allow),
        ]);
        assert!(!can(&acls, ALICE, Operation::Read, "t"));
        assert!(can(&acls, ALICE, Operation::Describe, "t"));
        // DENY ALL denies everything.
        let acls = AclSet::from_bindings([
            topic_acl("t", Operation::Read, Permission::Allow),
            topic_acl("t", Operation::All, Permission::Deny),
        ]);
        assert!(!can(&acls, ALICE, Operation::Read, "t"));
        assert!(!can(&acls, ALICE, Operation::Describe, "t"));
    }

    #[test]
    fn wildcards_prefixes_principals_and_hosts() {
        let acls = AclSet::from_bindings([
            acl(
                ResourceType::Topic,
                "*",
                PatternType::Literal,
                "User:*",
                "*",
                Operation::Read,
                Permission::Allow,
            ),
            acl(
                ResourceType::Topic,
                "pay",
                PatternType::Prefixed,
                ALICE,
                "10.0.0.1",
                Operation::Write,
                Permission::Allow,
            ),
            acl(
                ResourceType::Topic,
                "payroll",
                PatternType::Prefixed,
                ALICE,
                "*",
                Operation::Write,
                Permission::Deny,
            ),
        ]);
        assert!(can(&acls, "User:bob", Operation::Read, "anything"));
        assert!(!can(&acls, "User:bob", Operation::Write, "payments"));
        assert!(can(&acls, ALICE, Operation::Write, "payments"));
        assert!(!can(&acls, ALICE, Operation::Write, "payroll-2024"));
        assert!(!can(&acls, ALICE, Operation::Write, "pa"));
        let elsewhere = Requester {
            principal: ALICE,
            host: IpAddr::from([10, 0, 0, 2]),
        };
        assert!(!authorize(
            &strict(),
            &acls,
            elsewhere,
            Operation::Write,
            ResourceType::Topic,
            "payments"
        ));
        // Another resource type is another namespace.
        assert!(!authorize(
            &strict(),
            &acls,
            who(ALICE),
            Operation::Read,
            ResourceType::Group,
            "anything"
        ));
    }

    #[test]
    fn by_resource_type_needs_an_undenied_allow() {
        let write = |acls: &AclSet| {
            authorize_any(
                &strict(),
                acls,
                who(ALICE),
                Operation::Write,
                ResourceType::Topic,
            )
        };
        assert!(!write(&AclSet::default()));
        assert!(write(&AclSet::from_bindings([topic_acl(
            "t",
            Operation::Write,
            Permission::Allow
        )])));
        assert!(!write(&AclSet::from_bindings([topic_acl(
            "t",
            Operation::Read,
            Permission::Allow
        )])));
        assert!(!write(&AclSet::from_bindings([
            topic_acl("t", Operation::Write, Permission::Allow),
            topic_acl("t", Operation::Write, Permission::Deny),
        ])));
        assert!(!write(&AclSet::from_bindings([
            topic_acl("t", Operation::All, Permission::Allow),
            acl(
                ResourceType::Topic,
                "",
                PatternType::Prefixed,
                ALICE,
                "*",
                Operation::Write,
                Permission::Deny
            ),
        ])));
        assert!(!write(&AclSet::from_bindings([
            topic_acl("t", Operation::Write, Permission::Allow),
            topic_acl("*", Operation::Write, Permission::Deny),
        ])));
    }

    #[test]
    fn other_authorizers_are_refused() {
        assert_eq!(AuthorizerSettings::from_keys("", "User:a", true), Ok(None));
        assert!(
            AuthorizerSettings::from_keys(ACL_AUTHORIZER_CLASSES[1], "", false)
                .unwrap()
                .is_some()
        );
        let err = AuthorizerSettings::from_keys(
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "",
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("StandardAuthorizer"));
    }

    #[test]
    fn creation_is_validated_as_kafka_does() {
        use crate::auth::acl::InvalidAcl;
        let ok = AclBinding::from_wire(4, CLUSTER_NAME, 3, ALICE, "*", 9, 3).unwrap();
        assert_eq!(ok.pattern.resource_type, ResourceType::Cluster);
        assert_eq!(
            AclBinding::from_wire(4, "c", 3, ALICE, "*", 9, 3),
            Err(InvalidAcl::ClusterName)
        );
        assert_eq!(
            AclBinding::from_wire(2, "", 3, ALICE, "*", 3, 3),
            Err(InvalidAcl::EmptyName)
        );
        assert_eq!(
            AclBinding::from_wire(2, "t", 1, ALICE, "*", 3, 3),
            Err(InvalidAcl::PatternType(1))
        );
        assert_eq!(
            AclBinding::from_wire(2, "t", 3, ALICE, "*", 1, 3),
            Err(InvalidAcl::Operation(1))
        );
        assert_eq!(
            AclBinding::from_wire(2, "t", 3, ALICE, "*", 3, 1),
            Err(InvalidAcl::Permission(1))
        );
        assert_eq!(
            AclBinding::from_wire(1, "t", 3, ALICE, "*", 3, 3),
            Err(InvalidAcl::ResourceType(1))
        );
        assert!(matches!(
            AclBinding::from_wire(2, "t", 3, "alice", "*", 3, 3),
            Err(InvalidAcl::Principal(_))
        ));
        assert!(matches!(
            AclBinding::from_wire(2, "a/b", 3, ALICE, "*", 3, 3),
            Err(InvalidAcl::Name(_))
        ));
    }

    #[test]
    fn filters_select_and_remove() {
        let mut acls = AclSet::from_bindings([
            topic_acl("payments", Operation::Read, Permission::Allow),
            acl(
                ResourceType::Topic,
                "pay",
                PatternType::Prefixed,
                ALICE,
                "*",
                Operation::Write,
                Permission::Allow,
            ),
            acl(
                ResourceType::Topic,
                "*",
                PatternType::Literal,
                "User:bob",
                "*",
                Operation::Read,
                Permission::Allow,
            ),
            acl(
                ResourceType::Group,
                "payments",
                PatternType::Literal,
                ALICE,
                "*",
                Operation::Read,
                Permission::Allow,
            ),
        ]);
        let any = AclFilter::from_wire(1, None, 1, None, None, 1, 1).unwrap();
        assert_eq!(acls.matching(&any).len(), 4);
        let matching = AclFilter::from_wire(2, Some("payments"), 2, None, None, 1, 1).unwrap();
        assert_eq!(matching.pattern, PatternFilter::Match);
        assert_eq!(acls.matching(&matching).len(), 3);
        let exact_any = AclFilter::from_wire(2, Some("payments"), 1, None, None, 1, 1).unwrap();
        assert_eq!(acls.matching(&exact_any).len(), 1);
        let prefixed = AclFilter::from_wire(1, None, 4, Some(ALICE), None, 4, 3).unwrap();
        assert_eq!(acls.remove_matching(&prefixed).len(), 1);
        assert_eq!(acls.matching(&any).len(), 3);
        assert!(AclFilter::from_wire(0, None, 1, None, None, 1, 1).is_err());
        assert!(AclFilter::from_wire(1, None, 0, None, None, 1, 1).is_err());
    }
}
