//! Receipt files: uploaded as multipart, streamed to a temporary file while their digest
//! and size are taken, typed by their bytes, then kept in object storage.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use expensewise_domain::expense::{Context, ExpenseCommand};
use expensewise_domain::receipt::{
    sniff_content_type, ReceiptCommand, ReceiptError, ReceiptState, ScanStatus, Upload,
    AGGREGATE_TYPE, SNIFF_LEN,
};
use expensewise_domain::{Expense, Receipt, Role};
use expensewise_infra::event_store::CommandError;
use expensewise_infra::object_store::{receipt_key, Download};
use expensewise_projections::receipts as receipts_model;
use futures::TryStreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;
use uuid::Uuid;

use super::consistency::ConsistencyToken;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AuthUser, RequestMeta};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Pending,
    Scanned,
    Failed,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyView {
    /// Decimal string, e.g. `"12.30"`.
    pub amount: String,
    pub currency: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExtractedView {
    pub merchant: Option<String>,
    pub date: Option<NaiveDate>,
    pub total: Option<MoneyView>,
    pub tax: Option<String>,
    pub text: String,
    /// Per field, in [0, 1].
    pub confidence: BTreeMap<String, f32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptView {
    pub id: Uuid,
    pub status: ReceiptStatus,
    /// Decided from the file's bytes.
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    /// An earlier receipt of the organization with the same bytes.
    pub duplicate_of: Option<Uuid>,
    pub expense_id: Option<Uuid>,
    pub extracted: Option<ExtractedView>,
    pub failure_reason: Option<String>,
    pub uploaded_at: DateTime<Utc>,
    pub scanned_at: Option<DateTime<Utc>>,
}

impl ReceiptView {
    fn new(id: Uuid, s: &ReceiptState) -> Self {
        Self {
            id,
            status: match s.status {
                ScanStatus::Pending => ReceiptStatus::Pending,
                ScanStatus::Scanned => ReceiptStatus::Scanned,
                ScanStatus::Failed => ReceiptStatus::Failed,
            },
            content_type: s.content_type.clone(),
            size: s.size,
            sha256: s.sha256.clone(),
            duplicate_of: s.duplicate_of,
            expense_id: s.expense_id,
            extracted: s.extraction.as_ref().map(|e| ExtractedView {
                merchant: e.merchant.clone(),
                date: e.date,
                total: e.total.map(|m| MoneyView {
                    amount: m.amount_string(),
                    currency: m.currency().code().to_string(),
                }),
                tax: e.tax.clone(),
                text: e.text.clone(),
                confidence: e.confidence.clone(),
            }),
            failure_reason: s.failure_reason.clone(),
            uploaded_at: s.uploaded_at,
            scanned_at: s.scanned_at,
        }
    }
}

/// The multipart form of an upload, as documented for OpenAPI.
#[derive(ToSchema)]
pub struct UploadForm {
    /// PNG, JPEG, WebP, TIFF or PDF; the type is read from the bytes.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// Attach the receipt to this draft (or rejected) expense of yours.
    pub expense_id: Option<Uuid>,
    /// `true`: once scanned, the receipt becomes a draft expense pre-filled from what
    /// was read.
    pub create_expense: Option<bool>,
}

/// A file being received: where it is, and what is known of it so far.
struct Received {
    path: std::path::PathBuf,
    size: u64,
    sha256: String,
    content_type: Option<&'static str>,
}

/// Removes the temporary file unless it was handed on to storage.
struct TempFile(Option<std::path::PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn receive_file(
    app: &AppState,
    field: &mut multer::Field<'static>,
    temp: &mut TempFile,
) -> ApiResult<Received> {
    let limit = app.config.receipt_max_bytes;
    let dir = app.config.data_dir.join("uploads");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    let path = dir.join(Uuid::new_v4().to_string());
    temp.0 = Some(path.clone());
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut head = Vec::with_capacity(SNIFF_LEN);
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| ApiError::bad_request(format!("the upload was cut short: {e}")))?
    {
        size += chunk.len() as u64;
        if size > limit {
            return Err(ApiError::payload_too_large(
                usize::try_from(limit).unwrap_or(usize::MAX),
            ));
        }
        if head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal(e.into()))?;
    }
    file.flush()
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    Ok(Received {
        path,
        size,
        sha256: format!("{:x}", hasher.finalize()),
        content_type: sniff_content_type(&head),
    })
}

fn boundary(headers: &HeaderMap) -> ApiResult<String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    multer::parse_boundary(content_type).map_err(|_| {
        ApiError::unsupported_media_type(
            "send the receipt as multipart/form-data with a `file` part",
        )
    })
}

/// Namespace of key-derived receipt ids (see [`super::id_for_request`]).
const RECEIPT_IDS: Uuid = Uuid::from_u128(0x61c2_9e04_5b7d_4a3e_8f12_d0a6_3c9b_71e5);

fn parse_flag(text: &str) -> ApiResult<bool> {
    match text.trim() {
        "true" | "1" | "on" => Ok(true),
        "false" | "0" | "off" | "" => Ok(false),
        _ => Err(ApiError::invalid_field(
            "create_expense",
            "must be true or false",
        )),
    }
}

/// Upload a receipt
#[utoipa::path(
    post, path = "/v1/receipts", tag = "receipts",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key names the same receipt")),
    responses(
        (status = 202, description = "Stored; OCR reads it next", body = ReceiptView,
         headers(("X-Consistency-Token" = String, description = "Pass to queries to read this write"), ("Location" = String))),
        (status = 400, description = "A malformed multipart body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Auditors cannot upload receipts", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such expense of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The expense can no longer take receipts", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than the limit (10 MiB by default)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a PNG, JPEG, WebP, TIFF or PDF file", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input (missing or empty file, bad fields)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn upload_receipt(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    request: Request,
) -> ApiResult<Response> {
    if !user.actor.role.may_record_expenses() {
        return Err(ApiError::forbidden("auditors cannot upload receipts"));
    }
    let headers = request.headers().clone();
    let boundary = boundary(&headers)?;
    let stream = request.into_body().into_data_stream();
    let mut form = multer::Multipart::new(stream, boundary);
    let mut temp = TempFile(None);
    let mut received = None;
    let mut expense_id = None;
    let mut create_expense = false;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("a malformed multipart body: {e}")))?
    {
        match field.name().unwrap_or_default() {
            "file" if received.is_some() => {
                return Err(ApiError::invalid_field("file", "send one file per receipt"))
            }
            "file" => received = Some(receive_file(&app, &mut field, &mut temp).await?),
            "expense_id" => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                expense_id =
                    Some(Uuid::parse_str(text.trim()).map_err(|_| {
                        ApiError::invalid_field("expense_id", "is not an expense id")
                    })?);
            }
            "create_expense" => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                create_expense = parse_flag(&text)?;
            }
            other => {
                return Err(ApiError::invalid_field(
                    other,
                    "is not a field of a receipt upload",
                ))
            }
        }
    }
    let received = received.ok_or_else(|| ApiError::invalid_field("file", "is required"))?;
    if received.size == 0 {
        return Err(ApiError::invalid_field("file", "is empty"));
    }
    let content_type = received.content_type.ok_or_else(|| {
        ApiError::unsupported_media_type(
            "the file is not a PNG, JPEG, WebP, TIFF or PDF (told by its bytes, not its name)",
        )
    })?;
    if create_expense && expense_id.is_some() {
        return Err(ApiError::invalid_field(
            "create_expense",
            "cannot be combined with expense_id",
        ));
    }
    if let Some(expense_id) = expense_id {
        let expense: Expense = app.store.load(&expense_id.to_string()).await?;
        let owned = expense
            .visible_to(&user.actor)
            .filter(|s| s.owner_id == user.actor.user_id)
            .ok_or_else(|| ApiError::not_found("no such expense of yours"))?;
        if !owned.status.editable() {
            return Err(ApiError::conflict(format!(
                "a {} expense takes no more receipts",
                owned.status.as_str()
            )));
        }
    }

    let organization_id = user.actor.organization_id;
    let duplicate_of =
        receipts_model::first_with_digest(&app.db, organization_id, &received.sha256)
            .await
            .map_err(ApiError::internal)?;
    let id = super::id_for_request(RECEIPT_IDS, user.actor.user_id, &headers);
    let key = receipt_key(organization_id, id);
    let metadata = meta.metadata(organization_id, Some(user.actor.user_id));
    let command = ReceiptCommand::RecordUpload {
        actor: user.actor,
        upload: Upload {
            content_type: content_type.to_string(),
            size: received.size,
            sha256: received.sha256.clone(),
            storage_key: key.clone(),
            duplicate_of: duplicate_of.filter(|d| *d != id),
            expense_id,
            create_expense,
        },
        at: Utc::now(),
    };
    // The file is stored before the event that points at it is written: an event never
    // names a file that is not there. (A crash in between leaves an unreferenced file.)
    app.objects
        .put_file(&key, &received.path, content_type)
        .await
        .map_err(ApiError::internal)?;
    temp.0 = None;
    let committed = match app
        .store
        .execute::<Receipt>(&id.to_string(), command, &metadata)
        .await
    {
        // A retry with the same key: answer with the receipt the first attempt made.
        Err(CommandError::Rejected(ReceiptError::AlreadyExists)) => {
            let existing = app.store.current::<Receipt>(&id.to_string()).await?;
            let uploader = existing
                .aggregate
                .visible_to(&user.actor)
                .map(|s| s.uploader_id);
            if uploader != Some(user.actor.user_id) {
                return Err(ApiError::conflict("the receipt already exists"));
            }
            existing
        }
        other => other?,
    };
    let mut head = committed.head;
    if let (Some(expense_id), 1..) = (expense_id, committed.appended) {
        let attach = ExpenseCommand::AttachReceipt {
            ctx: Context {
                actor: user.actor,
                at: Utc::now(),
                expected_version: None,
            },
            receipt_id: id,
        };
        head = app
            .store
            .execute::<Expense>(&expense_id.to_string(), attach, &metadata)
            .await?
            .head;
    }
    let state = committed
        .aggregate
        .state
        .as_ref()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a stored receipt has no state")))?;
    let mut response = (
        StatusCode::ACCEPTED,
        [super::consistency_header(head)],
        Json(ReceiptView::new(id, state)),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/receipts/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The receipt if the user may see it: its uploader, or an approver, auditor or admin of
/// its organization.
async fn visible_receipt(
    app: &AppState,
    user: &AuthUser,
    consistency: &ConsistencyToken,
    id: Uuid,
) -> ApiResult<ReceiptState> {
    consistency.wait(app, user, receipts_model::NAME).await?;
    let read = || async {
        receipts_model::get(&app.db, user.actor.organization_id, id)
            .await
            .map_err(ApiError::internal)
    };
    let found = super::consistency::read_fresh(
        app,
        receipts_model::NAME,
        AGGREGATE_TYPE,
        &id.to_string(),
        read,
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
        (status = 401, description = "Missing, invalid or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such receipt (or not yours to see)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model has not caught up with your latest write (or the consistency token's) within 5 s", body = Problem, content_type = "application/problem+json"),
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
            (Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/webp"),
            (Vec<u8> = "image/tiff"), (Vec<u8> = "application/pdf"))),
        (status = 302, description = "A presigned link to the file in object storage, valid 5 minutes"),
        (status = 401, description = "Missing, invalid or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such receipt (or not yours to see)", body = Problem, content_type = "application/problem+json"),
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
