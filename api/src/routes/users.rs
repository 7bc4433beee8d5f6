//! The organization's users, managed by its admins.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use expensewise_application::accounts::{self, Person, UserChange};
use expensewise_domain::organization::Member;
use expensewise_domain::Role;
use expensewise_projections::users as users_model;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::consistency::ConsistencyToken;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, JsonBody, Optimistic, RequestMeta};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleView {
    Employee,
    Approver,
    Auditor,
    Admin,
    /// Takes the finance steps of approval chains.
    Finance,
}

impl From<Role> for RoleView {
    fn from(role: Role) -> Self {
        match role {
            Role::Employee => Self::Employee,
            Role::Approver => Self::Approver,
            Role::Auditor => Self::Auditor,
            Role::Admin => Self::Admin,
            Role::Finance => Self::Finance,
        }
    }
}

impl From<RoleView> for Role {
    fn from(role: RoleView) -> Self {
        match role {
            RoleView::Employee => Self::Employee,
            RoleView::Approver => Self::Approver,
            RoleView::Auditor => Self::Auditor,
            RoleView::Admin => Self::Admin,
            RoleView::Finance => Self::Finance,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    pub role: RoleView,
    pub active: bool,
    /// Whose manager steps of approval chains take this user's expenses.
    pub manager_id: Option<Uuid>,
}

impl UserView {
    fn new(user_id: Uuid, m: &Member) -> Self {
        Self {
            user_id,
            name: m.name.clone(),
            email: m.email.clone(),
            role: m.role.into(),
            active: m.active,
            manager_id: m.manager_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    pub user_id: Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(schema_with = crate::schemas::required_text::<200>)]
    pub name: String,
    #[schema(schema_with = crate::schemas::email)]
    pub email: String,
    /// At least 8 characters.
    #[schema(schema_with = crate::schemas::password)]
    pub password: String,
    pub role: RoleView,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUserRequest {
    #[serde(default)]
    pub role: Option<RoleView>,
    /// `false` deactivates the user (their tokens stop working at once); `true` brings
    /// them back.
    #[serde(default)]
    pub active: Option<bool>,
    /// The user's manager (another active member, not an auditor), whose step approval
    /// chains begin with; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub manager_id: Option<Option<Uuid>>,
}

/// Tells "absent" (outer `None`, from `default`) from "null" (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListUsersParams {
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(format = Uuid)]
    pub cursor: Option<String>,
    /// A command's `X-Consistency-Token` (the header works too).
    pub consistency_token: Option<String>,
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;

pub fn page_limit(limit: Option<u32>) -> ApiResult<usize> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n as usize),
        _ => Err(ApiError::invalid_field(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}

/// Add a user to the organization
#[utoipa::path(
    post, path = "/v1/users", tag = "users",
    request_body = CreateUserRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 201, description = "The user was added", body = CreatedUser),
        (status = 403, description = "Only admins manage users"),
        (status = 409, description = "The e-mail address is already registered"),
        (status = 422, description = "Invalid input"),
    ),
    security(("bearer" = []))
)]
pub async fn create_user(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    JsonBody(body): JsonBody<CreateUserRequest>,
) -> ApiResult<impl IntoResponse> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let person = Person {
        name: body.name,
        email: body.email,
        password: body.password,
    };
    let (user_id, committed) = accounts::add_user(
        &app.store,
        &scope,
        user.actor,
        &metadata,
        person,
        body.role.into(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        [super::consistency_header(committed.head)],
        Json(CreatedUser { user_id }),
    ))
}

/// List the organization's users
///
/// Reflects your own changes immediately, with no header needed, whichever replica took
/// them. Other users' changes appear within milliseconds (p99 under 10 ms in
/// docs/benchmarks.md); to wait for one, pass the `X-Consistency-Token` their command
/// returned.
#[utoipa::path(
    get, path = "/v1/users", tag = "users",
    params(ListUsersParams, ("X-Consistency-Token" = Option<String>, Header, description = "Wait also until this write (another user's) is visible; your own are waited for without it")),
    responses(
        (status = 200, description = "A page of users, ordered by id", body = UserPage),
        (status = 400, description = "A malformed consistency token"),
        (status = 403, description = "Only admins manage users"),
        (status = 422, description = "Invalid query"),
        (status = 503, description = "The read model has not caught up with your latest write (or the consistency token's) within 5 s"),
    ),
    security(("bearer" = []))
)]
pub async fn list_users(
    State(app): State<AppState>,
    user: AuthUser,
    consistency: ConsistencyToken,
    Query(params): Query<ListUsersParams>,
) -> ApiResult<Json<UserPage>> {
    accounts::may_manage_users(&user.actor)?;
    let limit = page_limit(params.limit)?;
    let after = match params.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            Uuid::parse_str(c)
                .map_err(|_| ApiError::invalid_field("cursor", "is not a cursor from this list"))?,
        ),
    };
    let organization = user.actor.organization_id;
    let rows = consistency
        .read(&app, &user, users_model::NAME, |db| async move {
            users_model::list(&db, organization, after, limit).await
        })
        .await?;
    let mut items: Vec<UserView> = rows
        .into_iter()
        .map(|r| UserView {
            user_id: r.user_id,
            name: r.name,
            email: r.email,
            role: r.role.into(),
            active: r.active,
            manager_id: r.manager_id,
        })
        .collect();
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|u| u.user_id.to_string())
    } else {
        None
    };
    Ok(Json(UserPage { items, next_cursor }))
}

/// Change a user's role or manager, or deactivate them
#[utoipa::path(
    patch, path = "/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "The user's id")),
    request_body = PatchUserRequest,
    responses(
        (status = 200, description = "The user as they are now", body = UserView),
        (status = 403, description = "Only admins manage users, and another admin changes an admin's own role or deactivates them"),
        (status = 404, description = "No such user in the organization"),
        (status = 409, description = "The organization would be left without an active admin"),
        (status = 422, description = "Invalid input"),
    ),
    security(("bearer" = []))
)]
pub async fn patch_user(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<PatchUserRequest>,
) -> ApiResult<impl IntoResponse> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let change = UserChange {
        role: body.role.map(Into::into),
        active: body.active,
        manager_id: body.manager_id,
    };
    let (member, last) = accounts::change_user(
        &app.store,
        &scope,
        user.actor,
        user.organization,
        &metadata,
        id,
        change,
    )
    .await?;
    Ok((
        [super::consistency_header(last.and_then(|c| c.head))],
        Json(UserView::new(id, &member)),
    ))
}

/// Whether a password is set, and when; never the password or its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordView {
    pub set: bool,
    pub set_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Everything the product holds about one person.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonalDataView {
    pub user: UserView,
    pub password: PasswordView,
    /// Their personal access tokens (never the tokens themselves).
    pub tokens: Vec<super::tokens::TokenView>,
    /// The expenses they own.
    pub expenses: Vec<super::expenses::ExpenseView>,
    /// The receipts they uploaded, with what OCR read from them.
    pub receipts: Vec<super::receipts::ReceiptView>,
    /// Every event about them, in the global order: caused by them, naming them, or of
    /// their expenses, receipts and e-mail address.
    pub events: Vec<super::events::EventView>,
}

/// Everything the product holds about a person (subject access)
///
/// For the person themselves or an admin: their account, whether a password is set,
/// their tokens, expenses and receipts, and every event about them it came from.
#[utoipa::path(
    get, path = "/v1/users/{id}/personal-data", tag = "users",
    params(("id" = Uuid, Path, description = "The user's id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Wait also until this write (another user's) is visible; your own are waited for without it")),
    responses(
        (status = 200, description = "What the product holds about the person", body = PersonalDataView),
        (status = 403, description = "Neither the person nor an admin"),
        (status = 404, description = "No such user in the organization"),
    ),
    security(("bearer" = []))
)]
pub async fn personal_data(
    State(app): State<AppState>,
    user: AuthUser,
    consistency: ConsistencyToken,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<PersonalDataView>> {
    // Expenses and receipts come from their read models; events from the store.
    for model in [
        expensewise_projections::expenses::NAME,
        expensewise_projections::receipts::NAME,
    ] {
        consistency.wait(&app, &user, model).await?;
    }
    let data =
        accounts::subject_access::personal_data(&app.store, &user.actor, &user.organization, id)
            .await?;
    let last_used =
        expensewise_infra::credentials::tokens_last_used(&app.db, user.actor.organization_id)
            .await
            .map_err(|e| ApiError::internal(e.into()))?;
    let expenses = data
        .expenses
        .into_iter()
        .map(super::expenses::ExpenseView::from_row)
        .collect::<ApiResult<Vec<_>>>()?;
    let events = super::events::EventView::from_opened(&app.db, app.store.vault(), data.events)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(PersonalDataView {
        user: UserView::new(data.user_id, &data.member),
        password: PasswordView {
            set: data.password_set_at.is_some(),
            set_at: data.password_set_at,
        },
        tokens: data
            .tokens
            .iter()
            .map(|(id, t)| super::tokens::view(*id, t, last_used.get(id).copied()))
            .collect(),
        expenses,
        receipts: data
            .receipts
            .iter()
            .map(|(id, state)| super::receipts::ReceiptView::new(*id, state))
            .collect(),
        events,
    }))
}

/// Something of an erased user that the law requires keeping.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetainedView {
    /// `expense` or `receipt`.
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    /// Why it is kept.
    pub basis: String,
    /// When its retention ends and the sweeper erases it.
    pub until: chrono::DateTime<chrono::Utc>,
    /// When the sweeper erased it (none yet: it is kept).
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// How a user was erased, and what of theirs is kept until when.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureView {
    pub user_id: Uuid,
    pub erased: bool,
    pub erased_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The admin who erased them (none: an operator's command line).
    pub erased_by: Option<Uuid>,
    /// Booking vouchers kept (expenses that were submitted, their receipts and the
    /// decisions on them), each until the end of its retention.
    pub retained: Vec<RetainedView>,
}

impl ErasureView {
    fn new(user_id: Uuid, erasure: Option<&expensewise_domain::organization::Erasure>) -> Self {
        Self {
            user_id,
            erased: erasure.is_some(),
            erased_at: erasure.map(|e| e.erased_at),
            erased_by: erasure.and_then(|e| e.erased_by),
            retained: erasure
                .map(|e| {
                    e.retained
                        .iter()
                        .map(|r| RetainedView {
                            aggregate_type: r.retention.aggregate_type.clone(),
                            aggregate_id: r.retention.aggregate_id,
                            basis: r.retention.basis.clone(),
                            until: r.retention.until,
                            ended_at: r.ended_at,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Erase a user (GDPR art. 17), keeping what the law requires (admins)
///
/// Closes the account for good, frees the e-mail address, and destroys the person's
/// key: their name, address and every other personal field read `[erased]` everywhere
/// from now on. Booking vouchers — expenses that were submitted, their receipts and the
/// decisions on them — stay readable until the end of their retention
/// (`RECEIPT_RETENTION_YEARS` after the year they were last changed), when the sweeper
/// erases them too. Asking again finishes an erasure cut short, and changes nothing
/// after one that was not.
#[utoipa::path(
    post, path = "/v1/users/{id}/erasure", tag = "users",
    params(("id" = Uuid, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user is erased; what is kept, until when", body = ErasureView,
         headers(("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
        (status = 403, description = "Only admins erase users, and another admin erases an admin"),
        (status = 404, description = "No such user in the organization"),
        (status = 409, description = "The organization's last admin"),
        (status = 503, description = "The read models have not caught up with the events within 5 s"),
    ),
    security(("bearer" = []))
)]
pub async fn erase_user(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
) -> ApiResult<impl IntoResponse> {
    // The plan is made from the expenses and receipts read models: they must have seen
    // every expense and receipt of the person first.
    for model in [
        expensewise_projections::expenses::NAME,
        expensewise_projections::receipts::NAME,
    ] {
        super::consistency::wait_for_head(&app, model).await?;
    }
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let (erasure, committed) = accounts::erasure::erase_user(
        &app.store,
        &app.objects,
        accounts::erasure::Eraser::Admin(&user.actor),
        &metadata,
        id,
        app.config.receipt_retention.years,
    )
    .await?;
    Ok((
        [super::consistency_header(committed.head)],
        Json(ErasureView::new(id, Some(&erasure))),
    ))
}

/// Whether a user was erased, and what of theirs is kept until when (admins, auditors)
#[utoipa::path(
    get, path = "/v1/users/{id}/erasure", tag = "users",
    params(("id" = Uuid, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The erasure as recorded (`erased: false` when there is none)", body = ErasureView),
        (status = 403, description = "Only admins and auditors"),
        (status = 404, description = "No such user in the organization"),
    ),
    security(("bearer" = []))
)]
pub async fn erasure(user: AuthUser, Path(id): Path<Uuid>) -> ApiResult<Json<ErasureView>> {
    let erasure = accounts::erasure::erasure_of(&user.actor, &user.organization, id)?;
    Ok(Json(ErasureView::new(id, erasure.as_ref())))
}
