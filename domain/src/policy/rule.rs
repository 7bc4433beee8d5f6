//! The rules a spend policy is made of, as an admin writes them and as events keep them.

use std::collections::HashSet;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::actor::Role;
use crate::rejection::FieldError;

/// Whether breaking a rule only needs a word from the submitter or stops the submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Warn,
    Block,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warn => "warn",
            Level::Block => "block",
        }
    }
}

/// What a rule checks. Amounts are in the organization's base currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A receipt is attached when the amount is over `amount`.
    ReceiptRequired,
    /// An itemised receipt (one listing what was bought) when over `amount`.
    ItemisedReceipt,
    /// One expense is at most `amount`.
    MaxPerExpense,
    /// A person's expenses of one day (in the rule's categories) add up to at most `amount`.
    MaxPerDay,
    /// The same for a calendar month.
    MaxPerMonth,
    /// `spent_on` is at most `days` before the submission.
    MaxAge,
    /// Spent on a Saturday, a Sunday or one of `holidays`.
    WeekendOrHoliday,
    /// The merchant has one of `merchant_words`, or the category is one of
    /// `prohibited_categories`.
    Prohibited,
    /// A description is given when over `amount`.
    DescriptionRequired,
    /// Another expense of the organization has the same receipt (its bytes, or an image of
    /// it), or the same merchant, amount and day.
    Duplicate,
}

impl RuleKind {
    pub const ALL: [RuleKind; 10] = [
        RuleKind::ReceiptRequired,
        RuleKind::ItemisedReceipt,
        RuleKind::MaxPerExpense,
        RuleKind::MaxPerDay,
        RuleKind::MaxPerMonth,
        RuleKind::MaxAge,
        RuleKind::WeekendOrHoliday,
        RuleKind::Prohibited,
        RuleKind::DescriptionRequired,
        RuleKind::Duplicate,
    ];

    /// Which of the optional fields this kind needs; the others must be absent.
    fn needs(self) -> Needs {
        match self {
            RuleKind::ReceiptRequired
            | RuleKind::ItemisedReceipt
            | RuleKind::MaxPerExpense
            | RuleKind::MaxPerDay
            | RuleKind::MaxPerMonth
            | RuleKind::DescriptionRequired => Needs::Amount,
            RuleKind::MaxAge => Needs::Days,
            RuleKind::WeekendOrHoliday => Needs::Holidays,
            RuleKind::Prohibited => Needs::Prohibitions,
            RuleKind::Duplicate => Needs::Nothing,
        }
    }
}

#[derive(PartialEq)]
enum Needs {
    Amount,
    Days,
    Holidays,
    Prohibitions,
    Nothing,
}

/// One rule of a policy. `categories` and `roles` narrow whom it applies to (empty: all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The rule's name, unique in its policy: what violations and errors call it.
    pub id: String,
    pub kind: RuleKind,
    pub level: Level,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "rust_decimal::serde::str_option")]
    pub amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<NaiveDate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merchant_words: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prohibited_categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
}

/// At most this many rules per policy: enough for any real handbook, bounded for evaluation.
pub const MAX_RULES: usize = 200;
const MAX_LIST: usize = 400;
const MAX_ID: usize = 64;
/// What [`valid_id`] asks of the ids of rules and approval chains.
pub(super) const ID_RULE: &str = "id must be 1 to 64 characters of a-z, 0-9, - and _";

/// An id a policy names a rule or chain by: what violations and errors print.
pub(super) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Rule {
    /// Whether the rule speaks to an expense of `category` by someone of `role`.
    pub fn applies_to(&self, category: &str, role: Role) -> bool {
        (self.categories.is_empty() || self.categories.iter().any(|c| c == category))
            && (self.roles.is_empty() || self.roles.contains(&role))
    }

    /// Whether an expense of `category` counts towards this rule's daily or monthly sum.
    pub fn counts(&self, category: &str) -> bool {
        self.categories.is_empty() || self.categories.iter().any(|c| c == category)
    }
}

/// Checks a whole rule set, naming each offending rule by its position and id
/// (`rules[2] (taxis)`), and normalises lists (trimmed, lower-cased words, no repeats).
pub fn validate(rules: Vec<Rule>) -> Result<Vec<Rule>, Vec<FieldError>> {
    let mut errors = Vec::new();
    if rules.len() > MAX_RULES {
        errors.push(FieldError::new(
            "rules",
            format!("a policy has at most {MAX_RULES} rules"),
        ));
        return Err(errors);
    }
    let mut ids = HashSet::new();
    let mut checked = Vec::with_capacity(rules.len());
    for (n, rule) in rules.into_iter().enumerate() {
        let field = format!("rules[{n}] ({})", rule.id);
        let mut fail = |message: String| errors.push(FieldError::new(field.clone(), message));
        if !valid_id(&rule.id) {
            fail(ID_RULE.into());
        } else if !ids.insert(rule.id.clone()) {
            fail("another rule has the same id".into());
        }
        let needs = rule.kind.needs();
        match (needs == Needs::Amount, rule.amount) {
            (true, None) => fail("amount is required for this kind of rule".into()),
            (true, Some(a)) if a <= Decimal::ZERO => fail("amount must be positive".into()),
            (false, Some(_)) => fail("amount does not apply to this kind of rule".into()),
            _ => {}
        }
        match (needs == Needs::Days, rule.days) {
            (true, None) => fail("days is required for this kind of rule".into()),
            (true, Some(0)) => fail("days must be at least 1".into()),
            (false, Some(_)) => fail("days does not apply to this kind of rule".into()),
            _ => {}
        }
        if needs != Needs::Holidays && !rule.holidays.is_empty() {
            fail("holidays do not apply to this kind of rule".into());
        }
        let prohibitions = rule.merchant_words.len() + rule.prohibited_categories.len();
        match (needs == Needs::Prohibitions, prohibitions) {
            (true, 0) => fail("name merchant_words or prohibited_categories to prohibit".into()),
            (false, p) if p > 0 => fail(
                "merchant_words and prohibited_categories apply only to prohibited rules".into(),
            ),
            _ => {}
        }
        let lists = [
            &rule.merchant_words,
            &rule.prohibited_categories,
            &rule.categories,
        ];
        if lists.iter().any(|l| l.len() > MAX_LIST) || rule.holidays.len() > MAX_LIST {
            fail(format!("a list has at most {MAX_LIST} entries"));
        }
        if lists
            .iter()
            .flat_map(|l| l.iter())
            .any(|w| w.trim().is_empty() || w.len() > 100)
        {
            fail("list entries are 1 to 100 characters".into());
        }
        checked.push(Rule {
            merchant_words: normalised(rule.merchant_words, true),
            prohibited_categories: normalised(rule.prohibited_categories, false),
            categories: normalised(rule.categories, false),
            holidays: {
                let mut days = rule.holidays;
                days.sort();
                days.dedup();
                days
            },
            roles: {
                let mut roles = rule.roles;
                roles.dedup();
                roles
            },
            ..rule
        });
    }
    if errors.is_empty() {
        Ok(checked)
    } else {
        Err(errors)
    }
}

fn normalised(list: Vec<String>, lower: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for entry in list {
        let entry = entry.trim();
        let entry = if lower {
            entry.to_lowercase()
        } else {
            entry.to_string()
        };
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    out
}
