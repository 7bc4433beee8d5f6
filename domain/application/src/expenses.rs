//! Recording and editing expenses where a receipt may come along: the expense and the
//! receipt are two aggregates, and these functions keep them pointing at each other.

use chrono::{NaiveDate, Utc};
use expensewise_domain::expense::{
    Assessment, Context, ExpenseChanges, ExpenseCommand, ExpenseDetails, ExpenseError,
    ExpenseState, Valuation, NOT_A_MILEAGE_CLAIM,
};
use expensewise_domain::policy::{chain, ApprovalStep, Approver, Level, Mileage, Violation};
use expensewise_domain::{Actor, Currency, EventMetadata, Expense, FieldError, Money, Role};
use expensewise_infra::event_store::{CommandError, Committed, Scope};
use expensewise_infra::EventStore;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::policy::{assess, base_currency, price_mileage, value, Candidate, Counting, Distance};
use crate::receipts::{attachable_receipt, mark_attached};
use crate::{latest_today, UseCaseError, UseCaseResult};

/// What an expense claims.
pub enum Claim {
    /// An amount spent; `exchange_rate` is units of the organization's currency per unit
    /// of the amount's (a card statement's), instead of the reference rate of the day.
    Spent {
        money: Money,
        exchange_rate: Option<Decimal>,
    },
    /// A distance driven, priced at the organization's mileage rate of the day.
    Driven(Distance),
}

/// An expense to record.
pub struct NewExpense {
    /// Derived from the client's idempotency key when `keyed`, random otherwise.
    pub id: Uuid,
    pub keyed: bool,
    pub claim: Claim,
    /// Required for an amount spent; a mileage claim is named after its distance and
    /// rate, and filed under `mileage`, unless told otherwise.
    pub merchant: Option<String>,
    pub category: Option<String>,
    pub spent_on: NaiveDate,
    pub description: Option<String>,
    /// A receipt of the actor's, not attached elsewhere, to attach.
    pub receipt_id: Option<Uuid>,
}

/// The category of mileage claims that name none.
pub const MILEAGE_CATEGORY: &str = "mileage";

/// How a mileage claim reads where a merchant would: "123.45 km at 0.30 EUR/km".
fn trip_name(claim: &Mileage, money: &Money) -> String {
    let unit = claim.rate.unit.as_str();
    format!(
        "{} {unit} at {} {}/{unit}",
        claim.distance,
        claim.rate.per_unit,
        money.currency().code()
    )
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
    let (money, mileage, exchange_rate) = match new.claim {
        Claim::Spent {
            money,
            exchange_rate,
        } => (money, None, exchange_rate),
        Claim::Driven(driven) => {
            let (money, claim) =
                price_mileage(store, scope, actor.organization_id, driven, new.spent_on).await?;
            (money, Some(claim), None)
        }
    };
    let details = ExpenseDetails {
        merchant: match (new.merchant, &mileage) {
            (Some(merchant), _) => merchant,
            (None, Some(claim)) => trip_name(claim, &money),
            (None, None) => String::new(),
        },
        category: match (new.category, &mileage) {
            (Some(category), _) => category,
            (None, Some(_)) => MILEAGE_CATEGORY.to_string(),
            (None, None) => String::new(),
        },
        money,
        spent_on: new.spent_on,
        description: new.description,
        mileage,
    };
    let receipt_ids: Vec<Uuid> = new.receipt_id.into_iter().collect();
    let (valuation, assessment) = judge_new(
        store,
        scope,
        actor,
        new.id,
        &details,
        &receipt_ids,
        exchange_rate,
    )
    .await?;
    let command = ExpenseCommand::CreateExpense {
        ctx: Context {
            actor,
            at: Utc::now(),
            expected_version: None,
        },
        details,
        receipt_id: new.receipt_id,
        today: latest_today(),
        valuation,
        assessment,
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

/// A new expense's value in the organization's currency and what its policy says of it.
pub(crate) async fn judge_new(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    id: Uuid,
    details: &ExpenseDetails,
    receipt_ids: &[Uuid],
    exchange_rate: Option<Decimal>,
) -> UseCaseResult<(Valuation, Assessment)> {
    let base = base_currency(store, scope, actor.organization_id).await?;
    let valuation = value(store, base, details.money, details.spent_on, exchange_rate).await?;
    let assessment = assess(
        store,
        scope,
        &Candidate {
            id,
            organization_id: actor.organization_id,
            owner_id: actor.user_id,
            owner_role: actor.role,
            money: details.money,
            base_amount: valuation.base_amount,
            merchant: details.merchant.trim(),
            category: details.category.trim(),
            description: details.description.as_deref(),
            spent_on: details.spent_on,
            receipt_ids,
            mileage: details.mileage.is_some(),
        },
        Counting::OwnWrites,
    )
    .await?;
    Ok((valuation, assessment))
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
    /// A card statement's rate (see [`Claim::Spent`]).
    pub exchange_rate: Option<Decimal>,
    /// A mileage claim's new distance (and unit).
    pub mileage: Option<Distance>,
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
    if state.mileage.is_none() && edit.mileage.is_some() {
        return Err(UseCaseError::invalid("mileage", NOT_A_MILEAGE_CLAIM));
    }
    let amount_given =
        edit.amount.is_some() || edit.currency.is_some() || edit.exchange_rate.is_some();
    if state.mileage.is_some() && amount_given {
        return Err(UseCaseError::invalid(
            "amount",
            "a mileage claim's amount follows its distance: change mileage instead",
        ));
    }
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
    // A claim is priced again when its distance or day changes, at the rate of its day.
    let repriced = match &state.mileage {
        Some(claim) if edit.mileage.is_some() || edit.spent_on.is_some() => {
            let driven = edit.mileage.unwrap_or(Distance {
                distance: claim.distance,
                unit: claim.rate.unit,
            });
            let day = edit.spent_on.unwrap_or(state.spent_on);
            Some(price_mileage(store, scope, actor.organization_id, driven, day).await?)
        }
        _ => None,
    };
    // A claim still named as it was made is named after its new distance and rate.
    let renamed = match (&repriced, &state.mileage) {
        (Some((money, claim)), Some(old))
            if edit.merchant.is_none() && state.merchant == trip_name(old, &state.money) =>
        {
            Some(trip_name(claim, money))
        }
        _ => None,
    };
    let (money, mileage) = match repriced {
        Some((money, claim)) => (Some(money), Some(claim)),
        None => (money, None),
    };
    let changes = ExpenseChanges {
        money,
        merchant: edit.merchant.or(renamed),
        category: edit.category,
        spent_on: edit.spent_on,
        description: edit.description,
        mileage,
    };
    let merged_money = changes.money.unwrap_or(state.money);
    let merged_day = changes.spent_on.unwrap_or(state.spent_on);
    // A rate is found again only when what it values changed, when a rate is given, or
    // when none was known before: a recorded one is never recomputed silently.
    let revalue = merged_money != state.money
        || merged_day != state.spent_on
        || edit.exchange_rate.is_some()
        || state.base_amount.is_none();
    let valuation: Option<Valuation> = if revalue {
        let base = base_currency(store, scope, actor.organization_id).await?;
        Some(value(store, base, merged_money, merged_day, edit.exchange_rate).await?)
    } else {
        None
    };
    let mut receipt_ids = state.receipt_ids.clone();
    receipt_ids.extend(edit.receipt_id.filter(|r| !state.receipt_ids.contains(r)));
    let description = match &changes.description {
        Some(d) => d.as_deref(),
        None => state.description.as_deref(),
    };
    let assessment = assess(
        store,
        scope,
        &Candidate {
            id,
            organization_id: actor.organization_id,
            owner_id: state.owner_id,
            owner_role: actor.role,
            money: merged_money,
            base_amount: valuation
                .as_ref()
                .map_or(state.base_amount, |v| v.base_amount),
            merchant: changes
                .merchant
                .as_deref()
                .unwrap_or(&state.merchant)
                .trim(),
            category: changes
                .category
                .as_deref()
                .unwrap_or(&state.category)
                .trim(),
            description,
            spent_on: merged_day,
            receipt_ids: &receipt_ids,
            mileage: state.mileage.is_some(),
        },
        Counting::OwnWrites,
    )
    .await?;
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
                valuation,
                assessment,
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
    /// `justification` answers the policy's warnings, when there are any.
    Submit {
        justification: Option<String>,
    },
    Approve {
        comment: Option<String>,
    },
    Reject {
        reason: String,
    },
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
        Step::Submit { justification } => {
            return submit(store, scope, ctx, metadata, id, justification).await
        }
        Step::Approve { comment } => {
            let on_behalf_of = stand_in(store, scope, &ctx, id).await?;
            ExpenseCommand::ApproveExpense {
                ctx,
                comment,
                on_behalf_of,
            }
        }
        Step::Reject { reason } => {
            let on_behalf_of = stand_in(store, scope, &ctx, id).await?;
            ExpenseCommand::RejectExpense {
                ctx,
                reason,
                on_behalf_of,
            }
        }
        Step::Reimburse => ExpenseCommand::ReimburseExpense { ctx },
        Step::Delete => ExpenseCommand::DeleteExpense { ctx },
    };
    Ok(store
        .execute::<Expense>(scope, &id.to_string(), command, metadata)
        .await?)
}

/// Submits an expense after evaluating it against the organization's policy as it is
/// now: a `block` refuses it, a warning needs `justification`, and the submission records
/// the policy version and what it found.
async fn submit(
    store: &EventStore,
    scope: &Scope,
    ctx: Context,
    metadata: &EventMetadata,
    id: Uuid,
    justification: Option<String>,
) -> UseCaseResult<Committed<Expense>> {
    let loaded = store
        .load_for_command::<Expense>(scope, &id.to_string())
        .await?;
    let state = loaded
        .aggregate()
        .visible_to(&ctx.actor)
        .ok_or_else(|| UseCaseError::not_found("no such expense"))?;
    let mut assessment = assess(
        store,
        scope,
        &Candidate {
            id,
            organization_id: state.organization_id,
            owner_id: state.owner_id,
            owner_role: ctx.actor.role,
            money: state.money,
            base_amount: state.base_amount,
            merchant: &state.merchant,
            category: &state.category,
            description: state.description.as_deref(),
            spent_on: state.spent_on,
            receipt_ids: &state.receipt_ids,
            mileage: state.mileage.is_some(),
        },
        Counting::Everything,
    )
    .await?;
    let (approval_steps, unresolved) = chain_for(store, scope, state).await?;
    assessment.violations.extend(unresolved);
    let command = ExpenseCommand::SubmitExpense {
        ctx,
        assessment,
        justification,
        approval_steps,
    };
    Ok(store.execute_loaded(loaded, command, metadata).await?)
}

/// The approval chain the policy gives the expense, its manager's step naming the
/// submitter's manager of the day; a violation at level block when a step has no one.
async fn chain_for(
    store: &EventStore,
    scope: &Scope,
    state: &ExpenseState,
) -> UseCaseResult<(Vec<ApprovalStep>, Option<Violation>)> {
    let policy = store
        .policy_for_request(scope, &state.organization_id.to_string())
        .await?;
    let amount = state.base_amount.map_or(Decimal::ZERO, |b| b.amount());
    let (rule, approvers) = chain::select(&policy.approval_chains, amount, &state.category);
    let organization = store
        .organization_for_request(scope, &state.organization_id.to_string())
        .await?;
    let manager = organization
        .member(state.owner_id)
        .and_then(|m| m.manager_id)
        .filter(|m| organization.active_role(*m).is_some());
    let mut missing = None;
    let steps = approvers
        .into_iter()
        .map(|approver| {
            let user_id = (approver == Approver::Manager).then_some(manager).flatten();
            if approver == Approver::Manager && user_id.is_none() {
                missing = Some(Violation {
                    rule: rule.map_or("approval_chain", |r| r.id.as_str()).to_string(),
                    level: Level::Block,
                    message: "the approval chain starts with your manager, and you have none \
                              (or they left): an admin names one"
                        .into(),
                });
            }
            ApprovalStep { approver, user_id }
        })
        .collect();
    Ok((steps, missing))
}

/// Whom the actor decides for on the expense's awaited step: nobody when they take it
/// themselves, else a person of the organization who named them delegate for today and
/// takes it.
async fn stand_in(
    store: &EventStore,
    scope: &Scope,
    ctx: &Context,
    id: Uuid,
) -> UseCaseResult<Option<(Uuid, Role)>> {
    let expense = store.load::<Expense>(&id.to_string()).await?;
    let Some((_, step)) = expense
        .visible_to(&ctx.actor)
        .and_then(ExpenseState::pending_step)
    else {
        return Ok(None);
    };
    if step.taken_by(ctx.actor.user_id, ctx.actor.role) {
        return Ok(None);
    }
    let organization = store
        .organization_for_request(scope, &ctx.actor.organization_id.to_string())
        .await?;
    Ok(organization
        .delegators_of(ctx.actor.user_id, ctx.at.date_naive())
        .into_iter()
        .find(|(person, role)| step.taken_by(*person, *role)))
}
