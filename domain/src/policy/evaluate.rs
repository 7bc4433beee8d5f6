//! Evaluating an expense against a policy: a plain function of the policy and of facts the
//! application gathered (the other expenses of the month, the receipts, possible
//! duplicates), so that every rule is tested without a database.

use chrono::{Datelike, NaiveDate, Weekday};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::rule::{Level, Rule, RuleKind};
use crate::actor::Role;
use crate::money::Money;

/// The built-in check every submission passes whatever the policy: limits, thresholds
/// and approvers work in the organization's currency, so the amount must be known in it.
pub const EXCHANGE_RATE: &str = "exchange_rate";

/// One rule an expense breaks, as the submitter and the approvers read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Violation {
    /// The rule's id (or `exchange_rate`, the built-in check).
    pub rule: String,
    pub level: Level,
    pub message: String,
}

/// An expense as a policy sees it. Amounts are in the organization's base currency.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub role: Role,
    pub category: &'a str,
    pub merchant: &'a str,
    pub description: Option<&'a str>,
    pub spent_on: NaiveDate,
    /// The day of the evaluation (of the submission, for `max_age`).
    pub today: NaiveDate,
    /// `None` when no rate was known for the expense's currency.
    pub amount: Option<Money>,
    pub receipts: usize,
    /// A mileage claim: the distance is its evidence, so no receipt is asked for.
    pub mileage: bool,
    /// Whether one of the receipts lists what was bought.
    pub itemised: bool,
    /// The same person's other claimed expenses of `spent_on`'s month.
    pub others: &'a [Claimed],
    /// Other expenses of the organization this one may duplicate.
    pub duplicates: &'a [Duplicate],
}

/// Another expense of the same person that counts towards daily and monthly limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub category: String,
    pub spent_on: NaiveDate,
    pub amount: Money,
}

/// Why another expense looks like the same spending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateReason {
    /// A receipt with the very same bytes.
    SameReceipt,
    /// A receipt whose image is nearly the same (a re-photographed or re-compressed copy).
    SimilarReceipt,
    /// The same merchant, amount and day.
    SameDetails,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Duplicate {
    pub expense_id: Uuid,
    pub reason: DuplicateReason,
}

/// Every violation of `rules` by the expense `facts` describes, in the policy's order,
/// after the built-in check of the amount in the base currency.
pub fn evaluate(rules: &[Rule], facts: &Facts<'_>) -> Vec<Violation> {
    let mut violations = Vec::new();
    let Some(amount) = facts.amount else {
        violations.push(Violation {
            rule: EXCHANGE_RATE.into(),
            level: Level::Block,
            message: "the amount in the organization's currency is unknown: no exchange rate \
                      is kept for the day it was spent; import the rates or give the rate \
                      from the card statement (exchange_rate)"
                .into(),
        });
        return violations;
    };
    let value = amount.amount();
    let currency = amount.currency();
    let over = |limit: Decimal| value > limit;
    for rule in rules
        .iter()
        .filter(|r| r.applies_to(facts.category, facts.role))
    {
        let limit = rule.amount.unwrap_or_default();
        let shown = |mut d: Decimal| {
            d.rescale(currency.minor_units());
            format!("{d} {currency}")
        };
        let message = match rule.kind {
            RuleKind::ReceiptRequired | RuleKind::ItemisedReceipt if facts.mileage => None,
            RuleKind::ReceiptRequired if over(limit) && facts.receipts == 0 => {
                Some(format!("a receipt is required over {}", shown(limit)))
            }
            RuleKind::ItemisedReceipt if over(limit) && !facts.itemised => Some(format!(
                "an itemised receipt is required over {}",
                shown(limit)
            )),
            RuleKind::MaxPerExpense if over(limit) => Some(format!(
                "{} is over the limit of {} per expense",
                shown(value),
                shown(limit)
            )),
            RuleKind::MaxPerDay => {
                let total = value + sum(rule, facts, |d| d == facts.spent_on);
                (total > limit).then(|| {
                    format!(
                        "{} spent on {} is over the limit of {} per day",
                        shown(total),
                        facts.spent_on,
                        shown(limit)
                    )
                })
            }
            RuleKind::MaxPerMonth => {
                let month = |d: NaiveDate| {
                    d.year() == facts.spent_on.year() && d.month() == facts.spent_on.month()
                };
                let total = value + sum(rule, facts, month);
                (total > limit).then(|| {
                    format!(
                        "{} spent in {} is over the limit of {} per month",
                        shown(total),
                        facts.spent_on.format("%Y-%m"),
                        shown(limit)
                    )
                })
            }
            RuleKind::MaxAge => {
                let days = rule.days.unwrap_or_default();
                let age = (facts.today - facts.spent_on).num_days();
                (age > i64::from(days)).then(|| {
                    format!("spent {age} days ago; expenses are to be claimed within {days} days")
                })
            }
            RuleKind::WeekendOrHoliday => {
                let weekend = matches!(facts.spent_on.weekday(), Weekday::Sat | Weekday::Sun);
                if weekend {
                    Some(format!("spent on a {}", facts.spent_on.format("%A")))
                } else if rule.holidays.contains(&facts.spent_on) {
                    Some(format!("spent on a holiday ({})", facts.spent_on))
                } else {
                    None
                }
            }
            RuleKind::Prohibited => prohibited(rule, facts),
            RuleKind::DescriptionRequired
                if over(limit) && facts.description.is_none_or(|d| d.trim().is_empty()) =>
            {
                Some(format!("a description is required over {}", shown(limit)))
            }
            RuleKind::Duplicate => duplicate(facts),
            _ => None,
        };
        if let Some(message) = message {
            violations.push(Violation {
                rule: rule.id.clone(),
                level: rule.level,
                message,
            });
        }
    }
    violations
}

/// The person's other expenses on the days `on` accepts, in the rule's categories, in the
/// same currency as the one evaluated (all are in the base currency).
fn sum(rule: &Rule, facts: &Facts<'_>, on: impl Fn(NaiveDate) -> bool) -> Decimal {
    facts
        .others
        .iter()
        .filter(|c| on(c.spent_on) && rule.counts(&c.category))
        .filter(|c| {
            facts
                .amount
                .is_some_and(|a| a.currency() == c.amount.currency())
        })
        .map(|c| c.amount.amount())
        .sum()
}

fn prohibited(rule: &Rule, facts: &Facts<'_>) -> Option<String> {
    if rule
        .prohibited_categories
        .iter()
        .any(|c| c == facts.category)
    {
        return Some(format!("the category {} is not reimbursed", facts.category));
    }
    let merchant = facts.merchant.to_lowercase();
    let words: Vec<&str> = merchant
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    rule.merchant_words
        .iter()
        .find(|word| {
            // A phrase matches as a whole, so "duty free" is not found in "free duty".
            let parts: Vec<&str> = word.split_whitespace().collect();
            words.windows(parts.len().max(1)).any(|w| w == parts)
        })
        .map(|word| format!("the merchant matches the prohibited word {word:?}"))
}

fn duplicate(facts: &Facts<'_>) -> Option<String> {
    let strongest = facts.duplicates.iter().min_by_key(|d| d.reason as u8)?;
    let why = match strongest.reason {
        DuplicateReason::SameReceipt => "has the same receipt",
        DuplicateReason::SimilarReceipt => "has a receipt that looks the same",
        DuplicateReason::SameDetails => "has the same merchant, amount and day",
    };
    Some(format!(
        "possibly a duplicate: expense {} {why}",
        strongest.expense_id
    ))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::money::Currency;

    fn eur(amount: &str) -> Money {
        Money::parse(amount, Currency::parse("EUR").unwrap()).unwrap()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::from_str(text).unwrap()
    }

    fn rule(id: &str, kind: RuleKind, level: Level) -> Rule {
        Rule {
            id: id.into(),
            kind,
            level,
            amount: None,
            days: None,
            holidays: Vec::new(),
            merchant_words: Vec::new(),
            prohibited_categories: Vec::new(),
            categories: Vec::new(),
            roles: Vec::new(),
        }
    }

    fn with_amount(mut r: Rule, amount: &str) -> Rule {
        r.amount = Some(Decimal::from_str(amount).unwrap());
        r
    }

    /// A 100 EUR dinner at "Le Bistro" on Tuesday 3 November 2026, without receipt.
    fn facts<'a>(others: &'a [Claimed], duplicates: &'a [Duplicate]) -> Facts<'a> {
        Facts {
            role: Role::Employee,
            category: "meals",
            merchant: "Le Bistro",
            description: None,
            spent_on: day("2026-11-03"),
            today: day("2026-11-10"),
            amount: Some(eur("100.00")),
            receipts: 0,
            mileage: false,
            itemised: false,
            others,
            duplicates,
        }
    }

    fn ids(violations: &[Violation]) -> Vec<&str> {
        violations.iter().map(|v| v.rule.as_str()).collect()
    }

    #[test]
    fn thresholds_are_strictly_over_the_amount() {
        let rules = [
            with_amount(
                rule("receipt", RuleKind::ReceiptRequired, Level::Block),
                "75",
            ),
            with_amount(
                rule("itemised", RuleKind::ItemisedReceipt, Level::Warn),
                "100",
            ),
            with_amount(rule("cap", RuleKind::MaxPerExpense, Level::Block), "99.99"),
            with_amount(
                rule("memo", RuleKind::DescriptionRequired, Level::Warn),
                "50",
            ),
        ];
        let found = evaluate(&rules, &facts(&[], &[]));
        assert_eq!(ids(&found), ["receipt", "cap", "memo"]);
        assert_eq!(found[0].level, Level::Block);
        assert_eq!(found[0].message, "a receipt is required over 75.00 EUR");
        let mut with_everything = facts(&[], &[]);
        with_everything.receipts = 1;
        with_everything.itemised = true;
        with_everything.description = Some("client dinner");
        assert_eq!(ids(&evaluate(&rules, &with_everything)), ["cap"]);
        let mut driven = facts(&[], &[]);
        driven.mileage = true;
        assert_eq!(ids(&evaluate(&rules, &driven)), ["cap", "memo"]);
    }

    #[test]
    fn daily_and_monthly_sums_count_the_persons_other_expenses_in_the_rules_categories() {
        let others = [
            Claimed {
                category: "meals".into(),
                spent_on: day("2026-11-03"),
                amount: eur("30.00"),
            },
            Claimed {
                category: "travel".into(),
                spent_on: day("2026-11-03"),
                amount: eur("500.00"),
            },
            Claimed {
                category: "meals".into(),
                spent_on: day("2026-11-20"),
                amount: eur("400.00"),
            },
            Claimed {
                category: "meals".into(),
                spent_on: day("2026-10-31"),
                amount: eur("900.00"),
            },
        ];
        let mut daily = with_amount(rule("day", RuleKind::MaxPerDay, Level::Warn), "120");
        daily.categories = vec!["meals".into()];
        let mut monthly = with_amount(rule("month", RuleKind::MaxPerMonth, Level::Block), "520");
        monthly.categories = vec!["meals".into()];
        let found = evaluate(&[daily.clone(), monthly.clone()], &facts(&others, &[]));
        assert_eq!(ids(&found), ["day", "month"]);
        assert_eq!(
            found[1].message,
            "530.00 EUR spent in 2026-11 is over the limit of 520.00 EUR per month"
        );
        // Without the category scope the travel of the same day counts too.
        daily.categories.clear();
        daily.amount = Some(Decimal::from(600));
        assert_eq!(ids(&evaluate(&[daily], &facts(&others, &[]))), ["day"]);
    }

    #[test]
    fn age_weekends_holidays_and_prohibitions() {
        let mut age = rule("age", RuleKind::MaxAge, Level::Block);
        age.days = Some(7);
        let mut holidays = rule("holiday", RuleKind::WeekendOrHoliday, Level::Warn);
        holidays.holidays = vec![day("2026-11-03")];
        let mut bar = rule("bar", RuleKind::Prohibited, Level::Block);
        bar.merchant_words = vec!["bistro".into(), "duty free".into()];
        assert_eq!(
            ids(&evaluate(
                &[age.clone(), holidays.clone(), bar.clone()],
                &facts(&[], &[])
            )),
            ["holiday", "bar"]
        );
        let mut late = facts(&[], &[]);
        late.today = day("2026-11-11");
        late.spent_on = day("2026-11-01");
        late.merchant = "Free Duty Shop";
        let found = evaluate(&[age, holidays, bar], &late);
        assert_eq!(ids(&found), ["age", "holiday"]);
        assert_eq!(found[1].message, "spent on a Sunday");
        let mut category = rule("no-alcohol", RuleKind::Prohibited, Level::Block);
        category.prohibited_categories = vec!["meals".into()];
        assert_eq!(
            ids(&evaluate(&[category], &facts(&[], &[]))),
            ["no-alcohol"]
        );
    }

    #[test]
    fn scopes_duplicates_and_an_unknown_amount() {
        let mut scoped = with_amount(rule("cap", RuleKind::MaxPerExpense, Level::Block), "1");
        scoped.roles = vec![Role::Approver];
        let duplicate = rule("dup", RuleKind::Duplicate, Level::Warn);
        let other = Uuid::new_v4();
        let dups = [
            Duplicate {
                expense_id: Uuid::new_v4(),
                reason: DuplicateReason::SameDetails,
            },
            Duplicate {
                expense_id: other,
                reason: DuplicateReason::SimilarReceipt,
            },
        ];
        let found = evaluate(&[scoped.clone(), duplicate.clone()], &facts(&[], &dups));
        assert_eq!(ids(&found), ["dup"]);
        assert!(found[0].message.contains(&other.to_string()), "{found:?}");
        assert!(evaluate(&[duplicate], &facts(&[], &[])).is_empty());
        let mut unknown = facts(&[], &[]);
        unknown.amount = None;
        let found = evaluate(&[scoped], &unknown);
        assert_eq!(ids(&found), [EXCHANGE_RATE]);
        assert_eq!(found[0].level, Level::Block);
    }
}
