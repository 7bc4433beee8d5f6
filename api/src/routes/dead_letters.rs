//! The events workers gave up on: admins list and inspect their organization's, and
//! retry or discard each (`expensewise_application::dead_letters`). Operators have the
//! same on the command line (`expensewise dead-letters`), for every organization.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use expensewise_application::dead_letters as use_case;
use expensewise_domain::organization::DeadLetterSettlement;
use expensewise_infra::dead_letters::{self, DeadLetter, Filter, Status};
use expensewise_infra::event_store::event_at;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::events::EventView;
use super::users::page_limit;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, JsonBody, RequestMeta};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterStatus {
    /// Waiting for someone to decide.
    Open,
    /// A retry was asked for: the worker tries it once more within about a second.
    Retrying,
    /// The retry worked.
    Retried,
    /// Set aside for good.
    Discarded,
}

impl DeadLetterStatus {
    fn of(status: Status) -> Self {
        match status {
            Status::Open => Self::Open,
            Status::Retrying => Self::Retrying,
            Status::Retried => Self::Retried,
            Status::Discarded => Self::Discarded,
        }
    }

    fn status(self) -> Status {
        match self {
            Self::Open => Status::Open,
            Self::Retrying => Status::Retrying,
            Self::Retried => Status::Retried,
            Self::Discarded => Status::Discarded,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterView {
    /// The worker that gave the event up (`ocr`, `email`, `webhooks`, …).
    pub worker: String,
    pub event_id: Uuid,
    pub global_position: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    /// The last attempt's error.
    pub error: String,
    pub failed_at: DateTime<Utc>,
    pub status: DeadLetterStatus,
    /// How many times the worker gave it up.
    pub attempts: i64,
    pub settled_at: Option<DateTime<Utc>>,
    pub discard_reason: Option<String>,
}

impl DeadLetterView {
    pub fn new(letter: DeadLetter) -> Self {
        Self {
            worker: letter.worker,
            event_id: letter.event_id,
            global_position: letter.global_position,
            aggregate_type: letter.aggregate_type,
            aggregate_id: letter.aggregate_id,
            sequence: letter.sequence,
            event_type: letter.event_type,
            error: letter.error,
            failed_at: letter.failed_at,
            status: DeadLetterStatus::of(letter.status),
            attempts: letter.attempts,
            settled_at: letter.settled_at,
            discard_reason: letter.discard_reason,
        }
    }
}

/// One dead letter with the event it is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterDetail {
    #[serde(flatten)]
    pub letter: DeadLetterView,
    /// The event as the audit API gives it; none if it is no longer in the store.
    pub event: Option<EventView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterParams {
    pub status: Option<DeadLetterStatus>,
    /// Only this worker's.
    pub worker: Option<String>,
    /// At most this many (1–500, 50 by default).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscardRequest {
    /// Why it is set aside (recorded in the organization's history).
    #[schema(schema_with = crate::schemas::required_text::<1000>)]
    pub reason: String,
}

/// The organization's dead letters, latest failure first
#[utoipa::path(
    get, path = "/v1/admin/dead-letters", tag = "operations",
    params(DeadLetterParams),
    responses(
        (status = 200, description = "Events workers gave up on, of this organization", body = Vec<DeadLetterView>),
        (status = 403, description = "Admins only"),
        (status = 422, description = "Invalid query"),
    ),
    security(("bearer" = []))
)]
pub async fn list_dead_letters(
    State(app): State<AppState>,
    user: AuthUser,
    Query(params): Query<DeadLetterParams>,
) -> ApiResult<Json<Vec<DeadLetterView>>> {
    use_case::require_admin(&user.actor)?;
    let limit = page_limit(params.limit)?;
    Ok(Json(
        list(&app, &user, params.status, params.worker, limit).await?,
    ))
}

/// The organization's dead letters, for the API and the console.
pub async fn list(
    app: &AppState,
    user: &AuthUser,
    status: Option<DeadLetterStatus>,
    worker: Option<String>,
    limit: usize,
) -> ApiResult<Vec<DeadLetterView>> {
    let filter = Filter {
        organization_id: Some(user.actor.organization_id),
        status: status.map(DeadLetterStatus::status),
        worker,
    };
    Ok(dead_letters::list(&app.db, &filter, limit)
        .await?
        .into_iter()
        .map(DeadLetterView::new)
        .collect())
}

/// One dead letter, with its event
#[utoipa::path(
    get, path = "/v1/admin/dead-letters/{worker}/{event_id}", tag = "operations",
    params(("worker" = String, Path, description = "The worker that gave it up"),
           ("event_id" = Uuid, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The dead letter and the event", body = DeadLetterDetail),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such dead letter in this organization"),
    ),
    security(("bearer" = []))
)]
pub async fn get_dead_letter(
    State(app): State<AppState>,
    user: AuthUser,
    Path((worker, event_id)): Path<(String, Uuid)>,
) -> ApiResult<Json<DeadLetterDetail>> {
    Ok(Json(detail(&app, &user, &worker, event_id).await?))
}

pub async fn detail(
    app: &AppState,
    user: &AuthUser,
    worker: &str,
    event_id: Uuid,
) -> ApiResult<DeadLetterDetail> {
    let letter = use_case::visible(&app.store, Some(&user.actor), worker, event_id).await?;
    let stored = event_at(
        &app.db,
        &letter.aggregate_type,
        &letter.aggregate_id,
        letter.sequence,
    )
    .await
    .map_err(|e| ApiError::internal(e.into()))?;
    let event = match stored {
        Some(event) => EventView::opened(app, vec![event.upcast()]).await?.pop(),
        None => None,
    };
    Ok(DeadLetterDetail {
        letter: DeadLetterView::new(letter),
        event,
    })
}

/// Have the worker try the event once more
///
/// Recorded as the organization's `DeadLetterRetried` event. The worker tries within about
/// a second: the dead letter is then `retried`, or `open` again with the new error.
#[utoipa::path(
    post, path = "/v1/admin/dead-letters/{worker}/{event_id}/retry", tag = "operations",
    params(("worker" = String, Path, description = "The worker that gave it up"),
           ("event_id" = Uuid, Path, description = "The event's id")),
    responses(
        (status = 200, description = "Retrying", body = DeadLetterView),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such dead letter in this organization"),
        (status = 409, description = "It is not open (retrying, retried or discarded already)"),
    ),
    security(("bearer" = []))
)]
pub async fn retry_dead_letter(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Path((worker, event_id)): Path<(String, Uuid)>,
) -> ApiResult<(HeaderMap, Json<DeadLetterView>)> {
    settle(
        &app,
        &user,
        &meta,
        &worker,
        event_id,
        DeadLetterSettlement::Retry,
    )
    .await
}

/// Set the event aside for good
///
/// Recorded, with the reason, as the organization's `DeadLetterDiscarded` event.
#[utoipa::path(
    post, path = "/v1/admin/dead-letters/{worker}/{event_id}/discard", tag = "operations",
    params(("worker" = String, Path, description = "The worker that gave it up"),
           ("event_id" = Uuid, Path, description = "The event's id")),
    request_body = DiscardRequest,
    responses(
        (status = 200, description = "Discarded", body = DeadLetterView),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such dead letter in this organization"),
        (status = 409, description = "It is not open (retrying, retried or discarded already)"),
        (status = 422, description = "No reason, or an invalid one"),
    ),
    security(("bearer" = []))
)]
pub async fn discard_dead_letter(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Path((worker, event_id)): Path<(String, Uuid)>,
    JsonBody(body): JsonBody<DiscardRequest>,
) -> ApiResult<(HeaderMap, Json<DeadLetterView>)> {
    let reason = use_case::discard_reason(&body.reason)?;
    settle(
        &app,
        &user,
        &meta,
        &worker,
        event_id,
        DeadLetterSettlement::Discard { reason },
    )
    .await
}

/// Retries or discards as the signed-in admin, for the API and the console.
pub async fn settle(
    app: &AppState,
    user: &AuthUser,
    meta: &RequestMeta,
    worker: &str,
    event_id: Uuid,
    settlement: DeadLetterSettlement,
) -> ApiResult<(HeaderMap, Json<DeadLetterView>)> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let (letter, committed) = use_case::settle(
        &app.store,
        Some(&user.actor),
        &metadata,
        worker,
        event_id,
        settlement,
    )
    .await?;
    let mut headers = HeaderMap::new();
    if let Some(committed) = committed {
        let (name, value) = super::consistency_header(committed.head);
        headers.insert(name, value);
    }
    Ok((headers, Json(DeadLetterView::new(letter))))
}
