//! The organization's spend policy: its rules (admins change them; everyone reads them)
//! and every version it has had.

use std::str::FromStr;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use expensewise_application::policy as use_case;
use expensewise_domain::policy::{Approver, ChainRule, Level, MileageRate, Policy, Rule, RuleKind};
use expensewise_domain::Role;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::expenses::{DistanceUnitView, LevelView};
use super::users::RoleView;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, IfMatch, JsonBody, Optimistic, RequestMeta};
use crate::state::AppState;

/// What a rule checks; amounts are in the organization's currency.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuleKindView {
    /// A receipt is attached when the expense is over `amount`.
    ReceiptRequired,
    /// A receipt listing what was bought, over `amount`.
    ItemisedReceipt,
    /// One expense is at most `amount`.
    MaxPerExpense,
    /// A person's expenses of one day (in `categories`, if given) are at most `amount`.
    MaxPerDay,
    /// The same per calendar month.
    MaxPerMonth,
    /// Submitted at most `days` after `spent_on`.
    MaxAge,
    /// Flags a Saturday, Sunday or one of `holidays`.
    WeekendOrHoliday,
    /// A merchant with one of `merchant_words`, or a category of `prohibited_categories`.
    Prohibited,
    /// A description over `amount`.
    DescriptionRequired,
    /// Another expense with the same receipt, or the same merchant, amount and day.
    Duplicate,
}

const KINDS: [(RuleKindView, RuleKind); 10] = [
    (RuleKindView::ReceiptRequired, RuleKind::ReceiptRequired),
    (RuleKindView::ItemisedReceipt, RuleKind::ItemisedReceipt),
    (RuleKindView::MaxPerExpense, RuleKind::MaxPerExpense),
    (RuleKindView::MaxPerDay, RuleKind::MaxPerDay),
    (RuleKindView::MaxPerMonth, RuleKind::MaxPerMonth),
    (RuleKindView::MaxAge, RuleKind::MaxAge),
    (RuleKindView::WeekendOrHoliday, RuleKind::WeekendOrHoliday),
    (RuleKindView::Prohibited, RuleKind::Prohibited),
    (
        RuleKindView::DescriptionRequired,
        RuleKind::DescriptionRequired,
    ),
    (RuleKindView::Duplicate, RuleKind::Duplicate),
];

/// One rule. `kind` decides which of the optional fields it takes (422 names the rule
/// when one is missing or does not apply).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleView {
    /// Unique in the policy: 1 to 64 of a-z, 0-9, `-` and `_`.
    #[schema(example = "receipts-over-75")]
    pub id: String,
    pub kind: RuleKindView,
    pub level: LevelView,
    /// A decimal string in the organization's currency (thresholds are strictly "over").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "75.00")]
    pub amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<NaiveDate>,
    /// Whole words or phrases, matched case-insensitively in the merchant's name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merchant_words: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prohibited_categories: Vec<String>,
    /// Only expenses of these categories (all when empty); for daily and monthly limits,
    /// also which expenses count towards the sum.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Only expenses of people with these roles (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleView>,
}

impl RuleView {
    fn from_rule(rule: &Rule) -> Self {
        let kind = KINDS
            .iter()
            .find(|(_, k)| *k == rule.kind)
            .map_or(RuleKindView::Duplicate, |(v, _)| *v);
        Self {
            id: rule.id.clone(),
            kind,
            level: match rule.level {
                Level::Warn => LevelView::Warn,
                Level::Block => LevelView::Block,
            },
            amount: rule.amount.map(|a| a.to_string()),
            days: rule.days,
            holidays: rule.holidays.clone(),
            merchant_words: rule.merchant_words.clone(),
            prohibited_categories: rule.prohibited_categories.clone(),
            categories: rule.categories.clone(),
            roles: rule.roles.iter().map(|r| RoleView::from(*r)).collect(),
        }
    }

    fn into_rule(self, n: usize) -> ApiResult<Rule> {
        let field = format!("rules[{n}] ({})", self.id);
        let amount = decimal(&field, "amount", self.amount.as_deref())?;
        Ok(Rule {
            kind: KINDS
                .iter()
                .find(|(v, _)| *v == self.kind)
                .map_or(RuleKind::Duplicate, |(_, k)| *k),
            level: match self.level {
                LevelView::Warn => Level::Warn,
                LevelView::Block => Level::Block,
            },
            amount,
            days: self.days,
            holidays: self.holidays,
            merchant_words: self.merchant_words,
            prohibited_categories: self.prohibited_categories,
            categories: self.categories,
            roles: self.roles.into_iter().map(Role::from).collect(),
            id: self.id,
        })
    }
}

/// Each item read with its place in the list, which errors name.
fn numbered<T, U>(items: Vec<T>, read: impl Fn(T, usize) -> ApiResult<U>) -> ApiResult<Vec<U>> {
    items
        .into_iter()
        .enumerate()
        .map(|(n, item)| read(item, n))
        .collect()
}

/// A decimal `name` of the rule or chain `field`, when given.
fn decimal(field: &str, name: &str, text: Option<&str>) -> ApiResult<Option<Decimal>> {
    text.map(|text| {
        Decimal::from_str(text.trim()).map_err(|_| {
            ApiError::invalid_field(field, format!("{name} {text:?} is not a decimal number"))
        })
    })
    .transpose()
}

/// The organization's policy at one version.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    /// 0 while the organization has never set a policy. Also the `ETag`.
    pub version: u64,
    pub rules: Vec<RuleView>,
    pub approval_chains: Vec<ChainView>,
    pub mileage_rates: Vec<MileageRateView>,
    pub changed_at: Option<DateTime<Utc>>,
    pub changed_by: Option<Uuid>,
}

impl From<&Policy> for PolicyView {
    fn from(p: &Policy) -> Self {
        Self {
            version: p.version,
            rules: p.rules.iter().map(RuleView::from_rule).collect(),
            approval_chains: p
                .approval_chains
                .iter()
                .map(ChainView::from_chain)
                .collect(),
            mileage_rates: p.mileage_rates.iter().map(MileageRateView::from).collect(),
            changed_at: p.changed_at,
            changed_by: p.changed_by,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPolicyRequest {
    /// The whole rule set; at most 200 rules. `[]` removes every rule.
    pub rules: Vec<RuleView>,
    /// Who approves what (absent or `[]`: one approver for everything).
    #[serde(default)]
    pub approval_chains: Vec<ChainView>,
    /// What mileage claims are paid per unit, from when to when (absent or `[]`: mileage
    /// is not claimed); at most 100, one rate per unit and day.
    #[serde(default)]
    pub mileage_rates: Vec<MileageRateView>,
}

/// The organization pays `per_unit` (in its currency) per `unit` driven from
/// `valid_from` to `valid_until` (both included; open-ended when absent).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MileageRateView {
    pub unit: DistanceUnitView,
    /// A positive decimal string with at most 4 fraction digits.
    #[schema(example = "0.30")]
    pub per_unit: String,
    pub valid_from: NaiveDate,
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
}

impl From<&MileageRate> for MileageRateView {
    fn from(rate: &MileageRate) -> Self {
        Self {
            unit: rate.unit.into(),
            per_unit: rate.per_unit.to_string(),
            valid_from: rate.valid_from,
            valid_until: rate.valid_until,
        }
    }
}

impl MileageRateView {
    fn into_rate(self, n: usize) -> ApiResult<MileageRate> {
        let field = format!("mileage_rates[{n}]");
        let per_unit = decimal(&field, "per_unit", Some(&self.per_unit))?.unwrap_or_default();
        Ok(MileageRate {
            unit: self.unit.into(),
            per_unit,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
        })
    }
}

/// Who approves a step: the submitter's manager, or anyone with a role (`approver`
/// steps: approvers and admins).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApproverView {
    Manager,
    Approver,
    Finance,
    Admin,
}

const APPROVERS: [(ApproverView, Approver); 4] = [
    (ApproverView::Manager, Approver::Manager),
    (ApproverView::Approver, Approver::Approver),
    (ApproverView::Finance, Approver::Finance),
    (ApproverView::Admin, Approver::Admin),
];

/// An approval chain for expenses over `over` (in the organization's currency; any
/// amount when absent) in `categories` (all when empty). Of the chains that apply to an
/// expense when it is submitted, the one with the highest `over` is used; with none, one
/// approver. Each step is approved in turn; nobody takes two steps of one chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChainView {
    #[schema(example = "over-500")]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "500")]
    pub over: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// 1 to 5 steps, each kind at most once.
    pub steps: Vec<ApproverView>,
}

impl ChainView {
    fn from_chain(chain: &ChainRule) -> Self {
        Self {
            id: chain.id.clone(),
            over: chain.over.map(|o| o.to_string()),
            categories: chain.categories.clone(),
            steps: chain
                .steps
                .iter()
                .filter_map(|s| APPROVERS.iter().find(|(_, a)| a == s).map(|(v, _)| *v))
                .collect(),
        }
    }

    fn into_chain(self, n: usize) -> ApiResult<ChainRule> {
        let field = format!("approval_chains[{n}] ({})", self.id);
        let over = decimal(&field, "over", self.over.as_deref())?;
        Ok(ChainRule {
            over,
            categories: self.categories,
            steps: self
                .steps
                .iter()
                .filter_map(|s| APPROVERS.iter().find(|(v, _)| v == s).map(|(_, a)| *a))
                .collect(),
            id: self.id,
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PolicyParams {
    /// The policy as it read at this version (an expense's `policy_version`).
    pub version: Option<u64>,
}

fn with_etag(policy: &Policy) -> Response {
    (
        [super::etag_header(policy.version)],
        Json(PolicyView::from(policy)),
    )
        .into_response()
}

/// The organization's spend policy
///
/// Every member may read the rules their expenses are held to; `version` gives the policy
/// as it read then, e.g. at the version a submission recorded.
#[utoipa::path(
    get, path = "/v1/policy", tag = "policy",
    params(PolicyParams),
    responses(
        (status = 200, description = "The policy (version 0 and no rules if none was ever set)", body = PolicyView,
         headers(("ETag" = String, description = "The version"))),
        (status = 404, description = "The policy never had that version"),
    ),
    security(("bearer" = []))
)]
pub async fn get_policy(
    State(app): State<AppState>,
    user: AuthUser,
    Query(params): Query<PolicyParams>,
) -> ApiResult<Response> {
    let organization = user.actor.organization_id;
    let Some(version) = params.version else {
        let policy = app.store.load_policy(&organization.to_string()).await?;
        return Ok(with_etag(&policy));
    };
    if version == 0 {
        return Ok(with_etag(&Policy::default()));
    }
    let versions = use_case::versions(&app.store, organization).await?;
    let policy = versions
        .iter()
        .find(|p| p.version == version)
        .ok_or_else(|| ApiError::not_found(format!("the policy never had version {version}")))?;
    Ok(with_etag(policy))
}

/// Every version of the policy, oldest first
///
/// Who changed it when, and the whole rule set after each change.
#[utoipa::path(
    get, path = "/v1/policy/history", tag = "policy",
    responses(
        (status = 200, description = "The policy's versions, oldest first", body = Vec<PolicyView>),
    ),
    security(("bearer" = []))
)]
pub async fn policy_history(
    State(app): State<AppState>,
    user: AuthUser,
) -> ApiResult<Json<Vec<PolicyView>>> {
    let versions = use_case::versions(&app.store, user.actor.organization_id).await?;
    Ok(Json(versions.iter().map(PolicyView::from).collect()))
}

/// Replace the policy's rules, approval chains and mileage rates (admins)
///
/// Applies to expenses created, edited or submitted from now on; what earlier
/// submissions recorded, and the rates earlier mileage claims were priced at, stay as
/// they were.
#[utoipa::path(
    put, path = "/v1/policy", tag = "policy",
    params(("If-Match" = Option<String>, Header, description = "The ETag you last saw; a stale one gives 412")),
    request_body = PutPolicyRequest,
    responses(
        (status = 200, description = "The policy after the change (unchanged rules make no new version)", body = PolicyView,
         headers(("ETag" = String, description = "The version"), ("X-Consistency-Token" = String, description = "Pass to queries to read this write"))),
        (status = 403, description = "Only admins change the policy"),
        (status = 409, description = "A concurrent change won"),
        (status = 412, description = "If-Match is stale"),
        (status = 422, description = "An invalid rule, chain or rate: `errors` names each as `rules[n] (id)`, `approval_chains[n] (id)` or `mileage_rates[n]`"),
    ),
    security(("bearer" = []))
)]
pub async fn put_policy(
    State(app): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    Optimistic(scope): Optimistic,
    if_match: IfMatch,
    JsonBody(body): JsonBody<PutPolicyRequest>,
) -> ApiResult<Response> {
    let rules = numbered(body.rules, RuleView::into_rule)?;
    let chains = numbered(body.approval_chains, ChainView::into_chain)?;
    let mileage_rates = numbered(body.mileage_rates, MileageRateView::into_rate)?;
    let metadata = meta.metadata(user.actor.organization_id, Some(user.actor.user_id));
    let committed = use_case::set_rules(
        &app.store,
        &scope,
        user.actor,
        &metadata,
        use_case::PolicyText {
            rules,
            approval_chains: chains,
            mileage_rates,
        },
        if_match.0,
    )
    .await?;
    let mut response = with_etag(&committed.aggregate);
    let (name, value) = super::consistency_header(committed.head);
    response.headers_mut().insert(name, value);
    Ok(response)
}
