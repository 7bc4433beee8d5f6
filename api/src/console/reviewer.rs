//! What approvers do: the queue of expenses awaiting them, oldest first, and their
//! decisions (from the queue or an expense's page, by mouse or keyboard).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::employee::{body, given, status_badge, wire_name};
use super::{csrf_field, day, instant, money, CheckedForm, ConsoleResult, Page, Signed};
use crate::extract::{IfMatch, JsonBody, Optimistic, OptionalJsonBody, RequestMeta};
use crate::routes::approvals::{self, QueueParams};
use crate::routes::consistency::ConsistencyToken;
use crate::routes::expenses;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct QueueForm {
    cursor: Option<String>,
}

pub async fn queue(
    State(app): State<AppState>,
    signed: Signed,
    Query(form): Query<QueueForm>,
) -> ConsoleResult {
    let params: QueueParams = body(json!({ "limit": 50, "cursor": given(&form.cursor) }))?;
    let page = approvals::approvals(
        State(app),
        signed.user.clone(),
        ConsistencyToken(None),
        Query(params),
    )
    .await?
    .0;
    let body = html! {
        h1 { "Approvals" }
        p.kbd-help { "Keys: j and k move, o opens, a approves, r rejects (type the reason, then Enter)." }
        @if page.items.is_empty() {
            p role="status" { "Nothing is waiting for you." }
        } @else {
            div.table-wrap {
                table data-shortcuts {
                    caption.visually-hidden { "Expenses awaiting your decision, oldest first" }
                    thead { tr {
                        th { "Submitted" } th { "Merchant" } th.num { "Amount" } th.wide { "Policy" } th { "Decide" }
                    } }
                    tbody {
                        @for e in &page.items {
                            tr tabindex="-1" data-href={"/app/expenses/" (e.id)} {
                                td {
                                    @match &e.submitted_at { Some(at) => (instant(at)), None => (day(&e.spent_on)) }
                                }
                                td { a href={"/app/expenses/" (e.id)} { (e.merchant) } " " (status_badge(&wire_name(&e.status))) }
                                td.num {
                                    @match (&e.base_amount, &e.base_currency) {
                                        (Some(amount), Some(currency)) => (money(amount, currency)),
                                        _ => (money(&e.amount, &e.currency)),
                                    }
                                }
                                td.wide {
                                    @if e.violations.is_empty() { "—" } @else {
                                        ul.violations { @for v in &e.violations { li class=(wire_name(&v.level)) { (v.message) } } }
                                    }
                                }
                                td { (decision_forms(&signed, &e.id.to_string(), true)) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(cursor) = &page.next_cursor {
            nav.pager aria-label="Pages" { a href={"/app/approvals?cursor=" (super::employee::encode(cursor))} { "Next page" } }
        }
    };
    Ok(Page::new("Approvals", &signed, body).into_response())
}

/// The approve and reject forms of expense `id`; from the queue they come back to it.
pub fn decision_forms(signed: &Signed, id: &str, from_queue: bool) -> Markup {
    let back = if from_queue { "queue" } else { "expense" };
    html! {
        div.actions {
            form.approve method="post" action={"/app/expenses/" (id) "/approve"} {
                (csrf_field(signed))
                input type="hidden" name="back" value=(back);
                @if !from_queue {
                    div.field { label for="comment" { "Comment (optional)" } input #comment name="comment" maxlength="2000"; }
                }
                button type="submit" { "Approve" }
            }
            form.reject method="post" action={"/app/expenses/" (id) "/reject"} {
                (csrf_field(signed))
                input type="hidden" name="back" value=(back);
                div.field {
                    label for={"reason-" (id)} { "Reason to reject" }
                    input id={"reason-" (id)} name="reason" required maxlength="2000";
                }
                button.danger type="submit" { "Reject" }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct DecisionForm {
    back: Option<String>,
    comment: Option<String>,
    reason: Option<String>,
}

fn back_to(form: &DecisionForm, id: Uuid) -> Redirect {
    match form.back.as_deref() {
        Some("queue") => Redirect::to("/app/approvals"),
        _ => Redirect::to(&format!("/app/expenses/{id}")),
    }
}

pub async fn approve(
    State(app): State<AppState>,
    signed: Signed,
    meta: RequestMeta,
    optimistic: Optimistic,
    Path(id): Path<Uuid>,
    CheckedForm(form): CheckedForm<DecisionForm>,
) -> ConsoleResult {
    let request = body(json!({ "comment": given(&form.comment) }))?;
    expenses::approve_expense(
        State(app),
        signed.user,
        meta,
        optimistic,
        IfMatch(None),
        Path(id),
        OptionalJsonBody(request),
    )
    .await?;
    Ok(back_to(&form, id).into_response())
}

pub async fn reject(
    State(app): State<AppState>,
    signed: Signed,
    meta: RequestMeta,
    optimistic: Optimistic,
    Path(id): Path<Uuid>,
    CheckedForm(form): CheckedForm<DecisionForm>,
) -> ConsoleResult {
    let request = body(json!({ "reason": given(&form.reason).unwrap_or_default() }))?;
    expenses::reject_expense(
        State(app),
        signed.user,
        meta,
        optimistic,
        IfMatch(None),
        Path(id),
        JsonBody(request),
    )
    .await?;
    Ok(back_to(&form, id).into_response())
}
