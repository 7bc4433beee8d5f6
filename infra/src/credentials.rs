//! Secrets kept beside the event log and never in it (docs/personal-data.md): users'
//! password hashes, and the hashes of personal access tokens.
//!
//! Each is written by the same statement (PostgreSQL) or transaction (SQLite) as the
//! event that records it — a user created, a password changed, a token issued — so
//! neither is ever stored without the other.

use std::fmt;

use uuid::Uuid;

use crate::db::Database;
use crate::on_database;

/// An argon2id PHC string. Kept out of `Debug` output so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(pub String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A user's password hash, to be stored with the events of one append.
#[derive(Debug, Clone)]
pub struct Credential {
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub password_hash: PasswordHash,
}

/// The hash of a personal access token's secret (SHA-256, hex): the secret is random and
/// long, so a fast hash suffices. Kept out of `Debug` output all the same.
#[derive(Clone)]
pub struct TokenSecret {
    pub token_id: Uuid,
    pub organization_id: Uuid,
    pub secret_hash: String,
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSecret")
            .field("token_id", &self.token_id)
            .finish_non_exhaustive()
    }
}

/// A secret to store with the events of one append, in the same transaction.
#[derive(Debug, Clone)]
pub enum Companion {
    Password(Credential),
    Token(TokenSecret),
}

/// The password hash of `user_id`, if one is stored.
pub async fn password_hash(
    db: &Database,
    user_id: Uuid,
) -> Result<Option<PasswordHash>, sqlx::Error> {
    let hash: Option<String> = on_database!(db, |pool| {
        sqlx::query_scalar("SELECT password_hash FROM credentials WHERE user_id = $1")
            .bind(user_id.to_string())
            .fetch_optional(pool)
            .await?
    });
    Ok(hash.map(PasswordHash))
}

/// When `user_id`'s password was last set, if they have one.
pub async fn password_set_at(
    db: &Database,
    user_id: Uuid,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, sqlx::Error> {
    let at = on_database!(db, |pool| {
        sqlx::query_scalar("SELECT updated_at FROM credentials WHERE user_id = $1")
            .bind(user_id.to_string())
            .fetch_optional(pool)
            .await?
    });
    Ok(at)
}

/// A token's organization and secret hash, if the token was ever issued.
pub async fn token_secret(
    db: &Database,
    token_id: Uuid,
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    let row: Option<(String, String)> = on_database!(db, |pool| {
        sqlx::query_as(
            "SELECT organization_id, secret_hash FROM api_token_secrets WHERE token_id = $1",
        )
        .bind(token_id.to_string())
        .fetch_optional(pool)
        .await?
    });
    Ok(row.and_then(|(organization, hash)| Some((Uuid::parse_str(&organization).ok()?, hash))))
}

/// Records that a token was used now (operational data, not history).
pub async fn token_used(db: &Database, token_id: Uuid) -> Result<(), sqlx::Error> {
    let now = chrono::Utc::now();
    crate::on_writer!(db, |pool| {
        sqlx::query("UPDATE api_token_secrets SET last_used_at = $2 WHERE token_id = $1")
            .bind(token_id.to_string())
            .bind(now)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// When each of an organization's tokens was last used, by token id.
pub async fn tokens_last_used(
    db: &Database,
    organization_id: Uuid,
) -> Result<std::collections::HashMap<Uuid, chrono::DateTime<chrono::Utc>>, sqlx::Error> {
    let rows: Vec<(String, Option<chrono::DateTime<chrono::Utc>>)> = on_database!(db, |pool| {
        sqlx::query_as(
            "SELECT token_id, last_used_at FROM api_token_secrets WHERE organization_id = $1",
        )
        .bind(organization_id.to_string())
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .filter_map(|(id, at)| Some((Uuid::parse_str(&id).ok()?, at?)))
        .collect())
}
