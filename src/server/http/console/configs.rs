//! `/configs` and `/brokers/<id>/configs`: a broker's configs as DescribeConfigs reports them
//! (this broker's from its configuration, another's asked of it; sensitive values masked, as
//! Kafka reports them: without a value), and the config table the topic page shares. Entries
//! not at their built-in default are marked.

use crate::broker::Broker;
use crate::config::describe::DescribedConfig;
use crate::config::ConfigSource;

use super::html::{badge, esc, layout, UNKNOWN};

pub fn render(broker: &Broker) -> String {
    page(broker, broker.broker_id(), Ok(broker.broker_config_view()))
}

/// `/brokers/<id>/configs`: this broker's configs, or a live peer's as it reports them;
/// `None` for an id that is not a live broker.
pub async fn of_broker(broker: &Broker, id: &str) -> Option<String> {
    let id: i32 = id.parse().ok()?;
    let configs = broker.broker_config_view_of(id).await?;
    Some(page(broker, id, configs))
}

fn page(broker: &Broker, id: i32, configs: Result<Vec<DescribedConfig>, String>) -> String {
    let body = match configs {
        Ok(configs) => {
            let set = configs
                .iter()
                .filter(|c| c.source != ConfigSource::Default)
                .count();
            format!(
                "<p>{} configs, {set} set (marked) and the rest at their defaults.</p>\n{}",
                configs.len(),
                config_table("broker-configs", &configs)
            )
        }
        Err(e) => format!(
            "<p class=\"note\">Broker {id} did not answer DescribeConfigs: {}</p>\n",
            esc(&e)
        ),
    };
    layout(
        &format!("Broker {id} configs"),
        "/configs",
        &super::context(broker),
        &body,
    )
}

/// A table of config entries: name, value (masked when sensitive), source, flags.
pub fn config_table(id: &str, configs: &[DescribedConfig]) -> String {
    let mut out = format!(
        "<table id=\"{id}\">\n<thead><tr><th>name</th><th>value</th><th>source</th>\
         <th></th></tr></thead>\n<tbody>\n"
    );
    for c in configs {
        let set = c.source != ConfigSource::Default;
        let value = match (&c.value, c.sensitive) {
            (_, true) => badge("warn", "sensitive, hidden"),
            (Some(v), false) => esc(v),
            (None, false) => UNKNOWN.to_string(),
        };
        let mut flags = String::new();
        if c.source == ConfigSource::TopicOverride {
            flags.push_str(&badge("warn", "override"));
        }
        if c.read_only {
            flags.push_str(&badge("", "read-only"));
        }
        out.push_str(&format!(
            "<tr{}><td><code>{}</code></td><td>{value}</td><td>{}</td><td>{flags}</td></tr>\n",
            if set { " class=\"override\"" } else { "" },
            esc(&c.name),
            source_name(c.source),
        ));
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// Kafka's name of a config source, as kafka-configs and admin clients show it.
fn source_name(source: ConfigSource) -> &'static str {
    match source {
        ConfigSource::TopicOverride => "DYNAMIC_TOPIC_CONFIG",
        ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
        ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
        ConfigSource::Default => "DEFAULT_CONFIG",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigType;

    fn entry(
        name: &str,
        value: Option<&str>,
        source: ConfigSource,
        sensitive: bool,
    ) -> DescribedConfig {
        DescribedConfig {
            name: name.to_string(),
            value: value.map(str::to_string),
            source,
            kind: ConfigType::String,
            read_only: false,
            sensitive,
            synonyms: Vec::new(),
            documentation: None,
        }
    }

    #[test]
    fn sensitive_values_are_never_rendered_and_overrides_are_marked() {
        let html = config_table(
            "c",
            &[
                entry(
                    "ssl.key.password",
                    Some("s3cret"),
                    ConfigSource::StaticBroker,
                    true,
                ),
                entry(
                    "retention.ms",
                    Some("<1>"),
                    ConfigSource::TopicOverride,
                    false,
                ),
                entry(
                    "cleanup.policy",
                    Some("delete"),
                    ConfigSource::Default,
                    false,
                ),
            ],
        );
        assert!(!html.contains("s3cret"));
        assert!(html.contains("sensitive, hidden"));
        assert!(html.contains("&lt;1&gt;") && !html.contains("<1>"));
        assert_eq!(html.matches("<tr class=\"override\">").count(), 2);
        assert_eq!(html.matches(">override<").count(), 1);
        assert!(html.contains("<td>DEFAULT_CONFIG</td>"));
    }
}
