//! Personal access tokens: a user issues tokens for their programs, lists and revokes
//! them. Managing tokens needs a signed-in user; a token cannot make or revoke tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use expensewise_application::accounts::tokens::{self, IssuedToken, TokenRequest};
use expensewise_domain::organization::ApiToken;
use expensewise_domain::Role;
use expensewise_infra::credentials;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, JsonBody, Optimistic, RequestMeta};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// What the token is for, as its owner will recognise it (1–100 characters).
    #[schema(schema_with = crate::schemas::required_text::<100>)]
    pub name: String,
    /// Any of `expenses:read`, `expenses:write`, `receipts:write`, `approvals:write`,
    /// `audit:read`, `admin` (admins only; grants every other scope). A token never
    /// allows more than its owner's role.
    #[schema(schema_with = crate::schemas::scopes)]
    pub scopes: Vec<String>,
    /// When the token stops working; it never expires without one.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    pub id: Uuid,
    /// The token itself, shown this once: send it as `Authorization: Bearer <token>`.
    pub token: String,
    #[serde(flatten)]
    pub view: TokenView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Recorded at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenView>,
}

pub(crate) fn view(id: Uuid, token: &ApiToken, last_used_at: Option<DateTime<Utc>>) -> TokenView {
    TokenView {
        id,
        user_id: token.user_id,
        name: token.name.clone(),
        scopes: token
            .scopes
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
        created_at: token.issued_at,
        expires_at: token.expires_at,
        last_used_at,
        revoked: token.revoked,
    }
}

/// Issue a personal access token
#[utoipa::path(
    post, path = "/v1/tokens", tag = "accounts",
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "The token, shown this once", body = CreatedToken),
        (status = 403, description = "Tokens cannot issue tokens: sign in"),
        (status = 422, description = "Invalid name, unknown scope, or an expiry in the past"),
    ),
    security(("bearer" = []))
)]
pub async fn create_token(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    JsonBody(body): JsonBody<CreateTokenRequest>,
) -> ApiResult<impl IntoResponse> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let request = TokenRequest {
        name: body.name,
        scopes: body.scopes,
        expires_at: body.expires_at,
    };
    let IssuedToken {
        token_id,
        token,
        committed,
    } = tokens::issue_token(&app.store, &scope, &user.actor, &metadata, request).await?;
    let issued = committed
        .aggregate
        .token(token_id)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the issued token is missing")))?;
    Ok((
        StatusCode::CREATED,
        [super::consistency_header(committed.head)],
        Json(CreatedToken {
            id: token_id,
            token,
            view: view(token_id, issued, None),
        }),
    ))
}

/// The caller's personal access tokens (an admin's: the organization's)
#[utoipa::path(
    get, path = "/v1/tokens", tag = "accounts",
    responses(
        (status = 200, description = "Tokens, revoked ones included; never their secrets", body = TokenList),
        (status = 403, description = "Tokens cannot list tokens: sign in"),
    ),
    security(("bearer" = []))
)]
pub async fn list_tokens(
    State(app): State<AppState>,
    user: AuthUser,
) -> ApiResult<Json<TokenList>> {
    let last_used = credentials::tokens_last_used(&app.db, user.actor.organization_id)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    let everyone = user.actor.role == Role::Admin;
    let items = user
        .organization
        .tokens()
        .filter(|(_, t)| everyone || t.user_id == user.actor.user_id)
        .map(|(id, t)| view(*id, t, last_used.get(id).copied()))
        .collect();
    Ok(Json(TokenList { items }))
}

/// Revoke a personal access token
///
/// Its owner or an admin; the token stops working with the next request, on every
/// replica. Revoking a revoked token changes nothing.
#[utoipa::path(
    delete, path = "/v1/tokens/{id}", tag = "accounts",
    params(("id" = Uuid, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Tokens cannot revoke tokens: sign in"),
        (status = 404, description = "No such token of yours"),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_token(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    Path(id): Path<Uuid>,
) -> ApiResult<impl IntoResponse> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let committed = tokens::revoke_token(&app.store, &scope, &user.actor, &metadata, id).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [super::consistency_header(committed.head)],
    ))
}
