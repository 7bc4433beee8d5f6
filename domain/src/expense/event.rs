use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

pub const EXPENSE_CREATED: &str = "ExpenseCreated";
pub const EXPENSE_UPDATED: &str = "ExpenseUpdated";
pub const EXPENSE_RECEIPT_ATTACHED: &str = "ExpenseReceiptAttached";
pub const EXPENSE_SUBMITTED: &str = "ExpenseSubmitted";
pub const EXPENSE_APPROVED: &str = "ExpenseApproved";
pub const EXPENSE_REJECTED: &str = "ExpenseRejected";
pub const EXPENSE_REIMBURSED: &str = "ExpenseReimbursed";
pub const EXPENSE_DELETED: &str = "ExpenseDeleted";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ExpenseEvent {
    ExpenseCreated {
        organization_id: Uuid,
        owner_id: Uuid,
        money: Money,
        merchant: String,
        category: String,
        spent_on: NaiveDate,
        description: Option<String>,
        receipt_id: Option<Uuid>,
        created_at: DateTime<Utc>,
    },
    /// Carries the full details after the edit, so consumers need no earlier event.
    ExpenseUpdated {
        money: Money,
        merchant: String,
        category: String,
        spent_on: NaiveDate,
        description: Option<String>,
        updated_at: DateTime<Utc>,
    },
    ExpenseReceiptAttached {
        receipt_id: Uuid,
        attached_at: DateTime<Utc>,
    },
    ExpenseSubmitted {
        /// True when the expense had been rejected before.
        resubmission: bool,
        submitted_at: DateTime<Utc>,
    },
    ExpenseApproved {
        approver_id: Uuid,
        comment: Option<String>,
        approved_at: DateTime<Utc>,
    },
    ExpenseRejected {
        approver_id: Uuid,
        reason: String,
        rejected_at: DateTime<Utc>,
    },
    ExpenseReimbursed {
        reimbursed_by: Uuid,
        reimbursed_at: DateTime<Utc>,
    },
    ExpenseDeleted {
        deleted_by: Uuid,
        deleted_at: DateTime<Utc>,
    },
}

impl DomainEvent for ExpenseEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ExpenseCreated { .. } => EXPENSE_CREATED,
            Self::ExpenseUpdated { .. } => EXPENSE_UPDATED,
            Self::ExpenseReceiptAttached { .. } => EXPENSE_RECEIPT_ATTACHED,
            Self::ExpenseSubmitted { .. } => EXPENSE_SUBMITTED,
            Self::ExpenseApproved { .. } => EXPENSE_APPROVED,
            Self::ExpenseRejected { .. } => EXPENSE_REJECTED,
            Self::ExpenseReimbursed { .. } => EXPENSE_REIMBURSED,
            Self::ExpenseDeleted { .. } => EXPENSE_DELETED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
