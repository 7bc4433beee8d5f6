//! What expenses look like on the wire: views, requests and list parameters.

use chrono::{DateTime, NaiveDate, Utc};
use expensewise_domain::expense::{ExpenseState, ExpenseStatus};
use expensewise_projections::expenses::ExpenseRow;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

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
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
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
    /// currency has.
    #[schema(example = "42.50")]
    pub amount: String,
    /// An ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
    pub merchant: String,
    pub category: String,
    /// Not after today.
    pub spent_on: NaiveDate,
    #[serde(default)]
    pub description: Option<String>,
    /// A receipt you uploaded, to attach.
    #[serde(default)]
    pub receipt_id: Option<Uuid>,
}

/// Any of the create fields; absent fields stay as they are, `"description": null`
/// clears the description.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchExpenseRequest {
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub merchant: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub spent_on: Option<NaiveDate>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub receipt_id: Option<Uuid>,
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
    pub comment: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Why the expense is rejected; required.
    pub reason: String,
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
