//! SASL authentication as Kafka's brokers do it: the server side of PLAIN ([`plain`], RFC 4616)
//! and SCRAM-SHA-256/512 ([`scram`], RFC 5802 and 7677), the client side of both ([`client`],
//! for tests and for brokers reaching each other later), and the per-connection session state
//! ([`session`]): which mechanism was chosen, the exchange under way, who authenticated and until
//! when. No I/O here: the network front feeds tokens in and sends what comes out.

pub mod client;
pub mod plain;
pub mod scram;
pub mod session;

pub use session::{HandshakeError, SaslSession, SessionPhase};

use crate::auth::scram::{ScramCredential, ScramMechanism};
use crate::config::sasl::SaslMechanism;

/// Where a mechanism finds the credentials it checks a client against. Looked up at each
/// authentication, so users added while the broker runs can log in.
pub trait CredentialStore {
    /// A PLAIN user's password.
    fn plain_password(&self, user: &str) -> Option<&str>;
    /// A SCRAM user's stored credential for `mechanism`.
    fn scram_credential(&self, mechanism: ScramMechanism, user: &str) -> Option<ScramCredential>;
}

/// Why an exchange failed, in Kafka's two kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// Kafka's `SaslException`: the client only learns that its credentials were invalid (the
    /// reason, which may tell whether the user exists, is for the broker's log).
    Credentials(String),
    /// Kafka's `SaslAuthenticationException`: this message is sent to the client.
    Refused(String),
}

impl AuthFailure {
    /// What the client is told (Kafka's wording).
    pub fn client_message(&self, mechanism: SaslMechanism, reauthenticating: bool) -> String {
        match self {
            AuthFailure::Credentials(_) => format!(
                "Authentication failed during {} due to invalid credentials with SASL mechanism {}",
                if reauthenticating {
                    "re-authentication"
                } else {
                    "authentication"
                },
                mechanism.name()
            ),
            AuthFailure::Refused(message) => message.clone(),
        }
    }

    /// What the broker logs.
    pub fn reason(&self) -> &str {
        match self {
            AuthFailure::Credentials(reason) | AuthFailure::Refused(reason) => reason,
        }
    }
}

/// One step of a server exchange.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Send this challenge; the exchange goes on.
    Challenge(Vec<u8>),
    /// The client is `user`; send `reply` (possibly empty) as the last token.
    Complete { user: String, reply: Vec<u8> },
}

/// The server side of one mechanism's exchange.
#[derive(Debug)]
pub enum ServerExchange {
    Plain,
    Scram(scram::ScramServer),
}

impl ServerExchange {
    /// A fresh exchange for `mechanism`.
    pub fn new(mechanism: SaslMechanism) -> ServerExchange {
        match mechanism {
            SaslMechanism::Plain => ServerExchange::Plain,
            SaslMechanism::Scram(m) => ServerExchange::Scram(scram::ScramServer::new(m)),
        }
    }

    /// Evaluates the client's next token.
    pub fn step(
        &mut self,
        token: &[u8],
        store: &dyn CredentialStore,
    ) -> Result<Progress, AuthFailure> {
        match self {
            ServerExchange::Plain => {
                plain::authenticate(token, store).map(|user| Progress::Complete {
                    user,
                    reply: Vec::new(),
                })
            }
            ServerExchange::Scram(server) => server.step(token, store),
        }
    }
}

/// Compares two byte strings in time that depends on their lengths only.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Credentials for tests.
    #[derive(Default)]
    pub(crate) struct Store {
        pub plain: BTreeMap<String, String>,
        pub scram: BTreeMap<(ScramMechanism, String), ScramCredential>,
    }

    impl Store {
        pub fn with_plain(user: &str, password: &str) -> Store {
            let mut s = Store::default();
            s.plain.insert(user.into(), password.into());
            s
        }

        pub fn with_scram(m: ScramMechanism, user: &str, credential: ScramCredential) -> Store {
            let mut s = Store::default();
            s.scram.insert((m, user.into()), credential);
            s
        }
    }

    impl CredentialStore for Store {
        fn plain_password(&self, user: &str) -> Option<&str> {
            self.plain.get(user).map(String::as_str)
        }

        fn scram_credential(&self, m: ScramMechanism, user: &str) -> Option<ScramCredential> {
            self.scram.get(&(m, user.to_string())).cloned()
        }
    }
}
