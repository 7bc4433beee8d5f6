//! Receipt text → fields: merchant, date, total with currency, tax.
//!
//! Receipts print many amounts; the total is the one on a line that says so ("total",
//! "amount due", "summe", …) and not on a subtotal, tax, tip, change or cash-tendered
//! line. Dates come in the formats receipts use: ISO, numeric with either day or month
//! first (decided where the numbers make it unambiguous), dotted day-first, month names,
//! two-digit years.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::NaiveDate;
use expensewise_domain::receipt::Extraction;
use expensewise_domain::{Currency, Money};
use regex::Regex;

const TOTAL_WORDS: &[&str] = &[
    "grand total",
    "amount due",
    "balance due",
    "total due",
    "to pay",
    "total",
    "summe",
    "gesamt",
    "montant",
    "totale",
    "importe",
];
/// Lines with these are never the total even when they say "total".
const NOT_TOTAL_WORDS: &[&str] = &[
    "subtotal",
    "sub total",
    "sub-total",
    "zwischensumme",
    "net total",
    "total net",
    "tax",
    "vat",
    "mwst",
    "tva",
    "iva",
    "change",
    "cash",
    "tendered",
    "tip",
    "gratuity",
    "discount",
    "savings",
    "items",
    "qty",
];
const TAX_WORDS: &[&str] = &["vat", "tax", "mwst", "tva", "iva", "gst"];
/// Lines that are not a merchant's name though they come first.
const NOT_MERCHANT_WORDS: &[&str] = &[
    "receipt", "invoice", "tel", "phone", "www", "http", "vat no", "tax id", "welcome", "order",
];

static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:^|[^\d.,])(\d{1,3}(?:[.,\s]\d{3})+(?:[.,]\d{1,2})?|\d+[.,]\d{1,2}|\d+)(?:$|[^\d.,%])",
    )
    .expect("amount pattern")
});
static ISO_DATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b").expect("ISO date pattern"));
static NUMERIC_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d{1,2})([./-])(\d{1,2})[./-](\d{4}|\d{2})\b").expect("numeric date pattern")
});
static DAY_MONTH_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(\d{1,2})(?:st|nd|rd|th)?[\s.-]+([a-z]{3,9})\.?[\s,.-]+(\d{4}|\d{2})\b")
        .expect("day month-name pattern")
});
static MONTH_NAME_DAY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}|\d{2})\b")
        .expect("month-name day pattern")
});

fn contains_any(line: &str, words: &[&str]) -> bool {
    words.iter().any(|w| line.contains(w))
}

/// Every amount printed on the line, as decimal text with a `.` separator.
fn amounts(line: &str) -> Vec<String> {
    // Glued thousands in "1 234,56" would split into two amounts without this.
    let mut found = Vec::new();
    let mut start = 0;
    while let Some(m) = AMOUNT.captures_at(line, start).and_then(|c| c.get(1)) {
        found.push(normalise_amount(m.as_str()));
        start = m.end();
    }
    found
}

fn normalise_amount(text: &str) -> String {
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    // The last separator followed by one or two digits is the decimal one.
    let decimal = text
        .rfind(['.', ','])
        .filter(|i| (1..=2).contains(&(text.len() - i - 1)));
    text.char_indices()
        .filter_map(|(i, c)| match c {
            '.' | ',' if Some(i) == decimal => Some('.'),
            '.' | ',' => None,
            c => Some(c),
        })
        .collect()
}

fn currency_of(text: &str) -> Option<Currency> {
    let upper = text.to_uppercase();
    for code in [
        "EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN", "CZK",
    ] {
        if upper
            .split(|c: char| !c.is_ascii_alphabetic())
            .any(|w| w == code)
        {
            return Currency::parse(code).ok();
        }
    }
    let symbol = if text.contains('€') {
        "EUR"
    } else if text.contains('£') {
        "GBP"
    } else if text.contains('¥') {
        "JPY"
    } else if text.contains('$') {
        "USD"
    } else {
        return None;
    };
    Currency::parse(symbol).ok()
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let name = name.to_lowercase();
    let prefix = name.get(..3)?;
    let index = MONTHS.iter().position(|m| *m == prefix)?;
    // "Mars", "Maison" and the like are not months: the rest must continue the name.
    const FULL: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let full = FULL[index];
    let spelled = full.starts_with(&name) || (name == "sept");
    spelled.then_some(index as u32 + 1)
}

fn full_year(text: &str) -> Option<i32> {
    let year: i32 = text.parse().ok()?;
    Some(if text.len() == 2 { 2000 + year } else { year })
}

/// A date and how sure the reading is.
fn find_date(text: &str, month_first: bool) -> Option<(NaiveDate, f32)> {
    if let Some(c) = ISO_DATE.captures(text) {
        let date =
            NaiveDate::from_ymd_opt(c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?);
        if let Some(d) = date {
            return Some((d, 0.95));
        }
    }
    for c in DAY_MONTH_NAME.captures_iter(text) {
        if let (Some(month), Some(year)) = (month_number(&c[2]), full_year(&c[3])) {
            if let Some(d) = NaiveDate::from_ymd_opt(year, month, c[1].parse().ok()?) {
                return Some((d, 0.9));
            }
        }
    }
    for c in MONTH_NAME_DAY.captures_iter(text) {
        if let (Some(month), Some(year)) = (month_number(&c[1]), full_year(&c[3])) {
            if let Some(d) = NaiveDate::from_ymd_opt(year, month, c[2].parse().ok()?) {
                return Some((d, 0.9));
            }
        }
    }
    for c in NUMERIC_DATE.captures_iter(text) {
        let (a, b): (u32, u32) = (c[1].parse().ok()?, c[3].parse().ok()?);
        let Some(year) = full_year(&c[4]) else {
            continue;
        };
        // Dotted dates are day-first everywhere they are used.
        let dotted = &c[2] == ".";
        let (day, month, confidence) = if dotted || a > 12 {
            (a, b, 0.9)
        } else if b > 12 {
            (b, a, 0.9)
        } else if month_first {
            (b, a, 0.6)
        } else {
            (a, b, 0.6)
        };
        if let Some(d) = NaiveDate::from_ymd_opt(year, month, day) {
            return Some((d, confidence));
        }
    }
    None
}

/// OCR reads a capital I as `|` or `!` now and then: inside a word of capitals, it is one.
fn repair_capitals(word: &str) -> String {
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    let capitals = word
        .chars()
        .all(|c| c.is_uppercase() || matches!(c, '|' | '!'));
    if letters >= 2 && capitals {
        word.replace(['|', '!'], "I")
    } else {
        word.to_string()
    }
}

/// The merchant: the first line that reads like a name.
fn find_merchant(lines: &[&str]) -> Option<String> {
    lines.iter().take(6).find_map(|line| {
        let lower = line.to_lowercase();
        let letters = line.chars().filter(|c| c.is_alphabetic()).count();
        let digits = line.chars().filter(|c| c.is_ascii_digit()).count();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        // Whole words: "tel" is a phone number's label, not part of "Hotel".
        let not_a_name = NOT_MERCHANT_WORDS.iter().any(|w| {
            if w.contains(' ') {
                lower.contains(w)
            } else {
                words.contains(w)
            }
        });
        let usable = letters >= 3
            && digits * 2 < letters
            && !not_a_name
            && !contains_any(&lower, TOTAL_WORDS)
            && find_date(line, false).is_none();
        usable.then(|| {
            line.trim_matches(|c: char| !c.is_alphanumeric() && c != '|' && c != '!')
                .split_whitespace()
                .map(repair_capitals)
                .collect::<Vec<_>>()
                .join(" ")
        })
    })
}

/// Reads the fields of a receipt from its text. `default_currency` is the organization's,
/// for receipts that print no currency.
pub fn extract(text: &str, default_currency: Currency) -> Extraction {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut confidence = BTreeMap::new();

    let merchant = find_merchant(&lines);
    if merchant.is_some() {
        confidence.insert("merchant".to_string(), 0.7);
    }

    let receipt_currency = currency_of(text);
    let month_first = receipt_currency.is_some_and(|c| c.code() == "USD");
    let date = find_date(text, month_first).map(|(d, c)| {
        confidence.insert("date".to_string(), c);
        d
    });

    // The strongest total word wins; among lines with the same word, the last one.
    let mut total: Option<(usize, String, &str)> = None;
    for line in &lines {
        let lower = line.to_lowercase();
        if contains_any(&lower, NOT_TOTAL_WORDS) && !lower.contains("grand total") {
            continue;
        }
        let Some(rank) = TOTAL_WORDS.iter().position(|w| lower.contains(w)) else {
            continue;
        };
        let Some(amount) = amounts(line).pop() else {
            continue;
        };
        if total.as_ref().is_none_or(|(best, _, _)| rank <= *best) {
            total = Some((rank, amount, line));
        }
    }
    let total = total.and_then(|(_, amount, line)| {
        let currency = currency_of(line)
            .or(receipt_currency)
            .unwrap_or(default_currency);
        let money = Money::parse(&amount, currency).ok()?;
        confidence.insert("total".to_string(), 0.9);
        Some(money)
    });

    let tax = lines.iter().find_map(|line| {
        let lower = line.to_lowercase();
        if !contains_any(&lower, TAX_WORDS) {
            return None;
        }
        // "VAT 19% 1.56": the amount (with decimals), not the rate.
        let amount = amounts(line).into_iter().rev().find(|a| a.contains('.'))?;
        confidence.insert("tax".to_string(), 0.7);
        Some(amount)
    });

    Extraction {
        merchant,
        date,
        total,
        tax,
        text: text.to_string(),
        confidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn total(e: &Extraction) -> Option<String> {
        e.total
            .map(|m| format!("{} {}", m.amount_string(), m.currency().code()))
    }

    #[test]
    fn the_total_is_not_the_subtotal_the_tax_or_the_change() {
        let text = "CAFE NERO\n12 High Street\n03/04/2026 12:31\nLatte 3.20\nMuffin 2.60\n\
                    Subtotal 5.80\nVAT 20% 0.97\nTOTAL £5.80\nCash 10.00\nChange 4.20\n";
        let e = extract(text, eur());
        assert_eq!(total(&e).as_deref(), Some("5.80 GBP"));
        assert_eq!(e.merchant.as_deref(), Some("CAFE NERO"));
        assert_eq!(e.tax.as_deref(), Some("0.97"));
        // 03/04 with pounds: day first.
        assert_eq!(e.date, NaiveDate::from_ymd_opt(2026, 4, 3));
    }

    #[test]
    fn amounts_in_either_notation() {
        assert_eq!(amounts("Summe 1.234,56 EUR"), vec!["1234.56"]);
        assert_eq!(amounts("TOTAL $1,234.56"), vec!["1234.56"]);
        assert_eq!(amounts("Total 12,5"), vec!["12.5"]);
        assert_eq!(amounts("Total ¥1,200"), vec!["1200"]);
        let e = extract("Bäckerei Huber\n24.12.2025\nSumme EUR 1.234,56\n", eur());
        assert_eq!(total(&e).as_deref(), Some("1234.56 EUR"));
        assert_eq!(e.date, NaiveDate::from_ymd_opt(2025, 12, 24));
        let e = extract("Ramen Ya\n2026-01-15\nTotal ¥1,200\n", eur());
        assert_eq!(total(&e).as_deref(), Some("1200 JPY"));
    }

    #[test]
    fn grand_total_beats_total_and_the_last_total_line_wins() {
        let e = extract(
            "Hotel Adler\nTotal 100.00\nTip 15.00\nGrand Total 115.00 USD\n",
            eur(),
        );
        assert_eq!(total(&e).as_deref(), Some("115.00 USD"));
        let e = extract("Shop\nTotal 10.00\nTotal 12.00\n", eur());
        assert_eq!(
            total(&e).as_deref(),
            Some("12.00 EUR"),
            "the organization's currency"
        );
    }

    #[test]
    fn dates_in_the_formats_receipts_use() {
        let date = |t: &str, usd: bool| find_date(t, usd).map(|(d, _)| d);
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day);
        assert_eq!(date("2026-03-07 10:00", false), d(2026, 3, 7));
        assert_eq!(date("25/12/2025", false), d(2025, 12, 25));
        assert_eq!(date("12/25/2025", true), d(2025, 12, 25));
        assert_eq!(
            date("12/25/2025", false),
            d(2025, 12, 25),
            "unambiguous either way"
        );
        assert_eq!(date("03/04/26", true), d(2026, 3, 4));
        assert_eq!(date("03/04/26", false), d(2026, 4, 3));
        assert_eq!(date("07.03.2026", true), d(2026, 3, 7));
        assert_eq!(date("7 March 2026", false), d(2026, 3, 7));
        assert_eq!(date("Mar 7, 2026", false), d(2026, 3, 7));
        assert_eq!(date("07-Mar-26", false), d(2026, 3, 7));
        assert_eq!(date("Sept 30 2025", false), d(2025, 9, 30));
        assert_eq!(date("Table 12 Guests 4", false), None);
        assert_eq!(date("31/02/2026", false), None, "no such day");
    }

    #[test]
    fn the_merchant_is_the_first_line_that_reads_like_a_name() {
        let e = extract("Hotel Adler\nTel. 0711 123456\nTotal 90.00\n", eur());
        assert_eq!(e.merchant.as_deref(), Some("Hotel Adler"));
        let e = extract("TAX! ROMA\nTotal 20.00\n", eur());
        assert_eq!(e.merchant.as_deref(), Some("TAXI ROMA"));
        let e = extract("TAX| ROMA\nTotal 20.00\n", eur());
        assert_eq!(e.merchant.as_deref(), Some("TAXI ROMA"));
        let e = extract(
            "RECEIPT\n*** Joe's Diner ***\n555-1234\nTotal 9.99\n",
            eur(),
        );
        assert_eq!(e.merchant.as_deref(), Some("Joe's Diner"));
        let e = extract("\n\n", eur());
        assert_eq!(e.merchant, None);
        assert_eq!(e.total, None);
        assert!(e.confidence.is_empty());
    }
}
