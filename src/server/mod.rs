//! Network front: the TCP acceptor, per-connection tasks, framing and dispatch.

pub mod connection;
pub mod dispatch;
pub mod frame;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::broker::Broker;

/// Listening sockets bound for a broker, not yet accepting.
pub struct Server {
    broker: Arc<Broker>,
    listeners: Vec<TcpListener>,
}

impl Server {
    /// Binds every configured listener.
    pub async fn bind(broker: Arc<Broker>) -> anyhow::Result<Server> {
        let mut listeners = Vec::new();
        for l in &broker.config.listeners {
            let addr = format!("{}:{}", l.bind_host(), l.port);
            let socket = TcpListener::bind(&addr)
                .await
                .with_context(|| format!("binding listener {}://{addr}", l.name))?;
            info!(listener = %l.name, address = %socket.local_addr()?, "listening");
            listeners.push(socket);
        }
        Ok(Server { broker, listeners })
    }

    /// Local addresses actually bound (port 0 resolves here).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Accepts connections until `shutdown` turns true, then stops accepting and returns.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(
            self.broker
                .config
                .max_connections
                .min(Semaphore::MAX_PERMITS),
        ));
        let mut acceptors = JoinSet::new();
        for listener in self.listeners {
            acceptors.spawn(accept_loop(
                listener,
                self.broker.clone(),
                permits.clone(),
                shutdown.clone(),
            ));
        }
        while acceptors.join_next().await.is_some() {}
    }
}

async fn accept_loop(
    listener: TcpListener,
    broker: Arc<Broker>,
    permits: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let broker = broker.clone();
                let mut stop = shutdown.clone();
                connections.spawn(async move {
                    tokio::select! {
                        _ = connection::serve_connection(broker, stream, peer) => {}
                        _ = stop.wait_for(|stop| *stop) => {}
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    // Every connection has seen the stop signal; wait for them so none outlives the broker.
    while connections.join_next().await.is_some() {}
}
