//! The web console at `/app`: server-rendered pages for employees, approvers, auditors
//! and admins, served by the binary with every asset in it.
//!
//! It is another adapter of the API's handlers: each page calls the same handler a
//! client of `/v1` would (and so the same use cases, read models, consistency rules and
//! permission checks) and renders what it returns. Signing in sets a session cookie
//! holding the same access token `/v1/auth/login` gives; for `/app` paths it stands in for
//! the `Authorization` header, before rate limiting and everything else sees the request.
//! Every form carries a CSRF token derived from the session (or, before signing in, from
//! a random cookie): a page of another site cannot read either, so cannot forge a form.

mod assets;
mod auditor;
mod employee;
mod operator;
mod reviewer;
mod sso;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use expensewise_domain::Role;
use maud::{html, Markup, DOCTYPE};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "ew_session";
/// Before signing in: the random value the sign-in form's CSRF token is derived from.
pub const PRE_SESSION_COOKIE: &str = "ew_pre";

/// Every page and form of the console, to be nested at `/app`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route(
            "/sign-in",
            get(employee::sign_in_page).post(employee::sign_in),
        )
        .route("/sign-out", post(employee::sign_out))
        .route(
            "/register",
            get(employee::register_page).post(employee::register),
        )
        .route("/sso/callback", get(sso::callback))
        .route("/sso/{organization}", get(sso::start))
        .route(
            "/expenses",
            get(employee::expenses).post(employee::create_expense),
        )
        .route("/expenses/new", get(employee::new_expense))
        .route("/expenses/{id}", get(employee::expense))
        .route("/expenses/{id}/submit", post(employee::submit))
        .route("/expenses/{id}/approve", post(reviewer::approve))
        .route("/expenses/{id}/reject", post(reviewer::reject))
        .route("/expenses/{id}/timeline", get(auditor::timeline))
        .route("/receipts/new", get(employee::new_receipt))
        .route("/receipts", post(employee::upload_receipt))
        .route("/receipts/{id}", get(employee::receipt))
        .route("/receipts/{id}/file", get(employee::receipt_file))
        .route("/receipts/{id}/review", post(employee::review_receipt))
        .route("/approvals", get(reviewer::queue))
        .route("/audit", get(auditor::search))
        .route("/audit/download", get(auditor::download))
        .route("/audit/events/{id}/proof", get(auditor::proof))
        .route("/operations", get(operator::overview))
        .route(
            "/operations/projections/{name}/rebuild",
            post(operator::rebuild),
        )
        .route(
            "/operations/dead-letters/{worker}/{event_id}",
            get(operator::dead_letter),
        )
        .route(
            "/operations/dead-letters/{worker}/{event_id}/retry",
            post(operator::retry),
        )
        .route(
            "/operations/dead-letters/{worker}/{event_id}/discard",
            post(operator::discard),
        )
        .route("/assets/{file}", get(assets::serve))
        .fallback(not_found)
}

/// For `/app` paths: the session cookie speaks as the bearer token would (a request that
/// brings its own `Authorization` keeps it). Every console response gets its security
/// headers here too.
pub async fn session(mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path != "/app" && !path.starts_with("/app/") {
        return next.run(req).await;
    }
    if !req.headers().contains_key(header::AUTHORIZATION) {
        let bearer = cookie(req.headers(), SESSION_COOKIE)
            .and_then(|token| HeaderValue::from_str(&format!("Bearer {token}")).ok());
        if let Some(bearer) = bearer {
            req.headers_mut().insert(header::AUTHORIZATION, bearer);
        }
    }
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        // Pages show one person's data: never kept by shared caches, nor shown again from
        // the browser's after signing out.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The CSRF token of forms shown to whoever holds `secret` (their session or pre-session
/// cookie's value).
pub fn csrf_token(secret: &str) -> String {
    let digest = Sha256::digest(format!("expensewise console csrf\0{secret}").as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a posted form's token is the one its sender's cookies call for.
fn csrf_ok(headers: &axum::http::HeaderMap, presented: &str) -> bool {
    let secret = cookie(headers, SESSION_COOKIE).or_else(|| cookie(headers, PRE_SESSION_COOKIE));
    secret.is_some_and(|s| {
        let expected = csrf_token(s);
        // Compared in full whatever the first difference: no timing tells how much matched.
        expected.len() == presented.len()
            && expected
                .bytes()
                .zip(presented.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

/// A signed-in person using the console, and the CSRF token of their forms. Anyone
/// else is sent to the sign-in page.
pub struct Signed {
    pub user: AuthUser,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(csrf) = cookie(&parts.headers, SESSION_COOKIE).map(csrf_token) else {
            return Err(to_sign_in());
        };
        match AuthUser::from_request_parts(parts, state).await {
            Ok(user) => Ok(Signed { user, csrf }),
            Err(e) if e.status() == StatusCode::UNAUTHORIZED => Err(to_sign_in()),
            Err(e) => Err(ConsoleError(e).into_response()),
        }
    }
}

fn to_sign_in() -> Response {
    Redirect::to("/app/sign-in").into_response()
}

/// A form posted from one of the console's pages: refused (403, nothing done) unless it
/// carries the CSRF token its sender's cookies call for, then read as `T`.
pub struct CheckedForm<T>(pub T);

#[derive(serde::Deserialize)]
struct Token {
    #[serde(default)]
    csrf: String,
}

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for CheckedForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let again = |bytes: Bytes| Request::from_parts(parts.clone(), Body::from(bytes));
        let Form(token) = Form::<Token>::from_request(again(bytes.clone()), state)
            .await
            .map_err(IntoResponse::into_response)?;
        check_csrf(&parts.headers, &token.csrf).map_err(IntoResponse::into_response)?;
        let Form(fields) = Form::<T>::from_request(again(bytes), state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(CheckedForm(fields))
    }
}

/// Refuses a form whose CSRF token is missing or not its sender's.
pub fn check_csrf(headers: &axum::http::HeaderMap, presented: &str) -> Result<(), ConsoleError> {
    if csrf_ok(headers, presented) {
        Ok(())
    } else {
        Err(ConsoleError(ApiError::forbidden(
            "the form's security token is missing or expired: reload the page and send it again",
        )))
    }
}

/// An error of the API shown as a page.
pub struct ConsoleError(pub ApiError);

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::CONFLICT => "Not possible now",
            StatusCode::UNPROCESSABLE_ENTITY => "Please correct the form",
            s if s.is_server_error() => "Something went wrong",
            _ => "That did not work",
        };
        let body = html! {
            h1 { (title) }
            (form_errors(Some(&self)))
            p { a href="/app" { "Back to the console" } }
        };
        (status, Page::bare(title, body)).into_response()
    }
}

pub type ConsoleResult = Result<Response, ConsoleError>;

/// What went wrong with a form, above it: the sentence, and each field's complaint.
pub fn form_errors(error: Option<&ConsoleError>) -> Markup {
    html! {
        @if let Some(error) = error {
            div.error role="alert" {
                p { (error.0.detail()) }
                @if !error.0.field_errors().is_empty() {
                    ul { @for e in error.0.field_errors() { li { (e.field) ": " (e.message) } } }
                }
                @if !error.0.violations().is_empty() {
                    ul { @for v in error.0.violations() { li { (v.message) } } }
                }
            }
        }
    }
}

async fn not_found() -> Response {
    ConsoleError(ApiError::not_found("there is no such page")).into_response()
}

async fn home(signed: Signed) -> Redirect {
    Redirect::to(match signed.user.actor.role {
        Role::Employee => "/app/expenses",
        Role::Approver | Role::Finance => "/app/approvals",
        Role::Auditor => "/app/audit",
        Role::Admin => "/app/operations",
    })
}

/// One page: the layout around `body`, with the navigation its reader's role calls for.
pub struct Page<'a> {
    title: &'a str,
    signed: Option<&'a Signed>,
    body: Markup,
    /// While something on the page is still changing (a scan): reload now and then.
    refresh: bool,
}

impl<'a> Page<'a> {
    pub fn new(title: &'a str, signed: &'a Signed, body: Markup) -> Self {
        Self {
            title,
            signed: Some(signed),
            body,
            refresh: false,
        }
    }

    pub fn bare(title: &'a str, body: Markup) -> Self {
        Self {
            title,
            signed: None,
            body,
            refresh: false,
        }
    }

    pub fn refreshing(mut self, refresh: bool) -> Self {
        self.refresh = refresh;
        self
    }

    pub fn render(self) -> maud::Markup {
        let nav: Vec<(&str, &str)> = match self.signed.map(|s| s.user.actor.role) {
            None => vec![],
            Some(role) => {
                let mut links = vec![("/app/expenses", "Expenses")];
                if role != Role::Auditor {
                    links.push(("/app/receipts/new", "Upload receipt"));
                }
                if matches!(role, Role::Approver | Role::Finance | Role::Admin) {
                    links.push(("/app/approvals", "Approvals"));
                }
                if matches!(role, Role::Auditor | Role::Admin) {
                    links.push(("/app/audit", "Audit"));
                }
                if role == Role::Admin {
                    links.push(("/app/operations", "Operations"));
                }
                links
            }
        };
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · Expense-Wise" }
                    link rel="icon" href=(assets::ICON.path()) type="image/svg+xml";
                    link rel="stylesheet" href=(assets::CSS.path());
                    script src=(assets::JS.path()) defer {}
                    @if self.refresh {
                        noscript { meta http-equiv="refresh" content="2"; }
                    }
                }
                body {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/app" { "Expense-Wise" }
                        @if let Some(signed) = self.signed {
                            nav aria-label="Main" {
                                ul {
                                    @for (href, label) in &nav {
                                        li { a href=(href) { (label) } }
                                    }
                                }
                            }
                            form.signout method="post" action="/app/sign-out" {
                                input type="hidden" name="csrf" value=(signed.csrf);
                                span.who { (signed.user.member.name) " · " (role_name(signed.user.actor.role)) }
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                    main #main data-refresh[self.refresh] { (self.body) }
                }
            }
        }
    }
}

impl IntoResponse for Page<'_> {
    fn into_response(self) -> Response {
        axum::response::Html(self.render().into_string()).into_response()
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Employee => "employee",
        Role::Approver => "approver",
        Role::Auditor => "auditor",
        Role::Admin => "admin",
        Role::Finance => "finance",
    }
}

/// An amount the browser formats in its reader's language (plain without script).
pub fn money(amount: &str, currency: &str) -> Markup {
    html! { data.money value=(amount) data-currency=(currency) { (amount) " " (currency) } }
}

/// An instant the browser shows in its reader's language and time zone.
pub fn instant(at: &chrono::DateTime<chrono::Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M UTC")) } }
}

/// A calendar date, formatted by the browser.
pub fn day(date: &chrono::NaiveDate) -> Markup {
    html! { time.day datetime=(date.to_string()) { (date.to_string()) } }
}

/// The hidden field every form carries.
pub fn csrf_field(signed: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(signed.csrf); }
}

/// Text shown as it is (JSON, errors).
pub fn pre(text: &str) -> Markup {
    html! { pre { (text) } }
}
