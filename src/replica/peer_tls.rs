//! The TLS client side of inter-broker connections, from the inter-broker listener's SSL
//! settings as Kafka uses them: its keystore is this broker's certificate (for peers that ask
//! for client certificates), its truststore checks the peers' certificates, and
//! `ssl.endpoint.identification.algorithm` says whether they must name the host dialled.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::config::keystore::{self, Failure};
use crate::config::ssl::SslConfig;

/// The rustls client configuration for dialling peers.
pub fn client_config(ssl: &SslConfig) -> Result<ClientConfig, Failure> {
    let provider = Arc::new(keystore::provider(ssl));
    let Some(truststore) = &ssl.truststore else {
        return Err((
            "ssl.truststore.location",
            "brokers dial each other over TLS, so a truststore is needed to check their \
             certificates"
                .into(),
        ));
    };
    let mut roots = RootCertStore::empty();
    for cert in keystore::load_truststore(truststore)? {
        roots.add(cert).map_err(|e| {
            (
                "ssl.truststore.location",
                format!("bad CA certificate: {e}"),
            )
        })?;
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| ("ssl.truststore.location", e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = if ssl.verify_hostname {
        webpki
    } else {
        Arc::new(AnyHostName(webpki))
    };
    let (chain, key) = keystore::load_keystore(&ssl.keystore)?;
    ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&keystore::protocol_versions(ssl))
        .map_err(|e| {
            (
                "ssl.cipher.suites",
                format!("no suite for the enabled protocols: {e}"),
            )
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)
        .map_err(|e| {
            (
                "ssl.keystore.location",
                format!("unusable certificate or key: {e}"),
            )
        })
}

/// `ssl.endpoint.identification.algorithm=` (empty): the chain is checked against the
/// truststore as always; only a certificate naming another host is accepted.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the name last, once the chain is known good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
