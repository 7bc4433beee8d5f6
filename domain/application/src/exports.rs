//! Exports to accounting systems (issue 20, docs/exports.md): approved and reimbursed
//! expenses as CSV or as a DATEV booking batch. An export marks each expense it takes
//! (`ExpenseExported`, with the batch's id), so the next one takes only what is new;
//! taking an expense again is asked for (`again`). The same batch asked for again (a
//! retried request, the same id) answers the same expenses.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use expensewise_domain::accounting::datev::{self, fiscal_year_of, Line};
use expensewise_domain::accounting::{Accounting, DatevSettings};
use expensewise_domain::exchange::Rate;
use expensewise_domain::expense::{Context, ExpenseCommand, ExpenseError};
use expensewise_domain::{Actor, EventMetadata, Expense, Rejection, Role};
use expensewise_infra::event_store::{CommandError, Scope};
use expensewise_infra::EventStore;
use expensewise_projections::checkpoint::{Checkpoints, ConsistencyError};
use expensewise_projections::expenses::{self as model, ExpenseRow};
use expensewise_projections::users;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{UseCaseError, UseCaseResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180, UTF-8, a header row.
    Csv,
    /// DATEV's EXTF Buchungsstapel.
    Datev,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "csv" => Some(Format::Csv),
            "datev" => Some(Format::Datev),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Datev => "datev",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Datev => "text/csv; charset=windows-1252",
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct Request {
    pub batch_id: Uuid,
    pub format: Format,
    /// Take expenses other batches took too.
    pub again: bool,
    /// DATEV: the fiscal year (the calendar year it begins in) to take; the oldest with
    /// anything to take when absent. A DATEV batch never spans two.
    pub fiscal_year: Option<i32>,
}

/// An export made (or made again).
#[derive(Debug, Clone)]
pub struct Exported {
    pub batch_id: Uuid,
    pub format: Format,
    pub expenses: usize,
    /// `None` when there was nothing to take.
    pub file: Option<Vec<u8>>,
    /// Expenses this batch could not take, and why (DATEV: no amount in the
    /// organization's currency yet; or another batch took them meanwhile).
    pub left_out: Vec<(Uuid, String)>,
    /// Expenses left for later batches (DATEV: of other fiscal years).
    pub remaining: usize,
}

/// Only admins and finance export, and see the bookkeeping settings.
pub fn may_export(actor: &Actor) -> UseCaseResult<()> {
    match actor.role {
        Role::Admin | Role::Finance => Ok(()),
        _ => Err(UseCaseError::Rejected(Rejection::Forbidden(
            "only admins and finance export expenses".into(),
        ))),
    }
}

async fn datev_settings(store: &EventStore, organization_id: Uuid) -> UseCaseResult<DatevSettings> {
    let accounting: Accounting = store.load(&organization_id.to_string()).await?;
    accounting.datev.ok_or_else(|| {
        UseCaseError::Rejected(Rejection::Conflict(
            "set the DATEV numbers and accounts first (PUT /v1/accounting)".into(),
        ))
    })
}

/// Waits until the expenses read model has every event stored so far: an export must not
/// miss an approval that has just been made.
async fn read_model_current(store: &EventStore, checkpoints: &Checkpoints) -> UseCaseResult<()> {
    let db = store.database();
    let head = expensewise_projections::status::head(db)
        .await
        .map_err(anyhow::Error::from)?;
    match checkpoints
        .wait_until(db, model::NAME, head, Duration::from_secs(10))
        .await
    {
        Ok(()) => Ok(()),
        Err(ConsistencyError::NotYet) => Err(UseCaseError::NotYet(
            "the expenses read model has not caught up yet; retry shortly".into(),
        )),
        Err(ConsistencyError::Database(e)) => Err(anyhow::Error::from(e).into()),
    }
}

/// Takes what `request` asks for into batch `request.batch_id`, marks it, and writes the
/// file.
pub async fn export(
    store: &EventStore,
    checkpoints: &Checkpoints,
    actor: Actor,
    metadata: &EventMetadata,
    request: Request,
) -> UseCaseResult<Exported> {
    may_export(&actor)?;
    let organization_id = actor.organization_id;
    let settings = match request.format {
        Format::Datev => Some(datev_settings(store, organization_id).await?),
        Format::Csv => None,
    };
    read_model_current(store, checkpoints).await?;
    let candidates = model::to_export(
        store.database(),
        organization_id,
        request.batch_id,
        request.again,
    )
    .await
    .map_err(anyhow::Error::from)?;
    let mut left_out = Vec::new();
    let mut remaining = 0;
    let chosen: Vec<ExpenseRow> = match &settings {
        None => candidates,
        Some(settings) => {
            let mut by_year: BTreeMap<NaiveDate, Vec<ExpenseRow>> = BTreeMap::new();
            for row in candidates {
                if row.base_amount.is_none() {
                    left_out.push((row.id, "no amount in the organization's currency yet (no exchange rate for its day)".to_string()));
                    continue;
                }
                by_year
                    .entry(fiscal_year_of(row.spent_on, settings.fiscal_year_start))
                    .or_default()
                    .push(row);
            }
            let year = match request.fiscal_year {
                Some(year) => NaiveDate::from_ymd_opt(year, settings.fiscal_year_start, 1),
                None => by_year.keys().next().copied(),
            };
            let chosen = year.and_then(|y| by_year.remove(&y)).unwrap_or_default();
            remaining = by_year.values().map(Vec::len).sum();
            chosen
        }
    };
    let mut taken = Vec::with_capacity(chosen.len());
    for row in chosen {
        let command = ExpenseCommand::ExportExpense {
            ctx: Context {
                actor,
                at: Utc::now(),
                expected_version: None,
            },
            batch_id: request.batch_id,
            format: request.format.as_str().to_string(),
            again: request.again,
        };
        match store
            .execute::<Expense>(&Scope::none(), &row.id.to_string(), command, metadata)
            .await
        {
            Ok(_) => taken.push(row),
            Err(CommandError::Rejected(ExpenseError::AlreadyExported(batch))) => {
                left_out.push((row.id, format!("batch {batch} took it meanwhile")));
            }
            Err(CommandError::Rejected(ExpenseError::WrongStatus(status))) => {
                left_out.push((row.id, format!("it is {status} now")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let file = write(
        store,
        settings.as_ref(),
        &taken,
        request.batch_id,
        &actor,
        Utc::now(),
    )
    .await?;
    Ok(Exported {
        batch_id: request.batch_id,
        format: request.format,
        expenses: taken.len(),
        file,
        left_out,
        remaining,
    })
}

/// The file of a batch made before, as it would be written now.
pub async fn batch_file(
    store: &EventStore,
    checkpoints: &Checkpoints,
    actor: Actor,
    batch_id: Uuid,
) -> UseCaseResult<Exported> {
    may_export(&actor)?;
    let organization_id = actor.organization_id;
    read_model_current(store, checkpoints).await?;
    let rows = model::exported_in(store.database(), organization_id, batch_id)
        .await
        .map_err(anyhow::Error::from)?;
    let Some(format) = rows
        .first()
        .and_then(|r| r.exported.as_ref())
        .and_then(|e| Format::parse(&e.format))
    else {
        return Err(UseCaseError::Rejected(Rejection::NotFound(
            "no such export batch".into(),
        )));
    };
    let settings = match format {
        Format::Datev => Some(datev_settings(store, organization_id).await?),
        Format::Csv => None,
    };
    let made = rows
        .iter()
        .filter_map(|r| r.exported.as_ref().map(|e| e.at))
        .min()
        .unwrap_or_else(Utc::now);
    let file = write(store, settings.as_ref(), &rows, batch_id, &actor, made).await?;
    Ok(Exported {
        batch_id,
        format,
        expenses: rows.len(),
        file,
        left_out: Vec::new(),
        remaining: 0,
    })
}

/// The file of `rows`: a DATEV batch with `datev`'s settings, else CSV; `None` for no
/// rows.
async fn write(
    store: &EventStore,
    datev: Option<&DatevSettings>,
    rows: &[ExpenseRow],
    batch_id: Uuid,
    actor: &Actor,
    at: DateTime<Utc>,
) -> UseCaseResult<Option<Vec<u8>>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let names = users::names(store.database(), actor.organization_id).await?;
    let owner = |id: &Uuid| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    Ok(Some(match datev {
        Some(settings) => {
            let lines: Vec<Line> = rows
                .iter()
                .map(|r| Line {
                    expense_id: r.id,
                    spent_on: r.spent_on,
                    amount: r
                        .base_amount
                        .as_deref()
                        .and_then(|a| a.parse::<Decimal>().ok())
                        .unwrap_or_default(),
                    category: r.category.clone(),
                    merchant: r.merchant.clone(),
                    owner: owner(&r.owner_id),
                })
                .collect();
            let currency = rows
                .iter()
                .find_map(|r| r.base_currency.clone())
                .unwrap_or_else(|| "EUR".to_string());
            let exported_by = names.get(&actor.user_id).cloned().unwrap_or_default();
            let name = format!("Expense-Wise {}", &batch_id.to_string()[..8]);
            datev::document(&datev::Batch {
                settings,
                created_at: at,
                exported_by: &exported_by,
                name: &name,
                currency: &currency,
                lines: &lines,
            })
            .unwrap_or_default()
        }
        None => csv(rows, &owner, batch_id).into_bytes(),
    }))
}

const CSV_COLUMNS: [&str; 20] = [
    "expense_id",
    "spent_on",
    "owner_id",
    "owner",
    "merchant",
    "category",
    "description",
    "amount",
    "currency",
    "base_amount",
    "base_currency",
    "exchange_rate",
    "mileage_distance",
    "mileage_unit",
    "status",
    "approved_at",
    "approved_by",
    "receipt_ids",
    "batch_id",
    "fiscal_month",
];

/// Units of the organization's currency one unit of the expense's bought.
fn per_unit(rate: &Rate) -> Decimal {
    match rate {
        Rate::Reference {
            from_per_euro,
            to_per_euro,
            ..
        } => (*to_per_euro / *from_per_euro).round_dp(6),
        Rate::Manual { per_unit } => *per_unit,
    }
}

/// RFC 4180: a header row, commas, CRLF, fields quoted where they must be.
fn csv(rows: &[ExpenseRow], owner: &dyn Fn(&Uuid) -> String, batch_id: Uuid) -> String {
    let field = |value: &str| {
        if value.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", value.replace('"', "\"\""))
        } else {
            value.to_string()
        }
    };
    let mut out = CSV_COLUMNS.join(",") + "\r\n";
    for r in rows {
        let values = [
            r.id.to_string(),
            r.spent_on.to_string(),
            r.owner_id.to_string(),
            owner(&r.owner_id),
            r.merchant.clone(),
            r.category.clone(),
            r.description.clone().unwrap_or_default(),
            r.amount.clone(),
            r.currency.clone(),
            r.base_amount.clone().unwrap_or_default(),
            r.base_currency.clone().unwrap_or_default(),
            r.rate
                .as_ref()
                .map(|rate| per_unit(rate).to_string())
                .unwrap_or_default(),
            r.mileage
                .as_ref()
                .map(|m| m.distance.to_string())
                .unwrap_or_default(),
            r.mileage
                .as_ref()
                .map(|m| m.rate.unit.as_str().to_string())
                .unwrap_or_default(),
            r.status.clone(),
            r.decided_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            r.decided_by.map(|u| u.to_string()).unwrap_or_default(),
            r.receipt_ids
                .iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            batch_id.to_string(),
            format!("{}-{:02}", r.spent_on.year(), r.spent_on.month()),
        ];
        out.push_str(
            &values
                .iter()
                .map(|v| field(v))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

/// Replaces the organization's bookkeeping settings (admins); `expected_version` is the
/// client's `If-Match`.
pub async fn set_settings(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    datev: DatevSettings,
    expected_version: Option<u64>,
) -> UseCaseResult<expensewise_infra::event_store::Committed<Accounting>> {
    let command = expensewise_domain::accounting::AccountingCommand::SetSettings {
        actor,
        at: Utc::now(),
        expected_version,
        datev,
    };
    Ok(store
        .execute::<Accounting>(scope, &actor.organization_id.to_string(), command, metadata)
        .await?)
}

/// The organization's bookkeeping settings (version 0 and none before they are set).
pub async fn settings(store: &EventStore, organization_id: Uuid) -> UseCaseResult<Accounting> {
    Ok(store.load(&organization_id.to_string()).await?)
}
