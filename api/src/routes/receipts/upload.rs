//! Receipt uploads: multipart, streamed to a temporary file while their digest and size
//! are taken, typed by their bytes, then handed to the upload use case.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use expensewise_application::receipts::{self as use_case, NewReceipt, StagedFile};
use expensewise_domain::receipt::{sniff_content_type, SNIFF_LEN};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::wire::ReceiptView;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, RequestMeta};
use crate::state::AppState;

/// Streams the file part to a staged file, taking its size, digest and type.
async fn receive_file(app: &AppState, field: &mut multer::Field<'static>) -> ApiResult<StagedFile> {
    let limit = app.config.limits.receipt_bytes;
    let dir = app.config.data_dir.join("uploads");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    let mut staged = StagedFile::new(dir.join(Uuid::new_v4().to_string()));
    let path = staged
        .path()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a new staged file has no path")))?;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(SNIFF_LEN);
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| ApiError::bad_request(format!("the upload was cut short: {e}")))?
    {
        staged.size += chunk.len() as u64;
        if staged.size > limit {
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
    staged.sha256 = format!("{:x}", hasher.finalize());
    staged.content_type = sniff_content_type(&head);
    Ok(staged)
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

/// Namespace of key-derived receipt ids (see [`crate::routes::id_for_request`]).
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

async fn field_text(field: multer::Field<'static>) -> ApiResult<String> {
    field
        .text()
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Upload a receipt
#[utoipa::path(
    post, path = "/v1/receipts", tag = "receipts",
    request_body(content = super::wire::UploadForm, content_type = "multipart/form-data"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key names the same receipt")),
    responses(
        (status = 202, description = "Stored; OCR reads it next", body = ReceiptView,
         headers(("X-Consistency-Token" = String, description = "Pass to queries to read this write"), ("Location" = String))),
        (status = 400, description = "A malformed multipart body"),
        (status = 403, description = "Auditors cannot upload receipts"),
        (status = 404, description = "No such expense of yours"),
        (status = 409, description = "The expense can no longer take receipts"),
        (status = 413, description = "Larger than the limit (10 MiB by default)"),
        (status = 415, description = "Not a PNG, JPEG, WebP, TIFF or PDF file"),
        (status = 422, description = "Invalid input (missing or empty file, bad fields), or an Idempotency-Key used before for another file"),
    ),
    security(("bearer" = []))
)]
pub async fn upload_receipt(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    request: Request,
) -> ApiResult<Response> {
    // Before the body is read: an auditor's file is never received.
    use_case::may_upload(&user.actor)?;
    let headers = request.headers().clone();
    let boundary = boundary(&headers)?;
    let stream = request.into_body().into_data_stream();
    let mut form = multer::Multipart::new(stream, boundary);
    let mut received = None;
    let mut expense_id = None;
    let mut create_expense = false;
    let mut note = None;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("a malformed multipart body: {e}")))?
    {
        match field.name().unwrap_or_default() {
            "file" if received.is_some() => {
                return Err(ApiError::invalid_field("file", "send one file per receipt"))
            }
            "file" => received = Some(receive_file(&app, &mut field).await?),
            "expense_id" => {
                let text = field_text(field).await?;
                expense_id =
                    Some(Uuid::parse_str(text.trim()).map_err(|_| {
                        ApiError::invalid_field("expense_id", "is not an expense id")
                    })?);
            }
            "create_expense" => create_expense = parse_flag(&field_text(field).await?)?,
            "note" => note = Some(field_text(field).await?),
            other => {
                return Err(ApiError::invalid_field(
                    other,
                    "is not a field of a receipt upload",
                ))
            }
        }
    }
    let file = received.ok_or_else(|| ApiError::invalid_field("file", "is required"))?;
    if file.size == 0 {
        return Err(ApiError::invalid_field("file", "is empty"));
    }
    if file.content_type.is_none() {
        return Err(ApiError::unsupported_media_type(
            "the file is not a PNG, JPEG, WebP, TIFF or PDF (told by its bytes, not its name)",
        ));
    }
    let new = NewReceipt {
        id: crate::routes::id_for_request(RECEIPT_IDS, user.actor.user_id, &headers),
        file,
        expense_id,
        create_expense,
        note,
    };
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let uploaded = use_case::upload(
        &app.store,
        &app.objects,
        &app.db,
        user.actor,
        &metadata,
        new,
    )
    .await?;
    let mut response = (
        StatusCode::ACCEPTED,
        [crate::routes::consistency_header(uploaded.head)],
        Json(ReceiptView::new(uploaded.id, &uploaded.receipt)),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/receipts/{}", uploaded.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}
