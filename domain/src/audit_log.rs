//! What the audit log hashes of each event (docs/audit-log.md): the leaf of the Merkle
//! tree (`crate::merkle`) is the canonical JSON (`crate::canonical`) of the event as it
//! is stored — personal fields sealed — so that erasing a person, which destroys keys
//! and rewrites nothing, leaves every leaf as it was.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::merkle::{leaf_hash, Hash};

/// An event as stored, the fields a leaf is made of.
#[derive(Debug, Clone, Copy)]
pub struct StoredEvent<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    /// As stored: `{"<event type>": {fields}}`, personal fields sealed.
    pub payload: &'a Value,
    pub metadata: &'a Value,
    pub recorded_at: DateTime<Utc>,
}

/// The bytes of the event's leaf: the canonical JSON (RFC 8785) of an object of its
/// fields, the time of recording in RFC 3339, UTC, to the microsecond. (The event id is
/// made of the aggregate type, id and sequence, so it is not repeated.)
pub fn leaf_bytes(event: &StoredEvent) -> Vec<u8> {
    let leaf = json!({
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "sequence": event.sequence,
        "event_type": event.event_type,
        "event_version": event.event_version,
        "payload": event.payload,
        "metadata": event.metadata,
        "recorded_at": event.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
    });
    crate::canonical::to_string(&leaf).into_bytes()
}

/// The event's leaf hash in the tree: SHA-256 of `0x00` and its leaf bytes.
pub fn event_leaf_hash(event: &StoredEvent) -> Hash {
    leaf_hash(&leaf_bytes(event))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The worked example of docs/audit-log.md: the bytes and the hash are the contract
    /// an auditor's verifier is written against, so they are pinned here.
    #[test]
    fn the_documented_example_hashes_as_documented() {
        let payload = json!({"ExpenseSubmitted": {"resubmission": false,
            "submitted_at": "2026-03-02T10:15:00Z"}});
        let metadata = json!({"organization_id": "6a1f9c0e-2b7d-4e15-9a43-1c2d3e4f5a6b",
            "actor_id": "0b7e3c1a-5d2f-4a86-b9c0-7e1d2c3b4a59"});
        let event = StoredEvent {
            aggregate_type: "expense",
            aggregate_id: "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c",
            sequence: 2,
            event_type: "ExpenseSubmitted",
            event_version: "1.0",
            payload: &payload,
            metadata: &metadata,
            recorded_at: Utc
                .with_ymd_and_hms(2026, 3, 2, 10, 15, 0)
                .unwrap()
                .checked_add_signed(chrono::Duration::microseconds(123_456))
                .unwrap(),
        };
        let bytes = String::from_utf8(leaf_bytes(&event)).unwrap();
        assert_eq!(
            bytes,
            "{\"aggregate_id\":\"3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c\",\
             \"aggregate_type\":\"expense\",\"event_type\":\"ExpenseSubmitted\",\
             \"event_version\":\"1.0\",\"metadata\":{\"actor_id\":\
             \"0b7e3c1a-5d2f-4a86-b9c0-7e1d2c3b4a59\",\"organization_id\":\
             \"6a1f9c0e-2b7d-4e15-9a43-1c2d3e4f5a6b\"},\"payload\":{\"ExpenseSubmitted\":\
             {\"resubmission\":false,\"submitted_at\":\"2026-03-02T10:15:00Z\"}},\
             \"recorded_at\":\"2026-03-02T10:15:00.123456Z\",\"sequence\":2}"
        );
        assert_eq!(hex(&event_leaf_hash(&event)), DOCUMENTED_HASH);
    }

    /// docs/audit-log.md, "A worked example".
    const DOCUMENTED_HASH: &str =
        "7502ccc01efdeee7f51a9dc07c9d9aabdde8584ce4ea5f04bb18fc1a7aa4cfcc";

    #[test]
    fn anything_changed_changes_the_leaf() {
        let payload = json!({"ExpenseDeleted": {}});
        let metadata = json!({});
        let base = StoredEvent {
            aggregate_type: "expense",
            aggregate_id: "a",
            sequence: 1,
            event_type: "ExpenseDeleted",
            event_version: "1.0",
            payload: &payload,
            metadata: &metadata,
            recorded_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        };
        let other_payload = json!({"ExpenseDeleted": {"x": 1}});
        let changed = [
            StoredEvent {
                sequence: 2,
                ..base
            },
            StoredEvent {
                aggregate_id: "b",
                ..base
            },
            StoredEvent {
                payload: &other_payload,
                ..base
            },
            StoredEvent {
                recorded_at: base.recorded_at + chrono::Duration::microseconds(1),
                ..base
            },
        ];
        for event in changed {
            assert_ne!(event_leaf_hash(&event), event_leaf_hash(&base), "{event:?}");
        }
    }
}
