//! OCR benchmark: reads a generated receipt corpus (`tests/support/receipt_corpus.py`)
//! with the product's engine and extraction, and reports per variant and per language how
//! many totals (with currency), dates and merchants were right, how many receipts would go
//! to a person for review, how many answers that went to nobody were wrong, and the time
//! per receipt: on the wall clock, and in CPU time (on a shared virtual machine the wall
//! clock also counts the time the core was given to others).
//!
//! ocrbench [--corpus receipts|strangers] [--part dev|heldout] [--receipts N]
//!          [--variants clean,photo,pdf] [--first I] [--languages de,fr] [--save-texts DIR]
//! ocrbench --texts DIR
//!
//! N receipts per variant (default 200; needs TEST_PYTHON with Pillow). Tune on `dev`;
//! report on `heldout`, which nobody tuning the extractor looks at.
//! OCRBENCH_VERBOSE=1 prints every miss and review, and the slowest receipts (use it on
//! `dev` only).
//! `--save-texts DIR` keeps what OCR read of each receipt (of a doubtful image read twice,
//! the reading kept), with its truth (`FILE.txt`, and `FILE.sure.txt` without the words the
//! engine doubted); `--texts DIR` then runs the extraction alone on
//! them, in seconds instead of minutes, to try a change to the extractor on a `dev` draw
//! (its times are the extraction's only).
//! `--languages` keeps only the receipts in those languages (each receipt is drawn from its
//! own seed, so they are the same ones a full draw holds), to study one language's misses
//! on more of its receipts without drawing the others'.
//! `--corpus strangers` reads `tests/support/receipt_strangers.py` instead (clean and
//! photo only): receipts drawn apart from the first corpus and from the extractor, to see
//! how far what holds on the one carries to receipts nobody wrote the code for.
//! The engine is the product's: PP-OCR with `PPOCR_MODELS` set, Tesseract without.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use expensewise_domain::Currency;
use expensewise_infra::config::{DEFAULT_OCR_LANGUAGES, DEFAULT_TESSERACT_LIBRARY, PPOCR_FILES};
use expensewise_workers::extract::{extract_read, needs_review};
use expensewise_workers::ocr::{OcrEngine, PaddleOcr, PdfTools, ReceiptReader, Tesseract};
use expensewise_workers::receipts::{read_fields, LOOKS_WITHIN};
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

#[derive(Default)]
struct Score {
    receipts: usize,
    total: usize,
    date: usize,
    merchant: usize,
    review: usize,
    /// Receipts that went to nobody and had a wrong total, currency or date.
    wrong_unreviewed: usize,
    times: Vec<Duration>,
    /// CPU time per receipt, the engine's and the PDF tools' included.
    cpu: Vec<Duration>,
    /// Per field: how many readings were reported at 0.9 or more, and how many of
    /// those were right — whether a sure field is a right one.
    sure: BTreeMap<&'static str, (usize, usize)>,
    /// The total's confidence in hundredths, with how many readings reported it and how
    /// many of those were right: where below 0.9 a reading stops being worth sending to
    /// nobody.
    total_by_confidence: BTreeMap<u32, (usize, usize)>,
}

fn p95(times: &mut [Duration]) -> Duration {
    times.sort();
    times
        .get((times.len() * 95 / 100).min(times.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

/// The CPU time used so far by this process and by the children it has waited for (the
/// engine, the PDF tools), user and system. Unlike the wall clock it leaves out the time
/// a virtual machine's host gave the core to another guest (steal); a core shared with
/// a neighbour still makes it vary between runs.
fn cpu_time() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name, in brackets, may hold spaces: fields are counted after it. The
    // state is field 3; utime, stime, cutime and cstime are fields 14 to 17.
    let (_, fields) = stat
        .rsplit_once(')')
        .ok_or_else(|| anyhow::anyhow!("/proc/self/stat has no command name"))?;
    let ticks = fields
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(str::parse::<u64>)
        .sum::<Result<u64, _>>()?;
    // In clock ticks of USER_HZ, which Linux fixes at 100 a second for user space.
    Ok(Duration::from_millis(ticks * 10))
}

impl Score {
    fn percent(&self, n: usize) -> f64 {
        100.0 * n as f64 / self.receipts.max(1) as f64
    }

    fn line(&mut self, label: &str) -> String {
        let mean = self.times.iter().sum::<Duration>() / self.times.len().max(1) as u32;
        format!(
            "{label:<22} {:>4}  total+currency {:>5.1} %  date {:>5.1} %  merchant {:>5.1} %  \
             review {:>5.1} %  wrong-unreviewed {:>4.1} %  mean {:>5.0} ms  p95 {:>5.0} ms  \
             cpu p95 {:>5.0} ms",
            self.receipts,
            self.percent(self.total),
            self.percent(self.date),
            self.percent(self.merchant),
            self.percent(self.review),
            100.0 * self.wrong_unreviewed as f64 / (self.receipts - self.review).max(1) as f64,
            mean.as_secs_f64() * 1000.0,
            p95(&mut self.times).as_secs_f64() * 1000.0,
            p95(&mut self.cpu).as_secs_f64() * 1000.0
        )
    }

    fn calibration(&self, label: &str) -> String {
        let fields: Vec<String> = self
            .sure
            .iter()
            .map(|(field, (sure, right))| match sure {
                0 => format!("{field} never"),
                _ => format!(
                    "{field} {:>5.1} % of {sure}",
                    100.0 * *right as f64 / *sure as f64
                ),
            })
            .collect();
        let totals: Vec<String> = self
            .total_by_confidence
            .iter()
            .rev()
            .map(|(confidence, (reported, right))| {
                format!(
                    "{:.2} {:.1} % of {reported}",
                    f64::from(*confidence) / 100.0,
                    100.0 * *right as f64 / *reported as f64
                )
            })
            .collect();
        format!(
            "{label:<22} right when reported ≥ 0.9: {}\n{label:<22} total right by its confidence: {}",
            fields.join(", "),
            totals.join(", ")
        )
    }
}

/// The truths of the receipts saved in `dir` by `--save-texts`, one JSON line each.
fn saved_truths(dir: &Path) -> anyhow::Result<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .filter(|path| {
            path.as_ref()
                .map_or(true, |p| p.extension() == Some("json".as_ref()))
        })
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(
        !files.is_empty(),
        "{} holds no saved receipts",
        dir.display()
    );
    files.sort();
    let mut truths = String::new();
    for file in files {
        truths.push_str(std::fs::read_to_string(file)?.trim_end());
        truths.push('\n');
    }
    Ok(truths)
}

/// Merchant names compared as a person would: case, accents and punctuation aside.
fn folded(name: &str) -> String {
    name.nfd()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn argument(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let part = argument(&args, "--part").unwrap_or_else(|| "heldout".into());
    let count = argument(&args, "--receipts").unwrap_or_else(|| "200".into());
    let variants = argument(&args, "--variants").unwrap_or_else(|| "clean,photo,pdf".into());
    let first = argument(&args, "--first").unwrap_or_else(|| "0".into());
    let script = match argument(&args, "--corpus").as_deref() {
        None | Some("receipts") => {
            concat!(env!("CARGO_MANIFEST_DIR"), "/support/receipt_corpus.py")
        }
        Some("strangers") => concat!(env!("CARGO_MANIFEST_DIR"), "/support/receipt_strangers.py"),
        Some(other) => anyhow::bail!("unknown corpus {other}: receipts or strangers"),
    };
    let saved = argument(&args, "--texts").map(PathBuf::from);
    let save_to = argument(&args, "--save-texts").map(PathBuf::from);
    let folder = tempfile::tempdir()?;
    let truths = match &saved {
        Some(dir) => saved_truths(dir)?,
        None => {
            let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
            let mut draw = std::process::Command::new(python);
            draw.args([script, "--part", &part, "--count", &count, "--variants"])
                .args([&variants, "--first", &first, "--out"])
                .arg(folder.path());
            if let Some(languages) = argument(&args, "--languages") {
                draw.args(["--languages", &languages]);
            }
            let drawn = draw.status()?;
            anyhow::ensure!(drawn.success(), "drawing the corpus failed");
            std::fs::read_to_string(folder.path().join("truth.jsonl"))?
        }
    };
    if let Some(dir) = &save_to {
        std::fs::create_dir_all(dir)?;
    }

    // The product's choice: PP-OCR where its models are named, Tesseract otherwise.
    let engine: Box<dyn OcrEngine> = match std::env::var("PPOCR_MODELS") {
        Ok(folder) => {
            let [detection, recognition, dictionary] =
                PPOCR_FILES.map(|file| Path::new(&folder).join(file));
            Box::new(PaddleOcr::load(&detection, &recognition, &dictionary)?)
        }
        Err(_) => Box::new(Tesseract::with_languages(
            &std::env::var("TESSERACT_LIBRARY")
                .unwrap_or_else(|_| DEFAULT_TESSERACT_LIBRARY.into()),
            &std::env::var("OCR_LANGUAGES").unwrap_or_else(|_| DEFAULT_OCR_LANGUAGES.into()),
        )),
    };
    eprintln!("engine: {}", engine.check()?);
    let reader = ReceiptReader {
        engine,
        pdf: PdfTools::default(),
        time_limit: Duration::from_secs(30),
        looks_within: LOOKS_WITHIN,
    };
    // The organization's currency: receipts that print none are read in it.
    let eur = Currency::parse("EUR")?;
    // Each receipt counts as uploaded now, as in the product.
    let today = chrono::Utc::now().date_naive();
    let verbose = std::env::var("OCRBENCH_VERBOSE").is_ok();
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    let mut slowest: Vec<(Duration, String)> = Vec::new();
    for line in truths.lines() {
        let truth: Value = serde_json::from_str(line)?;
        let field = |name: &str| truth[name].as_str().unwrap_or_default().to_string();
        let started = Instant::now();
        let cpu_started = cpu_time()?;
        // A receipt OCR could not read was saved without a text. Read, it is read as the
        // product does, a second time where the first is in doubt; saved is the text
        // whose fields were kept.
        let reading = match &saved {
            Some(dir) => std::fs::read_to_string(dir.join(format!("{}.txt", field("file"))))
                .map(|text| {
                    let sure =
                        std::fs::read_to_string(dir.join(format!("{}.sure.txt", field("file"))))
                            .unwrap_or_else(|_| text.clone());
                    let fields = extract_read(&text, &sure, eur, today);
                    (text, sure, fields)
                })
                .map_err(|e| e.to_string()),
            None => {
                let bytes = std::fs::read(folder.path().join(field("file")))?;
                read_fields(&reader, &bytes, &field("content_type"), eur, today)
                    .await
                    .map(|(reading, fields)| (reading.text, reading.sure, fields))
                    .map_err(|e| e.to_string())
            }
        };
        if let Some(dir) = &save_to {
            std::fs::write(dir.join(format!("{}.json", field("file"))), line)?;
            if let Ok((text, sure, _)) = &reading {
                std::fs::write(dir.join(format!("{}.txt", field("file"))), text)?;
                std::fs::write(dir.join(format!("{}.sure.txt", field("file"))), sure)?;
            }
        }
        let fields = reading.map(|(_, _, fields)| fields);
        let elapsed = started.elapsed();
        let cpu = cpu_time()? - cpu_started;
        let currency_ok = fields.as_ref().is_ok_and(|f| {
            f.total
                .is_some_and(|m| m.currency().code() == field("currency"))
        });
        let (total_ok, date_ok, merchant_ok, review) = match &fields {
            Ok(f) => (
                f.total.is_some_and(|m| {
                    m.amount_string() == field("total") && m.currency().code() == field("currency")
                }),
                f.date.map(|d| d.to_string()) == Some(field("date")),
                f.merchant.as_deref().map(folded) == Some(folded(&field("merchant"))),
                needs_review(f),
            ),
            Err(_) => (false, false, false, true),
        };
        for key in [
            field("variant"),
            format!("{} {}", field("variant"), field("language")),
        ] {
            let score = scores.entry(key).or_default();
            score.receipts += 1;
            score.total += usize::from(total_ok);
            score.date += usize::from(date_ok);
            score.merchant += usize::from(merchant_ok);
            score.review += usize::from(review);
            score.wrong_unreviewed += usize::from(!(review || (total_ok && date_ok)));
            score.times.push(elapsed);
            score.cpu.push(cpu);
            if let Ok(f) = &fields {
                let checked = [
                    ("total", total_ok),
                    ("currency", currency_ok),
                    ("date", date_ok),
                    ("merchant", merchant_ok),
                ];
                if let Some(confidence) = f.confidence.get("total") {
                    // Confidences are set in hundredths.
                    let entry = score
                        .total_by_confidence
                        .entry((confidence * 100.0).round() as u32)
                        .or_default();
                    entry.0 += 1;
                    entry.1 += usize::from(total_ok);
                }
                for (name, ok) in checked {
                    let sure = f.confidence.get(name).is_some_and(|c| *c >= 0.9);
                    let entry = score.sure.entry(name).or_default();
                    entry.0 += usize::from(sure);
                    entry.1 += usize::from(sure && ok);
                }
            }
        }
        if verbose {
            slowest.push((elapsed, field("file")));
        }
        if verbose && (review || !(total_ok && date_ok && merchant_ok)) {
            let got = fields.as_ref().map(|f| {
                (
                    f.merchant.clone(),
                    f.date,
                    f.total
                        .map(|m| format!("{} {}", m.amount_string(), m.currency().code())),
                    &f.confidence,
                )
            });
            eprintln!(
                "{} {}: want {} {} {} {}; got {got:?}\n{}",
                if review { "review" } else { "miss" },
                field("file"),
                field("merchant"),
                field("date"),
                field("total"),
                field("currency"),
                fields.as_ref().map(|f| f.text.as_str()).unwrap_or_default()
            );
        }
    }
    // The tail, named: where a p95 comes from.
    slowest.sort_by(|a, b| b.cmp(a));
    for (elapsed, file) in slowest.iter().take(15) {
        eprintln!("slow {file}: {} ms", elapsed.as_millis());
    }
    match &saved {
        Some(dir) => println!("texts saved in {}: extraction only", dir.display()),
        None => println!("part {part}: {count} receipts per variant, from index {first}"),
    }
    for (label, score) in &mut scores {
        println!("{}", score.line(label));
    }
    for (label, score) in scores.iter().filter(|(label, _)| !label.contains(' ')) {
        println!("{}", score.calibration(label));
    }
    Ok(())
}
