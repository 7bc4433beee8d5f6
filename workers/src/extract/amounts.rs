//! Amounts as receipts print them: 1,234.56 and 1.234,56 and 1'234.56 and 1 234,56,
//! zero-decimal currencies with grouping (¥8,040), negative discounts (-1.74, 1.74-), and
//! the small damage OCR does to them (a space before the separator, O for 0, l for 1).

use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;
use rust_decimal::Decimal;

use super::currency::{is_code, marks, misread_sign};

/// An amount found on a line.
#[derive(Debug, Clone, PartialEq)]
pub struct Amount {
    pub value: Decimal,
    /// Digits after the decimal separator (0 when there is none).
    pub decimals: u32,
    /// Byte offsets in the cleaned line ([`clean`]).
    pub start: usize,
    pub end: usize,
}

/// A space OCR put next to a separator ("8 ,040", "12 .50", "12. 50") goes; letters OCR
/// reads for digits inside a number (O, o, l, I, |, S, B) become the digits, and a low
/// quote between digits the comma it is.
pub fn clean(line: &str) -> String {
    let mut chars: Vec<char> = line.chars().collect();
    let numeric = |c: char| c.is_ascii_digit() || matches!(c, '.' | ',');
    for i in 0..chars.len() {
        let digit = match chars[i] {
            'O' | 'o' | 'D' | '@' | '®' | '©' => '0',
            'l' | 'I' | '|' => '1',
            'S' => '5',
            'B' => '8',
            _ => continue,
        };
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        let inside = before.is_some_and(numeric) && after.is_some_and(numeric);
        // "10.5O", "10. 5O": the last decimal digit, after digits and a separator.
        let separator_before = |j: usize| matches!(chars.get(j), Some('.' | ','));
        let last_decimal = before.is_some_and(|c| c.is_ascii_digit())
            && i >= 2
            && (separator_before(i - 2)
                || (chars[i - 2] == ' ' && i >= 3 && separator_before(i - 3)))
            && after.is_none_or(|c| !c.is_alphanumeric());
        let has_digit_near = chars[i.saturating_sub(2)..(i + 3).min(chars.len())]
            .iter()
            .any(char::is_ascii_digit);
        if (inside || last_decimal) && has_digit_near {
            chars[i] = digit;
        }
    }
    // A comma OCR read as a low quote ("3 ‚17", "1.599 ‚60"), between digits.
    for i in 0..chars.len() {
        let digit_at = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(char::is_ascii_digit)
        };
        let before = match i.checked_sub(1).map(|j| chars[j]) {
            Some(' ') => i.checked_sub(2),
            _ => i.checked_sub(1),
        };
        if chars[i] == '‚' && digit_at(before) && digit_at(Some(i + 1)) {
            chars[i] = ',';
        }
    }
    let mut joined = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' && spaced_separator(&chars, i) {
            i += 1;
            continue;
        }
        joined.push(chars[i]);
        i += 1;
    }
    let joined: String = joined.into_iter().collect();
    let joined = DOUBLED_SEPARATOR.replace_all(&joined, "$1$2");
    let joined = colon_for_point(&joined);
    lost_point(&joined).unwrap_or(joined)
}

/// A speck beside a price's separator read as another (`648,.04`): the one before its
/// cents is the separator.
static DOUBLED_SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\d)[.,]([.,]\d{2}(?:\D|$))").expect("doubled-separator pattern")
});

/// A price's point OCR read as a colon, its currency after it (`94:23 CHF`, `12:40 €`):
/// no time of day is followed by a currency.
static COLON_CENTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^|[^\d:])(\d{1,6}):(\d{2})(\s*)([A-Z]{3}\b|[€$£])").expect("colon-cents pattern")
});

fn colon_for_point(line: &str) -> String {
    COLON_CENTS
        .replace_all(line, |c: &regex::Captures| {
            let mark = &c[5];
            if mark.is_ascii() && !is_code(mark) {
                return c[0].to_string();
            }
            format!("{}{}.{}{}{mark}", &c[1], &c[2], &c[3], &c[4])
        })
        .into_owned()
}

/// Whether the space at `i` sits next to a separator that has a digit before it and two
/// or three digits after it that end the number, with at most one more space on its
/// other side: "8 ,040", "12 .50", "12. 50", "646 , 37", "578 .537,00" (but not the list
/// "3, 12.50").
fn spaced_separator(chars: &[char], i: usize) -> bool {
    let at = |j: usize| chars.get(j).copied();
    let separator = |c: Option<char>| c.is_some_and(|c| matches!(c, '.' | ','));
    let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    let separator_at = if separator(at(i + 1)) {
        i + 1
    } else if i > 0 && separator(at(i - 1)) {
        i - 1
    } else {
        return false;
    };
    let before = separator_at.checked_sub(1).and_then(|j| match at(j) {
        Some(' ') => j.checked_sub(1),
        _ => Some(j),
    });
    let mut digits_from = separator_at + 1;
    if at(digits_from) == Some(' ') {
        digits_from += 1;
    }
    let digits = chars[digits_from.min(chars.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let rest = digits_from + digits;
    let continues = separator(at(rest)) && digit(at(rest + 1));
    // "578 .537,00": a thousands group, then the other separator and the cents that end
    // the number.
    let cents = chars[(rest + 1).min(chars.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let cents_follow = digits == 3
        && at(rest) != at(separator_at)
        && (1..=2).contains(&cents)
        && !separator(at(rest + 1 + cents));
    before.is_some_and(|j| digit(at(j)))
        && (2..=3).contains(&digits)
        && (!continues || cents_follow)
}

/// "226 44" at the end of a line is 226.44 whose point OCR lost (faint on thermal paper,
/// or under a dot leader): receipts end lines with prices, and a price's last two
/// digits after a space are its cents. Not when the number before already has its
/// decimals ("12.50 44"), nor after a wide gap (two spaces: another column).
fn lost_point(line: &str) -> Option<String> {
    let trimmed = line.trim_end();
    let (head, cents) = trimmed.rsplit_once(' ')?;
    if cents.len() != 2 || !cents.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let before = head.rsplit(' ').next()?;
    let number = before.trim_start_matches(|c: char| !c.is_ascii_digit());
    let whole = !number.is_empty()
        && number.ends_with(|c: char| c.is_ascii_digit())
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '\'' | '’'));
    let grouped_only = number
        .rfind(['.', ',', '\'', '’'])
        .is_none_or(|i| number.len() - i - 1 == 3);
    (whole && grouped_only).then(|| format!("{head}.{cents}"))
}

/// The text with thousands groups a wide gap apart joined (`Summa  5  908,80`,
/// `JPY 15  078`): a narrow space between groups, as French and Swedish tills print it,
/// reads as two words that the lines rebuilt from word boxes set two spaces apart, as
/// they do columns. `None` where no line has one. A reading to try where the text as read
/// proves no total: a quantity before its price (`Kaffe  1  289,00`) reads the same way.
pub fn groups_apart(text: &str) -> Option<String> {
    let mut joined = text.to_string();
    // A run of groups (`1  234  567`) joins one gap at a time.
    while let Some(gap) = GROUPS_APART.captures(&joined).and_then(|c| c.name("gap")) {
        joined.replace_range(gap.range(), " ");
    }
    (joined != text).then_some(joined)
}

/// The text with a yen mark read as a digit after a thousands group dropped (`44,3773` for
/// 44,377円, `Tendered  16,0000`): PP-OCR's characters lack `円`, and read it as the digit
/// it looks most like. A currency without cents has no fourth digit after its comma.
/// `None` where no number has one.
pub fn yen_mark_dropped(text: &str) -> Option<String> {
    let dropped = MARK_AFTER_GROUP.replace_all(text, "$number");
    (dropped != text).then(|| dropped.into_owned())
}

static MARK_AFTER_GROUP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?P<number>\d{1,3}(?:,\d{3})+)\d\b").expect("mark after group pattern")
});

/// The text with the last digit of every number of four digits or more that ends a line,
/// printed without a yen mark before it, dropped: the `円` a font drew so that the engine
/// reads it as a digit after every price (`Phone charger  30148`, `Balance  298208` under
/// `Net  ¥29820`): a reading to try on a receipt in yen. A `0` stays: prices in tens, cut,
/// would prove themselves in tens as well. `None` where fewer than two numbers end so.
pub fn yen_marks_as_digits(text: &str) -> Option<String> {
    let mut dropped = 0;
    let mut read = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mark = MARK_AT_LINE_END
            .captures(line)
            .and_then(|c| c.name("mark"))
            .filter(|m| m.as_str() != "0" && !yen_marked(&line[..m.start()]));
        match mark {
            Some(digit) => {
                dropped += 1;
                read.push_str(&line[..digit.start()]);
                read.push_str(&line[digit.end()..]);
            }
            None => read.push_str(line),
        }
    }
    (dropped >= 2).then_some(read)
}

/// Whether the amount that ends `before` is printed after a yen mark (`¥`, `JPY`, or a
/// lone `Y`, as OCR reads `¥` at times).
fn yen_marked(before: &str) -> bool {
    let words = before.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ',');
    let words = words.trim_end().to_uppercase();
    words.ends_with('¥')
        || words.ends_with("JPY")
        || words
            .strip_suffix('Y')
            .is_some_and(|rest| !rest.ends_with(char::is_alphabetic))
}

static MARK_AT_LINE_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|\s)(?:\d{1,3}[.,]\d{3}|\d{3,})(?P<mark>\d)[\x20\t]*\r?\n?$")
        .expect("mark at line end pattern")
});

/// Whether the line holds thousands groups a wide gap apart ([`groups_apart`]).
pub fn has_groups_apart(line: &str) -> bool {
    GROUPS_APART.is_match(line)
}

static GROUPS_APART: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?mx)
        (?:^|[\x20\t$€£¥])
        \d{1,3}
        (?P<gap>\x20{2,}|\t+)
        \d{3}(?:[.,]\d{2})?
        (?:$|[^\d.,])",
    )
    .expect("groups apart pattern")
});

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (?P<sign>-\s?)?
        (?P<number>
            \d{1,3}(?:(?:[.,'’]|\x20)\d{3})+(?:[.,]\d{1,2})?   # grouped
          | \d+(?:[.,]\d{1,2})?                               # plain
        )
        (?P<trailing>-)?",
    )
    .expect("number pattern")
});

/// Every amount on the (cleaned) line, left to right. Not amounts: numbers glued to
/// letters (codes, "A5"), percentages, times, parts of dates, card numbers after `*`,
/// and quantities written "2 x".
pub fn amounts(line: &str) -> Vec<Amount> {
    let bytes = line.as_bytes();
    let mut found = Vec::new();
    for c in NUMBER.captures_iter(line) {
        let Some(number) = c.name("number") else {
            continue;
        };
        let (start, end) = (number.start(), number.end());
        let before = line[..start].chars().next_back();
        // The line before the number and its sign.
        let ahead = &line[..c.get(0).map_or(start, |m| m.start())];
        let before_match = ahead.chars().next_back();
        let after = line[end..].chars().next();
        let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() && !is_unit(c));
        // A currency's word run into its amount (`57,85zł`, `265,90kr`): the letters
        // glued after it are a currency's mark.
        let letters_after: String = line[end..]
            .chars()
            .take_while(|c| c.is_alphabetic())
            .collect();
        let sign_after = !letters_after.is_empty() && !marks(&letters_after).is_empty();
        let cents = has_cents(number.as_str());
        // A currency's code run into its amount (`1050.35EUR`, `CHF474.56`): an engine
        // that reads the row as one run may leave out the space. After a price, three
        // capitals are a code whatever letters OCR made of it (`54.81CHE` for CHF), and
        // one capital a German till's tax class (`€95,58A`, `6.04B`).
        let rest = &line[end..];
        let code_after = code_starts(rest)
            || (cents && (capitals_start_n(rest, 1) || capitals_start_n(rest, 3)));
        let code_before = code_ends(ahead);
        // A price with its Swedish `:-` (`265,90:-`, or its dash lost) is no time.
        let kronor_mark = after == Some(':')
            && number.as_str().contains([',', '.'])
            && !line[end + 1..].starts_with(|c: char| c.is_ascii_digit());
        // A unit price glued to its quantity's `x` (`3x3,41  10,23`), or behind a speck
        // read as a point (`3x.16,58`), is a price, not a code or another number's part.
        let times = |ahead: &str| {
            ahead
                .strip_suffix(['x', 'X', '×'])
                .is_some_and(|quantity| quantity.trim_end().ends_with(|c: char| c.is_ascii_digit()))
        };
        let after_times = times(ahead) || ahead.strip_suffix('.').is_some_and(times);
        // The Swiss franc's `Fr.` with the amount run into it (`Fr.1163.11`: an engine that
        // reads the row as one run may leave out the space), and a price after a word and
        // a leader's points (`A REGLER.703,61`, `TOTAL....12,50`, `Fv..568.44` for the
        // franc's `Fr.`): no number's part.
        let after_franc = ahead.ends_with("Fr.");
        let after_word = ahead.ends_with('.')
            && ahead.trim_end_matches('.').ends_with(char::is_alphabetic)
            && cents;
        // A speck after a price read as a point (`228.67. EUR`, `228.67.€`): no date's
        // day and month (`24.12. 2024`), which have two digits before their point and a
        // year after.
        let point_after_price = after == Some('.')
            && cents
            && !rest[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.')
            && (number.as_str().trim().len() > 5 || !rest.contains(|c: char| c.is_ascii_digit()));
        // A price run into the word before it (`a pagar165,73 €`): an engine that reads
        // the row as one run may leave out the space. Codes and sizes glued to letters
        // carry no cents (`A5`, `ES12345678`).
        let before_letters = ahead.trim_end_matches(char::is_alphabetic);
        let letters_before = &ahead[before_letters.len()..];
        let after_label_word = letters_before.chars().count() >= 3 && cents;
        // A currency sign read as letters, glued to a price (`RS61,00` for R$61,00): a
        // word of its own before it.
        let sign_before = cents
            && !letters_before.is_empty()
            && before_letters
                .chars()
                .next_back()
                .is_none_or(char::is_whitespace)
            && misread_sign(letters_before).is_some();
        // A minus read as a point (`Desconto  .6,73`): a point standing apart before a
        // price with cents of its own.
        let minus_as_point = before == Some('.')
            && cents
            && c.name("sign").is_none()
            && line[..start - 1]
                .chars()
                .next_back()
                .is_none_or(char::is_whitespace);
        // A label's colon with the space after it lost (`Totala payer:148.07`), where a
        // time's colon has digits before it.
        let after_colon = ahead
            .strip_suffix(':')
            .is_some_and(|label| label.ends_with(char::is_alphabetic))
            && cents;
        let part_of_other = (before
            .is_some_and(|c| matches!(c, '*' | '#' | ':' | '/' | '.' | ','))
            && !after_times
            && !after_franc
            && !after_word
            && !after_colon
            && !minus_as_point)
            || before_match.is_some_and(|c| c.is_ascii_digit() || c == '-')
            || (after.is_some_and(|c| matches!(c, '%' | ':' | '/' | '.' | ','))
                && !kronor_mark
                && !point_after_price)
            || (glued(before) && !after_times && !code_before && !after_label_word && !sign_before)
            || (glued(after) && !code_after && !sign_after);
        // A date written with dashes: 12-03-2024.
        let dashed_date = after == Some('-') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
        let quantity = line[end..].trim_start().starts_with(['x', 'X', '×'])
            && line[end..]
                .trim_start()
                .chars()
                .nth(1)
                .is_none_or(|c| c.is_whitespace() || c.is_ascii_digit());
        // `09` is no price: it is the cents of one whose whole part and point OCR lost
        // at the edge of the page (`8.09`). Read as 9, such torn cents add up as the
        // prices did (`09` + `81` = `90`), and would confirm a wrong total.
        let digits = number.as_str().trim();
        // A long number may start with a `0` that was a sign (`03156808` for ₩3156808).
        let torn_cents = (2..=3).contains(&digits.len())
            && digits.starts_with('0')
            && digits.chars().all(|c| c.is_ascii_digit());
        // A card number's last digits after a masked group and a space (`**** 5202`,
        // `XXXX XXXX XXXX 4004`), as terminal slips print them, a star read as a quote
        // (`**"* 5443`).
        let group = ahead.split_whitespace().next_back().unwrap_or("");
        let stars = group.chars().all(|c| matches!(c, '*' | '"' | '\''))
            && group.chars().filter(|c| *c == '*').count() >= 2;
        let masked = (["***", "XXX", "xxx"]
            .iter()
            .any(|m| ahead.trim_end().ends_with(m))
            || stars)
            && digits.len() <= 4
            && digits.chars().all(|c| c.is_ascii_digit());
        if part_of_other || dashed_date || quantity || torn_cents || masked {
            continue;
        }
        let Some((value, decimals)) = parse_number(number.as_str()) else {
            continue;
        };
        let negative = c.name("sign").is_some() || c.name("trailing").is_some() || minus_as_point;
        found.push(Amount {
            value: if negative { -value } else { value },
            decimals,
            start,
            end,
        });
    }
    found
}

/// Whether `amount` is a card number's last four digits after its masked group, OCR having
/// read the group's `*` as letters or marks (`karta  kkk 5666`, `EC-Cash  **%x%* 6110`,
/// `EC-Cash  zxAkkk 3176`, `Carte bancaire *" 4010`, `Multibanco ±±±≠ 6381`, `VISA * 9497`,
/// `Pagamento elettronico  xe 2827`): asked of a card line only, where a payment prints
/// its cents or its currency, and elsewhere such a word may be a code or a name.
pub fn after_misread_mask(line: &str, amount: &Amount) -> bool {
    let digits = &line[amount.start..amount.end];
    let group = line[..amount.start].split_whitespace().next_back();
    let masked = group.is_some_and(|group| {
        (group.chars().count() >= 2 || group == "*")
            && group.chars().all(|c| "*#%kKxXhHwWzZaAeE\"'±≠".contains(c))
            && group.chars().any(|c| "*kKxX±≠".contains(c))
            && marks(group).is_empty()
    });
    masked && digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The amount that ends a line whose currency sign OCR read as letters glued to it
/// ("As49,77" for A$49.77, "W13.464" for ₩13,464, "CAS89.31" for CA$89.31), with those
/// letters: one to three, a word of their own, right before the line's last number. Only
/// asked of a labelled line that read no amount otherwise: on others such a token is a
/// code or a size ("Notebook A5").
pub fn after_misread_sign(line: &str) -> Option<(&str, Amount)> {
    let c = NUMBER.captures_iter(line).last()?;
    let number = c.name("number")?;
    let (start, end) = (number.start(), number.end());
    let letters = line[..start].rsplit(char::is_whitespace).next()?;
    let sign_like =
        (1..=3).contains(&letters.chars().count()) && letters.chars().all(char::is_alphabetic);
    if !sign_like || !line[end..].trim().is_empty() || c.name("sign").is_some() {
        return None;
    }
    let (value, decimals) = parse_number(number.as_str())?;
    let amount = Amount {
        value,
        decimals,
        start,
        end,
    };
    Some((letters, amount))
}

/// Whether the number ends in a decimal separator and two digits.
fn has_cents(number: &str) -> bool {
    let digits = number.trim_end();
    digits.len() > 3
        && digits[digits.len() - 3..].starts_with(['.', ','])
        && digits.ends_with(|c: char| c.is_ascii_digit())
}

/// Whether `rest` starts with a currency's code, as a word of its own after the amount.
fn code_starts(rest: &str) -> bool {
    rest.get(..3).is_some_and(is_code) && !rest[3..].starts_with(|c: char| c.is_alphanumeric())
}

/// Whether `rest` starts with `n` capital letters, as a word of its own: the shape of a
/// currency's code (three), whichever letters OCR made of it, or of a tax class (one).
fn capitals_start_n(rest: &str, n: usize) -> bool {
    rest.get(..n)
        .is_some_and(|word| word.bytes().all(|b| b.is_ascii_uppercase()))
        && !rest[n..].starts_with(|c: char| c.is_alphanumeric())
}

/// Whether `ahead` ends with a currency's code, as a word of its own before the amount.
fn code_ends(ahead: &str) -> bool {
    ahead.len() >= 3
        && ahead.get(ahead.len() - 3..).is_some_and(is_code)
        && !ahead[..ahead.len() - 3].ends_with(|c: char| c.is_alphanumeric())
}

/// Letters that may sit right against an amount without making it part of a word:
/// currency letters printed without a space ("12,50€", "8040円", "CHF12.00" is caught
/// by the code check instead).
fn is_unit(c: char) -> bool {
    matches!(c, '€' | '£' | '¥' | '円' | '₩' | '원' | '₹' | '$')
}

/// The value of a number as printed, and its count of decimals: the last separator is
/// the decimal one when one or two digits follow it; every other is grouping.
fn parse_number(text: &str) -> Option<(Decimal, u32)> {
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let decimal = text
        .rfind(['.', ','])
        .filter(|i| (1..=2).contains(&(text.len() - i - 1)));
    let plain: String = text
        .char_indices()
        .filter_map(|(i, c)| match c {
            '.' | ',' if Some(i) == decimal => Some('.'),
            '.' | ',' | '\'' | '’' => None,
            c => Some(c),
        })
        .collect();
    let decimals = decimal.map_or(0, |i| (text.len() - i - 1) as u32);
    Decimal::from_str(&plain).ok().map(|v| (v, decimals))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(line: &str) -> Vec<String> {
        amounts(&clean(line))
            .into_iter()
            .map(|a| a.value.to_string())
            .collect()
    }

    #[test]
    fn every_notation() {
        assert_eq!(values("Summe 1.234,56 EUR"), ["1234.56"]);
        assert_eq!(values("TOTAL $1,234.56"), ["1234.56"]);
        assert_eq!(values("Total CHF 1'234.50"), ["1234.50"]);
        assert_eq!(values("Total TTC 1 234,56 €"), ["1234.56"]);
        assert_eq!(values("Total 12,5"), ["12.5"]);
        assert_eq!(values("Total ¥1,200"), ["1200"]);
        assert_eq!(values("Summe 12,50€"), ["12.50"]);
        assert_eq!(values("Discount -1.74"), ["-1.74"]);
        assert_eq!(values("Rabatt 1,74-"), ["-1.74"]);
        // The franc's point, the amount run into it.
        assert_eq!(values("TOTAL  Fr.1163.11"), ["1163.11"]);
    }

    #[test]
    fn ocr_damage_is_undone() {
        assert_eq!(values("GRAND TOTAL ¥8 ,040"), ["8040"]);
        assert_eq!(values("Total 12 .50"), ["12.50"]);
        assert_eq!(values("Total 1O.5O"), ["10.50"]);
        assert_eq!(values("Total 4l,00"), ["41,00".replace(',', ".")]);
        assert_eq!(values("Gesamt  €646 , 37"), ["646.37"]);
        assert_eq!(values("Net amount  8546. 5@"), ["8546.50"]);
        assert_eq!(values("Nettobetrag  646 ,37"), ["646.37"]);
        assert_eq!(values("TOTAL EUROS  578 .537,00"), ["578537.00"]);
        assert_eq!(values("Total  1 ,234.50"), ["1234.50"]);
        // A point read as a colon before the currency; a time stays one.
        assert_eq!(values("GESAMTSUMME  94:23 CHF"), ["94.23"]);
        assert_eq!(values("Total 12:40 €"), ["12.40"]);
        assert!(values("07.03.25 22:50 UHR").is_empty());
        assert!(values("12:30:45 EUR").is_empty());
        // The point lost at the end of a line.
        assert_eq!(values("Subtotal  ee ey 14357 12"), ["14357.12"]);
        assert_eq!(values("Net amount  6,903 50"), ["6903.50"]);
        assert_eq!(values("Member discount -717 86"), ["-717.86"]);
        assert_eq!(values("Total  12.50 44"), ["12.50", "44"]);
        assert_eq!(values("Total  1 200"), ["1200"]);
        assert_eq!(values("Totaal  73447 0"), ["73447", "0"]);
        assert_eq!(values("Amount  44.00  12"), ["44.00", "12"]);
        // The comma read as a low quote.
        assert_eq!(values("AUD 3 ‚17 Total"), ["3.17"]);
        assert_eq!(values("SEK 1.599 ‚60 Da pagare"), ["1599.60"]);
        // A sign read as a leading zero.
        assert_eq!(values("Net a payer  03156808"), ["3156808"]);
        // A code run into its amount, after or before it; not a code inside a word.
        assert_eq!(values("Montant TTC  1050.35EUR"), ["1050.35"]);
        assert_eq!(values("TOTAL  CHF474.56"), ["474.56"]);
        assert_eq!(values("Total  CZK4 325,98"), ["4325.98"]);
        assert!(values("Ref XEUR12  12EURO").is_empty());
        // A price after a word's point or a leader's points (a franc's `Fr.` misread);
        // not a number after an abbreviation's.
        assert_eq!(values("A REGLER.703,61"), ["703.61"]);
        assert_eq!(values("TOTAL....12,50"), ["12.50"]);
        assert_eq!(values("TOTALE  EUR 648,.04"), ["648.04"]);
        assert_eq!(values("TOT.COMPLESSIVO  Fv..568.44"), ["568.44"]);
        assert!(values("Nr.1234  Tel.0123").is_empty());
    }

    #[test]
    fn a_currency_sign_read_as_letters() {
        let value = |line: &str| after_misread_sign(&clean(line)).map(|(_, a)| a.value.to_string());
        assert_eq!(value("Zu zahlen  As49,77").as_deref(), Some("49.77"));
        assert_eq!(value("Gesamt  W13.464").as_deref(), Some("13464"));
        assert_eq!(value("Montant  wW88 332").as_deref(), Some("88332"));
        assert_eq!(value("Total CAS89 31").as_deref(), Some("89.31"));
        // A word, a number inside a word, or a number that does not end the line.
        assert_eq!(value("Total items4"), None);
        assert_eq!(value("Total 4x5"), None);
        assert_eq!(value("Total A5 size"), None);
        assert_eq!(value("Total 12.50"), None);
    }

    #[test]
    fn numbers_that_are_not_amounts() {
        assert_eq!(values("VAT 19% 1.56"), ["1.56"]);
        assert_eq!(values("VISA ****1234"), Vec::<String>::new());
        assert_eq!(values("MASTERCARD **** 5202"), Vec::<String>::new());
        assert_eq!(values("TOTALT  4686,12:-"), vec!["4686.12"]);
        assert_eq!(values("Knäckebröd  265,90:"), vec!["265.90"]);
        assert_eq!(values("12:30"), Vec::<String>::new());
        assert_eq!(values("**** **** **** 4004"), Vec::<String>::new());
        assert_eq!(values("XXXX XXXX XXXX 1234  12.50"), vec!["12.50"]);
        assert_eq!(values("12.03.2024 14:32"), Vec::<String>::new());
        assert_eq!(values("12-03-2024"), Vec::<String>::new());
        assert_eq!(values("2 x 8,81"), ["8.81"]);
        assert_eq!(values("Notebook A5"), Vec::<String>::new());
        assert_eq!(values("Subtotal  09"), Vec::<String>::new());
        assert_eq!(values("Discount 0"), ["0"]);
        assert_eq!(values("Total 0,90"), ["0.90"]);
        // A speck after a price read as a point, but no date's day and month.
        assert_eq!(values("Tota1 s/ IVa  228.67. 8UR"), ["228.67"]);
        assert_eq!(values("Valortotal  228.67.€"), ["228.67"]);
        assert_eq!(values("Total 12.50."), ["12.50"]);
        assert_eq!(values("6216.38.."), Vec::<String>::new());
        assert_eq!(values("Datum 24.12. 2024"), ["2024"]);
        assert_eq!(values("Version 1.10.2"), Vec::<String>::new());
        // A price run into the word before it; codes and sizes carry no cents.
        assert_eq!(values("Importe  a  pagar165,73 €"), ["165.73"]);
        assert_eq!(values("NIF ESB1234567  Pan 2,10"), ["2.10"]);
        assert_eq!(values("Cola0,33l  2,10"), ["2.10"]);
        assert_eq!(values("Totala payer:148.07 CHF"), ["148.07"]);
        assert_eq!(values("Uhrzeit 12:30"), Vec::<String>::new());
        assert_eq!(values("Tel:0612345678"), Vec::<String>::new());
        assert_eq!(values("Razem do zapłaty  57,85zł"), ["57.85"]);
        assert_eq!(values("Summa  265,90kr"), ["265.90"]);
        assert_eq!(values("Pizza 30krusty"), Vec::<String>::new());
    }
}
