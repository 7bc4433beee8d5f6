use serde::{Deserialize, Serialize};

/// One invalid input field, named as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The kinds of "no" a domain decision can give. Each aggregate error maps to one, so
/// that transports translate them uniformly (422, 403, 404, 409, 412).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The input breaks an invariant.
    Invalid(Vec<FieldError>),
    /// The actor may not do this.
    Forbidden(String),
    /// There is no such thing (or it was deleted).
    NotFound(String),
    /// The current state does not allow it.
    Conflict(String),
    /// The client's `If-Match` version is not the current one.
    StaleVersion { current: u64 },
    /// The organization's policy stops it: every violation found, blocks and warnings.
    Blocked(Vec<crate::policy::Violation>),
    /// The policy warns and the submitter gave no justification.
    Unjustified(Vec<crate::policy::Violation>),
}

/// Implemented by every aggregate's error: which kind of "no" it is.
pub trait IntoRejection {
    fn rejection(&self) -> Rejection;
}
