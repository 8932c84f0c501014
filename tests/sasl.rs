//! SASL listeners over raw protocol against an in-process broker: nothing but ApiVersions,
//! SaslHandshake and SaslAuthenticate before authentication; PLAIN users from the JAAS
//! configuration; SCRAM users from the cluster's user entities, looked up at each login;
//! Kafka's errors and closes for wrong passwords, unknown users and mechanisms; re-authentication
//! and expired sessions (KIP-368); bad tokens close that connection only; the authenticated user
//! is the principal ACLs see; SASL_SSL runs SASL inside TLS.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{Client, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use odradek::auth::sasl::client::{plain_token, ScramClient};
use odradek::auth::scram::{ScramCredential, ScramMechanism};
use odradek::config::client_entity::{ClientEntity, EntityName};

const PLAIN_JAAS: &str = "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" user_alice=\"alice-secret\";";
const SCRAM256_JAAS: &str = "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;";
const SCRAM512_JAAS: &str = "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;";

/// SASL_PLAINTEXT first (the address tests connect to), PLAINTEXT second for brokers.
async fn broker(extra: &[&str]) -> TestBroker {
    let mut props = vec![
        "listeners=SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
        "inter.broker.listener.name=PLAINTEXT",
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        PLAIN_JAAS,
        SCRAM256_JAAS,
        SCRAM512_JAAS,
        "connection.failed.authentication.delay.ms=10",
    ];
    props.extend_from_slice(extra);
    TestBroker::start(&props).await
}

fn plaintext_addr(b: &TestBroker) -> std::net::SocketAddr {
    b.running.as_ref().unwrap().addrs()[1]
}

async fn set_scram(b: &TestBroker, m: ScramMechanism, user: &str, password: Option<&str>) {
    let value = password.map(|p| {
        ScramCredential::from_password(m, p, 4096)
            .unwrap()
            .to_stored()
    });
    let broker = &b.running.as_ref().unwrap().broker;
    broker
        .cluster
        .alter_client_entities(vec![(
            ClientEntity::User(EntityName::Named(user.into())),
            BTreeMap::from([(m.name().to_string(), value)]),
        )])
        .await
        .unwrap();
}

async fn handshake(c: &mut Client, mechanism: &str) -> SaslHandshakeResponse {
    let req =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.into()));
    c.call(ApiKey::SaslHandshake, 1, &req).await
}

async fn authenticate(c: &mut Client, token: Vec<u8>) -> SaslAuthenticateResponse {
    let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
    c.call(ApiKey::SaslAuthenticate, 2, &req).await
}

async fn plain_login(c: &mut Client, user: &str, password: &str) -> SaslAuthenticateResponse {
    assert_eq!(handshake(c, "PLAIN").await.error_code, 0);
    authenticate(c, plain_token("", user, password)).await
}

/// A SCRAM login; the last SaslAuthenticate answer (the failure, or the server-final message,
/// which the client verifies).
async fn scram_login(
    c: &mut Client,
    m: ScramMechanism,
    user: &str,
    password: &str,
) -> SaslAuthenticateResponse {
    assert_eq!(handshake(c, m.name()).await.error_code, 0);
    let mut client = ScramClient::new(m, user, password).unwrap();
    let first = authenticate(c, client.first_message()).await;
    if first.error_code != 0 {
        return first;
    }
    let last = authenticate(c, client.final_message(&first.auth_bytes).unwrap()).await;
    if last.error_code == 0 {
        client.verify_server_final(&last.auth_bytes).unwrap();
    }
    last
}

async fn metadata(c: &mut Client) -> Option<MetadataResponse> {
    c.send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    c.receive::<MetadataResponse>(12).await
}

async fn api_versions(c: &mut Client) -> ApiVersionsResponse {
    c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await
}

#[tokio::test]
async fn nothing_but_sasl_before_authentication() {
    let b = broker(&[]).await;
    let mut c = b.client().await;
    assert!(
        metadata(&mut c).await.is_none(),
        "Metadata before auth closes"
    );
    assert!(c.is_closed().await);

    let mut c = b.client().await;
    let versions = api_versions(&mut c).await;
    assert_eq!(versions.error_code, 0);
    let sasl: Vec<_> = versions
        .api_keys
        .iter()
        .filter(|k| k.api_key == 17 || k.api_key == 36)
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    assert_eq!(
        sasl,
        [(17, 0, 1), (36, 0, 2)],
        "SaslHandshake advertised from v0, as Kafka"
    );
    assert!(metadata(&mut c).await.is_none(), "after ApiVersions too");

    // A second ApiVersions before the handshake closes, as in Kafka.
    let mut c = b.client().await;
    api_versions(&mut c).await;
    c.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    assert!(c.receive::<ApiVersionsResponse>(3).await.is_none());

    // After the handshake only SaslAuthenticate.
    let mut c = b.client().await;
    assert_eq!(handshake(&mut c, "PLAIN").await.error_code, 0);
    assert!(
        metadata(&mut c).await.is_none(),
        "Metadata mid-exchange closes"
    );
}

#[tokio::test]
async fn plain_users_from_jaas() {
    let b = broker(&[]).await;
    let mut c = b.client().await;
    api_versions(&mut c).await;
    let h = handshake(&mut c, "PLAIN").await;
    assert_eq!(h.error_code, 0);
    let names: Vec<String> = h.mechanisms.iter().map(|m| m.to_string()).collect();
    assert_eq!(names, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    let ok = authenticate(&mut c, plain_token("", "alice", "alice-secret")).await;
    assert_eq!(ok.error_code, 0, "{:?}", ok.error_message);
    assert_eq!(
        ok.session_lifetime_ms, 0,
        "connections.max.reauth.ms=0: no limit"
    );
    assert!(
        metadata(&mut c).await.is_some(),
        "served after authentication"
    );
    // SaslAuthenticate after success: ILLEGAL_SASL_STATE, and the connection stays.
    let again = authenticate(&mut c, plain_token("", "alice", "alice-secret")).await;
    assert_eq!(again.error_code, 34);
    let again = handshake(&mut c, "PLAIN").await;
    assert_eq!(
        again.error_code, 34,
        "no renewal without a session lifetime"
    );
    assert!(metadata(&mut c).await.is_some());

    for (user, password) in [("alice", "wrong"), ("mallory", "alice-secret")] {
        let mut c = b.client().await;
        let failed = plain_login(&mut c, user, password).await;
        assert_eq!(failed.error_code, 58, "SASL_AUTHENTICATION_FAILED");
        assert_eq!(
            failed.error_message.as_deref(),
            Some("Authentication failed: Invalid username or password")
        );
        assert!(c.is_closed().await);
    }
    let mut c = b.client().await;
    let failed =
        authenticate_after(&mut c, "PLAIN", plain_token("bob", "alice", "alice-secret")).await;
    assert_eq!(failed.error_code, 58);
    assert!(failed.error_message.unwrap().contains("authorization id"));
}

async fn authenticate_after(
    c: &mut Client,
    mechanism: &str,
    token: Vec<u8>,
) -> SaslAuthenticateResponse {
    assert_eq!(handshake(c, mechanism).await.error_code, 0);
    authenticate(c, token).await
}

#[tokio::test]
async fn unknown_or_disabled_mechanisms_are_refused() {
    let b = broker(&["listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN"]).await;
    for mechanism in ["GSSAPI", "SCRAM-SHA-256", "plain", ""] {
        let mut c = b.client().await;
        let h = handshake(&mut c, mechanism).await;
        assert_eq!(
            h.error_code, 33,
            "UNSUPPORTED_SASL_MECHANISM for {mechanism:?}"
        );
        let names: Vec<String> = h.mechanisms.iter().map(|m| m.to_string()).collect();
        assert_eq!(names, ["PLAIN"]);
        assert!(c.is_closed().await);
    }
}

#[tokio::test]
async fn scram_users_from_the_cluster() {
    let b = broker(&[]).await;
    for m in ScramMechanism::ALL {
        // Not there yet: the same generic failure as a wrong password.
        let mut c = b.client().await;
        let failed = scram_login(&mut c, m, "carol", "carol-secret").await;
        assert_eq!(failed.error_code, 58);
        let generic = format!(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
            m.name()
        );
        assert_eq!(failed.error_message.as_deref(), Some(generic.as_str()));
        assert!(c.is_closed().await);

        // Added while the broker runs: logs in.
        set_scram(&b, m, "carol", Some("carol-secret")).await;
        let mut c = b.client().await;
        api_versions(&mut c).await;
        let ok = scram_login(&mut c, m, "carol", "carol-secret").await;
        assert_eq!(ok.error_code, 0, "{:?}", ok.error_message);
        assert!(metadata(&mut c).await.is_some());

        let mut c = b.client().await;
        let failed = scram_login(&mut c, m, "carol", "wrong").await;
        assert_eq!(failed.error_code, 58);
        assert_eq!(failed.error_message.as_deref(), Some(generic.as_str()));
        assert!(c.is_closed().await);

        // Removed: cannot log in any more.
        set_scram(&b, m, "carol", None).await;
        let mut c = b.client().await;
        assert_eq!(
            scram_login(&mut c, m, "carol", "carol-secret")
                .await
                .error_code,
            58
        );
    }
}

#[tokio::test]
async fn renewal_keeps_the_user_and_expired_sessions_close() {
    let b = broker(&[
        "listener.name.sasl_plaintext.plain.connections.max.reauth.ms=600000",
        "listener.name.sasl_plaintext.scram-sha-256.connections.max.reauth.ms=300",
    ])
    .await;
    let mut c = b.client().await;
    let ok = plain_login(&mut c, "alice", "alice-secret").await;
    assert_eq!((ok.error_code, ok.session_lifetime_ms), (0, 600_000));
    assert!(metadata(&mut c).await.is_some());
    let again = plain_login(&mut c, "alice", "alice-secret").await;
    assert_eq!(
        again.error_code, 0,
        "re-authentication on the same connection"
    );
    assert!(metadata(&mut c).await.is_some());
    let other = plain_login(&mut c, "admin", "admin-secret").await;
    assert_eq!(other.error_code, 58);
    assert!(other
        .error_message
        .unwrap()
        .starts_with("Cannot change principals during re-authentication"));
    assert!(c.is_closed().await);

    // Another mechanism for the renewal is refused.
    let mut c = b.client().await;
    plain_login(&mut c, "alice", "alice-secret").await;
    assert_eq!(handshake(&mut c, "SCRAM-SHA-256").await.error_code, 33);
    assert!(c.is_closed().await);

    // A session of 300 ms: a request after it closes the connection.
    set_scram(&b, ScramMechanism::Sha256, "dave", Some("d")).await;
    let mut c = b.client().await;
    let ok = scram_login(&mut c, ScramMechanism::Sha256, "dave", "d").await;
    assert_eq!((ok.error_code, ok.session_lifetime_ms), (0, 300));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(metadata(&mut c).await.is_none(), "expired session closes");
    // Renewing after expiry is still allowed, as in Kafka.
    let mut c = b.client().await;
    scram_login(&mut c, ScramMechanism::Sha256, "dave", "d").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let renewed = scram_login(&mut c, ScramMechanism::Sha256, "dave", "d").await;
    assert_eq!(renewed.error_code, 0);
}

#[tokio::test]
async fn bad_tokens_close_that_connection_only() {
    let b = broker(&["sasl.server.max.receive.size=1024"]).await;
    set_scram(&b, ScramMechanism::Sha512, "erin", Some("e")).await;
    // Garbage for SCRAM's first message.
    let mut c = b.client().await;
    let failed = authenticate_after(&mut c, "SCRAM-SHA-512", b"\x00\xffgarbage,,,".to_vec()).await;
    assert_eq!(failed.error_code, 58);
    assert!(c.is_closed().await);
    // A truncated SaslAuthenticate body.
    let mut c = b.client().await;
    assert_eq!(handshake(&mut c, "PLAIN").await.error_code, 0);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::SaslAuthenticate as i16)
        .with_request_api_version(2)
        .with_correlation_id(7);
    let mut body = bytes::BytesMut::new();
    use kafka_protocol::protocol::Encodable;
    header.encode(&mut body, 2).unwrap();
    body.extend_from_slice(&[0x7f, 0xff, 0xff]); // compact bytes length far past the end
    c.send_raw(&body).await;
    assert!(c.is_closed().await);
    // A frame over sasl.server.max.receive.size before authentication.
    let mut c = b.client().await;
    assert_eq!(handshake(&mut c, "PLAIN").await.error_code, 0);
    let big = plain_token("", "alice", &"x".repeat(4096));
    c.send(
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(big)),
    )
    .await;
    assert!(c.receive::<SaslAuthenticateResponse>(2).await.is_none());
    // A SaslAuthenticate before any handshake.
    let mut c = b.client().await;
    c.send(
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0a\0b")),
    )
    .await;
    assert!(c.receive::<SaslAuthenticateResponse>(2).await.is_none());

    // The broker serves on.
    let mut c = b.client().await;
    assert_eq!(
        scram_login(&mut c, ScramMechanism::Sha512, "erin", "e")
            .await
            .error_code,
        0
    );
    assert!(metadata(&mut c).await.is_some());
}

#[tokio::test]
async fn plaintext_listener_answers_illegal_sasl_state() {
    let b = broker(&[]).await;
    let mut c = Client::connect(plaintext_addr(&b)).await;
    assert_eq!(handshake(&mut c, "PLAIN").await.error_code, 34);
    let a = authenticate(&mut c, plain_token("", "alice", "alice-secret")).await;
    assert_eq!(a.error_code, 34);
    assert!(metadata(&mut c).await.is_some(), "the connection stays");
}

#[tokio::test]
async fn the_sasl_user_is_the_principal_acls_see() {
    let b = broker(&[
        "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
        "super.users=User:admin",
    ])
    .await;
    let create = |name: &str| common::create_topics_request(name, 1, &[]);
    let mut admin = b.client().await;
    assert_eq!(
        plain_login(&mut admin, "admin", "admin-secret")
            .await
            .error_code,
        0
    );
    let r: CreateTopicsResponse = admin
        .call(ApiKey::CreateTopics, 7, &create("by-admin"))
        .await;
    assert_eq!(r.topics[0].error_code, 0, "super user");
    let mut alice = b.client().await;
    assert_eq!(
        plain_login(&mut alice, "alice", "alice-secret")
            .await
            .error_code,
        0
    );
    let r: CreateTopicsResponse = alice
        .call(ApiKey::CreateTopics, 7, &create("by-alice"))
        .await;
    assert_eq!(
        r.topics[0].error_code, 29,
        "TOPIC_AUTHORIZATION_FAILED for User:alice"
    );
}

#[test]
fn start_up_refusals() {
    let load = |extra: &[&str]| {
        let overrides: Vec<String> = ["log.dirs=/tmp/odradek-sasl-unused"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect();
        odradek::app::load_config(None, &overrides).map_err(|e| format!("{e:#}"))
    };
    let err =
        load(&["listeners=SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0"]).unwrap_err();
    assert!(
        err.contains("GSSAPI") && err.contains("not supported"),
        "{err}"
    );
    // A SASL inter-broker listener needs sasl.mechanism.inter.broker.protocol (Kafka's default,
    // GSSAPI, is not served) enabled on it, with a JAAS username and password to log in with.
    let between_brokers = |extra: &[&str]| {
        let mut props = vec![
            "listeners=SASL_PLAINTEXT://127.0.0.1:0",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256",
            PLAIN_JAAS,
            SCRAM256_JAAS,
        ];
        props.extend_from_slice(extra);
        let config = load(&props).unwrap();
        odradek::replica::peer::PeerDialer::for_inter_broker(&config).map_err(|e| e.to_string())
    };
    let err = between_brokers(&[]).unwrap_err();
    assert!(
        err.contains("GSSAPI cannot be used between brokers"),
        "{err}"
    );
    let err = between_brokers(&["sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512"]).unwrap_err();
    assert!(
        err.contains("not enabled on the inter-broker listener"),
        "{err}"
    );
    let err = between_brokers(&["sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256"]).unwrap_err();
    assert!(err.contains("needs the username and password"), "{err}");
    assert!(between_brokers(&["sasl.mechanism.inter.broker.protocol=PLAIN"]).is_ok());
    let err = load(&[
        "listeners=SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms=PLAIN",
    ])
    .unwrap_err();
    assert!(err.contains("no JAAS configuration"), "{err}");
    assert!(load(&[
        "listeners=SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
        "inter.broker.listener.name=PLAINTEXT",
        "sasl.enabled.mechanisms=PLAIN",
        PLAIN_JAAS,
    ])
    .is_ok());
}

/// One request over any stream (a TLS one here); `None` when the broker closed instead.
async fn call_on<Req, Resp, S>(stream: &mut S, key: ApiKey, version: i16, req: &Req) -> Option<Resp>
where
    Req: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion,
    Resp: kafka_protocol::protocol::Decodable + kafka_protocol::protocol::HeaderVersion,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use kafka_protocol::protocol::{Decodable, Encodable};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(3);
    let mut body = bytes::BytesMut::new();
    header
        .encode(&mut body, Req::header_version(version))
        .unwrap();
    req.encode(&mut body, version).unwrap();
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await.ok()?;
    stream.flush().await.ok()?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.ok()?;
    let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut buf).await.ok()?;
    let mut buf = Bytes::from(buf);
    ResponseHeader::decode(&mut buf, Resp::header_version(version)).unwrap();
    Some(Resp::decode(&mut buf, version).unwrap())
}

#[tokio::test]
async fn sasl_ssl_is_tls_first_then_sasl() {
    use std::sync::Arc;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("server.pem");
    std::fs::write(&pem, format!("{}{}", cert.pem(), key.serialize_pem())).unwrap();
    let keystore = format!(
        "listener.name.sasl_ssl.ssl.keystore.location={}",
        pem.display()
    );
    let jaas = PLAIN_JAAS.replace("sasl_plaintext", "sasl_ssl");
    let b = TestBroker::start(&[
        "listeners=SASL_SSL://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
        "inter.broker.listener.name=PLAINTEXT",
        "sasl.enabled.mechanisms=PLAIN",
        "listener.name.sasl_ssl.ssl.keystore.type=PEM",
        &keystore,
        &jaas,
    ])
    .await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    #[allow(deprecated)] // ring, as the broker uses (see server::tls).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connect = || async {
        let tcp = tokio::net::TcpStream::connect(b.addr()).await.unwrap();
        let name = rustls::pki_types::ServerName::IpAddress(b.addr().ip().into());
        tokio_rustls::TlsConnector::from(Arc::new(config.clone()))
            .connect(name, tcp)
            .await
            .unwrap()
    };
    let handshake_req =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    let auth = |password: &str| {
        SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from(plain_token("", "alice", password)))
    };
    let mut tls = connect().await;
    let m: Option<MetadataResponse> =
        call_on(&mut tls, ApiKey::Metadata, 12, &MetadataRequest::default()).await;
    assert!(m.is_none(), "TLS alone does not authenticate");
    let mut tls = connect().await;
    let h: SaslHandshakeResponse = call_on(&mut tls, ApiKey::SaslHandshake, 1, &handshake_req)
        .await
        .unwrap();
    assert_eq!(h.error_code, 0);
    let a: SaslAuthenticateResponse =
        call_on(&mut tls, ApiKey::SaslAuthenticate, 2, &auth("alice-secret"))
            .await
            .unwrap();
    assert_eq!(a.error_code, 0);
    let m: Option<MetadataResponse> =
        call_on(&mut tls, ApiKey::Metadata, 12, &MetadataRequest::default()).await;
    assert!(m.is_some(), "served after SASL over TLS");
}

/// A broker logs in to its peers over a SASL inter-broker listener as its JAAS `username` with
/// `sasl.mechanism.inter.broker.protocol`: PLAIN, and SCRAM-SHA-512 with a credential stored in
/// the cluster; a wrong password is refused with Kafka's error and no connection results.
#[tokio::test]
async fn the_inter_broker_dialer_logs_in_with_plain_and_scram() {
    use odradek::replica::peer::{PeerDialer, PeerError};
    let b = broker(&[]).await;
    set_scram(&b, ScramMechanism::Sha512, "peer", Some("peer-secret")).await;
    let port = b.addr().port();
    let dial = |mechanism: &str, jaas: String| {
        let config = odradek::app::load_config(
            None,
            &[
                "listeners=SASL_PLAINTEXT://127.0.0.1:0".to_string(),
                "inter.broker.listener.name=SASL_PLAINTEXT".to_string(),
                format!("sasl.enabled.mechanisms={mechanism}"),
                format!("sasl.mechanism.inter.broker.protocol={mechanism}"),
                jaas,
            ],
        )
        .unwrap();
        PeerDialer::for_inter_broker(&config).unwrap()
    };
    let connect = |d: PeerDialer| async move {
        d.connect(
            "127.0.0.1",
            port,
            "peer".into(),
            1 << 20,
            Duration::from_secs(5),
        )
        .await
    };
    let scram_jaas = |password: &str| {
        format!(
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"peer\" password=\"{password}\";"
        )
    };
    for d in [
        dial("PLAIN", PLAIN_JAAS.to_string()),
        dial("SCRAM-SHA-512", scram_jaas("peer-secret")),
    ] {
        let mut conn = connect(d).await.unwrap();
        // Metadata is served only once authenticated.
        let md: MetadataResponse = conn
            .call(
                ApiKey::Metadata,
                12,
                &MetadataRequest::default().with_topics(Some(vec![])),
                Duration::ZERO,
            )
            .await
            .unwrap();
        assert_eq!(md.brokers.len(), 1);
    }
    let refused = connect(dial("SCRAM-SHA-512", scram_jaas("wrong"))).await;
    assert!(
        matches!(&refused, Err(PeerError::Sasl { .. })),
        "{:?}",
        refused.err()
    );
}
