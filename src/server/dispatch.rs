//! Checks a request against the table of served APIs, guards its body, and hands it with its
//! context to the API layer, which decodes, handles and encodes it.

use kafka_protocol::messages::{ApiKey, RequestHeader};
use tracing::debug;

use super::connection::Connection;
use super::frame::{FrameError, Request};
use crate::api::{self, Reply, RequestContext};
use crate::broker::Broker;
use crate::protocol::encode::ResponseFrame;
use crate::protocol::guard;

/// Answers one request. `Ok(None)` means no response is sent (Produce with acks=0); an error
/// closes the connection.
pub async fn dispatch(
    broker: &Broker,
    conn: &Connection,
    request: Request,
) -> Result<Option<ResponseFrame>, FrameError> {
    let Request {
        api_key,
        api_version,
        header,
        body,
    } = request;
    let ctx = request_context(conn, api_key, api_version, &header);
    let served = api::served(api_key).filter(|a| a.accepts(api_version));
    if served.is_none() {
        if api_key == ApiKey::ApiVersions {
            // Unknown ApiVersions version: error 35 with a v0 body so the client can retry lower.
            let v0 = RequestContext {
                api_version: 0,
                ..ctx
            };
            return Reply::from(api::api_versions::unsupported_version())
                .encode(&v0)
                .map_err(|e| FrameError::Malformed(format!("cannot encode ApiVersions: {e}")));
        }
        return Err(FrameError::Malformed(format!(
            "{api_key:?} v{api_version} is not served"
        )));
    }
    guard::check_request_body(api_key as i16, api_version, &body)
        .map_err(|e| FrameError::Malformed(format!("{api_key:?} v{api_version}: {e}")))?;
    debug!(?api_key, api_version, correlation_id = ctx.correlation_id, client_id = ?ctx.client_id, "request");
    api::served::handle(broker, &ctx, body)
        .await
        .map_err(|e| FrameError::Malformed(e.to_string()))
}

/// The context of a request on `conn`.
pub(super) fn request_context(
    conn: &Connection,
    api_key: ApiKey,
    api_version: i16,
    header: &RequestHeader,
) -> RequestContext {
    RequestContext {
        api_key,
        api_version,
        correlation_id: header.correlation_id,
        client_id: header.client_id.as_ref().map(|s| s.to_string()),
        client_address: conn.peer,
        listener: conn.listener.clone(),
        principal: conn.principal.clone(),
    }
}
