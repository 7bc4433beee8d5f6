//! Where the audit log is kept (docs/audit-log.md): each event's leaf as the notary
//! recorded it, the stored nodes of the Merkle tree, and the signed checkpoints; and
//! what is read from them — a tree's root, inclusion and consistency proofs.
//!
//! The tree itself is `expensewise_domain::merkle`; this module only stores what it
//! needs. Perfect subtrees of 16^k leaves are stored (`audit_nodes`, levels 4, 8, …),
//! so any perfect subtree is put together from at most 8 stored hashes.

mod archive;
mod key;
mod verify;

use std::collections::HashMap;
use std::ops::Range;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use expensewise_domain::merkle::{self, Frontier, Hash};
use uuid::Uuid;

pub use archive::CheckpointArchive;
pub use key::signing_key;
pub use verify::{
    distinct_notes, event_count, public_keys, verify_bundle, verify_store, write_bundle, Bundle,
    Verified,
};

use crate::db::{Database, Tx};
use crate::on_database;

/// The notary's checkpoint in the global order (`projection_checkpoints`).
pub const NOTARY: &str = "notary";
/// Levels of the tree whose nodes are stored: multiples of this.
const STORED_EVERY: u32 = 4;

/// One leaf as the notary records it.
#[derive(Debug, Clone)]
pub struct LeafRecord {
    pub event: EventName,
    pub organization_id: Option<String>,
    pub hash: Hash,
}

/// Which event a leaf is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventName {
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
}

impl std::fmt::Display for EventName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} {} #{})",
            self.event_id, self.aggregate_type, self.aggregate_id, self.sequence
        )
    }
}

/// An event's leaf hash, from the event as stored (personal fields sealed).
pub fn leaf_hash_of(event: &crate::RecordedEvent) -> Hash {
    expensewise_domain::audit_log::event_leaf_hash(&expensewise_domain::audit_log::StoredEvent {
        aggregate_type: &event.aggregate_type,
        aggregate_id: &event.aggregate_id,
        sequence: event.sequence,
        event_type: &event.event_type,
        event_version: &event.event_version,
        payload: &event.payload,
        metadata: &event.metadata,
        recorded_at: event.recorded_at,
    })
}

impl LeafRecord {
    /// An event's leaf.
    pub fn of(event: &crate::RecordedEvent) -> Self {
        let hash = leaf_hash_of(event);
        Self {
            event: EventName {
                event_id: crate::nats::event_id(
                    &event.aggregate_type,
                    &event.aggregate_id,
                    event.sequence,
                ),
                aggregate_type: event.aggregate_type.clone(),
                aggregate_id: event.aggregate_id.clone(),
                sequence: event.sequence,
            },
            organization_id: event
                .metadata
                .get(expensewise_domain::metadata::ORGANIZATION_ID)
                .and_then(|v| v.as_str())
                .map(str::to_string),
            hash,
        }
    }
}

/// A leaf as stored, with its place.
#[derive(Debug, Clone)]
pub struct StoredLeaf {
    pub index: u64,
    pub event: EventName,
    pub organization_id: Option<String>,
    pub hash: Hash,
}

/// A signed checkpoint as kept.
#[derive(Debug, Clone)]
pub struct StoredCheckpoint {
    pub tree_size: u64,
    pub root: Hash,
    /// The C2SP signed note.
    pub note: String,
    pub signed_at: DateTime<Utc>,
}

fn hash_of(bytes: Vec<u8>) -> anyhow::Result<Hash> {
    Hash::try_from(bytes.as_slice()).map_err(|_| anyhow::anyhow!("a stored hash is not 32 bytes"))
}

/// The tree as recorded: its size and right edge.
pub async fn frontier(db: &Database) -> anyhow::Result<Frontier> {
    let size: i64 = on_database!(db, |pool| {
        sqlx::query_scalar("SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM audit_leaves")
            .fetch_one(pool)
            .await?
    });
    let size = size as u64;
    let parts = match size {
        0 => Vec::new(),
        _ => merkle::subtrees(0..size),
    };
    let hashes = perfect_hashes(db, &parts).await?;
    let ordered = parts.iter().map(|p| hashes[p]).collect();
    Frontier::new(size, ordered).context("the stored tree's edge does not add up")
}

/// Records leaves from `first` on, and the tree nodes they completed, in `tx`.
pub async fn record(
    tx: &mut Tx,
    first: u64,
    leaves: &[LeafRecord],
    nodes: &[(u32, u64, Hash)],
) -> anyhow::Result<()> {
    match tx {
        Tx::Postgres(tx) => {
            let indexes: Vec<i64> = (0..leaves.len() as i64).map(|i| first as i64 + i).collect();
            let ids: Vec<Uuid> = leaves.iter().map(|l| l.event.event_id).collect();
            let types: Vec<&str> = leaves
                .iter()
                .map(|l| l.event.aggregate_type.as_str())
                .collect();
            let aggregates: Vec<&str> = leaves
                .iter()
                .map(|l| l.event.aggregate_id.as_str())
                .collect();
            let sequences: Vec<i64> = leaves.iter().map(|l| l.event.sequence).collect();
            let organizations: Vec<Option<String>> =
                leaves.iter().map(|l| l.organization_id.clone()).collect();
            let hashes: Vec<Vec<u8>> = leaves.iter().map(|l| l.hash.to_vec()).collect();
            sqlx::query(
                "INSERT INTO audit_leaves (leaf_index, event_id, aggregate_type, aggregate_id, \
                 sequence, organization_id, leaf_hash) SELECT * FROM UNNEST($1::bigint[], \
                 $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bytea[])",
            )
            .bind(indexes)
            .bind(ids)
            .bind(types)
            .bind(aggregates)
            .bind(sequences)
            .bind(organizations)
            .bind(hashes)
            .execute(&mut **tx)
            .await?;
            if !nodes.is_empty() {
                let levels: Vec<i16> = nodes.iter().map(|n| n.0 as i16).collect();
                let indexes: Vec<i64> = nodes.iter().map(|n| n.1 as i64).collect();
                let hashes: Vec<Vec<u8>> = nodes.iter().map(|n| n.2.to_vec()).collect();
                sqlx::query(
                    "INSERT INTO audit_nodes (level, node_index, hash) \
                     SELECT * FROM UNNEST($1::smallint[], $2::bigint[], $3::bytea[])",
                )
                .bind(levels)
                .bind(indexes)
                .bind(hashes)
                .execute(&mut **tx)
                .await?;
            }
        }
        Tx::Sqlite(tx) => {
            for (i, leaf) in leaves.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO audit_leaves (leaf_index, event_id, aggregate_type, \
                     aggregate_id, sequence, organization_id, leaf_hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(first as i64 + i as i64)
                .bind(leaf.event.event_id)
                .bind(&leaf.event.aggregate_type)
                .bind(&leaf.event.aggregate_id)
                .bind(leaf.event.sequence)
                .bind(&leaf.organization_id)
                .bind(leaf.hash.to_vec())
                .execute(&mut **tx)
                .await?;
            }
            for (level, index, hash) in nodes {
                sqlx::query(
                    "INSERT INTO audit_nodes (level, node_index, hash) VALUES ($1, $2, $3)",
                )
                .bind(*level as i64)
                .bind(*index as i64)
                .bind(hash.to_vec())
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    Ok(())
}

/// Lets `tx` commit without waiting for its write to reach the disk (PostgreSQL's
/// `synchronous_commit = off`; SQLite's one writer has no such setting per transaction).
pub async fn without_waiting_for_the_disk(tx: &mut Tx) -> anyhow::Result<()> {
    if let Tx::Postgres(tx) = tx {
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Whether the notary stores the node of a perfect subtree at `level`.
pub fn is_stored(level: u32) -> bool {
    level > 0 && level.is_multiple_of(STORED_EVERY)
}

/// Stored hashes at `level` (0: leaves) for indexes in `range`, in order.
async fn stored_range(db: &Database, level: u32, range: Range<u64>) -> anyhow::Result<Vec<Hash>> {
    let (start, end) = (range.start as i64, range.end as i64);
    let rows: Vec<Vec<u8>> = on_database!(db, |pool| {
        if level == 0 {
            sqlx::query_scalar(
                "SELECT leaf_hash FROM audit_leaves WHERE leaf_index >= $1 AND leaf_index < $2 \
                 ORDER BY leaf_index",
            )
            .bind(start)
            .bind(end)
            .fetch_all(pool)
            .await?
        } else {
            sqlx::query_scalar(
                "SELECT hash FROM audit_nodes WHERE level = $1 AND node_index >= $2 \
                 AND node_index < $3 ORDER BY node_index",
            )
            .bind(level as i64)
            .bind(start)
            .bind(end)
            .fetch_all(pool)
            .await?
        }
    });
    if rows.len() as u64 != range.end - range.start {
        anyhow::bail!("the audit log lacks stored hashes at level {level}, {range:?}");
    }
    rows.into_iter().map(hash_of).collect()
}

/// The hashes of the perfect subtrees `(level, index)` named.
pub async fn perfect_hashes(
    db: &Database,
    wanted: &[(u32, u64)],
) -> anyhow::Result<HashMap<(u32, u64), Hash>> {
    let mut out = HashMap::new();
    for &(level, index) in wanted {
        if out.contains_key(&(level, index)) {
            continue;
        }
        let base = level - level % STORED_EVERY;
        let width = 1u64 << (level - base);
        let mut hashes = stored_range(db, base, index * width..(index + 1) * width).await?;
        while hashes.len() > 1 {
            hashes = hashes
                .chunks(2)
                .map(|pair| merkle::node_hash(&pair[0], &pair[1]))
                .collect();
        }
        out.insert((level, index), hashes[0]);
    }
    Ok(out)
}

/// The hashes of `ranges` of leaves, each as RFC 9162 defines a range's hash.
async fn range_hashes(db: &Database, ranges: &[Range<u64>]) -> anyhow::Result<Vec<Hash>> {
    let wanted: Vec<(u32, u64)> = ranges
        .iter()
        .flat_map(|r| merkle::subtrees(r.clone()))
        .collect();
    let perfect = perfect_hashes(db, &wanted).await?;
    Ok(ranges
        .iter()
        .map(|r| merkle::range_hash(r.clone(), &|l, i| perfect[&(l, i)]))
        .collect())
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves.
pub async fn inclusion_proof(db: &Database, index: u64, size: u64) -> anyhow::Result<Vec<Hash>> {
    range_hashes(db, &merkle::inclusion_ranges(index, size)).await
}

/// The consistency proof from the tree of `old` leaves to that of `new` (0 < old < new).
pub async fn consistency_proof(db: &Database, old: u64, new: u64) -> anyhow::Result<Vec<Hash>> {
    range_hashes(db, &merkle::consistency_ranges(old, new)).await
}

/// A leaf's row as both databases return it.
#[derive(sqlx::FromRow)]
struct LeafRow {
    leaf_index: i64,
    event_id: Uuid,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    organization_id: Option<String>,
    leaf_hash: Vec<u8>,
}

impl LeafRow {
    fn into_leaf(self) -> anyhow::Result<StoredLeaf> {
        Ok(StoredLeaf {
            index: self.leaf_index as u64,
            event: EventName {
                event_id: self.event_id,
                aggregate_type: self.aggregate_type,
                aggregate_id: self.aggregate_id,
                sequence: self.sequence,
            },
            organization_id: self.organization_id,
            hash: hash_of(self.leaf_hash)?,
        })
    }
}

const LEAF_COLUMNS: &str =
    "leaf_index, event_id, aggregate_type, aggregate_id, sequence, organization_id, leaf_hash";

/// The leaf the notary gave an event, if it has.
pub async fn leaf_of(db: &Database, event_id: Uuid) -> anyhow::Result<Option<StoredLeaf>> {
    let sql = format!("SELECT {LEAF_COLUMNS} FROM audit_leaves WHERE event_id = $1");
    on_database!(db, |pool| {
        sqlx::query_as::<_, LeafRow>(&sql)
            .bind(event_id)
            .fetch_optional(pool)
            .await?
            .map(LeafRow::into_leaf)
            .transpose()
    })
}

/// The leaves of the given events, where the notary recorded them.
pub async fn leaves_of(db: &Database, events: &[Uuid]) -> anyhow::Result<HashMap<Uuid, u64>> {
    let mut out = HashMap::new();
    match db {
        Database::Postgres(pool) => {
            let rows: Vec<(Uuid, i64)> = sqlx::query_as(
                "SELECT event_id, leaf_index FROM audit_leaves WHERE event_id = ANY($1)",
            )
            .bind(events)
            .fetch_all(pool)
            .await?;
            out.extend(rows.into_iter().map(|(id, i)| (id, i as u64)));
        }
        Database::Sqlite(pools) => {
            // SQLite has no arrays: a list of parameters, in chunks under its limit.
            for chunk in events.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(", ");
                let sql = format!(
                    "SELECT event_id, leaf_index FROM audit_leaves WHERE event_id IN ({marks})"
                );
                let mut query = sqlx::query_as::<_, (Uuid, i64)>(&sql);
                for id in chunk {
                    query = query.bind(id);
                }
                let rows = query.fetch_all(&pools.reads).await?;
                out.extend(rows.into_iter().map(|(id, i)| (id, i as u64)));
            }
        }
    }
    Ok(out)
}

/// Up to `limit` leaves from `from` on, in order.
pub async fn leaves_from(db: &Database, from: u64, limit: i64) -> anyhow::Result<Vec<StoredLeaf>> {
    let sql = format!(
        "SELECT {LEAF_COLUMNS} FROM audit_leaves WHERE leaf_index >= $1 \
         ORDER BY leaf_index LIMIT $2"
    );
    on_database!(db, |pool| {
        sqlx::query_as::<_, LeafRow>(&sql)
            .bind(from as i64)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(LeafRow::into_leaf)
            .collect()
    })
}

/// Keeps a signed checkpoint (again: nothing changes).
pub async fn store_checkpoint(db: &Database, checkpoint: &StoredCheckpoint) -> anyhow::Result<()> {
    crate::on_writer!(db, |pool| {
        sqlx::query(
            "INSERT INTO audit_checkpoints (tree_size, root_hash, note, signed_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(checkpoint.tree_size as i64)
        .bind(checkpoint.root.to_vec())
        .bind(&checkpoint.note)
        .bind(checkpoint.signed_at)
        .execute(pool)
        .await?;
    });
    Ok(())
}

const CHECKPOINT_COLUMNS: &str = "tree_size, root_hash, note, signed_at";

#[derive(sqlx::FromRow)]
struct CheckpointRow {
    tree_size: i64,
    root_hash: Vec<u8>,
    note: String,
    signed_at: DateTime<Utc>,
}

impl CheckpointRow {
    fn into_checkpoint(self) -> anyhow::Result<StoredCheckpoint> {
        Ok(StoredCheckpoint {
            tree_size: self.tree_size as u64,
            root: hash_of(self.root_hash)?,
            note: self.note,
            signed_at: self.signed_at,
        })
    }
}

/// Checkpoints `clause` selects (with `$1` bound to `value`, where given).
async fn checkpoints_where(
    db: &Database,
    clause: &str,
    value: Option<i64>,
) -> anyhow::Result<Vec<StoredCheckpoint>> {
    let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints {clause}");
    on_database!(db, |pool| {
        let mut query = sqlx::query_as::<_, CheckpointRow>(&sql);
        if let Some(value) = value {
            query = query.bind(value);
        }
        query
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(CheckpointRow::into_checkpoint)
            .collect()
    })
}

/// The newest checkpoint.
pub async fn latest_checkpoint(db: &Database) -> anyhow::Result<Option<StoredCheckpoint>> {
    Ok(
        checkpoints_where(db, "ORDER BY tree_size DESC LIMIT 1", None)
            .await?
            .pop(),
    )
}

/// The checkpoint of exactly `size` leaves.
pub async fn checkpoint_of_size(
    db: &Database,
    size: u64,
) -> anyhow::Result<Option<StoredCheckpoint>> {
    Ok(
        checkpoints_where(db, "WHERE tree_size = $1", Some(size as i64))
            .await?
            .pop(),
    )
}

/// Every checkpoint, smallest first.
pub async fn all_checkpoints(db: &Database) -> anyhow::Result<Vec<StoredCheckpoint>> {
    checkpoints_where(db, "ORDER BY tree_size", None).await
}

/// Checkpoints not yet written to the checkpoint bucket.
async fn unarchived(db: &Database) -> anyhow::Result<Vec<StoredCheckpoint>> {
    let clause = match db {
        Database::Postgres(_) => "WHERE archived = false ORDER BY tree_size",
        Database::Sqlite(_) => "WHERE archived = 0 ORDER BY tree_size",
    };
    checkpoints_where(db, clause, None).await
}

async fn mark_archived(db: &Database, size: u64) -> anyhow::Result<()> {
    crate::on_writer!(db, |pool| {
        let sql = match db {
            Database::Postgres(_) => {
                "UPDATE audit_checkpoints SET archived = true WHERE tree_size = $1"
            }
            Database::Sqlite(_) => "UPDATE audit_checkpoints SET archived = 1 WHERE tree_size = $1",
        };
        sqlx::query(sql).bind(size as i64).execute(pool).await?;
    });
    Ok(())
}
