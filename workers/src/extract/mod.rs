//! Receipt text → fields: merchant, date, total with currency, tax, each with a
//! confidence; a receipt whose total, date or currency is not sure enough goes to a
//! person ([`needs_review`]).
//!
//! Receipts print many amounts; the total is the one on a line that says so ("total",
//! "amount due", "Summe", "Total TTC", "Te betalen", …, [`words`]) and not on a
//! subtotal, tax, tip, cash or change line — and, above all, the one the receipt's own
//! arithmetic confirms ([`arithmetic`]): a total that subtotal + tax or cash − change
//! or the card payment also gives is sure, and a total line OCR misread is repaired
//! from them.

mod amounts;
mod arithmetic;
mod currency;
mod dates;
mod words;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{Days, Months, NaiveDate};

use expensewise_domain::receipt::Extraction;
use expensewise_domain::{Currency, Money};
use rust_decimal::Decimal;

use amounts::{
    after_misread_mask, after_misread_sign, amounts, clean, groups_apart, has_groups_apart,
    yen_mark_dropped, yen_marks_as_digits, Amount,
};
use arithmetic::{
    cut_at_edge, cut_short, digits_before, ends, misread_of, one_digit_apart, padded,
    sign_read_as_digits, Ledger, Proof,
};
use currency::{
    country_currency, in_quebec, marks, misread_code, misread_sign, only_a_place, signs_dollar,
    Mark,
};
use dates::{find_date, month_named_shape, Order};
use words::{
    fold, label, not_english, repair_accents, says, Label, DATE_WORDS, DUE_DATE, GROSS,
    NOT_MERCHANT,
};

/// Below this confidence in the total, the date or the currency, a person confirms the
/// reading before an expense is made of it.
pub const REVIEW_BELOW: f32 = 0.8;
/// A total under a clear label that nothing else on the receipt checks — no items, no
/// line proving any value: a card terminal's slip. Not doubted, but only as sure as
/// OCR's reading of its digits, which a photo's second reading checks
/// ([`crate::receipts::read_fields`]).
pub const UNCHECKED: f32 = 0.85;
/// The total of an unchecked reading that a second reading of the image disagrees with.
pub const READINGS_DISAGREE: f32 = 0.6;

/// The confidence in a total filled in from the one way the other lines prove it, when the
/// total line reads as that amount with digits before it.
const SIGN_AS_DIGITS: f32 = 0.7;

/// The confidence in a total its wording names that only the items added up, disagreeing,
/// check: a person confirms it.
const ITEMS_DISAGREE: f32 = 0.75;

/// The confidence in a total repaired from what two other ways prove, when the total line
/// read another amount a digit or two from it.
const MISREAD_REPAIRED: f32 = 0.75;

/// The confidence in a currency read from its sign misread as letters beside the total,
/// where nothing else on the receipt names one: a person confirms it.
const MISREAD_SIGN: f32 = 0.7;

/// The confidence in an unchecked total whose line prints no currency mark, in a currency
/// without cents, or in dollars beginning with a digit shaped like `$`: the mark may be
/// among the digits.
const MARK_LOST: f32 = 0.6;

/// The confidence in a date later than the receipt's upload: a reading, not a fact.
const AFTER_UPLOAD: f32 = 0.3;
/// How old a receipt may be at its upload before its date needs a person: older ones are
/// most often a year misread or cut off (`2020` for 2025, "19/12/20" for 19/12/2025)
/// rather than a claim no expense policy would take anyway.
const YEARS_BEFORE_UPLOAD: u32 = 5;
/// The confidence in a date older than that.
const LONG_BEFORE_UPLOAD: f32 = 0.6;
/// The confidence in a date read below a line naming the receipt's date that OCR
/// garbled ([`own_date_unread`]).
const OWN_DATE_UNREAD: f32 = 0.6;

/// The confidence in a date later than the day its invoice falls due.
const DUE_BEFORE: f32 = 0.6;

/// The fields a person should confirm before an expense is made of the reading: the
/// total, date or currency when missing or not sure enough.
pub fn doubts(extraction: &Extraction) -> Vec<String> {
    ["total", "date", "currency"]
        .into_iter()
        .filter(|field| {
            extraction
                .confidence
                .get(*field)
                .is_none_or(|c| *c < REVIEW_BELOW)
        })
        .map(str::to_string)
        .collect()
}

/// Whether a person should confirm the reading (see [`doubts`]).
pub fn needs_review(extraction: &Extraction) -> bool {
    !doubts(extraction).is_empty()
}

/// The rows of `text` (as its `lines()` count them) whose words label the total: the
/// ones worth reading again when the total is in doubt, its amount most often misread
/// there or lost.
pub fn total_rows(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| matches!(label(&fold(line)), Some(Label::Total(_))))
        .map(|(i, _)| i)
        .collect()
}

/// One line of the receipt, read.
struct Line<'a> {
    original: &'a str,
    folded: String,
    /// As [`clean`] makes it: the amounts' offsets are in it.
    cleaned: String,
    label: Option<Label>,
    amounts: Vec<Amount>,
    marks: Vec<Mark>,
    /// The head of a table's columns whose last is the gross: the tax summary's.
    heads_total_column: bool,
}

/// A line's amount: the rightmost, where tills print it — unless that is a lone digit
/// right after an amount, which is a currency sign OCR read as one ("160,620 8" for
/// "160,620 ₩").
fn line_amount(line: &Line) -> Option<Decimal> {
    match line.amounts.as_slice() {
        [.., before, last]
            if last.end - last.start == 1
                && last.start == before.end + 1
                && before.value.abs() >= Decimal::TEN =>
        {
            Some(before.value)
        }
        [.., last] => Some(last.value),
        [] => None,
    }
}

/// The currency of the receipt and how sure: the total line's own mark first, then the
/// marks elsewhere, then the merchant's country, then the organization's default.
fn find_currency(
    total_line: Option<&Line>,
    lines: &[Line],
    country: Option<&'static str>,
    default: Currency,
) -> (Currency, f32) {
    let one = |marks: &[Mark]| {
        marks.iter().find_map(|m| match m {
            Mark::One(code) => Some(*code),
            Mark::Shared(_) => None,
        })
    };
    let shared = |marks: &[Mark]| {
        marks.iter().find_map(|m| match m {
            Mark::Shared(codes) => Some(*codes),
            Mark::One(_) => None,
        })
    };
    let resolve_shared = |codes: &'static [&'static str]| -> (&'static str, f32) {
        if let Some(c) = country {
            // A `$` in Copenhagen: an `S` or a `5` misread, likelier than dollars there.
            (c, if codes.contains(&c) { 0.9 } else { 0.6 })
        } else if codes.contains(&default.code()) {
            (
                codes[codes.iter().position(|c| *c == default.code()).unwrap_or(0)],
                0.85,
            )
        } else {
            (codes[0], 0.5)
        }
    };
    let parsed = |(code, confidence): (&str, f32)| {
        Currency::parse(code).map_or((default, 0.5), |c| (c, confidence))
    };
    // A mark of another currency than the merchant's country's is either a tourist's
    // conversion or OCR's misreading of a symbol it does not know (₹ read as `¥` or `€`,
    // ₩ as `¥`): a person decides. They find the country's currency filled in, unless
    // the mark is the other's code spelled out, which no misreading makes.
    let spells = |line: &Line, code: &str| line.original.contains(code);
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for line in lines {
        if let Some(code) = one(&line.marks) {
            *counts.entry(code).or_default() += 1;
        }
    }
    // Where the receipt also prints the country's currency (`Precios en MXN` in Mexico),
    // a sign against both is the misread one (`TOTAL (€)` for `($)`): the country's
    // currency is as sure as an unchecked reading.
    // A code spelled out against the country's currency is a person's to decide too; they
    // find the country's filled in where the receipt names it as well (`Prix en CAD` in
    // Québec, above `TOTAL EUR  $103,85`).
    // So does the total's own sign where the country's currency is one it stands for
    // (`TOTAL EUR` over `49,54$` in Canada).
    let total_shared = total_line.and_then(|l| shared(&l.marks));
    let named = |c: &str| counts.contains_key(c) || total_shared.is_some_and(|s| s.contains(&c));
    let against_country = |code: &'static str, spelled: bool, confidence: f32| match country {
        Some(c) if c != code && spelled && named(c) => (c, confidence.min(0.6)),
        Some(c) if c != code && spelled => (code, confidence.min(0.6)),
        Some(c) if c != code && counts.contains_key(c) => (c, confidence.min(UNCHECKED)),
        Some(c) if c != code => (c, confidence.min(0.6)),
        _ => (code, confidence),
    };
    if let Some(line) = total_line {
        let codes: Vec<&'static str> = line
            .marks
            .iter()
            .filter_map(|m| match m {
                Mark::One(code) => Some(*code),
                Mark::Shared(_) => None,
            })
            .collect();
        if let [code] = codes.as_slice() {
            // Another code the receipt spells out (`Preços em BRL` above `TOTAL EUR`, its
            // country's name misread) against the one the total's line spells leaves the
            // currency a person's to decide.
            let spelled = spells(line, code);
            let disputed = spelled
                && lines.iter().any(|l| {
                    !std::ptr::eq(l, line)
                        && one(&l.marks).is_some_and(|other| other != *code && spells(l, other))
                });
            let confidence = if disputed { 0.6 } else { 0.95 };
            return parsed(against_country(code, spelled, confidence));
        }
        // Two currencies on the total's line: a label that names one (`TOTAL EUR`, `Summe
        // EUR` as tills word it) over an amount in another (`153.16 CHF`), or a
        // conversion. The one the rest of the receipt (`Prix en CHF`) or the merchant's
        // country names is the receipt's; with neither, a person decides.
        let elsewhere = |code: &&'static str| {
            lines
                .iter()
                .filter(|l| !std::ptr::eq(*l, line))
                .any(|l| l.marks.contains(&Mark::One(code)))
                || country == Some(*code)
        };
        let backed: Vec<&'static str> = codes.iter().copied().filter(elsewhere).collect();
        if let [code] = backed.as_slice() {
            return parsed((code, 0.9));
        }
        if let Some(code) = codes.first() {
            return parsed((code, 0.6));
        }
    }
    // The total's own sign (`$`, `kr`) and the merchant's country agree: a mark of
    // another currency elsewhere (a `£` OCR made of a smudge or a letter) does not
    // outweigh them.
    if let (Some(codes), Some(code)) = (total_shared, country) {
        if codes.contains(&code) && !counts.is_empty() && !counts.contains_key(code) {
            return parsed((code, 0.85));
        }
    }
    // Marks that disagree as often: the country's, where it is one of them.
    let ranked = counts
        .iter()
        .max_by_key(|(code, n)| (**n, country == Some(**code)));
    if let Some((code, _)) = ranked {
        // The total's own line may name a currency this is not (`Total kr.` and a stray
        // `€` below, OCR's reading of a stamp or a smudge): then a person decides.
        let against_total = total_shared.is_some_and(|codes| !codes.contains(code));
        let confidence = if counts.len() == 1 && !against_total {
            0.9
        } else {
            0.6
        };
        let spelled = lines.iter().any(|l| spells(l, code));
        return parsed(against_country(code, spelled, confidence));
    }
    // A code OCR damaged beside the total is surer than a guess, not than a mark.
    if let Some(code) = total_line.and_then(|l| misread_code(l.original)) {
        return parsed((code, 0.85));
    }
    let codes = total_line
        .and_then(|l| shared(&l.marks))
        .or_else(|| lines.iter().find_map(|l| shared(&l.marks)));
    if let Some(codes) = codes {
        return parsed(resolve_shared(codes));
    }
    match country {
        Some(code) => parsed((code, 0.85)),
        // Nothing on the receipt names a currency (or OCR lost it: ₹, ₩ and often Kč
        // and ¥ are beyond the engine, and on the corpus guessing the organization's
        // was wrong on most of those): a guess a person should confirm. A sign read as
        // letters (`W13.464`, `As49,77`) is the likelier guess.
        None => total_line
            .and_then(|l| misread_sign(after_misread_sign(&l.cleaned)?.0))
            .map_or((default, 0.7), |code| parsed((code, MISREAD_SIGN))),
    }
}

/// The merchant: the line that reads like a name nearest above the address, where the
/// top of the receipt prints one; otherwise the first such line. A photo's table, hand
/// or shadow above the paper reads as a few stray words, which the address skips.
fn find_merchant(lines: &[Line]) -> Option<String> {
    let top = &lines[..lines.len().min(8)];
    // An item line with its quantity first and its price (`1 Earl Grey  28.77`) is no
    // street, nor a day with its month's name (`6 ago 2023  20:09`).
    let priced = |l: &Line| l.amounts.iter().any(|a| a.decimals > 0);
    let dated = |l: &Line| find_date(l.original, Order::Unknown).is_some();
    // The address comes before the date and the prices: below them, a line shaped like
    // one is an item whose price OCR lost (`1 Ordner A422,46`).
    let head = top
        .iter()
        .position(|l| priced(l) || dated(l))
        .unwrap_or(top.len());
    let address = top[..head].iter().position(|l| address_line(&l.folded));
    let above_address = address.and_then(|a| top[..a].iter().rev().find_map(merchant_name));
    above_address.or_else(|| lines.iter().take(6).find_map(merchant_name))
}

/// Words of a street, whole or ending a German or Dutch compound ("Hauptstraße").
const STREET_WORDS: &[&str] = &[
    "street",
    "st",
    "road",
    "rd",
    "avenue",
    "ave",
    "blvd",
    "lane",
    "calle",
    "avenida",
    "rue",
    "boulevard",
    "via",
    "viale",
    "piazza",
    "corso",
    "plaza",
    "paseo",
    "straat",
    "laan",
    "plein",
    "weg",
    "gracht",
    "platz",
    "allee",
    "gasse",
    "chaussee",
    "rua",
    "travessa",
    "ulica",
    "ul",
    "aleja",
];
const STREET_ENDINGS: &[&str] = &[
    "strasse", "straße", "str.", "straat", "weg", "gasse", "platz", "gatan", "vagen",
];

/// An address's street line: a house number before a word ("113 Calle Mayor"), or a
/// street's word with a number ("Hauptstraße 12", "Via Roma, 4") — not a name that holds
/// one ("St James Café").
fn address_line(folded: &str) -> bool {
    let numbered = {
        let mut words = folded.split_whitespace();
        let number = words.next().unwrap_or("");
        let digits = number.chars().take_while(char::is_ascii_digit).count();
        (1..=5).contains(&digits)
            && number
                .chars()
                .skip(digits)
                .all(|c| c.is_alphabetic() || c == ',')
            && number.chars().skip(digits).count() <= 1
            && words
                .next()
                .is_some_and(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 2)
    };
    // The house number run into the street's word (`31Rua Nova`, `161Calle Mayor`).
    let street = folded
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '.'))
        .map(|w| w.trim_start_matches(|c: char| c.is_ascii_digit()))
        .any(|w| {
            STREET_WORDS.contains(&w.trim_end_matches('.'))
                || STREET_ENDINGS
                    .iter()
                    .any(|e| w.len() > e.len() && w.ends_with(e))
        });
    numbered || (street && folded.chars().any(|c| c.is_ascii_digit()))
}

/// The line as a merchant's name, if it reads like one.
fn merchant_name(line: &Line) -> Option<String> {
    let text = line.original;
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let digits = text.chars().filter(|c| c.is_ascii_digit()).count();
    // Decoration ("*** Joe's Diner ***") is not noise.
    let visible = text
        .chars()
        .filter(|c| !c.is_whitespace() && !"*-=~#_.'&".contains(*c))
        .count();
    let longest_word = text
        .split(|c: char| !c.is_alphabetic())
        .map(|w| w.chars().count())
        .max()
        .unwrap_or(0);
    let not_a_name = NOT_MERCHANT.iter().any(|w| says(&line.folded, w));
    // Photos add specks and shadows that OCR reads as a few stray marks.
    let usable = letters >= 3
        && longest_word >= 3
        && letters * 10 >= visible * 7
        && digits * 2 < letters
        && !not_a_name
        && !matches!(line.label, Some(Label::Total(_)))
        && line.amounts.is_empty()
        && !address_line(&line.folded)
        && !only_a_place(&line.folded)
        && find_date(text, Order::Unknown).is_none();
    usable.then(|| {
        let in_small_letters = text.chars().any(char::is_lowercase);
        let mut words: Vec<String> = text
            .trim_matches(|c: char| !c.is_alphanumeric() && c != '|' && c != '!')
            .split_whitespace()
            .map(|w| {
                let w = if in_small_letters {
                    small_l(w)
                } else {
                    w.to_string()
                };
                repair_accents(&repair_capitals(&repair_digits(&w)))
            })
            .collect();
        // A speck before the name reads as a lone small letter ("j Farmacia San Juan").
        let speck = |w: &String| w.chars().count() == 1 && w.chars().all(char::is_lowercase);
        let capital = |w: &String| w.chars().next().is_some_and(char::is_uppercase);
        if words.len() > 1 && speck(&words[0]) && capital(&words[1]) {
            words.remove(0);
        }
        words.join(" ")
    })
}

/// The shop's name found among the words OCR was sure of, as the full text prints it: with
/// the capitalised words beside it in its cell that OCR doubted (`Caffetteria` before
/// `Bianchi`, often the first word of the line), not with the specks beside those (`xg`,
/// `hee.`) nor the cells a far gap sets apart (the table beside the paper read as `Be?`).
fn whole_name(name: String, text: &str) -> String {
    let wanted: Vec<&str> = name.split_whitespace().collect();
    let name_like = |word: &&&str| {
        word.chars().count() >= 2
            && word.chars().all(char::is_alphabetic)
            && word.chars().next().is_some_and(char::is_uppercase)
    };
    for cell in text.lines().flat_map(|line| line.split("  ")) {
        let Some(read) = lines_of(cell).first().and_then(merchant_name) else {
            continue;
        };
        let words: Vec<&str> = read.split_whitespace().collect();
        let Some(at) = words
            .windows(wanted.len())
            .position(|w| w == wanted.as_slice())
        else {
            continue;
        };
        let before = words[..at].iter().rev().take_while(name_like).count();
        let after = words[at + wanted.len()..]
            .iter()
            .take_while(name_like)
            .count();
        return words[at - before..at + wanted.len() + after].join(" ");
    }
    name
}

/// A name's word with a digit OCR read for a letter at its edge, among letters only: a
/// `0` before them is an `O` (`0akwood`), a `1` or a capital `I` after small ones an `l`
/// (`Gril1`, `Brand1`, `BrandI`: no name ends in a capital after small letters), and so
/// is a `1` between small letters (`Wi1low`). PP-OCR reads clean print so one name in a
/// hundred.
fn repair_digits(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let small = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_some_and(|c| c.is_lowercase())
    };
    let word: String = chars
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            '1' if small(i.checked_sub(1)) && small(Some(i + 1)) => 'l',
            other => *other,
        })
        .collect();
    let word = word.as_str();
    let letters = |part: &str| part.chars().count() >= 2 && part.chars().all(char::is_alphabetic);
    if let Some(rest) = word.strip_prefix('0') {
        if letters(rest) {
            return format!("O{rest}");
        }
    }
    if let Some(rest) = word.strip_suffix(['1', 'I']) {
        if letters(rest) && rest.chars().next_back().is_some_and(char::is_lowercase) {
            return format!("{rest}l");
        }
    }
    word.to_string()
}

/// A two-letter word of a name in small letters whose `l` OCR read as a `1`, an `I` or a
/// `|` (`E1 Puerto`, `Bar EI Puerto`): the article it is (`El`, `Il`), since a name printed
/// in small letters has no word of two capitals.
fn small_l(word: &str) -> String {
    let mut chars = word.chars();
    match (chars.next(), chars.next(), chars.next()) {
        (Some(first), Some('1' | 'I' | '|'), None) if first.is_uppercase() => format!("{first}l"),
        _ => word.to_string(),
    }
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

/// Where a label's amount is when its own line has none.
#[derive(Clone, Copy)]
enum Beside {
    Below,
    Above,
}

/// The total and how sure: the total lines' amounts checked against what the other
/// lines prove. Labels are read with their own line's amount first; when that proves
/// nothing, with the amount OCR put on the row below, then above, where their own line
/// has none (a wide till's amount column, or an amount printed before its label, comes
/// out as rows of its own) — a reading is taken only if the arithmetic confirms it. Last,
/// with every label's amount taken from the row beside, taken only if two ways prove it.
fn find_total(lines: &[Line]) -> Option<(Decimal, f32, Option<usize>)> {
    // The items are no labels' amounts: the same for every reading.
    let items = item_prices(lines);
    let own = total_read(lines, &items, None);
    if own.is_some_and(|(_, confidence, _)| confidence >= 0.9) {
        return own;
    }
    let beside: Vec<_> = [Beside::Below, Beside::Above]
        .into_iter()
        .filter_map(|beside| total_read(lines, &items, Some(Pairing::Beside(beside))))
        .collect();
    // Short of that, the labels and the amounts a whole row apart: a perspective or curled
    // paper leaves the price column a row below or above its labels (`Tax  180.40`,
    // `Amount  36.08`, `VISA  216.48` over `216.48`), so every label's own line shows the
    // wrong amount.
    let shifted = || {
        [Beside::Below, Beside::Above]
            .into_iter()
            .filter_map(|beside| total_read(lines, &items, Some(Pairing::Shifted(beside))))
            .find(|(_, confidence, _)| *confidence >= 0.9)
    };
    let sure = beside
        .iter()
        .find(|(_, confidence, _)| *confidence >= 0.9)
        .copied()
        .or_else(shifted);
    // Short of that, the surer of the readings a person will check anyway: which one is
    // filled in changes nothing but what they find there. As sure, an amount the receipt
    // prints is likelier than a sum of amounts, which a lost or doubled item line makes.
    let printed = |value: Decimal| {
        lines
            .iter()
            .any(|l| l.amounts.iter().any(|a| a.value == value))
    };
    let weight =
        |(value, confidence, _): (Decimal, f32, Option<usize>)| (confidence, printed(value));
    let own_weight = own.map_or((0.0, false), weight);
    let for_review = beside
        .iter()
        .copied()
        .chain(marked_beside(lines))
        .filter(|reading| reading.1 < REVIEW_BELOW && weight(*reading) > own_weight)
        .max_by(|a, b| {
            weight(*a)
                .partial_cmp(&weight(*b))
                .unwrap_or(Ordering::Equal)
        });
    sure.or(for_review).or(own)
}

/// A total label alone on its row, and on the row beside it another label's amount that
/// carries the currency (`Propina  MXN 2704,19` over `TOTAL`, `Grand Total` over `Cash
/// tendered  AU$460.78`): a curled or tilted photo paired the total's amount with the
/// next label, and tills print the currency on the total. A guess for a person.
fn marked_beside(lines: &[Line]) -> Option<(Decimal, f32, Option<usize>)> {
    let lone_total = |(i, l): &(usize, &Line)| {
        matches!(l.label, Some(Label::Total(_)))
            && l.amounts.is_empty()
            && lines.get(i + 1).and_then(tax_summary).is_none()
    };
    let marked_other = |l: &&Line| {
        l.label
            .is_some_and(|label| !matches!(label, Label::Total(_)))
            && !l.marks.is_empty()
    };
    lines
        .iter()
        .enumerate()
        .filter(lone_total)
        .find_map(|(i, _)| {
            let below = lines.get(i + 1);
            let above = i.checked_sub(1).and_then(|j| lines.get(j));
            [below, above]
                .into_iter()
                .flatten()
                .find(marked_other)
                .and_then(line_amount)
                .filter(|amount| *amount > Decimal::ZERO)
        })
        .map(|amount| (amount, MARKED_BESIDE, None))
}

/// The confidence in [`marked_beside`]'s reading: above the plain guesses a person is
/// shown (0.6), below the repairs the arithmetic supports.
const MARKED_BESIDE: f32 = 0.65;

/// Where a label's amount is looked for besides its own line.
#[derive(Clone, Copy)]
enum Pairing {
    /// On the row beside, where its own line has none and that row has no label.
    Beside(Beside),
    /// On the row beside, whatever its own line and that row show.
    Shifted(Beside),
}

/// [`find_total`] with each label's amount found as `pairing` says (its own line's only,
/// without one).
fn total_read(
    lines: &[Line],
    items: &[(usize, Decimal)],
    pairing: Option<Pairing>,
) -> Option<(Decimal, f32, Option<usize>)> {
    let index_beside = |i: usize, beside: Beside| match beside {
        Beside::Below => Some(i + 1).filter(|j| *j < lines.len()),
        Beside::Above => i.checked_sub(1),
    };
    let row_beside = |i: usize, beside: Beside| index_beside(i, beside).map(|j| &lines[j]);
    // An unlabelled row's amount belongs to one label: taken by the total below its
    // label, it is not also the subtotal above the next (`Total document`, `70331`,
    // `Imponibile`), which would prove the total by itself.
    let mut claimed: Vec<usize> = Vec::new();
    let mut neighbour = |i: usize, beside: Beside| {
        let j = index_beside(i, beside).filter(|j| !claimed.contains(j))?;
        let amount = Some(&lines[j])
            .filter(|row| row.label.is_none())
            .and_then(line_amount)?;
        claimed.push(j);
        Some(amount)
    };
    // The rows labels take their amounts from, which are then no items.
    let mut lent: Vec<usize> = Vec::new();
    let mut ledger = Ledger::default();
    // The tax summary's rows that do not add up: (net + tax, gross as printed).
    let mut unbalanced: Vec<(Decimal, Decimal)> = Vec::new();
    // (rank, line index, amount); a total line whose amount OCR lost has none.
    let mut candidates: Vec<(u8, usize, Option<Decimal>)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        // A tax summary's row is that, whatever its wording (`MwSt 19%` on it), and the
        // line above it without amounts its columns' head (`Tipo  Base  Cuota  Total`).
        if let Some(gross) = tax_summary(line) {
            ledger.gross.push(gross);
            continue;
        }
        // A summary's row below its head, its net and tax misread (`22%  500,43110,09
        // 610,52`, `25%  70.39  1760  87,99`): its last amount is still the gross.
        // One that does not add up however read is kept aside: its net and tax may still
        // be right where its gross is misread.
        if i > 0 && lines[i - 1].heads_total_column && line.label.is_none() {
            let gross = row_gross(line);
            if let ([.., net, tax, printed], None) = (line.amounts.as_slice(), gross) {
                unbalanced.push((net.value + tax.value, printed.value));
            }
            ledger.gross.extend(gross);
            continue;
        }
        if line.amounts.is_empty() && lines.get(i + 1).and_then(tax_summary).is_some() {
            continue;
        }
        let (source, amount) = match pairing {
            None => (Some(line), line_amount(line)),
            Some(Pairing::Beside(beside)) => match line_amount(line) {
                Some(own) => (Some(line), Some(own)),
                None => {
                    let amount = neighbour(i, beside);
                    if line.label.is_some() && amount.is_some() {
                        lent.extend(index_beside(i, beside));
                    }
                    (Some(line), amount)
                }
            },
            Some(Pairing::Shifted(beside)) => {
                let row = row_beside(i, beside);
                let amount = row.and_then(line_amount);
                if line.label.is_some() && amount.is_some() {
                    lent.extend(index_beside(i, beside));
                }
                (row, amount)
            }
        };
        match line.label {
            Some(Label::Total(rank)) => {
                // An amount OCR put on the row below a lone total label still belongs
                // to it, whichever way the others are read, and is no item then.
                let amount = match pairing {
                    Some(Pairing::Shifted(_)) => amount,
                    _ => {
                        amount.or_else(|| neighbour(i, Beside::Below).inspect(|_| lent.push(i + 1)))
                    }
                };
                candidates.push((rank, i, amount.filter(|a| *a > Decimal::ZERO)));
            }
            Some(Label::Subtotal) => ledger.subtotal = ledger.subtotal.or(amount),
            Some(Label::Tax) => {
                let with_cents =
                    source.and_then(|l| l.amounts.iter().rev().find(|a| a.decimals > 0));
                if let Some(a) = with_cents {
                    ledger.taxes.push(a.value);
                } else if let Some(a) = amount {
                    // Either a currency without cents, or OCR lost the point ("741"
                    // for 7.41): both readings are tried against the total.
                    ledger.taxes.push(a);
                    ledger.taxes.push(a / Decimal::ONE_HUNDRED);
                }
            }
            Some(Label::Tip) => {
                if let Some(a) = amount.filter(|_| ledger.tips.is_empty()) {
                    ledger.tips.push(a);
                    // A tip printed without cents (`Trinkgeld  682`) may have lost its
                    // point, as a change's may: both readings are tried.
                    if a.scale() == 0 && a >= Decimal::ONE_HUNDRED {
                        ledger.tips.push(a / Decimal::ONE_HUNDRED);
                    }
                }
            }
            Some(Label::Discount) => ledger.discount = ledger.discount.or(amount),
            Some(Label::Deposit) => ledger.deposit = ledger.deposit.or(amount),
            Some(Label::Cash) => ledger.cash = ledger.cash.or(amount),
            Some(Label::Change) => {
                if let Some(a) = amount.filter(|_| ledger.changes.is_empty()) {
                    ledger.changes.push(a);
                    // Change printed without cents (`Wisselgeld  691`) may have lost its
                    // point, as a tax's may: both readings are tried.
                    if a.scale() == 0 && a >= Decimal::ONE_HUNDRED {
                        ledger.changes.push(a / Decimal::ONE_HUNDRED);
                    }
                }
            }
            Some(Label::Card) => {
                ledger
                    .card
                    .extend(amount.filter(|a| !card_digits(lines, line, *a)));
            }
            None => {}
        }
    }
    // The unlabelled row right above the tax that adds up with it to a total line is the
    // subtotal whose label OCR lost (`EUR 258.86`, `IVA 19%  49.18`, `TOTAL  308,04`), and
    // no item.
    let first_tax = lines.iter().position(|l| l.label == Some(Label::Tax));
    let above_tax = first_tax
        .filter(|_| ledger.subtotal.is_none())
        .and_then(|t| t.checked_sub(1))
        .filter(|j| lines[*j].label.is_none() && !lent.contains(j));
    if let Some((j, base)) = above_tax.and_then(|j| Some((j, line_amount(&lines[j])?))) {
        let adds_up = candidates
            .iter()
            .any(|(_, i, total)| *i > j && total.is_some_and(|t| ledger.leads_to(base, t)));
        if adds_up {
            ledger.subtotal = Some(base);
            lent.push(j);
        }
    }
    // A row a label took its amount from is no item as well: `Girocard **** 4242` over
    // `AUTH 315753 REF 447468` is no payment and purchase of 447,468 proving each other.
    ledger.items = items
        .iter()
        .filter(|(i, _)| !lent.contains(i))
        .map(|(_, a)| *a)
        .collect();
    // A total line that the taxes lead from to a later one is the subtotal, its `Sub`
    // lost to OCR (`total 5,611.68`, `VAT 561.17`, `AMOUNT $6,172.85`).
    if ledger.subtotal.is_none() {
        let read_totals = || {
            candidates
                .iter()
                .filter_map(|(_, i, amount)| amount.map(|a| (*i, a)))
        };
        let subtotal = read_totals().find(|(i, base)| {
            read_totals().any(|(j, total)| j > *i && ledger.leads_to(*base, total))
        });
        if let Some((i, base)) = subtotal {
            ledger.subtotal = Some(base);
            candidates.retain(|(_, j, _)| *j != i);
        }
    }
    // Rows paired a row apart pair any two rows: one way alone agreeing with what that
    // makes of a total line (the row above `Grand Total` taken for its amount, matching
    // the items added up; `Subtotal  10,00` above `Total  11,90`) is chance.
    // Nor is a value the tax summary and every item line prove with no label's amount at
    // all: a shift that makes a label take an item's price (`Servizio` taking the
    // `Prosciutto crudo  20,18` above it for a tip, items less it plus it) proves it again
    // while the receipt's own tip, on top, is lost.
    if matches!(pairing, Some(Pairing::Shifted(_))) {
        let unpaired = Ledger {
            gross: ledger.gross.clone(),
            items: items.iter().map(|(_, a)| *a).collect(),
            ..Ledger::default()
        };
        let proven = ledger.proven();
        if proven.is_none() || proven == unpaired.proven() {
            return None;
        }
    }
    let proofs = ledger.proofs();
    let support = |value: Decimal| {
        let mut kinds: Vec<Proof> = proofs
            .iter()
            .filter(|(v, _)| *v == value)
            .map(|(_, how)| *how)
            .collect();
        kinds.dedup();
        kinds.len()
    };
    // Confirmed by arithmetic: the surest wording, then the last line, among those.
    let confirmed = candidates
        .iter()
        .filter_map(|(rank, i, amount)| amount.map(|a| (*rank, *i, a)))
        .filter(|(_, _, a)| support(*a) > 0)
        .max_by_key(|(rank, i, a)| (support(*a), std::cmp::Reverse(*rank), *i));
    if let Some((_, i, amount)) = confirmed {
        // Two other ways agree on another value (`Total 76 810` matching the items, its
        // `HT` on the next row, against cash − change and the items plus the tip): unless
        // this total reads as that value damaged (then either may be the misread one),
        // that value is likelier, for a person to confirm.
        // Unless a line no label claims prints what lies between them (`Drncks  372.90`,
        // the tip's label misread, between items = Netto = 2486,00 and a total cash less
        // change proves): then the total is that value and the line.
        let bridged = |proven: Decimal| {
            lines
                .iter()
                .any(|l| l.label.is_none() && l.amounts.iter().any(|a| a.value == amount - proven))
        };
        if let Some(proven) = ledger
            .proven()
            .filter(|p| *p != amount && !misread_of(amount, *p) && !bridged(*p))
        {
            return Some((proven, 0.6, Some(i)));
        }
        // What was paid reads like this total with digits lost or damaged (`Total 570,30`,
        // proven by a subtotal that lost the same leading digit, against `EC-Karte
        // 3.570,30`): one of them is misread, and a person decides which. Of the sums of
        // subtotal, taxes, tip and discount only one this total is the tail of counts
        // (`TOTAL 43.91` and `VISA 43.91` against Sub-total 937.68 − Discount 93.77):
        // among their many combinations one is often a digit or two from any total. The
        // items added up are weaker still: OCR drops, doubles and splits item lines (but
        // see the card's rival below). Against a total the items alone prove, such a sum
        // does count: one of ten item lines misread (`31,89` for 31,09) proves a total
        // misread the same way (`357,82`) as often as chance makes Base + IVA a digit
        // from it (357,02).
        let by_items_alone = proofs
            .iter()
            .filter(|(value, _)| *value == amount)
            .all(|(_, how)| *how == Proof::FromItems);
        // A total only the items prove, below which a line prints it plus the amount of a
        // line between them that no label claims (`otaal  28,49`, `4,27`, `Idoen  32,76 €`:
        // the paper's left edge cut off `Subtotaal`, `BTW` and `Te voldoen`), was the
        // subtotal: the later line is the total, for a person to confirm.
        let later_total = || {
            let after: Vec<(usize, Decimal)> = lines
                .iter()
                .enumerate()
                .skip(i + 1)
                .filter_map(|(j, l)| Some((j, line_amount(l)?)))
                .collect();
            after.iter().find_map(|(j, sum)| {
                after
                    .iter()
                    .take_while(|(k, _)| k < j)
                    .any(|(k, part)| {
                        lines[*k].label.is_none() && *part > Decimal::ZERO && amount + part == *sum
                    })
                    .then_some(*sum)
            })
        };
        if let Some(total) = by_items_alone.then(later_total).flatten() {
            return Some((total, 0.6, Some(i)));
        }
        // A rival fewer ways prove than this total is the misread one: a subtotal the
        // items add up to, and the total it leads to, outweigh one cash or card line
        // (`Total HT 188,66`, `Montant TTC 188,66`, against `Especes 190,00` less a
        // change misread `4,94`).
        // A rival the lines add up from to this total (the subtotal, and the tax
        // summary's gross, short of the tip this total has on top) is a part of it, not
        // its misreading.
        // A card line repeats the total's digits, and a digit the photo blurred reads the
        // same wrong way in both (`Betrag 296.84CHF`, `Girocard 296.84`, for 296.04).
        // Item lines that each multiply out (`3 × 29.27  87.81`) are a check of their own:
        // adding up to the total but for one digit, they rival a total only a card proves.
        let card_only = proofs
            .iter()
            .filter(|(value, _)| *value == amount)
            .all(|(_, how)| *how == Proof::CardPayment);
        let items_multiply_out =
            !items.is_empty() && items.iter().all(|(j, _)| priced_quantity(&lines[*j]));
        let rivalled = proofs.iter().any(|(value, how)| {
            *value != amount
                && !ledger.leads_to(*value, amount)
                && support(*value) >= support(amount)
                && match how {
                    Proof::CardPayment | Proof::CashLessChange | Proof::TaxSummary => {
                        misread_of(amount, *value)
                    }
                    Proof::FromSubtotal => {
                        cut_short(amount, *value) || by_items_alone && misread_of(amount, *value)
                    }
                    Proof::FromItems => {
                        card_only && items_multiply_out && one_digit_apart(amount, *value)
                    }
                }
        });
        // So is a tax summary's net and tax adding up to the total but for one digit where
        // its gross, misread too, is not the total either (`21%  235.52  49.46  284.08`
        // against `Rechnungsbetrag 264,98`, `Girocard 264.98`, for 284.98). A row whose
        // gross is the total has its net or tax misread instead.
        let summary_rival = card_only
            && unbalanced
                .iter()
                .any(|(sum, gross)| *gross != amount && one_digit_apart(amount, *sum));
        let rivalled = rivalled || summary_rival;
        return Some((amount, if rivalled { 0.6 } else { 0.97 }, Some(i)));
    }
    let best = candidates
        .iter()
        .filter(|(_, _, amount)| amount.is_some())
        .min_by_key(|(rank, i, _)| (*rank, std::cmp::Reverse(*i)))
        .copied();
    if let Some(proven) = ledger.proven() {
        let line = candidates.last().map(|(_, i, _)| *i);
        // A card that paid more than two ways prove, and is no misreading of it, paid a
        // charge on top that the receipt's lines left unread (`Senice charwe 1n%`, the
        // total line garbled): what was paid is likelier, for a person to confirm.
        let overpaid = ledger
            .card
            .iter()
            .find(|card| **card > proven && !misread_of(**card, proven));
        if let Some(card) = overpaid {
            return Some((*card, 0.6, line));
        }
        // Two ways agree; the total line lost its amount or its leading digits, read its
        // currency sign as digits, or OCR misread it. A digit or two apart, the lines that
        // agree are as often the misread ones (`Nettobetrag 4110,16` and `Bar gegeben
        // 4120,00` − `Rückgeld 9,84` against `Zu zahlen 1110,16`: the same `1` read as `4`
        // on both): a person decides, and finds their value filled in. Three ways agreeing
        // (`Girocard 537,16`, `Netto 467,10` + `Trinkgeld 70,06`, the tax summary's gross
        // and the tip) are not all misread alike: their value is sure.
        let misread_repaired = if support(proven) >= 3 {
            0.9
        } else {
            MISREAD_REPAIRED
        };
        let confidence = match best {
            Some((_, i, Some(read))) => {
                // The same digits, the point lost (`444919` for 4449.19), are as sure, and
                // so is their tail: where two ways agree, three digits kept (`da pagM@7,92`
                // for 1.087,92) are no chance likeness.
                let point_lost = read == proven * Decimal::ONE_HUNDRED;
                if sign_as_digits(&lines[i], read, proven) || ends(read, proven) || point_lost {
                    Some(0.9)
                } else {
                    misread_of(read, proven).then_some(misread_repaired)
                }
            }
            _ => Some(0.9),
        };
        if let Some(confidence) = confidence {
            return Some((proven, confidence, line));
        }
    }
    if let Some((rank, i, Some(amount))) = best {
        // A total printed as a whole number that lost its point to OCR (`Totaal te betalen
        // 35309 EUR`), with the point back, is what one way proves (cash less a change
        // that lost its own, `691`).
        let with_point = point_lost(lines, amount);
        if let Some(with_point) = with_point.filter(|value| support(*value) > 0) {
            return Some((with_point, 0.9, Some(i)));
        }
        // One way to the total that the total line's digits end with: its currency sign
        // was read as digits, or an item line it needs was lost. A person decides, and
        // finds what the other lines prove filled in.
        let signed = proofs
            .iter()
            .find(|(value, _)| sign_as_digits(&lines[i], amount, *value));
        if let Some((value, _)) = signed {
            return Some((*value, SIGN_AS_DIGITS, Some(i)));
        }
        // The one way's value with digits added, or with digits before the total line's
        // (`Importo 1.74`, `Pagamento elettronico 71.74`; `Importo ) pagatd14,70` against
        // the items less the discount plus the service, 414,70), or what was paid with
        // digits after them, its point lost as well (`Order total  2428` at a cropped
        // edge, cash less change 242.88), or with one or two fewer before them (`671.41`
        // above `EC-Cash 71.41`): what the other lines prove is likelier.
        let paid = |how: &Proof| matches!(how, Proof::CardPayment | Proof::CashLessChange);
        let likelier = proofs.iter().find(|(value, how)| {
            padded(amount, *value)
                || ends(amount, *value)
                || (paid(how)
                    && (cut_at_edge(amount, *value)
                        || lines.iter().any(|l| digits_glued(l, amount, *value))))
        });
        if let Some((value, _)) = likelier {
            return Some((*value, 0.6, Some(i)));
        }
        // Unproven, on a receipt whose prices carry cents (`Total factura  € 52789` below
        // `Cuaderno  22,16 €`), it is still the likelier reading for a person to confirm.
        // So it is on a slip that prints no prices, beside the mark of a currency that has
        // cents (`A REGLER  17422 €` for 174,22): a card pays the cents a till rang up.
        let dearest_item = ledger.items.iter().filter(|item| item.scale() > 0).max();
        let cents_marked = ledger.items.is_empty() && marks_cents(&lines[i]);
        let likelier = with_point.filter(|value| {
            (prices_carry_cents(lines) || cents_marked)
                && dearest_item.is_none_or(|item| value >= item)
        });
        if let Some(with_point) = likelier {
            return Some((with_point, 0.6, Some(i)));
        }
        // A total smaller than one of its items, or a point lost in a currency with
        // cents, is a misreading unless something confirms it.
        let below_an_item = ledger.items.iter().any(|item| *item > amount);
        // Item lines are what OCR drops, doubles and splits most: their sum alone
        // disagreeing is weak doubt, where a subtotal, cash or card line is strong. A
        // label read without an amount of its own line is strong doubt too: it may be
        // the line that would disagree. A card line is the exception: slips and tills name
        // the card and its masked number on a line of its own (`MASTERCARD **** 5202`).
        // So is the head of a tax summary's columns (`Taux  HT  TVA  TTC`), and any line
        // above the first amount: the shop's name and address (`Bar La Giralda`).
        let first_amount = lines.iter().position(|l| !l.amounts.is_empty());
        let labels_whole = lines.iter().enumerate().all(|(j, l)| {
            first_amount.is_some_and(|first| j < first)
                || matches!(l.label, None | Some(Label::Card))
                || !l.amounts.is_empty()
                || lines.get(j + 1).and_then(tax_summary).is_some()
        });
        // A total under one unit of its currency is most often a price's cents whose whole
        // part OCR lost (`Totale documentõ0,09` for documento 430,09).
        let doubted = below_an_item
            || amount < Decimal::ONE
            || !labels_whole
            || proofs.iter().any(|(_, how)| *how != Proof::FromItems);
        // The items added up disagreeing is weak doubt, but doubt: on the dev part's
        // photos such totals were right six times in seven, too few to make an expense
        // of unasked. A weaker wording (`Gesamt`, `Betrag`) is as sure where it prints
        // the receipt's one amount, as a card slip does.
        let one_amount = candidates.len() == 1;
        // Unchecked, a total run into its label's word (`Rechnungsbetrağ38.66` for
        // 538,66) may have lost a digit to the letter OCR merged it with.
        let run_into_label = lines[i].amounts.iter().any(|a| {
            a.value == amount
                && lines[i].cleaned[..a.start]
                    .chars()
                    .rev()
                    .take_while(|c| c.is_alphabetic())
                    .count()
                    >= 4
        });
        let confidence = match (rank, doubted, proofs.is_empty()) {
            (_, true, _) => 0.6,
            (_, false, true) if run_into_label => 0.6,
            (0 | 1, false, true) => UNCHECKED,
            (_, false, true) if one_amount => UNCHECKED,
            (0 | 1, false, false) => ITEMS_DISAGREE,
            _ => 0.7,
        };
        return Some((amount, confidence, Some(i)));
    }
    // No total line at all. An amount on an unlabelled line after the subtotal that the
    // subtotal and taxes add up to is the total whose label OCR lost (`Imponibile
    // 136,38`, `di cui IVA 28,64`, then `165,02`): printed and proven, where one way alone
    // proves only itself. Else what one way proves. Either is for a person to confirm.
    let printed = lines
        .iter()
        .skip_while(|l| l.label != Some(Label::Subtotal))
        .skip(1)
        .filter(|l| l.label.is_none())
        .filter_map(line_amount)
        .find(|a| {
            Some(*a) != ledger.subtotal
                && proofs
                    .iter()
                    .any(|(v, how)| v == a && *how == Proof::FromSubtotal)
        });
    if let Some(total) = printed {
        return Some((total, 0.6, None));
    }
    let single = proofs
        .iter()
        .find(|(_, how)| *how != Proof::FromSubtotal)
        .map(|(v, _)| *v);
    single.map(|v| (v, 0.6, None))
}

/// The gross of a tax summary's row that does not add up as read: with a point OCR lost
/// put back (`70.39  1760  87,99`, `120.03  22.80  14283`) or its cut cents made good
/// where that makes it add up; its last amount where its net and tax ran together
/// (`500,43110,09  610,52`); and none where all three kept their cents and still differ
/// (`366,00  73,20  439.28` for 439,20): one of them is misread, perhaps the gross as the
/// total line is.
fn row_gross(line: &Line) -> Option<Decimal> {
    let readings = |a: &Amount| {
        let lost = (a.decimals == 0).then(|| a.value / Decimal::ONE_HUNDRED);
        [Some(a.value), lost].into_iter().flatten()
    };
    match line.amounts.as_slice() {
        [.., net, tax, gross] => {
            let adds_up = readings(tax)
                .flat_map(|t| readings(gross).map(move |g| (t, g)))
                .find(|(t, g)| net.value + t == *g)
                .map(|(_, g)| g);
            // The gross's cents cut at the paper's edge (`60.11  13.83  73`): net and tax
            // add up to its whole part and the cents it lost.
            let cut = || {
                Some(net.value + tax.value)
                    .filter(|sum| gross.decimals == 0 && sum.trunc() == gross.value)
            };
            let with_cents = [net, tax, gross].iter().all(|a| a.decimals > 0);
            adds_up
                .or_else(cut)
                .or_else(|| (!with_cents).then_some(gross.value))
        }
        _ => line_amount(line),
    }
}

/// Whether the last of a head's cells names the gross column: a total's word, or the
/// gross's own (`Brutto`, `TTC`).
fn last_heads_gross(line: &str) -> bool {
    line.rsplit("  ")
        .map(str::trim)
        .find(|cell| !cell.is_empty())
        .is_some_and(|cell| {
            let folded = fold(cell);
            matches!(label(&folded), Some(Label::Total(_))) || GROSS.contains(&folded.as_str())
        })
}

/// `read` with its point put back, where it may have lost it: a whole number of three
/// digits or more, printed so.
fn point_lost(lines: &[Line], read: Decimal) -> Option<Decimal> {
    let whole = read.scale() == 0 && read >= Decimal::ONE_HUNDRED;
    let printed_whole = lines
        .iter()
        .flat_map(|l| l.amounts.iter())
        .any(|a| a.value == read && a.decimals == 0);
    (whole && printed_whole).then(|| read / Decimal::ONE_HUNDRED)
}

/// Whether a card line's `amount` is the card's last four digits printed with no mask
/// (`VISA  6819`, `CB SANS CONTACT 6748`), no payment: a whole number of four digits with
/// no currency mark beside it, on a receipt whose total lines print cents, and no amount
/// printed with its point (a payment whose point OCR lost, `6748` for 67,48, repeats one).
fn card_digits(lines: &[Line], line: &Line, amount: Decimal) -> bool {
    let four_digits =
        amount.scale() == 0 && (Decimal::from(1000)..Decimal::from(10_000)).contains(&amount);
    let total_with_cents = lines.iter().any(|l| {
        matches!(l.label, Some(Label::Total(_))) && l.amounts.last().is_some_and(|a| a.decimals > 0)
    });
    let repeats_one = lines
        .iter()
        .flat_map(|l| &l.amounts)
        .any(|a| a.decimals > 0 && a.value * Decimal::ONE_HUNDRED == amount);
    four_digits && line.marks.is_empty() && total_with_cents && !repeats_one
}

/// Whether the line names its currency, and only currencies with cents.
fn marks_cents(line: &Line) -> bool {
    let cents = |code: &str| Currency::parse(code).is_ok_and(|c| c.minor_units() > 0);
    !line.marks.is_empty()
        && line.marks.iter().all(|mark| match mark {
            Mark::One(code) => cents(code),
            Mark::Shared(codes) => codes.iter().all(|code| cents(code)),
        })
}

/// Whether the receipt prints its prices with cents: two in three amounts or more carry
/// two decimals (yen, won and forints carry none).
fn prices_carry_cents(lines: &[Line]) -> bool {
    // Each line's own amount, the last: a table's quantities before it are no prices.
    let priced = || lines.iter().filter_map(|l| l.amounts.last());
    priced().filter(|a| a.decimals == 2).count() * 3 >= priced().count() * 2
}

/// Whether the total line's `read` is `value` with its currency sign read as digits: the
/// line shows no other currency mark (a `$2549,16` kept its sign, so its `2` is a digit),
/// and the extra digits are glued to the number's first group (`712,290.50`, `163,800`),
/// not a group of their own (`8.643` for 643 is a thousands digit that the subtotal and
/// card lines lost, as photos cut off their left edge) unless a letter is glued before
/// them: then they and it are the sign (`f1.262.74` for `Fr.262.74`).
fn sign_as_digits(line: &Line, read: Decimal, value: Decimal) -> bool {
    sign_read_as_digits(read, value).is_some() && digits_glued(line, read, value)
}

/// Whether the line, with no currency mark, reads `read` as `value` with one or two digits
/// before it glued to the rest of its first group, or after a letter: no thousands group
/// of their own.
fn digits_glued(line: &Line, read: Decimal, value: Decimal) -> bool {
    let Some(extra) = digits_before(read, value).filter(|_| line.marks.is_empty()) else {
        return false;
    };
    let cleaned = &line.cleaned;
    line.amounts.iter().filter(|a| a.value == read).any(|a| {
        let number = &cleaned[a.start..a.end];
        let lead = number.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
        let first_group = number[lead..]
            .chars()
            .take_while(char::is_ascii_digit)
            .count();
        let glued = cleaned[..a.start + lead]
            .chars()
            .next_back()
            .is_some_and(char::is_alphabetic);
        first_group > extra || glued
    })
}

/// The price of each item line: the lines with an amount between the header (which
/// ends with the date) and the first labelled line, other than phone, till and invoice
/// numbers. A line "3 x 4.21" gives a unit price, not a line's price: the item's price
/// is on its own line.
fn item_prices(lines: &[Line]) -> Vec<(usize, Decimal)> {
    let first_label = lines
        .iter()
        .position(|l| l.label.is_some() && !l.amounts.is_empty())
        .unwrap_or(lines.len());
    let after_header = lines[..first_label]
        .iter()
        .rposition(|l| find_date(l.original, Order::Unknown).is_some())
        .map_or(0, |i| i + 1);
    let carry_cents = prices_carry_cents(lines);
    let mut prices: Vec<(usize, Decimal)> = lines[after_header..first_label]
        .iter()
        .enumerate()
        // A quantity line is the item's only where it prints the item's amount after the
        // unit price (`3 x 30,89  92,67`); alone (`2 x 4,21` under `Latte  8,42`) its
        // price is part of the line above.
        .filter(|(_, l)| !quantity_line(&l.folded) || priced_quantity(l))
        .filter(|(_, l)| {
            !NOT_MERCHANT.iter().any(|w| says(&l.folded, w)) && tax_summary(l).is_none()
        })
        .filter(|(_, l)| !postcode_and_town(l))
        // A rule of marks with a digit misread among them (`==5`) is no item where prices
        // carry cents.
        .filter(|(_, l)| {
            !(carry_cents
                && !l.original.contains(char::is_alphabetic)
                && l.amounts.iter().all(|a| a.decimals == 0))
        })
        .filter_map(|(i, l)| line_amount(l).map(|a| (after_header + i, a)))
        .collect();
    // The last "item" adding up the ones before it is their subtotal, its label lost.
    if let [before @ .., (_, last)] = prices.as_slice() {
        if before.len() >= 2 && before.iter().map(|(_, a)| a).sum::<Decimal>() == *last {
            prices.pop();
        }
    }
    prices
}

/// Whether the line's one number opens it, whole, and words follow (`80843 Bern`, `59506
/// Manchester`): an address's postcode and town, where a misread date left the header's
/// end unknown. An item's price follows its name.
fn postcode_and_town(line: &Line) -> bool {
    let cleaned = &line.cleaned;
    match line.amounts.as_slice() {
        [only] => {
            only.decimals == 0
                && cleaned[..only.start].trim().is_empty()
                && cleaned[only.end..]
                    .trim_start()
                    .starts_with(char::is_alphabetic)
        }
        _ => false,
    }
}

/// The gross of a tax summary's row: net, tax and gross side by side, the first two
/// adding up to the last, the tax the smaller part (`19%  612,18  116,32  728,50`; the
/// rate is no amount).
fn tax_summary(line: &Line) -> Option<Decimal> {
    let [.., net, tax, gross] = line.amounts.as_slice() else {
        return None;
    };
    let parts = [net, tax, gross];
    (parts
        .iter()
        .all(|a| a.decimals > 0 && a.value > Decimal::ZERO)
        && net.value + tax.value == gross.value
        && tax.value < net.value)
        .then_some(gross.value)
}

/// The text without the lines that print when an invoice falls due (`Scadenza
/// 10-11-2024`): the receipt's date is the day it was made, and where OCR lost that one,
/// the due date is no stand-in for it.
fn without_due_dates(text: &str) -> String {
    text.lines()
        .filter(|line| !names_due_date(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the line prints when an invoice falls due.
fn names_due_date(line: &str) -> bool {
    let folded = fold(line);
    DUE_DATE.iter().any(|phrase| says(&folded, phrase))
}

/// Whether the invoice falls due before the day `date` says it was made: one of the two
/// dates misread (`Invoice date  6/5/24` over `Due date  5/19/24`, for 5/5/24).
fn due_before(text: &str, date: NaiveDate, order: Order) -> bool {
    text.lines()
        .filter(|line| names_due_date(line))
        .filter_map(|line| find_date(line, order))
        .any(|(due, _)| due < date)
}

/// Whether a line above the one `date` is read from holds the receipt's own date misread:
/// it names the date and holds digits (`Rechungsdatum  2024-1104`), or, whatever its
/// label, the shape of a day, a month's name and a year (`Rechungsdotum  28-FE8-2023`).
/// Above the first date read, neither reads as `date`. The date read below is then likely
/// another's: a due date whose label OCR garbled past knowing (`Fa9g am  2024-11-18`,
/// `Falig am  29-APR-2023`).
fn own_date_unread(text: &str, date: NaiveDate, order: Order) -> bool {
    let mut unread = false;
    for line in text.lines() {
        if find_date(line, order).is_some_and(|(d, _)| d == date) {
            return unread;
        }
        let folded = fold(line);
        let names_date = folded.contains("datum") || DATE_WORDS.iter().any(|w| says(&folded, w));
        unread |= names_date && line.chars().filter(char::is_ascii_digit).count() >= 4
            || month_named_shape(line);
    }
    false
}

/// Whether the line ends in a unit price and the item's amount, a whole number of times
/// the unit price (`3 x 30,89  92,67`, `1x 7,51  7,51`).
fn priced_quantity(line: &Line) -> bool {
    let [.., unit, amount] = line.amounts.as_slice() else {
        return false;
    };
    let times = amount.value.checked_div(unit.value);
    unit.value > Decimal::ZERO
        && times
            .is_some_and(|t| t.fract().is_zero() && (Decimal::ONE..=Decimal::from(99)).contains(&t))
}

/// "3 x 4.21", "2x 8,81": a quantity times a unit price.
fn quantity_line(folded: &str) -> bool {
    let mut seen_digit = false;
    for c in folded.chars() {
        match c {
            '0'..='9' => seen_digit = true,
            'x' | '×' if seen_digit => return true,
            ' ' | '.' => {}
            _ => seen_digit = false,
        }
    }
    false
}

/// Reads the fields of a receipt from its text. `default_currency` is the organization's,
/// for receipts that print no currency; `uploaded` the day the receipt was uploaded.
pub fn extract(text: &str, default_currency: Currency, uploaded: NaiveDate) -> Extraction {
    extract_read(text, text, default_currency, uploaded)
}

/// [`extract`] of what an OCR engine read: `sure` is `text` without the words the engine
/// doubted ([`crate::ocr::PageText`]). The shop's name is taken from it: above and beside
/// the name, a photo's background reads as words that would take its place. The other
/// fields are read from every word: a currency sign or a blurred digit that the engine
/// doubts is still more often right than not there.
pub fn extract_read(
    text: &str,
    sure: &str,
    default_currency: Currency,
    uploaded: NaiveDate,
) -> Extraction {
    // A photo's background above the paper reads as lines of doubted words that push the
    // address down: its city is looked for among the sure words too.
    let country =
        country_currency(text).or_else(|| (sure != text).then(|| country_currency(sure)).flatten());
    // On a receipt in yen, a number no till prints (`44,3773`) is one whose `円` the engine
    // read as a digit: read without it.
    let in_yen = default_currency.code() == "JPY"
        || country == Some("JPY")
        || text.contains(['¥', '円'])
        || text.contains("JPY");
    let yen_read = in_yen.then(|| yen_mark_dropped(text)).flatten();
    let read = yen_read.as_deref().unwrap_or(text);
    let mut lines = lines_of(read);
    let mut confidence = BTreeMap::new();

    // Most texts are sure of every word (a PDF's own text, a clean scan): read once.
    let sure_lines = (sure != text).then(|| lines_of(sure));
    let merchant =
        find_merchant(sure_lines.as_deref().unwrap_or(&lines)).map(|name| whole_name(name, text));
    if merchant.is_some() {
        confidence.insert("merchant".to_string(), 0.7);
    }

    let folded_text = fold(text);
    let mut found_total = find_total(&lines);
    // Where the text as read proves no total, or its total line holds such a gap
    // (`Montant dû JPY 15  078`, its `078` no price), thousands groups a wide gap apart
    // may be what kept it from adding up: read so, a total the arithmetic confirms is
    // taken, with every line read the same way.
    let total_apart = found_total
        .and_then(|(_, _, line)| line)
        .is_some_and(|i| has_groups_apart(lines[i].original));
    let own_confidence = found_total.map_or(0.0, |(_, confidence, _)| confidence);
    let joined = (own_confidence < REVIEW_BELOW || total_apart)
        .then(|| groups_apart(read))
        .flatten();
    if let Some(joined) = joined.as_deref() {
        let joined_lines = lines_of(joined);
        match find_total(&joined_lines) {
            Some(sure) if sure.1 >= 0.9 => {
                lines = joined_lines;
                found_total = Some(sure);
            }
            // Neither reading proven, a total line printed so (`TOTALT  5  087,10  kr`) is
            // likelier a number in groups than a count before its price: joined, for a
            // person.
            Some((amount, confidence, line)) if total_apart && own_confidence < 0.9 => {
                lines = joined_lines;
                found_total = Some((amount, confidence.min(0.6), line));
            }
            _ => {}
        }
    }
    // A font whose `円` the engine reads as a digit after every price leaves no price a
    // thousands group to tell it by (`Iced tea  22548`, `Balance  298208`): on a receipt
    // in yen, the reading without those digits is taken where it proves another total and
    // the receipt prints that total with its mark (`Net  ¥29820`), whatever the text as
    // read proved (`MASTERCARD  298208` repeating the balance, both read alike). Unmarked,
    // a cut total may be proven by cut lines alone (`Total  40219` and the tax summary's
    // gross `40219`, both cut to 4021) and is not taken.
    let cut = in_yen.then(|| yen_marks_as_digits(read)).flatten();
    if let Some(cut) = cut.as_deref() {
        let cut_lines = lines_of(cut);
        let marked = |amount: Decimal| {
            cut_lines
                .iter()
                .any(|l| !l.marks.is_empty() && l.amounts.iter().any(|a| a.value == amount))
        };
        let proven = find_total(&cut_lines).filter(|found| {
            found.1 >= 0.9 && found_total.is_none_or(|own| own.0 != found.0) && marked(found.0)
        });
        if proven.is_some() {
            lines = cut_lines;
            found_total = proven;
        }
    }
    let total_line = found_total.and_then(|(_, _, line)| line).map(|i| &lines[i]);
    let (currency, currency_confidence) =
        find_currency(total_line, &lines, country, default_currency);
    confidence.insert("currency".to_string(), currency_confidence);

    let order = match currency.code() {
        "USD" if !not_english(&folded_text) => Order::MonthFirst,
        "USD" => Order::Unknown,
        // English Canada writes its dates either way; Québec's French, day first.
        "CAD" if currency_confidence >= REVIEW_BELOW && in_quebec(&folded_text) => Order::DayFirst,
        _ if currency_confidence >= REVIEW_BELOW && currency.code() != "CAD" => Order::DayFirst,
        _ => Order::Unknown,
    };
    let dated = without_due_dates(text);
    let date = find_date(&dated, order).map(|(d, c)| {
        // No receipt is dated after its upload (a day's grace: the till's clock may be a
        // time zone ahead): a digit misread, most often in the year (2026 as 2028).
        let c = if d > uploaded + Days::new(1) {
            c.min(AFTER_UPLOAD)
        } else if uploaded
            .checked_sub_months(Months::new(12 * YEARS_BEFORE_UPLOAD))
            .is_some_and(|oldest| d < oldest)
        {
            c.min(LONG_BEFORE_UPLOAD)
        } else if own_date_unread(&dated, d, order) {
            c.min(OWN_DATE_UNREAD)
        } else if due_before(text, d, order) {
            c.min(DUE_BEFORE)
        } else {
            c
        };
        confidence.insert("date".to_string(), c);
        d
    });

    let total = found_total.and_then(|(amount, sure, line)| {
        // A total as its line printed it, without the cents its currency has, lost its
        // point to OCR, and perhaps a digit with it (`TOTAL  21441` for £214.47); with
        // fewer, it lost digits (`EUR 30,2` for 300,22: repeated digits of a condensed
        // print run together). So did one printed nowhere with its cents, whatever line
        // it came from, on a receipt whose other prices have theirs (`Rechnungsbetrag`
        // over `11164`, `EC-Cash  11164`, for 111,64, below `Tesafilm  5.82`): every line
        // that repeats it lost the point alike.
        let minor = currency.minor_units();
        let lacks_cents = |a: &Amount| a.value == amount && a.decimals < minor;
        let with_cents = |a: &Amount| a.decimals >= minor;
        let printed_whole = lines.iter().any(|l| l.amounts.iter().any(lacks_cents));
        let printed_with_cents = lines
            .iter()
            .any(|l| l.amounts.iter().any(|a| a.value == amount && with_cents(a)));
        let cents_elsewhere = lines.iter().any(|l| l.amounts.iter().any(with_cents));
        let point_lost = minor > 0
            && (line.is_some_and(|i| lines[i].amounts.iter().any(lacks_cents))
                || printed_whole && !printed_with_cents && cents_elsewhere);
        let sure = if point_lost { sure.min(0.6) } else { sure };
        // A currency without cents whose unchecked total prints no mark most often printed
        // one after it that the engine cannot read: `円`, which PP-OCR's characters lack,
        // read as a digit (`Please pay  101908` for 10190円). Nothing tells which it was.
        // So, on a slip in dollars, may a first digit shaped like `$` (`Total Sale  5446 .97`
        // for $446.97).
        let unmarked = sure == UNCHECKED && line.is_some_and(|i| lines[i].marks.is_empty());
        let mark_lost = unmarked && minor == 0;
        let sign_lost =
            unmarked && signs_dollar(currency.code()) && amount.to_string().starts_with(['5', '8']);
        let sure = if mark_lost || sign_lost {
            MARK_LOST
        } else {
            sure
        };
        // Four digits or more, whole, in a currency with cents, are the cents' digits
        // with the point lost (`TOTALDUE  €38491`, `Order total  53484 USD` that the
        // subtotal and tax, their points lost alike, add up to): what a person finds
        // filled in is the amount with its point back.
        let whole = amount.scale() == 0 && amount >= Decimal::from(1000);
        let amount = if point_lost && whole && minor > 0 {
            amount / Decimal::from(10_u32.pow(minor))
        } else {
            amount
        };
        let money = Money::new(amount, currency).ok()?;
        confidence.insert("total".to_string(), sure);
        Some(money)
    });

    let tax = lines.iter().find_map(|line| {
        if line.label != Some(Label::Tax) {
            return None;
        }
        // "VAT 19% 1.56": the amount (with decimals), not the rate.
        let amount = line.amounts.iter().rev().find(|a| a.decimals > 0)?;
        confidence.insert("tax".to_string(), 0.7);
        Some(amount.value.abs().to_string())
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

/// Whether the line holds a run of eight digits or more, without separators: a VAT or
/// company number, a terminal's or a card's.
fn registration_number(cleaned: &str) -> bool {
    cleaned
        .split(|c: char| !c.is_ascii_digit())
        .any(|digits| digits.len() >= 8)
}

/// The line with its dot leaders blanked: an engine reads a row of dots between a label
/// and its amount as zeros and `o`s (`Total HT  000000000000  2 385,90`), a number that
/// would be taken for an amount or a registration number.
fn without_leaders(line: &str) -> String {
    line.split(' ')
        .map(|word| {
            let leader = word.chars().count() >= 5
                && word.chars().all(|c| "0oOcC.·".contains(c))
                && word
                    .chars()
                    .filter(|c| matches!(c, '0' | 'o' | 'O'))
                    .count()
                    >= 3;
            if leader {
                " ".repeat(word.len())
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the line reads as a row of three cells or more, apart by wide gaps, whose
/// first names no total: the total's word, if any, heads a later column.
fn column_heads(line: &str) -> bool {
    let mut cells = line.split("  ").map(str::trim).filter(|c| !c.is_empty());
    let first = cells.next();
    cells.count() >= 2
        && first.is_some_and(|cell| !matches!(label(&fold(cell)), Some(Label::Total(_))))
}

/// The text's lines, with their labels and amounts.
fn lines_of(text: &str) -> Vec<Line<'_>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|original| {
            let folded = fold(original);
            let cleaned = clean(&without_leaders(original));
            let mut amounts = amounts(&cleaned);
            // A tax word before a long run of digits is a VAT number (`P.IVA 3371086716`,
            // `BTW 7129683906`, `USt-IdNr.4374829986`), no tax: tills print amounts that
            // long with separators.
            let label = label(&folded)
                .filter(|label| *label != Label::Tax || !registration_number(&cleaned));
            if label == Some(Label::Card) {
                amounts.retain(|amount| !after_misread_mask(&cleaned, amount));
            }
            // A card line's masked number ("XX1234") is no amount whose sign was misread;
            // an unlabelled line is one when it holds nothing else and its letters read as
            // a sign (`HKS482.54` below its `Amount Due`), not as a code ("A5").
            if amounts.is_empty() && label != Some(Label::Card) {
                let misread = after_misread_sign(&cleaned).filter(|(letters, _)| {
                    label.is_some()
                        || (misread_sign(letters).is_some()
                            && cleaned.split_whitespace().count() == 1)
                });
                amounts.extend(misread.map(|(_, amount)| amount));
            }
            // The head of a table's columns (`Aliq.  Imponibile  Imposta  Totale`, `Satz
            // Netto  MwSt  Brutto`, its other words misread) names no total, subtotal or
            // tax: the amounts below it are a row's.
            let heads_columns =
                matches!(label, Some(Label::Total(_) | Label::Subtotal | Label::Tax))
                    && amounts.is_empty()
                    && column_heads(original);
            let heads_total_column = heads_columns
                && (matches!(label, Some(Label::Total(_))) || last_heads_gross(original));
            let label = label.filter(|_| !heads_columns);
            Line {
                heads_total_column,
                original,
                label,
                folded,
                cleaned,
                amounts,
                marks: marks(original),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
