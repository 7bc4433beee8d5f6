//! The PostgreSQL append: a command's events, and its snapshot when one is due, in one
//! statement that also checks what the command was decided on; and what the SQLite
//! append (`group_commit.rs`) shares with it: the events and snapshot as stored.

use cqrs_es::persist::SerializedEvent;
use cqrs_es::Aggregate;
use expensewise_domain::EventMetadata;

use uuid::Uuid;

use std::sync::Arc;

use super::append_connections::AppendConnections;
use super::grouped::{Grouped, NotWritten};
use super::{CommandError, GlobalPosition, Guard};
use crate::credentials::Companion;
use crate::vault::Vault;

/// The events as cqrs-es would store them: numbered after `sequence`, each with the
/// command's metadata.
fn serialize<A: Aggregate>(
    aggregate_id: &str,
    sequence: usize,
    events: Vec<A::Event>,
    metadata: &EventMetadata,
) -> Result<Vec<SerializedEvent>, cqrs_es::persist::PersistenceError> {
    let metadata = metadata.to_map();
    events
        .into_iter()
        .zip(sequence + 1..)
        .map(|(payload, sequence)| {
            SerializedEvent::try_from(&cqrs_es::EventEnvelope::<A> {
                aggregate_id: aggregate_id.to_string(),
                sequence,
                payload,
                metadata: metadata.clone(),
            })
        })
        .collect()
}

/// What an append must still find for it to hold: the aggregate at the sequence the
/// command was decided on, and (in an optimistic request) the organization at the version
/// the caller was authorized at and the policy at the version it was decided under.
pub(super) struct Expected<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: usize,
    pub guards: &'a [Guard],
}

/// The guards as three parallel arrays (type, id, version), to bind.
pub(super) fn guard_columns<'g>(
    guards: impl Iterator<Item = &'g Guard>,
) -> (Vec<&'g str>, Vec<&'g str>, Vec<i64>) {
    let mut columns = (Vec::new(), Vec::new(), Vec::new());
    for guard in guards {
        columns.0.push(guard.aggregate_type);
        columns.1.push(guard.id.as_str());
        columns.2.push(guard.version as i64);
    }
    columns
}

/// What a command decided, to append: its events (their personal fields to be sealed,
/// `subject`'s where their aggregate says whose), with the command's metadata, and the
/// aggregate after them when a snapshot is due.
pub(super) struct Decided<'a, A: Aggregate> {
    pub events: Vec<A::Event>,
    pub vault: &'a Vault,
    pub subject: Option<Uuid>,
    pub metadata: &'a EventMetadata,
    pub snapshot: Option<&'a A>,
}

/// The events as stored (numbered after the expected sequence, sealed) and the snapshot
/// as text: what either database's append writes.
pub(super) async fn prepare<A: Aggregate>(
    expected: &Expected<'_>,
    decided: Decided<'_, A>,
) -> Result<(Vec<SerializedEvent>, Option<String>), CommandError<A::Error>> {
    let technical = |e: &dyn std::fmt::Display| CommandError::Technical(anyhow::anyhow!("{e}"));
    let mut events = serialize::<A>(
        expected.aggregate_id,
        expected.sequence,
        decided.events,
        decided.metadata,
    )
    .map_err(|e| technical(&e))?;
    decided
        .vault
        .seal(&mut events, decided.subject)
        .await
        .map_err(CommandError::Technical)?;
    let snapshot = decided
        .snapshot
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| technical(&e))?;
    Ok((events, snapshot))
}

/// Appends the events (their personal fields sealed, `subject`'s where their aggregate
/// says whose), and the aggregate's snapshot when one is due, and the secret that
/// comes with them (see `credentials`), in one statement — its own transaction — if what it expects
/// still holds, and returns the last event's place in
/// the global order (`None`: it did not hold, nothing was written). One round trip to
/// PostgreSQL where postgres-es takes three (BEGIN, an INSERT per event, COMMIT) or four
/// with a snapshot, asking for the position one more and checking the organization
/// another. A sequence number taken meanwhile by another writer fails it whole, as a
/// conflict. With connections of its own, a plain append is grouped with those of other
/// commands (see `grouped.rs`).
pub(super) async fn append_at_once<A: Aggregate>(
    pool: &sqlx::PgPool,
    connections: Option<(&Arc<AppendConnections>, &Grouped)>,
    expected: Expected<'_>,
    decided: Decided<'_, A>,
    companion: Option<&Companion>,
) -> Result<Option<GlobalPosition>, CommandError<A::Error>> {
    let (events, snapshot) = prepare(&expected, decided).await?;
    if let Some((connections, grouped)) = connections {
        if Grouped::takes(
            expected.aggregate_type,
            snapshot.is_none() && companion.is_none(),
        ) {
            return match grouped.append(connections, expected, events).await {
                Ok(position) => Ok(position),
                Err(NotWritten::Conflict) => Err(CommandError::Conflict),
                Err(NotWritten::Failed(reason)) => {
                    Err(CommandError::Technical(anyhow::anyhow!(reason)))
                }
            };
        }
    }
    let events = &events;
    let appended = match connections {
        Some((connections, _)) => {
            append_leased(connections, expected, events, snapshot, companion).await
        }
        None => append_statement(pool, expected, events, snapshot, companion)
            .await
            .map(last_position),
    };
    match appended {
        Ok(position) => Ok(position),
        Err(e) if sequence_taken(&e) => Err(CommandError::Conflict),
        Err(e) => Err(CommandError::Technical(e.into())),
    }
}

/// [`append_statement`] on one of `connections`: the last event's place in the global
/// order, `None` if what it expects did not hold.
pub(super) async fn append_leased(
    connections: &AppendConnections,
    expected: Expected<'_>,
    events: &[SerializedEvent],
    snapshot: Option<String>,
    companion: Option<&Companion>,
) -> Result<Option<GlobalPosition>, sqlx::Error> {
    let mut lease = connections.acquire().await?;
    let appended =
        append_statement(lease.connection(), expected, events, snapshot, companion).await;
    lease.finish(&appended);
    appended.map(last_position)
}

/// The last of the events' (txid, position), as a place in the global order.
pub(super) fn last_position(rows: Vec<(i64, i64)>) -> Option<GlobalPosition> {
    rows.into_iter()
        .map(|(txid, position)| GlobalPosition { txid, position })
        .max()
}

/// Whether an append failed because another writer took one of its sequence numbers
/// (a unique violation): a conflict.
pub(super) fn sequence_taken(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("23505"))
}

/// The statement of [`append_at_once`]: the events' (txid, position), none if what it
/// expects did not hold.
async fn append_statement<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    expected: Expected<'_>,
    events: &[SerializedEvent],
    snapshot: Option<String>,
    companion: Option<&Companion>,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let column = |f: fn(&SerializedEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence as i64).collect();
    // As text: the columns are `json`, which PostgreSQL then only validates (bound as
    // values they would travel as jsonb, be decoded, and be printed back to text).
    let payloads = column(|e| e.payload.to_string());
    let metadata = column(|e| e.metadata.to_string());
    let (credential, token) = match companion {
        Some(Companion::Password(credential)) => (Some(credential), None),
        Some(Companion::Token(token)) => (None, Some(token)),
        None => (None, None),
    };
    let (guard_types, guard_ids, guard_versions) = guard_columns(expected.guards.iter());
    // The snapshot, when one is due, in postgres-es's layout (one row per aggregate,
    // `current_snapshot` counting them), written only if the events were.
    sqlx::query_as::<_, (i64, i64)>(
        "WITH appended AS ( \
           INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) \
           SELECT t, id, seq, et, ev, p::json, m::json \
           FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
             $6::text[], $7::text[]) AS u(t, id, seq, et, ev, p, m) \
           WHERE (SELECT COALESCE(MAX(sequence), 0) FROM events \
                  WHERE aggregate_type = $8 AND aggregate_id = $9) = $10 \
             AND NOT EXISTS (SELECT FROM UNNEST($11::text[], $12::text[], $13::bigint[]) \
                  AS g(t, id, version) \
                  WHERE (SELECT COALESCE(MAX(sequence), 0) FROM events \
                         WHERE aggregate_type = g.t AND aggregate_id = g.id) <> g.version) \
           RETURNING (txid::text)::bigint AS txid, position), \
         updated AS ( \
           UPDATE snapshots SET last_sequence = $14, payload = $15::json, \
             current_snapshot = current_snapshot + 1 \
           WHERE $15::text IS NOT NULL AND EXISTS (SELECT FROM appended) \
             AND aggregate_type = $8 AND aggregate_id = $9 \
           RETURNING 1), \
         inserted AS ( \
           INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, \
             current_snapshot, payload) \
           SELECT $8, $9, $14, 1, $15::json \
           WHERE $15::text IS NOT NULL AND EXISTS (SELECT FROM appended) \
             AND NOT EXISTS (SELECT FROM updated)), \
         credential AS ( \
           INSERT INTO credentials (user_id, organization_id, password_hash, updated_at) \
           SELECT $16, $17, $18, now() \
           WHERE $16::text IS NOT NULL AND EXISTS (SELECT FROM appended) \
           ON CONFLICT (user_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, \
             updated_at = EXCLUDED.updated_at), \
         token AS ( \
           INSERT INTO api_token_secrets (token_id, organization_id, secret_hash) \
           SELECT $19, $20, $21 \
           WHERE $19::text IS NOT NULL AND EXISTS (SELECT FROM appended)) \
         SELECT txid, position FROM appended",
    )
    .bind(column(|e| e.aggregate_type.clone()))
    .bind(column(|e| e.aggregate_id.clone()))
    .bind(sequences)
    .bind(column(|e| e.event_type.clone()))
    .bind(column(|e| e.event_version.clone()))
    .bind(payloads)
    .bind(metadata)
    .bind(expected.aggregate_type)
    .bind(expected.aggregate_id)
    .bind(expected.sequence as i64)
    .bind(guard_types)
    .bind(guard_ids)
    .bind(guard_versions)
    .bind((expected.sequence + events.len()) as i64)
    .bind(snapshot)
    .bind(credential.map(|c| c.user_id.to_string()))
    .bind(credential.map(|c| c.organization_id.to_string()))
    .bind(credential.map(|c| c.password_hash.0.as_str()))
    .bind(token.map(|t| t.token_id.to_string()))
    .bind(token.map(|t| t.organization_id.to_string()))
    .bind(token.map(|t| t.secret_hash.as_str()))
    .fetch_all(executor)
    .await
}
