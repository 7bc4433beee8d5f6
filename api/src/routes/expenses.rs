//! Expenses: recording, editing, the approval flow, and each expense's history.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use expensewise_domain::expense::{
    Context, ExpenseChanges, ExpenseCommand, ExpenseDetails, ExpenseError, ExpenseState,
    ExpenseStatus, AGGREGATE_TYPE,
};
use expensewise_domain::receipt::{ReceiptCommand, ReceiptState};
use expensewise_domain::{metadata, Currency, Expense, FieldError, Money, Receipt};
use expensewise_infra::event_store::{aggregate_events, CommandError, Committed};
use expensewise_infra::RecordedEvent;
use expensewise_projections::expenses::{self as read_model, ExpenseRow, ListCursor, ListFilter};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::consistency::ConsistencyToken;
use super::users::page_limit;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AuthUser, IfMatch, JsonBody, OptionalJsonBody, RequestMeta};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpenseStatusView {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Reimbursed,
}

impl From<ExpenseStatus> for ExpenseStatusView {
    fn from(s: ExpenseStatus) -> Self {
        match s {
            ExpenseStatus::Draft => Self::Draft,
            ExpenseStatus::Submitted => Self::Submitted,
            ExpenseStatus::Approved => Self::Approved,
            ExpenseStatus::Rejected => Self::Rejected,
            ExpenseStatus::Reimbursed => Self::Reimbursed,
        }
    }
}

/// An expense as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpenseView {
    pub id: Uuid,
    pub owner_id: Uuid,
    /// A decimal string with the currency's number of fraction digits.
    #[schema(example = "42.50")]
    pub amount: String,
    #[schema(example = "EUR")]
    pub currency: String,
    pub merchant: String,
    pub category: String,
    pub spent_on: NaiveDate,
    pub description: Option<String>,
    pub status: ExpenseStatusView,
    pub receipt_ids: Vec<Uuid>,
    /// Send as `If-Match` to change exactly this version.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<Uuid>,
    /// The approver's comment, or the reason for a rejection.
    pub decision_reason: Option<String>,
}

impl ExpenseView {
    pub fn new(id: Uuid, s: &ExpenseState, version: u64) -> Self {
        Self {
            id,
            owner_id: s.owner_id,
            amount: s.money.amount_string(),
            currency: s.money.currency().code().to_string(),
            merchant: s.merchant.clone(),
            category: s.category.clone(),
            spent_on: s.spent_on,
            description: s.description.clone(),
            status: s.status.into(),
            receipt_ids: s.receipt_ids.clone(),
            version,
            created_at: s.created_at,
            updated_at: s.updated_at,
            submitted_at: s.submitted_at,
            decided_at: s.decided_at,
            decided_by: s.decided_by,
            decision_reason: s.decision_reason.clone(),
        }
    }
}

impl ExpenseView {
    pub fn from_row(row: ExpenseRow) -> ApiResult<Self> {
        let status = ExpenseStatus::parse(&row.status)
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!(
                    "the expenses read model holds an unknown status {:?}",
                    row.status
                ))
            })?
            .into();
        Ok(Self {
            id: row.id,
            owner_id: row.owner_id,
            amount: row.amount,
            currency: row.currency,
            merchant: row.merchant,
            category: row.category,
            spent_on: row.spent_on,
            description: row.description,
            status,
            receipt_ids: row.receipt_ids,
            version: u64::try_from(row.version).unwrap_or_default(),
            created_at: row.created_at,
            updated_at: row.updated_at,
            submitted_at: row.submitted_at,
            decided_at: row.decided_at,
            decided_by: row.decided_by,
            decision_reason: row.decision_reason,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExpensePage {
    pub items: Vec<ExpenseView>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub status: Option<ExpenseStatusFilter>,
    pub category: Option<String>,
    /// Only this user's expenses (employees always see only their own).
    pub owner_id: Option<Uuid>,
    /// Spent on or after this date.
    pub from: Option<NaiveDate>,
    /// Spent on or before this date.
    pub to: Option<NaiveDate>,
    /// Text in the merchant or description (case-insensitive).
    pub q: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// A command's `X-Consistency-Token` (the header works too).
    pub consistency_token: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpenseStatusFilter {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Reimbursed,
}

impl ExpenseStatusFilter {
    fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Reimbursed => "reimbursed",
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExpenseRequest {
    /// A positive decimal string, e.g. "12.34", with no more fraction digits than the
    /// currency has.
    #[schema(example = "42.50")]
    pub amount: String,
    /// An ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
    pub merchant: String,
    pub category: String,
    /// Not after today.
    pub spent_on: NaiveDate,
    #[serde(default)]
    pub description: Option<String>,
    /// A receipt you uploaded, to attach.
    #[serde(default)]
    pub receipt_id: Option<Uuid>,
}

/// Any of the create fields; absent fields stay as they are, `"description": null`
/// clears the description.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchExpenseRequest {
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub merchant: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub spent_on: Option<NaiveDate>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub receipt_id: Option<Uuid>,
}

/// Tells "absent" (outer `None`, from `default`) from "null" (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Why the expense is rejected; required.
    pub reason: String,
}

/// Commands with no input accept an empty body or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

/// One event from the event store.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Stable id of the event (also its `Nats-Msg-Id` on JetStream).
    pub event_id: Uuid,
    /// The event's position in the store's global order.
    pub position: i64,
    /// The event's place in the global order as `txid.position`: the audit cursor.
    pub global_position: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// 1 for an aggregate's first event, then 2, 3, …
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    /// The event's fields as stored (secrets such as password hashes left out).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl EventView {
    pub fn new(event: RecordedEvent) -> Self {
        let meta = |key: &str| {
            event
                .metadata
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let uuid = |key: &str| meta(key).and_then(|v| Uuid::parse_str(&v).ok());
        let occurred_at = meta(metadata::OCCURRED_AT)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(event.recorded_at);
        // cqrs-es stores `{"EventType": {fields}}`; clients want the fields.
        let mut payload = match event.payload {
            serde_json::Value::Object(mut map)
                if map.len() == 1 && map.contains_key(&event.event_type) =>
            {
                map.remove(&event.event_type).unwrap_or_default()
            }
            other => other,
        };
        if let Some(fields) = payload.as_object_mut() {
            fields.retain(|k, _| !k.ends_with("password_hash"));
        }
        Self {
            event_id: expensewise_infra::nats::event_id(
                &event.aggregate_type,
                &event.aggregate_id,
                event.sequence,
            ),
            position: event.global.position,
            global_position: event.global.to_string(),
            actor_id: uuid(metadata::ACTOR_ID),
            correlation_id: uuid(metadata::CORRELATION_ID),
            causation_id: uuid(metadata::CAUSATION_ID),
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            event_type: event.event_type,
            event_version: event.event_version,
            occurred_at,
            payload,
        }
    }
}

/// The latest calendar date anywhere on Earth (UTC+14): an expense dated today in
/// Kiribati is not "in the future" because the server runs on UTC.
fn latest_today() -> NaiveDate {
    (Utc::now() + Duration::hours(14)).date_naive()
}

fn parse_currency(code: &str) -> Result<Currency, FieldError> {
    Currency::parse(code).map_err(|e| FieldError::new("currency", e.to_string()))
}

fn parse_money(amount: &str, currency: Currency) -> Result<Money, FieldError> {
    Money::parse(amount, currency).map_err(|e| FieldError::new("amount", e.to_string()))
}

/// Namespace of key-derived expense ids (see [`super::id_for_request`]).
const EXPENSE_IDS: Uuid = Uuid::from_u128(0x3d5c_a0f1_8b2e_4f7a_9c61_2e8d_5b4a_7f10);

/// A receipt the actor may attach: theirs, in their organization, not attached elsewhere.
async fn attachable_receipt(
    app: &AppState,
    user: &AuthUser,
    receipt_id: Uuid,
) -> ApiResult<ReceiptState> {
    let receipt: Receipt = app.store.load(&receipt_id.to_string()).await?;
    let state = receipt
        .visible_to(&user.actor)
        .filter(|r| r.uploader_id == user.actor.user_id)
        .ok_or_else(|| ApiError::invalid_field("receipt_id", "no receipt of yours has this id"))?;
    Ok(state.clone())
}

async fn mark_receipt_attached(
    app: &AppState,
    user: &AuthUser,
    meta: &RequestMeta,
    receipt_id: Uuid,
    expense_id: Uuid,
) -> ApiResult<()> {
    app.store
        .execute::<Receipt>(
            &receipt_id.to_string(),
            ReceiptCommand::AttachToExpense {
                actor: user.actor,
                expense_id,
                at: Utc::now(),
            },
            &meta.metadata(user.actor.organization_id, Some(user.actor.user_id)),
        )
        .await?;
    Ok(())
}

fn context(user: &AuthUser, if_match: IfMatch) -> Context {
    Context {
        actor: user.actor,
        at: Utc::now(),
        expected_version: if_match.0,
    }
}

async fn execute(
    app: &AppState,
    user: &AuthUser,
    meta: &RequestMeta,
    id: Uuid,
    command: ExpenseCommand,
) -> Result<Committed<Expense>, CommandError<ExpenseError>> {
    app.store
        .execute::<Expense>(
            &id.to_string(),
            command,
            &meta.metadata(user.actor.organization_id, Some(user.actor.user_id)),
        )
        .await
}

fn expense_response(
    status: StatusCode,
    id: Uuid,
    committed: &Committed<Expense>,
) -> ApiResult<Response> {
    let state = committed
        .aggregate
        .state
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no such expense"))?;
    let mut response = (
        status,
        [
            super::etag_header(committed.aggregate.version),
            super::consistency_header(committed.head),
        ],
        Json(ExpenseView::new(id, state, committed.aggregate.version)),
    )
        .into_response();
    if status == StatusCode::CREATED {
        if let Ok(location) = HeaderValue::from_str(&format!("/v1/expenses/{id}")) {
            response.headers_mut().insert(header::LOCATION, location);
        }
    }
    Ok(response)
}

/// Record an expense (as a draft)
#[utoipa::path(
    post, path = "/v1/expenses", tag = "expenses",
    request_body = CreateExpenseRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body create one expense")),
    responses(
        (status = 201, description = "The draft expense", body = ExpenseView,
         headers(("ETag" = String, description = "The version"), ("X-Consistency-Token" = String, description = "Pass to queries to read this write"), ("Location" = String))),
        (status = 401, description = "Missing, invalid or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Auditors cannot record expenses", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_expense(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateExpenseRequest>,
) -> ApiResult<Response> {
    let currency = parse_currency(&body.currency).map_err(|e| ApiError::invalid(vec![e]))?;
    let money = parse_money(&body.amount, currency).map_err(|e| ApiError::invalid(vec![e]))?;
    if let Some(receipt_id) = body.receipt_id {
        let receipt = attachable_receipt(&app, &user, receipt_id).await?;
        if receipt.expense_id.is_some() {
            return Err(ApiError::conflict(
                "the receipt is already attached to an expense",
            ));
        }
    }
    let keyed = headers.contains_key("idempotency-key");
    let id = super::id_for_request(EXPENSE_IDS, user.actor.user_id, &headers);
    let command = ExpenseCommand::CreateExpense {
        ctx: context(&user, IfMatch(None)),
        details: ExpenseDetails {
            money,
            merchant: body.merchant,
            category: body.category,
            spent_on: body.spent_on,
            description: body.description,
        },
        receipt_id: body.receipt_id,
        today: latest_today(),
    };
    let outcome = if keyed {
        execute(&app, &user, &meta, id, command).await
    } else {
        let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
        app.store
            .execute_new::<Expense>(&id.to_string(), command, &metadata)
            .await
    };
    let committed = match outcome {
        // The same key was used before and its expense exists: answer as the first time.
        Err(CommandError::Rejected(ExpenseError::AlreadyExists)) => {
            let existing = app.store.current::<Expense>(&id.to_string()).await?;
            let owner = existing
                .aggregate
                .visible_to(&user.actor)
                .map(|s| s.owner_id);
            if owner != Some(user.actor.user_id) {
                return Err(ApiError::conflict("the expense already exists"));
            }
            existing
        }
        other => other?,
    };
    if let Some(receipt_id) = body.receipt_id {
        mark_receipt_attached(&app, &user, &meta, receipt_id, id).await?;
    }
    expense_response(StatusCode::CREATED, id, &committed)
}

/// Expenses, newest first
///
/// Reflects your own changes immediately, with no header needed, whichever replica took
/// them. Other users' changes appear within milliseconds (p99 under 10 ms in
/// docs/benchmarks.md); to wait for one, pass the `X-Consistency-Token` their command
/// returned.
#[utoipa::path(
    get, path = "/v1/expenses", tag = "expenses",
    params(ListParams, ("X-Consistency-Token" = Option<String>, Header, description = "Wait also until this write (another user's) is visible; your own are waited for without it")),
    responses(
        (status = 200, description = "A page of expenses (employees: their own)", body = ExpensePage),
        (status = 400, description = "A malformed cursor or consistency token", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Employees see only their own expenses", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model has not caught up with your latest write (or the consistency token's) within 5 s", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_expenses(
    State(app): State<AppState>,
    user: AuthUser,
    consistency: ConsistencyToken,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<ExpensePage>> {
    let limit = page_limit(params.limit)?;
    let owner_id = if user.actor.role.sees_all_expenses() {
        params.owner_id
    } else {
        match params.owner_id {
            Some(owner) if owner != user.actor.user_id => {
                return Err(ApiError::forbidden("employees see only their own expenses"))
            }
            _ => Some(user.actor.user_id),
        }
    };
    let cursor =
        match params.cursor.as_deref() {
            None => None,
            Some(c) => Some(ListCursor::decode(c).ok_or_else(|| {
                ApiError::invalid_field("cursor", "is not a cursor from this list")
            })?),
        };
    if let (Some(from), Some(to)) = (params.from, params.to) {
        if from > to {
            return Err(ApiError::invalid_field("from", "must not be after `to`"));
        }
    }
    let filter = ListFilter {
        status: params.status.map(|s| s.as_str().to_string()),
        category: params.category,
        owner_id,
        from: params.from,
        to: params.to,
        q: params.q,
    };
    consistency.wait(&app, &user, read_model::NAME).await?;
    let (rows, next) = read_model::list(
        &app.db,
        user.actor.organization_id,
        &filter,
        cursor.as_ref(),
        limit,
    )
    .await
    .map_err(|e| ApiError::internal(e.into()))?;
    Ok(Json(ExpensePage {
        items: rows
            .into_iter()
            .map(ExpenseView::from_row)
            .collect::<ApiResult<_>>()?,
        next_cursor: next.map(|c| c.encode()),
    }))
}

/// One expense
///
/// Reflects every change to this expense immediately, yours and other users', with no
/// header needed.
#[utoipa::path(
    get, path = "/v1/expenses/{id}", tag = "expenses",
    params(("id" = Uuid, Path, description = "The expense's id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Wait also until this write (another user's) is visible; your own are waited for without it"),
           ("consistency_token" = Option<String>, Query, description = "The same, as a query parameter")),
    responses(
        (status = 200, description = "The expense", body = ExpenseView, headers(("ETag" = String, description = "The version"))),
        (status = 400, description = "A malformed consistency token", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Employees see only their own expenses", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such expense in the organization", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model has not caught up with your latest write (or the consistency token's) within 5 s", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_expense(
    State(app): State<AppState>,
    user: AuthUser,
    consistency: ConsistencyToken,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    consistency.wait(&app, &user, read_model::NAME).await?;
    let read = || async {
        read_model::get(&app.db, user.actor.organization_id, id)
            .await
            .map_err(|e| ApiError::internal(e.into()))
    };
    let version = |row: &ExpenseRow| u64::try_from(row.version).unwrap_or_default();
    let row = super::consistency::read_fresh(
        &app,
        read_model::NAME,
        AGGREGATE_TYPE,
        &id.to_string(),
        read,
        version,
    )
    .await?
    .ok_or_else(|| ApiError::not_found("no such expense"))?;
    if row.owner_id != user.actor.user_id && !user.actor.role.sees_all_expenses() {
        return Err(ApiError::forbidden("employees see only their own expenses"));
    }
    let view = ExpenseView::from_row(row)?;
    Ok(([super::etag_header(view.version)], Json(view)).into_response())
}

/// Edit a draft or rejected expense (owner only)
#[utoipa::path(
    patch, path = "/v1/expenses/{id}", tag = "expenses",
    params(("id" = Uuid, Path, description = "The expense's id"),
           ("If-Match" = Option<String>, Header, description = "The ETag you last saw; a stale one gives 412")),
    request_body = PatchExpenseRequest,
    responses(
        (status = 200, description = "The edited expense", body = ExpenseView,
         headers(("ETag" = String, description = "The version"), ("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
        (status = 401, description = "Missing, invalid or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Only the owner edits", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such expense in the organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The expense's status does not allow edits, or a concurrent change won", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match is stale", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn patch_expense(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<PatchExpenseRequest>,
) -> ApiResult<Response> {
    let loaded = app
        .store
        .load_for_command::<Expense>(&id.to_string())
        .await?;
    let state = loaded
        .aggregate()
        .visible_to(&user.actor)
        .ok_or_else(|| ApiError::not_found("no such expense"))?;
    let mut errors = Vec::new();
    let currency = match body.currency.as_deref() {
        None => Some(state.money.currency()),
        Some(code) => parse_currency(code).map_err(|e| errors.push(e)).ok(),
    };
    let money = match (body.amount.as_deref(), currency) {
        (_, None) => None,
        (None, Some(c)) if c == state.money.currency() => None,
        (amount, Some(c)) => {
            let amount = amount
                .map(str::to_string)
                .unwrap_or_else(|| state.money.amount().to_string());
            parse_money(&amount, c).map_err(|e| errors.push(e)).ok()
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    if let Some(receipt_id) = body.receipt_id {
        let receipt = attachable_receipt(&app, &user, receipt_id).await?;
        if receipt.expense_id.is_some_and(|e| e != id) {
            return Err(ApiError::conflict(
                "the receipt is already attached to another expense",
            ));
        }
    }
    let changes = ExpenseChanges {
        money,
        merchant: body.merchant,
        category: body.category,
        spent_on: body.spent_on,
        description: body.description,
    };
    let ctx = context(&user, if_match);
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let mut committed = app
        .store
        .execute_loaded(
            loaded,
            ExpenseCommand::UpdateExpense {
                ctx: ctx.clone(),
                changes,
                today: latest_today(),
            },
            &metadata,
        )
        .await?;
    if let Some(receipt_id) = body.receipt_id {
        let attach = ExpenseCommand::AttachReceipt {
            ctx: Context {
                expected_version: None,
                ..ctx
            },
            receipt_id,
        };
        committed = execute(&app, &user, &meta, id, attach).await?;
        mark_receipt_attached(&app, &user, &meta, receipt_id, id).await?;
    }
    expense_response(StatusCode::OK, id, &committed)
}

/// Delete a draft (owner only)
#[utoipa::path(
    delete, path = "/v1/expenses/{id}", tag = "expenses",
    params(("id" = Uuid, Path, description = "The expense's id"),
           ("If-Match" = Option<String>, Header, description = "The ETag you last saw; a stale one gives 412")),
    responses(
        (status = 204, description = "Deleted", headers(("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
        (status = 401, description = "Missing, invalid or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Only the owner deletes", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such expense in the organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Only drafts can be deleted", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match is stale", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_expense(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let command = ExpenseCommand::DeleteExpense {
        ctx: context(&user, if_match),
    };
    let committed = execute(&app, &user, &meta, id, command).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [super::consistency_header(committed.head)],
    )
        .into_response())
}

macro_rules! transition {
    ($name:ident, $path:literal, $summary:literal, $body:ty, $who:literal, |$ctx:ident, $input:ident| $command:expr) => {
        #[doc = $summary]
        #[utoipa::path(
            post, path = $path, tag = "expenses",
            params(("id" = Uuid, Path, description = "The expense's id"),
                   ("If-Match" = Option<String>, Header, description = "The ETag you last saw; a stale one gives 412"),
                   ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
            request_body(content = Option<$body>, description = "Optional unless the schema says otherwise"),
            responses(
                (status = 200, description = "The expense after the change", body = ExpenseView,
                 headers(("ETag" = String, description = "The version"), ("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
                (status = 401, description = "Missing, invalid or expired token", body = Problem, content_type = "application/problem+json"),
                (status = 403, description = $who, body = Problem, content_type = "application/problem+json"),
                (status = 404, description = "No such expense in the organization", body = Problem, content_type = "application/problem+json"),
                (status = 409, description = "The expense's status does not allow this (the status is in `detail`), or a concurrent change won", body = Problem, content_type = "application/problem+json"),
                (status = 412, description = "If-Match is stale", body = Problem, content_type = "application/problem+json"),
                (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
            ),
            security(("bearer" = []))
        )]
        pub async fn $name(
            State(app): State<AppState>,
            user: AuthUser,
            meta: RequestMeta,
            if_match: IfMatch,
            Path(id): Path<Uuid>,
            OptionalJsonBody($input): OptionalJsonBody<$body>,
        ) -> ApiResult<Response> {
            let $ctx = context(&user, if_match);
            let committed = execute(&app, &user, &meta, id, $command).await?;
            expense_response(StatusCode::OK, id, &committed)
        }
    };
}

transition!(
    submit_expense,
    "/v1/expenses/{id}/submit",
    "Submit a draft or rejected expense (owner only)",
    EmptyRequest,
    "Only the owner submits",
    |ctx, _input| ExpenseCommand::SubmitExpense { ctx }
);

transition!(
    approve_expense,
    "/v1/expenses/{id}/approve",
    "Approve a submitted expense (approver or admin, not the owner)",
    ApproveRequest,
    "Only approvers and admins decide, and never on their own expense",
    |ctx, input| ExpenseCommand::ApproveExpense {
        ctx,
        comment: input.comment
    }
);

transition!(
    reimburse_expense,
    "/v1/expenses/{id}/reimburse",
    "Mark an approved expense as reimbursed (admin only)",
    EmptyRequest,
    "Only admins reimburse",
    |ctx, _input| ExpenseCommand::ReimburseExpense { ctx }
);

/// Reject a submitted expense with a reason (approver or admin, not the owner)
#[utoipa::path(
    post, path = "/v1/expenses/{id}/reject", tag = "expenses",
    params(("id" = Uuid, Path, description = "The expense's id"),
           ("If-Match" = Option<String>, Header, description = "The ETag you last saw; a stale one gives 412"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body = RejectRequest,
    responses(
        (status = 200, description = "The rejected expense", body = ExpenseView,
         headers(("ETag" = String, description = "The version"), ("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
        (status = 401, description = "Missing, invalid or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Only approvers and admins decide, and never on their own expense", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such expense in the organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The expense's status does not allow this (the status is in `detail`), or a concurrent change won", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match is stale", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input (the reason is required)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn reject_expense(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<RejectRequest>,
) -> ApiResult<Response> {
    let command = ExpenseCommand::RejectExpense {
        ctx: context(&user, if_match),
        reason: body.reason,
    };
    let committed = execute(&app, &user, &meta, id, command).await?;
    expense_response(StatusCode::OK, id, &committed)
}

/// Everything that happened to an expense, oldest first
///
/// Read from the event store: always current.
#[utoipa::path(
    get, path = "/v1/expenses/{id}/history", tag = "expenses",
    params(("id" = Uuid, Path, description = "The expense's id")),
    responses(
        (status = 200, description = "The expense's events, from the event store", body = Vec<EventView>),
        (status = 401, description = "Missing, invalid or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Employees see only their own expenses", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such expense in the organization", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn expense_history(
    State(app): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<EventView>>> {
    let expense: Expense = app.store.load(&id.to_string()).await?;
    // Deleted expenses keep their history: auditors need to see what was removed.
    let state = expense
        .state
        .as_ref()
        .filter(|s| s.organization_id == user.actor.organization_id)
        .ok_or_else(|| ApiError::not_found("no such expense"))?;
    if state.owner_id != user.actor.user_id && !user.actor.role.sees_all_expenses() {
        return Err(ApiError::forbidden("employees see only their own expenses"));
    }
    let events = aggregate_events(&app.db, AGGREGATE_TYPE, &id.to_string())
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    Ok(Json(events.into_iter().map(EventView::new).collect()))
}
