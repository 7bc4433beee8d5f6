use crate::rejection::{FieldError, IntoRejection, Rejection};

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
    #[error("only the uploader, an approver or an admin may review or rescan a receipt")]
    NotReviewer,
    #[error("the receipt is {0}: only receipts that need review or failed to scan are reviewed")]
    NotAwaitingReview(&'static str),
    #[error("the receipt was reviewed with other values")]
    AlreadyReviewed,
    #[error("a person has reviewed the receipt: its values stand and it is not read again")]
    ReviewedStands,
    #[error("only admins and auditors place or release legal holds")]
    NotKeeper,
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
}

impl IntoRejection for ReceiptError {
    fn rejection(&self) -> Rejection {
        match self {
            Self::AlreadyExists
            | Self::AttachedElsewhere
            | Self::NotAwaitingReview(_)
            | Self::AlreadyReviewed
            | Self::ReviewedStands => Rejection::Conflict(self.to_string()),
            Self::NotFound => Rejection::NotFound(self.to_string()),
            Self::AuditorsCannotUpload
            | Self::NotUploader
            | Self::NotReviewer
            | Self::NotKeeper => Rejection::Forbidden(self.to_string()),
            Self::Invalid(fields) => Rejection::Invalid(fields.clone()),
        }
    }
}
