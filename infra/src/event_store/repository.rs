//! One repository type over both event-store crates, so each aggregate has a single
//! concrete store type whichever database the configuration picks. Events pass the
//! vault on their way: sealed as they are stored, opened as they are loaded.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;

use super::group_commit::Appended;
use super::GroupCommit;
use crate::db::Database;
use crate::vault::Vault;

pub struct AnyEventRepository {
    stored: Stored,
    vault: Vault,
}

enum Stored {
    Postgres(PostgresEventRepository),
    /// On SQLite, loading reads on the reading connections; appends are group-committed
    /// on the writing one.
    Sqlite {
        reads: SqliteEventRepository,
        appends: GroupCommit,
    },
}

impl AnyEventRepository {
    pub fn new(db: &Database, vault: &Vault) -> Self {
        let stored = match db {
            Database::Postgres(pool) => {
                Stored::Postgres(PostgresEventRepository::new(pool.clone()))
            }
            Database::Sqlite(pools) => Stored::Sqlite {
                reads: SqliteEventRepository::new(pools.reads.clone()),
                appends: pools.appends.clone(),
            },
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
            Stored::Sqlite { reads, .. } => reads.get_events::<A>(aggregate_id).await,
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
            Stored::Sqlite { reads, .. } => {
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
            Stored::Sqlite { reads, .. } => reads.get_snapshot::<A>(aggregate_id).await,
        }
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let beside = super::group_commit::beside_in_scope();
        let mut events = events.to_vec();
        self.vault
            .seal(&mut events, beside.subject)
            .await
            .map_err(|e| PersistenceError::UnknownError(e.into()))?;
        match &self.stored {
            Stored::Postgres(r) => r.persist::<A>(&events, snapshot_update).await,
            Stored::Sqlite { appends, .. } => {
                let appended = appends
                    .append(
                        A::TYPE,
                        &events,
                        snapshot_update,
                        (beside.companion, beside.guards),
                    )
                    .await?;
                let _ = beside.appended.set(appended);
                match appended {
                    Appended::At(_) => Ok(()),
                    // Nothing was written; the event store reads why from `appended`.
                    Appended::Stale => Err(PersistenceError::OptimisticLockError),
                }
            }
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        match &self.stored {
            Stored::Postgres(r) => r.stream_events::<A>(aggregate_id).await,
            Stored::Sqlite { reads, .. } => reads.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match &self.stored {
            Stored::Postgres(r) => r.stream_all_events::<A>().await,
            Stored::Sqlite { reads, .. } => reads.stream_all_events::<A>().await,
        }
    }
}
