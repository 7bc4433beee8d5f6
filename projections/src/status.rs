//! What operators see of the read models: where each stands and how far behind it is.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use expensewise_infra::{checkpoints, on_database, on_writer, Database, GlobalPosition};
use sqlx::Row;

use crate::expenses::ExpensesProjection;
use crate::receipts::ReceiptsProjection;
use crate::runner::Projection;
use crate::users::UsersProjection;

/// A read model: the projection that serves queries, and its twin for rebuilds.
pub struct ReadModel {
    pub name: &'static str,
    pub live: Arc<dyn Projection>,
    pub shadow: Arc<dyn Projection>,
}

/// Every read model of the product.
pub fn read_models() -> Vec<ReadModel> {
    vec![
        ReadModel {
            name: crate::expenses::NAME,
            live: Arc::new(ExpensesProjection::live()),
            shadow: Arc::new(ExpensesProjection::shadow()),
        },
        ReadModel {
            name: crate::users::NAME,
            live: Arc::new(UsersProjection::live()),
            shadow: Arc::new(UsersProjection::shadow()),
        },
        ReadModel {
            name: crate::receipts::NAME,
            live: Arc::new(ReceiptsProjection::live()),
            shadow: Arc::new(ReceiptsProjection::shadow()),
        },
    ]
}

pub fn find(name: &str) -> Option<ReadModel> {
    read_models().into_iter().find(|m| m.name == name)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub name: &'static str,
    pub position: GlobalPosition,
    pub head: GlobalPosition,
    /// Events in the store after the model's checkpoint.
    pub lag: i64,
    /// While its projector keeps failing: the last error, and when.
    pub last_error: Option<(String, DateTime<Utc>)>,
}

/// The newest event in the store.
pub async fn head(db: &Database) -> Result<GlobalPosition, sqlx::Error> {
    let sql = match db {
        Database::Postgres(_) => {
            "SELECT (txid::text)::bigint AS txid, position FROM events ORDER BY events.txid DESC, events.position DESC LIMIT 1"
        }
        Database::Sqlite(_) => "SELECT 0 AS txid, rowid AS position FROM events ORDER BY rowid DESC LIMIT 1",
    };
    let head = on_database!(db, |pool| {
        match sqlx::query(sql).fetch_optional(pool).await? {
            Some(row) => GlobalPosition {
                txid: row.try_get("txid")?,
                position: row.try_get("position")?,
            },
            None => GlobalPosition::default(),
        }
    });
    Ok(head)
}

/// How many events lie after `position`.
pub async fn events_after(db: &Database, position: GlobalPosition) -> Result<i64, sqlx::Error> {
    let count = match db {
        Database::Postgres(pool) => sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE (txid, position) > (($1::bigint)::text::xid8, $2)",
        )
        .bind(position.txid)
        .bind(position.position)
        .fetch_one(pool)
        .await?,
        Database::Sqlite(pools) => {
            let pool = &pools.reads;
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE rowid > $1")
                .bind(position.position)
                .fetch_one(pool)
                .await?
        }
    };
    Ok(count)
}

pub async fn status(db: &Database) -> anyhow::Result<Vec<Status>> {
    let head = head(db).await?;
    let mut all = Vec::new();
    for model in read_models() {
        let position = checkpoints::load(db, model.live.name()).await?;
        all.push(Status {
            name: model.name,
            position,
            head,
            lag: events_after(db, position).await?,
            last_error: last_error(db, model.live.name()).await?,
        });
    }
    Ok(all)
}

async fn last_error(
    db: &Database,
    name: &str,
) -> Result<Option<(String, DateTime<Utc>)>, sqlx::Error> {
    on_database!(db, |pool| {
        sqlx::query("SELECT error, failed_at FROM projection_errors WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?
            .map(|row| Ok::<_, sqlx::Error>((row.try_get("error")?, row.try_get("failed_at")?)))
            .transpose()
    })
}

/// Records the projector's latest failure, or (`None`) that it goes on again.
pub async fn set_error(db: &Database, name: &str, error: Option<&str>) -> Result<(), sqlx::Error> {
    on_writer!(db, |pool| {
        match error {
            Some(error) => sqlx::query(
                "INSERT INTO projection_errors (name, error, failed_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET error = excluded.error, failed_at = excluded.failed_at",
            )
            .bind(name)
            .bind(error)
            .bind(Utc::now())
            .execute(pool)
            .await?,
            None => sqlx::query("DELETE FROM projection_errors WHERE name = $1")
                .bind(name)
                .execute(pool)
                .await?,
        };
    });
    Ok(())
}
