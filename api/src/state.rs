use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use expensewise_domain::signed_note::NoteSigner;
use expensewise_infra::credentials;
use expensewise_infra::idempotency::IdempotencyLedger;
use expensewise_infra::mail::Mailer;
use expensewise_infra::object_store::ObjectStore;
use expensewise_infra::replica::ReadReplica;
use expensewise_infra::{Config, Database, EventStore, Vault};
use expensewise_projections::Checkpoints;
use uuid::Uuid;

use crate::auth::Tokens;
use crate::rate_limit::RateLimiter;
use crate::routes::consistency::ReplicaReads;

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
    /// Rebuilds of read models this process ran or runs (at most one at a time each).
    pub rebuilds: Rebuilds,
    /// How far each read model was last seen to have come, for queries that wait.
    pub checkpoints: Checkpoints,
    pub token_uses: TokenUses,
    /// The key the notary signs checkpoints with (its public half is served).
    pub audit_signer: NoteSigner,
    /// Set on SIGTERM: `/ready` fails from then on, while requests are still served.
    pub draining: std::sync::atomic::AtomicBool,
    /// The streaming replica queries read from (`DATABASE_READ_URL`), if any.
    pub replica: Option<ReplicaReads>,
}

/// When personal access tokens were last used, written down at most once a minute per
/// token so that a busy program does not cost a write per request.
#[derive(Default)]
pub struct TokenUses {
    written: Mutex<HashMap<Uuid, Instant>>,
}

impl TokenUses {
    const EVERY: Duration = Duration::from_secs(60);

    pub fn record(&self, db: &Database, token_id: Uuid) {
        {
            let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if written
                .get(&token_id)
                .is_some_and(|at| now.duration_since(*at) < Self::EVERY)
            {
                return;
            }
            written.insert(token_id, now);
        }
        let db = db.clone();
        tokio::spawn(async move {
            if let Err(e) = credentials::token_used(&db, token_id).await {
                tracing::warn!(error = %e, "recording a token's use failed");
            }
        });
    }
}

pub type AppState = Arc<App>;

/// The latest rebuild of each read model this process started: its progress while it
/// runs, its verdict after.
#[derive(Default)]
pub struct Rebuilds {
    runs: Mutex<HashMap<&'static str, Arc<RebuildRun>>>,
}

pub struct RebuildRun {
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Events in the store when it started: what it has to apply, about.
    pub total: u64,
    applied: AtomicU64,
    outcome: Mutex<Option<RebuildOutcome>>,
}

#[derive(Clone)]
pub struct RebuildOutcome {
    pub finished_at: chrono::DateTime<chrono::Utc>,
    pub result: Result<expensewise_projections::rebuild::Report, String>,
}

impl Rebuilds {
    /// Starts tracking a rebuild of `name`; `None` while one of it is still running.
    pub fn start(&self, name: &'static str, total: u64) -> Option<Arc<RebuildRun>> {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs.get(name).is_some_and(|run| run.outcome().is_none()) {
            return None;
        }
        let run = Arc::new(RebuildRun {
            started_at: chrono::Utc::now(),
            total,
            applied: AtomicU64::new(0),
            outcome: Mutex::new(None),
        });
        runs.insert(name, run.clone());
        Some(run)
    }

    pub fn latest(&self, name: &str) -> Option<Arc<RebuildRun>> {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.get(name).cloned()
    }
}

impl RebuildRun {
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    pub fn progress(&self, applied: u64) {
        self.applied.store(applied, Ordering::Relaxed);
    }

    pub fn outcome(&self) -> Option<RebuildOutcome> {
        self.outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn finish(&self, result: Result<expensewise_projections::rebuild::Report, String>) {
        *self.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(RebuildOutcome {
            finished_at: chrono::Utc::now(),
            result,
        });
    }
}

impl App {
    pub fn new(
        config: Config,
        tokens: Tokens,
        (db, vault): (Database, Vault),
        objects: ObjectStore,
        mailer: Mailer,
        nats: Option<async_nats::Client>,
        audit_signer: NoteSigner,
    ) -> anyhow::Result<AppState> {
        let replica = match &config.database.read_replica {
            Some(replica) => Some(ReplicaReads::new(
                ReadReplica::open(replica, config.database.connections().0)
                    .context("DATABASE_READ_URL")?,
            )),
            None => None,
        };
        Ok(Arc::new(App {
            tokens,
            rate_limiter: RateLimiter::new(config.limits.requests, config.limits.sign_ins),
            store: Arc::new(EventStore::with_append_connections(
                db.clone(),
                vault,
                config.database.connections().1 as usize,
            )),
            ledger: IdempotencyLedger::new(db.clone()),
            objects,
            mailer,
            nats,
            db,
            config,
            started_at: Instant::now(),
            rebuilds: Rebuilds::default(),
            checkpoints: Checkpoints::default(),
            token_uses: TokenUses::default(),
            audit_signer,
            draining: std::sync::atomic::AtomicBool::new(false),
            replica,
        }))
    }
}
