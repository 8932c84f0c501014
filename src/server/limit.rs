//! The connection limit (`max.connections`), which follows dynamic changes: a higher limit
//! admits more connections at once; a lower one admits new connections only once enough open
//! ones have closed (open connections are never cut, as in Kafka).

use std::sync::Arc;

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::info;

use crate::config::ConfigHandle;
use crate::util::task::Shutdown;

/// Permits for open connections, sized by the configuration.
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
    limit: usize,
    /// Subscribed before the limit was read, so no change is missed.
    changes: watch::Receiver<u64>,
}

impl ConnectionLimit {
    pub fn new(config: &ConfigHandle) -> ConnectionLimit {
        let changes = config.subscribe();
        let limit = capped(config.current().max_connections);
        ConnectionLimit {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            changes,
        }
    }

    /// The permits an acceptor takes one of per connection.
    pub fn permits(&self) -> Arc<Semaphore> {
        self.permits.clone()
    }

    /// Resizes the permits on every configuration change until `shutdown`.
    pub async fn follow(mut self, config: ConfigHandle, shutdown: Shutdown) {
        let mut shrinking = JoinSet::new();
        loop {
            tokio::select! {
                _ = shutdown.triggered() => return,
                changed = self.changes.changed() => if changed.is_err() { return },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::properties::parse;
    use crate::config::{BrokerConfig, QUICKSTART_PROPERTIES};
    use crate::util::task::ShutdownTrigger;
    use std::time::Duration;

    fn config(max: &str) -> BrokerConfig {
        let mut p = parse(QUICKSTART_PROPERTIES);
        p.insert("max.connections".into(), max.into());
        BrokerConfig::from_properties(p).unwrap().0
    }

    async fn settles(permits: &Semaphore, want: usize) -> bool {
        for _ in 0..200 {
            if permits.available_permits() == want {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }

    #[tokio::test]
    async fn the_limit_follows_the_configuration() {
        let handle = ConfigHandle::new(config("2"));
        let limit = ConnectionLimit::new(&handle);
        let permits = limit.permits();
        assert_eq!(permits.available_permits(), 2);
        let trigger = ShutdownTrigger::new();
        let task = tokio::spawn(limit.follow(handle.clone(), trigger.subscribe()));
        handle.replace(config("5"));
        assert!(settles(&permits, 5).await, "raised at once");
        let open = permits.clone().acquire_many_owned(5).await.unwrap();
        handle.replace(config("1"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            permits.available_permits(),
            0,
            "open connections are not cut"
        );
        drop(open);
        assert!(settles(&permits, 1).await, "lowered as connections close");
        trigger.trigger();
        task.await.unwrap();
    }
}
