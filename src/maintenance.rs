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
    // A failed flush or checkpoint fails the log directory: what it covered may not be on disk.
    let failure = broker.replicas.dir_failure().clone();
    tasks.spawn(every(
        Duration::from_secs(1),
        shutdown.clone(),
        logs.clone(),
        move |logs| {
            for (tp, log) in logs.open_partitions() {
                if let Err(e) = log.flush_if_due(now_ms()) {
                    failure.report(&format!("flush of {tp}"), &e);
                }
            }
        },
    ));
    let failure = broker.replicas.dir_failure().clone();
    if c.cleaner_enable {
        let backoff = Duration::from_millis(c.cleaner_backoff_ms);
        tasks.spawn(every(backoff, shutdown.clone(), logs.clone(), |logs| {
            // Clean due partitions one at a time until none is due (bounded per round).
            for _ in 0..64 {
                if logs.run_cleaner(now_ms()).partition.is_none() {
                    break;
                }
            }
        }));
    }
    tasks.spawn(every(checkpoint_every, shutdown, logs, move |logs| {
        if let Err(e) = logs.checkpoint() {
            failure.report("writing log checkpoints", &e);
        }
    }));
}

async fn every(
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
    logs: Arc<LogManager>,
    job: impl Fn(&LogManager) + Send + Sync + 'static,
) {
    let job = Arc::new(job);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = ticker.tick() => {}
        }
        let (logs, job) = (logs.clone(), job.clone());
        if let Err(e) = tokio::task::spawn_blocking(move || job(&logs)).await {
            warn!(error = %e, "log maintenance task failed");
        }
    }
}

/// Spawns the group coordinator's timers: member session expiry and overdue rebalances (every
/// 100 ms), and committed-offset expiry (every offsets.retention.check.interval.ms).
pub fn spawn_group_tasks(
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) {
    let b = broker.clone();
    let mut stop = shutdown.clone();
    tasks.spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(100));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = ticker.tick() => {}
            }
            let now = now_ms();
            for (group, record) in b.groups.tick(now) {
                // Nobody waits for an answer: the record replicates in the background.
                match b.groups.persist(&b.replicas, &group, vec![record], now) {
                    Ok(replication) => replication.detach(),
                    Err(e) => warn!(group, error = %e, "group metadata not persisted"),
                }
            }
        }
    });
    let every_ms = broker.config.group.offsets_retention_check_interval_ms;
    let mut stop = shutdown;
    tasks.spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(every_ms));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = ticker.tick() => {}
            }
            let now = now_ms();
            for (group, tombstones) in broker.groups.expire_offsets(now) {
                info!(
                    group,
                    records = tombstones.len(),
                    "expired committed offsets"
                );
                match broker
                    .groups
                    .persist(&broker.replicas, &group, tombstones, now)
                {
                    Ok(replication) => replication.detach(),
                    Err(e) => warn!(group, error = %e, "offset expiry not persisted"),
                }
            }
        }
    });
}
