//! Signing in and out, and what employees do: their expenses, new ones, receipts (upload,
//! the scan as it happens, the review of a doubtful reading) and submitting.

use axum::body::to_bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use expensewise_application::accounts;
use expensewise_infra::config::AppEnv;
use maud::{html, Markup};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    check_csrf, cookie, csrf_field, csrf_token, day, form_errors, instant, money, CheckedForm,
    ConsoleError, ConsoleResult, Page, Signed, PRE_SESSION_COOKIE, SESSION_COOKIE,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{IfMatch, JsonBody, Optimistic, OptionalJsonBody, RequestMeta};
use crate::routes::consistency::ConsistencyToken;
use crate::routes::expenses::{self, AsOfParams, ListParams};
use crate::routes::receipts;
use crate::state::AppState;

/// What an API handler answered, as JSON (the console renders what clients get).
pub async fn json_of(response: ApiResult<Response>) -> Result<Value, ConsoleError> {
    let response = response?;
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("reading an answer: {e}")))?;
    Ok(serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("an answer is not JSON: {e}")))?)
}

/// A request body of the API built from a form's fields (left-out fields stay unset).
pub fn body<T: DeserializeOwned>(fields: Value) -> Result<T, ConsoleError> {
    serde_json::from_value(fields)
        .map_err(|e| ConsoleError(ApiError::invalid_field("form", e.to_string())))
}

/// A text field of a JSON view, empty when absent.
pub fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

/// An optional form field: blank means not given.
pub fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|f| !f.is_empty())
}

/// How a value of the API's is named on the wire (its enums' snake_case names).
pub fn wire_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn status_badge(status: &str) -> Markup {
    html! { span class={"status status-" (status)} { (status.replace('_', " ")) } }
}

/// An instant of a JSON view (RFC 3339), shown as [`instant`] shows it.
pub fn view_instant(value: &Value) -> Markup {
    match value
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    {
        Some(t) => instant(&t.with_timezone(&chrono::Utc)),
        None => html! {},
    }
}

fn view_day(value: &Value) -> Markup {
    match value
        .as_str()
        .and_then(|t| t.parse::<chrono::NaiveDate>().ok())
    {
        Some(d) => day(&d),
        None => html! {},
    }
}

#[derive(Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub struct SignInQuery {
    /// An organization whose people sign in through its OpenID provider: the page
    /// offers that way in (the link its admins hand out).
    organization: Option<Uuid>,
}

pub async fn sign_in_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Response {
    let single_sign_on = match query.organization {
        Some(organization) => app
            .store
            .load_organization(&organization.to_string())
            .await
            .is_ok_and(|o| o.single_sign_on().is_some())
            .then_some(organization),
        None => None,
    };
    before_signing_in(&headers, |csrf| SignInPage {
        single_sign_on,
        ..sign_in_form(csrf, None)
    })
}

/// A page of the way in (sign-in, registration): its forms' CSRF token comes from the
/// pre-session cookie, set here when the visitor has none yet.
fn before_signing_in<P: IntoResponse>(
    headers: &HeaderMap,
    page: impl FnOnce(&str) -> P,
) -> Response {
    let (secret, set) = pre_session(headers);
    let mut response = page(&csrf_token(&secret)).into_response();
    if let Some(set) = set {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    response
}

fn sign_in_form(csrf: &str, error: Option<&str>) -> SignInPage {
    SignInPage {
        csrf: csrf.to_string(),
        error: error.map(str::to_string),
        single_sign_on: None,
    }
}

/// The sign-in page: the password form, and the organization's provider where it has one.
pub struct SignInPage {
    csrf: String,
    error: Option<String>,
    single_sign_on: Option<Uuid>,
}

impl IntoResponse for SignInPage {
    fn into_response(self) -> Response {
        let (csrf, error) = (self.csrf.as_str(), self.error.as_deref());
        let body = html! {
        h1 { "Sign in" }
        @if let Some(organization) = self.single_sign_on {
            p { a.button href={"/app/sso/" (organization)} { "Sign in with your organization's provider" } }
            p { "Or with your password:" }
        }
        @if let Some(error) = error { p.error role="alert" { (error) } }
        form.card method="post" action="/app/sign-in" {
            input type="hidden" name="csrf" value=(csrf);
            div.field {
                label for="email" { "E-mail address" }
                input #email type="email" name="email" autocomplete="username" required;
            }
            div.field {
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
            }
            button type="submit" { "Sign in" }
        }
        p { "New here? " a href="/app/register" { "Register your organization" } }
        };
        Page::bare("Sign in", body).into_response()
    }
}

pub async fn sign_in(
    State(app): State<AppState>,
    CheckedForm(form): CheckedForm<SignInForm>,
) -> ConsoleResult {
    let signed_in = accounts::sign_in(&app.store, &form.email, form.password)
        .await
        .map_err(ApiError::from)?;
    let Some(signed_in) = signed_in else {
        return Ok((
            StatusCode::UNAUTHORIZED,
            sign_in_form(&form.csrf, Some("Wrong e-mail address or password.")),
        )
            .into_response());
    };
    let session = crate::routes::accounts::session(&app, signed_in)?;
    session_response(&app, &session.token, session.expires_at)
}

/// Signed in: the session cookie holds the access token, for as long as it lasts.
pub fn session_response(
    app: &AppState,
    token: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> ConsoleResult {
    let seconds = (expires_at - chrono::Utc::now()).num_seconds().max(0);
    let secure = if app.config.app_env == AppEnv::Development {
        ""
    } else {
        "; Secure"
    };
    let mut response = Redirect::to("/app").into_response();
    for value in [
        format!(
            "{SESSION_COOKIE}={token}; Path=/app; HttpOnly; SameSite=Lax; Max-Age={seconds}{secure}"
        ),
        format!("{PRE_SESSION_COOKIE}=; Path=/app; HttpOnly; SameSite=Lax; Max-Age=0"),
    ] {
        let value = HeaderValue::from_str(&value)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("a session cookie: {e}")))?;
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// The pre-session cookie's secret, made when the visitor has none.
fn pre_session(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, PRE_SESSION_COOKIE) {
        Some(secret) => (secret.to_string(), None),
        None => {
            let secret = Uuid::new_v4().simple().to_string();
            let value = HeaderValue::from_str(&format!(
                "{PRE_SESSION_COOKIE}={secret}; Path=/app; HttpOnly; SameSite=Lax; Max-Age=3600"
            ))
            .ok();
            (secret, value)
        }
    }
}

pub async fn register_page(headers: HeaderMap) -> Response {
    before_signing_in(&headers, |csrf| register_form(csrf, None))
}

fn register_form(csrf: &str, error: Option<&ConsoleError>) -> Page<'static> {
    let body = html! {
        h1 { "Register your organization" }
        (form_errors(error))
        form.card method="post" action="/app/register" {
            input type="hidden" name="csrf" value=(csrf);
            div.field { label for="organization" { "Organization" } input #organization name="organization" required maxlength="200" autocomplete="organization"; }
            div.field { label for="name" { "Your name" } input #name name="name" required maxlength="200" autocomplete="name"; }
            div.field { label for="email" { "E-mail address" } input #email type="email" name="email" required autocomplete="email"; }
            div.field { label for="password" { "Password (at least 8 characters)" } input #password type="password" name="password" required minlength="8" autocomplete="new-password"; }
            div.field { label for="default_currency" { "Currency of the books" } input #default_currency name="default_currency" value="EUR" required maxlength="3"; }
            button type="submit" { "Register" }
        }
        p { "Registered already? " a href="/app/sign-in" { "Sign in" } }
    };
    Page::bare("Register", body)
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    organization: String,
    name: String,
    email: String,
    password: String,
    default_currency: Option<String>,
}

/// A new organization and its first admin, signed in: `POST /v1/auth/register`'s
/// handler does it.
pub async fn register(
    State(app): State<AppState>,
    meta: RequestMeta,
    optimistic: Optimistic,
    CheckedForm(form): CheckedForm<RegisterForm>,
) -> ConsoleResult {
    let request = body(json!({
        "organization": form.organization,
        "name": form.name,
        "email": form.email,
        "password": form.password,
        "default_currency": given(&form.default_currency).map(str::to_ascii_uppercase),
    }));
    let registered = match request {
        Ok(request) => crate::routes::accounts::register(
            State(app.clone()),
            meta,
            optimistic,
            JsonBody(request),
        )
        .await
        .map(IntoResponse::into_response),
        Err(e) => Err(e.0),
    };
    match registered {
        Ok(response) => {
            let view = json_of(Ok(response)).await?;
            let expires_at = view["expires_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
                .ok_or_else(|| {
                    ApiError::internal(anyhow::anyhow!("a registration without expiry"))
                })?;
            session_response(&app, text(&view, "token"), expires_at)
        }
        Err(e)
            if matches!(
                e.status(),
                StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT
            ) =>
        {
            Ok((
                e.status(),
                register_form(&form.csrf, Some(&ConsoleError(e))),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn sign_out(_: CheckedForm<IgnoredAny>) -> ConsoleResult {
    let mut response = Redirect::to("/app/sign-in").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("ew_session=; Path=/app; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct ListForm {
    status: Option<String>,
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

const STATUSES: [&str; 5] = ["draft", "submitted", "approved", "rejected", "reimbursed"];

pub async fn expenses(
    State(app): State<AppState>,
    signed: Signed,
    Query(form): Query<ListForm>,
) -> ConsoleResult {
    let params: ListParams = body(json!({
        "status": given(&form.status),
        "q": given(&form.q),
        "from": given(&form.from),
        "to": given(&form.to),
        "cursor": given(&form.cursor),
        "limit": 25,
    }))?;
    let page = expenses::list_expenses(
        State(app.clone()),
        signed.user.clone(),
        ConsistencyToken(None),
        Query(params),
    )
    .await?
    .0;
    let next = page.next_cursor.as_ref().map(|cursor| {
        let mut query = url_query(&[
            ("status", given(&form.status)),
            ("q", given(&form.q)),
            ("from", given(&form.from)),
            ("to", given(&form.to)),
        ]);
        query.push_str(&format!("&cursor={}", encode(cursor)));
        format!("/app/expenses?{query}")
    });
    let status = given(&form.status).unwrap_or_default();
    let body = html! {
        h1 { "Expenses" }
        p { a.button href="/app/expenses/new" { "New expense" } " " a.button href="/app/receipts/new" { "Upload a receipt" } }
        form.filters method="get" action="/app/expenses" role="search" {
            div {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" selected[status.is_empty()] { "Any" }
                    @for s in STATUSES { option value=(s) selected[status == s] { (s) } }
                }
            }
            div { label for="q" { "Search" } input #q type="search" name="q" value=[given(&form.q)]; }
            div { label for="from" { "From" } input #from type="date" name="from" value=[given(&form.from)]; }
            div { label for="to" { "To" } input #to type="date" name="to" value=[given(&form.to)]; }
            button type="submit" { "Filter" }
        }
        @if page.items.is_empty() {
            p { "No expenses match." }
        } @else {
            div.table-wrap {
                table {
                    caption.visually-hidden { "Expenses, newest first" }
                    thead { tr { th { "Spent on" } th { "Merchant" } th.wide { "Category" } th.num { "Amount" } th { "Status" } } }
                    tbody {
                        @for e in &page.items {
                            tr {
                                td { (day(&e.spent_on)) }
                                td { a href={"/app/expenses/" (e.id)} { (e.merchant) } }
                                td.wide { (e.category) }
                                td.num { (money(&e.amount, &e.currency)) }
                                td { (status_badge(&wire_name(&e.status))) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next { nav.pager aria-label="Pages" { a href=(next) { "Next page" } } }
    };
    Ok(Page::new("Expenses", &signed, body).into_response())
}

pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn url_query(pairs: &[(&str, Option<&str>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", encode(v))))
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn new_expense(signed: Signed) -> Response {
    let currency = signed
        .user
        .organization
        .default_currency()
        .map(|c| c.to_string())
        .unwrap_or_else(|| "EUR".to_string());
    expense_form(&signed, &currency, None).into_response()
}

fn expense_form<'a>(signed: &'a Signed, currency: &str, error: Option<&ConsoleError>) -> Page<'a> {
    let today = chrono::Utc::now().date_naive().to_string();
    let body = html! {
        h1 { "New expense" }
        (form_errors(error))
        form.card method="post" action="/app/expenses" {
            (csrf_field(signed))
            div.field { label for="merchant" { "Merchant" } input #merchant name="merchant" required maxlength="200"; }
            div.field { label for="amount" { "Amount" } input #amount name="amount" inputmode="decimal" required pattern="[0-9]+([.,][0-9]{1,4})?"; }
            div.field { label for="currency" { "Currency" } input #currency name="currency" value=(currency) required maxlength="3" autocapitalize="characters"; }
            div.field { label for="category" { "Category" } input #category name="category" required maxlength="100"; }
            div.field { label for="spent_on" { "Spent on" } input #spent_on type="date" name="spent_on" value=(today) required; }
            div.field { label for="description" { "Description" } textarea #description name="description" maxlength="2000" {} }
            button type="submit" { "Save draft" }
        }
    };
    Page::new("New expense", signed, body)
}

#[derive(Deserialize)]
pub struct ExpenseForm {
    merchant: String,
    amount: String,
    currency: String,
    category: String,
    spent_on: String,
    description: Option<String>,
}

pub async fn create_expense(
    State(app): State<AppState>,
    signed: Signed,
    meta: RequestMeta,
    optimistic: Optimistic,
    CheckedForm(form): CheckedForm<ExpenseForm>,
) -> ConsoleResult {
    let request = body(json!({
        "merchant": form.merchant.trim(),
        "amount": form.amount.trim().replace(',', "."),
        "currency": form.currency.trim().to_ascii_uppercase(),
        "category": form.category.trim(),
        "spent_on": form.spent_on.trim(),
        "description": given(&form.description),
    }));
    let created = match request {
        Ok(request) => {
            expenses::create_expense(
                State(app),
                signed.user.clone(),
                meta,
                optimistic,
                HeaderMap::new(),
                JsonBody(request),
            )
            .await
        }
        Err(e) => Err(e.0),
    };
    match created {
        Ok(response) => {
            let view = json_of(Ok(response)).await?;
            Ok(Redirect::to(&format!("/app/expenses/{}", text(&view, "id"))).into_response())
        }
        Err(e) if e.status() == StatusCode::UNPROCESSABLE_ENTITY => {
            let error = ConsoleError(e);
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                expense_form(&signed, &form.currency, Some(&error)),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn expense(
    State(app): State<AppState>,
    signed: Signed,
    Path(id): Path<Uuid>,
) -> ConsoleResult {
    let view = expense_view(&app, &signed, id, None).await?;
    Ok(expense_page(&signed, &view, None).into_response())
}

/// The expense as `GET /v1/expenses/{id}` gives it (as it was then, with `as_of`).
pub async fn expense_view(
    app: &AppState,
    signed: &Signed,
    id: Uuid,
    as_of: Option<String>,
) -> Result<Value, ConsoleError> {
    json_of(
        expenses::get_expense(
            State(app.clone()),
            signed.user.clone(),
            ConsistencyToken(None),
            Path(id),
            Query(AsOfParams { as_of }),
        )
        .await,
    )
    .await
}

/// One expense: its facts, its receipt beside them, and what its reader may do with it.
pub fn expense_page<'a>(
    signed: &'a Signed,
    view: &Value,
    error: Option<&ConsoleError>,
) -> Page<'a> {
    let id = text(view, "id");
    let status = text(view, "status");
    let own = text(view, "owner_id") == signed.user.actor.user_id.to_string();
    let decides = !own
        && status == "submitted"
        && matches!(
            signed.user.actor.role,
            expensewise_domain::Role::Approver
                | expensewise_domain::Role::Finance
                | expensewise_domain::Role::Admin
        );
    let violations = view["violations"].as_array().cloned().unwrap_or_default();
    let warned = !violations.is_empty();
    let receipt = view["receipt_ids"]
        .as_array()
        .and_then(|r| r.first())
        .and_then(|r| r.as_str())
        .map(str::to_string);
    let body = html! {
        h1 { (text(view, "merchant")) " " (status_badge(status)) }
        (form_errors(error))
        div.split {
            section.card aria-labelledby="facts" {
                h2 #facts { "Details" }
                dl.facts {
                    dt { "Amount" } dd { (money(text(view, "amount"), text(view, "currency"))) }
                    @if let (Some(base), Some(currency)) = (view["base_amount"].as_str(), view["base_currency"].as_str()) {
                        dt { "In " (currency) } dd { (money(base, currency)) }
                    }
                    dt { "Spent on" } dd { (view_day(&view["spent_on"])) }
                    dt { "Category" } dd { (text(view, "category")) }
                    dt { "Description" } dd { (view["description"].as_str().unwrap_or("—")) }
                    dt { "Created" } dd { (view_instant(&view["created_at"])) }
                    @if let Some(reason) = view["decision_reason"].as_str() { dt { "Decision" } dd { (reason) } }
                    @if let Some(j) = view["justification"].as_str() { dt { "Justification" } dd { (j) } }
                }
                @if warned {
                    h2 { "Policy" }
                    ul.violations { @for v in &violations { li class=(text(v, "level")) { (text(v, "message")) } } }
                }
                p { a href={"/app/expenses/" (id) "/timeline"} { "Timeline" } }
            }
            section.card aria-labelledby="receipt" {
                h2 #receipt { "Receipt" }
                @if let Some(receipt) = &receipt {
                    a href={"/app/receipts/" (receipt)} {
                        img.receipt-image src={"/app/receipts/" (receipt) "/file"} alt={"The receipt of " (text(view, "merchant"))};
                    }
                } @else {
                    p { "No receipt attached." }
                }
            }
        }
        @if own && (status == "draft" || status == "rejected") {
            form.card method="post" action={"/app/expenses/" (id) "/submit"} {
                (csrf_field(signed))
                @if warned {
                    div.field {
                        label for="justification" { "Justification (the policy warns about this expense)" }
                        textarea #justification name="justification" maxlength="2000" {}
                    }
                }
                button type="submit" { "Submit for approval" }
            }
        }
        @if decides { (super::reviewer::decision_forms(signed, id, false)) }
    };
    Page::new("Expense", signed, body)
}

#[derive(Deserialize)]
pub struct SubmitForm {
    justification: Option<String>,
}

pub async fn submit(
    State(app): State<AppState>,
    signed: Signed,
    meta: RequestMeta,
    optimistic: Optimistic,
    Path(id): Path<Uuid>,
    CheckedForm(form): CheckedForm<SubmitForm>,
) -> ConsoleResult {
    let request = body(json!({ "justification": given(&form.justification) }))?;
    let submitted = expenses::submit_expense(
        State(app.clone()),
        signed.user.clone(),
        meta,
        optimistic,
        IfMatch(None),
        Path(id),
        OptionalJsonBody(request),
    )
    .await;
    match submitted {
        Ok(_) => Ok(Redirect::to(&format!("/app/expenses/{id}")).into_response()),
        Err(e) if e.status() == StatusCode::UNPROCESSABLE_ENTITY || !e.violations().is_empty() => {
            let status = e.status();
            let view = expense_view(&app, &signed, id, None).await?;
            Ok((status, expense_page(&signed, &view, Some(&ConsoleError(e)))).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn new_receipt(signed: Signed) -> Response {
    let action = format!("/app/receipts?csrf={}", signed.csrf);
    let body = html! {
        h1 { "Upload a receipt" }
        p { "A draft expense is made from what the receipt says; you can correct it before submitting." }
        form.card method="post" action=(action) enctype="multipart/form-data" {
            div.dropzone {
                label for="file" { "Photo or scan of the receipt (PNG, JPEG, WebP, TIFF or PDF)" }
                input #file type="file" name="file" accept="image/*,application/pdf" capture="environment" required;
                p.chosen aria-live="polite" {}
                p.kbd-help { "Drop the file here, choose it, or take a photo on a phone." }
            }
            input type="hidden" name="create_expense" value="true";
            p { button type="submit" { "Upload" } }
        }
    };
    Page::new("Upload a receipt", &signed, body).into_response()
}

#[derive(Deserialize)]
pub struct CsrfQuery {
    csrf: Option<String>,
}

/// The upload goes to the API's own handler, streamed; the CSRF token comes in the
/// form's address since the body is the file's.
pub async fn upload_receipt(
    State(app): State<AppState>,
    signed: Signed,
    meta: RequestMeta,
    Query(query): Query<CsrfQuery>,
    request: Request,
) -> ConsoleResult {
    check_csrf(request.headers(), query.csrf.as_deref().unwrap_or_default())?;
    let view =
        json_of(receipts::upload::upload_receipt(State(app), signed.user, meta, request).await)
            .await?;
    Ok(Redirect::to(&format!("/app/receipts/{}", text(&view, "id"))).into_response())
}

pub async fn receipt(
    State(app): State<AppState>,
    signed: Signed,
    Path(id): Path<Uuid>,
) -> ConsoleResult {
    let view = receipt_view(&app, &signed, id).await?;
    Ok(receipt_page(&signed, &view, None).into_response())
}

/// The receipt as `GET /v1/receipts/{id}` gives it.
async fn receipt_view(app: &AppState, signed: &Signed, id: Uuid) -> Result<Value, ConsoleError> {
    let Json(view) = receipts::get_receipt(
        State(app.clone()),
        signed.user.clone(),
        ConsistencyToken(None),
        Path(id),
    )
    .await?;
    Ok(serde_json::to_value(view).map_err(|e| ApiError::internal(e.into()))?)
}

fn receipt_page<'a>(signed: &'a Signed, view: &Value, error: Option<&ConsoleError>) -> Page<'a> {
    let id = text(view, "id");
    let status = text(view, "status");
    let pending = status == "pending";
    // A settled reading becomes a draft expense moments later (another worker): the
    // page keeps following until the draft is there to link to.
    let draft_coming = view["create_expense"] == true
        && view["expense_id"].is_null()
        && matches!(status, "scanned" | "reviewed");
    let extracted = &view["extracted"];
    let total = &extracted["total"];
    let body = html! {
        h1 { "Receipt " (status_badge(status)) }
        (form_errors(error))
        div.split {
            section.card aria-labelledby="scan" {
                h2 #scan { "Scan" }
                @if pending {
                    p role="status" { "Reading the receipt…" }
                    progress aria-label="Reading the receipt" {}
                } @else if status == "failed" {
                    p.error { "It could not be read: " (view["failure_reason"].as_str().unwrap_or("unknown")) }
                }
                @if !extracted.is_null() {
                    dl.facts {
                        dt { "Merchant" } dd { (extracted["merchant"].as_str().unwrap_or("—")) }
                        dt { "Date" } dd { (view_day(&extracted["date"])) }
                        dt { "Total" } dd {
                            @if let (Some(a), Some(c)) = (total["amount"].as_str(), total["currency"].as_str()) { (money(a, c)) } @else { "—" }
                        }
                    }
                    @if let Some(doubts) = view["doubts"].as_array().filter(|d| !d.is_empty()) {
                        p { "Doubts: " @for (i, d) in doubts.iter().enumerate() { @if i > 0 { ", " } (d.as_str().unwrap_or_default()) } }
                    }
                }
                @if let Some(expense) = view["expense_id"].as_str() {
                    p { a href={"/app/expenses/" (expense)} { "The expense" } }
                }
                @if status == "needs_review" {
                    h2 { "Check and confirm" }
                    form method="post" action={"/app/receipts/" (id) "/review"} {
                        (csrf_field(signed))
                        div.field { label for="merchant" { "Merchant" } input #merchant name="merchant" value=(extracted["merchant"].as_str().unwrap_or_default()) required maxlength="200"; }
                        div.field { label for="date" { "Date" } input #date type="date" name="date" value=(extracted["date"].as_str().unwrap_or_default()) required; }
                        div.field { label for="amount" { "Total" } input #amount name="amount" inputmode="decimal" value=(total["amount"].as_str().unwrap_or_default()) required; }
                        div.field { label for="currency" { "Currency" } input #currency name="currency" value=(total["currency"].as_str().unwrap_or_default()) required maxlength="3"; }
                        button type="submit" { "Confirm" }
                    }
                }
            }
            section.card aria-labelledby="image" {
                h2 #image { "Image" }
                @if text(view, "content_type").starts_with("image/") {
                    img.receipt-image src={"/app/receipts/" (id) "/file"} alt="The uploaded receipt";
                } @else {
                    p { a href={"/app/receipts/" (id) "/file"} { "Open the file" } }
                }
            }
        }
    };
    Page::new("Receipt", signed, body).refreshing(pending || draft_coming)
}

pub async fn receipt_file(
    State(app): State<AppState>,
    signed: Signed,
    Path(id): Path<Uuid>,
) -> ConsoleResult {
    Ok(
        receipts::get_receipt_file(State(app), signed.user, ConsistencyToken(None), Path(id))
            .await?,
    )
}

#[derive(Deserialize)]
pub struct ReviewForm {
    merchant: Option<String>,
    date: Option<String>,
    amount: Option<String>,
    currency: Option<String>,
}

pub async fn review_receipt(
    State(app): State<AppState>,
    signed: Signed,
    meta: RequestMeta,
    optimistic: Optimistic,
    Path(id): Path<Uuid>,
    CheckedForm(form): CheckedForm<ReviewForm>,
) -> ConsoleResult {
    let request = body(json!({
        "merchant": given(&form.merchant),
        "date": given(&form.date),
        "amount": given(&form.amount).map(|a| a.replace(',', ".")),
        "currency": given(&form.currency).map(str::to_ascii_uppercase),
    }));
    let reviewed = match request {
        Ok(request) => {
            receipts::review_receipt(
                State(app.clone()),
                signed.user.clone(),
                meta,
                optimistic,
                Path(id),
                OptionalJsonBody(request),
            )
            .await
        }
        Err(e) => Err(e.0),
    };
    match reviewed {
        Ok(_) => Ok(Redirect::to(&format!("/app/receipts/{id}")).into_response()),
        Err(e) if e.status() == StatusCode::UNPROCESSABLE_ENTITY => {
            let view = receipt_view(&app, &signed, id).await?;
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                receipt_page(&signed, &view, Some(&ConsoleError(e))),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}
