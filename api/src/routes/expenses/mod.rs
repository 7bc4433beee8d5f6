//! Expenses: recording, editing, the approval flow, and each expense's history.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use expensewise_application::expenses::{
    self, parse_currency, parse_money, Claim, Edit, NewExpense, Step,
};
use expensewise_application::history;
use expensewise_domain::expense::AGGREGATE_TYPE;
use expensewise_domain::{Expense, FieldError};
use expensewise_infra::event_store::{Committed, Scope};
use expensewise_projections::expenses::{
    self as read_model, ChangedCursor, ExpenseRow, ListCursor, ListFilter,
};
use uuid::Uuid;

mod wire;

pub use wire::*;

use super::consistency::ConsistencyToken;
use super::events::EventView;
use super::users::page_limit;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, IfMatch, JsonBody, Optimistic, OptionalJsonBody, RequestMeta};
use crate::state::AppState;

/// Namespace of key-derived expense ids (see [`super::id_for_request`]).
const EXPENSE_IDS: Uuid = Uuid::from_u128(0x3d5c_a0f1_8b2e_4f7a_9c61_2e8d_5b4a_7f10);

/// Takes one lifecycle step as the signed-in user, on the `If-Match` version.
async fn step(
    app: &AppState,
    scope: &Scope,
    user: &AuthUser,
    meta: &RequestMeta,
    if_match: IfMatch,
    id: Uuid,
    step: Step,
) -> ApiResult<Committed<Expense>> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    Ok(expenses::take_step(
        &app.store, scope, user.actor, &metadata, id, step, if_match.0,
    )
    .await?)
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

/// What a create request claims: a distance driven, or an amount spent (and how to
/// convert it) — never both.
fn claim(body: &CreateExpenseRequest) -> ApiResult<Claim> {
    if let Some(mileage) = &body.mileage {
        if body.amount.is_some() || body.currency.is_some() || body.exchange_rate.is_some() {
            return Err(ApiError::invalid_field(
                "amount",
                "a mileage claim's amount follows its distance: send mileage or amount, currency \
                 and exchange_rate, not both",
            ));
        }
        return Ok(Claim::Driven(mileage.distance()?));
    }
    let required = |field: &str| FieldError::new(field, "is required (or mileage)");
    let currency = body
        .currency
        .as_deref()
        .map_or_else(|| Err(required("currency")), parse_currency);
    match (body.amount.as_deref(), currency) {
        (Some(amount), Ok(currency)) => Ok(Claim::Spent {
            money: parse_money(amount, currency).map_err(|e| ApiError::invalid(vec![e]))?,
            exchange_rate: parse_rate(body.exchange_rate.as_deref())?,
        }),
        (Some(_), Err(e)) => Err(ApiError::invalid(vec![e])),
        (None, currency) => Err(ApiError::invalid(
            std::iter::once(required("amount"))
                .chain(currency.err())
                .collect(),
        )),
    }
}

/// Record an expense (as a draft)
#[utoipa::path(
    post, path = "/v1/expenses", tag = "expenses",
    request_body = CreateExpenseRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body create one expense")),
    responses(
        (status = 201, description = "The draft expense, with its amount in the organization's currency and what the policy says of it", body = ExpenseView,
         headers(("ETag" = String, description = "The version"), ("X-Consistency-Token" = String, description = "Pass to queries to read this write"), ("Location" = String))),
        (status = 403, description = "Auditors cannot record expenses"),
        (status = 422, description = "Invalid input"),
        (status = 503, description = "The read models the policy's limits or duplicate check count on have not caught up within 5 s; retry"),
    ),
    security(("bearer" = []))
)]
pub async fn create_expense(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateExpenseRequest>,
) -> ApiResult<Response> {
    let claim = claim(&body)?;
    let id = super::id_for_request(EXPENSE_IDS, user.actor.user_id, &headers);
    let new = NewExpense {
        id,
        keyed: headers.contains_key("idempotency-key"),
        claim,
        merchant: body.merchant,
        category: body.category,
        spent_on: body.spent_on,
        description: body.description,
        receipt_id: body.receipt_id,
    };
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let committed = expenses::create(&app.store, &scope, user.actor, &metadata, new).await?;
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
        (status = 400, description = "A malformed cursor or consistency token"),
        (status = 403, description = "Employees see only their own expenses"),
        (status = 422, description = "Invalid query"),
        (status = 503, description = "The read model has not caught up with your latest write (or the consistency token's) within 5 s"),
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
    let not_a_cursor = || ApiError::invalid_field("cursor", "is not a cursor from this list");
    if let Some(since) = params.updated_since {
        let cursor = match params.cursor.as_deref() {
            None => None,
            Some(c) => Some(ChangedCursor::decode(c).ok_or_else(not_a_cursor)?),
        };
        // Everything committed before this request is in the answer, whoever wrote it.
        let head = super::consistency::head(&app).await?;
        let (organization, filter, cursor) = (user.actor.organization_id, &filter, cursor.as_ref());
        let (rows, next) =
            super::consistency::read_after(&app, read_model::NAME, Some(head), |db| async move {
                read_model::changed_since(&db, organization, filter, since, cursor, limit).await
            })
            .await?;
        return Ok(Json(ExpensePage {
            items: rows
                .into_iter()
                .map(ExpenseView::from_row)
                .collect::<ApiResult<_>>()?,
            next_cursor: next.map(|c| c.encode()),
        }));
    }
    let cursor = match params.cursor.as_deref() {
        None => None,
        Some(c) => Some(ListCursor::decode(c).ok_or_else(not_a_cursor)?),
    };
    let (organization, filter, cursor) = (user.actor.organization_id, &filter, cursor.as_ref());
    let (rows, next) = consistency
        .read(&app, &user, read_model::NAME, |db| async move {
            read_model::list(&db, organization, filter, cursor, limit).await
        })
        .await?;
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
           ("consistency_token" = Option<String>, Query, description = "The same, as a query parameter"),
           AsOfParams),
    responses(
        (status = 200, description = "The expense (as it was then, with `as_of`)", body = ExpenseView, headers(("ETag" = String, description = "The version"))),
        (status = 400, description = "A malformed consistency token"),
        (status = 403, description = "Employees see only their own expenses"),
        (status = 404, description = "No such expense in the organization (or not then, or deleted by then)"),
        (status = 422, description = "`as_of` is neither a time nor a global position"),
        (status = 503, description = "The read model has not caught up with your latest write (or the consistency token's) within 5 s"),
    ),
    security(("bearer" = []))
)]
pub async fn get_expense(
    State(app): State<AppState>,
    user: AuthUser,
    consistency: ConsistencyToken,
    Path(id): Path<Uuid>,
    Query(params): Query<AsOfParams>,
) -> ApiResult<Response> {
    if let Some(as_of) = params.parse()? {
        // The past is read from the store, folded as the aggregate folds it.
        let (expense, _) = history::expense_as_of(&app.store, &user.actor, id, Some(as_of)).await?;
        let state = expense
            .state
            .as_ref()
            .filter(|_| !expense.deleted)
            .ok_or_else(|| ApiError::not_found("the expense was deleted by then"))?;
        let view = ExpenseView::new(id, state, expense.version);
        return Ok(([super::etag_header(view.version)], Json(view)).into_response());
    }
    let organization = user.actor.organization_id;
    let version = |row: &ExpenseRow| u64::try_from(row.version).unwrap_or_default();
    let row = consistency
        .read_fresh(
            &app,
            &user,
            read_model::NAME,
            (AGGREGATE_TYPE, &id.to_string()),
            |db| async move { read_model::get(&db, organization, id).await },
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
        (status = 403, description = "Only the owner edits"),
        (status = 404, description = "No such expense in the organization"),
        (status = 409, description = "The expense's status does not allow edits, or a concurrent change won"),
        (status = 412, description = "If-Match is stale"),
        (status = 422, description = "Invalid input"),
        (status = 503, description = "The read models the policy counts on have not caught up within 5 s; retry"),
    ),
    security(("bearer" = []))
)]
pub async fn patch_expense(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<PatchExpenseRequest>,
) -> ApiResult<Response> {
    let edit = Edit {
        amount: body.amount,
        currency: body.currency,
        merchant: body.merchant,
        category: body.category,
        spent_on: body.spent_on,
        description: body.description,
        receipt_id: body.receipt_id,
        exchange_rate: parse_rate(body.exchange_rate.as_deref())?,
        mileage: body
            .mileage
            .as_ref()
            .map(MileageRequest::distance)
            .transpose()?,
    };
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let committed = expenses::edit(
        &app.store, &scope, user.actor, &metadata, id, edit, if_match.0,
    )
    .await?;
    expense_response(StatusCode::OK, id, &committed)
}

/// Delete a draft (owner only)
#[utoipa::path(
    delete, path = "/v1/expenses/{id}", tag = "expenses",
    params(("id" = Uuid, Path, description = "The expense's id"),
           ("If-Match" = Option<String>, Header, description = "The ETag you last saw; a stale one gives 412")),
    responses(
        (status = 204, description = "Deleted", headers(("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
        (status = 403, description = "Only the owner deletes"),
        (status = 404, description = "No such expense in the organization"),
        (status = 409, description = "Only drafts can be deleted"),
        (status = 412, description = "If-Match is stale"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_expense(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let committed = step(&app, &scope, &user, &meta, if_match, id, Step::Delete).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [super::consistency_header(committed.head)],
    )
        .into_response())
}

macro_rules! transition {
    ($name:ident, $path:literal, $summary:literal, $body:ty, $who:literal, |$input:ident| $step:expr) => {
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
                (status = 403, description = $who),
                (status = 404, description = "No such expense in the organization"),
                (status = 409, description = "The expense's status does not allow this (the status is in `detail`), or a concurrent change won"),
                (status = 412, description = "If-Match is stale"),
                (status = 422, description = "Invalid input"),
            ),
            security(("bearer" = []))
        )]
        pub async fn $name(
            State(app): State<AppState>,
            user: AuthUser,
            meta: RequestMeta,
            Optimistic(scope): Optimistic,
            if_match: IfMatch,
            Path(id): Path<Uuid>,
            OptionalJsonBody($input): OptionalJsonBody<$body>,
        ) -> ApiResult<Response> {
            let committed = step(&app, &scope, &user, &meta, if_match, id, $step).await?;
            expense_response(StatusCode::OK, id, &committed)
        }
    };
}

/// Submit a draft or rejected expense (owner only)
///
/// The expense is evaluated against the organization's policy as it is now: a rule at
/// level `block` refuses the submission (409, every violation listed in `violations`);
/// rules at level `warn` need a `justification` (422 naming it, with `violations`). The
/// submission records the policy version and the violations, shown to the approvers.
#[utoipa::path(
    post, path = "/v1/expenses/{id}/submit", tag = "expenses",
    params(("id" = Uuid, Path, description = "The expense's id"),
           ("If-Match" = Option<String>, Header, description = "The ETag you last saw; a stale one gives 412"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body(content = Option<SubmitRequest>, description = "Optional; `justification` is required when the policy warns"),
    responses(
        (status = 200, description = "The submitted expense", body = ExpenseView,
         headers(("ETag" = String, description = "The version"), ("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
        (status = 403, description = "Only the owner submits"),
        (status = 404, description = "No such expense in the organization"),
        (status = 409, description = "The policy blocks it (problem type `urn:expensewise:problem:policy-violation`, every violation in `violations`), the status does not allow it, or a concurrent change won"),
        (status = 412, description = "If-Match is stale"),
        (status = 422, description = "Invalid input, or a justification is needed for the policy's warnings (`violations` lists them)"),
        (status = 503, description = "The read models the policy counts on have not caught up within 5 s; retry"),
    ),
    security(("bearer" = []))
)]
pub async fn submit_expense(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
    OptionalJsonBody(body): OptionalJsonBody<SubmitRequest>,
) -> ApiResult<Response> {
    let submit = Step::Submit {
        justification: body.justification,
    };
    let committed = step(&app, &scope, &user, &meta, if_match, id, submit).await?;
    expense_response(StatusCode::OK, id, &committed)
}

transition!(
    approve_expense,
    "/v1/expenses/{id}/approve",
    "Approve a submitted expense (approver or admin, not the owner)",
    ApproveRequest,
    "Only approvers and admins decide, and never on their own expense",
    |input| Step::Approve {
        comment: input.comment
    }
);

transition!(
    reimburse_expense,
    "/v1/expenses/{id}/reimburse",
    "Mark an approved expense as reimbursed (admin only)",
    EmptyRequest,
    "Only admins reimburse",
    |_input| Step::Reimburse
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
        (status = 403, description = "Only approvers and admins decide, and never on their own expense"),
        (status = 404, description = "No such expense in the organization"),
        (status = 409, description = "The expense's status does not allow this (the status is in `detail`), or a concurrent change won"),
        (status = 412, description = "If-Match is stale"),
        (status = 422, description = "Invalid input (the reason is required)"),
    ),
    security(("bearer" = []))
)]
pub async fn reject_expense(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<RejectRequest>,
) -> ApiResult<Response> {
    let reject = Step::Reject {
        reason: body.reason,
    };
    let committed = step(&app, &scope, &user, &meta, if_match, id, reject).await?;
    expense_response(StatusCode::OK, id, &committed)
}

/// Everything that happened to an expense, oldest first
///
/// Read from the event store: always current.
#[utoipa::path(
    get, path = "/v1/expenses/{id}/history", tag = "expenses",
    params(("id" = Uuid, Path, description = "The expense's id"), AsOfParams),
    responses(
        (status = 200, description = "The expense's events, from the event store", body = Vec<EventView>),
        (status = 403, description = "Employees see only their own expenses"),
        (status = 404, description = "No such expense in the organization (or not then)"),
        (status = 422, description = "`as_of` is neither a time nor a global position"),
    ),
    security(("bearer" = []))
)]
pub async fn expense_history(
    State(app): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Query(params): Query<AsOfParams>,
) -> ApiResult<Json<Vec<EventView>>> {
    let as_of = params.parse()?;
    let (_, events) = history::expense_as_of(&app.store, &user.actor, id, as_of).await?;
    let views = EventView::from_opened(&app.db, app.store.vault(), events)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(views))
}
