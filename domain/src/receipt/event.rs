use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::fingerprint::Fingerprint;
use uuid::Uuid;

use super::Extraction;
use crate::money::Money;

pub const RECEIPT_UPLOADED: &str = "ReceiptUploaded";
pub const RECEIPT_ATTACHED: &str = "ReceiptAttached";
pub const RECEIPT_SCANNED: &str = "ReceiptScanned";
pub const RECEIPT_SENT_TO_REVIEW: &str = "ReceiptSentToReview";
pub const RECEIPT_SCAN_FAILED: &str = "ReceiptScanFailed";
pub const RECEIPT_REVIEWED: &str = "ReceiptReviewed";
pub const RECEIPT_RESCAN_REQUESTED: &str = "ReceiptRescanRequested";
pub const RECEIPT_LEGAL_HOLD_SET: &str = "ReceiptLegalHoldSet";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ReceiptEvent {
    ReceiptUploaded {
        organization_id: Uuid,
        uploader_id: Uuid,
        content_type: String,
        size: u64,
        sha256: String,
        storage_key: String,
        /// The S3 version of the file as stored (version 2.0; none in a local directory,
        /// and in 1.0 events): what retention and legal holds apply to.
        #[serde(default)]
        storage_version: Option<String>,
        duplicate_of: Option<Uuid>,
        expense_id: Option<Uuid>,
        create_expense: bool,
        /// The image's fingerprint (3.0; none for PDFs, and in earlier events).
        #[serde(default)]
        fingerprint: Option<Fingerprint>,
        /// What the uploader wrote with it (4.0; personal: sealed for the uploader).
        #[serde(default)]
        note: Option<String>,
        uploaded_at: DateTime<Utc>,
    },
    ReceiptAttached {
        expense_id: Uuid,
        attached_at: DateTime<Utc>,
    },
    ReceiptScanned {
        extraction: Extraction,
        scanned_at: DateTime<Utc>,
    },
    /// OCR read the receipt but is not sure enough of the fields named in `doubts` for
    /// an expense to be made of them unseen.
    ReceiptSentToReview {
        extraction: Extraction,
        doubts: Vec<String>,
        scanned_at: DateTime<Utc>,
    },
    ReceiptScanFailed {
        reason: String,
        failed_at: DateTime<Utc>,
    },
    /// A person confirmed or corrected what the receipt says: these values are the
    /// receipt's from now on, and next to the extraction they are labelled data.
    ReceiptReviewed {
        reviewer_id: Uuid,
        merchant: String,
        date: NaiveDate,
        total: Money,
        reviewed_at: DateTime<Utc>,
    },
    /// The receipt is to be read again (after an engine upgrade, or a failure). No
    /// `requested_by` means an operator's command line.
    ReceiptRescanRequested {
        requested_by: Option<Uuid>,
        requested_at: DateTime<Utc>,
    },
    /// An admin or auditor placed (`on`) or released a legal hold: while it holds, the
    /// file is kept whatever its retention date.
    ReceiptLegalHoldSet {
        on: bool,
        reason: Option<String>,
        set_by: Uuid,
        set_at: DateTime<Utc>,
    },
}

impl DomainEvent for ReceiptEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ReceiptUploaded { .. } => RECEIPT_UPLOADED,
            Self::ReceiptAttached { .. } => RECEIPT_ATTACHED,
            Self::ReceiptScanned { .. } => RECEIPT_SCANNED,
            Self::ReceiptSentToReview { .. } => RECEIPT_SENT_TO_REVIEW,
            Self::ReceiptScanFailed { .. } => RECEIPT_SCAN_FAILED,
            Self::ReceiptReviewed { .. } => RECEIPT_REVIEWED,
            Self::ReceiptRescanRequested { .. } => RECEIPT_RESCAN_REQUESTED,
            Self::ReceiptLegalHoldSet { .. } => RECEIPT_LEGAL_HOLD_SET,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            // 2.0 added `storage_version`, 3.0 `fingerprint`; earlier payloads read
            // without them.
            Self::ReceiptUploaded { .. } => "4.0",
            _ => "1.0",
        }
        .to_string()
    }
}
