//! The database behind the event store and everything else that must survive a restart.
//! One enum instead of sqlx's `Any` driver: the two dialects differ where it matters
//! (types, global order), and the few queries that differ are written out for each.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection as _, PgPool, SqlitePool};

use crate::event_store::GroupCommit;

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../schema/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../schema/sqlite");

/// Some of the migrations above, as a source of migrations of its own.
#[cfg(feature = "testing")]
#[derive(Debug)]
struct OlderMigrations(Vec<sqlx::migrate::Migration>);

#[cfg(feature = "testing")]
impl sqlx::migrate::MigrationSource<'static> for OlderMigrations {
    fn resolve(
        self,
    ) -> futures::future::BoxFuture<
        'static,
        Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>,
    > {
        Box::pin(async move { Ok(self.0) })
    }
}

#[derive(Clone, Debug)]
pub enum Database {
    Postgres(PgPool),
    Sqlite(SqlitePools),
}

/// A SQLite file's connections: several that read, and the one that writes.
///
/// SQLite lets one writer in at a time. Writers on connections of their own find the
/// file locked and poll for it with growing sleeps (up to 100 ms each), which is what a
/// request's tail latency then shows. On one connection they queue in order instead, and
/// readers never wait for them (WAL).
///
/// Each commit on the writing connection is flushed to disk before it returns
/// (`synchronous=FULL`), except those of [`Database::begin_derived`].
#[derive(Clone, Debug)]
pub struct SqlitePools {
    pub reads: SqlitePool,
    pub writes: SqlitePool,
    /// Events are appended through here, many commands' in one transaction.
    pub appends: GroupCommit,
    /// Set while the writing connection commits without flushing: whoever takes it next
    /// gets it back to flushing (see [`Database::begin_derived`]).
    relaxed: Arc<AtomicBool>,
    /// The background checkpoint runs while any copy of these pools lives.
    _checkpointing: Arc<()>,
}

/// How often the pages committed to the write-ahead log are copied into the database
/// file, off the writing connection (see [`checkpoint_in_background`]).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// Pages in the write-ahead log past which the writing connection checkpoints itself,
/// after a commit. That copy is what lets the log start over, since no commit can come
/// in between; the background checkpoint has by then copied all but its last moments.
/// SQLite's default (1,000) put a copy of every page, and two flushes, inside a commit
/// four times as often, on the one connection commands append through.
const WRITER_CHECKPOINT_PAGES: &str = "4000";

/// What begins a transaction that is flushed to disk when it commits. Said again with
/// every such transaction rather than trusted from the connection's last user: a relaxed
/// transaction dropped half-way may leave it unflushing.
pub(crate) const BEGIN_DURABLE: &str = "PRAGMA synchronous = FULL; BEGIN IMMEDIATE";
const BEGIN_RELAXED: &str = "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE";
/// PostgreSQL's counterpart, for this transaction only (`SET LOCAL`).
const BEGIN_DERIVED: &str = "BEGIN; SET LOCAL synchronous_commit = off";

/// Runs the same statement on whichever pool the database has: on SQLite, a reading
/// connection (use [`on_writer!`] to change anything). The body is compiled once per
/// dialect, so it may use anything both sqlx drivers accept (`$1` placeholders work in
/// SQLite too).
#[macro_export]
macro_rules! on_database {
    ($db:expr, |$pool:ident| $body:expr) => {
        $crate::on_pool!($db, reads, |$pool| $body)
    };
}

/// Like [`on_database!`], for statements that write: on SQLite they run on the one
/// writing connection, after the writes queued before them.
#[macro_export]
macro_rules! on_writer {
    ($db:expr, |$pool:ident| $body:expr) => {
        $crate::on_pool!($db, writes, |$pool| $body)
    };
}

/// What [`on_database!`] and [`on_writer!`] share: the PostgreSQL pool, or the SQLite
/// pool named by `$sqlite`.
#[doc(hidden)]
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $sqlite:ident, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Database::Postgres($pool) => $body,
            $crate::db::Database::Sqlite(pools) => {
                let $pool = &pools.$sqlite;
                $body
            }
        }
    };
}

/// A pooled PostgreSQL connection idle this long is checked before it is used again.
pub(crate) const IDLE_BEFORE_CHECK: Duration = Duration::from_secs(1);

/// Whether `url` names a PostgreSQL server (in either of its spellings) rather than a
/// SQLite file.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn postgres_pool(max_connections: u32, acquire: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire)
        // sqlx checks a connection (a round trip) when it returns to the pool, and by
        // default again when it is taken out: two round trips besides each query's own.
        // Checking again only one that has sat idle keeps a lost server from failing a
        // request, without the cost under load.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for > IDLE_BEFORE_CHECK {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
}

impl Database {
    /// Connects to `url`: `postgres://…` or `sqlite://path`. A SQLite file and its folder
    /// are created when missing.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Database> {
        if is_postgres_url(url) {
            let options = PgConnectOptions::from_str(url)
                .context("DATABASE_URL is not a valid PostgreSQL URL")?;
            let pool = postgres_pool(max_connections, Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("cannot connect to PostgreSQL")?;
            Ok(Database::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("DATABASE_URL is not a valid SQLite URL")?
                .create_if_missing(true)
                // WAL lets queries read while a command writes; FULL makes each commit
                // durable before the HTTP response says it happened.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES);
            if let Some(parent) = Path::new(options.get_filename()).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).with_context(|| {
                        format!("cannot create the data directory {}", parent.display())
                    })?;
                }
            }
            let relaxed = Arc::new(AtomicBool::new(false));
            let flushing = relaxed.clone();
            let writes = SqlitePoolOptions::new()
                .max_connections(1)
                // A file does not go away as a server can: checking each connection before
                // use (sqlx's default) only costs a hand-off to its thread and back.
                .test_before_acquire(false)
                // Statements outside a transaction of ours (an idempotency key, a data
                // key) are durable when they return only if the connection flushes again
                // once a relaxed transaction is done with it.
                .after_release(move |connection, _| {
                    let flushing = flushing.clone();
                    Box::pin(async move {
                        if flushing.swap(false, Ordering::AcqRel) {
                            sqlx::query("PRAGMA synchronous = FULL")
                                .execute(&mut *connection)
                                .await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(options.clone())
                .await
                .context("cannot open the SQLite database")?;
            // The writing connection is one of the `max_connections`.
            let reads = SqlitePoolOptions::new()
                .max_connections(max_connections.saturating_sub(1).max(1))
                .test_before_acquire(false)
                .connect_with(options)
                .await
                .context("cannot open the SQLite database")?;
            let checkpointing = Arc::new(());
            tokio::spawn(checkpoint_in_background(
                reads.clone(),
                Arc::downgrade(&checkpointing),
            ));
            Ok(Database::Sqlite(SqlitePools {
                reads,
                appends: GroupCommit::new(writes.clone()),
                writes,
                relaxed,
                _checkpointing: checkpointing,
            }))
        } else {
            anyhow::bail!("DATABASE_URL must start with postgres:// or sqlite:")
        }
    }

    /// A pool for a PostgreSQL server that may be down now: connections are opened as
    /// queries need them, and a query waits at most `acquire` for one.
    pub fn connect_lazily(
        url: &str,
        max_connections: u32,
        acquire: Duration,
    ) -> anyhow::Result<Database> {
        let options = PgConnectOptions::from_str(url).context("not a valid PostgreSQL URL")?;
        Ok(Database::Postgres(
            postgres_pool(max_connections, acquire).connect_lazy_with(options),
        ))
    }

    /// Applies the migrations of `schema/` that this database has not seen yet.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Database::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
            Database::Sqlite(pools) => SQLITE_MIGRATIONS.run(&pools.writes).await,
        }
        .context("migrating the database failed")
    }

    /// Applies only the migrations numbered below `version`: the database as an older
    /// release left it, for tests of what a later migration does to its data.
    #[cfg(feature = "testing")]
    pub async fn migrate_before(&self, version: i64) -> anyhow::Result<()> {
        let all = match self {
            Database::Postgres(_) => &POSTGRES_MIGRATIONS,
            Database::Sqlite(_) => &SQLITE_MIGRATIONS,
        };
        let older = sqlx::migrate::Migrator::new(OlderMigrations(
            all.iter()
                .filter(|m| m.version < version)
                .cloned()
                .collect(),
        ))
        .await?;
        match self {
            Database::Postgres(pool) => older.run(pool).await,
            Database::Sqlite(pools) => older.run(&pools.writes).await,
        }
        .context("migrating the database failed")
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> anyhow::Result<()> {
        on_database!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Database::Postgres(_) => "postgres",
            Database::Sqlite(_) => "sqlite",
        }
    }

    pub async fn close(&self) {
        match self {
            Database::Postgres(pool) => pool.close().await,
            Database::Sqlite(pools) => {
                pools.writes.close().await;
                pools.reads.close().await;
            }
        }
    }
}

/// Copies what the write-ahead log holds into the database file every
/// [`CHECKPOINT_EVERY`], from a reading connection, until the pools are closed or gone.
///
/// A passive checkpoint takes no write lock: commands go on appending while it copies
/// and flushes. The log starts over at the first commit after a copy that caught up with
/// it; under steady writes one rarely does, and the writing connection's own checkpoint
/// ([`WRITER_CHECKPOINT_PAGES`]) then finds little left to copy.
async fn checkpoint_in_background(reads: SqlitePool, open: Weak<()>) {
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if open.strong_count() == 0 || reads.is_closed() {
            break;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&reads)
            .await
        {
            tracing::warn!(error = %e, "checkpointing SQLite's log failed");
        }
    }
}

/// A PostgreSQL advisory lock, held for as long as this lives (on a connection of its
/// own, taken out of the pool): how one instance of a role (the relay, the notary) is
/// the active one among replicas. SQLite serves one process, which holds nothing.
pub struct Leadership {
    _held: Option<sqlx::PgConnection>,
}

impl Database {
    /// The lock `key`, unless another session holds it.
    pub async fn try_lead(&self, key: i64) -> anyhow::Result<Option<Leadership>> {
        match self {
            Database::Postgres(pool) => {
                let mut conn = pool.acquire().await?.detach();
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(key)
                    .fetch_one(&mut conn)
                    .await?;
                Ok(locked.then_some(Leadership { _held: Some(conn) }))
            }
            Database::Sqlite(_) => Ok(Some(Leadership { _held: None })),
        }
    }
}

/// A transaction on whichever database there is, for writers that must change several
/// tables atomically (a projection's rows and its checkpoint).
pub enum Tx {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

/// Runs the same statement on a [`Tx`], like [`on_database!`] does on a pool.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::db::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::db::Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Postgres(tx) => tx.commit().await,
            Tx::Sqlite(tx) => tx.commit().await,
        }
    }
}

impl Database {
    /// A transaction for writing (on SQLite it holds the write lock from the start).
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Database::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            // IMMEDIATE takes the write lock up front. A deferred transaction that reads
            // first and writes later fails at once with SQLITE_BUSY when another writer
            // got in between, instead of waiting its turn.
            Database::Sqlite(pools) => Tx::Sqlite(pools.writes.begin_with(BEGIN_DURABLE).await?),
        })
    }

    /// A transaction for state made from events alone (a read model's rows, a worker's
    /// checkpoint), which a crash may lose as long as what it was made from is kept.
    ///
    /// On SQLite its commit is not flushed to disk by itself (`synchronous=NORMAL`): the
    /// write-ahead log is one file written in order, so the next durable commit (the next
    /// append of events) flushes it too, and a power cut before that loses only this
    /// transaction — whose events, committed durably before it, are applied again from
    /// the checkpoint it also loses. Without it every projection batch and checkpoint
    /// paid a flush of its own, on the one connection commands append through.
    ///
    /// On PostgreSQL the same holds with `synchronous_commit` off for the transaction:
    /// its commit returns before the log is flushed, the next durable commit (or the
    /// WAL writer, within a fraction of a second) flushes it, and a crash loses only
    /// such transactions, never one committed after them. Projectors, workers and the
    /// relay then no longer add a flush to each batch beside the appends'.
    pub async fn begin_derived(&self) -> Result<Tx, sqlx::Error> {
        match self {
            Database::Postgres(pool) => Ok(Tx::Postgres(pool.begin_with(BEGIN_DERIVED).await?)),
            Database::Sqlite(pools) => {
                let tx = pools.writes.begin_with(BEGIN_RELAXED).await;
                // Also on failure: the pragma may have run before BEGIN failed.
                pools.relaxed.store(true, Ordering::Release);
                Ok(Tx::Sqlite(tx?))
            }
        }
    }
}
