//! `/configs` and `/brokers/<id>/configs`: this broker's configs as DescribeConfigs reports
//! them (sensitive values masked, as Kafka reports them: without a value), and the config table
//! the topic page shares. Entries not at their built-in default are marked.

use crate::broker::Broker;
use crate::config::describe::DescribedConfig;
use crate::config::ConfigSource;

use super::html::{badge, esc, layout, UNKNOWN};

pub fn render(broker: &Broker) -> String {
    let configs = broker.broker_config_view();
    let set = configs
        .iter()
        .filter(|c| c.source != ConfigSource::Default)
        .count();
    let body = format!(
        "<p>{} configs, {set} set (marked) and the rest at their defaults.</p>\n{}",
        configs.len(),
        config_table("broker-configs", &configs)
    );
    layout(
        &format!("Broker {} configs", broker.broker_id()),
        "/configs",
        &super::context(broker),
        &body,
    )
}

/// `/brokers/<id>/configs`: this broker's page when `id` is this broker; a live peer gets a
/// short page pointing at its own console; `None` for any other id.
pub fn of_broker(broker: &Broker, id: &str) -> Option<String> {
    let id: i32 = id.parse().ok()?;
    if id == broker.broker_id() {
        return Some(render(broker));
    }
    let peer = broker
        .cluster
        .live_brokers()
        .into_iter()
        .find(|b| b.id == id)?;
    let body = format!(
        "<p class=\"note\">Each broker's console shows its own configs: open the console of \
         broker {id} ({}:{}, on its <code>http.listener</code>).</p>\n",
        esc(&peer.host),
        peer.port
    );
    Some(layout(
        &format!("Broker {id} configs"),
        "/configs",
        &super::context(broker),
        &body,
    ))
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
