//! Subject access (GDPR art. 15): everything the product holds about one person, with
//! the events it came from.

use chrono::{DateTime, Utc};
use expensewise_domain::organization::{ApiToken, Member};
use expensewise_domain::receipt::ReceiptState;
use expensewise_domain::{Actor, Organization, Role};
use expensewise_infra::credentials;
use expensewise_infra::event_store::{events_about, RecordedEvent};
use expensewise_infra::EventStore;
use expensewise_projections::expenses::ExpenseRow;
use uuid::Uuid;

use crate::{UseCaseError, UseCaseResult};

fn technical(e: impl Into<anyhow::Error>) -> UseCaseError {
    UseCaseError::Technical(e.into())
}

pub struct PersonalData {
    pub user_id: Uuid,
    pub member: Member,
    /// When their password was last set (the hash itself is never handed out).
    pub password_set_at: Option<DateTime<Utc>>,
    pub tokens: Vec<(Uuid, ApiToken)>,
    pub expenses: Vec<ExpenseRow>,
    pub receipts: Vec<(Uuid, ReceiptState)>,
    /// Every event about them: caused by them, naming them, or of what is theirs.
    pub events: Vec<RecordedEvent>,
}

/// What the product holds about `user_id` of the actor's organization; for the person
/// themselves or an admin.
pub async fn personal_data(
    store: &EventStore,
    actor: &Actor,
    organization: &Organization,
    user_id: Uuid,
) -> UseCaseResult<PersonalData> {
    if actor.user_id != user_id && actor.role != Role::Admin {
        return Err(UseCaseError::forbidden(
            "only the person themselves or an admin may see their personal data",
        ));
    }
    let member = organization
        .member(user_id)
        .cloned()
        .ok_or_else(|| UseCaseError::not_found("no such user in this organization"))?;
    let db = store.database();
    let organization_id = actor.organization_id;

    let (owned, uploaded) = super::theirs(store, organization_id, user_id).await?;

    let mut theirs: Vec<String> = owned.iter().map(|e| e.id.to_string()).collect();
    theirs.extend(uploaded.iter().map(|(id, _)| id.to_string()));
    // Boxed: two aggregate loads nested in this future exceed the compiler's layout depth.
    theirs.push(Box::pin(super::claim_of(store, &member.email)).await?.0);
    let events = events_about(
        db,
        &organization_id.to_string(),
        &user_id.to_string(),
        &theirs,
    )
    .await
    .map_err(technical)?;
    let events = store.vault().reveal_all(events).await.map_err(technical)?;
    let tokens = organization
        .tokens()
        .filter(|(_, t)| t.user_id == user_id)
        .map(|(id, t)| (*id, t.clone()))
        .collect();
    Ok(PersonalData {
        user_id,
        member,
        password_set_at: credentials::password_set_at(db, user_id)
            .await
            .map_err(technical)?,
        tokens,
        expenses: owned,
        receipts: uploaded,
        events,
    })
}
