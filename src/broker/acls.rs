//! The broker's authorizer: the configured [`AuthorizerSettings`] (none: every check passes),
//! the ACLs in force ([`AclCache`]) and their [`AclStore`] (a file when standalone, ZooKeeper
//! in cluster mode). Handlers ask through `api::authorized::authorize`; CreateAcls and
//! DeleteAcls change the ACLs here, stored before they answer. In cluster mode the ACLs
//! other brokers (or Kafka's tools) change arrive through [`Authorizer::follow`].

use std::net::IpAddr;
use std::sync::Arc;

use tokio::task::JoinSet;
use tracing::info;

use crate::auth::acl::{AclBinding, AclFilter, Operation, ResourceType};
use crate::auth::{authorize, authorize_any, AclSet, AuthorizerSettings, Requester};
use crate::cluster::acls::{AclCache, AclStore, AclStoreError};
use crate::config::BrokerConfig;
use crate::util::task::Shutdown;

/// The ACLs and the rules that apply them.
#[derive(Debug)]
pub struct Authorizer {
    settings: Option<AuthorizerSettings>,
    acls: Arc<AclCache>,
    store: Option<AclStore>,
}

impl Authorizer {
    /// No authorization: every check passes, the ACL APIs answer SECURITY_DISABLED.
    pub fn disabled() -> Authorizer {
        Authorizer {
            settings: None,
            acls: Arc::new(AclCache::default()),
            store: None,
        }
    }

    /// The authorizer the configuration asks for, with its stored ACLs loaded (in cluster
    /// mode over a ZooKeeper session of its own).
    pub async fn open(config: &BrokerConfig) -> anyhow::Result<Authorizer> {
        let Some(settings) = AuthorizerSettings::of(config)? else {
            return Ok(Authorizer::disabled());
        };
        let store = AclStore::open(config).await?;
        let acls = store.load().await?;
        info!(
            acls = acls.bindings().count(),
            store = %store.location(),
            super_users = settings.super_users.len(),
            allow_everyone_if_no_acl_found = settings.allow_if_no_acl,
            "ACL authorizer enabled"
        );
        Ok(Authorizer {
            settings: Some(settings),
            acls: Arc::new(AclCache::new(acls)),
            store: Some(store),
        })
    }

    /// Starts following ACL changes made by other brokers (cluster mode) until `shutdown`.
    pub fn follow(&self, shutdown: &Shutdown, tasks: &mut JoinSet<()>) {
        if let Some(store) = &self.store {
            store.follow(self.acls.clone(), shutdown.clone(), tasks);
        }
    }

    /// Whether an authorizer is configured.
    pub fn enabled(&self) -> bool {
        self.settings.is_some()
    }

    /// Whether `principal` at `host` may perform `operation` on the resource; always true
    /// without an authorizer.
    pub fn allows(
        &self,
        principal: &str,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let Some(settings) = &self.settings else {
            return true;
        };
        authorize(
            settings,
            &self.acls.snapshot(),
            Requester { principal, host },
            operation,
            resource_type,
            name,
        )
    }

    /// Whether `principal` at `host` may perform `operation` on some resource of the type.
    pub fn allows_any(
        &self,
        principal: &str,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        let Some(settings) = &self.settings else {
            return true;
        };
        authorize_any(
            settings,
            &self.acls.snapshot(),
            Requester { principal, host },
            operation,
            resource_type,
        )
    }

    /// The ACLs `filter` selects.
    pub fn describe(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.acls.snapshot().matching(filter)
    }

    /// Adds ACLs and stores them.
    pub async fn create(&self, bindings: Vec<AclBinding>) -> Result<(), AclStoreError> {
        match &self.store {
            Some(store) => store.create(&self.acls, bindings).await,
            None => {
                let _guard = self.acls.lock_changes().await;
                let mut acls: AclSet = (*self.acls.snapshot()).clone();
                for b in bindings {
                    acls.add(b);
                }
                self.acls.replace(acls);
                Ok(())
            }
        }
    }

    /// Removes the ACLs each filter selects and stores the rest; per filter, what it removed.
    pub async fn delete(
        &self,
        filters: &[AclFilter],
    ) -> Result<Vec<Vec<AclBinding>>, AclStoreError> {
        match &self.store {
            Some(store) => store.delete(&self.acls, filters).await,
            None => {
                let _guard = self.acls.lock_changes().await;
                let mut acls: AclSet = (*self.acls.snapshot()).clone();
                let removed = filters.iter().map(|f| acls.remove_matching(f)).collect();
                self.acls.replace(acls);
                Ok(removed)
            }
        }
    }
}
