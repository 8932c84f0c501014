//! Topic-level configs: Kafka's topic keys, their broker-level synonyms, and the `LogConfig` they yield.

use std::collections::BTreeMap;

use super::broker::BrokerConfig;
use super::def::{ConfigDef, ConfigSource, ConfigType as T, Constraint, InvalidValue};

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
        ConfigDef::new("min.cleanable.dirty.ratio", T::Double, Some("0.5")),
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
];

/// Looks up a known topic key.
pub fn topic_def(key: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.def.name == key)
}

/// Why a topic override is refused (INVALID_CONFIG).
#[derive(Debug, Clone, thiserror::Error)]
pub enum TopicConfigError {
    #[error("unknown topic configuration {0}")]
    Unknown(String),
    #[error("configuration {0} needs a value")]
    Missing(String),
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
}

/// Checks per-topic overrides as given in CreateTopics.
pub fn validate_overrides(overrides: &BTreeMap<String, String>) -> Result<(), TopicConfigError> {
    for (key, value) in overrides {
        let def = topic_def(key).ok_or_else(|| TopicConfigError::Unknown(key.clone()))?;
        def.def.validate(value)?;
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
    /// Lower-priority values that this one overrides (DescribeConfigs synonyms).
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

/// Resolves the effective value of a topic key given the topic's overrides and the broker config.
pub fn resolve(
    def: &TopicConfigDef,
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> ResolvedConfig {
    let mut chain = Vec::new();
    if let Some(v) = overrides.get(def.def.name) {
        chain.push((
            def.def.name.to_string(),
            Some(v.clone()),
            ConfigSource::TopicOverride,
        ));
    }
    for (key, factor) in def.synonyms {
        if let Some(v) = broker.explicit(key) {
            chain.push((
                key.to_string(),
                Some(scale(v, *factor)),
                ConfigSource::StaticBroker,
            ));
        }
    }
    let default = def.def.default.map(str::to_string);
    chain.push((def.def.name.to_string(), default, ConfigSource::Default));
    let (_, value, source) = chain[0].clone();
    ResolvedConfig {
        name: def.def.name,
        value,
        source,
        kind: def.def.kind,
        synonyms: chain,
    }
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
        .and_then(|d| resolve(d, overrides, broker).value)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// The `unclean.leader.election.enable` in force for a topic.
pub fn unclean_leader_election(
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> bool {
    topic_def("unclean.leader.election.enable")
        .and_then(|d| resolve(d, overrides, broker).value)
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
        let b = broker(&[]);
        let none = BTreeMap::new();
        let r = resolve(topic_def("retention.ms").unwrap(), &none, &b);
        assert_eq!(r.value.as_deref(), Some("604800000"));
        assert_eq!(r.source, ConfigSource::StaticBroker);
        assert_eq!(r.synonyms[0].0, "log.retention.hours");
        let o = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        let r = resolve(topic_def("retention.ms").unwrap(), &o, &b);
        assert_eq!(r.value.as_deref(), Some("1000"));
        assert_eq!(r.source, ConfigSource::TopicOverride);
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
