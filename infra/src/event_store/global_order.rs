//! Reading the event store in its global order.
//!
//! PostgreSQL assigns `position` when a row is inserted, but transactions commit in
//! any order: a tailer that read "everything after position 41" could see 43 commit
//! while 42 is still in flight, move on, and never see 42. So the order is
//! (writing transaction id, position), and a tailer only reads rows written by
//! transactions older than the oldest one still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`). Every such transaction has finished, and
//! every transaction that has not finished yet will get a larger id, so nothing can
//! appear behind a position once it was read.
//!
//! SQLite has one writer at a time and no deletes: its rowid order is commit order, and
//! `txid` is always 0 there.

use std::sync::Arc;

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;

use crate::db::Database;

/// A place in the global order. Compared as (txid, position).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GlobalPosition {
    pub txid: i64,
    pub position: i64,
}

impl PartialOrd for GlobalPosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for GlobalPosition {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.txid, self.position).cmp(&(other.txid, other.position))
    }
}

/// Written as `txid.position`: the form of consistency tokens and cursors.
impl fmt::Display for GlobalPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.txid, self.position)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a global position (expected two integers like 1234.56)")]
pub struct BadPosition;

impl FromStr for GlobalPosition {
    type Err = BadPosition;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (txid, position) = s.split_once('.').ok_or(BadPosition)?;
        let parse = |v: &str| v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or(BadPosition);
        Ok(GlobalPosition {
            txid: parse(txid)?,
            position: parse(position)?,
        })
    }
}

/// An event as stored, with where it stands in the global order. Its payload and metadata
/// are shared, not copied, by the copies the process's consumers get of it (see `tail`).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub global: GlobalPosition,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Arc<Value>,
    pub metadata: Arc<Value>,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The payload in its current shape: stored older versions pass through the same
    /// upcasters the aggregates are loaded with.
    pub fn upcast(self) -> RecordedEvent {
        let upcasters = expensewise_domain::upcast::upcasters();
        if !upcasters
            .iter()
            .any(|u| u.can_upcast(&self.event_type, &self.event_version))
        {
            return self;
        }
        let mut serialized = cqrs_es::persist::SerializedEvent::new(
            self.aggregate_id.clone(),
            usize::try_from(self.sequence).unwrap_or_default(),
            self.aggregate_type.clone(),
            self.event_type.clone(),
            self.event_version.clone(),
            Value::clone(&self.payload),
            Value::clone(&self.metadata),
        );
        for upcaster in &upcasters {
            if upcaster.can_upcast(&serialized.event_type, &serialized.event_version) {
                serialized = upcaster.upcast(serialized);
            }
        }
        RecordedEvent {
            event_version: serialized.event_version,
            payload: Arc::new(serialized.payload),
            ..self
        }
    }
}

const PG_COLUMNS: &str = "(txid::text)::bigint AS txid, position, aggregate_type, aggregate_id, \
     sequence, event_type, event_version, payload, metadata, recorded_at";
const SQLITE_COLUMNS: &str = "0 AS txid, rowid AS position, aggregate_type, aggregate_id, \
     sequence, event_type, event_version, payload, metadata, recorded_at";

fn pg_event(row: &sqlx::postgres::PgRow) -> Result<RecordedEvent, sqlx::Error> {
    Ok(RecordedEvent {
        global: GlobalPosition {
            txid: row.try_get("txid")?,
            position: row.try_get("position")?,
        },
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: Arc::new(row.try_get("payload")?),
        metadata: Arc::new(row.try_get("metadata")?),
        recorded_at: row.try_get("recorded_at")?,
    })
}

fn sqlite_event(row: &sqlx::sqlite::SqliteRow) -> Result<RecordedEvent, sqlx::Error> {
    let json = |column: &str| -> Result<Value, sqlx::Error> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(|e| sqlx::Error::ColumnDecode {
            index: column.to_string(),
            source: Box::new(e),
        })
    };
    let recorded_at: String = row.try_get("recorded_at")?;
    Ok(RecordedEvent {
        global: GlobalPosition {
            txid: row.try_get("txid")?,
            position: row.try_get("position")?,
        },
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: Arc::new(json("payload")?),
        metadata: Arc::new(json("metadata")?),
        recorded_at: DateTime::parse_from_rfc3339(&recorded_at)
            .map_err(|e| sqlx::Error::ColumnDecode {
                index: "recorded_at".into(),
                source: Box::new(e),
            })?
            .with_timezone(&Utc),
    })
}

/// Up to `limit` events after `after` in the global order, all from finished
/// transactions. An empty result means "nothing more yet", never "there was a gap".
pub async fn read_after(
    db: &Database,
    after: GlobalPosition,
    limit: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    read_filtered(db, &AuditFilter::default(), after, limit).await
}

/// What an audit query asks for; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub organization_id: Option<String>,
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub event_type: Option<String>,
    /// Recorded at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before.
    pub to: Option<DateTime<Utc>>,
}

/// Whether `write` is readable in the global order yet: every transaction begun before it
/// on the database server has ended.
pub async fn readable(db: &Database, write: GlobalPosition) -> Result<bool, sqlx::Error> {
    match db {
        Database::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT ($1::bigint)::text::xid8 < pg_snapshot_xmin(pg_current_snapshot())",
            )
            .bind(write.txid)
            .fetch_one(pool)
            .await
        }
        // One writer at a time: what is committed is readable.
        Database::Sqlite(_) => Ok(true),
    }
}

/// Like [`read_after`], narrowed by `filter`: the audit log's pages.
pub async fn read_filtered(
    db: &Database,
    filter: &AuditFilter,
    after: GlobalPosition,
    limit: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let pg = matches!(db, Database::Postgres(_));
    let mut sql = if pg {
        format!(
            "SELECT {PG_COLUMNS} FROM events WHERE (txid, position) > (($1::bigint)::text::xid8, $2) \
             AND txid < pg_snapshot_xmin(pg_current_snapshot())"
        )
    } else {
        format!("SELECT {SQLITE_COLUMNS} FROM events WHERE rowid > $2 AND $1 = $1")
    };
    let mut texts: Vec<String> = Vec::new();
    let mut clause = |sql: &mut String, column: &str, op: &str, value: String| {
        texts.push(value);
        sql.push_str(&format!(" AND {column} {op} ${}", texts.len() + 2));
    };
    let organization = if pg {
        "(metadata ->> 'organization_id')"
    } else {
        "json_extract(metadata, '$.organization_id')"
    };
    if let Some(v) = &filter.organization_id {
        clause(&mut sql, organization, "=", v.clone());
    }
    if let Some(v) = &filter.aggregate_type {
        clause(&mut sql, "aggregate_type", "=", v.clone());
    }
    if let Some(v) = &filter.aggregate_id {
        clause(&mut sql, "aggregate_id", "=", v.clone());
    }
    if let Some(v) = &filter.event_type {
        clause(&mut sql, "event_type", "=", v.clone());
    }
    // Both dialects compare these as text in the store's own format.
    let recorded_at = if pg {
        "to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    } else {
        "recorded_at"
    };
    let stamp = |t: &DateTime<Utc>| {
        if pg {
            t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
        } else {
            t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
        }
    };
    if let Some(v) = &filter.from {
        clause(&mut sql, recorded_at, ">=", stamp(v));
    }
    if let Some(v) = &filter.to {
        clause(&mut sql, recorded_at, "<", stamp(v));
    }
    let limit_param = texts.len() + 3;
    sql.push_str(&if pg {
        // Qualified: a bare `txid` would name the output column (the bigint), which no
        // index orders.
        format!(" ORDER BY events.txid, events.position LIMIT ${limit_param}")
    } else {
        format!(" ORDER BY rowid LIMIT ${limit_param}")
    });
    match db {
        Database::Postgres(pool) => {
            let mut query = sqlx::query(&sql).bind(after.txid).bind(after.position);
            for t in &texts {
                query = query.bind(t);
            }
            let rows = query.bind(limit).fetch_all(pool).await?;
            rows.iter().map(pg_event).collect()
        }
        Database::Sqlite(pools) => {
            let pool = &pools.reads;
            let mut query = sqlx::query(&sql).bind(after.txid).bind(after.position);
            for t in &texts {
                query = query.bind(t);
            }
            let rows = query.bind(limit).fetch_all(pool).await?;
            rows.iter().map(sqlite_event).collect()
        }
    }
}

/// Every event of an organization that concerns one person, in the global order: those
/// they caused, those whose payload names their id, and every event of `aggregates` (the
/// things that are theirs). For subject access: it reads the organization's whole
/// history, which the index on the organization narrows.
pub async fn events_about(
    db: &Database,
    organization_id: &str,
    person: &str,
    aggregates: &[String],
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let pattern = format!("%{person}%");
    match db {
        Database::Postgres(pool) => {
            let sql = format!(
                "SELECT {PG_COLUMNS} FROM events WHERE (metadata ->> 'organization_id') = $1 \
                 AND ((metadata ->> 'actor_id') = $2 OR CAST(payload AS text) LIKE $3 \
                      OR aggregate_id = ANY($4)) \
                 ORDER BY events.txid, events.position"
            );
            let rows = sqlx::query(&sql)
                .bind(organization_id)
                .bind(person)
                .bind(&pattern)
                .bind(aggregates)
                .fetch_all(pool)
                .await?;
            rows.iter().map(pg_event).collect()
        }
        Database::Sqlite(pools) => {
            let sql = format!(
                "SELECT {SQLITE_COLUMNS} FROM events \
                 WHERE json_extract(metadata, '$.organization_id') = $1 \
                 AND (json_extract(metadata, '$.actor_id') = $2 OR payload LIKE $3 \
                      OR aggregate_id IN (SELECT value FROM json_each($4))) \
                 ORDER BY rowid"
            );
            let ids = serde_json::to_string(aggregates).unwrap_or_else(|_| "[]".into());
            let rows = sqlx::query(&sql)
                .bind(organization_id)
                .bind(person)
                .bind(&pattern)
                .bind(ids)
                .fetch_all(&pools.reads)
                .await?;
            rows.iter().map(sqlite_event).collect()
        }
    }
}

/// Every event of one aggregate, oldest first.
pub async fn aggregate_events(
    db: &Database,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    match db {
        Database::Postgres(pool) => {
            let sql = format!(
                "SELECT {PG_COLUMNS} FROM events \
                 WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence"
            );
            let rows = sqlx::query(&sql)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .fetch_all(pool)
                .await?;
            rows.iter().map(pg_event).collect()
        }
        Database::Sqlite(pools) => {
            let pool = &pools.reads;
            let sql = format!(
                "SELECT {SQLITE_COLUMNS} FROM events \
                 WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence"
            );
            let rows = sqlx::query(&sql)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .fetch_all(pool)
                .await?;
            rows.iter().map(sqlite_event).collect()
        }
    }
}

/// One event of an aggregate, by its sequence.
pub async fn event_at(
    db: &Database,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
) -> Result<Option<RecordedEvent>, sqlx::Error> {
    let condition = "WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3";
    match db {
        Database::Postgres(pool) => {
            let sql = format!("SELECT {PG_COLUMNS} FROM events {condition}");
            let row = sqlx::query(&sql)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .bind(sequence)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(pg_event).transpose()
        }
        Database::Sqlite(pools) => {
            let sql = format!("SELECT {SQLITE_COLUMNS} FROM events {condition}");
            let row = sqlx::query(&sql)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .bind(sequence)
                .fetch_optional(&pools.reads)
                .await?;
            row.as_ref().map(sqlite_event).transpose()
        }
    }
}

/// Where the latest event of an aggregate stands in the global order.
pub async fn aggregate_head(
    db: &Database,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<GlobalPosition>, sqlx::Error> {
    let sql = match db {
        Database::Postgres(_) => {
            "SELECT (txid::text)::bigint AS txid, position FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1"
        }
        Database::Sqlite(_) => {
            "SELECT 0 AS txid, rowid AS position FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1"
        }
    };
    let row = crate::on_database!(db, |pool| {
        match sqlx::query(sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_optional(pool)
            .await?
        {
            Some(row) => Some(GlobalPosition {
                txid: row.try_get("txid")?,
                position: row.try_get("position")?,
            }),
            None => None,
        }
    });
    Ok(row)
}

/// The sequence of an aggregate's latest event (0 when it has none): what its version
/// is, read from the primary key alone.
pub async fn aggregate_version(
    db: &Database,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<u64, sqlx::Error> {
    let sql = "SELECT COALESCE(MAX(sequence), 0) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2";
    let version: i64 = crate::on_database!(db, |pool| {
        sqlx::query_scalar(sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_one(pool)
            .await?
    });
    Ok(u64::try_from(version).unwrap_or_default())
}

/// The latest event of the actor given as parameter `param`, on PostgreSQL: its
/// transaction and position, answered by the index `events_by_actor`.
fn latest_of_actor_postgres(param: &str) -> String {
    format!(
        "SELECT events.txid, events.position FROM events \
         WHERE (metadata ->> 'actor_id') = {param} \
         ORDER BY events.txid DESC, events.position DESC LIMIT 1"
    )
}

/// The same on SQLite: its row id.
fn latest_of_actor_sqlite(param: &str) -> String {
    format!(
        "SELECT rowid FROM events WHERE json_extract(metadata, '$.actor_id') = {param} \
         ORDER BY rowid DESC LIMIT 1"
    )
}

fn position_of(txid: Option<i64>, position: Option<i64>) -> Option<GlobalPosition> {
    match (txid, position) {
        (Some(txid), Some(position)) => Some(GlobalPosition { txid, position }),
        _ => None,
    }
}

/// An aggregate's version (as [`aggregate_version`]) and where the latest event that
/// `actor` caused stands in the global order, in one statement: what a query needs to
/// know of its caller to answer with the caller's own writes included.
pub async fn version_and_last_write(
    db: &Database,
    aggregate_type: &str,
    aggregate_id: &str,
    actor: &str,
) -> Result<(u64, Option<GlobalPosition>), sqlx::Error> {
    // Both lookups are answered by indexes: the primary key, and `events_by_actor`.
    let (version, txid, position): (i64, Option<i64>, Option<i64>) = match db {
        Database::Postgres(pool) => {
            sqlx::query_as(&format!(
                "SELECT (SELECT COALESCE(MAX(sequence), 0) FROM events \
                         WHERE aggregate_type = $1 AND aggregate_id = $2), \
                        (mine.txid::text)::bigint, mine.position \
                 FROM (SELECT 1) AS one LEFT JOIN LATERAL ({}) AS mine ON true",
                latest_of_actor_postgres("$3")
            ))
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(actor)
            .fetch_one(pool)
            .await?
        }
        Database::Sqlite(pools) => {
            let pool = &pools.reads;
            sqlx::query_as(&format!(
                "SELECT (SELECT COALESCE(MAX(sequence), 0) FROM events \
                         WHERE aggregate_type = $1 AND aggregate_id = $2), 0, ({})",
                latest_of_actor_sqlite("$3")
            ))
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(actor)
            .fetch_one(pool)
            .await?
        }
    };
    Ok((
        u64::try_from(version).unwrap_or_default(),
        position_of(txid, position),
    ))
}

/// Where the latest event that `actor` caused stands in the global order (`None`: they
/// caused none).
pub async fn last_write(db: &Database, actor: &str) -> Result<Option<GlobalPosition>, sqlx::Error> {
    let (txid, position): (Option<i64>, Option<i64>) = match db {
        Database::Postgres(pool) => {
            sqlx::query_as(&format!(
                "SELECT (mine.txid::text)::bigint, mine.position \
                 FROM (SELECT 1) AS one LEFT JOIN LATERAL ({}) AS mine ON true",
                latest_of_actor_postgres("$1")
            ))
            .bind(actor)
            .fetch_one(pool)
            .await?
        }
        Database::Sqlite(pools) => {
            sqlx::query_as(&format!("SELECT 0, ({})", latest_of_actor_sqlite("$1")))
                .bind(actor)
                .fetch_one(&pools.reads)
                .await?
        }
    };
    Ok(position_of(txid, position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_transaction_first() {
        let early_tx_late_row = GlobalPosition {
            txid: 10,
            position: 50,
        };
        let late_tx_early_row = GlobalPosition {
            txid: 11,
            position: 42,
        };
        assert!(early_tx_late_row < late_tx_early_row);
    }

    #[test]
    fn positions_round_trip_through_text() {
        let p = GlobalPosition {
            txid: 981,
            position: 7,
        };
        assert_eq!(p.to_string().parse::<GlobalPosition>(), Ok(p));
        for bad in ["", "1", "a.b", "1.-2", "1.2.3"] {
            assert_eq!(bad.parse::<GlobalPosition>(), Err(BadPosition), "{bad}");
        }
    }
}
