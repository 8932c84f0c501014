//! SaslHandshake and SaslAuthenticate. On a SASL listener the connection's [`SaslSession`]
//! drives the exchange before the client is authenticated (and while it renews a session):
//! [`exchange`] decodes the request, steps the session and encodes the answer; the connection
//! owns the session and decides what a request may do. Anywhere else the two APIs are answered
//! as Kafka's request handler does, with ILLEGAL_SASL_STATE ([`handshake`], [`authenticate`]).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use tracing::debug;

use super::served::{decode, ApiError};
use super::{str_bytes, Reply, RequestContext};
use crate::auth::sasl::session::AuthStep;
use crate::auth::sasl::{CredentialStore, HandshakeError, SaslSession};
use crate::auth::scram::{ScramCredential, ScramMechanism};
use crate::broker::Broker;
use crate::config::client_entity::{ClientEntity, ClientEntityConfigs, EntityName};
use crate::config::sasl::SaslListenerConfig;
use crate::protocol::encode::ResponseFrame;
use crate::util::ratelog::warn_limited;

/// SaslHandshake outside an exchange (a non-SASL listener, or an authenticated session that
/// cannot be renewed): ILLEGAL_SASL_STATE, as Kafka.
pub async fn handshake(
    _broker: &Broker,
    _ctx: &RequestContext,
    _req: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code())
}

/// SaslAuthenticate outside an exchange: ILLEGAL_SASL_STATE, with Kafka's message.
pub async fn authenticate(
    _broker: &Broker,
    _ctx: &RequestContext,
    _req: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(str_bytes(
            "SaslAuthenticate request received after successful authentication",
        )))
}

/// Serves a SaslHandshake or SaslAuthenticate of an exchange on a SASL listener, stepping
/// `session`. After the answer the connection reads the session: failed means it closes
/// (after `connection.failed.authentication.delay.ms`), authenticated means it now serves.
/// The caller has checked the version and guarded the body.
pub fn exchange(
    broker: &Broker,
    ctx: &RequestContext,
    session: &mut SaslSession,
    body: Bytes,
) -> Result<Option<ResponseFrame>, ApiError> {
    let config = broker.config.current();
    let encode = |reply: Result<Option<ResponseFrame>, _>| {
        reply.map_err(|source| ApiError::Encode {
            key: ctx.api_key,
            source,
        })
    };
    let Some(listener) = config.listener_sasl.get(&*ctx.listener) else {
        session.fail();
        return Err(ApiError::NotServed(ctx.api_key));
    };
    match ctx.api_key {
        ApiKey::SaslHandshake => {
            let request: SaslHandshakeRequest = decode(ctx, body)?;
            let answer = on_handshake(ctx, session, listener, &request.mechanism);
            encode(Reply::from(answer).encode(ctx))
        }
        ApiKey::SaslAuthenticate => {
            let request: SaslAuthenticateRequest = decode(ctx, body)?;
            let store = BrokerCredentials {
                listener,
                entities: broker.cluster.client_entities(),
            };
            let answer = on_authenticate(ctx, session, &store, &request.auth_bytes);
            encode(Reply::from(answer).encode(ctx))
        }
        other => {
            session.fail();
            Err(ApiError::NotServed(other))
        }
    }
}

fn on_handshake(
    ctx: &RequestContext,
    session: &mut SaslSession,
    listener: &SaslListenerConfig,
    mechanism: &str,
) -> SaslHandshakeResponse {
    let enabled = listener
        .names()
        .into_iter()
        .map(str_bytes)
        .collect::<Vec<_>>();
    let error = match session.handshake(mechanism, listener) {
        Ok(()) => {
            debug!(peer = %ctx.client_address, mechanism, "SASL handshake");
            return SaslHandshakeResponse::default().with_mechanisms(enabled);
        }
        Err(HandshakeError::Unsupported) => {
            warn_limited!(peer = %ctx.client_address, listener = %ctx.listener, mechanism,
                "SASL mechanism requested by client is not enabled; closing");
            ResponseError::UnsupportedSaslMechanism
        }
        Err(HandshakeError::MechanismChanged(reason)) => {
            warn_limited!(peer = %ctx.client_address, %reason, "re-authentication refused; closing");
            ResponseError::UnsupportedSaslMechanism
        }
        Err(HandshakeError::IllegalState) => ResponseError::IllegalSaslState,
    };
    SaslHandshakeResponse::default()
        .with_error_code(error.code())
        .with_mechanisms(enabled)
}

fn on_authenticate(
    ctx: &RequestContext,
    session: &mut SaslSession,
    store: &dyn CredentialStore,
    token: &[u8],
) -> SaslAuthenticateResponse {
    let mechanism = session.mechanism().map_or("none", |m| m.name());
    match session.authenticate(token, ctx.api_version, store, Instant::now()) {
        AuthStep::Challenge(challenge) => {
            SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(challenge))
        }
        AuthStep::Complete {
            reply,
            session_lifetime_ms,
        } => {
            let user = session.user().map(|u| u.to_string()).unwrap_or_default();
            debug!(peer = %ctx.client_address, listener = %ctx.listener, mechanism, %user,
                session_lifetime_ms, "SASL authentication succeeded");
            SaslAuthenticateResponse::default()
                .with_auth_bytes(Bytes::from(reply))
                .with_session_lifetime_ms(session_lifetime_ms)
        }
        AuthStep::Failed { message, reason } => {
            warn_limited!(peer = %ctx.client_address, listener = %ctx.listener, mechanism,
                %reason, "failed SASL authentication; closing");
            SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                .with_error_message(Some(str_bytes(message)))
        }
    }
}

/// The credentials a SASL listener checks clients against: PLAIN users from its JAAS
/// configuration, SCRAM credentials from the cluster's user entities (read at each
/// authentication, so users added while the broker runs can log in).
struct BrokerCredentials<'a> {
    listener: &'a SaslListenerConfig,
    entities: Arc<ClientEntityConfigs>,
}

impl CredentialStore for BrokerCredentials<'_> {
    fn plain_password(&self, user: &str) -> Option<&str> {
        self.listener.plain_users.get(user).map(|p| p.reveal())
    }

    fn scram_credential(&self, mechanism: ScramMechanism, user: &str) -> Option<ScramCredential> {
        let entity = ClientEntity::User(EntityName::Named(user.to_string()));
        let stored = self.entities.value(&entity, mechanism.name())?;
        match ScramCredential::parse(stored) {
            Ok(credential) => Some(credential),
            Err(e) => {
                warn_limited!(%user, %mechanism, error = %e, "stored SCRAM credential unreadable");
                None
            }
        }
    }
}
