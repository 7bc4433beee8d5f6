use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use expensewise_infra::idempotency::IdempotencyLedger;
use expensewise_infra::mail::Mailer;
use expensewise_infra::object_store::ObjectStore;
use expensewise_infra::{Config, Database, EventStore};
use expensewise_projections::Checkpoints;

use crate::auth::Tokens;
use crate::rate_limit::RateLimiter;

/// Everything a request handler may use, shared by all requests.
pub struct App {
    pub config: Config,
    pub db: Database,
    pub store: Arc<EventStore>,
    pub ledger: IdempotencyLedger,
    /// Where receipt files are kept.
    pub objects: ObjectStore,
    pub mailer: Mailer,
    /// The NATS connection `/ready` reports on, when events fan out through JetStream.
    pub nats: Option<async_nats::Client>,
    pub rate_limiter: RateLimiter,
    pub tokens: Tokens,
    pub started_at: Instant,
    /// Read models being rebuilt by this process (at most one rebuild each).
    pub rebuilding: Mutex<HashSet<&'static str>>,
    /// How far each read model was last seen to have come, for queries that wait.
    pub checkpoints: Checkpoints,
}

pub type AppState = Arc<App>;

impl App {
    pub fn new(
        config: Config,
        tokens: Tokens,
        db: Database,
        objects: ObjectStore,
        mailer: Mailer,
        nats: Option<async_nats::Client>,
    ) -> AppState {
        Arc::new(App {
            tokens,
            rate_limiter: RateLimiter::new(config.limits.requests, config.limits.sign_ins),
            store: Arc::new(EventStore::with_append_connections(
                db.clone(),
                config.database.connections().1 as usize,
            )),
            ledger: IdempotencyLedger::new(db.clone()),
            objects,
            mailer,
            nats,
            db,
            config,
            started_at: Instant::now(),
            rebuilding: Mutex::new(HashSet::new()),
            checkpoints: Checkpoints::default(),
        })
    }
}
