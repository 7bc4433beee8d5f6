//! Receipts by e-mail: the mail front-end posts each message it takes for the
//! organization (docs/receipts-by-email.md).

use axum::body::{to_bytes, Body};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use expensewise_application::email_receipts::{self as use_case, Mailroom, Received};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::wire::ReceiptView;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, RequestMeta};
use crate::state::AppState;

/// The largest message taken: a few receipts of the largest size.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EmailParams {
    /// Once read, make a draft expense of each receipt.
    #[serde(default)]
    pub create_expense: bool,
}

/// The raw message, as documented for OpenAPI.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct RawMessage(pub Vec<u8>);

#[derive(Debug, Serialize, ToSchema)]
pub struct EmailReceipts {
    /// The member the message came from, whose receipts these are.
    pub sender_id: Uuid,
    /// The message's `Message-ID`: a message posted again makes nothing new.
    pub message_id: String,
    /// One per image or PDF attached, in their order.
    pub receipts: Vec<ReceiptView>,
}

/// Take a forwarded e-mail's receipts
///
/// The body is the raw message (RFC 5322, `message/rfc822`; `application/octet-stream`
/// is taken too, as some mail services send it), sent with an admin's token
/// by the mail front-end. Its sender (`From`) must be an active member of the
/// organization who records expenses; each PNG, JPEG, WebP, TIFF or PDF attached becomes
/// a receipt of theirs, read by OCR as an upload is. Posted again, the same message
/// (its `Message-ID`) makes nothing new. A message from anyone else, or without such an
/// attachment, is refused with 422 and its sender told by mail.
#[utoipa::path(
    post, path = "/v1/receipts/email", tag = "receipts",
    params(EmailParams),
    request_body(content(
        (RawMessage = "message/rfc822"),
        (RawMessage = "application/octet-stream"),
    )),
    responses(
        (status = 202, description = "Stored; OCR reads each receipt next", body = EmailReceipts),
        (status = 400, description = "Not an e-mail message"),
        (status = 403, description = "Only an admin's token forwards e-mail"),
        (status = 413, description = "Larger than 64 MiB"),
        (status = 415, description = "Not sent as message/rfc822 (or application/octet-stream)"),
        (status = 422, description = "An unknown sender, no receipt attached, or an attachment over the receipt size limit"),
    ),
    security(("bearer" = []))
)]
pub async fn email_receipts(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    headers: HeaderMap,
    Query(params): Query<EmailParams>,
    body: Body,
) -> ApiResult<impl IntoResponse> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = media.trim().to_ascii_lowercase();
    if !["message/rfc822", "application/octet-stream"]
        .iter()
        .any(|taken| media.starts_with(taken))
    {
        return Err(ApiError::unsupported_media_type(
            "send the raw message as message/rfc822 (or application/octet-stream)",
        ));
    }
    let raw = to_bytes(body, MAX_MESSAGE_BYTES)
        .await
        .map_err(|_| ApiError::payload_too_large(MAX_MESSAGE_BYTES))?;
    let message = use_case::read_message(&raw)
        .ok_or_else(|| ApiError::bad_request("the body is not an e-mail message with a sender"))?;
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let room = Mailroom {
        store: &app.store,
        objects: &app.objects,
        db: &app.db,
        staging: &app.config.data_dir.join("uploads"),
        max_bytes: app.config.limits.receipt_bytes,
    };
    let message_id = message.message_id.clone();
    let reply_to = (message.from.clone(), message.subject.clone());
    match use_case::receive(&room, user.actor, &metadata, message, params.create_expense).await? {
        Received::Taken { sender, receipts } => Ok((
            StatusCode::ACCEPTED,
            [super::super::consistency_header(
                receipts.iter().filter_map(|r| r.head).max(),
            )],
            Json(EmailReceipts {
                sender_id: sender.user_id,
                message_id,
                receipts: receipts
                    .iter()
                    .map(|r| ReceiptView::new(r.id, &r.receipt))
                    .collect(),
            }),
        )),
        Received::Refused(refusal) => {
            tell_sender(
                &app,
                &reply_to.0,
                &reply_to.1,
                &message_id,
                refusal.explain(),
            )
            .await;
            let field = match refusal {
                use_case::Refusal::UnknownSender => "from",
                use_case::Refusal::NoReceipts => "attachments",
            };
            Err(ApiError::invalid_field(field, refusal.explain()))
        }
    }
}

/// Mails the sender why their message was not taken. A sender the mail server refuses
/// is only logged: the refusal stands either way.
async fn tell_sender(app: &AppState, to: &str, subject: &str, message_id: &str, why: &str) {
    let Ok(address) = to.parse() else {
        tracing::info!(to, "a refused message's sender has no address to answer");
        return;
    };
    let text = format!(
        "Your message \"{subject}\" was not taken as receipts: {why}.\n\n\
         Send receipts from the address you sign in with, with each receipt attached as \
         an image or a PDF."
    );
    let mail = expensewise_workers::email::letter(
        lettre::message::Mailbox::new(None, address),
        format!("Not taken as receipts: {subject}"),
        text,
        format!(
            "refused.{}@expensewise",
            Uuid::new_v5(&Uuid::NAMESPACE_OID, message_id.as_bytes())
        ),
    );
    if let Err(e) = app.mailer.send(&mail).await {
        tracing::warn!(error = %e, "could not tell a sender their message was refused");
    }
}
