//! Upcasters turn stored payloads of older event versions into the current shape as they
//! are loaded, so the aggregates only ever see current events. Stored rows are never
//! rewritten: the event store stays the record of what was said at the time.

use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster};
use serde_json::Value;

use crate::organization::{ORGANIZATION_REGISTERED, ORGANIZATION_REGISTERED_VERSION};

/// The currency organizations registered before version 2 had implicitly.
const PRE_V2_DEFAULT_CURRENCY: &str = "EUR";

/// Every upcaster the event stores apply when loading aggregates.
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![Box::new(SemanticVersionEventUpcaster::new(
        ORGANIZATION_REGISTERED,
        ORGANIZATION_REGISTERED_VERSION,
        Box::new(organization_registered_v1_to_v2),
    ))]
}

/// Version 1 of `OrganizationRegistered` had no `default_currency`.
fn organization_registered_v1_to_v2(mut payload: Value) -> Value {
    if let Some(body) = payload
        .get_mut(ORGANIZATION_REGISTERED)
        .and_then(Value::as_object_mut)
    {
        body.entry("default_currency")
            .or_insert_with(|| Value::String(PRE_V2_DEFAULT_CURRENCY.to_string()));
    }
    payload
}

#[cfg(test)]
mod tests {
    use cqrs_es::persist::SerializedEvent;
    use serde_json::json;

    use super::*;
    use crate::organization::OrganizationEvent;

    fn v1_registration() -> SerializedEvent {
        SerializedEvent::new(
            "org-1".into(),
            1,
            "organization".into(),
            ORGANIZATION_REGISTERED.into(),
            "1.0".into(),
            json!({"OrganizationRegistered": {
                "name": "Acme",
                "admin_user_id": "00000000-0000-0000-0000-000000000001",
                "admin_name": "Ada",
                "admin_email": "ada@acme.test",
                "admin_password_hash": "$argon2id$x",
                "registered_at": "2025-01-01T00:00:00Z"
            }}),
            json!({}),
        )
    }

    #[test]
    fn a_version_1_registration_loads_with_the_old_default_currency() {
        let upcasters = upcasters();
        let old = v1_registration();
        let upcaster = upcasters
            .iter()
            .find(|u| u.can_upcast(&old.event_type, &old.event_version))
            .expect("an upcaster for OrganizationRegistered 1.0");
        let new = upcaster.upcast(old);
        assert_eq!(new.event_version, "2.0.0");
        let event: OrganizationEvent = serde_json::from_value(new.payload).unwrap();
        let OrganizationEvent::OrganizationRegistered {
            default_currency, ..
        } = event
        else {
            panic!("wrong event {event:?}");
        };
        assert_eq!(default_currency.code(), "EUR");
    }

    #[test]
    fn a_version_1_payload_does_not_load_without_upcasting() {
        let result = serde_json::from_value::<OrganizationEvent>(v1_registration().payload);
        assert!(result.is_err());
    }

    #[test]
    fn current_versions_are_left_alone() {
        let mut current = v1_registration();
        current.event_version = ORGANIZATION_REGISTERED_VERSION.into();
        assert!(!upcasters()
            .iter()
            .any(|u| u.can_upcast(&current.event_type, &current.event_version)));
    }
}
