//! Background upkeep of the log directory: retention, time-based flushes, compaction and the
//! recovery checkpoints. A failed flush or checkpoint fails the log directory: what it covered
//! may not be on disk.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tracing::info;

use super::dir_failure::LogDirFailure;
use super::LogManager;
use crate::config::ConfigHandle;
use crate::util::clock::now_ms;
use crate::util::task::{every_blocking, every_blocking_varying, Shutdown};

/// How often flushes that are due by time are looked for.
const FLUSH_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Most partitions cleaned in one round of the cleaner task.
const CLEANINGS_PER_ROUND: usize = 64;

/// Starts the periodic log tasks; they end at `shutdown`. The cleaner's pause
/// (`log.cleaner.backoff.ms`) follows dynamic changes; the other periods are static in Kafka.
pub fn spawn(
    logs: &Arc<LogManager>,
    failure: &Arc<LogDirFailure>,
    handle: &ConfigHandle,
    shutdown: &Shutdown,
    tasks: &mut JoinSet<()>,
) {
    let config = handle.current();
    let retention_every = Duration::from_millis(config.retention_check_interval_ms.max(1));
    let l = logs.clone();
    tasks.spawn(every_blocking(
        retention_every,
        shutdown.clone(),
        move || {
            let removed = l.run_retention(now_ms());
            if removed > 0 {
                info!(segments = removed, "retention removed old segments");
            }
        },
    ));
    let (l, f) = (logs.clone(), failure.clone());
    tasks.spawn(every_blocking(
        FLUSH_CHECK_INTERVAL,
        shutdown.clone(),
        move || {
            for (tp, log) in l.open_partitions() {
                if let Err(e) = log.flush_if_due(now_ms()) {
                    f.report(&format!("flush of {tp}"), &e);
                }
            }
        },
    ));
    if config.cleaner_enable {
        let handle = handle.clone();
        let backoff = move || Duration::from_millis(handle.current().cleaner_backoff_ms);
        let l = logs.clone();
        tasks.spawn(every_blocking_varying(
            backoff,
            shutdown.clone(),
            move || {
                // Clean due partitions one at a time until none is due (bounded per round).
                for _ in 0..CLEANINGS_PER_ROUND {
                    if l.run_cleaner(now_ms()).partition.is_none() {
                        break;
                    }
                }
            },
        ));
    }
    let checkpoint_every = Duration::from_millis(config.flush_offset_checkpoint_interval_ms);
    let (l, f) = (logs.clone(), failure.clone());
    tasks.spawn(every_blocking(
        checkpoint_every,
        shutdown.clone(),
        move || {
            if let Err(e) = l.checkpoint() {
                f.report("writing log checkpoints", &e);
            }
        },
    ));
}
