//! Request handlers, one file per API family. A handler turns a decoded request into a response
//! using the broker's state; it never touches sockets.

pub mod api_versions;
pub mod cluster;
pub mod configs;
pub mod error_codes;
pub mod fetch;
pub mod groups;
pub mod leader_epoch;
pub mod list_offsets;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod producer_id;
pub mod reassignments;
pub mod topics;
pub mod versions;

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
