//! Exports to accounting systems (docs/exports.md): the organization's bookkeeping
//! settings, incremental exports of approved and reimbursed expenses as CSV or DATEV,
//! and the batches made so far.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use expensewise_application::exports::{self as use_case, Exported, Format, Request};
use expensewise_domain::accounting::{Accounting, DatevSettings};
use expensewise_projections::expenses as read_model;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, IfMatch, JsonBody, Optimistic, RequestMeta};
use crate::routes::consistency::ConsistencyToken;
use crate::state::AppState;

/// DATEV's numbers, and the accounts expenses are booked to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatevView {
    /// The tax consultant's number (Beraternummer).
    #[schema(minimum = 1001, maximum = 9999999, example = 29098)]
    pub consultant_number: u32,
    /// The client's number at the consultant (Mandantennummer).
    #[schema(minimum = 1, maximum = 99999, example = 55003)]
    pub client_number: u32,
    /// The month the fiscal year begins with.
    #[schema(minimum = 1, maximum = 12, example = 1)]
    pub fiscal_year_start: u32,
    /// Digits of a general ledger account (Sachkontenlänge).
    #[schema(minimum = 4, maximum = 8, example = 4)]
    pub account_length: u32,
    /// The chart of accounts: `03` (SKR03), `04` (SKR04), …
    #[schema(example = "03", pattern = "^[0-9]{2}$")]
    pub chart: String,
    /// The account of an expense whose category has none of its own.
    #[schema(example = "4900", pattern = "^[0-9]{4,8}$")]
    pub expense_account: String,
    /// What the expenses are owed to: the employees' account.
    #[schema(example = "1755", pattern = "^[0-9]{4,9}$")]
    pub counter_account: String,
    /// Category → account, e.g. `{"travel": "4670", "meals": "4650"}`.
    #[serde(default)]
    #[schema(schema_with = crate::schemas::category_accounts)]
    pub category_accounts: BTreeMap<String, String>,
}

impl From<DatevSettings> for DatevView {
    fn from(s: DatevSettings) -> Self {
        Self {
            consultant_number: s.consultant_number,
            client_number: s.client_number,
            fiscal_year_start: s.fiscal_year_start,
            account_length: s.account_length,
            chart: s.chart,
            expense_account: s.expense_account,
            counter_account: s.counter_account,
            category_accounts: s.category_accounts,
        }
    }
}

impl From<DatevView> for DatevSettings {
    fn from(v: DatevView) -> Self {
        Self {
            consultant_number: v.consultant_number,
            client_number: v.client_number,
            fiscal_year_start: v.fiscal_year_start,
            account_length: v.account_length,
            chart: v.chart,
            expense_account: v.expense_account,
            counter_account: v.counter_account,
            category_accounts: v.category_accounts,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountingView {
    /// 0 until the settings are first set.
    pub version: u64,
    pub datev: Option<DatevView>,
    pub changed_at: Option<DateTime<Utc>>,
    pub changed_by: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutAccountingRequest {
    pub datev: DatevView,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// RFC 4180, UTF-8, a header row.
    Csv,
    /// DATEV-Format EXTF Buchungsstapel (format version 13), Windows-1252.
    Datev,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    pub format: ExportFormat,
    /// Take expenses earlier batches took too (a deliberate re-export).
    #[serde(default)]
    pub again: bool,
    /// DATEV: the fiscal year to take (the calendar year it begins in); the oldest with
    /// anything to take when absent.
    #[serde(default)]
    #[schema(minimum = 1900, maximum = 9999)]
    pub fiscal_year: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchView {
    pub batch_id: Uuid,
    pub format: String,
    pub exported_at: DateTime<Utc>,
    /// Expenses it took (and no later batch took again).
    pub expenses: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchList {
    pub items: Vec<BatchView>,
}

fn accounting_view(a: &Accounting) -> Response {
    (
        [super::etag_header(a.version)],
        Json(AccountingView {
            version: a.version,
            datev: a.datev.clone().map(DatevView::from),
            changed_at: a.changed_at,
            changed_by: a.changed_by,
        }),
    )
        .into_response()
}

/// The organization's bookkeeping settings (admins and finance)
#[utoipa::path(
    get, path = "/v1/accounting", tag = "exports",
    responses(
        (status = 200, description = "The settings (version 0 and none before they are set)", body = AccountingView,
         headers(("ETag" = String, description = "The version"))),
        (status = 403, description = "Only admins and finance see them"),
    ),
    security(("bearer" = []))
)]
pub async fn get_accounting(State(app): State<AppState>, user: AuthUser) -> ApiResult<Response> {
    use_case::may_export(&user.actor)?;
    let accounting = use_case::settings(&app.store, user.actor.organization_id).await?;
    Ok(accounting_view(&accounting))
}

/// Replace the bookkeeping settings (admins)
#[utoipa::path(
    put, path = "/v1/accounting", tag = "exports",
    params(("If-Match" = Option<String>, Header, description = "The ETag you last saw; a stale one gives 412")),
    request_body = PutAccountingRequest,
    responses(
        (status = 200, description = "The settings after the change", body = AccountingView,
         headers(("ETag" = String, description = "The version"), ("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
        (status = 403, description = "Only admins change them"),
        (status = 409, description = "A concurrent change won"),
        (status = 412, description = "If-Match is stale"),
        (status = 422, description = "Invalid settings: `errors` names each field, e.g. `datev.expense_account`"),
    ),
    security(("bearer" = []))
)]
pub async fn put_accounting(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    if_match: IfMatch,
    JsonBody(body): JsonBody<PutAccountingRequest>,
) -> ApiResult<Response> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let committed = use_case::set_settings(
        &app.store,
        &scope,
        user.actor,
        &metadata,
        body.datev.into(),
        if_match.0,
    )
    .await?;
    let mut response = accounting_view(&committed.aggregate);
    let (name, value) = super::consistency_header(committed.head);
    response.headers_mut().insert(name, value);
    Ok(response)
}

const BATCH_HEADER: &str = "x-export-batch";

fn file_response(exported: Exported) -> Response {
    let batch = HeaderValue::from_str(&exported.batch_id.to_string())
        .unwrap_or(HeaderValue::from_static(""));
    let number =
        |n: usize| HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"));
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static(BATCH_HEADER), batch);
    headers.insert(
        HeaderName::from_static("x-export-count"),
        number(exported.expenses),
    );
    headers.insert(
        HeaderName::from_static("x-export-remaining"),
        number(exported.remaining),
    );
    headers.insert(
        HeaderName::from_static("x-export-left-out"),
        number(exported.left_out.len()),
    );
    let Some(file) = exported.file else {
        return (StatusCode::NO_CONTENT, headers).into_response();
    };
    let name = match exported.format {
        Format::Datev => format!("EXTF_Buchungsstapel_{}.csv", exported.batch_id),
        Format::Csv => format!("expenses_{}.csv", exported.batch_id),
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(exported.format.content_type()),
    );
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    (StatusCode::OK, headers, file).into_response()
}

/// Export what no export took yet (admins and finance)
///
/// Approved and reimbursed expenses no earlier batch took, marked as taken by this one
/// (`ExpenseExported`), so the next export takes only what is new; `again` takes them
/// all. Send an `Idempotency-Key`: a retry with the same key answers the same batch.
/// The answer is the file; `X-Export-Batch` names the batch (`GET
/// /v1/exports/{id}` gives its file again), `X-Export-Count` how many it took,
/// `X-Export-Remaining` how many wait for another (DATEV: of another fiscal year), and
/// `X-Export-Left-Out` how many it could not take (DATEV: no amount in the
/// organization's currency yet).
#[utoipa::path(
    post, path = "/v1/exports", tag = "exports",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries answer the same batch")),
    request_body = ExportRequest,
    responses(
        (status = 200, description = "The batch's file", content_type = "text/csv", body = String,
         headers(("X-Export-Batch" = String, description = "The batch's id"), ("X-Export-Count" = String, description = "Expenses taken"),
                 ("X-Export-Remaining" = String, description = "Expenses left for later batches"), ("X-Export-Left-Out" = String, description = "Expenses that could not be taken"))),
        (status = 204, description = "Nothing to take", headers(("X-Export-Batch" = String, description = "The batch's id"))),
        (status = 403, description = "Only admins and finance export"),
        (status = 409, description = "DATEV: the accounting settings are not set"),
        (status = 422, description = "An invalid body, or an Idempotency-Key used before for another request"),
        (status = 503, description = "The read model has not caught up yet"),
    ),
    security(("bearer" = []))
)]
pub async fn create_export(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ExportRequest>,
) -> ApiResult<Response> {
    if body
        .fiscal_year
        .is_some_and(|y| !(1900..=9999).contains(&y))
    {
        return Err(ApiError::invalid_field(
            "fiscal_year",
            "must be a year from 1900 to 9999",
        ));
    }
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let batch_id = super::id_for_request(EXPORT_NAMESPACE, user.actor.user_id, &headers);
    let request = Request {
        batch_id,
        format: match body.format {
            ExportFormat::Csv => Format::Csv,
            ExportFormat::Datev => Format::Datev,
        },
        again: body.again,
        fiscal_year: body.fiscal_year,
    };
    let exported =
        use_case::export(&app.store, &app.checkpoints, user.actor, &metadata, request).await?;
    Ok(file_response(exported))
}

/// Batch ids derived from an `Idempotency-Key` live in a namespace of their own.
const EXPORT_NAMESPACE: Uuid = Uuid::from_u128(0x5c1e_0e2b_7d4a_4f4e_9a31_e7f0_2c6b_1d20);

/// The export batches made so far (admins and finance)
///
/// A batch counts the expenses whose latest export it is: one taken again by a later
/// batch counts there.
#[utoipa::path(
    get, path = "/v1/exports", tag = "exports",
    params(("X-Consistency-Token" = Option<String>, Header, description = "Wait also until this write (another user's) is visible; your own are waited for without it")),
    responses(
        (status = 200, description = "Batches, newest first", body = BatchList),
        (status = 403, description = "Only admins and finance export"),
        (status = 503, description = "The read model has not caught up yet"),
    ),
    security(("bearer" = []))
)]
pub async fn list_exports(
    State(app): State<AppState>,
    user: AuthUser,
    consistency: ConsistencyToken,
) -> ApiResult<Json<BatchList>> {
    use_case::may_export(&user.actor)?;
    let organization = user.actor.organization_id;
    let batches = consistency
        .read(&app, &user, read_model::NAME, |db| async move {
            read_model::export_batches(&db, organization).await
        })
        .await?;
    Ok(Json(BatchList {
        items: batches
            .into_iter()
            .map(|b| BatchView {
                batch_id: b.batch_id,
                format: b.format,
                exported_at: b.exported_at,
                expenses: b.expenses,
            })
            .collect(),
    }))
}

/// A batch's file, again
#[utoipa::path(
    get, path = "/v1/exports/{id}", tag = "exports",
    params(("id" = Uuid, Path, description = "The batch's id (`X-Export-Batch`)")),
    responses(
        (status = 200, description = "The batch's file", content_type = "text/csv", body = String),
        (status = 403, description = "Only admins and finance export"),
        (status = 404, description = "No such batch"),
        (status = 503, description = "The read model has not caught up yet"),
    ),
    security(("bearer" = []))
)]
pub async fn get_export(
    State(app): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let exported = use_case::batch_file(&app.store, &app.checkpoints, user.actor, id).await?;
    Ok(file_response(exported))
}
