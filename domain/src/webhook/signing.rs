//! Standard Webhooks 1.0 signatures: `webhook-signature` holds, for each secret that
//! signs, `v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`
//! under the secret's bytes; several are separated by spaces (a rotation's overlap).
//! Secrets are written `whsec_` and the base64 of their bytes.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";
/// How many random bytes a new secret has (the specification asks for 24 to 64).
pub const SECRET_BYTES: usize = 32;

/// A signing secret. Kept out of `Debug` output so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> Secret {
        Secret(bytes.to_vec())
    }

    /// Reads a secret as [`Secret::text`] wrote it.
    pub fn parse(text: &str) -> Option<Secret> {
        let bytes = STANDARD.decode(text.strip_prefix(SECRET_PREFIX)?).ok()?;
        (bytes.len() >= 24).then_some(Secret(bytes))
    }

    /// `whsec_…`: what the admin is shown once and gives their receiver.
    pub fn text(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn sign(&self, content: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(content.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header of a message: one signature per secret, in order.
pub fn signature(secrets: &[Secret], id: &str, timestamp: i64, body: &str) -> String {
    let content = format!("{id}.{timestamp}.{body}");
    secrets
        .iter()
        .map(|s| s.sign(&content))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_specification_does() {
        // The example of the Standard Webhooks specification (spec/standard-webhooks.md).
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn several_secrets_sign_side_by_side() {
        let one = Secret::from_bytes([1; SECRET_BYTES]);
        let two = Secret::from_bytes([2; SECRET_BYTES]);
        let both = signature(&[one.clone(), two.clone()], "id", 1, "{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(
            parts,
            [
                signature(&[one], "id", 1, "{}"),
                signature(&[two], "id", 1, "{}")
            ]
        );
        assert_eq!(
            Secret::parse(&Secret::from_bytes([7; SECRET_BYTES]).text()),
            Some(Secret::from_bytes([7; SECRET_BYTES]))
        );
        assert_eq!(Secret::parse("whsec_c2hvcnQ="), None);
        assert_eq!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), None);
    }
}
