//! What workers gave up on (`consumer`), and what admins and operators decided about it.
//!
//! A dead letter is `open` until someone settles it: a retry marks it `retrying`, and the
//! worker it belongs to tries the event once more the next time it looks (within about a
//! second), leaving it `retried` or open again with the new error; a discard sets it
//! aside for good. The decisions themselves are events of the organization
//! (`DeadLetterRetried`, `DeadLetterDiscarded`): the audit trail. Both ways a worker is
//! fed keep their dead letters here; with NATS they are also on the dead-letter stream
//! as they came.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::db::Database;
use crate::event_store::RecordedEvent;
use crate::nats;
use crate::{on_database, on_writer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Open,
    Retrying,
    Retried,
    Discarded,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Open,
        Status::Retrying,
        Status::Retried,
        Status::Discarded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Retrying => "retrying",
            Status::Retried => "retried",
            Status::Discarded => "discarded",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub worker: String,
    pub event_id: Uuid,
    /// The event's organization (from its metadata).
    pub organization_id: Option<Uuid>,
    pub global_position: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    /// The last attempt's error.
    pub error: String,
    pub failed_at: DateTime<Utc>,
    pub status: Status,
    /// How many times the worker gave it up (a retry that fails again counts one more).
    pub attempts: i64,
    pub settled_at: Option<DateTime<Utc>>,
    pub discard_reason: Option<String>,
    /// The request (its causation id) that settled it.
    pub settled_by_request: Option<Uuid>,
}

const COLUMNS: &str = "worker, event_id, organization_id, global_position, aggregate_type, \
    aggregate_id, sequence, event_type, error, failed_at, status, attempts, settled_at, \
    discard_reason, settled_by_request";

fn dead_letter<R>(row: &R) -> anyhow::Result<DeadLetter>
where
    R: Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let status: String = row.try_get("status")?;
    Ok(DeadLetter {
        worker: row.try_get("worker")?,
        event_id: Uuid::parse_str(&row.try_get::<String, _>("event_id")?)?,
        organization_id: row
            .try_get::<Option<String>, _>("organization_id")?
            .and_then(|o| Uuid::parse_str(&o).ok()),
        global_position: row.try_get("global_position")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        error: row.try_get("error")?,
        failed_at: row.try_get("failed_at")?,
        status: Status::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("a dead letter in an unknown state {status:?}"))?,
        attempts: row.try_get::<i64, _>("attempts")?,
        settled_at: row.try_get("settled_at")?,
        discard_reason: row.try_get("discard_reason")?,
        settled_by_request: row
            .try_get::<Option<String>, _>("settled_by_request")?
            .and_then(|r| Uuid::parse_str(&r).ok()),
    })
}

/// Records that `worker` gave `event` up. A dead letter of the same event (one retried
/// and failed again) is open again, with this error.
pub async fn record(
    db: &Database,
    worker: &str,
    event: &RecordedEvent,
    reason: &str,
) -> anyhow::Result<()> {
    let id = nats::event_id(&event.aggregate_type, &event.aggregate_id, event.sequence);
    let organization = event.metadata["organization_id"]
        .as_str()
        .map(str::to_string);
    on_writer!(db, |pool| {
        sqlx::query(
            "INSERT INTO dead_letters (worker, event_id, global_position, aggregate_type, \
             aggregate_id, sequence, event_type, error, failed_at, organization_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (worker, event_id) DO UPDATE SET error = excluded.error, \
             failed_at = excluded.failed_at, status = 'open', settled_at = NULL, \
             attempts = dead_letters.attempts + 1",
        )
        .bind(worker)
        .bind(id.to_string())
        .bind(event.global.to_string())
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .bind(event.sequence)
        .bind(&event.event_type)
        .bind(reason)
        .bind(Utc::now())
        .bind(organization)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Which dead letters [`list`] gives.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this organization's (an admin's view); every one when `None` (an operator's).
    pub organization_id: Option<Uuid>,
    pub status: Option<Status>,
    pub worker: Option<String>,
}

/// Dead letters, the latest failures first.
pub async fn list(db: &Database, filter: &Filter, limit: usize) -> anyhow::Result<Vec<DeadLetter>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM dead_letters \
         WHERE ($1 IS NULL OR organization_id = $1) AND ($2 IS NULL OR status = $2) \
         AND ($3 IS NULL OR worker = $3) \
         ORDER BY failed_at DESC, worker, event_id LIMIT $4"
    );
    let organization = filter.organization_id.map(|o| o.to_string());
    let status = filter.status.map(Status::as_str);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    on_database!(db, |pool| {
        sqlx::query(&sql)
            .bind(organization)
            .bind(status)
            .bind(filter.worker.clone())
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(dead_letter)
            .collect()
    })
}

pub async fn get(
    db: &Database,
    worker: &str,
    event_id: Uuid,
) -> anyhow::Result<Option<DeadLetter>> {
    let sql = format!("SELECT {COLUMNS} FROM dead_letters WHERE worker = $1 AND event_id = $2");
    on_database!(db, |pool| {
        sqlx::query(&sql)
            .bind(worker)
            .bind(event_id.to_string())
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(dead_letter)
            .transpose()
    })
}

/// Moves an open dead letter to `to` (`retrying` or `discarded`) for `request`. False
/// when it is not open (any more): someone settled it first.
pub async fn settle(
    db: &Database,
    worker: &str,
    event_id: Uuid,
    to: Status,
    discard_reason: Option<&str>,
    request: Uuid,
) -> anyhow::Result<bool> {
    let changed = on_writer!(db, |pool| {
        sqlx::query(
            "UPDATE dead_letters SET status = $3, settled_at = $4, discard_reason = $5, \
             settled_by_request = $6 WHERE worker = $1 AND event_id = $2 AND status = 'open'",
        )
        .bind(worker)
        .bind(event_id.to_string())
        .bind(to.as_str())
        .bind(Utc::now())
        .bind(discard_reason)
        .bind(request.to_string())
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(changed == 1)
}

/// The dead letters `worker` was asked to try again.
pub async fn retries(db: &Database, worker: &str) -> anyhow::Result<Vec<DeadLetter>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM dead_letters WHERE status = 'retrying' AND worker = $1 \
         ORDER BY failed_at"
    );
    on_database!(db, |pool| {
        sqlx::query(&sql)
            .bind(worker)
            .fetch_all(pool)
            .await?
            .iter()
            .map(dead_letter)
            .collect()
    })
}

/// A retry worked: the dead letter is settled.
pub async fn retried(db: &Database, worker: &str, event_id: Uuid) -> anyhow::Result<()> {
    on_writer!(db, |pool| {
        sqlx::query(
            "UPDATE dead_letters SET status = 'retried', settled_at = $3 \
             WHERE worker = $1 AND event_id = $2 AND status = 'retrying'",
        )
        .bind(worker)
        .bind(event_id.to_string())
        .bind(Utc::now())
        .execute(pool)
        .await?;
    });
    Ok(())
}
