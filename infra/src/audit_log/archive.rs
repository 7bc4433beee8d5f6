//! Checkpoints written where nobody can rewrite them: an S3 bucket with Object Lock,
//! each object locked in compliance mode, which not even the bucket's owner can lift
//! before its date. `audit verify` reads them back beside the database's copies, so a
//! checkpoint removed or replaced in the database is still found.

use crate::config::{AuditConfig, ReceiptRetention, RetentionMode};
use crate::db::Database;
use crate::object_store::ObjectStore;

use super::StoredCheckpoint;

const PREFIX: &str = "checkpoints/";

pub struct CheckpointArchive {
    store: ObjectStore,
}

impl CheckpointArchive {
    /// The archive `AUDIT_CHECKPOINT_BUCKET` names, if it does (refused if the bucket
    /// cannot lock objects).
    pub async fn open(config: &AuditConfig) -> anyhow::Result<Option<Self>> {
        let Some(bucket) = &config.checkpoint_bucket else {
            return Ok(None);
        };
        let retention = ReceiptRetention {
            years: config.checkpoint_retention_years,
            mode: RetentionMode::Compliance,
        };
        Ok(Some(Self {
            store: ObjectStore::open(bucket, retention).await?,
        }))
    }

    fn key(tree_size: u64) -> String {
        // Zero-padded, so that listing the keys lists the checkpoints in order.
        format!("{PREFIX}{tree_size:020}")
    }

    /// Writes every checkpoint not yet archived, oldest first.
    pub async fn archive_pending(&self, db: &Database) -> anyhow::Result<()> {
        for checkpoint in super::unarchived(db).await? {
            self.put(&checkpoint).await?;
            super::mark_archived(db, checkpoint.tree_size).await?;
        }
        Ok(())
    }

    async fn put(&self, checkpoint: &StoredCheckpoint) -> anyhow::Result<()> {
        self.store
            .put_bytes(
                &Self::key(checkpoint.tree_size),
                checkpoint.note.clone().into_bytes(),
                "text/plain; charset=utf-8",
            )
            .await?;
        Ok(())
    }

    /// Every archived checkpoint's signed note.
    pub async fn notes(&self) -> anyhow::Result<Vec<String>> {
        let mut notes = Vec::new();
        for key in self.store.list(PREFIX).await? {
            let bytes = self.store.get(&key).await?;
            notes.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        Ok(notes)
    }
}
