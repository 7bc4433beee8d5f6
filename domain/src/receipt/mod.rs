//! A receipt file and what OCR read from it. The file itself lives in object storage;
//! the aggregate records its facts (type, size, digest, where it is) and the scan result.

mod command;
mod error;
mod event;
pub mod fingerprint;
mod items;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use command::{ReceiptCommand, ReviewedFields, Upload, MAX_NOTE};
pub use error::ReceiptError;
pub use event::*;
pub use items::lists_items;

use crate::actor::{Actor, Role};
use crate::money::Money;
use crate::rejection::FieldError;
use crate::validate;

pub const AGGREGATE_TYPE: &str = "receipt";

/// The file types receipts come in, decided from the bytes, never from a client header.
pub const ACCEPTED_CONTENT_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/tiff",
    "application/pdf",
];

/// Bytes enough to recognise every accepted file type.
pub const SNIFF_LEN: usize = 12;

/// The type of a receipt file, from its first bytes (at least [`SNIFF_LEN`] when the file
/// has them); `None` for anything that is not one of [`ACCEPTED_CONTENT_TYPES`].
pub fn sniff_content_type(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        Some("image/tiff")
    } else if head.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanStatus {
    Pending,
    Scanned,
    /// Read, but a person is to confirm the total, date or currency first.
    NeedsReview,
    /// A person confirmed or corrected the fields.
    Reviewed,
    Failed,
}

impl ScanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Scanned => "scanned",
            Self::NeedsReview => "needs_review",
            Self::Reviewed => "reviewed",
            Self::Failed => "failed",
        }
    }
}

/// What OCR found on a receipt. Every field but the text may be missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extraction {
    pub merchant: Option<String>,
    pub date: Option<NaiveDate>,
    pub total: Option<Money>,
    /// Tax as printed, in the total's currency.
    pub tax: Option<String>,
    pub text: String,
    /// Per-field confidence in [0, 1], keyed by field name.
    pub confidence: BTreeMap<String, f32>,
}

/// A person's word on what the receipt says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub reviewer_id: Uuid,
    pub merchant: String,
    pub date: NaiveDate,
    pub total: Money,
    pub reviewed_at: DateTime<Utc>,
}

/// The fields an expense is made of, as the receipt now stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiptFields {
    pub merchant: Option<String>,
    pub date: Option<NaiveDate>,
    pub total: Option<Money>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub state: Option<ReceiptState>,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptState {
    pub organization_id: Uuid,
    pub uploader_id: Uuid,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub storage_key: String,
    #[serde(default)]
    pub storage_version: Option<String>,
    pub duplicate_of: Option<Uuid>,
    pub expense_id: Option<Uuid>,
    pub create_expense: bool,
    /// What the image looks like, for finding the same receipt photographed again (none
    /// for PDFs, and for receipts uploaded before version 3.0 of the upload).
    #[serde(default)]
    pub fingerprint: Option<fingerprint::Fingerprint>,
    pub status: ScanStatus,
    pub extraction: Option<Extraction>,
    /// The fields OCR was not sure of, when the receipt was sent to review.
    #[serde(default)]
    pub doubts: Vec<String>,
    #[serde(default)]
    pub review: Option<Review>,
    pub failure_reason: Option<String>,
    pub uploaded_at: DateTime<Utc>,
    pub scanned_at: Option<DateTime<Utc>>,
    /// Under a legal hold (kept whatever its retention date).
    #[serde(default)]
    pub legal_hold: bool,
    /// What the uploader wrote with it.
    #[serde(default)]
    pub note: Option<String>,
}

impl ReceiptState {
    /// A person's review where there is one, else what OCR read.
    pub fn fields(&self) -> ReceiptFields {
        match (&self.review, &self.extraction) {
            (Some(r), _) => ReceiptFields {
                merchant: Some(r.merchant.clone()),
                date: Some(r.date),
                total: Some(r.total),
            },
            (None, Some(e)) => ReceiptFields {
                merchant: e.merchant.clone(),
                date: e.date,
                total: e.total,
            },
            (None, None) => ReceiptFields {
                merchant: None,
                date: None,
                total: None,
            },
        }
    }

    /// Whether an expense may be made of the receipt without a person looking first.
    pub fn settled(&self) -> bool {
        matches!(self.status, ScanStatus::Scanned | ScanStatus::Reviewed)
    }

    fn may_review(&self, actor: &Actor) -> bool {
        self.uploader_id == actor.user_id || actor.role.may_decide()
    }
}

impl Receipt {
    /// The receipt if it exists in the actor's organization.
    pub fn visible_to(&self, actor: &Actor) -> Option<&ReceiptState> {
        self.state
            .as_ref()
            .filter(|s| s.organization_id == actor.organization_id)
    }
}

impl Aggregate for Receipt {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = ReceiptCommand;
    type Event = ReceiptEvent;
    type Error = ReceiptError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            ReceiptCommand::RecordUpload { actor, upload, at } => {
                if self.state.is_some() {
                    return Err(ReceiptError::AlreadyExists);
                }
                if !actor.role.may_record_expenses() {
                    return Err(ReceiptError::AuditorsCannotUpload);
                }
                command::validate_upload(&upload)?;
                ReceiptEvent::ReceiptUploaded {
                    organization_id: actor.organization_id,
                    uploader_id: actor.user_id,
                    content_type: upload.content_type,
                    size: upload.size,
                    sha256: upload.sha256,
                    storage_key: upload.storage_key,
                    storage_version: upload.storage_version,
                    duplicate_of: upload.duplicate_of,
                    expense_id: upload.expense_id,
                    create_expense: upload.create_expense,
                    fingerprint: upload.fingerprint,
                    note: upload
                        .note
                        .map(|n| n.trim().to_string())
                        .filter(|n| !n.is_empty()),
                    uploaded_at: at,
                }
            }
            ReceiptCommand::AttachToExpense {
                actor,
                expense_id,
                at,
            } => {
                let s = self.visible_to(&actor).ok_or(ReceiptError::NotFound)?;
                if s.uploader_id != actor.user_id {
                    return Err(ReceiptError::NotUploader);
                }
                match s.expense_id {
                    Some(existing) if existing == expense_id => return Ok(()),
                    Some(_) => return Err(ReceiptError::AttachedElsewhere),
                    None => ReceiptEvent::ReceiptAttached {
                        expense_id,
                        attached_at: at,
                    },
                }
            }
            ReceiptCommand::RecordScan { extraction, at } => {
                if !self.pending()? {
                    return Ok(());
                }
                ReceiptEvent::ReceiptScanned {
                    extraction,
                    scanned_at: at,
                }
            }
            ReceiptCommand::SendToReview {
                extraction,
                doubts,
                at,
            } => {
                if !self.pending()? {
                    return Ok(());
                }
                ReceiptEvent::ReceiptSentToReview {
                    extraction,
                    doubts,
                    scanned_at: at,
                }
            }
            ReceiptCommand::RecordScanFailure { reason, at } => {
                if !self.pending()? {
                    return Ok(());
                }
                if reason.trim().is_empty() {
                    return Err(ReceiptError::Invalid(vec![FieldError::new(
                        "reason",
                        "must not be empty",
                    )]));
                }
                ReceiptEvent::ReceiptScanFailed {
                    reason: reason.trim().to_string(),
                    failed_at: at,
                }
            }
            ReceiptCommand::Review {
                actor,
                fields,
                today,
                at,
            } => {
                let s = self.visible_to(&actor).ok_or(ReceiptError::NotFound)?;
                if !s.may_review(&actor) {
                    return Err(ReceiptError::NotReviewer);
                }
                let fields = command::validate_review(fields, today)?;
                match (&s.review, s.status) {
                    // A retry of the same review.
                    (Some(r), _)
                        if r.merchant == fields.merchant
                            && r.date == fields.date
                            && r.total == fields.total =>
                    {
                        return Ok(())
                    }
                    (Some(_), _) => return Err(ReceiptError::AlreadyReviewed),
                    (None, ScanStatus::NeedsReview | ScanStatus::Failed) => {}
                    (None, status) => return Err(ReceiptError::NotAwaitingReview(status.as_str())),
                }
                ReceiptEvent::ReceiptReviewed {
                    reviewer_id: actor.user_id,
                    merchant: fields.merchant,
                    date: fields.date,
                    total: fields.total,
                    reviewed_at: at,
                }
            }
            ReceiptCommand::RequestRescan { actor, at } => {
                let s = match &actor {
                    Some(actor) => {
                        let s = self.visible_to(actor).ok_or(ReceiptError::NotFound)?;
                        if !s.may_review(actor) {
                            return Err(ReceiptError::NotReviewer);
                        }
                        s
                    }
                    None => self.state.as_ref().ok_or(ReceiptError::NotFound)?,
                };
                match s.status {
                    // Already waiting to be read.
                    ScanStatus::Pending => return Ok(()),
                    ScanStatus::Reviewed => return Err(ReceiptError::ReviewedStands),
                    ScanStatus::Scanned | ScanStatus::NeedsReview | ScanStatus::Failed => {}
                }
                ReceiptEvent::ReceiptRescanRequested {
                    requested_by: actor.map(|a| a.user_id),
                    requested_at: at,
                }
            }
            ReceiptCommand::SetLegalHold {
                actor,
                on,
                reason,
                at,
            } => {
                let s = self.visible_to(&actor).ok_or(ReceiptError::NotFound)?;
                if !matches!(actor.role, Role::Admin | Role::Auditor) {
                    return Err(ReceiptError::NotKeeper);
                }
                let reason = match reason.as_deref().map(str::trim) {
                    Some(text) if !text.is_empty() => Some(
                        validate::required_text("reason", text, 500)
                            .map_err(|e| ReceiptError::Invalid(vec![e]))?,
                    ),
                    _ if on => {
                        return Err(ReceiptError::Invalid(vec![FieldError::new(
                            "reason",
                            "say why the receipt is held",
                        )]))
                    }
                    _ => None,
                };
                if s.legal_hold == on {
                    return Ok(());
                }
                ReceiptEvent::ReceiptLegalHoldSet {
                    on,
                    reason,
                    set_by: actor.user_id,
                    set_at: at,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.version += 1;
        if let ReceiptEvent::ReceiptUploaded {
            organization_id,
            uploader_id,
            content_type,
            size,
            sha256,
            storage_key,
            storage_version,
            duplicate_of,
            expense_id,
            create_expense,
            fingerprint,
            note,
            uploaded_at,
        } = event
        {
            self.state = Some(ReceiptState {
                organization_id,
                uploader_id,
                content_type,
                size,
                sha256,
                storage_key,
                storage_version,
                duplicate_of,
                expense_id,
                create_expense,
                fingerprint,
                note,
                status: ScanStatus::Pending,
                extraction: None,
                doubts: Vec::new(),
                review: None,
                failure_reason: None,
                uploaded_at,
                scanned_at: None,
                legal_hold: false,
            });
            return;
        }
        let Some(s) = self.state.as_mut() else {
            return;
        };
        match event {
            ReceiptEvent::ReceiptUploaded { .. } => {}
            ReceiptEvent::ReceiptAttached { expense_id, .. } => s.expense_id = Some(expense_id),
            ReceiptEvent::ReceiptScanned {
                extraction,
                scanned_at,
            } => s.read(
                ScanStatus::Scanned,
                Some(extraction),
                Vec::new(),
                None,
                scanned_at,
            ),
            ReceiptEvent::ReceiptSentToReview {
                extraction,
                doubts,
                scanned_at,
            } => s.read(
                ScanStatus::NeedsReview,
                Some(extraction),
                doubts,
                None,
                scanned_at,
            ),
            ReceiptEvent::ReceiptScanFailed { reason, failed_at } => {
                // What an earlier scan read stays readable for the reviewer.
                let extraction = s.extraction.take();
                s.read(
                    ScanStatus::Failed,
                    extraction,
                    Vec::new(),
                    Some(reason),
                    failed_at,
                )
            }
            ReceiptEvent::ReceiptReviewed {
                reviewer_id,
                merchant,
                date,
                total,
                reviewed_at,
            } => {
                s.status = ScanStatus::Reviewed;
                s.review = Some(Review {
                    reviewer_id,
                    merchant,
                    date,
                    total,
                    reviewed_at,
                });
            }
            ReceiptEvent::ReceiptRescanRequested { .. } => s.status = ScanStatus::Pending,
            ReceiptEvent::ReceiptLegalHoldSet { on, .. } => s.legal_hold = on,
        }
    }
}

impl Receipt {
    /// Whether the receipt waits for OCR; an error when there is no receipt.
    fn pending(&self) -> Result<bool, ReceiptError> {
        let s = self.state.as_ref().ok_or(ReceiptError::NotFound)?;
        Ok(s.status == ScanStatus::Pending)
    }
}

impl ReceiptState {
    fn read(
        &mut self,
        status: ScanStatus,
        extraction: Option<Extraction>,
        doubts: Vec<String>,
        failure_reason: Option<String>,
        at: DateTime<Utc>,
    ) {
        self.status = status;
        self.extraction = extraction;
        self.doubts = doubts;
        self.failure_reason = failure_reason;
        self.scanned_at = Some(at);
    }
}
