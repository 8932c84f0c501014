//! The client side of PLAIN and SCRAM, for the broker's tests and for brokers that authenticate
//! to each other: the tokens a Kafka client sends, and the checks it makes on the server's.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::scram::{encode_username, new_nonce};
use crate::auth::scram::{ScramMechanism, MIN_ITERATIONS};

/// Why a client exchange cannot go on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientError {
    #[error("invalid server message: {0}")]
    Invalid(&'static str),
    #[error("the server's nonce does not extend the client's")]
    Nonce,
    #[error("iteration count {0} below the minimum {MIN_ITERATIONS}")]
    Iterations(u32),
    #[error("the server refused: {0}")]
    ServerError(String),
    #[error("the server's signature does not verify")]
    ServerSignature,
    #[error("no random source")]
    Random,
    #[error("out of order: {0}")]
    Order(&'static str),
}

/// The PLAIN token `authzid NUL user NUL password`.
pub fn plain_token(authzid: &str, user: &str, password: &str) -> Vec<u8> {
    format!("{authzid}\0{user}\0{password}").into_bytes()
}

/// One SCRAM exchange as a client: [`first_message`](Self::first_message), then
/// [`final_message`](Self::final_message) with the server's challenge, then
/// [`verify_server_final`](Self::verify_server_final).
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    client_first_bare: String,
    nonce: String,
    /// The server signature expected in the server-final message.
    expected_signature: Option<Vec<u8>>,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    pub fn new(
        mechanism: ScramMechanism,
        user: &str,
        password: &str,
    ) -> Result<ScramClient, ClientError> {
        let nonce = new_nonce().map_err(|_| ClientError::Random)?;
        Ok(ScramClient {
            mechanism,
            password: password.to_string(),
            client_first_bare: format!("n={},r={nonce}", encode_username(user)),
            nonce,
            expected_signature: None,
        })
    }

    /// The client-first message (no channel binding, no authorization id).
    pub fn first_message(&mut self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// The client-final message answering the server-first message.
    pub fn final_message(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ClientError> {
        let text =
            std::str::from_utf8(server_first).map_err(|_| ClientError::Invalid("not UTF-8"))?;
        let mut fields = text.split(',');
        let mut field = |prefix: &'static str| {
            fields
                .next()
                .and_then(|f| f.strip_prefix(prefix))
                .ok_or(ClientError::Invalid(prefix))
        };
        let nonce = field("r=")?;
        let salt = BASE64
            .decode(field("s=")?)
            .map_err(|_| ClientError::Invalid("s="))?;
        let iterations: u32 = field("i=")?
            .parse()
            .map_err(|_| ClientError::Invalid("i="))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ClientError::Nonce);
        }
        if iterations < MIN_ITERATIONS {
            return Err(ClientError::Iterations(iterations));
        }
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let client_key = m.hmac(&salted, b"Client Key");
        let signature = m.hmac(&m.hash(&client_key), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        self.expected_signature = Some(m.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message (`v=<signature>`, or `e=<error>`).
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ClientError> {
        let expected = self
            .expected_signature
            .as_ref()
            .ok_or(ClientError::Order("no client-final message sent"))?;
        let text =
            std::str::from_utf8(server_final).map_err(|_| ClientError::Invalid("not UTF-8"))?;
        if let Some(error) = text.strip_prefix("e=") {
            return Err(ClientError::ServerError(error.to_string()));
        }
        let signature = text
            .strip_prefix("v=")
            .and_then(|v| BASE64.decode(v).ok())
            .ok_or(ClientError::Invalid("v="))?;
        if super::constant_time_eq(&signature, expected) {
            Ok(())
        } else {
            Err(ClientError::ServerSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_refuses_a_bad_server() {
        let mut c = ScramClient::new(ScramMechanism::Sha256, "u", "p").unwrap();
        c.first_message();
        assert_eq!(
            c.final_message(b"r=someone-else,s=AAAA,i=4096"),
            Err(ClientError::Nonce)
        );
        let nonce = c.nonce.clone();
        assert_eq!(
            c.final_message(format!("r={nonce}x,s=AAAA,i=10").as_bytes()),
            Err(ClientError::Iterations(10))
        );
        assert!(
            c.verify_server_final(b"v=AAAA").is_err(),
            "nothing sent yet"
        );
        c.final_message(format!("r={nonce}x,s=AAAA,i=4096").as_bytes())
            .unwrap();
        assert_eq!(
            c.verify_server_final(b"v=AAAA"),
            Err(ClientError::ServerSignature)
        );
        assert_eq!(
            c.verify_server_final(b"e=invalid-proof"),
            Err(ClientError::ServerError("invalid-proof".into()))
        );
    }
}
