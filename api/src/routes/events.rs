//! Events as clients read them: an expense's history and the auditors' feed both show
//! this view, so the redaction of secrets lives in one place.

use chrono::{DateTime, Utc};
use expensewise_domain::metadata;
use expensewise_infra::{Database, RecordedEvent};
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
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    /// The event's fields as stored (no event holds a secret: passwords live in the
    /// credentials store).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl EventView {
    /// Stored events as clients read them, their personal fields opened.
    pub async fn opened(app: &AppState, events: Vec<RecordedEvent>) -> ApiResult<Vec<Self>> {
        let events = app
            .store
            .vault()
            .open_all(events)
            .await
            .map_err(ApiError::internal)?;
        Self::with_leaves(&app.db, events)
            .await
            .map_err(ApiError::internal)
    }

    /// Views of `events`, each with its leaf in the audit log.
    pub async fn with_leaves(
        db: &Database,
        events: Vec<RecordedEvent>,
    ) -> anyhow::Result<Vec<Self>> {
        let mut views: Vec<Self> = events.into_iter().map(Self::new).collect();
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
        let payload = match event.payload {
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
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            event_type: event.event_type,
            event_version: event.event_version,
            occurred_at,
            payload,
        }
    }
}
