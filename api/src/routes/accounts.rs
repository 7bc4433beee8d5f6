//! Registration, sign-in and "who am I".

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use expensewise_application::accounts::{self, Person, Registered, Registration};
use expensewise_domain::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::users::RoleView;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, JsonBody, Optimistic, RequestMeta};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The new organization's name.
    #[schema(schema_with = crate::schemas::required_text::<200>)]
    pub organization: String,
    /// The first user's name; they become the organization's admin.
    #[schema(schema_with = crate::schemas::required_text::<200>)]
    pub name: String,
    #[schema(schema_with = crate::schemas::email)]
    pub email: String,
    /// At least 8 characters.
    #[schema(schema_with = crate::schemas::password)]
    pub password: String,
    /// ISO 4217 code used when a receipt shows no currency (default EUR).
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_currency)]
    pub default_currency: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub role: RoleView,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// At least 8 characters.
    #[schema(schema_with = crate::schemas::password)]
    pub new_password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub email: String,
    pub role: RoleView,
}

/// Register an organization and its first admin
#[utoipa::path(
    post, path = "/v1/auth/register", tag = "accounts",
    request_body = RegisterRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 201, description = "The organization exists and its admin is signed in", body = RegisterResponse),
        (status = 409, description = "The e-mail address is already registered"),
        (status = 422, description = "Invalid input"),
    )
)]
pub async fn register(
    State(app): State<AppState>,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    JsonBody(body): JsonBody<RegisterRequest>,
) -> ApiResult<impl IntoResponse> {
    let registration = Registration {
        organization: body.organization,
        admin: Person {
            name: body.name,
            email: body.email,
            password: body.password,
        },
        default_currency: body.default_currency,
    };
    // The use case puts the new organization and admin into the events' metadata.
    let metadata = meta.metadata(Uuid::nil(), None);
    let Registered {
        organization_id,
        admin_id: user_id,
        committed,
    } = accounts::register(&app.store, &scope, &metadata, registration).await?;
    let (token, expires_at) = app
        .tokens
        .issue(user_id, organization_id, Role::Admin.as_str())?;
    Ok((
        StatusCode::CREATED,
        [super::consistency_header(committed.head)],
        Json(RegisterResponse {
            organization_id,
            user_id,
            token,
            expires_at,
        }),
    ))
}

/// Sign in
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = LoginResponse),
        (status = 401, description = "Wrong e-mail or password (the same answer for both)"),
        (status = 422, description = "Invalid input"),
    )
)]
pub async fn login(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let signed_in = accounts::sign_in(&app.store, &body.email, body.password)
        .await?
        .ok_or_else(|| ApiError::unauthorized("wrong e-mail address or password"))?;
    Ok(Json(session(&app, signed_in)?))
}

/// A sign-in token for who signed in, by password or through their issuer.
pub fn session(app: &AppState, signed_in: accounts::SignedIn) -> ApiResult<LoginResponse> {
    let (token, expires_at) = app.tokens.issue(
        signed_in.user_id,
        signed_in.organization_id,
        signed_in.role.as_str(),
    )?;
    Ok(LoginResponse {
        token,
        expires_at,
        user_id: signed_in.user_id,
        organization_id: signed_in.organization_id,
        role: signed_in.role.into(),
    })
}

/// The signed-in user
///
/// Read from the event store: always current.
#[utoipa::path(
    get, path = "/v1/me", tag = "accounts",
    responses(
        (status = 200, description = "The caller", body = MeResponse),
    ),
    security(("bearer" = []))
)]
pub async fn me(user: AuthUser) -> Json<MeResponse> {
    Json(MeResponse {
        user_id: user.actor.user_id,
        organization_id: user.actor.organization_id,
        name: user.member.name,
        email: user.member.email,
        role: user.actor.role.into(),
    })
}

/// Change the caller's password
///
/// The new hash is kept in the credentials store; the event history records only that
/// the password changed. Tokens issued before stay valid until they expire. Limited like
/// sign-in attempts.
#[utoipa::path(
    put, path = "/v1/me/password", tag = "accounts",
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "The password is changed"),
        (status = 422, description = "The current password is wrong, or the new one breaks the policy"),
        (status = 429, description = "Too many attempts"),
    ),
    security(("bearer" = []))
)]
pub async fn change_password(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    JsonBody(body): JsonBody<ChangePasswordRequest>,
) -> ApiResult<impl IntoResponse> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let committed = accounts::change_password(
        &app.store,
        &scope,
        &user.actor,
        &metadata,
        body.current_password,
        body.new_password,
    )
    .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [super::consistency_header(committed.head)],
    ))
}

/// Who decides for the caller over a period.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegationView {
    /// Another active member (not an auditor) who takes the caller's approval steps.
    pub delegate_id: Uuid,
    /// The first day (UTC) the delegate decides for the caller.
    pub from: chrono::NaiveDate,
    /// The last day, included; not in the past.
    pub until: chrono::NaiveDate,
}

fn delegation_of(member: &expensewise_domain::organization::Member) -> Option<DelegationView> {
    member.delegation.as_ref().map(|d| DelegationView {
        delegate_id: d.delegate_id,
        from: d.from,
        until: d.until,
    })
}

/// The caller's delegation, if any
#[utoipa::path(
    get, path = "/v1/me/delegation", tag = "accounts",
    responses(
        (status = 200, description = "Who decides for the caller, and when (null: nobody)", body = Option<DelegationView>),
    ),
    security(("bearer" = []))
)]
pub async fn get_delegation(user: AuthUser) -> Json<Option<DelegationView>> {
    Json(delegation_of(&user.member))
}

/// Name a delegate for a period
///
/// While away, an approver (or finance, an admin, a manager) names who takes their
/// approval steps: every decision the delegate takes for them records both people. It
/// replaces an earlier delegation. Segregation of duties holds for both: neither decides
/// on their own expense nor takes two steps of one chain.
#[utoipa::path(
    post, path = "/v1/me/delegation", tag = "accounts",
    request_body = DelegationView,
    responses(
        (status = 200, description = "The delegation", body = DelegationView,
         headers(("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
        (status = 422, description = "The delegate is not another active member, the period is backwards or over, or the caller approves nothing"),
    ),
    security(("bearer" = []))
)]
pub async fn delegate(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    JsonBody(body): JsonBody<DelegationView>,
) -> ApiResult<impl IntoResponse> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let delegation = expensewise_domain::organization::Delegation {
        delegate_id: body.delegate_id,
        from: body.from,
        until: body.until,
    };
    let committed =
        accounts::delegate(&app.store, &scope, user.actor, &metadata, Some(delegation)).await?;
    let view = committed
        .aggregate
        .member(user.actor.user_id)
        .and_then(delegation_of)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the delegation was not kept")))?;
    Ok(([super::consistency_header(committed.head)], Json(view)))
}

/// End the caller's delegation
#[utoipa::path(
    delete, path = "/v1/me/delegation", tag = "accounts",
    responses(
        (status = 204, description = "Nobody decides for the caller any more",
         headers(("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
    ),
    security(("bearer" = []))
)]
pub async fn end_delegation(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
) -> ApiResult<impl IntoResponse> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let committed = accounts::delegate(&app.store, &scope, user.actor, &metadata, None).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [super::consistency_header(committed.head)],
    ))
}
