//! Approval chains: who approves an expense, step by step, chosen by its amount in the
//! organization's currency and its category when it is submitted.

use std::collections::HashSet;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actor::Role;
use crate::rejection::FieldError;

/// Who takes a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approver {
    /// The submitter's manager.
    Manager,
    /// Anyone with the approver or admin role.
    Approver,
    /// Anyone with the finance role.
    Finance,
    /// Anyone with the admin role.
    Admin,
}

impl Approver {
    pub fn as_str(self) -> &'static str {
        match self {
            Approver::Manager => "manager",
            Approver::Approver => "approver",
            Approver::Finance => "finance",
            Approver::Admin => "admin",
        }
    }

    /// The roles that take a step of this kind (none for a manager's: a person's).
    pub fn roles(self) -> &'static [Role] {
        match self {
            Approver::Manager => &[],
            Approver::Approver => &[Role::Approver, Role::Admin],
            Approver::Finance => &[Role::Finance],
            Approver::Admin => &[Role::Admin],
        }
    }
}

/// A chain for the expenses over `over` (any amount when absent) in `categories` (all when
/// empty). Of the chains that apply, the one with the highest `over` is used; without
/// one, a single step by an approver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainRule {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "rust_decimal::serde::str_option")]
    pub over: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    pub steps: Vec<Approver>,
}

/// One step of a submitted expense's chain, as the submission recorded it: a manager's
/// step names the manager of the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStep {
    pub approver: Approver,
    #[serde(default)]
    pub user_id: Option<Uuid>,
}

impl ApprovalStep {
    /// Whether `person` with `role` takes this step.
    pub fn taken_by(&self, person: Uuid, role: Role) -> bool {
        match self.approver {
            Approver::Manager => self.user_id == Some(person),
            other => other.roles().contains(&role),
        }
    }
}

/// At most this many steps in a chain.
pub const MAX_STEPS: usize = 5;

/// The chain for an expense of `amount` (in the base currency) and `category`: the
/// applying rule with the highest threshold, else one approver.
pub fn select<'a>(
    chains: &'a [ChainRule],
    amount: Decimal,
    category: &str,
) -> (Option<&'a ChainRule>, Vec<Approver>) {
    let applying = chains
        .iter()
        .filter(|c| c.categories.is_empty() || c.categories.iter().any(|k| k == category))
        .filter(|c| c.over.is_none_or(|over| amount > over))
        .fold(None::<&ChainRule>, |best, c| match best {
            Some(b) if b.over.unwrap_or(Decimal::MIN) >= c.over.unwrap_or(Decimal::MIN) => Some(b),
            _ => Some(c),
        });
    match applying {
        Some(rule) => (Some(rule), rule.steps.clone()),
        None => (None, vec![Approver::Approver]),
    }
}

/// Checks the chains of a policy, naming each offending one as `approval_chains[n] (id)`.
pub fn validate(chains: &[ChainRule]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut ids = HashSet::new();
    for (n, chain) in chains.iter().enumerate() {
        let field = format!("approval_chains[{n}] ({})", chain.id);
        let mut fail = |message: &str| errors.push(FieldError::new(field.clone(), message));
        if !super::rule::valid_id(&chain.id) {
            fail(super::rule::ID_RULE);
        } else if !ids.insert(chain.id.as_str()) {
            fail("another chain has the same id");
        }
        if chain.steps.is_empty() || chain.steps.len() > MAX_STEPS {
            fail("a chain has 1 to 5 steps");
        }
        let distinct: HashSet<&Approver> = chain.steps.iter().collect();
        if distinct.len() != chain.steps.len() {
            fail("a chain names each kind of approver once: nobody approves twice in one chain");
        }
        if chain.over.is_some_and(|o| o < Decimal::ZERO) {
            fail("over must not be negative");
        }
        if chain.categories.iter().any(|c| c.trim().is_empty()) {
            fail("categories are not empty");
        }
    }
    if chains.len() > 50 {
        errors.push(FieldError::new(
            "approval_chains",
            "a policy has at most 50 chains",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(id: &str, over: Option<i64>, categories: &[&str], steps: &[Approver]) -> ChainRule {
        ChainRule {
            id: id.into(),
            over: over.map(Decimal::from),
            categories: categories.iter().map(|c| c.to_string()).collect(),
            steps: steps.to_vec(),
        }
    }

    #[test]
    fn the_applying_chain_with_the_highest_threshold_is_used() {
        use super::Approver::{Admin, Finance, Manager};
        let chains = [
            chain("big", Some(500), &[], &[Manager, Finance]),
            chain("huge", Some(10_000), &[], &[Manager, Finance, Admin]),
            chain("travel", Some(100), &["travel"], &[Manager]),
        ];
        let pick = |amount: i64, category: &str| {
            let (rule, steps) = select(&chains, Decimal::from(amount), category);
            (rule.map(|r| r.id.as_str()), steps)
        };
        assert_eq!(pick(500, "meals"), (None, vec![super::Approver::Approver]));
        assert_eq!(pick(501, "meals"), (Some("big"), vec![Manager, Finance]));
        assert_eq!(
            pick(10_001, "meals"),
            (Some("huge"), vec![Manager, Finance, Admin])
        );
        assert_eq!(pick(200, "travel"), (Some("travel"), vec![Manager]));
        assert_eq!(pick(600, "travel"), (Some("big"), vec![Manager, Finance]));
    }

    #[test]
    fn steps_are_taken_by_the_manager_or_by_role() {
        let manager = Uuid::from_u128(7);
        let step = ApprovalStep {
            approver: Approver::Manager,
            user_id: Some(manager),
        };
        assert!(step.taken_by(manager, Role::Employee));
        assert!(!step.taken_by(Uuid::from_u128(8), Role::Admin));
        let finance = ApprovalStep {
            approver: Approver::Finance,
            user_id: None,
        };
        assert!(finance.taken_by(Uuid::from_u128(8), Role::Finance));
        assert!(!finance.taken_by(Uuid::from_u128(8), Role::Admin));
        let approver = ApprovalStep {
            approver: Approver::Approver,
            user_id: None,
        };
        assert!(approver.taken_by(Uuid::from_u128(8), Role::Admin));
        assert!(!approver.taken_by(Uuid::from_u128(8), Role::Finance));
    }

    #[test]
    fn chains_are_checked() {
        use super::Approver::{Admin, Finance, Manager};
        let errors = validate(&[
            chain("ok", Some(1), &[], &[Manager, Admin]),
            chain("twice", None, &[], &[Finance, Finance]),
            chain("ok", None, &[], &[]),
        ]);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "approval_chains[1] (twice)",
                "approval_chains[2] (ok)",
                "approval_chains[2] (ok)"
            ]
        );
    }
}
