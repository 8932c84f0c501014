//! Typed configuration definitions shared by broker and topic configs.

use std::fmt;

/// The value type of a config, as DescribeConfigs (v3+) reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
    /// A key Odradek does not know (a custom key): reported as sensitive, as Kafka does.
    Unknown,
}

impl ConfigType {
    /// Kafka's wire code for DescribeConfigs `config_type`.
    pub fn wire_code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Class => 8,
            ConfigType::Password => 9,
            ConfigType::Unknown => 0,
        }
    }

    /// Whether values of this type are hidden in answers and logs (passwords, and keys whose type
    /// is unknown, as Kafka treats them).
    pub fn sensitive(self) -> bool {
        matches!(self, ConfigType::Password | ConfigType::Unknown)
    }
}

/// Where a reported config value comes from (DescribeConfigs `config_source`), highest
/// priority first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConfigSource {
    /// A topic's own override (DYNAMIC_TOPIC_CONFIG).
    TopicOverride,
    /// A dynamic config of this broker (DYNAMIC_BROKER_CONFIG).
    DynamicBroker,
    /// A cluster-wide dynamic default (DYNAMIC_DEFAULT_BROKER_CONFIG).
    DynamicDefaultBroker,
    /// server.properties or `--override` (STATIC_BROKER_CONFIG).
    StaticBroker,
    /// The built-in default (DEFAULT_CONFIG).
    Default,
}

impl ConfigSource {
    /// Kafka's wire code for DescribeConfigs `config_source`.
    pub fn wire_code(self) -> i8 {
        match self {
            ConfigSource::TopicOverride => 1,
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefaultBroker => 3,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// Extra constraint on a value beyond its type.
#[derive(Clone, Copy, Debug)]
pub enum Constraint {
    None,
    AtLeast(i64),
    /// `min..=max`.
    Between(i64, i64),
    /// `min..=max`, or the one extra value (Kafka's gzip level: 1-9 or -1).
    BetweenOr(i64, i64, i64),
    OneOf(&'static [&'static str]),
    ListOf(&'static [&'static str]),
    /// A double between 0 and 1.
    Ratio,
    /// Kafka's throttled-replica list: `*`, or `partition:broker` pairs.
    ThrottledReplicas,
    /// `host:port` (host may be empty or a bracketed IPv6 address), or empty.
    HostPortOrEmpty,
}

/// One known configuration key.
#[derive(Clone, Copy, Debug)]
pub struct ConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    pub default: Option<&'static str>,
    pub constraint: Constraint,
}

/// A value that does not fit its definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value:?} for configuration {key}: {reason}")]
pub struct InvalidValue {
    pub key: String,
    pub value: String,
    pub reason: String,
}

impl ConfigDef {
    pub const fn new(name: &'static str, kind: ConfigType, default: Option<&'static str>) -> Self {
        ConfigDef {
            name,
            kind,
            default,
            constraint: Constraint::None,
        }
    }

    pub const fn with(mut self, constraint: Constraint) -> Self {
        self.constraint = constraint;
        self
    }

    /// Checks `value` against the type and constraint of this definition.
    pub fn validate(&self, value: &str) -> Result<(), InvalidValue> {
        let fail = |reason: String| InvalidValue {
            key: self.name.to_string(),
            value: value.to_string(),
            reason,
        };
        let value = value.trim();
        let number = match self.kind {
            ConfigType::Boolean => {
                return match value.to_ascii_lowercase().as_str() {
                    "true" | "false" => Ok(()),
                    _ => Err(fail("expected true or false".into())),
                }
            }
            ConfigType::Int => value
                .parse::<i32>()
                .map(i64::from)
                .map_err(|e| fail(e.to_string()))?,
            ConfigType::Short => value
                .parse::<i16>()
                .map(i64::from)
                .map_err(|e| fail(e.to_string()))?,
            ConfigType::Long => value.parse::<i64>().map_err(|e| fail(e.to_string()))?,
            ConfigType::Double => {
                let v = value.parse::<f64>().map_err(|e| fail(e.to_string()))?;
                if matches!(self.constraint, Constraint::Ratio) && !(0.0..=1.0).contains(&v) {
                    return Err(fail("must be between 0 and 1".into()));
                }
                return Ok(());
            }
            ConfigType::String
            | ConfigType::Password
            | ConfigType::List
            | ConfigType::Class
            | ConfigType::Unknown => {
                return self.check_choice(value).map_err(fail);
            }
        };
        match self.constraint {
            Constraint::AtLeast(min) if number < min => {
                Err(fail(format!("must be at least {min}")))
            }
            Constraint::Between(min, max) if !(min..=max).contains(&number) => {
                Err(fail(format!("must be between {min} and {max}")))
            }
            Constraint::BetweenOr(min, max, or)
                if !(min..=max).contains(&number) && number != or =>
            {
                Err(fail(format!(
                    "must be between {min} and {max} or equal to {or}"
                )))
            }
            _ => Ok(()),
        }
    }

    fn check_choice(&self, value: &str) -> Result<(), String> {
        match self.constraint {
            Constraint::OneOf(choices) if !choices.contains(&value) => {
                Err(format!("must be one of {}", choices.join(", ")))
            }
            Constraint::ListOf(choices) => {
                for item in list_items(value) {
                    if !choices.contains(&item) {
                        return Err(format!("each item must be one of {}", choices.join(", ")));
                    }
                }
                Ok(())
            }
            Constraint::ThrottledReplicas => {
                let items = list_items(value);
                let pair = |item: &str| {
                    item.split_once(':').is_some_and(|(p, b)| {
                        p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
                    })
                };
                if items == ["*"] || items.iter().all(|i| pair(i)) {
                    Ok(())
                } else {
                    Err("must be * or a list of partition:broker pairs".into())
                }
            }
            Constraint::HostPortOrEmpty if !value.is_empty() => check_host_port(value),
            _ => Ok(()),
        }
    }
}

/// `host:port` with a port number (0 picks a free port); the host may be empty (every
/// interface), a name, an IPv4 address or a bracketed IPv6 address.
fn check_host_port(value: &str) -> Result<(), String> {
    let usage = || "must be host:port (or empty for none)".to_string();
    let (host, port) = value.rsplit_once(':').ok_or_else(usage)?;
    port.parse::<u16>().map_err(|_| usage())?;
    let bracketed = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
    if host.contains(':') && !bracketed || host.contains(char::is_whitespace) {
        return Err(usage());
    }
    Ok(())
}

/// The items of a list value: comma-separated, trimmed; an empty value is the empty list.
pub fn list_items(value: &str) -> Vec<&str> {
    if value.trim().is_empty() {
        return Vec::new();
    }
    value.split(',').map(str::trim).collect()
}

impl fmt::Display for ConfigDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_types_and_constraints() {
        let int = ConfigDef::new("x", ConfigType::Int, Some("1")).with(Constraint::AtLeast(1));
        assert!(int.validate("5").is_ok());
        assert!(int.validate("0").is_err());
        assert!(int.validate("abc").is_err());
        assert!(int.validate("9999999999").is_err());
        let choice =
            ConfigDef::new("t", ConfigType::String, None).with(Constraint::OneOf(&["A", "B"]));
        assert!(choice.validate("A").is_ok());
        assert!(choice.validate("C").is_err());
        let list = ConfigDef::new("l", ConfigType::List, None)
            .with(Constraint::ListOf(&["delete", "compact"]));
        assert!(list.validate("compact, delete").is_ok());
        assert!(list.validate("delete,nope").is_err());
        assert!(
            list.validate("").is_ok(),
            "the empty list, as Kafka 3.9 allows"
        );
        let ratio = ConfigDef::new("r", ConfigType::Double, None).with(Constraint::Ratio);
        assert!(ratio.validate("0.25").is_ok());
        assert!(ratio.validate("1.5").is_err());
        let throttled =
            ConfigDef::new("t", ConfigType::List, Some("")).with(Constraint::ThrottledReplicas);
        assert!(throttled.validate("*").is_ok());
        assert!(throttled.validate("0:1, 1:2").is_ok());
        assert!(throttled.validate("0-1").is_err());
        let range =
            ConfigDef::new("r", ConfigType::Int, None).with(Constraint::Between(-131072, 22));
        assert!(range.validate("-131072").is_ok() && range.validate("22").is_ok());
        assert!(range.validate("23").is_err() && range.validate("-131073").is_err());
        let or = ConfigDef::new("g", ConfigType::Int, None).with(Constraint::BetweenOr(1, 9, -1));
        assert!(or.validate("-1").is_ok() && or.validate("1").is_ok() && or.validate("9").is_ok());
        assert!(or.validate("0").is_err() && or.validate("10").is_err());
        assert!(or.validate("-2").is_err());
        let hp = ConfigDef::new("h", ConfigType::String, None).with(Constraint::HostPortOrEmpty);
        for good in ["", "127.0.0.1:9644", ":9644", "localhost:0", "[::1]:9644"] {
            assert!(hp.validate(good).is_ok(), "{good:?}");
        }
        for bad in [
            "9644",
            "localhost",
            "host:99999",
            "host:x",
            "::1:9644",
            "a b:1",
        ] {
            assert!(hp.validate(bad).is_err(), "{bad:?}");
        }
        let b = ConfigDef::new("b", ConfigType::Boolean, None);
        assert!(b.validate("TRUE").is_ok());
        assert!(b.validate("yes").is_err());
    }
}
