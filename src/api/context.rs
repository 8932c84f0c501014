//! What a handler knows of a request besides its body: who sent it, over which listener, at
//! which version. The server fills it in per request from the connection it came on.

use std::net::SocketAddr;
use std::sync::Arc;

use kafka_protocol::messages::ApiKey;

/// One request's context.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    /// The request header's client id.
    pub client_id: Option<String>,
    pub client_address: SocketAddr,
    /// The name of the listener the connection came in on (`PLAINTEXT`, ...).
    pub listener: Arc<str>,
    /// Who the connection authenticated as.
    pub principal: Principal,
}

impl RequestContext {
    /// The client's host as Kafka reports it in group descriptions: `/<ip>`.
    pub fn client_host(&self) -> String {
        format!("/{}", self.client_address.ip())
    }
}

/// An authenticated identity in Kafka's form `<type>:<name>`, as ACLs name it. Cheap to clone
/// (every request's context carries its connection's principal).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    pub kind: Arc<str>,
    pub name: Arc<str>,
}

impl Principal {
    /// The principal of a connection that did not authenticate (a PLAINTEXT listener), as in
    /// Kafka: `User:ANONYMOUS`.
    pub fn anonymous() -> Principal {
        Principal {
            kind: Arc::from("User"),
            name: Arc::from("ANONYMOUS"),
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}
