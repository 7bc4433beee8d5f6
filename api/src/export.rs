//! Exports auditors take away (docs/audit-log.md, "Exports"): an organization's events
//! of a period, and its expenses as they stood at the period's end, as CSV (RFC 4180)
//! or in the German tax auditors' data-access format (GDPdU / GoBD "Z3": `index.xml`
//! after the Beschreibungsstandard, describing the CSV files beside it). A GDPdU export
//! also holds the organization's audit log bundle and a SHA-256 manifest of every file,
//! the newest signed checkpoint among them, so `expensewise audit verify --bundle` and
//! `sha256sum -c manifest.sha256` check it where it lands.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use expensewise_infra::audit_log;
use expensewise_infra::event_store::{read_filtered, AuditFilter};
use expensewise_infra::{Database, GlobalPosition, Vault};
use expensewise_projections::expenses::{self as model, Replayed};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::routes::events::EventView;
use crate::routes::expenses::ExpenseView;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180: comma, double quotes, CRLF, a header row.
    Csv,
    /// GDPdU: semicolon, double quotes, CRLF, no header (`index.xml` names the
    /// columns), decimal comma, dates `DD.MM.YYYY`.
    Gdpdu,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "csv" => Some(Format::Csv),
            "gdpdu" => Some(Format::Gdpdu),
            _ => None,
        }
    }

    fn delimiter(self) -> char {
        match self {
            Format::Csv => ',',
            Format::Gdpdu => ';',
        }
    }
}

/// What an export covers: one organization's events recorded from `from` (inclusive)
/// to `to` (exclusive), and its expenses as they stood at `to` (or now).
#[derive(Debug, Clone)]
pub struct Scope {
    pub organization: Uuid,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// A record in `format`, ended by CRLF; fields quoted where they must be.
fn record(format: Format, fields: &[String]) -> String {
    let delimiter = format.delimiter();
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            if f.contains([delimiter, '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect();
    format!("{}\r\n", quoted.join(&delimiter.to_string()))
}

/// The columns of the two tables: (name, GDPdU type).
const EVENT_COLUMNS: [(&str, &str); 14] = [
    ("event_id", "AlphaNumeric"),
    ("leaf_index", "Numeric"),
    ("global_position", "AlphaNumeric"),
    ("recorded_at", "AlphaNumeric"),
    ("occurred_at", "AlphaNumeric"),
    ("aggregate_type", "AlphaNumeric"),
    ("aggregate_id", "AlphaNumeric"),
    ("sequence", "Numeric"),
    ("event_type", "AlphaNumeric"),
    ("event_version", "AlphaNumeric"),
    ("actor_id", "AlphaNumeric"),
    ("correlation_id", "AlphaNumeric"),
    ("changes", "AlphaNumeric"),
    ("payload", "AlphaNumeric"),
];

const EXPENSE_COLUMNS: [(&str, &str); 16] = [
    ("id", "AlphaNumeric"),
    ("owner_id", "AlphaNumeric"),
    ("amount", "Numeric"),
    ("currency", "AlphaNumeric"),
    ("merchant", "AlphaNumeric"),
    ("category", "AlphaNumeric"),
    ("spent_on", "Date"),
    ("description", "AlphaNumeric"),
    ("status", "AlphaNumeric"),
    ("version", "Numeric"),
    ("created_at", "AlphaNumeric"),
    ("updated_at", "AlphaNumeric"),
    ("submitted_at", "AlphaNumeric"),
    ("decided_at", "AlphaNumeric"),
    ("decided_by", "AlphaNumeric"),
    ("decision_reason", "AlphaNumeric"),
];

fn event_fields(e: &EventView) -> Vec<String> {
    let json = |v: &serde_json::Value| serde_json::to_string(v).unwrap_or_default();
    let text = |v: Option<Uuid>| v.map(|u| u.to_string()).unwrap_or_default();
    vec![
        e.event_id.to_string(),
        e.leaf_index.map(|i| i.to_string()).unwrap_or_default(),
        e.global_position.clone(),
        e.recorded_at.to_rfc3339(),
        e.occurred_at.to_rfc3339(),
        e.aggregate_type.clone(),
        e.aggregate_id.clone(),
        e.sequence.to_string(),
        e.event_type.clone(),
        e.event_version.clone(),
        text(e.actor_id),
        text(e.correlation_id),
        e.changes
            .as_ref()
            .map(|c| serde_json::to_string(c).unwrap_or_default())
            .unwrap_or_default(),
        json(&e.payload),
    ]
}

fn expense_fields(format: Format, e: &ExpenseView) -> Vec<String> {
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    let status = serde_json::to_value(e.status)
        .ok()
        .and_then(|s| s.as_str().map(str::to_string))
        .unwrap_or_default();
    let (amount, spent_on) = match format {
        Format::Csv => (e.amount.clone(), e.spent_on.to_string()),
        Format::Gdpdu => (
            e.amount.replace('.', ","),
            e.spent_on.format("%d.%m.%Y").to_string(),
        ),
    };
    vec![
        e.id.to_string(),
        e.owner_id.to_string(),
        amount,
        e.currency.clone(),
        e.merchant.clone(),
        e.category.clone(),
        spent_on,
        e.description.clone().unwrap_or_default(),
        status,
        e.version.to_string(),
        e.created_at.to_rfc3339(),
        e.updated_at.to_rfc3339(),
        time(e.submitted_at),
        time(e.decided_at),
        e.decided_by.map(|u| u.to_string()).unwrap_or_default(),
        e.decision_reason.clone().unwrap_or_default(),
    ]
}

/// An RFC 4180 record.
pub fn csv_record(fields: &[String]) -> String {
    record(Format::Csv, fields)
}

/// Expenses as CSV, with a header row (RFC 4180).
pub fn expenses_csv(views: &[ExpenseView]) -> String {
    let mut out = csv_record(&header(&EXPENSE_COLUMNS));
    for view in views {
        out.push_str(&csv_record(&expense_fields(Format::Csv, view)));
    }
    out
}

fn header(columns: &[(&str, &str)]) -> Vec<String> {
    columns.iter().map(|(name, _)| name.to_string()).collect()
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub events: u64,
    pub expenses: u64,
}

/// Writes the export into `dir` (made if missing). `verifier_key` and `notes` (every
/// checkpoint kept) go into a GDPdU export's bundle.
pub async fn write(
    db: &Database,
    vault: &Vault,
    dir: &Path,
    format: Format,
    scope: &Scope,
    verifier_key: &str,
    notes: &[String],
) -> anyhow::Result<Written> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let create = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        let path = dir.join(name);
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(std::io::BufWriter::new(file))
    };
    let mut out = create("events.csv")?;
    if format == Format::Csv {
        out.write_all(record(format, &header(&EVENT_COLUMNS)).as_bytes())?;
    }
    let filter = AuditFilter {
        organization_id: Some(scope.organization.to_string()),
        from: scope.from,
        to: scope.to,
        ..AuditFilter::default()
    };
    let mut after = GlobalPosition::default();
    let mut events = 0u64;
    loop {
        let page = read_filtered(db, &filter, after, 1000).await?;
        let Some(last) = page.last().map(|e| e.global) else {
            break;
        };
        after = last;
        for view in EventView::for_clients(db, vault, page).await? {
            out.write_all(record(format, &event_fields(&view)).as_bytes())?;
            events += 1;
        }
    }
    out.flush()?;

    // The expenses as they stood at the end of the period, from the events recorded by
    // then.
    let end = scope.to;
    let replayed = Replayed::build(
        db,
        vault,
        &|e| end.is_none_or(|to| e.recorded_at < to),
        &|_| {},
    )
    .await?;
    let rows = model::list_all_in(
        db,
        replayed.table(),
        scope.organization,
        &Default::default(),
    )
    .await;
    replayed.discard(db).await?;
    let mut out = create("expenses.csv")?;
    if format == Format::Csv {
        out.write_all(record(format, &header(&EXPENSE_COLUMNS)).as_bytes())?;
    }
    let mut expenses = 0u64;
    for row in rows? {
        let view = ExpenseView::from_row(row).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        out.write_all(record(format, &expense_fields(format, &view)).as_bytes())?;
        expenses += 1;
    }
    out.flush()?;

    if format == Format::Gdpdu {
        std::fs::write(dir.join("index.xml"), index_xml(scope))?;
        let organization = scope.organization.to_string();
        audit_log::write_bundle(db, dir, verifier_key, notes, Some(&organization), None).await?;
        let newest = audit_log::latest_checkpoint(db).await?;
        if let Some(checkpoint) = newest {
            std::fs::write(dir.join("checkpoint"), checkpoint.note)?;
        }
        write_manifest(dir)?;
    }
    Ok(Written { events, expenses })
}

/// `manifest.sha256`: every other file's SHA-256, as `sha256sum` writes and checks them.
fn write_manifest(dir: &Path) -> anyhow::Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "manifest.sha256")
        .collect();
    names.sort();
    let mut manifest = String::new();
    for name in names {
        let bytes = std::fs::read(dir.join(&name))?;
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        manifest.push_str(&format!("{digest}  {name}\n"));
    }
    std::fs::write(dir.join("manifest.sha256"), manifest)?;
    Ok(())
}

fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml_columns(columns: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, kind)) in columns.iter().enumerate() {
        let element = if i == 0 {
            "VariablePrimaryKey"
        } else {
            "VariableColumn"
        };
        let kind = match *kind {
            "Date" => "<Date><Format>DD.MM.YYYY</Format></Date>".to_string(),
            other => format!("<{other}/>"),
        };
        out.push_str(&format!(
            "        <{element}><Name>{}</Name>{kind}</{element}>\n",
            xml_text(name)
        ));
    }
    out
}

/// The GDPdU description of the two tables (Beschreibungsstandard, DTD
/// `gdpdu-01-09-2004.dtd`).
fn index_xml(scope: &Scope) -> String {
    let date = |t: Option<DateTime<Utc>>, default: &str| {
        t.map(|t| t.format("%d.%m.%Y").to_string())
            .unwrap_or_else(|| default.to_string())
    };
    let from = date(scope.from, "01.01.1970");
    let to = date(scope.to, &Utc::now().format("%d.%m.%Y").to_string());
    let table = |url: &str, name: &str, description: &str, columns: &[(&str, &str)]| {
        format!(
            "    <Table>\n      <URL>{url}</URL>\n      <Name>{name}</Name>\n      \
             <Description>{}</Description>\n      <Validity>\n        <Range>\n          \
             <From>{from}</From>\n          <To>{to}</To>\n        </Range>\n      \
             </Validity>\n      <UTF8/>\n      <DecimalSymbol>,</DecimalSymbol>\n      \
             <DigitGroupingSymbol>.</DigitGroupingSymbol>\n      <VariableLength>\n        \
             <ColumnDelimiter>;</ColumnDelimiter>\n        \
             <RecordDelimiter>&#13;&#10;</RecordDelimiter>\n        \
             <TextEncapsulator>\"</TextEncapsulator>\n{}      </VariableLength>\n    \
             </Table>\n",
            xml_text(description),
            xml_columns(columns)
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE DataSet SYSTEM \"gdpdu-01-09-2004.dtd\">\n\
         <DataSet>\n  <Version>1.0</Version>\n  <DataSupplier>\n    \
         <Name>Expense-Wise</Name>\n    <Location>organization {}</Location>\n    \
         <Comment>{}</Comment>\n  </DataSupplier>\n  <Media>\n    \
         <Name>Expense-Wise export</Name>\n{}{}  </Media>\n</DataSet>\n",
        scope.organization,
        xml_text(
            "Expenses as they stood at the end of the period, and every event of it. \
             The events are verifiable with the audit log bundle beside them \
             (expensewise audit verify --bundle), the files with manifest.sha256."
        ),
        table(
            "expenses.csv",
            "Expenses",
            "Every expense as it stood at the end of the period",
            &EXPENSE_COLUMNS
        ),
        table(
            "events.csv",
            "Events",
            "Every event recorded in the period, in the order of the audit log",
            &EVENT_COLUMNS
        ),
    )
}

/// The files of `dir` in a ZIP archive (deflated), for sending.
pub fn zip_dir(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for name in names {
        zip.start_file(name.as_str(), options)?;
        zip.write_all(&std::fs::read(dir.join(&name))?)?;
    }
    Ok(zip.finish()?.into_inner())
}
