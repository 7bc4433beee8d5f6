//! PostgreSQL connections the event store keeps for its appends, beside sqlx's pool.
//!
//! An append is one statement, one round trip. sqlx's pool adds a second to every use: a
//! connection returning to it is checked with a round trip of its own. These connections
//! go back unchecked after a statement that completed. One whose statement did not
//! complete (an I/O error, or a request given up mid-statement) is replaced, and one that
//! sat idle is checked before use, so a restarted server fails no append.
//!
//! They also keep one plan for the append (`plan_cache_mode = force_generic_plan`): its
//! array parameters otherwise make PostgreSQL plan it anew on every execution.

use std::sync::Mutex;
use std::time::Instant;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection as _;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::db::IDLE_BEFORE_CHECK;

pub struct AppendConnections {
    options: PgConnectOptions,
    /// Connections not in use; a lease given up mid-statement never returns its own, so
    /// there may be fewer here than permits (one is opened when missing).
    idle: Mutex<Vec<(PgConnection, Instant)>>,
    /// One per connection, handed out in order of asking.
    permits: Semaphore,
}

/// One connection, held for one statement.
pub struct Lease<'a> {
    owner: &'a AppendConnections,
    connection: PgConnection,
    _permit: SemaphorePermit<'a>,
}

impl AppendConnections {
    /// At most `size` connections, opened when first needed.
    pub fn new(options: &PgConnectOptions, size: usize) -> Self {
        Self {
            options: options
                .clone()
                .options([("plan_cache_mode", "force_generic_plan")]),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size.max(1)),
        }
    }

    /// A connection, once one is free.
    pub async fn acquire(&self) -> Result<Lease<'_>, sqlx::Error> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let kept = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let kept = match kept {
            Some((mut connection, last_used)) if last_used.elapsed() > IDLE_BEFORE_CHECK => {
                connection.ping().await.ok().map(|()| connection)
            }
            kept => kept.map(|(connection, _)| connection),
        };
        let connection = match kept {
            Some(connection) => connection,
            None => PgConnection::connect_with(&self.options).await?,
        };
        Ok(Lease {
            owner: self,
            connection,
            _permit: permit,
        })
    }
}

impl Lease<'_> {
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.connection
    }

    /// Keeps the connection if the statement completed — with rows, or with an error the
    /// server reported — and closes it otherwise.
    pub fn finish<T>(self, outcome: &Result<T, sqlx::Error>) {
        if matches!(outcome, Ok(_) | Err(sqlx::Error::Database(_))) {
            self.owner
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((self.connection, Instant::now()));
        }
    }
}
