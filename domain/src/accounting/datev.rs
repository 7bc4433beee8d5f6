//! DATEV's import format for booking batches ("DATEV-Format", EXTF, Buchungsstapel,
//! header version 700, format version 13): a header line of 31 fields, a line naming the
//! 125 columns, then one booking per line. Semicolons between fields, text in double
//! quotes, amounts with a decimal comma, CRLF, Windows-1252.
//!
//! Each expense is one booking: its amount in the organization's currency debited
//! (`S`) to the account of its category, against the account the employees' claims are
//! owed on; its day as Belegdatum (DDMM) and Leistungsdatum; a short reference as
//! Belegfeld 1 and the expense's full id as the first Beleginfo.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::DatevSettings;

/// Fields of the header line.
pub const HEADER_FIELDS: usize = 31;

/// The columns of a booking, in their order (format version 13).
pub const COLUMNS: [&str; 125] = [
    "Umsatz (ohne Soll/Haben-Kz)",
    "Soll/Haben-Kennzeichen",
    "WKZ Umsatz",
    "Kurs",
    "Basis-Umsatz",
    "WKZ Basis-Umsatz",
    "Konto",
    "Gegenkonto (ohne BU-Schlüssel)",
    "BU-Schlüssel",
    "Belegdatum",
    "Belegfeld 1",
    "Belegfeld 2",
    "Skonto",
    "Buchungstext",
    "Postensperre",
    "Diverse Adressnummer",
    "Geschäftspartnerbank",
    "Sachverhalt",
    "Zinssperre",
    "Beleglink",
    "Beleginfo - Art 1",
    "Beleginfo - Inhalt 1",
    "Beleginfo - Art 2",
    "Beleginfo - Inhalt 2",
    "Beleginfo - Art 3",
    "Beleginfo - Inhalt 3",
    "Beleginfo - Art 4",
    "Beleginfo - Inhalt 4",
    "Beleginfo - Art 5",
    "Beleginfo - Inhalt 5",
    "Beleginfo - Art 6",
    "Beleginfo - Inhalt 6",
    "Beleginfo - Art 7",
    "Beleginfo - Inhalt 7",
    "Beleginfo - Art 8",
    "Beleginfo - Inhalt 8",
    "KOST1 - Kostenstelle",
    "KOST2 - Kostenstelle",
    "Kost-Menge",
    "EU-Land u. UStID (Bestimmung)",
    "EU-Steuersatz (Bestimmung)",
    "Abw. Versteuerungsart",
    "Sachverhalt L+L",
    "Funktionsergänzung L+L",
    "BU 49 Hauptfunktionstyp",
    "BU 49 Hauptfunktionsnummer",
    "BU 49 Funktionsergänzung",
    "Zusatzinformation - Art 1",
    "Zusatzinformation- Inhalt 1",
    "Zusatzinformation - Art 2",
    "Zusatzinformation- Inhalt 2",
    "Zusatzinformation - Art 3",
    "Zusatzinformation- Inhalt 3",
    "Zusatzinformation - Art 4",
    "Zusatzinformation- Inhalt 4",
    "Zusatzinformation - Art 5",
    "Zusatzinformation- Inhalt 5",
    "Zusatzinformation - Art 6",
    "Zusatzinformation- Inhalt 6",
    "Zusatzinformation - Art 7",
    "Zusatzinformation- Inhalt 7",
    "Zusatzinformation - Art 8",
    "Zusatzinformation- Inhalt 8",
    "Zusatzinformation - Art 9",
    "Zusatzinformation- Inhalt 9",
    "Zusatzinformation - Art 10",
    "Zusatzinformation- Inhalt 10",
    "Zusatzinformation - Art 11",
    "Zusatzinformation- Inhalt 11",
    "Zusatzinformation - Art 12",
    "Zusatzinformation- Inhalt 12",
    "Zusatzinformation - Art 13",
    "Zusatzinformation- Inhalt 13",
    "Zusatzinformation - Art 14",
    "Zusatzinformation- Inhalt 14",
    "Zusatzinformation - Art 15",
    "Zusatzinformation- Inhalt 15",
    "Zusatzinformation - Art 16",
    "Zusatzinformation- Inhalt 16",
    "Zusatzinformation - Art 17",
    "Zusatzinformation- Inhalt 17",
    "Zusatzinformation - Art 18",
    "Zusatzinformation- Inhalt 18",
    "Zusatzinformation - Art 19",
    "Zusatzinformation- Inhalt 19",
    "Zusatzinformation - Art 20",
    "Zusatzinformation- Inhalt 20",
    "Stück",
    "Gewicht",
    "Zahlweise",
    "Forderungsart",
    "Veranlagungsjahr",
    "Zugeordnete Fälligkeit",
    "Skontotyp",
    "Auftragsnummer",
    "Buchungstyp",
    "USt-Schlüssel (Anzahlungen)",
    "EU-Mitgliedstaat (Anzahlungen)",
    "Sachverhalt L+L (Anzahlungen)",
    "EU-Steuersatz (Anzahlungen)",
    "Erlöskonto (Anzahlungen)",
    "Herkunft-Kz",
    "Buchungs GUID",
    "KOST-Datum",
    "SEPA-Mandatsreferenz",
    "Skontosperre",
    "Gesellschaftername",
    "Beteiligtennummer",
    "Identifikationsnummer",
    "Zeichnernummer",
    "Postensperre bis",
    "Bezeichnung SoBil-Sachverhalt",
    "Kennzeichen SoBil-Buchung",
    "Festschreibung",
    "Leistungsdatum",
    "Datum Zuord. Steuerperiode",
    "Fälligkeit",
    "Generalumkehr (GU)",
    "Steuersatz",
    "Land",
    "Abrechnungsreferenz",
    "BVV-Position",
    "EU-Mitgliedstaat u. UStID (Ursprung)",
    "EU-Steuersatz (Ursprung)",
    "Abw. Skontokonto",
];

/// One expense to book.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub expense_id: Uuid,
    pub spent_on: NaiveDate,
    /// In the organization's currency; positive.
    pub amount: Decimal,
    pub category: String,
    pub merchant: String,
    /// Whose expense it is, as the people who book it know them.
    pub owner: String,
}

/// A batch of bookings and what its header says.
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    pub settings: &'a DatevSettings,
    pub created_at: DateTime<Utc>,
    /// Who exported it (at most 25 characters are kept).
    pub exported_by: &'a str,
    /// The batch's name in DATEV (at most 30 characters are kept).
    pub name: &'a str,
    /// The organization's currency (ISO 4217).
    pub currency: &'a str,
    pub lines: &'a [Line],
}

/// The first day of the fiscal year `day` falls in, for a year beginning with month
/// `start` (1–12).
pub fn fiscal_year_of(day: NaiveDate, start: u32) -> NaiveDate {
    let year = if day.month() >= start {
        day.year()
    } else {
        day.year() - 1
    };
    NaiveDate::from_ymd_opt(year, start, 1).unwrap_or(day)
}

/// A text field: quoted, quotes doubled, line breaks and semicolon-breaking control
/// characters made spaces, cut to `max` characters.
fn text(value: &str, max: usize) -> String {
    let clean: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    format!("\"{}\"", clean.replace('"', "\"\""))
}

/// `1234,50`: two decimals, a decimal comma, no thousands separator.
fn amount(value: Decimal) -> String {
    format!("{:.2}", value.round_dp(2)).replace('.', ",")
}

/// Windows-1252, what DATEV reads; a character it cannot hold becomes `?`.
fn windows_1252(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut buffer = [0u8; 4];
    for c in text.chars() {
        let (encoded, _, unmappable) = encoding_rs::WINDOWS_1252.encode(c.encode_utf8(&mut buffer));
        match unmappable {
            true => bytes.push(b'?'),
            false => bytes.extend_from_slice(&encoded),
        }
    }
    bytes
}

/// The batch as a file DATEV imports. Its lines must lie in one fiscal year (DATEV
/// refuses a batch across two); `None` when there are none.
pub fn document(batch: &Batch) -> Option<Vec<u8>> {
    let first = batch.lines.iter().map(|l| l.spent_on).min()?;
    let last = batch.lines.iter().map(|l| l.spent_on).max()?;
    let settings = batch.settings;
    let fiscal_year = fiscal_year_of(first, settings.fiscal_year_start);
    let ymd = |d: NaiveDate| d.format("%Y%m%d").to_string();
    let header: [String; HEADER_FIELDS] = [
        text("EXTF", 4),
        "700".into(),
        "21".into(),
        text("Buchungsstapel", 14),
        "13".into(),
        batch.created_at.format("%Y%m%d%H%M%S%3f").to_string(),
        String::new(),
        text("RE", 2),
        text(batch.exported_by, 25),
        String::new(),
        settings.consultant_number.to_string(),
        settings.client_number.to_string(),
        ymd(fiscal_year),
        settings.account_length.to_string(),
        ymd(first),
        ymd(last),
        text(batch.name, 30),
        String::new(),
        "1".into(),
        "0".into(),
        "0".into(),
        text(batch.currency, 3),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        text(&settings.chart, 2),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ];
    let mut out = String::new();
    out.push_str(&header.join(";"));
    out.push_str("\r\n");
    out.push_str(&COLUMNS.join(";"));
    out.push_str("\r\n");
    for line in batch.lines {
        let mut fields = vec![String::new(); COLUMNS.len()];
        fields[0] = amount(line.amount);
        fields[1] = text("S", 1);
        fields[2] = text(batch.currency, 3);
        fields[6] = settings.account_of(&line.category).to_string();
        fields[7] = settings.counter_account.clone();
        fields[9] = line.spent_on.format("%d%m").to_string();
        fields[10] = text(
            &format!("EW-{}", &line.expense_id.simple().to_string()[..8]),
            36,
        );
        fields[13] = text(&format!("{} ({})", line.merchant, line.category), 60);
        fields[20] = text("Expense-Wise ID", 20);
        fields[21] = text(&line.expense_id.to_string(), 210);
        fields[22] = text("Mitarbeiter", 20);
        fields[23] = text(&line.owner, 210);
        fields[114] = line.spent_on.format("%d%m%Y").to_string();
        out.push_str(&fields.join(";"));
        out.push_str("\r\n");
    }
    Some(windows_1252(&out))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn settings() -> DatevSettings {
        DatevSettings {
            consultant_number: 29098,
            client_number: 55003,
            fiscal_year_start: 4,
            account_length: 4,
            chart: "03".into(),
            expense_account: "4900".into(),
            counter_account: "1755".into(),
            category_accounts: BTreeMap::from([("travel".to_string(), "4670".to_string())]),
        }
    }

    #[test]
    fn a_batch_is_a_header_the_columns_and_a_line_per_expense() {
        let lines = [Line {
            expense_id: Uuid::from_u128(0xabcdef),
            spent_on: NaiveDate::from_ymd_opt(2026, 5, 3).unwrap(),
            amount: Decimal::new(123450, 2),
            category: "travel".into(),
            merchant: "Café \"Zum Löwen\"; Bahn 😀".into(),
            owner: "Åsa Öberg".into(),
        }];
        let settings = settings();
        let batch = Batch {
            settings: &settings,
            created_at: DateTime::from_timestamp(1_800_000_000, 123_000_000).unwrap(),
            exported_by: "Ada",
            name: "Expense-Wise 2026-05",
            currency: "EUR",
            lines: &lines,
        };
        let bytes = document(&batch).unwrap();
        let (text, _, bad) = encoding_rs::WINDOWS_1252.decode(&bytes);
        assert!(!bad);
        let rows: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(rows.len(), 4, "{text}");
        assert_eq!(
            rows[0],
            "\"EXTF\";700;21;\"Buchungsstapel\";13;20270115080000123;;\"RE\";\"Ada\";;29098;55003;\
             20260401;4;20260503;20260503;\"Expense-Wise 2026-05\";;1;0;0;\"EUR\";;;;;\"03\";;;;"
        );
        assert_eq!(rows[0].split(';').count(), HEADER_FIELDS);
        assert_eq!(rows[1].split(';').count(), 125);
        let booking: Vec<&str> = rows[2].split(';').collect();
        assert_eq!(&booking[..3], ["1234,50", "\"S\"", "\"EUR\""]);
        assert_eq!(&booking[6..10], ["4670", "1755", "", "0305"]);
        assert_eq!(booking[10], "\"EW-00000000\"");
        // The merchant's semicolon is inside quotes: split naively, one more field.
        assert_eq!(booking.len(), 126);
        assert!(rows[2].contains("\"Café \"\"Zum Löwen\"\"; Bahn ? (travel)\""));
        assert!(rows[2].contains("\"Åsa Öberg\""));
        assert!(rows[2].ends_with(";03052026;;;;;;;;;;"));
        assert_eq!(rows[3], "");
    }

    #[test]
    fn fiscal_years_begin_with_their_month() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(fiscal_year_of(day(2026, 3, 31), 4), day(2025, 4, 1));
        assert_eq!(fiscal_year_of(day(2026, 4, 1), 4), day(2026, 4, 1));
        assert_eq!(fiscal_year_of(day(2026, 12, 31), 1), day(2026, 1, 1));
    }
}
