use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::actor::{Actor, Role};
use crate::exchange::Rate;
use crate::money::Money;
use crate::policy::{ApprovalStep, Mileage, Violation};

/// What an employee says about an expense. Text fields are checked by the aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpenseDetails {
    pub money: Money,
    pub merchant: String,
    pub category: String,
    pub spent_on: NaiveDate,
    pub description: Option<String>,
    /// For a mileage claim: the distance and the rate that make `money`.
    pub mileage: Option<Mileage>,
}

/// A partial edit: `None` leaves a field as it is; `description: Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpenseChanges {
    pub money: Option<Money>,
    pub merchant: Option<String>,
    pub category: Option<String>,
    pub spent_on: Option<NaiveDate>,
    pub description: Option<Option<String>>,
    /// A mileage claim's distance priced again (with `money` the amount it makes).
    pub mileage: Option<Mileage>,
}

/// The amount in the organization's currency, and the rate that made it (none when the
/// expense is in that currency). Found by the application; checked by the aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct Valuation {
    pub base_amount: Option<Money>,
    pub rate: Option<Rate>,
}

/// What the organization's policy says of the expense, as evaluated by the application.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    pub policy_version: u64,
    pub violations: Vec<Violation>,
}

/// Fields every command has: who, when, and which version the client last saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    /// The `If-Match` version; `None` means "whatever is current".
    pub expected_version: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExpenseCommand {
    CreateExpense {
        ctx: Context,
        details: ExpenseDetails,
        receipt_id: Option<Uuid>,
        /// The actor's local date: `spent_on` may not be after it.
        today: NaiveDate,
        valuation: Valuation,
        assessment: Assessment,
    },
    UpdateExpense {
        ctx: Context,
        changes: ExpenseChanges,
        today: NaiveDate,
        /// `None` keeps the recorded one (the amount, currency and day are unchanged).
        valuation: Option<Valuation>,
        assessment: Assessment,
    },
    AttachReceipt {
        ctx: Context,
        receipt_id: Uuid,
    },
    SubmitExpense {
        ctx: Context,
        assessment: Assessment,
        /// Required when the assessment has warnings.
        justification: Option<String>,
        /// The chain the policy chose, resolved for the submitter (their manager).
        approval_steps: Vec<ApprovalStep>,
    },
    ApproveExpense {
        ctx: Context,
        comment: Option<String>,
        /// The person the actor decides for, by delegation, with their role.
        on_behalf_of: Option<(Uuid, Role)>,
    },
    RejectExpense {
        ctx: Context,
        reason: String,
        on_behalf_of: Option<(Uuid, Role)>,
    },
    ReimburseExpense {
        ctx: Context,
    },
    /// Marks an approved or reimbursed expense as taken by an accounting system in
    /// `batch_id`; an expense exported in another batch only `again`.
    ExportExpense {
        ctx: Context,
        batch_id: Uuid,
        format: String,
        again: bool,
    },
    DeleteExpense {
        ctx: Context,
    },
}
