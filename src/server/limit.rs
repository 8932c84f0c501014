//! The connection limit (`max.connections`), which follows dynamic changes: a higher limit
//! admits more connections at once; a lower one admits new connections only once enough open
//! ones have closed (open connections are never cut, as in Kafka).

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::info;

use crate::config::ConfigHandle;
use crate::util::task::Shutdown;

/// Permits for open connections, sized by the configuration.
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl ConnectionLimit {
    pub fn new(config: &ConfigHandle) -> ConnectionLimit {
        let limit = capped(config.current().max_connections);
        ConnectionLimit {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// The permits an acceptor takes one of per connection.
    pub fn permits(&self) -> Arc<Semaphore> {
        self.permits.clone()
    }

    /// Resizes the permits on every configuration change until `shutdown`.
    pub async fn follow(mut self, config: ConfigHandle, shutdown: Shutdown) {
        let mut changes = config.subscribe();
        let mut shrinking = JoinSet::new();
        loop {
            tokio::select! {
                _ = shutdown.triggered() => return,
                changed = changes.changed() => if changed.is_err() { return },
            }
            let wanted = capped(config.current().max_connections);
            if wanted == self.limit {
                continue;
            }
            info!(from = self.limit, to = wanted, "max.connections changed");
            if wanted > self.limit {
                self.permits.add_permits(wanted - self.limit);
            } else {
                // Take the surplus permits as connections close, and keep them.
                let surplus = u32::try_from(self.limit - wanted).unwrap_or(u32::MAX);
                let (permits, stop) = (self.permits.clone(), shutdown.clone());
                shrinking.spawn(async move {
                    tokio::select! {
                        _ = stop.triggered() => {}
                        taken = permits.acquire_many_owned(surplus) => {
                            if let Ok(taken) = taken {
                                taken.forget();
                            }
                        }
                    }
                });
            }
            self.limit = wanted;
            while shrinking.try_join_next().is_some() {}
        }
    }
}

fn capped(limit: usize) -> usize {
    limit.min(Semaphore::MAX_PERMITS)
}
