//! Topic-level configs: Kafka's topic keys, their broker-level synonyms, and the `LogConfig` they yield.

use std::collections::BTreeMap;

use super::broker::{broker_def, BrokerConfig};
use super::def::{ConfigDef, ConfigSource, ConfigType as T, Constraint, InvalidValue};
use super::describe::{layered_synonyms, Synonym};

/// A topic key and the broker keys that supply its default, in priority order, each with the
/// factor that converts the broker unit into the topic unit (hours into ms, and so on).
pub struct TopicConfigDef {
    pub def: ConfigDef,
    pub synonyms: &'static [(&'static str, i64)],
}

const fn topic(def: ConfigDef, synonyms: &'static [(&'static str, i64)]) -> TopicConfigDef {
    TopicConfigDef { def, synonyms }
}

/// Kafka's `compression.type` values (`BrokerCompressionType`), topic and broker alike.
pub const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
/// KIP-390 level ranges and defaults (Kafka 3.9): gzip 1-9 or -1 (zlib's default).
pub const GZIP_LEVEL: Constraint = Constraint::BetweenOr(1, 9, -1);
/// lz4 1-17, default 9.
pub const LZ4_LEVEL: Constraint = Constraint::Between(1, 17);
/// zstd -131072..22, default 3.
pub const ZSTD_LEVEL: Constraint = Constraint::Between(-131072, 22);

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;

/// Every topic config Odradek knows and reports.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    topic(
        ConfigDef::new("cleanup.policy", T::List, Some("delete"))
            .with(Constraint::ListOf(&["delete", "compact"])),
        &[("log.cleanup.policy", 1)],
    ),
    topic(
        ConfigDef::new("compression.type", T::String, Some("producer"))
            .with(Constraint::OneOf(COMPRESSION_TYPES)),
        &[("compression.type", 1)],
    ),
    topic(
        ConfigDef::new("compression.gzip.level", T::Int, Some("-1")).with(GZIP_LEVEL),
        &[("compression.gzip.level", 1)],
    ),
    topic(
        ConfigDef::new("compression.lz4.level", T::Int, Some("9")).with(LZ4_LEVEL),
        &[("compression.lz4.level", 1)],
    ),
    topic(
        ConfigDef::new("compression.zstd.level", T::Int, Some("3")).with(ZSTD_LEVEL),
        &[("compression.zstd.level", 1)],
    ),
    topic(
        ConfigDef::new("delete.retention.ms", T::Long, Some("86400000"))
            .with(Constraint::AtLeast(0)),
        &[("log.cleaner.delete.retention.ms", 1)],
    ),
    topic(
        ConfigDef::new("file.delete.delay.ms", T::Long, Some("60000")).with(Constraint::AtLeast(0)),
        &[("log.segment.delete.delay.ms", 1)],
    ),
    topic(
        ConfigDef::new("flush.messages", T::Long, Some("9223372036854775807"))
            .with(Constraint::AtLeast(1)),
        &[("log.flush.interval.messages", 1)],
    ),
    topic(
        ConfigDef::new("flush.ms", T::Long, Some("9223372036854775807"))
            .with(Constraint::AtLeast(0)),
        &[
            ("log.flush.interval.ms", 1),
            ("log.flush.scheduler.interval.ms", 1),
        ],
    ),
    topic(
        ConfigDef::new("index.interval.bytes", T::Int, Some("4096")).with(Constraint::AtLeast(0)),
        &[("log.index.interval.bytes", 1)],
    ),
    topic(
        ConfigDef::new(
            "max.compaction.lag.ms",
            T::Long,
            Some("9223372036854775807"),
        )
        .with(Constraint::AtLeast(1)),
        &[("log.cleaner.max.compaction.lag.ms", 1)],
    ),
    topic(
        ConfigDef::new("max.message.bytes", T::Int, Some("1048588")).with(Constraint::AtLeast(0)),
        &[("message.max.bytes", 1)],
    ),
    topic(
        ConfigDef::new(
            "message.timestamp.after.max.ms",
            T::Long,
            Some("9223372036854775807"),
        )
        .with(Constraint::AtLeast(0)),
        &[("log.message.timestamp.after.max.ms", 1)],
    ),
    topic(
        ConfigDef::new(
            "message.timestamp.before.max.ms",
            T::Long,
            Some("9223372036854775807"),
        )
        .with(Constraint::AtLeast(0)),
        &[("log.message.timestamp.before.max.ms", 1)],
    ),
    topic(
        ConfigDef::new(
            "message.timestamp.difference.max.ms",
            T::Long,
            Some("9223372036854775807"),
        )
        .with(Constraint::AtLeast(0)),
        &[("log.message.timestamp.difference.max.ms", 1)],
    ),
    topic(
        ConfigDef::new("message.timestamp.type", T::String, Some("CreateTime"))
            .with(Constraint::OneOf(&["CreateTime", "LogAppendTime"])),
        &[("log.message.timestamp.type", 1)],
    ),
    topic(
        ConfigDef::new("min.cleanable.dirty.ratio", T::Double, Some("0.5")).with(Constraint::Ratio),
        &[("log.cleaner.min.cleanable.ratio", 1)],
    ),
    topic(
        ConfigDef::new("min.compaction.lag.ms", T::Long, Some("0")).with(Constraint::AtLeast(0)),
        &[("log.cleaner.min.compaction.lag.ms", 1)],
    ),
    topic(
        ConfigDef::new("min.insync.replicas", T::Int, Some("1")).with(Constraint::AtLeast(1)),
        &[("min.insync.replicas", 1)],
    ),
    topic(
        ConfigDef::new("preallocate", T::Boolean, Some("false")),
        &[("log.preallocate", 1)],
    ),
    topic(
        ConfigDef::new("retention.bytes", T::Long, Some("-1")),
        &[("log.retention.bytes", 1)],
    ),
    topic(
        ConfigDef::new("retention.ms", T::Long, Some("604800000")).with(Constraint::AtLeast(-1)),
        &[
            ("log.retention.ms", 1),
            ("log.retention.minutes", MINUTE),
            ("log.retention.hours", HOUR),
        ],
    ),
    topic(
        ConfigDef::new("segment.bytes", T::Int, Some("1073741824")).with(Constraint::AtLeast(14)),
        &[("log.segment.bytes", 1)],
    ),
    topic(
        ConfigDef::new("segment.index.bytes", T::Int, Some("10485760"))
            .with(Constraint::AtLeast(4)),
        &[("log.index.size.max.bytes", 1)],
    ),
    topic(
        ConfigDef::new("segment.jitter.ms", T::Long, Some("0")).with(Constraint::AtLeast(0)),
        &[("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", HOUR)],
    ),
    topic(
        ConfigDef::new("segment.ms", T::Long, Some("604800000")).with(Constraint::AtLeast(1)),
        &[("log.roll.ms", 1), ("log.roll.hours", HOUR)],
    ),
    topic(
        ConfigDef::new("unclean.leader.election.enable", T::Boolean, Some("false")),
        &[("unclean.leader.election.enable", 1)],
    ),
    topic(
        ConfigDef::new("message.format.version", T::String, Some("3.0-IV1")),
        &[("log.message.format.version", 1)],
    ),
    topic(
        ConfigDef::new("message.downconversion.enable", T::Boolean, Some("true")),
        &[("log.message.downconversion.enable", 1)],
    ),
    topic(
        ConfigDef::new("leader.replication.throttled.replicas", T::List, Some(""))
            .with(Constraint::ThrottledReplicas),
        &[],
    ),
    topic(
        ConfigDef::new("follower.replication.throttled.replicas", T::List, Some(""))
            .with(Constraint::ThrottledReplicas),
        &[],
    ),
    topic(
        ConfigDef::new("remote.storage.enable", T::Boolean, Some("false")),
        &[],
    ),
    topic(
        ConfigDef::new("local.retention.ms", T::Long, Some("-2")).with(Constraint::AtLeast(-2)),
        &[("log.local.retention.ms", 1)],
    ),
    topic(
        ConfigDef::new("local.retention.bytes", T::Long, Some("-2")).with(Constraint::AtLeast(-2)),
        &[("log.local.retention.bytes", 1)],
    ),
    topic(
        ConfigDef::new("remote.log.copy.disable", T::Boolean, Some("false")),
        &[],
    ),
    topic(
        ConfigDef::new("remote.log.delete.on.disable", T::Boolean, Some("false")),
        &[],
    ),
];

/// Looks up a known topic key.
pub fn topic_def(key: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.def.name == key)
}

/// Why a topic override is refused (INVALID_CONFIG).
#[derive(Debug, Clone, thiserror::Error)]
pub enum TopicConfigError {
    #[error("Unknown topic config name: {0}")]
    Unknown(String),
    #[error("configuration {0} needs a value")]
    Missing(String),
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// A combination of values Kafka refuses.
    #[error("{0}")]
    Conflict(String),
}

/// Checks a topic's complete set of overrides (CreateTopics, AlterConfigs): known keys, values
/// of the right type, and the combinations Kafka refuses.
pub fn validate_overrides(overrides: &BTreeMap<String, String>) -> Result<(), TopicConfigError> {
    for (key, value) in overrides {
        let def = topic_def(key).ok_or_else(|| TopicConfigError::Unknown(key.clone()))?;
        def.def.validate(value)?;
    }
    if overrides
        .get("remote.storage.enable")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return Err(TopicConfigError::Conflict(
            "Tiered Storage functionality is disabled in the broker".into(),
        ));
    }
    let long = |key: &str| -> i64 {
        overrides
            .get(key)
            .map(String::as_str)
            .or_else(|| topic_def(key).and_then(|d| d.def.default))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let (min_lag, max_lag) = (long("min.compaction.lag.ms"), long("max.compaction.lag.ms"));
    if min_lag > max_lag {
        return Err(TopicConfigError::Conflict(format!(
            "conflict topic config setting min.compaction.lag.ms ({min_lag}) > \
             max.compaction.lag.ms ({max_lag})"
        )));
    }
    Ok(())
}

/// One resolved topic config entry for DescribeConfigs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedConfig {
    pub name: &'static str,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub kind: T,
    /// Every layer that sets this key or a broker synonym of it, highest priority first, as
    /// Kafka lists them (DescribeConfigs synonyms; the source is the first one's).
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

/// Resolves the effective value of a topic key given the topic's overrides and the broker
/// config: the override, else the broker's value in force for its first synonym that has one
/// (converted to the topic's unit), else the topic default. Synonyms and source follow Kafka:
/// the override, then the broker layers of the synonyms from the finest-unit name on.
pub fn resolve(
    def: &TopicConfigDef,
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> ResolvedConfig {
    let name = def.def.name;
    let mut chain: Vec<Synonym> = Vec::new();
    if let Some(v) = overrides.get(name) {
        chain.push((
            name.to_string(),
            Some(v.clone()),
            ConfigSource::TopicOverride,
        ));
    }
    if let Some((primary, _)) = def.synonyms.first() {
        let names: Vec<&str> = def.synonyms.iter().map(|(n, _)| *n).collect();
        chain.extend(layered_synonyms(broker, primary, &names));
    }
    let value = value_in_force(def, overrides, broker);
    let source = chain.first().map_or(ConfigSource::Default, |c| c.2);
    ResolvedConfig {
        name,
        value,
        source,
        kind: def.def.kind,
        synonyms: chain,
    }
}

/// The value in force of a topic key, without the synonyms [`resolve`] also gathers: the
/// override, else the broker's value, else the topic default.
pub fn value_in_force(
    def: &TopicConfigDef,
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> Option<String> {
    overrides
        .get(def.def.name)
        .cloned()
        .or_else(|| broker_value(def, broker))
        .or_else(|| def.def.default.map(str::to_string))
}

/// The broker's value in force for a topic key: its first synonym with a value, set or
/// default, in the topic's unit.
fn broker_value(def: &TopicConfigDef, broker: &BrokerConfig) -> Option<String> {
    def.synonyms.iter().find_map(|(key, factor)| {
        broker
            .effective(key)
            .or_else(|| broker_def(key).and_then(|d| d.default))
            .map(|v| scale(v, *factor))
    })
}

fn scale(value: &str, factor: i64) -> String {
    if factor == 1 {
        return value.to_string();
    }
    match value.trim().parse::<i64>() {
        Ok(v) if v < 0 => v.to_string(),
        Ok(v) => v.saturating_mul(factor).to_string(),
        Err(_) => value.to_string(),
    }
}

/// Every topic config resolved for one topic.
pub fn resolve_all(
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> Vec<ResolvedConfig> {
    TOPIC_CONFIGS
        .iter()
        .map(|d| resolve(d, overrides, broker))
        .collect()
}

/// The `min.insync.replicas` in force for a topic.
pub fn min_insync_replicas(overrides: &BTreeMap<String, String>, broker: &BrokerConfig) -> i32 {
    topic_def("min.insync.replicas")
        .and_then(|d| value_in_force(d, overrides, broker))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// The `unclean.leader.election.enable` in force for a topic.
pub fn unclean_leader_election(
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> bool {
    topic_def("unclean.leader.election.enable")
        .and_then(|d| value_in_force(d, overrides, broker))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::broker::QUICKSTART_PROPERTIES;
    use crate::config::properties::parse;

    fn broker(extra: &[(&str, &str)]) -> BrokerConfig {
        let mut p = parse(QUICKSTART_PROPERTIES);
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        BrokerConfig::from_properties(p).unwrap().0
    }

    #[test]
    fn retention_comes_from_broker_hours_unless_overridden() {
        // Kafka lists broker synonyms from `log.retention.ms` on: a static
        // `log.retention.hours` alone gives the value but no synonym (source DEFAULT_CONFIG).
        let b = broker(&[("log.retention.hours", "1")]);
        let none = BTreeMap::new();
        let r = resolve(topic_def("retention.ms").unwrap(), &none, &b);
        assert_eq!(r.value.as_deref(), Some("3600000"));
        assert_eq!(r.source, ConfigSource::Default);
        assert!(r.synonyms.is_empty());
        let b = broker(&[("log.retention.ms", "5000")]);
        let r = resolve(topic_def("retention.ms").unwrap(), &none, &b);
        assert_eq!(r.value.as_deref(), Some("5000"));
        assert_eq!(r.source, ConfigSource::StaticBroker);
        let names: Vec<_> = r.synonyms.iter().map(|s| (s.0.as_str(), s.2)).collect();
        assert_eq!(
            names,
            vec![
                ("log.retention.ms", ConfigSource::StaticBroker),
                ("log.retention.hours", ConfigSource::StaticBroker),
                ("log.retention.hours", ConfigSource::Default),
            ]
        );
        let o = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        let r = resolve(topic_def("retention.ms").unwrap(), &o, &b);
        assert_eq!(r.value.as_deref(), Some("1000"));
        assert_eq!(r.source, ConfigSource::TopicOverride);
        assert_eq!(r.synonyms.len(), 4);
    }

    #[test]
    fn dynamic_broker_layers_come_before_static_ones() {
        let b = broker(&[("message.max.bytes", "2000000")]);
        let dynamic = crate::config::DynamicBrokerConfigs {
            default: BTreeMap::from([("message.max.bytes".to_string(), "3000".to_string())]),
            broker: BTreeMap::from([("message.max.bytes".to_string(), "4000".to_string())]),
        };
        let b = b.with_dynamic(dynamic).unwrap();
        let r = resolve(
            topic_def("max.message.bytes").unwrap(),
            &BTreeMap::new(),
            &b,
        );
        assert_eq!(r.value.as_deref(), Some("4000"));
        assert_eq!(r.source, ConfigSource::DynamicBroker);
        let sources: Vec<_> = r.synonyms.iter().map(|s| s.2).collect();
        assert_eq!(
            sources,
            vec![
                ConfigSource::DynamicBroker,
                ConfigSource::DynamicDefaultBroker,
                ConfigSource::StaticBroker,
                ConfigSource::Default
            ]
        );
        let unset = resolve(
            topic_def("remote.storage.enable").unwrap(),
            &BTreeMap::new(),
            &b,
        );
        assert_eq!(
            (unset.value.as_deref(), unset.source),
            (Some("false"), ConfigSource::Default)
        );
    }

    #[test]
    fn overrides_are_validated() {
        let ok = BTreeMap::from([("message.timestamp.type".to_string(), "LogAppendTime".into())]);
        assert!(validate_overrides(&ok).is_ok());
        let unknown = BTreeMap::from([("no.such".to_string(), "1".to_string())]);
        assert!(matches!(
            validate_overrides(&unknown),
            Err(TopicConfigError::Unknown(_))
        ));
        let bad = BTreeMap::from([("segment.bytes".to_string(), "ten".to_string())]);
        assert!(matches!(
            validate_overrides(&bad),
            Err(TopicConfigError::Invalid(_))
        ));
        let tiered = BTreeMap::from([("remote.storage.enable".to_string(), "true".to_string())]);
        assert!(matches!(
            validate_overrides(&tiered),
            Err(TopicConfigError::Conflict(_))
        ));
        let lags = BTreeMap::from([
            ("min.compaction.lag.ms".to_string(), "10".to_string()),
            ("max.compaction.lag.ms".to_string(), "5".to_string()),
        ]);
        assert!(matches!(
            validate_overrides(&lags),
            Err(TopicConfigError::Conflict(_))
        ));
    }

    #[test]
    fn every_kafka_compression_value_and_level_range_is_accepted() {
        let check = |k: &str, v: &str| {
            validate_overrides(&BTreeMap::from([(k.to_string(), v.to_string())])).is_ok()
        };
        for v in ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"] {
            assert!(check("compression.type", v), "{v}");
        }
        for v in ["none", "LZ4", "brotli", ""] {
            assert!(!check("compression.type", v), "{v}");
        }
        let ranges = [
            (
                "compression.gzip.level",
                &["-1", "1", "9"][..],
                &["0", "10", "-2"][..],
            ),
            (
                "compression.lz4.level",
                &["1", "9", "17"][..],
                &["0", "18", "-1"][..],
            ),
            (
                "compression.zstd.level",
                &["-131072", "0", "3", "22"][..],
                &["-131073", "23", "x"][..],
            ),
        ];
        for (key, good, bad) in ranges {
            for v in good {
                assert!(check(key, v), "{key}={v}");
            }
            for v in bad {
                assert!(!check(key, v), "{key}={v}");
            }
        }
        let b = broker(&[("compression.zstd.level", "7")]);
        let r = resolve(
            topic_def("compression.zstd.level").unwrap(),
            &BTreeMap::new(),
            &b,
        );
        assert_eq!(r.value.as_deref(), Some("7"));
        assert_eq!(r.source, ConfigSource::StaticBroker);
    }
}
