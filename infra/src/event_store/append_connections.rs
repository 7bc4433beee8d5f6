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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection as _;
use tokio::sync::{Mutex, MutexGuard};

use crate::db::IDLE_BEFORE_CHECK;

pub struct AppendConnections {
    options: PgConnectOptions,
    slots: Vec<Mutex<Slot>>,
    next: AtomicUsize,
}

#[derive(Default)]
struct Slot {
    /// Put back only after a completed statement: a lease given up mid-statement drops
    /// its connection, and with it whatever answer was still on the way.
    connection: Option<PgConnection>,
    last_used: Option<Instant>,
}

/// One connection, held for one statement.
pub struct Lease<'a> {
    slot: MutexGuard<'a, Slot>,
    connection: PgConnection,
}

impl AppendConnections {
    /// `size` connections, opened when first needed.
    pub fn new(options: &PgConnectOptions, size: usize) -> Self {
        Self {
            options: options
                .clone()
                .options([("plan_cache_mode", "force_generic_plan")]),
            slots: (0..size.max(1)).map(|_| Mutex::default()).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// A free connection, or the next one to become free.
    pub async fn acquire(&self) -> Result<Lease<'_>, sqlx::Error> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.slots.len();
        let free = (0..count).find_map(|i| self.slots[(start + i) % count].try_lock().ok());
        let mut slot = match free {
            Some(slot) => slot,
            None => self.slots[start % count].lock().await,
        };
        let idle = slot
            .last_used
            .is_none_or(|t| t.elapsed() > IDLE_BEFORE_CHECK);
        let kept = match slot.connection.take() {
            Some(mut connection) if idle => connection.ping().await.ok().map(|()| connection),
            kept => kept,
        };
        let connection = match kept {
            Some(connection) => connection,
            None => PgConnection::connect_with(&self.options).await?,
        };
        Ok(Lease { slot, connection })
    }
}

impl Lease<'_> {
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.connection
    }

    /// Keeps the connection if the statement completed — with rows, or with an error the
    /// server reported — and closes it otherwise.
    pub fn finish<T>(self, outcome: &Result<T, sqlx::Error>) {
        let Lease {
            mut slot,
            connection,
        } = self;
        if matches!(outcome, Ok(_) | Err(sqlx::Error::Database(_))) {
            slot.connection = Some(connection);
            slot.last_used = Some(Instant::now());
        }
    }
}
