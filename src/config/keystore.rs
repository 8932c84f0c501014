//! Reads the key material an SSL listener's settings name: keystores (PKCS12, whatever the
//! type key says, or PEM in a file or inline) and truststores, into rustls types, and the
//! crypto provider limited to `ssl.cipher.suites`. Server listeners and the inter-broker
//! client both use it. A Java KeyStore (JKS) is refused with how to convert it.

use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::ssl::{KeyStore, SslConfig, StoreType, TlsVersion, TrustStore};

/// The magic bytes a Java KeyStore (JKS) file starts with.
const JKS_MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];

/// The rustls protocol versions of `ssl.enabled.protocols`.
pub fn protocol_versions(config: &SslConfig) -> Vec<&'static rustls::SupportedProtocolVersion> {
    config
        .enabled_protocols
        .iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect()
}

/// ring's suites, limited to `ssl.cipher.suites` when given. rustls deprecates the ring
/// provider for lacking post-quantum key exchange; the alternative (aws-lc-rs) needs cmake and
/// a C toolchain to build, so ring stays until that changes.
#[allow(deprecated)]
pub fn provider(config: &SslConfig) -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    if !config.cipher_suites.is_empty() {
        provider.cipher_suites.retain(|s| {
            let name = s.suite().as_str().unwrap_or_default();
            config.cipher_suites.iter().any(|c| c == name)
        });
    }
    provider
}

/// A key that could not be used and why (never the secret itself).
pub type Failure = (&'static str, String);

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

/// The certificate chain and private key of a keystore.
pub fn load_keystore(
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

/// The certificates of a truststore.
pub fn load_truststore(store: &TrustStore) -> Result<Vec<CertificateDer<'static>>, Failure> {
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
