//! The ledger behind `Idempotency-Key`: the first response to a request is kept for 24
//! hours and returned again, unchanged, when the same request is retried.

use chrono::Utc;
use sqlx::Row;

use crate::db::Database;
use crate::on_writer;

/// How long a key is remembered.
pub const RETENTION_MS: i64 = 24 * 60 * 60 * 1000;
/// How long a request may hold its key before it is presumed dead.
pub const IN_FLIGHT_TIMEOUT_MS: i64 = 60 * 1000;

/// A response as it is kept and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// The key is new (or expired): run the request, then `complete` or `release`.
    Proceed,
    /// The request was already answered: send this again.
    Replay(StoredResponse),
    /// The key was used for a different request.
    Mismatch,
    /// The first request with this key is still running.
    InFlight,
}

#[derive(Clone)]
pub struct IdempotencyLedger {
    db: Database,
}

impl IdempotencyLedger {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub async fn begin(&self, scope: &str, key: &str, request_hash: &str) -> anyhow::Result<Begin> {
        let now = Utc::now().timestamp_millis();
        on_writer!(&self.db, |pool| {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 \
                 AND (created_at_ms < $3 OR (in_flight AND created_at_ms < $4))",
            )
            .bind(scope)
            .bind(key)
            .bind(now - RETENTION_MS)
            .bind(now - IN_FLIGHT_TIMEOUT_MS)
            .execute(pool)
            .await?;
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (scope, key, request_hash, in_flight, created_at_ms) \
                 VALUES ($1, $2, $3, TRUE, $4) ON CONFLICT DO NOTHING",
            )
            .bind(scope)
            .bind(key)
            .bind(request_hash)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok(Begin::Proceed);
            }
            let row = sqlx::query(
                "SELECT request_hash, in_flight, status, headers, body FROM idempotency_keys \
                 WHERE scope = $1 AND key = $2",
            )
            .bind(scope)
            .bind(key)
            .fetch_optional(pool)
            .await?;
            // Deleted by a concurrent expiry between our insert and select: treat as busy
            // rather than running the request twice.
            let Some(row) = row else {
                return Ok(Begin::InFlight);
            };
            let stored_hash: String = row.try_get("request_hash")?;
            if stored_hash != request_hash {
                return Ok(Begin::Mismatch);
            }
            if row.try_get::<bool, _>("in_flight")? {
                return Ok(Begin::InFlight);
            }
            let status: i16 = row.try_get("status")?;
            let headers: String = row.try_get("headers")?;
            Ok(Begin::Replay(StoredResponse {
                status: u16::try_from(status)?,
                headers: serde_json::from_str(&headers)?,
                body: row.try_get("body")?,
            }))
        })
    }

    /// Keeps `response` as the answer to every retry of the request.
    pub async fn complete(
        &self,
        scope: &str,
        key: &str,
        response: &StoredResponse,
    ) -> anyhow::Result<()> {
        let headers = serde_json::to_string(&response.headers)?;
        on_writer!(&self.db, |pool| {
            sqlx::query(
                "UPDATE idempotency_keys SET in_flight = FALSE, status = $3, headers = $4, body = $5 \
                 WHERE scope = $1 AND key = $2",
            )
            .bind(scope)
            .bind(key)
            .bind(i16::try_from(response.status)?)
            .bind(headers)
            .bind(&response.body)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Forgets the key, so that a retry runs the request again (after a failure that
    /// changed nothing).
    pub async fn release(&self, scope: &str, key: &str) -> anyhow::Result<()> {
        on_writer!(&self.db, |pool| {
            sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND in_flight")
                .bind(scope)
                .bind(key)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Drops keys past their retention; run now and then.
    pub async fn purge_expired(&self) -> anyhow::Result<u64> {
        let cutoff = Utc::now().timestamp_millis() - RETENTION_MS;
        let deleted = on_writer!(&self.db, |pool| {
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at_ms < $1")
                .bind(cutoff)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted)
    }
}
