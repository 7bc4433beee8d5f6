use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::exchange::Rate;
use crate::money::Money;
use crate::policy::{ApprovalStep, Mileage, Violation};

pub const EXPENSE_CREATED: &str = "ExpenseCreated";
pub const EXPENSE_UPDATED: &str = "ExpenseUpdated";
pub const EXPENSE_RECEIPT_ATTACHED: &str = "ExpenseReceiptAttached";
pub const EXPENSE_SUBMITTED: &str = "ExpenseSubmitted";
pub const EXPENSE_STEP_APPROVED: &str = "ExpenseStepApproved";
pub const EXPENSE_APPROVED: &str = "ExpenseApproved";
pub const EXPENSE_REJECTED: &str = "ExpenseRejected";
pub const EXPENSE_REIMBURSED: &str = "ExpenseReimbursed";
pub const EXPENSE_DELETED: &str = "ExpenseDeleted";
pub const EXPENSE_EXPORTED: &str = "ExpenseExported";

/// Version 2 of `ExpenseCreated`, `ExpenseUpdated` and `ExpenseSubmitted` added the amount
/// in the organization's currency with its rate, and the policy evaluation; of
/// `ExpenseSubmitted` also the approval chain, and of `ExpenseApproved` and
/// `ExpenseRejected` the step decided and for whom.
pub const EXPENSE_VERSION_2: &str = "2.0";
/// Version 3 of `ExpenseCreated` and `ExpenseUpdated` added mileage claims.
pub const EXPENSE_VERSION_3: &str = "3.0";

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
        /// A mileage claim's distance and the rate that made `money`.
        mileage: Option<Mileage>,
        /// The amount in the organization's currency; `None` when no rate was known.
        base_amount: Option<Money>,
        /// The rate that made `base_amount`; `None` when no conversion was needed.
        rate: Option<Rate>,
        /// The policy version evaluated against (0: none set) and what it found.
        policy_version: u64,
        violations: Vec<Violation>,
        created_at: DateTime<Utc>,
    },
    /// Carries the full details after the edit, so consumers need no earlier event.
    ExpenseUpdated {
        money: Money,
        merchant: String,
        category: String,
        spent_on: NaiveDate,
        description: Option<String>,
        mileage: Option<Mileage>,
        base_amount: Option<Money>,
        rate: Option<Rate>,
        policy_version: u64,
        violations: Vec<Violation>,
        updated_at: DateTime<Utc>,
    },
    ExpenseReceiptAttached {
        receipt_id: Uuid,
        attached_at: DateTime<Utc>,
    },
    ExpenseSubmitted {
        /// True when the expense had been rejected before.
        resubmission: bool,
        /// The policy version the submission was evaluated against (0: none set), what it
        /// found (never a `block`), and the submitter's word on the warnings.
        policy_version: u64,
        violations: Vec<Violation>,
        justification: Option<String>,
        /// Who approves, step by step (a manager's step names the manager of the day).
        approval_steps: Vec<ApprovalStep>,
        submitted_at: DateTime<Utc>,
    },
    /// A step of the chain other than the last was approved (`step` counts from 1);
    /// `on_behalf_of` is the person whose delegate decided.
    ExpenseStepApproved {
        step: u32,
        approver_id: Uuid,
        on_behalf_of: Option<Uuid>,
        comment: Option<String>,
        approved_at: DateTime<Utc>,
    },
    /// The last step was approved: the expense is approved.
    ExpenseApproved {
        approver_id: Uuid,
        comment: Option<String>,
        step: u32,
        on_behalf_of: Option<Uuid>,
        approved_at: DateTime<Utc>,
    },
    /// A step was rejected, which ends the chain.
    ExpenseRejected {
        approver_id: Uuid,
        reason: String,
        step: u32,
        on_behalf_of: Option<Uuid>,
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
    /// An accounting system took the expense, in export batch `batch_id`.
    ExpenseExported {
        batch_id: Uuid,
        /// `csv` or `datev`.
        format: String,
        exported_by: Uuid,
        exported_at: DateTime<Utc>,
    },
}

impl DomainEvent for ExpenseEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ExpenseCreated { .. } => EXPENSE_CREATED,
            Self::ExpenseUpdated { .. } => EXPENSE_UPDATED,
            Self::ExpenseReceiptAttached { .. } => EXPENSE_RECEIPT_ATTACHED,
            Self::ExpenseSubmitted { .. } => EXPENSE_SUBMITTED,
            Self::ExpenseStepApproved { .. } => EXPENSE_STEP_APPROVED,
            Self::ExpenseApproved { .. } => EXPENSE_APPROVED,
            Self::ExpenseRejected { .. } => EXPENSE_REJECTED,
            Self::ExpenseReimbursed { .. } => EXPENSE_REIMBURSED,
            Self::ExpenseDeleted { .. } => EXPENSE_DELETED,
            Self::ExpenseExported { .. } => EXPENSE_EXPORTED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            Self::ExpenseCreated { .. } | Self::ExpenseUpdated { .. } => EXPENSE_VERSION_3,
            Self::ExpenseSubmitted { .. }
            | Self::ExpenseApproved { .. }
            | Self::ExpenseRejected { .. } => EXPENSE_VERSION_2,
            _ => "1.0",
        }
        .to_string()
    }
}
