//! The write side: load an aggregate, let it decide, append its events with metadata —
//! on PostgreSQL (postgres-es) or SQLite (sqlite-es), whichever the database is.

mod global_order;
mod repository;

use cqrs_es::event_sink::EventSink;
use std::collections::HashMap;

use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, EventStore as _};
use expensewise_domain::organization::{OrganizationError, AGGREGATE_TYPE as ORGANIZATION_TYPE};
use expensewise_domain::{upcast, EmailClaim, EventMetadata, Expense, Organization, Receipt};

pub use global_order::{
    aggregate_events, aggregate_head, aggregate_version, read_after, read_filtered, AuditFilter,
    BadPosition, GlobalPosition, RecordedEvent,
};
pub use repository::AnyEventRepository;

use crate::db::Database;

type Store<A> = PersistedEventStore<AnyEventRepository, A>;

/// Events between two snapshots of an organization.
pub const ORGANIZATION_SNAPSHOT_EVERY: usize = 20;
/// Events between two snapshots of an expense: most expenses have fewer than twenty events
/// and never get one; long-lived ones load a snapshot and at most 19 events. (Every 50
/// made edits of a 1,000-event expense 47 % as fast as creates; every 20, 77 %.)
pub const EXPENSE_SNAPSHOT_EVERY: usize = 20;

/// Why a command did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate said no; `E` tells why in business terms.
    #[error(transparent)]
    Rejected(E),
    /// Another writer appended to the same aggregate between our load and our append.
    #[error("the aggregate was changed concurrently")]
    Conflict,
    #[error(transparent)]
    Technical(anyhow::Error),
}

impl<E: std::error::Error> From<AggregateError<E>> for CommandError<E> {
    fn from(err: AggregateError<E>) -> Self {
        match err {
            AggregateError::UserError(e) => Self::Rejected(e),
            AggregateError::AggregateConflict => Self::Conflict,
            AggregateError::DatabaseConnectionError(e)
            | AggregateError::DeserializationError(e)
            | AggregateError::UnexpectedError(e) => Self::Technical(anyhow::anyhow!(e)),
        }
    }
}

/// The outcome of a command that was accepted.
#[derive(Debug)]
pub struct Committed<A> {
    /// The aggregate after the command's events were applied.
    pub aggregate: A,
    /// How many events the command appended (0 when it changed nothing).
    pub appended: usize,
    /// Where the aggregate's latest event stands in the global order; `None` only for an
    /// aggregate that has no events at all.
    pub head: Option<GlobalPosition>,
}

/// Gives the event store for one aggregate type.
pub trait StoreFor<A: Aggregate> {
    /// Events between two snapshots, for a snapshotted aggregate type.
    const SNAPSHOT_EVERY: Option<usize>;
    fn store(&self) -> &Store<A>;
}

/// Whether appending `count` events after `sequence` reaches the next snapshot (then
/// cqrs-es writes the events with the snapshot): cqrs-es's own rule, a snapshot at every
/// multiple of the snapshot size.
fn snapshot_due<A: Aggregate, S: StoreFor<A>>(sequence: usize, count: usize) -> bool {
    S::SNAPSHOT_EVERY.is_some_and(|every| count >= every - sequence % every)
}

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

/// Appends the events in one statement — its own transaction — and returns the last
/// one's place in the global order: one round trip to PostgreSQL where postgres-es takes
/// three (BEGIN, an INSERT per event, COMMIT) and asking for the position a fourth. A
/// sequence number taken meanwhile by another writer fails it whole, as a conflict.
async fn append_at_once<E: std::error::Error>(
    pool: &sqlx::PgPool,
    events: &[SerializedEvent],
) -> Result<GlobalPosition, CommandError<E>> {
    let column = |f: fn(&SerializedEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence as i64).collect();
    let payloads: Vec<serde_json::Value> = events.iter().map(|e| e.payload.clone()).collect();
    let metadata: Vec<serde_json::Value> = events.iter().map(|e| e.metadata.clone()).collect();
    let appended = sqlx::query_as::<_, (i64, i64)>(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata) \
         SELECT t, id, seq, et, ev, p::json, m::json \
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[], \
         $7::jsonb[]) AS u(t, id, seq, et, ev, p, m) \
         RETURNING (txid::text)::bigint, position",
    )
    .bind(column(|e| e.aggregate_type.clone()))
    .bind(column(|e| e.aggregate_id.clone()))
    .bind(sequences)
    .bind(column(|e| e.event_type.clone()))
    .bind(column(|e| e.event_version.clone()))
    .bind(payloads)
    .bind(metadata)
    .fetch_all(pool)
    .await;
    match appended {
        Ok(rows) => rows
            .into_iter()
            .map(|(txid, position)| GlobalPosition { txid, position })
            .max()
            .ok_or_else(|| CommandError::Technical(anyhow::anyhow!("the append returned no rows"))),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            Err(CommandError::Conflict)
        }
        Err(e) => Err(CommandError::Technical(e.into())),
    }
}

pub struct EventStore {
    db: Database,
    /// Counts commits made through this store, so in-process tailers wake at once.
    appended: tokio::sync::watch::Sender<u64>,
    organizations: Store<Organization>,
    email_claims: Store<EmailClaim>,
    expenses: Store<Expense>,
    receipts: Store<Receipt>,
    /// Organizations as last loaded, by id. Every authenticated request needs its
    /// organization; while its version is unchanged the copy here is exact.
    organization_cache: std::sync::Mutex<HashMap<String, Organization>>,
}

/// An aggregate as loaded for a command (see [`EventStore::load_for_command`]).
pub struct Loaded<A: Aggregate>(EventStoreAggregateContext<A>);

impl<A: Aggregate> Loaded<A> {
    pub fn aggregate(&self) -> &A {
        &self.0.aggregate
    }
}

/// Organizations kept in memory at most; beyond, the cache starts over.
const ORGANIZATION_CACHE_SIZE: usize = 10_000;

impl EventStore {
    pub fn new(db: Database) -> Self {
        fn store<A: Aggregate>(db: &Database) -> Store<A> {
            PersistedEventStore::new_event_store(AnyEventRepository::new(db))
                .with_upcasters(upcast::upcasters())
        }
        // Organizations are loaded on every authenticated request and grow with their
        // users; a snapshot every few events keeps loading to a row and a short tail.
        fn snapshotted<A: Aggregate>(db: &Database, every: usize) -> Store<A> {
            PersistedEventStore::new_snapshot_store(AnyEventRepository::new(db), every)
                .with_upcasters(upcast::upcasters())
        }
        Self {
            organizations: snapshotted(&db, ORGANIZATION_SNAPSHOT_EVERY),
            email_claims: store(&db),
            expenses: snapshotted(&db, EXPENSE_SNAPSHOT_EVERY),
            receipts: store(&db),
            organization_cache: std::sync::Mutex::new(HashMap::new()),
            appended: tokio::sync::watch::Sender::new(0),
            db,
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Changes whenever a command of this process has appended events.
    pub fn subscribe_appends(&self) -> tokio::sync::watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// The current state of an aggregate (its `Default` if it has no events).
    pub async fn load<A>(&self, aggregate_id: &str) -> Result<A, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate,
    {
        Ok(self.store().load_aggregate(aggregate_id).await?.aggregate)
    }

    /// The organization as of its latest event. One index lookup tells whether the copy
    /// in memory is still current (any replica's append changes the version); only a
    /// changed organization is loaded again.
    pub async fn load_organization(
        &self,
        id: &str,
    ) -> Result<Organization, CommandError<OrganizationError>> {
        let version = aggregate_version(&self.db, ORGANIZATION_TYPE, id)
            .await
            .map_err(|e| CommandError::Technical(e.into()))?;
        if let Some(cached) = self.cached_organization(id, version) {
            return Ok(cached);
        }
        let organization: Organization = self.load(id).await?;
        if organization.exists() {
            let mut cache = self
                .organization_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if cache.len() >= ORGANIZATION_CACHE_SIZE {
                cache.clear();
            }
            cache.insert(id.to_string(), organization.clone());
        }
        Ok(organization)
    }

    fn cached_organization(&self, id: &str, version: u64) -> Option<Organization> {
        let cache = self
            .organization_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cache.get(id).filter(|o| o.version() == version).cloned()
    }

    /// Like [`EventStore::execute`] for an aggregate that cannot exist yet (its id was
    /// just generated at random): nothing is read before the append. Should the id exist
    /// after all, the append conflicts on the first sequence number and changes nothing.
    pub async fn execute_new<A>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate<Services = ()> + Clone,
    {
        let context = EventStoreAggregateContext {
            aggregate_id: aggregate_id.to_string(),
            aggregate: A::default(),
            current_sequence: 0,
            current_snapshot: None,
        };
        self.decide_and_append(aggregate_id, context, command, metadata)
            .await
    }

    /// The aggregate as it stands, as if a command had just left it unchanged: for
    /// answering a retried create with what the first attempt made.
    pub async fn current<A>(
        &self,
        aggregate_id: &str,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate,
    {
        let aggregate: A = self.load(aggregate_id).await?;
        let head = aggregate_head(&self.db, A::TYPE, aggregate_id)
            .await
            .map_err(|e| CommandError::Technical(e.into()))?;
        Ok(Committed {
            aggregate,
            appended: 0,
            head,
        })
    }

    /// Loads an aggregate for a command the caller wants to look at it before sending:
    /// [`EventStore::execute_loaded`] then decides on this very state without loading it
    /// again (an append by someone else in between conflicts, as with `execute`).
    pub async fn load_for_command<A>(
        &self,
        aggregate_id: &str,
    ) -> Result<Loaded<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate,
    {
        Ok(Loaded(self.store().load_aggregate(aggregate_id).await?))
    }

    pub async fn execute_loaded<A>(
        &self,
        loaded: Loaded<A>,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate<Services = ()> + Clone,
    {
        let id = loaded.0.aggregate_id.clone();
        self.decide_and_append(&id, loaded.0, command, metadata)
            .await
    }

    /// Runs `command` against the aggregate and appends what it decided, with
    /// `metadata` on every event. The append is committed before this returns.
    pub async fn execute<A>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate<Services = ()> + Clone,
    {
        let context = self.store().load_aggregate(aggregate_id).await?;
        self.decide_and_append(aggregate_id, context, command, metadata)
            .await
    }

    async fn decide_and_append<A>(
        &self,
        aggregate_id: &str,
        context: EventStoreAggregateContext<A>,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate<Services = ()> + Clone,
    {
        let store = self.store();
        // `EventSink::write` applies each event to the aggregate it is given, and
        // cqrs-es's snapshot commit applies the same events again to the context's
        // aggregate. Deciding on a copy keeps the context at its pre-command state, so
        // snapshots see every event exactly once.
        let mut aggregate = context.aggregate.clone();
        let sink = EventSink::default();
        aggregate
            .handle(command, &(), &sink)
            .await
            .map_err(CommandError::Rejected)?;
        let events = sink.collect().await;
        let appended = events.len();
        let mut head = None;
        if appended > 0 {
            match &self.db {
                Database::Postgres(pool)
                    if !snapshot_due::<A, Self>(context.current_sequence, appended) =>
                {
                    let serialized =
                        serialize::<A>(aggregate_id, context.current_sequence, events, metadata)
                            .map_err(|e| CommandError::Technical(e.into()))?;
                    head = Some(append_at_once(pool, &serialized).await?);
                }
                _ => {
                    store.commit(events, context, metadata.to_map()).await?;
                }
            }
            self.appended.send_modify(|n| *n = n.wrapping_add(1));
            metrics::counter!("expensewise_events_appended_total", "aggregate_type" => A::TYPE)
                .increment(appended as u64);
        }
        let head = match head {
            Some(head) => Some(head),
            None => aggregate_head(&self.db, A::TYPE, aggregate_id)
                .await
                .map_err(|e| CommandError::Technical(e.into()))?,
        };
        Ok(Committed {
            aggregate,
            appended,
            head,
        })
    }
}

macro_rules! store_for {
    ($aggregate:ty, $field:ident, $snapshot_every:expr) => {
        impl StoreFor<$aggregate> for EventStore {
            const SNAPSHOT_EVERY: Option<usize> = $snapshot_every;
            fn store(&self) -> &Store<$aggregate> {
                &self.$field
            }
        }
    };
}

store_for!(
    Organization,
    organizations,
    Some(ORGANIZATION_SNAPSHOT_EVERY)
);
store_for!(EmailClaim, email_claims, None);
store_for!(Expense, expenses, Some(EXPENSE_SNAPSHOT_EVERY));
store_for!(Receipt, receipts, None);

#[cfg(test)]
mod tests {
    use super::*;

    /// cqrs-es snapshots when an append reaches a multiple of the snapshot size; the
    /// one-statement append must leave exactly those appends to it.
    #[test]
    fn a_snapshot_is_due_when_an_append_reaches_a_multiple_of_its_size() {
        for sequence in 0..100 {
            for count in 1..50 {
                let reaches =
                    (sequence + 1..=sequence + count).any(|s| s % EXPENSE_SNAPSHOT_EVERY == 0);
                assert_eq!(
                    snapshot_due::<Expense, EventStore>(sequence, count),
                    reaches,
                    "{count} events after {sequence}"
                );
                assert!(!snapshot_due::<Receipt, EventStore>(sequence, count));
            }
        }
    }
}
