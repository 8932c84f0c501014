//! Outbound connections to other brokers (follower → leader): request framing, correlation ids, a
//! cap on response sizes and timeouts. One request at a time per connection.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a request to a peer broker failed; every error drops the connection.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("response of {size} bytes outside 4..={max}")]
    BadSize { size: i32, max: usize },
    #[error("response correlation id {got}, expected {expected}")]
    Correlation { expected: i32, got: i32 },
    #[error("protocol: {0}")]
    Protocol(String),
}

/// A connection to one peer broker.
pub struct PeerConnection {
    stream: TcpStream,
    correlation: i32,
    client_id: StrBytes,
    max_response_bytes: usize,
    timeout: Duration,
}

impl PeerConnection {
    /// Connects within `timeout`. Responses larger than `max_response_bytes` close the connection.
    pub async fn connect(
        host: &str,
        port: u16,
        client_id: String,
        max_response_bytes: usize,
        timeout: Duration,
    ) -> Result<PeerConnection, PeerError> {
        let addr = format!("{host}:{port}");
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(&addr)).await {
            Err(_) => return Err(PeerError::Timeout(timeout)),
            Ok(Err(source)) => return Err(PeerError::Connect { addr, source }),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        Ok(PeerConnection {
            stream,
            correlation: 0,
            client_id: StrBytes::from_string(client_id),
            max_response_bytes,
            timeout,
        })
    }

    /// Sends `req` at `version` and decodes the answer; `extra_wait` is added to the timeout (the
    /// time the peer may hold a long-polling request).
    pub async fn call<Req, Resp>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
        extra_wait: Duration,
    ) -> Result<Resp, PeerError>
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        self.correlation = self.correlation.wrapping_add(1);
        let correlation = self.correlation;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(self.client_id.clone()));
        let frame = encode_request(&header, Req::header_version(version), req, version)?;
        let limit = self.timeout + extra_wait;
        let mut body = tokio::time::timeout(limit, async {
            self.stream.write_all(&frame).await?;
            read_response(&mut self.stream, self.max_response_bytes).await
        })
        .await
        .map_err(|_| PeerError::Timeout(limit))??;
        let header = ResponseHeader::decode(&mut body, Resp::header_version(version))
            .map_err(|e| PeerError::Protocol(format!("response header: {e}")))?;
        if header.correlation_id != correlation {
            return Err(PeerError::Correlation {
                expected: correlation,
                got: header.correlation_id,
            });
        }
        Resp::decode(&mut body, version)
            .map_err(|e| PeerError::Protocol(format!("{key:?} v{version} response: {e}")))
    }
}

fn encode_request<Req: Encodable>(
    header: &RequestHeader,
    header_version: i16,
    req: &Req,
    version: i16,
) -> Result<Bytes, PeerError> {
    let fail = |e: anyhow::Error| PeerError::Protocol(format!("encoding request: {e}"));
    let size = header.compute_size(header_version).map_err(fail)?
        + req.compute_size(version).map_err(fail)?;
    let size_prefix =
        i32::try_from(size).map_err(|_| PeerError::Protocol(format!("request of {size} bytes")))?;
    let mut out = BytesMut::with_capacity(size + 4);
    out.put_i32(size_prefix);
    header.encode(&mut out, header_version).map_err(fail)?;
    req.encode(&mut out, version).map_err(fail)?;
    Ok(out.freeze())
}

async fn read_response(stream: &mut TcpStream, max: usize) -> Result<Bytes, PeerError> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).await?;
    let size = (&prefix[..]).get_i32();
    if size < 4 || size as usize > max {
        return Err(PeerError::BadSize { size, max });
    }
    let mut body = BytesMut::zeroed(size as usize);
    stream.read_exact(&mut body).await?;
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn oversized_response_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf).await;
            s.write_all(&1_000_000i32.to_be_bytes()).await.unwrap();
        });
        let mut c =
            PeerConnection::connect("127.0.0.1", port, "t".into(), 1024, Duration::from_secs(5))
                .await
                .unwrap();
        let r: Result<ApiVersionsResponse, _> = c
            .call(
                ApiKey::ApiVersions,
                3,
                &ApiVersionsRequest::default(),
                Duration::ZERO,
            )
            .await;
        assert!(matches!(r, Err(PeerError::BadSize { .. })), "{r:?}");
    }

    #[tokio::test]
    async fn silent_peer_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _keep = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(s);
        });
        let mut c = PeerConnection::connect(
            "127.0.0.1",
            port,
            "t".into(),
            1024,
            Duration::from_millis(100),
        )
        .await
        .unwrap();
        let r: Result<ApiVersionsResponse, _> = c
            .call(
                ApiKey::ApiVersions,
                3,
                &ApiVersionsRequest::default(),
                Duration::ZERO,
            )
            .await;
        assert!(matches!(r, Err(PeerError::Timeout(_))), "{r:?}");
    }
}
