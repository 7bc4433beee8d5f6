//! The write side: load an aggregate, let it decide, append its events with metadata —
//! on PostgreSQL (loaded by postgres-es, appended by one statement of ours) or SQLite
//! (sqlite-es), whichever the database is.

mod append;
mod append_connections;
mod cache;
mod error;
mod global_order;
mod group_commit;
mod grouped;
mod optimistic;
mod repository;
mod stores;
mod tail;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{Aggregate, EventStore as _};
use expensewise_domain::organization::{OrganizationError, AGGREGATE_TYPE as ORGANIZATION_TYPE};
use expensewise_domain::policy::{Policy, PolicyError, AGGREGATE_TYPE as POLICY_TYPE};
use expensewise_domain::{upcast, EmailClaim, EventMetadata, Expense, Organization, Receipt};

use append::{append_at_once, prepare, Decided, Expected};
use append_connections::AppendConnections;
pub use cache::AggregateCache;
use error::stale_or_conflict;
pub use error::{CommandError, Committed};
use global_order::version_and_last_write;
pub use global_order::{
    aggregate_events, aggregate_head, aggregate_version, event_at, events_about, last_write,
    read_after, read_filtered, readable, AuditFilter, BadPosition, GlobalPosition, RecordedEvent,
};
use group_commit::Appended;
pub use group_commit::GroupCommit;
pub use optimistic::{Guard, Scope, Settle};
pub use repository::AnyEventRepository;
use stores::{snapshot_due, Store};
pub use stores::{StoreFor, EXPENSE_SNAPSHOT_EVERY, ORGANIZATION_SNAPSHOT_EVERY};
pub use tail::{Follow, Tail};

use crate::credentials::Companion;
use crate::db::Database;
use crate::vault::Vault;

/// How a decision on an aggregate ended.
enum Attempt<A> {
    Done(Committed<A>),
    /// It was made on the aggregate as remembered, and that may be out of date: decide
    /// again on the stored one.
    Doubtful,
}

pub struct EventStore {
    db: Database,
    /// Seals personal fields as they are appended and opens them as they are loaded.
    vault: Vault,
    /// Counts commits made through this store, so in-process tailers wake at once.
    appended: tokio::sync::watch::Sender<u64>,
    /// The tail every consumer in this process reads new events through.
    tail: Tail,
    organizations: Store<Organization>,
    email_claims: Store<EmailClaim>,
    expenses: Store<Expense>,
    receipts: Store<Receipt>,
    policies: Store<Policy>,
    webhooks: Store<expensewise_domain::webhook::Webhooks>,
    accounting: Store<expensewise_domain::accounting::Accounting>,
    /// Policies as last loaded or written, by organization: every expense recorded is
    /// evaluated against its organization's, which seldom changes.
    policy_cache: AggregateCache<Policy>,
    /// Organizations as last loaded or written, by id. Every authenticated request needs
    /// its organization; while its version is unchanged the copy here is exact.
    organization_cache: AggregateCache<Organization>,
    /// Expenses as this process last wrote them: an edit decided on one of these costs a
    /// single statement (the append checks the sequence).
    expense_cache: AggregateCache<Expense>,
    /// On PostgreSQL, the connections appends use instead of the pool's, if any, and
    /// the queue that groups appends on them.
    append_connections: Option<std::sync::Arc<AppendConnections>>,
    grouped: grouped::Grouped,
}

/// What a command is decided on: the aggregate, and whether it is as this process
/// remembers it (rather than as just loaded).
struct Basis<A: Aggregate> {
    context: EventStoreAggregateContext<A>,
    remembered: bool,
}

/// An aggregate as loaded for a command (see [`EventStore::load_for_command`]).
pub struct Loaded<A: Aggregate> {
    context: EventStoreAggregateContext<A>,
    remembered: bool,
    /// The scope it was loaded in, which the command on it is appended in.
    scope: Scope,
}

impl<A: Aggregate> Loaded<A> {
    pub fn aggregate(&self) -> &A {
        &self.context.aggregate
    }
}

impl EventStore {
    /// An event store that appends through `connections` connections of its own on
    /// PostgreSQL (see `append_connections.rs`), or through the pool with 0.
    pub fn with_append_connections(db: Database, vault: Vault, connections: usize) -> Self {
        let append_connections = match &db {
            Database::Postgres(pool) if connections > 0 => Some(std::sync::Arc::new(
                AppendConnections::new(&pool.connect_options(), connections),
            )),
            _ => None,
        };
        Self {
            append_connections,
            ..Self::new(db, vault)
        }
    }

    pub fn new(db: Database, vault: Vault) -> Self {
        fn store<A: Aggregate>(db: &Database, vault: &Vault) -> Store<A> {
            PersistedEventStore::new_event_store(AnyEventRepository::new(db, vault))
                .with_upcasters(upcast::upcasters())
        }
        // Organizations are loaded on every authenticated request and grow with their
        // users; a snapshot every few events keeps loading to a row and a short tail.
        fn snapshotted<A: Aggregate>(db: &Database, vault: &Vault, every: usize) -> Store<A> {
            PersistedEventStore::new_snapshot_store(AnyEventRepository::new(db, vault), every)
                .with_upcasters(upcast::upcasters())
        }
        Self {
            organizations: snapshotted(&db, &vault, ORGANIZATION_SNAPSHOT_EVERY),
            email_claims: store(&db, &vault),
            expenses: snapshotted(&db, &vault, EXPENSE_SNAPSHOT_EVERY),
            receipts: store(&db, &vault),
            policies: store(&db, &vault),
            webhooks: store(&db, &vault),
            accounting: store(&db, &vault),
            policy_cache: AggregateCache::new(),
            organization_cache: AggregateCache::new(),
            expense_cache: AggregateCache::new(),
            append_connections: None,
            grouped: grouped::Grouped::default(),
            appended: tokio::sync::watch::Sender::new(0),
            tail: Tail::new(db.clone()),
            vault,
            db,
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Deletes the snapshots of these aggregates (type, id) and forgets them in this
    /// process: after an erasure, for they hold what they were made of in clear. They are
    /// made again from the events, which read erased now.
    pub async fn forget_snapshots(&self, aggregates: &[(&str, String)]) -> anyhow::Result<()> {
        for (aggregate_type, aggregate_id) in aggregates {
            crate::on_writer!(&self.db, |pool| {
                sqlx::query(
                    "DELETE FROM snapshots WHERE aggregate_type = $1 AND aggregate_id = $2",
                )
                .bind(aggregate_type)
                .bind(aggregate_id)
                .execute(pool)
                .await?;
            });
            self.organization_cache.forget(aggregate_id);
            self.expense_cache.forget(aggregate_id);
        }
        Ok(())
    }

    /// The keys personal fields are sealed with (see `vault`).
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Changes whenever a command of this process has appended events.
    pub fn subscribe_appends(&self) -> tokio::sync::watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// How a consumer in this process (the relay, a projector, a worker) follows the
    /// store: through the one tail of the process, woken by this store's appends.
    pub fn follow(&self) -> Follow {
        Follow {
            tail: self.tail.clone(),
            appends: self.subscribe_appends(),
            vault: self.vault.clone(),
        }
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

    /// The spend policy of an organization as of its latest change (version 0, no rules,
    /// when it never set one). Like organizations, kept in memory while its version holds.
    pub async fn load_policy(
        &self,
        organization_id: &str,
    ) -> Result<Policy, CommandError<PolicyError>> {
        let version = aggregate_version(&self.db, POLICY_TYPE, organization_id)
            .await
            .map_err(|e| CommandError::Technical(e.into()))?;
        match self.policy_cache.get(organization_id) {
            Some((cached, sequence)) if sequence as u64 == version => return Ok(cached),
            _ => {}
        }
        // Kept at version 0 too, so that a request of an organization with no policy
        // can decide on that from memory (`policy_for_request`).
        let policy: Policy = match version {
            0 => Policy::default(),
            _ => self.load(organization_id).await?,
        };
        self.policy_cache
            .put(organization_id, policy.clone(), policy.version as usize);
        Ok(policy)
    }

    /// The policy a request's command is decided under. Inside an optimistic request
    /// ([`Scope`]) it is the one this process last saw, without a query, and the request's
    /// appends hold only while the policy is still at that version — as the organization
    /// in [`EventStore::organization_for_request`].
    pub async fn policy_for_request(
        &self,
        scope: &Scope,
        organization_id: &str,
    ) -> Result<Policy, CommandError<PolicyError>> {
        match scope.remembered(&self.policy_cache, POLICY_TYPE, organization_id) {
            Some(policy) => Ok(policy),
            None => self.load_policy(organization_id).await,
        }
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
        scope: &Scope,
        id: &str,
    ) -> Result<Organization, CommandError<OrganizationError>> {
        match scope.remembered(&self.organization_cache, ORGANIZATION_TYPE, id) {
            Some(organization) => Ok(organization),
            None => self.load_organization(id).await,
        }
    }

    /// Like [`EventStore::execute`] for an aggregate that cannot exist yet (its id was
    /// just generated at random): nothing is read before the append. Should the id exist
    /// after all, the append conflicts on the first sequence number and changes nothing.
    pub async fn execute_new<A>(
        &self,
        scope: &Scope,
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
        let basis = Basis {
            context,
            remembered: false,
        };
        self.decide_and_append(scope, aggregate_id, basis, command, metadata, None)
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
        scope: &Scope,
        aggregate_id: &str,
    ) -> Result<Loaded<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate + Clone,
    {
        if let Some(context) = self.remembered::<A>(scope, aggregate_id) {
            scope.record_read(
                A::TYPE,
                aggregate_id,
                context.current_sequence,
                |store, id| store.forget::<A>(id),
            );
            return Ok(Loaded {
                context,
                remembered: true,
                scope: scope.clone(),
            });
        }
        Ok(Loaded {
            context: self.store().load_aggregate(aggregate_id).await?,
            remembered: false,
            scope: scope.clone(),
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
        let scope = &loaded.scope;
        match self
            .decide_and_append(
                scope,
                &id,
                Basis {
                    context: loaded.context,
                    remembered: loaded.remembered,
                },
                command,
                metadata,
                None,
            )
            .await?
        {
            Attempt::Done(committed) => Ok(committed),
            // The caller built the command from what it saw: only running the whole
            // request again can decide anew.
            Attempt::Doubtful => Err(stale_or_conflict(scope)),
        }
    }

    /// Runs `command` against the aggregate and appends what it decided, with
    /// `metadata` on every event. The append is committed before this returns. Inside an
    /// optimistic request the command is first tried on the aggregate as this process
    /// remembers it; unless that append holds, it is decided again on the stored one.
    pub async fn execute<A>(
        &self,
        scope: &Scope,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate<Services = ()> + Clone,
        A::Command: Clone,
    {
        self.execute_storing(scope, aggregate_id, command, metadata, None)
            .await
    }

    /// Like [`EventStore::execute`], storing `companion` with the events (in the same
    /// transaction) if the command appends any: for commands that create a user, change a
    /// password or issue a token, whose events only say so.
    pub async fn execute_with<A>(
        &self,
        scope: &Scope,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
        companion: &Companion,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate<Services = ()> + Clone,
        A::Command: Clone,
    {
        self.execute_storing(scope, aggregate_id, command, metadata, Some(companion))
            .await
    }

    async fn execute_storing<A>(
        &self,
        scope: &Scope,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
        companion: Option<&Companion>,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate<Services = ()> + Clone,
        A::Command: Clone,
    {
        if let Some(context) = self.remembered::<A>(scope, aggregate_id) {
            let attempt = self
                .decide_and_append(
                    scope,
                    aggregate_id,
                    Basis {
                        context,
                        remembered: true,
                    },
                    command.clone(),
                    metadata,
                    companion,
                )
                .await?;
            if let Attempt::Done(committed) = attempt {
                return Ok(committed);
            }
        }
        let context = self.store().load_aggregate(aggregate_id).await?;
        let basis = Basis {
            context,
            remembered: false,
        };
        self.decide_and_append(scope, aggregate_id, basis, command, metadata, companion)
            .await?
            .done()
    }

    /// Decides on `context` and appends. With `remembered` (the context is the aggregate
    /// as this process remembers it) every outcome but a held append is doubtful: the
    /// memory may be out of date, so a rejection or a no-op is not trusted either.
    async fn decide_and_append<A>(
        &self,
        scope: &Scope,
        aggregate_id: &str,
        Basis {
            context,
            remembered,
        }: Basis<A>,
        command: A::Command,
        metadata: &EventMetadata,
        companion: Option<&Companion>,
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
        let subject = <Self as StoreFor<A>>::subject(&aggregate);
        let guards = scope.guards();
        let mut head = None;
        if appended > 0 {
            let others = scope.take_other_reads(A::TYPE, aggregate_id);
            if !others.is_empty()
                && !self
                    .reads_current(others)
                    .await
                    .map_err(|e| CommandError::Technical(e.into()))?
            {
                return Err(stale_or_conflict(scope));
            }
            let expected = Expected {
                aggregate_type: A::TYPE,
                aggregate_id,
                sequence: base_sequence,
                guards: &guards,
            };
            let decided = Decided {
                events,
                vault: &self.vault,
                subject,
                metadata,
                snapshot: snapshot_due::<A, Self>(base_sequence, appended).then_some(&aggregate),
            };
            match &self.db {
                Database::Postgres(pool) => {
                    let connections = self.append_connections.as_ref().map(|c| (c, &self.grouped));
                    match append_at_once(pool, connections, expected, decided, companion).await? {
                        Some(position) => head = Some(position),
                        None => {
                            return self
                                .not_appended::<A>(scope, aggregate_id, &guards, remembered)
                                .await
                        }
                    }
                }
                Database::Sqlite(pools) => {
                    let (events, snapshot) = prepare(&expected, decided).await?;
                    let append = group_commit::Append {
                        aggregate_type: A::TYPE,
                        events,
                        snapshot,
                        companion: companion.cloned(),
                        guards,
                    };
                    match pools
                        .appends
                        .append(append)
                        .await
                        .map_err(|e| CommandError::Technical(anyhow::anyhow!(e)))?
                    {
                        Appended::At(position) => head = position,
                        Appended::Stale => return Err(stale_or_conflict(scope)),
                        // The guards held (they are checked in the same transaction).
                        Appended::Conflict => {
                            return self
                                .not_appended::<A>(scope, aggregate_id, &[], remembered)
                                .await
                        }
                    }
                }
            }
            scope.committed(A::TYPE, aggregate_id);
            if let Some(cache) = self.cache() {
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

    /// Why an append that expected something found otherwise: a guard failed (the
    /// organization or the policy changed: the request is stale), the remembered aggregate
    /// was out of date (decide again), or another writer took the sequence (a conflict).
    async fn not_appended<A>(
        &self,
        scope: &Scope,
        aggregate_id: &str,
        guards: &[Guard],
        remembered: bool,
    ) -> Result<Attempt<A>, CommandError<A::Error>>
    where
        Self: StoreFor<A>,
        A: Aggregate + Clone,
    {
        if self
            .guards_changed(guards)
            .await
            .map_err(|e| CommandError::Technical(e.into()))?
        {
            return Err(stale_or_conflict(scope));
        }
        if remembered {
            self.forget::<A>(aggregate_id);
            return Ok(Attempt::Doubtful);
        }
        Err(CommandError::Conflict)
    }
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
