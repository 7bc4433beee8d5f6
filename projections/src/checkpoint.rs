//! How far each projection has read, and read-your-writes on top of it.

use std::time::Duration;

use chrono::Utc;
use expensewise_infra::db::Tx;
use expensewise_infra::{on_database, on_tx, Database, GlobalPosition};
use sqlx::Row;

pub async fn load(db: &Database, name: &str) -> Result<GlobalPosition, sqlx::Error> {
    let row = on_database!(db, |pool| {
        sqlx::query("SELECT txid, position FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<GlobalPosition, sqlx::Error> {
                Ok(GlobalPosition {
                    txid: row.try_get("txid")?,
                    position: row.try_get("position")?,
                })
            })
            .transpose()?
    });
    Ok(row.unwrap_or_default())
}

/// Moves the checkpoint from `from` to `to`, inside the projection's transaction. Returns
/// false when the stored checkpoint is no longer `from`: another projector instance got
/// there first, and this transaction must be rolled back.
pub async fn advance(
    tx: &mut Tx,
    name: &str,
    from: GlobalPosition,
    to: GlobalPosition,
) -> Result<bool, sqlx::Error> {
    let now = Utc::now();
    let changed = on_tx!(tx, |conn| {
        if from == GlobalPosition::default() {
            sqlx::query(
                "INSERT INTO projection_checkpoints (name, txid, position, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(name)
            .bind(to.txid)
            .bind(to.position)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        } else {
            sqlx::query(
                "UPDATE projection_checkpoints SET txid = $2, position = $3, updated_at = $4 \
                 WHERE name = $1 AND txid = $5 AND position = $6",
            )
            .bind(name)
            .bind(to.txid)
            .bind(to.position)
            .bind(now)
            .bind(from.txid)
            .bind(from.position)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        }
    });
    Ok(changed == 1)
}

#[derive(Debug, thiserror::Error)]
pub enum ConsistencyError {
    #[error("the read model has not caught up with the given consistency token yet")]
    NotYet,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Waits until projection `name` has read past `token`, at most `limit`.
pub async fn wait_until(
    db: &Database,
    name: &str,
    token: GlobalPosition,
    limit: Duration,
) -> Result<(), ConsistencyError> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if load(db, name).await? >= token {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ConsistencyError::NotYet);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
