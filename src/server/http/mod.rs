//! The HTTP listener (`http.listener`): `/metrics` in Prometheus text format and the read-only
//! web console at every other path. HTTP/1.1 on hyper, GET and HEAD only; a bounded number of
//! connections, each with a header read timeout, so a stray client cannot hold the broker's
//! memory.

pub mod console;
pub mod metrics;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info};

use crate::broker::Broker;
use crate::util::task::Shutdown;

/// Most HTTP connections served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The bound HTTP listener, not yet serving.
pub struct HttpServer {
    broker: Arc<Broker>,
    listener: TcpListener,
}

impl HttpServer {
    /// Binds `http.listener`; `None` when the key is empty. A port that cannot be bound is an
    /// error naming the key.
    pub async fn bind(broker: Arc<Broker>) -> anyhow::Result<Option<HttpServer>> {
        let Some(addr) = broker.config.current().http_listener.clone() else {
            return Ok(None);
        };
        let bind_to = bind_address(&addr);
        let listener = TcpListener::bind(&bind_to)
            .await
            .with_context(|| format!("configuration http.listener: cannot bind {addr}"))?;
        info!(address = %listener.local_addr()?, "HTTP listener (metrics, console)");
        Ok(Some(HttpServer { broker, listener }))
    }

    /// The bound address (port 0 resolves here).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown`, then returns once every HTTP connection has ended.
    pub async fn run(self, shutdown: Shutdown) {
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut connections = JoinSet::new();
        loop {
            let permit = tokio::select! {
                _ = shutdown.triggered() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            // Finished connections are reaped while waiting, so none lingers until the next accept.
            let accepted = loop {
                tokio::select! {
                    _ = shutdown.triggered() => break None,
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    a = self.listener.accept() => break Some(a),
                }
            };
            let Some(accepted) = accepted else { break };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    crate::util::ratelog::warn_limited!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let broker = self.broker.clone();
            let stop = shutdown.clone();
            connections.spawn(async move {
                let service = service_fn(move |req| respond(broker.clone(), req));
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    r = conn => if let Err(e) = r { debug!(%peer, error = %e, "HTTP connection ended") },
                    _ = stop.triggered() => {}
                }
                drop(permit);
            });
        }
        while connections.join_next().await.is_some() {}
    }
}

/// The socket address to bind for an `http.listener` value: an empty host is every interface.
fn bind_address(value: &str) -> String {
    match value.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => value.to_string(),
    }
}

async fn respond(
    broker: Arc<Broker>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(resp);
    }
    let path = req.uri().path();
    debug!(path, "HTTP request");
    if path == "/metrics" {
        let body = metrics::render(&broker).await;
        return Ok(response(StatusCode::OK, metrics::CONTENT_TYPE, body));
    }
    let resp = match console::page(&broker, path, req.uri().query()).await {
        Some(page) => response(
            StatusCode::from_u16(page.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            page.content_type,
            page.body,
        ),
        None => plain(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(resp)
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    response(status, "text/plain; charset=utf-8", body.to_string())
}

fn response(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
