//! One client connection: read a frame, answer it, in order, until the peer leaves or misbehaves.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tracing::{debug, warn};

use super::dispatch::dispatch;
use super::frame::{parse_request, read_frame, FrameError};
use crate::broker::Broker;

/// Serves one connection. Requests are handled one at a time so responses (and appends) keep
/// the order the client sent them in; other connections are independent tasks.
pub async fn serve_connection(broker: Arc<Broker>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut writer = BufWriter::with_capacity(64 * 1024, write_half);
    let max = broker.config.socket_request_max_bytes;
    let result: Result<(), FrameError> = async {
        while let Some(frame) = read_frame(&mut reader, max).await? {
            if frame.len() < 4 {
                return Err(FrameError::Malformed(
                    "frame shorter than a request header".into(),
                ));
            }
            let request = parse_request(frame)?;
            if let Some(mut response) = dispatch(&broker, request, peer).await? {
                // Vectored: record sets go from their read buffers straight to the socket.
                writer.write_all_buf(&mut response).await?;
                writer.flush().await?;
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => debug!(%peer, "connection closed by client"),
        Err(FrameError::Io(e)) => debug!(%peer, error = %e, "connection ended"),
        Err(e) => warn!(%peer, error = %e, "closing connection"),
    }
}
