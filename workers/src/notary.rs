//! The notary (docs/audit-log.md): extends the audit log's Merkle tree with every event,
//! in the store's global order, off the command path, and signs a checkpoint of the tree
//! whenever it has grown, at most every [`SIGN_EVERY`] — so an event is provable within
//! moments of its commit.
//!
//! Store-fed, like the projectors: the leaves hash events as stored, which only the
//! store has (JetStream carries them too, but a log must not trust a copy). One notary
//! is active per database (an advisory lock on PostgreSQL); its leaves, tree nodes and
//! place in the global order are written in one transaction, which refuses to move a
//! place another instance moved.

use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use expensewise_domain::merkle::Frontier;
use expensewise_domain::signed_note::{Checkpoint, NoteSigner};
use expensewise_infra::audit_log::{self, CheckpointArchive, LeafRecord, StoredCheckpoint};
use expensewise_infra::checkpoints;
use expensewise_infra::event_store::Follow;
use expensewise_infra::wake::Wake;
use expensewise_infra::{Database, GlobalPosition};
use tokio::sync::watch;
use tokio::time::Instant;

/// Events added to the tree per transaction.
const BATCH: usize = 2000;
/// The shortest time between two checkpoints while events keep arriving.
pub const SIGN_EVERY: Duration = Duration::from_millis(250);
/// How often to look for events when nothing woke the notary.
const POLL: Duration = Duration::from_millis(500);
/// The pause after a batch that did not fill up: under load the notary then adds events
/// a few times a second in large transactions rather than a few each in hundreds — its
/// share of the machine stays small beside the commands it follows (docs/benchmarks.md),
/// and an event is still provable well within a second.
const LINGER: Duration = Duration::from_millis(200);
/// The advisory lock of the active notary (PostgreSQL).
const NOTARY_LOCK: i64 = 0x0045_5752_4e4f_5441;

pub struct Notary {
    pub follow: Follow,
    pub signer: NoteSigner,
    pub archive: Option<CheckpointArchive>,
}

impl Notary {
    /// Runs until `shutdown`; after a failure (the database away, another instance
    /// first) it starts again from what is stored.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            if let Err(e) = self.serve(&mut shutdown).await {
                tracing::warn!(error = format!("{e:#}"), "notary interrupted; resuming");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    async fn serve(&self, shutdown: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
        let db = self.follow.database().clone();
        let _leadership = loop {
            if let Some(lead) = db.try_lead(NOTARY_LOCK).await? {
                break lead;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return Ok(()),
            }
        };
        let mut tree = audit_log::frontier(&db).await?;
        let mut position = checkpoints::load(&db, audit_log::NOTARY).await?;
        let mut signed = audit_log::latest_checkpoint(&db)
            .await?
            .map_or(0, |c| c.tree_size);
        let mut signed_at = Instant::now();
        self.archive(&db).await;
        let mut wake = Wake::new(&self.follow);
        tracing::info!(leaves = tree.size(), "notary: active");
        while !*shutdown.borrow() {
            let events = self.follow.tail.read_after(position, BATCH).await?;
            if let Some(last) = events.last().map(|e| e.global) {
                tree = record(&db, tree, &events, position, last).await?;
                position = last;
                metrics::gauge!("expensewise_audit_log_leaves").set(tree.size() as f64);
            }
            let unsigned = tree.size() > signed;
            if unsigned && signed_at.elapsed() >= SIGN_EVERY {
                self.sign(&db, &tree).await?;
                signed = tree.size();
                signed_at = Instant::now();
                continue;
            }
            if events.is_empty() {
                let wait = match unsigned {
                    true => SIGN_EVERY.saturating_sub(signed_at.elapsed()),
                    false => POLL,
                };
                tokio::select! {
                    _ = wake.wait(wait) => {}
                    _ = shutdown.changed() => {}
                }
            } else if events.len() < BATCH {
                tokio::select! {
                    _ = tokio::time::sleep(LINGER) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        if tree.size() > signed {
            self.sign(&db, &tree).await?;
        }
        Ok(())
    }

    /// Signs a checkpoint of `tree`, keeps it, and archives it where configured.
    async fn sign(&self, db: &Database, tree: &Frontier) -> anyhow::Result<()> {
        let checkpoint = Checkpoint {
            origin: self.signer.name().to_string(),
            size: tree.size(),
            root: tree.root(),
        };
        let stored = StoredCheckpoint {
            tree_size: checkpoint.size,
            root: checkpoint.root,
            note: self.signer.sign(&checkpoint.text()),
            signed_at: Utc::now(),
        };
        audit_log::store_checkpoint(db, &stored).await?;
        metrics::gauge!("expensewise_audit_log_signed_leaves").set(stored.tree_size as f64);
        self.archive(db).await;
        Ok(())
    }

    /// Writes what is not archived yet; an archive that is away is tried again at the
    /// next checkpoint, and the log goes on meanwhile.
    async fn archive(&self, db: &Database) {
        if let Some(archive) = &self.archive {
            if let Err(e) = archive.archive_pending(db).await {
                tracing::warn!(error = format!("{e:#}"), "archiving checkpoints failed");
            }
        }
    }
}

/// Adds `events` (those after `from`, up to `to`) to `tree` and stores them; returns the
/// tree grown, or an error (nothing stored) if another instance moved the log first.
async fn record(
    db: &Database,
    tree: Frontier,
    events: &[expensewise_infra::RecordedEvent],
    from: GlobalPosition,
    to: GlobalPosition,
) -> anyhow::Result<Frontier> {
    let first = tree.size();
    let mut grown = tree;
    let mut nodes = Vec::new();
    let leaves: Vec<LeafRecord> = events
        .iter()
        .map(|event| {
            let leaf = LeafRecord::of(event);
            grown.push(leaf.hash, |level, index, hash| {
                if audit_log::is_stored(level) {
                    nodes.push((level, index, *hash));
                }
            });
            leaf
        })
        .collect();
    let mut tx = db.begin().await?;
    // Nothing here needs waiting for the disk: the leaves are a function of the events,
    // which are durable, so a batch lost in a crash is recomputed alike from the
    // notary's place in the global order, lost with it.
    audit_log::without_waiting_for_the_disk(&mut tx).await?;
    audit_log::record(&mut tx, first, &leaves, &nodes).await?;
    let moved = checkpoints::advance(&mut tx, audit_log::NOTARY, from, to).await?;
    anyhow::ensure!(moved, "another notary extended the log first");
    tx.commit().await.context("committing the notary's batch")?;
    Ok(grown)
}
