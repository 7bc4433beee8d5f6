//! Queries of the expenses read model: lists, the approvals queue, one expense, summaries.

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use expensewise_domain::exchange::Rate;
use expensewise_domain::expense::AGGREGATE_TYPE;
use expensewise_domain::expense::{Export, StepApproval};
use expensewise_domain::policy::{ApprovalStep, Claimed, Mileage, Violation};
use expensewise_domain::{Currency, Money};
use expensewise_infra::{on_database, Database};
use rust_decimal::Decimal;
use sqlx::Row;
use uuid::Uuid;

/// One expense as the read model has it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpenseRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub amount: String,
    pub currency: String,
    pub merchant: String,
    pub category: String,
    pub spent_on: NaiveDate,
    pub description: Option<String>,
    pub status: String,
    pub receipt_ids: Vec<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<Uuid>,
    pub decision_reason: Option<String>,
    /// The amount in the organization's currency, when known, and the rate that made it.
    pub base_amount: Option<String>,
    pub base_currency: Option<String>,
    pub rate: Option<Rate>,
    pub policy_version: i64,
    pub violations: Vec<Violation>,
    pub justification: Option<String>,
    pub approval_steps: Vec<ApprovalStep>,
    pub approvals: Vec<StepApproval>,
    pub step_since: Option<DateTime<Utc>>,
    /// A mileage claim's distance and the rate that priced it.
    pub mileage: Option<Mileage>,
    /// The export batch that last took it.
    pub exported: Option<Export>,
}

pub(super) const COLUMNS: &str = "id, owner_id, amount, currency, merchant, category, spent_on, description, status, \
     receipt_ids, version, created_at, updated_at, submitted_at, decided_at, decided_by, decision_reason, \
     base_amount, base_currency, rate, policy_version, violations, justification, approval_steps, \
     approvals, step_since, mileage, exported_batch, exported_format, exported_at";

fn uuid(text: String) -> Result<Uuid, sqlx::Error> {
    Uuid::parse_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

pub(super) fn decode_row<'r, R>(row: &'r R) -> Result<ExpenseRow, sqlx::Error>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    NaiveDate: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<DateTime<Utc>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let receipts: String = row.try_get("receipt_ids")?;
    let json = |e: serde_json::Error| sqlx::Error::Decode(Box::new(e));
    let rate: Option<String> = row.try_get("rate")?;
    let mileage: Option<String> = row.try_get("mileage")?;
    let violations: String = row.try_get("violations")?;
    Ok(ExpenseRow {
        id: uuid(row.try_get("id")?)?,
        owner_id: uuid(row.try_get("owner_id")?)?,
        amount: row.try_get("amount")?,
        currency: row.try_get("currency")?,
        merchant: row.try_get("merchant")?,
        category: row.try_get("category")?,
        spent_on: row.try_get("spent_on")?,
        description: row.try_get("description")?,
        status: row.try_get("status")?,
        receipt_ids: serde_json::from_str(&receipts)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        submitted_at: row.try_get("submitted_at")?,
        decided_at: row.try_get("decided_at")?,
        decided_by: row
            .try_get::<Option<String>, _>("decided_by")?
            .map(uuid)
            .transpose()?,
        decision_reason: row.try_get("decision_reason")?,
        base_amount: row.try_get("base_amount")?,
        base_currency: row.try_get("base_currency")?,
        rate: rate
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(json)?,
        policy_version: row.try_get("policy_version")?,
        violations: serde_json::from_str(&violations).map_err(json)?,
        justification: row.try_get("justification")?,
        approval_steps: serde_json::from_str(&row.try_get::<String, _>("approval_steps")?)
            .map_err(json)?,
        approvals: serde_json::from_str(&row.try_get::<String, _>("approvals")?).map_err(json)?,
        step_since: row.try_get("step_since")?,
        mileage: mileage
            .map(|m| serde_json::from_str(&m))
            .transpose()
            .map_err(json)?,
        exported: match (
            row.try_get::<Option<String>, _>("exported_batch")?,
            row.try_get::<Option<String>, _>("exported_format")?,
            row.try_get::<Option<DateTime<Utc>>, _>("exported_at")?,
        ) {
            (Some(batch), Some(format), Some(at)) => Some(Export {
                batch_id: uuid(batch)?,
                format,
                at,
            }),
            _ => None,
        },
    })
}

/// One value bound to a query built at run time.
enum Arg {
    Text(String),
    Date(NaiveDate),
    Time(DateTime<Utc>),
    Int(i64),
}

/// A query whose filters are only there when asked for, so each plan uses its index.
struct Select {
    sql: String,
    args: Vec<Arg>,
}

impl Select {
    fn new(sql: &str) -> Self {
        Self {
            sql: sql.to_string(),
            args: Vec::new(),
        }
    }

    /// Appends `clause`, where `?` stands for the next argument.
    fn push(&mut self, clause: &str, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let placeholder = format!("${}", self.args.len());
        self.sql.push_str(&clause.replace('?', &placeholder));
        self
    }

    fn text(&mut self, s: &str) -> &mut Self {
        self.sql.push_str(s);
        self
    }

    async fn rows(self, db: &Database) -> Result<Vec<ExpenseRow>, sqlx::Error> {
        on_database!(db, |pool| {
            let mut query = sqlx::query(&self.sql);
            for arg in self.args {
                query = match arg {
                    Arg::Text(v) => query.bind(v),
                    Arg::Date(v) => query.bind(v),
                    Arg::Time(v) => query.bind(v),
                    Arg::Int(v) => query.bind(v),
                };
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter().map(decode_row).collect()
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<String>,
    pub category: Option<String>,
    pub owner_id: Option<Uuid>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub q: Option<String>,
}

/// Where a page ended: the last row's sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub spent_on: NaiveDate,
    pub id: Uuid,
}

impl ListCursor {
    /// The day as a number (days since 1 January of year 1), so that the cursor's form
    /// is one the API document can state exactly.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.spent_on.num_days_from_ce(), self.id)
    }

    /// A day past the calendar's end reads as its last day: the page after it is empty.
    pub fn decode(text: &str) -> Option<ListCursor> {
        let (days, id) = text.split_once('_')?;
        let days: u64 = days.parse().ok()?;
        Some(ListCursor {
            spent_on: i32::try_from(days)
                .ok()
                .and_then(NaiveDate::from_num_days_from_ce_opt)
                .unwrap_or(NaiveDate::MAX),
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

fn like_pattern(q: &str) -> String {
    let escaped = q
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Adds `filter`'s conditions to a query of the organization's expenses.
fn filtered(select: &mut Select, filter: &ListFilter) {
    if let Some(status) = &filter.status {
        select.push(" AND status = ?", Arg::Text(status.clone()));
    }
    if let Some(category) = &filter.category {
        select.push(" AND category = ?", Arg::Text(category.clone()));
    }
    if let Some(owner) = filter.owner_id {
        select.push(" AND owner_id = ?", Arg::Text(owner.to_string()));
    }
    if let Some(from) = filter.from {
        select.push(" AND spent_on >= ?", Arg::Date(from));
    }
    if let Some(to) = filter.to {
        select.push(" AND spent_on <= ?", Arg::Date(to));
    }
    if let Some(q) = filter.q.as_deref().filter(|q| !q.trim().is_empty()) {
        select.push(
            " AND search LIKE ? ESCAPE '\\'",
            Arg::Text(like_pattern(q.trim())),
        );
    }
}

/// Every expense of an organization that `filter` lets through, page by page.
pub async fn list_all(
    db: &Database,
    organization_id: Uuid,
    filter: &ListFilter,
) -> Result<Vec<ExpenseRow>, sqlx::Error> {
    list_all_in(db, super::TABLE, organization_id, filter).await
}

/// [`list_all`] of the model in `table` (a replay's, say).
pub async fn list_all_in(
    db: &Database,
    table: &str,
    organization_id: Uuid,
    filter: &ListFilter,
) -> Result<Vec<ExpenseRow>, sqlx::Error> {
    crate::all_pages(|cursor: Option<ListCursor>, limit| async move {
        list_in(db, table, organization_id, filter, cursor.as_ref(), limit).await
    })
    .await
}

/// Expenses of an organization, newest `spent_on` first, `limit` per page.
pub async fn list(
    db: &Database,
    organization_id: Uuid,
    filter: &ListFilter,
    cursor: Option<&ListCursor>,
    limit: usize,
) -> Result<(Vec<ExpenseRow>, Option<ListCursor>), sqlx::Error> {
    list_in(db, super::TABLE, organization_id, filter, cursor, limit).await
}

async fn list_in(
    db: &Database,
    table: &str,
    organization_id: Uuid,
    filter: &ListFilter,
    cursor: Option<&ListCursor>,
    limit: usize,
) -> Result<(Vec<ExpenseRow>, Option<ListCursor>), sqlx::Error> {
    let mut select = Select::new(&format!("SELECT {COLUMNS} FROM {table} WHERE "));
    select.push(
        "organization_id = ?",
        Arg::Text(organization_id.to_string()),
    );
    filtered(&mut select, filter);
    if let Some(c) = cursor {
        select.push(" AND (spent_on < ?", Arg::Date(c.spent_on));
        select.push(" OR (spent_on = ?", Arg::Date(c.spent_on));
        select.push(" AND id < ?))", Arg::Text(c.id.to_string()));
    }
    select.text(" ORDER BY spent_on DESC, id DESC");
    select.push(" LIMIT ?", Arg::Int(limit as i64 + 1));
    let mut rows = select.rows(db).await?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| ListCursor {
            spent_on: r.spent_on,
            id: r.id,
        })
    } else {
        None
    };
    Ok((rows, next))
}

/// Where a page of changed expenses ended: the last row's `updated_at` and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedCursor {
    pub updated_at: DateTime<Utc>,
    pub id: Uuid,
}

impl ChangedCursor {
    pub fn encode(&self) -> String {
        format!("{}_{}", self.updated_at.timestamp_micros(), self.id)
    }

    pub fn decode(text: &str) -> Option<ChangedCursor> {
        let (micros, id) = text.split_once('_')?;
        Some(ChangedCursor {
            updated_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// Expenses of an organization changed at or after `since` that `filter` lets through,
/// oldest change first: what a client that polls for changes reads.
pub async fn changed_since(
    db: &Database,
    organization_id: Uuid,
    filter: &ListFilter,
    since: DateTime<Utc>,
    cursor: Option<&ChangedCursor>,
    limit: usize,
) -> Result<(Vec<ExpenseRow>, Option<ChangedCursor>), sqlx::Error> {
    let mut select = Select::new(&format!("SELECT {COLUMNS} FROM {} WHERE ", super::TABLE));
    select.push(
        "organization_id = ?",
        Arg::Text(organization_id.to_string()),
    );
    select.push(" AND updated_at >= ?", Arg::Time(since));
    filtered(&mut select, filter);
    if let Some(c) = cursor {
        select.push(" AND (updated_at > ?", Arg::Time(c.updated_at));
        select.push(" OR (updated_at = ?", Arg::Time(c.updated_at));
        select.push(" AND id > ?))", Arg::Text(c.id.to_string()));
    }
    select.text(" ORDER BY updated_at, id");
    select.push(" LIMIT ?", Arg::Int(limit as i64 + 1));
    let mut rows = select.rows(db).await?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| ChangedCursor {
            updated_at: r.updated_at,
            id: r.id,
        })
    } else {
        None
    };
    Ok((rows, next))
}

/// Where an approvals page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueCursor {
    pub submitted_at: DateTime<Utc>,
    pub id: Uuid,
}

impl QueueCursor {
    /// Nanoseconds, because that is the precision stored: a coarser cursor would sort
    /// before its own row and repeat it.
    pub fn encode(&self) -> String {
        let nanos = self.submitted_at.timestamp_nanos_opt().unwrap_or(i64::MAX);
        format!("{nanos}_{}", self.id)
    }

    pub fn decode(text: &str) -> Option<QueueCursor> {
        let (nanos, id) = text.split_once('_')?;
        Some(QueueCursor {
            submitted_at: DateTime::from_timestamp_nanos(nanos.parse().ok()?),
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// Whose approvals queue it is: the person, the kinds of steps they take by role (theirs,
/// and those of the people they stand in for), and the people whose manager steps they
/// take (themselves, and those they stand in for).
#[derive(Debug, Clone, Default)]
pub struct Takers {
    pub person: Uuid,
    pub approvers: Vec<&'static str>,
    pub managers: Vec<Uuid>,
}

/// Submitted expenses whose awaited step `takers` take (not the person's own, nor one
/// whose chain they decided a step of), oldest first.
pub async fn approvals(
    db: &Database,
    organization_id: Uuid,
    takers: &Takers,
    cursor: Option<&QueueCursor>,
    limit: usize,
) -> Result<(Vec<ExpenseRow>, Option<QueueCursor>), sqlx::Error> {
    let mut select = Select::new(&format!(
        "SELECT {COLUMNS} FROM rm_expenses WHERE status = 'submitted' AND "
    ));
    select.push(
        "organization_id = ?",
        Arg::Text(organization_id.to_string()),
    );
    select.push(" AND owner_id <> ?", Arg::Text(takers.person.to_string()));
    select.text(" AND (1 = 0");
    for approver in &takers.approvers {
        select.push(" OR pending_approver = ?", Arg::Text(approver.to_string()));
    }
    for manager in &takers.managers {
        select.push(
            " OR (pending_approver = 'manager' AND pending_user = ?)",
            Arg::Text(manager.to_string()),
        );
    }
    select.text(")");
    if let Some(c) = cursor {
        select.push(" AND (submitted_at > ?", Arg::Time(c.submitted_at));
        select.push(" OR (submitted_at = ?", Arg::Time(c.submitted_at));
        select.push(" AND id > ?))", Arg::Text(c.id.to_string()));
    }
    select.text(" ORDER BY submitted_at, id");
    select.push(" LIMIT ?", Arg::Int(limit as i64 + 1));
    let mut rows = select.rows(db).await?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().and_then(|r| {
            Some(QueueCursor {
                submitted_at: r.submitted_at?,
                id: r.id,
            })
        })
    } else {
        None
    };
    // Segregation of duties: whoever decided a step of a chain takes no other.
    let person = takers.person;
    rows.retain(|r| {
        !r.approvals
            .iter()
            .any(|a| a.approver_id == person || a.on_behalf_of == Some(person))
    });
    Ok((rows, next))
}

/// Submitted expenses whose awaited step began before `before`, oldest first, at most
/// `limit`: the ones reminders are due for.
pub async fn waiting_since(
    db: &Database,
    before: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<(Uuid, ExpenseRow)>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, organization_id FROM rm_expenses WHERE status = 'submitted' \
         AND step_since < $1 ORDER BY step_since LIMIT $2"
    );
    on_database!(db, |pool| {
        let rows = sqlx::query(&sql)
            .bind(before)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|row| {
                let organization: String = row.try_get("organization_id")?;
                Ok((uuid(organization)?, decode_row(row)?))
            })
            .collect()
    })
}

/// One expense as the read model has it in this organization (if it does), and the
/// expense's version in the event store (0 when it has no events), read together: a
/// copy older than the store's, or none where the store has events, is behind.
pub async fn get(
    db: &Database,
    organization_id: Uuid,
    id: Uuid,
) -> Result<(Option<ExpenseRow>, u64), sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, store.store_version \
         FROM (SELECT COALESCE(MAX(sequence), 0) AS store_version FROM events \
               WHERE aggregate_type = $1 AND aggregate_id = $2) AS store \
         LEFT JOIN rm_expenses ON rm_expenses.id = $2 AND rm_expenses.organization_id = $3"
    );
    on_database!(db, |pool| {
        let row = sqlx::query(&sql)
            .bind(AGGREGATE_TYPE)
            .bind(id.to_string())
            .bind(organization_id.to_string())
            .fetch_one(pool)
            .await?;
        let store_version: i64 = row.try_get("store_version")?;
        let found = match row.try_get::<Option<String>, _>("id")? {
            Some(_) => Some(decode_row(&row)?),
            None => None,
        };
        Ok((found, u64::try_from(store_version).unwrap_or_default()))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Category,
    Month,
    User,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    pub key: String,
    pub currency: String,
    /// Exact, with the currency's number of fraction digits.
    pub total: String,
    pub count: i64,
    /// In the base currency: the group's expenses whose amount in it is unknown (not in
    /// `total` nor `count`). Always 0 in original currencies.
    pub unconverted: i64,
}

/// Which amounts a summary adds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Each currency apart, as spent.
    Original,
    /// Everything in the organization's currency, as recorded with each expense.
    Base,
}

/// Totals per group and currency (amounts in different currencies are never added).
pub async fn summary(
    db: &Database,
    organization_id: Uuid,
    owner_id: Option<Uuid>,
    (from, to): (Option<NaiveDate>, Option<NaiveDate>),
    group_by: GroupBy,
    measure: Measure,
) -> Result<Vec<SummaryRow>, sqlx::Error> {
    summary_in(
        db,
        super::TABLE,
        organization_id,
        owner_id,
        (from, to),
        group_by,
        measure,
    )
    .await
}

/// [`summary`] of the model in `table` (a replay's, say).
pub async fn summary_in(
    db: &Database,
    table: &str,
    organization_id: Uuid,
    owner_id: Option<Uuid>,
    (from, to): (Option<NaiveDate>, Option<NaiveDate>),
    group_by: GroupBy,
    measure: Measure,
) -> Result<Vec<SummaryRow>, sqlx::Error> {
    let key = match (group_by, db) {
        (GroupBy::Category, _) => "category",
        (GroupBy::User, _) => "owner_id",
        (GroupBy::Month, Database::Postgres(_)) => "to_char(spent_on, 'YYYY-MM')",
        (GroupBy::Month, Database::Sqlite(_)) => "substr(spent_on, 1, 7)",
    };
    // Every converted amount of an organization is in its one base currency; MAX picks
    // it (NULL when none of the group is converted).
    let (currency, total, count, unconverted, group) = match measure {
        Measure::Original => ("currency", "amount_minor", "COUNT(*)", "0", "1, 2"),
        Measure::Base => (
            "MAX(base_currency)",
            "base_amount_minor",
            "COUNT(base_amount_minor)",
            "COUNT(*) - COUNT(base_amount_minor)",
            "1",
        ),
    };
    let mut sql = format!(
        "SELECT {key} AS key, {currency} AS currency, \
         CAST(COALESCE(SUM({total}), 0) AS BIGINT) AS total, {count} AS count, \
         CAST({unconverted} AS BIGINT) AS unconverted FROM {table} WHERE organization_id = $1"
    );
    let mut n = 1;
    let mut next = |column: &str, op: &str| {
        n += 1;
        format!(" AND {column} {op} ${n}")
    };
    let owner_clause = owner_id.map(|_| next("owner_id", "="));
    let from_clause = from.map(|_| next("spent_on", ">="));
    let to_clause = to.map(|_| next("spent_on", "<="));
    for clause in [&owner_clause, &from_clause, &to_clause]
        .into_iter()
        .flatten()
    {
        sql.push_str(clause);
    }
    sql.push_str(&format!(" GROUP BY {group} ORDER BY {group}"));
    type Grouped = (String, Option<String>, i64, i64, i64);
    let rows: Vec<Grouped> = on_database!(db, |pool| {
        let mut query = sqlx::query(&sql).bind(organization_id.to_string());
        if let Some(owner) = owner_id {
            query = query.bind(owner.to_string());
        }
        if let Some(from) = from {
            query = query.bind(from);
        }
        if let Some(to) = to {
            query = query.bind(to);
        }
        query
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("key")?,
                    r.try_get("currency")?,
                    r.try_get("total")?,
                    r.try_get("count")?,
                    r.try_get("unconverted")?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    Ok(rows
        .into_iter()
        .map(|(key, currency, total, count, unconverted)| {
            let currency = currency.unwrap_or_default();
            let digits = expensewise_domain::Currency::parse(&currency)
                .map(|c| c.minor_units())
                .unwrap_or(2);
            SummaryRow {
                key,
                total: Decimal::new(total, digits).to_string(),
                currency,
                count,
                unconverted,
            }
        })
        .collect())
}

/// What the policy's daily and monthly limits count: an owner's expenses claimed (submitted,
/// approved or reimbursed) between `from` and `to`, in `base` (the organization's
/// currency), other than `except`.
pub async fn claimed_between(
    db: &Database,
    organization_id: Uuid,
    owner_id: Uuid,
    (from, to): (NaiveDate, NaiveDate),
    base: Currency,
    except: Uuid,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let sql = format!(
        "SELECT category, spent_on, base_amount FROM {} WHERE organization_id = $1 \
         AND owner_id = $2 AND spent_on >= $3 AND spent_on <= $4 AND base_currency = $5 \
         AND id <> $6 AND status IN ('submitted', 'approved', 'reimbursed')",
        super::TABLE
    );
    let rows: Vec<(String, NaiveDate, String)> = on_database!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(organization_id.to_string())
            .bind(owner_id.to_string())
            .bind(from)
            .bind(to)
            .bind(base.code())
            .bind(except.to_string())
            .fetch_all(pool)
            .await?
    });
    rows.into_iter()
        .map(|(category, spent_on, amount)| {
            let amount =
                Money::parse(&amount, base).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            Ok(Claimed {
                category,
                spent_on,
                amount,
            })
        })
        .collect()
}

/// The organization's other expenses with the same merchant (ignoring case), amount and
/// day as `money` spent at `merchant` on `spent_on`.
pub async fn same_details(
    db: &Database,
    organization_id: Uuid,
    (merchant, money, spent_on): (&str, &Money, NaiveDate),
    except: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let sql = format!(
        "SELECT id, merchant FROM {} WHERE organization_id = $1 AND spent_on = $2 \
         AND amount_minor = $3 AND currency = $4 AND id <> $5 ORDER BY created_at LIMIT 50",
        super::TABLE
    );
    let rows: Vec<(String, String)> = on_database!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(organization_id.to_string())
            .bind(spent_on)
            .bind(super::minor_units(money))
            .bind(money.currency().code())
            .bind(except.to_string())
            .fetch_all(pool)
            .await?
    });
    let wanted = merchant.trim().to_lowercase();
    rows.into_iter()
        .filter(|(_, m)| m.trim().to_lowercase() == wanted)
        .map(|(id, _)| uuid(id))
        .collect()
}

/// The approved and reimbursed expenses an export takes: those no export took, those
/// batch `batch_id` took (the same export asked again), or, `again`, all of them —
/// oldest first.
pub async fn to_export(
    db: &Database,
    organization_id: Uuid,
    batch_id: Uuid,
    again: bool,
) -> Result<Vec<ExpenseRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE organization_id = $1 \
         AND status IN ('approved', 'reimbursed') \
         AND (exported_batch IS NULL OR exported_batch = $2 OR $3) ORDER BY spent_on, id",
        super::TABLE
    );
    on_database!(db, |pool| {
        let rows = sqlx::query(&sql)
            .bind(organization_id.to_string())
            .bind(batch_id.to_string())
            .bind(again)
            .fetch_all(pool)
            .await?;
        rows.iter().map(decode_row).collect()
    })
}

/// The expenses export batch `batch_id` took last.
pub async fn exported_in(
    db: &Database,
    organization_id: Uuid,
    batch_id: Uuid,
) -> Result<Vec<ExpenseRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE organization_id = $1 AND exported_batch = $2 \
         ORDER BY spent_on, id",
        super::TABLE
    );
    on_database!(db, |pool| {
        let rows = sqlx::query(&sql)
            .bind(organization_id.to_string())
            .bind(batch_id.to_string())
            .fetch_all(pool)
            .await?;
        rows.iter().map(decode_row).collect()
    })
}

/// One export batch: what it took, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportBatch {
    pub batch_id: Uuid,
    pub format: String,
    pub exported_at: DateTime<Utc>,
    pub expenses: i64,
}

/// The organization's export batches, newest first (an expense exported again counts in
/// its latest batch only).
pub async fn export_batches(
    db: &Database,
    organization_id: Uuid,
) -> Result<Vec<ExportBatch>, sqlx::Error> {
    let sql = format!(
        "SELECT exported_batch, MIN(exported_format) AS format, MIN(exported_at) AS exported_at, \
         COUNT(*) AS expenses FROM {} WHERE organization_id = $1 AND exported_batch IS NOT NULL \
         GROUP BY exported_batch ORDER BY MIN(exported_at) DESC LIMIT 500",
        super::TABLE
    );
    on_database!(db, |pool| {
        let mut batches = Vec::new();
        for row in sqlx::query(&sql)
            .bind(organization_id.to_string())
            .fetch_all(pool)
            .await?
        {
            batches.push(ExportBatch {
                batch_id: uuid(row.try_get("exported_batch")?)?,
                format: row.try_get("format")?,
                exported_at: row.try_get("exported_at")?,
                expenses: row.try_get("expenses")?,
            });
        }
        Ok(batches)
    })
}
