//! SSL listeners: the rustls server configuration built from a listener's [`SslConfig`]
//! (keystores and truststores read when the listener is bound, so a bad file stops start-up
//! with the key at fault), and the handshake of each accepted connection, which yields the
//! client's principal (`User:` + its certificate's subject as RFC 2253, through
//! `ssl.principal.mapping.rules`; `User:ANONYMOUS` without a certificate).

use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::dn;
use crate::api::Principal;
use crate::config::ssl::{
    ClientAuth, KeyStore, PrincipalRules, SslConfig, StoreType, TlsVersion, TrustStore,
};

/// How long a client may take to finish its TLS handshake: a connection that opens and never
/// completes it is closed then, so unfinished handshakes hold nothing for long.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The magic bytes a Java KeyStore (JKS) file starts with.
const JKS_MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];

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
}

/// Why a connection's TLS start failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("TLS handshake failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS handshake not finished within {HANDSHAKE_TIMEOUT:?}")]
    Timeout,
    #[error("no ssl.principal.mapping.rules rule matches the client certificate subject {0:?}")]
    NoRule(String),
    #[error("the client certificate cannot be parsed")]
    BadCertificate,
}

impl TlsListener {
    /// Reads the listener's stores and builds its TLS configuration.
    pub fn new(listener: &str, config: &SslConfig) -> Result<TlsListener, TlsSetupError> {
        let err = |key: &'static str, reason: String| TlsSetupError {
            listener: listener.to_string(),
            key,
            reason,
        };
        let provider = Arc::new(provider(config));
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = config
            .enabled_protocols
            .iter()
            .map(|v| match v {
                TlsVersion::Tls12 => &rustls::version::TLS12,
                TlsVersion::Tls13 => &rustls::version::TLS13,
            })
            .collect();
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
                for cert in load_truststore(store).map_err(|(k, r)| err(k, r))? {
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
        let (chain, key) = load_keystore(&config.keystore).map_err(|(k, r)| err(k, r))?;
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
        })
    }

    /// Runs the handshake (within [`HANDSHAKE_TIMEOUT`]) and names the client.
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, Principal), HandshakeError> {
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream))
            .await
            .map_err(|_| HandshakeError::Timeout)??;
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

/// ring's suites, limited to `ssl.cipher.suites` when given. rustls deprecates the ring
/// provider for lacking post-quantum key exchange; the alternative (aws-lc-rs) needs cmake and
/// a C toolchain to build, so ring stays until that changes.
#[allow(deprecated)]
fn provider(config: &SslConfig) -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    if !config.cipher_suites.is_empty() {
        provider.cipher_suites.retain(|s| {
            let name = s.suite().as_str().unwrap_or_default();
            config.cipher_suites.iter().any(|c| c == name)
        });
    }
    provider
}

type Failure = (&'static str, String);

/// Reads a store file; a JKS file is refused with how to convert it.
fn read_store(key: &'static str, location: &str) -> Result<Vec<u8>, Failure> {
    let bytes =
        std::fs::read(location).map_err(|e| (key, format!("cannot read {location}: {e}")))?;
    if bytes.starts_with(&JKS_MAGIC) {
        return Err((
            key,
            format!(
                "{location} is a Java KeyStore (JKS), which Odradek cannot read; convert it to \
                 PKCS12 with `keytool -importkeystore -srckeystore {location} -srcstoretype JKS \
                 -destkeystore {location}.p12 -deststoretype PKCS12` and point the key at the \
                 .p12 file (with ssl.*.type=PKCS12)"
            ),
        ));
    }
    Ok(bytes)
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().starts_with(b"-----BEGIN")
}

fn pem_certs(key: &'static str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Failure> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| (key, format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err((key, "no PEM certificate found".into()));
    }
    Ok(certs)
}

fn pem_key(key: &'static str, pem: &[u8]) -> Result<PrivateKeyDer<'static>, Failure> {
    if pem.windows(21).any(|w| w == b"ENCRYPTED PRIVATE KEY") {
        return Err((
            key,
            "encrypted PEM private keys are not supported yet; give the key unencrypted (PKCS#8) \
             or use a PKCS12 keystore"
                .into(),
        ));
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| (key, format!("no usable PEM private key: {e}")))
}

fn load_keystore(
    store: &KeyStore,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Failure> {
    match store {
        KeyStore::Inline {
            certificate_chain,
            key,
            ..
        } => Ok((
            pem_certs(
                "ssl.keystore.certificate.chain",
                certificate_chain.reveal().as_bytes(),
            )?,
            pem_key("ssl.keystore.key", key.reveal().as_bytes())?,
        )),
        KeyStore::File {
            kind,
            location,
            password,
            key_password,
        } => {
            const KEY: &str = "ssl.keystore.location";
            let bytes = read_store(KEY, location)?;
            if is_pem(&bytes) || (*kind == StoreType::Pem && !bytes.starts_with(&[0x30])) {
                return Ok((pem_certs(KEY, &bytes)?, pem_key(KEY, &bytes)?));
            }
            // PKCS12, whatever the type key says (Java reads PKCS12 under JKS too).
            let passwords = [password, key_password];
            let mut last = String::new();
            for pw in passwords.into_iter().flatten() {
                match p12_keystore::KeyStore::from_pkcs12(
                    &bytes,
                    pw.reveal(),
                    p12_keystore::Pkcs12ImportPolicy::Relaxed,
                ) {
                    Ok(store) => {
                        let Some((_, chain)) = store.private_key_chain() else {
                            return Err((KEY, format!("{location} holds no private key")));
                        };
                        let certs = chain
                            .certs()
                            .iter()
                            .map(|c| CertificateDer::from(c.as_der().to_vec()))
                            .collect();
                        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                            chain.key().as_der().to_vec(),
                        ));
                        return Ok((certs, key));
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            if password.is_none() && key_password.is_none() {
                return Err((
                    "ssl.keystore.password",
                    format!("{location} is PKCS12 and needs a password"),
                ));
            }
            Err((
                "ssl.keystore.password",
                format!("cannot open {location} as PKCS12 (wrong password?): {last}"),
            ))
        }
    }
}

fn load_truststore(store: &TrustStore) -> Result<Vec<CertificateDer<'static>>, Failure> {
    match store {
        TrustStore::Inline(pem) => {
            pem_certs("ssl.truststore.certificates", pem.reveal().as_bytes())
        }
        TrustStore::File {
            kind,
            location,
            password,
        } => {
            const KEY: &str = "ssl.truststore.location";
            let bytes = read_store(KEY, location)?;
            if is_pem(&bytes) || (*kind == StoreType::Pem && !bytes.starts_with(&[0x30])) {
                return pem_certs(KEY, &bytes);
            }
            let pw = password.as_ref().map_or("", |p| p.reveal());
            let store = p12_keystore::KeyStore::from_pkcs12(
                &bytes,
                pw,
                p12_keystore::Pkcs12ImportPolicy::Relaxed,
            )
            .map_err(|e| {
                (
                    "ssl.truststore.password",
                    format!("cannot open {location} as PKCS12: {e}"),
                )
            })?;
            let certs: Vec<_> = store
                .entries()
                .flat_map(|(_, entry)| match entry {
                    p12_keystore::KeyStoreEntry::Certificate(c) => vec![c.as_der().to_vec()],
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => {
                        chain.certs().iter().map(|c| c.as_der().to_vec()).collect()
                    }
                    p12_keystore::KeyStoreEntry::Secret(_) => Vec::new(),
                })
                .map(CertificateDer::from)
                .collect();
            if certs.is_empty() {
                return Err((KEY, format!("{location} holds no certificate")));
            }
            Ok(certs)
        }
    }
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
        let e = TlsListener::new("SSL", &c).err().unwrap();
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
        assert!(TlsListener::new("SSL", &c).is_ok());
        let inline = ssl_config(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.certificate.chain", &cert.pem()),
            ("ssl.keystore.key", &key.serialize_pem()),
        ]);
        assert!(TlsListener::new("SSL", &inline).is_ok());

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
        assert!(TlsListener::new("SSL", &c).is_ok());
        let c = ssl_config(&[
            ("ssl.keystore.location", p12.to_str().unwrap()),
            ("ssl.keystore.password", "nope"),
        ]);
        assert_eq!(
            TlsListener::new("SSL", &c).err().unwrap().key,
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
