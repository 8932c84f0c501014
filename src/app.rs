//! Broker lifecycle: load configuration, open storage, serve, and shut down cleanly. Every
//! background task gets the one [`crate::util::task::Shutdown`] signal and ends with it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::config::{properties, BrokerConfig, QUICKSTART_PROPERTIES};
use crate::server::http::HttpServer;
use crate::server::Server;
use crate::util::task::ShutdownTrigger;

pub mod add_scram;
pub mod health;

/// Builds the broker configuration from an optional server.properties file and `key=value`
/// overrides (later wins). Without a file, Kafka's quickstart server.properties applies.
pub fn load_config(file: Option<&Path>, overrides: &[String]) -> anyhow::Result<BrokerConfig> {
    let (config, unknown) = read_config(file, overrides)?;
    for key in unknown {
        warn!(key, "unknown configuration key ignored");
    }
    Ok(config)
}

/// [`load_config`] without logging: the configuration and the unknown keys it ignored, for a
/// caller that starts logging (in the configured format) only once the configuration is read.
pub fn read_config(
    file: Option<&Path>,
    overrides: &[String],
) -> anyhow::Result<(BrokerConfig, Vec<String>)> {
    let mut props: BTreeMap<String, String> = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            properties::parse(&text)
        }
        None => properties::parse(QUICKSTART_PROPERTIES),
    };
    for item in overrides {
        let (key, value) = item
            .split_once('=')
            .with_context(|| format!("--override {item:?} is not key=value"))?;
        props.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(BrokerConfig::from_properties(props)?)
}

/// A broker serving in the current tokio runtime.
pub struct RunningBroker {
    pub broker: Arc<Broker>,
    addrs: Vec<SocketAddr>,
    http_addr: Option<SocketAddr>,
    shutdown: ShutdownTrigger,
    tasks: JoinSet<()>,
}

impl RunningBroker {
    /// Opens storage, binds the listeners, starts serving and the background tasks, then joins
    /// the cluster.
    pub async fn start(config: BrokerConfig) -> anyhow::Result<RunningBroker> {
        let broker = Arc::new(Broker::open(config).await?);
        let server = Server::bind(broker.clone()).await?;
        let addrs = server.local_addrs();
        let http = HttpServer::bind(broker.clone()).await?;
        let http_addr = http.as_ref().and_then(HttpServer::local_addr);
        let trigger = ShutdownTrigger::new();
        let shutdown = trigger.subscribe();
        let mut tasks = JoinSet::new();
        crate::log::maintenance::spawn(
            broker.replicas.logs(),
            broker.replicas.dir_failure(),
            &broker.config,
            &shutdown,
            &mut tasks,
        );
        broker.replicas.spawn_tasks(&shutdown, &mut tasks);
        broker.groups.spawn_timers(&shutdown, &mut tasks);
        broker.txn.spawn_timers(&shutdown, &mut tasks);
        tasks.spawn(server.run(shutdown.clone()));
        if let Some(http) = http {
            tasks.spawn(http.run(shutdown.clone()));
        }
        if let Err(e) = broker.join_cluster(&shutdown, &mut tasks).await {
            trigger.trigger();
            while tasks.join_next().await.is_some() {}
            return Err(e);
        }
        info!(broker_id = broker.broker_id(), cluster_id = %broker.cluster.cluster_id(), "broker started");
        Ok(RunningBroker {
            broker,
            addrs,
            http_addr,
            shutdown: trigger,
            tasks,
        })
    }

    /// The bound listener addresses.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The bound HTTP listener (`http.listener`), if there is one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The log directory's failure state (see [`RunningBroker::halt`]).
    pub fn dir_failure(&self) -> Arc<crate::log::dir_failure::LogDirFailure> {
        self.broker.replicas.dir_failure().clone()
    }

    /// After the log directory failed: stops serving and, in a cluster, closes the session so
    /// the controller moves this broker's leaderships at once. No flush and no clean-shutdown
    /// marker: the next start recovers the logs. Returns the error the process exits with.
    pub async fn halt(mut self, reason: &str) -> anyhow::Error {
        self.broker.replicas.fence_leaders();
        self.stop_tasks().await;
        self.broker.disconnect().await;
        anyhow::anyhow!("log directory failed ({reason}); stopped without a clean shutdown")
    }

    /// Stops accepting, ends connections, then flushes and checkpoints every log.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        info!("shutting down");
        self.broker.leave_cluster().await;
        self.stop_tasks().await;
        self.broker.disconnect().await;
        let broker = self.broker.clone();
        tokio::task::spawn_blocking(move || broker.shutdown()).await??;
        info!("shutdown complete");
        Ok(())
    }

    async fn stop_tasks(&mut self) {
        self.shutdown.trigger();
        while self.tasks.join_next().await.is_some() {}
    }
}
