//! What the other lines of a receipt prove the total to be: subtotal (or, where there is
//! none, the items' prices added up) plus tax, tip, deposit and minus discount; cash
//! tendered minus change; the card payment; the gross of the tax summary. A total the arithmetic confirms is trusted;
//! a total line OCR misread is repaired from it.

use rust_decimal::Decimal;

/// The labelled amounts of a receipt other than its total lines.
#[derive(Debug, Default)]
pub struct Ledger {
    pub subtotal: Option<Decimal>,
    pub taxes: Vec<Decimal>,
    /// The tip, read one way or, where its point may be lost, two.
    pub tips: Vec<Decimal>,
    pub discount: Option<Decimal>,
    pub deposit: Option<Decimal>,
    pub cash: Option<Decimal>,
    /// The change given, read one way or, where its point may be lost, two.
    pub changes: Vec<Decimal>,
    pub card: Vec<Decimal>,
    /// The gross amounts of the tax summary's rows (`19%  612,18  116,32  728,50`).
    pub gross: Vec<Decimal>,
    /// The prices of the item lines, when there are any.
    pub items: Vec<Decimal>,
}

/// Independent ways of knowing the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    FromSubtotal,
    FromItems,
    CashLessChange,
    CardPayment,
    /// A tax summary's row whose net and tax add up to its gross.
    TaxSummary,
}

impl Ledger {
    /// Every value the ledger proves a total could be, with how.
    pub fn proofs(&self) -> Vec<(Decimal, Proof)> {
        let mut proofs = Vec::new();
        if let Some(cash) = self.cash {
            for change in &self.changes {
                if cash > *change && *change >= Decimal::ZERO {
                    proofs.push((cash - change, Proof::CashLessChange));
                }
            }
        }
        for card in &self.card {
            if *card > Decimal::ZERO {
                proofs.push((*card, Proof::CardPayment));
            }
        }
        // With several rates, the rows' grosses add up to the total; a tip or deposit
        // outside the tax may come on top.
        let gross: Decimal = self.gross.iter().sum();
        if gross > Decimal::ZERO {
            let mut sums = vec![gross];
            sums.extend(self.tips.iter().map(|tip| gross + tip));
            if let Some(deposit) = self.deposit {
                sums.extend(sums.clone().iter().map(|s| s + deposit));
            }
            proofs.extend(sums.into_iter().map(|s| (s, Proof::TaxSummary)));
        }
        let items: Decimal = self.items.iter().sum();
        if items > Decimal::ZERO {
            // Receipts with no subtotal line add tax and the rest to the items directly.
            proofs.extend(self.ways_from(items).map(|s| (s, Proof::FromItems)));
        }
        if let Some(subtotal) = self.subtotal {
            proofs.extend(self.ways_from(subtotal).map(|s| (s, Proof::FromSubtotal)));
        }
        proofs
    }

    /// Every total `base` may lead to: tax is added (US style) or included (European);
    /// tip, deposit and discount may each be there or not.
    fn ways_from(&self, base: Decimal) -> impl Iterator<Item = Decimal> {
        let mut parts: Vec<Vec<Decimal>> = [&self.taxes, &self.tips]
            .into_iter()
            .map(|options| {
                std::iter::once(Decimal::ZERO)
                    .chain(options.iter().copied())
                    .collect()
            })
            .collect();
        for extra in [self.deposit, self.discount.map(|d| -d.abs())] {
            parts.push(std::iter::once(Decimal::ZERO).chain(extra).collect());
        }
        let mut sums = vec![base];
        for options in &parts {
            sums = sums
                .iter()
                .flat_map(|s| options.iter().map(move |o| s + o))
                .collect();
        }
        sums.sort();
        sums.dedup();
        sums.into_iter().filter(|s| *s > Decimal::ZERO)
    }

    /// Whether `base` as the subtotal leads to `total` with the taxes, tip, deposit or
    /// discount added.
    pub fn leads_to(&self, base: Decimal, total: Decimal) -> bool {
        total != base && self.ways_from(base).any(|sum| sum == total)
    }

    /// The value most independent proofs agree on — at least two, and more than on
    /// any other value.
    pub fn proven(&self) -> Option<Decimal> {
        let mut kinds: Vec<(Decimal, Vec<Proof>)> = Vec::new();
        // Items that add up to the subtotal are one way to the total with it, not two (a
        // tax line whose amount OCR lost leaves both short), and so are items that lead
        // to it (less a discount). Items that add up to another value (the gross, below
        // `Delsumma` net and `Moms`) are a way of their own.
        let items: Decimal = self.items.iter().sum();
        let one_way = self
            .subtotal
            .is_none_or(|subtotal| subtotal == items || self.leads_to(items, subtotal));
        for (value, how) in self.proofs() {
            let how = match how {
                Proof::FromItems if one_way => Proof::FromSubtotal,
                other => other,
            };
            match kinds.iter_mut().find(|(v, _)| *v == value) {
                Some((_, hows)) if !hows.contains(&how) => hows.push(how),
                Some(_) => {}
                None => kinds.push((value, vec![how])),
            }
        }
        kinds.sort_by_key(|(_, hows)| std::cmp::Reverse(hows.len()));
        match kinds.as_slice() {
            [(value, first), rest @ ..]
                if first.len() >= 2 && rest.first().is_none_or(|(_, h)| h.len() < first.len()) =>
            {
                Some(*value)
            }
            _ => None,
        }
    }
}

/// An amount's digits, cents included, whatever its scale.
fn digits(amount: Decimal) -> Vec<u8> {
    let mut amount = amount.abs();
    amount.rescale(2);
    amount
        .to_string()
        .bytes()
        .filter(u8::is_ascii_digit)
        .collect()
}

/// Whether `read` looks like `proven` misread by OCR: the same number of digits, at most
/// two of them different — or one digit among them lost (`1094.20` for 10594.20), or its
/// leading digits lost in the noise of a dot leader ("999.98" for 10,999.98), at least
/// four kept.
pub fn misread_of(read: Decimal, proven: Decimal) -> bool {
    let (a, b) = (digits(read), digits(proven));
    let damaged = digits_differing(&a, &b).is_some_and(|n| n <= 2);
    let one_lost = a.len() >= 4
        && a.len() + 1 == b.len()
        && (0..b.len()).any(|i| a[..i] == b[..i] && a[i..] == b[i + 1..]);
    damaged || one_lost || tail_of(&a, &b, 4)
}

/// Whether two amounts print the same digits but one.
pub fn one_digit_apart(a: Decimal, b: Decimal) -> bool {
    digits_differing(&digits(a), &digits(b)) == Some(1)
}

/// How many digits two numbers of as many digits differ in; none if their lengths differ.
fn digits_differing(a: &[u8], b: &[u8]) -> Option<usize> {
    (a.len() == b.len()).then(|| a.iter().zip(b).filter(|(x, y)| x != y).count())
}

/// Whether `read` is `amount` with one to three digits added among or after its own: its
/// point lost (`444919` for 4449.19) or read as a digit (`43331` for 43.31), or a speck
/// read as one (`57.408` for 57.40).
pub fn padded(read: Decimal, amount: Decimal) -> bool {
    let (a, b) = (digits(read), digits(amount));
    let mut rest = a.iter();
    let within = b.iter().all(|digit| rest.any(|d| d == digit));
    b.len() >= 3 && (1..=3).contains(&a.len().saturating_sub(b.len())) && a[0] == b[0] && within
}

/// Whether `read` is `amount` with its leading digits lost, at least three kept: a weaker
/// likeness than [`cut_short`], for a reading a person confirms anyway.
pub fn ends(read: Decimal, amount: Decimal) -> bool {
    tail_of(&digits(read), &digits(amount), 3)
}

/// Whether `read`, a whole number, is `amount`'s first digits, at least three: its point
/// and its last digits lost at the paper's cropped edge (`2428` for 242.88).
pub fn cut_at_edge(read: Decimal, amount: Decimal) -> bool {
    let kept: Vec<u8> = read
        .to_string()
        .bytes()
        .filter(u8::is_ascii_digit)
        .collect();
    let whole = digits(amount);
    read.scale() == 0 && kept.len() >= 3 && kept.len() < whole.len() && whole.starts_with(&kept)
}

/// Whether `read` is `amount` with its leading digits lost, at least four kept.
pub fn cut_short(read: Decimal, amount: Decimal) -> bool {
    tail_of(&digits(read), &digits(amount), 4)
}

/// Whether the digits `a` end the longer `b`, at least `kept` of them.
fn tail_of(a: &[u8], b: &[u8], kept: usize) -> bool {
    a.len() >= kept && a.len() < b.len() && b.ends_with(a)
}

/// How many digits before `amount` make `read`, when they are one or two and may have
/// been its currency sign: OCR reads `₩` as `1`, `₹` as `2` or `7` ("TOTAL 712,290.50"
/// for ₹12,290.50). At least three digits and the cents must be kept, so a short amount
/// that happens to end another is no match.
pub fn sign_read_as_digits(read: Decimal, amount: Decimal) -> Option<usize> {
    digits_before(read, amount).filter(|_| digits(amount).len() >= 5)
}

/// How many digits, one or two, before `amount` make `read`, at least three of its own
/// kept (`671.41` for 71.41).
pub fn digits_before(read: Decimal, amount: Decimal) -> Option<usize> {
    let (a, b) = (digits(read), digits(amount));
    let extra = a.len().checked_sub(b.len())?;
    (b.len() >= 3 && (1..=2).contains(&extra) && a.ends_with(&b)).then_some(extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn two_ways_to_the_same_total_prove_it() {
        let ledger = Ledger {
            subtotal: Some(d("181.00")),
            taxes: vec![d("18.10")],
            cash: Some(d("210.00")),
            changes: vec![d("10.90")],
            ..Ledger::default()
        };
        assert_eq!(ledger.proven(), Some(d("199.10")));
        assert!(misread_of(d("199.18"), d("199.10")));
        // One digit lost among the others is a misread; two are another amount.
        assert!(misread_of(d("19.10"), d("199.10")));
        assert!(misread_of(d("1094.20"), d("10594.20")));
        assert!(!misread_of(d("9.10"), d("199.10")));
        assert!(!misread_of(d("19.10"), d("1299.10")));
        assert!(misread_of(d("999.98"), d("10999.98")));
        assert!(!misread_of(d("9.98"), d("10999.98")));
    }

    #[test]
    fn a_currency_sign_read_as_digits_is_a_misread() {
        assert_eq!(sign_read_as_digits(d("712290.50"), d("12290.50")), Some(1));
        assert_eq!(sign_read_as_digits(d("163800"), d("63800")), Some(1));
        assert_eq!(sign_read_as_digits(d("21334190"), d("334190")), Some(2));
        // Three signs' worth of digits, another amount's tail, or too short to tell.
        assert_eq!(sign_read_as_digits(d("123334190"), d("334190")), None);
        assert_eq!(sign_read_as_digits(d("163801"), d("63800")), None);
        assert_eq!(sign_read_as_digits(d("19.50"), d("9.50")), None);
        assert_eq!(sign_read_as_digits(d("12290.50"), d("12290.50")), None);
    }

    #[test]
    fn digits_added_or_lost_are_told_from_other_amounts() {
        assert!(padded(d("444919"), d("4449.19")), "the point lost");
        assert!(padded(d("43331"), d("43.31")), "the point read as a digit");
        assert!(padded(d("57408"), d("57.40")), "a speck read as a digit");
        assert!(!padded(d("4449.19"), d("4449.19")));
        assert!(!padded(d("5449.19"), d("4449.19")), "another first digit");
        assert!(!padded(d("44491900.12"), d("4449.19")), "too many added");
        assert!(ends(d("1.74"), d("71.74")));
        assert!(cut_at_edge(d("2428"), d("242.88")));
        assert!(cut_at_edge(d("242"), d("242.88")));
        assert!(!cut_at_edge(d("24"), d("242.88")), "too few kept");
        assert!(!cut_at_edge(d("2438"), d("242.88")));
        assert!(!cut_at_edge(d("242.8"), d("242.88")), "its point kept");
        assert!(!ends(d("71.74"), d("71.74")), "nothing lost");
        assert!(!ends(d("2.74"), d("71.74")));
        let ledger = Ledger {
            taxes: vec![d("561.17")],
            ..Ledger::default()
        };
        assert!(ledger.leads_to(d("5611.68"), d("6172.85")));
        assert!(!ledger.leads_to(d("5611.68"), d("5611.68")));
    }

    #[test]
    fn items_plus_tax_with_no_subtotal_line_is_a_way_to_the_total() {
        let ledger = Ledger {
            taxes: vec![d("1.82")],
            items: vec![d("14.00")],
            ..Ledger::default()
        };
        let ways: Vec<_> = ledger.proofs().into_iter().map(|(v, _)| v).collect();
        assert_eq!(ways, [d("14.00"), d("15.82")]);
    }

    #[test]
    fn items_and_their_subtotal_are_one_way_not_two() {
        let ledger = Ledger {
            subtotal: Some(d("150.84")),
            items: vec![d("100.00"), d("50.84")],
            ..Ledger::default()
        };
        assert_eq!(ledger.proven(), None);
        let ledger = Ledger {
            card: vec![d("150.84")],
            ..ledger
        };
        assert_eq!(ledger.proven(), Some(d("150.84")));
    }

    #[test]
    fn gross_items_and_a_net_subtotal_plus_tax_are_two_ways() {
        let ledger = Ledger {
            subtotal: Some(d("6129.42")),
            taxes: vec![d("496.48")],
            items: vec![d("5000.00"), d("1625.90")],
            ..Ledger::default()
        };
        assert_eq!(ledger.proven(), Some(d("6625.90")));
    }

    #[test]
    fn one_way_alone_proves_nothing() {
        let ledger = Ledger {
            subtotal: Some(d("10.00")),
            taxes: vec![d("1.90")],
            ..Ledger::default()
        };
        assert_eq!(ledger.proven(), None);
        assert!(ledger.proofs().iter().any(|(v, _)| *v == d("11.90")));
    }
}
