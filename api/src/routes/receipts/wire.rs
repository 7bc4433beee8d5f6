//! What receipts look like on the wire.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use expensewise_domain::receipt::{ReceiptState, ScanStatus};
use expensewise_domain::Money;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// Waiting for OCR (after upload or a rescan).
    Pending,
    /// Read with confidence.
    Scanned,
    /// Read, but a person is to confirm the total, date or currency
    /// (`POST /v1/receipts/{id}/review`).
    NeedsReview,
    /// A person confirmed or corrected the fields.
    Reviewed,
    /// Could not be read.
    Failed,
}

impl From<ScanStatus> for ReceiptStatus {
    fn from(s: ScanStatus) -> Self {
        match s {
            ScanStatus::Pending => Self::Pending,
            ScanStatus::Scanned => Self::Scanned,
            ScanStatus::NeedsReview => Self::NeedsReview,
            ScanStatus::Reviewed => Self::Reviewed,
            ScanStatus::Failed => Self::Failed,
        }
    }
}

impl From<ReceiptStatus> for ScanStatus {
    fn from(s: ReceiptStatus) -> Self {
        match s {
            ReceiptStatus::Pending => Self::Pending,
            ReceiptStatus::Scanned => Self::Scanned,
            ReceiptStatus::NeedsReview => Self::NeedsReview,
            ReceiptStatus::Reviewed => Self::Reviewed,
            ReceiptStatus::Failed => Self::Failed,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyView {
    /// Decimal string, e.g. `"12.30"`.
    pub amount: String,
    pub currency: String,
}

impl From<Money> for MoneyView {
    fn from(m: Money) -> Self {
        Self {
            amount: m.amount_string(),
            currency: m.currency().code().to_string(),
        }
    }
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

/// A person's word on the receipt's fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    pub reviewer_id: Uuid,
    pub merchant: String,
    pub date: NaiveDate,
    pub total: MoneyView,
    pub reviewed_at: DateTime<Utc>,
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
    pub uploader_id: Uuid,
    /// Whether a draft expense is made of the receipt once its fields are settled.
    pub create_expense: bool,
    pub extracted: Option<ExtractedView>,
    /// With `needs_review`: the fields OCR is not sure of (`total`, `date`, `currency`).
    pub doubts: Vec<String>,
    pub review: Option<ReviewView>,
    pub failure_reason: Option<String>,
    pub uploaded_at: DateTime<Utc>,
    pub scanned_at: Option<DateTime<Utc>>,
    /// Under a legal hold: kept whatever its retention date.
    pub legal_hold: bool,
}

impl ReceiptView {
    pub fn new(id: Uuid, s: &ReceiptState) -> Self {
        Self {
            id,
            status: s.status.into(),
            content_type: s.content_type.clone(),
            size: s.size,
            sha256: s.sha256.clone(),
            duplicate_of: s.duplicate_of,
            expense_id: s.expense_id,
            uploader_id: s.uploader_id,
            create_expense: s.create_expense,
            extracted: s.extraction.as_ref().map(|e| ExtractedView {
                merchant: e.merchant.clone(),
                date: e.date,
                total: e.total.map(MoneyView::from),
                tax: e.tax.clone(),
                text: e.text.clone(),
                confidence: e.confidence.clone(),
            }),
            doubts: s.doubts.clone(),
            review: s.review.as_ref().map(|r| ReviewView {
                reviewer_id: r.reviewer_id,
                merchant: r.merchant.clone(),
                date: r.date,
                total: r.total.into(),
                reviewed_at: r.reviewed_at,
            }),
            failure_reason: s.failure_reason.clone(),
            uploaded_at: s.uploaded_at,
            scanned_at: s.scanned_at,
            legal_hold: s.legal_hold,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptPage {
    pub items: Vec<ReceiptView>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReceiptListParams {
    /// `needs_review` is the review queue.
    pub status: Option<ReceiptStatus>,
    /// Only this user's uploads (employees always see only their own).
    pub uploader_id: Option<Uuid>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(
        pattern = r"^[0-9]{1,16}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    pub cursor: Option<String>,
}

/// What the receipt says, as the reviewer sees it. A field left out is confirmed as
/// read; a receipt with nothing read for a field needs it given.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_required_text::<200>)]
    pub merchant: Option<String>,
    /// Not after today.
    #[serde(default)]
    pub date: Option<NaiveDate>,
    /// A positive decimal string, e.g. "12.34".
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_amount)]
    pub amount: Option<String>,
    /// An ISO 4217 code.
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_currency)]
    pub currency: Option<String>,
}

// Documented as binary, not as an array of numbers, so that generated clients hand the
// bytes over as a file.
/// The file's bytes, as they were uploaded.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(pub Vec<u8>);

/// The multipart form of an upload, as documented for OpenAPI.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadForm {
    /// PNG, JPEG, WebP, TIFF or PDF; the type is read from the bytes.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// Attach the receipt to this draft (or rejected) expense of yours.
    #[schema(required = false)]
    pub expense_id: Uuid,
    /// `true`: once scanned, the receipt becomes a draft expense pre-filled from what
    /// was read (after a person's review when OCR is not sure).
    #[schema(required = false)]
    pub create_expense: bool,
    /// What the receipt was for (at most 2000 characters): the draft's description.
    #[schema(required = false, schema_with = crate::schemas::text::<2000>)]
    pub note: String,
}
