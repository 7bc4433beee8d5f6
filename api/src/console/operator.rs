//! What admins operate: the read models (where each stands, rebuilds with their progress
//! and checksum verdict), the workers (how far behind, redeliveries) and the dead letters
//! they left (inspect, retry, discard — each recorded in the organization's history).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use expensewise_application::dead_letters as use_case;
use expensewise_domain::organization::DeadLetterSettlement;
use expensewise_infra::{checkpoints, nats};
use expensewise_projections::status;
use maud::html;
use serde::de::IgnoredAny;
use serde::Deserialize;
use uuid::Uuid;

use super::employee::{status_badge, wire_name};
use super::{csrf_field, instant, pre, CheckedForm, ConsoleResult, Page, Signed};
use crate::error::ApiError;
use crate::routes::admin::{self, RebuildVerdict};
use crate::routes::dead_letters::{self, DeadLetterStatus};
use crate::state::AppState;

/// A worker as the operations page shows it.
struct WorkerView {
    name: String,
    /// Events it has yet to look at.
    pending: Option<u64>,
    /// Messages handed out and not yet acknowledged (JetStream only).
    in_flight: Option<u64>,
    redelivered: Option<u64>,
}

async fn workers(app: &AppState) -> Result<Vec<WorkerView>, ApiError> {
    let internal = |e: sqlx::Error| ApiError::internal(e.into());
    if let Some(client) = &app.nats {
        let js = async_nats::jetstream::new(client.clone());
        let mut views = Vec::new();
        if let Ok(stream) = js.get_stream(nats::STREAM).await {
            for name in ["ocr", "receipt-expenses", "email"] {
                if let Ok(info) = stream.consumer_info(format!("worker-{name}")).await {
                    views.push(WorkerView {
                        name: name.to_string(),
                        pending: Some(info.num_pending),
                        in_flight: u64::try_from(info.num_ack_pending).ok(),
                        redelivered: u64::try_from(info.num_redelivered).ok(),
                    });
                }
            }
        }
        return Ok(views);
    }
    let mut views = Vec::new();
    for (name, position) in checkpoints::starting_with(&app.db, "worker.")
        .await
        .map_err(internal)?
    {
        let pending = status::events_after(&app.db, position)
            .await
            .map_err(internal)?;
        views.push(WorkerView {
            name: name.trim_start_matches("worker.").to_string(),
            pending: u64::try_from(pending).ok(),
            in_flight: None,
            redelivered: None,
        });
    }
    Ok(views)
}

pub async fn overview(State(app): State<AppState>, signed: Signed) -> ConsoleResult {
    use_case::require_admin(&signed.user.actor).map_err(ApiError::from)?;
    let projections = admin::projections(&app).await?;
    let workers = workers(&app).await?;
    let letters = dead_letters::list(&app, &signed.user, None, None, 100).await?;
    let rebuilding = projections.iter().any(|p| {
        p.last_rebuild
            .as_ref()
            .is_some_and(|r| r.verdict == RebuildVerdict::Running)
    });
    let body = html! {
        h1 { "Operations" }
        section aria-labelledby="models" {
            h2 #models { "Read models" }
            div.table-wrap { table {
                thead { tr { th { "Read model" } th.num { "Position" } th.num { "Lag" } th { "Status" } th { "Last rebuild" } th { "Rebuild" } } }
                tbody {
                    @for p in &projections {
                        tr {
                            td { (p.name) }
                            td.num { (p.position) }
                            td.num { (p.lag) }
                            td {
                                (status_badge(&wire_name(&p.status)))
                                @if let (Some(error), Some(at)) = (&p.last_error, &p.last_error_at) {
                                    br; span.error { "failing since " (instant(at)) ": " (error) }
                                }
                            }
                            td {
                                @match &p.last_rebuild {
                                    None => "—",
                                    Some(r) => {
                                        @if r.verdict == RebuildVerdict::Running {
                                            label for={"progress-" (p.name)} { (r.applied) " of about " (r.total) " events" }
                                            progress id={"progress-" (p.name)} max=(r.total.max(1)) value=(r.applied) {}
                                        } @else {
                                            (status_badge(&wire_name(&r.verdict))) " "
                                            @if let Some(at) = &r.finished_at { (instant(at)) }
                                            @if let Some(sum) = &r.checksum { br; small { "checksum " code { (sum.get(..16).unwrap_or(sum)) } } }
                                            @if let Some(error) = &r.error { br; span.error { (error) } }
                                        }
                                    }
                                }
                            }
                            td {
                                form method="post" action={"/app/operations/projections/" (p.name) "/rebuild"} {
                                    (csrf_field(&signed))
                                    button.secondary type="submit" aria-label={"Rebuild " (p.name)} disabled[rebuilding] { "Rebuild" }
                                }
                            }
                        }
                    }
                }
            } }
        }
        section aria-labelledby="workers" {
            h2 #workers { "Workers" }
            @if workers.is_empty() { p { "No worker has started yet." } } @else {
                div.table-wrap { table {
                    thead { tr { th { "Worker" } th.num { "Waiting events" } th.num { "In flight" } th.num { "Redelivered" } } }
                    tbody { @for w in &workers { tr {
                        td { (w.name) }
                        td.num { (w.pending.map_or("—".to_string(), |n| n.to_string())) }
                        td.num { (w.in_flight.map_or("—".to_string(), |n| n.to_string())) }
                        td.num { (w.redelivered.map_or("—".to_string(), |n| n.to_string())) }
                    } } }
                } }
            }
        }
        section aria-labelledby="letters" {
            h2 #letters { "Dead letters" }
            @if letters.is_empty() { p { "No worker gave up on any event." } } @else {
                div.table-wrap { table {
                    thead { tr { th { "Failed" } th { "Worker" } th { "Event" } th { "Status" } th.wide { "Error" } } }
                    tbody { @for l in &letters { tr {
                        td { (instant(&l.failed_at)) }
                        td { (l.worker) }
                        td { a href={"/app/operations/dead-letters/" (l.worker) "/" (l.event_id)} { (l.event_type) } }
                        td { (status_badge(&wire_name(&l.status))) }
                        td.wide { (l.error.chars().take(120).collect::<String>()) }
                    } } }
                } }
            }
        }
    };
    Ok(Page::new("Operations", &signed, body)
        .refreshing(
            rebuilding
                || letters
                    .iter()
                    .any(|l| l.status == DeadLetterStatus::Retrying),
        )
        .into_response())
}

pub async fn rebuild(
    State(app): State<AppState>,
    signed: Signed,
    Path(name): Path<String>,
    _: CheckedForm<IgnoredAny>,
) -> ConsoleResult {
    use_case::require_admin(&signed.user.actor).map_err(ApiError::from)?;
    admin::start_rebuild(&app, &name).await?;
    Ok(Redirect::to("/app/operations").into_response())
}

pub async fn dead_letter(
    State(app): State<AppState>,
    signed: Signed,
    Path((worker, event_id)): Path<(String, Uuid)>,
) -> ConsoleResult {
    let detail = dead_letters::detail(&app, &signed.user, &worker, event_id).await?;
    let letter = &detail.letter;
    let action = format!("/app/operations/dead-letters/{worker}/{event_id}");
    let body = html! {
        h1 { "Dead letter " (status_badge(&wire_name(&letter.status))) }
        dl.facts.card {
            dt { "Worker" } dd { (letter.worker) }
            dt { "Event" } dd { (letter.event_type) " #" (letter.sequence) " of " (letter.aggregate_type) " " code { (letter.aggregate_id) } }
            dt { "Failed" } dd { (instant(&letter.failed_at)) " (" (letter.attempts) " time" @if letter.attempts != 1 { "s" } ")" }
            dt { "Error" } dd { (pre(&letter.error)) }
            @if let Some(reason) = &letter.discard_reason { dt { "Discarded because" } dd { (reason) } }
        }
        @if letter.status == DeadLetterStatus::Open {
            div.actions {
                form method="post" action={(action) "/retry"} {
                    (csrf_field(&signed))
                    button type="submit" { "Retry" }
                }
                form method="post" action={(action) "/discard"} {
                    (csrf_field(&signed))
                    div.field { label for="reason" { "Reason to discard" } input #reason name="reason" required maxlength="1000"; }
                    button.danger type="submit" { "Discard" }
                }
            }
        }
        @if let Some(event) = &detail.event {
            h2 { "The event" }
            (pre(&serde_json::to_string_pretty(&event.payload).unwrap_or_default()))
        }
        p { a href="/app/operations" { "Back to operations" } }
    };
    Ok(Page::new("Dead letter", &signed, body)
        .refreshing(letter.status == DeadLetterStatus::Retrying)
        .into_response())
}

pub async fn retry(
    State(app): State<AppState>,
    signed: Signed,
    meta: crate::extract::RequestMeta,
    Path((worker, event_id)): Path<(String, Uuid)>,
    _: CheckedForm<IgnoredAny>,
) -> ConsoleResult {
    settle(
        &app,
        &signed,
        &meta,
        (worker, event_id),
        DeadLetterSettlement::Retry,
    )
    .await
}

#[derive(Deserialize)]
pub struct DiscardForm {
    reason: String,
}

pub async fn discard(
    State(app): State<AppState>,
    signed: Signed,
    meta: crate::extract::RequestMeta,
    Path((worker, event_id)): Path<(String, Uuid)>,
    CheckedForm(form): CheckedForm<DiscardForm>,
) -> ConsoleResult {
    let reason = use_case::discard_reason(&form.reason).map_err(ApiError::from)?;
    let settlement = DeadLetterSettlement::Discard { reason };
    settle(&app, &signed, &meta, (worker, event_id), settlement).await
}

/// Settles the dead letter as the API does, then shows it again.
async fn settle(
    app: &AppState,
    signed: &Signed,
    meta: &crate::extract::RequestMeta,
    (worker, event_id): (String, Uuid),
    settlement: DeadLetterSettlement,
) -> ConsoleResult {
    let _settled =
        dead_letters::settle(app, &signed.user, meta, &worker, event_id, settlement).await?;
    Ok(Redirect::to(&format!("/app/operations/dead-letters/{worker}/{event_id}")).into_response())
}
