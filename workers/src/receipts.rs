//! The receipt workers: OCR of every uploaded (or rescan-requested) receipt, and the
//! process manager that turns a settled receipt uploaded with `create_expense=true` into a
//! draft expense (the use case itself is `expensewise_application::receipts`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use expensewise_application::receipts::draft_from_receipt;
use expensewise_domain::receipt::{
    Extraction, ReceiptCommand, ReceiptState, ScanStatus, AGGREGATE_TYPE, RECEIPT_RESCAN_REQUESTED,
    RECEIPT_REVIEWED, RECEIPT_SCANNED, RECEIPT_UPLOADED,
};
use expensewise_domain::{Currency, EventMetadata, Receipt};
use expensewise_infra::consumer::Handler;
use expensewise_infra::event_store::Scope;
use expensewise_infra::object_store::ObjectStore;
use expensewise_infra::{nats, EventStore, RecordedEvent};
use uuid::Uuid;

use crate::extract::{
    doubts, extract_read, needs_review, total_rows, READINGS_DISAGREE, REVIEW_BELOW, UNCHECKED,
};
use crate::ocr::{Look, OcrError, PageText, Reading, ReceiptReader, RowSpan};

/// The currency of organizations that never chose one.
const FALLBACK_CURRENCY: &str = "EUR";

/// Metadata for what a worker does because of `event`: same organization and
/// correlation, caused by that event, done by no user.
fn caused_by(event: &RecordedEvent, organization_id: Uuid) -> EventMetadata {
    let correlation = event
        .metadata
        .get("correlation_id")
        .and_then(|v| v.as_str())
        .and_then(|v| Uuid::parse_str(v).ok());
    let event_id = nats::event_id(&event.aggregate_type, &event.aggregate_id, event.sequence);
    EventMetadata {
        organization_id,
        actor_id: None,
        occurred_at: Utc::now(),
        correlation_id: correlation.unwrap_or(event_id),
        causation_id: event_id,
        request_id: None,
        traceparent: event
            .metadata
            .get("traceparent")
            .and_then(|v| v.as_str())
            .map(str::to_string),
    }
}

async fn load_receipt(store: &EventStore, id: &str) -> anyhow::Result<Option<ReceiptState>> {
    let receipt: Receipt = store.load(id).await?;
    Ok(receipt.state)
}

/// Reads each uploaded receipt and records what it found, or why it found nothing.
pub struct OcrWorker {
    pub store: Arc<EventStore>,
    pub objects: ObjectStore,
    pub reader: ReceiptReader,
}

#[async_trait]
impl Handler for OcrWorker {
    fn name(&self) -> &'static str {
        "ocr"
    }

    fn handles(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (AGGREGATE_TYPE, RECEIPT_UPLOADED),
            (AGGREGATE_TYPE, RECEIPT_RESCAN_REQUESTED),
        ]
    }

    async fn handle(&self, event: &RecordedEvent) -> anyhow::Result<()> {
        let Some(receipt) = load_receipt(&self.store, &event.aggregate_id).await? else {
            anyhow::bail!("receipt {} is not in the store", event.aggregate_id);
        };
        if receipt.status != ScanStatus::Pending {
            // Read before (a redelivery): nothing to do.
            return Ok(());
        }
        let bytes = self.objects.get(&receipt.storage_key).await?;
        let organization = self
            .store
            .load_organization(&receipt.organization_id.to_string())
            .await?;
        let currency = organization
            .default_currency()
            .map_or_else(|| Currency::parse(FALLBACK_CURRENCY), Ok)?;
        let started = Instant::now();
        let uploaded = receipt.uploaded_at.date_naive();
        let outcome = read_fields(
            &self.reader,
            &bytes,
            &receipt.content_type,
            currency,
            uploaded,
        )
        .await;
        let source = outcome.as_ref().map_or("", |(r, _)| r.source);
        let command = match outcome {
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => ReceiptCommand::RecordScanFailure {
                reason: e.to_string(),
                at: Utc::now(),
            },
            Ok((_, extraction)) => {
                let doubts = doubts(&extraction);
                if doubts.is_empty() {
                    ReceiptCommand::RecordScan {
                        extraction,
                        at: Utc::now(),
                    }
                } else {
                    ReceiptCommand::SendToReview {
                        extraction,
                        doubts,
                        at: Utc::now(),
                    }
                }
            }
        };
        let outcome = match command {
            ReceiptCommand::RecordScan { .. } => "scanned",
            ReceiptCommand::SendToReview { .. } => "needs_review",
            _ => "failed",
        };
        metrics::histogram!("expensewise_ocr_duration_seconds", "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("expensewise_ocr_receipts_total", "outcome" => outcome).increment(1);
        tracing::info!(
            receipt = %event.aggregate_id,
            source,
            elapsed_ms = started.elapsed().as_millis() as u64,
            outcome,
            "receipt read"
        );
        self.store
            .execute::<Receipt>(
                &Scope::none(),
                &event.aggregate_id,
                command,
                &caused_by(event, receipt.organization_id),
            )
            .await?;
        Ok(())
    }
}

/// Another look at a doubtful image is taken only within this long of the start of its
/// reading (the product's [`ReceiptReader::looks_within`]), and only where the first
/// reading left time for one as long (a look at a smaller, sharpened or black-and-white
/// image takes about as long or less; a grainy photo's black and white can take longer,
/// and is stopped then). Beyond it a person's review is the cheaper check: unbounded, the
/// looks took the second corpus's dev photos' p95 from 2.5 s to 6.3 s.
pub const LOOKS_WITHIN: Duration = Duration::from_millis(1500);

/// Reads a receipt and its fields. Where the total is in doubt, the rows that label it
/// are read again alone ([`ReceiptReader::read_rows`]), at each of [`ROW_SCALES`], in
/// place of the page's reading of them. Where the fields are still in doubt, an image is
/// read again ([`ReceiptReader::read_again`]), smaller, then sharpened, then in black and
/// white. Each look is taken while time allows ([`ReceiptReader::looks_within`]), and
/// another reading kept if it leaves no doubt or its total is surer: a person has nothing
/// to check, or finds the better fields filled in. So is an image whose total nothing on it checks (a
/// slip's one amount), with each look while time allows: a look that reads another total
/// sends it to a person. A reading that fails or runs out of time leaves the ones
/// before.
pub async fn read_fields(
    reader: &ReceiptReader,
    bytes: &[u8],
    content_type: &str,
    currency: Currency,
    uploaded: NaiveDate,
) -> Result<(Reading, Extraction), OcrError> {
    let started = Instant::now();
    let mut reading = reader.read(bytes, content_type).await?;
    let first_took = started.elapsed();
    let mut extraction = extract_read(&reading.text, &reading.sure, currency, uploaded);
    let Some(image) = reading.image.take() else {
        return Ok((reading, extraction));
    };
    let total_confidence = |e: &Extraction| e.confidence.get("total").copied().unwrap_or(0.0);
    let surer = |e: &Extraction| (!needs_review(e), total_confidence(e));
    let sure =
        |e: &Extraction, field: &str| e.confidence.get(field).is_some_and(|c| *c >= REVIEW_BELOW);
    let currency_of = |e: &Extraction| e.total.map(|total| total.currency());
    // The one check an unchecked total can have is other readings. One other at a smaller
    // size agreed on digits misread alike on the dev part's slips (`Balance  S5249.79` for
    // $249.79) where a sharpened or a black and white reading did not.
    let unchecked = |e: &Extraction| total_confidence(e) == UNCHECKED && !needs_review(e);
    let mut totals_read = vec![extraction.total];
    let mut sure_dates = vec![];
    // The total's rows first: read alone they are a fraction of the page. They are all the
    // row looks change, so only a total in doubt is worth them.
    let (label_rows, spans): (Vec<usize>, Vec<RowSpan>) = total_rows(&reading.text)
        .into_iter()
        .filter_map(|i| Some((i, *reading.rows.get(i)?)))
        .unzip();
    let rows_again = if !sure(&extraction, "total") && !spans.is_empty() {
        &ROW_SCALES[..]
    } else {
        &[]
    };
    let (first_text, first_sure) = (reading.text.clone(), reading.sure.clone());
    let again = rows_again
        .iter()
        .map(|scale| Again::Rows(*scale))
        .chain(Look::ALL.map(Again::Page));
    for look in again {
        let settled = !needs_review(&extraction) && !unchecked(&extraction);
        if settled || started.elapsed() + first_took > reader.looks_within {
            break;
        }
        let until = started + reader.looks_within;
        let page = match look {
            Again::Page(look) => reader.read_again(image.clone(), look, started, until).await,
            Again::Rows(scale) => reader
                .read_rows(&image, &spans, scale, started, until)
                .await
                .map(|read| {
                    let rows = label_rows.iter().copied().zip(read);
                    with_rows_replaced(&first_text, &first_sure, rows)
                }),
        };
        let Ok(page) = page else {
            break;
        };
        let mut again = extract_read(&page.text, &page.sure, currency, uploaded);
        // Nor does a reading's unchecked total stand alone against the ones before: it
        // stands where an earlier reading of the page saw it too. A row read again is the
        // same print as the page's reading of it, no second opinion: only the arithmetic
        // makes its total sure.
        let row_look = matches!(look, Again::Rows(_));
        let seen = !row_look && totals_read.contains(&again.total);
        if total_confidence(&again) == UNCHECKED && !seen {
            again
                .confidence
                .insert("total".to_string(), READINGS_DISAGREE);
        }
        if !row_look {
            totals_read.push(again.total);
        }
        sure_dates.extend([&extraction, &again].into_iter().filter_map(sure_date));
        // A date or currency two readings are each sure of, and differ on, is in doubt:
        // one of them is misread, and a person decides.
        let differ = [
            ("date", extraction.date != again.date),
            ("currency", currency_of(&extraction) != currency_of(&again)),
        ];
        for (field, differs) in differ {
            if differs && sure(&extraction, field) && sure(&again, field) {
                again
                    .confidence
                    .insert(field.to_string(), READINGS_DISAGREE);
            }
        }
        if surer(&again) > surer(&extraction) {
            (reading.text, reading.sure) = (page.text, page.sure);
            extraction = again;
        } else if unchecked(&extraction) && again.total.is_some_and(|t| Some(t) != extraction.total)
        {
            // Two readings of the same digits disagree: one is misread. A reading that
            // finds no total says nothing of them.
            extraction
                .confidence
                .insert("total".to_string(), READINGS_DISAGREE);
        }
    }
    // A date the kept reading missed or is unsure of, another reading may be sure of (a
    // smaller image joins a date's broken digits): as sure as that reading where the
    // kept one saw no date and no other reading was sure of another, in doubt otherwise.
    // A date readings are sure of and differ on stays in doubt as it is.
    let contested = sure_dates
        .iter()
        .any(|(date, _)| extraction.date == Some(*date));
    if !sure(&extraction, "date") && !contested {
        let one_date = sure_dates.windows(2).all(|pair| pair[0].0 == pair[1].0);
        let surest = sure_dates
            .into_iter()
            .max_by(|(_, a), (_, b)| a.total_cmp(b));
        if let Some((date, confidence)) = surest {
            let confidence = match extraction.date {
                None if one_date => confidence,
                _ => READINGS_DISAGREE,
            };
            extraction.date = Some(date);
            extraction.confidence.insert("date".to_string(), confidence);
        }
    }
    Ok((reading, extraction))
}

/// How a doubtful image is read again.
#[derive(Debug, Clone, Copy)]
enum Again {
    /// The rows that label the total, each alone, at this scale.
    Rows(f32),
    /// The whole page, as the look shows it.
    Page(Look),
}

/// The scales the total's rows are read again at, in turn.
const ROW_SCALES: [f32; 3] = [1.0, 1.5, 2.0];

/// The page's text with the rows read again in place of the ones it had; the words it
/// was sure of as they were (the shop's name is read from them, not from these rows).
fn with_rows_replaced(
    text: &str,
    sure: &str,
    again: impl Iterator<Item = (usize, String)>,
) -> PageText {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // A row read as nothing keeps what the page showed.
    for (i, line) in again.filter(|(_, line)| !line.trim().is_empty()) {
        if let Some(row) = lines.get_mut(i) {
            *row = line;
        }
    }
    PageText {
        text: lines.iter().map(|line| format!("{line}\n")).collect(),
        sure: sure.to_string(),
        rows: Vec::new(),
    }
}

/// A reading's date with its confidence, where that reading is sure of it.
fn sure_date(extraction: &Extraction) -> Option<(NaiveDate, f32)> {
    let confidence = *extraction.confidence.get("date")?;
    (confidence >= REVIEW_BELOW)
        .then_some(extraction.date)
        .flatten()
        .map(|date| (date, confidence))
}

/// Turns receipts uploaded with `create_expense=true` into draft expenses once their
/// fields are settled: read with confidence, or reviewed by a person.
pub struct ReceiptExpenses {
    pub store: Arc<EventStore>,
}

#[async_trait]
impl Handler for ReceiptExpenses {
    fn name(&self) -> &'static str {
        "receipt-expenses"
    }

    fn handles(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (AGGREGATE_TYPE, RECEIPT_SCANNED),
            (AGGREGATE_TYPE, RECEIPT_REVIEWED),
        ]
    }

    async fn handle(&self, event: &RecordedEvent) -> anyhow::Result<()> {
        let receipt_id = Uuid::parse_str(&event.aggregate_id)?;
        // The use case loads the receipt; the event says whose it is.
        let organization_id = event
            .metadata
            .get(expensewise_domain::metadata::ORGANIZATION_ID)
            .and_then(|v| v.as_str())
            .and_then(|v| Uuid::parse_str(v).ok())
            .ok_or_else(|| {
                anyhow::anyhow!("event of receipt {receipt_id} names no organization")
            })?;
        let metadata = caused_by(event, organization_id);
        draft_from_receipt(&self.store, receipt_id, &metadata)
            .await
            .map_err(|e| anyhow::anyhow!("making the draft expense: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use image::codecs::png::PngEncoder;
    use image::GrayImage;

    use super::*;
    use crate::extract::extract;
    use crate::ocr::{OcrEngine, PageText, PdfTools, RowSpan};

    /// An engine that reads its texts in turn, keeping each image it was given.
    struct InTurn {
        texts: Mutex<Vec<&'static str>>,
        images: Arc<Mutex<Vec<GrayImage>>>,
    }

    #[async_trait]
    impl OcrEngine for InTurn {
        fn name(&self) -> &'static str {
            "in-turn"
        }

        fn check(&self) -> Result<String, OcrError> {
            Ok("in-turn".into())
        }

        async fn read(&self, image: GrayImage) -> Result<PageText, OcrError> {
            self.images.lock().unwrap().push(image.clone());
            let mut texts = self.texts.lock().unwrap();
            let text = if texts.is_empty() {
                ""
            } else {
                texts.remove(0)
            };
            Ok(PageText::all_sure(text.to_string()))
        }
    }

    /// An engine that reads a page as `page`, a row to each of its lines, and each row
    /// cut out as `lines`, in turn, keeping the rows' images it was given.
    struct ByRows {
        page: &'static str,
        lines: Mutex<Vec<&'static str>>,
        pages_read: Arc<Mutex<usize>>,
        rows_read: Arc<Mutex<Vec<GrayImage>>>,
    }

    /// The height of each of [`ByRows`]'s rows, in pixels.
    const ROW_HEIGHT: u32 = 20;

    #[async_trait]
    impl OcrEngine for ByRows {
        fn name(&self) -> &'static str {
            "by-rows"
        }

        fn check(&self) -> Result<String, OcrError> {
            Ok("by-rows".into())
        }

        async fn read(&self, _: GrayImage) -> Result<PageText, OcrError> {
            *self.pages_read.lock().unwrap() += 1;
            let rows = (0..self.page.lines().count() as u32)
                .map(|i| RowSpan {
                    top: 40 + i * 2 * ROW_HEIGHT,
                    bottom: 40 + i * 2 * ROW_HEIGHT + ROW_HEIGHT,
                })
                .collect();
            Ok(PageText {
                rows,
                ..PageText::all_sure(self.page.to_string())
            })
        }

        async fn read_lines(&self, images: Vec<GrayImage>) -> Result<Vec<String>, OcrError> {
            let mut lines = self.lines.lock().unwrap();
            let read = images.iter().map(|_| {
                if lines.is_empty() {
                    String::new()
                } else {
                    lines.remove(0).to_string()
                }
            });
            let read = read.collect();
            self.rows_read.lock().unwrap().extend(images);
            Ok(read)
        }
    }

    #[tokio::test]
    async fn a_doubtful_total_row_is_read_again_alone_and_the_page_only_once_when_that_settles_it()
    {
        let pages_read = Arc::new(Mutex::new(0));
        let rows_read = Arc::new(Mutex::new(Vec::new()));
        let reader = |lines: Vec<&'static str>| ReceiptReader {
            engine: Box::new(ByRows {
                page: DOUBTFUL,
                lines: Mutex::new(lines),
                pages_read: pages_read.clone(),
                rows_read: rows_read.clone(),
            }),
            pdf: PdfTools::default(),
            time_limit: Duration::from_secs(10),
            looks_within: LOOKS_IN_TESTS,
        };
        let (text, extraction) = read_photo(&reader(vec!["Total  €12.50"])).await;
        assert_eq!(text, DOUBTFUL.replace("Total €72.50", "Total  €12.50"));
        assert!(!needs_review(&extraction), "{extraction:?}");
        assert_eq!(*pages_read.lock().unwrap(), 1);
        // The one total row (the fifth), across the page, with a margin of 7 px.
        let rows: Vec<_> = rows_read.lock().unwrap().drain(..).collect();
        let [row] = &rows[..] else {
            panic!("{} rows read", rows.len());
        };
        assert_eq!(row.dimensions(), (PAGE_WIDTH, ROW_HEIGHT + 2 * 7));

        // Read as nothing, then misread as before at each size: the page is read again.
        let misread = "Total €72.50";
        let (text, extraction) = read_photo(&reader(vec!["", misread, misread])).await;
        assert_eq!(text, DOUBTFUL);
        assert!(needs_review(&extraction), "{extraction:?}");
        let widths: Vec<u32> = rows_read
            .lock()
            .unwrap()
            .iter()
            .map(GrayImage::width)
            .collect();
        assert_eq!(widths, [PAGE_WIDTH, 1080, 1440]);
        assert_eq!(*pages_read.lock().unwrap(), 1 + 1 + 3);
    }

    #[tokio::test]
    async fn a_total_only_its_row_read_again_shows_goes_to_a_person_filled_in() {
        // A slip whose total's amount the page's reading put on a row of its own: nothing
        // on it checks the amount, nor its row read alone (the same print).
        let page = "Bistro Test\nRue Neuve 3\nFrance\n2024-03-01 12:00\nTOTAL TTC\n€12.50\n";
        let reader = ReceiptReader {
            engine: Box::new(ByRows {
                page,
                lines: Mutex::new(vec!["TOTAL TTC  €12.50"]),
                pages_read: Arc::default(),
                rows_read: Arc::default(),
            }),
            pdf: PdfTools::default(),
            time_limit: Duration::from_secs(10),
            looks_within: LOOKS_IN_TESTS,
        };
        let (text, extraction) = read_photo(&reader).await;
        let uploaded = NaiveDate::from_ymd_opt(2024, 3, 2).unwrap();
        let first = extract(page, Currency::parse("EUR").unwrap(), uploaded);
        assert_eq!(first.total, extraction.total);
        assert!(first.confidence["total"] < REVIEW_BELOW, "{first:?}");
        assert_eq!(
            extraction.total.map(|t| t.amount_string()).as_deref(),
            Some("12.50")
        );
        assert!(needs_review(&extraction), "{extraction:?}");
        // The row's reading is no surer than the page's: the page's stays.
        assert_eq!(text, page);
    }

    /// What [`read_fields`] makes of a photo the engine reads as `texts`, in turn, and the
    /// images it was given.
    async fn fields_of_photo(texts: Vec<&'static str>) -> (String, Extraction, Vec<GrayImage>) {
        let images = Arc::new(Mutex::new(Vec::new()));
        let reader = ReceiptReader {
            engine: Box::new(InTurn {
                texts: Mutex::new(texts),
                images: images.clone(),
            }),
            pdf: PdfTools::default(),
            time_limit: Duration::from_secs(10),
            looks_within: LOOKS_IN_TESTS,
        };
        let (text, extraction) = read_photo(&reader).await;
        let images = images.lock().unwrap().clone();
        (text, extraction, images)
    }

    const PAGE_WIDTH: u32 = 720;

    /// The order of the looks is tested here, not their budget: a loaded machine running
    /// the tests in debug mode would spend the product's on the looks' image work.
    const LOOKS_IN_TESTS: Duration = Duration::from_secs(10);

    /// The text [`read_fields`] keeps of a photo, and the fields it reads.
    async fn read_photo(reader: &ReceiptReader) -> (String, Extraction) {
        // Soft grey lines on white, as a blurred photo's print: each look shows them
        // differently.
        let page = GrayImage::from_fn(PAGE_WIDTH, 480, |x, y| {
            let printed = (100..620).contains(&x) && (y / 12) % 3 == 1;
            image::Luma([if printed { 70 } else { 255 }])
        });
        let mut png = Vec::new();
        image::imageops::blur(&page, 2.0)
            .write_with_encoder(PngEncoder::new(&mut png))
            .unwrap();
        let eur = Currency::parse("EUR").unwrap();
        let uploaded = NaiveDate::from_ymd_opt(2024, 3, 2).unwrap();
        let (reading, extraction) = read_fields(reader, &png, "image/png", eur, uploaded)
            .await
            .unwrap();
        (reading.text, extraction)
    }

    /// Proven three ways.
    const SURE: &str =
        "Bistro Test\n2024-03-01\nSubtotal €10.00\nTax €2.50\nTotal €12.50\nVisa €12.50\n";
    /// The total line disagrees with the subtotal and tax.
    const DOUBTFUL: &str = "Bistro Test\n2024-03-01\nSubtotal €10.00\nTax €2.50\nTotal €72.50\n";

    #[tokio::test]
    async fn a_doubtful_photo_is_read_again_smaller_and_the_surer_reading_kept() {
        let (text, extraction, images) = fields_of_photo(vec![DOUBTFUL, SURE]).await;
        assert_eq!(text, SURE);
        assert!(!needs_review(&extraction), "{extraction:?}");
        assert_eq!(
            extraction.total.map(|t| t.amount_string()).as_deref(),
            Some("12.50")
        );
        let [first, second] = &images[..] else {
            panic!("read {} times", images.len());
        };
        assert_eq!(second.width(), (first.width() as f32 * 0.7).round() as u32);
    }

    /// A slip's one amount: nothing on it checks the total.
    const SLIP: &str =
        "Bistro Test\nRue Neuve 3\nFrance\n2024-03-01 12:00\nVISA **** 1234\nTOTAL TTC  €12.50\n";
    const SLIP_MISREAD: &str =
        "Bistro Test\nRue Neuve 3\nFrance\n2024-03-01 12:00\nVISA **** 1234\nTOTAL TTC  €72.50\n";

    #[tokio::test]
    async fn an_unchecked_total_stands_when_every_other_reading_agrees_and_goes_to_a_person_when_not(
    ) {
        // Smaller, sharpened and in black and white, each reading agrees.
        let (text, extraction, images) = fields_of_photo(vec![SLIP; 4]).await;
        assert_eq!((text.as_str(), images.len()), (SLIP, 4));
        assert!(!needs_review(&extraction), "{extraction:?}");
        // The last reads another total: one of them is misread.
        let (text, extraction, _) = fields_of_photo(vec![SLIP, SLIP, SLIP, SLIP_MISREAD]).await;
        assert_eq!(text, SLIP);
        assert!(needs_review(&extraction), "{extraction:?}");
        // A reading that finds no total says nothing of the digits.
        let (text, extraction, _) = fields_of_photo(vec![SLIP, SLIP, "Bistro Test\n"]).await;
        assert_eq!(text, SLIP);
        assert!(!needs_review(&extraction), "{extraction:?}");

        // Then a third and a fourth reading, sharpened and in black and white, find nothing
        // (the engine's texts are read out).
        let (text, extraction, images) = fields_of_photo(vec![SLIP_MISREAD, SLIP]).await;
        assert_eq!((text.as_str(), images.len()), (SLIP_MISREAD, 4));
        assert!(needs_review(&extraction), "{extraction:?}");

        // The others agree with one of the first two: that one stands. A third unchecked
        // total of its own does not.
        let (text, extraction, _) = fields_of_photo(vec![SLIP_MISREAD, SLIP, SLIP, SLIP]).await;
        assert_eq!(text, SLIP);
        assert!(!needs_review(&extraction), "{extraction:?}");
        let slip_other = SLIP.replace("12.50", "17.50").leak();
        let (text, extraction, _) = fields_of_photo(vec![SLIP_MISREAD, SLIP, slip_other]).await;
        assert_eq!(text, SLIP_MISREAD);
        assert!(needs_review(&extraction), "{extraction:?}");
    }

    #[tokio::test]
    async fn a_date_two_readings_are_sure_of_and_differ_on_goes_to_a_person() {
        let other_day: &str = SURE.replace("2024-03-01", "2024-02-27").leak();
        let (text, extraction, _) = fields_of_photo(vec![DOUBTFUL, other_day]).await;
        // The surer total is kept, with the date it came with, for a person to confirm.
        assert_eq!(text, other_day);
        assert!(needs_review(&extraction), "{extraction:?}");
        assert_eq!(extraction.confidence["date"], READINGS_DISAGREE);
        assert_eq!(extraction.confidence["total"], 0.97);
    }

    #[tokio::test]
    async fn a_date_the_kept_reading_missed_is_taken_from_a_reading_sure_of_it() {
        let no_date: &str = SURE.replace("2024-03-01\n", "").leak();
        let (text, extraction, images) =
            fields_of_photo(vec![no_date, DOUBTFUL, "Bistro Test\n"]).await;
        // The proven total's reading is kept; the doubtful one's date fills its gap.
        assert_eq!((text.as_str(), images.len()), (no_date, 4));
        assert_eq!(extraction.date, NaiveDate::from_ymd_opt(2024, 3, 1));
        assert!(
            extraction.confidence["date"] >= REVIEW_BELOW,
            "{extraction:?}"
        );
        assert!(!needs_review(&extraction), "{extraction:?}");
    }

    #[tokio::test]
    async fn a_date_the_kept_reading_missed_that_two_readings_differ_on_goes_to_a_person() {
        let no_date: &str = SURE.replace("2024-03-01\n", "").leak();
        let other_day: &str = DOUBTFUL.replace("2024-03-01", "2024-02-27").leak();
        let (text, extraction, images) = fields_of_photo(vec![DOUBTFUL, other_day, no_date]).await;
        assert_eq!((text.as_str(), images.len()), (no_date, 4));
        assert!(extraction.date.is_some(), "{extraction:?}");
        assert_eq!(extraction.confidence["date"], READINGS_DISAGREE);
        assert!(needs_review(&extraction), "{extraction:?}");
    }

    #[tokio::test]
    async fn a_photo_still_in_doubt_is_read_smaller_then_sharpened_then_in_black_and_white() {
        let (text, extraction, images) =
            fields_of_photo(vec![DOUBTFUL, DOUBTFUL, DOUBTFUL, SURE]).await;
        assert_eq!(text, SURE);
        assert!(!needs_review(&extraction), "{extraction:?}");
        let widths: Vec<u32> = images.iter().map(GrayImage::width).collect();
        assert_eq!(widths, [720, 504, 720, 720]);
        let plain = &images[0];
        assert_ne!(&images[2], plain, "sharpening changes the print's edges");
        assert_eq!(images[2], Look::Sharpened.apply(plain));
        assert_eq!(images[3], Look::Binarised.apply(plain));
    }

    #[tokio::test]
    async fn a_sure_photo_is_read_once_and_a_worse_second_reading_is_dropped() {
        let (text, extraction, images) = fields_of_photo(vec![SURE, DOUBTFUL]).await;
        assert_eq!((text.as_str(), images.len()), (SURE, 1));
        assert!(!needs_review(&extraction));

        let (text, extraction, images) = fields_of_photo(vec![DOUBTFUL, "Bistro Test\n"]).await;
        assert_eq!((text.as_str(), images.len()), (DOUBTFUL, 4));
        assert!(needs_review(&extraction));
    }
}
