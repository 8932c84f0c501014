//! Authorization with Kafka's ACL model: the model and its stored JSON form ([`acl`]), and the
//! decisions of Kafka's AclAuthorizer ([`authorizer`]). Where ACLs are stored is the cluster
//! layer's business; this layer only knows the model. SCRAM credentials ([`scram`]) are the
//! stored side of SASL/SCRAM authentication; [`sasl`] holds the SASL mechanisms and the
//! per-connection session.

pub mod acl;
pub mod authorizer;
pub mod sasl;
pub mod scram;

pub use acl::{
    AclBinding, AclFilter, Operation, PatternType, Permission, ResourcePattern, ResourceType,
};
pub use authorizer::{authorize, authorize_any, AclSet, AuthorizerSettings, Requester};
