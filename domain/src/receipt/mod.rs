//! A receipt file and what OCR read from it. The file itself lives in object storage;
//! the aggregate records its facts (type, size, digest, where it is) and the scan result.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actor::Actor;
use crate::money::Money;
use crate::rejection::{FieldError, IntoRejection, Rejection};

pub const AGGREGATE_TYPE: &str = "receipt";

pub const RECEIPT_UPLOADED: &str = "ReceiptUploaded";
pub const RECEIPT_ATTACHED: &str = "ReceiptAttached";
pub const RECEIPT_SCANNED: &str = "ReceiptScanned";
pub const RECEIPT_SCAN_FAILED: &str = "ReceiptScanFailed";

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
    Failed,
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

#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub storage_key: String,
    pub duplicate_of: Option<Uuid>,
    pub expense_id: Option<Uuid>,
    pub create_expense: bool,
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
    RecordScanFailure {
        reason: String,
        at: DateTime<Utc>,
    },
}

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
        duplicate_of: Option<Uuid>,
        expense_id: Option<Uuid>,
        create_expense: bool,
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
    ReceiptScanFailed {
        reason: String,
        failed_at: DateTime<Utc>,
    },
}

impl DomainEvent for ReceiptEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ReceiptUploaded { .. } => RECEIPT_UPLOADED,
            Self::ReceiptAttached { .. } => RECEIPT_ATTACHED,
            Self::ReceiptScanned { .. } => RECEIPT_SCANNED,
            Self::ReceiptScanFailed { .. } => RECEIPT_SCAN_FAILED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the receipt already exists")]
    AlreadyExists,
    #[error("no such receipt")]
    NotFound,
    #[error("auditors cannot upload receipts")]
    AuditorsCannotUpload,
    #[error("only the uploader may attach the receipt")]
    NotUploader,
    #[error("the receipt is already attached to another expense")]
    AttachedElsewhere,
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
}

impl IntoRejection for ReceiptError {
    fn rejection(&self) -> Rejection {
        match self {
            Self::AlreadyExists | Self::AttachedElsewhere => Rejection::Conflict(self.to_string()),
            Self::NotFound => Rejection::NotFound(self.to_string()),
            Self::AuditorsCannotUpload | Self::NotUploader => {
                Rejection::Forbidden(self.to_string())
            }
            Self::Invalid(fields) => Rejection::Invalid(fields.clone()),
        }
    }
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
    pub duplicate_of: Option<Uuid>,
    pub expense_id: Option<Uuid>,
    pub create_expense: bool,
    pub status: ScanStatus,
    pub extraction: Option<Extraction>,
    pub failure_reason: Option<String>,
    pub uploaded_at: DateTime<Utc>,
    pub scanned_at: Option<DateTime<Utc>>,
}

impl Receipt {
    /// The receipt if it exists in the actor's organization.
    pub fn visible_to(&self, actor: &Actor) -> Option<&ReceiptState> {
        self.state
            .as_ref()
            .filter(|s| s.organization_id == actor.organization_id)
    }
}

fn validate_upload(upload: &Upload) -> Result<(), ReceiptError> {
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
                validate_upload(&upload)?;
                ReceiptEvent::ReceiptUploaded {
                    organization_id: actor.organization_id,
                    uploader_id: actor.user_id,
                    content_type: upload.content_type,
                    size: upload.size,
                    sha256: upload.sha256,
                    storage_key: upload.storage_key,
                    duplicate_of: upload.duplicate_of,
                    expense_id: upload.expense_id,
                    create_expense: upload.create_expense,
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
                let s = self.state.as_ref().ok_or(ReceiptError::NotFound)?;
                if s.status != ScanStatus::Pending {
                    return Ok(());
                }
                ReceiptEvent::ReceiptScanned {
                    extraction,
                    scanned_at: at,
                }
            }
            ReceiptCommand::RecordScanFailure { reason, at } => {
                let s = self.state.as_ref().ok_or(ReceiptError::NotFound)?;
                if s.status != ScanStatus::Pending {
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
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.version += 1;
        match event {
            ReceiptEvent::ReceiptUploaded {
                organization_id,
                uploader_id,
                content_type,
                size,
                sha256,
                storage_key,
                duplicate_of,
                expense_id,
                create_expense,
                uploaded_at,
            } => {
                self.state = Some(ReceiptState {
                    organization_id,
                    uploader_id,
                    content_type,
                    size,
                    sha256,
                    storage_key,
                    duplicate_of,
                    expense_id,
                    create_expense,
                    status: ScanStatus::Pending,
                    extraction: None,
                    failure_reason: None,
                    uploaded_at,
                    scanned_at: None,
                });
            }
            ReceiptEvent::ReceiptAttached { expense_id, .. } => {
                if let Some(s) = self.state.as_mut() {
                    s.expense_id = Some(expense_id);
                }
            }
            ReceiptEvent::ReceiptScanned {
                extraction,
                scanned_at,
            } => {
                if let Some(s) = self.state.as_mut() {
                    s.status = ScanStatus::Scanned;
                    s.extraction = Some(extraction);
                    s.scanned_at = Some(scanned_at);
                }
            }
            ReceiptEvent::ReceiptScanFailed { reason, failed_at } => {
                if let Some(s) = self.state.as_mut() {
                    s.status = ScanStatus::Failed;
                    s.failure_reason = Some(reason);
                    s.scanned_at = Some(failed_at);
                }
            }
        }
    }
}
