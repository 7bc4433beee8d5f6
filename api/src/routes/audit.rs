//! The audit log: every event of the organization, straight from the event store.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use expensewise_domain::Role;
use expensewise_infra::event_store::{read_filtered, AuditFilter};
use expensewise_infra::{Database, GlobalPosition, Vault};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::events::EventView;
use crate::error::{ApiError, ApiResult};
use crate::extract::AuthUser;
use crate::state::AppState;

pub const NDJSON: &str = "application/x-ndjson";
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// Events per database round trip while streaming.
const STREAM_PAGE: i64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only events after this global position (`txid.position`, the `next_after` of
    /// the previous page).
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100). Ignored when streaming NDJSON.
    pub limit: Option<i64>,
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub event_type: Option<String>,
    /// Recorded at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before this time.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<EventView>,
    /// Pass as `after` for the next page; `null` when there was no more.
    pub next_after: Option<String>,
}

/// One NDJSON line per event, the format of `GET /v1/audit/events` streams and of
/// `expensewise audit export`.
pub fn ndjson_line(view: &EventView) -> Vec<u8> {
    let mut line = serde_json::to_vec(view).unwrap_or_default();
    line.push(b'\n');
    line
}

/// All matching events after `after`, page by page, as NDJSON.
pub fn ndjson_stream(
    db: Database,
    vault: Vault,
    filter: AuditFilter,
    after: GlobalPosition,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::try_unfold(Some(after), move |cursor| {
        let (db, vault, filter) = (db.clone(), vault.clone(), filter.clone());
        async move {
            let Some(cursor) = cursor else {
                return Ok(None);
            };
            let events = read_filtered(&db, &filter, cursor, STREAM_PAGE)
                .await
                .map_err(std::io::Error::other)?;
            let events = vault
                .open_all(events)
                .await
                .map_err(std::io::Error::other)?;
            let next = (events.len() as i64 == STREAM_PAGE)
                .then(|| events.last().map(|e| e.global))
                .flatten();
            if events.is_empty() {
                return Ok(None);
            }
            let chunk: Vec<u8> = events
                .into_iter()
                .flat_map(|e| ndjson_line(&EventView::new(e)))
                .collect();
            Ok(Some((chunk, next)))
        }
    })
}

/// The organization's events in global order (auditors and admins)
///
/// Read from the event store: always current.
#[utoipa::path(
    get, path = "/v1/audit/events", tag = "audit",
    params(AuditParams, ("Accept" = Option<String>, Header, description = "`application/x-ndjson` streams every matching event, one per line")),
    responses(
        (status = 200, description = "A page of events; with NDJSON, every matching event as one EventView per line",
         content((AuditPage = "application/json"), (String = "application/x-ndjson"))),
        (status = 403, description = "Auditors and admins only"),
        (status = 422, description = "Invalid query"),
    ),
    security(("bearer" = []))
)]
pub async fn audit_events(
    State(app): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Query(params): Query<AuditParams>,
) -> ApiResult<Response> {
    if !matches!(user.actor.role, Role::Auditor | Role::Admin) {
        return Err(ApiError::forbidden(
            "only auditors and admins read the audit log",
        ));
    }
    let after = match params.after.as_deref() {
        None => GlobalPosition::default(),
        Some(a) => a.parse().map_err(|_| {
            ApiError::invalid_field("after", "is not a global position like 1234.56")
        })?,
    };
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let filter = AuditFilter {
        organization_id: Some(user.actor.organization_id.to_string()),
        aggregate_type: params.aggregate_type,
        aggregate_id: params.aggregate_id,
        event_type: params.event_type,
        from: params.from,
        to: params.to,
    };
    let wants_ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(NDJSON));
    if wants_ndjson {
        let body = Body::from_stream(ndjson_stream(
            app.db.clone(),
            app.store.vault().clone(),
            filter,
            after,
        ));
        return Ok((
            [(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON))],
            body,
        )
            .into_response());
    }
    let events = read_filtered(&app.db, &filter, after, limit)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    let next_after = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.global.to_string()))
        .flatten();
    Ok(Json(AuditPage {
        events: EventView::opened(&app, events).await?,
        next_after,
    })
    .into_response())
}
