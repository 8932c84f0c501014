//! SASL/PLAIN on the server (RFC 4616, as Kafka's `PlainSaslServer`): one token
//! `authzid NUL user NUL password`; the authorization id must be empty or the user.

use super::{constant_time_eq, AuthFailure, CredentialStore};

/// Checks a PLAIN token; the authenticated user on success.
pub fn authenticate(token: &[u8], store: &dyn CredentialStore) -> Result<String, AuthFailure> {
    let text = std::str::from_utf8(token)
        .map_err(|_| AuthFailure::Credentials("SASL/PLAIN response is not UTF-8".into()))?;
    let parts: Vec<&str> = text.split('\0').collect();
    let [authzid, user, password] = parts[..] else {
        return Err(AuthFailure::Credentials(format!(
            "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
            parts.len()
        )));
    };
    if user.is_empty() {
        return Err(AuthFailure::Refused(
            "Authentication failed: username not specified".into(),
        ));
    }
    if password.is_empty() {
        return Err(AuthFailure::Refused(
            "Authentication failed: password not specified".into(),
        ));
    }
    let known = store.plain_password(user);
    // An unknown user costs the same comparison as a known one.
    let expected = known.unwrap_or("\u{0}unknown-user\u{0}");
    if !(constant_time_eq(expected.as_bytes(), password.as_bytes()) && known.is_some()) {
        return Err(AuthFailure::Refused(
            "Authentication failed: Invalid username or password".into(),
        ));
    }
    if !authzid.is_empty() && authzid != user {
        return Err(AuthFailure::Refused(
            "Authentication failed: Client requested an authorization id that is different from username"
                .into(),
        ));
    }
    Ok(user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sasl::client::plain_token;
    use crate::auth::sasl::tests::Store;

    #[test]
    fn rfc4616_tokens() {
        let store = Store::with_plain("alice", "alice-secret");
        assert_eq!(
            authenticate(&plain_token("", "alice", "alice-secret"), &store),
            Ok("alice".into())
        );
        assert_eq!(
            authenticate(&plain_token("alice", "alice", "alice-secret"), &store),
            Ok("alice".into())
        );
        let refused = |t: Vec<u8>| match authenticate(&t, &store) {
            Err(AuthFailure::Refused(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(refused(plain_token("", "alice", "wrong")).contains("Invalid username or password"));
        assert!(refused(plain_token("", "mallory", "x")).contains("Invalid username or password"));
        assert!(refused(plain_token("bob", "alice", "alice-secret")).contains("authorization id"));
        assert!(refused(plain_token("", "", "x")).contains("username not specified"));
        assert!(refused(plain_token("", "alice", "")).contains("password not specified"));
        for bad in [&b"alice"[..], b"\0alice", b"a\0b\0c\0d", b"\0alice\0\xff"] {
            assert!(authenticate(bad, &store).is_err(), "{bad:?}");
        }
    }
}
