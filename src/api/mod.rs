//! Request handlers, one file per API family, and the table of served APIs ([`served`]). A
//! handler turns a decoded request and its [`RequestContext`] into a response, calling the broker
//! and its coordinators; it never touches sockets.

pub mod acls;
pub mod alter_configs;
pub mod api_versions;
pub mod authorized;
pub mod client_quotas;
pub mod cluster;
pub mod configs;
pub mod context;
pub mod delete_records;
pub mod elections;
pub mod error_codes;
pub mod fetch;
pub mod groups;
pub mod leader_epoch;
pub mod list_offsets;
pub mod log_dirs;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod producer_id;
pub mod producers;
pub mod reassignments;
pub mod reply;
pub mod sasl;
pub mod scram_credentials;
pub mod served;
pub mod topics;
pub mod transactions;

pub use context::{Principal, RequestContext};
pub use reply::Reply;
pub use served::{served, ApiError, ServedApi, SERVED_APIS};

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

/// Builds a protocol string.
pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Builds a protocol topic name.
pub(crate) fn topic_name(s: impl Into<String>) -> TopicName {
    TopicName(str_bytes(s))
}
