//! IncrementalAlterConfigs operations (KIP-339) on one entity's stored configs: SET, DELETE,
//! and APPEND / SUBTRACT on list keys, applied in request order as Kafka applies them.

use std::collections::BTreeMap;

use super::def::ConfigType;

/// One operation of an IncrementalAlterConfigs resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigOp {
    Set(String),
    Delete,
    Append(String),
    Subtract(String),
}

impl ConfigOp {
    /// The operation of Kafka's wire code (`config_operation`), with its value; `None` for an
    /// unknown code or a missing value where one is needed.
    pub fn from_wire(code: i8, value: Option<String>) -> Option<ConfigOp> {
        match (code, value) {
            (1, _) => Some(ConfigOp::Delete),
            (0, Some(v)) => Some(ConfigOp::Set(v)),
            (2, Some(v)) => Some(ConfigOp::Append(v)),
            (3, Some(v)) => Some(ConfigOp::Subtract(v)),
            _ => None,
        }
    }
}

/// Why an operation cannot apply (INVALID_CONFIG in Kafka).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error("Unknown config name: {0}")]
    Unknown(String),
    #[error("Config value {op} is not allowed for config key: {key}")]
    NotAList { op: &'static str, key: String },
}

/// What an operation needs to know of a key: its type and its default.
pub type KeyInfo = (ConfigType, Option<&'static str>);

/// Applies `ops` to `configs` in order. `info` describes known keys; APPEND and SUBTRACT need
/// a known list key and start from its default when the key is not set.
pub fn apply(
    configs: &mut BTreeMap<String, String>,
    ops: &[(String, ConfigOp)],
    info: impl Fn(&str) -> Option<KeyInfo>,
) -> Result<(), OpError> {
    for (key, op) in ops {
        match op {
            ConfigOp::Set(value) => {
                configs.insert(key.clone(), value.clone());
            }
            ConfigOp::Delete => {
                configs.remove(key);
            }
            ConfigOp::Append(value) => {
                let mut items = current_items(configs, key, "append", &info)?;
                for item in value.split(',') {
                    if !items.iter().any(|i| i == item) {
                        items.push(item.to_string());
                    }
                }
                configs.insert(key.clone(), items.join(","));
            }
            ConfigOp::Subtract(value) => {
                let mut items = current_items(configs, key, "subtract", &info)?;
                // A multiset difference: each given item removes one occurrence.
                for item in value.split(',') {
                    if let Some(at) = items.iter().position(|i| i == item) {
                        items.remove(at);
                    }
                }
                configs.insert(key.clone(), items.join(","));
            }
        }
    }
    Ok(())
}

/// The items of a list key: its set value, else its default; empty items dropped.
fn current_items(
    configs: &BTreeMap<String, String>,
    key: &str,
    op: &'static str,
    info: &impl Fn(&str) -> Option<KeyInfo>,
) -> Result<Vec<String>, OpError> {
    let (kind, default) = info(key).ok_or_else(|| OpError::Unknown(key.to_string()))?;
    if kind != ConfigType::List {
        return Err(OpError::NotAList {
            op,
            key: key.to_string(),
        });
    }
    let value = configs
        .get(key)
        .map(String::as_str)
        .or(default)
        .unwrap_or("");
    Ok(value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(key: &str) -> Option<KeyInfo> {
        match key {
            "cleanup.policy" => Some((ConfigType::List, Some("delete"))),
            "throttled" => Some((ConfigType::List, Some(""))),
            "retention.ms" => Some((ConfigType::Long, Some("604800000"))),
            _ => None,
        }
    }

    fn run(
        start: &[(&str, &str)],
        ops: &[(&str, ConfigOp)],
    ) -> Result<Vec<(String, String)>, OpError> {
        let mut configs: BTreeMap<String, String> = start
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ops: Vec<_> = ops
            .iter()
            .map(|(k, o)| (k.to_string(), o.clone()))
            .collect();
        apply(&mut configs, &ops, info)?;
        Ok(configs.into_iter().collect())
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn set_and_delete() {
        let got = run(
            &[("retention.ms", "1"), ("cleanup.policy", "compact")],
            &[
                ("retention.ms", ConfigOp::Set("2".into())),
                ("cleanup.policy", ConfigOp::Delete),
                ("absent", ConfigOp::Delete),
            ],
        )
        .unwrap();
        assert_eq!(got, vec![pair("retention.ms", "2")]);
    }

    #[test]
    fn append_starts_from_the_default_and_skips_present_items() {
        let got = run(
            &[],
            &[("cleanup.policy", ConfigOp::Append("compact".into()))],
        )
        .unwrap();
        assert_eq!(got, vec![pair("cleanup.policy", "delete,compact")]);
        let got = run(
            &[("cleanup.policy", "compact")],
            &[("cleanup.policy", ConfigOp::Append("compact,delete".into()))],
        )
        .unwrap();
        assert_eq!(got, vec![pair("cleanup.policy", "compact,delete")]);
        let got = run(&[], &[("throttled", ConfigOp::Append("0:1".into()))]).unwrap();
        assert_eq!(
            got,
            vec![pair("throttled", "0:1")],
            "an empty default adds no empty item"
        );
    }

    #[test]
    fn subtract_removes_items_and_may_leave_an_empty_list() {
        let got = run(
            &[("cleanup.policy", "compact,delete")],
            &[("cleanup.policy", ConfigOp::Subtract("delete".into()))],
        )
        .unwrap();
        assert_eq!(got, vec![pair("cleanup.policy", "compact")]);
        let got = run(
            &[],
            &[("cleanup.policy", ConfigOp::Subtract("delete".into()))],
        )
        .unwrap();
        assert_eq!(got, vec![pair("cleanup.policy", "")]);
    }

    #[test]
    fn list_operations_need_a_known_list_key() {
        assert_eq!(
            run(&[], &[("retention.ms", ConfigOp::Append("1".into()))]),
            Err(OpError::NotAList {
                op: "append",
                key: "retention.ms".into()
            })
        );
        assert_eq!(
            run(&[], &[("nope", ConfigOp::Subtract("1".into()))]),
            Err(OpError::Unknown("nope".into()))
        );
    }

    #[test]
    fn wire_codes() {
        assert_eq!(ConfigOp::from_wire(1, None), Some(ConfigOp::Delete));
        assert_eq!(
            ConfigOp::from_wire(0, Some("x".into())),
            Some(ConfigOp::Set("x".into()))
        );
        assert_eq!(ConfigOp::from_wire(0, None), None);
        assert_eq!(ConfigOp::from_wire(9, Some("x".into())), None);
    }
}
