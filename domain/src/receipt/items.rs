//! Whether a receipt's text is itemised: whether it lists what was bought, each with its
//! price, rather than only a total (a card slip). Policies may ask for itemised receipts
//! over an amount, as finance teams do for meals and entertainment.

/// Words of lines that sum up rather than list: totals, taxes, payment and change, in the
/// languages the receipt reader knows.
const SUMMARY_WORDS: &[&str] = &[
    "total",
    "subtotal",
    "sub-total",
    "sum",
    "summe",
    "gesamt",
    "zwischensumme",
    "tax",
    "vat",
    "mwst",
    "ust",
    "tva",
    "iva",
    "btw",
    "moms",
    "gst",
    "hst",
    "pst",
    "change",
    "cash",
    "card",
    "visa",
    "mastercard",
    "amex",
    "tip",
    "gratuity",
    "balance",
    "due",
    "paid",
    "payment",
    "rückgeld",
    "bar",
    "kartenzahlung",
    "netto",
    "brutto",
    "net",
    "gross",
    "rendu",
    "espèces",
    "carte",
    "totale",
    "resto",
    "contanti",
    "efectivo",
    "cambio",
    "tarjeta",
    "totaal",
    "wisselgeld",
    "kontant",
    "kort",
    "discount",
    "rabatt",
    "remise",
];

/// True when at least one line names something (letters) and ends with a price, and is not
/// a total, tax or payment line.
pub fn lists_items(text: &str) -> bool {
    text.lines().any(is_item_line)
}

fn is_item_line(line: &str) -> bool {
    let lower = line.trim().to_lowercase();
    let mut tokens: Vec<&str> = lower.split_whitespace().collect();
    // A trailing tax code (`A`, `B`, `*`) follows the price on many tills.
    if tokens
        .last()
        .is_some_and(|t| t.chars().count() == 1 && !t.chars().all(|c| c.is_ascii_digit()))
    {
        tokens.pop();
    }
    let Some((price, name)) = tokens.split_last() else {
        return false;
    };
    let words: Vec<String> = name
        .iter()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string())
        .collect();
    let names_something = words
        .iter()
        .any(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 2);
    let sums_up = words.iter().any(|w| SUMMARY_WORDS.contains(&w.as_str()));
    names_something && !sums_up && is_price(price)
}

/// `12.50`, `1,299.00`, `€4,20`, `-3.00`, `8.90€`: digits ending in a two-digit fraction,
/// with at most a sign and a currency symbol around them.
fn is_price(token: &str) -> bool {
    let core = token.trim_matches(|c: char| !c.is_ascii_digit());
    let bytes = core.as_bytes();
    let n = bytes.len();
    n >= 4
        && matches!(bytes[n - 3], b'.' | b',')
        && bytes[n - 2..].iter().all(u8::is_ascii_digit)
        && bytes[..n - 3]
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b',' | b'\''))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_till_receipt_lists_items_and_a_card_slip_does_not() {
        let till = "CAFÉ CENTRAL\n2 x Cappuccino      7.80 A\nCroissant   2,90\n\
                    Subtotal 10.70\nMwSt 19% 1.71\nTOTAL EUR 10.70\nVISA ****1234 10.70";
        assert!(lists_items(till));
        let slip = "TAXI 4711\n12.03.2026 14:22\nFare total   23.40\nTip 2.00\nCard 25.40\n\
                    Thank you";
        assert!(!lists_items(slip));
        assert!(!lists_items(""));
        assert!(lists_items("Hotel room 1 night €129.00"));
        assert!(!lists_items("Room 12 floor 3"));
    }
}
