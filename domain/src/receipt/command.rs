use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{Extraction, ReceiptError, ACCEPTED_CONTENT_TYPES};
use crate::actor::Actor;
use crate::money::Money;
use crate::rejection::FieldError;
use crate::validate;

#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub storage_key: String,
    /// The S3 version the file was stored as, where the store keeps versions.
    pub storage_version: Option<String>,
    pub duplicate_of: Option<Uuid>,
    pub expense_id: Option<Uuid>,
    pub create_expense: bool,
    pub fingerprint: Option<super::fingerprint::Fingerprint>,
    /// What the uploader wrote with it (an e-mailed receipt: the message's text); the
    /// draft made of the receipt takes it as its description.
    pub note: Option<String>,
}

/// What a reviewer says the receipt shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewedFields {
    pub merchant: String,
    pub date: NaiveDate,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReceiptCommand {
    RecordUpload {
        actor: Actor,
        upload: Upload,
        at: DateTime<Utc>,
    },
    AttachToExpense {
        actor: Actor,
        expense_id: Uuid,
        at: DateTime<Utc>,
    },
    /// Issued by the OCR worker; redelivered scans record nothing new.
    RecordScan {
        extraction: Extraction,
        at: DateTime<Utc>,
    },
    /// Issued by the OCR worker when the fields named in `doubts` are not sure enough.
    SendToReview {
        extraction: Extraction,
        doubts: Vec<String>,
        at: DateTime<Utc>,
    },
    RecordScanFailure {
        reason: String,
        at: DateTime<Utc>,
    },
    /// The uploader, an approver or an admin confirms or corrects the fields.
    Review {
        actor: Actor,
        fields: ReviewedFields,
        /// The latest date anywhere on Earth: a receipt is not dated after it.
        today: NaiveDate,
        at: DateTime<Utc>,
    },
    /// Read the receipt again; `actor` is `None` for an operator's command line.
    RequestRescan {
        actor: Option<Actor>,
        at: DateTime<Utc>,
    },
    /// An admin or auditor places (with a reason) or releases a legal hold.
    SetLegalHold {
        actor: Actor,
        on: bool,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
}

/// The longest note an upload keeps (an expense's description is as long).
pub const MAX_NOTE: usize = 2000;

pub(super) fn validate_upload(upload: &Upload) -> Result<(), ReceiptError> {
    let mut errors = Vec::new();
    if !ACCEPTED_CONTENT_TYPES.contains(&upload.content_type.as_str()) {
        errors.push(FieldError::new(
            "file",
            format!("{} is not a receipt file type", upload.content_type),
        ));
    }
    if upload.size == 0 {
        errors.push(FieldError::new("file", "is empty"));
    }
    let hex = upload.sha256.len() == 64
        && upload
            .sha256
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    if !hex {
        errors.push(FieldError::new(
            "sha256",
            "must be 64 lower-case hex digits",
        ));
    }
    if upload.storage_key.is_empty() {
        errors.push(FieldError::new("storage_key", "must not be empty"));
    }
    if let Some(note) = &upload.note {
        if let Err(e) = crate::validate::optional_text("note", note, MAX_NOTE) {
            errors.push(e);
        }
    }
    if upload.create_expense && upload.expense_id.is_some() {
        errors.push(FieldError::new(
            "create_expense",
            "cannot be combined with expense_id",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ReceiptError::Invalid(errors))
    }
}

/// The reviewed fields as they will be recorded: a merchant that an expense accepts, and
/// no date after `today`.
pub(super) fn validate_review(
    fields: ReviewedFields,
    today: NaiveDate,
) -> Result<ReviewedFields, ReceiptError> {
    let mut errors = Vec::new();
    let merchant = validate::required_text("merchant", &fields.merchant, 200)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    if fields.date > today {
        errors.push(FieldError::new("date", "must not be in the future"));
    }
    if errors.is_empty() {
        Ok(ReviewedFields { merchant, ..fields })
    } else {
        Err(ReceiptError::Invalid(errors))
    }
}
