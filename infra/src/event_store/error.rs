//! What commands come to: committed, or why not.

use cqrs_es::AggregateError;

use super::{GlobalPosition, Scope};

/// Why a command did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate said no; `E` tells why in business terms.
    #[error(transparent)]
    Rejected(E),
    /// Another writer appended to the same aggregate between our load and our append.
    #[error("the aggregate was changed concurrently")]
    Conflict,
    /// An optimistic request (see [`Scope`]) was decided on an organization or aggregate
    /// that has changed since; nothing was appended, and the request is to run again.
    #[error("the request was decided on state that has changed since")]
    Stale,
    #[error(transparent)]
    Technical(anyhow::Error),
}

impl<E: std::error::Error> From<AggregateError<E>> for CommandError<E> {
    fn from(err: AggregateError<E>) -> Self {
        match err {
            AggregateError::UserError(e) => Self::Rejected(e),
            AggregateError::AggregateConflict => Self::Conflict,
            AggregateError::DatabaseConnectionError(e)
            | AggregateError::DeserializationError(e)
            | AggregateError::UnexpectedError(e) => Self::Technical(anyhow::anyhow!(e)),
        }
    }
}

/// The outcome of a command that was accepted.
#[derive(Debug)]
pub struct Committed<A> {
    /// The aggregate after the command's events were applied.
    pub aggregate: A,
    /// How many events the command appended (0 when it changed nothing).
    pub appended: usize,
    /// Where the aggregate's latest event stands in the global order; `None` only for an
    /// aggregate that has no events at all.
    pub head: Option<GlobalPosition>,
}

/// What a doubtful decision comes to: a stale optimistic request, which is to run again
/// (the request is marked so), or a conflict where it cannot run again.
pub(super) fn stale_or_conflict<E: std::error::Error>(scope: &Scope) -> CommandError<E> {
    if scope.mark_stale() {
        CommandError::Stale
    } else {
        CommandError::Conflict
    }
}
