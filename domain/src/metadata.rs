//! What every event carries besides its payload. cqrs-es stores metadata as a string
//! map; this type is its typed view and the only place its keys are spelled.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub const ORGANIZATION_ID: &str = "organization_id";
pub const ACTOR_ID: &str = "actor_id";
pub const OCCURRED_AT: &str = "occurred_at";
pub const CORRELATION_ID: &str = "correlation_id";
pub const CAUSATION_ID: &str = "causation_id";
pub const REQUEST_ID: &str = "request_id";
pub const TRACEPARENT: &str = "traceparent";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMetadata {
    pub organization_id: Uuid,
    /// `None` for events no person caused (e.g. a worker's scan result).
    pub actor_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    /// Shared by every event that one user action led to, across aggregates and workers.
    pub correlation_id: Uuid,
    /// The request or event that directly caused this one.
    pub causation_id: Uuid,
    pub request_id: Option<String>,
    /// W3C trace context of the request, so consumers can continue the trace.
    pub traceparent: Option<String>,
}

impl EventMetadata {
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            (
                ORGANIZATION_ID.to_string(),
                self.organization_id.to_string(),
            ),
            (
                OCCURRED_AT.to_string(),
                self.occurred_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ),
            (CORRELATION_ID.to_string(), self.correlation_id.to_string()),
            (CAUSATION_ID.to_string(), self.causation_id.to_string()),
        ]);
        if let Some(actor) = self.actor_id {
            map.insert(ACTOR_ID.to_string(), actor.to_string());
        }
        if let Some(request_id) = &self.request_id {
            map.insert(REQUEST_ID.to_string(), request_id.clone());
        }
        if let Some(traceparent) = &self.traceparent {
            map.insert(TRACEPARENT.to_string(), traceparent.clone());
        }
        map
    }

    /// Reads metadata back; `None` when a required key is missing or malformed.
    pub fn from_map(map: &HashMap<String, String>) -> Option<EventMetadata> {
        let uuid = |key: &str| map.get(key).and_then(|v| Uuid::parse_str(v).ok());
        Some(EventMetadata {
            organization_id: uuid(ORGANIZATION_ID)?,
            actor_id: uuid(ACTOR_ID),
            occurred_at: DateTime::parse_from_rfc3339(map.get(OCCURRED_AT)?)
                .ok()?
                .with_timezone(&Utc),
            correlation_id: uuid(CORRELATION_ID)?,
            causation_id: uuid(CAUSATION_ID)?,
            request_id: map.get(REQUEST_ID).cloned(),
            traceparent: map.get(TRACEPARENT).cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_the_string_map() {
        let meta = EventMetadata {
            organization_id: Uuid::new_v4(),
            actor_id: Some(Uuid::new_v4()),
            occurred_at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
                .unwrap()
                .with_timezone(&Utc),
            correlation_id: Uuid::new_v4(),
            causation_id: Uuid::new_v4(),
            request_id: Some("req-1".into()),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        };
        assert_eq!(EventMetadata::from_map(&meta.to_map()), Some(meta));
    }

    #[test]
    fn metadata_without_an_organization_is_refused() {
        let mut map = HashMap::new();
        map.insert(OCCURRED_AT.to_string(), "2026-01-02T03:04:05Z".to_string());
        assert_eq!(EventMetadata::from_map(&map), None);
    }
}
