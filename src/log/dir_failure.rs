//! Kafka's log directory failure channel, for the broker's one log directory. The first I/O error
//! on a write path (append, truncation, checkpoint) marks the directory failed: what was being
//! written may be half on disk, so nothing more may be written there. The broker then stops, as
//! Kafka halts once every log directory has failed; recovery at the next start cuts a torn tail.

use std::fmt::Display;

use tokio::sync::watch;
use tracing::error;

/// Whether the log directory has failed, and why (the first failure).
pub struct LogDirFailure {
    failed: watch::Sender<Option<String>>,
}

impl Default for LogDirFailure {
    fn default() -> Self {
        LogDirFailure {
            failed: watch::channel(None).0,
        }
    }
}

impl LogDirFailure {
    /// Records a storage error while doing `what`. The first one marks the directory failed.
    pub fn report(&self, what: &str, err: &dyn Display) {
        let reason = format!("{what}: {err}");
        let first = self.failed.send_if_modified(|f| {
            if f.is_some() {
                return false;
            }
            *f = Some(reason.clone());
            true
        });
        if first {
            error!(reason = %reason, "log directory failed: no more writes; the broker stops");
        }
    }

    pub fn is_failed(&self) -> bool {
        self.failed.borrow().is_some()
    }

    /// Waits until the directory has failed; returns the first failure.
    pub async fn failed(&self) -> String {
        let mut rx = self.failed.subscribe();
        loop {
            let failed = rx.borrow_and_update().clone();
            if let Some(reason) = failed {
                return reason;
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as `self`: unreachable while borrowed.
                return std::future::pending().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_failure_is_kept_and_wakes_waiters() {
        let f = std::sync::Arc::new(LogDirFailure::default());
        assert!(!f.is_failed());
        let waiter = tokio::spawn({
            let f = f.clone();
            async move { f.failed().await }
        });
        f.report("append to t-0", &"No space left on device");
        f.report("checkpoint", &"later");
        assert!(f.is_failed());
        assert_eq!(
            waiter.await.unwrap(),
            "append to t-0: No space left on device"
        );
        assert_eq!(f.failed().await, "append to t-0: No space left on device");
    }
}
