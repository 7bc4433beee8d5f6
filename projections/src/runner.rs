//! Running projections: read events after the checkpoint, apply them, advance the
//! checkpoint — all of one batch in one transaction.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use expensewise_infra::db::Tx;
use expensewise_infra::event_store::read_after;
use expensewise_infra::{Database, GlobalPosition, RecordedEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::checkpoint;

/// Events read per transaction.
const BATCH: i64 = 500;
/// How often to look for events written by other processes when nothing woke us.
const POLL: Duration = Duration::from_millis(100);
/// Pause after a failure before reading again from the stored checkpoint.
const RETRY: Duration = Duration::from_secs(1);

/// A read model: what to do with each event, inside the batch's transaction.
#[async_trait]
pub trait Projection: Send + Sync {
    /// Stable name: the checkpoint's key.
    fn name(&self) -> &'static str;

    /// Applies one event. Events it does not care about are ignored.
    async fn apply(&self, tx: &mut Tx, event: &RecordedEvent) -> anyhow::Result<()>;
}

pub struct Projector {
    db: Database,
    appends: watch::Receiver<u64>,
}

impl Projector {
    /// `appends` changes when this process appends events (see
    /// `EventStore::subscribe_appends`); events from elsewhere are found by polling.
    pub fn new(db: Database, appends: watch::Receiver<u64>) -> Self {
        Self { db, appends }
    }

    /// Runs `projection` until `shutdown` becomes true.
    pub fn spawn(
        &self,
        projection: Arc<dyn Projection>,
        shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let db = self.db.clone();
        let appends = self.appends.clone();
        tokio::spawn(run(db, projection, appends, shutdown))
    }
}

async fn run(
    db: Database,
    projection: Arc<dyn Projection>,
    mut appends: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = projection.name();
    let mut position: Option<GlobalPosition> = None;
    while !*shutdown.borrow() {
        let step = async {
            let from = match position {
                Some(p) => p,
                None => checkpoint::load(&db, name).await?,
            };
            let applied = apply_batch(&db, projection.as_ref(), from).await?;
            anyhow::Ok((from, applied))
        };
        match step.await {
            Ok((_, Some(to))) => position = Some(to),
            Ok((from, None)) => {
                position = Some(from);
                tokio::select! {
                    _ = appends.changed() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => {
                tracing::warn!(
                    projection = name,
                    error = format!("{e:#}"),
                    "projection failed; retrying"
                );
                position = None;
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

/// Applies the events after `from`; returns the new checkpoint, or `None` when there
/// was nothing to do. A checkpoint moved by another instance rolls the batch back.
pub async fn apply_batch(
    db: &Database,
    projection: &dyn Projection,
    from: GlobalPosition,
) -> anyhow::Result<Option<GlobalPosition>> {
    let events = read_after(db, from, BATCH).await?;
    let Some(last) = events.last().map(|e| e.global) else {
        return Ok(None);
    };
    let mut tx = db.begin().await?;
    for event in events {
        projection.apply(&mut tx, &event.upcast()).await?;
    }
    if checkpoint::advance(&mut tx, projection.name(), from, last).await? {
        tx.commit().await?;
        Ok(Some(last))
    } else {
        anyhow::bail!(
            "another projector instance advanced {} first",
            projection.name()
        )
    }
}
