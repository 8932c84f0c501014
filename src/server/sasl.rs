//! The SASL gate of a connection on a SASL listener (SASL_PLAINTEXT, SASL_SSL). Until the client
//! has authenticated only ApiVersions (before the handshake), SaslHandshake and SaslAuthenticate
//! are served; any other request closes the connection. An authenticated session that has
//! outlived `connections.max.reauth.ms` closes on its next request unless that request starts a
//! re-authentication (KIP-368). The exchange itself is the API layer's (`api::sasl::exchange`);
//! the session state is the connection's ([`SaslSession`]).

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::ApiKey;
use tracing::debug;

use super::connection::Connection;
use super::dispatch::request_context;
use super::frame::{FrameError, Request};
use crate::api::{self, Principal};
use crate::auth::sasl::{SaslSession, SessionPhase};
use crate::broker::Broker;
use crate::protocol::encode::ResponseFrame;
use crate::protocol::guard;

/// Where a request on a SASL connection goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Served as on any connection.
    Serve,
    /// A step of the SASL exchange.
    Exchange,
}

/// Decides where `request` goes, or why the connection closes.
pub fn route(session: &mut SaslSession, request: &Request) -> Result<Route, FrameError> {
    let key = request.api_key;
    let refuse = |why: String| Err(FrameError::Malformed(why));
    match session.phase(Instant::now()) {
        SessionPhase::BeforeHandshake { api_versions } => match key {
            ApiKey::ApiVersions if api_versions => {
                // A version it does not know is answered without using up the one ApiVersions.
                if api::served(key).is_some_and(|a| a.accepts(request.api_version)) {
                    session.api_versions_answered();
                }
                Ok(Route::Serve)
            }
            ApiKey::SaslHandshake => Ok(Route::Exchange),
            _ => refuse(format!(
                "unexpected {key:?} request during SASL handshake (not authenticated)"
            )),
        },
        SessionPhase::Authenticating if key == ApiKey::SaslAuthenticate => Ok(Route::Exchange),
        SessionPhase::Authenticating => refuse(format!(
            "unexpected {key:?} request during SASL authentication (not authenticated)"
        )),
        SessionPhase::Authenticated { renewable, .. }
            if renewable && key == ApiKey::SaslHandshake =>
        {
            Ok(Route::Exchange)
        }
        SessionPhase::Authenticated { expired: true, .. } => refuse(format!(
            "SASL session expired (connections.max.reauth.ms); {key:?} request without \
             re-authentication"
        )),
        SessionPhase::Authenticated { .. } => Ok(Route::Serve),
        SessionPhase::Failed => refuse("SASL authentication failed".into()),
    }
}

/// Serves one step of the exchange and brings the connection's principal up to date. The
/// caller closes the connection when the session has failed.
pub fn exchange(
    broker: &Broker,
    conn: &mut Connection,
    request: Request,
) -> Result<Option<ResponseFrame>, FrameError> {
    let Request {
        api_key,
        api_version,
        header,
        body,
    } = request;
    if !api::served(api_key).is_some_and(|a| a.accepts(api_version)) {
        return Err(FrameError::Malformed(format!(
            "{api_key:?} v{api_version} is not served"
        )));
    }
    guard::check_request_body(api_key as i16, api_version, &body)
        .map_err(|e| FrameError::Malformed(format!("{api_key:?} v{api_version}: {e}")))?;
    let ctx = request_context(conn, api_key, api_version, &header);
    debug!(
        ?api_key,
        api_version,
        correlation_id = ctx.correlation_id,
        "SASL request"
    );
    let Some(session) = conn.sasl.as_mut() else {
        return Err(FrameError::Malformed("not a SASL connection".into()));
    };
    let result = api::sasl::exchange(broker, &ctx, session, body);
    if result.is_err() {
        session.fail();
    }
    if session.is_authenticated() {
        if let Some(user) = session.user() {
            conn.principal = Principal {
                kind: Arc::from("User"),
                name: user.clone(),
            };
        }
    }
    result.map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Whether the connection's SASL session has failed (answer, after the delay, then close).
pub fn failed(conn: &Connection) -> bool {
    conn.sasl
        .as_ref()
        .is_some_and(|s| s.phase(Instant::now()) == SessionPhase::Failed)
}

/// Whether the connection still has to authenticate (its frames are bounded by
/// `sasl.server.max.receive.size`).
pub fn unauthenticated(conn: &Connection) -> bool {
    conn.sasl
        .as_ref()
        .is_some_and(|s| !s.is_authenticated() && !s.renewing())
}
