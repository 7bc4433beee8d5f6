//! One repository type over both event-store crates, so each aggregate has a single
//! concrete store type whichever database the configuration picks.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;

use super::GroupCommit;
use crate::db::Database;

pub enum AnyEventRepository {
    Postgres(PostgresEventRepository),
    /// On SQLite, loading reads on the reading connections; appends are group-committed
    /// on the writing one.
    Sqlite {
        reads: SqliteEventRepository,
        appends: GroupCommit,
    },
}

impl AnyEventRepository {
    pub fn new(db: &Database) -> Self {
        match db {
            Database::Postgres(pool) => Self::Postgres(PostgresEventRepository::new(pool.clone())),
            Database::Sqlite(pools) => Self::Sqlite {
                reads: SqliteEventRepository::new(pools.reads.clone()),
                appends: pools.appends.clone(),
            },
        }
    }
}

impl PersistedEventRepository for AnyEventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Self::Postgres(r) => r.get_events::<A>(aggregate_id).await,
            Self::Sqlite { reads, .. } => reads.get_events::<A>(aggregate_id).await,
        }
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Self::Postgres(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
            Self::Sqlite { reads, .. } => {
                reads
                    .get_last_events::<A>(aggregate_id, last_sequence)
                    .await
            }
        }
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        match self {
            Self::Postgres(r) => r.get_snapshot::<A>(aggregate_id).await,
            Self::Sqlite { reads, .. } => reads.get_snapshot::<A>(aggregate_id).await,
        }
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        match self {
            Self::Postgres(r) => r.persist::<A>(events, snapshot_update).await,
            Self::Sqlite { appends, .. } => {
                let companion = super::group_commit::companion_in_scope();
                appends
                    .append(A::TYPE, events, snapshot_update, companion)
                    .await
            }
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        match self {
            Self::Postgres(r) => r.stream_events::<A>(aggregate_id).await,
            Self::Sqlite { reads, .. } => reads.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match self {
            Self::Postgres(r) => r.stream_all_events::<A>().await,
            Self::Sqlite { reads, .. } => reads.stream_all_events::<A>().await,
        }
    }
}
