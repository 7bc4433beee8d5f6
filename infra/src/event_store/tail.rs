//! One tail of the event store per process, shared by every consumer in it.
//!
//! The relay, the projectors and the workers of a process all follow the store in its
//! global order, each from its own checkpoint. Reading and decoding the same new events
//! once per consumer cost a query and a JSON parse each; the tail remembers the most
//! recent events it read, so that consumers at the head of the store are served from
//! memory and only one of them asks the database for what is new. A consumer behind
//! what the tail remembers (one catching up after a restart, a rebuild) reads the store
//! itself, as before.
//!
//! What the tail serves is what [`read_after`] returned, in its order: an answer for a
//! position inside the remembered window is a prefix of what the store would answer, so
//! a consumer can neither skip nor repeat an event through it.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::{watch, Mutex};

use super::{read_after, GlobalPosition, RecordedEvent};
use crate::db::Database;

/// How many of the most recent events the tail remembers.
const REMEMBERED: usize = 4096;

#[derive(Clone)]
pub struct Tail {
    db: Database,
    window: Arc<Mutex<Window>>,
    /// Counts the notifications of appends by other processes (PostgreSQL's NOTIFY),
    /// heard on one connection for the whole process: see [`Tail::notifications`].
    notified: Arc<OnceLock<watch::Sender<u64>>>,
}

/// The events read after `start`, in order, with nothing missing between; at most
/// `capacity` of them.
struct Window {
    start: GlobalPosition,
    events: VecDeque<RecordedEvent>,
    capacity: usize,
}

impl Window {
    fn end(&self) -> GlobalPosition {
        self.events.back().map(|e| e.global).unwrap_or(self.start)
    }

    fn covers(&self, from: GlobalPosition) -> bool {
        from >= self.start && from <= self.end()
    }

    fn after(&self, from: GlobalPosition, limit: usize) -> Vec<RecordedEvent> {
        // The events are in order: find the first after `from` by halving, not by
        // walking every consumer's read through the whole window.
        let first = self.events.partition_point(|e| e.global <= from);
        self.events.range(first..).take(limit).cloned().collect()
    }

    fn extend(&mut self, events: &[RecordedEvent]) {
        self.events.extend(events.iter().cloned());
        while self.events.len() > self.capacity {
            if let Some(oldest) = self.events.pop_front() {
                self.start = oldest.global;
            }
        }
    }
}

impl Tail {
    pub fn new(db: Database) -> Self {
        Self::remembering(db, REMEMBERED)
    }

    /// A tail that remembers at most `capacity` events.
    pub fn remembering(db: Database, capacity: usize) -> Self {
        Self {
            db,
            window: Arc::new(Mutex::new(Window {
                start: GlobalPosition::default(),
                events: VecDeque::new(),
                capacity: capacity.max(1),
            })),
            notified: Arc::default(),
        }
    }

    /// Changes when another process may have appended events. On PostgreSQL one
    /// connection of the process LISTENs for them, started by the first consumer to ask:
    /// every committed append signals each listening connection, and a listener per
    /// consumer made the server wake half a dozen backends per commit, each to hand the
    /// same empty notification to a process that had usually appended the events itself.
    pub fn notifications(&self) -> watch::Receiver<u64> {
        self.notified
            .get_or_init(|| {
                if let Database::Postgres(pool) = &self.db {
                    tokio::spawn(listen(
                        (*pool.connect_options()).clone(),
                        Arc::downgrade(&self.notified),
                    ));
                }
                watch::channel(0).0
            })
            .subscribe()
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Up to `limit` events after `from` in the global order, as
    /// [`read_after`] answers (an empty answer means "nothing more yet").
    pub async fn read_after(
        &self,
        from: GlobalPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, sqlx::Error> {
        let limit = limit.max(1);
        {
            let mut window = self.window.lock().await;
            if window.covers(from) {
                let remembered = window.after(from, limit);
                if !remembered.is_empty() {
                    return Ok(remembered);
                }
                // At the head of what is remembered: this consumer reads what is new for
                // all of them, and the others wait for it rather than read it too.
                let end = window.end();
                let fresh = read_after(&self.db, end, limit as i64).await?;
                window.extend(&fresh);
                return Ok(fresh);
            }
        }
        let fresh = read_after(&self.db, from, limit as i64).await?;
        let mut window = self.window.lock().await;
        // A consumer ahead of the window (the first to read after a start, or after
        // everyone moved on) moves it to where it reads.
        if from > window.end() && !fresh.is_empty() {
            window.start = from;
            window.events.clear();
            window.extend(&fresh);
        }
        Ok(fresh)
    }
}

/// What the append trigger notifies (schema/postgres/0005_notify_appends.sql).
const CHANNEL: &str = "expensewise_events";

/// How often the listener checks that its tail is still in use, and how long it waits
/// before connecting again after losing its connection.
const LISTENER_PAUSE: Duration = Duration::from_secs(1);

/// Hears the notifications of appends on a connection of its own for as long as the tail
/// is in use, and counts them in `notified`. While it cannot listen, consumers poll.
async fn listen(options: PgConnectOptions, notified: Weak<OnceLock<watch::Sender<u64>>>) {
    // A listener holds its connection for good: one of its own, so that the pool keeps
    // every connection it was sized with for queries.
    let own = PgPoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(options);
    // False once the tail is no longer used.
    let count = || {
        notified.upgrade().is_some_and(|cell| {
            if let Some(sender) = cell.get() {
                sender.send_modify(|n| *n = n.wrapping_add(1));
            }
            true
        })
    };
    let mut warned = false;
    while notified.strong_count() > 0 {
        let listening = async {
            let mut listener = PgListener::connect_with(&own).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match listening.await {
            Ok(listener) => listener,
            Err(e) => {
                if !std::mem::replace(&mut warned, true) {
                    tracing::warn!(error = %e, "cannot LISTEN for appended events; polling");
                }
                tokio::time::sleep(LISTENER_PAUSE).await;
                continue;
            }
        };
        warned = false;
        // What was appended while nobody listened is looked for now.
        if !count() {
            return;
        }
        // One timer for the connection's life, not one per notification.
        let mut check = tokio::time::interval(LISTENER_PAUSE);
        loop {
            tokio::select! {
                heard = listener.try_recv() => match heard {
                    Ok(Some(_)) => {
                        if !count() {
                            return;
                        }
                    }
                    // The connection was lost: what it missed is looked for on reconnecting.
                    Ok(None) | Err(_) => break,
                },
                _ = check.tick() => {
                    if notified.strong_count() == 0 {
                        return;
                    }
                }
            }
        }
    }
}

/// What a consumer in this process follows the store with: the shared tail, and the
/// signal of this process's appends (appends elsewhere arrive by LISTEN/NOTIFY or polling;
/// see `wake`).
#[derive(Clone)]
pub struct Follow {
    pub tail: Tail,
    pub appends: tokio::sync::watch::Receiver<u64>,
    /// What the tail serves is as stored (the relay publishes it so); consumers open it
    /// with this (`Vault::reveal`).
    pub vault: crate::vault::Vault,
}

impl Follow {
    pub fn database(&self) -> &Database {
        self.tail.database()
    }
}
