//! Passwords (argon2id) and access tokens (JWT, HS256).

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use expensewise_domain::organization::PasswordHash;
use expensewise_domain::FieldError;
use expensewise_infra::config::Secret;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// A request's token, verified once: the first of the rate limiter, the idempotency
/// middleware and the authentication extractor to need it verifies it and keeps the
/// outcome in the request's extensions for the others.
#[derive(Clone)]
struct VerifiedClaims(Option<Claims>);

/// The claims of the request's bearer token, if it carries a valid one.
pub fn request_claims(tokens: &Tokens, parts: &mut axum::http::request::Parts) -> Option<Claims> {
    if let Some(VerifiedClaims(claims)) = parts.extensions.get::<VerifiedClaims>() {
        return claims.clone();
    }
    let claims = crate::extract::bearer_token(&parts.headers).and_then(|t| tokens.verify(t));
    parts.extensions.insert(VerifiedClaims(claims.clone()));
    claims
}

/// What an access token says. The role in it is informational: every request looks the
/// user up again, so a role change or deactivation takes effect at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub org: Uuid,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl Tokens {
    pub fn new(secret: &Secret, lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            lifetime,
        }
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        organization_id: Uuid,
        role: &str,
    ) -> anyhow::Result<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let expires_at = now + chrono::Duration::from_std(self.lifetime)?;
        let claims = Claims {
            sub: user_id,
            org: organization_id,
            role: role.to_string(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            jti: Uuid::new_v4(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context("signing a token failed")?;
        Ok((token, expires_at))
    }

    /// The claims of a valid, unexpired token signed with our secret.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
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
    fn tokens_verify_only_with_the_same_secret() {
        let tokens = Tokens::new(&Secret::new("a".repeat(32)), Duration::from_secs(60));
        let (token, _) = tokens
            .issue(Uuid::new_v4(), Uuid::new_v4(), "admin")
            .unwrap();
        assert!(tokens.verify(&token).is_some());
        let other = Tokens::new(&Secret::new("b".repeat(32)), Duration::from_secs(60));
        assert!(other.verify(&token).is_none());
        assert!(tokens.verify("not.a.token").is_none());
    }

    #[test]
    fn passwords_must_be_of_reasonable_length() {
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy(&"x".repeat(257)).is_err());
        assert!(check_password_policy("long enough").is_ok());
    }
}
