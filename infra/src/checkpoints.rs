//! How far each reader of the global order has come (projections, the relay). A
//! checkpoint moves only from the value its writer last saw, so two instances of one
//! reader can never both apply the same events.

use std::time::Duration;

use chrono::Utc;
use sqlx::Row;
use tokio::time::Instant;

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
/// Such a checkpoint is only ever behind what its reader did (a crash that loses it has
/// the events read again), so it is written like a read model ([`Database::begin_derived`]).
pub async fn store(
    db: &Database,
    name: &str,
    from: GlobalPosition,
    to: GlobalPosition,
) -> anyhow::Result<()> {
    let mut tx = db.begin_derived().await?;
    if !advance(&mut tx, name, from, to).await? {
        anyhow::bail!("another instance moved checkpoint {name} first");
    }
    tx.commit().await?;
    Ok(())
}

/// A reader's checkpoint as stored, and when it was last written: for readers that pass
/// over most events without doing anything (a worker, the webhook dispatcher), and move
/// their checkpoint past them in memory. Stored every so often, a checkpoint costs no
/// write per batch under load, and a crash has at most that much read again (and passed
/// over again). The reader says when it is idle ([`Stored::idle`]) and when it has gone
/// over a batch ([`Stored::busy`]); this decides when that is worth a write.
pub struct Stored {
    name: String,
    at: GlobalPosition,
    written: Instant,
}

impl Stored {
    pub async fn load(db: &Database, name: String) -> Result<Self, sqlx::Error> {
        Ok(Self {
            at: load(db, &name).await?,
            name,
            written: Instant::now(),
        })
    }

    /// Where the stored checkpoint is.
    pub fn at(&self) -> GlobalPosition {
        self.at
    }

    /// Stores `to` unless it is stored already.
    pub async fn advance(&mut self, db: &Database, to: GlobalPosition) -> anyhow::Result<()> {
        if to != self.at {
            store(db, &self.name, self.at, to).await?;
            self.moved(to);
        }
        Ok(())
    }

    /// How long a reader that calls [`Stored::idle`] on each idle wait should wait at
    /// most: its checkpoint is then stored within about twice that after the last event.
    pub const IDLE: Duration = Duration::from_millis(100);
    /// How long the stored checkpoint may trail the reader under steady load.
    const BUSY: Duration = Duration::from_secs(1);

    /// The reader is idle at `to`: stored at once after a quiet spell, at most every
    /// [`Stored::IDLE`] while events keep coming (the reader is idle between wakes).
    pub async fn idle(&mut self, db: &Database, to: GlobalPosition) -> anyhow::Result<()> {
        self.advance_after(db, to, Self::IDLE).await
    }

    /// The reader went over a batch up to `to`: stored at most every second.
    pub async fn busy(&mut self, db: &Database, to: GlobalPosition) -> anyhow::Result<()> {
        self.advance_after(db, to, Self::BUSY).await
    }

    async fn advance_after(
        &mut self,
        db: &Database,
        to: GlobalPosition,
        every: Duration,
    ) -> anyhow::Result<()> {
        if self.written.elapsed() >= every {
            self.advance(db, to).await?;
        }
        Ok(())
    }

    /// The caller's own transaction moved the checkpoint from [`Stored::at`] to `to`
    /// ([`advance`]), and has committed.
    pub fn moved(&mut self, to: GlobalPosition) {
        (self.at, self.written) = (to, Instant::now());
    }
}

/// Locks checkpoint `name` for the rest of the transaction and reads it. Writers lock
/// their checkpoint before touching any row, so they always take locks in one order.
pub async fn lock(tx: &mut Tx, name: &str) -> anyhow::Result<GlobalPosition> {
    // SQLite's transactions of ours hold its one write lock from BEGIN on; on PostgreSQL
    // the row is locked as it is read.
    let statement = match tx {
        Tx::Postgres(_) => {
            "SELECT txid, position FROM projection_checkpoints WHERE name = $1 FOR UPDATE"
        }
        Tx::Sqlite(_) => "SELECT txid, position FROM projection_checkpoints WHERE name = $1",
    };
    let row = on_tx!(tx, |conn| {
        sqlx::query(statement)
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
