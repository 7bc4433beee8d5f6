//! Spend policies and money in the organization's currency (issue 19): setting the
//! policy, valuing an expense in the base currency, and gathering what a policy needs to
//! evaluate one — the rules themselves are decided by `expensewise_domain::policy`.

use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use expensewise_domain::exchange::Rate;
use expensewise_domain::expense::{Assessment, Valuation};
use expensewise_domain::policy::{
    self, mileage, ChainRule, Claimed, DistanceUnit, Duplicate, DuplicateReason, Facts, Mileage,
    MileageRate, Policy, PolicyCommand, PolicyEvent, Rule, RuleKind,
};
use expensewise_domain::receipt::lists_items;
use expensewise_domain::{Actor, Currency, EventMetadata, Money, Receipt, Role};
use expensewise_infra::event_store::{Committed, Scope};
use expensewise_infra::{exchange_rates, EventStore};
use expensewise_projections::checkpoint::{Checkpoints, ConsistencyError};
use expensewise_projections::{expenses as expenses_model, receipts as receipts_model};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{UseCaseError, UseCaseResult};

/// Everything an admin sets at once: the policy is replaced whole.
pub struct PolicyText {
    pub rules: Vec<Rule>,
    pub approval_chains: Vec<ChainRule>,
    pub mileage_rates: Vec<MileageRate>,
}

/// Replaces the organization's rules, approval chains and mileage rates (admins only);
/// `expected_version` is the client's `If-Match`.
pub async fn set_rules(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    text: PolicyText,
    expected_version: Option<u64>,
) -> UseCaseResult<Committed<Policy>> {
    let command = PolicyCommand::SetRules {
        actor,
        at: Utc::now(),
        expected_version,
        rules: text.rules,
        approval_chains: text.approval_chains,
        mileage_rates: text.mileage_rates,
    };
    Ok(store
        .execute::<Policy>(scope, &actor.organization_id.to_string(), command, metadata)
        .await?)
}

/// Every version the organization's policy has had, oldest first: what auditors read to
/// know which rules a submission met (its `policy_version`).
pub async fn versions(store: &EventStore, organization_id: Uuid) -> UseCaseResult<Vec<Policy>> {
    let events = expensewise_infra::event_store::aggregate_events(
        store.database(),
        policy::AGGREGATE_TYPE,
        &organization_id.to_string(),
    )
    .await
    .map_err(anyhow::Error::from)?;
    let mut policy = Policy::default();
    let mut versions = Vec::with_capacity(events.len());
    for event in events {
        let event: PolicyEvent =
            serde_json::from_value(serde_json::Value::clone(&event.payload))
                .map_err(|e| anyhow::anyhow!("a stored policy event does not read: {e}"))?;
        cqrs_es::Aggregate::apply(&mut policy, event);
        versions.push(policy.clone());
    }
    Ok(versions)
}

/// The organization's currency, in which limits, thresholds and summaries are kept.
pub async fn base_currency(
    store: &EventStore,
    scope: &Scope,
    organization_id: Uuid,
) -> UseCaseResult<Currency> {
    store
        .organization_for_request(scope, &organization_id.to_string())
        .await?
        .default_currency()
        .ok_or_else(|| UseCaseError::not_found("no such organization"))
}

/// `money` spent on `spent_on` in `base`: as it is when already in it; at `manual` (units
/// of `base` per unit, from a card statement) when given; else at the reference rates of
/// the day (the latest publication on or before it). Unknown when no rate is kept.
pub async fn value(
    store: &EventStore,
    base: Currency,
    money: Money,
    spent_on: NaiveDate,
    manual: Option<Decimal>,
) -> UseCaseResult<Valuation> {
    if money.currency() == base {
        if manual.is_some() {
            return Err(UseCaseError::invalid(
                "exchange_rate",
                format!("the expense is in the organization's currency ({base}): no rate applies"),
            ));
        }
        return Ok(Valuation {
            base_amount: Some(money),
            rate: None,
        });
    }
    if let Some(per_unit) = manual {
        let rate = Rate::Manual { per_unit };
        let base_amount = rate
            .apply(&money, base)
            .map_err(|e| UseCaseError::invalid("exchange_rate", e.to_string()))?;
        return Ok(Valuation {
            base_amount: Some(base_amount),
            rate: Some(rate),
        });
    }
    Ok(
        match exchange_rates::convert_on(store.database(), &money, base, spent_on).await? {
            Some(conversion) => Valuation {
                base_amount: Some(conversion.to),
                rate: Some(conversion.rate),
            },
            None => Valuation {
                base_amount: None,
                rate: None,
            },
        },
    )
}

/// A distance driven, as a claim states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Distance {
    pub distance: Decimal,
    pub unit: DistanceUnit,
}

/// A distance driven on `spent_on`, priced at the organization's mileage rate of that
/// day: the amount (in the organization's currency) and the claim that records the rate.
pub async fn price_mileage(
    store: &EventStore,
    scope: &Scope,
    organization_id: Uuid,
    driven: Distance,
    spent_on: NaiveDate,
) -> UseCaseResult<(Money, Mileage)> {
    mileage::check_distance(driven.distance)
        .map_err(|e| UseCaseError::Rejected(expensewise_domain::Rejection::Invalid(vec![e])))?;
    let base = base_currency(store, scope, organization_id).await?;
    let policy = store
        .policy_for_request(scope, &organization_id.to_string())
        .await?;
    let rate = mileage::rate_on(&policy.mileage_rates, driven.unit, spent_on).ok_or_else(|| {
        UseCaseError::invalid(
            "mileage.unit",
            format!(
                "the organization has no mileage rate per {} valid on {spent_on} (an admin \
                 sets them in the policy's mileage_rates)",
                driven.unit.as_str()
            ),
        )
    })?;
    let claim = Mileage {
        distance: driven.distance,
        rate: rate.clone(),
    };
    let money = claim
        .amount(base)
        .map_err(|e| UseCaseError::invalid("mileage.distance", format!("makes no amount: {e}")))?;
    Ok((money, claim))
}

/// An expense as it will stand after the command being decided.
pub struct Candidate<'a> {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub owner_id: Uuid,
    pub owner_role: Role,
    pub money: Money,
    pub base_amount: Option<Money>,
    pub merchant: &'a str,
    pub category: &'a str,
    pub description: Option<&'a str>,
    pub spent_on: NaiveDate,
    pub receipt_ids: &'a [Uuid],
    pub mileage: bool,
}

/// How long an evaluation waits for the read models it counts on, before asking the client
/// to try again.
const CATCH_UP: Duration = Duration::from_secs(5);

/// Which writes the read models an evaluation counts on must include.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// Every write so far: a submission's evaluation is recorded and decides.
    Everything,
    /// The owner's own: on create and edit the evaluation is an early word, which the
    /// submission checks again — waiting there for everyone's writes would hold every
    /// command up by the projections' lag behind the busiest moment.
    OwnWrites,
}

/// Evaluates `candidate` against its organization's policy as it is now: the rules it
/// needs decide what is read (the person's month, the receipts, possible duplicates).
pub async fn assess(
    store: &EventStore,
    scope: &Scope,
    candidate: &Candidate<'_>,
    counting: Counting,
) -> UseCaseResult<Assessment> {
    let policy = store
        .policy_for_request(scope, &candidate.organization_id.to_string())
        .await?;
    let applying: Vec<&Rule> = policy
        .rules
        .iter()
        .filter(|r| r.applies_to(candidate.category, candidate.owner_role))
        .collect();
    let needs = |kinds: &[RuleKind]| applying.iter().any(|r| kinds.contains(&r.kind));
    let counts_sums = needs(&[RuleKind::MaxPerDay, RuleKind::MaxPerMonth]);
    let finds_duplicates = needs(&[RuleKind::Duplicate]);
    if counts_sums || finds_duplicates {
        let owner = match counting {
            Counting::Everything => None,
            Counting::OwnWrites => Some(candidate.owner_id),
        };
        caught_up(store, &[expenses_model::NAME, receipts_model::NAME], owner).await?;
    }
    let others = match (counts_sums, candidate.base_amount) {
        (true, Some(base)) => {
            let month = month_of(candidate.spent_on);
            expenses_model::claimed_between(
                store.database(),
                candidate.organization_id,
                candidate.owner_id,
                month,
                base.currency(),
                candidate.id,
            )
            .await
            .map_err(anyhow::Error::from)?
        }
        _ => Vec::<Claimed>::new(),
    };
    let receipts = if needs(&[RuleKind::ItemisedReceipt]) || finds_duplicates {
        let mut loaded = Vec::new();
        for id in candidate.receipt_ids {
            let receipt: Receipt = store.load(&id.to_string()).await?;
            loaded.extend(receipt.state);
        }
        loaded
    } else {
        Vec::new()
    };
    let itemised = receipts
        .iter()
        .any(|r| r.extraction.as_ref().is_some_and(|e| lists_items(&e.text)));
    let duplicates = if finds_duplicates {
        duplicates(store, candidate, &receipts).await?
    } else {
        Vec::new()
    };
    let facts = Facts {
        role: candidate.owner_role,
        category: candidate.category,
        merchant: candidate.merchant,
        description: candidate.description,
        spent_on: candidate.spent_on,
        today: Utc::now().date_naive(),
        amount: candidate.base_amount,
        receipts: candidate.receipt_ids.len(),
        mileage: candidate.mileage,
        itemised,
        others: &others,
        duplicates: &duplicates,
    };
    Ok(Assessment {
        policy_version: policy.version,
        violations: policy::evaluate(&policy.rules, &facts),
    })
}

/// Other expenses of the organization that look like the same spending: one with a
/// receipt of the very same bytes, or whose receipt image looks the same (its
/// fingerprint), or with the same merchant, amount and day.
async fn duplicates(
    store: &EventStore,
    candidate: &Candidate<'_>,
    receipts: &[expensewise_domain::receipt::ReceiptState],
) -> UseCaseResult<Vec<Duplicate>> {
    let db = store.database();
    let digests: Vec<String> = receipts.iter().map(|r| r.sha256.clone()).collect();
    let mut found: Vec<Duplicate> = receipts_model::expenses_with_digests(
        db,
        candidate.organization_id,
        &digests,
        candidate.id,
    )
    .await?
    .into_iter()
    .map(|expense_id| Duplicate {
        expense_id,
        reason: DuplicateReason::SameReceipt,
    })
    .collect();
    let prints: Vec<_> = receipts.iter().filter_map(|r| r.fingerprint).collect();
    if !prints.is_empty() {
        let elsewhere =
            receipts_model::fingerprints_elsewhere(db, candidate.organization_id, candidate.id)
                .await?;
        for (expense_id, print) in elsewhere {
            let looks_alike = prints.iter().any(|p| p.same_receipt(print));
            if looks_alike && !found.iter().any(|d| d.expense_id == expense_id) {
                found.push(Duplicate {
                    expense_id,
                    reason: DuplicateReason::SimilarReceipt,
                });
            }
        }
    }
    let same = expenses_model::same_details(
        db,
        candidate.organization_id,
        (candidate.merchant, &candidate.money, candidate.spent_on),
        candidate.id,
    )
    .await
    .map_err(anyhow::Error::from)?;
    for expense_id in same {
        if !found.iter().any(|d| d.expense_id == expense_id) {
            found.push(Duplicate {
                expense_id,
                reason: DuplicateReason::SameDetails,
            });
        }
    }
    Ok(found)
}

/// The first and last day of `day`'s month.
fn month_of(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let first = day.with_day(1).unwrap_or(day);
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    (first, next.pred_opt().unwrap_or(day))
}

/// Waits until `projections` include every event stored so far, or every event `owner`
/// caused: limits and duplicates are counted from them, and must not miss what was
/// written a moment ago.
async fn caught_up(
    store: &EventStore,
    projections: &[&str],
    owner: Option<Uuid>,
) -> UseCaseResult<()> {
    let db = store.database();
    let head = match owner {
        None => expensewise_projections::status::head(db)
            .await
            .map_err(anyhow::Error::from)?,
        Some(owner) => {
            match expensewise_infra::event_store::last_write(db, &owner.to_string())
                .await
                .map_err(anyhow::Error::from)?
            {
                Some(position) => position,
                None => return Ok(()),
            }
        }
    };
    let checkpoints = Checkpoints::default();
    for name in projections {
        match checkpoints.wait_until(db, name, head, CATCH_UP).await {
            Ok(()) => {}
            Err(ConsistencyError::NotYet) => {
                return Err(UseCaseError::NotYet(
                    "the read models the policy counts on have not caught up yet; retry shortly"
                        .into(),
                ))
            }
            Err(ConsistencyError::Database(e)) => return Err(anyhow::Error::from(e).into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_runs_from_its_first_to_its_last_day() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(
            month_of(day(2028, 2, 15)),
            (day(2028, 2, 1), day(2028, 2, 29))
        );
        assert_eq!(
            month_of(day(2026, 12, 31)),
            (day(2026, 12, 1), day(2026, 12, 31))
        );
    }
}
