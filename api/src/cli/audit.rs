//! `expensewise audit`: the event history as auditors take it away (`export`, `bundle`),
//! and the proof that it is whole (`verify`, against the database or a bundle).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use expensewise_domain::audit_log::Report;
use expensewise_domain::signed_note::{NoteSigner, NoteVerifier};
use expensewise_infra::audit_log::{self, CheckpointArchive, EventName};
use expensewise_infra::object_store::ObjectStore;
use expensewise_infra::{Config, Database, Vault};
use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;

use crate::export::csv_record;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Export the history: `ndjson` (one event per line, the format of GET
    /// /v1/audit/events), or into a directory `csv` (events.csv, and expenses.csv as they
    /// stood at `--to`) or `gdpdu` (the same described by index.xml for the tax
    /// auditors' tools, with the audit log bundle and a SHA-256 manifest).
    Export {
        #[arg(long, default_value = "ndjson", value_parser = ["ndjson", "csv", "gdpdu"])]
        format: String,
        /// Only this organization's events (required for csv and gdpdu).
        #[arg(long)]
        organization: Option<Uuid>,
        /// Only events recorded at or after this time (RFC 3339).
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Only events recorded before this time (RFC 3339); the expenses as of then.
        #[arg(long)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// Only events after this global position (`txid.position`; ndjson).
        #[arg(long)]
        after: Option<String>,
        /// Write here (a file for ndjson, else a directory) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Check that the history is whole: every event as stored against the leaf the
    /// notary recorded, every leaf against every signed checkpoint (the database's and
    /// the checkpoint bucket's). Exit status 0: clean; 2: tampered; 1: could not verify.
    Verify {
        /// Verify this bundle (`audit bundle`) instead, with no database.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Also check each receipt file against the SHA-256 its upload recorded.
        #[arg(long)]
        receipts: bool,
        /// A file of the log's public keys (as `GET /v1/audit/public-key` gives one), one
        /// per line; repeat for the keys of each era after a key change. By default the
        /// configured signing key's, or the bundle's own `public-key` file.
        #[arg(long)]
        public_key: Vec<PathBuf>,
        /// Print the report as JSON (docs/audit-log.md, "Verifying").
        #[arg(long)]
        json: bool,
    },
    /// Write a bundle an auditor verifies offline: the events as stored, every leaf,
    /// every checkpoint and the public key (docs/audit-log.md, "Bundles").
    Bundle {
        /// The directory to write (made if missing).
        #[arg(long)]
        out: PathBuf,
        /// Only this organization's events (other leaves are given as hashes only).
        #[arg(long)]
        organization: Option<Uuid>,
        /// Also copy the receipt files, for `verify --bundle` to check.
        #[arg(long)]
        receipts: bool,
    },
    /// The expenses read model as it was at a moment of the history (a quarter's close,
    /// say), rebuilt in a scratch table from the events recorded by then.
    Replay {
        /// An RFC 3339 time of recording, or a global position (`txid.position`).
        #[arg(long)]
        until: String,
        /// The organization whose books to replay.
        #[arg(long)]
        organization: Uuid,
        /// `summary` (totals, as GET /v1/reports/summary) or `expenses` (every one).
        #[arg(long, default_value = "summary", value_parser = ["summary", "expenses"])]
        report: String,
        #[arg(long, default_value = "json", value_parser = ["json", "csv"])]
        format: String,
        /// How the summary groups: category, month or user.
        #[arg(long, default_value = "category", value_parser = ["category", "month", "user"])]
        group_by: String,
    },
    /// Print the log's public key (what auditors verify checkpoints with).
    PublicKey,
    /// Print a new signing key for AUDIT_SIGNING_KEY_FILE, named `origin`.
    NewKey {
        /// The log's name: a schema-less URL such as example.com/audit-log.
        #[arg(long)]
        origin: String,
    },
}

/// The verification found the history changed (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("the audit log does not verify")]
pub struct Tampered;

pub async fn run(config: Config, action: AuditCommand) -> anyhow::Result<()> {
    match action {
        AuditCommand::Export {
            format,
            organization,
            from,
            to,
            after,
            output,
        } => match crate::export::Format::parse(&format) {
            None => export(config, organization, (from, to), after, output).await,
            Some(format) => {
                let (Some(organization), Some(dir)) = (organization, output) else {
                    anyhow::bail!("--format csv and gdpdu need --organization and --output DIR");
                };
                let db = Database::connect(&config.database.url, 2).await?;
                let vault = Vault::from_config(db.clone(), &config.keys).await?;
                let signer = audit_log::signing_key(&config.audit)?;
                let notes = checkpoint_notes(&config, &db).await?;
                let scope = crate::export::Scope {
                    organization,
                    from,
                    to,
                };
                let written = crate::export::write(
                    &db,
                    &vault,
                    &dir,
                    format,
                    &scope,
                    &signer.verifier_key(),
                    &notes,
                )
                .await?;
                eprintln!(
                    "wrote {} events and {} expenses to {}",
                    written.events,
                    written.expenses,
                    dir.display()
                );
                db.close().await;
                Ok(())
            }
        },
        AuditCommand::Verify {
            bundle,
            receipts,
            public_key,
            json,
        } => {
            let mut verifiers = Vec::new();
            for path in &public_key {
                verifiers.extend(read_verifiers(path)?);
            }
            let (report, names) = match bundle {
                Some(dir) => (
                    audit_log::verify_bundle(&dir, verifiers)?,
                    Default::default(),
                ),
                None => verify_database(&config, verifiers, receipts).await?,
            };
            print_report(&report, &names, json)?;
            match report.divergences.is_empty() {
                true => Ok(()),
                false => Err(Tampered.into()),
            }
        }
        AuditCommand::Bundle {
            out,
            organization,
            receipts,
        } => {
            let db = Database::connect(&config.database.url, 2).await?;
            let signer = audit_log::signing_key(&config.audit)?;
            let notes = checkpoint_notes(&config, &db).await?;
            let objects = match receipts {
                true => Some(ObjectStore::open(&config.receipts, config.receipt_retention).await?),
                false => None,
            };
            let organization = organization.map(|o| o.to_string());
            let events = audit_log::write_bundle(
                &db,
                &out,
                &signer.verifier_key(),
                &notes,
                organization.as_deref(),
                objects.as_ref(),
            )
            .await?;
            eprintln!(
                "wrote a bundle of {events} events and {} checkpoints to {}",
                notes.len(),
                out.display()
            );
            db.close().await;
            Ok(())
        }
        AuditCommand::Replay {
            until,
            organization,
            report,
            format,
            group_by,
        } => replay(config, &until, organization, &report, &format, &group_by).await,
        AuditCommand::PublicKey => {
            println!("{}", audit_log::signing_key(&config.audit)?.verifier_key());
            Ok(())
        }
        AuditCommand::NewKey { origin } => {
            let mut seed = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut seed);
            let signer =
                NoteSigner::new(&origin, &seed).map_err(|e| anyhow::anyhow!("--origin: {e}"))?;
            println!("{}", signer.to_private_text());
            eprintln!("public key: {}", signer.verifier_key());
            Ok(())
        }
    }
}

fn read_verifiers(path: &PathBuf) -> anyhow::Result<Vec<NoteVerifier>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--public-key: cannot read {}", path.display()))?;
    audit_log::public_keys(&text)
        .map_err(|e| anyhow::anyhow!("--public-key {}: {e}", path.display()))
}

/// Every checkpoint kept: the database's and the archive's.
async fn checkpoint_notes(config: &Config, db: &Database) -> anyhow::Result<Vec<String>> {
    let mut notes: Vec<String> = audit_log::all_checkpoints(db)
        .await?
        .into_iter()
        .map(|c| c.note)
        .collect();
    if let Some(archive) = CheckpointArchive::open(&config.audit).await? {
        notes.extend(archive.notes().await?);
    }
    Ok(audit_log::distinct_notes(notes))
}

async fn verify_database(
    config: &Config,
    verifiers: Vec<NoteVerifier>,
    receipts: bool,
) -> anyhow::Result<(Report, std::collections::HashMap<Uuid, EventName>)> {
    let db = Database::connect(&config.database.url, 2).await?;
    let verifiers = match verifiers.is_empty() {
        false => verifiers,
        true => vec![
            NoteVerifier::parse(&audit_log::signing_key(&config.audit)?.verifier_key())
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        ],
    };
    let notes = checkpoint_notes(config, &db).await?;
    let objects = match receipts {
        true => Some(ObjectStore::open(&config.receipts, config.receipt_retention).await?),
        false => None,
    };
    let bar = ProgressBar::new(audit_log::event_count(&db).await?);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let verified = audit_log::verify_store(&db, &verifiers, &notes, objects.as_ref(), &|n| {
        bar.set_position(n)
    })
    .await?;
    bar.finish_and_clear();
    db.close().await;
    Ok((verified.report, verified.names))
}

fn print_report(
    report: &Report,
    names: &std::collections::HashMap<Uuid, EventName>,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    println!(
        "{} events; the log has {} leaves, {} checkpoints, the largest signing {} leaves; \
         {} events not yet in the log",
        report.events, report.leaves, report.checkpoints, report.signed_size, report.pending
    );
    if report.divergences.is_empty() {
        println!("clean: every event is as the log recorded it");
        return Ok(());
    }
    println!(
        "TAMPERED: {} divergences, the first:",
        report.divergences.len()
    );
    for d in &report.divergences {
        let kind = serde_json::to_value(d.kind)?;
        let mut line = format!("  {}", kind.as_str().unwrap_or_default());
        if let Some(size) = d.tree_size {
            line.push_str(&format!(" checkpoint of {size} leaves"));
        }
        if let Some(index) = d.leaf_index {
            line.push_str(&format!(" at leaf {index}"));
        }
        match d.event_id.map(|id| (id, names.get(&id))) {
            Some((_, Some(name))) => line.push_str(&format!(": event {name}")),
            Some((id, None)) => line.push_str(&format!(": event {id}")),
            None => {}
        }
        println!("{line}");
    }
    Ok(())
}

async fn export(
    config: Config,
    organization: Option<Uuid>,
    (from, to): (
        Option<chrono::DateTime<chrono::Utc>>,
        Option<chrono::DateTime<chrono::Utc>>,
    ),
    after: Option<String>,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    use futures::TryStreamExt;
    use tokio::io::AsyncWriteExt;

    let after = match after {
        None => Default::default(),
        Some(a) => a
            .parse()
            .map_err(|_| anyhow::anyhow!("--after: {a:?} is not a global position like 1234.56"))?,
    };
    let db = Database::connect(&config.database.url, 2).await?;
    let filter = expensewise_infra::event_store::AuditFilter {
        organization_id: organization.map(|o| o.to_string()),
        from,
        to,
        ..Default::default()
    };
    let mut out = super::output(output.as_deref()).await?;
    let vault = Vault::from_config(db.clone(), &config.keys).await?;
    let mut lines = std::pin::pin!(crate::routes::audit::ndjson_stream(
        db.clone(),
        vault,
        filter,
        after
    ));
    let mut bytes = 0usize;
    while let Some(chunk) = lines.try_next().await? {
        bytes += chunk.len();
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    if let Some(path) = output {
        eprintln!("wrote {bytes} bytes of events to {}", path.display());
    }
    db.close().await;
    Ok(())
}

async fn replay(
    config: Config,
    until: &str,
    organization: Uuid,
    report: &str,
    format: &str,
    group_by: &str,
) -> anyhow::Result<()> {
    use expensewise_application::history::AsOf;
    use expensewise_projections::expenses::Replayed;

    let then = AsOf::parse(until).ok_or_else(|| {
        anyhow::anyhow!(
            "--until: {until:?} is neither an RFC 3339 time nor a position like 1234.56"
        )
    })?;
    let db = Database::connect(&config.database.url, 2).await?;
    let vault = Vault::from_config(db.clone(), &config.keys).await?;
    let bar = ProgressBar::new(audit_log::event_count(&db).await?);
    let replayed =
        Replayed::build(&db, &vault, &|e| then.includes(e), &|n| bar.set_position(n)).await;
    bar.finish_and_clear();
    let replayed = replayed?;
    let written = replay_report(
        &db,
        replayed.table(),
        organization,
        report,
        format,
        group_by,
    )
    .await;
    replayed.discard(&db).await?;
    db.close().await;
    print!("{}", written?);
    Ok(())
}

/// The report `audit replay` prints, read from the replayed model in `table`.
async fn replay_report(
    db: &Database,
    table: &str,
    organization: Uuid,
    report: &str,
    format: &str,
    group_by: &str,
) -> anyhow::Result<String> {
    use crate::routes::approvals::{BaseSummaryRowView, Summary, SummaryRowView};
    use expensewise_projections::expenses::{self as model, GroupBy, Measure};

    if report == "summary" {
        let group_by = match group_by {
            "month" => GroupBy::Month,
            "user" => GroupBy::User,
            _ => GroupBy::Category,
        };
        let summary = |measure| {
            model::summary_in(
                db,
                table,
                organization,
                None,
                (None, None),
                group_by,
                measure,
            )
        };
        let rows = summary(Measure::Original).await?;
        return Ok(match format {
            "csv" => {
                let header = ["key", "currency", "total", "count"].map(String::from);
                let mut out = csv_record(&header);
                for r in &rows {
                    out.push_str(&csv_record(&[
                        r.key.clone(),
                        r.currency.clone(),
                        r.total.clone(),
                        r.count.to_string(),
                    ]));
                }
                out
            }
            _ => {
                let rows = rows.into_iter().map(SummaryRowView::from).collect();
                let in_base = summary(Measure::Base)
                    .await?
                    .into_iter()
                    .map(BaseSummaryRowView::from)
                    .collect();
                serde_json::to_string_pretty(&Summary { rows, in_base })? + "\n"
            }
        });
    }
    let views = model::list_all_in(db, table, organization, &Default::default())
        .await?
        .into_iter()
        .map(crate::routes::expenses::ExpenseView::from_row)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(match format {
        "csv" => crate::export::expenses_csv(&views),
        _ => serde_json::to_string_pretty(&views)? + "\n",
    })
}
