//! Connection limits. `max.connections` follows dynamic changes: a higher limit admits more
//! connections at once; a lower one admits new connections only once enough open ones have
//! closed (open connections are never cut, as in Kafka), and the acceptor waits for a free slot.
//! `max.connections.per.ip` (with `max.connections.per.ip.overrides`) is checked at accept: a
//! connection over its address's limit is closed at once, as Kafka's acceptor does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{info, warn};

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

/// How often at most a refused connection is logged; refusals in between are counted and
/// summarised in the next line, so a flood cannot write unbounded logs.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Open connections per client address, shared by every listener's acceptor.
#[derive(Clone, Default)]
pub struct PerIpLimit {
    state: Arc<Mutex<PerIpState>>,
}

#[derive(Default)]
struct PerIpState {
    open: HashMap<IpAddr, usize>,
    /// The overrides as configured, and what they resolved to.
    overrides_source: Vec<(String, usize)>,
    overrides: HashMap<IpAddr, usize>,
    /// Refusals not logged yet, and when the last line was written.
    unlogged_refusals: u64,
    last_log: Option<Instant>,
}

/// One admitted connection's place in its address's count, given back on drop.
pub struct IpSlot {
    state: Arc<Mutex<PerIpState>>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut state = self.state.lock();
        if let Some(n) = state.open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                state.open.remove(&self.ip);
            }
        }
    }
}

impl PerIpLimit {
    /// Brings the overrides up to date with the configuration, resolving host names (a name
    /// that does not resolve is logged and skipped, as it can match no peer).
    pub async fn update_overrides(&self, configured: &[(String, usize)]) {
        if self.state.lock().overrides_source == configured {
            return;
        }
        let mut resolved = HashMap::new();
        for (host, count) in configured {
            if let Ok(ip) = host.parse::<IpAddr>() {
                resolved.insert(ip.to_canonical(), *count);
                continue;
            }
            match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(addrs) => {
                    for a in addrs {
                        resolved.insert(a.ip().to_canonical(), *count);
                    }
                }
                Err(e) => warn!(%host, error = %e,
                    "max.connections.per.ip.overrides: host does not resolve"),
            }
        }
        let mut state = self.state.lock();
        state.overrides_source = configured.to_vec();
        state.overrides = resolved;
    }

    /// Admits a connection from `ip` if its address is under its limit (`default`, or the
    /// address's override); otherwise counts (and now and then logs) the refusal.
    pub fn try_admit(&self, ip: IpAddr, default: usize) -> Option<IpSlot> {
        let ip = ip.to_canonical();
        let mut state = self.state.lock();
        let limit = state.overrides.get(&ip).copied().unwrap_or(default);
        let open = state.open.get(&ip).copied().unwrap_or(0);
        if open < limit {
            state.open.insert(ip, open + 1);
            return Some(IpSlot {
                state: self.state.clone(),
                ip,
            });
        }
        state.unlogged_refusals += 1;
        let now = Instant::now();
        if state
            .last_log
            .is_none_or(|t| now.duration_since(t) >= REFUSAL_LOG_INTERVAL)
        {
            let others = state.unlogged_refusals - 1;
            info!(peer = %ip, limit, refused_since_last_line = others,
                "connection refused: max.connections.per.ip reached for this address");
            state.unlogged_refusals = 0;
            state.last_log = Some(now);
        }
        None
    }

    /// Connections open from `ip`.
    pub fn open(&self, ip: IpAddr) -> usize {
        let state = self.state.lock();
        state.open.get(&ip.to_canonical()).copied().unwrap_or(0)
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
    async fn per_ip_limit_refuses_over_the_limit_and_frees_on_close() {
        let limit = PerIpLimit::default();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.1".parse().unwrap();
        let a = limit.try_admit(local, 2).expect("first");
        let _b = limit.try_admit(local, 2).expect("second");
        assert!(limit.try_admit(local, 2).is_none(), "third refused");
        assert!(limit.try_admit(local, 2).is_none(), "and the next");
        let _c = limit
            .try_admit(other, 2)
            .expect("another address has its own count");
        assert_eq!(limit.open(local), 2);
        drop(a);
        assert_eq!(limit.open(local), 1);
        let _d = limit.try_admit(local, 2).expect("a slot freed by a close");
        // An IPv4-mapped IPv6 peer counts as its IPv4 address.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(limit.try_admit(mapped, 2).is_none());
    }

    #[tokio::test]
    async fn per_ip_overrides_raise_or_lower_one_address() {
        let limit = PerIpLimit::default();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.1".parse().unwrap();
        limit
            .update_overrides(&[("127.0.0.1".into(), 3), ("10.0.0.1".into(), 0)])
            .await;
        let held: Vec<_> = (0..3)
            .map(|_| {
                limit
                    .try_admit(local, 1)
                    .expect("override 3 beats default 1")
            })
            .collect();
        assert!(limit.try_admit(local, 1).is_none(), "fourth refused");
        assert!(
            limit.try_admit(other, 1).is_none(),
            "override 0 refuses all"
        );
        limit.update_overrides(&[]).await;
        assert!(limit.try_admit(other, 1).is_some(), "override removed");
        assert!(limit.try_admit(local, 1).is_none(), "default 1, 3 open");
        drop(held);
        assert_eq!(limit.open(local), 0);
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
