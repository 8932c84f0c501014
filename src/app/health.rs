//! `odradek healthcheck`: one ApiVersions request over the Kafka protocol to a broker, the way a
//! container health check or a load balancer probe asks "is this broker answering requests?".
//! A valid answer (error code 0, ApiVersions itself among the advertised APIs) is healthy;
//! anything else (refused connection, timeout, garbage, an error code) is not.

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::replica::peer::{PeerConnection, PeerError};

/// The ApiVersions version asked for: v3 is understood by every Kafka since 2.4 and by Odradek.
const VERSION: i16 = 3;

/// A largest ApiVersions answer accepted (a few hundred bytes in practice).
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Why a broker was judged unhealthy.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("bootstrap {0:?} is not host:port")]
    BadAddress(String),
    #[error("{addr}: {source}")]
    Request { addr: String, source: PeerError },
    #[error("{addr}: ApiVersions answered error code {code}")]
    ErrorCode { addr: String, code: i16 },
    #[error("{addr}: ApiVersions answer lists no ApiVersions API")]
    NoApis { addr: String },
}

/// What a healthy broker answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthy {
    /// How many APIs the broker advertised.
    pub apis: usize,
}

/// Sends one ApiVersions request to `bootstrap` (`host:port`) and checks the answer, all within
/// `timeout` for the connection and again for the request.
pub async fn check(bootstrap: &str, timeout: Duration) -> Result<Healthy, HealthError> {
    let (host, port) = split_address(bootstrap)?;
    let addr = bootstrap.to_string();
    let request_failed = |source| HealthError::Request {
        addr: addr.clone(),
        source,
    };
    let mut conn = PeerConnection::connect(
        host,
        port,
        "odradek-healthcheck".to_string(),
        MAX_RESPONSE_BYTES,
        timeout,
    )
    .await
    .map_err(request_failed)?;
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("odradek-healthcheck"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
    let response: ApiVersionsResponse = conn
        .call(ApiKey::ApiVersions, VERSION, &request, Duration::ZERO)
        .await
        .map_err(request_failed)?;
    judge(&addr, &response)
}

/// Healthy when the answer carries no error and advertises ApiVersions itself.
fn judge(addr: &str, response: &ApiVersionsResponse) -> Result<Healthy, HealthError> {
    if response.error_code != 0 {
        return Err(HealthError::ErrorCode {
            addr: addr.to_string(),
            code: response.error_code,
        });
    }
    let lists_itself = response
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::ApiVersions as i16);
    if !lists_itself {
        return Err(HealthError::NoApis {
            addr: addr.to_string(),
        });
    }
    Ok(Healthy {
        apis: response.api_keys.len(),
    })
}

/// `host:port`, `[v6addr]:port` included.
fn split_address(bootstrap: &str) -> Result<(&str, u16), HealthError> {
    let bad = || HealthError::BadAddress(bootstrap.to_string());
    let (host, port) = bootstrap.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(
            split_address("127.0.0.1:9092").unwrap(),
            ("127.0.0.1", 9092)
        );
        assert_eq!(split_address("[::1]:19092").unwrap(), ("::1", 19092));
        assert_eq!(split_address("broker1:19092").unwrap(), ("broker1", 19092));
        for bad in ["broker1", ":9092", "host:port", "host:70000"] {
            assert!(split_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_error_code_or_an_empty_list_is_unhealthy() {
        let listed = ApiVersionsResponse::default().with_api_keys(vec![ApiVersion::default()
            .with_api_key(ApiKey::ApiVersions as i16)
            .with_max_version(4)]);
        assert_eq!(judge("a:1", &listed).unwrap(), Healthy { apis: 1 });
        let refused = listed.clone().with_error_code(35);
        assert!(matches!(
            judge("a:1", &refused),
            Err(HealthError::ErrorCode { code: 35, .. })
        ));
        let empty = ApiVersionsResponse::default();
        assert!(matches!(
            judge("a:1", &empty),
            Err(HealthError::NoApis { .. })
        ));
    }

    #[tokio::test]
    async fn nothing_listening_is_unhealthy() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let r = check(&addr, Duration::from_secs(2)).await;
        assert!(matches!(r, Err(HealthError::Request { .. })), "{r:?}");
    }

    #[tokio::test]
    async fn a_running_broker_is_healthy() {
        let dir = tempfile::tempdir().unwrap();
        let overrides = [
            "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
            format!("log.dirs={}", dir.path().display()),
            // Off, so that the test binds no fixed port (a key unknown to older builds is ignored).
            "http.listener=".to_string(),
        ];
        let (config, _unknown) = crate::app::read_config(None, &overrides).unwrap();
        let running = crate::app::RunningBroker::start(config).await.unwrap();
        let addr = running.addrs()[0].to_string();
        let healthy = check(&addr, Duration::from_secs(5)).await.unwrap();
        assert!(healthy.apis > 10, "{healthy:?}");
        running.shutdown().await.unwrap();
    }
}
