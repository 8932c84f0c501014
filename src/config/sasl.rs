//! SASL settings of a SASL listener, read with Kafka's keys: the enabled mechanisms
//! (`sasl.enabled.mechanisms`, overridden by `listener.name.<l>.sasl.enabled.mechanisms`), the
//! JAAS configuration of each mechanism (`listener.name.<l>.<mechanism>.sasl.jaas.config`, else
//! the `<l>.KafkaServer` or `KafkaServer` section of the JAAS file Kafka users name with
//! `-Djava.security.auth.login.config=<file>` in `KAFKA_OPTS`), and the session lifetime
//! (`connections.max.reauth.ms`, per mechanism under the listener prefix). PLAIN users are the
//! JAAS options `user_<name>="<password>"`; SCRAM users live in the cluster's user entities.
//! Passwords never show in `Debug`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::def::InvalidValue;
use crate::auth::scram::ScramMechanism;

/// The JVM option naming the JAAS file, as Kafka users pass it in `KAFKA_OPTS`.
pub const JAAS_FILE_OPTION: &str = "-Djava.security.auth.login.config=";

/// A SASL mechanism this broker serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramMechanism),
}

impl SaslMechanism {
    /// The mechanism's SASL name (case-sensitive, as in Kafka).
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.name(),
        }
    }

    /// The mechanism named `name`, if served.
    pub fn from_name(name: &str) -> Option<SaslMechanism> {
        match name {
            "PLAIN" => Some(SaslMechanism::Plain),
            other => ScramMechanism::from_name(other).map(SaslMechanism::Scram),
        }
    }
}

/// A password from a JAAS configuration: compared, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The password itself, for the comparison that checks a client.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[hidden]")
    }
}

/// One enabled mechanism of a listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnabledMechanism {
    pub mechanism: SaslMechanism,
    /// `connections.max.reauth.ms`: how long an authentication holds (`None`: for ever).
    pub max_reauth: Option<Duration>,
}

/// The SASL settings of one SASL listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslListenerConfig {
    /// Enabled mechanisms, in the configured order (the order SaslHandshake lists them in).
    pub mechanisms: Vec<EnabledMechanism>,
    /// PLAIN users and their passwords (JAAS `user_<name>` options).
    pub plain_users: BTreeMap<String, Password>,
    /// Per mechanism, the identity this broker logs in with as a client (the JAAS `username`
    /// and `password` options), used when this is the inter-broker listener.
    pub logins: BTreeMap<SaslMechanism, Login>,
}

/// A SASL identity a broker logs in to its peers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: Password,
}

impl SaslListenerConfig {
    /// The enabled mechanism named `name`.
    pub fn enabled(&self, name: &str) -> Option<&EnabledMechanism> {
        self.mechanisms.iter().find(|m| m.mechanism.name() == name)
    }

    /// The names of the enabled mechanisms.
    pub fn names(&self) -> Vec<&'static str> {
        self.mechanisms.iter().map(|m| m.mechanism.name()).collect()
    }
}

/// Whether `key` is a listener-prefixed SASL key this module reads
/// (`listener.name.<l>.sasl.enabled.mechanisms`, `listener.name.<l>.<mechanism>.sasl.jaas.config`,
/// `listener.name.<l>.<mechanism>.connections.max.reauth.ms`).
pub fn is_listener_sasl_key(key: &str) -> bool {
    let Some((_, rest)) = key
        .strip_prefix("listener.name.")
        .and_then(|r| r.split_once('.'))
    else {
        return false;
    };
    rest == "sasl.enabled.mechanisms"
        || rest.split_once('.').is_some_and(|(mechanism, k)| {
            !mechanism.is_empty() && (k == "sasl.jaas.config" || k == "connections.max.reauth.ms")
        })
}

/// Whether a key holds a secret (a JAAS configuration carries passwords): hidden from logs and
/// DescribeConfigs, as Kafka's PASSWORD type.
pub fn is_secret_key(key: &str) -> bool {
    key.ends_with("sasl.jaas.config")
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> InvalidValue {
    InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// The JAAS file named in a `KAFKA_OPTS` value, if any.
pub fn jaas_file_from_opts(opts: &str) -> Option<String> {
    opts.split_whitespace()
        .find_map(|o| o.trim_matches(['"', '\'']).strip_prefix(JAAS_FILE_OPTION))
        .map(|f| f.trim_matches(['"', '\'']).to_string())
        .filter(|f| !f.is_empty())
}

/// Reads the SASL settings of the SASL listener `listener` (upper case) from the effective
/// keys; `jaas_file` is the JAAS file's path and text, when one was given.
pub fn resolve(
    effective: &BTreeMap<String, String>,
    listener: &str,
    jaas_file: Option<&(String, String)>,
) -> Result<SaslListenerConfig, InvalidValue> {
    let prefix = format!("listener.name.{}.", listener.to_ascii_lowercase());
    let listener_key = format!("{prefix}sasl.enabled.mechanisms");
    let (key, value) = match effective.get(&listener_key) {
        Some(v) => (listener_key.as_str(), v.as_str()),
        None => (
            "sasl.enabled.mechanisms",
            effective
                .get("sasl.enabled.mechanisms")
                .map_or("GSSAPI", String::as_str),
        ),
    };
    let mut mechanisms = Vec::new();
    let mut plain_users = BTreeMap::new();
    let mut logins = BTreeMap::new();
    let mut names = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let mechanism = parse_mechanism(key, value, listener, name)?;
        if !names.contains(&mechanism) {
            names.push(mechanism);
        }
    }
    for mechanism in names {
        let mech_prefix = format!("{prefix}{}.", mechanism.name().to_ascii_lowercase());
        let entries = jaas_entries(effective, &mech_prefix, listener, jaas_file)?;
        if let Some(login) = entries.iter().find_map(|e| {
            Some(Login {
                username: e.options.get("username")?.clone(),
                password: Password(e.options.get("password")?.clone()),
            })
        }) {
            logins.insert(mechanism, login);
        }
        if mechanism == SaslMechanism::Plain {
            for entry in &entries {
                for (option, password) in &entry.options {
                    if let Some(user) = option.strip_prefix("user_") {
                        plain_users.insert(user.to_string(), Password(password.clone()));
                    }
                }
            }
        }
        mechanisms.push(EnabledMechanism {
            mechanism,
            max_reauth: max_reauth(effective, &mech_prefix)?,
        });
    }
    if mechanisms.is_empty() {
        return Err(invalid(
            key,
            value,
            format!("listener {listener} is a SASL listener but enables no SASL mechanism"),
        ));
    }
    Ok(SaslListenerConfig {
        mechanisms,
        plain_users,
        logins,
    })
}

fn parse_mechanism(
    key: &str,
    value: &str,
    listener: &str,
    name: &str,
) -> Result<SaslMechanism, InvalidValue> {
    SaslMechanism::from_name(name).ok_or_else(|| {
        let why = match name {
            "GSSAPI" | "OAUTHBEARER" => format!(
                "{name} (enabled on SASL listener {listener}{}) is not supported",
                if key == "sasl.enabled.mechanisms" && value == "GSSAPI" {
                    ", Kafka's default"
                } else {
                    ""
                }
            ),
            _ => format!("unknown SASL mechanism {name} on listener {listener}"),
        };
        invalid(
            key,
            value,
            format!("{why}; supported mechanisms: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
        )
    })
}

/// `connections.max.reauth.ms` for one mechanism: the listener-and-mechanism form, else the
/// plain key; 0 or less means sessions never expire.
fn max_reauth(
    effective: &BTreeMap<String, String>,
    mech_prefix: &str,
) -> Result<Option<Duration>, InvalidValue> {
    let own = format!("{mech_prefix}connections.max.reauth.ms");
    let (key, value) = match effective.get(&own) {
        Some(v) => (own.as_str(), v.as_str()),
        None => match effective.get("connections.max.reauth.ms") {
            Some(v) => ("connections.max.reauth.ms", v.as_str()),
            None => return Ok(None),
        },
    };
    let ms: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "not a number of milliseconds"))?;
    Ok(u64::try_from(ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis))
}

/// The JAAS login entries for one listener and mechanism: the listener's
/// `<mechanism>.sasl.jaas.config`, else the JAAS file's `<listener>.KafkaServer` section, else
/// its `KafkaServer` section. Neither given stops start-up, as in Kafka.
fn jaas_entries(
    effective: &BTreeMap<String, String>,
    mech_prefix: &str,
    listener: &str,
    jaas_file: Option<&(String, String)>,
) -> Result<Vec<JaasEntry>, InvalidValue> {
    let key = format!("{mech_prefix}sasl.jaas.config");
    if let Some(value) = effective.get(&key) {
        // The value is a secret: errors name the key, never echo it.
        return parse_jaas_entries(value).map_err(|reason| invalid(&key, "[hidden]", reason));
    }
    let listener_section = format!("{}.KafkaServer", listener.to_ascii_lowercase());
    let missing = || {
        invalid(
            &key,
            "",
            format!(
                "no JAAS configuration for listener {listener}: set {key}, or give a JAAS file \
                 with a '{listener_section}' or 'KafkaServer' section through KAFKA_OPTS \
                 ({JAAS_FILE_OPTION}<file>)"
            ),
        )
    };
    let Some((path, text)) = jaas_file else {
        return Err(missing());
    };
    let sections = parse_jaas_file(text)
        .map_err(|reason| invalid("KAFKA_OPTS", path, format!("JAAS file {path}: {reason}")))?;
    sections
        .get(&listener_section)
        .or_else(|| sections.get("KafkaServer"))
        .cloned()
        .ok_or_else(missing)
}

/// One JAAS login module line: `<class> <flag> <name>=<value> ... ;`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JaasEntry {
    pub login_module: String,
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

/// A token of JAAS syntax.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Punct(char),
}

/// Splits JAAS text into tokens as Java's `StreamTokenizer` does for JAAS: words, double-quoted
/// strings with backslash escapes, `{ } ; =` and `//` or `/* */` comments.
fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                loop {
                    match chars.next() {
                        None => return Err("unterminated /* comment".into()),
                        Some('/') if prev == '*' => break,
                        Some(c) => prev = c,
                    }
                }
            }
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated quoted value".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            None => return Err("unterminated quoted value".into()),
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some(other) => s.push(other),
                        },
                        Some(c) => s.push(c),
                    }
                }
                tokens.push(Token::Quoted(s));
            }
            '{' | '}' | ';' | '=' => tokens.push(Token::Punct(c)),
            _ => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '=' | '"') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                tokens.push(Token::Word(s));
            }
        }
    }
    Ok(tokens)
}

/// Reads login entries from `tokens[*at..]` until `}` or the end.
fn parse_entries(tokens: &[Token], at: &mut usize) -> Result<Vec<JaasEntry>, String> {
    let mut entries = Vec::new();
    loop {
        let login_module = match tokens.get(*at) {
            None | Some(Token::Punct('}')) => return Ok(entries),
            Some(Token::Word(w)) => w.clone(),
            Some(t) => return Err(format!("expected a login module class, found {t:?}")),
        };
        let flag = match tokens.get(*at + 1) {
            Some(Token::Word(w)) => w.to_ascii_lowercase(),
            _ => return Err(format!("{login_module}: expected a control flag")),
        };
        if !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
            return Err(format!("{login_module}: invalid control flag {flag}"));
        }
        *at += 2;
        let mut options = BTreeMap::new();
        loop {
            match tokens.get(*at) {
                Some(Token::Punct(';')) => {
                    *at += 1;
                    break;
                }
                Some(Token::Word(name)) => {
                    let value = match (tokens.get(*at + 1), tokens.get(*at + 2)) {
                        (Some(Token::Punct('=')), Some(Token::Word(v) | Token::Quoted(v))) => {
                            v.clone()
                        }
                        _ => return Err(format!("{login_module}: option {name} has no value")),
                    };
                    options.insert(name.clone(), value);
                    *at += 3;
                }
                None => return Err(format!("{login_module}: the entry does not end with ;")),
                Some(t) => return Err(format!("{login_module}: unexpected {t:?}")),
            }
        }
        entries.push(JaasEntry {
            login_module,
            flag,
            options,
        });
    }
}

/// Parses a `sasl.jaas.config` value: one or more login entries, each ending with `;`.
pub fn parse_jaas_entries(value: &str) -> Result<Vec<JaasEntry>, String> {
    let tokens = tokenize(value)?;
    let mut at = 0;
    let entries = parse_entries(&tokens, &mut at)?;
    if at != tokens.len() {
        return Err("unexpected } in a sasl.jaas.config value".into());
    }
    if entries.is_empty() {
        return Err("no login module".into());
    }
    Ok(entries)
}

/// Parses a JAAS file: sections `<name> { <entries> };`.
pub fn parse_jaas_file(text: &str) -> Result<BTreeMap<String, Vec<JaasEntry>>, String> {
    let tokens = tokenize(text)?;
    let mut sections = BTreeMap::new();
    let mut at = 0;
    while let Some(token) = tokens.get(at) {
        let Token::Word(name) = token else {
            return Err(format!("expected a section name, found {token:?}"));
        };
        if tokens.get(at + 1) != Some(&Token::Punct('{')) {
            return Err(format!("section {name}: expected {{"));
        }
        at += 2;
        let entries = parse_entries(&tokens, &mut at)?;
        if tokens.get(at) != Some(&Token::Punct('}')) {
            return Err(format!("section {name}: missing }}"));
        }
        at += 1;
        if tokens.get(at) == Some(&Token::Punct(';')) {
            at += 1;
        }
        sections.insert(name.clone(), entries);
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn inline_jaas_gives_plain_users() {
        let effective = keys(&[
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256"),
            (
                "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                PLAIN_JAAS,
            ),
            (
                "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            ),
            ("connections.max.reauth.ms", "60000"),
        ]);
        let c = resolve(&effective, "SASL_PLAINTEXT", None).unwrap();
        assert_eq!(c.names(), ["PLAIN", "SCRAM-SHA-256"]);
        assert_eq!(c.plain_users["alice"].reveal(), "alice-secret");
        assert_eq!(c.plain_users["admin"].reveal(), "admin-secret");
        assert!(!c.plain_users.contains_key("username"));
        assert_eq!(c.mechanisms[0].max_reauth, Some(Duration::from_secs(60)));
        assert!(
            !format!("{c:?}").contains("secret"),
            "passwords never printed"
        );
    }

    #[test]
    fn jaas_syntax_quotes_escapes_comments() {
        let entries = parse_jaas_entries(
            "a.B required x=\"q\\\"uote;d\" y=plain /* c */ z=\"\";\n c.D optional;",
        )
        .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].options["x"], "q\"uote;d");
        assert_eq!(entries[0].options["y"], "plain");
        assert_eq!(entries[0].options["z"], "");
        assert_eq!(entries[1].flag, "optional");
        for bad in [
            "",
            "a.B required x=\"1\"",
            "a.B sometimes;",
            "a.B required x;",
            "a.B required x=\"open;",
        ] {
            assert!(parse_jaas_entries(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn jaas_file_sections_listener_first() {
        let file = "// brokers\nKafkaServer {\n  org.apache.kafka.common.security.plain.PlainLoginModule required\n  user_bob=\"b\";\n};\nsasl_ssl.KafkaServer {\n  org.apache.kafka.common.security.plain.PlainLoginModule required user_carol=\"c\";\n};\nClient { x.Y required; };\n";
        let jaas = ("/etc/jaas.conf".to_string(), file.to_string());
        let effective = keys(&[("sasl.enabled.mechanisms", "PLAIN")]);
        let plain = resolve(&effective, "SASL_PLAINTEXT", Some(&jaas)).unwrap();
        assert!(plain.plain_users.contains_key("bob"));
        let ssl = resolve(&effective, "SASL_SSL", Some(&jaas)).unwrap();
        assert!(ssl.plain_users.contains_key("carol") && !ssl.plain_users.contains_key("bob"));
        assert_eq!(
            jaas_file_from_opts("-Xmx1g -Djava.security.auth.login.config=/etc/jaas.conf"),
            Some("/etc/jaas.conf".into())
        );
        assert_eq!(jaas_file_from_opts("-Xmx1g"), None);
    }

    #[test]
    fn refused_mechanisms_and_missing_jaas() {
        let err = resolve(&BTreeMap::new(), "SASL_PLAINTEXT", None).unwrap_err();
        assert!(err.reason.contains("GSSAPI") && err.reason.contains("not supported"));
        for (value, word) in [
            ("PLAIN,OAUTHBEARER", "OAUTHBEARER"),
            ("PLAIN,FOO", "unknown"),
            ("", "no SASL mechanism"),
        ] {
            let effective = keys(&[("listener.name.sasl_ssl.sasl.enabled.mechanisms", value)]);
            let err = resolve(&effective, "SASL_SSL", None).unwrap_err();
            assert_eq!(err.key, "listener.name.sasl_ssl.sasl.enabled.mechanisms");
            assert!(err.reason.contains(word), "{}", err.reason);
        }
        let effective = keys(&[("sasl.enabled.mechanisms", "SCRAM-SHA-512")]);
        let err = resolve(&effective, "SASL_PLAINTEXT", None).unwrap_err();
        assert!(
            err.reason.contains("no JAAS configuration"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn listener_sasl_keys_are_recognised() {
        assert!(is_listener_sasl_key(
            "listener.name.sasl_ssl.sasl.enabled.mechanisms"
        ));
        assert!(is_listener_sasl_key(
            "listener.name.sasl_ssl.plain.sasl.jaas.config"
        ));
        assert!(is_listener_sasl_key(
            "listener.name.x.scram-sha-256.connections.max.reauth.ms"
        ));
        assert!(!is_listener_sasl_key("listener.name.x.made.up"));
        assert!(is_secret_key("listener.name.x.plain.sasl.jaas.config"));
    }
}
