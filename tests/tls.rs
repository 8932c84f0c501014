//! SSL listeners: an in-process broker with a TLS listener (certificates made at test time)
//! answers ApiVersions and Metadata over TLS; with `ssl.client.auth=required` a client without a
//! certificate is refused; bad input on either listener closes that connection only; the client
//! certificate's mapped principal is the one ACLs see.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use common::{Client, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertificateDer<'static>,
    client: (CertificateDer<'static>, PrivateKeyDer<'static>),
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "test-ca");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    std::fs::write(
        dir.path().join("server.pem"),
        format!("{}{}", server.pem(), server_key.serialize_pem()),
    )
    .unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params.distinguished_name = rcgen::DistinguishedName::new();
    client_params
        .distinguished_name
        .push(DnType::CountryName, "US");
    client_params
        .distinguished_name
        .push(DnType::OrganizationName, "Acme");
    client_params
        .distinguished_name
        .push(DnType::CommonName, "client");
    let client = client_params.signed_by(&client_key, &issuer).unwrap();
    Pki {
        ca: ca.der().clone(),
        client: (
            client.der().clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(client_key.serialize_der())),
        ),
        dir,
    }
}

/// PLAINTEXT first, SSL second, client certificates required on SSL.
async fn broker(pki: &Pki) -> TestBroker {
    broker_with(pki, &[]).await
}

/// [`broker`] with `extra` properties.
async fn broker_with(pki: &Pki, extra: &[&str]) -> TestBroker {
    let path = |f: &str| pki.dir.path().join(f).display().to_string();
    let keystore = format!(
        "listener.name.ssl.ssl.keystore.location={}",
        path("server.pem")
    );
    let truststore = format!("ssl.truststore.location={}", path("ca.pem"));
    let mut props = vec![
        "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
        "ssl.keystore.type=PEM",
        &keystore,
        "ssl.truststore.type=PEM",
        &truststore,
        "ssl.client.auth=required",
    ];
    props.extend_from_slice(extra);
    TestBroker::start(&props).await
}

fn connector(pki: &Pki, with_certificate: bool) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    #[allow(deprecated)] // ring, as the broker uses (see server::tls).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_certificate {
        builder
            .with_client_auth_cert(vec![pki.client.0.clone()], pki.client.1.clone_key())
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    addr: std::net::SocketAddr,
    connector: &TlsConnector,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    connector.connect(name, tcp).await
}

/// One request over `stream`; `None` when the broker closed the connection instead.
async fn call<Req, Resp, S>(stream: &mut S, key: ApiKey, version: i16, req: &Req) -> Option<Resp>
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("tls-test")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, Req::header_version(version))
        .unwrap();
    req.encode(&mut body, version).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    stream.write_all(&frame).await.ok()?;
    stream.flush().await.ok()?;
    let read = async {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        stream.read_exact(&mut buf).await.ok()?;
        Some(bytes::Bytes::from(buf))
    };
    let mut frame = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("an answer or a close within 30 s")?;
    let header = ResponseHeader::decode(&mut frame, Resp::header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    Some(Resp::decode(&mut frame, version).unwrap())
}

async fn api_versions<S>(stream: &mut S) -> Option<ApiVersionsResponse>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("tls-test"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    call(stream, ApiKey::ApiVersions, 3, &req).await
}

/// True when the broker closes `stream` (whatever it sent before, e.g. a TLS alert).
async fn closed(stream: &mut TcpStream) -> bool {
    let drain = async {
        let mut buf = [0u8; 512];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .unwrap_or(false)
}

fn ssl_addr(b: &TestBroker) -> std::net::SocketAddr {
    b.running.as_ref().unwrap().addrs()[1]
}

#[tokio::test]
async fn api_versions_and_metadata_over_tls() {
    let pki = pki();
    let b = broker(&pki).await;
    let addr = ssl_addr(&b);
    let mut tls = tls_connect(addr, &connector(&pki, true)).await.unwrap();
    let versions = api_versions(&mut tls).await.expect("ApiVersions over TLS");
    assert_eq!(versions.error_code, 0);
    assert!(!versions.api_keys.is_empty());
    let metadata: MetadataResponse =
        call(&mut tls, ApiKey::Metadata, 12, &MetadataRequest::default())
            .await
            .expect("Metadata over TLS");
    assert_eq!(metadata.brokers.len(), 1);
    assert_eq!(metadata.brokers[0].host.as_str(), "127.0.0.1");
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_when_required() {
    let pki = pki();
    let b = broker(&pki).await;
    let answered = match tls_connect(ssl_addr(&b), &connector(&pki, false)).await {
        // TLS 1.3: the client finishes its side first; the refusal arrives on the first read.
        Ok(mut tls) => api_versions(&mut tls).await.is_some(),
        Err(_) => false,
    };
    assert!(!answered, "no answer without a client certificate");
    let mut tls = tls_connect(ssl_addr(&b), &connector(&pki, true))
        .await
        .unwrap();
    assert!(
        api_versions(&mut tls).await.is_some(),
        "a client with one is served"
    );
}

#[tokio::test]
async fn bad_input_on_either_listener_closes_that_connection_only() {
    let pki = pki();
    let b = broker(&pki).await;
    let mut kept = tls_connect(ssl_addr(&b), &connector(&pki, true))
        .await
        .unwrap();
    assert!(api_versions(&mut kept).await.is_some());

    // Plain Kafka bytes to the TLS port.
    let mut plain_to_tls = Client::connect(ssl_addr(&b)).await;
    plain_to_tls
        .send(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())
        .await;
    assert!(
        closed(&mut plain_to_tls.stream).await,
        "plaintext on the TLS port is closed"
    );

    // A TLS ClientHello to the plaintext port.
    let tcp = TcpStream::connect(b.addr()).await.unwrap();
    let name = ServerName::IpAddress(b.addr().ip().into());
    let hello = connector(&pki, true).connect(name, tcp).await;
    assert!(hello.is_err(), "no TLS on the plaintext port");

    assert!(
        api_versions(&mut kept).await.is_some(),
        "the TLS client keeps being served"
    );
    let mut plain = b.client().await;
    let r: ApiVersionsResponse = plain
        .call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())
        .await;
    assert_eq!(r.error_code, 0, "and so does a plaintext one");
}

/// The client certificate's subject, `CN=client,O=Acme,C=US` in RFC 2253 form, mapped to `CLIENT`
/// by `ssl.principal.mapping.rules`, is a super user: it may create a topic over TLS, while the
/// anonymous plaintext principal is refused by the authorizer.
#[tokio::test]
async fn the_mapped_certificate_principal_is_what_the_authorizer_sees() {
    let pki = pki();
    let b = broker_with(
        &pki,
        &[
            r"ssl.principal.mapping.rules=RULE:^CN=([^,]+),O=Acme,C=US$/$1/U,DEFAULT",
            "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
            "super.users=User:CLIENT",
        ],
    )
    .await;
    let create = |topic: &str| common::create_topics_request(topic, 1, &[]);
    let mut plain = b.client().await;
    let refused: CreateTopicsResponse = plain.call(ApiKey::CreateTopics, 7, &create("anon")).await;
    assert_eq!(
        refused.topics[0].error_code, 29,
        "TOPIC_AUTHORIZATION_FAILED"
    );
    let mut tls = tls_connect(ssl_addr(&b), &connector(&pki, true))
        .await
        .unwrap();
    let created: CreateTopicsResponse = call(&mut tls, ApiKey::CreateTopics, 7, &create("mapped"))
        .await
        .expect("CreateTopics over TLS");
    assert_eq!(
        created.topics[0].error_code, 0,
        "the mapped principal is a super user"
    );
}

/// The inter-broker dialer of a broker whose inter-broker listener is SSL, with this PKI's
/// stores (the server certificate doubles as the broker's client certificate).
fn dialer(pki: &Pki, extra: &[&str]) -> odradek::replica::peer::PeerDialer {
    let path = |f: &str| pki.dir.path().join(f).display().to_string();
    let mut props = vec![
        "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0".to_string(),
        "security.inter.broker.protocol=SSL".to_string(),
        "ssl.keystore.type=PEM".to_string(),
        format!("ssl.keystore.location={}", path("server.pem")),
        "ssl.truststore.type=PEM".to_string(),
        format!("ssl.truststore.location={}", path("ca.pem")),
    ];
    props.extend(extra.iter().map(|s| s.to_string()));
    let config = odradek::app::load_config(None, &props).unwrap();
    odradek::replica::peer::PeerDialer::for_inter_broker(&config).unwrap()
}

/// Brokers reach each other over an SSL inter-broker listener: the dialer checks the peer's
/// certificate against its truststore and the host it dials (unless
/// `ssl.endpoint.identification.algorithm` is empty), and presents its keystore to a listener
/// requiring client certificates.
#[tokio::test]
async fn the_inter_broker_dialer_speaks_tls_and_checks_the_peer() {
    use odradek::replica::peer::PeerError;
    let ours = pki();
    // The SSL listener on 127.0.0.2: its certificate names 127.0.0.1 and localhost only.
    let b = broker_with(
        &ours,
        &["listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.2:0"],
    )
    .await;
    let port = ssl_addr(&b).port();
    let api_versions = |mut c: odradek::replica::peer::PeerConnection| async move {
        let r: ApiVersionsResponse = c
            .call(
                ApiKey::ApiVersions,
                3,
                &ApiVersionsRequest::default(),
                Duration::ZERO,
            )
            .await
            .unwrap();
        r.error_code
    };
    let connect = |d: odradek::replica::peer::PeerDialer| async move {
        d.connect(
            "127.0.0.2",
            port,
            "peer".into(),
            1 << 20,
            Duration::from_secs(5),
        )
        .await
    };

    let checked = connect(dialer(&ours, &[])).await;
    assert!(
        matches!(checked, Err(PeerError::Tls { .. })),
        "a certificate not naming 127.0.0.2 is refused: {:?}",
        checked.err()
    );
    let unchecked = connect(dialer(&ours, &["ssl.endpoint.identification.algorithm="]))
        .await
        .unwrap();
    assert_eq!(
        api_versions(unchecked).await,
        0,
        "answered over TLS with a client certificate"
    );

    // Stores of another, unrelated CA.
    let other = pki();
    let untrusted = connect(dialer(&other, &["ssl.endpoint.identification.algorithm="])).await;
    assert!(
        matches!(untrusted, Err(PeerError::Tls { .. })),
        "a peer certificate from an unknown CA is refused"
    );
}

/// A thousand connections that start a TLS handshake and never finish it (a record header
/// announcing a ClientHello that never comes) are each closed once the handshake time limit
/// (here `connections.max.idle.ms`, shorter than 10 s) has passed, while a TLS client and a
/// plaintext one go on being served.
#[tokio::test]
async fn unfinished_handshakes_are_closed_and_others_are_served() {
    let pki = pki();
    let b = broker_with(&pki, &["connections.max.idle.ms=1500"]).await;
    let mut stalled = Vec::new();
    for _ in 0..1000 {
        let mut s = TcpStream::connect(ssl_addr(&b)).await.unwrap();
        s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await.unwrap();
        stalled.push(s);
    }
    let mut tls = tls_connect(ssl_addr(&b), &connector(&pki, true))
        .await
        .unwrap();
    assert!(api_versions(&mut tls).await.is_some(), "served meanwhile");
    for s in &mut stalled {
        assert!(closed(s).await, "an unfinished handshake is closed");
    }
    let mut plain = b.client().await;
    let r: ApiVersionsResponse = plain
        .call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())
        .await;
    assert_eq!(r.error_code, 0, "the broker still serves");
}
