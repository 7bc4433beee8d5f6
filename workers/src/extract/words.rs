//! What a receipt's lines say, in the languages tills print: English, German, French,
//! Spanish, Italian and Dutch, and the totals and payments of Portuguese, Polish and
//! Swedish receipts. Lines are compared folded (lower case, accents removed),
//! so an OCR that drops an accent still matches.

use unicode_normalization::UnicodeNormalization;

use super::currency::{is_code, only_a_place};

/// Lower case, accents removed, and the Greek letters an engine reads for the Latin ones
/// they look like (`Jμn`, `seρ`, `Tοtal`) made those.
pub fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'α' => 'a',
            'ε' => 'e',
            'ι' => 'i',
            'κ' => 'k',
            'μ' => 'u',
            'ν' => 'v',
            'ο' => 'o',
            'ρ' => 'p',
            'τ' => 't',
            'υ' => 'u',
            _ => c,
        })
        .collect()
}

/// The kinds of line a receipt prints an amount on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// The amount to pay; the rank says how sure the wording is (0 is surest).
    Total(u8),
    Subtotal,
    Tax,
    Tip,
    Discount,
    Deposit,
    Cash,
    Change,
    Card,
}

/// Phrases for the total, surest first. A bare "total" is weaker than "total to pay":
/// "total" also starts "total HT" and the like, which the other lists catch first.
const TOTAL: &[(&str, u8)] = &[
    ("grand total", 0),
    ("amount due", 0),
    ("balance due", 0),
    ("total due", 0),
    ("total to pay", 0),
    ("total ttc", 0),
    ("net a payer", 0),
    ("a payer", 1),
    ("montant du", 0),
    ("gesamtbetrag", 0),
    ("endbetrag", 0),
    ("zu zahlen", 0),
    ("total a pagar", 0),
    ("importe total", 0),
    ("totale complessivo", 0),
    ("da pagare", 0),
    ("te betalen", 0),
    ("totaalbedrag", 0),
    ("totaal bedrag", 0),
    // Wordings of tills and invoices beyond the ones above, and the totals of Portuguese,
    // Polish and Swedish receipts.
    ("amount payable", 0),
    ("total payable", 0),
    ("please pay", 0),
    ("order total", 0),
    ("total sale", 0),
    ("total amount", 0),
    ("gesamtsumme", 0),
    ("endsumme", 0),
    ("rechnungsbetrag", 0),
    ("montant ttc", 0),
    ("somme due", 0),
    ("a regler", 0),
    ("total factura", 0),
    ("total compra", 0),
    ("totale documento", 0),
    ("importo pagato", 0),
    ("tot complessivo", 0),
    ("te voldoen", 0),
    ("eindtotaal", 0),
    ("valor total", 0),
    ("do zaplaty", 0),
    ("do zapłaty", 0),
    ("att betala", 0),
    ("to pay", 1),
    ("payable", 1),
    ("voldoen", 1),
    ("razem", 1),
    ("suma", 1),
    ("summa", 1),
    ("totalt", 1),
    // What is left of "da pagare", "total a pagar", "te betalen", "zu zahlen" and "net à
    // payer" when OCR loses or garbles their first words (`Net & payer`).
    ("pagare", 1),
    ("payer", 1),
    ("a pagar", 1),
    ("betalen", 1),
    ("zahlen", 1),
    ("summe", 1),
    ("totale", 1),
    ("totaal", 1),
    ("total", 1),
    ("gesamt", 2),
    ("importe", 2),
    ("importo", 2),
    ("amount", 3),
    ("montant", 3),
    ("betrag", 3),
    ("bedrag", 3),
    ("balance", 3),
];

/// Lines that print an amount which is not the total, even when they say "total".
/// Checked before the total phrases; multi-word phrases are matched as such, single
/// words as whole words.
const OTHERS: &[(&str, Label)] = &[
    ("subtotal", Label::Subtotal),
    ("sub-total", Label::Subtotal),
    ("sub total", Label::Subtotal),
    ("zwischensumme", Label::Subtotal),
    ("sous-total", Label::Subtotal),
    ("sous total", Label::Subtotal),
    ("subtotale", Label::Subtotal),
    ("subtotaal", Label::Subtotal),
    ("items total", Label::Subtotal),
    ("delsumma", Label::Subtotal),
    ("s/ iva", Label::Subtotal),
    // "Total s/ IVA" (without tax) with the tax word lost or misread (`Total s/ VA`).
    ("total s/", Label::Subtotal),
    ("net amount", Label::Subtotal),
    ("net total", Label::Subtotal),
    ("total net", Label::Subtotal),
    ("nettobetrag", Label::Subtotal),
    ("netto", Label::Subtotal),
    ("total ht", Label::Subtotal),
    ("base imponible", Label::Subtotal),
    ("base", Label::Subtotal),
    ("imponibile", Label::Subtotal),
    ("excl", Label::Subtotal),
    ("tax", Label::Tax),
    ("taxes", Label::Tax),
    ("vat", Label::Tax),
    ("gst", Label::Tax),
    ("hst", Label::Tax),
    ("pst", Label::Tax),
    ("mwst", Label::Tax),
    ("ust", Label::Tax),
    ("tva", Label::Tax),
    ("iva", Label::Tax),
    ("btw", Label::Tax),
    ("moms", Label::Tax),
    ("ptu", Label::Tax),
    ("imposto", Label::Tax),
    ("tip", Label::Tip),
    ("gratuity", Label::Tip),
    ("trinkgeld", Label::Tip),
    ("pourboire", Label::Tip),
    ("propina", Label::Tip),
    ("mancia", Label::Tip),
    ("fooi", Label::Tip),
    ("service charge", Label::Tip),
    ("servizio", Label::Tip),
    ("coperto", Label::Tip),
    ("bedienung", Label::Tip),
    ("gorjeta", Label::Tip),
    ("napiwek", Label::Tip),
    ("dricks", Label::Tip),
    ("discount", Label::Discount),
    ("savings", Label::Discount),
    ("you saved", Label::Discount),
    ("rabatt", Label::Discount),
    ("nachlass", Label::Discount),
    ("remise", Label::Discount),
    ("descuento", Label::Discount),
    ("sconto", Label::Discount),
    ("korting", Label::Discount),
    // Promotions, coupons and loyalty reductions as tills word them in the nine languages.
    ("coupon", Label::Discount),
    ("promo", Label::Discount),
    ("promotion", Label::Discount),
    ("markdown", Label::Discount),
    ("aktion", Label::Discount),
    ("reduction", Label::Discount),
    ("rabais", Label::Discount),
    ("dto", Label::Discount),
    ("promocion", Label::Discount),
    ("cupon", Label::Discount),
    ("promozione", Label::Discount),
    ("actie", Label::Discount),
    ("bonus", Label::Discount),
    ("desconto", Label::Discount),
    ("promocao", Label::Discount),
    ("rabat", Label::Discount),
    ("upust", Label::Discount),
    ("promocja", Label::Discount),
    ("znizka", Label::Discount),
    ("deposit", Label::Deposit),
    ("pfand", Label::Deposit),
    ("consigne", Label::Deposit),
    ("deposito", Label::Deposit),
    ("cauzione", Label::Deposit),
    ("statiegeld", Label::Deposit),
    ("change", Label::Change),
    ("ruckgeld", Label::Change),
    ("wechselgeld", Label::Change),
    ("zuruck", Label::Change),
    ("rendu", Label::Change),
    ("monnaie", Label::Change),
    ("cambio", Label::Change),
    ("resto", Label::Change),
    ("wisselgeld", Label::Change),
    ("terug", Label::Change),
    ("retour", Label::Change),
    ("a rendre", Label::Change),
    ("devolucion", Label::Change),
    ("troco", Label::Change),
    ("reszta", Label::Change),
    ("vaxel", Label::Change),
    ("tillbaka", Label::Change),
    // A German debit card, before the cash it names.
    ("ec-cash", Label::Card),
    ("cash", Label::Cash),
    ("tendered", Label::Cash),
    ("bar", Label::Cash),
    ("gegeben", Label::Cash),
    ("especes", Label::Cash),
    ("efectivo", Label::Cash),
    ("entregado", Label::Cash),
    ("contanti", Label::Cash),
    ("contante", Label::Cash),
    ("contant", Label::Cash),
    ("ontvangen", Label::Cash),
    ("numerario", Label::Cash),
    ("dinheiro", Label::Cash),
    ("gotowka", Label::Cash),
    ("wplata", Label::Cash),
    ("wpłata", Label::Cash),
    ("kontant", Label::Cash),
    ("mottaget", Label::Cash),
    ("visa", Label::Card),
    ("mastercard", Label::Card),
    ("amex", Label::Card),
    ("maestro", Label::Card),
    ("card", Label::Card),
    ("karte", Label::Card),
    ("ec-karte", Label::Card),
    ("girocard", Label::Card),
    ("kartenzahlung", Label::Card),
    ("cb", Label::Card),
    ("carte", Label::Card),
    ("tarjeta", Label::Card),
    ("carta", Label::Card),
    ("bancomat", Label::Card),
    // Italian tills name a card payment by the terminal that took it (`POS  98,00`).
    ("pos", Label::Card),
    ("pin", Label::Card),
    ("pagamento", Label::Card),
    ("paiement", Label::Card),
    ("kreditkarte", Label::Card),
    ("creditcard", Label::Card),
    ("debit", Label::Card),
    ("multibanco", Label::Card),
    ("cartao", Label::Card),
    ("karta", Label::Card),
    ("kort", Label::Card),
    ("bankkort", Label::Card),
];

/// Whether the folded line holds `phrase`: as a phrase if it has a space, hyphen or point
/// (`u.s.a`) — also with other marks or more spaces between its words (`Net. amount`,
/// `Amount  Due`, as OCR and the rows rebuilt from word boxes leave them) — as a whole
/// word otherwise ("tip" is not in "multiple", "bar" not in "barcode").
pub fn says(line: &str, phrase: &str) -> bool {
    if phrase.contains([' ', '-', '.']) {
        if line.contains(phrase) {
            return true;
        }
        // A hyphen OCR read as another mark (`EC=Cash`) parts a hyphened phrase's words
        // all the same; elsewhere a hyphen joins (`Sous-total TTC` says no `total ttc`).
        let hyphened = phrase.contains('-');
        let parting = |c: char| c == ' ' || hyphened && c == '-';
        // Most lines lack one of the words outright: settled without splitting the line
        // (every line is asked about every phrase).
        if !phrase.split(parting).all(|word| line.contains(word)) {
            return false;
        }
        let wanted: Vec<&str> = phrase.split(parting).collect();
        let words: Vec<&str> = line
            .split(|c: char| !c.is_alphanumeric() && (hyphened || c != '-'))
            .filter(|w| !w.is_empty())
            .collect();
        return words.windows(wanted.len()).any(|w| w == wanted.as_slice());
    }
    line.split(|c: char| !c.is_alphanumeric())
        .any(|word| word == phrase)
}

/// Whether the folded line holds a word one letter away from `phrase`, a single word of
/// eight letters or more: OCR's `Twischensumme`, `2wischensumme`, `Kartenzahiung`. Shorter
/// words are too close to each other and to item names for that — except as the last
/// word of a phrase whose other words are there as printed, and of six letters or more
/// (`A RECLER`, `Te betaien`): the words before it make the likeness no chance.
fn nearly_says(line: &str, phrase: &str) -> bool {
    const LONG: usize = 8;
    if let Some((head, last)) = phrase.rsplit_once(' ') {
        return last.chars().count() >= 6 && nearly_says_after(line, head, last);
    }
    if phrase.contains('-') || phrase.chars().count() < LONG {
        return false;
    }
    let phrase: Vec<char> = phrase.chars().collect();
    // Most words are far shorter or longer: they are passed over before being compared.
    line.split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.chars().count().abs_diff(phrase.len()) <= 1)
        .any(|word| one_edit_apart(&word.chars().collect::<Vec<_>>(), &phrase))
}

/// Whether the line's words hold `head`'s words and then one a letter away from `last`.
fn nearly_says_after(line: &str, head: &str, last: &str) -> bool {
    let head: Vec<&str> = head.split(' ').collect();
    let last: Vec<char> = last.chars().collect();
    let words: Vec<&str> = line
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(head.len() + 1).any(|w| {
        w[..head.len()] == head[..] && {
            let word: Vec<char> = w[head.len()].chars().collect();
            word.len().abs_diff(last.len()) <= 1 && one_edit_apart(&word, &last)
        }
    })
}

/// Whether one letter replaced, added or dropped turns `a` into `b`.
pub fn one_edit_apart(a: &[char], b: &[char]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let same_start = short.iter().zip(long).take_while(|(x, y)| x == y).count();
    match long.len() - short.len() {
        0 => same_start < short.len() && short[same_start + 1..] == long[same_start + 1..],
        1 => short[same_start..] == long[same_start + 1..],
        _ => false,
    }
}

/// What kind of amount the line prints, if its wording says: as printed, or else with
/// one letter of a long label word misread, or else with its umlaut misread, or else with
/// the digits OCR read for its letters put back.
pub fn label(folded: &str) -> Option<Label> {
    label_by(folded, says)
        .or_else(|| label_by(folded, nearly_says))
        .or_else(|| umlaut_misread(folded))
        .or_else(|| label_by(folded, says_run_together))
        .or_else(|| label_by(&uncropped(folded)?, says))
        .or_else(|| label_by(&unsplit(folded)?, says))
        .or_else(|| label_by(&apart_from_digits(folded)?, says))
        .or_else(|| label_by(&letters_for_digits(folded)?, says))
        .or_else(|| label_by(&letters_for_digits(folded)?, nearly_says))
        .or_else(|| label_by(&apart_from_code(folded)?, says))
        .or_else(|| label_by(&tail_restored(folded)?, says))
        .or_else(|| label_by(&x_for_times(folded)?, says))
        .or_else(|| alone(folded))
}

/// The line with the multiplication signs in its words read as the letter x OCR took for
/// one (`Sales ta× 19%`); a sign after a word (`Tax× 20%`) already parts it from the label.
fn x_for_times(line: &str) -> Option<String> {
    line.contains('×').then(|| line.replace('×', "x"))
}

/// The line with each word `rewrite` changes changed, if it changes any.
fn rewritten_words(line: &str, rewrite: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut changed = false;
    let words: Vec<String> = line
        .split(' ')
        .map(|word| {
            let new = rewrite(word);
            changed |= new.is_some();
            new.unwrap_or_else(|| word.to_string())
        })
        .collect();
    changed.then(|| words.join(" "))
}

/// The line with a currency's code or the euro's name parted from the word it ends
/// (`TOTALEUR`, `Summechf`, `TOTALEEURO`): OCR loses the space between a label and the
/// currency printed after it.
fn apart_from_code(line: &str) -> Option<String> {
    rewritten_words(line, |word| {
        let ending = |len: usize| {
            word.len().checked_sub(len).filter(|at| {
                *at >= 3
                    && word.is_char_boundary(*at)
                    && word[..*at].chars().all(char::is_alphabetic)
            })
        };
        let code = ending(3).filter(|at| is_code(&word[*at..].to_uppercase()));
        let euro = ending(4).filter(|at| word[*at..].eq_ignore_ascii_case("euro"));
        let at = code.or(euro)?;
        Some(format!("{} {}", &word[..at], &word[at..]))
    })
}

/// The line with the digits OCR read for letters inside its words put back (`Tota1 HT`,
/// `T0tal`, `5umme`): in a word of three letters or more whose only digits are ones that
/// look like a letter, and at most two of them — three in a word of eight letters or more
/// (`Zw15chen5umme`, which then still reads one letter off: [`label`] allows it that).
fn letters_for_digits(line: &str) -> Option<String> {
    let as_letter = |c: char| match c {
        '0' => Some('o'),
        '1' => Some('l'),
        '5' => Some('s'),
        '8' => Some('b'),
        _ => None,
    };
    rewritten_words(line, |word| {
        let letters = word.chars().filter(|c| c.is_alphabetic()).count();
        let digits: Vec<char> = word.chars().filter(char::is_ascii_digit).collect();
        let lookalikes = !digits.is_empty()
            && (digits.len() <= 2 || letters >= 8 && digits.len() <= 3)
            && digits.iter().all(|d| as_letter(*d).is_some());
        // A word's first `1` before letters is most often its capital `I` (`1tems tota1`,
        // `1mporto`): words start in capitals, and few labels with an `l`.
        let initial_i = word.starts_with('1') && word[1..].starts_with(char::is_alphabetic);
        (letters >= 3 && lookalikes).then(|| {
            word.char_indices()
                .map(|(at, c)| match c {
                    '1' if at == 0 && initial_i => 'i',
                    _ => as_letter(c).unwrap_or(c),
                })
                .collect()
        })
    })
}

/// The line with a label word's `j` back where OCR lost its tail (`Gorieta`, `Gor(eta`,
/// `Tarieta`): the one letter or mark it reads instead, in a word that is a label word
/// with it.
fn tail_restored(line: &str) -> Option<String> {
    rewritten_words(line, |word| {
        word.char_indices()
            .filter(|(_, c)| matches!(c, 'i' | 'l' | '(' | '|'))
            .map(|(at, c)| format!("{}j{}", &word[..at], &word[at + c.len_utf8()..]))
            .find(|whole| phrases().any(|phrase| phrase.split(' ').any(|w| w == whole)))
    })
}

/// Words that label an amount only where they are a line's one word: `Net` is the amount
/// before tax as invoices print it, `Service` the service charge; beside other words they
/// are too often what is left of `Net à payer`, the total, or an item (`Room service`).
/// A currency's code beside it is no other word (`Service  EUR 9,60`). `Reçu` (received)
/// is the cash tendered only with its amount on its line: alone it titles the receipt.
const ALONE: &[(&str, Label)] = &[
    ("net", Label::Subtotal),
    ("service", Label::Tip),
    ("recu", Label::Cash),
];

fn alone(folded: &str) -> Option<Label> {
    let mut words = folded
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty() && !is_code(&w.to_uppercase()));
    let (Some(word), None) = (words.next(), words.next()) else {
        return None;
    };
    let priced = folded.contains(|c: char| c.is_ascii_digit());
    ALONE
        .iter()
        .find(|(w, kind)| *w == word && (*kind != Label::Cash || priced))
        .map(|(_, kind)| *kind)
}

/// The line with its words parted from digits they are glued to, where any are: OCR
/// loses the space before a rate or an amount (`TVA25%`, `Total25,00`).
fn apart_from_digits(line: &str) -> Option<String> {
    let mut parted = String::with_capacity(line.len() + 4);
    let mut previous: Option<char> = None;
    for c in line.chars() {
        if previous.is_some_and(|p| p.is_alphabetic() && c.is_ascii_digit()) {
            parted.push(' ');
        }
        parted.push(c);
        previous = Some(c);
    }
    (parted.len() != line.len()).then_some(parted)
}

/// Whether the folded line holds a phrase of several words as one word, the spaces lost:
/// OCR runs short words into the next (`AREGLER`, `Apagar`, `Zuzahlen`) — also after
/// words the lists do not hold, when the phrase is long enough to be no chance ending
/// (`OTALAPAGAR`, what is left of `TOTAL A PAGAR` at a cropped margin).
fn says_run_together(line: &str, phrase: &str) -> bool {
    if !phrase.contains(' ') {
        return false;
    }
    let joined: String = phrase.split(' ').collect();
    line.split(|c: char| !c.is_alphanumeric()).any(|word| {
        word == joined
            || (joined.len() >= 6
                && word.len() > joined.len()
                && word.ends_with(&joined)
                && word.chars().all(char::is_alphabetic))
    })
}

/// Every phrase that labels a line, the total's and the others'.
fn phrases() -> impl Iterator<Item = &'static str> {
    TOTAL
        .iter()
        .map(|(phrase, _)| *phrase)
        .chain(OTHERS.iter().map(|(phrase, _)| *phrase))
}

/// The line with a label word OCR split in two made one again (`Gor jeta`, `Rück geld`):
/// two words that together are a label word of six letters or more.
fn unsplit(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split(' ').collect();
    let label_word = |word: &str| {
        word.chars().count() >= 6 && phrases().any(|phrase| phrase.split(' ').any(|w| w == word))
    };
    let at = words.windows(2).position(|pair| {
        pair.iter()
            .all(|w| !w.is_empty() && w.chars().all(char::is_alphabetic))
            && label_word(&pair.concat())
    })?;
    let mut joined: Vec<String> = words.iter().map(|w| (*w).to_string()).collect();
    let second = joined.remove(at + 1);
    joined[at].push_str(&second);
    Some(joined.join(" "))
}

/// The line with its first word made whole again where a photo's cropped margin took one
/// or two of its first letters (`ropina`, `ubtotal`): at least five letters kept, and one
/// label word alone that they end — and no place's name whole (`Porto`, not `importo`).
fn uncropped(line: &str) -> Option<String> {
    if only_a_place(line) {
        return None;
    }
    let start = line.find(char::is_alphanumeric)?;
    let end = line[start..]
        .find(|c: char| !c.is_alphanumeric())
        .map_or(line.len(), |at| start + at);
    let word = &line[start..end];
    if word.chars().count() < 5 || !word.chars().all(char::is_alphabetic) {
        return None;
    }
    let first_words = phrases().filter_map(|phrase| phrase.split(' ').next());
    let mut wholes = first_words.filter(|whole| {
        (1..=2).contains(&whole.chars().count().saturating_sub(word.chars().count()))
            && whole.ends_with(word)
    });
    let whole = wholes.next()?;
    if wholes.any(|other| other != whole) {
        return None;
    }
    Some(format!("{}{whole}{}", &line[..start], &line[end..]))
}

/// Label words printed with `ü`, as the letters before and after it. The English model
/// has no `ü`: it reads one or two other letters in its place (`Riickgeld`, `Zurtick`,
/// `Zurdick`), which no single-letter tolerance covers in a short word.
const UMLAUTED: &[(&str, &str, Label)] =
    &[("r", "ckgeld", Label::Change), ("zur", "ck", Label::Change)];

fn umlaut_misread(folded: &str) -> Option<Label> {
    folded
        .split(|c: char| !c.is_alphanumeric())
        .find_map(|word| {
            UMLAUTED.iter().find_map(|(before, after, kind)| {
                let read = word.strip_prefix(before)?.strip_suffix(after)?;
                (1..=2).contains(&read.chars().count()).then_some(*kind)
            })
        })
}

fn label_by(folded: &str, says: fn(&str, &str) -> bool) -> Option<Label> {
    // "Grand total" is a total though it contains "total"; nothing else outranks a
    // distractor word on the same line ("Total tax", "Total HT", "Cash total").
    if let Some((_, rank)) = TOTAL
        .iter()
        .take_while(|(_, rank)| *rank == 0)
        .find(|(phrase, _)| says(folded, phrase))
    {
        return Some(Label::Total(*rank));
    }
    if let Some((_, kind)) = OTHERS.iter().find(|(phrase, _)| says(folded, phrase)) {
        return Some(*kind);
    }
    let (_, rank) = TOTAL.iter().find(|(phrase, _)| says(folded, phrase))?;
    // "Qty Item Price Amount": the head of a table's columns, whose weak word for the
    // amount column is no total (and the first item's price under it none either).
    let column_heads = *rank >= 2 && COLUMN_HEADS.iter().any(|w| says(folded, w));
    (!column_heads).then_some(Label::Total(*rank))
}

/// Words that say when an invoice falls due.
pub const DUE_DATE: &[&str] = &[
    "due date",
    "date due",
    "payment due",
    "pay by",
    "falligkeit",
    "fallig",
    "zahlbar bis",
    "echeance",
    "vencimiento",
    "vencimento",
    "scadenza",
    "vervaldatum",
    "vervaldag",
    "termin",
    "forfallodatum",
    "forfaller",
];

/// Words that name a receipt's or an invoice's own date, besides the compounds of `datum`
/// (`Rechnungsdatum`, `Factuurdatum`, `Fakturadatum`).
pub const DATE_WORDS: &[&str] = &["date", "fecha", "data", "dato"];

/// Words that head a tax summary's gross column, besides the total's own.
pub const GROSS: &[&str] = &["brutto", "bruto", "brut", "gross", "ttc", "lordo"];

/// Words that head an item table's columns besides the amount's.
const COLUMN_HEADS: &[&str] = &[
    "qty",
    "item",
    "items",
    "price",
    "unit",
    "description",
    "menge",
    "artikel",
    "preis",
    "bezeichnung",
    "qte",
    "article",
    "prix",
    "designation",
    "cant",
    "articulo",
    "precio",
    "descripcion",
    "qta",
    "articolo",
    "prezzo",
    "descrizione",
    "aantal",
    "prijs",
    "omschrijving",
];

/// Words only receipts in another language than English print: a receipt in dollars
/// that says them is not necessarily American, and its numeric dates not month first.
const NOT_ENGLISH: &[&str] = &[
    "sous-total",
    "ttc",
    "tva",
    "especes",
    "rendu",
    "merci",
    "summe",
    "mwst",
    "gesamt",
    "zwischensumme",
    "ruckgeld",
    "danke",
    "importe",
    "iva",
    "efectivo",
    "gracias",
    "totale",
    "subtotale",
    "contanti",
    "grazie",
    "totaal",
    "subtotaal",
    "btw",
    "te betalen",
    "bedankt",
    "fecha",
    "datum",
    "pourboire",
    "propina",
    "mancia",
    "fooi",
    "trinkgeld",
    "montant",
    "betrag",
    "a payer",
    "zu zahlen",
    "rechnung",
    "facture",
    "factura",
    "fattura",
    "factuur",
];

/// Whether the receipt prints words of another language than English.
pub fn not_english(folded_text: &str) -> bool {
    NOT_ENGLISH.iter().any(|w| says(folded_text, w))
}

/// Words of a header line that make it neither a merchant's name nor an item.
pub const NOT_MERCHANT: &[&str] = &[
    "receipt",
    "invoice",
    "rechnung",
    "facture",
    "factura",
    "fattura",
    "factuur",
    "quittung",
    "beleg",
    "ticket",
    "tel",
    "phone",
    "fax",
    "www",
    "http",
    "vat no",
    "tax id",
    "welcome",
    "order",
    "date",
    "datum",
    "fecha",
    "data",
    "kasse",
    "till",
    "caisse",
    "caja",
    "cassa",
    "store",
    "branch",
    "filiale",
    "filiaal",
    "magasin",
    "sucursal",
    "succursale",
    // A card terminal's and a business's numbers (`TID 50131998 MID 4686960886`,
    // `USt-IdNr. 3890817124`), which are no prices.
    "tid",
    "mid",
    "aid",
    "auth",
    "ref",
    "iban",
    "terminal",
    "ust-idnr",
    "siret",
    "cif",
    "nif",
    // `Preise in EUR`, `Prezzi in EUR`, `Priser i SEK`: the currency the prices are in.
    "preise",
    "prices",
    "prix",
    "prezzi",
    "precios",
    "precos",
    "prijzen",
    "priser",
    "ceny",
];

/// Words of shop names with a letter Tesseract's English model cannot read: its
/// character set has `é` and no other accented letter, so `Hôtel` comes out `H6tel`,
/// `Hétel` or `Hé6tel`. Letters it reads as their plain form (`ä` as `a`) need no repair:
/// names are compared folded.
const ACCENTED_NAME_WORDS: &[&str] = &[
    "Hôtel",
    "Château",
    "Pâtisserie",
    "Crêperie",
    "Rôtisserie",
    "Brûlerie",
    "Frères",
    "Maître",
    "Côte",
    "Forêt",
    "Bäckerei",
    "Bücherei",
    "Bücher",
    "Mühle",
    "Brücke",
];

/// The word as printed, where it is one of `ACCENTED_NAME_WORDS` with its accented
/// letter misread; otherwise as read. The misread must be one or two characters that are
/// not letters (`é` aside), so that another real word ("Hostel", "Cite") is never
/// turned into one of these.
pub fn repair_accents(word: &str) -> String {
    let lower: Vec<char> = word.chars().flat_map(char::to_lowercase).collect();
    ACCENTED_NAME_WORDS
        .iter()
        .find_map(|name| misread_as(name, &lower).then(|| in_case_of(name, word)))
        .unwrap_or_else(|| word.to_string())
}

/// Whether `word` is `name` with each accented letter (`é` aside) misread as one or two
/// characters that are neither letters nor `é`, the one accented letter the engine has.
/// `word` is in lower case.
fn misread_as(name: &str, word: &[char]) -> bool {
    let misread = |c: &&char| (!c.is_alphabetic() || **c == 'é') && !c.is_whitespace();
    let mut at = 0;
    let mut repaired = false;
    for letter in name.chars().flat_map(char::to_lowercase) {
        if letter.is_ascii() || letter == 'é' {
            if word.get(at) != Some(&letter) {
                return false;
            }
            at += 1;
        } else {
            // None taken: the plain letter ("Hotel") or a real accent ("Hôtel"), which
            // is how the name may be printed.
            let taken = word
                .get(at..)
                .unwrap_or_default()
                .iter()
                .take(2)
                .take_while(misread)
                .count();
            if taken == 0 {
                return false;
            }
            at += taken;
            repaired = true;
        }
    }
    repaired && at == word.len()
}

/// `name` in capitals where `word` was printed in capitals.
fn in_case_of(name: &str, word: &str) -> String {
    let capitals = word.chars().filter(|c| c.is_alphabetic()).count() >= 2
        && word
            .chars()
            .filter(|c| c.is_alphabetic())
            .all(char::is_uppercase);
    if capitals {
        name.to_uppercase()
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The label of a line as printed.
    fn l(text: &str) -> Option<Label> {
        label(&fold(text))
    }

    #[test]
    fn lines_are_labelled_in_every_language() {
        assert_eq!(l("TOTAL TTC"), Some(Label::Total(0)));
        assert_eq!(l("Total HT"), Some(Label::Subtotal));
        assert_eq!(l("Total s/ VA  EUR 150,28"), Some(Label::Subtotal));
        assert_eq!(l("Grand Total"), Some(Label::Total(0)));
        assert_eq!(l("Zwischensumme"), Some(Label::Subtotal));
        assert_eq!(l("Rückgeld"), Some(Label::Change));
        assert_eq!(l("Ruckgeld"), Some(Label::Change));
        assert_eq!(l("Espèces reçues"), Some(Label::Cash));
        assert_eq!(l("Totale complessivo"), Some(Label::Total(0)));
        assert_eq!(l("Te betalen"), Some(Label::Total(0)));
        assert_eq!(l("Sales Tax"), Some(Label::Tax));
        assert_eq!(l("inkl. MwSt 19%"), Some(Label::Tax));
        assert_eq!(l("Summe"), Some(Label::Total(1)));
        assert_eq!(l("VISA ****1234"), Some(Label::Card));
        assert_eq!(l("POS  98,00 EUR"), Some(Label::Card));
        assert_eq!(l("Sales ta× 19%  92.23"), Some(Label::Tax));
        assert_eq!(l("Tax× 20%  $5.07"), Some(Label::Tax));
        assert_eq!(l("Positano  12,00"), None);
        assert_eq!(l("Barcode 12345"), None);
        assert_eq!(l("Multiple items"), None);
        assert_eq!(l("Qty Item  Price  Amount"), None);
        assert_eq!(l("Menge Artikel Preis Betrag"), None);
        assert_eq!(l("AMOUNT  kr. 276.22"), Some(Label::Total(3)));
        assert_eq!(l("Total price 12.00"), Some(Label::Total(1)));
        assert_eq!(l("Service charge 12.5%  4.20"), Some(Label::Tip));
        assert_eq!(l("Coperto  2,00"), Some(Label::Tip));
        assert_eq!(l("Base  355,24"), Some(Label::Subtotal));
        assert_eq!(l("Wpłata  PLN 160,00"), Some(Label::Cash));
    }

    #[test]
    fn a_phrase_with_marks_or_more_spaces_between_its_words_is_still_the_phrase() {
        assert_eq!(l("Net. amount  1,340.12"), Some(Label::Subtotal));
        assert_eq!(l("11,764  Amount  Due"), Some(Label::Total(0)));
        assert_eq!(l("Sub. total 12,00"), Some(Label::Subtotal));
        assert_eq!(l("Total: HT 12,00"), Some(Label::Subtotal));
        // A hyphen read as another mark.
        assert_eq!(l("EC=Cash  71.41"), Some(Label::Card));
        // Words apart are no phrase.
        assert_eq!(l("Net weight 2 kg, amount"), Some(Label::Total(3)));
    }

    #[test]
    fn a_long_label_word_with_one_letter_misread_still_labels_its_line() {
        assert_eq!(l("Twischensumme  939,88"), Some(Label::Subtotal));
        assert_eq!(l("2wischensumme"), Some(Label::Subtotal));
        assert_eq!(l("Kartenzahiung 1033,87"), Some(Label::Card));
        assert_eq!(l("Gesamtbtrag 875,76"), Some(Label::Total(0)));
        assert_eq!(l("Trinkgeldd 12,20"), Some(Label::Tip));
        // Two letters off, or a short word one letter off, is no label.
        assert_eq!(l("Kartenzahiu, 1033,87"), None);
        assert_eq!(l("Tipp 2,00"), None);
        assert_eq!(l("Cafe 2,00"), None);
        // Wording as printed comes first: this line is the total, whatever else is near.
        assert_eq!(l("Summe Kartenzahiung"), Some(Label::Total(1)));
    }

    #[test]
    fn a_phrase_whose_spaces_ocr_lost_still_labels_its_line() {
        assert_eq!(l("AREGLER  130,66 EUR"), Some(Label::Total(0)));
        assert_eq!(l("Zuzahlen 12,00"), Some(Label::Total(0)));
        assert_eq!(l("Apagar"), Some(Label::Total(1)));
        assert_eq!(l("Subtotal 12,00"), Some(Label::Subtotal));
        // Printed apart, the phrase comes first; one word is never a phrase run together.
        assert_eq!(l("A regler 12,00"), Some(Label::Total(0)));
        // The last word of a phrase a letter off.
        assert_eq!(l("A RECLER.5703,61"), Some(Label::Total(0)));
        assert_eq!(l("Te betaien  12,00"), Some(Label::Total(0)));
        assert_eq!(l("Recler 12,00"), None);
        // Greek letters read for the Latin ones they look like.
        assert_eq!(l("Tοtal  12,00"), Some(Label::Total(1)));
        // A code run into the label.
        assert_eq!(l("TOTALEUR  73,45"), Some(Label::Total(1)));
        assert_eq!(l("Zu zahlenchf  73,45"), Some(Label::Total(0)));
        assert_eq!(l("TOTALEEURO  €33.43"), Some(Label::Total(1)));
        // Digits read for the letters they look like.
        assert_eq!(l("Tota1 HT  EUR 458,48"), Some(Label::Subtotal));
        assert_eq!(l("T0TAL  12,00"), Some(Label::Total(1)));
        // A word's first `1` its capital `I`: the items' total, no total.
        assert_eq!(l("1tems tota1  125.03 US0"), Some(Label::Subtotal));
        // Three in a long word, one letter still off (`l` for `i`).
        assert_eq!(l("Zw15chen5umme  C0 .24.66"), Some(Label::Subtotal));
        assert_eq!(l("Ref 12345  12,00"), None);
        assert_eq!(l("Art.-Nr. 1058  12,00"), None);
        assert_eq!(l("Totalpreis 12,00"), None);
    }

    #[test]
    fn a_label_whose_first_letters_a_cropped_margin_took_still_labels_its_line() {
        assert_eq!(l("ropina  5,61"), Some(Label::Tip));
        assert_eq!(l("ubtotal  45,61"), Some(Label::Subtotal));
        assert_eq!(l("OTALAPAGAR  €61,71"), Some(Label::Total(1)));
        // Too little left to tell (`otal`), a word that ends two label words alike
        // (`ontant`: montant or contant), an item's word, or a letter lost elsewhere.
        assert_eq!(l("otal  5,61"), None);
        assert_eq!(l("ontant  5,61"), None);
        assert_eq!(l("Pastel de nata  5,61"), None);
        assert_eq!(l("Prpina  5,61"), None);
        assert_eq!(l("Porto"), None);
    }

    #[test]
    fn a_label_word_whose_j_lost_its_tail_still_labels_its_line() {
        assert_eq!(l("Gorieta  EUR 9.92"), Some(Label::Tip));
        assert_eq!(l("Gor(eta  35.84"), Some(Label::Tip));
        assert_eq!(l("Tarieta  12,00"), Some(Label::Card));
        assert_eq!(l("Galeta  12,00"), None);
    }

    #[test]
    fn a_label_word_split_in_two_still_labels_its_line() {
        assert_eq!(l("Gor jeta  34,34"), Some(Label::Tip));
        assert_eq!(l("Wechsel geld  3,10"), Some(Label::Change));
        // Two words that make no label word together.
        assert_eq!(l("Pastel de nata  34,34"), None);
    }

    #[test]
    fn an_umlaut_read_as_other_letters_still_labels_its_line() {
        for line in [
            "Riickgeld 6,01",
            "Rickgeld",
            "Zuriick 0,42",
            "Zurtick",
            "Zurdck",
        ] {
            assert_eq!(l(line), Some(Label::Change), "{line}");
        }
        // The umlaut's place holds one or two letters, not a word.
        assert_eq!(l("Zur Stadtbrucke 3,00"), None);
        assert_eq!(l("Zurck 3,00"), None);
    }

    #[test]
    fn an_accented_letter_the_engine_cannot_read_is_put_back() {
        assert_eq!(repair_accents("H6tel"), "Hôtel");
        assert_eq!(repair_accents("Hétel"), "Hôtel");
        assert_eq!(repair_accents("Hé6tel"), "Hôtel");
        assert_eq!(repair_accents("H6TEL"), "HÔTEL");
        assert_eq!(repair_accents("Ch@teau"), "Château");
        assert_eq!(repair_accents("B6ckerei"), "Bäckerei");
        // Printed without the accent, or another word: left as read.
        for word in [
            "Hotel", "HOTEL", "Hostel", "Hötel", "Backerei", "Cite", "Hôtel", "H6tels",
        ] {
            assert_eq!(repair_accents(word), word);
        }
    }
}
