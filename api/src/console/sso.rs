//! Signing in to the console through the organization's OpenID provider: the same
//! sign-in as `/v1/auth/sso/start` and `/callback` (code flow with PKCE, state and nonce,
//! the ID token checked), coming back to the console, which then holds the session.
//! The provider must know the console's redirect URI, `<PUBLIC_URL>/app/sso/callback`,
//! beside the API's.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use expensewise_application::accounts::sso::{self as use_case, Finished};
use expensewise_infra::sso::RelyingParty;
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::{ConsoleError, ConsoleResult, Page};
use crate::error::ApiError;
use crate::extract::RequestMeta;
use crate::state::AppState;

const CALLBACK_PATH: &str = "/app/sso/callback";

fn redirect_uri(app: &AppState) -> String {
    format!("{}{CALLBACK_PATH}", app.config.http.public_url)
}

/// Off to the organization's issuer.
pub async fn start(State(app): State<AppState>, Path(organization): Path<Uuid>) -> ConsoleResult {
    let started = use_case::start(
        &app.store,
        &RelyingParty::new(&app.config.sso),
        organization,
        &redirect_uri(&app),
    )
    .await
    .map_err(ApiError::from)?;
    let url = started.map_err(|e| ApiError::bad_gateway(e.to_string()))?;
    let location = HeaderValue::from_str(&url)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("the issuer's URL: {e}")))?;
    Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
}

#[derive(Deserialize)]
pub struct CallbackForm {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Back from the issuer: signed in to the console, or told why not.
pub async fn callback(
    State(app): State<AppState>,
    meta: RequestMeta,
    Query(form): Query<CallbackForm>,
) -> ConsoleResult {
    let refused = |why: String| -> ConsoleResult {
        let body = html! {
            h1 { "Not signed in" }
            p.error role="alert" { (why) }
            p { a href="/app/sign-in" { "Back to the sign-in" } }
        };
        Ok((StatusCode::UNAUTHORIZED, Page::bare("Not signed in", body)).into_response())
    };
    if let Some(error) = form.error {
        let description = form.error_description.unwrap_or_default();
        return refused(format!(
            "the issuer did not sign you in: {error} {description}"
        ));
    }
    let (Some(state), Some(code)) = (form.state, form.code) else {
        return refused("the issuer's answer has no state and code".to_string());
    };
    let metadata = meta.metadata(Uuid::nil(), None);
    let finished = use_case::finish(
        &app.store,
        &RelyingParty::new(&app.config.sso),
        &metadata,
        &state,
        &code,
        &redirect_uri(&app),
    )
    .await
    .map_err(ApiError::from)?;
    match finished {
        Finished::SignedIn(signed_in) => {
            let session = crate::routes::accounts::session(&app, signed_in)?;
            super::employee::session_response(&app, &session.token, session.expires_at)
        }
        Finished::Refused(why) => refused(format!("not signed in: {why}")),
        Finished::IssuerFailed(why) => Err(ConsoleError(ApiError::bad_gateway(format!(
            "the issuer: {why}"
        )))),
    }
}
