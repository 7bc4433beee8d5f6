//! Waking tailers of the event store promptly: through an in-process signal when this
//! process appended, through PostgreSQL LISTEN/NOTIFY when another one did, and by a
//! slow poll as the last resort (a lost listener connection must not stall anything).

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::watch;

use crate::db::Database;

pub const CHANNEL: &str = "expensewise_events";

pub struct Wake {
    appends: watch::Receiver<u64>,
    listener: Option<PgListener>,
    database: Database,
}

impl Wake {
    pub fn new(database: Database, appends: watch::Receiver<u64>) -> Self {
        Self {
            appends,
            listener: None,
            database,
        }
    }

    async fn listen(&mut self) {
        if self.listener.is_some() {
            return;
        }
        if let Database::Postgres(pool) = &self.database {
            // A listener holds its connection for good: one of its own, so that the
            // pool keeps every connection it was sized with for queries.
            let own = PgPoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_lazy_with((*pool.connect_options()).clone());
            match PgListener::connect_with(&own).await {
                Ok(mut listener) => match listener.listen(CHANNEL).await {
                    Ok(()) => self.listener = Some(listener),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot LISTEN for appended events; polling")
                    }
                },
                Err(e) => tracing::warn!(error = %e, "cannot LISTEN for appended events; polling"),
            }
        }
    }

    /// Returns when events may have been appended, or after `poll` at the latest.
    pub async fn wait(&mut self, poll: Duration) {
        self.listen().await;
        let notified = async {
            match self.listener.as_mut() {
                Some(listener) => listener.recv().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.appends.changed() => {}
            ok = notified => {
                if !ok {
                    self.listener = None;
                }
            }
            _ = tokio::time::sleep(poll) => {}
        }
    }
}
