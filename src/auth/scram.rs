//! SCRAM credentials (RFC 5802, RFC 7677) as Kafka stores them: per user and mechanism a salt,
//! a stored key, a server key and an iteration count, written
//! `salt=<base64>,stored_key=<base64>,server_key=<base64>,iterations=<n>`. The SASL exchange
//! that checks a client against them lives with the SASL mechanisms.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};

/// Kafka's bounds on the iteration count (`ScramMechanism.minIterations`, and KIP-554's upper
/// bound for AlterUserScramCredentials).
pub const MIN_ITERATIONS: u32 = 4096;
pub const MAX_ITERATIONS: u32 = 16384;

/// A SCRAM mechanism Kafka supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name, which is also the config key the credential is stored under.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The KIP-554 wire code (DescribeUserScramCredentials / AlterUserScramCredentials).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.code() == code)
    }

    fn hmac_algorithm(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2_algorithm(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    /// The hash output length in bytes.
    pub fn hash_len(self) -> usize {
        self.digest_algorithm().output_len()
    }

    /// `HMAC(key, data)`.
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let key = hmac::Key::new(self.hmac_algorithm(), key);
        hmac::sign(&key, data).as_ref().to_vec()
    }

    /// `H(data)`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_algorithm(), data)
            .as_ref()
            .to_vec()
    }

    /// `Hi(password, salt, iterations)`: PBKDF2 with this mechanism's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0; self.hash_len()];
        let rounds =
            std::num::NonZeroU32::new(iterations.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
        pbkdf2::derive(self.pbkdf2_algorithm(), rounds, salt, password, &mut out);
        out
    }
}

impl std::fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One user's credential for one mechanism: what the broker keeps instead of the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys stay out of logs.
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Why a stored credential string could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid SCRAM credential: {0}")]
pub struct CredentialFormatError(String);

impl ScramCredential {
    /// The credential for a salted password (what AlterUserScramCredentials carries).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// The credential for a password with a fresh random salt.
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        iterations: u32,
    ) -> Result<ScramCredential, ring::error::Unspecified> {
        let salt = random_bytes(32)?;
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        Ok(ScramCredential::from_salted_password(
            mechanism, salt, &salted, iterations,
        ))
    }

    /// Kafka's stored form.
    pub fn to_stored(&self) -> String {
        format!(
            "salt={},stored_key={},server_key={},iterations={}",
            BASE64.encode(&self.salt),
            BASE64.encode(&self.stored_key),
            BASE64.encode(&self.server_key),
            self.iterations
        )
    }

    /// Reads Kafka's stored form.
    pub fn parse(stored: &str) -> Result<ScramCredential, CredentialFormatError> {
        let mut salt = None;
        let mut stored_key = None;
        let mut server_key = None;
        let mut iterations = None;
        for part in stored.split(',') {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| CredentialFormatError(format!("`{part}` is not key=value")))?;
            let decode = |v: &str| {
                BASE64
                    .decode(v)
                    .map_err(|e| CredentialFormatError(format!("{key}: {e}")))
            };
            match key {
                "salt" => salt = Some(decode(value)?),
                "stored_key" => stored_key = Some(decode(value)?),
                "server_key" => server_key = Some(decode(value)?),
                "iterations" => {
                    iterations =
                        Some(value.parse::<u32>().map_err(|e| {
                            CredentialFormatError(format!("iterations `{value}`: {e}"))
                        })?)
                }
                _ => {}
            }
        }
        let missing = |k: &str| CredentialFormatError(format!("{k} is missing"));
        Ok(ScramCredential {
            salt: salt.ok_or_else(|| missing("salt"))?,
            stored_key: stored_key.ok_or_else(|| missing("stored_key"))?,
            server_key: server_key.ok_or_else(|| missing("server_key"))?,
            iterations: iterations.ok_or_else(|| missing("iterations"))?,
        })
    }
}

/// `n` bytes from the system's secure random source.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, ring::error::Unspecified> {
    use ring::rand::SecureRandom;
    let mut out = vec![0; n];
    ring::rand::SystemRandom::new().fill(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example: user, password "pencil", salt and 4096 iterations give
    /// the server signature the RFC shows, so the derived keys are right.
    #[test]
    fn rfc7677_keys() {
        let m = ScramMechanism::Sha256;
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let cred = ScramCredential::from_salted_password(m, salt, &salted, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_signature = m.hmac(&cred.server_key, auth_message.as_bytes());
        assert_eq!(
            BASE64.encode(server_signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn stored_form_round_trips() {
        for m in ScramMechanism::ALL {
            let cred = ScramCredential::from_password(m, "secret", 4096).unwrap();
            assert_eq!(cred.salt.len(), 32);
            assert_eq!(cred.stored_key.len(), m.hash_len());
            let stored = cred.to_stored();
            assert!(stored.starts_with("salt=") && stored.ends_with(",iterations=4096"));
            assert_eq!(ScramCredential::parse(&stored), Ok(cred));
        }
    }

    #[test]
    fn bad_stored_forms_are_errors() {
        for bad in [
            "",
            "salt=AAAA",
            "salt=!!,stored_key=AA==,server_key=AA==,iterations=1",
            "x",
        ] {
            assert!(ScramCredential::parse(bad).is_err(), "{bad}");
        }
    }
}
