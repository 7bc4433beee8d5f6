//! `expensewise audit verify` and the bundles auditors take away (docs/audit-log.md,
//! "Verifying" and "Bundles"): the events as stored now, recomputed into leaves and
//! checked against what the notary recorded and every checkpoint it signed; and the
//! receipt files against the SHA-256 their uploads recorded.

use std::sync::Arc;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use expensewise_domain::audit_log::{
    Divergence, Kind, NotarizedLeaf, PresentEvent, Report, Verification,
};
use expensewise_domain::merkle::Hash;
use expensewise_domain::signed_note::NoteVerifier;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::Database;
use crate::event_store::{read_filtered, AuditFilter};
use crate::object_store::ObjectStore;
use crate::{GlobalPosition, RecordedEvent};

/// Events read per round trip.
const PAGE: i64 = 5000;

/// A receipt's upload, as its event recorded it.
#[derive(Debug, Clone)]
struct Upload {
    event_id: Uuid,
    leaf_index: Option<u64>,
    receipt_id: String,
    storage_key: String,
    sha256: String,
}

/// What the receipt files are checked against: each upload, and the receipts whose
/// retention ended (their files deleted on purpose).
#[derive(Default)]
struct Uploads {
    uploads: Vec<Upload>,
    ended: HashSet<String>,
}

/// What an event says that the receipts check needs.
struct Noted<'a> {
    event_id: Uuid,
    leaf_index: Option<u64>,
    aggregate_type: &'a str,
    aggregate_id: &'a str,
    event_type: &'a str,
    payload: &'a Value,
}

impl Uploads {
    fn note(&mut self, event: Noted) {
        if event.event_type != "ReceiptUploaded" && event.event_type != "RetentionEnded" {
            return;
        }
        let fields = event.payload.get(event.event_type);
        let text = |name: &str| {
            fields
                .and_then(|f| f.get(name))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        match (event.aggregate_type, event.event_type) {
            ("receipt", "ReceiptUploaded") => {
                if let (Some(storage_key), Some(sha256)) = (text("storage_key"), text("sha256")) {
                    self.uploads.push(Upload {
                        event_id: event.event_id,
                        leaf_index: event.leaf_index,
                        receipt_id: event.aggregate_id.to_string(),
                        storage_key,
                        sha256,
                    });
                }
            }
            (_, "RetentionEnded") if text("aggregate_type").as_deref() == Some("receipt") => {
                self.ended.extend(text("aggregate_id"));
            }
            _ => {}
        }
    }

    /// Each upload's file, as `file` finds it (none: gone), against its recorded hash.
    fn check(&self, mut file: impl FnMut(&Upload) -> Option<Vec<u8>>) -> Vec<Divergence> {
        let mut found = Vec::new();
        for upload in &self.uploads {
            if self.ended.contains(&upload.receipt_id) {
                continue;
            }
            let kind = match file(upload) {
                None => Kind::ReceiptMissing,
                Some(bytes) if hex(&Sha256::digest(&bytes)) != upload.sha256 => {
                    Kind::ReceiptChanged
                }
                Some(_) => continue,
            };
            found.push(Divergence {
                kind,
                leaf_index: upload.leaf_index,
                event_id: Some(upload.event_id),
                tree_size: None,
            });
        }
        found
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One line of a bundle's `events.ndjson`: an event as stored, with its leaf.
#[derive(Debug, Serialize, Deserialize)]
struct EventLine {
    leaf_index: Option<u64>,
    event_id: Uuid,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
    recorded_at: String,
}

impl EventLine {
    fn new(event: RecordedEvent, leaf_index: Option<u64>) -> Self {
        Self {
            leaf_index,
            event_id: crate::nats::event_id(
                &event.aggregate_type,
                &event.aggregate_id,
                event.sequence,
            ),
            recorded_at: event
                .recorded_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            event_type: event.event_type,
            event_version: event.event_version,
            payload: Arc::unwrap_or_clone(event.payload),
            metadata: Arc::unwrap_or_clone(event.metadata),
        }
    }

    fn noted(&self) -> Noted<'_> {
        Noted {
            event_id: self.event_id,
            leaf_index: self.leaf_index,
            aggregate_type: &self.aggregate_type,
            aggregate_id: &self.aggregate_id,
            event_type: &self.event_type,
            payload: &self.payload,
        }
    }

    fn leaf_hash(&self) -> anyhow::Result<Hash> {
        let recorded_at = DateTime::parse_from_rfc3339(&self.recorded_at)
            .with_context(|| format!("event {}: recorded_at", self.event_id))?
            .with_timezone(&Utc);
        Ok(expensewise_domain::audit_log::event_leaf_hash(
            &expensewise_domain::audit_log::StoredEvent {
                aggregate_type: &self.aggregate_type,
                aggregate_id: &self.aggregate_id,
                sequence: self.sequence,
                event_type: &self.event_type,
                event_version: &self.event_version,
                payload: &self.payload,
                metadata: &self.metadata,
                recorded_at,
            },
        ))
    }

    fn present(&self) -> anyhow::Result<PresentEvent> {
        Ok(PresentEvent {
            event_id: self.event_id,
            leaf_index: self.leaf_index,
            leaf_hash: self.leaf_hash()?,
        })
    }
}

/// Every leaf the notary recorded, and which leaf each event has.
async fn recorded_leaves(
    db: &Database,
    organization: Option<&str>,
) -> anyhow::Result<(Vec<Option<super::StoredLeaf>>, HashMap<Uuid, u64>)> {
    // By index: a leaf row removed behind the notary's back leaves a hole (None), which
    // then fails every checkpoint over it, rather than shifting the leaves after it.
    let mut leaves: Vec<Option<super::StoredLeaf>> = Vec::new();
    loop {
        let page = super::leaves_from(db, leaves.len() as u64, 50_000).await?;
        if page.is_empty() {
            break;
        }
        for leaf in page {
            while (leaves.len() as u64) < leaf.index {
                leaves.push(None);
            }
            leaves.push(Some(leaf));
        }
    }
    let index = leaves
        .iter()
        .flatten()
        .filter(|l| organization.is_none() || l.organization_id.as_deref() == organization)
        .map(|l| (l.event.event_id, l.index))
        .collect();
    Ok((leaves, index))
}

/// A leaf for the verification; a hole has a hash no event has.
fn notarized(leaf: &Option<super::StoredLeaf>) -> NotarizedLeaf {
    match leaf {
        Some(l) => NotarizedLeaf {
            hash: l.hash,
            event_id: Some(l.event.event_id),
        },
        None => NotarizedLeaf {
            hash: [0; 32],
            event_id: None,
        },
    }
}

/// Every event of the store (of one organization), in its global order, page by page.
/// The next page is read while `each` goes through this one.
async fn for_each_event(
    db: &Database,
    organization: Option<&str>,
    mut each: impl FnMut(RecordedEvent) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let filter = AuditFilter {
        organization_id: organization.map(str::to_string),
        ..AuditFilter::default()
    };
    let (pages, mut received) = tokio::sync::mpsc::channel(2);
    let db = db.clone();
    let reader = tokio::spawn(async move {
        let mut after = GlobalPosition::default();
        loop {
            let page = read_filtered(&db, &filter, after, PAGE).await?;
            let Some(last) = page.last().map(|e| e.global) else {
                return Ok::<_, sqlx::Error>(());
            };
            after = last;
            if pages.send(page).await.is_err() {
                return Ok(());
            }
        }
    });
    while let Some(page) = received.recv().await {
        for event in page {
            if let Err(e) = each(event) {
                reader.abort();
                return Err(e);
            }
        }
    }
    reader.await??;
    Ok(())
}

/// How many events the store holds: what a progress bar counts towards.
pub async fn event_count(db: &Database) -> anyhow::Result<u64> {
    let n: i64 = crate::on_database!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(pool)
            .await?
    });
    Ok(n as u64)
}

/// A verification's report, and the events it names by aggregate and sequence.
pub struct Verified {
    pub report: Report,
    pub names: HashMap<Uuid, super::EventName>,
}

/// Verifies the store against its log and `notes` (every checkpoint kept, wherever),
/// and, with `receipts`, each receipt file. `progress` hears how many events are done.
pub async fn verify_store(
    db: &Database,
    verifiers: &[NoteVerifier],
    notes: &[String],
    receipts: Option<&ObjectStore>,
    progress: &dyn Fn(u64),
) -> anyhow::Result<Verified> {
    let (leaves, index) = recorded_leaves(db, None).await?;
    let mut verification = Verification::new(leaves.iter().map(notarized).collect());
    let mut uploads = Uploads::default();
    let mut done = 0u64;
    // Events the notary never recorded, named here as no leaf names them.
    let mut unrecorded = HashMap::new();
    for_each_event(db, None, |event| {
        let id = crate::nats::event_id(&event.aggregate_type, &event.aggregate_id, event.sequence);
        let leaf_index = index.get(&id).copied();
        if leaf_index.is_none() {
            let name = super::EventName {
                event_id: id,
                aggregate_type: event.aggregate_type.clone(),
                aggregate_id: event.aggregate_id.clone(),
                sequence: event.sequence,
            };
            unrecorded.insert(id, name);
        }
        verification.event(PresentEvent {
            event_id: id,
            leaf_index,
            leaf_hash: super::leaf_hash_of(&event),
        });
        uploads.note(Noted {
            event_id: id,
            leaf_index,
            aggregate_type: &event.aggregate_type,
            aggregate_id: &event.aggregate_id,
            event_type: &event.event_type,
            payload: &event.payload,
        });
        done += 1;
        if done.is_multiple_of(10_000) {
            progress(done);
        }
        Ok(())
    })
    .await?;
    progress(done);
    let mut report = verification.finish(notes, verifiers);
    if let Some(objects) = receipts {
        let mut files = HashMap::new();
        for upload in &uploads.uploads {
            if let Ok(bytes) = objects.get(&upload.storage_key).await {
                files.insert(upload.event_id, bytes);
            }
        }
        for divergence in uploads.check(|u| files.remove(&u.event_id)) {
            report.add(divergence);
        }
    }
    let named: HashSet<Uuid> = report
        .divergences
        .iter()
        .filter_map(|d| d.event_id)
        .collect();
    let mut names: HashMap<Uuid, super::EventName> = leaves
        .into_iter()
        .flatten()
        .filter(|l| named.contains(&l.event.event_id))
        .map(|l| (l.event.event_id, l.event))
        .collect();
    names.extend(unrecorded.into_iter().filter(|(id, _)| named.contains(id)));
    Ok(Verified { report, names })
}

/// Every checkpoint note to verify against: the database's, and the archive's where
/// there is one (the same note twice counts once).
pub fn distinct_notes(notes: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    notes
        .into_iter()
        .filter(|n| seen.insert(n.clone()))
        .collect()
}

/// The public keys of a key file: one per line (blank lines ignored).
pub fn public_keys(
    text: &str,
) -> Result<Vec<NoteVerifier>, expensewise_domain::signed_note::NoteError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(NoteVerifier::parse)
        .collect()
}

/// What a bundle holds (docs/audit-log.md, "Bundles").
pub struct Bundle;

impl Bundle {
    pub const PUBLIC_KEY: &'static str = "public-key";
    pub const CHECKPOINTS: &'static str = "checkpoints.ndjson";
    pub const LEAVES: &'static str = "leaves.txt";
    pub const EVENTS: &'static str = "events.ndjson";
    pub const RECEIPTS: &'static str = "receipts";
}

#[derive(Serialize, Deserialize)]
struct CheckpointLine {
    note: String,
}

/// Writes a bundle into `dir` (made if missing): the log's public key, every checkpoint
/// note, every leaf (naming the events of `organization` only, when given), the events
/// as stored (of `organization`), and with `receipts` their files. Returns the number
/// of events written.
pub async fn write_bundle(
    db: &Database,
    dir: &Path,
    verifier_key: &str,
    notes: &[String],
    organization: Option<&str>,
    receipts: Option<&ObjectStore>,
) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let create = |name: &str| -> anyhow::Result<BufWriter<std::fs::File>> {
        let path = dir.join(name);
        Ok(BufWriter::new(std::fs::File::create(&path).with_context(
            || format!("cannot write {}", path.display()),
        )?))
    };
    std::fs::write(dir.join(Bundle::PUBLIC_KEY), format!("{verifier_key}\n"))?;
    let mut out = create(Bundle::CHECKPOINTS)?;
    for note in notes {
        serde_json::to_writer(&mut out, &CheckpointLine { note: note.clone() })?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    let (leaves, index) = recorded_leaves(db, organization).await?;
    let mut out = create(Bundle::LEAVES)?;
    for leaf in leaves.iter().map(notarized) {
        match leaf.event_id.filter(|id| index.contains_key(id)) {
            Some(id) => writeln!(out, "{} {id}", hex(&leaf.hash))?,
            None => writeln!(out, "{} -", hex(&leaf.hash))?,
        }
    }
    out.flush()?;
    let mut out = create(Bundle::EVENTS)?;
    let mut uploads = Uploads::default();
    let mut written = 0u64;
    for_each_event(db, organization, |event| {
        let id = crate::nats::event_id(&event.aggregate_type, &event.aggregate_id, event.sequence);
        let line = EventLine::new(event, index.get(&id).copied());
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
        uploads.note(line.noted());
        written += 1;
        Ok(())
    })
    .await?;
    out.flush()?;
    if let Some(objects) = receipts {
        let files = dir.join(Bundle::RECEIPTS);
        std::fs::create_dir_all(&files)?;
        for upload in &uploads.uploads {
            if let Ok(bytes) = objects.get(&upload.storage_key).await {
                std::fs::write(files.join(&upload.receipt_id), bytes)?;
            }
        }
    }
    Ok(written)
}

/// Verifies a bundle, with nothing but its files and the log's public keys (`verifiers`,
/// or else those of the bundle's own `public-key` file, one per line).
pub fn verify_bundle(dir: &Path, verifiers: Vec<NoteVerifier>) -> anyhow::Result<Report> {
    let read = |name: &str| -> anyhow::Result<std::io::BufReader<std::fs::File>> {
        let path = dir.join(name);
        Ok(std::io::BufReader::new(
            std::fs::File::open(&path)
                .with_context(|| format!("the bundle has no {}", path.display()))?,
        ))
    };
    let verifiers = match verifiers.is_empty() {
        false => verifiers,
        true => {
            let text = std::fs::read_to_string(dir.join(Bundle::PUBLIC_KEY))
                .context("the bundle has no public-key file")?;
            public_keys(&text).map_err(|e| anyhow::anyhow!("public-key: {e}"))?
        }
    };
    let mut notes = Vec::new();
    for line in read(Bundle::CHECKPOINTS)?.lines() {
        let line: CheckpointLine =
            serde_json::from_str(&line?).context("checkpoints.ndjson: a line is not a note")?;
        notes.push(line.note);
    }
    let mut leaves = Vec::new();
    for (n, line) in read(Bundle::LEAVES)?.lines().enumerate() {
        let line = line?;
        let parsed = line.split_once(' ').and_then(|(hash, id)| {
            let bytes: Vec<u8> = (0..hash.len())
                .step_by(2)
                .map(|i| {
                    hash.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<_>>()?;
            let hash = Hash::try_from(bytes.as_slice()).ok()?;
            let event_id = match id {
                "-" => None,
                id => Some(Uuid::parse_str(id).ok()?),
            };
            Some(NotarizedLeaf { hash, event_id })
        });
        leaves.push(parsed.with_context(|| format!("leaves.txt: line {} is malformed", n + 1))?);
    }
    let mut verification = Verification::new(leaves);
    let mut uploads = Uploads::default();
    for (n, line) in read(Bundle::EVENTS)?.lines().enumerate() {
        let line: EventLine = serde_json::from_str(&line?)
            .with_context(|| format!("events.ndjson: line {} is not an event", n + 1))?;
        verification.event(line.present()?);
        uploads.note(line.noted());
    }
    let mut report = verification.finish(&notes, &verifiers);
    let files = dir.join(Bundle::RECEIPTS);
    if files.is_dir() {
        for divergence in uploads.check(|u| std::fs::read(files.join(&u.receipt_id)).ok()) {
            report.add(divergence);
        }
    }
    Ok(report)
}
