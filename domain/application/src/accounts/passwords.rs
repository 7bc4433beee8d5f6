//! Passwords: the policy, and argon2id hashes.

use std::sync::OnceLock;

use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use expensewise_domain::FieldError;
use expensewise_infra::credentials::PasswordHash;

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Hashing cost grows with input; nobody's real password is longer than this.
pub const MAX_PASSWORD_CHARS: usize = 256;

pub fn check_password_policy(password: &str) -> Result<(), FieldError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(FieldError::new(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(FieldError::new(
            "password",
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Hashes on the blocking pool: argon2id is deliberately slow and must not stall the
/// request workers.
pub async fn hash_password(password: String) -> anyhow::Result<PasswordHash> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| PasswordHash(h.to_string()))
            .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
    })
    .await
    .context("the hashing task panicked")?
}

/// Checks `password` against `hash`. With `None` it checks against a fixed hash, so that
/// an unknown e-mail address costs as much time as a wrong password.
pub async fn verify_password(password: String, hash: Option<PasswordHash>) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let stored = match hash {
            Some(h) => h.0,
            None => decoy_hash().to_string(),
        };
        let parsed = argon2::PasswordHash::new(&stored)
            .map_err(|e| anyhow::anyhow!("a stored password hash is malformed: {e}"))?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await
    .context("the verifying task panicked")?
}

fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"decoy password never used", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.0.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!verify_password("wrong horse".into(), Some(hash))
            .await
            .unwrap());
        assert!(!verify_password("decoy password never used".into(), None)
            .await
            .unwrap());
    }

    #[test]
    fn passwords_must_be_of_reasonable_length() {
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy(&"x".repeat(257)).is_err());
        assert!(check_password_policy("long enough").is_ok());
    }
}
