use super::*;
use chrono::NaiveDate;

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

/// The day the receipts of these tests were uploaded.
fn uploaded() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
}

/// A receipt's text read for an organization in euros, uploaded on [`uploaded`].
fn read(text: &str) -> Extraction {
    extract(text, eur(), uploaded())
}

fn total(e: &Extraction) -> Option<String> {
    e.total
        .map(|m| format!("{} {}", m.amount_string(), m.currency().code()))
}

#[test]
fn the_total_is_not_the_subtotal_the_tax_or_the_change() {
    let text = "CAFE NERO\n12 High Street\n03/04/2026 12:31\nLatte 3.20\nMuffin 2.60\n\
                Subtotal 5.80\nVAT 20% 0.97\nTOTAL £5.80\nCash 10.00\nChange 4.20\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("5.80 GBP"));
    assert_eq!(e.merchant.as_deref(), Some("CAFE NERO"));
    assert_eq!(e.tax.as_deref(), Some("0.97"));
    // 03/04 with pounds: day first.
    assert_eq!(e.date, NaiveDate::from_ymd_opt(2026, 4, 3));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_total_phrase_that_lost_its_first_word_still_names_the_total() {
    // "Da pagare" and "Te betalen" with "Da" and "Te" torn off.
    for (label, want) in [("Pagare", "202.25 GBP"), ("betalen", "202.25 GBP")] {
        let text = format!(
            "Pizzeria del Corso\n123 Main St\nLondon\n2024-12-25\nPenna 36,82\n\
             Parcheggio 97,86\nBollo 57,94\nVoucher 155,00\n{label} 202,25\nGrazie\n"
        );
        assert_eq!(total(&read(&text)).as_deref(), Some(want), "{label}");
    }
}

#[test]
fn net_a_payer_with_its_first_words_garbled_is_the_total() {
    // `à` read as `&`, and the `HT` of the total before tax lost.
    let text = "Brasserie Martin\nWarszawa\n2024/05/16\nCafé creme 100,00\n\
                Total ur 100,00\nTVA 20% 20,00\nNet & payer 120,00 PLN\nA bientôt\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("120.00 PLN"));
    assert!(e.confidence["total"] >= 0.9, "{:?}", e.confidence);
}

#[test]
fn amounts_in_either_notation() {
    let e = read("Bäckerei Huber\n24.12.2025\nSumme EUR 1.234,56\n");
    assert_eq!(total(&e).as_deref(), Some("1234.56 EUR"));
    assert_eq!(e.date, NaiveDate::from_ymd_opt(2025, 12, 24));
    let e = read("Ramen Ya\n2026-01-15\nTotal ¥1,200\n");
    assert_eq!(total(&e).as_deref(), Some("1200 JPY"));
}

#[test]
fn grand_total_beats_total_and_the_last_total_line_wins() {
    let e = read("Hotel Adler\nTotal 100.00\nTip 15.00\nGrand Total 115.00 USD\n");
    assert_eq!(total(&e).as_deref(), Some("115.00 USD"));
    let e = read("Shop\nTotal 10.00\nTotal 12.00\n");
    assert_eq!(
        total(&e).as_deref(),
        Some("12.00 EUR"),
        "the organization's currency"
    );
}

#[test]
fn the_merchant_is_read_from_the_words_ocr_was_sure_of_and_the_rest_from_every_word() {
    // A photo's table read as words above the name and beside it; the engine doubted them,
    // and the `zł` it doubted too is still the currency.
    let text = "Wee\nBar Mazur  Be?\nul. Długa 5\nRazem  35,50 zł\n";
    let sure = "Bar Mazur\nul. Długa 5\nRazem  35,50\n";
    let e = extract_read(text, sure, eur(), uploaded());
    assert_eq!(e.merchant.as_deref(), Some("Bar Mazur"));
    assert_eq!(total(&e).as_deref(), Some("35.50 PLN"));
    // Read from every word, the doubted speck beside the name joins it.
    assert_eq!(read(text).merchant.as_deref(), Some("Bar Mazur Be"));
    // The first word of the name doubted: the name is still whole, without the specks
    // beside it.
    let text = "Wee\nhee. Caffetteria Bianchi  Be?\nVia Roma 4\nTotale  35,50\n";
    let sure = "Bianchi\nVia Roma 4\nTotale  35,50\n";
    let e = extract_read(text, sure, eur(), uploaded());
    assert_eq!(e.merchant.as_deref(), Some("Caffetteria Bianchi"));
}

#[test]
fn the_merchant_is_the_first_line_that_reads_like_a_name() {
    let e = read("Hotel Adler\nTel. 0711 123456\nTotal 90.00\n");
    assert_eq!(e.merchant.as_deref(), Some("Hotel Adler"));
    let e = read("TAX! ROMA\nTotal 20.00\n");
    assert_eq!(e.merchant.as_deref(), Some("TAXI ROMA"));
    let e = read("TAX| ROMA\nTotal 20.00\n");
    assert_eq!(e.merchant.as_deref(), Some("TAXI ROMA"));
    let e = read("RECEIPT\n*** Joe's Diner ***\n555-1234\nTotal 9.99\n");
    assert_eq!(e.merchant.as_deref(), Some("Joe's Diner"));
    // What a photo's background reads as, above the name and its address.
    let e = read("awe\nThe Oakwood Grill\n10 Main St\nToronto, ON, Canada\nTotal 9.99\n");
    assert_eq!(e.merchant.as_deref(), Some("The Oakwood Grill"));
    let e = read("Ines\noa NT NT BRIN ier\nCafé Zur Post\nBahnhofstraße 3\nTotal 9.99\n");
    assert_eq!(e.merchant.as_deref(), Some("Café Zur Post"));
    let e = read("j Farmacia San Juan\n124 Main St\nTotal 9.99\n");
    assert_eq!(e.merchant.as_deref(), Some("Farmacia San Juan"));
    // A digit read for a letter at a word's edge; a number that is a word stays.
    let e = read("0akwood Hotel\nTotal 9.99\n");
    assert_eq!(e.merchant.as_deref(), Some("Oakwood Hotel"));
    let e = read("The Maple Gril1\nTotal 9.99\n");
    assert_eq!(e.merchant.as_deref(), Some("The Maple Grill"));
    let e = read("Metzgerei BrandI\nTotal 9.99\n");
    assert_eq!(e.merchant.as_deref(), Some("Metzgerei Brandl"));
    let e = read("TAXI\nTotal 9.99\n");
    assert_eq!(e.merchant.as_deref(), Some("TAXI"));
    let e = read("Area51 Diner\nTotal 9.99\n");
    assert_eq!(e.merchant.as_deref(), Some("Area51 Diner"));
    // The article of a name in small letters, its `l` read as a `1` or an `I`; a name in
    // capitals keeps its two capitals.
    let e = read("Supermercado E1 Puerto\nTotal 9.99\n");
    assert_eq!(e.merchant.as_deref(), Some("Supermercado El Puerto"));
    let e = read("Bar EI Puerto\nTotal 9.99\n");
    assert_eq!(e.merchant.as_deref(), Some("Bar El Puerto"));
    let e = read("BAR AI FORNO\nTotal 9.99\n");
    assert_eq!(e.merchant.as_deref(), Some("BAR AI FORNO"));
    // The name lost: the city or the country below it is no name.
    let e = read("42 Rua Augusta\nLisboa\nPortugal\nTotal 9.99\n");
    assert_eq!(e.merchant, None);
    let e = read("St James Café\nRue de Rivoli 4\nTotal 9.99\n");
    assert_eq!(e.merchant.as_deref(), Some("St James Café"));
    let e = read("\n\n");
    assert_eq!(e.merchant, None);
    assert_eq!(e.total, None);
    assert!(needs_review(&e));
}

// The failure kinds seen on receipts drawn outside the project (issue 14), as text.

#[test]
fn cldr_dollar_symbols_name_their_currency() {
    for (printed, code) in [
        ("CA$", "CAD"),
        ("A$", "AUD"),
        ("NZ$", "NZD"),
        ("HK$", "HKD"),
        ("MX$", "MXN"),
        ("R$", "BRL"),
    ] {
        let e = read(&format!("Shop\n2026-01-15\nTotal {printed}12.50\n"));
        assert_eq!(total(&e), Some(format!("12.50 {code}")), "{printed}");
    }
    let e = read("Shop\n2026-01-15\nTotal 12,50 zł\n");
    assert_eq!(total(&e).as_deref(), Some("12.50 PLN"));
    let e = read("Shop\nZürich, Schweiz\n2026-01-15\nTotal Fr. 12.50\n");
    assert_eq!(total(&e).as_deref(), Some("12.50 CHF"));
}

#[test]
fn a_shared_symbol_is_read_by_the_country_or_marked_unsure() {
    let e = read("Shop\nOslo, Norge\n2026-01-15\nTotal kr 120,00\n");
    assert_eq!(total(&e).as_deref(), Some("120.00 NOK"));
    assert!(!needs_review(&e));
    let e = read("Shop\n2026-01-15\nTotal $12.50\n");
    assert_eq!(total(&e).as_deref(), Some("12.50 USD"));
    assert!(
        needs_review(&e),
        "a bare $ with no country: {:?}",
        e.confidence
    );
    // The country's name abbreviated with its points.
    for country in ["U.S.A", "U.S.A."] {
        let e = read(&format!(
            "Shop\nDenver CO\n{country}\n2026-01-15\nTotal $12.50\n"
        ));
        assert_eq!(total(&e).as_deref(), Some("12.50 USD"));
        assert!(!needs_review(&e), "{country}: {:?}", e.confidence);
    }
}

#[test]
fn a_shared_symbol_on_the_total_line_against_a_mark_elsewhere_goes_to_a_person() {
    // `kr.` on the total's line; a `€` OCR made of something at the foot of the page.
    let text = "Libreria Mediterraneo\n100 Calle Mayor\n14-05-24\nTotal a pagar kr.\n\
                4024,16\nGracias\n€\n";
    let e = read(text);
    assert_eq!(e.confidence.get("currency"), Some(&0.6));
    assert!(needs_review(&e));
    // A mark elsewhere that the total's symbol allows confirms it.
    let e = read("Shop\n14-05-24\nTotal kr. 4024,16\nDKK 4024,16\n");
    assert_eq!(total(&e).as_deref(), Some("4024.16 DKK"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_date_after_the_upload_goes_to_a_person() {
    // 2026 read as 2028: a date no receipt uploaded today can bear.
    let text = "Shop\n28/06/2028\nTotal EUR 12,50\n";
    let e = read(text);
    assert_eq!(e.date, NaiveDate::from_ymd_opt(2028, 6, 28));
    assert!(needs_review(&e), "{:?}", e.confidence);
    // The next day is allowed: the till's clock may be a time zone ahead.
    let e = read("Shop\n2026-12-04\nTotal EUR 12,50\n");
    assert_eq!(e.confidence.get("date"), Some(&0.95));
}

#[test]
fn a_date_years_before_the_upload_goes_to_a_person() {
    // "19/12/2025" with its year cut off by the photo's edge.
    let e = read("Shop\nDate: 19/12/20\nTotal EUR 12,50\n");
    assert_eq!(e.date, NaiveDate::from_ymd_opt(2020, 12, 19));
    assert!(needs_review(&e), "{:?}", e.confidence);
    // Five years to the day is still a date a claim may bear.
    let e = read("Shop\n2021-12-03\nTotal EUR 12,50\n");
    assert_eq!(e.confidence.get("date"), Some(&0.95));
    let e = read("Shop\n2021-12-02\nTotal EUR 12,50\n");
    assert_eq!(e.confidence.get("date"), Some(&LONG_BEFORE_UPLOAD));
}

#[test]
fn a_confirmed_total_that_another_line_reads_longer_goes_to_a_person() {
    // The subtotal and the total both lost their leading "3."; the card line did not.
    let text = "Buchhandlung Am Markt\nStockholm, Sverige\n24/06/2025\nDruckerpapier 928,00\n\
                Kugelschreiber 1.039,00\nZwischensumme 967,00\nRabatt -396,70\n\
                Total 570,30\nEC-Karte ****9560 3.570,30\n";
    let e = read(text);
    assert_eq!(e.confidence.get("total"), Some(&0.6));
    assert!(needs_review(&e));
    // A card line that agrees leaves the confirmed total sure.
    let text = text.replace("3.570,30", "570,30");
    let e = read(&text);
    assert_eq!(e.confidence.get("total"), Some(&0.97));
}

#[test]
fn a_misread_total_is_repaired_by_the_arithmetic() {
    let text = "Corner Shop\n2026-01-15\nSubtotal £181.00\nTax £18.10\nTotal £L9%.10\n\
                Cash £210.00\nChange £10.90\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("199.10 GBP"));
    let text = "Corner Shop\n2026-01-15\nSubtotal £181.00\nTax £18.10\nTotal £199.18\n\
                Cash £210.00\nChange £10.90\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("199.10 GBP"));
    // Filled in, for a person to confirm: the two lines that agree may be the misread
    // ones, as often as the total line is.
    assert_eq!(e.confidence.get("total"), Some(&MISREAD_REPAIRED));
    assert!(needs_review(&e));
}

#[test]
fn two_ways_to_another_value_outweigh_a_total_only_the_items_confirm() {
    // "Total HT" (before the tip) with its "HT" on a row of its own, and the amount due
    // lost: the items confirm the first, cash − change and the items plus the tip the
    // amount due.
    let text = "Café Dupont\nSeoul, Korea\n13.04.26\nJus d'orange 9 650\nCafé crème 67 160\n\
                Total 76 810\nHT\nPourboire 11 522\nMontant dû\nEspèces 90 000\n\
                Monnaie rendue 1 668\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("88332 KRW"));
    assert!(needs_review(&e));
}

#[test]
fn a_currency_sign_read_as_letters_leaves_the_amount_readable() {
    let text = "Gasthaus Zur Post\nSydney, Australia\n15/03/2026\nSchnitzel 22,96\nBier 26,81\n\
                Zu zahlen As49,77\nBar 50,00\nWechselgeld 0,23\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("49.77 AUD"));
    assert_eq!(e.confidence.get("total"), Some(&0.97));
    // Where nothing else names the currency, the letters do, for a person to confirm.
    let e = read(&text.replace("Sydney, Australia", "12 George Street"));
    assert_eq!(total(&e).as_deref(), Some("49.77 AUD"));
    assert_eq!(e.confidence.get("currency"), Some(&MISREAD_SIGN));
}

#[test]
fn the_items_added_up_confirm_a_total_and_a_lost_point_is_found() {
    let text = "Maple Hotel\n2026-01-15\n2 x 35.12\nRoom 70.24\nBreakfast 12.00\n\
                AMOUNT HKD 82.24\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("82.24 HKD"));
    assert_eq!(e.confidence.get("total"), Some(&0.97));
    let text = "Grill\n2024-08-12\nNet amount 39.01\nVAT 19% 741\nGratuity 7.02\n\
                Total CHF 53.44\n";
    assert_eq!(read(text).confidence.get("total"), Some(&0.97));
    let text = "Grill\n2024-08-12\nSteak 40.00\nTotal CHF 4.00\n";
    assert!(needs_review(&read(text)), "a total below an item");
}

#[test]
fn yen_with_thousands_separators() {
    let e = read("Ramen Ya\nTokyo, Japan\n2026/01/15\nGRAND TOTAL ¥8 ,040\n");
    assert_eq!(total(&e).as_deref(), Some("8040 JPY"));
}

#[test]
fn totals_in_six_languages() {
    for (text, want) in [
        (
            "Bäckerei\n24.12.2025\nZwischensumme 10,00\nGesamtbetrag 11,90 €\n",
            "11.90 EUR",
        ),
        (
            "Café\n24.12.2025\nTotal HT 10,00\nTVA 20% 2,00\nTOTAL TTC 12,00 €\n",
            "12.00 EUR",
        ),
        (
            "Bar\n24.12.2025\nBase imponible 10,00\nTotal a pagar 12,10 EUR\n",
            "12.10 EUR",
        ),
        (
            "Trattoria\n24.12.2025\nSubtotale 10,00\nTotale complessivo 10,00 €\n",
            "10.00 EUR",
        ),
        (
            "Eetcafé\n24.12.2025\nSubtotaal 10,00\nTe betalen € 10,00\nPin 10,00\n",
            "10.00 EUR",
        ),
    ] {
        assert_eq!(total(&read(text)).as_deref(), Some(want), "{text}");
    }
}

#[test]
fn the_totals_sign_and_the_country_outweigh_a_stray_mark() {
    // `NZ$` read as a bare `$`, and a `£` OCR made of a smudge in the phone number.
    let e = read(
        "Blue Bottle Coffee\n146 Calle Mayor\nAuckland\nTel +70 435 £\n25/6/24\n\
         Green tea 70.18\nBananas 38.81\nSub-total 108.99\nAMOUNT $108.99\nCash 110.00\n",
    );
    assert_eq!(total(&e).as_deref(), Some("108.99 NZD"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
    // A code below the total and a stray `£` count once each: the country's wins, and a
    // person confirms.
    let e = read(
        "Brasserie\n149 Dorpsstraat\nSydney NSW, Australia\n22.08.2025\n- = £\n\
         Sous-total 6 034,47\nNet a payer 6 034,47\nAUD\n",
    );
    assert_eq!(total(&e).as_deref(), Some("6034.47 AUD"));
    assert!(needs_review(&e));
    // `Rs` as Indian tills print it, without the point: beside the total it outweighs
    // a `£` OCR made of the merchant's `El`.
    let e = read(
        "Farmacia £1 Sol\n82 Calle Mayor\n2025/03/30\nSubtotal 1.971,50\n\
         Importe total Rs 1.971,50\nPago con tarjeta 1.971,50\n",
    );
    assert_eq!(total(&e).as_deref(), Some("1971.50 INR"));
}

#[test]
fn a_symbol_of_another_countrys_currency_goes_to_a_person() {
    // ₹ is beyond the engine, which read it as €: the address says India.
    let e = read(
        "Bar Roma\n150 rue de la Paix\nMumbai\n05-09-2026\nImporto €57249,00\nBancomat 57249,00\n",
    );
    assert_eq!(e.confidence.get("currency"), Some(&0.6));
    assert!(needs_review(&e));
    // A symbol OCR lost entirely: the city names the currency.
    let e = read(
        "The Golden Gate Grill\n113 Calle Mayor\nSeoul\n2025-04-22\nSubtotal 854,360\n\
         GST 19% 162,328\nTotal to pay 1,016,688 []\nMastercard ****6991 1,016,688\n",
    );
    assert_eq!(total(&e).as_deref(), Some("1016688 KRW"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn an_item_tables_head_is_no_total_and_its_first_price_none_either() {
    let text = "Apotheek De Gouden Leeuw\n2026/01/29\nQty Item  Price  Amount\n\
                Appeltaart  17540  35080\nKoffie  12100  12100\nSubtotaal  47180\n\
                Totaal\nContant betaald  50000\nWisselgeld  2820\n";
    let e = read(text);
    assert_eq!(
        e.total.map(|m| m.amount_string()).as_deref(),
        Some("47180.00")
    );
    assert_eq!(
        e.confidence.get("total"),
        Some(&0.9),
        "proven, the line's amount lost"
    );
}

#[test]
fn points_ocr_lost_or_spaced_are_put_back() {
    let text = "Harbor Diner\nWarszawa, Polska\n2024-05-30\nBananas 226 44\nLatte 138 52\n\
                Subtotal 364 96\nGST 10% 36 50\nTotal PLN 401 46\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("401.46 PLN"));
    assert_eq!(e.confidence.get("total"), Some(&0.97));
    let text = "Gasthaus\nWien, Osterreich\n12.03.2024\nBrezel 120,00\nNettobetrag 646 ,37\n\
                Gesamt €646 , 37\nGegeben 650,00\nRuckgeld 3,63\n";
    assert_eq!(total(&read(text)).as_deref(), Some("646.37 EUR"));
}

#[test]
fn a_total_whose_label_was_lost_is_the_amount_the_subtotal_and_tax_add_up_to() {
    // From a photo: the `Totale` label torn away, its amount left on a line of its own.
    let text = "Farmacia Centrale\n168 Main St\nMilano\n23/08/2025\nSpremuta 10,82\n\
                Insalata 33,36\nImponibile  136,38\ndi cui IVA 21%  28,64\n165,02\n\
                Grazie e arrivederci\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("165.02 EUR"));
    assert!(e.confidence.get("total").is_some_and(|c| *c < REVIEW_BELOW));
}

#[test]
fn a_sign_read_as_a_digit_or_digits_lost_to_a_leader_do_not_make_the_total() {
    let text = "Harbor Diner\n175 Via Roma\nSeoul\n11/03/2024\nSub-total 35,530\n\
                GST 22% 7,817\nTotal to pay  43,347 2\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("43347 KRW"));
    let text = "Books\nOslo, Norge\n2025-07-13\nSub-total 12,222.20\nDiscount -1,222.22\n\
                AMOUNT  Oe a big ebiel KE LOy 999,98\nVISA ****9738  10,999.98\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("10999.98 NOK"));
    assert_eq!(
        e.confidence.get("total"),
        Some(&0.9),
        "repaired from two proofs"
    );
}

#[test]
fn dollars_on_a_receipt_in_another_language_leave_the_dates_order_open() {
    let text = "Café Saint-Michel\n12 rue de la Paix\nDate : 05/07/2024\nSous-total 1,24\n\
                TOTAL TTC US$ 1,50\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("1.50 USD"));
    assert!(e.confidence.get("date").is_some_and(|c| *c < REVIEW_BELOW));
    let text = "Diner\n12 Main St\nDate: 05/07/2024\nSubtotal 1.24\nTOTAL US$ 1.50\n";
    let e = read(text);
    assert_eq!(e.date, NaiveDate::from_ymd_opt(2024, 5, 7));
}

#[test]
fn amounts_on_rows_of_their_own_below_their_labels_prove_the_total() {
    let text = "Farmacia Roma\nVia Roma 5\nData 16.12.2025\nCaffe  990,90\nImponibile\n\
                2.431,08\nMancia\n364,66\nImporto  2.795,74\nPagamento elettronico\n2.795,74\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("2795.74 EUR"));
    assert!(e.confidence["total"] >= 0.9, "{:?}", e.confidence);
}

#[test]
fn amounts_printed_before_their_labels_prove_the_total() {
    let text = "Hotel Elm\n12 Main St\n08.02.2026\nBagel  17.40\nEspresso  350.10\n367.50\n\
                Sub-total\n36.75\nTip\nCard  404.25\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("404.25 EUR"));
    assert!(e.confidence["total"] >= 0.9, "{:?}", e.confidence);
    // Read with each label's own line alone, the card line is the only way to a total.
    let lines: Vec<Line> = text
        .lines()
        .map(|original| Line {
            original,
            folded: fold(original),
            label: label(&fold(original)),
            cleaned: clean(original),
            amounts: amounts(&clean(original)),
            marks: marks(original),
            heads_total_column: false,
        })
        .collect();
    assert!(total_read(&lines, &item_prices(&lines), None)
        .is_some_and(|(_, confidence, _)| confidence < 0.8));
}

#[test]
fn an_unlabelled_line_adding_up_the_items_is_their_subtotal_not_an_item() {
    let text = "The Grill\n64 High St\n30.09.2025\nTaxi fare  20.58\nPrinter paper  72.14\n\
                Notebook  22.80\nBuffet  22.20\n137.72\nBalance Due  GBP 137.72\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("137.72 GBP"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn items_alone_disagreeing_with_a_clear_total_line_is_weaker_doubt_for_a_person() {
    // One item's price lost: the items no longer add up to the total.
    let text = "Corner Shop\n5 Elm Road\n12.03.2026\nBread  2.40\nCheese  6.15\nMilk\n\
                Amount due  EUR 9.75\n";
    let weak = read(text);
    assert_eq!(total(&weak).as_deref(), Some("9.75 EUR"));
    assert!(needs_review(&weak), "{:?}", weak.confidence);
    // A subtotal line saying otherwise is strong doubt.
    let strong = read(&text.replace("Amount due", "Subtotal  8.55\nAmount due"));
    assert!(strong.confidence["total"] < weak.confidence["total"]);
    // So is a label whose amount was not read on its line: it may be the one disagreeing.
    let e = read(&text.replace("Amount due", "Subtotal\nAmount due"));
    assert!(e.confidence["total"] < weak.confidence["total"]);
}

#[test]
fn a_currency_sign_read_as_digits_before_the_total_is_undone() {
    // ₹ read as "7": the subtotal and cash less change both prove ₹12,290.50.
    let text = "Spice Route\n14 MG Road\nMumbai\n12/03/2025\nUSB cable 1,780.50\n\
                Sub-total 12,290.50\nTOTAL 712,290.50\nCash 12,500.00\nChange due 209.50\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("12290.50 INR"));
    assert_eq!(e.confidence.get("total"), Some(&0.9));
    // ₩ read as "1", and only the items say otherwise: filled in, for a person to confirm.
    let text = "Kingsway Market\n32 Jongno\nSeoul\nDate 14.01.2026\nSourdough bread  28,370\n\
                Printer paper  35,430\nGrand Total  163, 800\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("63800 KRW"));
    assert!(needs_review(&e), "{:?}", e.confidence);
    // A thousands digit of its own, or a sign the line kept, is no sign read as digits:
    // the subtotal and the card line lost it, as photos cut off their left edge.
    let text = "Apotheek Centraal\n172 Dorpsstraat\nTokyo\nDatum: 09.02.2024\nThee  523\n\
                Thee  120\nSubtotaal  643\n8.643 Totaalbedrag\nMaestro  643\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("8643 JPY"));
    assert!(needs_review(&e), "{:?}", e.confidence);
    let text = "Librairie Dupont\n111 Calle Mayor\nCiudad de México\nDate : 30 juin 2025\n\
                Croissant  571,14\nTotal HT  549,16\n$2549,16 TOTAL TTC\n\
                Carte bancaire  549,16\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("2549.16 MXN"));
    assert!(needs_review(&e), "{:?}", e.confidence);
    // A total line that merely ends in a shorter item's digits is no such misread.
    let e = read("Corner Shop\n5 Elm Road\n12.03.2026\nBread  2.40\nAmount due  EUR 12.40\n");
    assert_eq!(total(&e).as_deref(), Some("12.40 EUR"));
}

#[test]
fn a_total_and_card_line_that_lost_the_same_digits_to_the_subtotal_go_to_a_person() {
    let text = "The Kingsway Grill\n130 Main St\nWarszawa, Polska\n08/03/2026 09:28\n\
                Espresso  54.16\nSub-total  937.68\nDiscount  93.77\nTOTAL  43.91\n\
                VISA ****5134  43.91\n";
    let e = read(text);
    assert!(needs_review(&e), "{:?}", e.confidence);
    // Whole, the same lines confirm the total.
    let e = read(&text.replace("  43.91", "  843.91"));
    assert_eq!(total(&e).as_deref(), Some("843.91 PLN"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_repair_found_with_an_amount_above_its_label_is_filled_in_for_a_person() {
    // "Base imponible" split over two rows, its amount on the first: only read with the
    // amount above does the subtotal agree with the card against the total line's 3.
    let text = "Restaurante Los Olivos\nCiudad de México, México\nFecha: 06.04.24 17:31\n\
                Zumo 587,34\nde naranja87,34\nCerveza 272,16\n90,72\nBase 859,50\nimponible\n\
                Total a ¢ 359,50\nPagar\nTarjeta #443567 859,50\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("859.50 MXN"));
    assert_eq!(e.confidence.get("total"), Some(&MISREAD_REPAIRED));
}

#[test]
fn cents_torn_from_their_prices_confirm_no_total() {
    // Prices far right on a wide page, their whole parts and points lost: `09` + `81`
    // adds up to `90` as 8.09 + 0.81 does to 8.90.
    let e = read(
        "Golden Gate Pharmacy\n14 Dorpsstraat\nAustin, TX, United States\nMar 31, 2025\n\
         Parking 2h  31\nParking 2h  78\nSubtotal  09\nSales Tax  81\nAmount Due  90\n\
         Cash  10 00\nChange  10\n",
    );
    assert!(needs_review(&e), "{:?} {:?}", total(&e), e.confidence);
}

#[test]
fn a_change_line_whose_umlaut_was_misread_still_checks_the_total() {
    // Subtotal (tax included) and cash − change both say 23.99 against a misread 23.39.
    let text = "Lindenhof Apotheke\nLondon, United Kingdom\nDatum: 6. April 2026\n\
                Brezel 14,03\nKaffee 9,96\nZwischensumme 23,99\nSUMME 23,39\nGBP\n\
                inkl. MwSt 22% 4,33\nBar gegeben 30,00\nRiickgeld 6,01\n";
    assert_eq!(total(&read(text)).as_deref(), Some("23.99 GBP"));
}

#[test]
fn prices_a_row_below_their_labels_are_paired_back_when_two_ways_prove_it() {
    // Each label's own line shows the amount of the label above it: subtotal 180.40 plus
    // tax 36.08 and the card's 216.48 both prove the total.
    let text = "Harbor Stationers\nSydney NSW\nDate 05.07.2026\nPasta 2x 35.00 46.20\n\
                USB cable 70.00\nBallpoint pens 64.20\nSubtotal\nTax 180.40\n\
                Amount 36.08\nDue\nVISA ****4699 A$216.48\n216.48\nPlease come again\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("216.48 AUD"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
    // One way alone is no proof: the item above the total, a row apart, matches the
    // items added up by chance.
    let text = "Oakwood Hotel\nTokyo, Japan\nDate Jul 18, 2026\nLatte\n\
                Sparkling water 6,378\nGrand Total 6,858 JPY\n7,000\n142\n";
    assert_eq!(total(&read(text)).as_deref(), Some("6858 JPY"));
}

#[test]
fn a_sign_against_the_country_is_filled_in_as_the_countrys_currency_for_a_person() {
    // ₹ is beyond the English model: OCR reads it as `¥`.
    let e = read("Librairie Martin\nMumbai, India\n26.06.2024\nTotal ¥6569,00\n");
    assert_eq!(total(&e).as_deref(), Some("6569.00 INR"));
    assert_eq!(e.confidence.get("currency"), Some(&0.6));
    // A `$` in Copenhagen.
    let text = "Kingsway Diner\nKobenhavn, Danmark\n18.03.2024\nPrinter paper $21.08\n\
                Grand Total 2032.22\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("2032.22 DKK"));
    assert_eq!(e.confidence.get("currency"), Some(&0.6));
    // A code spelled out is no misreading: a euro total in Zurich stays in euros.
    let e = read("Hotel Adler\nZurich, Schweiz\n18.03.2024\nTotal EUR 45.00\n");
    assert_eq!(total(&e).as_deref(), Some("45.00 EUR"));
    assert_eq!(e.confidence.get("currency"), Some(&0.6));
    // A state after the city names the country.
    let e = read("Blue Bottle\nAustin, TX\n07/28/2025\nAMOUNT 715.04\n");
    assert_eq!(total(&e).as_deref(), Some("715.04 USD"));
    assert!(e.confidence["currency"] >= 0.8, "{:?}", e.confidence);
}

#[test]
fn a_total_line_the_tax_leads_to_a_later_one_is_the_subtotal() {
    // From a photo: `Subtotal` read as `total`.
    let text = "Golden Gate Diner\n110 Via Roma\nKowloon, Hong Kong\nMar 18, 2025\n\
                Caesar salad  4,152.64\nPrinter paper  217.60\ntotal  5,611. 68\n\
                VAT 10%  561. 17\nAMOUNT  $6,172.85\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("6172.85 HKD"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_total_line_with_its_point_lost_or_a_digit_added_is_what_the_others_prove() {
    // Two ways prove 4449.19, and the total line reads its digits without the point.
    let text = "Eetcafé de Vries\nKobenhavn, Danmark\n18/08/2025\nSubtotaal 4.943,54\n\
                Korting -494,35\nTotaal bedrag kr. 444919\nContant 4.480,00\nWisselgeld 30,81\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("4449.19 DKK"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
    // One way only: a person confirms what it proves.
    for (text, want) in [
        (
            "Maple Books\nStockholm, Sverige\n2026-03-04\nTaxi fare  57.40\nSEK 57.408 TOTAL\n",
            "57.40 SEK",
        ),
        (
            "Maple Pharmacy\nSydney NSW\n16.03.24\nBallpoint pens  43.31\nSub-total  43.31\n\
             AUD 43331 Total to pay\n",
            "43.31 AUD",
        ),
    ] {
        let e = read(text);
        assert_eq!(total(&e).as_deref(), Some(want));
        assert!(needs_review(&e), "{:?}", e.confidence);
    }
}

#[test]
fn what_was_paid_fills_in_a_total_line_that_lost_its_first_digits() {
    let text = "Trattoria da Mario\nLugano, Svizzera\n2024-01-15\nTiramisù  21.74\n\
                Importo  1.74\nIVA 22%  11.76\nPagamento elettronico  71.74\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("71.74 CHF"));
    assert!(needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn for_a_person_to_confirm_an_amount_printed_is_filled_in_before_a_sum() {
    // Each label's amount on the row below; the total's label misread (`à` as `&`, `y`
    // as `j`). The items added up are one guess, the printed amount that subtotal −
    // discount gives is the better one.
    let text = "Librairie Le Central\nKobenhavn, Danmark\n17-Nov-25\nStylo  190,96\n\
                Baguette  147,70\nTotal HT\n338,66\nRemise\n-16,93\nNet & pajer\n321,73 kr.\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("321.73 DKK"));
    assert!(needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_sign_read_as_letters_on_the_row_below_a_total_label_is_its_amount() {
    let text = "Harbor Hotel\nKowloon, Hong Kong\n2025-03-01\nRoom service  419.60\n\
                Tip  62.94\nAmount Due\nHKS482.54\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("482.54 HKD"));
}

#[test]
fn a_lone_total_label_meets_the_amount_with_the_currency_on_the_row_beside() {
    // From photos: the amount column a row off its labels, the total's amount (the one
    // printed with the currency) paired with the tip's label above, or the cash's below.
    for (text, want) in [
        (
            "Bar Los Olivos\nCiudad de México, México\n06.09.2024\nBoligrafo  2457,90\n\
             Subtotal  2457,90\nPropina  MXN 2704,19\nTOTAL\nIVA 21%  2704,19\n",
            "2704.19 MXN",
        ),
        (
            "Elm Street Stationers\nSydney NSW\n26/11/2025\nNotebook A5  19.01\n\
             GST 10%\n41.87\nGrand Total\nCash tendered  AU$460.78\n9.22\n",
            "460.78 AUD",
        ),
    ] {
        let e = read(text);
        assert_eq!(total(&e).as_deref(), Some(want));
        assert!(needs_review(&e), "{:?}", e.confidence);
    }
}

#[test]
fn wordings_of_other_tills_and_languages_name_the_total() {
    for label in [
        "Amount payable",
        "Please pay",
        "Order total",
        "GESAMTSUMME",
        "Endsumme",
        "Montant TTC",
        "A REGLER",
        "Total factura",
        "Totale documento",
        "TOT. COMPLESSIVO",
        "Te voldoen",
        "Eindtotaal",
        "Valor total",
        "Do zapłaty",
        "RAZEM",
        "Att betala",
        "TOTALT",
    ] {
        let text = format!(
            "Bokhandel Berg\nStorgatan 4\n12.03.2026\nKaffe  20,00\nBulle  25,00\n\
             {label}  45,00\nTack\n"
        );
        let e = read(&text);
        assert_eq!(total(&e).as_deref(), Some("45.00 EUR"), "{label}");
        assert!(e.confidence["total"] >= 0.9, "{label}: {:?}", e.confidence);
    }
    // The items added up before the amount to pay: its subtotal, not a second total.
    let e = read("Willow Cafe\n12.03.2026\nTea  2.50\nCake  3.00\nItems total  5.50\nService  0.55\nPlease pay  6.05\n");
    assert_eq!(total(&e).as_deref(), Some("6.05 EUR"));
}

#[test]
fn a_terminal_slip_with_its_card_named_and_masked_is_sure_of_its_one_amount() {
    let text = "Bramble Books\n28 Main St\nManchester\nSALE\nTID 68604415 MID 8904847944\n\
                21.06.2025  #3398\nMASTERCARD **** 5202\nAmount payable  £393.38\nAPPROVED\n\
                AUTH 153489 REF 713300\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("393.38 GBP"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
    // A shop called a bar is no cash line without its amount.
    let e = read(
        "Bar La Giralda\nCalle Mayor 3\nBilbao\nEspaña\n1 jul 2025 23:09\nA PAGAR  254,69 €\n",
    );
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_total_that_lost_its_point_in_a_currency_with_cents_goes_to_a_person() {
    // £214.47 read as 21441: nothing else on the slip says otherwise.
    let e = read("Ashford Deli\nLeeds\n21.06.25\nVISA **** 4072\nTOTAL  £21441\n");
    assert!(needs_review(&e), "{:?}", e.confidence);
    // Nor one with a cent's digit lost (€300.22 read as 30,2).
    let e = read("Salumeria Ferrari\nBologna\n03-03-2023\nCarta **** 7227\nTotale  EUR 30,2\n");
    assert!(needs_review(&e), "{:?}", e.confidence);
    // Yen have no cents: such a total is as printed.
    let e = read("Willow Cafe\nKyoto, Japan\n2025-06-21\nTOTAL  ¥2144\n");
    assert_eq!(total(&e).as_deref(), Some("2144 JPY"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn the_tax_summary_confirms_the_total_and_its_head_is_no_total() {
    // An item line lost: the items fall short of the total, the summary's gross is it.
    let text = "Fromagerie Girard\nRue Neuve 8\n31.12.23\nMadeleines  67,83\nCrêpe sucre  88,65\n\
                TOTAL TTC  160,00\nTaux  HT  TVA  TTC\n10%  145,45  14,55  160,00\nMerci\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("160.00 EUR"));
    assert!(e.confidence["total"] >= 0.9, "{:?}", e.confidence);
    // The tip outside the tax: the summary's gross plus the tip is the total, and the
    // `Total` of the summary's head is not read as a total with the gross below it.
    let text = "Taberna La Giralda\nCalle Mayor 3\n24.09.2023\nPropina  14,38\n\
                Total compra  158,20\nTipo  Base  Cuota  Total\n21%  118,00  25,82  143,82\nGracias\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("158.20 EUR"));
    assert!(e.confidence["total"] >= 0.9, "{:?}", e.confidence);
}

#[test]
fn a_due_date_is_not_the_receipts_date() {
    let invoice = "Osteria Marino\nVia Roma 4\nFattura n  2024-0991\nData fattura  11-10-2024\n\
                   Scadenza  10-11-2024\nAranciata  11,73\nTotale  11,73\n";
    assert_eq!(read(invoice).date, NaiveDate::from_ymd_opt(2024, 10, 11));
    // OCR lost the invoice's day: no date, for a person to fill in, rather than the due one.
    let lost = invoice.replace("11-10-2024", "-10-2024");
    assert_eq!(read(&lost).date, None);
    let due = "Boekhandel Smit\nVervaldatum: 04.06.2024\nTotaal  12,00\n";
    assert_eq!(read(due).date, None);
}

#[test]
fn a_date_below_the_invoice_date_ocr_garbled_goes_to_a_person() {
    // The invoice's date misread past reading and the due date's label past knowing: the
    // one date that reads is the due one, and no expense is made of it unasked.
    let invoice = "Lechner Drogerie\nRechnungs-Nr.  2024-0469\nRechungsdatum  2024-1104\n\
                   Fa9g am  2024-11-18\nSpezi  3  26,15  78,45\nGESAMTSUMME  78,45\n\
                   EC-Karte  78,45\n";
    let e = read(invoice);
    assert_eq!(e.date, NaiveDate::from_ymd_opt(2024, 11, 18));
    assert!(e.confidence["date"] < REVIEW_BELOW, "{:?}", e.confidence);
    assert!(needs_review(&e));
    // Read, the invoice's date is the date, as sure as ever; a label with no date
    // beside it (`Datum` over its own row) doubts nothing.
    let read_right = read(&invoice.replace("2024-1104", "2024-11-04"));
    assert_eq!(read_right.date, NaiveDate::from_ymd_opt(2024, 11, 4));
    assert!(read_right.confidence["date"] >= 0.9);
    let own_row = "Kiosk Huber\nDatum\n04.11.2024\nSpezi  3,50\nSumme  3,50\n";
    assert!(read(own_row).confidence["date"] >= 0.9);
    // Its label garbled too, a month's name no month reads in is still a date's shape.
    let named = invoice
        .replace("Rechungsdatum  2024-1104", "Rechungsdotum  28-FE8-2023")
        .replace("Fa9g am  2024-11-18", "Falig am  29-APR-2023");
    let e = read(&named);
    assert_eq!(e.date, NaiveDate::from_ymd_opt(2023, 4, 29));
    assert!(e.confidence["date"] < REVIEW_BELOW, "{:?}", e.confidence);
    let named_right = read(&named.replace("FE8", "FEB"));
    assert_eq!(named_right.date, NaiveDate::from_ymd_opt(2023, 2, 28));
    assert!(named_right.confidence["date"] >= 0.9);
}

#[test]
fn items_that_multiply_out_rival_a_total_only_a_card_line_repeats() {
    // The total's `0` read as `8` on its line and on the card's alike; every item line
    // multiplies out, and they add up to the total as printed.
    let text = "Gasthof Hofmann\n19-05-2024\nWeißbier\n1 x 21.93  21.93\nÄpfel lose\n\
                3 × 29.27  87.81\nOrdner A4\n2 × 1.61  3.22\nBetrag  112.86CHF\n\
                Girocard  112.86\n";
    let e = read(text);
    assert!(e.confidence["total"] < REVIEW_BELOW, "{:?}", e.confidence);
    // Read right, the card line and the items both prove it.
    let right = read(&text.replace("112.86", "112.96"));
    assert_eq!(total(&right).as_deref(), Some("112.96 CHF"));
    assert_eq!(right.confidence["total"], 0.97, "{:?}", right.confidence);
    // Items without their own arithmetic are weak doubt: one of them may be the misread
    // line, as often as not.
    let plain = text
        .replace("1 x 21.93  21.93", "21.93")
        .replace("3 × 29.27  87.81", "87.81")
        .replace("2 × 1.61  3.22", "3.22");
    assert_eq!(read(&plain).confidence["total"], 0.97);
}

#[test]
fn a_tax_summary_that_adds_up_to_the_total_but_for_one_digit_rivals_a_card_line() {
    // The total's `8` read as `6` on its line and on the card's alike; one item line does
    // not multiply out, and the tax summary's gross is misread too, but its net and tax
    // add up to 284.98.
    let text = "Huber Backstube\nHamburg\n06-MAI-2026 23:07:26\nRoggenbrot\n1 X 21,39  21,39\n\
                Kaffee Crema\n3 × 29,26  87,78\nKasebrotchen\n3 × 25,52  76,58\n\
                Apfelstrudel\n1 × 99,25  99,25\nRechnungsbetrag  264,98 EUR\n\
                Girocard  264.98\nSatz  Netto  MwSt  Brutto\n21%  235.52  49.46  284.08\n";
    let e = read(text);
    assert!(e.confidence["total"] < REVIEW_BELOW, "{:?}", e.confidence);
    // Read right, with the summary's net misread instead: its gross is the total.
    let right = read(
        &text
            .replace("264", "284")
            .replace("284.08", "284.98")
            .replace("235.52", "225.52"),
    );
    assert_eq!(total(&right).as_deref(), Some("284.98 EUR"));
    assert_eq!(right.confidence["total"], 0.97, "{:?}", right.confidence);
}

#[test]
fn a_card_line_named_by_its_terminal_checks_the_total() {
    // The `0` of 98,00 read as `1` on the total and on the taxable amount alike: the two
    // prove each other, and only the `POS` line, which tills print for a card payment,
    // says otherwise.
    let text = "Caffetteria Esposito\nMilano\n05/11/2025\nAranciata\n2 x 24,35  48,70\n\
                Pane  15,19\nGelato  34,11\nImponibile  98,01\nTotale da pagare  98,01\n\
                POS  98,00 EUR\n";
    let e = read(text);
    assert!(e.confidence["total"] < REVIEW_BELOW, "{:?}", e.confidence);
    // Read right, the card line makes it sure.
    let right = read(&text.replace("98,01", "98,00"));
    assert_eq!(total(&right).as_deref(), Some("98.00 EUR"));
    assert_eq!(right.confidence["total"], 0.97, "{:?}", right.confidence);
}

#[test]
fn a_card_that_paid_more_than_the_lines_prove_paid_a_charge_they_left_unread() {
    // The service charge's line and the total's are garbled; the items, the subtotal and
    // the tax summary prove 3,297.00, the card paid 3,791.55.
    let text = "Lakeview Cafe\nPraha\n20.10.2026 09:57\nBlueberry muffin\n\
                1x 171.50  CZK 171.50\nFries\n2x294.00  588.00 Kč\nBlueberry muffin\n\
                3 x589.00  1767.00 Kč\nA4 folder\n1x 770.50  CZK 770.50\n\
                Subtotal  CZK 3,297.00\nSenice charwe 1n%  AOA55.KE\nTotalsale  370155.\n\
                Debit card  3791.55 Kč\nRate  Net  Tax  Gross\n\
                5%  3140.00  157.00  3,297.00\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("3791.55 CZK"));
    assert!(e.confidence["total"] < REVIEW_BELOW, "{:?}", e.confidence);
    // Where the card paid what they prove, that is the total, and sure.
    let paid = read(&text.replace("3791.55", "3297.00"));
    assert_eq!(total(&paid).as_deref(), Some("3297.00 CZK"));
    assert!(paid.confidence["total"] >= 0.9, "{:?}", paid.confidence);
}

#[test]
fn a_total_that_lost_its_first_digit_to_its_label_is_what_the_lines_add_up_to() {
    // `4` of 414,70 run into the label's misread word; the items less the discount plus
    // the service add up to 414,70: that is filled in for a person to confirm.
    let text = "Cartoleria Rossi\nBologna\n13.08.2026 22:23\nAcqua frizzante\n\
                2 x 32,62  65,24\nFocaccia\n1 x 8,16  8,16\nRisotto\n2 x 31,43  62,86\n\
                Brioche\n3 x 7,72  23,16\nProsciutto crudo\n3 x 19,07  57,21\n\
                Acqua frizzante\n2 x 79,81  159,62\nProsciutto crudo\n1 x 31,54  31,54\n\
                Sconto  -37,52\nServizio  44,43\nImporto pagatd14,70\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("414.70 EUR"));
    assert!(e.confidence["total"] < REVIEW_BELOW, "{:?}", e.confidence);
}

#[test]
fn a_total_printed_nowhere_with_its_cents_lost_its_point() {
    // Every line that repeats the total lost its point alike, the total's own label on a
    // row above it: they prove each other, and 11164 euros is still a misreading.
    let text = "Papeterie Bergmann\n17.09.25 18:41\nVollmilch 1L  2927\nTesafilm  5.82\n\
                Zwischensumme  11164\nRechnungsbetrag\n11164\nEC-Cash  11164\n\
                Satz  Netto  MwSt  Brutto\n8.1%  103.27  8,37  11164\n";
    let e = read(text);
    assert!(e.confidence["total"] < REVIEW_BELOW, "{:?}", e.confidence);
    // With its cents on one of them, it is read as printed.
    let e = read(&text.replace("EC-Cash  11164", "EC-Cash  11164,00"));
    assert_eq!(total(&e).as_deref(), Some("11164.00 EUR"));
    assert!(e.confidence["total"] >= 0.9, "{:?}", e.confidence);
}

#[test]
fn an_unchecked_total_run_into_its_label_goes_to_a_person() {
    // A card slip: nothing checks its total, and the `5` of 538.66 went into the `g`.
    let slip = "Huber Backstube\nBern\n27/04/2025 08:39:07\nEC-Cash  ****  4464\n\
                Rechnungsbetrağ38.66  CHF\nZahlung erfolgt\n";
    let e = read(slip);
    assert_eq!(total(&e).as_deref(), Some("38.66 CHF"));
    assert!(e.confidence["total"] < REVIEW_BELOW, "{:?}", e.confidence);
    // Apart from its label, or after a currency's code, it is as sure as a slip's total.
    for printed in ["Rechnungsbetrag  538.66  CHF", "Betrag  CHF538.66"] {
        let e = read(&slip.replace("Rechnungsbetrağ38.66  CHF", printed));
        assert_eq!(total(&e).as_deref(), Some("538.66 CHF"));
        assert_eq!(e.confidence["total"], UNCHECKED, "{printed}");
    }
}

#[test]
fn a_quantity_line_with_the_items_amount_is_an_item() {
    // Each item over two rows, its amount after the unit price: the items add up to the
    // total, which they confirm.
    let text = "Caffetteria Esposito\nVia Roma 4\n18.12.2025\nTramezzino\n3 x 30,89  92,67\n\
                Pane\n1 x 28,51  28,51\nTOTALE  121,18\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("121.18 EUR"));
    assert_eq!(e.confidence["total"], 0.97, "{:?}", e.confidence);
}

#[test]
fn a_total_line_that_lost_one_digit_is_repaired_for_a_person() {
    // 10594.20 read as 1094.20; cash less change and the tax summary agree on the first.
    let text = "Papelería Morales\nCalle Mayor 3\n03.02.2023\nImporte a pagar  $1094.20\n\
                Efectivo  MXN 10600.00\nDevolución  $ 5.80 MXN\nTipo  Base  Cuota  Total\n\
                16%  9133.97  1460.23  10594.20\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("10594.20 MXN"));
    assert!(needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn an_item_or_a_date_with_a_number_first_is_no_street() {
    // Without a street, the name is the first line that reads as one.
    let text = "Copperfield Kitchen\nChicago, IL\nUSA\n*** ** *** **\n04/23/2026\n\
                1 Earl Grey  28.77\n2 Flat white  33.47\nTOTAL  62.24\n";
    assert_eq!(read(text).merchant.as_deref(), Some("Copperfield Kitchen"));
    let text =
        "Alimentari Esposito\nBellinzona\nSvizzera\n6 ago 2023  20:09\nPane  3,20\nTOTALE  3,20\n";
    assert_eq!(read(text).merchant.as_deref(), Some("Alimentari Esposito"));
}

#[test]
fn a_city_below_a_photos_doubted_background_names_the_country() {
    // Ten rows of the table above the paper, doubted, push `Bern` past the address's
    // lines; among the sure words it is the third. A stray `€` is OCR's.
    let noise = "Ki\nBe\naf sick\neet tees\npis\npy Rae\none\nis EN\nbe\nsr\n";
    let body = "Seidl Drogerie\nBern\n5 Mai 2025 13:17\nApfel lose  22.57\n\
                Kaffee  25.06 €\nEndsumme  47.63\n";
    let text = format!("{noise}{body}");
    let e = extract_read(&text, body, eur(), uploaded());
    assert_eq!(total(&e).as_deref(), Some("47.63 CHF"));
    assert!(needs_review(&e), "{:?}", e.confidence);
    // Read whole, with nothing doubted, the stray sign stood unopposed.
    assert_eq!(total(&read(&text)).as_deref(), Some("47.63 EUR"));
}

#[test]
fn a_total_label_naming_another_currency_than_its_amount_follows_the_receipt() {
    let text = "Fromagerie Girard\nLausanne\nPrix en CHF\n24.08.2023\nCidre brut  89.25\n\
                Tarte  63.91\nTOTAL EUR: 153.16 CHF\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("153.16 CHF"));
    assert!(e.confidence["currency"] >= 0.9, "{:?}", e.confidence);
    // Nothing else names either: a person decides.
    let e = read(
        "Fromagerie Girard\n24.08.2023\nCidre brut  89.25\nTarte  63.91\nTOTAL EUR: 153.16 CHF\n",
    );
    assert!(
        e.confidence["currency"] < REVIEW_BELOW,
        "{:?}",
        e.confidence
    );
    // The code and the sign of one currency are one mark.
    let e = read("Papeterie Rousseau\n19.08.2023\nCahier  44,64\nTOTAL EUR  € 44,64\n");
    assert_eq!(total(&e).as_deref(), Some("44.64 EUR"));
    assert!(e.confidence["currency"] >= 0.9, "{:?}", e.confidence);
}

#[test]
fn an_amount_on_its_own_row_belongs_to_one_label() {
    // `70331` below the total's label is the total's (its point lost); taken again by the
    // subtotal's label below it, it proved itself.
    let text = "Panificio Marino\nPrezzi in CHF\n23.09.2024\nPane  4.20\nGelato  78.70\n\
                Quaderno\nTotal document\n70331\nImponibile\nGrazie\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("703.31 CHF"));
    assert!(needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_total_printed_without_the_cents_of_every_price_gets_its_point_back() {
    let text = "Papelería Jiménez\nValencia\n28.03.26\nCafé  14,38 €\nMontadito  21,24 €\n\
                Cuaderno  22,16 €\nTotal factura  € 52789\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("527.89 EUR"));
    assert!(needs_review(&e), "{:?}", e.confidence);
    // Cash less a change that lost its point too proves it.
    let text = "Boekhandel Meijer\nUtrecht\n06/06/2024\nBrood  64,86\nKaas  49,18\n\
                Totaal te betalen  11404 EUR\nContant  120,00\nWisselgeld  596\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("114.04 EUR"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
    // A card slip prints no prices; the euro has cents, and so has what a card paid.
    let text = "Fromagerie Lefèvre\nBordeaux\n02.05.2025\nCarte bancaire  *4959\n\
                A REGLER  17422 €\nPAIEMENT ACCEPTE\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("174.22 EUR"));
    assert!(needs_review(&e), "{:?}", e.confidence);
    // The yen has none: such a slip's amount is as printed.
    let text = "Sakura Sushi\nTokyo\n2025-05-02\nVISA  *4959\nTOTAL  ¥17422\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("17422 JPY"));
}

#[test]
fn a_row_a_label_reads_beside_it_is_no_item_as_well() {
    // The slip's total line lost; the card number is masked, and the row below it holds
    // the references, not a payment that the same row as an item would prove.
    let text = "Metzgerei Hofmann\nMünchen\n2025-12-14 09:26\nGirocard **** 4242\n\
                AUTH 315753 REF 447468\nAuf Wiedersehen\n";
    let e = read(text);
    assert!(needs_review(&e), "{:?} {:?}", total(&e), e.confidence);
    // Under a till's first line as well: `VISA` with the time and a receipt number.
    let text = "Bar Santa Ana\nPrecios en MXN\nVENTA\n02-12-2024 VISA  12:22:12  #1210\n\
                7439\nTOTAL A PAGAR  $11,440.10\nAUTH 876955 REF 477601\n";
    let e = read(text);
    assert_ne!(
        total(&e).as_deref(),
        Some("7439.00 MXN"),
        "{:?}",
        e.confidence
    );
    assert!(needs_review(&e) || total(&e).as_deref() == Some("11440.10 MXN"));
}

#[test]
fn the_row_a_total_reads_below_it_is_no_item_proving_it() {
    // The total's amount lost; the row below holds a card reference, which as an item
    // too would add up to itself: read, it is no surer than any total unchecked.
    let text = "Livs Lindqvist\nUppsala\nPriser i SEK\n08.08.2024 16:49\n\
                Totalt att betala\nAUTH 180702 REF 889473\nTack för besöket\n";
    let e = read(text);
    assert!(e.confidence["total"] <= UNCHECKED, "{:?}", e.confidence);
}

#[test]
fn a_total_the_items_alone_prove_is_doubted_when_base_and_tax_make_it_misread() {
    // `31,89` for 31,09 adds up to the total misread as `357,82`; Base + IVA is 357,02.
    let text = "Mesón Navarro\nBilbao\nFecha 29.09.2024\nCroquetas  2,57\n\
                Aceite de oliva  16,48\nLeche 1L  17,20\nVino tinto  7,48\n\
                Naranjas kg  31,89\nMontadito  9,80\nCuaderno  28,02\nLeche 1L  19,55\n\
                Agua 50cl  135,25\nNaranjas kg  89,58\nBase  297,52\nIVA 20%  59,50\n\
                A PAGAR  EUR 357,82\n";
    let e = read(text);
    assert!(needs_review(&e), "{:?} {:?}", total(&e), e.confidence);
}

#[test]
fn a_card_number_whose_mask_ocr_read_as_letters_is_no_payment() {
    let slip = |card: &str| {
        format!(
            "Sklep Kowalski\nKraków\nPolska\n19:29 2023-01-10\n{card}\nSUMA  499,44 zł\n\
             AUTH 357450 REF 808216\n"
        )
    };
    for card in [
        "Płatność karta  kkk 5666",
        "EC-Cash  zxAkkk 3176",
        "Karta  **%x%* 3176",
        "Pagamento elettronico  xe 2827",
        "Tarjeta  ** 9171",
        "Carte bancare *\"  4010",
        "Mu1tibanco ±±±≠ 6381",
        "VISA * 9497",
    ] {
        let e = read(&slip(card));
        assert_eq!(total(&e).as_deref(), Some("499.44 PLN"), "{card}");
        assert!(!needs_review(&e), "{card}: {:?}", e.confidence);
    }
    // Nor is a card's last four digits with no mask at all, where the total prints cents.
    for card in ["Karta  5666", "VISA  6819", "CB SANS CONTACT 6748"] {
        let e = read(&slip(card));
        assert_eq!(total(&e).as_deref(), Some("499.44 PLN"), "{card}");
        assert!(!needs_review(&e), "{card}: {:?}", e.confidence);
    }
    // A payment beside the masked number, or one that lost its point, still stands
    // against the total.
    for card in ["Płatność karta  kkk 5666  489,44 zł", "Karta  48944"] {
        let e = read(&slip(card));
        assert!(needs_review(&e), "{card}: {:?}", e.confidence);
    }
}

#[test]
fn a_discount_printed_without_its_minus_is_taken_off_the_items() {
    for word in [
        "Réduction",
        "Rabais",
        "Promo",
        "Coupon",
        "Aktion",
        "Dto.",
        "Promozione",
        "Actie",
        "Desconto",
        "Rabat",
        "Zniżka",
    ] {
        let e = read(&format!(
            "Boulangerie Girard\nLyon\n2026-07-06\nBaguette  10,00\nCroissant  5,00\n\
             {word}  3,00\nTotal  12,00 €\n"
        ));
        assert_eq!(total(&e).as_deref(), Some("12.00 EUR"), "{word}");
        assert!(!needs_review(&e), "{word}: {:?}", e.confidence);
    }
}

#[test]
fn a_unit_price_glued_to_its_quantity_is_the_items_price() {
    // Its space lost, or a speck read as a point in its place.
    for quantity in ["3x3,41  10,23", "3x.3,41  10,23"] {
        let e = read(&format!(
            "Boulangerie Girard\nLyon\n2026-07-06\nMadeleines\n{quantity}\nSteak frites\n\
             1x 22,77  22,77\nTotal  33,00 €\n"
        ));
        assert_eq!(total(&e).as_deref(), Some("33.00 EUR"), "{quantity}");
        assert!(!needs_review(&e), "{quantity}: {:?}", e.confidence);
    }
}

#[test]
fn a_tax_word_glued_to_its_rate_still_names_the_tax() {
    // The items disagree (a line lost): only the total before tax and the tax prove it.
    for tax in ["TVA25%  129,46", "TVA 25%  129,46"] {
        let e = read(&format!(
            "Fromagerie Mercier\nLausanne\n25-04-2026 12:00\nPain de campagne  28,06\n\
             Cidre brut  89,49\nTotal HT  517,86\n{tax}\nTOTAL  647,32 CHF\n"
        ));
        assert_eq!(total(&e).as_deref(), Some("647.32 CHF"), "{tax}");
        assert!(e.confidence["total"] >= 0.9, "{tax}: {:?}", e.confidence);
    }
}

#[test]
fn net_and_service_alone_are_the_amount_before_tax_and_the_service_charge() {
    let invoice = |lines: &str| {
        format!(
            "Boulangerie Chevalier\nGenève\n12/01/2025\nGalette  182\nEau gazeuse  67,46\n\
             {lines}\n"
        )
    };
    for lines in [
        "Net  149,59\nService  10,00\nTVA 19%  28,42\nTotal TTC  188,01 CHF",
        "Total HT  149,59\nTVA 19%  28,42\nService  10,00\nTotal TTC  188,01 CHF",
        "Total HT  149,59\nTVA 19%  28,42\nService  CHF 10,00\nTotal TTC  188,01 CHF",
    ] {
        let e = read(&invoice(lines));
        assert_eq!(total(&e).as_deref(), Some("188.01 CHF"), "{lines}");
        assert!(e.confidence["total"] >= 0.9, "{lines}: {:?}", e.confidence);
    }
    // Beside other words they are an item (`Room service`), or the total.
    let e = read(
        "Harbor Hotel\nLeeds\n2026-07-10 13:19\nBreakfast  9,67\nRoom service  34,65\n\
         Tip  5,00\nTotal  49,32 £\n",
    );
    assert_eq!(total(&e).as_deref(), Some("49.32 GBP"));
    assert_eq!(e.confidence["total"], 0.97, "{:?}", e.confidence);
}

#[test]
fn received_alone_with_its_amount_is_the_cash_and_alone_without_one_a_title() {
    let receipt = |title: &str| {
        format!(
            "Papeterie Moreau\n57299 Bordeaux\n{title}04-09-2026 09:23:45\nCrêpe sucre  31,25\n\
             Galette  7,81\nTOTAL EUR\nEUR 39,06\nReçu  40,00\nA rendre  0,94\n"
        )
    };
    for title in ["", "REÇU\n"] {
        let e = read(&receipt(title));
        assert_eq!(total(&e).as_deref(), Some("39.06 EUR"), "{title}");
        assert!(!needs_review(&e), "{title}: {:?}", e.confidence);
    }
}

#[test]
fn the_unlabelled_row_above_the_tax_that_adds_up_with_it_is_the_subtotal() {
    let e = read(
        "Supermercado El Puerto\nValencia\n22-08-2023\nAceite de oliva  22,12\n\
         Vino tinto  63,36\nEUR 258.86\nIVA 19%  49.18\nTOTAL A PAGAR  € 308,04\n",
    );
    assert_eq!(total(&e).as_deref(), Some("308.04 EUR"));
    assert!(e.confidence["total"] >= 0.9, "{:?}", e.confidence);
}

#[test]
fn a_month_whose_o_ocr_read_as_a_zero_is_still_the_month() {
    let e = read("Supermercado El Puerto\nValencia\nFecha factura  22-AG0-2023\nTOTAL  12,00 €\n");
    assert_eq!(e.date, NaiveDate::from_ymd_opt(2023, 8, 22));
    let e = read("Harbor Coffee\nLeeds\n0CT 12, 2024\nTOTAL  12,00 £\n");
    assert_eq!(e.date, NaiveDate::from_ymd_opt(2024, 10, 12));
}

#[test]
fn a_total_the_subtotal_and_its_items_agree_on_outweighs_one_misread_payment() {
    let e = read(
        "Bistrot Lefèvre\nLyon\n02-09-2025\nMadeleines  10,66\nGalette  25,39\n\
         Crêpe sucre  58,76\nTotal HT  94,81\nMontant TTC  EUR 94,81\nEspèces  100,00\n\
         Rendu monnaie  5,79\n",
    );
    assert_eq!(total(&e).as_deref(), Some("94.81 EUR"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
    // The subtotal alone against the payment: either may be the misread one.
    let e = read(
        "Bistrot Lefèvre\nLyon\n02-09-2025\nTotal HT  94,81\nMontant TTC  EUR 94,81\n\
         Espèces  100,00\nRendu monnaie  5,79\n",
    );
    assert!(needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn two_ways_agreeing_repair_a_total_line_that_kept_three_digits() {
    let e = read(
        "Trattoria Ferrari\nTorino\n31 mar 2023 20:48\nRisotto  12,69\nGelato  882,78\n\
         Brioche  192,45\nImponibile  1087,92\nTotale da pagM@7,92 €\n\
         Pagamento elettronico  1.087,92\n",
    );
    assert_eq!(total(&e).as_deref(), Some("1087.92 EUR"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_slips_address_and_terminal_numbers_are_no_items() {
    // A misread date leaves the header's end unknown; the one amount, under a weaker
    // word, is the total, for the slip's second reading to check.
    let e = read(
        "Lechner Drogerie\n80843 Bern\nCH\nZahlung\nTID 50131998 MID 4686960886\n\
         2032025. 22:21.\nEC-Cash  **%x%* 9948\nGesamt  351.96\nZahlung erfolgt\n\
         AUTH 402472 REF 396355\n",
    );
    assert_eq!(total(&e).as_deref(), Some("351.96 CHF"));
    assert_eq!(e.confidence["total"], UNCHECKED, "{:?}", e.confidence);
}

#[test]
fn a_slips_yen_without_a_mark_goes_to_a_person() {
    // `10190円`: the engine read the `円` it has no letter for as a digit. Nothing on a
    // slip tells the mark from the amount's last digit.
    let slip = |total: &str| {
        read(&format!(
            "Lakeview Foods\n92669 Kyoto\nJapan\nSALE\nTID 86003898 MID 3500514329\n\
             07-12-2024 15:04  #1555\nDebit card **** 8930\nPlease pay  {total}\nAPPROVED\n"
        ))
    };
    let e = slip("101908");
    assert_eq!(total(&e).as_deref(), Some("101908 JPY"));
    assert!(needs_review(&e), "{:?}", e.confidence);
    // Its mark read, the amount is as sure as OCR's reading of it.
    for printed in ["¥10190", "10190 JPY"] {
        let e = slip(printed);
        assert_eq!(total(&e).as_deref(), Some("10190 JPY"), "{printed}");
        assert_eq!(e.confidence["total"], UNCHECKED, "{printed}");
    }
    // A currency with cents prints them: its digits are not its mark.
    let e =
        read("Lakeview Foods\nSALE\n07-12-2024 15:04\nDebit card **** 8930\nPlease pay  101.90\n");
    assert_eq!(e.confidence["total"], UNCHECKED, "{:?}", e.confidence);
}

#[test]
fn a_yen_mark_read_as_a_digit_after_a_thousands_group_is_dropped() {
    // `円` read as the digit it looks like: `2,4310` for 2,431円. The prices so read add up.
    let e = read(
        "Ashford Foods\nKyoto\nJapan\n2024-12-07 15:04\nCar park  2,4310\nBlueberry muffin  3,3520\n\
         Subtotal  5,7830\nTOTAL  5,783円\n",
    );
    assert_eq!(total(&e).as_deref(), Some("5783 JPY"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
    // A slip's one amount so read is filled in, for a person: nothing checks it.
    let e = read(
        "Northgate Kitchen\nKyoto\nJapan\nSALE\n2025-03-24 12:54:37\nAMEX****7481\n\
         Amount payable  44,3773\nAPPROVED\n",
    );
    assert_eq!(total(&e).as_deref(), Some("44377 JPY"));
    assert!(needs_review(&e), "{:?}", e.confidence);
    // Elsewhere such a number is left as it was read.
    let e = read("Northgate Kitchen\nLondon\nSALE\nAmount payable  44,3773\n");
    assert_ne!(total(&e).as_deref(), Some("44377 GBP"));
}

#[test]
fn a_vat_number_is_no_tax() {
    let e = read(
        "Drogist Visser\n25 Via Roma\n17945 Utrecht\nP.IVA 3371086716\n08.12.23 13:09\n\
         Frikandel  11,30\nSchrift  26,85\nKorting  -3,00\nTOTAAL  €35,15\n",
    );
    assert_eq!(total(&e).as_deref(), Some("35.15 EUR"));
    assert_eq!(e.confidence["total"], 0.97, "{:?}", e.confidence);
}

#[test]
fn the_next_largest_cities_name_their_countrys_currency() {
    let usd = Currency::parse("USD").unwrap();
    for (city, code) in [
        ("74855 Bordeaux", "EUR"),
        ("39823 Eindhoven", "EUR"),
        ("Uppsala", "SEK"),
    ] {
        let text = format!("Crêperie Lefèvre\n{city}\n17-08-2025 10:22\nTotal a payer  474,18\n");
        let e = extract(&text, usd, uploaded());
        let currency = e.total.map(|t| t.currency().code().to_string());
        assert_eq!(currency.as_deref(), Some(code), "{city}");
        assert_eq!(e.confidence["currency"], 0.85, "{city}");
    }
}

#[test]
fn a_sign_against_the_country_and_its_printed_currency_is_the_misread_one() {
    let receipt = |prices: &str| {
        format!(
            "Taberna Jiménez\nGuadalajara, Jal.\nMexico\n{prices}14/11/2025  #6493\n\
             Café solo  147.90\nTOTAL (€)  147.90\n"
        )
    };
    let e = read(&receipt("Precios en MXN\n"));
    assert_eq!(total(&e).as_deref(), Some("147.90 MXN"));
    assert_eq!(e.confidence["currency"], UNCHECKED, "{:?}", e.confidence);
    // With the country alone against it, a person decides.
    let e = read(&receipt(""));
    assert_eq!(total(&e).as_deref(), Some("147.90 MXN"));
    assert!(needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn bedrag_names_the_total_and_a_star_read_as_a_quote_still_masks_the_card() {
    let e = read(
        "Snackbar Visser\nUtrecht\n16-04-2026\nHagelslag  9,91\nMelk 1L  33,65\n\
         Excl. BTW  36,12 €\nBtw 9%  7,44 EUR\nBedrag  € 43,56\n",
    );
    assert_eq!(total(&e).as_deref(), Some("43.56 EUR"));
    assert_eq!(e.confidence["total"], 0.97, "{:?}", e.confidence);
    let e = read(
        "Panadería Ruiz\nBilbao\nVENTA\n22.03.2025 12:40\nTatjeta crédito  **\"* 5443\nTotal compra  125,76\n\
         OPERACION APROBADA\n",
    );
    assert_eq!(total(&e).as_deref(), Some("125.76 EUR"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_date_whose_separators_ocr_lost_after_its_label_is_filled_in_for_a_person() {
    for (line, want) in [
        ("Fecha factura  14052026", (2026, 5, 14)),
        ("Invoice date  0207/2023", (2023, 7, 2)),
        ("Rechnungsdatum 20240815", (2024, 8, 15)),
    ] {
        let e = read(&format!(
            "Panadería Morales\nBilbao\n{line}\nTOTAL  12,00 €\n"
        ));
        let (y, m, d) = want;
        assert_eq!(e.date, NaiveDate::from_ymd_opt(y, m, d), "{line}");
        assert_eq!(e.confidence["date"], dates::REPAIRED, "{line}");
    }
    // Eight digits without a date's label are an invoice's or a terminal's number.
    let e = read("Panadería Morales\nBilbao\nInvoice no.  20240815\nTOTAL  12,00 €\n");
    assert_eq!(e.date, None);
}

#[test]
fn three_ways_agreeing_repair_a_total_line_misread_a_digit_apart() {
    let receipt = |summary: &str| {
        format!(
            "Hofmann Getränkemarkt\nMünchen\n26/08/2025\nLeberkäse  224,20\nApfelstrudel  5,40\n\
             Netto  467,10\nTrinkgeld  70,06\nSumme EUR  937,16\nGirocard  537,16\n{summary}"
        )
    };
    let e = read(&receipt(
        "Satz  Netto  Mwst  Brutto\n22%  382,87  84,23  467,10\n",
    ));
    assert_eq!(total(&e).as_deref(), Some("537.16 EUR"));
    assert_eq!(e.confidence["total"], 0.9, "{:?}", e.confidence);
    // Two ways alone may share the misread: a person decides.
    let e = read(&receipt(""));
    assert_eq!(total(&e).as_deref(), Some("537.16 EUR"));
    assert!(needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn the_rows_that_label_the_total_are_found_as_the_text_counts_its_rows() {
    let text = "Bistro Test\n\nSubtotal  10.00\nTVA 20%  2.00\nTOTAL TTC  12.0O\nVisa  12.00\n\
                Somme due\nMerci\n";
    assert_eq!(total_rows(text), [4, 6]);
    assert_eq!(total_rows("Bistro Test\nMerci\n"), Vec::<usize>::new());
}

#[test]
fn dot_leaders_read_as_zeros_are_no_amounts() {
    let e = read(
        "Brasserie du Port\nLyon\n09-06-2025\nCafé crème  000000000000o0000000  2 263,80\n\
         Quiche  ooooo0000000  122,10\nTotal HT  00000000000000000000  2 385,90\n\
         TVA 10%  0000000000000000000  238,59\nTOTAL TTC  0000000000  2 624,49 €\n",
    );
    assert_eq!(total(&e).as_deref(), Some("2624.49 EUR"));
    assert_eq!(e.confidence["total"], 0.97, "{:?}", e.confidence);
    assert_eq!(e.tax.as_deref(), Some("238.59"));
}

#[test]
fn a_tip_on_top_of_the_subtotal_is_no_rival_to_the_total_it_makes() {
    // Subtotal and the tax summary's gross agree on 200,04, two digits from the total:
    // but with the tip they add up to it, which no misreading would.
    let text = "Café Costa\nPorto\n13.01.2024 21:41\nPastel de nata  33,69\n\
                Imperial\n3 x 17,69  53,07\n3 Pastel de nata  60,60\nPão\n\
                3 × 17,56  52,68\nSubtotal  200,04\nGorjeta  30,01\nTotal a pagar\n\
                €230,05\nTaxa  Base  IVA  Total\n21%  165,32  34,72  200,04\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("230.05 EUR"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
    // The tip split in two by OCR, the total proven by cash less change as well.
    let text = "Pastelaria Alfama\nRio de Janeiro\nBrasil\nPreços em BRL\n11 fev 2025\n\
                Bifana  6,13\nCaderno\n2 x 28,03  56,06\nImperial  24,93\n\
                Desconto  -4,45\nGor jeta  34,34\nTOTAL  117,01\nNumerário  120,00\n\
                Troco  2,99\nTaxa  Base  IVA  Total\n21%  68,40  14,27  82,67\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("117.01 BRL"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn the_head_of_a_tax_summary_naming_its_total_column_is_no_total_line() {
    // The summary's row misread (its net and tax run together) is no summary the head is
    // known by, and its gross, the subtotal, would make the head a total line.
    let text = "Panificio Ricci\nBellinzona\nSvizzera\n01.10.26\nGrana 200g\n\
                3 × 58.67  176.01\nQuaderno\n2 × 32.93  65.86\nImponibile  241.87\n\
                Servizio  36.28\nTOTALE  278.15\nA11q.  Imponibi1dmpoota  Totale\n\
                7%  226.0515.82  241.87\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("278.15 CHF"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_total_label_naming_another_currency_than_the_country_and_the_prices_goes_to_a_person() {
    // `TOTAL EUR` in Québec, the prices stated in dollars: the receipt's dollars are
    // filled in, for a person to confirm.
    let text = "Boulangerie Fontaine\nQuébec, QC\nCanada\nPrix en CAD\n08/02/2024  #1479\n\
                Pompe 12 Gazole\n59,48 L × 1,746  103,85\nTOTAL EUR  $103,85\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("103.85 CAD"));
    assert!(needs_review(&e), "{:?}", e.confidence);
    // Nothing else naming the country's currency, the label's stands, as doubtful.
    let text = "Bistrot Moreau\nLausanne\nSuisse\n26.07.2024\nCrêpe sucre  68.40\n\
                TOTAL EUR  68.40\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("68.40 EUR"));
    assert!(needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_digit_glued_before_the_total_is_undone_by_what_was_paid_or_proven() {
    // A speck before `71.41` on the line below the label: the card paid 71.41.
    let text = "Seidl Getränkemarkt\n191 Hauptstr\nHamburg\n01.10.2025\nApfelstrudel  3,87\n\
                2 x 33,77  67.54\nSummeEUR\n671.41\nEC=Cash  71.41\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("71.41 EUR"));
    assert!(needs_review(&e), "{:?}", e.confidence);
    // `Fr.` read as `f1.`: net and tax prove 262.74.
    let text = "Hofmann Drogerie\n67526 Basel\nSchweiz\n20.02.2025\nTesafilm  2  15.87  31.74\n\
                Butter  1  230.99  230.99\nNetto  210.19\nMwSt. 25%  52.55\n\
                GESAMTSUMME  f1.262.74\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("262.74 CHF"));
}

#[test]
fn gross_item_lines_and_net_plus_tax_prove_a_total_missing_its_thousands() {
    // `6 625,90`, its thousands group a word of its own.
    let text = "Krog Berg\nMalmö\nSverige\n02-OKT-2023\nKnäckebröd  1  5858,50  5858,50\n\
                Kaffe  1  767,40  767,40\nDelsumma  6129,42\nMoms 8.1%  496,48\n\
                Totalt att betala  6  625,90  SEK\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("6625.90 SEK"));
}

#[test]
fn prices_behind_a_sign_read_as_letters_and_a_minus_read_as_a_point_add_up() {
    // `R$` read as `RS` glued to the prices: the items prove the total.
    let text = "Restaurante Silva\nRio de Janeiro\nBrasil\n30/07/2023  #8937\n2 Bifana  RS61,00\n\
                Sopa  RS 34,63\n3Bica  RS91,11\nA pagar  R$186,74\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("186.74 BRL"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
    // The discount's minus read as a point, and a rule of `=` read with a digit.
    let text = "Pastelaria Costa\n94307 Lisboa\nPortugal\n30-NOV-2025  #6318\n==5\n\
                Sopa  16,10\nBacalhau  4,05\nSopa  5,33\nImperial  20,52\nDesconto  .6,73\n\
                Total a pagar  €39,27\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("39.27 EUR"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_code_the_total_spells_against_another_the_receipt_spells_is_asked() {
    let text = "Mercearia Costa\nBr854\nPreços em BRL\n23-AGO-2026\nSopa  28.51\n\
                Água 0,5L  28.09\nTOTAL EUR  56,60\nMultibanco  56.60\n";
    let e = read(text);
    assert!(needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_date_in_quebec_is_read_day_first() {
    let text = "Bistrot Bonnet\n69294 Québec, QC\nCanada\n15:36:05 01/10/2024  #1474\n\
                Salade verte  1,60\nMadeleines  13,43\nTotal à payer  $15,03\n";
    let e = read(text);
    assert_eq!(e.date, NaiveDate::from_ymd_opt(2024, 10, 1));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_line_printing_the_difference_bridges_two_ways_to_a_total_paid() {
    // The tip's label misread: items, net and the tax summary agree on 2486,00; cash less
    // change and the tip's line make 2858,90.
    let text = "Bokhandel Sjöberg\nUppsala\n16.04.2026 22:09\nKnäckebröd  200,00 SEK\n\
                Kaffe  2286,00 SEK\nNetto  2486,00 SEK\nDrncks  372.90:-\nSumma  2 858,90 kr\n\
                Kontant  2860,00 kr\nTillbaka  1,10 SEK\nMoms%  Netto  Moms  Brutto\n\
                25%  1 988,80  497,20  2486,00\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("2858.90 SEK"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn thousands_groups_a_wide_gap_apart_are_joined_where_that_proves_the_total() {
    // A narrow space between groups read as a column's gap, on every amount.
    let yen = "Hôtel Le Central\n35 Via Roma\nTokyo\nLe 16.10.2024 10:26\n\
               Qty  Item  Price  Amount\n2  café  crème  3  943  7  886\n3  stylo  218  654\n\
               2  Ticket parking  3  269  6  538\nsous-total  15  078\nMontant  dû  JPY  15  078\n\
               dont TVA 21%  2  617\nEspèces reçues  16  000\nRendu  922\n";
    let e = read(yen);
    assert_eq!(total(&e).as_deref(), Some("15078 JPY"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
    let kronor = "Livs Ekström\n9515 Uppsala\nPriser i SEK\nFakturadatum  20-06-2024\n\
                  Artikel  Antal  Á-pris  Belopp\nKaffe  1  289,00  289,00\n\
                  Smörgås  3  609,50  1  828,50\nMjölk 1L  1  662,00  662,00\n\
                  Delsumma  2  223,20\nMOMS25%  555,80\nSumma  2  779,00\n";
    let e = read(kronor);
    assert_eq!(total(&e).as_deref(), Some("2779.00 SEK"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
    // A total line printed so with nothing to prove either reading: joined, for a person.
    let slip = "Livs Ekström\nUppsala\n26-07-2026\nVISA***≠ 9380\nTOTALT  5  087,10  kr\n";
    let e = read(slip);
    assert_eq!(total(&e).as_deref(), Some("5087.10 SEK"));
    assert!(needs_review(&e), "{:?}", e.confidence);
    // A quantity before a price reads the same way: unproven, the text stands as read.
    let quantity = "Livs Ekström\nUppsala\n20-06-2024\nKaffe  1  289,00\nSumma  289,00 kr\n";
    assert_eq!(total(&read(quantity)).as_deref(), Some("289.00 SEK"));
}

#[test]
fn a_total_under_one_unit_unchecked_is_asked() {
    let slip = "Panificio Ricci\nTorino\n21:24 14-MAG-2024  #1845\nCarta di credito  ****8981\n\
                Totale documentõ0,09 EUR\nTRANSAZIONE ESEGUITA\n";
    let e = read(slip);
    assert!(needs_review(&e), "{:?} {:?}", total(&e), e.confidence);
}

#[test]
fn a_vat_number_glued_to_its_label_is_no_tax_line() {
    let slip = "Café Solsidan\n44000 Malmö\nSverige\nUSt-IdNr.4374829986\nKÖP\n\
                06:16:41 28/01/2026  #4932\nKort **** 9827\nSumma  6 910,20\nGODKÄNT\n";
    let e = read(slip);
    assert_eq!(total(&e).as_deref(), Some("6910.20 SEK"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_shift_proves_nothing_the_items_and_the_tax_summary_prove_alone() {
    // The total line cut at the paper's edge; `Servizio` paired with the item above it
    // would take its price for the tip, and the items less it plus it prove the gross
    // without the service on top.
    let text = "Caffetteria Esposito\nMilano\nPrezzi in EUR\n29-01-2026  #1481\n\
                1 Aranciata 20,29\n1 Pane 13,43\nTramezzino\n3× 154,63  463,89\n1 Pane 7,02\n\
                2 Prosciutto crudo 20,18\nServizio  52,48\nDT. COMPLESSIVO: EUR 577.\n\
                Aliq.  Imponibilemposta  Totale\n19%  441,0283,79  524.81\nGrazie\n";
    let e = read(text);
    assert!(needs_review(&e), "{:?} {:?}", total(&e), e.confidence);
}

#[test]
fn a_price_with_its_code_misread_is_still_a_price() {
    // `Trinkgeld  54.81 CHF` read as `rnkaeld  54.81CHE`: without it the items and the
    // tax summary prove the total less the tip.
    let text = "Huber Getränkemarkt\nBasel\nSchweiz\n19.01.25  #8892\nWeißbier\n\
                2x150.00  300.00 CHF\nLeberkäse\n1×248.08  248.08 CHF\nrnkaeld  54.81CHE\n\
                zu zahlen  Fr.602.89\nSatz  Netto  MwSt  Brutto\n10%  498.25  49.83  548.08\n\
                Bitte Bon aufbewahren\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("602.89 CHF"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_tax_summary_row_below_its_head_is_read_as_it_adds_up() {
    // `Netto` in the head is no subtotal that takes the row's gross for its amount: the
    // row's net and tax do not add up to its gross, and the total line repeats the gross's
    // misread `8`.
    let at_odds = "Gasthof Bergmann\nWien\nÖsterreich\n18:40:49 2025-09-14\n\
                   Apfelstrudel  28.84\nRoggenbrot  33.67\nGESAMTSUMME  439,28 EU8\n\
                   Gegeben  448.68\nZurück  8,8e\nSatz  Netto  MWSt  Brutto\n\
                   20%  366,00 73,20  439.28\nVielen Dank\n";
    let e = read(at_odds);
    assert!(needs_review(&e), "{:?} {:?}", total(&e), e.confidence);
    // A gross that lost its point adds up with it put back, and proves the total that
    // lost its own; below a head with no gross column, the row's last amount is its tax.
    let point_lost = "Gasthof Bergmann\nBasel\nSchweiz\n28-03-2023  #4967\nSpezi  7.14\n\
                      Bratwurst  135.69\nRechnungsbetrag\nFr: 14283\nSatz  Netto  MWSt  Brutto\n\
                      19%  120.03  22.80  14283\nBitte Bon aufbewahren\n";
    let e = read(point_lost);
    assert_eq!(total(&e).as_deref(), Some("142.83 CHF"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
    let no_gross = "Panadería El Puerto\nCiudad de México\n20/02/2024\nCuaderno  3575.67\n\
                    TOTAL A PAGAR  MXN 4398.08\nTipo  Base  Cuota\n23%  3575.67  822.41\n";
    let e = read(no_gross);
    assert_eq!(total(&e).as_deref(), Some("4398.08 MXN"));
}

#[test]
fn a_house_number_run_into_its_street_is_still_an_address() {
    for street in ["31Rua Nova", "161Calle Mayor"] {
        let text = format!(
            "Hofmann Getränkemarkt\n{street}\n56651 Hamburg\n+38 664792159\n\
             07-03-2024  #5569\n1 Kaffee Crema € 22,49\nSumme  € 22,49\n"
        );
        let e = read(&text);
        assert_eq!(
            e.merchant.as_deref(),
            Some("Hofmann Getränkemarkt"),
            "{street}"
        );
    }
}

#[test]
fn a_tax_class_glued_to_a_price_leaves_it_a_price() {
    // Its price lost, `3 Roggenbrot  €95,58A` read as a street below the till's name.
    let text = "Bergmann Backstube\n71809Hambmg\nTel: +49 528 922681\n13 Ma1 2026 07:42:00\n\
                Tesafilm\n3x 2,70  €8,10\n3 Roggenbrot  €95,58A\nKäsebrötchen  21,94 €B\n\
                Zu zahlen  125,62\nSatz  Netto  MwSt  Brutto\n7%  117,40  8,22  125,62\n";
    let e = read(text);
    assert_eq!(e.merchant.as_deref(), Some("Bergmann Backstube"));
    assert_eq!(total(&e).as_deref(), Some("125.62 EUR"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_tip_that_lost_its_point_is_read_both_ways() {
    // Net plus the tip, its point lost, and the card agree; the tax summary's gross is the
    // total before the tip.
    let text = "Gasthof Huber\nWien\n11 Sep 2023  #1122\nBratwurst\n2x 28,93  57,86\n\
                Roggenbrot  10,34\nNetto  68,20\nTrinkgeld  682\nRechnungsbetrag  75.02 EUR\n\
                Girocard  75,02\nSatz  Netto  MwSt  Bruto\n23%  55,45  12.75  68.20\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("75.02 EUR"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn the_name_is_read_above_the_address_before_the_date_and_prices() {
    // `1 Ordner A422,46`, its price glued to a letter, is shaped like a street; the line
    // naming the prices' currency above it is no name either.
    let text = "Metzgerei Seidl\nHamburg\nPreise in EUR\n15:09 19 Feb 2025  #8047\n\
                1 Ordner A422,46\nBratwurst\n2x31.56  63,12\nSumme  EUR 85,58\n";
    assert_eq!(read(text).merchant.as_deref(), Some("Metzgerei Seidl"));
    // A `1` between small letters is an `l`.
    let text = "Wi1low Books\nSydney\n07/12/2025\nNovel  32.56\nTotal  AU$32.56\n";
    assert_eq!(read(text).merchant.as_deref(), Some("Willow Books"));
}

#[test]
fn a_subtotal_the_paper_edge_cut_is_no_total_below_a_line_that_adds_to_it() {
    // `Subtotaal`, `BTW`, `Te voldoen`, `Contant` and `Wisselgeld` lost their first
    // letters: the items prove the subtotal, and the line below adds the tax to it.
    let text = "Visser\nUtrecht\nNederland\n13.04.2023  #7321\nKaas  22,90 A\nBrood  5,59 B\n\
                otaal  28,49\n4,27\nIdoen  32,76 €\nint  40,00\n0  7,24\nTot ziens\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("32.76 EUR"));
    assert!(needs_review(&e), "{:?}", e.confidence);
    // With the edge whole, the tax's line is labelled and the total proven as before.
    let text = "Visser\nUtrecht\nNederland\n13.04.2023  #7321\nKaas  22,90 A\nBrood  5,59 B\n\
                Totaal  28,49\nContant  30,00\nWisselgeld  1,51\nTot ziens\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("28.49 EUR"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_total_its_points_lost_alike_is_filled_in_with_its_point_back() {
    // Subtotal and tax lost their points as the total did: they prove it in cents.
    let text = "Ashford Deli\nChicago, IL\nUSA\nPrices in USD\nInvoice date  04/16/2025\n\
                Rye loaf  1  13.91  13.91\nFries  2  16.74  33.48\nItems total  44570\n\
                VAT 20%  8914\nOrder total  53484 USD\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("534.84 USD"));
    assert!(needs_review(&e), "{:?}", e.confidence);
    // Three digits whole may be a price in whole units: as printed, for a person.
    let text = "Ashford Deli\nChicago, IL\nUSA\nPrices in USD\nInvoice date  04/16/2025\n\
                Rye loaf  1  13.91  13.91\nItems total  445\nOrder total  445 USD\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("445.00 USD"));
    assert!(needs_review(&e), "{:?}", e.confidence);
}

#[test]
fn a_yen_mark_read_as_a_digit_after_every_price_is_dropped_where_the_prices_then_add_up() {
    // `円` read as `8` after each price the font drew it for, no thousands group to tell it.
    let text = "Ashford Hardware\n16499 Kyoto\nJapan\nTel:+48609 711538\n11Dec2024 19:41\n\
                Phone charger  30148\nBurger\n3 ×2592  JPy7776\nIced tea  22548\n\
                Flat white  ¥2796\nNet  ¥15840\nBalance  158408\nMASTERCARD  158408\n";
    let e = read(text);
    assert_eq!(total(&e).as_deref(), Some("15840 JPY"));
    assert!(!needs_review(&e), "{:?}", e.confidence);
    // Unmarked, a total the cut lines alone prove is not taken: here the gross of the tax
    // summary, which repeats the total, cut alike.
    let e = read(
        "Lakeview Inn\nKyoto\nJapan\n09.08.2023 09:35:44\nBurger  24460\nSide salad  9,5460\n\
         Still water  ¥1,197\nTotal  40219\nRate  Net  Tax  Gross\n10%  36563  3656  40219\n",
    );
    assert_eq!(total(&e).as_deref(), Some("40219 JPY"));
    // Prices in tens keep their last digit: cut, they would add up in tens as well.
    let e = read(
        "Ashford Hardware\nKyoto\nJapan\n11Dec2024 19:41\nPhone charger  3010\n\
         Iced tea  2250\nTotal  5260\nCash  6000\nChange  740\n",
    );
    assert_eq!(total(&e).as_deref(), Some("5260 JPY"));
    // Outside yen, the digits are the prices'.
    let e = read(
        "Ashford Hardware\nLondon\n11/12/2024 19:41\nPhone charger  30148\nIced tea  22548\n\
         Net  £29820\nBalance  298208\nVISA  298208\n",
    );
    assert_ne!(total(&e).as_deref(), Some("29820 GBP"));
}

#[test]
fn a_yen_mark_before_an_amount_keeps_its_digits() {
    for (line, kept) in [
        ("Net  ¥29820\nTotal  JPY 29820\n", true),
        ("Net  Y 29820\nTotal  ¥ 29820\n", true),
        ("Please pay  101908\nBalance  101908\n", false),
    ] {
        assert_eq!(yen_marks_as_digits(line).is_none(), kept, "{line}");
    }
}

#[test]
fn a_slips_dollar_total_that_may_begin_with_its_sign_goes_to_a_person() {
    // `$446.97` with its `$` read as a `5`: nothing on a slip checks the amount.
    let slip = |total: &str| {
        read(&format!(
            "Lakeview Chemist\n140 Main St\nDenver CO\nU.S.A.\nSALE\n05/23/2025  #1027\n\
             VISA  2703\nTotal Sale  {total}\nAPPROVED\n"
        ))
    };
    for printed in ["5446 .97", "846.97"] {
        let e = slip(printed);
        assert!(needs_review(&e), "{printed}: {:?}", e.confidence);
    }
    // With its sign read, or beginning otherwise, it is as sure as OCR's reading of it.
    for (printed, want) in [("$546.97", "546.97 USD"), ("446.97", "446.97 USD")] {
        let e = slip(printed);
        assert_eq!(total(&e).as_deref(), Some(want), "{printed}");
        assert_eq!(e.confidence["total"], UNCHECKED, "{printed}");
    }
}

#[test]
fn an_invoice_dated_after_it_falls_due_goes_to_a_person() {
    let invoice = |made: &str| {
        read(&format!(
            "Ashford Chemist\n140 Main St\nDenver CO\nU.S.A.\nInvoice no.  2024-0989\n\
             Invoice date  {made}\nDue date  5/19/24\nFries  14.81\nMilk  6.46\n\
             Subtotal  21.27\nSales tax  1.27\nTotal  22.54 USD\n"
        ))
    };
    let e = invoice("6/5/24");
    assert_eq!(e.date, NaiveDate::from_ymd_opt(2024, 6, 5));
    assert!(needs_review(&e), "{:?}", e.confidence);
    let e = invoice("5/5/24");
    assert_eq!(e.date, NaiveDate::from_ymd_opt(2024, 5, 5));
    assert!(!needs_review(&e), "{:?}", e.confidence);
}
