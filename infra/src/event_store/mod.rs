//! The write side: load an aggregate, let it decide, append its events with metadata —
//! on PostgreSQL (loaded by postgres-es, appended by one statement of ours) or SQLite
//! (sqlite-es), whichever the database is.

mod append_connections;
mod global_order;
mod optimistic;
mod repository;

use cqrs_es::event_sink::EventSink;
use std::collections::HashMap;
use std::sync::Mutex;

use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, EventStore as _};
use expensewise_domain::organization::{OrganizationError, AGGREGATE_TYPE as ORGANIZATION_TYPE};
use expensewise_domain::{upcast, EmailClaim, EventMetadata, Expense, Organization, Receipt};

use append_connections::AppendConnections;
use global_order::version_and_last_write;
pub use global_order::{
    aggregate_events, aggregate_head, aggregate_version, read_after, read_filtered, AuditFilter,
    BadPosition, GlobalPosition, RecordedEvent,
};
pub use optimistic::{Scope, Settle};
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
    /// An optimistic request (see [`Scope`]) was decided on an organization or aggregate
    /// that has changed since; nothing was appended, and the request is to run again.
    #[error("the request was decided on state that has changed since")]
    Stale,
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
    /// Where aggregates of this type are remembered, if they are.
    fn cache(&self) -> Option<&AggregateCache<A>>;
}

/// Whether appending `count` events after `sequence` reaches the next snapshot: the rule
/// cqrs-es applies on SQLite (a snapshot at every multiple of the snapshot size), kept by
/// our PostgreSQL append so that both stores snapshot alike.
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

/// What an append must still find for it to hold: the aggregate at the sequence the
/// command was decided on, and (in an optimistic request) the organization at the version
/// the caller was authorized at.
struct Expected<'a> {
    aggregate_type: &'a str,
    aggregate_id: &'a str,
    sequence: usize,
    organization: Option<&'a (String, u64)>,
}

/// Appends the events, and the aggregate's snapshot when one is due, in one statement — its
/// own transaction — if what it expects still holds, and returns the last event's place in
/// the global order (`None`: it did not hold, nothing was written). One round trip to
/// PostgreSQL where postgres-es takes three (BEGIN, an INSERT per event, COMMIT) or four
/// with a snapshot, asking for the position one more and checking the organization
/// another. A sequence number taken meanwhile by another writer fails it whole, as a
/// conflict.
async fn append_at_once<E: std::error::Error>(
    pool: &sqlx::PgPool,
    connections: Option<&AppendConnections>,
    expected: Expected<'_>,
    events: &[SerializedEvent],
    snapshot: Option<String>,
) -> Result<Option<GlobalPosition>, CommandError<E>> {
    let appended = match connections {
        Some(connections) => {
            let mut lease = connections
                .acquire()
                .await
                .map_err(|e| CommandError::Technical(e.into()))?;
            let appended = append_statement(lease.connection(), expected, events, snapshot).await;
            lease.finish(&appended);
            appended
        }
        None => append_statement(pool, expected, events, snapshot).await,
    };
    match appended {
        Ok(rows) => Ok(rows
            .into_iter()
            .map(|(txid, position)| GlobalPosition { txid, position })
            .max()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            Err(CommandError::Conflict)
        }
        Err(e) => Err(CommandError::Technical(e.into())),
    }
}

/// The statement of [`append_at_once`]: the events' (txid, position), none if what it
/// expects did not hold.
async fn append_statement<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    expected: Expected<'_>,
    events: &[SerializedEvent],
    snapshot: Option<String>,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let column = |f: fn(&SerializedEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence as i64).collect();
    // As text: the columns are `json`, which PostgreSQL then only validates (bound as
    // values they would travel as jsonb, be decoded, and be printed back to text).
    let payloads = column(|e| e.payload.to_string());
    let metadata = column(|e| e.metadata.to_string());
    let (organization, organization_version) = match expected.organization {
        Some((id, version)) => (Some(id.as_str()), *version as i64),
        None => (None, 0),
    };
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
             AND ($11::text IS NULL OR (SELECT COALESCE(MAX(sequence), 0) FROM events \
                  WHERE aggregate_type = $12 AND aggregate_id = $11) = $13) \
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
             AND NOT EXISTS (SELECT FROM updated)) \
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
    .bind(organization)
    .bind(ORGANIZATION_TYPE)
    .bind(organization_version)
    .bind((expected.sequence + events.len()) as i64)
    .bind(snapshot)
    .fetch_all(executor)
    .await
}

/// Aggregates as this process last wrote (or, for organizations, loaded) them, with their
/// sequence. Bounded: beyond its size it starts over.
pub struct AggregateCache<A> {
    entries: Mutex<HashMap<String, (A, usize)>>,
}

/// Aggregates kept in memory at most, per type.
const CACHE_SIZE: usize = 10_000;

impl<A: Clone> AggregateCache<A> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (A, usize)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: &str) -> Option<(A, usize)> {
        self.entries().get(id).cloned()
    }

    fn put(&self, id: &str, aggregate: A, sequence: usize) {
        let mut entries = self.entries();
        if entries.len() >= CACHE_SIZE {
            entries.clear();
        }
        entries.insert(id.to_string(), (aggregate, sequence));
    }

    fn forget(&self, id: &str) {
        self.entries().remove(id);
    }
}

/// How a decision on an aggregate ended.
enum Attempt<A> {
    Done(Committed<A>),
    /// It was made on the aggregate as remembered, and that may be out of date: decide
    /// again on the stored one.
    Doubtful,
}

pub struct EventStore {
    db: Database,
    /// Counts commits made through this store, so in-process tailers wake at once.
    appended: tokio::sync::watch::Sender<u64>,
    organizations: Store<Organization>,
    email_claims: Store<EmailClaim>,
    expenses: Store<Expense>,
    receipts: Store<Receipt>,
    /// Organizations as last loaded or written, by id. Every authenticated request needs
    /// its organization; while its version is unchanged the copy here is exact.
    organization_cache: AggregateCache<Organization>,
    /// Expenses as this process last wrote them: an edit decided on one of these costs a
    /// single statement (the append checks the sequence).
    expense_cache: AggregateCache<Expense>,
    /// On PostgreSQL, the connections appends use instead of the pool's, if any.
    append_connections: Option<AppendConnections>,
}

/// An aggregate as loaded for a command (see [`EventStore::load_for_command`]).
pub struct Loaded<A: Aggregate> {
    context: EventStoreAggregateContext<A>,
    remembered: bool,
}

impl<A: Aggregate> Loaded<A> {
    pub fn aggregate(&self) -> &A {
        &self.context.aggregate
    }
}

impl EventStore {
    /// An event store that appends through `connections` connections of its own on
    /// PostgreSQL (see `append_connections.rs`), or through the pool with 0.
    pub fn with_append_connections(db: Database, connections: usize) -> Self {
        let append_connections = match &db {
            Database::Postgres(pool) if connections > 0 => {
                Some(AppendConnections::new(&pool.connect_options(), connections))
            }
            _ => None,
        };
        Self {
            append_connections,
            ..Self::new(db)
        }
    }

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
            organization_cache: AggregateCache::new(),
            expense_cache: AggregateCache::new(),
            append_connections: None,
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
        self.organization_at(id, version).await
    }

    /// The organization for a query by `user`, and where the latest event that user
    /// caused stands in the global order (one statement for both): the query waits
    /// until its read model has passed that place, so that the user reads their own
    /// writes whichever process or replica took them.
    pub async fn organization_for_query(
        &self,
        id: &str,
        user: &str,
    ) -> Result<(Organization, Option<GlobalPosition>), CommandError<OrganizationError>> {
        let (version, last_write) = version_and_last_write(&self.db, ORGANIZATION_TYPE, id, user)
            .await
            .map_err(|e| CommandError::Technical(e.into()))?;
        Ok((self.organization_at(id, version).await?, last_write))
    }

    /// The organization at `version`: the copy in memory when it is that version.
    async fn organization_at(
        &self,
        id: &str,
        version: u64,
    ) -> Result<Organization, CommandError<OrganizationError>> {
        match self.organization_cache.get(id) {
            Some((cached, sequence)) if sequence as u64 == version => return Ok(cached),
            _ => {}
        }
        let organization: Organization = self.load(id).await?;
        if organization.exists() {
            self.organization_cache
                .put(id, organization.clone(), organization.version() as usize);
        }
        Ok(organization)
    }

    /// The caller's organization for a request. Inside an optimistic request ([`Scope`])
    /// it is taken as this process last saw it, without a query: the request's appends
    /// then hold only while the organization is still at that version, and a request that
    /// appends nothing has it checked when it ends.
    pub async fn organization_for_request(
        &self,
        id: &str,
    ) -> Result<Organization, CommandError<OrganizationError>> {
        if optimistic::active() {
            if let Some((organization, version)) = self.organization_cache.get(id) {
                optimistic::expect_organization(id, version as u64);
                return Ok(organization);
            }
        }
        self.load_organization(id).await
    }

    /// Whether the answer of a finished optimistic request stands: false when it was
    /// decided on state that has changed since (it committed nothing then, and is to run
    /// again outside any scope).
    pub async fn settle(&self, scope: Scope) -> Result<bool, sqlx::Error> {
        let (organization, reads) = match scope.settle() {
            Settle::Confirmed => return Ok(true),
            Settle::RunAgain => return Ok(false),
            Settle::Check {
                organization,
                reads,
            } => (organization, reads),
        };
        if let Some((id, version)) = organization {
            if aggregate_version(&self.db, ORGANIZATION_TYPE, &id).await? != version {
                return Ok(false);
            }
        }
        for read in reads {
            let current = aggregate_version(&self.db, read.aggregate_type, &read.id).await?;
            if current != read.sequence as u64 {
                (read.forget)(self, &read.id);
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The aggregate as this process remembers it, for an optimistic request on
    /// PostgreSQL (where an append can check the sequence in the same statement).
    fn remembered<A>(&self, aggregate_id: &str) -> Option<EventStoreAggregateContext<A>>
    where
        Self: StoreFor<A>,
        A: Aggregate + Clone,
    {
        if !matches!(self.db, Database::Postgres(_)) || !optimistic::active() {
            return None;
        }
        let (aggregate, sequence) = self.cache()?.get(aggregate_id)?;
        Some(EventStoreAggregateContext {
            aggregate_id: aggregate_id.to_string(),
            aggregate,
            current_sequence: sequence,
            current_snapshot: None,
        })
    }

    fn forget<A>(&self, aggregate_id: &str)
    where
        Self: StoreFor<A>,
        A: Aggregate + Clone,
    {
        if let Some(cache) = self.cache() {
            cache.forget(aggregate_id);
        }
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
        self.decide_and_append(aggregate_id, context, false, command, metadata)
            .await?
            .done()
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
    /// Inside an optimistic request the aggregate may be the one this process remembers;
    /// the caller's decision on it then holds only if it was current, which the append
    /// checks (or, without one, the end of the request).
    pub async fn load_for_command<A>(
        &self,
        aggregate_id: &str,
    ) -> Result<Loaded<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate + Clone,
    {
        if let Some(context) = self.remembered::<A>(aggregate_id) {
            optimistic::record_read(
                A::TYPE,
                aggregate_id,
                context.current_sequence,
                |store, id| store.forget::<A>(id),
            );
            return Ok(Loaded {
                context,
                remembered: true,
            });
        }
        Ok(Loaded {
            context: self.store().load_aggregate(aggregate_id).await?,
            remembered: false,
        })
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
        let id = loaded.context.aggregate_id.clone();
        match self
            .decide_and_append(&id, loaded.context, loaded.remembered, command, metadata)
            .await?
        {
            Attempt::Done(committed) => Ok(committed),
            // The caller built the command from what it saw: only running the whole
            // request again can decide anew.
            Attempt::Doubtful if optimistic::stale() => Err(CommandError::Stale),
            Attempt::Doubtful => Err(CommandError::Conflict),
        }
    }

    /// Runs `command` against the aggregate and appends what it decided, with
    /// `metadata` on every event. The append is committed before this returns. Inside an
    /// optimistic request the command is first tried on the aggregate as this process
    /// remembers it; unless that append holds, it is decided again on the stored one.
    pub async fn execute<A>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate<Services = ()> + Clone,
        A::Command: Clone,
    {
        if let Some(context) = self.remembered::<A>(aggregate_id) {
            let attempt = self
                .decide_and_append(aggregate_id, context, true, command.clone(), metadata)
                .await?;
            if let Attempt::Done(committed) = attempt {
                return Ok(committed);
            }
        }
        let context = self.store().load_aggregate(aggregate_id).await?;
        self.decide_and_append(aggregate_id, context, false, command, metadata)
            .await?
            .done()
    }

    /// Decides on `context` and appends. With `remembered` (the context is the aggregate
    /// as this process remembers it) every outcome but a held append is doubtful: the
    /// memory may be out of date, so a rejection or a no-op is not trusted either.
    async fn decide_and_append<A>(
        &self,
        aggregate_id: &str,
        context: EventStoreAggregateContext<A>,
        remembered: bool,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Attempt<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate<Services = ()> + Clone,
    {
        // `EventSink::write` applies each event to the aggregate it is given, and
        // cqrs-es's snapshot commit applies the same events again to the context's
        // aggregate. Deciding on a copy keeps the context at its pre-command state, so
        // snapshots see every event exactly once.
        let mut aggregate = context.aggregate.clone();
        let base_sequence = context.current_sequence;
        let sink = EventSink::default();
        let decided = aggregate.handle(command, &(), &sink).await;
        let events = sink.collect().await;
        let appended = events.len();
        if remembered && (decided.is_err() || appended == 0) {
            self.forget::<A>(aggregate_id);
            return Ok(Attempt::Doubtful);
        }
        decided.map_err(CommandError::Rejected)?;
        let guard = optimistic::organization_guard();
        let mut head = None;
        if appended > 0 {
            match &self.db {
                Database::Postgres(pool) => {
                    let serialized = serialize::<A>(aggregate_id, base_sequence, events, metadata)
                        .map_err(|e| CommandError::Technical(e.into()))?;
                    let snapshot = match snapshot_due::<A, Self>(base_sequence, appended) {
                        true => Some(
                            serde_json::to_string(&aggregate)
                                .map_err(|e| CommandError::Technical(e.into()))?,
                        ),
                        false => None,
                    };
                    let expected = Expected {
                        aggregate_type: A::TYPE,
                        aggregate_id,
                        sequence: base_sequence,
                        organization: guard.as_ref(),
                    };
                    let connections = self.append_connections.as_ref();
                    match append_at_once(pool, connections, expected, &serialized, snapshot).await?
                    {
                        Some(position) => head = Some(position),
                        None => {
                            return self
                                .not_appended::<A>(aggregate_id, guard, remembered)
                                .await
                        }
                    }
                }
                // Nothing is remembered on SQLite, where cqrs-es appends (and snapshots).
                Database::Sqlite(_) => {
                    if self.organization_changed(guard.as_ref()).await? {
                        return stale();
                    }
                    store_commit(self.store(), events, context, metadata).await?;
                }
            }
            optimistic::committed(A::TYPE, aggregate_id);
            if let (Database::Postgres(_), Some(cache)) = (&self.db, self.cache()) {
                cache.put(aggregate_id, aggregate.clone(), base_sequence + appended);
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
        Ok(Attempt::Done(Committed {
            aggregate,
            appended,
            head,
        }))
    }

    /// Why an append that expected something found otherwise: the organization changed
    /// (the request is stale), the remembered aggregate was out of date (decide again), or
    /// another writer took the sequence (a conflict).
    async fn not_appended<A>(
        &self,
        aggregate_id: &str,
        guard: Option<(String, u64)>,
        remembered: bool,
    ) -> Result<Attempt<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate + Clone,
    {
        if self.organization_changed(guard.as_ref()).await? {
            return stale();
        }
        if remembered {
            self.forget::<A>(aggregate_id);
            return Ok(Attempt::Doubtful);
        }
        Err(CommandError::Conflict)
    }

    async fn organization_changed<E: std::error::Error>(
        &self,
        guard: Option<&(String, u64)>,
    ) -> Result<bool, CommandError<E>> {
        let Some((id, version)) = guard else {
            return Ok(false);
        };
        let current = aggregate_version(&self.db, ORGANIZATION_TYPE, id)
            .await
            .map_err(|e| CommandError::Technical(e.into()))?;
        Ok(current != *version)
    }
}

/// A stale optimistic request, to be run again; a conflict where it cannot be.
fn stale<T, E: std::error::Error>() -> Result<T, CommandError<E>> {
    if optimistic::stale() {
        Err(CommandError::Stale)
    } else {
        Err(CommandError::Conflict)
    }
}

async fn store_commit<A: Aggregate>(
    store: &Store<A>,
    events: Vec<A::Event>,
    context: EventStoreAggregateContext<A>,
    metadata: &EventMetadata,
) -> Result<(), CommandError<A::Error>> {
    store.commit(events, context, metadata.to_map()).await?;
    Ok(())
}

impl<A> Attempt<A> {
    /// The outcome of a decision on the stored aggregate, which is never doubtful.
    fn done<E: std::error::Error>(self) -> Result<Committed<A>, CommandError<E>> {
        match self {
            Self::Done(committed) => Ok(committed),
            Self::Doubtful => Err(CommandError::Conflict),
        }
    }
}

macro_rules! store_for {
    ($aggregate:ty, $field:ident, $snapshot_every:expr $(, remembered in $cache:ident)?) => {
        impl StoreFor<$aggregate> for EventStore {
            const SNAPSHOT_EVERY: Option<usize> = $snapshot_every;
            fn store(&self) -> &Store<$aggregate> {
                &self.$field
            }
            fn cache(&self) -> Option<&AggregateCache<$aggregate>> {
                None $(.or(Some(&self.$cache)))?
            }
        }
    };
}

store_for!(
    Organization,
    organizations,
    Some(ORGANIZATION_SNAPSHOT_EVERY),
    remembered in organization_cache
);
store_for!(EmailClaim, email_claims, None);
store_for!(
    Expense,
    expenses,
    Some(EXPENSE_SNAPSHOT_EVERY),
    remembered in expense_cache
);
store_for!(Receipt, receipts, None);

#[cfg(test)]
mod tests {
    use super::*;

    /// cqrs-es snapshots when an append reaches a multiple of the snapshot size; the
    /// PostgreSQL append must snapshot at exactly those appends.
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
