//! An expense and its lifecycle:
//! `draft` → `submitted` → `approved` | `rejected`; `rejected` → (edit) → `submitted`;
//! `approved` → `reimbursed`; a `draft` can be deleted.

mod changes;
mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use changes::FieldChange;
pub use command::{Assessment, Context, ExpenseChanges, ExpenseCommand, ExpenseDetails, Valuation};
pub use error::ExpenseError;
pub use event::*;

use crate::actor::{Actor, Role};
use crate::exchange::Rate;
use crate::money::Money;
use crate::policy::mileage::check_distance;
use crate::policy::{ApprovalStep, Approver, Level, Mileage, Violation};
use crate::rejection::FieldError;
use crate::validate;

pub const AGGREGATE_TYPE: &str = "expense";

/// Why an edit cannot turn an amount spent into a distance driven.
pub const NOT_A_MILEAGE_CLAIM: &str =
    "an expense recorded as an amount does not become a mileage claim; record a new expense";

/// At most this many receipts per expense; more is a client bug, not an expense.
pub const MAX_RECEIPTS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpenseStatus {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Reimbursed,
}

impl ExpenseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Reimbursed => "reimbursed",
        }
    }

    pub fn parse(s: &str) -> Option<ExpenseStatus> {
        [
            Self::Draft,
            Self::Submitted,
            Self::Approved,
            Self::Rejected,
            Self::Reimbursed,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }

    /// The owner may still change what the expense says.
    pub fn editable(self) -> bool {
        matches!(self, Self::Draft | Self::Rejected)
    }
}

impl fmt::Display for ExpenseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The current state of one expense, as its events tell it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Expense {
    pub state: Option<ExpenseState>,
    pub deleted: bool,
    /// The number of events applied: the version clients see as `ETag`.
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpenseState {
    pub organization_id: Uuid,
    pub owner_id: Uuid,
    pub money: Money,
    pub merchant: String,
    pub category: String,
    pub spent_on: NaiveDate,
    pub description: Option<String>,
    /// A mileage claim's distance and the rate that made `money` (`None`: an amount spent).
    #[serde(default)]
    pub mileage: Option<Mileage>,
    /// The amount in the organization's currency (`None`: no rate was known) and the
    /// rate that made it (`None`: none was needed).
    pub base_amount: Option<Money>,
    pub rate: Option<Rate>,
    /// The latest policy evaluation: of the submission once submitted.
    pub policy_version: u64,
    pub violations: Vec<Violation>,
    pub justification: Option<String>,
    /// The chain of the current submission, and its steps approved so far.
    pub approval_steps: Vec<ApprovalStep>,
    pub approvals: Vec<StepApproval>,
    /// When the step now awaited began (the submission, or the last step's approval).
    pub step_since: Option<DateTime<Utc>>,
    pub status: ExpenseStatus,
    pub receipt_ids: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<Uuid>,
    pub decision_reason: Option<String>,
    pub reimbursed_at: Option<DateTime<Utc>>,
    /// The last export to an accounting system (`None`: never exported).
    #[serde(default)]
    pub exported: Option<Export>,
}

/// An expense taken by an accounting system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub batch_id: Uuid,
    pub format: String,
    pub at: DateTime<Utc>,
}

/// A step of the current chain approved, and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepApproval {
    pub approver_id: Uuid,
    pub on_behalf_of: Option<Uuid>,
}

impl ExpenseState {
    /// The chain of the current submission; a submission recorded before chains had one
    /// step by an approver.
    pub fn chain(&self) -> Vec<ApprovalStep> {
        if self.approval_steps.is_empty() {
            vec![ApprovalStep {
                approver: Approver::Approver,
                user_id: None,
            }]
        } else {
            self.approval_steps.clone()
        }
    }

    /// The step a submitted expense awaits (counting from 0), if it is submitted.
    pub fn pending_step(&self) -> Option<(usize, ApprovalStep)> {
        if self.status != ExpenseStatus::Submitted {
            return None;
        }
        let n = self.approvals.len();
        self.chain().get(n).cloned().map(|step| (n, step))
    }
}

impl Expense {
    /// The expense as the given actor may see it: `None` if it does not exist, was
    /// deleted, or belongs to another organization.
    pub fn visible_to(&self, actor: &Actor) -> Option<&ExpenseState> {
        self.state
            .as_ref()
            .filter(|s| !self.deleted && s.organization_id == actor.organization_id)
    }

    /// Loads the live expense for a command, enforcing tenancy and `If-Match`.
    fn live(&self, ctx: &Context) -> Result<&ExpenseState, ExpenseError> {
        let state = self.visible_to(&ctx.actor).ok_or(ExpenseError::NotFound)?;
        Ok(state)
    }

    fn check_version(&self, ctx: &Context) -> Result<(), ExpenseError> {
        match ctx.expected_version {
            Some(v) if v != self.version => Err(ExpenseError::StaleVersion {
                current: self.version,
            }),
            _ => Ok(()),
        }
    }

    fn owned(&self, ctx: &Context) -> Result<&ExpenseState, ExpenseError> {
        let state = self.live(ctx)?;
        if state.owner_id != ctx.actor.user_id {
            return Err(ExpenseError::NotOwner);
        }
        self.check_version(ctx)?;
        Ok(state)
    }

    /// The step the actor may decide now (counting from 0), for themselves or for the
    /// person `on_behalf_of` (a delegation the application checked): never on the
    /// owner's behalf nor the actor's own expense, never by someone who decided an
    /// earlier step of the same chain.
    fn decidable(
        &self,
        ctx: &Context,
        on_behalf_of: Option<(Uuid, Role)>,
    ) -> Result<(&ExpenseState, usize), ExpenseError> {
        let state = self.live(ctx)?;
        let (person, role) = on_behalf_of.unwrap_or((ctx.actor.user_id, ctx.actor.role));
        let (n, step) = match state.pending_step() {
            Some(pending) => pending,
            None => {
                if !role.may_decide() {
                    return Err(ExpenseError::NotAnApprover);
                }
                if state.owner_id == ctx.actor.user_id {
                    return Err(ExpenseError::OwnExpense);
                }
                self.check_version(ctx)?;
                return Err(ExpenseError::WrongStatus(state.status));
            }
        };
        if !step.taken_by(person, role) {
            if !role.may_decide() && step.approver != Approver::Manager {
                return Err(ExpenseError::NotAnApprover);
            }
            if state.owner_id == ctx.actor.user_id {
                return Err(ExpenseError::OwnExpense);
            }
            let awaited = match step.approver {
                Approver::Manager => "the submitter's manager".to_string(),
                other => format!("the {} role", other.as_str()),
            };
            return Err(ExpenseError::NotYourStep(awaited));
        }
        if state.owner_id == ctx.actor.user_id || state.owner_id == person {
            return Err(ExpenseError::OwnExpense);
        }
        let people = [ctx.actor.user_id, person];
        let decided_before = state.approvals.iter().any(|a| {
            people.contains(&a.approver_id) || a.on_behalf_of.is_some_and(|o| people.contains(&o))
        });
        if decided_before {
            return Err(ExpenseError::DecidedBefore);
        }
        self.check_version(ctx)?;
        Ok((state, n))
    }
}

/// Checks and normalises the free-text fields and the date of an expense.
fn validate_details(
    details: ExpenseDetails,
    today: NaiveDate,
) -> Result<ExpenseDetails, ExpenseError> {
    let mut errors = Vec::new();
    let merchant = validate::required_text("merchant", &details.merchant, 200)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let category = validate::required_text("category", &details.category, 100)
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let description = match details.description.as_deref() {
        None => None,
        Some(d) => validate::optional_text("description", d, 2000)
            .map_err(|e| errors.push(e))
            .ok()
            .filter(|d| !d.is_empty()),
    };
    if details.spent_on > today {
        errors.push(FieldError::new("spent_on", "must not be in the future"));
    }
    if !errors.is_empty() {
        return Err(ExpenseError::Invalid(errors));
    }
    Ok(ExpenseDetails {
        money: details.money,
        merchant,
        category,
        spent_on: details.spent_on,
        description,
        mileage: details.mileage,
    })
}

/// A mileage claim's amount is its distance at the rate of its day, in the organization's
/// currency (so no exchange rate applies).
fn check_mileage(details: &ExpenseDetails, valuation: &Valuation) -> Result<(), ExpenseError> {
    let Some(mileage) = &details.mileage else {
        return Ok(());
    };
    let wrong = |field: &str, message: String| {
        Err(ExpenseError::Invalid(vec![FieldError::new(field, message)]))
    };
    check_distance(mileage.distance).map_err(|e| ExpenseError::Invalid(vec![e]))?;
    if !mileage.rate.covers(details.spent_on) {
        return wrong(
            "spent_on",
            format!(
                "the mileage rate applied is not valid on {}",
                details.spent_on
            ),
        );
    }
    match mileage.amount(details.money.currency()) {
        Ok(amount) if amount == details.money && valuation.rate.is_none() => Ok(()),
        Ok(amount) => wrong(
            "amount",
            format!(
                "a mileage claim is its distance at the rate: {} {}",
                amount.amount_string(),
                amount.currency().code()
            ),
        ),
        Err(e) => wrong("mileage.distance", format!("makes no amount: {e}")),
    }
}

/// A valuation agrees with the amount it values: the rate applied to the amount gives the
/// base amount, and an amount already in the base currency needs no rate.
fn check_valuation(money: &Money, valuation: &Valuation) -> Result<(), ExpenseError> {
    let wrong = |message: &str| {
        Err(ExpenseError::Invalid(vec![FieldError::new(
            "exchange_rate",
            message,
        )]))
    };
    match (&valuation.base_amount, &valuation.rate) {
        (None, None) => Ok(()),
        (None, Some(_)) => wrong("a rate without the amount it makes"),
        (Some(base), None) if base != money => {
            wrong("the amount in the organization's currency needs a rate")
        }
        (Some(_), None) => Ok(()),
        (Some(base), Some(_)) if base.currency() == money.currency() => {
            wrong("the expense is in the organization's currency: no rate applies")
        }
        (Some(base), Some(rate)) => match rate.apply(money, base.currency()) {
            Ok(made) if made == *base => Ok(()),
            Ok(_) => wrong("the rate does not make the amount in the organization's currency"),
            Err(e) => wrong(&e.to_string()),
        },
    }
}

impl Aggregate for Expense {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = ExpenseCommand;
    type Event = ExpenseEvent;
    type Error = ExpenseError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            ExpenseCommand::CreateExpense {
                ctx,
                details,
                receipt_id,
                today,
                valuation,
                assessment,
            } => {
                if self.state.is_some() {
                    return Err(ExpenseError::AlreadyExists);
                }
                if !ctx.actor.role.may_record_expenses() {
                    return Err(ExpenseError::AuditorsCannotRecord);
                }
                let d = validate_details(details, today)?;
                check_valuation(&d.money, &valuation)?;
                check_mileage(&d, &valuation)?;
                ExpenseEvent::ExpenseCreated {
                    organization_id: ctx.actor.organization_id,
                    owner_id: ctx.actor.user_id,
                    money: d.money,
                    merchant: d.merchant,
                    category: d.category,
                    spent_on: d.spent_on,
                    description: d.description,
                    receipt_id,
                    mileage: d.mileage,
                    base_amount: valuation.base_amount,
                    rate: valuation.rate,
                    policy_version: assessment.policy_version,
                    violations: assessment.violations,
                    created_at: ctx.at,
                }
            }
            ExpenseCommand::UpdateExpense {
                ctx,
                changes,
                today,
                valuation,
                assessment,
            } => {
                let s = self.owned(&ctx)?;
                // Editing a submitted expense withdraws it: its chain starts again at the
                // next submission.
                if !s.status.editable() && s.status != ExpenseStatus::Submitted {
                    return Err(ExpenseError::WrongStatus(s.status));
                }
                if s.mileage.is_none() && changes.mileage.is_some() {
                    return Err(ExpenseError::Invalid(vec![FieldError::new(
                        "mileage",
                        NOT_A_MILEAGE_CLAIM,
                    )]));
                }
                let merged = ExpenseDetails {
                    money: changes.money.unwrap_or(s.money),
                    merchant: changes.merchant.unwrap_or_else(|| s.merchant.clone()),
                    category: changes.category.unwrap_or_else(|| s.category.clone()),
                    spent_on: changes.spent_on.unwrap_or(s.spent_on),
                    description: changes.description.unwrap_or_else(|| s.description.clone()),
                    mileage: changes.mileage.or_else(|| s.mileage.clone()),
                };
                let d = validate_details(merged, today)?;
                let valued = (d.money == s.money && d.spent_on == s.spent_on).then(|| Valuation {
                    base_amount: s.base_amount,
                    rate: s.rate.clone(),
                });
                let valuation = match (valuation, valued) {
                    (Some(v), _) | (None, Some(v)) => v,
                    (None, None) => {
                        return Err(ExpenseError::Invalid(vec![FieldError::new(
                            "amount",
                            "a new amount or day needs its value in the organization's currency",
                        )]))
                    }
                };
                check_valuation(&d.money, &valuation)?;
                check_mileage(&d, &valuation)?;
                let unchanged = d.money == s.money
                    && d.mileage == s.mileage
                    && d.merchant == s.merchant
                    && d.category == s.category
                    && d.spent_on == s.spent_on
                    && d.description == s.description
                    && valuation.base_amount == s.base_amount
                    && valuation.rate == s.rate;
                if unchanged {
                    return Ok(());
                }
                ExpenseEvent::ExpenseUpdated {
                    money: d.money,
                    merchant: d.merchant,
                    category: d.category,
                    spent_on: d.spent_on,
                    description: d.description,
                    mileage: d.mileage,
                    base_amount: valuation.base_amount,
                    rate: valuation.rate,
                    policy_version: assessment.policy_version,
                    violations: assessment.violations,
                    updated_at: ctx.at,
                }
            }
            ExpenseCommand::AttachReceipt { ctx, receipt_id } => {
                let s = self.owned(&ctx)?;
                if s.receipt_ids.contains(&receipt_id) {
                    return Ok(());
                }
                if !s.status.editable() {
                    return Err(ExpenseError::WrongStatus(s.status));
                }
                if s.receipt_ids.len() >= MAX_RECEIPTS {
                    return Err(ExpenseError::Invalid(vec![FieldError::new(
                        "receipt_id",
                        format!("an expense has at most {MAX_RECEIPTS} receipts"),
                    )]));
                }
                ExpenseEvent::ExpenseReceiptAttached {
                    receipt_id,
                    attached_at: ctx.at,
                }
            }
            ExpenseCommand::SubmitExpense {
                ctx,
                assessment,
                justification,
                approval_steps,
            } => {
                let s = self.owned(&ctx)?;
                if !s.status.editable() {
                    return Err(ExpenseError::WrongStatus(s.status));
                }
                let violations = assessment.violations;
                if violations.iter().any(|v| v.level == Level::Block) {
                    return Err(ExpenseError::Blocked(violations));
                }
                let justification = match justification {
                    None => None,
                    Some(j) => Some(
                        validate::optional_text("justification", &j, 2000)
                            .map_err(|e| ExpenseError::Invalid(vec![e]))?,
                    )
                    .filter(|j| !j.is_empty()),
                };
                if !violations.is_empty() && justification.is_none() {
                    return Err(ExpenseError::Unjustified(violations));
                }
                let unresolved = approval_steps.is_empty()
                    || approval_steps.iter().any(|step| {
                        step.approver == Approver::Manager
                            && step.user_id.is_none_or(|m| m == s.owner_id)
                    });
                if unresolved {
                    return Err(ExpenseError::Invalid(vec![FieldError::new(
                        "approval_steps",
                        "every step of the chain needs someone other than the owner",
                    )]));
                }
                ExpenseEvent::ExpenseSubmitted {
                    resubmission: s.status == ExpenseStatus::Rejected,
                    policy_version: assessment.policy_version,
                    violations,
                    justification,
                    approval_steps,
                    submitted_at: ctx.at,
                }
            }
            ExpenseCommand::ApproveExpense {
                ctx,
                comment,
                on_behalf_of,
            } => {
                let (s, n) = self.decidable(&ctx, on_behalf_of)?;
                let last = n + 1 == s.chain().len();
                let comment = match comment {
                    None => None,
                    Some(c) => Some(
                        validate::optional_text("comment", &c, 2000)
                            .map_err(|e| ExpenseError::Invalid(vec![e]))?,
                    )
                    .filter(|c| !c.is_empty()),
                };
                let step = u32::try_from(n + 1).unwrap_or(u32::MAX);
                let on_behalf_of = on_behalf_of.map(|(person, _)| person);
                if last {
                    ExpenseEvent::ExpenseApproved {
                        approver_id: ctx.actor.user_id,
                        comment,
                        step,
                        on_behalf_of,
                        approved_at: ctx.at,
                    }
                } else {
                    ExpenseEvent::ExpenseStepApproved {
                        step,
                        approver_id: ctx.actor.user_id,
                        on_behalf_of,
                        comment,
                        approved_at: ctx.at,
                    }
                }
            }
            ExpenseCommand::RejectExpense {
                ctx,
                reason,
                on_behalf_of,
            } => {
                let (_, n) = self.decidable(&ctx, on_behalf_of)?;
                let reason = validate::required_text("reason", &reason, 2000)
                    .map_err(|e| ExpenseError::Invalid(vec![e]))?;
                ExpenseEvent::ExpenseRejected {
                    approver_id: ctx.actor.user_id,
                    reason,
                    step: u32::try_from(n + 1).unwrap_or(u32::MAX),
                    on_behalf_of: on_behalf_of.map(|(person, _)| person),
                    rejected_at: ctx.at,
                }
            }
            ExpenseCommand::ReimburseExpense { ctx } => {
                let s = self.live(&ctx)?;
                if ctx.actor.role != Role::Admin {
                    return Err(ExpenseError::NotAnAdmin);
                }
                self.check_version(&ctx)?;
                if s.status != ExpenseStatus::Approved {
                    return Err(ExpenseError::WrongStatus(s.status));
                }
                ExpenseEvent::ExpenseReimbursed {
                    reimbursed_by: ctx.actor.user_id,
                    reimbursed_at: ctx.at,
                }
            }
            ExpenseCommand::ExportExpense {
                ctx,
                batch_id,
                format,
                again,
            } => {
                let s = self.live(&ctx)?;
                if !matches!(ctx.actor.role, Role::Admin | Role::Finance) {
                    return Err(ExpenseError::NotFinance);
                }
                if !matches!(
                    s.status,
                    ExpenseStatus::Approved | ExpenseStatus::Reimbursed
                ) {
                    return Err(ExpenseError::WrongStatus(s.status));
                }
                match &s.exported {
                    Some(done) if done.batch_id == batch_id => return Ok(()),
                    Some(done) if !again => {
                        return Err(ExpenseError::AlreadyExported(done.batch_id))
                    }
                    _ => {}
                }
                ExpenseEvent::ExpenseExported {
                    batch_id,
                    format,
                    exported_by: ctx.actor.user_id,
                    exported_at: ctx.at,
                }
            }
            ExpenseCommand::DeleteExpense { ctx } => {
                let s = self.owned(&ctx)?;
                if s.status != ExpenseStatus::Draft {
                    return Err(ExpenseError::WrongStatus(s.status));
                }
                ExpenseEvent::ExpenseDeleted {
                    deleted_by: ctx.actor.user_id,
                    deleted_at: ctx.at,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.version += 1;
        if let ExpenseEvent::ExpenseCreated {
            organization_id,
            owner_id,
            money,
            merchant,
            category,
            spent_on,
            description,
            receipt_id,
            mileage,
            base_amount,
            rate,
            policy_version,
            violations,
            created_at,
        } = event
        {
            self.state = Some(ExpenseState {
                organization_id,
                owner_id,
                money,
                merchant,
                category,
                spent_on,
                description,
                mileage,
                base_amount,
                rate,
                policy_version,
                violations,
                justification: None,
                approval_steps: Vec::new(),
                approvals: Vec::new(),
                step_since: None,
                status: ExpenseStatus::Draft,
                receipt_ids: receipt_id.into_iter().collect(),
                created_at,
                updated_at: created_at,
                submitted_at: None,
                decided_at: None,
                decided_by: None,
                decision_reason: None,
                reimbursed_at: None,
                exported: None,
            });
            return;
        }
        let Some(s) = self.state.as_mut() else {
            return;
        };
        match event {
            ExpenseEvent::ExpenseCreated { .. } => {}
            ExpenseEvent::ExpenseUpdated {
                money,
                merchant,
                category,
                spent_on,
                description,
                mileage,
                base_amount,
                rate,
                policy_version,
                violations,
                updated_at,
            } => {
                s.money = money;
                s.merchant = merchant;
                s.category = category;
                s.spent_on = spent_on;
                s.description = description;
                s.mileage = mileage;
                s.base_amount = base_amount;
                s.rate = rate;
                s.policy_version = policy_version;
                s.violations = violations;
                s.justification = None;
                if s.status == ExpenseStatus::Submitted {
                    s.status = ExpenseStatus::Draft;
                    s.submitted_at = None;
                }
                s.approval_steps.clear();
                s.approvals.clear();
                s.step_since = None;
                s.updated_at = updated_at;
            }
            ExpenseEvent::ExpenseReceiptAttached {
                receipt_id,
                attached_at,
            } => {
                s.receipt_ids.push(receipt_id);
                s.updated_at = attached_at;
            }
            ExpenseEvent::ExpenseSubmitted {
                policy_version,
                violations,
                justification,
                approval_steps,
                submitted_at,
                ..
            } => {
                s.status = ExpenseStatus::Submitted;
                s.approval_steps = approval_steps;
                s.approvals.clear();
                s.step_since = Some(submitted_at);
                s.policy_version = policy_version;
                s.violations = violations;
                s.justification = justification;
                s.submitted_at = Some(submitted_at);
                s.decided_at = None;
                s.decided_by = None;
                s.decision_reason = None;
                s.updated_at = submitted_at;
            }
            ExpenseEvent::ExpenseStepApproved {
                approver_id,
                on_behalf_of,
                approved_at,
                ..
            } => {
                s.approvals.push(StepApproval {
                    approver_id,
                    on_behalf_of,
                });
                s.step_since = Some(approved_at);
                s.updated_at = approved_at;
            }
            ExpenseEvent::ExpenseApproved {
                approver_id,
                comment,
                on_behalf_of,
                approved_at,
                ..
            } => {
                s.approvals.push(StepApproval {
                    approver_id,
                    on_behalf_of,
                });
                s.step_since = None;
                s.status = ExpenseStatus::Approved;
                s.decided_at = Some(approved_at);
                s.decided_by = Some(approver_id);
                s.decision_reason = comment;
                s.updated_at = approved_at;
            }
            ExpenseEvent::ExpenseRejected {
                approver_id,
                reason,
                rejected_at,
                ..
            } => {
                s.step_since = None;
                s.status = ExpenseStatus::Rejected;
                s.decided_at = Some(rejected_at);
                s.decided_by = Some(approver_id);
                s.decision_reason = Some(reason);
                s.updated_at = rejected_at;
            }
            ExpenseEvent::ExpenseReimbursed { reimbursed_at, .. } => {
                s.status = ExpenseStatus::Reimbursed;
                s.reimbursed_at = Some(reimbursed_at);
                s.updated_at = reimbursed_at;
            }
            ExpenseEvent::ExpenseDeleted { deleted_at, .. } => {
                self.deleted = true;
                s.updated_at = deleted_at;
            }
            ExpenseEvent::ExpenseExported {
                batch_id,
                format,
                exported_at,
                ..
            } => {
                s.exported = Some(Export {
                    batch_id,
                    format,
                    at: exported_at,
                });
                s.updated_at = exported_at;
            }
        }
    }
}
