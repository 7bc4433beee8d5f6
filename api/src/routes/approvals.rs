//! The approvals queue and the spending summary.

use axum::extract::{Query, State};
use axum::Json;
use chrono::NaiveDate;
use expensewise_domain::policy::Approver;
use expensewise_projections::expenses::{
    self as read_model, GroupBy, Measure, QueueCursor, Takers,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::consistency::ConsistencyToken;
use super::expenses::{ExpensePage, ExpenseView};
use super::users::page_limit;
use crate::error::{ApiError, ApiResult};
use crate::extract::AuthUser;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QueueParams {
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(
        pattern = r"^[0-9]{1,18}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    pub cursor: Option<String>,
    /// A command's `X-Consistency-Token` (the header works too).
    pub consistency_token: Option<String>,
}

/// Who the caller decides as: by their role, as a manager, and for those who named them
/// delegate for today.
fn takers(user: &AuthUser) -> Takers {
    let today = chrono::Utc::now().date_naive();
    let me = (user.actor.user_id, user.actor.role);
    let mut takers = Takers {
        person: user.actor.user_id,
        ..Takers::default()
    };
    let manages = |person: Uuid| {
        user.organization
            .members()
            .any(|(_, m)| m.active && m.manager_id == Some(person))
    };
    let people =
        std::iter::once(me).chain(user.organization.delegators_of(user.actor.user_id, today));
    for (person, role) in people {
        for approver in [Approver::Approver, Approver::Finance, Approver::Admin] {
            if approver.roles().contains(&role) && !takers.approvers.contains(&approver.as_str()) {
                takers.approvers.push(approver.as_str());
            }
        }
        if manages(person) {
            takers.managers.push(person);
        }
    }
    takers
}

/// Submitted expenses awaiting your decision, oldest first
///
/// Reflects your own changes immediately, with no header needed, whichever replica took
/// them. Other users' changes appear within milliseconds (p99 under 10 ms in
/// docs/benchmarks.md); to wait for one, pass the `X-Consistency-Token` their command
/// returned.
#[utoipa::path(
    get, path = "/v1/approvals", tag = "expenses",
    params(QueueParams, ("X-Consistency-Token" = Option<String>, Header, description = "Wait also until this write (another user's) is visible; your own are waited for without it")),
    responses(
        (status = 200, description = "Submitted expenses of others whose awaited step of the approval chain you take (by your role, as their manager, or as someone's delegate today), oldest submission first; none whose chain you decided a step of", body = ExpensePage),
        (status = 403, description = "Only approvers, finance, admins, managers and delegates decide"),
        (status = 422, description = "Invalid query"),
        (status = 503, description = "The read model has not caught up with your latest write (or the consistency token's) within 5 s"),
    ),
    security(("bearer" = []))
)]
pub async fn approvals(
    State(app): State<AppState>,
    user: AuthUser,
    consistency: ConsistencyToken,
    Query(params): Query<QueueParams>,
) -> ApiResult<Json<ExpensePage>> {
    let takers = takers(&user);
    if takers.approvers.is_empty() && takers.managers.is_empty() {
        return Err(ApiError::forbidden(
            "only approvers, finance, admins, managers and their delegates decide on expenses",
        ));
    }
    let limit = page_limit(params.limit)?;
    let cursor =
        match params.cursor.as_deref() {
            None => None,
            Some(c) => Some(QueueCursor::decode(c).ok_or_else(|| {
                ApiError::invalid_field("cursor", "is not a cursor from this list")
            })?),
        };
    let (organization, takers, cursor) = (user.actor.organization_id, &takers, cursor.as_ref());
    let (rows, next) = consistency
        .read(&app, &user, read_model::NAME, |db| async move {
            read_model::approvals(&db, organization, takers, cursor, limit).await
        })
        .await?;
    Ok(Json(ExpensePage {
        items: rows
            .into_iter()
            .map(ExpenseView::from_row)
            .collect::<ApiResult<_>>()?,
        next_cursor: next.map(|c| c.encode()),
    }))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupByParam {
    Category,
    Month,
    User,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SummaryParams {
    /// Spent on or after this date.
    pub from: Option<NaiveDate>,
    /// Spent on or before this date.
    pub to: Option<NaiveDate>,
    /// How to group (default: category).
    pub group_by: Option<GroupByParam>,
    /// A command's `X-Consistency-Token` (the header works too).
    pub consistency_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryRowView {
    /// The category, the month (`YYYY-MM`) or the user id.
    pub key: String,
    pub currency: String,
    /// Exact decimal string; amounts of different currencies are never added.
    pub total: String,
    pub count: i64,
}

impl From<read_model::SummaryRow> for SummaryRowView {
    fn from(r: read_model::SummaryRow) -> Self {
        Self {
            key: r.key,
            currency: r.currency,
            total: r.total,
            count: r.count,
        }
    }
}

/// A group's total in the organization's currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct BaseSummaryRowView {
    pub key: String,
    /// The organization's currency (empty when no expense of the group has an amount in it).
    pub currency: String,
    /// The sum of each expense's recorded amount in that currency (each converted at the
    /// rate of its own day, rounded once).
    pub total: String,
    pub count: i64,
    /// Expenses of the group whose amount in that currency is unknown (no rate was
    /// kept for their day, or recorded before amounts were kept in it): in neither
    /// `total` nor `count`.
    pub unconverted: i64,
}

impl From<read_model::SummaryRow> for BaseSummaryRowView {
    fn from(r: read_model::SummaryRow) -> Self {
        Self {
            key: r.key,
            currency: r.currency,
            total: r.total,
            count: r.count,
            unconverted: r.unconverted,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    /// Per group and original currency (amounts of different currencies never added).
    pub rows: Vec<SummaryRowView>,
    /// Per group, in the organization's currency.
    pub in_base: Vec<BaseSummaryRowView>,
}

/// Totals per category, month or user: per original currency and in the organization's
///
/// Reflects your own changes immediately, with no header needed, whichever replica took
/// them. Other users' changes appear within milliseconds (p99 under 10 ms in
/// docs/benchmarks.md); to wait for one, pass the `X-Consistency-Token` their command
/// returned.
#[utoipa::path(
    get, path = "/v1/reports/summary", tag = "expenses",
    params(SummaryParams, ("X-Consistency-Token" = Option<String>, Header, description = "Wait also until this write (another user's) is visible; your own are waited for without it")),
    responses(
        (status = 200, description = "Totals of the organization's expenses (employees: their own)", body = Summary),
        (status = 422, description = "Invalid query"),
        (status = 503, description = "The read model has not caught up with your latest write (or the consistency token's) within 5 s"),
    ),
    security(("bearer" = []))
)]
pub async fn summary(
    State(app): State<AppState>,
    user: AuthUser,
    consistency: ConsistencyToken,
    Query(params): Query<SummaryParams>,
) -> ApiResult<Json<Summary>> {
    if let (Some(from), Some(to)) = (params.from, params.to) {
        if from > to {
            return Err(ApiError::invalid_field("from", "must not be after `to`"));
        }
    }
    let owner: Option<Uuid> = (!user.actor.role.sees_all_expenses()).then_some(user.actor.user_id);
    let group_by = match params.group_by.unwrap_or(GroupByParam::Category) {
        GroupByParam::Category => GroupBy::Category,
        GroupByParam::Month => GroupBy::Month,
        GroupByParam::User => GroupBy::User,
    };
    let (organization, period) = (user.actor.organization_id, (params.from, params.to));
    let (rows, in_base) = consistency
        .read(&app, &user, read_model::NAME, |db| async move {
            let summary =
                |measure| read_model::summary(&db, organization, owner, period, group_by, measure);
            let rows = summary(Measure::Original).await?;
            anyhow::Ok((rows, summary(Measure::Base).await?))
        })
        .await?;
    Ok(Json(Summary {
        rows: rows.into_iter().map(SummaryRowView::from).collect(),
        in_base: in_base.into_iter().map(BaseSummaryRowView::from).collect(),
    }))
}
