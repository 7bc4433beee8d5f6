//! Personal access tokens for programs: issued by a user for themselves, shown once,
//! stored as the hash of their secret (beside the events, never in them), revoked by
//! their owner or an admin.
//!
//! A token reads `ewt_<token id>_<secret>`: the id finds the stored hash in one lookup,
//! and the secret (256 random bits) is what proves the holder. The organization, loaded
//! for every request anyway, says whether the token is still usable and what it may do.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use expensewise_domain::organization::{OrganizationCommand, TokenScope};
use expensewise_domain::{Actor, EventMetadata, FieldError, Organization, Rejection};
use expensewise_infra::credentials::{self, Companion, TokenSecret};
use expensewise_infra::event_store::{Committed, Scope};
use expensewise_infra::EventStore;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::{UseCaseError, UseCaseResult};

const PREFIX: &str = "ewt_";

/// A token just issued: the only time its text is known outside the holder.
pub struct IssuedToken {
    pub token_id: Uuid,
    pub token: String,
    pub committed: Committed<Organization>,
}

/// What the holder asks a new token to be.
pub struct TokenRequest {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Issues `actor` a token of their own.
pub async fn issue_token(
    store: &EventStore,
    scope: &Scope,
    actor: &Actor,
    metadata: &EventMetadata,
    request: TokenRequest,
) -> UseCaseResult<IssuedToken> {
    let mut scopes = BTreeSet::new();
    let mut unknown = Vec::new();
    for name in &request.scopes {
        match TokenScope::parse(name) {
            Some(scope) => {
                scopes.insert(scope);
            }
            None => unknown.push(name.as_str()),
        }
    }
    if !unknown.is_empty() {
        let known: Vec<&str> = TokenScope::ALL.iter().map(|s| s.as_str()).collect();
        return Err(UseCaseError::Rejected(Rejection::Invalid(vec![
            FieldError::new(
                "scopes",
                format!(
                    "unknown scope {}; the scopes are {}",
                    unknown.join(", "),
                    known.join(", ")
                ),
            ),
        ])));
    }
    let token_id = Uuid::new_v4();
    let mut random = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let secret: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let command = OrganizationCommand::IssueToken {
        actor_id: actor.user_id,
        token_id,
        name: request.name,
        scopes,
        expires_at: request.expires_at,
        at: Utc::now(),
    };
    let companion = Companion::Token(TokenSecret {
        token_id,
        organization_id: actor.organization_id,
        secret_hash: digest(&secret),
    });
    let committed = store
        .execute_with::<Organization>(
            scope,
            &actor.organization_id.to_string(),
            command,
            metadata,
            &companion,
        )
        .await?;
    Ok(IssuedToken {
        token_id,
        token: format!("{PREFIX}{}_{secret}", token_id.simple()),
        committed,
    })
}

/// The token's owner, or an admin, revokes it; it stops working on the next request.
pub async fn revoke_token(
    store: &EventStore,
    scope: &Scope,
    actor: &Actor,
    metadata: &EventMetadata,
    token_id: Uuid,
) -> UseCaseResult<Committed<Organization>> {
    let command = OrganizationCommand::RevokeToken {
        actor_id: actor.user_id,
        token_id,
        at: Utc::now(),
    };
    Ok(store
        .execute::<Organization>(scope, &actor.organization_id.to_string(), command, metadata)
        .await?)
}

/// Whether `presented` looks like a personal access token (rather than a sign-in token).
pub fn is_token(presented: &str) -> bool {
    presented.starts_with(PREFIX)
}

/// The organization and id of the token `presented`, if its secret is the one issued.
/// Whether the token may still be used is the organization's to say.
pub async fn authenticate(
    store: &EventStore,
    presented: &str,
) -> UseCaseResult<Option<(Uuid, Uuid)>> {
    let Some((id, secret)) = presented
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('_'))
    else {
        return Ok(None);
    };
    let Ok(token_id) = Uuid::try_parse(id) else {
        return Ok(None);
    };
    let stored = credentials::token_secret(store.database(), token_id)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(stored
        .filter(|(_, hash)| *hash == digest(secret))
        .map(|(organization_id, _)| (organization_id, token_id)))
}

fn digest(secret: &str) -> String {
    format!("{:x}", Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_text_of_the_token_form_is_taken_for_one() {
        assert!(is_token("ewt_0123_abcd"));
        assert!(!is_token("eyJhbGciOiJIUzI1NiJ9.e30.x"));
        assert_eq!(digest("a").len(), 64);
        assert_ne!(digest("a"), digest("b"));
    }
}
