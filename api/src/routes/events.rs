//! Events as clients read them: an expense's history and the auditors' feed both show
//! this view, so the redaction of secrets lives in one place.

use chrono::{DateTime, Utc};
use expensewise_application::history;
use expensewise_domain::metadata;
use expensewise_infra::{Database, RecordedEvent, Vault};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// One event from the event store.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Stable id of the event (also its `Nats-Msg-Id` on JetStream).
    pub event_id: Uuid,
    /// The event's position in the store's global order.
    pub position: i64,
    /// The event's place in the global order as `txid.position`: the audit cursor.
    pub global_position: String,
    /// Its leaf in the audit log (docs/audit-log.md); none until the notary has added
    /// it, moments after the commit.
    pub leaf_index: Option<u64>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// 1 for an aggregate's first event, then 2, 3, …
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// When it happened, as its command said.
    pub occurred_at: DateTime<Utc>,
    /// When the store recorded it: what time travel (`as_of`) goes by.
    pub recorded_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    /// The `X-Request-Id` of the request that caused it (none for workers' events).
    pub request_id: Option<String>,
    /// The event's fields as stored (no event holds a secret: passwords live in the
    /// credentials store).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// For an edit: each field it changed, with the value before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<ChangeView>>,
}

/// One field an edit changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeView {
    /// `amount`, `currency`, `merchant`, `category`, `spent_on` or `description`.
    pub field: String,
    #[schema(value_type = Object)]
    pub from: serde_json::Value,
    #[schema(value_type = Object)]
    pub to: serde_json::Value,
}

impl EventView {
    /// Stored events as clients read them, their personal fields opened.
    pub async fn opened(app: &AppState, events: Vec<RecordedEvent>) -> ApiResult<Vec<Self>> {
        Self::for_clients(&app.db, app.store.vault(), events)
            .await
            .map_err(ApiError::internal)
    }

    /// Stored `events` opened, each with what it changed (edits) and its leaf in the
    /// audit log.
    pub async fn for_clients(
        db: &Database,
        vault: &Vault,
        events: Vec<RecordedEvent>,
    ) -> anyhow::Result<Vec<Self>> {
        let events = vault.open_all(events).await?;
        Self::from_opened(db, vault, events).await
    }

    /// Like [`EventView::for_clients`], for events already opened.
    pub async fn from_opened(
        db: &Database,
        vault: &Vault,
        events: Vec<RecordedEvent>,
    ) -> anyhow::Result<Vec<Self>> {
        let mut changes = history::edit_changes(db, vault, &events).await?;
        let mut views: Vec<Self> = events
            .into_iter()
            .map(|event| {
                let edited = changes.remove(&(event.aggregate_id.clone(), event.sequence));
                let mut view = Self::new(event);
                view.changes = edited.map(|list| {
                    list.into_iter()
                        .map(|c| ChangeView {
                            field: c.field.to_string(),
                            from: c.from,
                            to: c.to,
                        })
                        .collect()
                });
                view
            })
            .collect();
        let ids: Vec<Uuid> = views.iter().map(|v| v.event_id).collect();
        let leaves = expensewise_infra::audit_log::leaves_of(db, &ids).await?;
        for view in &mut views {
            view.leaf_index = leaves.get(&view.event_id).copied();
        }
        Ok(views)
    }

    fn new(event: RecordedEvent) -> Self {
        let meta = |key: &str| {
            event
                .metadata
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let uuid = |key: &str| meta(key).and_then(|v| Uuid::parse_str(&v).ok());
        let occurred_at = meta(metadata::OCCURRED_AT)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(event.recorded_at);
        // cqrs-es stores `{"EventType": {fields}}`; clients want the fields.
        let payload = match std::sync::Arc::unwrap_or_clone(event.payload) {
            serde_json::Value::Object(mut map)
                if map.len() == 1 && map.contains_key(&event.event_type) =>
            {
                map.remove(&event.event_type).unwrap_or_default()
            }
            other => other,
        };
        Self {
            event_id: expensewise_infra::nats::event_id(
                &event.aggregate_type,
                &event.aggregate_id,
                event.sequence,
            ),
            position: event.global.position,
            global_position: event.global.to_string(),
            leaf_index: None,
            actor_id: uuid(metadata::ACTOR_ID),
            correlation_id: uuid(metadata::CORRELATION_ID),
            causation_id: uuid(metadata::CAUSATION_ID),
            request_id: meta(metadata::REQUEST_ID),
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            event_type: event.event_type,
            event_version: event.event_version,
            occurred_at,
            recorded_at: event.recorded_at,
            payload,
            changes: None,
        }
    }
}
