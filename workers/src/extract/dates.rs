//! Dates in the formats receipts use: ISO and year-first with slashes, numeric with day
//! or month first (decided where the numbers make it unambiguous, otherwise by the
//! receipt's currency, with less confidence), dotted day-first, two-digit years, and month
//! names and abbreviations in nine languages ("7. März 2026", "26-Ene-24", "7 de marzo de
//! 2026", "Mar 7, 2026", "22 sty 2025"). A weekday printed before the date ("Sa 07.03.2026") confirms
//! it, settles a day/month order the numbers leave open, or shows a misread.

use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
use regex::Regex;

use super::words::fold;

/// Month names per language, folded; a name matches when it is at least three letters
/// long and starts one of these ("sept", "mrz" and "dez" are handled as prefixes too).
const MONTHS: [&[&str]; 12] = [
    &[
        "january", "januar", "janvier", "enero", "gennaio", "januari", "janeiro", "stycznia",
        "styczen", "janv", "jan", "ene", "gen", "sty",
    ],
    &[
        "february",
        "februar",
        "fevrier",
        "febrero",
        "febbraio",
        "februari",
        "fevereiro",
        "lutego",
        "luty",
        "fevr",
        "feb",
        "fev",
        "lut",
    ],
    &[
        "march", "marz", "mars", "marzo", "maart", "marco", "marca", "marzec", "mrz", "mrt", "mar",
        "maa",
    ],
    &[
        "april", "avril", "abril", "aprile", "kwietnia", "kwiecien", "apr", "avr", "abr", "kwi",
    ],
    &[
        "may", "mai", "mayo", "maggio", "mei", "maio", "maja", "maj", "mag",
    ],
    &[
        "june", "juni", "juin", "junio", "giugno", "junho", "czerwca", "czerwiec", "jun", "giu",
        "cze",
    ],
    &[
        "july", "juli", "juillet", "julio", "luglio", "julho", "lipca", "lipiec", "juil", "jul",
        "lug", "lip",
    ],
    // "aodt" is how OCR trained on English reads the û of "août".
    &[
        "august", "aout", "aodt", "agosto", "augustus", "augusti", "sierpnia", "sierpien", "aug",
        "ago", "sie",
    ],
    &[
        "september",
        "septembre",
        "septiembre",
        "settembre",
        "setembro",
        "wrzesnia",
        "wrzesien",
        "sept",
        "sep",
        "set",
        "wrz",
    ],
    &[
        "october",
        "oktober",
        "octobre",
        "octubre",
        "ottobre",
        "outubro",
        "pazdziernika",
        "pazdziernik",
        "okt",
        "oct",
        "ott",
        "out",
        "paz",
    ],
    &[
        "november",
        "novembre",
        "noviembre",
        "novembro",
        "listopada",
        "listopad",
        "nov",
        "lis",
    ],
    &[
        "december",
        "dezember",
        "decembre",
        "diciembre",
        "dicembre",
        "dezembro",
        "grudnia",
        "grudzien",
        "dez",
        "dec",
        "dic",
        "gru",
    ],
];

/// A month's word as the lists spell it: folded, without its abbreviating point, an `O`
/// that OCR read as a zero given back (`22-AG0-2023`, `0CT`), and an `I` read as a small
/// `l` among capitals (`19-MAl-2023`).
fn month_word(name: &str) -> String {
    let name = if in_capitals(name) {
        name.replace('l', "I")
    } else {
        name.to_string()
    };
    fold(&name).trim_end_matches('.').replace('0', "o")
}

/// Whether the word's letters are capitals, a small `l` aside (an `I` misread).
fn in_capitals(word: &str) -> bool {
    word.chars()
        .filter(|c| c.is_alphabetic() && *c != 'l')
        .all(char::is_uppercase)
}

/// The month a word names, its `1` or `|`, if any, read as the `l` or the `I` it may be
/// (`29-JU1-2026`, `08-ME1-2026`, `21 ju| 2026`).
fn month_number(name: &str) -> Option<u32> {
    let name = name.replace('|', "1");
    if !name.contains('1') {
        return month_named(&name);
    }
    let letters = if in_capitals(&name) {
        ["L", "I"]
    } else {
        ["l", "i"]
    };
    letters
        .iter()
        .find_map(|letter| month_named(&name.replace('1', letter)))
}

fn month_named(name: &str) -> Option<u32> {
    let name = month_word(name);
    let name = name.as_str();
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

/// The month a word names with one letter misread (`Peb`, `Fet`, `a00T`), when every
/// month's word that close, of its length, names the same month. A `1` in it is read as
/// itself, an `l` and an `i` alike: `Ja1` is as close to `Jul` as to `Jan`.
fn month_misread(name: &str) -> Option<u32> {
    // A word without a `1` has one reading, not three alike to compare with every form.
    let mut readings: Vec<String> = ['1', 'l', 'i']
        .iter()
        .map(|letter| month_word(&name.replace('1', &letter.to_string())))
        .collect();
    readings.dedup();
    let close = |form: &&str| {
        readings.iter().any(|name| {
            name.chars().count() >= 3
                && form.chars().count() == name.chars().count()
                && form
                    .chars()
                    .zip(name.chars())
                    .filter(|(a, b)| a != b)
                    .count()
                    == 1
        })
    };
    let mut months = MONTHS
        .iter()
        .enumerate()
        .filter(|(_, forms)| forms.iter().any(close))
        .map(|(i, _)| i as u32 + 1);
    match (months.next(), months.next()) {
        (Some(month), None) => Some(month),
        _ => None,
    }
}

/// Weekday names and abbreviations per language, folded, Monday first. Where languages
/// share an abbreviation it names the same day ("mar", "di", "do").
const WEEKDAYS: [&[&str]; 7] = [
    &[
        "monday", "mon", "montag", "mo", "lundi", "lun", "lunes", "lunedi", "maandag", "ma",
    ],
    &[
        "tuesday", "tue", "tues", "dienstag", "di", "mardi", "mar", "martes", "martedi", "dinsdag",
    ],
    &[
        "wednesday",
        "wed",
        "mittwoch",
        "mi",
        "mercredi",
        "mer",
        "miercoles",
        "mie",
        "mercoledi",
        "woensdag",
        "wo",
    ],
    &[
        "thursday",
        "thu",
        "thur",
        "thurs",
        "donnerstag",
        "do",
        "jeudi",
        "jeu",
        "jueves",
        "jue",
        "giovedi",
        "gio",
        "donderdag",
    ],
    &[
        "friday", "fri", "freitag", "fr", "vendredi", "ven", "viernes", "vie", "venerdi",
        "vrijdag", "vr",
    ],
    &[
        "saturday", "sat", "samstag", "sa", "samedi", "sam", "sabado", "sab", "zaterdag", "za",
    ],
    &[
        "sunday", "sun", "sonntag", "so", "dimanche", "dim", "domingo", "dom", "domenica",
        "zondag", "zo",
    ],
];

/// The weekday printed right before `at` ("Sat 07/03/2026", "Samstag, 7. März 2026",
/// "mar. 07/03/2026"), if any, in days from Monday.
fn weekday_before(text: &str, at: usize) -> Option<u32> {
    let before = text[..at].trim_end_matches([' ', ',', '.']);
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphabetic())
        .last()
        .map(|(i, _)| i)?;
    // Only a word of its own: "Datum" ends in "um", which names no day either way.
    if before[..start]
        .chars()
        .next_back()
        .is_some_and(|c| c.is_alphanumeric())
    {
        return None;
    }
    let name = fold(&before[start..]);
    let day = WEEKDAYS
        .iter()
        .position(|forms| forms.contains(&name.as_str()))?;
    Some(day as u32)
}

/// The confidence in a date whose printed weekday is another day's: one of the two was
/// misread, and the date is most often the one with more digits.
pub const WEEKDAY_DISAGREES: f32 = 0.5;
/// The confidence in a date its printed weekday confirms: a misread that lands on a date
/// with the same weekday is rare (one in seven of the few misreads).
const WEEKDAY_AGREES: f32 = 0.95;

static YEAR_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d{4})\s?[-/.]\s?(\d{1,2})\s?[-/.]\s?(\d{1,2})\b")
        .expect("year-first date pattern")
});
static NUMERIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d{1,2})\s?([./-])\s?(\d{1,2})\s?[./-]\s?(\d{4}|\d{2})\b")
        .expect("numeric date pattern")
});
static DAY_MONTH_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(\d{1,2})(?:st|nd|rd|th|er|\.)?[\s.-]*(?:de\s+)?((?:\p{L}|0)[\p{L}01|]{2,9})\.?[\s,.-]*(?:de\s+)?(\d{4}|\d{2})\b",
    )
    .expect("day month-name pattern")
});
static MONTH_NAME_DAY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b((?:\p{L}|0)[\p{L}0]{2,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,\s*|\s+)(\d{4}|\d{2})\b")
        .expect("month-name day pattern")
});

/// A day, a word of two to four letters or digits that begins as a month's name can
/// (with a letter, or the `0` OCR reads for an `O`), and a year: a date printed with its
/// month's name, as OCR may leave it (`28-FE8-2023`, `23.an 2026`, `20~0KT-2024`).
static MONTH_NAMED_SHAPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b\d{1,2}\s?[-./~ ]\s?[a-z0][a-z0-9]{1,3}\.?\s?[-./~ ]\s?(?:19|20)\d{2}\b")
        .expect("month-named date shape")
});

/// Whether the line holds something shaped as a date printed with its month's name,
/// whether or not it reads as one.
pub fn month_named_shape(line: &str) -> bool {
    MONTH_NAMED_SHAPE.is_match(line)
}

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

/// The confidence in a date read only after repairing what OCR commonly confuses in it:
/// a person confirms it, and finds it filled in.
pub const REPAIRED: f32 = 0.7;

/// The first date on the receipt and how sure the reading is. When no date reads as
/// printed, the date-shaped text is read again with OCR's usual confusions undone
/// (`loosen`, `repaired`): a `2925` that can only be 2025, a month `96` that can only be
/// June, `ll-May-24`.
pub fn find_date(text: &str, order: Order) -> Option<(NaiveDate, f32)> {
    // A dash OCR read as a tilde (`26~09.2025`, `2025~04-09`) is the dash; a `U` read as
    // the union sign (`05-A∪G-2024`) the letter.
    let parted = times_parted(&text.replace('~', "-").replace('∪', "U"));
    let text = parted.as_str();
    // The repairs that replace byte for byte leave positions in `text`; the one that adds
    // lost separators has its own.
    let with_separators;
    let (text, found, readings, confidence, repaired) = match find_in(text, order, false) {
        Some((found, readings, confidence)) => (text, found, readings, confidence, false),
        None => {
            let repaired = find_in(&loosen(text), order, true)
                .or_else(|| find_in(&without_times(text), order, false))
                .or_else(|| find_in(&separators_restored(text), order, true))
                .or_else(|| find_in(&equals_as_dashes(text), order, true));
            let (text, (found, readings, confidence)) = match repaired {
                Some(found) => (text, found),
                None => {
                    with_separators = separators_added(text);
                    let found = find_in(&with_separators, order, true)?;
                    (with_separators.as_str(), found)
                }
            };
            (text, found, readings, confidence.min(REPAIRED), true)
        }
    };
    let at = found.start;
    // "Data: 1 1/4/24" is 11 April with its 11 split by OCR, not 1 April; "Datum 20;
    // 24-12-19" a year-first date with its year split. A time before the date ("20:03
    // 24/12/2024") is no such number.
    let confidence = if split_off(text, at, order, readings[0]) || glued_on(text, at) {
        confidence.min(SPLIT)
    } else {
        confidence
    };
    let Some(weekday) = weekday_before(text, at) else {
        return Some((readings[0], confidence));
    };
    let agrees = readings
        .iter()
        .find(|d| d.weekday().num_days_from_monday() == weekday);
    Some(match agrees {
        // A repair stays a repair, whatever the weekday says.
        Some(date) if repaired => (*date, confidence),
        Some(date) => (*date, confidence.max(WEEKDAY_AGREES)),
        None => (readings[0], confidence.min(WEEKDAY_DISAGREES)),
    })
}

/// The confidence in a date that reads otherwise with the number before it joined to it:
/// OCR may have split the date's first number, or its year.
pub const SPLIT: f32 = 0.6;

/// Whether the word before `at` is a bare number (punctuation after it aside) that,
/// joined to the date read from `at`, makes another date: "1 1/4/24" was 11 April as
/// likely as 1 April. A stray "2 14/11/25" makes none, and the date stands.
fn split_off(text: &str, at: usize, order: Order, date: NaiveDate) -> bool {
    let word = text[..at]
        .trim_end()
        .rsplit(char::is_whitespace)
        .next()
        .unwrap_or_default()
        .trim_end_matches(|c: char| c.is_ascii_punctuation());
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let joined = format!("{word}{}", &text[at..]);
    find_in(&joined, order, false)
        .is_some_and(|(found, readings, _)| found.start == 0 && readings[0] != date)
}

/// Whether the date read from `at` goes on from a number glued before it by a separator
/// (`09402/2024.12.30.28.`, 09/02/2024 12:30:28 with a slash read as `4`, read as 30
/// December): the date may begin before, and its year and time be read as one.
fn glued_on(text: &str, at: usize) -> bool {
    let mut before = text[..at].chars().rev();
    matches!(before.next(), Some('/' | '.' | '-'))
        && before.next().is_some_and(|c| c.is_ascii_digit())
}

/// `text` with each `=` between two letters or digits a dash, in a word that holds a
/// year of this century, as OCR reads one (`21=SEPT-2026`, `2026-08=27`); byte for byte.
/// One with a space beside it is a sum's (`2 x 3.62 = 7.24`), one elsewhere a photo's
/// grain read as signs (`1=25.79`, `3=8=38`), and this a repair, tried where nothing else
/// reads as a date.
fn equals_as_dashes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_inclusive(char::is_whitespace) {
        if !YEAR_IN_WORD.is_match(word) {
            out.push_str(word);
            continue;
        }
        let chars: Vec<char> = word.chars().collect();
        let between = |i: usize| {
            i > 0
                && chars[i - 1].is_alphanumeric()
                && chars.get(i + 1).is_some_and(|c| c.is_alphanumeric())
        };
        out.extend(
            chars
                .iter()
                .enumerate()
                .map(|(i, c)| if *c == '=' && between(i) { '-' } else { *c }),
        );
    }
    out
}

/// Four digits that may be a year of this century, within a word.
static YEAR_IN_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"20\d{2}").expect("year-in-word pattern"));

/// A time of day, its hour of two digits, run into a number of at least two before it
/// (`18-06-202419:36:12`, `04.05.2609:54`, with its first colon read as a point
/// `202419.27:45`, its second lost `202415:2656`); a time alone (`19:36`) is no such
/// thing.
static TIME_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\d{2})((?:[01]\d|2[0-3])(?::[0-5]\d(?::?[0-5]\d)?|\.[0-5]\d:[0-5]\d))\b")
        .expect("time-after pattern")
});
/// A time of day with a number run into it (`11:2601.03.24`, `18:29:2820-DIC-2024`), or
/// its gap read as a point (`15:16:32.02/06/2025`).
static TIME_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d{1,2}:[0-5]\d(?::[0-5]\d)?)[.,]?(\d)").expect("time-before pattern")
});

/// `text` with a space between a time and a date it runs into. An engine that reads a
/// printed line as one run of text may leave out the gap between them (PP-OCR does, on
/// one receipt in fifteen), where no date pattern finds the date.
fn times_parted(text: &str) -> String {
    let after = TIME_AFTER.replace_all(text, "$1 $2");
    let after = TIME_AFTER_YEAR.replace_all(&after, "$1 $2");
    let after = TIME_LOST_AFTER_YEAR.replace_all(&after, "$1 $2");
    TIME_BEFORE.replace_all(&after, "$1 $2").into_owned()
}

/// A time written with a point, run into a year before it (`01-07-202317.38`): only
/// after a year, where a number with a point run in is no price.
static TIME_AFTER_YEAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(20\d{2})((?:[01]\d|2[0-3])\.[0-5]\d)\b").expect("time-after-year pattern")
});

/// A time whose colon OCR lost, run into the year of a date before it
/// (`13-SEPT-20251435`, `20 abr 20242134`): only after a date's separator or a day and
/// a month's name, where eight digits are no other number (`Rechnungsdatum 20240815` is
/// a date of its own).
static TIME_LOST_AFTER_YEAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"((?:[-/.]|\b\d{1,2}\.?\s+\p{L}{3,9}\.?\s+)20\d{2})((?:[01]\d|2[0-3])[0-5]\d)\b")
        .expect("time-lost-after-year pattern")
});

/// A time of day, whole or torn (`12:52`, `08:2:`).
static TIME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d{1,2}:\d{1,2}:?").expect("time pattern"));

/// `text` with its times blanked out, byte for byte. A tilted photo splits a date over
/// two rows and leaves the time between its parts (`Date: 26  12:52` over `August 2025`,
/// `22 de 19:19` over `enero de 2026`), where no date pattern reaches across it.
fn without_times(text: &str) -> String {
    TIME.replace_all(text, |c: &regex::Captures| " ".repeat(c[0].len()))
        .into_owned()
}

/// A date whose `/` OCR read as a `1` or a `7`: `2024/10122`, `2026/01717`,
/// `2710912026`.
static SEPARATOR_AS_DIGIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:(?P<year>\d{4})[-/.17](?P<ym>\d{2})[17](?P<yd>\d{2})|(?P<d>\d{2})[-/.17](?P<dm>\d{2})[17](?P<dy>\d{4}))\b",
    )
    .expect("separator-as-digit pattern")
});

/// `text` with the separators of such dates made `/` again, byte for byte.
fn separators_restored(text: &str) -> String {
    SEPARATOR_AS_DIGIT
        .replace_all(text, |c: &regex::Captures| match c.name("year") {
            Some(year) => format!("{}/{}/{}", year.as_str(), &c["ym"], &c["yd"]),
            None => format!("{}/{}/{}", &c["d"], &c["dm"], &c["dy"]),
        })
        .into_owned()
}

/// A date after its label whose separators OCR lost, eight digits (`Fecha factura
/// 14052026`, `Invoice date  0207/2023`, `Rechnungsdatum 20240815`).
static SEPARATORS_LOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?im)^(?P<label>[^\d\n]*\b(?:date|datum|fecha|data|\p{L}+datum)\b[^\d\n]*)(?P<digits>\d{4}/?\d{4})\b",
    )
    .expect("separators-lost pattern")
});

/// A date whose second separator OCR lost (`23-112023`).
static LAST_SEPARATOR_LOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d{1,2})([-./])(\d{2})(20\d{2})\b").expect("last-separator-lost pattern")
});

/// `text` with the separators of such dates put back as `/`: the year last where the
/// last four digits make one, else first; and a date's lost second separator as its
/// first.
fn separators_added(text: &str) -> String {
    let text = LAST_SEPARATOR_LOST.replace_all(text, "$1$2$3$2$4");
    let year = |digits: &str| {
        digits
            .parse::<u32>()
            .is_ok_and(|y| (2000..=2100).contains(&y))
    };
    SEPARATORS_LOST
        .replace_all(&text, |c: &regex::Captures| {
            let digits: String = c["digits"].chars().filter(char::is_ascii_digit).collect();
            let (head, tail) = digits.split_at(4);
            let date = if year(tail) {
                format!("{}/{}/{tail}", &head[..2], &head[2..])
            } else if year(head) {
                format!("{head}/{}/{}", &tail[..2], &tail[2..])
            } else {
                c["digits"].to_string()
            };
            format!("{}{date}", &c["label"])
        })
        .into_owned()
}

/// Letters OCR reads for digits (`O` and `@` for 0, `l`, `I` and `|` for 1), made digits
/// again where they stand in a word with digits and among no other letters: `ll-May-24`,
/// `21-@4-2026`, but not the `O` of `12-Oct-24`. Every replacement is one byte for one,
/// so positions in the result are positions in `text`.
fn loosen(text: &str) -> String {
    let confusable = |c: char| matches!(c, 'O' | 'o' | '@' | 'l' | 'I' | '|');
    let mut out = String::with_capacity(text.len());
    for token in text.split_inclusive(char::is_whitespace) {
        if !token.chars().any(|c| c.is_ascii_digit()) {
            out.push_str(token);
            continue;
        }
        let chars: Vec<char> = token.chars().collect();
        let letter = |c: char| c.is_alphabetic() || confusable(c);
        let mut start = 0;
        while start < chars.len() {
            let end = start
                + chars[start..]
                    .iter()
                    .take_while(|c| letter(**c) == letter(chars[start]))
                    .count();
            let run = &chars[start..end];
            if letter(chars[start]) && run.len() <= 2 && run.iter().all(|c| confusable(*c)) {
                out.extend(run.iter().map(|c| {
                    if matches!(c, 'l' | 'I' | '|') {
                        '1'
                    } else {
                        '0'
                    }
                }));
            } else {
                out.extend(run);
            }
            start = end;
        }
    }
    out
}

/// Digits OCR confuses, most often the round ones for each other.
const CONFUSED: [&str; 10] = ["689", "7", "", "8", "", "6", "0", "1", "03", "0"];

/// `digits` as a number in `range`; with `repair`, a number out of range becomes the one
/// number in range that changing one confusable digit makes (`96` as a month is June),
/// and none when there are two.
fn number_in(digits: &str, range: std::ops::RangeInclusive<u32>, repair: bool) -> Option<u32> {
    let value: u32 = digits.parse().ok()?;
    if range.contains(&value) {
        return Some(value);
    }
    if !repair {
        return None;
    }
    let mut found = None;
    for (i, digit) in digits.bytes().enumerate() {
        for other in CONFUSED[usize::from(digit - b'0')].bytes() {
            let mut changed = digits.as_bytes().to_vec();
            changed[i] = other;
            let value: u32 = std::str::from_utf8(&changed).ok()?.parse().ok()?;
            if range.contains(&value) {
                if found.is_some_and(|f| f != value) {
                    return None;
                }
                found = Some(value);
            }
        }
    }
    found
}

/// A year of two or four digits, in the years receipts are dated.
fn year_in(digits: &str, repair: bool) -> Option<i32> {
    let year = match digits.len() {
        2 => 2000 + number_in(digits, 0..=99, repair)?,
        _ => number_in(digits, 2000..=2100, repair)?,
    };
    i32::try_from(year).ok()
}

/// Every match of `pattern` in `text`, each starting a character after the one before:
/// a match that reads as no date does not hide one it overlaps (`900000` and `10` of
/// `+45 497 900000`, `10 oct.2026` taken for a day, a month and a year).
fn overlapping<'t>(
    pattern: &'t Regex,
    text: &'t str,
) -> impl Iterator<Item = regex::Captures<'t>> + 't {
    let mut at = 0;
    std::iter::from_fn(move || {
        let found = pattern.captures_at(text, at)?;
        let start = found.get(0)?.start();
        at = start + text[start..].chars().next().map_or(1, char::len_utf8);
        Some(found)
    })
}

/// The earliest date in `text`: where it stands, its readings (the likelier first; two
/// when day and month could be either) and how sure the first is.
fn find_in(
    text: &str,
    order: Order,
    repair: bool,
) -> Option<(std::ops::Range<usize>, Vec<NaiveDate>, f32)> {
    let day = |d: &str| number_in(d, 1..=31, repair);
    let month = |m: &str| number_in(m, 1..=12, repair);
    let mut best: Option<(std::ops::Range<usize>, Vec<NaiveDate>, f32)> = None;
    let mut consider = |found: Option<regex::Match>, readings: Vec<NaiveDate>, confidence: f32| {
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
        let earlier = best
            .as_ref()
            .is_none_or(|(earliest, _, _)| found.start() < earliest.start);
        if !readings.is_empty() && earlier {
            best = Some((found.range(), readings, confidence));
        }
    };
    for c in overlapping(&YEAR_FIRST, text) {
        let date =
            (|| NaiveDate::from_ymd_opt(year_in(&c[1], repair)?, month(&c[2])?, day(&c[3])?))();
        consider(c.get(0), date.into_iter().collect(), 0.95);
    }
    for c in overlapping(&DAY_MONTH_NAME, text) {
        // A misread month only in a date written as one word (`18-Peb-25`, `24-Mir.24`),
        // or with a year of four digits (`14 jamv. 2023`): a word between numbers
        // otherwise is as often an item's (`Soep van de dag 25,81`, `2 Bar 10,00`).
        let one_word = !c[0].contains(char::is_whitespace);
        let full_year = c[3].len() == 4;
        let month_or_misread = |name: &str| match month_number(name) {
            Some(month) => Some(month),
            None if repair && (one_word || full_year) => month_misread(name),
            None => None,
        };
        let date = (|| {
            NaiveDate::from_ymd_opt(
                year_in(&c[3], repair)?,
                month_or_misread(&c[2])?,
                day(&c[1])?,
            )
        })();
        consider(c.get(0), date.into_iter().collect(), 0.9);
    }
    for c in overlapping(&MONTH_NAME_DAY, text) {
        let date = (|| {
            NaiveDate::from_ymd_opt(year_in(&c[3], repair)?, month_number(&c[1])?, day(&c[2])?)
        })();
        consider(c.get(0), date.into_iter().collect(), 0.9);
    }
    for c in overlapping(&NUMERIC, text) {
        let reading = (|| {
            let year = year_in(&c[4], repair)?;
            let (a, b): (u32, u32) = (c[1].parse().ok()?, c[3].parse().ok()?);
            // Repaired either way round, as a day and as a month.
            let day_first = (|| NaiveDate::from_ymd_opt(year, month(&c[3])?, day(&c[1])?))();
            let month_first = (|| NaiveDate::from_ymd_opt(year, month(&c[1])?, day(&c[3])?))();
            // Dotted dates are day-first everywhere they are used.
            let dotted = &c[2] == ".";
            Some(if dotted || a > 12 || a == b {
                (vec![day_first?], 0.9)
            } else if b > 12 {
                (vec![month_first?], 0.9)
            } else {
                match order {
                    Order::MonthFirst => (vec![month_first?, day_first?], AMBIGUOUS),
                    Order::DayFirst => (vec![day_first?, month_first?], AMBIGUOUS),
                    Order::Unknown => (vec![day_first?, month_first?], UNDECIDED),
                }
            })
        })();
        // A first number of one digit before a second padded with its zero (`1/05/2026`):
        // tills pad both or neither, so the first lost a digit, most often at the
        // paper's cropped edge (11/05).
        let padded_apart = c[1].len() == 1 && c[3].len() == 2 && c[3].starts_with('0');
        if let Some((readings, confidence)) = reading {
            let confidence = if padded_apart {
                confidence.min(SPLIT)
            } else {
                confidence
            };
            consider(c.get(0), readings, confidence);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).expect("a date")
    }

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
        assert_eq!(date("10:27:20 22 sty 2025", Unknown), d(2025, 1, 22));
        assert_eq!(date("3 de outubro de 2024", Unknown), d(2024, 10, 3));
        assert_eq!(date("15 paź 2024", Unknown), d(2024, 10, 15));
        assert_eq!(date("8 augusti 2026", Unknown), d(2026, 8, 8));
        assert_eq!(date("Table 12 Guests 4", Unknown), None);
        assert_eq!(date("6 juil. 2026", Unknown), d(2026, 7, 6));
        assert_eq!(date("6 juin 2026", Unknown), d(2026, 6, 6));
        assert_eq!(date("6 jui. 2026", Unknown), None, "juin or juillet");
        // Split around its time: 10 February (for a person), never the minutes as a day.
        assert_eq!(date("Le 10  21:04\nfév. 2026", Unknown), d(2026, 2, 10));
        assert_eq!(date("May 30,  14:29\n2024", Unknown), d(2024, 5, 30));
        assert_eq!(date("May 30, 2024 14:29", Unknown), d(2024, 5, 30));
        assert_eq!(date("10 fév. 2026 21:04", Unknown), d(2026, 2, 10));
        assert_eq!(date("Datum:24.12.2025", Unknown), d(2025, 12, 24));
        assert_eq!(date("31/02/2026", Unknown), None, "no such day");
        // Spacing OCR or a till's font leaves out or adds.
        assert_eq!(date("Jan 21,2024 11:41", Unknown), d(2024, 1, 21));
        assert_eq!(date("2024 -06- 14 07:12", Unknown), d(2024, 6, 14));
        assert_eq!(date("May 30,14:29", Unknown), None);
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

    #[test]
    fn dates_ocr_garbled_are_repaired_for_a_person_to_confirm() {
        use Order::*;
        let repaired = |t: &str, order| find_date(t, order);
        assert_eq!(
            repaired("Date: 02-19-2925", MonthFirst),
            Some((d(2025, 2, 19), REPAIRED))
        );
        assert_eq!(
            repaired("Datum: 2024-95-22 07:57", DayFirst),
            Some((d(2024, 5, 22), REPAIRED))
        );
        assert_eq!(
            repaired("Fecha 27.96.2025", DayFirst),
            Some((d(2025, 6, 27), REPAIRED))
        );
        assert_eq!(
            repaired("83/12/2025 18:58", DayFirst),
            Some((d(2025, 12, 3), REPAIRED))
        );
        assert_eq!(
            repaired("Fecha 21-@4-2026", DayFirst),
            Some((d(2026, 4, 21), REPAIRED))
        );
        assert_eq!(
            repaired("ll-May-24 08:52", Unknown),
            Some((d(2024, 5, 11), REPAIRED))
        );
        // A month's longer word with a letter misread, and a capital I read as `l`.
        assert_eq!(
            repaired("20-a00T-2025  #8309", DayFirst),
            Some((d(2025, 8, 20), REPAIRED))
        );
        assert_eq!(
            find_date("Date de facture  19-MAl-2023", DayFirst),
            Some((d(2023, 5, 19), 0.9))
        );
        // Two months as close (`MAT`: mai, mar) name neither.
        assert_eq!(repaired("02-MAT-2025", DayFirst), None);
        assert_eq!(
            repaired("Date: Sep 4, 2924", Unknown),
            Some((d(2024, 9, 4), REPAIRED))
        );
        assert_eq!(
            repaired("28 aodt 2025", Unknown),
            Some((d(2025, 8, 28), 0.9))
        );
        // A month's abbreviation with one letter misread; not when two months are that
        // close (`Fet`: Feb, févr. or Set).
        assert_eq!(
            repaired("18-Peb-25 12:50", DayFirst),
            Some((d(2025, 2, 18), REPAIRED))
        );
        assert_eq!(repaired("16-Fet-26 12:50", DayFirst), None);
        assert_eq!(repaired("Soep van de dag 25,81", DayFirst), None);
        assert_eq!(repaired("2 Bar 10,00", DayFirst), None);
        // Apart from its day and a year of four digits, it is no item's word.
        assert_eq!(
            repaired("14 jamv. 2023", DayFirst),
            Some((d(2023, 1, 14), REPAIRED))
        );
        assert_eq!(repaired("2 Brot 10 2025", DayFirst), None);
        // A `1` for an `l` as well: `Ja1` is Jan or Jul.
        assert_eq!(repaired("08:57.54 15Ja1 2023", DayFirst), None);
        assert_eq!(
            repaired("15-Ju1-2023", DayFirst),
            Some((d(2023, 7, 15), 0.9))
        );
        // A `/` read as a `1` or a `7`.
        assert_eq!(
            repaired("Datum 2024/10122 10:06", DayFirst),
            Some((d(2024, 10, 22), REPAIRED))
        );
        assert_eq!(
            repaired("Date : 2026/01717 11:58", DayFirst),
            Some((d(2026, 1, 17), REPAIRED))
        );
        assert_eq!(
            repaired("2710912026 15:03", DayFirst),
            Some((d(2026, 9, 27), REPAIRED))
        );
        assert_eq!(repaired("Tel 0471 123 4567", DayFirst), None);
        // Repairs are a fallback: a date that reads as printed is taken as it is.
        assert_eq!(
            repaired("Tel 83/12/2025\nDatum 03.12.2025", DayFirst),
            Some((d(2025, 12, 3), 0.9))
        );
        // Two repairs that both make sense leave the date unread: month 00 could be 06 or 08.
        assert_eq!(repaired("Date 15/00/2025", DayFirst), None);
        // The letters of a month's name stay letters.
        assert_eq!(repaired("12-Oct-24", Unknown), Some((d(2024, 10, 12), 0.9)));
        assert_eq!(
            repaired("I2-Oct-24", Unknown),
            Some((d(2024, 10, 12), REPAIRED))
        );
        // A weekday does not make a repair sure.
        assert_eq!(
            repaired("Thu 15/O2/2024", DayFirst),
            Some((d(2024, 2, 15), REPAIRED))
        );
    }

    #[test]
    fn a_day_of_one_digit_before_a_padded_month_may_have_lost_one() {
        assert_eq!(
            find_date("1/05/2026  #2881", Order::DayFirst),
            Some((d(2026, 5, 1), SPLIT))
        );
        assert_eq!(
            find_date("11/05/2026  #2881", Order::DayFirst),
            Some((d(2026, 5, 11), 0.85))
        );
        assert_eq!(
            find_date("1/5/2026", Order::DayFirst),
            Some((d(2026, 5, 1), 0.85))
        );
    }

    #[test]
    fn a_date_that_a_number_stands_before_may_be_split() {
        use Order::*;
        assert_eq!(
            find_date("Data: 1 1/4/24", DayFirst),
            Some((d(2024, 4, 1), SPLIT))
        );
        assert_eq!(
            find_date("Datum 20; 24-12-19", DayFirst),
            Some((d(2019, 12, 24), SPLIT))
        );
        assert_eq!(
            find_date("20:03 24/12/2024", DayFirst),
            Some((d(2024, 12, 24), 0.9))
        );
        assert_eq!(
            find_date("Date: 24/12/2024", DayFirst),
            Some((d(2024, 12, 24), 0.9))
        );
        assert_eq!(
            find_date("24/12/2024", DayFirst),
            Some((d(2024, 12, 24), 0.9))
        );
    }

    #[test]
    fn a_date_glued_on_to_a_number_before_it_may_begin_there() {
        use Order::*;
        // 09/02/2024 12:30:28, its second slash read as `4`.
        let (date, confidence) = find_date("09402/2024.12.30.28.", DayFirst).unwrap();
        assert_eq!(date, d(2024, 12, 30));
        assert_eq!(confidence, SPLIT);
        // A space apart, or a letter before, the date stands.
        for line in ["Nr 09402 2024.12.30 12:28", "Rg.Nr.A/2024.12.30"] {
            let (date, confidence) = find_date(line, DayFirst).unwrap();
            assert_eq!(date, d(2024, 12, 30), "{line}");
            assert!(confidence > SPLIT, "{line}");
        }
    }

    #[test]
    fn a_number_read_as_no_date_does_not_hide_the_date_it_runs_into() {
        // `900000`, the line's end and `10` read as a day, a month's word and a year.
        assert_eq!(
            find_date(
                "+45 497 900000\n10 oct.2026 12:38:59  #9997",
                Order::DayFirst
            ),
            Some((d(2026, 10, 10), 0.9))
        );
    }

    #[test]
    fn dashes_read_as_tildes_months_with_misread_letters_and_run_together_dates_are_read() {
        use Order::*;
        for (text, date) in [
            ("82032 Torino 26~09.2025 11. 37", d(2025, 9, 26)),
            ("2025~04-09 23:12:49  #8786", d(2025, 4, 9)),
            ("29-JU1~2026", d(2026, 7, 29)),
            ("12:44 08-ME1-2026", d(2026, 5, 8)),
            ("Jμn 4, 2025  #6138", d(2025, 6, 4)),
            ("Fecha factra  1 seρ 2025", d(2025, 9, 1)),
            ("16May202314:13", d(2023, 5, 16)),
            ("01-07-202317.38  #6601", d(2023, 7, 1)),
            ("21 ju| 2026", d(2026, 7, 21)),
            ("14:29:00 05-A∪G-2024", d(2024, 8, 5)),
            ("13-SEPT-20251435  #6875", d(2025, 9, 13)),
            ("20 abr 20242134  #8947", d(2024, 4, 20)),
            ("23-112023", d(2023, 11, 23)),
            ("06-08-202415:2656  82558", d(2024, 8, 6)),
        ] {
            assert_eq!(find_date(text, DayFirst).map(|f| f.0), Some(date), "{text}");
        }
        // A price with a point after a number is no time run into a year.
        assert_eq!(times_parted("Total 1202317.38"), "Total 1202317.38");
        // Dashes read as `=`: a repair, for a person to confirm.
        for (text, date) in [
            ("21=SEPT-202617:08.58  828X0", d(2026, 9, 21)),
            ("15:27 2026-08=27  #4225", d(2026, 8, 27)),
        ] {
            assert_eq!(find_date(text, DayFirst), Some((date, REPAIRED)), "{text}");
        }
        // Not in a sum, nor in grain read as signs, nor where a date reads as printed.
        assert_eq!(find_date("2 x 12 = 07-2024", DayFirst), None);
        assert_eq!(find_date("1=25.79  25.79\n..2=9.65", DayFirst), None);
        assert_eq!(
            find_date("3=8=38=3a88\n05.02.2023 08:54", DayFirst),
            Some((d(2023, 2, 5), 0.9))
        );
    }

    #[test]
    fn a_time_run_into_its_date_is_parted_from_it() {
        use Order::*;
        for (text, spaced, date) in [
            (
                "04.05.2609:54  #7393",
                "04.05.26 09:54  #7393",
                d(2026, 5, 4),
            ),
            ("18-06-202419:36:12", "18-06-2024 19:36:12", d(2024, 6, 18)),
            ("11:2601.03.24", "11:26 01.03.24", d(2024, 3, 1)),
            (
                "18:29:2820-DIC-2024",
                "18:29:28 20-DIC-2024",
                d(2024, 12, 20),
            ),
            (
                "22:042025-10-16  #6127",
                "22:04 2025-10-16  #6127",
                d(2025, 10, 16),
            ),
            ("1 juin 202419.27:45", "1 juin 2024 19.27:45", d(2024, 6, 1)),
            (
                "24févr.202407:42:01",
                "24 févr. 2024 07:42:01",
                d(2024, 2, 24),
            ),
            (
                "15:16:32.02/06/2025  s6104",
                "15:16:32 02/06/2025  s6104",
                d(2025, 6, 2),
            ),
        ] {
            let found = find_date(text, DayFirst);
            assert_eq!(found.map(|f| f.0), Some(date), "{text}");
            // As sure as the date printed apart from its time.
            assert_eq!(found, find_date(spaced, DayFirst), "{text}");
        }
        // A time alone, or beside its date, is left as it is.
        assert_eq!(times_parted("19:36:12 24/12/2024"), "19:36:12 24/12/2024");
        assert_eq!(times_parted("Tisch 12  9:05"), "Tisch 12  9:05");
        assert_eq!(times_parted("Kaffee 9:05 2,50"), "Kaffee 9:05 2,50");
    }

    #[test]
    fn a_date_split_over_two_rows_around_its_time_is_read_for_a_person() {
        use Order::*;
        assert_eq!(
            find_date("Date: 26  12:52\nAugust 2025\n", DayFirst),
            Some((d(2025, 8, 26), REPAIRED))
        );
        assert_eq!(
            find_date("Fecha 22 de 19:19\nenero de 2026\n", DayFirst),
            Some((d(2026, 1, 22), REPAIRED))
        );
        assert_eq!(
            find_date("Date : 12 décembre  08:2:\n2025\n", DayFirst),
            Some((d(2025, 12, 12), REPAIRED))
        );
        // A date whole on its row is read as printed, its time beside it or not.
        assert_eq!(
            find_date("26 August 2025 12:52\n", DayFirst),
            Some((d(2025, 8, 26), 0.9))
        );
        // The Dutch abbreviation of March.
        assert_eq!(
            find_date("Datum 04-Mrt-26 19:11", DayFirst),
            Some((d(2026, 3, 4), 0.9))
        );
    }

    #[test]
    fn a_printed_weekday_confirms_settles_or_doubts_a_date() {
        use Order::*;
        // 7 March 2026 is a Saturday, 3 July 2026 a Friday.
        assert_eq!(
            find_date("Sa 07.03.2026", DayFirst),
            Some((d(2026, 3, 7), 0.95))
        );
        assert_eq!(
            find_date("Samstag, 7. März 2026", Unknown),
            Some((d(2026, 3, 7), 0.95))
        );
        assert_eq!(
            find_date("sáb. 7 de marzo de 2026", Unknown),
            Some((d(2026, 3, 7), 0.95))
        );
        // The numbers leave the order open; the weekday decides it, against the currency.
        assert_eq!(
            find_date("Fri 07/03/2026", DayFirst),
            Some((d(2026, 7, 3), 0.95))
        );
        assert_eq!(
            find_date("Sat 03/07/2026", MonthFirst),
            Some((d(2026, 3, 7), 0.95))
        );
        assert_eq!(
            find_date("Fri 07/03/2026", Unknown),
            Some((d(2026, 7, 3), 0.95))
        );
        // A Monday that is no 8 March: the date or the weekday was misread.
        assert_eq!(
            find_date("Mon 08.03.2026", DayFirst),
            Some((d(2026, 3, 8), WEEKDAY_DISAGREES))
        );
        // Words that end in a weekday's letters, or are none, leave the date as it was.
        assert_eq!(
            find_date("Datum 08.03.2026", DayFirst),
            Some((d(2026, 3, 8), 0.9))
        );
        assert_eq!(
            find_date("Kasse2 08.03.2026", DayFirst),
            Some((d(2026, 3, 8), 0.9))
        );
        assert_eq!(
            find_date("Fecha: 08.03.2026", DayFirst),
            Some((d(2026, 3, 8), 0.9))
        );
    }
}
