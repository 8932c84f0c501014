//! Network front: the TCP acceptor, per-connection tasks, framing and dispatch.

pub mod connection;
pub mod dispatch;
pub mod dn;
pub mod frame;
pub mod http;
pub mod limit;
pub mod sasl;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::info;

use crate::broker::Broker;
use crate::util::task::Shutdown;
use connection::Connection;

/// Listening sockets bound for a broker, not yet accepting.
pub struct Server {
    broker: Arc<Broker>,
    /// Each socket with its listener's name, its TLS set-up on an SSL or SASL_SSL listener, and
    /// whether it is a SASL listener.
    listeners: Vec<(Arc<str>, TcpListener, Option<tls::TlsListener>, bool)>,
}

impl Server {
    /// Binds every configured listener.
    pub async fn bind(broker: Arc<Broker>) -> anyhow::Result<Server> {
        let mut listeners = Vec::new();
        let config = broker.config.current();
        for l in &config.listeners {
            let addr = format!("{}:{}", l.bind_host(), l.port);
            let socket = TcpListener::bind(&addr)
                .await
                .with_context(|| format!("binding listener {}://{addr}", l.name))?;
            let tls = match config.listener_ssl.get(&l.name) {
                Some(ssl) => Some(tls::TlsListener::new(
                    &l.name,
                    ssl,
                    tls::handshake_timeout(config.connections_max_idle),
                )?),
                None => None,
            };
            let sasl = config.listener_sasl.get(&l.name);
            info!(listener = %l.name, protocol = l.protocol.name(), address = %socket.local_addr()?,
                sasl_mechanisms = ?sasl.map(|s| s.names()), "listening");
            listeners.push((Arc::from(l.name.as_str()), socket, tls, sasl.is_some()));
        }
        Ok(Server { broker, listeners })
    }

    /// Local addresses actually bound (port 0 resolves here).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(_, l, _, _)| l.local_addr().ok())
            .collect()
    }

    /// Accepts connections until `shutdown`, then stops accepting and returns once every
    /// connection has ended.
    pub async fn run(self, shutdown: Shutdown) {
        let limit = limit::ConnectionLimit::new(&self.broker.config);
        let permits = limit.permits();
        let per_ip = limit::PerIpLimit::default();
        let mut acceptors = JoinSet::new();
        acceptors.spawn(limit.follow(self.broker.config.clone(), shutdown.clone()));
        for (name, listener, tls, sasl) in self.listeners {
            acceptors.spawn(accept_loop(
                name,
                listener,
                (tls, sasl),
                self.broker.clone(),
                permits.clone(),
                per_ip.clone(),
                shutdown.clone(),
            ));
        }
        while acceptors.join_next().await.is_some() {}
    }
}

async fn accept_loop(
    name: Arc<str>,
    listener: TcpListener,
    (tls, sasl): (Option<tls::TlsListener>, bool),
    broker: Arc<Broker>,
    permits: Arc<Semaphore>,
    per_ip: limit::PerIpLimit,
    shutdown: Shutdown,
) {
    let mut connections = JoinSet::new();
    // This listener's open-connection gauge (kafka_server_socket_server_metrics_connection_count).
    let open = broker.metrics().listener_gauge(&name);
    loop {
        // Finished connections are reaped as they end (not only at the next accept), so a burst
        // of closed connections leaves no task memory behind.
        let permit = tokio::select! {
            _ = shutdown.triggered() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = loop {
            tokio::select! {
                _ = shutdown.triggered() => break None,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => break Some(accepted),
            }
        };
        let Some(accepted) = accepted else { break };
        match accepted {
            Ok((stream, peer)) => {
                let config = broker.config.current();
                per_ip
                    .update_overrides(&config.max_connections_per_ip_overrides)
                    .await;
                let Some(slot) = per_ip.try_admit(peer.ip(), config.max_connections_per_ip) else {
                    // Over this address's limit: closed at accept (dropping the stream).
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let counted = crate::metrics::connection_opened(&open);
                let broker = broker.clone();
                let conn = Connection::new(name.clone(), peer);
                let conn = if sasl { conn.with_sasl() } else { conn };
                let stop = shutdown.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    tokio::select! {
                        _ = serve(broker, stream, conn, tls) => {}
                        _ = stop.triggered() => {}
                    }
                    drop(counted);
                    drop(slot);
                    drop(permit);
                });
            }
            Err(e) => {
                crate::util::ratelog::warn_limited!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    // Every connection has seen the stop signal; wait for them so none outlives the broker.
    while connections.join_next().await.is_some() {}
}

/// Serves one accepted socket: straight away on a PLAINTEXT or SASL_PLAINTEXT listener; after
/// the TLS handshake, with the client's principal, on an SSL one (on SASL_SSL the SASL exchange
/// then sets the principal). A failed handshake closes this connection only.
async fn serve(
    broker: Arc<Broker>,
    stream: tokio::net::TcpStream,
    mut conn: Connection,
    tls: Option<tls::TlsListener>,
) {
    let Some(tls) = tls else {
        return connection::serve_connection(broker, stream, conn).await;
    };
    match tls.accept(stream).await {
        Ok((stream, principal)) => {
            tracing::debug!(peer = %conn.peer, %principal, "TLS connection");
            conn.principal = principal;
            connection::serve_connection(broker, stream, conn).await
        }
        Err(e) => {
            crate::util::ratelog::warn_limited!(peer = %conn.peer, listener = %conn.listener, error = %e, "closing connection");
        }
    }
}
