//! Named listeners: `listeners`, `advertised.listeners`, `listener.security.protocol.map`,
//! `inter.broker.listener.name` and `security.inter.broker.protocol`, parsed and checked together
//! with Kafka's rules. Every error names the key at fault.

use std::collections::BTreeMap;

use super::def::InvalidValue;

/// The security protocol of a listener (`listener.security.protocol.map`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// Parses Kafka's protocol names (case-insensitive, as Kafka).
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    /// Kafka's name of the protocol.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

/// One listener endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// The listener name, upper-cased as Kafka normalises it.
    pub name: String,
    /// Empty means every interface (bind) or this machine's hostname (advertise).
    pub host: String,
    pub port: u16,
    /// The security protocol its name maps to.
    pub protocol: SecurityProtocol,
}

impl Listener {
    /// The host to bind to.
    pub fn bind_host(&self) -> &str {
        if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        }
    }
}

/// The raw values of the listener keys (`None` when a key is unset).
#[derive(Clone, Copy, Debug)]
pub struct ListenerKeys<'a> {
    pub listeners: &'a str,
    pub advertised_listeners: Option<&'a str>,
    pub protocol_map: &'a str,
    pub inter_broker_listener_name: Option<&'a str>,
    pub security_inter_broker_protocol: Option<&'a str>,
}

/// The listener configuration, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerConfig {
    /// The sockets to bind, one per listener name.
    pub listeners: Vec<Listener>,
    /// What other brokers and clients are told, per listener name (a subset of `listeners`).
    pub advertised: Vec<Listener>,
    /// Listener name → security protocol, as configured.
    pub protocol_map: BTreeMap<String, SecurityProtocol>,
    /// The listener other brokers are reached on.
    pub inter_broker: String,
}

/// The default `security.inter.broker.protocol`.
const DEFAULT_INTER_BROKER_PROTOCOL: &str = "PLAINTEXT";

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> InvalidValue {
    InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Resolves and checks the listener keys as Kafka does; then refuses what Odradek cannot serve
/// yet (an inter-broker listener whose protocol is not PLAINTEXT).
pub fn resolve<'a>(keys: ListenerKeys<'a>) -> Result<ListenerConfig, InvalidValue> {
    let set = |v: Option<&'a str>| v.filter(|v| !v.trim().is_empty());
    let keys = ListenerKeys {
        advertised_listeners: set(keys.advertised_listeners),
        inter_broker_listener_name: set(keys.inter_broker_listener_name),
        security_inter_broker_protocol: set(keys.security_inter_broker_protocol),
        ..keys
    };
    let protocol_map = parse_protocol_map(keys.protocol_map)?;
    let listeners = parse_list("listeners", keys.listeners, &protocol_map, true)?;
    let advertised = match keys.advertised_listeners {
        Some(value) => parse_list("advertised.listeners", value, &protocol_map, false)?,
        None => listeners.clone(),
    };
    if let Some(l) = advertised
        .iter()
        .find(|a| !listeners.iter().any(|l| l.name == a.name))
    {
        return Err(invalid(
            "advertised.listeners",
            keys.advertised_listeners.unwrap_or_default(),
            format!(
                "listener name {} is not among the names in listeners ({})",
                l.name,
                names(&listeners)
            ),
        ));
    }
    if advertised.iter().any(|a| a.host == "0.0.0.0") {
        return Err(invalid(
            "advertised.listeners",
            keys.advertised_listeners.unwrap_or(keys.listeners),
            "cannot advertise the non-routable meta-address 0.0.0.0; use a routable address \
             (advertised.listeners defaults to listeners)",
        ));
    }
    let inter_broker = inter_broker_listener(keys, &protocol_map)?;
    if !advertised.iter().any(|a| a.name == inter_broker) {
        let key = if keys.inter_broker_listener_name.is_some() {
            "inter.broker.listener.name"
        } else {
            "security.inter.broker.protocol"
        };
        return Err(invalid(
            key,
            &inter_broker,
            format!(
                "the inter-broker listener must be an advertised listener; advertised: {}",
                names(&advertised)
            ),
        ));
    }
    Ok(ListenerConfig {
        listeners,
        advertised,
        protocol_map,
        inter_broker,
    })
}

/// The inter-broker listener: `inter.broker.listener.name`, else the listener named after
/// `security.inter.broker.protocol` (PLAINTEXT by default). Only one of the two may be set.
fn inter_broker_listener(
    keys: ListenerKeys<'_>,
    protocol_map: &BTreeMap<String, SecurityProtocol>,
) -> Result<String, InvalidValue> {
    match (
        keys.inter_broker_listener_name,
        keys.security_inter_broker_protocol,
    ) {
        (Some(name), Some(_)) => Err(invalid(
            "inter.broker.listener.name",
            name,
            "only one of inter.broker.listener.name and security.inter.broker.protocol may be set",
        )),
        (Some(name), None) => {
            let name = name.trim().to_ascii_uppercase();
            if protocol_map.contains_key(&name) {
                Ok(name)
            } else {
                Err(invalid(
                    "inter.broker.listener.name",
                    &name,
                    "no such listener name in listener.security.protocol.map",
                ))
            }
        }
        (None, protocol) => {
            let value = protocol.unwrap_or(DEFAULT_INTER_BROKER_PROTOCOL);
            SecurityProtocol::parse(value)
                .map(|p| p.name().to_string())
                .ok_or_else(|| {
                    invalid(
                        "security.inter.broker.protocol",
                        value,
                        "expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                    )
                })
        }
    }
}

/// Parses `NAME:PROTOCOL,...`.
fn parse_protocol_map(value: &str) -> Result<BTreeMap<String, SecurityProtocol>, InvalidValue> {
    const KEY: &str = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, protocol) = item
            .split_once(':')
            .ok_or_else(|| invalid(KEY, value, format!("expected NAME:PROTOCOL, got {item:?}")))?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() {
            return Err(invalid(KEY, value, "empty listener name"));
        }
        let protocol = SecurityProtocol::parse(protocol).ok_or_else(|| {
            invalid(
                KEY,
                value,
                format!("unknown security protocol {protocol:?}"),
            )
        })?;
        if map.insert(name.clone(), protocol).is_some() {
            return Err(invalid(
                KEY,
                value,
                format!("listener {name} appears twice"),
            ));
        }
    }
    Ok(map)
}

/// Parses a comma-separated list such as `INTERNAL://127.0.0.1:19092,EXTERNAL://:9092`: names
/// distinct and in the protocol map; ports distinct too when `distinct_ports` (bound sockets;
/// port 0, "any free port", excepted).
fn parse_list(
    key: &str,
    value: &str,
    protocol_map: &BTreeMap<String, SecurityProtocol>,
    distinct_ports: bool,
) -> Result<Vec<Listener>, InvalidValue> {
    let mut out: Vec<Listener> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let l = parse_one(item, protocol_map).map_err(|reason| invalid(key, value, reason))?;
        if out.iter().any(|o| o.name == l.name) {
            return Err(invalid(
                key,
                value,
                format!(
                    "listener name {} appears twice; each listener needs its own name",
                    l.name
                ),
            ));
        }
        if distinct_ports && l.port != 0 && out.iter().any(|o| o.port == l.port) {
            return Err(invalid(
                key,
                value,
                format!(
                    "port {} is used twice; each listener needs its own port",
                    l.port
                ),
            ));
        }
        out.push(l);
    }
    if out.is_empty() {
        return Err(invalid(key, value, "at least one listener is required"));
    }
    Ok(out)
}

/// Parses `NAME://host:port` (IPv6 hosts in brackets).
fn parse_one(
    item: &str,
    protocol_map: &BTreeMap<String, SecurityProtocol>,
) -> Result<Listener, String> {
    let (name, rest) = item
        .split_once("://")
        .ok_or_else(|| format!("expected NAME://host:port, got {item:?}"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("missing port in {item:?}"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("bad port {port:?} in {item:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = name.trim().to_ascii_uppercase();
    if name.is_empty() {
        return Err(format!("empty listener name in {item:?}"));
    }
    let protocol = *protocol_map.get(&name).ok_or_else(|| {
        format!("no security protocol for listener {name} in listener.security.protocol.map")
    })?;
    Ok(Listener {
        name,
        host: host.to_string(),
        port,
        protocol,
    })
}

fn names(listeners: &[Listener]) -> String {
    listeners
        .iter()
        .map(|l| l.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_MAP: &str =
        "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";
    const TWO_MAP: &str = "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT";

    fn keys<'a>(listeners: &'a str) -> ListenerKeys<'a> {
        ListenerKeys {
            listeners,
            advertised_listeners: None,
            protocol_map: DEFAULT_MAP,
            inter_broker_listener_name: None,
            security_inter_broker_protocol: None,
        }
    }

    /// The key an error names, and its reason.
    fn err(keys: ListenerKeys<'_>) -> (String, String) {
        let e = resolve(keys).unwrap_err();
        (e.key, e.reason)
    }

    #[test]
    fn parses_the_default_shape() {
        let c = resolve(keys("PLAINTEXT://:9092, PLAINTEXT2://[::1]:9093"));
        assert!(c.is_err(), "PLAINTEXT2 has no protocol in the default map");
        let c = resolve(keys("plaintext://:9092")).unwrap();
        assert_eq!(c.listeners[0].name, "PLAINTEXT");
        assert_eq!(c.listeners[0].host, "");
        assert_eq!(c.listeners[0].bind_host(), "0.0.0.0");
        assert_eq!(c.advertised, c.listeners);
        assert_eq!(c.inter_broker, "PLAINTEXT");
    }

    #[test]
    fn parses_named_listeners() {
        let c = resolve(ListenerKeys {
            listeners: "INTERNAL://0.0.0.0:19092,EXTERNAL://[::1]:9092",
            advertised_listeners: Some("INTERNAL://kafka1:19092,EXTERNAL://localhost:9092"),
            protocol_map: TWO_MAP,
            inter_broker_listener_name: Some("internal"),
            ..keys("")
        })
        .unwrap();
        assert_eq!(c.listeners[1].host, "::1");
        assert_eq!(c.listeners[1].port, 9092);
        assert_eq!(c.advertised[0].host, "kafka1");
        assert_eq!(c.inter_broker, "INTERNAL");
        assert_eq!(c.protocol_map["EXTERNAL"], SecurityProtocol::Plaintext);
    }

    #[test]
    fn advertised_may_be_a_subset_and_share_ports() {
        let c = resolve(ListenerKeys {
            listeners: "INTERNAL://:19092,EXTERNAL://:9092",
            advertised_listeners: Some("INTERNAL://a:9092"),
            protocol_map: TWO_MAP,
            inter_broker_listener_name: Some("INTERNAL"),
            ..keys("")
        })
        .unwrap();
        assert_eq!(c.advertised.len(), 1);
    }

    #[test]
    fn refuses_malformed_entries() {
        for bad in [
            "127.0.0.1:9092",
            "PLAINTEXT://h:99999",
            "PLAINTEXT://h",
            "://h:1",
            "",
        ] {
            assert_eq!(err(keys(bad)).0, "listeners", "{bad}");
        }
    }

    #[test]
    fn refuses_duplicate_names_and_ports() {
        let (key, reason) = err(keys("PLAINTEXT://a:1,PLAINTEXT://b:2"));
        assert_eq!(key, "listeners");
        assert!(reason.contains("appears twice"), "{reason}");
        let two = ListenerKeys {
            listeners: "INTERNAL://a:1,EXTERNAL://b:1",
            protocol_map: TWO_MAP,
            inter_broker_listener_name: Some("INTERNAL"),
            ..keys("")
        };
        let (key, reason) = err(two);
        assert_eq!(key, "listeners");
        assert!(reason.contains("port 1"), "{reason}");
        // Port 0 (any free port) may repeat.
        assert!(resolve(ListenerKeys {
            listeners: "INTERNAL://a:0,EXTERNAL://b:0",
            ..two
        })
        .is_ok());
        let (key, reason) = err(ListenerKeys {
            listeners: "INTERNAL://a:1,EXTERNAL://b:2",
            advertised_listeners: Some("INTERNAL://a:1,INTERNAL://b:2"),
            ..two
        });
        assert_eq!(key, "advertised.listeners");
        assert!(reason.contains("appears twice"), "{reason}");
    }

    #[test]
    fn refuses_names_without_protocol() {
        let (key, reason) = err(keys("INTERNAL://a:1"));
        assert_eq!(key, "listeners");
        assert!(
            reason.contains("listener.security.protocol.map"),
            "{reason}"
        );
        let (key, _) = err(ListenerKeys {
            protocol_map: "INTERNAL:TLS",
            ..keys("INTERNAL://a:1")
        });
        assert_eq!(key, "listener.security.protocol.map");
        let (key, _) = err(ListenerKeys {
            protocol_map: "INTERNAL",
            ..keys("INTERNAL://a:1")
        });
        assert_eq!(key, "listener.security.protocol.map");
    }

    #[test]
    fn advertised_names_must_be_listeners() {
        let (key, reason) = err(ListenerKeys {
            advertised_listeners: Some("PLAINTEXT://a:1,SSL://a:2"),
            ..keys("PLAINTEXT://:1")
        });
        assert_eq!(key, "advertised.listeners");
        assert!(reason.contains("SSL"), "{reason}");
    }

    #[test]
    fn refuses_to_advertise_0_0_0_0() {
        let (key, reason) = err(keys("PLAINTEXT://0.0.0.0:9092"));
        assert_eq!(key, "advertised.listeners");
        assert!(reason.contains("0.0.0.0"), "{reason}");
        // Binding 0.0.0.0 is fine once another address is advertised.
        assert!(resolve(ListenerKeys {
            advertised_listeners: Some("PLAINTEXT://kafka:9092"),
            ..keys("PLAINTEXT://0.0.0.0:9092")
        })
        .is_ok());
    }

    #[test]
    fn inter_broker_listener_rules() {
        let two = ListenerKeys {
            listeners: "INTERNAL://a:1,EXTERNAL://b:2",
            protocol_map: TWO_MAP,
            ..keys("")
        };
        // Neither key: PLAINTEXT, which these listeners lack.
        let (key, reason) = err(two);
        assert_eq!(key, "security.inter.broker.protocol");
        assert!(reason.contains("advertised"), "{reason}");
        let (key, _) = err(ListenerKeys {
            inter_broker_listener_name: Some("OTHER"),
            ..two
        });
        assert_eq!(key, "inter.broker.listener.name");
        let (key, reason) = err(ListenerKeys {
            inter_broker_listener_name: Some("INTERNAL"),
            security_inter_broker_protocol: Some("PLAINTEXT"),
            ..two
        });
        assert_eq!(key, "inter.broker.listener.name");
        assert!(reason.contains("only one"), "{reason}");
        // Named but not advertised.
        let (key, reason) = err(ListenerKeys {
            inter_broker_listener_name: Some("INTERNAL"),
            advertised_listeners: Some("EXTERNAL://b:2"),
            ..two
        });
        assert_eq!(key, "inter.broker.listener.name");
        assert!(reason.contains("advertised"), "{reason}");
        let (key, _) = err(ListenerKeys {
            security_inter_broker_protocol: Some("TLS"),
            ..keys("PLAINTEXT://a:1")
        });
        assert_eq!(key, "security.inter.broker.protocol");
    }

    #[test]
    fn serves_ssl_and_sasl_for_clients_and_between_brokers() {
        let c = resolve(keys("PLAINTEXT://a:1,SSL://a:2")).unwrap();
        assert_eq!(c.listeners[1].protocol, SecurityProtocol::Ssl);
        let c = resolve(ListenerKeys {
            security_inter_broker_protocol: Some("SSL"),
            ..keys("PLAINTEXT://a:1,SSL://a:2")
        })
        .unwrap();
        assert_eq!(c.inter_broker, "SSL");
        let c = resolve(ListenerKeys {
            protocol_map: "PLAINTEXT:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT,SECURE:SASL_SSL",
            ..keys("PLAINTEXT://a:1,EXTERNAL://a:2,SECURE://a:3")
        })
        .unwrap();
        assert_eq!(c.listeners[1].protocol, SecurityProtocol::SaslPlaintext);
        assert_eq!(c.listeners[2].protocol, SecurityProtocol::SaslSsl);
        for inter in ["EXTERNAL", "SECURE"] {
            let c = resolve(ListenerKeys {
                protocol_map: "PLAINTEXT:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT,SECURE:SASL_SSL",
                inter_broker_listener_name: Some(inter),
                ..keys("PLAINTEXT://a:1,EXTERNAL://a:2,SECURE://a:3")
            })
            .unwrap();
            assert_eq!(c.inter_broker, inter);
        }
    }
}
