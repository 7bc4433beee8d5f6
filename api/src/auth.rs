//! Who a request speaks for: a signed-in user's access token (JWT, HS256), or a personal
//! access token of a program (`expensewise_application::accounts::tokens`). Passwords
//! belong to the accounts use cases (`expensewise_application::accounts::passwords`).

use std::time::Duration;

use anyhow::Context as _;

use chrono::{DateTime, Utc};
use expensewise_application::accounts;
use expensewise_infra::config::Secret;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use uuid::Uuid;

/// Who a request's bearer token speaks for.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A user who signed in.
    User(Claims),
    /// A personal access token whose secret matched: its organization says whose it is
    /// and whether it may still be used.
    Token {
        organization_id: Uuid,
        token_id: Uuid,
    },
}

impl Caller {
    /// What rate limits and idempotency keys are counted per: the user, or the token.
    pub fn key(&self) -> Uuid {
        match self {
            Caller::User(claims) => claims.sub,
            Caller::Token { token_id, .. } => *token_id,
        }
    }
}

/// A request's token, verified once: the first of the rate limiter, the idempotency
/// middleware and the authentication extractor to need it verifies it and keeps the
/// outcome in the request's extensions for the others.
#[derive(Clone)]
struct VerifiedCaller(Option<Caller>);

/// Who the request's bearer token speaks for, if it carries a genuine one.
pub async fn request_caller(
    app: &crate::state::App,
    parts: &mut axum::http::request::Parts,
) -> anyhow::Result<Option<Caller>> {
    if let Some(VerifiedCaller(caller)) = parts.extensions.get::<VerifiedCaller>() {
        return Ok(caller.clone());
    }
    let caller = match crate::extract::bearer_token(&parts.headers) {
        None => None,
        Some(token) if accounts::tokens::is_token(token) => {
            accounts::tokens::authenticate(&app.store, token)
                .await
                .map_err(|e| anyhow::anyhow!("checking a personal access token failed: {e}"))?
                .map(|(organization_id, token_id)| Caller::Token {
                    organization_id,
                    token_id,
                })
        }
        Some(token) => app.tokens.verify(token).map(Caller::User),
    };
    parts.extensions.insert(VerifiedCaller(caller.clone()));
    Ok(caller)
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

/// Signs sign-in tokens with the current secret, naming it in the header (`kid`), and
/// accepts those of the previous secret too while a rotation is under way (set
/// `JWT_PREVIOUS_SECRET` to the old one, and remove it once `JWT_EXPIRES_IN` has passed).
pub struct Tokens {
    encoding: EncodingKey,
    current: SigningKey,
    previous: Option<SigningKey>,
    validation: Validation,
    lifetime: Duration,
}

struct SigningKey {
    /// Names the secret without revealing it: the start of its SHA-256.
    kid: String,
    decoding: DecodingKey,
}

impl SigningKey {
    fn new(secret: &Secret) -> Self {
        let digest = format!("{:x}", sha2::Sha256::digest(secret.expose().as_bytes()));
        Self {
            kid: digest[..16].to_string(),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
        }
    }
}

impl Tokens {
    pub fn new(secret: &Secret, previous: Option<&Secret>, lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            current: SigningKey::new(secret),
            previous: previous.map(SigningKey::new),
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
        let header = Header {
            kid: Some(self.current.kid.clone()),
            ..Header::new(Algorithm::HS256)
        };
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .context("signing a token failed")?;
        Ok((token, expires_at))
    }

    /// The claims of a valid, unexpired token signed with the current secret or, during
    /// a rotation, the previous one. A token without a `kid` (signed before tokens named
    /// their key) is checked against the current secret.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let kid = jsonwebtoken::decode_header(token).ok()?.kid;
        let key = match kid {
            None => &self.current,
            Some(kid) => [Some(&self.current), self.previous.as_ref()]
                .into_iter()
                .flatten()
                .find(|key| key.kid == kid)?,
        };
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(c: char) -> Secret {
        Secret::new(c.to_string().repeat(32))
    }

    #[test]
    fn tokens_verify_only_with_the_same_secret() {
        let tokens = Tokens::new(&secret('a'), None, Duration::from_secs(60));
        let (token, _) = tokens
            .issue(Uuid::new_v4(), Uuid::new_v4(), "admin")
            .unwrap();
        assert!(tokens.verify(&token).is_some());
        let other = Tokens::new(&secret('b'), None, Duration::from_secs(60));
        assert!(other.verify(&token).is_none());
        assert!(tokens.verify("not.a.token").is_none());
    }

    #[test]
    fn during_a_rotation_tokens_of_both_secrets_verify_and_new_ones_name_the_new_secret() {
        let minute = Duration::from_secs(60);
        let before = Tokens::new(&secret('a'), None, minute);
        let (old, _) = before
            .issue(Uuid::new_v4(), Uuid::new_v4(), "admin")
            .unwrap();
        let rotating = Tokens::new(&secret('b'), Some(&secret('a')), minute);
        let (new, _) = rotating
            .issue(Uuid::new_v4(), Uuid::new_v4(), "admin")
            .unwrap();
        assert!(rotating.verify(&old).is_some());
        assert!(rotating.verify(&new).is_some());
        let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
        assert_ne!(kid(&old), kid(&new));
        assert_eq!(kid(&new).len(), 16, "the start of a digest, not the secret");
        let after = Tokens::new(&secret('b'), None, minute);
        assert!(after.verify(&old).is_none());
        assert!(after.verify(&new).is_some());
        // A token signed before tokens named their key.
        let unnamed = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: Uuid::new_v4(),
                org: Uuid::new_v4(),
                role: "admin".into(),
                iat: Utc::now().timestamp(),
                exp: Utc::now().timestamp() + 60,
                jti: Uuid::new_v4(),
            },
            &EncodingKey::from_secret(secret('b').expose().as_bytes()),
        )
        .unwrap();
        assert!(after.verify(&unnamed).is_some());
    }
}
