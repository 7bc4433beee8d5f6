//! The use cases of Expense-Wise: one function per thing a user or a worker can do,
//! each coordinating the aggregates, the store and the files it needs — once. The JSON
//! API, the workers and the command line are adapters that translate to and from these
//! functions and decide nothing themselves.
//!
//! Dependencies point inward: this crate uses the domain (the decisions), the store and
//! object storage of `infra`, and the read models of `projections` where a use case
//! needs to find something (a receipt by its digest). It knows nothing of HTTP, so the
//! workers use it without the API crate.

pub mod accounts;
pub mod dead_letters;
pub mod email_receipts;
pub mod expenses;
pub mod exports;
pub mod history;
pub mod policy;
pub mod receipts;
pub mod webhooks;

use chrono::{Duration, NaiveDate, Utc};
use expensewise_domain::{EventMetadata, IntoRejection, Rejection};
use expensewise_infra::event_store::CommandError;
use uuid::Uuid;

/// The metadata of events that no person causes — an operator's command line, or a
/// background task — in `organization_id`, now: every event of one such action shares
/// `correlation`.
pub fn operator_metadata(organization_id: Uuid, correlation: Uuid) -> EventMetadata {
    EventMetadata {
        organization_id,
        actor_id: None,
        occurred_at: Utc::now(),
        correlation_id: correlation,
        causation_id: correlation,
        request_id: None,
        traceparent: None,
    }
}

/// Why a use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UseCaseError {
    /// A business "no": invalid input, not allowed, not found, or not now.
    #[error("{0:?}")]
    Rejected(Rejection),
    /// Another writer changed the same thing at the same time (or an optimistic request
    /// was decided on state that has changed since): the caller may run it again.
    #[error("a concurrent change won")]
    LostRace,
    /// What the decision counts on is not up to date yet: the caller may retry shortly.
    #[error("{0}")]
    NotYet(String),
    #[error(transparent)]
    Technical(#[from] anyhow::Error),
}

impl UseCaseError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Rejected(Rejection::Invalid(vec![
            expensewise_domain::FieldError::new(field, message),
        ]))
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Rejected(Rejection::Conflict(detail.into()))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::Rejected(Rejection::NotFound(detail.into()))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Rejected(Rejection::Forbidden(detail.into()))
    }
}

impl<E: std::error::Error + IntoRejection> From<CommandError<E>> for UseCaseError {
    fn from(err: CommandError<E>) -> Self {
        match err {
            CommandError::Rejected(e) => Self::Rejected(e.rejection()),
            CommandError::Conflict | CommandError::Stale => Self::LostRace,
            CommandError::Technical(e) => Self::Technical(e),
        }
    }
}

pub type UseCaseResult<T> = Result<T, UseCaseError>;

/// The latest calendar date anywhere on Earth (UTC+14): an expense or receipt dated
/// today in Kiribati is not "in the future" because the server runs on UTC.
pub fn latest_today() -> NaiveDate {
    (Utc::now() + Duration::hours(14)).date_naive()
}
