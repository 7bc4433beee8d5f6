//! Single sign-on with OpenID Connect (docs/single-sign-on.md): the organization's
//! settings (admins), and the two legs of a sign-in — off to the issuer, and back.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use expensewise_application::accounts::sso::{self as use_case, Finished, Settings};
use expensewise_domain::organization::SingleSignOn;
use expensewise_infra::sso::RelyingParty;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::accounts::LoginResponse;
use super::users::RoleView;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, JsonBody, Optimistic, RequestMeta};
use crate::state::AppState;

/// Where the issuer sends people back: registered with it as the client's redirect URI.
pub const CALLBACK_PATH: &str = "/v1/auth/sso/callback";

#[derive(Debug, Serialize, ToSchema)]
pub struct SsoView {
    /// The issuer's identifier (its ID tokens' `iss`).
    pub issuer: String,
    pub client_id: String,
    /// Whether a client secret is kept (it is never shown).
    pub has_client_secret: bool,
    pub allowed_domains: Vec<String>,
    pub default_role: RoleView,
    pub password_sign_in: bool,
    /// The redirect URI to register with the issuer.
    pub redirect_uri: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSsoRequest {
    /// The issuer's identifier, e.g. `https://login.example.com/realms/acme`; its
    /// discovery document is read at `<issuer>/.well-known/openid-configuration`.
    #[schema(min_length = 1, max_length = 500)]
    pub issuer: String,
    #[schema(min_length = 1, max_length = 200)]
    pub client_id: String,
    /// Omitted: the secret kept stays while issuer and client do; otherwise the client
    /// is public (PKCE alone).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 500)]
    pub client_secret: Option<String>,
    /// Domains whose verified addresses may sign in for the first time.
    #[schema(min_items = 1, max_items = 50)]
    pub allowed_domains: Vec<String>,
    /// The role of users made by their first sign-in (never admin).
    pub default_role: RoleView,
    /// `false`: members sign in only through the issuer (tokens still work).
    pub password_sign_in: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartParams {
    /// The organization to sign in to.
    pub organization: Uuid,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    /// The sign-in's state, as the issuer sends it back.
    pub state: Option<String>,
    /// The authorization code.
    pub code: Option<String>,
    /// The issuer's error code, when it did not sign the person in.
    pub error: Option<String>,
    pub error_description: Option<String>,
}

fn redirect_uri(app: &AppState) -> String {
    format!("{}{CALLBACK_PATH}", app.config.http.public_url)
}

fn view(app: &AppState, settings: &SingleSignOn) -> SsoView {
    SsoView {
        issuer: settings.issuer.clone(),
        client_id: settings.client_id.clone(),
        has_client_secret: settings.secret_id.is_some(),
        allowed_domains: settings.allowed_domains.clone(),
        default_role: settings.default_role.into(),
        password_sign_in: settings.password_sign_in,
        redirect_uri: redirect_uri(app),
    }
}

fn party(app: &AppState) -> RelyingParty {
    RelyingParty::new(&app.config.sso)
}

/// The organization's single sign-on (admins)
#[utoipa::path(
    get, path = "/v1/sso", tag = "accounts",
    responses(
        (status = 200, description = "The settings", body = SsoView),
        (status = 403, description = "Only admins see them"),
        (status = 404, description = "Single sign-on is not set up"),
    ),
    security(("bearer" = []))
)]
pub async fn get_sso(State(app): State<AppState>, user: AuthUser) -> ApiResult<Json<SsoView>> {
    let settings = use_case::settings(&app.store, &user.actor)
        .await?
        .ok_or_else(|| ApiError::not_found("single sign-on is not set up"))?;
    Ok(Json(view(&app, &settings)))
}

/// Set the organization's single sign-on (admins)
///
/// The issuer is asked for its discovery document first: settings it does not answer
/// for are refused (422 on `issuer`), and nothing changes.
#[utoipa::path(
    put, path = "/v1/sso", tag = "accounts",
    request_body = PutSsoRequest,
    responses(
        (status = 200, description = "The settings after the change", body = SsoView,
         headers(("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
        (status = 403, description = "Only admins set them"),
        (status = 409, description = "A concurrent change won"),
        (status = 422, description = "Invalid settings, or an issuer that cannot be asked: `errors` names each field"),
    ),
    security(("bearer" = []))
)]
pub async fn put_sso(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    JsonBody(body): JsonBody<PutSsoRequest>,
) -> ApiResult<Response> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let settings = Settings {
        issuer: body.issuer,
        client_id: body.client_id,
        client_secret: body.client_secret,
        allowed_domains: body.allowed_domains,
        default_role: body.default_role.into(),
        password_sign_in: body.password_sign_in,
    };
    let committed = use_case::configure(
        &app.store,
        &scope,
        &party(&app),
        &user.actor,
        &metadata,
        settings,
    )
    .await?;
    let settings = committed
        .aggregate
        .single_sign_on()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("single sign-on was not kept")))?;
    Ok((
        [super::consistency_header(committed.head)],
        Json(view(&app, settings)),
    )
        .into_response())
}

/// Turn single sign-on off (admins)
///
/// Members sign in with their passwords again; users made by single sign-on have none
/// until an admin's reset.
#[utoipa::path(
    delete, path = "/v1/sso", tag = "accounts",
    responses(
        (status = 204, description = "Off (or was)"),
        (status = 403, description = "Only admins turn it off"),
        (status = 409, description = "A concurrent change won"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_sso(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
) -> ApiResult<Response> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let committed = use_case::remove(&app.store, &scope, &user.actor, &metadata).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [super::consistency_header(committed.head)],
    )
        .into_response())
}

/// Sign in through the organization's issuer
///
/// Sends the browser to the issuer (authorization code flow with PKCE, a fresh state and
/// nonce); the issuer sends it back to `/v1/auth/sso/callback`.
#[utoipa::path(
    get, path = "/v1/auth/sso/start", tag = "accounts",
    params(StartParams),
    responses(
        (status = 302, description = "Off to the issuer", headers(("Location" = String, description = "The issuer's authorization endpoint"))),
        (status = 404, description = "No such organization, or it has no single sign-on"),
        (status = 502, description = "The issuer cannot be asked"),
    )
)]
pub async fn start(
    State(app): State<AppState>,
    Query(params): Query<StartParams>,
) -> ApiResult<Response> {
    let started = use_case::start(
        &app.store,
        &party(&app),
        params.organization,
        &redirect_uri(&app),
    )
    .await?;
    let url = started.map_err(|e| ApiError::bad_gateway(e.to_string()))?;
    let location = HeaderValue::from_str(&url)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("the issuer's URL: {e}")))?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// Back from the issuer
///
/// Trades the code for an ID token (its signature checked against the issuer's keys,
/// its issuer, audience, expiry and nonce against this sign-in), then signs the person
/// in: the user linked to their account at the issuer, or — the first time — the member
/// with the address the issuer verified, or a new user in the default role. Each sign-in
/// is answered once: the same callback again is refused.
#[utoipa::path(
    get, path = "/v1/auth/sso/callback", tag = "accounts",
    params(CallbackParams),
    responses(
        (status = 200, description = "Signed in", body = LoginResponse),
        (status = 401, description = "Not signed in: the answer does not prove who the person is, or they may not sign in (`detail` says why)"),
        (status = 502, description = "The issuer cannot be asked"),
    )
)]
pub async fn callback(
    State(app): State<AppState>,
    meta: RequestMeta,
    Query(params): Query<CallbackParams>,
) -> ApiResult<Response> {
    if let Some(error) = params.error {
        let description = params.error_description.unwrap_or_default();
        return Err(ApiError::unauthorized(format!(
            "the issuer did not sign you in: {error} {description}"
        )));
    }
    let (Some(state), Some(code)) = (params.state, params.code) else {
        return Err(ApiError::unauthorized(
            "not signed in: the issuer's answer has no `state` and `code` (nor an `error`)",
        ));
    };
    let metadata = meta.metadata(Uuid::nil(), None);
    let finished = use_case::finish(
        &app.store,
        &party(&app),
        &metadata,
        &state,
        &code,
        &redirect_uri(&app),
    )
    .await?;
    let signed_in = match finished {
        Finished::SignedIn(signed_in) => signed_in,
        Finished::Refused(why) => {
            return Err(ApiError::unauthorized(format!("not signed in: {why}")));
        }
        Finished::IssuerFailed(why) => {
            return Err(ApiError::bad_gateway(format!("the issuer: {why}")));
        }
    };
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(super::accounts::session(&app, signed_in)?),
    )
        .into_response())
}
