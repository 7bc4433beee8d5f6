//! Registration, sign-in and "who am I".

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use expensewise_domain::email_claim::{self, ClaimEmail, EmailClaim};
use expensewise_domain::organization::{NewUser, OrganizationCommand};
use expensewise_domain::{validate, Currency, FieldError, Organization, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::users::RoleView;
use crate::auth;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AuthUser, JsonBody, RequestMeta};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The new organization's name.
    pub organization: String,
    /// The first user's name; they become the organization's admin.
    pub name: String,
    pub email: String,
    /// At least 8 characters.
    pub password: String,
    /// ISO 4217 code used when a receipt shows no currency (default EUR).
    #[serde(default)]
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

#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub email: String,
    pub role: RoleView,
}

/// Claims `email` for `user_id` so no other account can take it. A claim whose user
/// never came to be (its registration died half-way) is taken over once it is old.
pub async fn claim_email(
    app: &AppState,
    meta: &RequestMeta,
    email: &str,
    user_id: Uuid,
    organization_id: Uuid,
) -> ApiResult<()> {
    let claim_id = email_claim::claim_id(email).to_string();
    let current: EmailClaim = app.store.load(&claim_id).await?;
    let holder_is_missing = match current.holder() {
        None => false,
        Some(holder) => {
            let org: Organization = app.store.load(&holder.organization_id.to_string()).await?;
            org.member(holder.user_id).is_none()
        }
    };
    let command = ClaimEmail {
        email: email.to_string(),
        user_id,
        organization_id,
        at: Utc::now(),
        holder_is_missing,
    };
    app.store
        .execute::<EmailClaim>(
            &claim_id,
            command,
            &meta.metadata(organization_id, Some(user_id)),
        )
        .await?;
    Ok(())
}

/// A new person of `organization_id`: the password hashed and the e-mail address
/// claimed, ready to be added to the organization.
pub async fn new_user(
    app: &AppState,
    meta: &RequestMeta,
    organization_id: Uuid,
    name: String,
    email: String,
    password: String,
) -> ApiResult<NewUser> {
    let user_id = Uuid::new_v4();
    let password_hash = auth::hash_password(password).await?;
    claim_email(app, meta, &email, user_id, organization_id).await?;
    Ok(NewUser {
        user_id,
        name,
        email,
        password_hash,
    })
}

/// Register an organization and its first admin
#[utoipa::path(
    post, path = "/v1/auth/register", tag = "accounts",
    request_body = RegisterRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 201, description = "The organization exists and its admin is signed in", body = RegisterResponse),
        (status = 409, description = "The e-mail address is already registered", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn register(
    State(app): State<AppState>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<RegisterRequest>,
) -> ApiResult<impl IntoResponse> {
    let mut errors: Vec<FieldError> = Vec::new();
    let email = validate::email("email", &body.email)
        .map_err(|e| errors.push(e))
        .ok();
    if let Err(e) = validate::required_text("organization", &body.organization, 200) {
        errors.push(e);
    }
    if let Err(e) = validate::required_text("name", &body.name, 200) {
        errors.push(e);
    }
    if let Err(e) = auth::check_password_policy(&body.password) {
        errors.push(e);
    }
    let currency = match body.default_currency.as_deref() {
        None => Currency::parse("EUR").ok(),
        Some(code) => Currency::parse(code)
            .map_err(|e| errors.push(FieldError::new("default_currency", e.to_string())))
            .ok(),
    };
    let (Some(email), Some(default_currency), true) = (email, currency, errors.is_empty()) else {
        return Err(ApiError::invalid(errors));
    };

    let organization_id = Uuid::new_v4();
    let admin = new_user(
        &app,
        &meta,
        organization_id,
        body.name,
        email,
        body.password,
    )
    .await?;
    let user_id = admin.user_id;
    let command = OrganizationCommand::RegisterOrganization {
        name: body.organization,
        default_currency,
        admin,
        at: Utc::now(),
    };
    let committed = app
        .store
        .execute::<Organization>(
            &organization_id.to_string(),
            command,
            &meta.metadata(organization_id, Some(user_id)),
        )
        .await?;
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
        (status = 401, description = "Wrong e-mail or password (the same answer for both)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let wrong = || ApiError::unauthorized("wrong e-mail address or password");
    if body.password.chars().count() > auth::MAX_PASSWORD_CHARS {
        return Err(wrong());
    }
    let account = match validate::email("email", &body.email) {
        Err(_) => None,
        Ok(email) => {
            let claim: EmailClaim = app
                .store
                .load(&email_claim::claim_id(&email).to_string())
                .await?;
            match claim.holder() {
                None => None,
                Some(holder) => {
                    let org: Organization =
                        app.store.load(&holder.organization_id.to_string()).await?;
                    org.member(holder.user_id)
                        .filter(|m| m.active)
                        .cloned()
                        .map(|m| (holder, m))
                }
            }
        }
    };
    let hash = account.as_ref().map(|(_, m)| m.password_hash.clone());
    let verified = auth::verify_password(body.password, hash).await?;
    let (holder, member) = match account {
        Some(account) if verified => account,
        _ => return Err(wrong()),
    };
    let (token, expires_at) =
        app.tokens
            .issue(holder.user_id, holder.organization_id, member.role.as_str())?;
    Ok(Json(LoginResponse {
        token,
        expires_at,
        user_id: holder.user_id,
        organization_id: holder.organization_id,
        role: member.role.into(),
    }))
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
