//! One repository type over both event-store crates, so each aggregate has a single
//! concrete store type whichever database the configuration picks: how aggregates are
//! loaded. Events are opened by the vault as they are loaded; they are written (and
//! sealed) by the event store itself.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;

use crate::db::Database;
use crate::vault::Vault;

pub struct AnyEventRepository {
    stored: Stored,
    vault: Vault,
}

enum Stored {
    Postgres(PostgresEventRepository),
    /// On SQLite, loading reads on the reading connections.
    Sqlite(SqliteEventRepository),
}

impl AnyEventRepository {
    pub fn new(db: &Database, vault: &Vault) -> Self {
        let stored = match db {
            Database::Postgres(pool) => {
                Stored::Postgres(PostgresEventRepository::new(pool.clone()))
            }
            Database::Sqlite(pools) => {
                Stored::Sqlite(SqliteEventRepository::new(pools.reads.clone()))
            }
        };
        Self {
            stored,
            vault: vault.clone(),
        }
    }

    async fn opened(
        &self,
        events: Result<Vec<SerializedEvent>, PersistenceError>,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let mut events = events?;
        self.vault
            .open_serialized(&mut events)
            .await
            .map_err(|e| PersistenceError::UnknownError(e.into()))?;
        Ok(events)
    }
}

impl PersistedEventRepository for AnyEventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = match &self.stored {
            Stored::Postgres(r) => r.get_events::<A>(aggregate_id).await,
            Stored::Sqlite(reads) => reads.get_events::<A>(aggregate_id).await,
        };
        self.opened(events).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = match &self.stored {
            Stored::Postgres(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
            Stored::Sqlite(reads) => {
                reads
                    .get_last_events::<A>(aggregate_id, last_sequence)
                    .await
            }
        };
        self.opened(events).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        match &self.stored {
            Stored::Postgres(r) => r.get_snapshot::<A>(aggregate_id).await,
            Stored::Sqlite(reads) => reads.get_snapshot::<A>(aggregate_id).await,
        }
    }

    /// Not how events are written here: the event store appends them itself, checking
    /// what the command was decided on in the same statement or transaction (`append.rs`,
    /// `group_commit.rs`), which cqrs-es's commit has no room for.
    async fn persist<A: Aggregate>(
        &self,
        _events: &[SerializedEvent],
        _snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        Err(PersistenceError::UnknownError(
            "events are appended by EventStore, not through cqrs-es's commit".into(),
        ))
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        match &self.stored {
            Stored::Postgres(r) => r.stream_events::<A>(aggregate_id).await,
            Stored::Sqlite(reads) => reads.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match &self.stored {
            Stored::Postgres(r) => r.stream_all_events::<A>().await,
            Stored::Sqlite(reads) => reads.stream_all_events::<A>().await,
        }
    }
}
