//! The organization's users, managed by its admins.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use expensewise_domain::organization::{Member, OrganizationCommand};
use expensewise_domain::{validate, FieldError, Organization, Role};
use expensewise_projections::users as users_model;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::accounts::new_user;
use super::consistency::ConsistencyToken;
use crate::auth;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AuthUser, JsonBody, RequestMeta};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleView {
    Employee,
    Approver,
    Auditor,
    Admin,
}

impl From<Role> for RoleView {
    fn from(role: Role) -> Self {
        match role {
            Role::Employee => Self::Employee,
            Role::Approver => Self::Approver,
            Role::Auditor => Self::Auditor,
            Role::Admin => Self::Admin,
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
}

impl UserView {
    fn new(user_id: Uuid, m: &Member) -> Self {
        Self {
            user_id,
            name: m.name.clone(),
            email: m.email.clone(),
            role: m.role.into(),
            active: m.active,
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
    pub name: String,
    pub email: String,
    /// At least 8 characters.
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
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListUsersParams {
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
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

fn require_admin(user: &AuthUser) -> ApiResult<()> {
    if user.actor.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("only admins manage users"))
    }
}

/// Add a user to the organization
#[utoipa::path(
    post, path = "/v1/users", tag = "users",
    request_body = CreateUserRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 201, description = "The user was added", body = CreatedUser),
        (status = 403, description = "Only admins manage users", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The e-mail address is already registered", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_user(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    JsonBody(body): JsonBody<CreateUserRequest>,
) -> ApiResult<impl IntoResponse> {
    require_admin(&user)?;
    let mut errors: Vec<FieldError> = Vec::new();
    let email = validate::email("email", &body.email)
        .map_err(|e| errors.push(e))
        .ok();
    if let Err(e) = validate::required_text("name", &body.name, 200) {
        errors.push(e);
    }
    if let Err(e) = auth::check_password_policy(&body.password) {
        errors.push(e);
    }
    let (Some(email), true) = (email, errors.is_empty()) else {
        return Err(ApiError::invalid(errors));
    };
    let org_id = user.actor.organization_id;
    let new = new_user(&app, &meta, org_id, body.name, email, body.password).await?;
    let user_id = new.user_id;
    let command = OrganizationCommand::AddUser {
        actor_id: user.actor.user_id,
        user: new,
        role: body.role.into(),
        at: Utc::now(),
    };
    let committed = app
        .store
        .execute::<Organization>(
            &org_id.to_string(),
            command,
            &meta.metadata(org_id, Some(user.actor.user_id)),
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
        (status = 400, description = "A malformed consistency token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Only admins manage users", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model has not caught up with your latest write (or the consistency token's) within 5 s", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_users(
    State(app): State<AppState>,
    user: AuthUser,
    consistency: ConsistencyToken,
    Query(params): Query<ListUsersParams>,
) -> ApiResult<Json<UserPage>> {
    require_admin(&user)?;
    let limit = page_limit(params.limit)?;
    let after = match params.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            Uuid::parse_str(c)
                .map_err(|_| ApiError::invalid_field("cursor", "is not a cursor from this list"))?,
        ),
    };
    consistency.wait(&app, &user, users_model::NAME).await?;
    let rows = users_model::list(&app.db, user.actor.organization_id, after, limit)
        .await
        .map_err(ApiError::internal)?;
    let mut items: Vec<UserView> = rows
        .into_iter()
        .map(|r| UserView {
            user_id: r.user_id,
            name: r.name,
            email: r.email,
            role: r.role.into(),
            active: r.active,
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

/// Change a user's role or deactivate them
#[utoipa::path(
    patch, path = "/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "The user's id")),
    request_body = PatchUserRequest,
    responses(
        (status = 200, description = "The user as they are now", body = UserView),
        (status = 403, description = "Only admins manage users", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The organization would be left without an active admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn patch_user(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<PatchUserRequest>,
) -> ApiResult<impl IntoResponse> {
    require_admin(&user)?;
    let org_id = user.actor.organization_id;
    if user.organization.member(id).is_none() {
        return Err(ApiError::not_found("no such user in this organization"));
    }
    let metadata = meta.metadata(org_id, Some(user.actor.user_id));
    let actor_id = user.actor.user_id;
    let now = Utc::now();
    let mut commands = Vec::new();
    if let Some(role) = body.role {
        commands.push(OrganizationCommand::ChangeUserRole {
            actor_id,
            user_id: id,
            role: role.into(),
            at: now,
        });
    }
    match body.active {
        Some(false) => commands.push(OrganizationCommand::DeactivateUser {
            actor_id,
            user_id: id,
            at: now,
        }),
        Some(true) => commands.push(OrganizationCommand::ReactivateUser {
            actor_id,
            user_id: id,
            at: now,
        }),
        None => {}
    }
    let mut organization = user.organization;
    let mut head = None;
    for command in commands {
        let committed = app
            .store
            .execute::<Organization>(&org_id.to_string(), command, &metadata)
            .await?;
        organization = committed.aggregate;
        head = committed.head;
    }
    let member = organization
        .member(id)
        .ok_or_else(|| ApiError::not_found("no such user in this organization"))?;
    Ok((
        [super::consistency_header(head)],
        Json(UserView::new(id, member)),
    ))
}
