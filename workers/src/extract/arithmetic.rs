//! What the other lines of a receipt prove the total to be: subtotal plus tax, tip,
//! deposit and minus discount; the items' prices added up; cash tendered minus change;
//! the card payment. A total the
//! arithmetic confirms is trusted; a total line OCR misread is repaired from it.

use rust_decimal::Decimal;

/// The labelled amounts of a receipt other than its total lines.
#[derive(Debug, Default)]
pub struct Ledger {
    pub subtotal: Option<Decimal>,
    pub taxes: Vec<Decimal>,
    pub tip: Option<Decimal>,
    pub discount: Option<Decimal>,
    pub deposit: Option<Decimal>,
    pub cash: Option<Decimal>,
    pub change: Option<Decimal>,
    pub card: Vec<Decimal>,
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
}

impl Ledger {
    /// Every value the ledger proves a total could be, with how.
    pub fn proofs(&self) -> Vec<(Decimal, Proof)> {
        let mut proofs = Vec::new();
        if let (Some(cash), Some(change)) = (self.cash, self.change) {
            if cash > change && change >= Decimal::ZERO {
                proofs.push((cash - change, Proof::CashLessChange));
            }
        }
        for card in &self.card {
            if *card > Decimal::ZERO {
                proofs.push((*card, Proof::CardPayment));
            }
        }
        let items: Decimal = self.items.iter().sum();
        if items > Decimal::ZERO {
            proofs.push((items, Proof::FromItems));
        }
        if let Some(subtotal) = self.subtotal {
            // Tax is added (US style) or included (European); tip, deposit and discount
            // may each be there or not: every combination is a way to the total.
            let mut parts: Vec<Vec<Decimal>> = vec![vec![Decimal::ZERO]];
            parts.push(
                std::iter::once(Decimal::ZERO)
                    .chain(self.taxes.iter().copied())
                    .collect(),
            );
            for extra in [self.tip, self.deposit, self.discount.map(|d| -d.abs())] {
                parts.push(std::iter::once(Decimal::ZERO).chain(extra).collect());
            }
            let mut sums = vec![subtotal];
            for options in &parts[1..] {
                sums = sums
                    .iter()
                    .flat_map(|s| options.iter().map(move |o| s + o))
                    .collect();
            }
            sums.sort();
            sums.dedup();
            proofs.extend(
                sums.into_iter()
                    .filter(|s| *s > Decimal::ZERO)
                    .map(|s| (s, Proof::FromSubtotal)),
            );
        }
        proofs
    }

    /// The value at least two independent proofs agree on, if any.
    pub fn proven(&self) -> Option<Decimal> {
        let proofs = self.proofs();
        proofs.iter().find_map(|(value, how)| {
            proofs
                .iter()
                .any(|(other, other_how)| other == value && other_how != how)
                .then_some(*value)
        })
    }
}

/// Whether `read` looks like `proven` misread by OCR: the same number of digits, at most
/// two of them different.
pub fn misread_of(read: Decimal, proven: Decimal) -> bool {
    let digits = |d: Decimal| -> Vec<u8> {
        let mut d = d.abs();
        d.rescale(2);
        d.to_string().bytes().filter(u8::is_ascii_digit).collect()
    };
    let (a, b) = (digits(read), digits(proven));
    a.len() == b.len() && a.iter().zip(&b).filter(|(x, y)| x != y).count() <= 2
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
            change: Some(d("10.90")),
            ..Ledger::default()
        };
        assert_eq!(ledger.proven(), Some(d("199.10")));
        assert!(misread_of(d("199.18"), d("199.10")));
        assert!(!misread_of(d("19.10"), d("199.10")));
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
