//! Reading the text of a receipt. PDFs with a text layer are read as text; photos, scans
//! and scanned PDFs (rasterised) are prepared (`crate::prepare`) and read by an OCR
//! engine. Engines sit behind one trait; the guards (pixel count, time limit, damaged
//! files) are the same for all.

use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::GrayImage;
use rten_imageproc::RotatedRect;
use tokio::io::AsyncWriteExt;

use crate::prepare::prepare;

/// Images larger than this are refused before any decoding: a few kilobytes of PNG can
/// claim gigabytes of pixels.
pub const MAX_PIXELS: u64 = 40_000_000;
/// Receipts are short; a long PDF is read no further than this.
const MAX_PDF_PAGES: u32 = 5;
/// The longest side of a rasterised PDF page, in pixels: 10 pt print on an A4 page
/// comes out about 20 px high, which the engine reads well, and the size is bounded
/// whatever page size the PDF claims. (2,400 read no better on the corpus's development
/// part and took 45 % longer.)
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
    async fn read(&self, image: GrayImage) -> Result<String, OcrError>;
}

/// What was read, and how.
#[derive(Debug)]
pub struct Reading {
    pub text: String,
    /// The engine's name, or "pdf-text" for a PDF's own text layer.
    pub source: &'static str,
}

/// Reads receipts of every accepted type, within the guards and the time limit.
pub struct ReceiptReader {
    pub engine: Box<dyn OcrEngine>,
    pub pdf: PdfTools,
    /// The most one receipt may take.
    pub time_limit: Duration,
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
                text,
                source: "pdf-text",
            });
        }
        // A scan saved as PDF: every page is read (an invoice's total is often on its
        // last), in order.
        let mut text = String::new();
        let mut source = self.engine.name();
        for page in self.pdf.rasterise(bytes).await? {
            let reading = self.read_image(page).await?;
            text.push_str(&reading.text);
            text.push('\n');
            source = reading.source;
        }
        Ok(Reading { text, source })
    }

    async fn read_image(&self, bytes: Vec<u8>) -> Result<Reading, OcrError> {
        // Decoding and preparing is seconds of CPU at worst: off the async threads.
        let image = tokio::task::spawn_blocking(move || prepare(&bytes))
            .await
            .map_err(|e| OcrError::Engine(e.to_string()))??;
        Ok(Reading {
            text: self.engine.read(image).await?,
            source: self.engine.name(),
        })
    }
}

/// Poppler's command-line tools (Debian's `poppler-utils`): `pdftotext` for text layers,
/// `pdftoppm` to turn a scanned page into an image.
pub struct PdfTools {
    pub pdftotext: String,
    pub pdftoppm: String,
}

impl Default for PdfTools {
    fn default() -> Self {
        PdfTools {
            pdftotext: "pdftotext".into(),
            pdftoppm: "pdftoppm".into(),
        }
    }
}

impl PdfTools {
    /// The PDF's own text, if it has any worth the name (a scan saved as PDF has none).
    pub async fn text_layer(&self, pdf: &[u8]) -> Result<Option<String>, OcrError> {
        let file = temporary_copy(pdf)?;
        let last_page = MAX_PDF_PAGES.to_string();
        let output = run(
            &self.pdftotext,
            &[
                "-layout".as_ref(),
                "-l".as_ref(),
                last_page.as_ref(),
                file.path().as_os_str(),
                "-".as_ref(),
            ],
        )
        .await?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let letters = text.chars().filter(|c| c.is_alphanumeric()).count();
        Ok((letters >= 3).then_some(text))
    }

    /// Every page (up to the page limit) as a greyscale PNG, in order.
    pub async fn rasterise(&self, pdf: &[u8]) -> Result<Vec<Vec<u8>>, OcrError> {
        let file = temporary_copy(pdf)?;
        let folder = tempfile::tempdir().map_err(|e| OcrError::Engine(e.to_string()))?;
        let prefix = folder.path().join("page");
        let size = PDF_PAGE_PIXELS.to_string();
        let last_page = MAX_PDF_PAGES.to_string();
        run(
            &self.pdftoppm,
            &[
                "-f".as_ref(),
                "1".as_ref(),
                "-l".as_ref(),
                last_page.as_ref(),
                "-gray".as_ref(),
                "-png".as_ref(),
                "-scale-to".as_ref(),
                size.as_ref(),
                file.path().as_os_str(),
                prefix.as_os_str(),
            ],
        )
        .await?;
        // pdftoppm names pages page-1.png or page-01.png, by the document's page count:
        // sorted by their number, not their name.
        let mut pages: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(folder.path())
            .map_err(|e| OcrError::Engine(e.to_string()))?
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let number = path
                    .file_stem()?
                    .to_str()?
                    .rsplit('-')
                    .next()?
                    .parse()
                    .ok()?;
                Some((number, path))
            })
            .collect();
        pages.sort();
        if pages.is_empty() {
            return Err(OcrError::PdfUnreadable);
        }
        let mut images = Vec::with_capacity(pages.len());
        for (_, path) in pages {
            images.push(
                tokio::fs::read(path)
                    .await
                    .map_err(|_| OcrError::PdfUnreadable)?,
            );
        }
        Ok(images)
    }
}

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

/// Debian's `tesseract` command: the engine where the ocrs models are not installed.
pub struct Tesseract {
    pub program: String,
}

#[async_trait]
impl OcrEngine for Tesseract {
    fn name(&self) -> &'static str {
        "tesseract"
    }

    fn check(&self) -> Result<String, OcrError> {
        let output = std::process::Command::new(&self.program)
            .arg("--version")
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => OcrError::NotInstalled(self.program.clone()),
                _ => OcrError::Engine(format!("{} --version: {e}", self.program)),
            })?;
        // Older versions print their banner on standard error.
        let text = [output.stdout, output.stderr].concat();
        let banner = String::from_utf8_lossy(&text);
        banner
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("tesseract"))
            .map(str::to_string)
            .ok_or_else(|| {
                OcrError::Engine(format!("{} does not say it is Tesseract", self.program))
            })
    }

    async fn read(&self, image: GrayImage) -> Result<String, OcrError> {
        let png = tokio::task::spawn_blocking(move || {
            let mut png = Vec::new();
            // Tesseract decodes whatever it gets; fast compression saves most of the
            // encoding time and costs only pipe bytes.
            let encoder =
                PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Sub);
            image.write_with_encoder(encoder).map(|()| png)
        })
        .await
        .map_err(|e| OcrError::Engine(e.to_string()))?
        .map_err(|e| OcrError::Engine(e.to_string()))?;
        // Words with their boxes (TSV), found as sparse text: Tesseract's own line and
        // column finding drops a price column far from its labels, or a tilted one;
        // rows are rebuilt here from the boxes instead.
        let mut child = tokio::process::Command::new(&self.program)
            .args([
                "stdin",
                "stdout",
                "--psm",
                TESSERACT_PSM,
                "-l",
                "eng",
                "tsv",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => OcrError::NotInstalled(self.program.clone()),
                _ => OcrError::Engine(format!("cannot run {}: {e}", self.program)),
            })?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| OcrError::Engine("no stdin".into()))?;
        let writer = tokio::spawn(async move {
            // If Tesseract stops reading early, its exit status says why.
            let _ = stdin.write_all(&png).await;
        });
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| OcrError::Engine(e.to_string()))?;
        let _ = writer.await;
        if !output.status.success() {
            // The image decoded here, so this is the engine's trouble, not the file's.
            let message = String::from_utf8_lossy(&output.stderr);
            return Err(OcrError::Engine(format!(
                "tesseract failed: {}",
                message.trim()
            )));
        }
        Ok(rows_from_tsv(&String::from_utf8_lossy(&output.stdout)))
    }
}

/// Tesseract's page segmentation mode: 11 is sparse text, every word found wherever it
/// stands.
const TESSERACT_PSM: &str = "11";

/// A recognised word and its box.
#[derive(Debug, Clone, PartialEq)]
struct Word {
    left: f32,
    top: f32,
    width: f32,
    height: f32,
    text: String,
}

/// The words of Tesseract's TSV output (level 5 rows) as text, a line per row of the
/// receipt.
fn rows_from_tsv(tsv: &str) -> String {
    let words = tsv
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let number = |i: usize| fields.get(i)?.parse::<f32>().ok();
            let text = fields.get(11)?.trim();
            (fields.first() == Some(&"5") && !text.is_empty()).then(|| Word {
                left: number(6).unwrap_or(0.0),
                top: number(7).unwrap_or(0.0),
                width: number(8).unwrap_or(0.0),
                height: number(9).unwrap_or(0.0),
                text: text.to_string(),
            })
        })
        .collect();
    rows_of_words(words)
}

/// Puts words whose vertical extents mostly overlap into one row, left to right; a gap
/// wider than two letter heights (a price far from its label) becomes two spaces.
fn rows_of_words(mut words: Vec<Word>) -> String {
    words.sort_by(|a, b| (a.top + a.height / 2.0).total_cmp(&(b.top + b.height / 2.0)));
    // Each row: its band (top, bottom) and its words.
    let mut rows: Vec<(f32, f32, Vec<Word>)> = Vec::new();
    for word in words {
        let (top, bottom) = (word.top, word.top + word.height);
        let row = rows
            .iter_mut()
            .rev()
            .take(3)
            .find(|(row_top, row_bottom, _)| {
                let overlap = bottom.min(*row_bottom) - top.max(*row_top);
                overlap >= 0.5 * (bottom - top).min(row_bottom - row_top)
            });
        match row {
            Some((_, _, members)) => members.push(word),
            None => rows.push((top, bottom, vec![word])),
        }
    }
    let mut text = String::new();
    for (_, _, mut members) in rows {
        members.sort_by(|a, b| a.left.total_cmp(&b.left));
        let mut right_edge: Option<f32> = None;
        for word in members {
            if let Some(edge) = right_edge {
                let far = word.left - edge > 2.0 * word.height;
                text.push_str(if far { "  " } else { " " });
            }
            right_edge = Some(word.left + word.width);
            text.push_str(&word.text);
        }
        text.push('\n');
    }
    text
}

/// The ocrs engine: a detection model finds words and lines, a recognition model reads
/// each line.
pub struct Ocrs {
    engine: Arc<ocrs::OcrEngine>,
}

/// One row of a receipt: the text lines the detector found side by side (an item and
/// its price are often detected as two lines), left to right.
pub struct Row {
    pub lines: Vec<Vec<RotatedRect>>,
}

impl Ocrs {
    /// Loads the models; without a recognition model the engine can find text but not
    /// read it (`rows` works, `read` fails).
    pub fn load(detection: &Path, recognition: Option<&Path>) -> anyhow::Result<Ocrs> {
        use anyhow::Context as _;
        let detection_model = rten::Model::load_file(detection)
            .with_context(|| format!("cannot load the detection model {}", detection.display()))?;
        let recognition_model = recognition
            .map(|path| {
                rten::Model::load_file(path).with_context(|| {
                    format!("cannot load the recognition model {}", path.display())
                })
            })
            .transpose()?;
        let engine = ocrs::OcrEngine::new(ocrs::OcrEngineParams {
            detection_model: Some(detection_model),
            recognition_model,
            ..Default::default()
        })?;
        Ok(Ocrs {
            engine: Arc::new(engine),
        })
    }

    /// The rows of text in the image, top to bottom.
    pub fn rows(&self, image: &GrayImage) -> Result<(ocrs::OcrInput, Vec<Row>), OcrError> {
        let engine_error = |e: &dyn std::fmt::Display| OcrError::Engine(e.to_string());
        let source = ocrs::ImageSource::from_bytes(image.as_raw(), image.dimensions())
            .map_err(|e| engine_error(&e))?;
        let input = self
            .engine
            .prepare_input(source)
            .map_err(|e| engine_error(&e))?;
        let words = self
            .engine
            .detect_words(&input)
            .map_err(|e| engine_error(&e))?;
        let lines = self.engine.find_text_lines(&input, &words);
        Ok((input, group_into_rows(lines)))
    }
}

#[async_trait]
impl OcrEngine for Ocrs {
    fn name(&self) -> &'static str {
        "ocrs"
    }

    fn check(&self) -> Result<String, OcrError> {
        // Its models loaded when it was made.
        Ok("ocrs".to_string())
    }

    async fn read(&self, image: GrayImage) -> Result<String, OcrError> {
        let engine = self.engine.clone();
        let this = Ocrs { engine };
        tokio::task::spawn_blocking(move || {
            let (input, rows) = this.rows(&image)?;
            let mut text = String::new();
            for row in rows {
                let read = this
                    .engine
                    .recognize_text(&input, &row.lines)
                    .map_err(|e| OcrError::Engine(e.to_string()))?;
                let parts: Vec<String> =
                    read.into_iter().flatten().map(|l| l.to_string()).collect();
                text.push_str(&parts.join("  "));
                text.push('\n');
            }
            Ok(text)
        })
        .await
        .map_err(|e| OcrError::Engine(e.to_string()))?
    }
}

/// Puts lines whose vertical extents mostly overlap into one row: receipts print an
/// item's name at the left and its price at the right of the same row.
fn group_into_rows(lines: Vec<Vec<RotatedRect>>) -> Vec<Row> {
    struct Extent {
        top: f32,
        bottom: f32,
        left: f32,
    }
    let extent = |line: &[RotatedRect]| {
        let corners = line.iter().flat_map(|word| word.corners());
        corners.fold(
            Extent {
                top: f32::MAX,
                bottom: f32::MIN,
                left: f32::MAX,
            },
            |e, p| Extent {
                top: e.top.min(p.y),
                bottom: e.bottom.max(p.y),
                left: e.left.min(p.x),
            },
        )
    };
    let mut lines: Vec<(Extent, Vec<RotatedRect>)> = lines
        .into_iter()
        .filter(|line| !line.is_empty())
        .map(|line| (extent(&line), line))
        .collect();
    lines.sort_by(|a, b| (a.0.top + a.0.bottom).total_cmp(&(b.0.top + b.0.bottom)));
    /// A row's extent and its lines, each with its left edge.
    type Members = Vec<(f32, Vec<RotatedRect>)>;
    let mut rows: Vec<(Extent, Members)> = Vec::new();
    for (e, line) in lines {
        let joins = rows.last().is_some_and(|(r, _)| {
            let overlap = e.bottom.min(r.bottom) - e.top.max(r.top);
            overlap >= 0.5 * (e.bottom - e.top).min(r.bottom - r.top)
        });
        if joins {
            if let Some((r, members)) = rows.last_mut() {
                r.top = r.top.min(e.top);
                r.bottom = r.bottom.max(e.bottom);
                members.push((e.left, line));
            }
        } else {
            rows.push((
                Extent {
                    top: e.top,
                    bottom: e.bottom,
                    left: e.left,
                },
                vec![(e.left, line)],
            ));
        }
    }
    rows.into_iter()
        .map(|(_, mut members)| {
            members.sort_by(|a, b| a.0.total_cmp(&b.0));
            Row {
                lines: members.into_iter().map(|(_, line)| line).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rten_imageproc::{PointF, Vec2};

    fn word(left: f32, top: f32, width: f32, height: f32) -> RotatedRect {
        let center = PointF::from_yx(top + height / 2.0, left + width / 2.0);
        RotatedRect::new(center, Vec2::from_yx(-1.0, 0.0), width, height)
    }

    #[test]
    fn lines_side_by_side_make_one_row() {
        let lines = vec![
            vec![word(400.0, 102.0, 80.0, 20.0)], // a price, slightly lower
            vec![
                word(20.0, 100.0, 90.0, 22.0),
                word(120.0, 100.0, 60.0, 22.0),
            ],
            vec![word(20.0, 140.0, 120.0, 22.0)],
            vec![word(20.0, 40.0, 200.0, 30.0)],
        ];
        let rows = group_into_rows(lines);
        let lefts: Vec<Vec<f32>> = rows
            .iter()
            .map(|r| {
                r.lines
                    .iter()
                    .map(|l| l[0].corners()[0].x.min(l[0].corners()[2].x))
                    .collect()
            })
            .collect();
        assert_eq!(rows.len(), 3, "{lefts:?}");
        assert_eq!(rows[1].lines.len(), 2);
        assert!(lefts[1][0] < lefts[1][1], "left to right: {lefts:?}");
        assert_eq!(rows[2].lines.len(), 1);
    }

    #[test]
    fn words_are_put_back_into_rows() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   1\t1\t0\t0\t0\t0\t0\t0\t900\t400\t-1\t\n\
                   5\t1\t2\t1\t1\t1\t800\t103\t70\t20\t91\t£10.70\n\
                   5\t1\t1\t1\t1\t1\t40\t40\t120\t24\t96\tCORNER\n\
                   5\t1\t1\t1\t1\t2\t170\t41\t60\t24\t96\tDELI\n\
                   5\t1\t1\t1\t2\t1\t40\t100\t80\t22\t95\tTotal\n\
                   5\t1\t1\t1\t3\t1\t40\t160\t80\t22\t95\tThanks\n";
        assert_eq!(rows_from_tsv(tsv), "CORNER DELI\nTotal  £10.70\nThanks\n");
    }

    #[test]
    fn transient_and_permanent_failures_differ() {
        assert!(!OcrError::Unreadable.is_transient());
        assert!(!OcrError::PdfUnreadable.is_transient());
        assert!(!OcrError::NotInstalled("tesseract".into()).is_transient());
        assert!(OcrError::Engine("crashed".into()).is_transient());
    }

    #[tokio::test]
    async fn a_missing_engine_fails_the_scan_with_a_reason() {
        let reader = ReceiptReader {
            engine: Box::new(Tesseract {
                program: "/nonexistent/tesseract".into(),
            }),
            pdf: PdfTools::default(),
            time_limit: Duration::from_secs(5),
        };
        let mut png = Vec::new();
        GrayImage::from_pixel(8, 8, image::Luma([255]))
            .write_with_encoder(PngEncoder::new(&mut png))
            .expect("encode");
        assert_eq!(
            reader.read(&png, "image/png").await.map(|r| r.text),
            Err(OcrError::NotInstalled("/nonexistent/tesseract".into()))
        );
        let reader = ReceiptReader {
            pdf: PdfTools {
                pdftotext: "/nonexistent/pdftotext".into(),
                pdftoppm: "/nonexistent/pdftoppm".into(),
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
