//! The broker's authorizer: the configured [`AuthorizerSettings`] (none: every check passes),
//! the ACLs in force and their store. Handlers ask through `api::authorized::authorize`;
//! CreateAcls and DeleteAcls change the ACLs here, written to the store before they answer.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use tracing::info;

use crate::auth::acl::{AclBinding, AclFilter, Operation, ResourceType};
use crate::auth::{authorize, authorize_any, AclSet, AuthorizerSettings, Requester};
use crate::cluster::acls::{AclStoreError, FileAclStore};
use crate::config::BrokerConfig;

/// The ACLs and the rules that apply them.
#[derive(Debug)]
pub struct Authorizer {
    settings: Option<AuthorizerSettings>,
    acls: RwLock<Arc<AclSet>>,
    store: Option<FileAclStore>,
    /// Serializes changes (read, change, write, publish).
    changes: tokio::sync::Mutex<()>,
}

impl Authorizer {
    /// No authorization: every check passes, the ACL APIs answer SECURITY_DISABLED.
    pub fn disabled() -> Authorizer {
        Authorizer {
            settings: None,
            acls: RwLock::new(Arc::new(AclSet::default())),
            store: None,
            changes: tokio::sync::Mutex::new(()),
        }
    }

    /// The authorizer the configuration asks for, with its stored ACLs loaded.
    pub fn open(config: &BrokerConfig) -> anyhow::Result<Authorizer> {
        let Some(settings) = AuthorizerSettings::of(config)? else {
            return Ok(Authorizer::disabled());
        };
        if config.zookeeper_connect.is_some() {
            anyhow::bail!(
                "authorizer.class.name is set, but ACLs are not yet supported in cluster mode \
                 (zookeeper.connect): only standalone brokers authorize for now"
            );
        }
        let store = FileAclStore::in_dir(&config.log_dirs[0]);
        let acls = store.load()?;
        info!(
            acls = acls.bindings().count(),
            super_users = settings.super_users.len(),
            allow_everyone_if_no_acl_found = settings.allow_if_no_acl,
            "ACL authorizer enabled"
        );
        Ok(Authorizer {
            settings: Some(settings),
            acls: RwLock::new(Arc::new(acls)),
            store: Some(store),
            changes: tokio::sync::Mutex::new(()),
        })
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
        let acls = self.snapshot();
        authorize(
            settings,
            &acls,
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
            &self.snapshot(),
            Requester { principal, host },
            operation,
            resource_type,
        )
    }

    fn snapshot(&self) -> Arc<AclSet> {
        match self.acls.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn publish(&self, acls: AclSet) {
        let acls = Arc::new(acls);
        match self.acls.write() {
            Ok(mut g) => *g = acls,
            Err(poisoned) => *poisoned.into_inner() = acls,
        }
    }

    /// The ACLs `filter` selects.
    pub fn describe(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.snapshot().matching(filter)
    }

    /// Adds ACLs and stores them.
    pub async fn create(&self, bindings: Vec<AclBinding>) -> Result<(), AclStoreError> {
        let _guard = self.changes.lock().await;
        let mut acls = (*self.snapshot()).clone();
        for b in bindings {
            acls.add(b);
        }
        self.store_and_publish(acls).await
    }

    /// Removes the ACLs each filter selects and stores the rest; per filter, what it removed.
    pub async fn delete(
        &self,
        filters: &[AclFilter],
    ) -> Result<Vec<Vec<AclBinding>>, AclStoreError> {
        let _guard = self.changes.lock().await;
        let mut acls = (*self.snapshot()).clone();
        let removed: Vec<Vec<AclBinding>> =
            filters.iter().map(|f| acls.remove_matching(f)).collect();
        if removed.iter().any(|r| !r.is_empty()) {
            self.store_and_publish(acls).await?;
        }
        Ok(removed)
    }

    async fn store_and_publish(&self, acls: AclSet) -> Result<(), AclStoreError> {
        if let Some(store) = self.store.clone() {
            let to_save = acls.clone();
            tokio::task::spawn_blocking(move || store.save(&to_save))
                .await
                .map_err(|e| AclStoreError::Task(e.to_string()))??;
        }
        self.publish(acls);
        Ok(())
    }
}
