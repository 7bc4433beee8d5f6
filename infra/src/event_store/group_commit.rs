//! Group commit on SQLite: the appends of concurrent commands are written in one
//! transaction, so one fsync makes many of them durable.
//!
//! A single task owns the appending. It takes whatever appends are waiting (a command's
//! events, and the aggregate's snapshot when one is due), writes each inside a savepoint
//! of one transaction, commits, and only then answers each command. Appends arriving
//! while a commit is on disk wait for the next one: under load the batches grow by
//! themselves, and a lone command is written at once, without a timer. A conflict (the
//! sequence was taken: another command on the same aggregate got in first) rolls back
//! only its own savepoint and fails only its own command.
//!
//! The task is not part of any request: a request dropped mid-way (its client went away)
//! leaves the batch it joined to be committed and answered as usual.

use std::sync::{Arc, OnceLock};

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use serde_json::Value;
use sqlx::sqlite::SqliteConnection;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

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
    done: oneshot::Sender<Result<(), PersistenceError>>,
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

    /// Appends `events` of an aggregate of `aggregate_type` (and its snapshot), durably:
    /// it returns once the transaction holding them is committed.
    pub async fn append(
        &self,
        aggregate_type: &str,
        events: &[SerializedEvent],
        snapshot: Option<SnapshotUpdate>,
    ) -> Result<(), PersistenceError> {
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
async fn write(
    writes: &SqlitePool,
    batch: &[Append],
) -> Result<Vec<Result<(), PersistenceError>>, sqlx::Error> {
    let mut tx = writes.begin_with("BEGIN IMMEDIATE").await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for append in batch {
        sqlx::query("SAVEPOINT append").execute(&mut *tx).await?;
        let outcome = write_one(&mut tx, append).await;
        if outcome.is_err() {
            sqlx::query("ROLLBACK TO append").execute(&mut *tx).await?;
        }
        sqlx::query("RELEASE append").execute(&mut *tx).await?;
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
}

async fn write_one(conn: &mut SqliteConnection, append: &Append) -> Result<(), PersistenceError> {
    let mut last_sequence = 0;
    for event in &append.events {
        last_sequence = event.sequence;
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&append.aggregate_type)
        .bind(&event.aggregate_id)
        .bind(event.sequence as i64)
        .bind(&event.event_type)
        .bind(&event.event_version)
        .bind(&event.payload)
        .bind(&event.metadata)
        .execute(&mut *conn)
        .await
        .map_err(persistence_error)?;
    }
    let Some((aggregate_id, state, current_snapshot)) = &append.snapshot else {
        return Ok(());
    };
    let written = if *current_snapshot == 1 {
        sqlx::query(
            "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, \
             current_snapshot, payload) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&append.aggregate_type)
        .bind(aggregate_id)
        .bind(last_sequence as i64)
        .bind(*current_snapshot as i64)
        .bind(state)
        .execute(&mut *conn)
        .await
    } else {
        sqlx::query(
            "UPDATE snapshots SET last_sequence = $1, payload = $2, current_snapshot = $3 \
             WHERE aggregate_type = $4 AND aggregate_id = $5 AND current_snapshot = $6",
        )
        .bind(last_sequence as i64)
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
