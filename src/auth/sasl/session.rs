//! The SASL state of one connection on a SASL listener, as Kafka's `SaslServerAuthenticator`
//! keeps it: before the handshake only ApiVersions (once) and SaslHandshake; then the
//! mechanism's exchange through SaslAuthenticate; then an authenticated session, which may
//! expire (`connections.max.reauth.ms`, KIP-368) and may be renewed on the same connection with
//! the same mechanism and the same user. A failure is final. Small: no buffer outlives a request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{AuthFailure, CredentialStore, Progress, ServerExchange};
use crate::config::sasl::{EnabledMechanism, SaslListenerConfig, SaslMechanism};

/// An authenticated session.
#[derive(Clone, Debug)]
struct Authenticated {
    mechanism: SaslMechanism,
    user: Arc<str>,
    /// When the session ends (`None`: never).
    expires: Option<Instant>,
}

/// An exchange under way.
#[derive(Debug)]
struct Exchange {
    mechanism: EnabledMechanism,
    server: ServerExchange,
    /// The session being renewed, when re-authenticating.
    previous: Option<Authenticated>,
}

#[derive(Debug)]
enum State {
    /// Nothing received yet: ApiVersions or SaslHandshake.
    Start,
    /// ApiVersions answered: SaslHandshake.
    Handshake,
    Authenticating(Box<Exchange>),
    Authenticated(Authenticated),
    Failed,
}

/// Where a session stands, for the connection deciding what a request may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionPhase {
    /// No mechanism chosen yet; whether ApiVersions may still be asked.
    BeforeHandshake {
        api_versions: bool,
    },
    /// The exchange is under way (a first authentication or a renewal).
    Authenticating,
    /// Authenticated. `expired`: the session's lifetime is over; `renewable`: a SaslHandshake
    /// starts a re-authentication (the session has a lifetime and the client said it can renew).
    Authenticated {
        expired: bool,
        renewable: bool,
    },
    Failed,
}

/// Why a SaslHandshake is refused (the session has failed).
#[derive(Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// The mechanism is not enabled on this listener.
    Unsupported,
    /// A re-authentication asked for another mechanism (Kafka's message).
    MechanismChanged(String),
    /// No handshake is expected now.
    IllegalState,
}

/// One SaslAuthenticate step's result.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthStep {
    Challenge(Vec<u8>),
    /// Authenticated; the session lasts `session_lifetime_ms` (0: no limit).
    Complete {
        reply: Vec<u8>,
        session_lifetime_ms: i64,
    },
    /// The session has failed; `message` is what the client is told, `reason` what is logged.
    Failed {
        message: String,
        reason: String,
    },
}

/// The SASL state of one connection.
#[derive(Debug)]
pub struct SaslSession {
    state: State,
    /// The client sent SaslAuthenticate v1 or later, so it can re-authenticate (Kafka's rule).
    client_renews: bool,
}

impl Default for SaslSession {
    fn default() -> Self {
        SaslSession::new()
    }
}

impl SaslSession {
    /// A connection that has not authenticated.
    pub fn new() -> SaslSession {
        SaslSession {
            state: State::Start,
            client_renews: false,
        }
    }

    pub fn phase(&self, now: Instant) -> SessionPhase {
        match &self.state {
            State::Start => SessionPhase::BeforeHandshake { api_versions: true },
            State::Handshake => SessionPhase::BeforeHandshake {
                api_versions: false,
            },
            State::Authenticating(_) => SessionPhase::Authenticating,
            State::Authenticated(a) => SessionPhase::Authenticated {
                expired: a.expires.is_some_and(|t| now >= t),
                renewable: a.expires.is_some() && self.client_renews,
            },
            State::Failed => SessionPhase::Failed,
        }
    }

    /// The authenticated user (kept while a renewal is under way).
    pub fn user(&self) -> Option<&Arc<str>> {
        match &self.state {
            State::Authenticated(a) => Some(&a.user),
            State::Authenticating(e) => e.previous.as_ref().map(|p| &p.user),
            _ => None,
        }
    }

    /// Whether the connection may be served (authenticated, not renewing).
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated(_))
    }

    /// Whether a re-authentication is under way.
    pub fn renewing(&self) -> bool {
        matches!(&self.state, State::Authenticating(e) if e.previous.is_some())
    }

    /// The mechanism of the exchange under way or of the session.
    pub fn mechanism(&self) -> Option<SaslMechanism> {
        match &self.state {
            State::Authenticating(e) => Some(e.mechanism.mechanism),
            State::Authenticated(a) => Some(a.mechanism),
            _ => None,
        }
    }

    /// An ApiVersions request was answered before the handshake.
    pub fn api_versions_answered(&mut self) {
        if matches!(self.state, State::Start) {
            self.state = State::Handshake;
        }
    }

    /// A SaslHandshake for `name`: starts its exchange, or fails the session.
    pub fn handshake(
        &mut self,
        name: &str,
        config: &SaslListenerConfig,
    ) -> Result<(), HandshakeError> {
        let previous = match std::mem::replace(&mut self.state, State::Failed) {
            State::Start | State::Handshake => None,
            State::Authenticated(a) if a.expires.is_some() && self.client_renews => Some(a),
            _ => return Err(HandshakeError::IllegalState),
        };
        let Some(enabled) = config.enabled(name) else {
            return Err(HandshakeError::Unsupported);
        };
        if let Some(p) = previous.as_ref().filter(|p| p.mechanism.name() != name) {
            return Err(HandshakeError::MechanismChanged(format!(
                "SASL mechanism '{name}' requested by client is not supported for \
                 re-authentication of mechanism '{}'",
                p.mechanism.name()
            )));
        }
        self.state = State::Authenticating(Box::new(Exchange {
            mechanism: enabled.clone(),
            server: ServerExchange::new(enabled.mechanism),
            previous,
        }));
        Ok(())
    }

    /// A SaslAuthenticate token at `version`, checked against `store`.
    pub fn authenticate(
        &mut self,
        token: &[u8],
        version: i16,
        store: &dyn CredentialStore,
        now: Instant,
    ) -> AuthStep {
        let State::Authenticating(mut exchange) = std::mem::replace(&mut self.state, State::Failed)
        else {
            return AuthStep::Failed {
                message: "Unexpected SaslAuthenticate request".into(),
                reason: "SaslAuthenticate outside an exchange".into(),
            };
        };
        self.client_renews |= version > 0;
        let mechanism = exchange.mechanism.mechanism;
        let renewing = exchange.previous.is_some();
        let failed = |f: AuthFailure| AuthStep::Failed {
            message: f.client_message(mechanism, renewing),
            reason: f.reason().to_string(),
        };
        match exchange.server.step(token, store) {
            Ok(Progress::Challenge(challenge)) => {
                self.state = State::Authenticating(exchange);
                AuthStep::Challenge(challenge)
            }
            Ok(Progress::Complete { user, reply }) => {
                if let Some(p) = exchange.previous.as_ref().filter(|p| *p.user != *user) {
                    return failed(AuthFailure::Refused(format!(
                        "Cannot change principals during re-authentication from User.{}: User.{user}",
                        p.user
                    )));
                }
                let lifetime = exchange.mechanism.max_reauth;
                self.state = State::Authenticated(Authenticated {
                    mechanism,
                    user: Arc::from(user),
                    expires: lifetime.map(|d| now + d),
                });
                AuthStep::Complete {
                    reply,
                    session_lifetime_ms: lifetime
                        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                }
            }
            Err(f) => failed(f),
        }
    }

    /// Ends the session (the connection closes after its last answer).
    pub fn fail(&mut self) {
        self.state = State::Failed;
    }

    /// The session's remaining lifetime, for logs.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        match &self.state {
            State::Authenticated(a) => a.expires.map(|t| t.saturating_duration_since(now)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sasl::client::plain_token;
    use crate::auth::sasl::tests::Store;
    use crate::config::sasl::Password;

    fn config(max_reauth: Option<Duration>) -> SaslListenerConfig {
        let _ = Password::reveal;
        SaslListenerConfig {
            mechanisms: vec![
                EnabledMechanism {
                    mechanism: SaslMechanism::Plain,
                    max_reauth,
                },
                EnabledMechanism {
                    mechanism: SaslMechanism::Scram(crate::auth::scram::ScramMechanism::Sha256),
                    max_reauth,
                },
            ],
            plain_users: Default::default(),
            logins: Default::default(),
        }
    }

    #[test]
    fn first_authentication_then_renewal_with_the_same_user() {
        let mut store = Store::with_plain("alice", "a");
        store.plain.insert("bob".into(), "b".into());
        let c = config(Some(Duration::from_secs(10)));
        let now = Instant::now();
        let mut s = SaslSession::new();
        assert_eq!(
            s.phase(now),
            SessionPhase::BeforeHandshake { api_versions: true }
        );
        s.api_versions_answered();
        assert_eq!(
            s.phase(now),
            SessionPhase::BeforeHandshake {
                api_versions: false
            }
        );
        s.handshake("PLAIN", &c).unwrap();
        assert_eq!(
            s.authenticate(&plain_token("", "alice", "a"), 2, &store, now),
            AuthStep::Complete {
                reply: vec![],
                session_lifetime_ms: 10_000
            }
        );
        assert_eq!(s.user().map(|u| &**u), Some("alice"));
        assert_eq!(
            s.phase(now + Duration::from_secs(11)),
            SessionPhase::Authenticated {
                expired: true,
                renewable: true
            }
        );
        // Renewal with the same user.
        s.handshake("PLAIN", &c).unwrap();
        assert!(s.renewing());
        assert!(matches!(
            s.authenticate(&plain_token("", "alice", "a"), 2, &store, now),
            AuthStep::Complete { .. }
        ));
        // Renewal as someone else fails.
        s.handshake("PLAIN", &c).unwrap();
        let AuthStep::Failed { message, .. } =
            s.authenticate(&plain_token("", "bob", "b"), 2, &store, now)
        else {
            panic!()
        };
        assert!(message.contains("Cannot change principals"), "{message}");
        assert_eq!(s.phase(now), SessionPhase::Failed);
    }

    #[test]
    fn refusals() {
        let store = Store::with_plain("alice", "a");
        let now = Instant::now();
        let mut s = SaslSession::new();
        assert_eq!(
            s.handshake("GSSAPI", &config(None)),
            Err(HandshakeError::Unsupported)
        );
        let mut s2 = SaslSession::new();
        s2.handshake("PLAIN", &config(None)).unwrap();
        let AuthStep::Failed { message, .. } =
            s2.authenticate(&plain_token("", "alice", "x"), 1, &store, now)
        else {
            panic!()
        };
        assert_eq!(
            message,
            "Authentication failed: Invalid username or password"
        );
        // Without a lifetime a session is not renewable: a second handshake is illegal.
        let mut s3 = SaslSession::new();
        s3.handshake("PLAIN", &config(None)).unwrap();
        s3.authenticate(&plain_token("", "alice", "a"), 1, &store, now);
        assert_eq!(
            s3.phase(now),
            SessionPhase::Authenticated {
                expired: false,
                renewable: false
            }
        );
        let c = config(Some(Duration::from_secs(1)));
        let mut s4 = SaslSession::new();
        s4.handshake("PLAIN", &c).unwrap();
        s4.authenticate(&plain_token("", "alice", "a"), 1, &store, now);
        assert!(matches!(
            s4.handshake("SCRAM-SHA-256", &c),
            Err(HandshakeError::MechanismChanged(_))
        ));
        let _ = s.is_authenticated();
    }
}
