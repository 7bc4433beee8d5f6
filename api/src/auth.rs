//! Access tokens (JWT, HS256). Passwords belong to the accounts use cases
//! (`expensewise_application::accounts::passwords`).

use std::time::Duration;

use anyhow::Context as _;

use chrono::{DateTime, Utc};
use expensewise_infra::config::Secret;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
}
