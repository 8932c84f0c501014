//! `listeners` / `advertised.listeners` values: `NAME://host:port` lists.

use super::def::InvalidValue;

/// One listener endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    /// Empty means every interface (bind) or this machine's hostname (advertise).
    pub host: String,
    pub port: u16,
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

/// Parses a comma-separated listener list such as `PLAINTEXT://127.0.0.1:9092`.
pub fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, InvalidValue> {
    let fail = |reason: &str| InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item
            .split_once("://")
            .ok_or_else(|| fail("expected NAME://host:port"))?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| fail("missing port"))?;
        let port: u16 = port.parse().map_err(|_| fail("bad port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if name != "PLAINTEXT" {
            return Err(fail("only PLAINTEXT listeners are supported for now"));
        }
        out.push(Listener {
            name: name.to_string(),
            host: host.to_string(),
            port,
        });
    }
    if out.is_empty() {
        return Err(fail("at least one listener is required"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listeners() {
        let l = parse_listeners("listeners", "PLAINTEXT://:9092, PLAINTEXT://[::1]:9093").unwrap();
        assert_eq!(l[0].host, "");
        assert_eq!(l[0].bind_host(), "0.0.0.0");
        assert_eq!(l[1].host, "::1");
        assert_eq!(l[1].port, 9093);
        assert!(parse_listeners("listeners", "127.0.0.1:9092").is_err());
        assert!(parse_listeners("listeners", "PLAINTEXT://h:99999").is_err());
        assert!(parse_listeners("listeners", "SSL://h:9093").is_err());
    }
}
