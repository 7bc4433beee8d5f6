//! Webhook endpoints (issue 20, docs/webhooks.md): an admin adds, changes, removes them
//! and rotates their secrets; the sender turns off one that keeps failing. Each new
//! secret is stored before the event that names it, so an event never names a secret
//! that is not kept (a secret kept for an append that failed is never used).

use chrono::{Duration, Utc};
use expensewise_domain::webhook::signing::{Secret, SECRET_BYTES};
use expensewise_domain::webhook::{EndpointChange, Webhooks, WebhooksCommand, WebhooksError};
use expensewise_domain::{Actor, EventMetadata, IntoRejection as _};
use expensewise_infra::event_store::{Committed, Scope};
use expensewise_infra::{webhooks as stored, EventStore};
use rand::RngCore as _;
use uuid::Uuid;

use crate::{UseCaseError, UseCaseResult};

/// What an admin asks for when adding an endpoint.
pub struct NewEndpoint {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
}

/// A secret made and kept: its id for the event, its text for the admin, shown once.
struct MadeSecret {
    id: Uuid,
    text: String,
}

async fn make_secret(store: &EventStore, organization_id: Uuid) -> UseCaseResult<MadeSecret> {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = Secret::from_bytes(bytes);
    let id = Uuid::new_v4();
    stored::store_secret(store.database(), id, organization_id, &secret)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(MadeSecret {
        id,
        text: secret.text(),
    })
}

/// An endpoint added, or a secret rotated: the secret is shown this once.
pub struct WithSecret {
    pub endpoint_id: Uuid,
    pub secret: String,
    pub committed: Committed<Webhooks>,
}

pub async fn add_endpoint(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    endpoint: NewEndpoint,
) -> UseCaseResult<WithSecret> {
    let secret = make_secret(store, actor.organization_id).await?;
    let endpoint_id = Uuid::new_v4();
    let command = WebhooksCommand::Add {
        actor,
        at: Utc::now(),
        endpoint_id,
        secret_id: secret.id,
        url: endpoint.url,
        description: endpoint.description,
        event_types: endpoint.event_types,
    };
    let committed = store
        .execute::<Webhooks>(scope, &actor.organization_id.to_string(), command, metadata)
        .await?;
    Ok(WithSecret {
        endpoint_id,
        secret: secret.text,
        committed,
    })
}

pub async fn change_endpoint(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    endpoint_id: Uuid,
    change: EndpointChange,
) -> UseCaseResult<Committed<Webhooks>> {
    let command = WebhooksCommand::Change {
        actor,
        at: Utc::now(),
        endpoint_id,
        change,
    };
    Ok(store
        .execute::<Webhooks>(scope, &actor.organization_id.to_string(), command, metadata)
        .await?)
}

pub async fn remove_endpoint(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    endpoint_id: Uuid,
) -> UseCaseResult<Committed<Webhooks>> {
    let command = WebhooksCommand::Remove {
        actor,
        at: Utc::now(),
        endpoint_id,
    };
    Ok(store
        .execute::<Webhooks>(scope, &actor.organization_id.to_string(), command, metadata)
        .await?)
}

/// A new secret signs from now on; the ones before keep signing for `overlap`, so that
/// receivers can switch over without losing a message.
pub async fn rotate_secret(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    endpoint_id: Uuid,
    overlap: Duration,
) -> UseCaseResult<WithSecret> {
    // A rotation that will be refused makes no secret.
    let current: Webhooks = store.load(&actor.organization_id.to_string()).await?;
    if !current.endpoints.contains_key(&endpoint_id) {
        return Err(UseCaseError::Rejected(WebhooksError::NotFound.rejection()));
    }
    let secret = make_secret(store, actor.organization_id).await?;
    let command = WebhooksCommand::RotateSecret {
        actor,
        at: Utc::now(),
        endpoint_id,
        secret_id: secret.id,
        overlap,
    };
    let committed = store
        .execute::<Webhooks>(scope, &actor.organization_id.to_string(), command, metadata)
        .await?;
    Ok(WithSecret {
        endpoint_id,
        secret: secret.text,
        committed,
    })
}

/// The sender turns off an endpoint whose deliveries kept failing; an admin turns it on
/// again (`PATCH … {"enabled": true}`).
pub async fn disable_endpoint(
    store: &EventStore,
    organization_id: Uuid,
    endpoint_id: Uuid,
    reason: String,
) -> UseCaseResult<()> {
    let metadata = crate::operator_metadata(organization_id, Uuid::new_v4());
    let command = WebhooksCommand::Disable {
        organization_id,
        at: Utc::now(),
        endpoint_id,
        reason,
    };
    store
        .execute::<Webhooks>(
            &Scope::none(),
            &organization_id.to_string(),
            command,
            &metadata,
        )
        .await?;
    Ok(())
}

/// The organization's endpoints as of its latest change.
pub async fn endpoints(store: &EventStore, organization_id: Uuid) -> UseCaseResult<Webhooks> {
    Ok(store.load(&organization_id.to_string()).await?)
}
