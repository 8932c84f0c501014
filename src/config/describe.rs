//! What DescribeConfigs reports of each config, as Kafka 3.9 reports it: the value in force, its
//! source, the synonyms in Kafka's order (every name's dynamic per-broker value, then every
//! name's dynamic default, static value and built-in default, from the finest-unit name on),
//! the type, the documentation, and the read-only and sensitive flags. Sensitive values
//! (passwords, and keys of unknown type) are never reported.

use std::collections::BTreeMap;

use super::broker::{broker_def, BrokerConfig, BROKER_CONFIGS};
use super::def::{ConfigSource, ConfigType};
use super::docs::{broker_doc, topic_doc};
use super::dynamic::{broker_synonyms, read_only};
use super::topic::resolve_all;

/// One synonym: a key, its value in one layer, and that layer.
pub type Synonym = (String, Option<String>, ConfigSource);

/// One reported config entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedConfig {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub kind: ConfigType,
    pub read_only: bool,
    pub sensitive: bool,
    pub synonyms: Vec<Synonym>,
    pub documentation: Option<&'static str>,
}

/// The broker layers that set any of `names`, in Kafka's order: each layer from the dynamic
/// per-broker one down to the built-in defaults, and within a layer the names in order. Entries
/// before the first one of `primary` are dropped (Kafka lists a coarser synonym only after the
/// finest-unit key).
pub fn layered_synonyms(config: &BrokerConfig, primary: &str, names: &[&str]) -> Vec<Synonym> {
    let layers = [
        ConfigSource::DynamicBroker,
        ConfigSource::DynamicDefaultBroker,
        ConfigSource::StaticBroker,
        ConfigSource::Default,
    ];
    let all = layers.into_iter().flat_map(|layer| {
        names.iter().filter_map(move |name| {
            config
                .layer_value(layer, name)
                .map(|v| (name.to_string(), Some(v.to_string()), layer))
        })
    });
    all.skip_while(|(name, _, _)| name != primary).collect()
}

/// Every config of this broker (the per-broker resource): each known key, and each unknown key
/// set in some layer.
pub fn broker_entries(config: &BrokerConfig) -> Vec<DescribedConfig> {
    let known = BROKER_CONFIGS.iter().map(|def| {
        let value = config
            .effective(def.name)
            .or(def.default)
            .map(str::to_string);
        broker_entry(config, def.name, value, def.kind, true)
    });
    let custom: Vec<DescribedConfig> = config
        .effective_keys()
        .filter(|(k, _)| broker_def(k).is_none())
        .map(|(k, v)| broker_entry(config, k, Some(v.to_string()), ConfigType::Unknown, true))
        .collect();
    known.chain(custom).collect()
}

/// The cluster-wide dynamic defaults (the broker resource with an empty name): only the keys
/// set there, with only the synonyms of that layer.
pub fn default_entity_entries(config: &BrokerConfig) -> Vec<DescribedConfig> {
    config
        .dynamic()
        .default
        .iter()
        .map(|(k, v)| {
            let kind = broker_def(k).map_or(ConfigType::Unknown, |d| d.kind);
            broker_entry(config, k, Some(v.clone()), kind, false)
        })
        .collect()
}

fn broker_entry(
    config: &BrokerConfig,
    name: &str,
    value: Option<String>,
    kind: ConfigType,
    per_broker: bool,
) -> DescribedConfig {
    let sensitive = kind.sensitive();
    let synonyms: Vec<Synonym> = layered_synonyms(config, name, &broker_synonyms(name))
        .into_iter()
        .filter(|s| per_broker || s.2 == ConfigSource::DynamicDefaultBroker)
        .map(|s| mask(s, sensitive))
        .collect();
    DescribedConfig {
        name: name.to_string(),
        value: if sensitive { None } else { value },
        source: synonyms.first().map_or(ConfigSource::Default, |s| s.2),
        kind,
        read_only: broker_def(name).is_none() || read_only(name),
        sensitive,
        synonyms,
        documentation: broker_doc(name),
    }
}

/// Every topic config of a topic with `overrides`.
pub fn topic_entries(
    overrides: &BTreeMap<String, String>,
    config: &BrokerConfig,
) -> Vec<DescribedConfig> {
    resolve_all(overrides, config)
        .into_iter()
        .map(|r| {
            let sensitive = r.kind.sensitive();
            DescribedConfig {
                name: r.name.to_string(),
                value: if sensitive { None } else { r.value },
                source: r.source,
                kind: r.kind,
                read_only: false,
                sensitive,
                synonyms: r.synonyms.into_iter().map(|s| mask(s, sensitive)).collect(),
                documentation: topic_doc(r.name),
            }
        })
        .collect()
}

fn mask(synonym: Synonym, sensitive: bool) -> Synonym {
    if sensitive {
        (synonym.0, None, synonym.2)
    } else {
        synonym
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::properties::parse;
    use crate::config::{DynamicBrokerConfigs, QUICKSTART_PROPERTIES};

    fn config(extra: &[(&str, &str)], dynamic: DynamicBrokerConfigs) -> BrokerConfig {
        let mut p = parse(QUICKSTART_PROPERTIES);
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        BrokerConfig::from_properties(p)
            .unwrap()
            .0
            .with_dynamic(dynamic)
            .unwrap()
    }

    fn entry<'a>(entries: &'a [DescribedConfig], name: &str) -> &'a DescribedConfig {
        entries.iter().find(|e| e.name == name).unwrap()
    }

    fn layer(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn broker_sources_and_synonyms_in_kafkas_order() {
        let c = config(
            &[("ssl.keystore.password", "hunter2"), ("my.static.key", "x")],
            DynamicBrokerConfigs {
                default: layer(&[("log.retention.ms", "1000"), ("message.max.bytes", "5000")]),
                broker: layer(&[("message.max.bytes", "6000")]),
            },
        );
        let entries = broker_entries(&c);
        let max = entry(&entries, "message.max.bytes");
        assert_eq!(max.value.as_deref(), Some("6000"));
        assert_eq!(max.source, ConfigSource::DynamicBroker);
        let sources: Vec<_> = max.synonyms.iter().map(|s| s.2).collect();
        assert_eq!(
            sources,
            vec![
                ConfigSource::DynamicBroker,
                ConfigSource::DynamicDefaultBroker,
                ConfigSource::Default
            ]
        );
        assert!(!max.read_only);
        let hours = entry(&entries, "log.retention.hours");
        assert_eq!(hours.source, ConfigSource::StaticBroker);
        assert!(hours.read_only);
        let ms = entry(&entries, "log.retention.ms");
        assert_eq!(ms.source, ConfigSource::DynamicDefaultBroker);
        assert_eq!(
            ms.synonyms.len(),
            3,
            "ms (default), hours (static, default)"
        );
        let password = entry(&entries, "ssl.keystore.password");
        assert!(password.sensitive && password.value.is_none());
        assert!(password.synonyms.iter().all(|s| s.1.is_none()));
        let custom = entry(&entries, "my.static.key");
        assert_eq!(custom.kind, ConfigType::Unknown);
        assert!(custom.sensitive && custom.value.is_none() && custom.read_only);
        assert_eq!(
            entry(&entries, "inter.broker.protocol.version")
                .value
                .as_deref(),
            Some("3.9-IV0")
        );
        assert!(entries
            .iter()
            .all(|e| e.documentation.is_some() || e.kind == ConfigType::Unknown));
    }

    #[test]
    fn the_default_entity_reports_only_its_own_layer() {
        let c = config(
            &[("message.max.bytes", "2000000")],
            DynamicBrokerConfigs {
                default: layer(&[("message.max.bytes", "5000")]),
                broker: layer(&[("message.max.bytes", "6000")]),
            },
        );
        let entries = default_entity_entries(&c);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].value.as_deref(), Some("5000"));
        assert_eq!(entries[0].source, ConfigSource::DynamicDefaultBroker);
        assert_eq!(entries[0].synonyms.len(), 1);
    }

    #[test]
    fn topic_entries_cover_every_topic_key() {
        let c = config(&[], DynamicBrokerConfigs::default());
        let entries = topic_entries(&layer(&[("retention.ms", "10")]), &c);
        assert_eq!(entries.len(), crate::config::topic::TOPIC_CONFIGS.len());
        let r = entry(&entries, "retention.ms");
        assert_eq!(
            (r.value.as_deref(), r.source),
            (Some("10"), ConfigSource::TopicOverride)
        );
        assert!(entries
            .iter()
            .all(|e| !e.read_only && e.documentation.is_some()));
    }
}
