//! Recording and editing expenses where a receipt may come along: the expense and the
//! receipt are two aggregates, and these functions keep them pointing at each other.

use chrono::{NaiveDate, Utc};
use expensewise_domain::expense::{
    Context, ExpenseChanges, ExpenseCommand, ExpenseDetails, ExpenseError,
};
use expensewise_domain::{Actor, Currency, EventMetadata, Expense, FieldError, Money};
use expensewise_infra::event_store::{CommandError, Committed, Scope};
use expensewise_infra::EventStore;
use uuid::Uuid;

use crate::receipts::{attachable_receipt, mark_attached};
use crate::{latest_today, UseCaseError, UseCaseResult};

/// An expense to record.
pub struct NewExpense {
    /// Derived from the client's idempotency key when `keyed`, random otherwise.
    pub id: Uuid,
    pub keyed: bool,
    pub details: ExpenseDetails,
    /// A receipt of the actor's, not attached elsewhere, to attach.
    pub receipt_id: Option<Uuid>,
}

/// Records a draft expense. A retry with the same key answers with the expense the
/// first attempt made (when it is the same user's).
pub async fn create(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    new: NewExpense,
) -> UseCaseResult<Committed<Expense>> {
    if let Some(receipt_id) = new.receipt_id {
        let receipt = attachable_receipt(store, &actor, receipt_id).await?;
        if receipt.expense_id.is_some() {
            return Err(UseCaseError::conflict(
                "the receipt is already attached to an expense",
            ));
        }
    }
    let id = new.id.to_string();
    let command = ExpenseCommand::CreateExpense {
        ctx: Context {
            actor,
            at: Utc::now(),
            expected_version: None,
        },
        details: new.details,
        receipt_id: new.receipt_id,
        today: latest_today(),
    };
    let outcome = if new.keyed {
        store
            .execute::<Expense>(scope, &id, command, metadata)
            .await
    } else {
        store
            .execute_new::<Expense>(scope, &id, command, metadata)
            .await
    };
    let committed = match outcome {
        Err(CommandError::Rejected(ExpenseError::AlreadyExists)) => {
            let existing = store.current::<Expense>(&id).await?;
            let owner = existing.aggregate.visible_to(&actor).map(|s| s.owner_id);
            if owner != Some(actor.user_id) {
                return Err(UseCaseError::conflict("the expense already exists"));
            }
            existing
        }
        other => other?,
    };
    if let Some(receipt_id) = new.receipt_id {
        mark_attached(store, scope, actor, metadata, receipt_id, new.id).await?;
    }
    Ok(committed)
}

/// A partial edit as a client sends it: amounts and currencies still as text, checked
/// against the expense they change.
#[derive(Debug, Default)]
pub struct Edit {
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub merchant: Option<String>,
    pub category: Option<String>,
    pub spent_on: Option<NaiveDate>,
    pub description: Option<Option<String>>,
    pub receipt_id: Option<Uuid>,
}

pub fn parse_currency(code: &str) -> Result<Currency, FieldError> {
    Currency::parse(code).map_err(|e| FieldError::new("currency", e.to_string()))
}

pub fn parse_money(amount: &str, currency: Currency) -> Result<Money, FieldError> {
    Money::parse(amount, currency).map_err(|e| FieldError::new("amount", e.to_string()))
}

/// Edits a draft or rejected expense, attaching a receipt when one is named.
/// `expected_version` is the client's `If-Match`.
pub async fn edit(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    id: Uuid,
    edit: Edit,
    expected_version: Option<u64>,
) -> UseCaseResult<Committed<Expense>> {
    let loaded = store
        .load_for_command::<Expense>(scope, &id.to_string())
        .await?;
    let state = loaded
        .aggregate()
        .visible_to(&actor)
        .ok_or_else(|| UseCaseError::not_found("no such expense"))?;
    let mut errors = Vec::new();
    let currency = match edit.currency.as_deref() {
        None => Some(state.money.currency()),
        Some(code) => parse_currency(code).map_err(|e| errors.push(e)).ok(),
    };
    let money = match (edit.amount.as_deref(), currency) {
        (_, None) => None,
        (None, Some(c)) if c == state.money.currency() => None,
        (amount, Some(c)) => {
            let amount = amount
                .map(str::to_string)
                .unwrap_or_else(|| state.money.amount().to_string());
            parse_money(&amount, c).map_err(|e| errors.push(e)).ok()
        }
    };
    if !errors.is_empty() {
        return Err(UseCaseError::Rejected(
            expensewise_domain::Rejection::Invalid(errors),
        ));
    }
    if let Some(receipt_id) = edit.receipt_id {
        let receipt = attachable_receipt(store, &actor, receipt_id).await?;
        if receipt.expense_id.is_some_and(|e| e != id) {
            return Err(UseCaseError::conflict(
                "the receipt is already attached to another expense",
            ));
        }
    }
    let changes = ExpenseChanges {
        money,
        merchant: edit.merchant,
        category: edit.category,
        spent_on: edit.spent_on,
        description: edit.description,
    };
    let ctx = Context {
        actor,
        at: Utc::now(),
        expected_version,
    };
    let mut committed = store
        .execute_loaded(
            loaded,
            ExpenseCommand::UpdateExpense {
                ctx: ctx.clone(),
                changes,
                today: latest_today(),
            },
            metadata,
        )
        .await?;
    if let Some(receipt_id) = edit.receipt_id {
        committed = attach_to_expense(store, scope, actor, metadata, id, receipt_id).await?;
    }
    Ok(committed)
}

/// Attaches a receipt of the actor's to an expense of theirs: the expense lists the
/// receipt, then the receipt names the expense.
pub async fn attach_to_expense(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    expense_id: Uuid,
    receipt_id: Uuid,
) -> UseCaseResult<Committed<Expense>> {
    let committed = list_on_expense(store, scope, actor, metadata, expense_id, receipt_id).await?;
    mark_attached(store, scope, actor, metadata, receipt_id, expense_id).await?;
    Ok(committed)
}

/// The expense's side of an attachment: it lists the receipt.
pub(crate) async fn list_on_expense(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    expense_id: Uuid,
    receipt_id: Uuid,
) -> UseCaseResult<Committed<Expense>> {
    let attach = ExpenseCommand::AttachReceipt {
        ctx: Context {
            actor,
            at: Utc::now(),
            expected_version: None,
        },
        receipt_id,
    };
    Ok(store
        .execute::<Expense>(scope, &expense_id.to_string(), attach, metadata)
        .await?)
}

/// A step of an expense's lifecycle, with what it needs besides who and when.
#[derive(Debug, Clone)]
pub enum Step {
    Submit,
    Approve { comment: Option<String> },
    Reject { reason: String },
    Reimburse,
    Delete,
}

/// Takes one lifecycle step. `expected_version` is the client's `If-Match`.
pub async fn take_step(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    id: Uuid,
    step: Step,
    expected_version: Option<u64>,
) -> UseCaseResult<Committed<Expense>> {
    let ctx = Context {
        actor,
        at: Utc::now(),
        expected_version,
    };
    let command = match step {
        Step::Submit => ExpenseCommand::SubmitExpense { ctx },
        Step::Approve { comment } => ExpenseCommand::ApproveExpense { ctx, comment },
        Step::Reject { reason } => ExpenseCommand::RejectExpense { ctx, reason },
        Step::Reimburse => ExpenseCommand::ReimburseExpense { ctx },
        Step::Delete => ExpenseCommand::DeleteExpense { ctx },
    };
    Ok(store
        .execute::<Expense>(scope, &id.to_string(), command, metadata)
        .await?)
}
