//! One client connection: read a frame, answer it, in order, until the peer leaves or misbehaves.
//! Generic over the byte stream, so a TLS stream serves the same way as a TCP one; what the
//! connection knows about itself (listener, peer, principal, mute state) is its [`Connection`].

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufStream};
use tokio::time::Instant;
use tracing::debug;

use super::dispatch::dispatch;
use super::frame::{parse_request, read_frame, FrameError};
use crate::api::Principal;
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
}

impl Connection {
    pub fn new(listener: Arc<str>, peer: SocketAddr) -> Connection {
        Connection {
            listener,
            peer,
            principal: Principal::anonymous(),
            muted_until: None,
        }
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
pub async fn serve_connection<S>(broker: Arc<Broker>, stream: S, mut conn: Connection)
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    // Requests are read and answered one at a time, so one buffered stream serves both ways.
    let mut stream = BufStream::with_capacity(64 * 1024, 64 * 1024, stream);
    let max = broker.config.current().socket_request_max_bytes;
    let result: Result<(), FrameError> = async {
        loop {
            conn.wait_unmuted().await;
            let Some(frame) = read_frame(&mut stream, max).await? else {
                return Ok(());
            };
            let request = parse_request(frame)?;
            if let Some(mut response) = dispatch(&broker, &conn, request).await? {
                // Vectored: record sets go from their read buffers straight to the socket.
                stream.write_all_buf(&mut response).await?;
                stream.flush().await?;
            }
        }
    }
    .await;
    let peer = conn.peer;
    match result {
        Ok(()) => debug!(%peer, "connection closed by client"),
        Err(FrameError::Io(e)) => debug!(%peer, error = %e, "connection ended"),
        Err(e) => warn_limited!(%peer, error = %e, "closing connection"),
    }
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
