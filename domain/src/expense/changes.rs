//! What an edit changed, field by field: histories and the audit log show it, so that an
//! auditor (or the owner) reads "amount 42.50 → 52.50" rather than two whole payloads.

use serde::Serialize;
use serde_json::{json, Value};

use super::ExpenseState;

/// One field an edit changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub from: Value,
    pub to: Value,
}

impl ExpenseState {
    /// The fields people edit, as clients read them.
    fn edited_fields(&self) -> [(&'static str, Value); 7] {
        [
            ("amount", json!(self.money.amount_string())),
            ("currency", json!(self.money.currency().code())),
            ("merchant", json!(self.merchant)),
            ("category", json!(self.category)),
            ("spent_on", json!(self.spent_on)),
            ("description", json!(self.description)),
            (
                "distance",
                json!(self.mileage.as_ref().map(|m| m.distance.to_string())),
            ),
        ]
    }

    /// The edited fields that differ from `before`, always in the same order.
    pub fn changes_since(&self, before: &ExpenseState) -> Vec<FieldChange> {
        before
            .edited_fields()
            .into_iter()
            .zip(self.edited_fields())
            .filter(|((_, from), (_, to))| from != to)
            .map(|((field, from), (_, to))| FieldChange { field, from, to })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::expense::ExpenseStatus;
    use crate::money::{Currency, Money};

    fn state(amount: &str, merchant: &str) -> ExpenseState {
        ExpenseState {
            organization_id: Uuid::nil(),
            owner_id: Uuid::nil(),
            money: Money::parse(amount, Currency::parse("EUR").unwrap()).unwrap(),
            merchant: merchant.into(),
            category: "meals".into(),
            spent_on: NaiveDate::from_ymd_opt(2026, 1, 15).unwrap(),
            description: None,
            mileage: None,
            base_amount: None,
            rate: None,
            policy_version: 0,
            violations: Vec::new(),
            justification: None,
            approval_steps: Vec::new(),
            approvals: Vec::new(),
            step_since: None,
            status: ExpenseStatus::Draft,
            receipt_ids: Vec::new(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            submitted_at: None,
            decided_at: None,
            decided_by: None,
            decision_reason: None,
            reimbursed_at: None,
            exported: None,
        }
    }

    #[test]
    fn an_edit_names_each_field_it_changed_with_both_values() {
        let before = state("42.50", "Café Central");
        let after = state("52.5", "Café Central");
        assert_eq!(
            after.changes_since(&before),
            [FieldChange {
                field: "amount",
                from: json!("42.50"),
                to: json!("52.50"),
            }]
        );
        assert_eq!(before.changes_since(&before), []);
        let renamed = state("42.50", "Café Zentral");
        assert_eq!(renamed.changes_since(&before)[0].field, "merchant");
    }
}
