//! Background-task plumbing: one [`Shutdown`] signal handed to every background task, and
//! [`every`] / [`every_blocking`], the one way to run a job periodically.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tracing::warn;

/// Owned by whoever stops the broker; every background task holds a [`Shutdown`] from it.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

impl Default for ShutdownTrigger {
    fn default() -> Self {
        ShutdownTrigger {
            tx: watch::channel(false).0,
        }
    }
}

impl ShutdownTrigger {
    pub fn new() -> ShutdownTrigger {
        ShutdownTrigger::default()
    }

    /// A signal for one more task.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }

    /// Tells every task to stop.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

/// Tells a background task when to stop. A dropped [`ShutdownTrigger`] counts as triggered.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// Completes once shutdown is triggered (at once if it already was).
    pub async fn triggered(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow() || self.rx.has_changed().is_err()
    }
}

/// Runs `job` every `period`, the first time one period from now; a late run delays the next
/// one instead of bunching runs up. Returns when `shutdown` triggers (between runs).
pub async fn every<F, Fut>(period: Duration, shutdown: Shutdown, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(period.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.triggered() => return,
            _ = ticker.tick() => {}
        }
        job().await;
    }
}

/// Like [`every`], for jobs that block on file I/O: each run goes to the blocking thread pool.
pub async fn every_blocking<F>(period: Duration, shutdown: Shutdown, job: F)
where
    F: Fn() + Send + Sync + 'static,
{
    let job = Arc::new(job);
    every(period, shutdown, || {
        let job = job.clone();
        async move {
            if let Err(e) = tokio::task::spawn_blocking(move || job()).await {
                warn!(error = %e, "periodic task failed");
            }
        }
    })
    .await
}

/// Like [`every_blocking`], with a period read again before each wait (a setting that may
/// change while the broker runs).
pub async fn every_blocking_varying<P, F>(period: P, shutdown: Shutdown, job: F)
where
    P: Fn() -> Duration + Send + 'static,
    F: Fn() + Send + Sync + 'static,
{
    let job = Arc::new(job);
    loop {
        tokio::select! {
            _ = shutdown.triggered() => return,
            _ = tokio::time::sleep(period().max(Duration::from_millis(1))) => {}
        }
        let job = job.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || job()).await {
            warn!(error = %e, "periodic task failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn runs_every_period_until_shutdown() {
        let trigger = ShutdownTrigger::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let runs = runs.clone();
            every(Duration::from_millis(100), trigger.subscribe(), move || {
                runs.fetch_add(1, Ordering::SeqCst);
                async {}
            })
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "first run one period from now"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        trigger.trigger();
        task.await.unwrap();
        assert!(trigger.subscribe().is_triggered());
    }

    #[tokio::test]
    async fn a_varying_period_is_read_before_each_wait() {
        let trigger = ShutdownTrigger::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let period = Arc::new(AtomicUsize::new(20));
        let task = tokio::spawn({
            let (runs, period) = (runs.clone(), period.clone());
            every_blocking_varying(
                move || Duration::from_millis(period.load(Ordering::SeqCst) as u64),
                trigger.subscribe(),
                move || {
                    runs.fetch_add(1, Ordering::SeqCst);
                },
            )
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(runs.load(Ordering::SeqCst) >= 2);
        period.store(60_000, Ordering::SeqCst);
        // The wait in progress ends with its old period; the next one uses the new period.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let settled = runs.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(runs.load(Ordering::SeqCst), settled);
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stops during a long wait")
            .unwrap();
    }

    #[tokio::test]
    async fn a_dropped_trigger_stops_tasks() {
        let trigger = ShutdownTrigger::new();
        let shutdown = trigger.subscribe();
        assert!(!shutdown.is_triggered());
        drop(trigger);
        shutdown.triggered().await;
        assert!(shutdown.is_triggered());
    }
}
