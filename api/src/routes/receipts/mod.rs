//! Receipts: uploads (`upload`), what OCR read from them, the review queue where a
//! person confirms what OCR was not sure of, and reading them again.

mod email;
pub mod upload;
mod wire;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use expensewise_application::receipts::{self as use_case, ReviewInput};
use expensewise_domain::receipt::{ReceiptState, ScanStatus, AGGREGATE_TYPE};
use expensewise_domain::{Receipt, Role};
use expensewise_infra::event_store::{Committed, Scope};
use expensewise_infra::object_store::Download;
use expensewise_projections::receipts::{self as receipts_model, ReceiptCursor, ReceiptFilter};
use futures::TryStreamExt;
use uuid::Uuid;

pub use email::*;
pub use upload::*;
pub use wire::*;

use super::consistency::ConsistencyToken;
use super::users::page_limit;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, JsonBody, Optimistic, OptionalJsonBody, RequestMeta};
use crate::state::AppState;

/// The receipt if the user may see it: its uploader, or an approver, auditor or admin of
/// its organization.
async fn visible_receipt(
    app: &AppState,
    user: &AuthUser,
    consistency: &ConsistencyToken,
    id: Uuid,
) -> ApiResult<ReceiptState> {
    let organization = user.actor.organization_id;
    let found = consistency
        .read_fresh(
            app,
            user,
            receipts_model::NAME,
            (AGGREGATE_TYPE, &id.to_string()),
            |db| async move { receipts_model::get(&db, organization, id).await },
            |(_, version): &(ReceiptState, u64)| *version,
        )
        .await?;
    match found {
        Some((state, _))
            if state.uploader_id == user.actor.user_id || user.actor.role != Role::Employee =>
        {
            Ok(state)
        }
        _ => Err(ApiError::not_found("no such receipt")),
    }
}

/// One receipt, with what OCR read from it
///
/// Reflects every change to this receipt immediately, yours and other users', with no
/// header needed.
#[utoipa::path(
    get, path = "/v1/receipts/{id}", tag = "receipts",
    params(("id" = Uuid, Path, description = "The receipt's id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Wait also until this write (another user's) is visible; your own are waited for without it")),
    responses(
        (status = 200, description = "The receipt", body = ReceiptView),
        (status = 404, description = "No such receipt (or not yours to see)"),
        (status = 503, description = "The read model has not caught up with your latest write (or the consistency token's) within 5 s"),
    ),
    security(("bearer" = []))
)]
pub async fn get_receipt(
    State(app): State<AppState>,
    user: AuthUser,
    consistency: ConsistencyToken,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ReceiptView>> {
    let state = visible_receipt(&app, &user, &consistency, id).await?;
    Ok(Json(ReceiptView::new(id, &state)))
}

/// The receipt's file
///
/// Reflects every change to this receipt immediately, yours and other users', with no
/// header needed.
#[utoipa::path(
    get, path = "/v1/receipts/{id}/file", tag = "receipts",
    params(("id" = Uuid, Path, description = "The receipt's id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Wait also until this write (another user's) is visible; your own are waited for without it")),
    responses(
        (status = 200, description = "The file, with the type read from its bytes (embedded default: kept on this server)",
         content(
            (FileBytes = "image/png"), (FileBytes = "image/jpeg"), (FileBytes = "image/webp"),
            (FileBytes = "image/tiff"), (FileBytes = "application/pdf"))),
        (status = 302, description = "A presigned link to the file in object storage, valid 5 minutes"),
        (status = 404, description = "No such receipt (or not yours to see)"),
        (status = 410, description = "The file is no longer kept: its retention ended after its uploader was erased"),
    ),
    security(("bearer" = []))
)]
pub async fn get_receipt_file(
    State(app): State<AppState>,
    user: AuthUser,
    consistency: ConsistencyToken,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let state = visible_receipt(&app, &user, &consistency, id).await?;
    match app
        .objects
        .download(&state.storage_key)
        .await
        .map_err(ApiError::internal)?
    {
        Download::Gone => Err(ApiError::gone(
            "the receipt's file is no longer kept: its retention ended",
        )),
        Download::Redirect(url) => {
            let location = HeaderValue::from_str(&url).map_err(|e| ApiError::internal(e.into()))?;
            Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
        }
        Download::File(file) => {
            let body = Body::from_stream(
                tokio_util::io::ReaderStream::new(file).map_err(std::io::Error::other),
            );
            let content_type = HeaderValue::from_str(&state.content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            Ok((
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CONTENT_LENGTH, HeaderValue::from(state.size)),
                ],
                body,
            )
                .into_response())
        }
    }
}

/// Receipts, newest upload first; `status=needs_review` is the review queue
///
/// Employees see their own uploads; approvers, auditors and admins the organization's.
/// Reflects your own changes immediately, with no header needed.
#[utoipa::path(
    get, path = "/v1/receipts", tag = "receipts",
    params(ReceiptListParams, ("X-Consistency-Token" = Option<String>, Header, description = "Wait also until this write (another user's) is visible; your own are waited for without it")),
    responses(
        (status = 200, description = "A page of receipts", body = ReceiptPage),
        (status = 400, description = "A malformed cursor or consistency token"),
        (status = 403, description = "Employees see only their own receipts"),
        (status = 422, description = "Invalid query"),
        (status = 503, description = "The read model has not caught up with your latest write (or the consistency token's) within 5 s"),
    ),
    security(("bearer" = []))
)]
pub async fn list_receipts(
    State(app): State<AppState>,
    user: AuthUser,
    consistency: ConsistencyToken,
    Query(params): Query<ReceiptListParams>,
) -> ApiResult<Json<ReceiptPage>> {
    let limit = page_limit(params.limit)?;
    let uploader_id = if user.actor.role == Role::Employee {
        match params.uploader_id {
            Some(other) if other != user.actor.user_id => {
                return Err(ApiError::forbidden("employees see only their own receipts"))
            }
            _ => Some(user.actor.user_id),
        }
    } else {
        params.uploader_id
    };
    let cursor =
        match params.cursor.as_deref() {
            None => None,
            Some(c) => Some(ReceiptCursor::decode(c).ok_or_else(|| {
                ApiError::invalid_field("cursor", "is not a cursor from this list")
            })?),
        };
    let filter = ReceiptFilter {
        status: params
            .status
            .map(|s| ScanStatus::from(s).as_str().to_string()),
        uploader_id,
    };
    let (organization, filter, cursor) = (user.actor.organization_id, &filter, cursor.as_ref());
    let (rows, next) = consistency
        .read(&app, &user, receipts_model::NAME, |db| async move {
            receipts_model::list(&db, organization, filter, cursor, limit).await
        })
        .await?;
    Ok(Json(ReceiptPage {
        items: rows
            .iter()
            .map(|(id, state)| ReceiptView::new(*id, state))
            .collect(),
        next_cursor: next.map(|c| c.encode()),
    }))
}

fn receipt_response(id: Uuid, committed: &Committed<Receipt>) -> ApiResult<Response> {
    let state = committed
        .aggregate
        .state
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no such receipt"))?;
    Ok((
        StatusCode::OK,
        [super::consistency_header(committed.head)],
        Json(ReceiptView::new(id, state)),
    )
        .into_response())
}

/// Confirm or correct what OCR read (the uploader, an approver or an admin)
///
/// For receipts that need review or failed to scan. Fields left out are confirmed as
/// read. The values become the receipt's; when it was uploaded with
/// `create_expense=true`, its draft expense is made of them (once).
#[utoipa::path(
    post, path = "/v1/receipts/{id}/review", tag = "receipts",
    params(("id" = Uuid, Path, description = "The receipt's id")),
    request_body(content = Option<ReviewRequest>, description = "Empty to confirm every field as read"),
    responses(
        (status = 200, description = "The reviewed receipt", body = ReceiptView,
         headers(("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
        (status = 403, description = "Only the uploader, an approver or an admin reviews"),
        (status = 404, description = "No such receipt in the organization"),
        (status = 409, description = "The receipt does not await review, or was reviewed with other values"),
        (status = 422, description = "Invalid input, or a field nothing was read for is missing"),
    ),
    security(("bearer" = []))
)]
pub async fn review_receipt(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    Path(id): Path<Uuid>,
    OptionalJsonBody(body): OptionalJsonBody<ReviewRequest>,
) -> ApiResult<Response> {
    let input = ReviewInput {
        merchant: body.merchant,
        date: body.date,
        amount: body.amount,
        currency: body.currency,
    };
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let committed = use_case::review(&app.store, &scope, user.actor, &metadata, id, input).await?;
    receipt_response(id, &committed)
}

/// Read a receipt again (the uploader, an approver or an admin)
///
/// For failed, needs-review or scanned receipts, e.g. after an engine upgrade; the
/// receipt is `pending` until OCR has read it. A reviewed receipt keeps its reviewed
/// values, and a receipt never makes a second expense.
#[utoipa::path(
    post, path = "/v1/receipts/{id}/rescan", tag = "receipts",
    params(("id" = Uuid, Path, description = "The receipt's id")),
    request_body(content = Option<super::expenses::EmptyRequest>, description = "Empty or `{}`"),
    responses(
        (status = 202, description = "Queued for OCR", body = ReceiptView,
         headers(("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
        (status = 403, description = "Only the uploader, an approver or an admin asks for a rescan"),
        (status = 404, description = "No such receipt in the organization"),
        (status = 409, description = "A person has reviewed the receipt"),
        (status = 422, description = "A body that is neither empty nor `{}`"),
    ),
    security(("bearer" = []))
)]
pub async fn rescan_receipt(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    Path(id): Path<Uuid>,
    OptionalJsonBody(_body): OptionalJsonBody<super::expenses::EmptyRequest>,
) -> ApiResult<Response> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let committed = use_case::rescan(&app.store, &scope, Some(user.actor), &metadata, id).await?;
    let mut response = receipt_response(id, &committed)?;
    *response.status_mut() = StatusCode::ACCEPTED;
    Ok(response)
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalHoldRequest {
    /// `true` places a hold, `false` releases it.
    pub hold: bool,
    /// Why the receipt is held (required to place a hold; up to 500 characters).
    #[serde(default)]
    pub reason: Option<String>,
}

/// How a receipt's file is kept.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RetentionView {
    pub receipt_id: Uuid,
    /// Kept at least until then (the end of the upload's year plus the retention years);
    /// `null` when receipts are stored without a lock.
    pub retain_until: Option<chrono::DateTime<chrono::Utc>>,
    /// `governance` or `compliance`.
    pub mode: Option<String>,
    pub legal_hold: bool,
}

/// Place or release a legal hold on a receipt (admins and auditors)
///
/// While a hold stands the file is kept whatever its retention date. The file is locked
/// in storage (S3 Object Lock legal hold, or the local store's note) and the history
/// records who did it and why.
#[utoipa::path(
    post, path = "/v1/receipts/{id}/legal-hold", tag = "receipts",
    params(("id" = Uuid, Path, description = "The receipt's id")),
    request_body = LegalHoldRequest,
    responses(
        (status = 200, description = "How the file is kept now", body = RetentionView,
         headers(("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
        (status = 403, description = "Only admins and auditors hold receipts"),
        (status = 404, description = "No such receipt in the organization"),
        (status = 422, description = "A hold without a reason"),
    ),
    security(("bearer" = []))
)]
pub async fn set_legal_hold(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<LegalHoldRequest>,
) -> ApiResult<impl IntoResponse> {
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    // The file is locked outside the store: the request runs once, deciding on what is
    // stored (never an optimistic run that could be made again).
    let hold = use_case::LegalHold {
        on: body.hold,
        reason: body.reason,
    };
    let (committed, lock) = use_case::set_legal_hold(
        &app.store,
        &app.objects,
        &Scope::none(),
        user.actor,
        &metadata,
        id,
        hold,
    )
    .await?;
    Ok((
        [super::consistency_header(committed.head)],
        Json(RetentionView {
            receipt_id: id,
            retain_until: lock.retain_until,
            mode: lock.mode,
            legal_hold: lock.legal_hold,
        }),
    ))
}
