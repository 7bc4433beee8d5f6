//! OCR benchmark: draws receipts (clean and photo-like), reads them with the product's
//! engine and extraction, and reports per-field accuracy and time per receipt.
//!
//! ocrbench [--receipts N]       (N per kind, default 60; needs TEST_PYTHON with Pillow)
//!
//! Kinds: clean images, photo-like images, and PDFs (text layer or scanned).

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use expensewise_domain::Currency;
use expensewise_workers::extract::extract;
use expensewise_workers::ocr::{PdfTools, ReceiptReader, Tesseract};
use serde_json::json;

/// A small deterministic generator: the same receipts every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() as usize) % items.len()]
    }

    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

const MERCHANTS: &[&str] = &[
    "BLUE BOTTLE COFFEE",
    "Corner Shop",
    "Hotel Adler",
    "TAXI ROMA",
    "Bakery Huber",
    "The Green Grocer",
    "PIZZERIA NAPOLI",
    "Office Supplies Ltd",
    "Ramen Ya",
    "Book Nook",
    "City Parking",
    "Fresh Market",
];
const ITEMS: &[&str] = &[
    "Latte",
    "Croissant",
    "Sandwich",
    "Water",
    "Pasta",
    "Salad",
    "Notebook",
    "Pens",
    "Parking",
    "Soup",
    "Tea",
    "Bread",
];
const FONTS: &[&str] = &[
    "DejaVuSans.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansCondensed.ttf",
    "DejaVuSans-Bold.ttf",
];

struct Truth {
    merchant: String,
    date: NaiveDate,
    total: String,
    currency: &'static str,
}

fn money(cents: u64, currency: &str) -> String {
    if currency == "JPY" {
        format!("{}", cents / 100 * 10)
    } else {
        format!("{}.{:02}", cents / 100, cents % 100)
    }
}

fn date_text(rng: &mut Lcg, date: NaiveDate, currency: &str) -> String {
    let us = currency == "USD";
    match rng.range(0, 5) {
        0 => date.format("%Y-%m-%d").to_string(),
        1 if us => date.format("%m/%d/%Y").to_string(),
        1 => date.format("%d/%m/%Y").to_string(),
        2 => date.format("%d.%m.%Y").to_string(),
        3 => date.format("%d %B %Y").to_string(),
        4 => date.format("%b %d, %Y").to_string(),
        _ => date.format("%d-%b-%y").to_string(),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Clean,
    /// Slight rotation, blur, noise, uneven light, some JPEG, some with the camera
    /// turned (EXIF orientation).
    Photo,
    /// Half with a text layer, half scans saved as PDF.
    Pdf,
}

fn receipt(rng: &mut Lcg, kind: Kind) -> (serde_json::Value, Truth) {
    let currency = *rng.pick(&["EUR", "GBP", "USD", "CHF", "JPY"]);
    let merchant = rng.pick(MERCHANTS).to_string();
    let date =
        NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date") + chrono::Days::new(rng.range(0, 600));
    let mut lines = vec![
        merchant.clone(),
        format!("{} Main Street", rng.range(1, 99)),
    ];
    lines.push(format!("Date: {}", date_text(rng, date, currency)));
    let mut subtotal = 0;
    for _ in 0..rng.range(1, 5) {
        let cents = rng.range(80, 4000);
        subtotal += cents;
        lines.push(format!("{} {}", rng.pick(ITEMS), money(cents, currency)));
    }
    let total = money(subtotal, currency);
    let symbol = match currency {
        "EUR" => "€",
        "GBP" => "£",
        "USD" => "$",
        "JPY" => "¥",
        _ => "",
    };
    lines.push(format!("Subtotal {}", money(subtotal, currency)));
    if currency != "JPY" {
        lines.push(format!("VAT 19% {}", money(subtotal * 19 / 119, currency)));
    }
    lines.push(match rng.range(0, 2) {
        0 => format!("TOTAL {currency} {total}"),
        1 if !symbol.is_empty() => format!("Total {symbol}{total}"),
        _ => format!("Amount due {total} {currency}"),
    });
    let cash = (subtotal / 1000 + 1) * 1000;
    lines.push(format!("Cash {}", money(cash, currency)));
    lines.push(format!("Change {}", money(cash - subtotal, currency)));
    lines.push("Thank you!".to_string());
    let mut spec = json!({
        "lines": lines,
        "font": rng.pick(FONTS),
        "size": rng.range(22, 34),
    });
    match kind {
        Kind::Clean => {}
        Kind::Photo => {
            spec["rotate"] = json!((rng.range(0, 80) as f64 - 40.0) / 10.0);
            spec["blur"] = json!(rng.range(3, 9) as f64 / 10.0);
            spec["noise"] = json!(rng.range(20, 60));
            spec["shade"] = json!(rng.range(0, 1) == 1);
            spec["format"] = json!(*rng.pick(&["PNG", "JPEG"]));
            if rng.range(0, 4) == 0 {
                spec["format"] = json!("JPEG");
                spec["exif"] = json!(*rng.pick(&[3, 6, 8]));
            }
        }
        Kind::Pdf => {
            spec["format"] = json!(*rng.pick(&["PDF", "TEXTPDF"]));
        }
    }
    (
        spec,
        Truth {
            merchant,
            date,
            total,
            currency,
        },
    )
}

#[derive(Default)]
struct Score {
    receipts: usize,
    total: usize,
    date: usize,
    merchant: usize,
    times: Vec<Duration>,
}

impl Score {
    fn percent(&self, n: usize) -> f64 {
        100.0 * n as f64 / self.receipts.max(1) as f64
    }

    fn report(&mut self, label: &str) {
        self.times.sort();
        let mean = self.times.iter().sum::<Duration>() / self.times.len().max(1) as u32;
        let p95 = self.times[(self.times.len() * 95 / 100).min(self.times.len() - 1)];
        println!(
            "{label}: {} receipts; total {:.1} %, date {:.1} %, merchant {:.1} % exact; \
             {:.0} ms per receipt (mean), p95 {:.0} ms",
            self.receipts,
            self.percent(self.total),
            self.percent(self.date),
            self.percent(self.merchant),
            mean.as_secs_f64() * 1000.0,
            p95.as_secs_f64() * 1000.0
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let per_kind: usize = args
        .iter()
        .position(|a| a == "--receipts")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(60);
    let reader = ReceiptReader {
        engine: Box::new(Tesseract {
            program: std::env::var("TESSERACT_PATH").unwrap_or_else(|_| "tesseract".into()),
        }),
        pdf: PdfTools::default(),
        time_limit: Duration::from_secs(30),
    };
    let eur = Currency::parse("EUR")?;
    let mut rng = Lcg(42);
    for (kind, label) in [
        (Kind::Clean, "clean"),
        (Kind::Photo, "photo-like"),
        (Kind::Pdf, "PDF"),
    ] {
        let mut score = Score::default();
        for _ in 0..per_kind {
            let (spec, truth) = receipt(&mut rng, kind);
            let image = expensewise_tests::draw_receipt(&spec);
            let content_type = match spec["format"].as_str() {
                Some("JPEG") => "image/jpeg",
                Some("PDF" | "TEXTPDF") => "application/pdf",
                _ => "image/png",
            };
            let started = Instant::now();
            let reading = reader.read(&image, content_type).await;
            let fields = reading.map(|r| extract(&r.text, eur));
            score.times.push(started.elapsed());
            score.receipts += 1;
            let Ok(fields) = fields else {
                continue;
            };
            let total_ok = fields.total.is_some_and(|m| {
                m.amount_string() == truth.total && m.currency().code() == truth.currency
            });
            score.total += usize::from(total_ok);
            score.date += usize::from(fields.date == Some(truth.date));
            score.merchant +=
                usize::from(fields.merchant.as_deref() == Some(truth.merchant.as_str()));
            if std::env::var("OCRBENCH_VERBOSE").is_ok()
                && !(total_ok
                    && fields.date == Some(truth.date)
                    && fields.merchant.as_deref() == Some(truth.merchant.as_str()))
            {
                eprintln!(
                    "miss: want {} {} {} {}; got {:?} {:?} {:?}\n{}",
                    truth.merchant,
                    truth.date,
                    truth.total,
                    truth.currency,
                    fields.merchant,
                    fields.date,
                    fields
                        .total
                        .map(|m| format!("{} {}", m.amount_string(), m.currency().code())),
                    fields.text
                );
            }
        }
        score.report(label);
    }
    Ok(())
}
