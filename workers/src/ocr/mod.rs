//! Reading the text of a receipt. PDFs with a text layer are read as text; photos, scans
//! and scanned PDFs (rasterised) are prepared (`crate::prepare`) and read by an OCR
//! engine. Engines sit behind one trait; the guards (pixel count, time limit, damaged
//! files) are the same for all.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use image::GrayImage;

use crate::prepare::{binarise, prepare};

/// Images larger than this are refused before any decoding: a few kilobytes of PNG can
/// claim gigabytes of pixels.
pub const MAX_PIXELS: u64 = 40_000_000;

/// The longest side of a rasterised PDF page that holds no scan (`pdf` renders scans at
/// their own resolution), in pixels: 10 pt print on an A4 page comes out about 20 px
/// high, which the engine reads well, and the size is bounded whatever page size the PDF
/// claims. (2,400 read no better on the corpus's development part and took 45 % longer.)
const PDF_PAGE_PIXELS: u32 = 1700;

/// Why a receipt could not be read, in words for the person who uploaded it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OcrError {
    #[error("the file is not an image that can be read (it may be damaged or cut short)")]
    Unreadable,
    #[error(
        "the image is too large to read ({width}×{height} pixels; at most {MAX_PIXELS} pixels)"
    )]
    TooLarge { width: u64, height: u64 },
    #[error("the PDF cannot be read (it may be damaged, cut short or password-protected)")]
    PdfUnreadable,
    #[error("no text was found on the receipt")]
    NoText,
    #[error("reading the receipt took longer than {0:?}")]
    TimedOut(Duration),
    /// Not the receipt's fault either, but no retry will help until someone installs it.
    #[error("this server has no OCR engine installed ({0} was not found)")]
    NotInstalled(String),
    /// The engine itself failed (not the receipt's fault): worth another attempt.
    #[error("the OCR engine failed: {0}")]
    Engine(String),
}

impl OcrError {
    /// Whether trying again later could help.
    pub fn is_transient(&self) -> bool {
        matches!(self, OcrError::Engine(_))
    }
}

#[async_trait]
pub trait OcrEngine: Send + Sync {
    fn name(&self) -> &'static str;

    /// The engine and its version when it can run here; why not otherwise.
    fn check(&self) -> Result<String, OcrError>;

    /// The text of a prepared image (upright, grey, level), line by line.
    async fn read(&self, image: GrayImage) -> Result<PageText, OcrError>;

    /// The one line of text on each image, in order: a row of a page cut out to be read
    /// again ([`ReceiptReader::read_rows`]).
    async fn read_lines(&self, images: Vec<GrayImage>) -> Result<Vec<String>, OcrError> {
        let mut lines = Vec::with_capacity(images.len());
        for image in images {
            let page = self.read(image).await?;
            lines.push(page.text.lines().collect::<Vec<_>>().join("  "));
        }
        Ok(lines)
    }

    /// The text of each of a document's prepared pages, in order. Engines that pay a
    /// start-up cost per run read them all in one.
    async fn read_pages(&self, pages: Vec<GrayImage>) -> Result<Vec<PageText>, OcrError> {
        let mut texts = Vec::with_capacity(pages.len());
        for page in pages {
            texts.push(self.read(page).await?);
        }
        Ok(texts)
    }
}

/// A page as an engine read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageText {
    /// Every word, row by row.
    pub text: String,
    /// The same rows without the words the engine itself doubts: on photos, a table's grain
    /// or a shadow's edge read as short words (`Wee`, `tae`) above the shop's name or
    /// beside it. An engine that does not say how sure it is of each word gives `text`.
    pub sure: String,
    /// Where each of `text`'s rows stands on the image, in its order; empty where the
    /// engine does not say.
    pub rows: Vec<RowSpan>,
}

impl PageText {
    /// A text every word of which is as sure as any.
    pub fn all_sure(text: String) -> Self {
        Self {
            sure: text.clone(),
            text,
            rows: Vec::new(),
        }
    }
}

/// The height a row of text takes on the image its words were read from, in pixels from
/// the top: the lowest top and the highest bottom of its words' boxes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowSpan {
    pub top: u32,
    pub bottom: u32,
}

/// What was read, and how.
#[derive(Debug)]
pub struct Reading {
    pub text: String,
    /// [`PageText::sure`], the pages joined as `text`'s are.
    pub sure: String,
    /// The engine's name, or "pdf-text" for a PDF's own text layer.
    pub source: &'static str,
    /// [`PageText::rows`] of a photo or scan; none for a PDF.
    pub rows: Vec<RowSpan>,
    /// The prepared image a photo or scan was read from, kept for another look
    /// ([`ReceiptReader::read_again`]); none for a PDF.
    pub image: Option<GrayImage>,
}

/// The scale a doubtful image is read again at. OCR's misreadings change with the
/// letters' size: a second reading of the receipts whose first went to review, at 0.5 to
/// 1.25 times the size, each made 6 to 10 of 173 dev photo-like totals right that were
/// wrong (and none right wrong), the smaller ones at less cost.
const SECOND_LOOK_SCALE: f32 = 0.7;

/// How far a doubtful image's edges are sharpened (an unsharp mask: the image plus its
/// difference from itself blurred by this sigma, in pixels), at about the scale of the
/// blur that costs photos most of their totals (the second corpus's dev photos blurred
/// with a sigma of 1.3 to 1.8 px read 67 % of totals, unblurred ones 86 %). Read after
/// the smaller look, it made the first corpus's dev photos' totals right 5 more times of
/// 300 and sent 11 fewer to a person; the second corpus's read as before.
const SHARPEN_SIGMA: f32 = 1.5;
/// Differences smaller than this many grey levels are left alone: paper grain is not
/// sharpened into specks.
const SHARPEN_THRESHOLD: i32 = 2;

/// How a doubtful image is read again, in the order tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Smaller ([`SECOND_LOOK_SCALE`]).
    Smaller,
    /// With its edges sharpened ([`SHARPEN_SIGMA`]).
    Sharpened,
    /// In black and white, each pixel against its surroundings ([`binarise`]).
    Binarised,
}

impl Look {
    pub const ALL: [Look; 3] = [Look::Smaller, Look::Sharpened, Look::Binarised];

    pub(crate) fn apply(self, image: &GrayImage) -> GrayImage {
        match self {
            Look::Smaller => {
                let (width, height) = image.dimensions();
                let scaled = |side: u32| ((side as f32 * SECOND_LOOK_SCALE).round() as u32).max(1);
                image::imageops::resize(
                    image,
                    scaled(width),
                    scaled(height),
                    image::imageops::FilterType::CatmullRom,
                )
            }
            Look::Sharpened => image::imageops::unsharpen(image, SHARPEN_SIGMA, SHARPEN_THRESHOLD),
            Look::Binarised => binarise(image),
        }
    }
}

/// Reads receipts of every accepted type, within the guards and the time limit.
pub struct ReceiptReader {
    pub engine: Box<dyn OcrEngine>,
    pub pdf: PdfTools,
    /// The most one receipt may take.
    pub time_limit: Duration,
    /// How long after a doubtful image's reading began it may still be read again
    /// (`crate::receipts::LOOKS_WITHIN` in the product).
    pub looks_within: Duration,
}

impl ReceiptReader {
    pub async fn read(&self, bytes: &[u8], content_type: &str) -> Result<Reading, OcrError> {
        let reading = tokio::time::timeout(self.time_limit, self.read_any(bytes, content_type))
            .await
            .map_err(|_| OcrError::TimedOut(self.time_limit))??;
        if reading.text.trim().is_empty() {
            return Err(OcrError::NoText);
        }
        Ok(reading)
    }

    async fn read_any(&self, bytes: &[u8], content_type: &str) -> Result<Reading, OcrError> {
        if content_type != "application/pdf" {
            return self.read_image(bytes.to_vec()).await;
        }
        if let Some(text) = self.pdf.text_layer(bytes).await? {
            return Ok(Reading {
                sure: text.clone(),
                text,
                source: "pdf-text",
                rows: Vec::new(),
                image: None,
            });
        }
        // A scan saved as PDF: every page is read (an invoice's total is often on its
        // last), in order.
        let mut pages = Vec::new();
        for page in self.pdf.rasterise(bytes).await? {
            pages.push(prepare_off_thread(page).await?);
        }
        let (mut text, mut sure) = (String::new(), String::new());
        for page in self.engine.read_pages(pages).await? {
            text.push_str(&page.text);
            text.push('\n');
            sure.push_str(&page.sure);
            sure.push('\n');
        }
        Ok(Reading {
            text,
            sure,
            source: self.engine.name(),
            rows: Vec::new(),
            image: None,
        })
    }

    async fn read_image(&self, bytes: Vec<u8>) -> Result<Reading, OcrError> {
        let image = prepare_off_thread(bytes).await?;
        let page = self.engine.read(image.clone()).await?;
        Ok(Reading {
            text: page.text,
            sure: page.sure,
            source: self.engine.name(),
            rows: page.rows,
            image: Some(image),
        })
    }

    /// The text of a prepared image read again, as `look` shows it, by `until` (and within
    /// the time limit of the receipt whose reading `started`).
    pub async fn read_again(
        &self,
        image: GrayImage,
        look: Look,
        started: Instant,
        until: Instant,
    ) -> Result<PageText, OcrError> {
        let shown = tokio::task::spawn_blocking(move || look.apply(&image))
            .await
            .map_err(|e| OcrError::Engine(e.to_string()))?;
        self.by(started, until, self.engine.read(shown)).await
    }

    /// The rows of a prepared image read again one by one, each as a band across the
    /// whole image (an amount OCR missed lies beside the words it found), at `scale`
    /// times its size, by `until` (and within the time limit of the receipt whose reading
    /// `started`).
    pub async fn read_rows(
        &self,
        image: &GrayImage,
        rows: &[RowSpan],
        scale: f32,
        started: Instant,
        until: Instant,
    ) -> Result<Vec<String>, OcrError> {
        let bands = rows
            .iter()
            .map(|row| row_band(image, *row, scale))
            .collect();
        self.by(started, until, self.engine.read_lines(bands)).await
    }

    /// Another reading of a receipt, stopped at `until` or at the time limit of the
    /// receipt whose reading `started`, whichever comes first.
    async fn by<T>(
        &self,
        started: Instant,
        until: Instant,
        reading: impl std::future::Future<Output = Result<T, OcrError>>,
    ) -> Result<T, OcrError> {
        let until = until.min(started + self.time_limit);
        let left = until.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, reading)
            .await
            .map_err(|_| OcrError::TimedOut(until - started))?
    }
}

/// How far a row's band reaches above and below its words' boxes, in the row's heights,
/// when it is cut out to be read again: a tilted row's far end, and the larger print of a
/// total beside its label, stand out of the boxes OCR found (where it found the amount at
/// all); the rows beside are mostly left out.
const ROW_MARGIN: f32 = 0.35;

/// The band of `image` across `row`, with its margin, at `scale` times its size.
fn row_band(image: &GrayImage, row: RowSpan, scale: f32) -> GrayImage {
    let margin = (row.bottom.saturating_sub(row.top) as f32 * ROW_MARGIN).ceil() as u32;
    let top = row
        .top
        .saturating_sub(margin)
        .min(image.height().saturating_sub(1));
    let bottom = (row.bottom + margin).clamp(top + 1, image.height());
    let band = image::imageops::crop_imm(image, 0, top, image.width(), bottom - top).to_image();
    if scale == 1.0 {
        return band;
    }
    let scaled = |side: u32| ((side as f32 * scale).round() as u32).max(1);
    image::imageops::resize(
        &band,
        scaled(band.width()),
        scaled(band.height()),
        image::imageops::FilterType::CatmullRom,
    )
}

/// Where a run of text (a word, a line) stands on the page, in pixels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extent {
    pub top: f32,
    pub bottom: f32,
    pub left: f32,
}

/// Runs of text put into rows, top to bottom, each left to right, with the row's extent:
/// a run whose height overlaps the row above it by half the smaller of the two joins it
/// (receipts print an item's name at the left and its price far at the right of one row).
pub(crate) fn into_rows<T>(mut runs: Vec<(Extent, T)>) -> Vec<(Extent, Vec<T>)> {
    runs.sort_by(|a, b| (a.0.top + a.0.bottom).total_cmp(&(b.0.top + b.0.bottom)));
    let mut rows: Vec<(Extent, Vec<(f32, T)>)> = Vec::new();
    for (e, run) in runs {
        match rows.last_mut() {
            Some((row, members))
                if e.bottom.min(row.bottom) - e.top.max(row.top)
                    >= 0.5 * (e.bottom - e.top).min(row.bottom - row.top) =>
            {
                row.top = row.top.min(e.top);
                row.bottom = row.bottom.max(e.bottom);
                row.left = row.left.min(e.left);
                members.push((e.left, run));
            }
            _ => rows.push((e, vec![(e.left, run)])),
        }
    }
    rows.into_iter()
        .map(|(row, mut members)| {
            members.sort_by(|a, b| a.0.total_cmp(&b.0));
            (row, members.into_iter().map(|(_, run)| run).collect())
        })
        .collect()
}

/// Decoding and preparing is seconds of CPU at worst: off the async threads.
async fn prepare_off_thread(bytes: Vec<u8>) -> Result<GrayImage, OcrError> {
    tokio::task::spawn_blocking(move || prepare(&bytes))
        .await
        .map_err(|e| OcrError::Engine(e.to_string()))?
}

mod ocrs;
mod paddle;
mod pdf;
mod tesseract;

pub use ocrs::{Ocrs, Row};
pub use paddle::PaddleOcr;
pub use pdf::PdfTools;
pub use tesseract::Tesseract;

fn temporary_copy(bytes: &[u8]) -> Result<tempfile::NamedTempFile, OcrError> {
    use std::io::Write;
    let mut file = tempfile::NamedTempFile::new().map_err(|e| OcrError::Engine(e.to_string()))?;
    file.write_all(bytes)
        .map_err(|e| OcrError::Engine(e.to_string()))?;
    Ok(file)
}

/// Runs a PDF tool; a failure is the file's (poppler exits non-zero on damaged,
/// truncated and encrypted files alike).
async fn run(program: &str, args: &[&std::ffi::OsStr]) -> Result<Output, OcrError> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A timed-out read drops the future: the process goes with it.
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => OcrError::NotInstalled(program.to_string()),
            _ => OcrError::Engine(format!("cannot run {program}: {e}")),
        })?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr);
        tracing::info!(program, error = %message.trim(), "PDF not read");
        return Err(OcrError::PdfUnreadable);
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::png::PngEncoder;

    #[test]
    fn transient_and_permanent_failures_differ() {
        assert!(!OcrError::Unreadable.is_transient());
        assert!(!OcrError::PdfUnreadable.is_transient());
        assert!(!OcrError::NotInstalled("tesseract".into()).is_transient());
        assert!(OcrError::Engine("crashed".into()).is_transient());
    }

    #[test]
    fn a_row_is_cut_across_the_page_with_a_margin_that_stops_at_its_edges() {
        let page = GrayImage::from_fn(300, 100, |_, y| image::Luma([y as u8]));
        let band = row_band(
            &page,
            RowSpan {
                top: 40,
                bottom: 60,
            },
            1.0,
        );
        assert_eq!(band.dimensions(), (300, 34));
        assert_eq!(band.get_pixel(0, 0).0, [33]);
        let top = row_band(&page, RowSpan { top: 2, bottom: 22 }, 1.0);
        assert_eq!((top.height(), top.get_pixel(0, 0).0), (29, [0]));
        let bottom = row_band(
            &page,
            RowSpan {
                top: 90,
                bottom: 100,
            },
            2.0,
        );
        assert_eq!(bottom.dimensions(), (600, 28));
    }

    #[tokio::test]
    async fn a_missing_engine_fails_the_scan_with_a_reason() {
        let reader = ReceiptReader {
            engine: Box::new(Tesseract::with_languages(
                "/nonexistent/libtesseract.so.5",
                "eng",
            )),
            pdf: PdfTools::default(),
            time_limit: Duration::from_secs(5),
            looks_within: crate::receipts::LOOKS_WITHIN,
        };
        let mut png = Vec::new();
        GrayImage::from_pixel(8, 8, image::Luma([255]))
            .write_with_encoder(PngEncoder::new(&mut png))
            .expect("encode");
        assert_eq!(
            reader.read(&png, "image/png").await.map(|r| r.text),
            Err(OcrError::NotInstalled(
                "/nonexistent/libtesseract.so.5".into()
            ))
        );
        let reader = ReceiptReader {
            pdf: PdfTools {
                pdftotext: "/nonexistent/pdftotext".into(),
                pdftoppm: "/nonexistent/pdftoppm".into(),
                ..PdfTools::default()
            },
            ..reader
        };
        assert_eq!(
            reader
                .read(b"%PDF-1.4", "application/pdf")
                .await
                .map(|r| r.text),
            Err(OcrError::NotInstalled("/nonexistent/pdftotext".into()))
        );
    }
}
