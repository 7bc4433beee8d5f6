//! Settling what workers gave up on: an admin (their organization's) or an operator (the
//! command line, every organization's) retries a dead letter or discards it. Each
//! decision is an event of the event's organization before it takes effect, so the
//! audit trail never misses one; the worker does the retry itself (see
//! `expensewise_infra::dead_letters`).

use chrono::Utc;
use expensewise_domain::organization::{DeadLetterSettlement, OrganizationCommand};
use expensewise_domain::{validate, Actor, EventMetadata, Organization, Rejection, Role};
use expensewise_infra::dead_letters::{self, DeadLetter, Status};
use expensewise_infra::event_store::{Committed, Scope};
use expensewise_infra::EventStore;
use uuid::Uuid;

use crate::{UseCaseError, UseCaseResult};

/// The longest reason a discard may give.
pub const MAX_REASON: usize = 1000;

/// A dead letter the caller may see: an admin sees their own organization's only, and is
/// told of others' as of ones that do not exist.
pub async fn visible(
    store: &EventStore,
    actor: Option<&Actor>,
    worker: &str,
    event_id: Uuid,
) -> UseCaseResult<DeadLetter> {
    if let Some(actor) = actor {
        require_admin(actor)?;
    }
    dead_letters::get(store.database(), worker, event_id)
        .await?
        .filter(|letter| actor.is_none_or(|a| letter.organization_id == Some(a.organization_id)))
        .ok_or_else(|| UseCaseError::not_found("no such dead letter"))
}

pub fn require_admin(actor: &Actor) -> UseCaseResult<()> {
    if actor.role == Role::Admin {
        Ok(())
    } else {
        Err(UseCaseError::forbidden("admins only"))
    }
}

/// The reason a discard gives, checked as the domain checks text: 1 to [`MAX_REASON`]
/// characters besides white space, no control characters but tab and newline.
pub fn discard_reason(text: &str) -> UseCaseResult<String> {
    validate::required_text("reason", text, MAX_REASON)
        .map_err(|e| UseCaseError::Rejected(Rejection::Invalid(vec![e])))
}

/// Retries or discards an open dead letter as `actor` (`None`: an operator). The
/// decision is recorded as an event first (never optimistically: it stands whatever the
/// request does next); then the dead letter moves on, unless someone settled it in
/// between (a conflict: the event stays, as the record of the attempt). The same
/// request (its causation id) run again finds its decision taken and answers as the
/// first run did, without a second event (`None`).
pub async fn settle(
    store: &EventStore,
    actor: Option<&Actor>,
    metadata: &EventMetadata,
    worker: &str,
    event_id: Uuid,
    settlement: DeadLetterSettlement,
) -> UseCaseResult<(DeadLetter, Option<Committed<Organization>>)> {
    let letter = visible(store, actor, worker, event_id).await?;
    if letter.settled_by_request == Some(metadata.causation_id) {
        return Ok((letter, None));
    }
    if letter.status != Status::Open {
        return Err(UseCaseError::conflict(format!(
            "the dead letter is {} already",
            letter.status.as_str()
        )));
    }
    let organization_id = letter.organization_id.ok_or_else(|| {
        UseCaseError::conflict("the dead letter names no organization to record the decision in")
    })?;
    let (to, reason) = match &settlement {
        DeadLetterSettlement::Retry => (Status::Retrying, None),
        DeadLetterSettlement::Discard { reason } => (Status::Discarded, Some(reason.clone())),
    };
    let mut metadata = metadata.clone();
    metadata.organization_id = organization_id;
    let command = OrganizationCommand::SettleDeadLetter {
        actor_id: actor.map(|a| a.user_id),
        worker: worker.to_string(),
        event_id,
        settlement,
        at: Utc::now(),
    };
    let committed = store
        .execute::<Organization>(
            &Scope::none(),
            &organization_id.to_string(),
            command,
            &metadata,
        )
        .await?;
    let settled = dead_letters::settle(
        store.database(),
        worker,
        event_id,
        to,
        reason.as_deref(),
        metadata.causation_id,
    )
    .await?;
    if !settled {
        return Err(UseCaseError::conflict(
            "someone settled the dead letter first",
        ));
    }
    // As this decision left it: the worker may be at it already (a retry), and its
    // outcome is for the next read to tell.
    let letter = DeadLetter {
        status: to,
        settled_at: Some(Utc::now()),
        discard_reason: reason,
        settled_by_request: Some(metadata.causation_id),
        ..letter
    };
    Ok((letter, Some(committed)))
}
