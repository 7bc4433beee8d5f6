//! What the webhook sender keeps beside the event log (docs/webhooks.md): endpoints'
//! signing secrets, one delivery per endpoint and event, and every attempt at it. The
//! deliveries are the sender's queue: a delivery is due when its next attempt has come,
//! no sender holds its lease, and no earlier delivery of the same aggregate to the same
//! endpoint is still pending — so a receiver sees each aggregate's events in order.

use chrono::{DateTime, Utc};
use expensewise_domain::webhook::signing::Secret;
use sqlx::Row;
use uuid::Uuid;

use crate::db::{Database, Tx};
use crate::event_store::GlobalPosition;
use crate::{on_database, on_tx, on_writer};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

pub fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Keeps a new signing secret under `secret_id`.
pub async fn store_secret(
    db: &Database,
    secret_id: Uuid,
    organization_id: Uuid,
    secret: &Secret,
) -> Result<(), sqlx::Error> {
    on_writer!(db, |pool| {
        sqlx::query(
            "INSERT INTO webhook_secrets (secret_id, organization_id, secret, created_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(secret_id.to_string())
        .bind(organization_id.to_string())
        .bind(secret.text())
        .bind(millis(Utc::now()))
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// The secrets of `ids` that are stored, in the order asked.
pub async fn secrets(db: &Database, ids: &[Uuid]) -> anyhow::Result<Vec<Secret>> {
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let text: Option<String> = on_database!(db, |pool| {
            sqlx::query_scalar("SELECT secret FROM webhook_secrets WHERE secret_id = $1")
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        if let Some(text) = text {
            found.push(
                Secret::parse(&text)
                    .ok_or_else(|| anyhow::anyhow!("webhook secret {id} does not read"))?,
            );
        }
    }
    Ok(found)
}

/// A message to send: an event for an endpoint.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub organization_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub global: GlobalPosition,
}

/// Queues `delivery` in the dispatcher's transaction; one already queued for the same
/// endpoint and event (a batch read again after a crash) is left as it is.
pub async fn enqueue(
    tx: &mut Tx,
    delivery: &NewDelivery,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, organization_id, endpoint_id, event_id, \
               event_type, aggregate_type, aggregate_id, sequence, txid, position, state, \
               attempts, created_ms, next_attempt_ms, lease_until_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', 0, $11, $11, 0) \
             ON CONFLICT (endpoint_id, event_id) DO NOTHING",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(delivery.organization_id.to_string())
        .bind(delivery.endpoint_id.to_string())
        .bind(delivery.event_id.to_string())
        .bind(&delivery.event_type)
        .bind(&delivery.aggregate_type)
        .bind(&delivery.aggregate_id)
        .bind(delivery.sequence)
        .bind(delivery.global.txid)
        .bind(delivery.global.position)
        .bind(millis(now))
        .execute(&mut *conn)
        .await?;
    });
    Ok(())
}

/// A delivery as stored.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub state: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, organization_id, endpoint_id, event_id, event_type, aggregate_type, \
    aggregate_id, sequence, state, attempts, created_ms, first_attempt_ms, next_attempt_ms, \
    finished_ms, last_status, last_latency_ms, last_error";

fn delivery<R>(row: &R) -> anyhow::Result<Delivery>
where
    R: Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let uuid = |name: &str| -> anyhow::Result<Uuid> {
        Ok(Uuid::parse_str(&row.try_get::<String, _>(name)?)?)
    };
    let state: String = row.try_get("state")?;
    let pending = state == PENDING;
    Ok(Delivery {
        id: uuid("id")?,
        organization_id: uuid("organization_id")?,
        endpoint_id: uuid("endpoint_id")?,
        event_id: uuid("event_id")?,
        event_type: row.try_get("event_type")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        state,
        attempts: row.try_get("attempts")?,
        created_at: time(row.try_get("created_ms")?),
        first_attempt_at: row.try_get::<Option<i64>, _>("first_attempt_ms")?.map(time),
        next_attempt_at: pending
            .then(|| row.try_get("next_attempt_ms").map(time))
            .transpose()?,
        finished_at: row.try_get::<Option<i64>, _>("finished_ms")?.map(time),
        last_status: row.try_get("last_status")?,
        last_latency_ms: row.try_get("last_latency_ms")?,
        last_error: row.try_get("last_error")?,
    })
}

/// Takes up to `limit` due deliveries for `lease` milliseconds: no other sender takes
/// them until the lease runs out (a sender killed mid-delivery leaves them to the next).
pub async fn claim_due(
    db: &Database,
    now: DateTime<Utc>,
    lease_ms: i64,
    limit: i64,
) -> anyhow::Result<Vec<Delivery>> {
    let now_ms = millis(now);
    let candidates: Vec<String> = on_database!(db, |pool| {
        sqlx::query_scalar(
            "SELECT d.id FROM webhook_deliveries d \
             WHERE d.state = 'pending' AND d.next_attempt_ms <= $1 AND d.lease_until_ms <= $1 \
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
                 WHERE e.state = 'pending' AND e.endpoint_id = d.endpoint_id \
                   AND e.aggregate_id = d.aggregate_id AND e.aggregate_type = d.aggregate_type \
                   AND (e.txid < d.txid OR (e.txid = d.txid AND e.position < d.position))) \
             ORDER BY d.next_attempt_ms LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    let mut claimed = Vec::with_capacity(candidates.len());
    for id in candidates {
        let sql = format!(
            "UPDATE webhook_deliveries SET lease_until_ms = $2 \
             WHERE id = $1 AND state = 'pending' AND lease_until_ms <= $3 RETURNING {COLUMNS}"
        );
        let row = on_writer!(db, |pool| {
            match sqlx::query(&sql)
                .bind(&id)
                .bind(now_ms + lease_ms)
                .bind(now_ms)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some(delivery(&row)?),
                None => None,
            }
        });
        claimed.extend(row);
    }
    Ok(claimed)
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub sent_at: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Delivered,
    RetryAt(DateTime<Utc>),
    GaveUp,
}

/// Records `attempt` of `delivery` and what follows from it, and gives the lease back.
pub async fn record_attempt(
    db: &Database,
    delivery: &Delivery,
    attempt: &Attempt,
    outcome: Outcome,
) -> anyhow::Result<()> {
    let number = delivery.attempts + 1;
    let sent_ms = millis(attempt.sent_at);
    let (state, next_ms, finished_ms) = match outcome {
        Outcome::Delivered => (DELIVERED, sent_ms, Some(sent_ms)),
        Outcome::RetryAt(at) => (PENDING, millis(at), None),
        Outcome::GaveUp => (FAILED, sent_ms, Some(sent_ms)),
    };
    let mut tx = db.begin().await?;
    on_tx!(&mut tx, |conn| {
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, attempt, sent_ms, status, latency_ms, \
               error) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(delivery.id.to_string())
        .bind(number)
        .bind(sent_ms)
        .bind(attempt.status)
        .bind(attempt.latency_ms)
        .bind(&attempt.error)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $2, attempts = $3, \
               first_attempt_ms = COALESCE(first_attempt_ms, $4), next_attempt_ms = $5, \
               finished_ms = $6, lease_until_ms = 0, last_status = $7, last_latency_ms = $8, \
               last_error = $9 \
             WHERE id = $1",
        )
        .bind(delivery.id.to_string())
        .bind(state)
        .bind(number)
        .bind(sent_ms)
        .bind(next_ms)
        .bind(finished_ms)
        .bind(attempt.status)
        .bind(attempt.latency_ms)
        .bind(&attempt.error)
        .execute(&mut *conn)
        .await?;
    });
    tx.commit().await?;
    Ok(())
}

/// Ends a pending delivery without an attempt: its endpoint was turned off or removed.
pub async fn abandon(db: &Database, id: Uuid, reason: &str) -> anyhow::Result<()> {
    let now = millis(Utc::now());
    on_writer!(db, |pool| {
        sqlx::query(
            "UPDATE webhook_deliveries SET state = 'failed', finished_ms = $2, \
               lease_until_ms = 0, last_error = $3 WHERE id = $1 AND state = 'pending'",
        )
        .bind(id.to_string())
        .bind(now)
        .bind(reason)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Sends a delivery again as soon as possible, whatever became of it; its retries count
/// from now. Returns whether the endpoint has such a delivery.
pub async fn resend(db: &Database, endpoint_id: Uuid, id: Uuid) -> anyhow::Result<bool> {
    let now = millis(Utc::now());
    let changed = on_writer!(db, |pool| {
        sqlx::query(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_ms = $3, \
               first_attempt_ms = NULL, finished_ms = NULL \
             WHERE id = $1 AND endpoint_id = $2",
        )
        .bind(id.to_string())
        .bind(endpoint_id.to_string())
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(changed == 1)
}

/// A page of an endpoint's deliveries, newest first, after `before` (a delivery id);
/// one more than `limit` tells the caller there is a next page.
pub async fn list(
    db: &Database,
    endpoint_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> anyhow::Result<Vec<Delivery>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2 = '' OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    );
    let before = before.map(|b| b.to_string()).unwrap_or_default();
    let rows = on_database!(db, |pool| {
        let mut found = Vec::new();
        for row in sqlx::query(&sql)
            .bind(endpoint_id.to_string())
            .bind(&before)
            .bind(limit + 1)
            .fetch_all(pool)
            .await?
        {
            found.push(delivery(&row)?);
        }
        found
    });
    Ok(rows)
}

/// One delivery of an endpoint, with every attempt at it, oldest first.
pub async fn find(
    db: &Database,
    endpoint_id: Uuid,
    id: Uuid,
) -> anyhow::Result<Option<(Delivery, Vec<Attempt>)>> {
    let sql =
        format!("SELECT {COLUMNS} FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2");
    let found = on_database!(db, |pool| {
        match sqlx::query(&sql)
            .bind(id.to_string())
            .bind(endpoint_id.to_string())
            .fetch_optional(pool)
            .await?
        {
            None => None,
            Some(row) => {
                let mut attempts = Vec::new();
                for row in sqlx::query(
                    "SELECT sent_ms, status, latency_ms, error FROM webhook_attempts \
                     WHERE delivery_id = $1 ORDER BY attempt",
                )
                .bind(id.to_string())
                .fetch_all(pool)
                .await?
                {
                    attempts.push(Attempt {
                        sent_at: time(row.try_get("sent_ms")?),
                        status: row.try_get("status")?,
                        latency_ms: row.try_get("latency_ms")?,
                        error: row.try_get("error")?,
                    });
                }
                Some((delivery(&row)?, attempts))
            }
        }
    });
    Ok(found)
}

/// Forgets finished deliveries (delivered or given up) that ended before `before`, with
/// their attempts, a thousand at a time: the delivery log keeps what the retention says.
/// Returns how many deliveries went.
pub async fn purge_finished(db: &Database, before: DateTime<Utc>) -> anyhow::Result<u64> {
    let before = millis(before);
    let old = "SELECT id FROM webhook_deliveries \
               WHERE state <> 'pending' AND finished_ms < $1 LIMIT 1000";
    let mut purged = 0;
    loop {
        let mut tx = db.begin().await?;
        let gone = on_tx!(&mut tx, |conn| {
            sqlx::query(&format!(
                "DELETE FROM webhook_attempts WHERE delivery_id IN ({old})"
            ))
            .bind(before)
            .execute(&mut *conn)
            .await?;
            sqlx::query(&format!(
                "DELETE FROM webhook_deliveries WHERE id IN ({old}) AND state <> 'pending'"
            ))
            .bind(before)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        purged += gone;
        if gone == 0 {
            return Ok(purged);
        }
    }
}
