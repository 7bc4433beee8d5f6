//! Password hashes, kept beside the event log and never in it (docs/personal-data.md).
//!
//! A hash is written by the same statement (PostgreSQL) or transaction (SQLite) as the
//! event that creates the user or records that their password changed, so neither is
//! ever stored without the other.

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
