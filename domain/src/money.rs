//! Money as an exact decimal in an ISO 4217 currency. Never floating point.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Active ISO 4217 codes whose minor unit is not 2 digits. Every other code of
/// [`TWO_DIGIT`] has two.
const ZERO_DIGIT: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
const THREE_DIGIT: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
const FOUR_DIGIT: &[&str] = &["CLF", "UYW"];
const TWO_DIGIT: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF",
    "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR",
    "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF",
    "IDR", "ILS", "INR", "IRR", "JMD", "KES", "KGS", "KHR", "KPW", "KYD", "KZT", "LAK", "LBP",
    "LKR", "LRD", "LSL", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD",
    "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TOP",
    "TRY", "TTD", "TWD", "TZS", "UAH", "USD", "UYU", "UZS", "VES", "WST", "XCD", "YER", "ZAR",
    "ZMW", "ZWG",
];

/// The largest amount accepted for one expense; beyond it an amount is a typo or an attack.
const MAX_AMOUNT: i64 = 1_000_000_000;

/// An ISO 4217 currency code known to have a fixed number of minor-unit digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        let minor = Self::lookup(code).ok_or_else(|| MoneyError::UnknownCurrency(code.into()))?;
        debug_assert!(minor <= 4);
        let bytes = code.as_bytes();
        Ok(Currency([bytes[0], bytes[1], bytes[2]]))
    }

    /// Every code [`Currency::parse`] takes.
    pub fn codes() -> impl Iterator<Item = &'static str> {
        [ZERO_DIGIT, TWO_DIGIT, THREE_DIGIT, FOUR_DIGIT]
            .into_iter()
            .flatten()
            .copied()
    }

    fn lookup(code: &str) -> Option<u32> {
        [
            (ZERO_DIGIT, 0),
            (TWO_DIGIT, 2),
            (THREE_DIGIT, 3),
            (FOUR_DIGIT, 4),
        ]
        .into_iter()
        .find_map(|(codes, digits)| codes.contains(&code).then_some(digits))
    }

    pub fn code(&self) -> &str {
        // Only ever built from an ASCII code of the tables above.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// How many fraction digits an amount in this currency may have.
    pub fn minor_units(&self) -> u32 {
        Self::lookup(self.code()).unwrap_or(2)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("'{0}' is not an ISO 4217 currency code")]
    UnknownCurrency(String),
    #[error("must be a decimal number like \"12.34\"")]
    NotADecimal,
    #[error("must be positive")]
    NotPositive,
    #[error("{currency} allows at most {digits} fraction digits")]
    TooManyDigits { currency: Currency, digits: u32 },
    #[error("must be at most {MAX_AMOUNT}")]
    TooLarge,
}

/// A positive amount in a currency, with no more fraction digits than the currency has.
/// Serialised as `{"amount": "12.34", "currency": "EUR"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "rust_decimal::serde::str")]
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// Parses an amount as clients write it: a plain decimal string (no exponent, no
    /// thousands separators, no sign other than an invalid leading minus).
    pub fn parse(amount: &str, currency: Currency) -> Result<Money, MoneyError> {
        let plain = !amount.is_empty()
            && amount
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
            && !amount.starts_with('.')
            && !amount.ends_with('.');
        if !plain {
            return Err(MoneyError::NotADecimal);
        }
        let decimal = Decimal::from_str(amount).map_err(|_| MoneyError::NotADecimal)?;
        Money::new(decimal, currency)
    }

    pub fn new(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        if amount <= Decimal::ZERO {
            return Err(MoneyError::NotPositive);
        }
        if amount > Decimal::from(MAX_AMOUNT) {
            return Err(MoneyError::TooLarge);
        }
        let digits = currency.minor_units();
        // "12.50" has scale 2 but is fine in a 1-digit currency; only significant digits count.
        if amount.normalize().scale() > digits {
            return Err(MoneyError::TooManyDigits { currency, digits });
        }
        Ok(Money {
            amount: amount.round_dp(digits),
            currency,
        })
    }

    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount written with exactly the currency's number of fraction digits.
    pub fn amount_string(&self) -> String {
        let mut amount = self.amount;
        amount.rescale(self.currency.minor_units());
        amount.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn amounts_keep_their_exact_value() {
        let m = Money::parse("12.34", eur()).unwrap();
        assert_eq!(m.amount_string(), "12.34");
        assert_eq!(
            Money::parse("12.5", eur()).unwrap().amount_string(),
            "12.50"
        );
        assert_eq!(
            Money::parse("0.1", eur()).unwrap().amount() + Decimal::new(2, 1),
            Decimal::new(3, 1)
        );
    }

    #[test]
    fn fraction_digits_follow_the_currency() {
        assert_eq!(
            Money::parse("12.345", eur()),
            Err(MoneyError::TooManyDigits {
                currency: eur(),
                digits: 2
            })
        );
        let jpy = Currency::parse("JPY").unwrap();
        assert!(Money::parse("5.5", jpy).is_err());
        assert_eq!(Money::parse("500", jpy).unwrap().amount_string(), "500");
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(Money::parse("1.234", kwd).unwrap().amount_string(), "1.234");
        assert_eq!(
            Money::parse("12.50", jpy).map(|m| m.amount_string()),
            Err(MoneyError::TooManyDigits {
                currency: jpy,
                digits: 0
            })
        );
    }

    #[test]
    fn trailing_zeros_beyond_the_minor_unit_are_harmless() {
        assert_eq!(
            Money::parse("7.000", eur()).unwrap().amount_string(),
            "7.00"
        );
    }

    #[test]
    fn zero_negative_and_malformed_amounts_are_refused() {
        for bad in ["0", "0.00", "-1", "-0.01"] {
            assert_eq!(
                Money::parse(bad, eur()),
                Err(MoneyError::NotPositive),
                "{bad}"
            );
        }
        for bad in ["", "abc", "1e3", "1,50", " 1", ".5", "5.", "+5", "1.2.3"] {
            assert_eq!(
                Money::parse(bad, eur()),
                Err(MoneyError::NotADecimal),
                "{bad}"
            );
        }
        assert_eq!(
            Money::parse("1000000000.01", eur()),
            Err(MoneyError::TooLarge)
        );
    }

    #[test]
    fn unknown_currencies_are_refused() {
        for bad in ["eur", "EURO", "XXX", "", "ABC"] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn money_serialises_as_strings() {
        let m = Money::parse("12.30", eur()).unwrap();
        let json = serde_json::to_value(m).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"amount": "12.30", "currency": "EUR"})
        );
        let back: Money = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }
}
