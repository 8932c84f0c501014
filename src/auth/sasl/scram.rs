//! SASL/SCRAM-SHA-256 and -512 on the server (RFC 5802, RFC 7677), as Kafka's
//! `ScramSaslServer`: no channel binding (`n,,`, `c=biws`), user names with `=2C` / `=3D`
//! escapes, the credential looked up when the client-first message arrives. As in Kafka an
//! unknown user fails right there (no server-first message) with the same generic message a
//! wrong password gets; the proof is compared in constant time.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::{constant_time_eq, AuthFailure, CredentialStore, Progress};
use crate::auth::scram::{random_bytes, ScramCredential, ScramMechanism, MIN_ITERATIONS};

/// The exchange's state.
#[derive(Debug)]
enum State {
    ClientFirst,
    ClientFinal(Box<Pending>),
    Done,
}

/// What the server keeps between the client's two messages.
struct Pending {
    user: String,
    /// The GS2 header the client sent (`n,,` or `n,a=<authzid>,`), bound by `c=`.
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    credential: ScramCredential,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The server side of one SCRAM exchange.
#[derive(Debug)]
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
    /// Fixed server nonce (tests with RFC vectors); random otherwise.
    nonce: Option<String>,
}

fn credentials(reason: impl Into<String>) -> AuthFailure {
    AuthFailure::Credentials(reason.into())
}

/// Decodes a SCRAM user name (`=2C` is `,`, `=3D` is `=`; any other `=` is invalid).
pub fn decode_username(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// Encodes a user name for a SCRAM message.
pub fn encode_username(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// A nonce: letters and digits only (as Kafka's, some clients mishandle other characters).
pub(crate) fn new_nonce() -> Result<String, AuthFailure> {
    random_bytes(24)
        .map(|b| b.iter().map(|x| format!("{x:02x}")).collect())
        .map_err(|_| credentials("no random source for the nonce"))
}

fn is_printable_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism) -> ScramServer {
        ScramServer {
            mechanism,
            state: State::ClientFirst,
            nonce: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn with_nonce(mechanism: ScramMechanism, nonce: &str) -> ScramServer {
        ScramServer {
            nonce: Some(nonce.to_string()),
            ..ScramServer::new(mechanism)
        }
    }

    /// Evaluates the client's next message.
    pub fn step(
        &mut self,
        token: &[u8],
        store: &dyn CredentialStore,
    ) -> Result<Progress, AuthFailure> {
        let message =
            std::str::from_utf8(token).map_err(|_| credentials("SCRAM message is not UTF-8"))?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::ClientFirst => {
                let pending = self.client_first(message, store)?;
                let challenge = pending.server_first.clone().into_bytes();
                self.state = State::ClientFinal(Box::new(pending));
                Ok(Progress::Challenge(challenge))
            }
            State::ClientFinal(pending) => self.client_final(message, &pending),
            State::Done => Err(credentials("SCRAM exchange already finished")),
        }
    }

    fn client_first(
        &self,
        message: &str,
        store: &dyn CredentialStore,
    ) -> Result<Pending, AuthFailure> {
        let bad = || credentials("Invalid SCRAM client first message format");
        // GS2 header: no channel binding (`n`), an optional authorization id.
        let rest = message.strip_prefix("n,").ok_or_else(bad)?;
        let (authzid, bare) = rest.split_once(',').ok_or_else(bad)?;
        let authzid = match authzid {
            "" => None,
            a => Some(
                a.strip_prefix("a=")
                    .and_then(decode_username)
                    .ok_or_else(bad)?,
            ),
        };
        let mut fields = bare.split(',');
        let name = fields
            .next()
            .and_then(|f| f.strip_prefix("n="))
            .filter(|n| !n.is_empty())
            .ok_or_else(bad)?;
        let client_nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .filter(|n| is_printable_nonce(n))
            .ok_or_else(bad)?;
        for extension in fields {
            let (key, value) = extension.split_once('=').ok_or_else(bad)?;
            if key.len() != 1 || key == "m" {
                return Err(bad());
            }
            if key.eq_ignore_ascii_case("tokenauth") && value.eq_ignore_ascii_case("true") {
                return Err(credentials("delegation tokens are not supported"));
            }
        }
        let user = decode_username(name).ok_or_else(bad)?;
        let credential = store
            .scram_credential(self.mechanism, &user)
            .ok_or_else(|| credentials(format!("no {} credential for the user", self.mechanism)))?;
        if authzid.as_ref().is_some_and(|a| *a != user) {
            return Err(AuthFailure::Refused(
                "Authentication failed: Client requested an authorization id that is different from username"
                    .into(),
            ));
        }
        if credential.iterations < MIN_ITERATIONS {
            return Err(credentials(format!(
                "Iterations {} is less than the minimum {MIN_ITERATIONS} for {}",
                credential.iterations, self.mechanism
            )));
        }
        let server_nonce = match &self.nonce {
            Some(n) => n.clone(),
            None => new_nonce()?,
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let gs2_len = message.len() - bare.len();
        Ok(Pending {
            user,
            gs2_header: message[..gs2_len].to_string(),
            client_first_bare: bare.to_string(),
            server_first,
            nonce,
            credential,
        })
    }

    fn client_final(&self, message: &str, pending: &Pending) -> Result<Progress, AuthFailure> {
        let bad = || credentials("Invalid SCRAM client final message format");
        let (without_proof, proof) = message.rsplit_once(",p=").ok_or_else(bad)?;
        let mut fields = without_proof.split(',');
        let binding = fields
            .next()
            .and_then(|f| f.strip_prefix("c="))
            .ok_or_else(bad)?;
        if BASE64.decode(binding).ok().as_deref() != Some(pending.gs2_header.as_bytes()) {
            return Err(credentials(
                "SCRAM channel binding does not match the GS2 header",
            ));
        }
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or_else(bad)?;
        // Kafka checks that the nonce ends with the server-first nonce, not that it equals it:
        // librdkafka (2.0 at least) repeats its client nonce in front. The proof covers it.
        if !nonce.ends_with(&pending.nonce) {
            return Err(credentials(
                "Invalid client nonce in the final client message.",
            ));
        }
        let proof = BASE64.decode(proof).map_err(|_| bad())?;
        let auth_message = format!(
            "{},{},{without_proof}",
            pending.client_first_bare, pending.server_first
        );
        let m = self.mechanism;
        let stored_key = &pending.credential.stored_key;
        let client_signature = m.hmac(stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(credentials("Invalid client credentials"));
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if !constant_time_eq(&m.hash(&client_key), stored_key) {
            return Err(credentials("Invalid client credentials"));
        }
        let server_signature = m.hmac(&pending.credential.server_key, auth_message.as_bytes());
        Ok(Progress::Complete {
            user: pending.user.clone(),
            reply: format!("v={}", BASE64.encode(server_signature)).into_bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sasl::client::ScramClient;
    use crate::auth::sasl::tests::Store;

    /// RFC 7677 section 3: the SCRAM-SHA-256 exchange for user "user", password "pencil".
    #[test]
    fn rfc7677_exchange() {
        let m = ScramMechanism::Sha256;
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let store = Store::with_scram(
            m,
            "user",
            ScramCredential::from_salted_password(m, salt, &salted, 4096),
        );
        let mut server = ScramServer::with_nonce(m, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        let first = server
            .step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &store)
            .unwrap();
        assert_eq!(
            first,
            Progress::Challenge(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
                    .to_vec()
            )
        );
        let last = server
            .step(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                &store,
            )
            .unwrap();
        assert_eq!(
            last,
            Progress::Complete {
                user: "user".into(),
                reply: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec()
            }
        );
    }

    fn exchange(
        store: &Store,
        m: ScramMechanism,
        user: &str,
        password: &str,
    ) -> Result<String, AuthFailure> {
        let mut client = ScramClient::new(m, user, password).unwrap();
        let mut server = ScramServer::new(m);
        let Progress::Challenge(server_first) = server.step(&client.first_message(), store)? else {
            panic!("SCRAM completes in two steps");
        };
        let client_final = client.final_message(&server_first).unwrap();
        let Progress::Complete { user, reply } = server.step(&client_final, store)? else {
            panic!("SCRAM completes in two steps");
        };
        client.verify_server_final(&reply).unwrap();
        Ok(user)
    }

    #[test]
    fn round_trips_and_wrong_passwords() {
        for m in ScramMechanism::ALL {
            let cred = ScramCredential::from_password(m, "s3cret", 4096).unwrap();
            let store = Store::with_scram(m, "a,b=c", cred);
            assert_eq!(exchange(&store, m, "a,b=c", "s3cret"), Ok("a,b=c".into()));
            assert!(matches!(
                exchange(&store, m, "a,b=c", "wrong"),
                Err(AuthFailure::Credentials(_))
            ));
            // An unknown user fails at the first message, the same kind of failure.
            let mut client = ScramClient::new(m, "nobody", "s3cret").unwrap();
            assert!(matches!(
                ScramServer::new(m).step(&client.first_message(), &store),
                Err(AuthFailure::Credentials(_))
            ));
        }
    }

    #[test]
    fn tampered_messages_fail() {
        let m = ScramMechanism::Sha512;
        let store = Store::with_scram(
            m,
            "u",
            ScramCredential::from_password(m, "p", 4096).unwrap(),
        );
        let mut client = ScramClient::new(m, "u", "p").unwrap();
        let first = client.first_message();
        let mut server = ScramServer::new(m);
        let Ok(Progress::Challenge(server_first)) = server.step(&first, &store) else {
            panic!()
        };
        let good = String::from_utf8(client.final_message(&server_first).unwrap()).unwrap();
        let tampered = [
            good.replacen("c=biws", "c=eSws", 1),
            good.replacen(",r=", ",r=x", 1),
            good.replacen(",p=", "x,p=", 1),
            {
                let (head, proof) = good.rsplit_once(",p=").unwrap();
                let mut p = BASE64.decode(proof).unwrap();
                p[0] ^= 1;
                format!("{head},p={}", BASE64.encode(p))
            },
            good.replacen(",p=", ",q=", 1),
            "garbage".to_string(),
        ];
        for t in tampered {
            let mut s = ScramServer::new(m);
            s.step(&first, &store).unwrap();
            assert!(s.step(t.as_bytes(), &store).is_err(), "{t}");
        }
        for bad_first in [
            &b"y,,n=u,r=abc"[..],
            b"p=tls-unique,,n=u,r=abc",
            b"n,,n=u",
            b"n,,n=,r=abc",
            b"n,,n=u=2X,r=abc",
            b"n,,n=u,r=abc,m=x",
            b"n,a=v,n=u,r=abc",
            b"\xff",
        ] {
            assert!(
                ScramServer::new(m).step(bad_first, &store).is_err(),
                "{bad_first:?}"
            );
        }
        assert!(matches!(
            ScramServer::new(m).step(b"n,a=v,n=u,r=abc", &store),
            Err(AuthFailure::Refused(_))
        ));
    }

    #[test]
    fn usernames_escape() {
        assert_eq!(decode_username("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(encode_username("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(decode_username("a=2"), None);
        assert_eq!(decode_username("a=41"), None);
    }
}
