//! How far each reader of the global order has come (projections, the relay). A
//! checkpoint moves only from the value its writer last saw, so two instances of one
//! reader can never both apply the same events.

use chrono::Utc;
use sqlx::Row;

use crate::db::{Database, Tx};
use crate::event_store::GlobalPosition;
use crate::{on_database, on_tx};

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

/// Moves a checkpoint in a transaction of its own; fails if another instance moved it.
pub async fn store(
    db: &Database,
    name: &str,
    from: GlobalPosition,
    to: GlobalPosition,
) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    if !advance(&mut tx, name, from, to).await? {
        anyhow::bail!("another instance moved checkpoint {name} first");
    }
    tx.commit().await?;
    Ok(())
}

/// Locks checkpoint `name` for the rest of the transaction and reads it. Writers lock
/// their checkpoint before touching any row, so they always take locks in one order.
pub async fn lock(tx: &mut Tx, name: &str) -> anyhow::Result<GlobalPosition> {
    let row = on_tx!(tx, |conn| {
        // A write to the row: PostgreSQL locks it, SQLite takes its single write lock.
        sqlx::query("UPDATE projection_checkpoints SET updated_at = updated_at WHERE name = $1")
            .bind(name)
            .execute(&mut *conn)
            .await?;
        sqlx::query("SELECT txid, position FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| -> Result<GlobalPosition, sqlx::Error> {
                Ok(GlobalPosition {
                    txid: r.try_get("txid")?,
                    position: r.try_get("position")?,
                })
            })
            .transpose()?
    });
    Ok(row.unwrap_or_default())
}

/// Every checkpoint whose name starts with `prefix` (e.g. `worker.`), by name.
pub async fn starting_with(
    db: &Database,
    prefix: &str,
) -> Result<Vec<(String, GlobalPosition)>, sqlx::Error> {
    on_database!(db, |pool| {
        sqlx::query(
            "SELECT name, txid, position FROM projection_checkpoints \
             WHERE substr(name, 1, length($1)) = $1 ORDER BY name",
        )
        .bind(prefix)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get("name")?,
                GlobalPosition {
                    txid: row.try_get("txid")?,
                    position: row.try_get("position")?,
                },
            ))
        })
        .collect()
    })
}
