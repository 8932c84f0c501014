//! TLS settings of an SSL listener, read from Kafka's `ssl.*` keys with the listener-prefixed
//! form (`listener.name.<listener in lower case>.ssl.*`) taking precedence. Only names, paths
//! and passwords live here: files are read when the listener is bound (`server::tls`). Every
//! error names the key at fault; passwords never show in `Debug`.

use std::collections::BTreeMap;

use regex::Regex;

use super::def::InvalidValue;

/// A password or inline key: compared and used, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the code that opens a keystore.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[hidden]")
    }
}

/// `ssl.keystore.type` / `ssl.truststore.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreType {
    /// Kafka's default. A file of this type is read as PKCS12 when it is one (Java does the
    /// same); a real JKS file is refused when the listener is bound.
    Jks,
    Pkcs12,
    Pem,
}

/// `ssl.client.auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// A TLS version of `ssl.enabled.protocols`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// Where the listener's certificate and key come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyStore {
    /// `ssl.keystore.location` (PKCS12, JKS or PEM by `ssl.keystore.type`).
    File {
        kind: StoreType,
        location: String,
        password: Option<Secret>,
        key_password: Option<Secret>,
    },
    /// KIP-651: `ssl.keystore.certificate.chain` and `ssl.keystore.key` given inline (PEM).
    Inline {
        certificate_chain: Secret,
        key: Secret,
        key_password: Option<Secret>,
    },
}

/// The certificates client certificates are checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustStore {
    File {
        kind: StoreType,
        location: String,
        password: Option<Secret>,
    },
    /// `ssl.truststore.certificates` (PEM, inline).
    Inline(Secret),
}

/// The TLS settings of one SSL listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SslConfig {
    pub keystore: KeyStore,
    pub truststore: Option<TrustStore>,
    pub client_auth: ClientAuth,
    pub enabled_protocols: Vec<TlsVersion>,
    /// Java/IANA names (`TLS_AES_128_GCM_SHA256`); empty means every suite rustls offers.
    pub cipher_suites: Vec<String>,
    pub principal_rules: PrincipalRules,
    /// `ssl.endpoint.identification.algorithm`: `https` (Kafka's default) checks that a peer's
    /// certificate names the host dialled; empty turns the check off. Used where this broker is
    /// the client (the inter-broker listener).
    pub verify_hostname: bool,
}

/// The cipher suites rustls (with ring) speaks, by the names Java and IANA give them.
pub const KNOWN_CIPHER_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> InvalidValue {
    InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// The keys of one listener: the prefixed key wins over the plain one. Values are trimmed;
/// empty values count as unset.
struct Keys<'a> {
    effective: &'a BTreeMap<String, String>,
    prefix: String,
}

impl Keys<'_> {
    /// The value of `key` and the exact key it came from (for error messages).
    fn get(&self, key: &str) -> Option<(String, String)> {
        let prefixed = format!("{}{key}", self.prefix);
        [prefixed, key.to_string()].into_iter().find_map(|k| {
            let v = self.effective.get(&k)?.trim().to_string();
            (!v.is_empty()).then_some((k, v))
        })
    }

    /// Like [`Keys::get`], but an empty value counts as set (Kafka's way to turn some checks
    /// off).
    fn get_raw(&self, key: &str) -> Option<(String, String)> {
        let prefixed = format!("{}{key}", self.prefix);
        [prefixed, key.to_string()]
            .into_iter()
            .find_map(|k| Some((k.clone(), self.effective.get(&k)?.trim().to_string())))
    }

    fn secret(&self, key: &str) -> Option<Secret> {
        self.get(key).map(|(_, v)| Secret(v))
    }
}

/// Reads the TLS settings of the SSL listener `listener` (upper case, as listeners are
/// normalised) from the effective broker keys.
pub fn resolve(
    effective: &BTreeMap<String, String>,
    listener: &str,
) -> Result<SslConfig, InvalidValue> {
    let keys = Keys {
        effective,
        prefix: format!("listener.name.{}.", listener.to_ascii_lowercase()),
    };
    let client_auth = match keys.get("ssl.client.auth") {
        None => ClientAuth::None,
        Some((k, v)) => match v.to_ascii_lowercase().as_str() {
            "none" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            _ => return Err(invalid(&k, &v, "must be one of none, requested, required")),
        },
    };
    let truststore = truststore(&keys)?;
    if client_auth != ClientAuth::None && truststore.is_none() {
        return Err(invalid(
            "ssl.truststore.location",
            "",
            format!(
                "listener {listener}: ssl.client.auth is not none, so a truststore is needed to \
                 check client certificates"
            ),
        ));
    }
    Ok(SslConfig {
        keystore: keystore(&keys, listener)?,
        truststore,
        client_auth,
        enabled_protocols: enabled_protocols(&keys)?,
        cipher_suites: cipher_suites(&keys)?,
        principal_rules: match keys.get("ssl.principal.mapping.rules") {
            None => PrincipalRules::default(),
            Some((k, v)) => PrincipalRules::parse(&v).map_err(|reason| invalid(&k, &v, reason))?,
        },
        verify_hostname: match keys.get_raw("ssl.endpoint.identification.algorithm") {
            None => true,
            Some((_, v)) if v.is_empty() => false,
            Some((_, v)) if v.eq_ignore_ascii_case("https") => true,
            Some((k, v)) => return Err(invalid(&k, &v, "must be https or empty")),
        },
    })
}

fn store_type(keys: &Keys<'_>, key: &str) -> Result<StoreType, InvalidValue> {
    match keys.get(key) {
        None => Ok(StoreType::Jks),
        Some((k, v)) => match v.to_ascii_uppercase().as_str() {
            "JKS" => Ok(StoreType::Jks),
            "PKCS12" => Ok(StoreType::Pkcs12),
            "PEM" => Ok(StoreType::Pem),
            _ => Err(invalid(
                &k,
                &v,
                "supported types are PKCS12, PEM and JKS (read when the file is PKCS12)",
            )),
        },
    }
}

/// Kafka's rules: a PEM keystore carries no keystore password (only `ssl.key.password`, for an
/// encrypted key); inline PEM needs both the chain and the key, and no location.
fn keystore(keys: &Keys<'_>, listener: &str) -> Result<KeyStore, InvalidValue> {
    let kind = store_type(keys, "ssl.keystore.type")?;
    let location = keys.get("ssl.keystore.location");
    let password = keys.get("ssl.keystore.password");
    let key_password = keys.secret("ssl.key.password");
    let chain = keys.get("ssl.keystore.certificate.chain");
    let key = keys.get("ssl.keystore.key");
    let pem_password = |k: &str| {
        invalid(
            k,
            "[hidden]",
            "a PEM keystore cannot carry a keystore password, only ssl.key.password may be given",
        )
    };
    if chain.is_some() || key.is_some() {
        if kind != StoreType::Pem {
            let (k, _) = chain
                .as_ref()
                .or(key.as_ref())
                .map_or_else(Default::default, Clone::clone);
            return Err(invalid(
                &k,
                "[hidden]",
                "inline certificates and keys need ssl.keystore.type=PEM",
            ));
        }
        if let Some((k, v)) = location {
            return Err(invalid(
                &k,
                &v,
                "not allowed with ssl.keystore.certificate.chain / ssl.keystore.key",
            ));
        }
        if let Some((k, _)) = password {
            return Err(pem_password(&k));
        }
        let (Some((_, chain)), Some((_, key))) = (chain, key) else {
            return Err(invalid(
                "ssl.keystore.key",
                "",
                "ssl.keystore.certificate.chain and ssl.keystore.key must be given together",
            ));
        };
        return Ok(KeyStore::Inline {
            certificate_chain: Secret(chain),
            key: Secret(key),
            key_password,
        });
    }
    let Some((_, location)) = location else {
        return Err(invalid(
            "ssl.keystore.location",
            "",
            format!("listener {listener} uses SSL and needs a keystore (ssl.keystore.location, or PEM inline)"),
        ));
    };
    if kind == StoreType::Pem {
        if let Some((k, _)) = password {
            return Err(pem_password(&k));
        }
    }
    Ok(KeyStore::File {
        kind,
        location,
        password: password.map(|(_, v)| Secret(v)),
        key_password,
    })
}

fn truststore(keys: &Keys<'_>) -> Result<Option<TrustStore>, InvalidValue> {
    let kind = store_type(keys, "ssl.truststore.type")?;
    if let Some((k, _)) = keys.get("ssl.truststore.certificates") {
        if kind != StoreType::Pem {
            return Err(invalid(
                &k,
                "[hidden]",
                "inline certificates need ssl.truststore.type=PEM",
            ));
        }
        return Ok(keys
            .secret("ssl.truststore.certificates")
            .map(TrustStore::Inline));
    }
    Ok(keys
        .get("ssl.truststore.location")
        .map(|(_, location)| TrustStore::File {
            kind,
            location,
            password: keys.secret("ssl.truststore.password"),
        }))
}

fn enabled_protocols(keys: &Keys<'_>) -> Result<Vec<TlsVersion>, InvalidValue> {
    let Some((k, v)) = keys.get("ssl.enabled.protocols") else {
        return Ok(vec![TlsVersion::Tls12, TlsVersion::Tls13]);
    };
    let mut versions = Vec::new();
    for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let version = match name {
            "TLSv1.2" => TlsVersion::Tls12,
            "TLSv1.3" => TlsVersion::Tls13,
            _ => {
                return Err(invalid(
                    &k,
                    &v,
                    format!("{name} is not supported: TLSv1.2 and TLSv1.3 only"),
                ))
            }
        };
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    if versions.is_empty() {
        return Err(invalid(&k, &v, "no protocol enabled"));
    }
    Ok(versions)
}

fn cipher_suites(keys: &Keys<'_>) -> Result<Vec<String>, InvalidValue> {
    let Some((k, v)) = keys.get("ssl.cipher.suites") else {
        return Ok(Vec::new());
    };
    let mut suites = Vec::new();
    for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !KNOWN_CIPHER_SUITES.contains(&name) {
            return Err(invalid(
                &k,
                &v,
                format!(
                    "unknown or unsupported cipher suite {name}; supported: {}",
                    KNOWN_CIPHER_SUITES.join(", ")
                ),
            ));
        }
        suites.push(name.to_string());
    }
    Ok(suites)
}

/// One of `ssl.principal.mapping.rules`.
#[derive(Clone, Debug)]
enum Rule {
    /// The distinguished name unchanged.
    Default,
    /// `RULE:pattern/replacement/[LU]`: applies when the pattern matches the whole name.
    Replace {
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

/// `ssl.principal.mapping.rules`: the first rule whose pattern matches the certificate's
/// distinguished name makes the principal name.
#[derive(Clone, Debug)]
pub struct PrincipalRules(Vec<Rule>);

impl Default for PrincipalRules {
    fn default() -> Self {
        PrincipalRules(vec![Rule::Default])
    }
}

impl PartialEq for PrincipalRules {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self.0.iter().zip(&other.0).all(|pair| match pair {
                (Rule::Default, Rule::Default) => true,
                (
                    Rule::Replace {
                        pattern: a,
                        replacement: ra,
                        case: ca,
                    },
                    Rule::Replace {
                        pattern: b,
                        replacement: rb,
                        case: cb,
                    },
                ) => a.as_str() == b.as_str() && ra == rb && ca == cb,
                _ => false,
            })
    }
}

impl Eq for PrincipalRules {}

impl PrincipalRules {
    /// Parses Kafka's syntax: rules separated by commas (a comma inside a rule's pattern or
    /// replacement belongs to the rule), each `DEFAULT` or `RULE:pattern/replacement/` with an
    /// optional `L` or `U` after the last slash.
    pub fn parse(value: &str) -> Result<PrincipalRules, String> {
        let mut rules = Vec::new();
        let mut rest = value.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) =
                    split_unescaped_slash(after).ok_or("a RULE needs pattern/replacement/")?;
                let (replacement, after) =
                    split_unescaped_slash(after).ok_or("a RULE needs pattern/replacement/")?;
                let (case, after) = match after.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                    _ => (None, after),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("bad pattern {pattern:?}: {e}"))?;
                rules.push(Rule::Replace {
                    pattern,
                    replacement: java_replacement(replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(format!(
                    "expected DEFAULT or RULE:pattern/replacement/[LU] at {rest:?}"
                ));
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(after) => rest = after.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(format!("expected a comma between rules at {rest:?}")),
            }
        }
        if rules.is_empty() {
            return Err("no rule given".into());
        }
        Ok(PrincipalRules(rules))
    }

    /// The principal name for `dn`, or `None` when no rule matches (Kafka then refuses the
    /// connection).
    pub fn apply(&self, dn: &str) -> Option<String> {
        self.0.iter().find_map(|rule| match rule {
            Rule::Default => Some(dn.to_string()),
            Rule::Replace {
                pattern,
                replacement,
                case,
            } => {
                if !pattern.is_match(dn) {
                    return None;
                }
                let name = pattern.replace_all(dn, replacement.as_str()).into_owned();
                Some(match case {
                    Some('L') => name.to_lowercase(),
                    Some('U') => name.to_uppercase(),
                    _ => name,
                })
            }
        })
    }
}

/// Splits at the first slash not preceded by a backslash; escapes are kept for the regex.
fn split_unescaped_slash(s: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '/' if !escaped => return Some((&s[..i], &s[i + 1..])),
            _ => escaped = false,
        }
    }
    None
}

/// Java's replacement syntax (`$1`, `\x` for a literal x) in the regex crate's (`${1}`, `$$`).
fn java_replacement(java: &str) -> String {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<SslConfig, InvalidValue> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(&map, "SSL")
    }

    fn err_key(pairs: &[(&str, &str)]) -> String {
        config(pairs).unwrap_err().key
    }

    #[test]
    fn a_pkcs12_keystore_with_defaults() {
        let c = config(&[
            ("ssl.keystore.type", "PKCS12"),
            ("ssl.keystore.location", "/k.p12"),
            ("ssl.keystore.password", "pw"),
        ])
        .unwrap();
        assert_eq!(
            c.keystore,
            KeyStore::File {
                kind: StoreType::Pkcs12,
                location: "/k.p12".into(),
                password: Some(Secret("pw".into())),
                key_password: None,
            }
        );
        assert_eq!(c.client_auth, ClientAuth::None);
        assert_eq!(
            c.enabled_protocols,
            vec![TlsVersion::Tls12, TlsVersion::Tls13]
        );
        assert!(c.cipher_suites.is_empty());
        assert!(
            !format!("{c:?}").contains("pw\""),
            "passwords never printed: {c:?}"
        );
    }

    #[test]
    fn listener_prefixed_keys_take_precedence() {
        let c = config(&[
            ("ssl.keystore.location", "/plain.p12"),
            ("listener.name.ssl.ssl.keystore.location", "/prefixed.p12"),
            ("listener.name.other.ssl.client.auth", "required"),
        ])
        .unwrap();
        let KeyStore::File { location, kind, .. } = c.keystore else {
            panic!()
        };
        assert_eq!((location.as_str(), kind), ("/prefixed.p12", StoreType::Jks));
        assert_eq!(
            c.client_auth,
            ClientAuth::None,
            "another listener's key is not ours"
        );
    }

    #[test]
    fn pem_keystores_follow_kafkas_password_rules() {
        let inline = [
            ("ssl.keystore.type", "PEM"),
            (
                "ssl.keystore.certificate.chain",
                "-----BEGIN CERTIFICATE-----",
            ),
            ("ssl.keystore.key", "-----BEGIN PRIVATE KEY-----"),
        ];
        assert!(matches!(
            config(&inline).unwrap().keystore,
            KeyStore::Inline { .. }
        ));
        let mut with_password = inline.to_vec();
        with_password.push(("ssl.keystore.password", "pw"));
        assert_eq!(err_key(&with_password), "ssl.keystore.password");
        let mut with_location = inline.to_vec();
        with_location.push(("ssl.keystore.location", "/k.pem"));
        assert_eq!(err_key(&with_location), "ssl.keystore.location");
        assert_eq!(err_key(&inline[..2]), "ssl.keystore.key");
        assert_eq!(
            err_key(&[
                ("ssl.keystore.certificate.chain", "x"),
                ("ssl.keystore.key", "y")
            ]),
            "ssl.keystore.certificate.chain",
            "inline needs type PEM"
        );
        assert_eq!(
            err_key(&[
                ("ssl.keystore.type", "PEM"),
                ("ssl.keystore.location", "/k.pem"),
                ("ssl.keystore.password", "pw"),
            ]),
            "ssl.keystore.password"
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let base = ("ssl.keystore.location", "/k.p12");
        assert_eq!(err_key(&[]), "ssl.keystore.location");
        assert_eq!(
            err_key(&[base, ("ssl.keystore.type", "BKS")]),
            "ssl.keystore.type"
        );
        assert_eq!(
            err_key(&[base, ("ssl.client.auth", "maybe")]),
            "ssl.client.auth"
        );
        assert_eq!(
            err_key(&[base, ("ssl.client.auth", "required")]),
            "ssl.truststore.location"
        );
        assert_eq!(
            err_key(&[base, ("listener.name.ssl.ssl.enabled.protocols", "TLSv1.1")]),
            "listener.name.ssl.ssl.enabled.protocols"
        );
        assert_eq!(
            err_key(&[base, ("ssl.cipher.suites", "TLS_RSA_WITH_RC4_128_MD5")]),
            "ssl.cipher.suites"
        );
        assert_eq!(
            err_key(&[base, ("ssl.principal.mapping.rules", "RULE:x")]),
            "ssl.principal.mapping.rules"
        );
        let c = config(&[
            base,
            ("ssl.enabled.protocols", "TLSv1.3"),
            (
                "ssl.cipher.suites",
                "TLS_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            ),
            ("ssl.client.auth", "REQUESTED"),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", "/ca.pem"),
        ])
        .unwrap();
        assert_eq!(c.enabled_protocols, vec![TlsVersion::Tls13]);
        assert_eq!(c.cipher_suites.len(), 2);
        assert_eq!(c.client_auth, ClientAuth::Requested);
    }

    #[test]
    fn mapping_rules_as_kafka() {
        let rules = PrincipalRules::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, DEFAULT",
        )
        .unwrap();
        assert_eq!(
            rules
                .apply("CN=kafka-1,OU=ServiceUsers,O=Acme,C=US")
                .unwrap(),
            "kafka-1"
        );
        assert_eq!(
            rules
                .apply("CN=Duke,OU=JavaSoft,O=Sun,L=Palo Alto,ST=CA,C=US")
                .unwrap(),
            "duke@javasoft"
        );
        assert_eq!(
            rules.apply("CN=other,O=Acme").unwrap(),
            "CN=other,O=Acme",
            "DEFAULT"
        );
        let upper = PrincipalRules::parse("RULE:^CN=([a-z]+),.*$/$1/U").unwrap();
        assert_eq!(upper.apply("CN=client,OU=eng").unwrap(), "CLIENT");
        assert_eq!(upper.apply("OU=eng").as_deref(), None, "no rule matched");
        let slash = PrincipalRules::parse(r"RULE:^CN=(.*)$/user\/$1/").unwrap();
        assert_eq!(slash.apply("CN=a").unwrap(), "user/a");
        assert_eq!(
            PrincipalRules::default().apply("CN=a,O=b").unwrap(),
            "CN=a,O=b"
        );
        assert!(PrincipalRules::parse("RULE:(/x/ junk").is_err());
        assert!(PrincipalRules::parse("NOPE").is_err());
    }
}
