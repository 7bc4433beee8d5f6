//! An organization's spend policy (issue 19): an event-sourced aggregate whose id is the
//! organization's, so every change — who, when, the rules before and after — is history,
//! and the policy a submission was evaluated against can be read as it was.

pub mod chain;
mod evaluate;
pub mod mileage;
mod rule;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use chain::{ApprovalStep, Approver, ChainRule};
pub use evaluate::{
    evaluate, Claimed, Duplicate, DuplicateReason, Facts, Violation, EXCHANGE_RATE,
};
pub use mileage::{DistanceUnit, Mileage, MileageRate};
pub use rule::{validate, Level, Rule, RuleKind, MAX_RULES};

use crate::actor::{Actor, Role};
use crate::rejection::{FieldError, IntoRejection, Rejection};

pub const AGGREGATE_TYPE: &str = "policy";
pub const POLICY_CHANGED: &str = "PolicyChanged";
/// Version 2 of `PolicyChanged` added the mileage rates.
pub const POLICY_CHANGED_VERSION: &str = "2.0";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub organization_id: Option<Uuid>,
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub approval_chains: Vec<ChainRule>,
    #[serde(default)]
    pub mileage_rates: Vec<MileageRate>,
    /// The number of changes: 0 for an organization that never set a policy.
    pub version: u64,
    pub changed_at: Option<DateTime<Utc>>,
    pub changed_by: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PolicyCommand {
    /// Replaces the rules, the approval chains and the mileage rates.
    /// `expected_version` is the client's `If-Match`.
    SetRules {
        actor: Actor,
        at: DateTime<Utc>,
        expected_version: Option<u64>,
        rules: Vec<Rule>,
        approval_chains: Vec<ChainRule>,
        mileage_rates: Vec<MileageRate>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum PolicyEvent {
    /// The whole policy after the change; the one before is the previous event's.
    PolicyChanged {
        organization_id: Uuid,
        version: u64,
        rules: Vec<Rule>,
        approval_chains: Vec<ChainRule>,
        mileage_rates: Vec<MileageRate>,
        changed_by: Uuid,
        changed_at: DateTime<Utc>,
    },
}

impl DomainEvent for PolicyEvent {
    fn event_type(&self) -> String {
        POLICY_CHANGED.to_string()
    }

    fn event_version(&self) -> String {
        POLICY_CHANGED_VERSION.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("only admins change the policy")]
    NotAnAdmin,
    #[error("no such policy")]
    NotFound,
    #[error("the policy is at version {current}")]
    StaleVersion { current: u64 },
    #[error("invalid policy")]
    Invalid(Vec<FieldError>),
}

impl IntoRejection for PolicyError {
    fn rejection(&self) -> Rejection {
        match self {
            Self::NotAnAdmin => Rejection::Forbidden(self.to_string()),
            Self::NotFound => Rejection::NotFound(self.to_string()),
            Self::StaleVersion { current } => Rejection::StaleVersion { current: *current },
            Self::Invalid(errors) => Rejection::Invalid(errors.clone()),
        }
    }
}

impl Aggregate for Policy {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = PolicyCommand;
    type Event = PolicyEvent;
    type Error = PolicyError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let PolicyCommand::SetRules {
            actor,
            at,
            expected_version,
            rules,
            approval_chains,
            mileage_rates,
        } = command;
        if self
            .organization_id
            .is_some_and(|o| o != actor.organization_id)
        {
            return Err(PolicyError::NotFound);
        }
        if actor.role != Role::Admin {
            return Err(PolicyError::NotAnAdmin);
        }
        if expected_version.is_some_and(|v| v != self.version) {
            return Err(PolicyError::StaleVersion {
                current: self.version,
            });
        }
        let mut other_errors = chain::validate(&approval_chains);
        other_errors.extend(mileage::validate_rates(&mileage_rates));
        let rules = match validate(rules) {
            Ok(rules) if other_errors.is_empty() => rules,
            Ok(_) => return Err(PolicyError::Invalid(other_errors)),
            Err(mut errors) => {
                errors.extend(other_errors);
                return Err(PolicyError::Invalid(errors));
            }
        };
        let unchanged = rules == self.rules
            && approval_chains == self.approval_chains
            && mileage_rates == self.mileage_rates;
        if unchanged && self.version > 0 {
            return Ok(());
        }
        let event = PolicyEvent::PolicyChanged {
            organization_id: actor.organization_id,
            version: self.version + 1,
            rules,
            approval_chains,
            mileage_rates,
            changed_by: actor.user_id,
            changed_at: at,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let PolicyEvent::PolicyChanged {
            organization_id,
            version,
            rules,
            approval_chains,
            mileage_rates,
            changed_by,
            changed_at,
        } = event;
        self.organization_id = Some(organization_id);
        self.version = version;
        self.rules = rules;
        self.approval_chains = approval_chains;
        self.mileage_rates = mileage_rates;
        self.changed_by = Some(changed_by);
        self.changed_at = Some(changed_at);
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;
    use rust_decimal::Decimal;

    use super::*;

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: Uuid::from_u128(1),
            organization_id: Uuid::from_u128(2),
            role,
        }
    }

    fn cap(id: &str, amount: i64) -> Rule {
        Rule {
            id: id.into(),
            kind: RuleKind::MaxPerExpense,
            level: Level::Block,
            amount: Some(Decimal::from(amount)),
            days: None,
            holidays: Vec::new(),
            merchant_words: Vec::new(),
            prohibited_categories: Vec::new(),
            categories: Vec::new(),
            roles: Vec::new(),
        }
    }

    fn set(role: Role, rules: Vec<Rule>) -> PolicyCommand {
        PolicyCommand::SetRules {
            actor: actor(role),
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            expected_version: None,
            rules,
            approval_chains: Vec::new(),
            mileage_rates: Vec::new(),
        }
    }

    fn changed(version: u64, rules: Vec<Rule>) -> PolicyEvent {
        PolicyEvent::PolicyChanged {
            organization_id: Uuid::from_u128(2),
            version,
            rules,
            approval_chains: Vec::new(),
            mileage_rates: Vec::new(),
            changed_by: Uuid::from_u128(1),
            changed_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn admins_change_the_rules_and_each_change_is_a_version() {
        TestFramework::<Policy>::with(())
            .given_no_previous_events()
            .when(set(Role::Admin, vec![cap("cap", 500)]))
            .then_expect_events(vec![changed(1, vec![cap("cap", 500)])]);
        TestFramework::<Policy>::with(())
            .given(vec![changed(1, vec![cap("cap", 500)])])
            .when(set(Role::Admin, vec![cap("cap", 500)]))
            .then_expect_events(vec![]);
        TestFramework::<Policy>::with(())
            .given(vec![changed(1, vec![cap("cap", 500)])])
            .when(set(Role::Admin, Vec::new()))
            .then_expect_events(vec![changed(2, Vec::new())]);
        TestFramework::<Policy>::with(())
            .given_no_previous_events()
            .when(set(Role::Approver, vec![cap("cap", 500)]))
            .then_expect_error(PolicyError::NotAnAdmin);
    }

    #[test]
    fn invalid_rules_are_named() {
        let mut no_amount = cap("no-amount", 1);
        no_amount.amount = None;
        let mut days_on_cap = cap("days", 1);
        days_on_cap.days = Some(3);
        let rules = vec![
            cap("Bad Id", 1),
            cap("twice", 1),
            cap("twice", 2),
            no_amount,
            days_on_cap,
        ];
        let Err(errors) = validate(rules) else {
            panic!("accepted")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "rules[0] (Bad Id)",
                "rules[2] (twice)",
                "rules[3] (no-amount)",
                "rules[4] (days)"
            ]
        );
        let mut prohibited = cap("nothing", 1);
        prohibited.kind = RuleKind::Prohibited;
        prohibited.amount = None;
        assert!(validate(vec![prohibited]).is_err());
    }
}
