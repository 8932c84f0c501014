//! Background upkeep of the logs: retention, time-based flushes and recovery checkpoints.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::log::LogManager;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Spawns the periodic log tasks; they stop when `shutdown` turns true.
pub fn spawn(broker: &Broker, shutdown: watch::Receiver<bool>, tasks: &mut JoinSet<()>) {
    let logs = broker.replicas.logs().clone();
    let c = &broker.config;
    let retention_every = Duration::from_millis(c.retention_check_interval_ms.max(1));
    let checkpoint_every = Duration::from_millis(c.flush_offset_checkpoint_interval_ms);
    tasks.spawn(every(
        retention_every,
        shutdown.clone(),
        logs.clone(),
        |logs| {
            let removed = logs.run_retention(now_ms());
            if removed > 0 {
                info!(segments = removed, "retention removed old segments");
            }
        },
    ));
    tasks.spawn(every(
        Duration::from_secs(1),
        shutdown.clone(),
        logs.clone(),
        |logs| logs.flush_due(now_ms()),
    ));
    tasks.spawn(every(checkpoint_every, shutdown, logs, |logs| {
        if let Err(e) = logs.checkpoint() {
            warn!(error = %e, "writing log checkpoints failed");
        }
    }));
}

async fn every(
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
    logs: Arc<LogManager>,
    job: fn(&LogManager),
) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = ticker.tick() => {}
        }
        let logs = logs.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || job(&logs)).await {
            warn!(error = %e, "log maintenance task failed");
        }
    }
}
