//! Group commit on SQLite: the appends of concurrent commands are written in one
//! transaction, so one fsync makes many of them durable.
//!
//! A single task owns the appending. It takes whatever appends are waiting (a command's
//! events, and the aggregate's snapshot when one is due), checks each against the
//! sequences stored (and the versions of the organization and policy it was decided on,
//! see `optimistic`), writes the events of all that hold with one statement, commits, and
//! only then answers each command, with where its last event stands in the global order. Appends arriving while a commit is on disk wait for
//! the next one: under load the batches grow by themselves, and a lone command is written
//! at once, without a timer. A conflict (the sequence was taken: another command on the
//! same aggregate got in first) fails only its own command.
//!
//! The task is not part of any request: a request dropped mid-way (its client went away)
//! leaves the batch it joined to be committed and answered as usual.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use serde_json::Value;
use sqlx::sqlite::SqliteConnection;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::{GlobalPosition, Guard};
use crate::credentials::Companion;

/// At most this many commands' appends share a transaction.
const MAX_BATCH: usize = 256;

/// SQLite's extended code for a primary key taken: the sequence is another command's.
const PRIMARY_KEY_TAKEN: &str = "1555";

/// The snapshot cqrs-es asks to write with the events: the aggregate's id, its state, and
/// which snapshot of it this is (1 for the first).
pub type SnapshotUpdate = (String, Value, usize);

struct Append {
    aggregate_type: String,
    events: Vec<SerializedEvent>,
    snapshot: Option<SnapshotUpdate>,
    companion: Option<Companion>,
    guards: Vec<Guard>,
    done: oneshot::Sender<Result<Appended, PersistenceError>>,
}

/// What became of an append that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Written; where its last event stands (`None`: it had no events).
    At(Option<GlobalPosition>),
    /// Not written: an organization or policy it was decided on has changed since.
    Stale,
}

/// What an append carries beside its events, which cqrs-es's commit (SQLite's appends
/// go through it) has no room for: the event store sets it around that one commit, and
/// the repository takes it from there.
#[derive(Debug, Clone, Default)]
pub struct Beside {
    /// The secret to store in the same transaction (see `credentials`).
    pub companion: Option<Companion>,
    /// Whose personal data the events are, where their aggregate says (see `vault`).
    pub subject: Option<uuid::Uuid>,
    /// Versions the append must still find (see `optimistic`).
    pub guards: Vec<Guard>,
    /// What became of the append, for the event store to read once cqrs-es's commit
    /// returns (its errors cannot tell a stale decision from a conflict).
    pub appended: Arc<OnceLock<Appended>>,
}

tokio::task_local! {
    pub static BESIDE: Beside;
}

/// What the append being made carries (nothing outside such a scope).
pub fn beside_in_scope() -> Beside {
    BESIDE.try_with(Beside::clone).unwrap_or_default()
}

/// The appender of one SQLite database, shared by every event store on it.
#[derive(Clone)]
pub struct GroupCommit {
    writes: SqlitePool,
    queue: Arc<OnceLock<mpsc::Sender<Append>>>,
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

    /// Appends `events` of an aggregate of `aggregate_type` (and its snapshot, and a
    /// secret) if its `guards` hold, durably: it returns once the transaction holding them
    /// is committed.
    pub async fn append(
        &self,
        aggregate_type: &str,
        events: &[SerializedEvent],
        snapshot: Option<SnapshotUpdate>,
        (companion, guards): (Option<Companion>, Vec<Guard>),
    ) -> Result<Appended, PersistenceError> {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(4 * MAX_BATCH);
            tokio::spawn(run(self.writes.clone(), receiver));
            sender
        });
        let (done, answer) = oneshot::channel();
        let append = Append {
            aggregate_type: aggregate_type.to_string(),
            events: events.to_vec(),
            snapshot,
            companion,
            guards,
            done,
        };
        queue
            .send(append)
            .await
            .map_err(|_| unknown("the appending task has stopped"))?;
        answer
            .await
            .map_err(|_| unknown("the appending task stopped before committing"))?
    }
}

fn unknown(message: &str) -> PersistenceError {
    PersistenceError::UnknownError(message.into())
}

async fn run(writes: SqlitePool, mut queue: mpsc::Receiver<Append>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        metrics::histogram!("expensewise_group_commit_appends").record(batch.len() as f64);
        match write(&writes, &batch).await {
            Ok(outcomes) => {
                for (append, outcome) in batch.drain(..).zip(outcomes) {
                    let _ = append.done.send(outcome);
                }
            }
            // Nothing of the batch is committed (the transaction did not get that far, or
            // its commit failed): every command in it fails, and may be retried.
            Err(e) => {
                let reason = e.to_string();
                for append in batch.drain(..) {
                    let _ = append.done.send(Err(PersistenceError::ConnectionError(
                        reason.clone().into(),
                    )));
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
async fn write(
    writes: &SqlitePool,
    batch: &[Append],
) -> Result<Vec<Result<Appended, PersistenceError>>, sqlx::Error> {
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
        let key = (append.aggregate_type.clone(), first.aggregate_id.clone());
        let head = heads.get(&key).copied().unwrap_or(0);
        if first.sequence as i64 != head + 1 {
            outcomes.push(Err(PersistenceError::OptimisticLockError));
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
            let written = insert_events(&mut tx, &[append])
                .await
                .map_err(persistence_error)?;
            write_companion(&mut tx, append).await?;
            write_snapshot(&mut tx, append).await?;
            Ok(written)
        }
        .await;
        match outcome {
            Ok(written) => {
                heads.insert(key, last.sequence as i64);
                positions.extend(written);
                outcomes.push(Ok(Appended::At(None)));
            }
            Err(e) => {
                sqlx::query("ROLLBACK TO append").execute(&mut *tx).await?;
                outcomes.push(Err(e));
            }
        }
        sqlx::query("RELEASE append").execute(&mut *tx).await?;
    }
    positions.extend(insert_events(&mut tx, &plain).await?);
    tx.commit().await?;
    for (append, outcome) in batch.iter().zip(&mut outcomes) {
        if let (Ok(Appended::At(at)), Some(last)) = (outcome, append.events.last()) {
            let key = (
                append.aggregate_type.clone(),
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
                .map(|e| (a.aggregate_type.as_str(), e.aggregate_id.as_str()))
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
        let sql = format!(
            "SELECT aggregate_type, aggregate_id, MAX(sequence) FROM events \
             WHERE (aggregate_type, aggregate_id) IN (VALUES {pairs}) \
             GROUP BY aggregate_type, aggregate_id"
        );
        let mut query = sqlx::query_as::<_, (String, String, i64)>(&sql);
        for (aggregate_type, aggregate_id) in chunk {
            query = query.bind(*aggregate_type).bind(*aggregate_id);
        }
        for (aggregate_type, aggregate_id, head) in query.fetch_all(&mut *conn).await? {
            heads.insert((aggregate_type, aggregate_id), head);
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
        .flat_map(|a| a.events.iter().map(|e| (a.aggregate_type.as_str(), e)))
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

/// Writes the snapshot that comes with an append: the first one of an aggregate, or the
/// next one in place of the last.
async fn write_snapshot(
    conn: &mut SqliteConnection,
    append: &Append,
) -> Result<(), PersistenceError> {
    let Some((aggregate_id, state, current_snapshot)) = &append.snapshot else {
        return Ok(());
    };
    let last_sequence = append.events.last().map(|e| e.sequence).unwrap_or(0) as i64;
    let written = if *current_snapshot == 1 {
        sqlx::query(
            "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, \
             current_snapshot, payload) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&append.aggregate_type)
        .bind(aggregate_id)
        .bind(last_sequence)
        .bind(*current_snapshot as i64)
        .bind(state)
        .execute(&mut *conn)
        .await
    } else {
        sqlx::query(
            "UPDATE snapshots SET last_sequence = $1, payload = $2, current_snapshot = $3 \
             WHERE aggregate_type = $4 AND aggregate_id = $5 AND current_snapshot = $6",
        )
        .bind(last_sequence)
        .bind(state)
        .bind(*current_snapshot as i64)
        .bind(&append.aggregate_type)
        .bind(aggregate_id)
        .bind(*current_snapshot as i64 - 1)
        .execute(&mut *conn)
        .await
    }
    .map_err(persistence_error)?;
    // Another command moved the snapshot on first: its events are the ones that count.
    if written.rows_affected() == 1 {
        Ok(())
    } else {
        Err(PersistenceError::OptimisticLockError)
    }
}

/// Stores the secret that comes with an append: a password hash in place of the user's
/// last one, or a new token's hash.
async fn write_companion(
    conn: &mut SqliteConnection,
    append: &Append,
) -> Result<(), PersistenceError> {
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
    .await
    .map_err(persistence_error)?;
    Ok(())
}

fn persistence_error(e: sqlx::Error) -> PersistenceError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(PRIMARY_KEY_TAKEN) => {
            PersistenceError::OptimisticLockError
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            PersistenceError::ConnectionError(Box::new(e))
        }
        _ => PersistenceError::UnknownError(Box::new(e)),
    }
}
