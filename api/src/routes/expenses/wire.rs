//! What expenses look like on the wire: views, requests and list parameters.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use expensewise_domain::exchange::Rate;
use expensewise_domain::expense::{ExpenseState, ExpenseStatus, StepApproval};
use expensewise_domain::policy::{ApprovalStep, DistanceUnit, Level, Mileage, Violation};
use expensewise_projections::expenses::ExpenseRow;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use expensewise_application::policy::Distance;

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpenseStatusView {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Reimbursed,
}

impl From<ExpenseStatus> for ExpenseStatusView {
    fn from(s: ExpenseStatus) -> Self {
        match s {
            ExpenseStatus::Draft => Self::Draft,
            ExpenseStatus::Submitted => Self::Submitted,
            ExpenseStatus::Approved => Self::Approved,
            ExpenseStatus::Rejected => Self::Rejected,
            ExpenseStatus::Reimbursed => Self::Reimbursed,
        }
    }
}

/// An expense as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpenseView {
    pub id: Uuid,
    pub owner_id: Uuid,
    /// A decimal string with the currency's number of fraction digits.
    #[schema(example = "42.50")]
    pub amount: String,
    #[schema(example = "EUR")]
    pub currency: String,
    pub merchant: String,
    pub category: String,
    pub spent_on: NaiveDate,
    pub description: Option<String>,
    pub status: ExpenseStatusView,
    pub receipt_ids: Vec<Uuid>,
    /// Send as `If-Match` to change exactly this version.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<Uuid>,
    /// The approver's comment, or the reason for a rejection.
    pub decision_reason: Option<String>,
    /// The amount in the organization's currency; `null` when no rate was known for the
    /// day it was spent (it cannot be submitted so), or for expenses recorded before
    /// amounts were kept in it.
    #[schema(example = "5.69")]
    pub base_amount: Option<String>,
    #[schema(example = "EUR")]
    pub base_currency: Option<String>,
    /// The rate that made `base_amount`; `null` when the expense is in that currency.
    pub rate: Option<RateView>,
    /// The policy version of the latest evaluation (of the submission once submitted; 0
    /// when the organization has none) and what it found.
    pub policy_version: u64,
    pub violations: Vec<ViolationView>,
    /// The submitter's word on the policy's warnings.
    pub justification: Option<String>,
    /// The approval chain of the current submission, step by step, with who approved
    /// each step so far (empty before the first submission).
    pub approval_steps: Vec<ApprovalStepView>,
    /// The step now awaited (counting from 1), while submitted.
    pub awaiting_step: Option<u32>,
    /// For a mileage claim: the distance and the organization's rate that made `amount`.
    pub mileage: Option<MileageView>,
    /// The accounting export that last took it (`POST /v1/exports`).
    pub exported: Option<ExportedView>,
}

/// An export batch that took an expense.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportedView {
    pub batch_id: Uuid,
    /// `csv` or `datev`.
    pub format: String,
    pub at: DateTime<Utc>,
}

impl From<&expensewise_domain::expense::Export> for ExportedView {
    fn from(e: &expensewise_domain::expense::Export) -> Self {
        Self {
            batch_id: e.batch_id,
            format: e.format.clone(),
            at: e.at,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DistanceUnitView {
    Km,
    Mi,
}

impl From<DistanceUnit> for DistanceUnitView {
    fn from(unit: DistanceUnit) -> Self {
        match unit {
            DistanceUnit::Km => Self::Km,
            DistanceUnit::Mi => Self::Mi,
        }
    }
}

impl From<DistanceUnitView> for DistanceUnit {
    fn from(unit: DistanceUnitView) -> Self {
        match unit {
            DistanceUnitView::Km => Self::Km,
            DistanceUnitView::Mi => Self::Mi,
        }
    }
}

/// A mileage claim as recorded: the rate is the one valid on `spent_on` when it was
/// priced, kept whatever the policy says later.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MileageView {
    #[schema(example = "123.45")]
    pub distance: String,
    pub unit: DistanceUnitView,
    /// Units of the organization's currency per `unit`.
    #[schema(example = "0.30")]
    pub per_unit: String,
    pub rate_valid_from: NaiveDate,
    pub rate_valid_until: Option<NaiveDate>,
}

impl From<&Mileage> for MileageView {
    fn from(m: &Mileage) -> Self {
        Self {
            distance: m.distance.to_string(),
            unit: m.rate.unit.into(),
            per_unit: m.rate.per_unit.to_string(),
            rate_valid_from: m.rate.valid_from,
            rate_valid_until: m.rate.valid_until,
        }
    }
}

/// A distance driven, to claim at the organization's mileage rate of `spent_on`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MileageRequest {
    /// A positive decimal string, at most 100000, with at most 2 fraction digits.
    #[schema(example = "123.45", pattern = r"^[0-9]{1,6}(\.[0-9]{1,2})?$")]
    pub distance: String,
    pub unit: DistanceUnitView,
}

impl MileageRequest {
    pub fn distance(&self) -> ApiResult<Distance> {
        let distance = Decimal::from_str(self.distance.trim()).map_err(|_| {
            ApiError::invalid_field("mileage.distance", "is not a decimal number like \"42.5\"")
        })?;
        Ok(Distance {
            distance,
            unit: self.unit.into(),
        })
    }
}

/// One step of an approval chain.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApprovalStepView {
    /// `manager` (then `user_id` is the manager), `approver`, `finance` or `admin`.
    #[schema(example = "finance")]
    pub approver: String,
    pub user_id: Option<Uuid>,
    /// Who approved the step, once approved.
    pub approved_by: Option<Uuid>,
    /// The person `approved_by` decided for, as their delegate.
    pub on_behalf_of: Option<Uuid>,
}

fn chain_view(steps: &[ApprovalStep], approvals: &[StepApproval]) -> Vec<ApprovalStepView> {
    steps
        .iter()
        .enumerate()
        .map(|(n, step)| ApprovalStepView {
            approver: step.approver.as_str().to_string(),
            user_id: step.user_id,
            approved_by: approvals.get(n).map(|a| a.approver_id),
            on_behalf_of: approvals.get(n).and_then(|a| a.on_behalf_of),
        })
        .collect()
}

fn awaiting(status: &str, steps: usize, approvals: usize) -> Option<u32> {
    (status == "submitted")
        .then(|| u32::try_from(approvals.min(steps.max(1)) + 1).ok())
        .flatten()
}

/// How an amount in another currency was converted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RateView {
    /// `reference`: the published rates of `date` (the latest on or before the day
    /// spent) from `source`, through the euro; `manual`: given with the expense.
    #[schema(example = "reference")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "ECB")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// Units of the expense's currency one euro bought.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "175.68")]
    pub from_per_euro: Option<String>,
    /// Units of the organization's currency one euro bought.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "1")]
    pub to_per_euro: Option<String>,
    /// For a manual rate: units of the organization's currency per unit of the expense's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_unit: Option<String>,
}

impl From<&Rate> for RateView {
    fn from(rate: &Rate) -> Self {
        match rate {
            Rate::Reference {
                source,
                date,
                from_per_euro,
                to_per_euro,
            } => Self {
                kind: "reference".into(),
                source: Some(source.clone()),
                date: Some(*date),
                from_per_euro: Some(from_per_euro.to_string()),
                to_per_euro: Some(to_per_euro.to_string()),
                per_unit: None,
            },
            Rate::Manual { per_unit } => Self {
                kind: "manual".into(),
                source: None,
                date: None,
                from_per_euro: None,
                to_per_euro: None,
                per_unit: Some(per_unit.to_string()),
            },
        }
    }
}

/// A rule of the organization's policy the expense breaks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViolationView {
    /// The rule's id (`exchange_rate`: the built-in check that the amount is known in
    /// the organization's currency).
    pub rule: String,
    pub level: LevelView,
    pub message: String,
}

/// `warn` needs a justification to submit; `block` refuses the submission.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LevelView {
    Warn,
    Block,
}

impl From<&Violation> for ViolationView {
    fn from(v: &Violation) -> Self {
        Self {
            rule: v.rule.clone(),
            level: match v.level {
                Level::Warn => LevelView::Warn,
                Level::Block => LevelView::Block,
            },
            message: v.message.clone(),
        }
    }
}

/// A decimal rate as a client sends it: positive, at most 12 fraction digits.
pub fn parse_rate(text: Option<&str>) -> ApiResult<Option<Decimal>> {
    let Some(text) = text else { return Ok(None) };
    let rate = Decimal::from_str(text.trim()).map_err(|_| {
        ApiError::invalid_field("exchange_rate", "is not a decimal number like \"0.0057\"")
    })?;
    if rate <= Decimal::ZERO || rate.scale() > 12 || rate > Decimal::from(1_000_000) {
        return Err(ApiError::invalid_field(
            "exchange_rate",
            "must be positive, at most 1,000,000, with at most 12 fraction digits",
        ));
    }
    Ok(Some(rate))
}

impl ExpenseView {
    pub fn new(id: Uuid, s: &ExpenseState, version: u64) -> Self {
        Self {
            id,
            owner_id: s.owner_id,
            amount: s.money.amount_string(),
            currency: s.money.currency().code().to_string(),
            merchant: s.merchant.clone(),
            category: s.category.clone(),
            spent_on: s.spent_on,
            description: s.description.clone(),
            status: s.status.into(),
            receipt_ids: s.receipt_ids.clone(),
            version,
            created_at: s.created_at,
            updated_at: s.updated_at,
            submitted_at: s.submitted_at,
            decided_at: s.decided_at,
            decided_by: s.decided_by,
            decision_reason: s.decision_reason.clone(),
            base_amount: s.base_amount.map(|b| b.amount_string()),
            base_currency: s.base_amount.map(|b| b.currency().code().to_string()),
            rate: s.rate.as_ref().map(RateView::from),
            policy_version: s.policy_version,
            violations: s.violations.iter().map(ViolationView::from).collect(),
            justification: s.justification.clone(),
            approval_steps: chain_view(&s.approval_steps, &s.approvals),
            awaiting_step: awaiting(s.status.as_str(), s.approval_steps.len(), s.approvals.len()),
            mileage: s.mileage.as_ref().map(MileageView::from),
            exported: s.exported.as_ref().map(ExportedView::from),
        }
    }
}

impl ExpenseView {
    pub fn from_row(row: ExpenseRow) -> ApiResult<Self> {
        let status = ExpenseStatus::parse(&row.status)
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!(
                    "the expenses read model holds an unknown status {:?}",
                    row.status
                ))
            })?
            .into();
        Ok(Self {
            id: row.id,
            owner_id: row.owner_id,
            amount: row.amount,
            currency: row.currency,
            merchant: row.merchant,
            category: row.category,
            spent_on: row.spent_on,
            description: row.description,
            status,
            receipt_ids: row.receipt_ids,
            version: u64::try_from(row.version).unwrap_or_default(),
            created_at: row.created_at,
            updated_at: row.updated_at,
            submitted_at: row.submitted_at,
            decided_at: row.decided_at,
            decided_by: row.decided_by,
            decision_reason: row.decision_reason,
            base_amount: row.base_amount,
            base_currency: row.base_currency,
            rate: row.rate.as_ref().map(RateView::from),
            policy_version: u64::try_from(row.policy_version).unwrap_or_default(),
            violations: row.violations.iter().map(ViolationView::from).collect(),
            justification: row.justification,
            approval_steps: chain_view(&row.approval_steps, &row.approvals),
            awaiting_step: awaiting(&row.status, row.approval_steps.len(), row.approvals.len()),
            mileage: row.mileage.as_ref().map(MileageView::from),
            exported: row.exported.as_ref().map(ExportedView::from),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExpensePage {
    pub items: Vec<ExpenseView>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub status: Option<ExpenseStatusFilter>,
    pub category: Option<String>,
    /// Only this user's expenses (employees always see only their own).
    pub owner_id: Option<Uuid>,
    /// Spent on or after this date.
    pub from: Option<NaiveDate>,
    /// Spent on or before this date.
    pub to: Option<NaiveDate>,
    /// Text in the merchant or description (case-insensitive).
    pub q: Option<String>,
    /// Only expenses changed at or after this time (RFC 3339), oldest change first —
    /// for clients that poll for changes (deletions are not listed: webhooks tell them).
    pub updated_since: Option<DateTime<Utc>>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(
        pattern = r"^[0-9]{1,16}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    pub cursor: Option<String>,
    /// A command's `X-Consistency-Token` (the header works too).
    pub consistency_token: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpenseStatusFilter {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Reimbursed,
}

impl ExpenseStatusFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Reimbursed => "reimbursed",
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExpenseRequest {
    /// A positive decimal string, e.g. "12.34", with no more fraction digits than the
    /// currency has. Required unless `mileage` is given (then it must be absent).
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_amount)]
    pub amount: Option<String>,
    /// An ISO 4217 code; required with `amount`.
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_currency)]
    pub currency: Option<String>,
    /// Required for an amount spent; a mileage claim without one reads "123.45 km at
    /// 0.30 EUR/km".
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_required_text::<200>)]
    pub merchant: Option<String>,
    /// Required for an amount spent; `mileage` for a mileage claim without one.
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_required_text::<100>)]
    pub category: Option<String>,
    /// Not after today.
    pub spent_on: NaiveDate,
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_text::<2000>)]
    pub description: Option<String>,
    /// A receipt you uploaded, to attach.
    #[serde(default)]
    pub receipt_id: Option<Uuid>,
    /// For an expense in another currency than the organization's: units of the
    /// organization's currency per unit of the expense's, as on a card statement. Without
    /// it, the reference rate of `spent_on` is used (the latest published on or before it).
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_rate)]
    pub exchange_rate: Option<String>,
    /// A distance driven instead of an amount: the amount is the distance at the
    /// organization's mileage rate of `spent_on`, in its currency (422 when it has none).
    #[serde(default)]
    pub mileage: Option<MileageRequest>,
}

/// Any of the create fields; absent fields stay as they are, `"description": null`
/// clears the description.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchExpenseRequest {
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_amount)]
    pub amount: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_currency)]
    pub currency: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_required_text::<200>)]
    pub merchant: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_required_text::<100>)]
    pub category: Option<String>,
    #[serde(default)]
    pub spent_on: Option<NaiveDate>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::schemas::optional_text::<2000>)]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub receipt_id: Option<Uuid>,
    /// A card statement's rate (see the create request); a new amount, currency or day
    /// without one is converted at the reference rate of the day.
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_rate)]
    pub exchange_rate: Option<String>,
    /// A mileage claim's new distance; a new distance or day is priced at the rate of the
    /// day. Amounts spent do not take one, nor mileage claims an amount.
    #[serde(default)]
    pub mileage: Option<MileageRequest>,
}

/// Tells "absent" (outer `None`, from `default`) from "null" (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_text::<2000>)]
    pub comment: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Why the expense is rejected; required.
    #[schema(schema_with = crate::schemas::required_text::<2000>)]
    pub reason: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// Why the expense is right although it breaks rules that warn; required when it
    /// does (422 names `justification` otherwise), shown to the approvers.
    #[serde(default)]
    #[schema(schema_with = crate::schemas::optional_text::<2000>)]
    pub justification: Option<String>,
}

/// Commands with no input accept an empty body or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfParams {
    /// The expense as it was then: a time of recording (RFC 3339, e.g.
    /// `2026-03-31T23:59:59Z`) or a place in the global order (`txid.position`, as a
    /// consistency token or audit cursor gives it). Not the business date `spent_on`.
    pub as_of: Option<String>,
}

impl AsOfParams {
    pub fn parse(&self) -> ApiResult<Option<expensewise_application::history::AsOf>> {
        self.as_of
            .as_deref()
            .map(|text| {
                expensewise_application::history::AsOf::parse(text).ok_or_else(|| {
                    ApiError::invalid_field(
                        "as_of",
                        "is neither an RFC 3339 time nor a global position like 1234.56",
                    )
                })
            })
            .transpose()
    }
}
