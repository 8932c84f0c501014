//! Dynamic broker configs (Kafka's KIP-226): the cluster-wide default and per-broker layers
//! stored in the cluster, which broker keys may change while the broker runs, how the layers
//! merge over the static keys, and the checks an update must pass before it is stored.
//!
//! Precedence, highest first: this broker's dynamic config, the dynamic default, the static
//! config (server.properties and `--override`), the built-in default. A key set in a higher
//! layer hides its synonyms below it (`log.retention.ms` hides a static `log.retention.hours`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::broker::{broker_def, BrokerConfig};
use super::def::InvalidValue;

/// The dynamic broker configs in force for one broker: the cluster-wide default entity and this
/// broker's own entity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicBrokerConfigs {
    #[serde(default)]
    pub default: BTreeMap<String, String>,
    #[serde(default)]
    pub broker: BTreeMap<String, String>,
}

/// A broker config entity: the cluster-wide default (empty resource name) or one broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerEntity {
    Default,
    Broker(i32),
}

impl BrokerEntity {
    /// Whether this is a per-broker entity (not the cluster-wide default).
    pub fn per_broker(self) -> bool {
        matches!(self, BrokerEntity::Broker(_))
    }
}

/// How a broker key may change while the broker runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveMode {
    /// Kafka does not let it change at run time: an update naming it is refused.
    ReadOnly,
    /// Dynamic in Kafka, and applied here without a restart.
    Applied,
    /// Dynamic in Kafka: stored and reported, but nothing in Odradek uses it.
    NoEffect,
    /// Dynamic in Kafka, but Odradek cannot change it at run time (listeners and security are
    /// bound at start): refused.
    Unsupported,
}

/// Dynamic keys that take effect here: the log defaults topics inherit (re-applied to every
/// open log), the cleaner's settings, the connection limits, producer expiry and the replication
/// throttle rates.
const APPLIED: &[&str] = &[
    "message.max.bytes",
    "log.segment.bytes",
    "log.roll.ms",
    "log.roll.jitter.ms",
    "log.index.size.max.bytes",
    "log.index.interval.bytes",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.retention.bytes",
    "log.retention.ms",
    "log.cleanup.policy",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.message.timestamp.type",
    "log.message.timestamp.before.max.ms",
    "log.message.timestamp.after.max.ms",
    "unclean.leader.election.enable",
    "min.insync.replicas",
    "compression.type",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "producer.id.expiration.ms",
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "log.cleaner.backoff.ms",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.threads",
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];

/// Dynamic keys in Kafka that have no meaning in Odradek (thread pools, metrics plugins,
/// remote storage, down-conversion, ...).
const NO_EFFECT: &[&str] = &[
    "num.io.threads",
    "num.network.threads",
    "num.replica.fetchers",
    "num.recovery.threads.per.data.dir",
    "background.threads",
    "metric.reporters",
    "max.connection.creation.rate",
    "log.cleaner.io.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.segment.delete.delay.ms",
    "log.preallocate",
    "log.message.timestamp.difference.max.ms",
    "log.message.downconversion.enable",
    "log.local.retention.ms",
    "log.local.retention.bytes",
    "transaction.partition.verification.enable",
];

/// Keys whose change would need new listeners or security settings.
const UNSUPPORTED: &[&str] = &[
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "principal.builder.class",
];

/// Thread counts: Kafka lets each change by at most a factor of two at a time.
const THREAD_COUNTS: &[&str] = &[
    "num.io.threads",
    "num.network.threads",
    "num.replica.fetchers",
    "num.recovery.threads.per.data.dir",
    "background.threads",
    "log.cleaner.threads",
];

/// How `key` may change at run time. Keys Odradek does not know are custom keys (plugins read
/// them in Kafka): stored and reported, without effect.
pub fn live_mode(key: &str) -> LiveMode {
    if UNSUPPORTED.contains(&key)
        || key.starts_with("listener.name.")
        || key.starts_with("ssl.")
        || key.starts_with("sasl.")
    {
        LiveMode::Unsupported
    } else if APPLIED.contains(&key) {
        LiveMode::Applied
    } else if NO_EFFECT.contains(&key) || broker_def(key).is_none() {
        LiveMode::NoEffect
    } else {
        LiveMode::ReadOnly
    }
}

/// Whether a broker key is read-only in DescribeConfigs: not dynamic in Kafka (keys Kafka lets
/// change but Odradek cannot, such as listeners, are reported as Kafka reports them).
pub fn read_only(key: &str) -> bool {
    live_mode(key) == LiveMode::ReadOnly
}

/// The broker keys that name one setting, in Kafka's order (its `brokerConfigSynonyms`
/// without listener prefixes): milliseconds before coarser units.
pub fn broker_synonyms(name: &str) -> Vec<&str> {
    const ROLL: &[&str] = &["log.roll.ms", "log.roll.hours"];
    const JITTER: &[&str] = &["log.roll.jitter.ms", "log.roll.jitter.hours"];
    const FLUSH: &[&str] = &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"];
    const RETENTION: &[&str] = &[
        "log.retention.ms",
        "log.retention.minutes",
        "log.retention.hours",
    ];
    for group in [ROLL, JITTER, RETENTION] {
        if group.contains(&name) {
            return group.to_vec();
        }
    }
    if name == FLUSH[0] {
        return FLUSH.to_vec();
    }
    vec![name]
}

/// Static keys overlaid by the dynamic default, then this broker's dynamic keys; each key set in
/// a higher layer removes its synonyms first, so the finer unit it names wins.
pub fn merge_layers(
    static_keys: &BTreeMap<String, String>,
    dynamic: &DynamicBrokerConfigs,
) -> BTreeMap<String, String> {
    let mut merged = static_keys.clone();
    for layer in [&dynamic.default, &dynamic.broker] {
        for (key, value) in layer {
            for synonym in broker_synonyms(key) {
                merged.remove(synonym);
            }
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}

/// Why a stored dynamic key is not used, or a broker config update is refused
/// (INVALID_REQUEST, as Kafka answers every failed check of a broker resource).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BrokerUpdateError {
    #[error("Cannot update these configs dynamically: {0:?}")]
    NotDynamic(Vec<String>),
    #[error("Odradek cannot change listener or security configs at run time: {0:?}")]
    Unsupported(Vec<String>),
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    #[error("Invalid dynamic configuration: {0}")]
    Rejected(String),
}

/// Checks the keys of one dynamic layer on their own: each must be dynamic, changeable here
/// and of the right type.
fn check_keys(layer: &BTreeMap<String, String>) -> Result<(), BrokerUpdateError> {
    let of_mode = |mode: LiveMode| -> Vec<String> {
        layer
            .keys()
            .filter(|k| live_mode(k) == mode)
            .cloned()
            .collect()
    };
    let not_dynamic = of_mode(LiveMode::ReadOnly);
    if !not_dynamic.is_empty() {
        return Err(BrokerUpdateError::NotDynamic(not_dynamic));
    }
    let unsupported = of_mode(LiveMode::Unsupported);
    if !unsupported.is_empty() {
        return Err(BrokerUpdateError::Unsupported(unsupported));
    }
    for (key, value) in layer {
        if let Some(def) = broker_def(key) {
            def.validate(value)?;
        }
    }
    Ok(())
}

/// A stored layer with every key that could not be applied removed (a ZooKeeper-era tool may
/// have written anything); the removed keys come back with the reason, for the log.
pub fn sanitize(
    layer: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<(String, BrokerUpdateError)>) {
    let mut kept = BTreeMap::new();
    let mut dropped = Vec::new();
    for (key, value) in layer {
        let one = BTreeMap::from([(key.clone(), value.clone())]);
        match check_keys(&one) {
            Ok(()) => {
                kept.insert(key.clone(), value.clone());
            }
            Err(e) => dropped.push((key.clone(), e)),
        }
    }
    (kept, dropped)
}

/// Checks replacing the dynamic configs of `entity` with `layer`: the keys on their own, then
/// the whole configuration they give with the other layers. Returns that configuration.
pub fn check_update(
    current: &BrokerConfig,
    entity: BrokerEntity,
    layer: &BTreeMap<String, String>,
) -> Result<BrokerConfig, BrokerUpdateError> {
    check_keys(layer)?;
    let mut dynamic = current.dynamic().clone();
    match entity {
        BrokerEntity::Default => dynamic.default = layer.clone(),
        BrokerEntity::Broker(_) => dynamic.broker = layer.clone(),
    }
    let next = current
        .with_dynamic(dynamic)
        .map_err(|e| BrokerUpdateError::Rejected(e.to_string()))?;
    check_retention(&next)?;
    check_cleaner_buffer(&next)?;
    for key in THREAD_COUNTS {
        check_thread_count(current, &next, key)?;
    }
    Ok(next)
}

/// `log.retention.ms` (or its coarser synonyms) must be -1 (unlimited) or at least 1.
fn check_retention(config: &BrokerConfig) -> Result<(), BrokerUpdateError> {
    let ms = retention_ms(config);
    if ms == -1 || ms >= 1 {
        return Ok(());
    }
    Err(BrokerUpdateError::Rejected(format!(
        "log.retention.ms must be unlimited (-1) or, equal or greater than 1 (it would be {ms})"
    )))
}

/// The broker's time retention in milliseconds, from the finest synonym set.
fn retention_ms(config: &BrokerConfig) -> i64 {
    let read = |key: &str| -> Option<i64> {
        config
            .effective(key)
            .or_else(|| broker_def(key).and_then(|d| d.default))
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    if let Some(ms) = read("log.retention.ms") {
        return ms;
    }
    if let Some(minutes) = read("log.retention.minutes") {
        return minutes.saturating_mul(60_000);
    }
    read("log.retention.hours").map_or(-1, |h| h.saturating_mul(3_600_000))
}

/// Each cleaner thread needs more than 1 MiB of dedupe buffer.
fn check_cleaner_buffer(config: &BrokerConfig) -> Result<(), BrokerUpdateError> {
    let read = |key: &str| -> i64 {
        config
            .effective(key)
            .or_else(|| broker_def(key).and_then(|d| d.default))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(1)
    };
    let per_thread = read("log.cleaner.dedupe.buffer.size") / read("log.cleaner.threads").max(1);
    if per_thread > 1024 * 1024 {
        return Ok(());
    }
    Err(BrokerUpdateError::Rejected(
        "log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread".into(),
    ))
}

/// A thread count may change by at most a factor of two at a time, and stays at least 1.
fn check_thread_count(
    current: &BrokerConfig,
    next: &BrokerConfig,
    key: &str,
) -> Result<(), BrokerUpdateError> {
    let read = |config: &BrokerConfig| -> Option<i64> {
        config
            .effective(key)
            .or_else(|| broker_def(key).and_then(|d| d.default))
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let (Some(old), Some(new)) = (read(current), read(next)) else {
        return Ok(());
    };
    if old == new || (new >= 1 && new >= old / 2 && new <= old.saturating_mul(2)) {
        return Ok(());
    }
    Err(BrokerUpdateError::Rejected(format!(
        "{key} may change by at most a factor of two at a time: {old} -> {new}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::properties::parse;
    use crate::config::QUICKSTART_PROPERTIES;

    fn config(extra: &[(&str, &str)]) -> BrokerConfig {
        let mut p = parse(QUICKSTART_PROPERTIES);
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        BrokerConfig::from_properties(p).unwrap().0
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn modes_follow_kafka() {
        assert_eq!(live_mode("log.retention.ms"), LiveMode::Applied);
        assert_eq!(live_mode("log.retention.hours"), LiveMode::ReadOnly);
        assert_eq!(
            live_mode("leader.replication.throttled.rate"),
            LiveMode::Applied
        );
        assert_eq!(
            live_mode("follower.replication.throttled.rate"),
            LiveMode::Applied
        );
        assert_eq!(
            live_mode("replication.quota.window.num"),
            LiveMode::ReadOnly
        );
        assert_eq!(live_mode("num.partitions"), LiveMode::ReadOnly);
        assert_eq!(live_mode("num.io.threads"), LiveMode::NoEffect);
        assert_eq!(live_mode("my.plugin.setting"), LiveMode::NoEffect);
        assert_eq!(live_mode("listeners"), LiveMode::Unsupported);
        assert_eq!(
            live_mode("listener.name.plaintext.ssl.keystore.password"),
            LiveMode::Unsupported
        );
        assert!(read_only("log.dirs"));
        assert!(!read_only("message.max.bytes"));
        assert!(!read_only("num.io.threads"));
    }

    #[test]
    fn layers_merge_in_kafkas_order_and_hide_synonyms() {
        let static_keys = map(&[("log.retention.hours", "24"), ("num.io.threads", "8")]);
        let dynamic = DynamicBrokerConfigs {
            default: map(&[("log.retention.ms", "1000"), ("num.io.threads", "4")]),
            broker: map(&[("num.io.threads", "6")]),
        };
        let merged = merge_layers(&static_keys, &dynamic);
        assert_eq!(
            merged.get("log.retention.hours"),
            None,
            "hidden by its synonym"
        );
        assert_eq!(merged["log.retention.ms"], "1000");
        assert_eq!(
            merged["num.io.threads"], "6",
            "per-broker beats the default"
        );
        let c = config(&[]).with_dynamic(dynamic).unwrap();
        assert_eq!(c.effective("num.io.threads"), Some("6"));
        assert_eq!(
            c.value_of("num.io.threads").unwrap().1,
            crate::config::ConfigSource::DynamicBroker
        );
    }

    #[test]
    fn updates_are_checked_like_kafka() {
        let c = config(&[("num.io.threads", "8")]);
        let broker = BrokerEntity::Broker(0);
        assert!(matches!(
            check_update(&c, broker, &map(&[("log.retention.hours", "1")])),
            Err(BrokerUpdateError::NotDynamic(_))
        ));
        assert!(matches!(
            check_update(&c, broker, &map(&[("message.max.bytes", "big")])),
            Err(BrokerUpdateError::Invalid(_))
        ));
        assert!(matches!(
            check_update(&c, broker, &map(&[("log.retention.ms", "0")])),
            Err(BrokerUpdateError::Rejected(_))
        ));
        assert!(matches!(
            check_update(&c, broker, &map(&[("num.io.threads", "100")])),
            Err(BrokerUpdateError::Rejected(_))
        ));
        assert!(matches!(
            check_update(
                &c,
                broker,
                &map(&[("advertised.listeners", "PLAINTEXT://x:1")])
            ),
            Err(BrokerUpdateError::Unsupported(_))
        ));
        let next = check_update(
            &c,
            BrokerEntity::Default,
            &map(&[("log.retention.ms", "-1"), ("num.io.threads", "16")]),
        )
        .unwrap();
        assert_eq!(next.effective("log.retention.ms"), Some("-1"));
        assert_eq!(next.dynamic().default.len(), 2);
        assert!(check_update(&c, broker, &map(&[("custom.plugin.key", "x")])).is_ok());
        let throttled = check_update(
            &c,
            BrokerEntity::Default,
            &map(&[("leader.replication.throttled.rate", "1000")]),
        )
        .unwrap();
        assert_eq!(throttled.throttled_rates.leader, 1000);
        assert_eq!(throttled.throttled_rates.follower, i64::MAX);
        let throttled = throttled
            .with_dynamic(DynamicBrokerConfigs {
                default: map(&[("follower.replication.throttled.rate", "7")]),
                broker: map(&[("follower.replication.throttled.rate", "9")]),
            })
            .unwrap();
        assert_eq!(
            throttled.throttled_rates.follower, 9,
            "per-broker beats the default"
        );
        for bad in ["-1", "fast"] {
            assert!(matches!(
                check_update(
                    &c,
                    broker,
                    &map(&[("follower.replication.throttled.rate", bad)])
                ),
                Err(BrokerUpdateError::Invalid(_))
            ));
        }
    }

    #[test]
    fn stored_layers_lose_keys_that_cannot_apply() {
        let (kept, dropped) = sanitize(&map(&[
            ("log.retention.ms", "5000"),
            ("num.partitions", "3"),
            ("message.max.bytes", "lots"),
        ]));
        assert_eq!(kept, map(&[("log.retention.ms", "5000")]));
        let names: Vec<_> = dropped.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, vec!["message.max.bytes", "num.partitions"]);
    }
}
