//! `expensewise receipts`: an operator reads receipts again in bulk (after an engine
//! upgrade, say), and exports people's corrections of OCR as labelled data.

use chrono::{DateTime, NaiveDate, Utc};
use clap::Subcommand;
use expensewise_application::receipts as use_case;
use expensewise_application::UseCaseError;
use expensewise_domain::receipt::{ReceiptState, ScanStatus};
use expensewise_infra::event_store::Scope;
use expensewise_infra::{Config, Database, EventStore, Vault};
use expensewise_projections::receipts as receipts_model;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum ReceiptsCommand {
    /// Queue receipts to be read again by the OCR worker (of `serve` or `worker ocr`).
    /// A reviewed receipt keeps its values; no receipt ever makes a second expense.
    Rescan {
        /// Which receipts: failed (the default), needs_review or scanned.
        #[arg(long, default_value = "failed", value_parser = ["failed", "needs_review", "scanned"])]
        status: String,
        /// Only receipts uploaded on or after this day (YYYY-MM-DD) or instant (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only this organization's receipts.
        #[arg(long)]
        organization: Option<Uuid>,
    },
    /// The fingerprints of receipt images (one line each: fingerprint, then the file;
    /// `-` for a file without one), and with `--same`, the pairs of files taken for the
    /// same receipt (two files per line) — what duplicate detection compares.
    Fingerprint {
        files: Vec<std::path::PathBuf>,
        #[arg(long)]
        same: bool,
    },
    /// People's reviews of OCR readings: what was read, what they confirmed, and where
    /// the file is stored.
    Corrections {
        /// Write every reviewed receipt as NDJSON (one per line); without it, a summary.
        #[arg(long)]
        export: bool,
        /// Only this organization's receipts.
        #[arg(long)]
        organization: Option<Uuid>,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
}

pub async fn run(config: Config, action: ReceiptsCommand) -> anyhow::Result<()> {
    if let ReceiptsCommand::Fingerprint { files, same } = action {
        return fingerprints(&files, same);
    }
    let db = Database::connect(&config.database.url, 2).await?;
    db.migrate().await?;
    let outcome = match action {
        ReceiptsCommand::Fingerprint { .. } => Ok(()),
        ReceiptsCommand::Rescan {
            status,
            since,
            organization,
        } => {
            let vault = Vault::from_config(db.clone(), &config.keys).await?;
            let store = EventStore::new(db.clone(), vault);
            rescan(&store, &status, since.as_deref(), organization).await
        }
        ReceiptsCommand::Corrections {
            export,
            organization,
            output,
        } => corrections(&db, export, organization, output).await,
    };
    db.close().await;
    outcome
}

/// Prints each file's fingerprint, or the pairs taken for one receipt.
fn fingerprints(files: &[std::path::PathBuf], same: bool) -> anyhow::Result<()> {
    use expensewise_application::receipts::fingerprint_of;
    let mut found = Vec::with_capacity(files.len());
    for file in files {
        let bytes = std::fs::read(file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        found.push((file, fingerprint_of(&bytes)));
    }
    if !same {
        for (file, print) in &found {
            let print = print.map_or_else(|| "-".to_string(), |p| p.to_string());
            println!("{print} {}", file.display());
        }
        return Ok(());
    }
    for (n, (a, pa)) in found.iter().enumerate() {
        for (b, pb) in &found[n + 1..] {
            if let (Some(pa), Some(pb)) = (pa, pb) {
                if pa.same_receipt(*pb) {
                    println!("{} {}", a.display(), b.display());
                }
            }
        }
    }
    Ok(())
}

fn parse_since(text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(day) = text.parse::<NaiveDate>() {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| anyhow::anyhow!("--since: {text:?} is neither YYYY-MM-DD nor RFC 3339"))
}

async fn rescan(
    store: &EventStore,
    status: &str,
    since: Option<&str>,
    organization: Option<Uuid>,
) -> anyhow::Result<()> {
    let since = since.map(parse_since).transpose()?;
    let receipts =
        receipts_model::with_status(store.database(), status, since, organization).await?;
    let bar = ProgressBar::new(receipts.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("rescan [{bar:40}] {pos}/{len} receipts, eta {eta}")
            .map_err(|e| anyhow::anyhow!("progress bar template: {e}"))?
            .progress_chars("=> "),
    );
    // One operator action: every event it causes shares this correlation.
    let correlation = Uuid::new_v4();
    let (mut queued, mut skipped) = (0usize, 0usize);
    for (id, receipt) in &receipts {
        let metadata =
            expensewise_application::operator_metadata(receipt.organization_id, correlation);
        match use_case::rescan(store, &Scope::none(), None, &metadata, *id).await {
            Ok(_) => queued += 1,
            // Changed since the list was read (reviewed, or already queued).
            Err(UseCaseError::Rejected(_)) => skipped += 1,
            Err(e) => return Err(anyhow::anyhow!("receipt {id}: {e}")),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "{queued} {status} receipts queued for OCR{}",
        if skipped > 0 {
            format!(", {skipped} skipped (changed meanwhile)")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// Which of the read fields the reviewer changed.
fn corrected(receipt: &ReceiptState) -> Vec<&'static str> {
    let (Some(review), read) = (&receipt.review, receipt.extraction.as_ref()) else {
        return Vec::new();
    };
    let mut changed = Vec::new();
    if read.and_then(|e| e.merchant.as_deref()) != Some(review.merchant.as_str()) {
        changed.push("merchant");
    }
    if read.and_then(|e| e.date) != Some(review.date) {
        changed.push("date");
    }
    let total = read.and_then(|e| e.total);
    if total.map(|t| t.amount()) != Some(review.total.amount()) {
        changed.push("amount");
    }
    if total.map(|t| t.currency()) != Some(review.total.currency()) {
        changed.push("currency");
    }
    changed
}

async fn corrections(
    db: &Database,
    export: bool,
    organization: Option<Uuid>,
    output: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let reviewed =
        receipts_model::with_status(db, ScanStatus::Reviewed.as_str(), None, organization).await?;
    if !export {
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for (_, receipt) in &reviewed {
            for field in corrected(receipt) {
                *counts.entry(field).or_default() += 1;
            }
        }
        println!("{} reviewed receipts; corrected fields:", reviewed.len());
        for (field, count) in counts {
            println!("  {field:<10} {count}");
        }
        return Ok(());
    }
    let mut out = super::output(output.as_deref()).await?;
    for (id, receipt) in &reviewed {
        let Some(review) = &receipt.review else {
            continue;
        };
        let read = receipt.extraction.as_ref();
        let line = json!({
            "receipt_id": id,
            "organization_id": receipt.organization_id,
            "storage_key": receipt.storage_key,
            "content_type": receipt.content_type,
            "sha256": receipt.sha256,
            "read": read.map(|e| json!({
                "merchant": e.merchant,
                "date": e.date,
                "total": e.total,
                "confidence": e.confidence,
                "text": e.text,
            })),
            "doubts": receipt.doubts,
            "reviewed": {
                "merchant": review.merchant,
                "date": review.date,
                "total": review.total,
            },
            "corrected": corrected(receipt),
            "reviewer_id": review.reviewer_id,
            "reviewed_at": review.reviewed_at,
        });
        let mut bytes = serde_json::to_vec(&line)?;
        bytes.push(b'\n');
        out.write_all(&bytes).await?;
    }
    out.flush().await?;
    if let Some(path) = output {
        eprintln!("wrote {} corrections to {}", reviewed.len(), path.display());
    }
    Ok(())
}
