//! Group commit on SQLite: the appends of concurrent commands are written in one
//! transaction, so one fsync makes many of them durable.
//!
//! A single task owns the appending. It takes whatever appends are waiting (a command's
//! events, and the aggregate's snapshot when one is due), checks each against the
//! sequences stored (and the versions of the organization and policy it was decided on,
//! see `optimistic`), writes the events of all that hold with one statement, commits, and
//! only then answers each command, with where its last event stands in the global order.
//! Appends arriving while a commit is on disk wait for the next one: under load the
//! batches grow by themselves, and a lone command is written at once, without a timer.
//! A conflict (the sequence was taken: another command on the same aggregate got in
//! first) fails only its own command.
//!
//! The task is not part of any request: a request dropped mid-way (its client went away)
//! leaves the batch it joined to be committed and answered as usual.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cqrs_es::persist::SerializedEvent;
use sqlx::sqlite::SqliteConnection;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::{GlobalPosition, Guard};
use crate::credentials::Companion;

/// At most this many commands' appends share a transaction.
const MAX_BATCH: usize = 256;

/// SQLite's extended code for a primary key taken: the sequence is another command's.
const PRIMARY_KEY_TAKEN: &str = "1555";

/// A command's append: its events (numbered and sealed), the aggregate's snapshot when one
/// is due (as text), the secret that comes with them, and the versions it must still find.
pub struct Append {
    pub aggregate_type: &'static str,
    pub events: Vec<SerializedEvent>,
    pub snapshot: Option<String>,
    pub companion: Option<Companion>,
    pub guards: Vec<Guard>,
}

/// An append's outcome; an error is why the batch it was in failed (nothing of it was
/// written).
type Outcome = Result<Appended, String>;

struct Queued {
    append: Append,
    done: oneshot::Sender<Outcome>,
}

/// What became of an append that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Written; where its last event stands (`None`: it had no events).
    At(Option<GlobalPosition>),
    /// Not written: another command took the sequence first.
    Conflict,
    /// Not written: an organization or policy it was decided on has changed since.
    Stale,
}

/// The appender of one SQLite database, shared by every event store on it.
#[derive(Clone)]
pub struct GroupCommit {
    writes: SqlitePool,
    queue: Arc<OnceLock<mpsc::Sender<Queued>>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// `writes` is the database's one writing connection; the appending task starts with
    /// the first append (inside the runtime that makes it).
    pub fn new(writes: SqlitePool) -> Self {
        Self {
            writes,
            queue: Arc::new(OnceLock::new()),
        }
    }

    /// Appends if the append's expectations hold, durably: it returns once the
    /// transaction holding it is committed.
    pub async fn append(&self, append: Append) -> Outcome {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(4 * MAX_BATCH);
            tokio::spawn(run(self.writes.clone(), receiver));
            sender
        });
        let (done, answer) = oneshot::channel();
        queue
            .send(Queued { append, done })
            .await
            .map_err(|_| "the appending task has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the appending task stopped before committing".to_string())?
    }
}

async fn run(writes: SqlitePool, mut queue: mpsc::Receiver<Queued>) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut queued, MAX_BATCH).await > 0 {
        metrics::histogram!("expensewise_group_commit_appends").record(queued.len() as f64);
        let (batch, answers): (Vec<Append>, Vec<_>) =
            queued.drain(..).map(|q| (q.append, q.done)).unzip();
        match write(&writes, &batch).await {
            Ok(outcomes) => {
                for (done, outcome) in answers.into_iter().zip(outcomes) {
                    let _ = done.send(outcome);
                }
            }
            // Nothing of the batch is committed (the transaction did not get that far, or
            // its commit failed): every command in it fails, and may be retried.
            Err(e) => {
                let reason = e.to_string();
                for done in answers {
                    let _ = done.send(Err(reason.clone()));
                }
            }
        }
    }
}

/// Writes the batch in one transaction; the outcome of each append, once committed.
///
/// With the write lock held nobody else can append, so the sequences the batch's
/// aggregates have now are the ones it commits on: each append is checked against them
/// (and against the appends before it in the batch) in memory, and the events of all
/// that pass are written with one statement. An append with a snapshot due (every 20th
/// event of an aggregate) or a secret is written on its own, in a savepoint, as its
/// snapshot may still find another.
async fn write(writes: &SqlitePool, batch: &[Append]) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut tx = writes.begin_with(crate::db::BEGIN_DURABLE).await?;
    let mut heads = stored_heads(&mut tx, batch).await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut plain = Vec::with_capacity(batch.len());
    let mut positions = HashMap::new();
    for append in batch {
        let (Some(first), Some(last)) = (append.events.first(), append.events.last()) else {
            outcomes.push(Ok(Appended::At(None)));
            continue;
        };
        let key = (
            append.aggregate_type.to_string(),
            first.aggregate_id.clone(),
        );
        let head = heads.get(&key).copied().unwrap_or(0);
        if first.sequence as i64 != head + 1 {
            outcomes.push(Ok(Appended::Conflict));
            continue;
        }
        // Against the heads as the batch leaves them so far: an organization changed by
        // an earlier append of the batch fails the commands decided before that change.
        let stale = append.guards.iter().any(|guard| {
            let key = (guard.aggregate_type.to_string(), guard.id.clone());
            heads.get(&key).copied().unwrap_or(0) as u64 != guard.version
        });
        if stale {
            outcomes.push(Ok(Appended::Stale));
            continue;
        }
        if append.snapshot.is_none() && append.companion.is_none() {
            heads.insert(key, last.sequence as i64);
            plain.push(append);
            outcomes.push(Ok(Appended::At(None)));
            continue;
        }
        sqlx::query("SAVEPOINT append").execute(&mut *tx).await?;
        let outcome = async {
            let written = insert_events(&mut tx, &[append]).await?;
            write_companion(&mut tx, append).await?;
            write_snapshot(&mut tx, append).await?;
            Ok::<_, sqlx::Error>(written)
        }
        .await;
        match outcome {
            Ok(written) => {
                heads.insert(key, last.sequence as i64);
                positions.extend(written);
                outcomes.push(Ok(Appended::At(None)));
            }
            // Its secret could not be stored (a token id taken): this command fails, alone.
            Err(e) => {
                sqlx::query("ROLLBACK TO append").execute(&mut *tx).await?;
                outcomes.push(match &e {
                    sqlx::Error::Database(d) if d.code().as_deref() == Some(PRIMARY_KEY_TAKEN) => {
                        Ok(Appended::Conflict)
                    }
                    _ => Err(e.to_string()),
                });
            }
        }
        sqlx::query("RELEASE append").execute(&mut *tx).await?;
    }
    positions.extend(insert_events(&mut tx, &plain).await?);
    tx.commit().await?;
    for (append, outcome) in batch.iter().zip(&mut outcomes) {
        if let (Ok(Appended::At(at)), Some(last)) = (outcome, append.events.last()) {
            let key = (
                append.aggregate_type.to_string(),
                last.aggregate_id.clone(),
                last.sequence as i64,
            );
            *at = positions.get(&key).copied();
        }
    }
    Ok(outcomes)
}

type Head = (String, String);

/// The last stored sequence of each aggregate the batch appends to, and of each one its
/// guards name.
async fn stored_heads(
    conn: &mut SqliteConnection,
    batch: &[Append],
) -> Result<HashMap<Head, i64>, sqlx::Error> {
    let keys: std::collections::BTreeSet<(&str, &str)> = batch
        .iter()
        .filter_map(|a| {
            a.events
                .first()
                .map(|e| (a.aggregate_type, e.aggregate_id.as_str()))
        })
        .chain(
            batch
                .iter()
                .flat_map(|a| a.guards.iter().map(|g| (g.aggregate_type, g.id.as_str()))),
        )
        .collect();
    let mut heads = HashMap::with_capacity(keys.len());
    let keys: Vec<_> = keys.into_iter().collect();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let pairs = vec!["(?, ?)"; chunk.len()].join(", ");
        // One look-up per aggregate, at the end of its range of the primary key. Matching
        // the pairs with `IN` and grouping had SQLite scan the whole table's index for
        // each batch: a cost growing with the store, not the batch.
        let sql = format!(
            "SELECT k.column1, k.column2, \
             (SELECT MAX(sequence) FROM events \
              WHERE aggregate_type = k.column1 AND aggregate_id = k.column2) \
             FROM (VALUES {pairs}) AS k"
        );
        let mut query = sqlx::query_as::<_, (String, String, Option<i64>)>(&sql);
        for (aggregate_type, aggregate_id) in chunk {
            query = query.bind(*aggregate_type).bind(*aggregate_id);
        }
        for (aggregate_type, aggregate_id, head) in query.fetch_all(&mut *conn).await? {
            if let Some(head) = head {
                heads.insert((aggregate_type, aggregate_id), head);
            }
        }
    }
    Ok(heads)
}

/// Rows of events (and pairs of ids) per statement: well under SQLite's limit of bound
/// parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// Where each inserted event stands in the global order, by aggregate and sequence.
type Positions = HashMap<(String, String, i64), GlobalPosition>;

/// Inserts the events of `appends`, in order, a few hundred rows per statement.
async fn insert_events(
    conn: &mut SqliteConnection,
    appends: &[&Append],
) -> Result<Positions, sqlx::Error> {
    let rows: Vec<(&str, &SerializedEvent)> = appends
        .iter()
        .flat_map(|a| a.events.iter().map(|e| (a.aggregate_type, e)))
        .collect();
    let mut positions = HashMap::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) VALUES {values} \
             RETURNING aggregate_type, aggregate_id, sequence, rowid"
        );
        let mut query = sqlx::query_as::<_, (String, String, i64, i64)>(&sql);
        for (aggregate_type, event) in chunk {
            query = query
                .bind(*aggregate_type)
                .bind(&event.aggregate_id)
                .bind(event.sequence as i64)
                .bind(&event.event_type)
                .bind(&event.event_version)
                .bind(&event.payload)
                .bind(&event.metadata);
        }
        for (aggregate_type, aggregate_id, sequence, rowid) in query.fetch_all(&mut *conn).await? {
            let position = GlobalPosition {
                txid: 0,
                position: rowid,
            };
            positions.insert((aggregate_type, aggregate_id, sequence), position);
        }
    }
    Ok(positions)
}

/// Writes the snapshot that comes with an append, in place of the aggregate's last one.
/// With the write lock held and the append's sequence checked, no other snapshot of the
/// aggregate can be newer than this one.
async fn write_snapshot(conn: &mut SqliteConnection, append: &Append) -> Result<(), sqlx::Error> {
    let (Some(state), Some(last)) = (&append.snapshot, append.events.last()) else {
        return Ok(());
    };
    // One row per aggregate, in sqlite-es's layout (`current_snapshot` counts them).
    let updated = sqlx::query(
        "UPDATE snapshots SET last_sequence = $1, payload = $2, \
         current_snapshot = current_snapshot + 1 \
         WHERE aggregate_type = $3 AND aggregate_id = $4",
    )
    .bind(last.sequence as i64)
    .bind(state)
    .bind(append.aggregate_type)
    .bind(&last.aggregate_id)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        sqlx::query(
            "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, \
             current_snapshot, payload) VALUES ($1, $2, $3, 1, $4)",
        )
        .bind(append.aggregate_type)
        .bind(&last.aggregate_id)
        .bind(last.sequence as i64)
        .bind(state)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Stores the secret that comes with an append: a password hash in place of the user's
/// last one, or a new token's hash.
async fn write_companion(conn: &mut SqliteConnection, append: &Append) -> Result<(), sqlx::Error> {
    match &append.companion {
        None => return Ok(()),
        Some(Companion::Password(credential)) => sqlx::query(
            "INSERT INTO credentials (user_id, organization_id, password_hash, updated_at) \
             VALUES ($1, $2, $3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
             ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, \
             updated_at = excluded.updated_at",
        )
        .bind(credential.user_id.to_string())
        .bind(credential.organization_id.to_string())
        .bind(&credential.password_hash.0),
        Some(Companion::Token(token)) => sqlx::query(
            "INSERT INTO api_token_secrets (token_id, organization_id, secret_hash) \
             VALUES ($1, $2, $3)",
        )
        .bind(token.token_id.to_string())
        .bind(token.organization_id.to_string())
        .bind(&token.secret_hash),
    }
    .execute(&mut *conn)
    .await?;
    Ok(())
}
