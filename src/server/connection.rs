//! One client connection: read a frame, answer it, in order, until the peer leaves or misbehaves.
//! Generic over the byte stream, so a TLS stream serves the same way as a TCP one; what the
//! connection knows about itself (listener, peer, principal, mute state) is its [`Connection`].

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Buf;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tracing::debug;

use super::dispatch::dispatch;
use super::frame::{parse_request, read_frame, FrameError, Request};
use super::sasl::{self, Route};
use crate::api::Principal;
use crate::auth::sasl::SaslSession;
use crate::broker::Broker;
use crate::util::ratelog::warn_limited;

/// The state of one client connection.
#[derive(Debug)]
pub struct Connection {
    /// The name of the listener it came in on.
    pub listener: Arc<str>,
    pub peer: SocketAddr,
    /// Who the client authenticated as (`User:ANONYMOUS` until a listener authenticates).
    pub principal: Principal,
    /// While muted, no further request is read (Kafka mutes a channel to throttle a client).
    muted_until: Option<Instant>,
    /// On a SASL listener, the connection's SASL session (`None` elsewhere).
    pub sasl: Option<SaslSession>,
}

impl Connection {
    pub fn new(listener: Arc<str>, peer: SocketAddr) -> Connection {
        Connection {
            listener,
            peer,
            principal: Principal::anonymous(),
            muted_until: None,
            sasl: None,
        }
    }

    /// A connection on a SASL listener: it must authenticate before it is served.
    pub fn with_sasl(mut self) -> Connection {
        self.sasl = Some(SaslSession::new());
        self
    }

    /// Reads no further request from this connection before `until`.
    pub fn mute_until(&mut self, until: Instant) {
        self.muted_until = Some(self.muted_until.map_or(until, |t| t.max(until)));
    }

    /// Waits out a mute, if any.
    async fn wait_unmuted(&mut self) {
        if let Some(until) = self.muted_until.take() {
            tokio::time::sleep_until(until).await;
        }
    }
}

/// Serves one connection. Requests are handled one at a time so responses (and appends) keep
/// the order the client sent them in; other connections are independent tasks.
///
/// Memory: an idle connection holds no buffer. The stream is read unbuffered (the 4-byte size
/// prefix, then exactly the frame), responses are written vectored straight from their buffers,
/// and the handling of a request lives in its own allocation for that request only, so a waiting
/// connection is its small task and socket (about 1.5 KiB of RSS each, measured by
/// scripts/bench-connections.py), and closing it gives that back.
///
/// `connections.max.idle.ms`: a connection is closed when no whole request arrives within that
/// time of the connection's start or of the previous response (a request being handled is not
/// idle time). Kafka counts from the last byte read instead; the two differ only for a frame
/// trickling in over the whole period.
pub async fn serve_connection<S>(broker: Arc<Broker>, mut stream: S, mut conn: Connection)
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let config = broker.config.current();
    let (max, idle) = (config.socket_request_max_bytes, config.connections_max_idle);
    let (sasl_max, failed_delay) = (
        config.sasl.max_receive_size.min(max),
        config.sasl.failed_authentication_delay,
    );
    drop(config);
    let result: Result<(), FrameError> = async {
        loop {
            conn.wait_unmuted().await;
            // Before authentication a frame is bounded by sasl.server.max.receive.size.
            let max = if sasl::unauthenticated(&conn) {
                sasl_max
            } else {
                max
            };
            let frame = match idle {
                Some(idle) => {
                    match tokio::time::timeout(idle, read_frame(&mut stream, max)).await {
                        Ok(frame) => frame?,
                        Err(_) => {
                            debug!(peer = %conn.peer, idle_ms = idle.as_millis() as u64,
                            "closing idle connection (connections.max.idle.ms)");
                            return Ok(());
                        }
                    }
                }
                None => read_frame(&mut stream, max).await?,
            };
            let Some(frame) = frame else {
                return Ok(());
            };
            let received = std::time::Instant::now();
            let request = parse_request(frame)?;
            let (api_key, follower) = (request.api_key as i16, is_follower_fetch(&request));
            let route = match conn.sasl.as_mut() {
                Some(session) => sasl::route(session, &request)?,
                None => Route::Serve,
            };
            let response = match route {
                // Boxed: the handling's state is large and only exists while a request is handled.
                Route::Serve => Box::pin(dispatch(&broker, &conn, request)).await?,
                Route::Exchange => sasl::exchange(&broker, &mut conn, request)?,
            };
            let failed = sasl::failed(&conn);
            if failed {
                // Kafka answers a failed authentication, then closes, after this delay.
                tokio::time::sleep(failed_delay).await;
            }
            if let Some(mut response) = response {
                let throttle = response.throttle();
                if response.has_remaining() {
                    // Vectored: record sets go from their read buffers straight to the socket.
                    stream.write_all_buf(&mut response).await?;
                    stream.flush().await?;
                }
                // A client quota was violated: answered at once, then muted (KIP-219).
                if let Some(throttle) = throttle {
                    conn.mute_until(Instant::now() + throttle);
                }
            }
            if failed {
                debug!(peer = %conn.peer, "closing connection after failed SASL authentication");
                return Ok(());
            }
            broker
                .metrics()
                .request_time(api_key, follower, received.elapsed());
        }
    }
    .await;
    let peer = conn.peer;
    match result {
        Ok(()) => debug!(%peer, "connection closed"),
        Err(FrameError::Io(e)) => debug!(%peer, error = %e, "connection ended"),
        Err(e) => warn_limited!(%peer, error = %e, "closing connection"),
    }
}

/// Whether a request is a follower's Fetch (Kafka reports FetchFollower apart from
/// FetchConsumer): up to v14 the body starts with the replica id, -1 for consumers. From v15
/// the id moved into a tagged field; such fetches count as consumers' (brokers of this
/// cluster fetch with v12).
fn is_follower_fetch(request: &Request) -> bool {
    request.api_key == ApiKey::Fetch
        && request.api_version <= 14
        && request
            .body
            .first_chunk::<4>()
            .is_some_and(|id| i32::from_be_bytes(*id) >= 0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_muted_connection_waits_before_reading_on() {
        let mut conn = Connection::new("PLAINTEXT".into(), SocketAddr::from(([127, 0, 0, 1], 1)));
        let start = Instant::now();
        conn.mute_until(start + Duration::from_millis(300));
        conn.mute_until(start + Duration::from_millis(100));
        conn.wait_unmuted().await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(300),
            "the longer mute holds"
        );
        conn.wait_unmuted().await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(300),
            "unmuted after that"
        );
    }
}
