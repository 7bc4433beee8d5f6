//! Group commit on PostgreSQL: the appends of concurrent commands are written by one
//! statement, in one transaction, so that one commit (and its WAL flush) serves many.
//!
//! A few appender tasks share one queue. An appender takes every append waiting, writes
//! them, answers each command, and takes what arrived meanwhile: under load the batches
//! grow by themselves, and a lone command is written at once, without a timer. Each
//! append keeps its own expectations (its aggregate at the sequence it was decided on,
//! its organization and policy at the versions it was decided on): one that no longer
//! holds writes nothing and fails only its own command. Only plain appends are grouped;
//! one with a snapshot or a secret, or to an organization or a policy (whose versions
//! other appends of the batch check), takes the single statement of `append.rs`.
//!
//! The appenders are not part of any request: a request dropped mid-way (its client went
//! away) leaves its append to be committed and answered as usual.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, Weak};

use cqrs_es::persist::SerializedEvent;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::append::{append_leased, guard_columns, sequence_taken, Expected};
use super::append_connections::AppendConnections;
use super::{GlobalPosition, Guard};
use expensewise_domain::organization::AGGREGATE_TYPE as ORGANIZATION_TYPE;
use expensewise_domain::policy::AGGREGATE_TYPE as POLICY_TYPE;

/// At most this many commands' appends share a statement.
const MAX_BATCH: usize = 128;
/// How many batches may be written at once: while one commits, the next gathers.
const APPENDERS: usize = 2;

/// Why an append wrote nothing.
#[derive(Debug)]
pub(super) enum NotWritten {
    /// A sequence it was to write was taken meanwhile by another writer.
    Conflict,
    Failed(String),
}

/// An append's outcome: the global position of its last event, or `None` when what it
/// expected no longer held.
type Outcome = Result<Option<GlobalPosition>, NotWritten>;

struct Pending {
    aggregate_type: String,
    aggregate_id: String,
    sequence: usize,
    guards: Vec<Guard>,
    events: Vec<SerializedEvent>,
    done: oneshot::Sender<Outcome>,
}

impl Pending {
    fn expected(&self) -> Expected<'_> {
        Expected {
            aggregate_type: &self.aggregate_type,
            aggregate_id: &self.aggregate_id,
            sequence: self.sequence,
            guards: &self.guards,
        }
    }
}

/// The queue of one event store's grouped appends.
#[derive(Default)]
pub(super) struct Grouped {
    queue: OnceLock<mpsc::Sender<Pending>>,
}

impl Grouped {
    /// Whether an append like this one is grouped (see the module's note).
    pub fn takes(aggregate_type: &str, plain: bool) -> bool {
        plain && aggregate_type != ORGANIZATION_TYPE && aggregate_type != POLICY_TYPE
    }

    /// Appends `events` (sealed already) if `expected` still holds, durably: returns once
    /// the transaction holding them is committed. The appenders start with the first
    /// append (inside the runtime that makes it) and stop when `connections` is dropped.
    pub async fn append(
        &self,
        connections: &Arc<AppendConnections>,
        expected: Expected<'_>,
        events: Vec<SerializedEvent>,
    ) -> Outcome {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(4 * MAX_BATCH);
            let receiver = Arc::new(Mutex::new(receiver));
            for _ in 0..APPENDERS {
                tokio::spawn(run(Arc::downgrade(connections), receiver.clone()));
            }
            sender
        });
        let (done, answer) = oneshot::channel();
        let pending = Pending {
            aggregate_type: expected.aggregate_type.to_string(),
            aggregate_id: expected.aggregate_id.to_string(),
            sequence: expected.sequence,
            guards: expected.guards.to_vec(),
            events,
            done,
        };
        let stopped = || NotWritten::Failed("the appending task has stopped".into());
        queue.send(pending).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(connections: Weak<AppendConnections>, queue: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if queue.lock().await.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let Some(connections) = connections.upgrade() else {
            return;
        };
        metrics::histogram!("expensewise_group_commit_appends").record(batch.len() as f64);
        write(&connections, std::mem::take(&mut batch)).await;
    }
}

/// Writes the batch and answers each append. A second append to an aggregate already in
/// the batch is written after it, on its own: both were decided before either was
/// written, and their expectations are for the store as the first one leaves it.
async fn write(connections: &AppendConnections, batch: Vec<Pending>) {
    let mut aggregates = HashSet::new();
    let (grouped, after): (Vec<_>, Vec<_>) = batch.into_iter().partition(|pending| {
        aggregates.insert((pending.aggregate_type.clone(), pending.aggregate_id.clone()))
    });
    if grouped.len() > 1 {
        match write_grouped(connections, &grouped).await {
            Ok(rows) => {
                let mut last = HashMap::new();
                for (aggregate_type, aggregate_id, position) in rows {
                    let entry = last
                        .entry((aggregate_type, aggregate_id))
                        .or_insert(position);
                    *entry = (*entry).max(position);
                }
                for pending in grouped {
                    let key = (pending.aggregate_type, pending.aggregate_id);
                    let _ = pending.done.send(Ok(last.get(&key).copied()));
                }
            }
            // Another process took a sequence of the batch: which one is not said, and
            // the statement wrote nothing. Each append is written on its own, so that
            // the conflict fails only its own command.
            Err(e) if sequence_taken(&e) => {
                for pending in grouped {
                    write_alone(connections, pending).await;
                }
            }
            Err(e) => {
                let reason = e.to_string();
                for pending in grouped {
                    let _ = pending.done.send(Err(NotWritten::Failed(reason.clone())));
                }
            }
        }
    } else {
        for pending in grouped {
            write_alone(connections, pending).await;
        }
    }
    for pending in after {
        write_alone(connections, pending).await;
    }
}

async fn write_alone(connections: &AppendConnections, pending: Pending) {
    let outcome =
        match append_leased(connections, pending.expected(), &pending.events, None, None).await {
            Ok(position) => Ok(position),
            Err(e) if sequence_taken(&e) => Err(NotWritten::Conflict),
            Err(e) => Err(NotWritten::Failed(e.to_string())),
        };
    let _ = pending.done.send(outcome);
}

/// The events of every append whose expectations hold, in one statement: (aggregate
/// type, aggregate id, global position) of each event written.
async fn write_grouped(
    connections: &AppendConnections,
    batch: &[Pending],
) -> Result<Vec<(String, String, GlobalPosition)>, sqlx::Error> {
    let events = || batch.iter().flat_map(|pending| pending.events.iter());
    let column = |f: fn(&SerializedEvent) -> String| events().map(f).collect::<Vec<_>>();
    let sequences: Vec<i64> = events().map(|e| e.sequence as i64).collect();
    // Each guard with the number of its append in the batch (from 1, as ORDINALITY).
    let guarded: Vec<i64> = batch
        .iter()
        .zip(1..)
        .flat_map(|(p, n)| p.guards.iter().map(move |_| n))
        .collect();
    let (guard_types, guard_ids, guard_versions) =
        guard_columns(batch.iter().flat_map(|p| p.guards.iter()));
    let mut lease = connections.acquire().await?;
    // Rows are inserted in the order given (`ORDER BY n`), which is the order their
    // positions are assigned in: each aggregate's events keep their sequence order.
    let written = sqlx::query_as::<_, (String, String, i64, i64)>(
        "WITH expected AS ( \
           SELECT * FROM UNNEST($8::text[], $9::text[], $10::bigint[]) WITH ORDINALITY \
             AS x(t, id, seq, n)), \
         guards AS ( \
           SELECT * FROM UNNEST($11::bigint[], $12::text[], $13::text[], $14::bigint[]) \
             AS g(n, t, id, version)), \
         held AS ( \
           SELECT x.t, x.id FROM expected x \
           WHERE (SELECT COALESCE(MAX(sequence), 0) FROM events \
                  WHERE aggregate_type = x.t AND aggregate_id = x.id) = x.seq \
             AND NOT EXISTS (SELECT FROM guards g WHERE g.n = x.n \
                  AND (SELECT COALESCE(MAX(sequence), 0) FROM events \
                       WHERE aggregate_type = g.t AND aggregate_id = g.id) <> g.version)) \
         INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
           event_version, payload, metadata) \
         SELECT u.t, u.id, u.seq, u.et, u.ev, u.p::json, u.m::json \
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
           $6::text[], $7::text[]) WITH ORDINALITY AS u(t, id, seq, et, ev, p, m, n) \
         WHERE (u.t, u.id) IN (SELECT t, id FROM held) \
         ORDER BY u.n \
         RETURNING aggregate_type, aggregate_id, (txid::text)::bigint, position",
    )
    .bind(column(|e| e.aggregate_type.clone()))
    .bind(column(|e| e.aggregate_id.clone()))
    .bind(sequences)
    .bind(column(|e| e.event_type.clone()))
    .bind(column(|e| e.event_version.clone()))
    // As text: see `append_statement`.
    .bind(column(|e| e.payload.to_string()))
    .bind(column(|e| e.metadata.to_string()))
    .bind(
        batch
            .iter()
            .map(|p| p.aggregate_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .iter()
            .map(|p| p.aggregate_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(batch.iter().map(|p| p.sequence as i64).collect::<Vec<_>>())
    .bind(guarded)
    .bind(guard_types)
    .bind(guard_ids)
    .bind(guard_versions)
    .fetch_all(lease.connection())
    .await;
    lease.finish(&written);
    Ok(written?
        .into_iter()
        .map(|(aggregate_type, aggregate_id, txid, position)| {
            (
                aggregate_type,
                aggregate_id,
                GlobalPosition { txid, position },
            )
        })
        .collect())
}
