//! SSL listeners: the rustls server configuration built from a listener's [`SslConfig`]
//! (keystores and truststores read when the listener is bound, so a bad file stops start-up
//! with the key at fault), and the handshake of each accepted connection, which yields the
//! client's principal (`User:` + its certificate's subject as RFC 2253, through
//! `ssl.principal.mapping.rules`; `User:ANONYMOUS` without a certificate).

use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::dn;
use crate::api::Principal;
use crate::config::keystore;
use crate::config::ssl::{ClientAuth, PrincipalRules, SslConfig};

/// How long a client may take to finish its TLS handshake: a connection that opens and never
/// completes it is closed then, so unfinished handshakes hold nothing for long. A shorter
/// `connections.max.idle.ms` shortens it (Kafka closes a channel idle that long, handshaking
/// or not).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The handshake time limit under `connections.max.idle.ms` (`None`: no idle limit).
pub fn handshake_timeout(connections_max_idle: Option<Duration>) -> Duration {
    connections_max_idle.map_or(HANDSHAKE_TIMEOUT, |idle| idle.min(HANDSHAKE_TIMEOUT))
}

/// A key of an SSL listener that could not be used, and why (never the secret itself).
#[derive(Debug, thiserror::Error)]
#[error("listener {listener}: {key}: {reason}")]
pub struct TlsSetupError {
    pub listener: String,
    pub key: &'static str,
    pub reason: String,
}

/// What an SSL listener needs for each connection.
#[derive(Clone)]
pub struct TlsListener {
    acceptor: TlsAcceptor,
    rules: Arc<PrincipalRules>,
    handshake_timeout: Duration,
}

/// Why a connection's TLS start failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("TLS handshake failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS handshake not finished within {0:?}")]
    Timeout(Duration),
    #[error("no ssl.principal.mapping.rules rule matches the client certificate subject {0:?}")]
    NoRule(String),
    #[error("the client certificate cannot be parsed")]
    BadCertificate,
}

impl TlsListener {
    /// Reads the listener's stores and builds its TLS configuration; handshakes get
    /// `handshake_timeout` to finish.
    pub fn new(
        listener: &str,
        config: &SslConfig,
        handshake_timeout: Duration,
    ) -> Result<TlsListener, TlsSetupError> {
        let err = |key: &'static str, reason: String| TlsSetupError {
            listener: listener.to_string(),
            key,
            reason,
        };
        let provider = Arc::new(keystore::provider(config));
        let versions = keystore::protocol_versions(config);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| {
                err(
                    "ssl.cipher.suites",
                    format!("no suite for the enabled protocols: {e}"),
                )
            })?;
        let verifier = match (&config.truststore, config.client_auth) {
            (_, ClientAuth::None) | (None, _) => WebPkiClientVerifier::no_client_auth(),
            (Some(store), auth) => {
                let mut roots = RootCertStore::empty();
                for cert in keystore::load_truststore(store).map_err(|(k, r)| err(k, r))? {
                    roots.add(cert).map_err(|e| {
                        err(
                            "ssl.truststore.location",
                            format!("bad CA certificate: {e}"),
                        )
                    })?;
                }
                let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let b = if auth == ClientAuth::Requested {
                    b.allow_unauthenticated()
                } else {
                    b
                };
                b.build()
                    .map_err(|e| err("ssl.truststore.location", e.to_string()))?
            }
        };
        let (chain, key) = keystore::load_keystore(&config.keystore).map_err(|(k, r)| err(k, r))?;
        let server = builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| {
                err(
                    "ssl.keystore.location",
                    format!("unusable certificate or key: {e}"),
                )
            })?;
        Ok(TlsListener {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            rules: Arc::new(config.principal_rules.clone()),
            handshake_timeout,
        })
    }

    /// Runs the handshake (within the listener's handshake time limit) and names the client.
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, Principal), HandshakeError> {
        let limit = self.handshake_timeout;
        let tls = tokio::time::timeout(limit, self.acceptor.accept(stream))
            .await
            .map_err(|_| HandshakeError::Timeout(limit))??;
        let principal = principal(tls.get_ref().1.peer_certificates(), &self.rules)?;
        Ok((tls, principal))
    }
}

/// The principal of a client presenting `certificates` (its own first).
pub fn principal(
    certificates: Option<&[CertificateDer<'_>]>,
    rules: &PrincipalRules,
) -> Result<Principal, HandshakeError> {
    let Some(cert) = certificates.and_then(|c| c.first()) else {
        return Ok(Principal::anonymous());
    };
    let subject = dn::subject_of(cert).ok_or(HandshakeError::BadCertificate)?;
    let name = rules
        .apply(&subject)
        .ok_or(HandshakeError::NoRule(subject))?;
    Ok(Principal {
        kind: Arc::from("User"),
        name: Arc::from(name.as_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssl_config(pairs: &[(&str, &str)]) -> SslConfig {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        crate::config::ssl::resolve(&map, "SSL").unwrap()
    }

    #[test]
    fn a_jks_file_is_refused_with_how_to_convert_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.keystore.jks");
        std::fs::write(&path, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]).unwrap();
        let c = ssl_config(&[
            ("ssl.keystore.location", path.to_str().unwrap()),
            ("ssl.keystore.password", "secret-pw"),
        ]);
        let e = TlsListener::new("SSL", &c, HANDSHAKE_TIMEOUT)
            .err()
            .unwrap();
        assert_eq!(e.key, "ssl.keystore.location");
        assert!(e.reason.contains("keytool -importkeystore"), "{e}");
        assert!(!e.to_string().contains("secret-pw"));
    }

    #[test]
    fn pem_and_pkcs12_keystores_load_and_a_wrong_password_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = dir.path().join("server.pem");
        std::fs::write(&pem, format!("{}{}", cert.pem(), key.serialize_pem())).unwrap();
        let c = ssl_config(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", pem.to_str().unwrap()),
        ]);
        assert!(TlsListener::new("SSL", &c, HANDSHAKE_TIMEOUT).is_ok());
        let inline = ssl_config(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.certificate.chain", &cert.pem()),
            ("ssl.keystore.key", &key.serialize_pem()),
        ]);
        assert!(TlsListener::new("SSL", &inline, HANDSHAKE_TIMEOUT).is_ok());

        let mut store = p12_keystore::KeyStore::new();
        let chain = p12_keystore::PrivateKeyChain::new(
            vec![1u8; 20],
            p12_keystore::PrivateKey::from_der(&key.serialize_der()).unwrap(),
            [p12_keystore::Certificate::from_der(cert.der()).unwrap()],
        );
        store.add_entry(
            "server",
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
        );
        let p12 = dir.path().join("server.p12");
        std::fs::write(&p12, store.writer("pw").write().unwrap()).unwrap();
        // Read as PKCS12 under Kafka's default type JKS too.
        let c = ssl_config(&[
            ("ssl.keystore.location", p12.to_str().unwrap()),
            ("ssl.keystore.password", "pw"),
        ]);
        assert!(TlsListener::new("SSL", &c, HANDSHAKE_TIMEOUT).is_ok());
        let c = ssl_config(&[
            ("ssl.keystore.location", p12.to_str().unwrap()),
            ("ssl.keystore.password", "nope"),
        ]);
        assert_eq!(
            TlsListener::new("SSL", &c, HANDSHAKE_TIMEOUT)
                .err()
                .unwrap()
                .key,
            "ssl.keystore.password"
        );
    }

    #[test]
    fn the_principal_is_the_mapped_subject() {
        use rcgen::DnType;
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Acme");
        params.distinguished_name.push(DnType::CommonName, "client");
        let cert = params.self_signed(&key).unwrap();
        let der = [cert.der().clone()];
        let rules = PrincipalRules::parse("RULE:^CN=([^,]+),O=Acme$/$1/U").unwrap();
        assert_eq!(
            principal(Some(&der), &rules).unwrap().to_string(),
            "User:CLIENT"
        );
        assert_eq!(
            principal(Some(&der), &PrincipalRules::default())
                .unwrap()
                .to_string(),
            "User:CN=client,O=Acme"
        );
        assert_eq!(
            principal(None, &rules).unwrap().to_string(),
            "User:ANONYMOUS"
        );
        let strict = PrincipalRules::parse("RULE:^CN=x$/x/").unwrap();
        assert!(matches!(
            principal(Some(&der), &strict),
            Err(HandshakeError::NoRule(_))
        ));
    }
}
