//! Outbound connections to other brokers (follower → leader, and the broker layer's own
//! requests): the [`PeerDialer`] that reaches peers over the inter-broker listener with its
//! security (PLAINTEXT or TLS), request framing, correlation ids, a cap on response sizes and
//! timeouts. One request at a time per connection.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};

use crate::auth::sasl::client::{plain_token, ScramClient};
use crate::config::listener::SecurityProtocol;
use crate::config::sasl::{Login, SaslMechanism};
use crate::config::BrokerConfig;

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
    #[error("TLS with {addr}: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("SASL {mechanism} login as {user} refused: {reason}")]
    Sasl {
        mechanism: &'static str,
        user: String,
        reason: String,
    },
}

/// A byte stream to a peer: TCP, or TLS over TCP.
trait PeerStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<S: AsyncRead + AsyncWrite + Send + Unpin> PeerStream for S {}

/// Why the inter-broker listener's security cannot be set up (stops start-up).
#[derive(Debug, thiserror::Error)]
#[error("inter-broker listener {listener}: {key}: {reason}")]
pub struct DialerSetupError {
    pub listener: String,
    pub key: &'static str,
    pub reason: String,
}

/// How this broker reaches its peers: the inter-broker listener's name (whose endpoint of each
/// peer is dialled) and that listener's security. Cheap to clone.
#[derive(Clone)]
pub struct PeerDialer {
    listener: Arc<str>,
    /// The TLS client set-up on an SSL or SASL_SSL inter-broker listener.
    tls: Option<tokio_rustls::TlsConnector>,
    /// The SASL login on a SASL_PLAINTEXT or SASL_SSL one.
    sasl: Option<Arc<PeerLogin>>,
}

/// The mechanism and identity of a broker's SASL login to its peers.
#[derive(Debug)]
struct PeerLogin {
    mechanism: SaslMechanism,
    login: Login,
}

impl std::fmt::Debug for PeerDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerDialer")
            .field("listener", &self.listener)
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl.as_ref().map(|s| s.mechanism.name()))
            .finish()
    }
}

impl PeerDialer {
    /// Dials peers' `listener` endpoints in plain TCP.
    pub fn plaintext(listener: &str) -> PeerDialer {
        PeerDialer {
            listener: Arc::from(listener),
            tls: None,
            sasl: None,
        }
    }

    /// The dialer of `config`'s inter-broker listener: on an SSL or SASL_SSL listener its
    /// keystore is this broker's client certificate and its truststore checks the peers'
    /// certificates (and, with `ssl.endpoint.identification.algorithm=https`, that they name
    /// the host dialled); on a SASL listener the broker logs in with
    /// `sasl.mechanism.inter.broker.protocol` as the `username` and `password` of that
    /// mechanism's JAAS configuration on the listener, as Kafka's brokers do.
    pub fn for_inter_broker(config: &BrokerConfig) -> Result<PeerDialer, DialerSetupError> {
        let name = config.inter_broker_listener.as_str();
        let err = |key: &'static str, reason: String| DialerSetupError {
            listener: name.to_string(),
            key,
            reason,
        };
        let protocol = config
            .listeners
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.protocol);
        let tls = match protocol {
            Some(SecurityProtocol::Ssl | SecurityProtocol::SaslSsl) => {
                let ssl = config
                    .listener_ssl
                    .get(name)
                    .ok_or_else(|| err("listeners", "no SSL settings".into()))?;
                let client = super::peer_tls::client_config(ssl).map_err(|(k, r)| err(k, r))?;
                Some(tokio_rustls::TlsConnector::from(Arc::new(client)))
            }
            _ => None,
        };
        let sasl = match protocol {
            Some(SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl) => Some(Arc::new(
                peer_login(config, name).map_err(|(k, r)| err(k, r))?,
            )),
            _ => None,
        };
        Ok(PeerDialer {
            listener: Arc::from(name),
            tls,
            sasl,
        })
    }

    /// The listener whose endpoints peers are dialled on.
    pub fn listener(&self) -> &str {
        &self.listener
    }

    /// Connects to a peer (and runs the TLS handshake) within `timeout`.
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        client_id: String,
        max_response_bytes: usize,
        timeout: Duration,
    ) -> Result<PeerConnection, PeerError> {
        let addr = format!("{host}:{port}");
        let tcp = tcp_connect(&addr, timeout).await?;
        let stream: Box<dyn PeerStream> = match &self.tls {
            None => Box::new(tcp),
            Some(connector) => {
                let name =
                    rustls_pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
                        PeerError::Tls {
                            addr: addr.clone(),
                            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
                        }
                    })?;
                match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
                    Err(_) => return Err(PeerError::Timeout(timeout)),
                    Ok(Err(source)) => return Err(PeerError::Tls { addr, source }),
                    Ok(Ok(tls)) => Box::new(tls),
                }
            }
        };
        let mut conn = PeerConnection::over(stream, client_id, max_response_bytes, timeout);
        if let Some(login) = &self.sasl {
            login.authenticate(&mut conn).await?;
        }
        Ok(conn)
    }
}

/// The inter-broker login `config` names for the SASL listener `listener`.
fn peer_login(config: &BrokerConfig, listener: &str) -> Result<PeerLogin, (&'static str, String)> {
    const KEY: &str = "sasl.mechanism.inter.broker.protocol";
    let name = config.effective(KEY).unwrap_or("GSSAPI").trim().to_string();
    let mechanism = SaslMechanism::from_name(&name).ok_or_else(|| {
        (
            KEY,
            format!(
                "{name} cannot be used between brokers; set it to PLAIN, SCRAM-SHA-256 or \
                 SCRAM-SHA-512"
            ),
        )
    })?;
    let sasl = config.listener_sasl.get(listener).ok_or((
        KEY,
        "the inter-broker listener has no SASL settings".to_string(),
    ))?;
    if sasl.enabled(mechanism.name()).is_none() {
        return Err((
            KEY,
            format!("{name} is not enabled on the inter-broker listener (sasl.enabled.mechanisms)"),
        ));
    }
    let login = sasl.logins.get(&mechanism).cloned().ok_or_else(|| {
        (
            KEY,
            format!(
                "the {name} JAAS configuration of the inter-broker listener needs the username \
                 and password this broker logs in to its peers with"
            ),
        )
    })?;
    Ok(PeerLogin { mechanism, login })
}

impl PeerLogin {
    /// SaslHandshake, then SaslAuthenticate rounds (one for PLAIN, two for SCRAM, whose
    /// server signature is checked).
    async fn authenticate(&self, conn: &mut PeerConnection) -> Result<(), PeerError> {
        let user = self.login.username.as_str();
        let refused = |reason: String| PeerError::Sasl {
            mechanism: self.mechanism.name(),
            user: user.to_string(),
            reason,
        };
        let handshake: SaslHandshakeResponse = conn
            .call(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str(self.mechanism.name())),
                Duration::ZERO,
            )
            .await?;
        if handshake.error_code != 0 {
            return Err(refused(format!(
                "SaslHandshake error {} (enabled: {:?})",
                handshake.error_code, handshake.mechanisms
            )));
        }
        let password = self.login.password.reveal();
        match self.mechanism {
            SaslMechanism::Plain => {
                sasl_round(conn, plain_token("", user, password))
                    .await?
                    .map_err(refused)?;
            }
            SaslMechanism::Scram(m) => {
                let mut scram =
                    ScramClient::new(m, user, password).map_err(|e| refused(e.to_string()))?;
                let first = scram.first_message();
                let server_first = sasl_round(conn, first).await?.map_err(&refused)?;
                let last = scram
                    .final_message(&server_first)
                    .map_err(|e| refused(e.to_string()))?;
                let server_final = sasl_round(conn, last).await?.map_err(&refused)?;
                scram
                    .verify_server_final(&server_final)
                    .map_err(|e| refused(e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// One SaslAuthenticate round: the server's token, or its refusal.
async fn sasl_round(
    conn: &mut PeerConnection,
    token: Vec<u8>,
) -> Result<Result<Bytes, String>, PeerError> {
    let response: SaslAuthenticateResponse = conn
        .call(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
            Duration::ZERO,
        )
        .await?;
    if response.error_code != 0 {
        return Ok(Err(format!(
            "error {}: {}",
            response.error_code,
            response.error_message.as_deref().unwrap_or("")
        )));
    }
    Ok(Ok(response.auth_bytes))
}

async fn tcp_connect(addr: &str, timeout: Duration) -> Result<TcpStream, PeerError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(PeerError::Timeout(timeout)),
        Ok(Err(source)) => {
            return Err(PeerError::Connect {
                addr: addr.to_string(),
                source,
            })
        }
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A connection to one peer broker.
pub struct PeerConnection {
    stream: Box<dyn PeerStream>,
    correlation: i32,
    client_id: StrBytes,
    max_response_bytes: usize,
    timeout: Duration,
}

impl PeerConnection {
    /// Connects in plain TCP within `timeout`. Responses larger than `max_response_bytes` close
    /// the connection.
    pub async fn connect(
        host: &str,
        port: u16,
        client_id: String,
        max_response_bytes: usize,
        timeout: Duration,
    ) -> Result<PeerConnection, PeerError> {
        let tcp = tcp_connect(&format!("{host}:{port}"), timeout).await?;
        Ok(PeerConnection::over(
            Box::new(tcp),
            client_id,
            max_response_bytes,
            timeout,
        ))
    }

    fn over(
        stream: Box<dyn PeerStream>,
        client_id: String,
        max_response_bytes: usize,
        timeout: Duration,
    ) -> PeerConnection {
        PeerConnection {
            stream,
            correlation: 0,
            client_id: StrBytes::from_string(client_id),
            max_response_bytes,
            timeout,
        }
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

async fn read_response<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    max: usize,
) -> Result<Bytes, PeerError> {
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
