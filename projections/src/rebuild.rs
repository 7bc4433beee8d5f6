//! Rebuilding a read model from the events while the live one keeps serving.
//!
//! The rebuild fills a shadow table from the first event on, catches up, then — in one
//! transaction that holds the live checkpoint still — applies the last few events,
//! compares checksums, and (for a rebuild) swaps the shadow in for the live table. Queries
//! read the live table until that commit and the rebuilt one after it.

use std::time::{Duration, Instant};

use expensewise_infra::checkpoints;
use expensewise_infra::db::Tx;
use expensewise_infra::event_store::read_after;
use expensewise_infra::{on_tx, on_writer, Database, GlobalPosition, Vault};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::runner::Projection;
use crate::status;

/// Catch up outside the lock until fewer than this many events remain.
const CLOSE_ENOUGH: usize = 1000;
const BATCH: i64 = 2000;
/// A rebuild compares with the live model only if catching it up costs at most this.
const MAX_LIVE_CATCH_UP: i64 = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Events the rebuild applied.
    pub events: u64,
    pub elapsed: Duration,
    /// Where both models stood when compared.
    pub position: GlobalPosition,
    /// `None` when the live model was too far behind to be compared (rebuild only).
    pub live_checksum: Option<String>,
    pub rebuilt_checksum: String,
    /// Whether the rebuilt model replaced the live one.
    pub swapped: bool,
}

impl Report {
    pub fn identical(&self) -> bool {
        self.live_checksum.as_deref() == Some(self.rebuilt_checksum.as_str())
    }

    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Rebuilds `live` into `shadow` and compares them; with `swap`, the shadow replaces
/// the live table. `progress` is told how many events have been applied so far.
pub async fn rebuild(
    db: &Database,
    vault: &Vault,
    live: &dyn Projection,
    shadow: &dyn Projection,
    swap: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Report> {
    let started = Instant::now();
    create_shadow(db, live.table(), shadow.table()).await?;
    on_writer!(db, |pool| {
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
            .bind(shadow.name())
            .execute(pool)
            .await?;
    });
    let mut position = GlobalPosition::default();
    let mut applied = 0u64;
    // Chase the head of the store until close enough to finish under the lock.
    loop {
        let events = read_after(db, position, BATCH).await?;
        if events.len() < CLOSE_ENOUGH {
            break;
        }
        let mut tx = db.begin().await?;
        let last = apply(&mut tx, vault, shadow, events, &mut applied).await?;
        checkpoints::advance(&mut tx, shadow.name(), position, last).await?;
        tx.commit().await?;
        position = last;
        progress(applied);
    }
    index_shadow(db, live.table(), shadow.table()).await?;
    let mut tx = db.begin().await?;
    // Holding the live checkpoint stops the live projector between two batches.
    let live_position = checkpoints::lock(&mut tx, live.name()).await?;
    loop {
        let events = read_after(db, position, BATCH).await?;
        if events.is_empty() {
            break;
        }
        position = apply(&mut tx, vault, shadow, events, &mut applied).await?;
        progress(applied);
    }
    // Bring the live model to the same place, so the two compare like for like. A live
    // model far behind (its projector was not running) is not worth catching up just to
    // be dropped by the swap: it is then not compared.
    let target = position.max(live_position);
    let behind =
        status::events_after(db, live_position).await? - status::events_after(db, target).await?;
    let compare = !swap || behind <= MAX_LIVE_CATCH_UP;
    let mut live_at = live_position;
    if compare {
        loop {
            let events: Vec<_> = read_after(db, live_at, BATCH)
                .await?
                .into_iter()
                .filter(|e| e.global <= target)
                .collect();
            if events.is_empty() {
                break;
            }
            let mut ignored = 0;
            live_at = apply(&mut tx, vault, live, events, &mut ignored).await?;
        }
    }
    if live_at != live_position {
        checkpoints::advance(&mut tx, live.name(), live_position, live_at).await?;
    }
    let live_checksum = match compare {
        true => Some(checksum_in(&mut tx, live.table(), live.table()).await?),
        false => None,
    };
    let rebuilt_checksum = checksum_in(&mut tx, shadow.table(), live.table()).await?;
    let identical = live_checksum.as_deref() == Some(rebuilt_checksum.as_str());
    if swap && !compare {
        // The swapped-in model is complete up to `target`; the live projector goes on
        // from there.
        checkpoints::advance(&mut tx, live.name(), live_position, target).await?;
    }
    if swap {
        swap_in(&mut tx, live.table(), shadow.table()).await?;
    }
    on_tx!(&mut tx, |conn| {
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
            .bind(shadow.name())
            .execute(&mut *conn)
            .await?;
    });
    tx.commit().await?;
    if !swap {
        drop_shadow(db, shadow).await?;
    }
    tracing::info!(
        projection = live.name(),
        identical,
        swapped = swap,
        events = applied,
        "rebuild finished"
    );
    Ok(Report {
        events: applied,
        elapsed: started.elapsed(),
        position: target,
        live_checksum,
        rebuilt_checksum,
        swapped: swap,
    })
}

/// The read model as it was at a moment of the history: `scratch`, a table made anew
/// beside `live`'s, filled with the events `then` accepts, in the global order (all are
/// read: on PostgreSQL the order is not quite the order of recording). The caller reads
/// it and drops it ([`drop_scratch`]). Returns the number of events applied.
pub async fn replay(
    db: &Database,
    vault: &Vault,
    live: &dyn Projection,
    scratch: &dyn Projection,
    then: &(dyn Fn(&expensewise_infra::RecordedEvent) -> bool + Sync),
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<u64> {
    create_shadow(db, live.table(), scratch.table()).await?;
    let mut position = GlobalPosition::default();
    let mut applied = 0u64;
    loop {
        let events = read_after(db, position, BATCH).await?;
        let Some(last) = events.last().map(|e| e.global) else {
            break;
        };
        position = last;
        let wanted: Vec<_> = events.into_iter().filter(|e| then(e)).collect();
        if !wanted.is_empty() {
            let mut tx = db.begin().await?;
            apply(&mut tx, vault, scratch, wanted, &mut applied).await?;
            tx.commit().await?;
        }
        progress(applied);
    }
    Ok(applied)
}

/// Drops a replay's table.
pub async fn drop_scratch(db: &Database, scratch: &dyn Projection) -> anyhow::Result<()> {
    drop_shadow(db, scratch).await
}

async fn apply(
    tx: &mut Tx,
    vault: &Vault,
    projection: &dyn Projection,
    events: Vec<expensewise_infra::RecordedEvent>,
    applied: &mut u64,
) -> anyhow::Result<GlobalPosition> {
    let last = events.last().map(|e| e.global).unwrap_or_default();
    *applied += events.len() as u64;
    let events = vault
        .reveal_all(crate::runner::read_by(projection, events))
        .await?;
    projection.apply(tx, &events).await?;
    Ok(last)
}

/// The secondary indexes of `table`: (name, definition).
async fn indexes(db_or_tx: &mut Tx, table: &str) -> anyhow::Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = match db_or_tx {
        Tx::Postgres(tx) => sqlx::query_as(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 AND indexname <> $1 || '_pkey'",
        )
        .bind(table)
        .fetch_all(&mut **tx)
        .await?,
        Tx::Sqlite(tx) => sqlx::query_as(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL",
        )
        .bind(table)
        .fetch_all(&mut **tx)
        .await?,
    };
    Ok(rows)
}

fn rename_index(
    definition: &str,
    index: &str,
    new_index: &str,
    table: &str,
    new_table: &str,
) -> String {
    // SQLite keeps an index's DDL as its migration wrote it, line breaks included.
    let definition = definition.split_whitespace().collect::<Vec<_>>().join(" ");
    definition
        .replacen(
            &format!("INDEX {index} "),
            &format!("INDEX {new_index} "),
            1,
        )
        .replacen(
            &format!(" ON public.{table} "),
            &format!(" ON public.{new_table} "),
            1,
        )
        .replacen(&format!(" ON {table} "), &format!(" ON {new_table} "), 1)
        .replacen(
            &format!(" ON \"{table}\" "),
            &format!(" ON {new_table} "),
            1,
        )
}

/// An empty copy of `live` named `shadow`, with the same columns and key.
async fn create_shadow(db: &Database, live: &str, shadow: &str) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    match &mut tx {
        Tx::Postgres(conn) => {
            sqlx::query(&format!("DROP TABLE IF EXISTS {shadow}"))
                .execute(&mut **conn)
                .await?;
            sqlx::query(&format!(
                "CREATE TABLE {shadow} (LIKE {live} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            ))
            .execute(&mut **conn)
            .await?;
            sqlx::query(&format!("ALTER TABLE {shadow} ADD PRIMARY KEY (id)"))
                .execute(&mut **conn)
                .await?;
        }
        Tx::Sqlite(conn) => {
            sqlx::query(&format!("DROP TABLE IF EXISTS {shadow}"))
                .execute(&mut **conn)
                .await?;
            let ddl: String = sqlx::query_scalar(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = $1",
            )
            .bind(live)
            .fetch_one(&mut **conn)
            .await?;
            // After a swap SQLite keeps the renamed table's DDL with the name quoted.
            let quoted = format!("CREATE TABLE \"{live}\"");
            let plain = format!("CREATE TABLE {live}");
            let created = format!("CREATE TABLE {shadow}");
            let ddl = if ddl.starts_with(&quoted) {
                ddl.replacen(&quoted, &created, 1)
            } else {
                ddl.replacen(&plain, &created, 1)
            };
            sqlx::query(&ddl).execute(&mut **conn).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Gives the shadow the live table's secondary indexes. Built once over the bulk of the
/// rows, which is far cheaper than maintaining them row by row while filling it.
async fn index_shadow(db: &Database, live: &str, shadow: &str) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    for (name, definition) in indexes(&mut tx, live).await? {
        let sql = rename_index(
            &definition,
            &name,
            &format!("{name}__rebuild"),
            live,
            shadow,
        );
        on_tx!(&mut tx, |conn| {
            sqlx::query(&sql).execute(&mut *conn).await?;
        });
    }
    tx.commit().await?;
    Ok(())
}

async fn drop_shadow(db: &Database, shadow: &dyn Projection) -> anyhow::Result<()> {
    on_writer!(db, |pool| {
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", shadow.table()))
            .execute(pool)
            .await?;
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
            .bind(shadow.name())
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Replaces `live` by `shadow`, keeping the live table's name and index names.
async fn swap_in(tx: &mut Tx, live: &str, shadow: &str) -> anyhow::Result<()> {
    let live_indexes = indexes(tx, live).await?;
    on_tx!(tx, |conn| {
        sqlx::query(&format!("DROP TABLE {live}"))
            .execute(&mut *conn)
            .await?;
        sqlx::query(&format!("ALTER TABLE {shadow} RENAME TO {live}"))
            .execute(&mut *conn)
            .await?;
    });
    match tx {
        Tx::Postgres(conn) => {
            sqlx::query(&format!(
                "ALTER TABLE {live} RENAME CONSTRAINT {shadow}_pkey TO {live}_pkey"
            ))
            .execute(&mut **conn)
            .await?;
            for (name, _) in &live_indexes {
                sqlx::query(&format!("ALTER INDEX {name}__rebuild RENAME TO {name}"))
                    .execute(&mut **conn)
                    .await?;
            }
        }
        // SQLite cannot rename an index: build it again under its own name.
        Tx::Sqlite(conn) => {
            for (name, definition) in &live_indexes {
                sqlx::query(&format!("DROP INDEX {name}__rebuild"))
                    .execute(&mut **conn)
                    .await?;
                sqlx::query(definition).execute(&mut **conn).await?;
            }
        }
    }
    Ok(())
}

/// A digest of every row of `table`, in key order, column by column as text. Columns are
/// those of `columns_of` so a shadow and its live table are read alike.
async fn checksum_in(tx: &mut Tx, table: &str, columns_of: &str) -> anyhow::Result<String> {
    let columns: Vec<String> = match tx {
        Tx::Postgres(conn) => sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
        )
        .bind(columns_of)
        .fetch_all(&mut **conn)
        .await?,
        Tx::Sqlite(conn) => sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
            .bind(columns_of)
            .fetch_all(&mut **conn)
            .await?,
    };
    let select = columns
        .iter()
        .map(|c| format!("CAST({c} AS TEXT)"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT {select} FROM {table} ORDER BY id");
    let mut hasher = Sha256::new();
    let mut rows = 0u64;
    on_tx!(tx, |conn| {
        for row in sqlx::query(&sql).fetch_all(&mut *conn).await? {
            for i in 0..columns.len() {
                match row.try_get::<Option<String>, _>(i)? {
                    Some(v) => {
                        hasher.update(b"v");
                        hasher.update((v.len() as u64).to_le_bytes());
                        hasher.update(v.as_bytes());
                    }
                    None => hasher.update(b"n"),
                }
            }
            rows += 1;
        }
    });
    Ok(format!("{rows}:{:x}", hasher.finalize()))
}

/// The checksum of a live read model, as `projections checksum` prints it.
pub async fn checksum(db: &Database, table: &str) -> anyhow::Result<String> {
    let mut tx = db.begin().await?;
    checksum_in(&mut tx, table, table).await
}

#[cfg(test)]
mod tests {
    use super::rename_index;

    #[test]
    fn an_index_is_renamed_however_its_definition_is_laid_out() {
        let rename = |definition: &str| {
            rename_index(
                definition,
                "rm_expenses_same_details",
                "rm_expenses_same_details__rebuild",
                "rm_expenses",
                "rm_expenses__rebuild",
            )
        };
        // As SQLite keeps a migration's text, and as PostgreSQL writes it.
        assert_eq!(
            rename(
                "CREATE INDEX rm_expenses_same_details\n    ON rm_expenses (organization_id, spent_on)"
            ),
            "CREATE INDEX rm_expenses_same_details__rebuild ON rm_expenses__rebuild (organization_id, spent_on)"
        );
        assert_eq!(
            rename(
                "CREATE INDEX rm_expenses_same_details ON public.rm_expenses USING btree (organization_id)"
            ),
            "CREATE INDEX rm_expenses_same_details__rebuild ON public.rm_expenses__rebuild USING btree (organization_id)"
        );
    }
}
