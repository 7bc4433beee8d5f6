//! Upcasters turn stored payloads of older event versions into the current shape as they
//! are loaded, so the aggregates only ever see current events. Stored rows are not
//! rewritten, with one documented exception: `expensewise migrate` moves password hashes
//! out of events written before version 3 of `OrganizationRegistered` and version 2 of
//! `UserAdded` (see `docs/personal-data.md`), storing them upcast by these very functions.

use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster};
use serde_json::Value;

use crate::expense::{
    EXPENSE_APPROVED, EXPENSE_CREATED, EXPENSE_REJECTED, EXPENSE_SUBMITTED, EXPENSE_UPDATED,
    EXPENSE_VERSION_2, EXPENSE_VERSION_3,
};
use crate::organization::{ORGANIZATION_REGISTERED, USER_ADDED, USER_ADDED_VERSION};
use crate::policy::{POLICY_CHANGED, POLICY_CHANGED_VERSION};

/// The currency organizations registered before version 2 had implicitly.
const PRE_V2_DEFAULT_CURRENCY: &str = "EUR";

/// Every upcaster the event stores apply when loading aggregates, in the order they
/// apply: a version 1 registration goes through both of its own.
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![
        Box::new(SemanticVersionEventUpcaster::new(
            ORGANIZATION_REGISTERED,
            "2.0",
            Box::new(|payload| {
                with_defaults(payload, ORGANIZATION_REGISTERED, PRE_V2_REGISTRATION)
            }),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            ORGANIZATION_REGISTERED,
            "3.0",
            Box::new(|payload| without(payload, ORGANIZATION_REGISTERED, "admin_password_hash")),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            USER_ADDED,
            USER_ADDED_VERSION,
            Box::new(|payload| without(payload, USER_ADDED, "password_hash")),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            EXPENSE_CREATED,
            EXPENSE_VERSION_2,
            Box::new(|payload| with_defaults(payload, EXPENSE_CREATED, UNVALUED_UNEVALUATED)),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            EXPENSE_UPDATED,
            EXPENSE_VERSION_2,
            Box::new(|payload| with_defaults(payload, EXPENSE_UPDATED, UNVALUED_UNEVALUATED)),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            EXPENSE_CREATED,
            EXPENSE_VERSION_3,
            Box::new(|payload| with_defaults(payload, EXPENSE_CREATED, AN_AMOUNT_SPENT)),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            EXPENSE_UPDATED,
            EXPENSE_VERSION_3,
            Box::new(|payload| with_defaults(payload, EXPENSE_UPDATED, AN_AMOUNT_SPENT)),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            EXPENSE_SUBMITTED,
            EXPENSE_VERSION_2,
            Box::new(|payload| with_defaults(payload, EXPENSE_SUBMITTED, UNEVALUATED_SUBMISSION)),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            EXPENSE_APPROVED,
            EXPENSE_VERSION_2,
            Box::new(|payload| with_defaults(payload, EXPENSE_APPROVED, ONE_STEP_DECISION)),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            EXPENSE_REJECTED,
            EXPENSE_VERSION_2,
            Box::new(|payload| with_defaults(payload, EXPENSE_REJECTED, ONE_STEP_DECISION)),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            POLICY_CHANGED,
            POLICY_CHANGED_VERSION,
            Box::new(|payload| with_defaults(payload, POLICY_CHANGED, NO_MILEAGE_RATES)),
        )),
    ]
}

/// A field an older version lacked, and the value it reads as.
type Absent = (&'static str, fn() -> Value);

/// Expenses recorded before version 2 had no amount in the organization's currency (it
/// was not known then, and is not made up now) and met no policy (version 0).
const UNVALUED_UNEVALUATED: &[Absent] = &[
    ("base_amount", || Value::Null),
    ("rate", || Value::Null),
    ("policy_version", || Value::from(0)),
    ("violations", || Value::Array(Vec::new())),
];
/// Before version 3 every expense was an amount spent, none a distance driven.
const AN_AMOUNT_SPENT: &[Absent] = &[("mileage", || Value::Null)];
/// Policies before version 2 paid no mileage.
const NO_MILEAGE_RATES: &[Absent] = &[("mileage_rates", || Value::Array(Vec::new()))];
const UNEVALUATED_SUBMISSION: &[Absent] = &[
    ("policy_version", || Value::from(0)),
    ("violations", || Value::Array(Vec::new())),
    ("justification", || Value::Null),
    // An empty chain reads as the one step by an approver that every chain was then.
    ("approval_steps", || Value::Array(Vec::new())),
];
/// Decisions before approval chains decided the one step, each for themselves.
const ONE_STEP_DECISION: &[Absent] = &[
    ("step", || Value::from(1)),
    ("on_behalf_of", || Value::Null),
];

/// The payload of an event of `event_type` with each absent field of `defaults` added.
fn with_defaults(mut payload: Value, event_type: &str, defaults: &[Absent]) -> Value {
    if let Some(body) = payload.get_mut(event_type).and_then(Value::as_object_mut) {
        for (field, value) in defaults {
            body.entry(*field).or_insert_with(value);
        }
    }
    payload
}

/// The payload of an event of `event_type` without `field`.
fn without(mut payload: Value, event_type: &str, field: &str) -> Value {
    if let Some(body) = payload.get_mut(event_type).and_then(Value::as_object_mut) {
        body.remove(field);
    }
    payload
}

/// Version 1 of `OrganizationRegistered` had no `default_currency`.
const PRE_V2_REGISTRATION: &[Absent] = &[("default_currency", || {
    Value::String(PRE_V2_DEFAULT_CURRENCY.to_string())
})];

#[cfg(test)]
mod tests {
    use cqrs_es::persist::SerializedEvent;
    use serde_json::json;

    use super::*;
    use crate::organization::{OrganizationEvent, ORGANIZATION_REGISTERED_VERSION};

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

    /// Every upcaster that applies, in order, as the stores do.
    fn upcast(mut event: SerializedEvent) -> SerializedEvent {
        for upcaster in upcasters() {
            if upcaster.can_upcast(&event.event_type, &event.event_version) {
                event = upcaster.upcast(event);
            }
        }
        event
    }

    #[test]
    fn a_version_1_registration_loads_with_the_old_default_currency_and_no_hash() {
        let new = upcast(v1_registration());
        assert_eq!(new.event_version, "3.0.0");
        assert!(
            !new.payload.to_string().contains("argon2"),
            "{}",
            new.payload
        );
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
    fn version_1_expenses_load_unvalued_and_unevaluated() {
        let created = SerializedEvent::new(
            "e-1".into(),
            1,
            "expense".into(),
            EXPENSE_CREATED.into(),
            "1.0".into(),
            json!({"ExpenseCreated": {
                "organization_id": "00000000-0000-0000-0000-000000000002",
                "owner_id": "00000000-0000-0000-0000-000000000001",
                "money": {"amount": "12.50", "currency": "EUR"},
                "merchant": "Kiosk", "category": "meals", "spent_on": "2025-01-02",
                "description": null, "receipt_id": null,
                "created_at": "2025-01-02T10:00:00Z"
            }}),
            json!({}),
        );
        let submitted = SerializedEvent::new(
            "e-1".into(),
            2,
            "expense".into(),
            EXPENSE_SUBMITTED.into(),
            "1.0".into(),
            json!({"ExpenseSubmitted": {"resubmission": false,
                                        "submitted_at": "2025-01-02T11:00:00Z"}}),
            json!({}),
        );
        let mut expense = crate::Expense::default();
        for (event, version) in [(created, "3.0.0"), (submitted, "2.0.0")] {
            let event = upcast(event);
            assert_eq!(event.event_version, version);
            cqrs_es::Aggregate::apply(&mut expense, serde_json::from_value(event.payload).unwrap());
        }
        let state = expense.state.unwrap();
        assert_eq!(state.base_amount, None);
        assert_eq!(state.mileage, None);
        assert_eq!(state.policy_version, 0);
        assert!(state.violations.is_empty());
    }

    #[test]
    fn a_version_1_policy_loads_without_mileage_rates() {
        let old = SerializedEvent::new(
            "org-1".into(),
            1,
            "policy".into(),
            POLICY_CHANGED.into(),
            "1.0".into(),
            json!({"PolicyChanged": {
                "organization_id": "00000000-0000-0000-0000-000000000002",
                "version": 1, "rules": [], "approval_chains": [],
                "changed_by": "00000000-0000-0000-0000-000000000001",
                "changed_at": "2026-01-02T10:00:00Z"
            }}),
            json!({}),
        );
        assert!(serde_json::from_value::<crate::policy::PolicyEvent>(old.payload.clone()).is_err());
        let new = upcast(old);
        assert_eq!(new.event_version, "2.0.0");
        let mut policy = crate::policy::Policy::default();
        cqrs_es::Aggregate::apply(&mut policy, serde_json::from_value(new.payload).unwrap());
        assert_eq!(policy.version, 1);
        assert!(policy.mileage_rates.is_empty());
    }

    #[test]
    fn a_version_1_payload_does_not_load_without_upcasting() {
        let result = serde_json::from_value::<OrganizationEvent>(v1_registration().payload);
        assert!(result.is_err());
    }

    #[test]
    fn a_version_1_user_loads_without_its_hash() {
        let old = SerializedEvent::new(
            "org-1".into(),
            2,
            "organization".into(),
            USER_ADDED.into(),
            "1.0".into(),
            json!({"UserAdded": {
                "user_id": "00000000-0000-0000-0000-000000000002",
                "name": "Bob",
                "email": "bob@acme.test",
                "role": "approver",
                "password_hash": "$argon2id$y",
                "added_at": "2025-01-01T00:00:00Z"
            }}),
            json!({}),
        );
        assert!(serde_json::from_value::<OrganizationEvent>(old.payload.clone()).is_err());
        let new = upcast(old);
        assert_eq!(new.event_version, "2.0.0");
        let event: OrganizationEvent = serde_json::from_value(new.payload).unwrap();
        assert!(
            matches!(event, OrganizationEvent::UserAdded { .. }),
            "{event:?}"
        );
    }

    #[test]
    fn current_versions_are_left_alone() {
        let mut current = v1_registration();
        current.event_version = ORGANIZATION_REGISTERED_VERSION.into();
        let mut user = v1_registration();
        (user.event_type, user.event_version) = (USER_ADDED.into(), USER_ADDED_VERSION.into());
        for event in [current, user] {
            assert!(!upcasters()
                .iter()
                .any(|u| u.can_upcast(&event.event_type, &event.event_version)));
        }
    }
}
