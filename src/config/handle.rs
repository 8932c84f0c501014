//! [`ConfigHandle`]: the broker's configuration as it is now. Readers take a snapshot per use;
//! a dynamic change replaces the whole configuration at once and wakes whoever caches values
//! derived from it.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::BrokerConfig;

/// A shared, replaceable [`BrokerConfig`]; clones see the same configuration.
#[derive(Clone)]
pub struct ConfigHandle {
    current: Arc<ArcSwap<BrokerConfig>>,
    /// Counts replacements; subscribers are woken by each.
    changes: Arc<watch::Sender<u64>>,
}

impl ConfigHandle {
    pub fn new(config: BrokerConfig) -> ConfigHandle {
        ConfigHandle {
            current: Arc::new(ArcSwap::from_pointee(config)),
            changes: Arc::new(watch::channel(0).0),
        }
    }

    /// The configuration now (a snapshot: later replacements do not change it).
    pub fn current(&self) -> Arc<BrokerConfig> {
        self.current.load_full()
    }

    /// Replaces the configuration and notifies subscribers.
    pub fn replace(&self, config: BrokerConfig) {
        self.current.store(Arc::new(config));
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes whenever the configuration is replaced.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

impl std::fmt::Debug for ConfigHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ConfigHandle")
            .field(&self.current())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::properties::parse;
    use crate::config::QUICKSTART_PROPERTIES;

    fn config(partitions: &str) -> BrokerConfig {
        let mut p = parse(QUICKSTART_PROPERTIES);
        p.insert("num.partitions".into(), partitions.into());
        BrokerConfig::from_properties(p).unwrap().0
    }

    #[test]
    fn replacement_is_seen_by_every_clone_and_announced() {
        let handle = ConfigHandle::new(config("1"));
        let clone = handle.clone();
        let mut changes = clone.subscribe();
        let before = clone.current();
        handle.replace(config("7"));
        assert_eq!(clone.current().num_partitions, 7);
        assert_eq!(before.num_partitions, 1, "a snapshot stays as it was");
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert!(!changes.has_changed().unwrap());
    }
}
