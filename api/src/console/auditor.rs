//! What auditors do: an expense's timeline (every event with who, when, from which
//! request, and what changed; the expense as it was at any moment; each event's place in
//! the verifiable log and its proof), and the search of the organization's events with
//! CSV and NDJSON downloads.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use expensewise_domain::Organization;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::employee::{
    body, encode, expense_view, given, json_of, status_badge, text, url_query, view_instant,
};
use super::{instant, pre, ConsoleError, ConsoleResult, Page, Signed};
use crate::error::ApiError;
use crate::routes::audit::{self, AuditParams, ProofParams};
use crate::routes::events::EventView;
use crate::routes::expenses::{self, AsOfParams};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct AsOfForm {
    as_of: Option<String>,
}

/// A moment as the date picker gives it (a local `YYYY-MM-DDTHH:MM`, taken as UTC), or
/// as the API takes it.
fn as_of(form: &AsOfForm) -> Option<String> {
    let text = given(&form.as_of)?;
    Some(match text.len() {
        16 => format!("{text}:00Z"),
        19 => format!("{text}Z"),
        _ => text.to_string(),
    })
}

fn who(organization: &Organization, actor: Option<Uuid>) -> String {
    match actor {
        None => "the system".to_string(),
        Some(id) => organization
            .member(id)
            .map(|m| m.name.clone())
            .unwrap_or_else(|| id.to_string()),
    }
}

pub async fn timeline(
    State(app): State<AppState>,
    signed: Signed,
    Path(id): Path<Uuid>,
    Query(form): Query<AsOfForm>,
) -> ConsoleResult {
    let as_of = as_of(&form);
    let events = expenses::expense_history(
        State(app.clone()),
        signed.user.clone(),
        Path(id),
        Query(AsOfParams {
            as_of: as_of.clone(),
        }),
    )
    .await?
    .0;
    let then = expense_view(&app, &signed, id, as_of.clone()).await.ok();
    let organization = &signed.user.organization;
    let picked = given(&form.as_of).unwrap_or_default().to_string();
    let auditor = matches!(
        signed.user.actor.role,
        expensewise_domain::Role::Auditor | expensewise_domain::Role::Admin
    );
    let body = html! {
        h1 { "Timeline" }
        p { a href={"/app/expenses/" (id)} { "The expense now" } }
        form.filters method="get" action={"/app/expenses/" (id) "/timeline"} {
            div {
                label for="as_of" { "As of (UTC)" }
                input #as_of type="datetime-local" name="as_of" value=(picked) step="1";
            }
            button type="submit" { "Show" }
            @if as_of.is_some() { a href={"/app/expenses/" (id) "/timeline"} { "Now" } }
        }
        @if let Some(then) = &then {
            section.card aria-labelledby="then" {
                h2 #then { @if as_of.is_some() { "The expense then" } @else { "The expense now" } }
                p { (text(then, "merchant")) " · " (super::money(text(then, "amount"), text(then, "currency"))) " · " (status_badge(text(then, "status"))) " · version " (then["version"]) }
            }
        }
        ol.timeline {
            @for event in &events {
                li.card {
                    (event_entry(organization, event, auditor))
                }
            }
        }
    };
    Ok(Page::new("Timeline", &signed, body).into_response())
}

fn event_entry(organization: &Organization, event: &EventView, auditor: bool) -> Markup {
    html! {
        h2 { (event.event_type) " " small { "#" (event.sequence) } }
        dl.facts {
            dt { "When" } dd { (instant(&event.occurred_at)) }
            // What "As of" goes by: the store's time, a little after the command's.
            dt { "Recorded" } dd.recorded { (instant(&event.recorded_at)) }
            dt { "Who" } dd { (who(organization, event.actor_id)) }
            dt { "Request" } dd { code { (event.request_id.as_deref().unwrap_or("—")) } }
            dt { "Log" } dd {
                @match event.leaf_index {
                    Some(leaf) => {
                        span.badge-ok { "✓ in the verifiable log (leaf " (leaf) ")" }
                        @if auditor {
                            " " a href={"/app/audit/events/" (event.event_id) "/proof"} download { "Download proof" }
                        }
                    }
                    None => span.badge-wait { "not in the log yet" },
                }
            }
        }
        @match &event.changes {
            Some(changes) => {
                ul.changes {
                    @for c in changes {
                        li { (c.field) ": " code { (plain(&c.from)) } " → " code { (plain(&c.to)) } }
                    }
                }
            }
            None => details { summary { "Fields" } (pre(&serde_json::to_string_pretty(&event.payload).unwrap_or_default())) }
        }
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_string(),
        other => other.to_string(),
    }
}

#[derive(Deserialize)]
pub struct SearchForm {
    aggregate_type: Option<String>,
    aggregate_id: Option<String>,
    event_type: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
}

impl SearchForm {
    fn params(&self, limit: i64, after: Option<&str>) -> Result<AuditParams, ConsoleError> {
        // Days from the date pickers: from the start of `from` to the end of `to`.
        let from = given(&self.from).map(|d| format!("{d}T00:00:00Z"));
        let to = given(&self.to)
            .and_then(|d| d.parse::<chrono::NaiveDate>().ok())
            .and_then(|d| d.succ_opt())
            .map(|d| format!("{d}T00:00:00Z"));
        body(json!({
            "aggregate_type": given(&self.aggregate_type),
            "aggregate_id": given(&self.aggregate_id),
            "event_type": given(&self.event_type),
            "from": from,
            "to": to,
            "after": after,
            "limit": limit,
        }))
    }

    fn query(&self) -> String {
        url_query(&[
            ("aggregate_type", given(&self.aggregate_type)),
            ("aggregate_id", given(&self.aggregate_id)),
            ("event_type", given(&self.event_type)),
            ("from", given(&self.from)),
            ("to", given(&self.to)),
        ])
    }
}

fn json_accept() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    headers
}

pub async fn search(
    State(app): State<AppState>,
    signed: Signed,
    Query(form): Query<SearchForm>,
) -> ConsoleResult {
    let params = form.params(50, given(&form.after))?;
    let page = json_of(
        audit::audit_events(
            State(app),
            signed.user.clone(),
            json_accept(),
            Query(params),
        )
        .await,
    )
    .await?;
    let events = page["events"].as_array().cloned().unwrap_or_default();
    let query = form.query();
    let organization = &signed.user.organization;
    let body = html! {
        h1 { "Audit events" }
        form.filters method="get" action="/app/audit" role="search" {
            div {
                label for="aggregate_type" { "Kind" }
                select #aggregate_type name="aggregate_type" {
                    option value="" { "Any" }
                    @for kind in ["expense", "receipt", "organization", "policy", "accounting", "webhooks", "email_claim"] {
                        option value=(kind) selected[given(&form.aggregate_type) == Some(kind)] { (kind) }
                    }
                }
            }
            div { label for="event_type" { "Event type" } input #event_type name="event_type" value=[given(&form.event_type)]; }
            div { label for="aggregate_id" { "Id" } input #aggregate_id name="aggregate_id" value=[given(&form.aggregate_id)]; }
            div { label for="from" { "From" } input #from type="date" name="from" value=[given(&form.from)]; }
            div { label for="to" { "To" } input #to type="date" name="to" value=[given(&form.to)]; }
            button type="submit" { "Search" }
        }
        p {
            a.button href={"/app/audit/download?format=csv&" (query)} download { "Download CSV" } " "
            a.button href={"/app/audit/download?format=ndjson&" (query)} download { "Download NDJSON" }
        }
        @if events.is_empty() { p { "No events match." } } @else {
            div.table-wrap {
                table {
                    caption.visually-hidden { "The organization's events in the order they were recorded" }
                    thead { tr { th { "Recorded" } th { "Event" } th { "Of" } th.wide { "Who" } th.wide { "Request" } } }
                    tbody {
                        @for e in &events {
                            tr {
                                td { (view_instant(&e["recorded_at"])) }
                                td { (text(e, "event_type")) }
                                td {
                                    @if text(e, "aggregate_type") == "expense" {
                                        a href={"/app/expenses/" (text(e, "aggregate_id")) "/timeline"} { "expense " (short(text(e, "aggregate_id"))) }
                                    } @else {
                                        (text(e, "aggregate_type")) " " (short(text(e, "aggregate_id")))
                                    }
                                }
                                td.wide { (who(organization, e["actor_id"].as_str().and_then(|a| a.parse().ok()))) }
                                td.wide { code { (e["request_id"].as_str().unwrap_or("—")) } }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(after) = page["next_after"].as_str() {
            nav.pager aria-label="Pages" { a href={"/app/audit?" (query) "&after=" (encode(after))} { "Next page" } }
        }
    };
    Ok(Page::new("Audit", &signed, body).into_response())
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[derive(Deserialize)]
pub struct DownloadForm {
    format: String,
    #[serde(flatten)]
    search: SearchForm,
}

/// Every matching event, as the API streams it (NDJSON), or as CSV (one row per event,
/// the payload as JSON in its last column).
pub async fn download(
    State(app): State<AppState>,
    signed: Signed,
    Query(form): Query<DownloadForm>,
) -> ConsoleResult {
    let (mut response, name) = match form.format.as_str() {
        "ndjson" => {
            let mut accept = HeaderMap::new();
            accept.insert(
                header::ACCEPT,
                HeaderValue::from_static("application/x-ndjson"),
            );
            let params = form.search.params(1000, None)?;
            let response =
                audit::audit_events(State(app), signed.user.clone(), accept, Query(params)).await?;
            (response, "audit-events.ndjson")
        }
        "csv" => {
            let mut csv = String::from(
                "global_position,recorded_at,occurred_at,aggregate_type,aggregate_id,sequence,event_type,actor_id,request_id,payload\n",
            );
            let mut after: Option<String> = None;
            loop {
                let params = form.search.params(1000, after.as_deref())?;
                let page = json_of(
                    audit::audit_events(
                        State(app.clone()),
                        signed.user.clone(),
                        json_accept(),
                        Query(params),
                    )
                    .await,
                )
                .await?;
                for e in page["events"].as_array().into_iter().flatten() {
                    let row = [
                        text(e, "global_position").to_string(),
                        text(e, "recorded_at").to_string(),
                        text(e, "occurred_at").to_string(),
                        text(e, "aggregate_type").to_string(),
                        text(e, "aggregate_id").to_string(),
                        e["sequence"].to_string(),
                        text(e, "event_type").to_string(),
                        text(e, "actor_id").to_string(),
                        text(e, "request_id").to_string(),
                        e["payload"].to_string(),
                    ];
                    let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
                    csv.push_str(&cells.join(","));
                    csv.push('\n');
                }
                match page["next_after"].as_str() {
                    Some(next) => after = Some(next.to_string()),
                    None => break,
                }
            }
            let mut response = Response::new(Body::from(csv));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            (response, "audit-events.csv")
        }
        _ => {
            return Err(ApiError::invalid_field("format", "must be csv or ndjson").into());
        }
    };
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?;
    response
        .headers_mut()
        .insert(header::CONTENT_DISPOSITION, disposition);
    Ok(response)
}

/// One CSV cell (RFC 4180); a cell a spreadsheet would take for a formula is prefixed
/// with an apostrophe so that opening the file runs nothing.
fn csv_cell(text: &str) -> String {
    let safe = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if safe.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", safe.replace('"', "\"\""))
    } else {
        safe
    }
}

pub async fn proof(
    State(app): State<AppState>,
    signed: Signed,
    Path(id): Path<Uuid>,
) -> ConsoleResult {
    let proof = audit::event_proof(
        State(app),
        signed.user,
        Path(id),
        Query(body::<ProofParams>(json!({}))?),
    )
    .await?;
    let mut response = proof.into_response();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"proof-{id}.json\""))
        .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?;
    response
        .headers_mut()
        .insert(header::CONTENT_DISPOSITION, disposition);
    Ok(response)
}
