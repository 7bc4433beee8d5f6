//! Webhook endpoints (admins; docs/webhooks.md): where the organization's events are
//! sent, their signing secrets, the delivery log, resending and a test ping.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use expensewise_application::webhooks::{self as use_cases, NewEndpoint};
use expensewise_domain::webhook::{Endpoint, EndpointChange, Webhooks, EVENT_TYPES};
use expensewise_domain::Role;
use expensewise_infra::webhooks::{self as stored, Attempt, Delivery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::users::page_limit;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, JsonBody, Optimistic, RequestMeta};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where messages are posted: an `http` or `https` URL (internal addresses are
    /// refused when sending unless `WEBHOOK_ALLOW_PRIVATE` allows them).
    #[schema(schema_with = crate::schemas::http_url)]
    pub url: String,
    /// What it is for, as admins will recognise it (at most 200 characters).
    #[serde(default)]
    #[schema(schema_with = crate::schemas::text::<200>)]
    pub description: String,
    /// The event types sent (`GET /v1/webhooks/event-types`), each once; every type
    /// when empty.
    #[serde(default)]
    #[schema(schema_with = crate::schemas::event_types)]
    pub event_types: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWebhookRequest {
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_http_url)]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_text::<200>)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_event_types)]
    pub event_types: Option<Vec<String>>,
    /// Off: nothing is sent, and what was waiting is given up; on again: events from
    /// then on are sent.
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// How long the secrets before keep signing beside the new one, 0 to 604800
    /// (default 86400: a day to switch receivers over).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604800)]
    pub overlap_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    pub created_at: DateTime<Utc>,
    /// When it stops signing (a newer secret replaced it); none while it is the newest.
    pub valid_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why the product turned it off, when it did.
    pub disabled_reason: Option<String>,
    /// The secrets that sign, newest last (never the secrets themselves).
    pub secrets: Vec<SecretView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    /// The signing secret (`whsec_…`), shown this once: give it to the receiver.
    pub secret: String,
    #[serde(flatten)]
    pub webhook: WebhookView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    /// The new secret (`whsec_…`), shown this once.
    pub secret: String,
    /// Until when the secrets before it still sign beside it.
    pub previous_valid_until: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeList {
    /// Every event type an endpoint can ask for. Messages of type `ping` come from the
    /// test operation only and are sent whatever the endpoint asks for.
    pub items: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Retries ran out, or the endpoint was turned off or removed meanwhile.
    Failed,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: Uuid,
    /// The message's `webhook-id`: the event's id, the same on every attempt.
    pub event_id: Uuid,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub state: DeliveryState,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// While pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last answer, if there was one.
    pub last_status: Option<i32>,
    pub last_latency_ms: Option<i32>,
    /// Why the last attempt got no answer (refused address, timeout, …).
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub sent_at: DateTime<Utc>,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<AttemptView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PingView {
    /// The ping's `webhook-id`.
    pub message_id: String,
    /// Whether the receiver answered 2xx.
    pub delivered: bool,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(format = Uuid)]
    pub cursor: Option<String>,
}

fn view(id: Uuid, endpoint: &Endpoint) -> WebhookView {
    WebhookView {
        id,
        url: endpoint.url.clone(),
        description: endpoint.description.clone(),
        event_types: endpoint.event_types.clone(),
        enabled: endpoint.enabled,
        disabled_reason: endpoint.disabled_reason.clone(),
        secrets: endpoint
            .secrets
            .iter()
            .map(|s| SecretView {
                created_at: s.created_at,
                valid_until: s.valid_until,
            })
            .collect(),
        created_at: endpoint.created_at,
        updated_at: endpoint.updated_at,
    }
}

fn delivery_view(d: Delivery) -> DeliveryView {
    DeliveryView {
        id: d.id,
        event_id: d.event_id,
        event_type: d.event_type,
        aggregate_type: d.aggregate_type,
        aggregate_id: d.aggregate_id,
        state: match d.state.as_str() {
            stored::PENDING => DeliveryState::Pending,
            stored::DELIVERED => DeliveryState::Delivered,
            _ => DeliveryState::Failed,
        },
        attempts: d.attempts,
        created_at: d.created_at,
        first_attempt_at: d.first_attempt_at,
        next_attempt_at: d.next_attempt_at,
        finished_at: d.finished_at,
        last_status: d.last_status,
        last_latency_ms: d.last_latency_ms,
        last_error: d.last_error,
    }
}

fn attempt_view(a: Attempt) -> AttemptView {
    AttemptView {
        sent_at: a.sent_at,
        status: a.status,
        latency_ms: a.latency_ms,
        error: a.error,
    }
}

/// The organization's endpoints, for an admin.
async fn endpoints(app: &AppState, user: &AuthUser) -> ApiResult<Webhooks> {
    if user.actor.role != Role::Admin {
        return Err(ApiError::forbidden("only admins manage webhooks"));
    }
    Ok(use_cases::endpoints(&app.store, user.actor.organization_id).await?)
}

/// One endpoint of the organization, for an admin.
async fn endpoint(app: &AppState, user: &AuthUser, id: Uuid) -> ApiResult<Endpoint> {
    endpoints(app, user)
        .await?
        .endpoints
        .remove(&id)
        .ok_or_else(|| ApiError::not_found("no such webhook endpoint"))
}

/// The event types an endpoint can ask for
#[utoipa::path(
    get, path = "/v1/webhooks/event-types", tag = "webhooks",
    responses((status = 200, description = "Every deliverable event type", body = EventTypeList)),
    security(("bearer" = []))
)]
pub async fn event_types(_user: AuthUser) -> Json<EventTypeList> {
    Json(EventTypeList {
        items: EVENT_TYPES.iter().map(|t| t.to_string()).collect(),
    })
}

/// Add a webhook endpoint
///
/// Messages follow Standard Webhooks 1.0: `webhook-id` (the event's id, the same on
/// every retry), `webhook-timestamp` and `webhook-signature` headers; the body is
/// `{"type", "timestamp", "data"}`, `data` being the event. A message is sent once the
/// read models show its event.
#[utoipa::path(
    post, path = "/v1/webhooks", tag = "webhooks",
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "The endpoint, with its signing secret shown this once", body = CreatedWebhook),
        (status = 403, description = "Only admins manage webhooks"),
        (status = 409, description = "The organization has the most endpoints it may keep (20)"),
        (status = 422, description = "An invalid URL, description or event type"),
    ),
    security(("bearer" = []))
)]
pub async fn create_webhook(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    JsonBody(body): JsonBody<CreateWebhookRequest>,
) -> ApiResult<impl IntoResponse> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let added = use_cases::add_endpoint(
        &app.store,
        &scope,
        user.actor,
        &metadata,
        NewEndpoint {
            url: body.url,
            description: body.description,
            event_types: body.event_types,
        },
    )
    .await?;
    let endpoint = added
        .committed
        .aggregate
        .endpoints
        .get(&added.endpoint_id)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the added endpoint is missing")))?;
    Ok((
        StatusCode::CREATED,
        [super::consistency_header(added.committed.head)],
        Json(CreatedWebhook {
            secret: added.secret,
            webhook: view(added.endpoint_id, endpoint),
        }),
    ))
}

/// The organization's webhook endpoints
#[utoipa::path(
    get, path = "/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "Every endpoint, never its secrets", body = WebhookList),
        (status = 403, description = "Only admins manage webhooks"),
    ),
    security(("bearer" = []))
)]
pub async fn list_webhooks(
    State(app): State<AppState>,
    user: AuthUser,
) -> ApiResult<Json<WebhookList>> {
    let webhooks = endpoints(&app, &user).await?;
    Ok(Json(WebhookList {
        items: webhooks
            .endpoints
            .iter()
            .map(|(id, e)| view(*id, e))
            .collect(),
    }))
}

/// One webhook endpoint
#[utoipa::path(
    get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookView),
        (status = 403, description = "Only admins manage webhooks"),
        (status = 404, description = "No such endpoint"),
    ),
    security(("bearer" = []))
)]
pub async fn get_webhook(
    State(app): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<WebhookView>> {
    Ok(Json(view(id, &endpoint(&app, &user, id).await?)))
}

/// Change a webhook endpoint, or turn it off or on
#[utoipa::path(
    patch, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    request_body = PatchWebhookRequest,
    responses(
        (status = 200, description = "The endpoint after the change", body = WebhookView),
        (status = 403, description = "Only admins manage webhooks"),
        (status = 404, description = "No such endpoint"),
        (status = 409, description = "A concurrent change won"),
        (status = 422, description = "An invalid URL, description or event type"),
    ),
    security(("bearer" = []))
)]
pub async fn patch_webhook(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<PatchWebhookRequest>,
) -> ApiResult<impl IntoResponse> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let change = EndpointChange {
        url: body.url,
        description: body.description,
        event_types: body.event_types,
        enabled: body.enabled,
    };
    let committed =
        use_cases::change_endpoint(&app.store, &scope, user.actor, &metadata, id, change).await?;
    let endpoint = committed
        .aggregate
        .endpoints
        .get(&id)
        .ok_or_else(|| ApiError::not_found("no such webhook endpoint"))?;
    Ok((
        [super::consistency_header(committed.head)],
        Json(view(id, endpoint)),
    ))
}

/// Remove a webhook endpoint
///
/// Nothing more is sent to it; what was waiting is given up.
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Only admins manage webhooks"),
        (status = 404, description = "No such endpoint"),
        (status = 409, description = "A concurrent change won"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_webhook(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    Path(id): Path<Uuid>,
) -> ApiResult<impl IntoResponse> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let committed =
        use_cases::remove_endpoint(&app.store, &scope, user.actor, &metadata, id).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [super::consistency_header(committed.head)],
    ))
}

/// Rotate an endpoint's signing secret
///
/// The new secret signs from now on; the ones before keep signing beside it for the
/// overlap, so each message carries a signature the receiver's old secret verifies and
/// one its new secret does.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    request_body = RotateSecretRequest,
    responses(
        (status = 200, description = "The new secret, shown this once", body = RotatedSecret),
        (status = 403, description = "Only admins manage webhooks"),
        (status = 404, description = "No such endpoint"),
        (status = 409, description = "A concurrent change won"),
        (status = 422, description = "An overlap out of range"),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_secret(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<RotateSecretRequest>,
) -> ApiResult<impl IntoResponse> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let overlap = Duration::seconds(body.overlap_seconds.unwrap_or(86_400));
    let rotated =
        use_cases::rotate_secret(&app.store, &scope, user.actor, &metadata, id, overlap).await?;
    let previous_valid_until = rotated
        .committed
        .aggregate
        .endpoints
        .get(&id)
        .and_then(|e| e.secrets.iter().rev().nth(1))
        .and_then(|s| s.valid_until)
        .unwrap_or_else(Utc::now);
    Ok((
        [super::consistency_header(rotated.committed.head)],
        Json(RotatedSecret {
            secret: rotated.secret,
            previous_valid_until,
        }),
    ))
}

/// Send a test ping
///
/// Posts a signed `ping` message to the endpoint at once, whether it is on or off, and
/// answers what the receiver said.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/test", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "What the receiver answered (or why it could not be asked)", body = PingView),
        (status = 403, description = "Only admins manage webhooks"),
        (status = 404, description = "No such endpoint"),
    ),
    security(("bearer" = []))
)]
pub async fn test_webhook(
    State(app): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<PingView>> {
    let endpoint = endpoint(&app, &user, id).await?;
    let ping = expensewise_workers::webhooks::ping(&app.db, &app.config.webhooks, id, &endpoint)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(PingView {
        message_id: ping.message_id,
        delivered: matches!(ping.attempt.status, Some(200..=299)),
        status: ping.attempt.status,
        latency_ms: ping.attempt.latency_ms,
        error: ping.attempt.error,
    }))
}

/// An endpoint's delivery log
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint's id"), DeliveryParams),
    responses(
        (status = 200, description = "Deliveries, newest first", body = DeliveryPage),
        (status = 403, description = "Only admins manage webhooks"),
        (status = 404, description = "No such endpoint"),
        (status = 422, description = "Invalid query"),
    ),
    security(("bearer" = []))
)]
pub async fn list_deliveries(
    State(app): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Query(params): Query<DeliveryParams>,
) -> ApiResult<Json<DeliveryPage>> {
    endpoint(&app, &user, id).await?;
    let limit = page_limit(params.limit)?;
    let before = match params.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            Uuid::parse_str(c)
                .map_err(|_| ApiError::invalid_field("cursor", "is not a cursor from this list"))?,
        ),
    };
    let mut rows = stored::list(&app.db, id, before, limit as i64)
        .await
        .map_err(ApiError::internal)?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|d| d.id.to_string())
    } else {
        None
    };
    Ok(Json(DeliveryPage {
        items: rows.into_iter().map(delivery_view).collect(),
        next_cursor,
    }))
}

/// One delivery, with every attempt at it
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries/{delivery_id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint's id"), ("delivery_id" = Uuid, Path, description = "The delivery's id")),
    responses(
        (status = 200, description = "The delivery and its attempts", body = DeliveryDetail),
        (status = 403, description = "Only admins manage webhooks"),
        (status = 404, description = "No such endpoint or delivery"),
    ),
    security(("bearer" = []))
)]
pub async fn get_delivery(
    State(app): State<AppState>,
    user: AuthUser,
    Path((id, delivery_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<DeliveryDetail>> {
    endpoint(&app, &user, id).await?;
    let (delivery, attempts) = stored::find(&app.db, id, delivery_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("no such delivery"))?;
    Ok(Json(DeliveryDetail {
        delivery: delivery_view(delivery),
        attempt_log: attempts.into_iter().map(attempt_view).collect(),
    }))
}

/// Send a delivery again
///
/// As soon as possible, with the same `webhook-id`, whatever became of it before; its
/// retries count from now.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/deliveries/{delivery_id}/resend", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint's id"), ("delivery_id" = Uuid, Path, description = "The delivery's id")),
    responses(
        (status = 202, description = "It will be sent again"),
        (status = 403, description = "Only admins manage webhooks"),
        (status = 404, description = "No such endpoint or delivery"),
        (status = 409, description = "The endpoint is off: turn it on first"),
    ),
    security(("bearer" = []))
)]
pub async fn resend_delivery(
    State(app): State<AppState>,
    user: AuthUser,
    Path((id, delivery_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let endpoint = endpoint(&app, &user, id).await?;
    if !endpoint.enabled {
        return Err(ApiError::conflict("the endpoint is off: turn it on first"));
    }
    match stored::resend(&app.db, id, delivery_id)
        .await
        .map_err(ApiError::internal)?
    {
        true => Ok(StatusCode::ACCEPTED),
        false => Err(ApiError::not_found("no such delivery")),
    }
}
