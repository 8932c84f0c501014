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
    Password,
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
            ConfigType::Password => 9,
        }
    }
}

/// Where a reported config value comes from (DescribeConfigs `config_source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    TopicOverride,
    StaticBroker,
    Default,
}

impl ConfigSource {
    /// Kafka's wire code for DescribeConfigs `config_source`.
    pub fn wire_code(self) -> i8 {
        match self {
            ConfigSource::TopicOverride => 1,
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
                value.parse::<f64>().map_err(|e| fail(e.to_string()))?;
                return Ok(());
            }
            ConfigType::String | ConfigType::Password | ConfigType::List => {
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
                for item in value.split(',').map(str::trim) {
                    if !choices.contains(&item) {
                        return Err(format!("each item must be one of {}", choices.join(", ")));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
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
        let range =
            ConfigDef::new("r", ConfigType::Int, None).with(Constraint::Between(-131072, 22));
        assert!(range.validate("-131072").is_ok() && range.validate("22").is_ok());
        assert!(range.validate("23").is_err() && range.validate("-131073").is_err());
        let or = ConfigDef::new("g", ConfigType::Int, None).with(Constraint::BetweenOr(1, 9, -1));
        assert!(or.validate("-1").is_ok() && or.validate("1").is_ok() && or.validate("9").is_ok());
        assert!(or.validate("0").is_err() && or.validate("10").is_err());
        assert!(or.validate("-2").is_err());
        let b = ConfigDef::new("b", ConfigType::Boolean, None);
        assert!(b.validate("TRUE").is_ok());
        assert!(b.validate("yes").is_err());
    }
}
