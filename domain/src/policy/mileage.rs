//! Mileage (issue 19): travel by one's own vehicle is claimed as a distance, and the
//! organization's rate per kilometre or mile — valid between two dates, as tax
//! authorities publish them — makes the amount. The rate applied is recorded with the
//! expense, so that a later change of the policy never changes what was claimed.

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, MoneyError};
use crate::rejection::FieldError;

/// At most this many rates in a policy: decades of yearly rates for two units.
pub const MAX_MILEAGE_RATES: usize = 100;
/// The longest distance one expense claims, and the finest: a hundredth of a unit.
pub const MAX_DISTANCE: u32 = 100_000;
const DISTANCE_DIGITS: u32 = 2;
/// A rate is at most this many units of the organization's currency per unit of
/// distance (yen and forint rates are in the hundreds), with at most 4 fraction digits
/// (0.655 USD per mile was the IRS rate of 2023).
const MAX_RATE: u32 = 10_000;
const RATE_DIGITS: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistanceUnit {
    Km,
    Mi,
}

impl DistanceUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            DistanceUnit::Km => "km",
            DistanceUnit::Mi => "mi",
        }
    }

    pub fn parse(text: &str) -> Option<DistanceUnit> {
        [DistanceUnit::Km, DistanceUnit::Mi]
            .into_iter()
            .find(|u| u.as_str() == text)
    }
}

/// The organization pays `per_unit` (in its currency) per `unit` driven from
/// `valid_from` to `valid_until` (both included; open-ended when `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MileageRate {
    pub unit: DistanceUnit,
    #[serde(with = "rust_decimal::serde::str")]
    pub per_unit: Decimal,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
}

impl MileageRate {
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && self.valid_until.is_none_or(|until| day <= until)
    }
}

/// A distance claimed, and the rate that priced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mileage {
    #[serde(with = "rust_decimal::serde::str")]
    pub distance: Decimal,
    pub rate: MileageRate,
}

impl Mileage {
    /// `distance × per_unit`, rounded once, half away from zero, to `currency`'s minor
    /// unit — the rounding currency conversions use.
    pub fn amount(&self, currency: Currency) -> Result<Money, MoneyError> {
        let exact = self.distance * self.rate.per_unit;
        Money::new(
            exact.round_dp_with_strategy(
                currency.minor_units(),
                RoundingStrategy::MidpointAwayFromZero,
            ),
            currency,
        )
    }
}

/// The rate of `rates` for `unit` on `day`, if the organization has one.
pub fn rate_on(rates: &[MileageRate], unit: DistanceUnit, day: NaiveDate) -> Option<&MileageRate> {
    rates.iter().find(|r| r.unit == unit && r.covers(day))
}

/// A distance as one expense may claim it.
pub fn check_distance(distance: Decimal) -> Result<(), FieldError> {
    if distance <= Decimal::ZERO
        || distance > Decimal::from(MAX_DISTANCE)
        || distance.normalize().scale() > DISTANCE_DIGITS
    {
        return Err(FieldError::new(
            "mileage.distance",
            format!(
                "must be positive, at most {MAX_DISTANCE}, with at most {DISTANCE_DIGITS} \
                 fraction digits"
            ),
        ));
    }
    Ok(())
}

/// What is wrong with a policy's rates, each named `mileage_rates[n]`: a rate that is
/// not positive or too fine, a period that ends before it starts, or two periods of one
/// unit that overlap (a day would have two prices).
pub fn validate_rates(rates: &[MileageRate]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if rates.len() > MAX_MILEAGE_RATES {
        errors.push(FieldError::new(
            "mileage_rates",
            format!("a policy has at most {MAX_MILEAGE_RATES} mileage rates"),
        ));
        return errors;
    }
    // Each rate is compared with the earlier ones that are right themselves, so that one
    // mistake is named once.
    let mut sound: Vec<usize> = Vec::new();
    for (n, rate) in rates.iter().enumerate() {
        let field = format!("mileage_rates[{n}]");
        if rate.per_unit <= Decimal::ZERO
            || rate.per_unit > Decimal::from(MAX_RATE)
            || rate.per_unit.normalize().scale() > RATE_DIGITS
        {
            errors.push(FieldError::new(
                field,
                format!(
                    "per_unit must be positive, at most {MAX_RATE}, with at most \
                     {RATE_DIGITS} fraction digits"
                ),
            ));
        } else if rate
            .valid_until
            .is_some_and(|until| until < rate.valid_from)
        {
            errors.push(FieldError::new(field, "valid_until is before valid_from"));
        } else if let Some(m) = sound.iter().find(|&&m| overlap(&rates[m], rate)) {
            errors.push(FieldError::new(
                field,
                format!(
                    "overlaps mileage_rates[{m}]: one {} rate per day",
                    rate.unit.as_str()
                ),
            ));
        } else {
            sound.push(n);
        }
    }
    errors
}

fn overlap(a: &MileageRate, b: &MileageRate) -> bool {
    let ends_before =
        |x: &MileageRate, y: &MileageRate| x.valid_until.is_some_and(|until| until < y.valid_from);
    a.unit == b.unit && !ends_before(a, b) && !ends_before(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn rate(
        unit: DistanceUnit,
        per_unit: &str,
        from: NaiveDate,
        until: Option<NaiveDate>,
    ) -> MileageRate {
        MileageRate {
            unit,
            per_unit: per_unit.parse().unwrap(),
            valid_from: from,
            valid_until: until,
        }
    }

    #[test]
    fn the_amount_is_the_distance_at_the_rate_rounded_half_away_from_zero() {
        let eur = Currency::parse("EUR").unwrap();
        let usd = Currency::parse("USD").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let trip = |distance: &str, r: MileageRate| Mileage {
            distance: distance.parse().unwrap(),
            rate: r,
        };
        let km = rate(DistanceUnit::Km, "0.30", day(2020, 1, 1), None);
        assert_eq!(
            trip("123.45", km.clone())
                .amount(eur)
                .unwrap()
                .amount_string(),
            "37.04"
        );
        // 0.655 × 12.5 = 8.1875; 0.655 × 0.5 = 0.3275 → 0.33 (up, not to even).
        let irs = rate(
            DistanceUnit::Mi,
            "0.655",
            day(2023, 1, 1),
            Some(day(2023, 12, 31)),
        );
        assert_eq!(
            trip("12.5", irs.clone())
                .amount(usd)
                .unwrap()
                .amount_string(),
            "8.19"
        );
        assert_eq!(
            trip("0.5", irs).amount(usd).unwrap().amount_string(),
            "0.33"
        );
        let yen = rate(DistanceUnit::Km, "15.5", day(2020, 1, 1), None);
        assert_eq!(trip("3", yen).amount(jpy).unwrap().amount_string(), "47");
        // A distance too short to be worth a cent is no amount.
        assert!(trip("0.01", km).amount(eur).is_err());
    }

    #[test]
    fn the_rate_of_the_day_applies() {
        let rates = [
            rate(
                DistanceUnit::Km,
                "0.30",
                day(2024, 1, 1),
                Some(day(2025, 12, 31)),
            ),
            rate(DistanceUnit::Km, "0.38", day(2026, 1, 1), None),
            rate(DistanceUnit::Mi, "0.45", day(2024, 1, 1), None),
        ];
        let on = |unit, d| rate_on(&rates, unit, d).map(|r| r.per_unit.to_string());
        assert_eq!(
            on(DistanceUnit::Km, day(2025, 12, 31)).as_deref(),
            Some("0.30")
        );
        assert_eq!(
            on(DistanceUnit::Km, day(2026, 1, 1)).as_deref(),
            Some("0.38")
        );
        assert_eq!(
            on(DistanceUnit::Mi, day(2030, 6, 1)).as_deref(),
            Some("0.45")
        );
        assert_eq!(on(DistanceUnit::Km, day(2023, 12, 31)), None);
        assert!(validate_rates(&rates).is_empty());
    }

    #[test]
    fn bad_rates_are_named() {
        let rates = [
            rate(
                DistanceUnit::Km,
                "0.30",
                day(2024, 1, 1),
                Some(day(2025, 12, 31)),
            ),
            rate(DistanceUnit::Km, "0.38", day(2025, 12, 31), None),
            rate(DistanceUnit::Mi, "0", day(2024, 1, 1), None),
            rate(DistanceUnit::Mi, "0.12345", day(2024, 1, 1), None),
            rate(
                DistanceUnit::Mi,
                "0.45",
                day(2024, 2, 1),
                Some(day(2024, 1, 1)),
            ),
            rate(DistanceUnit::Mi, "0.45", day(2024, 1, 1), None),
            rate(
                DistanceUnit::Mi,
                "0.50",
                day(2023, 1, 1),
                Some(day(2024, 1, 1)),
            ),
        ];
        let errors: Vec<String> = validate_rates(&rates)
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        assert_eq!(
            errors,
            [
                "mileage_rates[1]: overlaps mileage_rates[0]: one km rate per day",
                "mileage_rates[2]: per_unit must be positive, at most 10000, with at most 4 fraction digits",
                "mileage_rates[3]: per_unit must be positive, at most 10000, with at most 4 fraction digits",
                "mileage_rates[4]: valid_until is before valid_from",
                "mileage_rates[6]: overlaps mileage_rates[5]: one mi rate per day",
            ]
        );
    }

    #[test]
    fn distances_are_positive_bounded_and_to_the_hundredth() {
        for ok in ["1", "0.5", "123.45", "100000"] {
            assert!(check_distance(ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for bad in ["0", "-3", "100000.01", "1.234"] {
            assert!(check_distance(bad.parse().unwrap()).is_err(), "{bad}");
        }
    }
}
