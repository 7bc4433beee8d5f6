//! Dates in the formats receipts use: ISO and year-first with slashes, numeric with day
//! or month first (decided where the numbers make it unambiguous, otherwise by the
//! receipt's currency, with less confidence), dotted day-first, two-digit years, and month
//! names and abbreviations in six languages ("7. März 2026", "26-Ene-24", "7 de marzo de
//! 2026", "Mar 7, 2026").

use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;

use super::words::fold;

/// Month names per language, folded; a name matches when it is at least three letters
/// long and starts one of these ("sept", "mrz" and "dez" are handled as prefixes too).
const MONTHS: [&[&str]; 12] = [
    &[
        "january", "januar", "janvier", "enero", "gennaio", "januari", "janv", "jan", "ene", "gen",
    ],
    &[
        "february", "februar", "fevrier", "febrero", "febbraio", "februari", "fevr", "feb", "fev",
    ],
    &[
        "march", "marz", "mars", "marzo", "maart", "mrz", "mar", "maa",
    ],
    &["april", "avril", "abril", "aprile", "apr", "avr", "abr"],
    &["may", "mai", "mayo", "maggio", "mei", "mag"],
    &["june", "juni", "juin", "junio", "giugno", "jun", "giu"],
    &[
        "july", "juli", "juillet", "julio", "luglio", "juil", "jul", "lug",
    ],
    &["august", "aout", "agosto", "augustus", "aug", "ago"],
    &[
        "september",
        "septembre",
        "septiembre",
        "settembre",
        "sept",
        "sep",
        "set",
    ],
    &[
        "october", "oktober", "octobre", "octubre", "ottobre", "okt", "oct", "ott",
    ],
    &["november", "novembre", "noviembre", "nov"],
    &[
        "december",
        "dezember",
        "decembre",
        "diciembre",
        "dicembre",
        "dez",
        "dec",
        "dic",
    ],
];

fn month_number(name: &str) -> Option<u32> {
    let name = fold(name);
    let name = name.trim_end_matches('.');
    if name.len() < 3 {
        return None;
    }
    // The name is one of the month's words, or a prefix of its full forms ("Sept",
    // "Febr"); "Mars" in a street name is still March, which is why a date needs a day
    // and a year beside it.
    if let Some(i) = MONTHS.iter().position(|forms| forms.contains(&name)) {
        return Some(i as u32 + 1);
    }
    // A prefix of two months' names ("jui." for juin or juillet, an OCR that lost the
    // "l") names neither.
    let mut months = MONTHS.iter().enumerate().filter(|(_, forms)| {
        forms
            .iter()
            .any(|form| form.len() > 3 && form.starts_with(name))
    });
    match (months.next(), months.next()) {
        (Some((i, _)), None) => Some(i as u32 + 1),
        _ => None,
    }
}

fn full_year(text: &str) -> Option<i32> {
    let year: i32 = text.parse().ok()?;
    Some(if text.len() == 2 { 2000 + year } else { year })
}

static YEAR_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b").expect("year-first date pattern")
});
static NUMERIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d{1,2})\s?([./-])\s?(\d{1,2})\s?[./-]\s?(\d{4}|\d{2})\b")
        .expect("numeric date pattern")
});
static DAY_MONTH_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(\d{1,2})(?:st|nd|rd|th|er|\.)?[\s.-]+(?:de\s+)?(\p{L}{3,10})\.?[\s,.-]+(?:de\s+)?(\d{4}|\d{2})\b",
    )
    .expect("day month-name pattern")
});
static MONTH_NAME_DAY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(\p{L}{3,10})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}|\d{2})\b")
        .expect("month-name day pattern")
});

/// How sure a date is when its numbers leave day and month open and only the receipt's
/// currency decides.
pub const AMBIGUOUS: f32 = 0.85;
/// How sure when nothing decides (no currency that implies an order).
pub const UNDECIDED: f32 = 0.6;

/// Which order an all-numeric date with day and month both ≤ 12 is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    MonthFirst,
    DayFirst,
    /// Nothing on the receipt says: day first, with little confidence.
    Unknown,
}

/// The first date on the receipt and how sure the reading is.
pub fn find_date(text: &str, order: Order) -> Option<(NaiveDate, f32)> {
    let mut best: Option<(usize, NaiveDate, f32)> = None;
    let mut consider = |found: Option<regex::Match>, date: Option<NaiveDate>, confidence: f32| {
        let Some(found) = found else {
            return;
        };
        // A time's minutes are no day, nor its hours a two-digit year: "21:04\nfév.
        // 2026" and "May 30, 14:29" are what a tilted photo makes of a date split over
        // two rows.
        let mut before = text[..found.start()].chars().rev();
        let mut after = text[found.end()..].chars();
        let hours_before =
            before.next() == Some(':') && before.next().is_some_and(|c| c.is_ascii_digit());
        let minutes_after =
            after.next() == Some(':') && after.next().is_some_and(|c| c.is_ascii_digit());
        if hours_before || minutes_after {
            return;
        }
        let at = found.start();
        if let Some(date) = date.filter(|d| (2000..=2100).contains(&chrono::Datelike::year(d))) {
            if best.is_none_or(|(earliest, _, _)| at < earliest) {
                best = Some((at, date, confidence));
            }
        }
    };
    for c in YEAR_FIRST.captures_iter(text) {
        let date = (|| {
            NaiveDate::from_ymd_opt(c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?)
        })();
        consider(c.get(0), date, 0.95);
    }
    for c in DAY_MONTH_NAME.captures_iter(text) {
        let date = (|| {
            NaiveDate::from_ymd_opt(full_year(&c[3])?, month_number(&c[2])?, c[1].parse().ok()?)
        })();
        consider(c.get(0), date, 0.9);
    }
    for c in MONTH_NAME_DAY.captures_iter(text) {
        let date = (|| {
            NaiveDate::from_ymd_opt(full_year(&c[3])?, month_number(&c[1])?, c[2].parse().ok()?)
        })();
        consider(c.get(0), date, 0.9);
    }
    for c in NUMERIC.captures_iter(text) {
        let reading = (|| {
            let (a, b): (u32, u32) = (c[1].parse().ok()?, c[3].parse().ok()?);
            let year = full_year(&c[4])?;
            // Dotted dates are day-first everywhere they are used.
            let dotted = &c[2] == ".";
            let (day, month, confidence) = if dotted || a > 12 {
                (a, b, 0.9)
            } else if b > 12 {
                (b, a, 0.9)
            } else if a == b {
                (a, b, 0.9)
            } else {
                match order {
                    Order::MonthFirst => (b, a, AMBIGUOUS),
                    Order::DayFirst => (a, b, AMBIGUOUS),
                    Order::Unknown => (a, b, UNDECIDED),
                }
            };
            Some((NaiveDate::from_ymd_opt(year, month, day), confidence))
        })();
        if let Some((date, confidence)) = reading {
            consider(c.get(0), date, confidence);
        }
    }
    best.map(|(_, date, confidence)| (date, confidence))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_the_formats_receipts_use() {
        let date = |t: &str, order| find_date(t, order).map(|(d, _)| d);
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day);
        use Order::*;
        assert_eq!(date("2026-03-07 10:00", Unknown), d(2026, 3, 7));
        assert_eq!(date("2026/03/07", Unknown), d(2026, 3, 7));
        assert_eq!(date("25/12/2025", Unknown), d(2025, 12, 25));
        assert_eq!(date("12/25/2025", MonthFirst), d(2025, 12, 25));
        assert_eq!(date("12/25/2025", DayFirst), d(2025, 12, 25));
        assert_eq!(date("03/04/26", MonthFirst), d(2026, 3, 4));
        assert_eq!(date("03/04/26", DayFirst), d(2026, 4, 3));
        assert_eq!(date("07.03.2026", MonthFirst), d(2026, 3, 7));
        assert_eq!(date("7 March 2026", Unknown), d(2026, 3, 7));
        assert_eq!(date("Mar 7, 2026", Unknown), d(2026, 3, 7));
        assert_eq!(date("07-Mar-26", Unknown), d(2026, 3, 7));
        assert_eq!(date("Sept 30 2025", Unknown), d(2025, 9, 30));
        assert_eq!(date("7. März 2026", Unknown), d(2026, 3, 7));
        assert_eq!(date("7. Marz 2026", Unknown), d(2026, 3, 7));
        assert_eq!(date("26-Ene-24", Unknown), d(2024, 1, 26));
        assert_eq!(date("7 de marzo de 2026", Unknown), d(2026, 3, 7));
        assert_eq!(date("Le 3 décembre 2025", Unknown), d(2025, 12, 3));
        assert_eq!(date("14 mei 2025", Unknown), d(2025, 5, 14));
        assert_eq!(date("Table 12 Guests 4", Unknown), None);
        assert_eq!(date("6 juil. 2026", Unknown), d(2026, 7, 6));
        assert_eq!(date("6 juin 2026", Unknown), d(2026, 6, 6));
        assert_eq!(date("6 jui. 2026", Unknown), None, "juin or juillet");
        assert_eq!(date("Le 10  21:04\nfév. 2026", Unknown), None);
        assert_eq!(date("May 30,  14:29\n2024", Unknown), None);
        assert_eq!(date("May 30, 2024 14:29", Unknown), d(2024, 5, 30));
        assert_eq!(date("10 fév. 2026 21:04", Unknown), d(2026, 2, 10));
        assert_eq!(date("Datum:24.12.2025", Unknown), d(2025, 12, 24));
        assert_eq!(date("31/02/2026", Unknown), None, "no such day");
    }

    #[test]
    fn ambiguous_dates_are_less_sure() {
        use Order::*;
        assert_eq!(
            find_date("03/04/2026", DayFirst).map(|x| x.1),
            Some(AMBIGUOUS)
        );
        assert_eq!(
            find_date("03/04/2026", Unknown).map(|x| x.1),
            Some(UNDECIDED)
        );
        assert_eq!(find_date("23/04/2026", Unknown).map(|x| x.1), Some(0.9));
    }
}
