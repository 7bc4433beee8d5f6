//! Money in another currency (issue 19): the European Central Bank's reference rates —
//! on each business day, how many units of a currency one euro buys — and conversion
//! through the euro. Rates are facts at a date: the one that applies to a day is the
//! latest published on or before it (a Saturday takes Friday's), and a conversion is
//! computed exactly and rounded once, half away from zero, to the target currency's
//! minor unit.

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, MoneyError};

/// Where reference rates come from unless given by hand.
pub const ECB: &str = "ECB";

/// On `date`, one euro bought `per_euro` units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceRate {
    pub currency: Currency,
    pub date: NaiveDate,
    pub per_euro: Decimal,
}

/// A conversion: the amount, the amount it made and the rate that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    pub from: Money,
    pub to: Money,
    pub rate: Rate,
}

/// The rate a converted amount was made with, recorded beside it so that it is never
/// recomputed silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rate {
    /// Reference rates `source` published for `date`: units of the original currency one
    /// euro bought, and of the target's.
    Reference {
        source: String,
        date: NaiveDate,
        #[serde(with = "rust_decimal::serde::str")]
        from_per_euro: Decimal,
        #[serde(with = "rust_decimal::serde::str")]
        to_per_euro: Decimal,
    },
    /// Given by hand (from a card statement, say): units of the target currency per unit
    /// of the original.
    Manual {
        #[serde(with = "rust_decimal::serde::str")]
        per_unit: Decimal,
    },
}

impl Rate {
    /// `amount` in `to` at this rate, rounded once, half away from zero.
    pub fn apply(&self, amount: &Money, to: Currency) -> Result<Money, ExchangeError> {
        match self {
            Rate::Reference {
                from_per_euro,
                to_per_euro,
                ..
            } => convert(amount, to, *from_per_euro, *to_per_euro),
            Rate::Manual { per_unit } => convert(amount, to, Decimal::ONE, *per_unit),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    #[error("line {line}: {reason}")]
    Malformed { line: usize, reason: String },
    #[error("a rate must be positive")]
    NotPositive,
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// `amount` in `to`, at the rates given as units per euro (1 for the euro itself):
/// `amount × to_per_euro ÷ from_per_euro`, multiplied before dividing so that no digit
/// is lost to a rounded cross rate, then rounded half away from zero to `to`'s minor
/// unit.
pub fn convert(
    amount: &Money,
    to: Currency,
    from_per_euro: Decimal,
    to_per_euro: Decimal,
) -> Result<Money, ExchangeError> {
    if from_per_euro <= Decimal::ZERO || to_per_euro <= Decimal::ZERO {
        return Err(ExchangeError::NotPositive);
    }
    let exact = amount.amount() * to_per_euro / from_per_euro;
    let rounded =
        exact.round_dp_with_strategy(to.minor_units(), RoundingStrategy::MidpointAwayFromZero);
    Ok(Money::new(rounded, to)?)
}

/// Reads the ECB's CSV files: the history (`eurofxref-hist.csv`: `Date,USD,JPY,…` then
/// `2026-10-30,1.1172,175.68,…`) and the daily file (`eurofxref.csv`: `Date, USD, …`
/// then `30 October 2026, 1.1172, …`). `N/A` and empty cells are no rate; columns of
/// currencies that are no longer ISO 4217 (the euro's predecessors) are skipped.
pub fn parse_ecb_csv(text: &str) -> Result<Vec<ReferenceRate>, ExchangeError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let columns: Vec<Option<Currency>> = header
        .split(',')
        .skip(1)
        .map(|c| Currency::parse(c.trim()).ok())
        .collect();
    if !header.trim_start().starts_with("Date") {
        return Err(ExchangeError::Malformed {
            line: 1,
            reason: "the first line is not the ECB's header (Date, then currencies)".into(),
        });
    }
    let mut rates = Vec::new();
    for (n, line) in lines {
        let malformed = |reason: String| ExchangeError::Malformed {
            line: n + 1,
            reason,
        };
        let mut cells = line.split(',').map(str::trim);
        let day = cells.next().unwrap_or_default();
        let date = NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(day, "%d %B %Y"))
            .map_err(|_| malformed(format!("{day:?} is not a date")))?;
        for (cell, currency) in cells.zip(&columns) {
            let Some(currency) = currency else { continue };
            if cell.is_empty() || cell == "N/A" {
                continue;
            }
            let per_euro = Decimal::from_str(cell)
                .map_err(|_| malformed(format!("{cell:?} is not a rate of {currency}")))?;
            if per_euro <= Decimal::ZERO {
                return Err(malformed(format!("the rate of {currency} is not positive")));
            }
            rates.push(ReferenceRate {
                currency: *currency,
                date,
                per_euro,
            });
        }
    }
    Ok(rates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(amount: &str, currency: &str) -> Money {
        Money::parse(amount, Currency::parse(currency).unwrap()).unwrap()
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn conversion_goes_through_the_euro_and_rounds_once_half_away_from_zero() {
        let eur = Currency::parse("EUR").unwrap();
        // 1,000 JPY at 175.68 per euro: 5.69216… EUR.
        let converted = convert(&money("1000", "JPY"), eur, dec("175.68"), Decimal::ONE).unwrap();
        assert_eq!(converted, money("5.69", "EUR"));
        // Cross rate: 100 GBP at 0.8338 and CHF at 0.9194 per euro: 110.2662…
        let chf = Currency::parse("CHF").unwrap();
        let converted = convert(&money("100", "GBP"), chf, dec("0.8338"), dec("0.9194")).unwrap();
        assert_eq!(converted, money("110.27", "CHF"));
        // A midpoint goes away from zero: 0.125 → 0.13.
        let converted = convert(&money("0.25", "EUR"), eur, Decimal::TWO, Decimal::ONE).unwrap();
        assert_eq!(converted, money("0.13", "EUR"));
        // Into a currency without minor units.
        let jpy = Currency::parse("JPY").unwrap();
        let converted = convert(&money("10", "EUR"), jpy, Decimal::ONE, dec("175.68")).unwrap();
        assert_eq!(converted, money("1757", "JPY"));
        assert_eq!(
            convert(&money("1", "EUR"), jpy, Decimal::ZERO, Decimal::ONE),
            Err(ExchangeError::NotPositive)
        );
    }

    #[test]
    fn both_ecb_files_read_alike() {
        let history = "Date,USD,JPY,CYP,GBP,\n2026-10-30,1.1172,175.68,N/A,0.8338,\n\
                       2026-10-29,1.1200,N/A,N/A,0.8350,\n";
        let daily = "Date, USD, JPY, GBP, \n30 October 2026, 1.1172, 175.68, 0.83380, \n";
        let from_history = parse_ecb_csv(history).unwrap();
        assert_eq!(from_history.len(), 5, "{from_history:?}");
        let day = NaiveDate::from_ymd_opt(2026, 10, 30).unwrap();
        let of_day: Vec<_> = from_history.into_iter().filter(|r| r.date == day).collect();
        assert_eq!(of_day, parse_ecb_csv(daily).unwrap());
        assert!(matches!(
            parse_ecb_csv("Date,USD\nyesterday,1.1\n"),
            Err(ExchangeError::Malformed { line: 2, .. })
        ));
        assert!(parse_ecb_csv("Datum;USD\n").is_err());
    }
}
