//! PaddleOCR's PP-OCR models (text detection and recognition, as ONNX files), run in this
//! process by rten: no system package, and on photographed receipts they read what
//! Tesseract loses (blur, shade, a tilted row).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use image::GrayImage;
use rten::{Model, RunOptions, ThreadPool};
use rten_imageproc::{find_contours, PointF, RetrievalMode, RotatedRect, Vec2};
use rten_tensor::prelude::*;
use rten_tensor::{NdTensor, NdTensorView};

use super::{into_rows, Extent, OcrEngine, OcrError, PageText, RowSpan};
use crate::prepare::convex_hull;

/// The longest side the detection model sees, in pixels (a multiple of 32, as its
/// down-sampling needs). Larger pages are scaled down to it; smaller ones are read as
/// they are.
const DETECTION_SIDE: u32 = 1280;
/// The same for the pages of a scanned PDF: a document of several pages, each as large
/// as a photo, would take most of a receipt's time at [`DETECTION_SIDE`], and a scan's
/// print is found as well at less: at 800 rather than 960, 200 dev PDFs read the same
/// fields in 7 % less time.
const PAGE_DETECTION_SIDE: u32 = 800;
/// The most pixels the detection model sees, whatever the sides: its time grows with
/// the area, and a wide photo shown 1280 pixels long took up to 0.9 s of one slow core.
/// A long, narrow slip is under it at [`DETECTION_SIDE`], so its small print keeps its
/// size; a wide photo or an A4 page is shown at about 920 × 700, where its print is still
/// found: on 600 dev photos and 600 clean dev receipts, with [`MIN_LINE_WIDTH`] lowered
/// to 160, totals, dates and merchants read within half a point of before, and the reading
/// took a quarter less time.
const DETECTION_AREA: f32 = 640_000.0;
/// A pixel of the detection model's map is text from this probability on.
const TEXT_PROBABILITY: f32 = 0.3;
/// A found region is kept when its pixels' mean probability reaches this.
const BOX_PROBABILITY: f32 = 0.5;
/// The model marks a text's core, smaller than the print: each region is grown by its
/// area times this over its perimeter on every side (the models' training setting).
const UNCLIP_RATIO: f32 = 1.6;
/// Regions thinner than this, in the detection map's pixels, are specks.
const MIN_REGION_SIDE: f32 = 3.0;

/// The recognition model's input height, in pixels.
const LINE_HEIGHT: usize = 48;
/// The narrowest input width the recognition model is given. Its training width is 320,
/// but a short run (a price, a quantity) padded to 96 reads the same, and the padding
/// was a third of the recognition time on a receipt's many short runs at 320, and on an
/// invoice's table of numbers a tenth of a PDF's time at 160.
const MIN_LINE_WIDTH: usize = 96;
/// Lines recognised in one run of the model: lines of similar length go together, so
/// little of a batch is padding.
const BATCH: usize = 8;
/// A batch's widest line is at most this many times as wide as its narrowest (each at
/// least [`MIN_LINE_WIDTH`]): every line is padded to the widest, and a batch of seven
/// prices and a line across the page took the time of eight such lines.
const BATCH_SPREAD: f32 = 1.25;

/// A run whose characters fill more than this share of the model's steps is printed
/// condensed (a tall, narrow font, as tills print a total): at about one step a
/// character, the greedy decoding runs repeated characters together (`300,22` read as
/// `30,2`). Clean print fills about half.
const DENSE: f32 = 0.7;
/// The share a dense run is stretched to fill when it is read again.
const SPREAD: f32 = 0.45;
/// The most a dense run is stretched.
const MAX_STRETCH: f32 = 2.5;
/// How much less sure than the first reading a stretched one may be and still be kept.
const MENDED_DOUBT: f32 = 0.05;

/// A word below this confidence (the mean of its characters' probabilities) is left out
/// of the sure text: grain and shadow edges read as short words.
const SURE: f32 = 0.8;

/// The PP-OCR engine: the detection model finds each run of text, the recognition model
/// reads each run.
pub struct PaddleOcr {
    models: Arc<Models>,
}

struct Models {
    detection: Model,
    recognition: Model,
    /// The threads the models run on: as many as the process may use.
    threads: Arc<ThreadPool>,
    /// The recognition model's classes after the blank: the dictionary's characters, then
    /// a space.
    characters: Vec<String>,
}

/// A run of text found on the page.
#[derive(Debug, Clone)]
struct Found {
    rect: RotatedRect,
    text: String,
    confidence: f32,
}

impl PaddleOcr {
    /// Loads the two models and the recognition model's dictionary (one character a
    /// line) and checks that they belong together.
    pub fn load(detection: &Path, recognition: &Path, dictionary: &Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let detection_model = Model::load_file(detection)
            .with_context(|| format!("cannot load the detection model {}", detection.display()))?;
        let recognition_model = Model::load_file(recognition).with_context(|| {
            format!(
                "cannot load the recognition model {}",
                recognition.display()
            )
        })?;
        let listed = std::fs::read_to_string(dictionary)
            .with_context(|| format!("cannot read the dictionary {}", dictionary.display()))?;
        let mut characters: Vec<String> = listed
            .lines()
            .map(|line| line.trim_end_matches('\r').to_string())
            .collect();
        characters.push(" ".to_string());
        let models = Models {
            detection: detection_model,
            recognition: recognition_model,
            threads: Arc::new(ThreadPool::with_num_threads(threads())),
            characters,
        };
        let blank = NdTensor::<f32, 4>::zeros([1, 3, LINE_HEIGHT, MIN_LINE_WIDTH]);
        let classes = models.recognise_batch(blank.view())?.size(2);
        anyhow::ensure!(
            classes == models.characters.len() + 1,
            "the dictionary {} has {} characters, but the recognition model {} knows {}",
            dictionary.display(),
            models.characters.len() - 1,
            recognition.display(),
            classes.saturating_sub(2)
        );
        Ok(Self {
            models: Arc::new(models),
        })
    }
}

#[async_trait]
impl OcrEngine for PaddleOcr {
    fn name(&self) -> &'static str {
        "ppocr"
    }

    fn check(&self) -> Result<String, OcrError> {
        // Its models loaded, and were checked, when it was made.
        Ok("ppocr".to_string())
    }

    async fn read(&self, image: GrayImage) -> Result<PageText, OcrError> {
        let models = self.models.clone();
        let given_up = GivenUp::default();
        let stop = given_up.0.clone();
        tokio::task::spawn_blocking(move || {
            Ok(page_text(models.read(&image, DETECTION_SIDE, &stop)?))
        })
        .await
        .map_err(|e| OcrError::Engine(e.to_string()))?
    }

    async fn read_pages(&self, pages: Vec<GrayImage>) -> Result<Vec<PageText>, OcrError> {
        let models = self.models.clone();
        let given_up = GivenUp::default();
        let stop = given_up.0.clone();
        tokio::task::spawn_blocking(move || {
            pages
                .iter()
                .map(|page| Ok(page_text(models.read(page, PAGE_DETECTION_SIDE, &stop)?)))
                .collect()
        })
        .await
        .map_err(|e| OcrError::Engine(e.to_string()))?
    }
}

/// Raised when a reading's future is dropped before its end (its receipt's time ran out,
/// or the process is stopping): the models stop at their next run rather than read on for
/// nobody, on the CPU the next receipt needs.
#[derive(Default)]
struct GivenUp(Arc<AtomicBool>);

impl Drop for GivenUp {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What a reading given up ends in; nobody awaits it.
fn stop_if_given_up(stop: &AtomicBool) -> Result<(), OcrError> {
    if stop.load(Ordering::Relaxed) {
        return Err(OcrError::Engine("the reading was given up".to_string()));
    }
    Ok(())
}

impl Models {
    /// The runs of text on `image`, unless `stop` is raised first.
    fn read(
        &self,
        image: &GrayImage,
        side: u32,
        stop: &AtomicBool,
    ) -> Result<Vec<Found>, OcrError> {
        stop_if_given_up(stop)?;
        let rects = self.detect(image, side)?;
        self.recognise(image, rects, stop)
    }

    /// The runs of text on `image`, in its coordinates, found on it shown at most `side`
    /// pixels long.
    fn detect(&self, image: &GrayImage, side: u32) -> Result<Vec<RotatedRect>, OcrError> {
        let (width, height) = image.dimensions();
        if width == 0 || height == 0 {
            return Ok(Vec::new());
        }
        let (map_width, map_height) = detection_size(width, height, side);
        let shown = image::imageops::resize(
            image,
            map_width,
            map_height,
            image::imageops::FilterType::Triangle,
        );
        let input = NdTensor::from_fn(
            [1, 3, map_height as usize, map_width as usize],
            |[_, _, y, x]| normalise(shown.get_pixel(x as u32, y as u32).0[0]),
        );
        let output = self
            .detection
            .run_one(input.view().into(), Some(self.options()))
            .map_err(|e| OcrError::Engine(format!("text detection: {e}")))?;
        let map: NdTensor<f32, 4> = output
            .try_into()
            .map_err(|e| OcrError::Engine(format!("text detection's output: {e:?}")))?;
        let probabilities = map.slice((0, 0));
        let rects = regions(probabilities);
        let (to_x, to_y) = (
            width as f32 / map_width as f32,
            height as f32 / map_height as f32,
        );
        Ok(rects
            .into_iter()
            .map(|rect| {
                let corners = rect
                    .corners()
                    .map(|p| PointF::from_yx(p.y * to_y, p.x * to_x));
                smallest_rect(&corners).unwrap_or(rect)
            })
            .collect())
    }

    /// Each run of text read, in no particular order. A run read densely is read again
    /// stretched, and that reading kept where it mends the first.
    fn recognise(
        &self,
        image: &GrayImage,
        rects: Vec<RotatedRect>,
        stop: &AtomicBool,
    ) -> Result<Vec<Found>, OcrError> {
        let runs: Vec<(RotatedRect, f32)> = rects
            .into_iter()
            .map(upright)
            .filter(|rect| rect.width() >= 1.0 && rect.height() >= 1.0)
            .map(|rect| (rect, 1.0))
            .collect();
        let mut found = Vec::with_capacity(runs.len());
        let mut dense = Vec::new();
        let read = self.read_runs(image, &runs, stop)?;
        for ((rect, _), reading) in runs.into_iter().zip(read) {
            if reading.fill > DENSE {
                let stretch = (reading.fill / SPREAD).min(MAX_STRETCH);
                dense.push(((rect, stretch), reading));
            } else {
                found.extend(reading.found(rect));
            }
        }
        let (runs, first): (Vec<_>, Vec<_>) = dense.into_iter().unzip();
        let again = self.read_runs(image, &runs, stop)?;
        for (((rect, _), stretched), first) in runs.into_iter().zip(again).zip(first) {
            // What stretching mends is characters run together: a reading no longer
            // is no mend (`7/10/25` read as `710/25` stretched), nor one much less sure.
            let mended = stretched.text.chars().count() > first.text.chars().count()
                && stretched.confidence >= first.confidence - MENDED_DOUBT;
            found.extend(if mended { stretched } else { first }.found(rect));
        }
        Ok(found)
    }

    /// Reads each run of text, cut out `stretch` times as wide as its shape, in batches of
    /// runs of similar width; the readings come in the runs' order.
    fn read_runs(
        &self,
        image: &GrayImage,
        runs: &[(RotatedRect, f32)],
        stop: &AtomicBool,
    ) -> Result<Vec<Reading>, OcrError> {
        let widths: Vec<usize> = runs
            .iter()
            .map(|(rect, stretch)| line_width(rect.width() * stretch, rect.height()))
            .collect();
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by_key(|i| widths[*i]);
        let sorted: Vec<usize> = order.iter().map(|i| widths[*i]).collect();
        let mut read: Vec<Option<Reading>> = (0..runs.len()).map(|_| None).collect();
        for range in batches(&sorted) {
            stop_if_given_up(stop)?;
            // Narrowest first: the batch's widest is its last.
            let widest = sorted[range.end - 1].max(MIN_LINE_WIDTH);
            let batch = &order[range];
            let mut input = NdTensor::<f32, 4>::zeros([batch.len(), 3, LINE_HEIGHT, widest]);
            for (slot, i) in batch.iter().enumerate() {
                for ((x, y), value) in cut_out(image, runs[*i].0, widths[*i]) {
                    for c in 0..3 {
                        input[[slot, c, y, x]] = value;
                    }
                }
            }
            let classes = self.recognise_batch(input.view())?;
            for (slot, i) in batch.iter().enumerate() {
                // The steps of the run's own width; the rest of the batch's is padding.
                let own = (classes.size(1) * widths[*i]).div_ceil(widest);
                read[*i] = Some(decode(&self.characters, classes.slice(slot), own));
            }
        }
        // Every run is in one batch: each slot is filled.
        Ok(read.into_iter().flatten().collect())
    }

    fn options(&self) -> RunOptions {
        RunOptions::default().with_thread_pool(Some(self.threads.clone()))
    }

    fn recognise_batch(&self, input: NdTensorView<f32, 4>) -> Result<NdTensor<f32, 3>, OcrError> {
        let output = self
            .recognition
            .run_one(input.into(), Some(self.options()))
            .map_err(|e| OcrError::Engine(format!("text recognition: {e}")))?;
        output
            .try_into()
            .map_err(|e| OcrError::Engine(format!("text recognition's output: {e:?}")))
    }
}

/// Lines of these widths, narrowest first, cut into batches: at most [`BATCH`] lines, the
/// widest at most [`BATCH_SPREAD`] times the narrowest.
fn batches(widths: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let mut start = 0;
    for (i, width) in widths.iter().enumerate() {
        let narrowest = widths[start].max(MIN_LINE_WIDTH) as f32;
        if i - start == BATCH || (*width).max(MIN_LINE_WIDTH) as f32 > narrowest * BATCH_SPREAD {
            batches.push(start..i);
            start = i;
        }
    }
    if start < widths.len() {
        batches.push(start..widths.len());
    }
    batches
}

/// The size `width` × `height` is shown to the detection model at: at most `side` pixels
/// long and [`DETECTION_AREA`] in all (give or take the rounding of each side to a
/// multiple of 32), never scaled up.
fn detection_size(width: u32, height: u32, side: u32) -> (u32, u32) {
    let area = width as f32 * height as f32;
    let scale = (side as f32 / width.max(height) as f32)
        .min((DETECTION_AREA / area).sqrt())
        .min(1.0);
    let shown = |s: u32| (((s as f32 * scale) / 32.0).round() as u32).max(1) * 32;
    (shown(width), shown(height))
}

/// The threads to run the models on: one a physical core, as rten's own pool has, but no
/// more than the process may run at once (its CPU affinity, its container's CPU quota).
/// rten's pool counts the machine's cores: on a worker given one CPU of two, its second
/// thread only took turns with the first, and a receipt took about 5 % longer.
fn threads() -> usize {
    num_cpus::get_physical().min(num_cpus::get()).max(1)
}

/// One run of text as the recognition model read it.
struct Reading {
    text: String,
    /// The mean probability of its characters.
    confidence: f32,
    /// The share of the run's own steps whose likeliest class is a character.
    fill: f32,
}

impl Reading {
    /// The run as found text, unless it is blank or noise.
    fn found(self, rect: RotatedRect) -> Option<Found> {
        (!self.text.trim().is_empty() && !self.text.chars().any(east_asian)).then(|| Found {
            rect,
            text: self.text.trim().to_string(),
            confidence: self.confidence,
        })
    }
}

/// The text of one line from its classes' probabilities at each step: the likeliest class
/// at each, repeats and blanks (class 0) dropped; its confidence is the mean probability
/// of the characters kept. `own` is how many of the steps are the line's.
fn decode(characters: &[String], steps: NdTensorView<f32, 2>, own: usize) -> Reading {
    let mut text = String::new();
    let (mut sum, mut kept) = (0.0, 0);
    let mut previous = 0;
    let mut filled = 0;
    for step in 0..steps.size(0) {
        let (class, probability) =
            steps
                .slice(step)
                .iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f32::MIN),
                    |best, (i, p)| if p > best.1 { (i, p) } else { best },
                );
        if class != 0 && step < own {
            filled += 1;
        }
        if class != 0 && class != previous {
            if let Some(character) = characters.get(class - 1) {
                text.push_str(character);
                sum += probability;
                kept += 1;
            }
        }
        previous = class;
    }
    Reading {
        text,
        confidence: if kept == 0 { 0.0 } else { sum / kept as f32 },
        fill: filled as f32 / own.max(1) as f32,
    }
}

/// Whether `c` is of the Chinese, Japanese or Korean scripts. The recognition model
/// knows them, and reads a barcode, paper grain or a smudge as a run of them; the
/// receipts read here are written in Latin letters, so such a run is noise.
fn east_asian(c: char) -> bool {
    matches!(c, '\u{2E80}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7AF}' | '\u{F900}'..='\u{FAFF}')
}

/// The models' input scale: grey levels to -1…1.
fn normalise(level: u8) -> f32 {
    (level as f32 / 255.0 - 0.5) / 0.5
}

/// The regions of the detection map that are text, grown to the print's size, in the
/// map's coordinates.
fn regions(probabilities: NdTensorView<f32, 2>) -> Vec<RotatedRect> {
    let [height, width] = probabilities.shape();
    // A one-pixel dilation to the right and down joins a word's letters the map leaves
    // a hair apart (the models' own post-processing does the same).
    let mask = NdTensor::from_fn([height, width], |[y, x]| {
        let at = |y: usize, x: usize| probabilities[[y, x]] > TEXT_PROBABILITY;
        at(y, x)
            || (x > 0 && at(y, x - 1))
            || (y > 0 && at(y - 1, x))
            || (x > 0 && y > 0 && at(y - 1, x - 1))
    });
    let contours = find_contours(mask.view(), RetrievalMode::External);
    let mut rects = Vec::new();
    for contour in contours.iter() {
        let points: Vec<PointF> = contour.iter().map(|p| p.to_f32()).collect();
        let Some(rect) = smallest_rect(&points) else {
            continue;
        };
        if rect.width().min(rect.height()) < MIN_REGION_SIDE {
            continue;
        }
        if mean_inside(probabilities, &rect) < BOX_PROBABILITY {
            continue;
        }
        let grow = rect.area() * UNCLIP_RATIO / (2.0 * (rect.width() + rect.height()));
        let grown = rect.expanded(2.0 * grow, 2.0 * grow);
        if grown.width().min(grown.height()) < MIN_REGION_SIDE + 2.0 {
            continue;
        }
        rects.push(grown);
    }
    rects
}

/// The rotated rectangle of least area around `points`: one of its sides lies along an
/// edge of their convex hull. (rten-imageproc's `min_area_rect` gives a sliver for some
/// of the detection map's long, ragged outlines, its hull not being convex.)
fn smallest_rect(points: &[PointF]) -> Option<RotatedRect> {
    let hull: Vec<PointF> = convex_hull(points.iter().map(|p| (p.x, p.y)).collect())
        .into_iter()
        .map(|(x, y)| PointF::from_yx(y, x))
        .collect();
    let mut best: Option<(f32, RotatedRect)> = None;
    for (i, start) in hull.iter().enumerate() {
        let end = hull[(i + 1) % hull.len()];
        let along = Vec2::from_xy(end.x - start.x, end.y - start.y);
        if along.length() < f32::EPSILON {
            continue;
        }
        let along = along.normalized();
        let across = along.perpendicular();
        let (mut low, mut high) = ([f32::MAX; 2], [f32::MIN; 2]);
        for p in &hull {
            let d = Vec2::from_xy(p.x - start.x, p.y - start.y);
            for (k, axis) in [along, across].into_iter().enumerate() {
                low[k] = low[k].min(axis.dot(d));
                high[k] = high[k].max(axis.dot(d));
            }
        }
        let (width, height) = (high[0] - low[0], high[1] - low[1]);
        if best
            .as_ref()
            .is_some_and(|(area, _)| *area <= width * height)
        {
            continue;
        }
        let middle = along * ((low[0] + high[0]) / 2.0) + across * ((low[1] + high[1]) / 2.0);
        let center = PointF::from_yx(start.y + middle.y, start.x + middle.x);
        best = Some((
            width * height,
            RotatedRect::new(center, across, width, height),
        ));
    }
    best.map(|(_, rect)| rect).or_else(|| {
        let p = *points.first()?;
        Some(RotatedRect::new(p, Vec2::from_yx(-1.0, 0.0), 0.0, 0.0))
    })
}

/// The mean probability of the map's pixels inside `rect`.
fn mean_inside(probabilities: NdTensorView<f32, 2>, rect: &RotatedRect) -> f32 {
    let [height, width] = probabilities.shape();
    let corners = rect.corners();
    let (mut left, mut top, mut right, mut bottom) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in corners {
        left = left.min(p.x);
        right = right.max(p.x);
        top = top.min(p.y);
        bottom = bottom.max(p.y);
    }
    let clamp = |v: f32, limit: usize| (v.max(0.0) as usize).min(limit.saturating_sub(1));
    let (mut sum, mut count) = (0.0, 0);
    for y in clamp(top.floor(), height)..=clamp(bottom.ceil(), height) {
        for x in clamp(left.floor(), width)..=clamp(right.ceil(), width) {
            if rect.contains(PointF::from_yx(y as f32, x as f32)) {
                sum += probabilities[[y, x]];
                count += 1;
            }
        }
    }
    if count == 0 {
        0.0
    } else {
        sum / count as f32
    }
}

/// `rect` turned so that its text runs along its width, left to right: the page is
/// upright, so of the rect's axes the one nearest the page's up is its up.
fn upright(rect: RotatedRect) -> RotatedRect {
    rect.orient_towards(Vec2::from_yx(-1.0, 0.0))
}

/// The recognition model's input width for a line `width` × `height` on the page.
fn line_width(width: f32, height: f32) -> usize {
    ((LINE_HEIGHT as f32 * width / height).ceil() as usize).max(1)
}

/// The pixels of the line in `rect`, `out_width` × [`LINE_HEIGHT`], normalised: sampled
/// along the rect's own axes (a tilted line comes out level), bilinearly.
fn cut_out(
    image: &GrayImage,
    rect: RotatedRect,
    out_width: usize,
) -> impl Iterator<Item = ((usize, usize), f32)> + '_ {
    let up = rect.up_axis();
    // Down the line and along it, in the image's pixels per output pixel.
    let down = Vec2::from_yx(-up.y, -up.x) * (rect.height() / LINE_HEIGHT as f32);
    let along = Vec2::from_yx(up.x, -up.y) * (rect.width() / out_width as f32);
    let center = rect.center();
    let origin = PointF::from_yx(
        center.y - along.y * out_width as f32 / 2.0 - down.y * LINE_HEIGHT as f32 / 2.0,
        center.x - along.x * out_width as f32 / 2.0 - down.x * LINE_HEIGHT as f32 / 2.0,
    );
    (0..LINE_HEIGHT).flat_map(move |y| {
        (0..out_width).map(move |x| {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let px = origin.x + along.x * fx + down.x * fy;
            let py = origin.y + along.y * fx + down.y * fy;
            ((x, y), normalise(bilinear(image, px, py)))
        })
    })
}

/// The grey level at a point between pixels; beyond the image's edge, its edge.
fn bilinear(image: &GrayImage, x: f32, y: f32) -> u8 {
    let (width, height) = image.dimensions();
    let x = (x - 0.5).clamp(0.0, (width - 1) as f32);
    let y = (y - 0.5).clamp(0.0, (height - 1) as f32);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(width - 1), (y0 + 1).min(height - 1));
    let (dx, dy) = (x - x0 as f32, y - y0 as f32);
    let at = |x: u32, y: u32| image.get_pixel(x, y).0[0] as f32;
    let top = at(x0, y0) * (1.0 - dx) + at(x1, y0) * dx;
    let bottom = at(x0, y1) * (1.0 - dx) + at(x1, y1) * dx;
    (top * (1.0 - dy) + bottom * dy).round() as u8
}

/// The runs of text put into rows (runs whose heights mostly overlap: an item's name
/// at the left, its price far at the right), top to bottom, each left to right.
fn page_text(found: Vec<Found>) -> PageText {
    let runs = found
        .into_iter()
        .map(|f| {
            let corners = f.rect.corners();
            let extent = Extent {
                top: corners.iter().map(|p| p.y).fold(f32::MAX, f32::min),
                bottom: corners.iter().map(|p| p.y).fold(f32::MIN, f32::max),
                left: corners.iter().map(|p| p.x).fold(f32::MAX, f32::min),
            };
            (extent, f)
        })
        .collect();
    let mut page = PageText::default();
    for (row, members) in into_rows(runs) {
        let all: Vec<&str> = members.iter().map(|f| f.text.as_str()).collect();
        let sure: Vec<&str> = members
            .iter()
            .filter(|f| f.confidence >= SURE)
            .map(|f| f.text.as_str())
            .collect();
        page.text.push_str(&all.join("  "));
        page.text.push('\n');
        page.sure.push_str(&sure.join("  "));
        page.sure.push('\n');
        page.rows.push(RowSpan {
            top: row.top.max(0.0) as u32,
            bottom: row.bottom.max(0.0).ceil() as u32,
        });
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    fn characters(of: &[&str]) -> Vec<String> {
        of.iter().map(|c| c.to_string()).collect()
    }

    /// Probabilities that make `classes` the likeliest at each step, with `sure` for each.
    fn steps(classes: &[usize], width: usize, sure: f32) -> NdTensor<f32, 2> {
        NdTensor::from_fn([classes.len(), width], |[step, class]| {
            if classes[step] == class {
                sure
            } else {
                (1.0 - sure) / (width - 1) as f32
            }
        })
    }

    #[test]
    fn a_line_is_decoded_with_repeats_merged_and_blanks_dropped() {
        // Classes: blank, then "a", "b", "1", then the space.
        let characters = characters(&["a", "b", "1", " "]);
        let classes = [1, 1, 0, 1, 2, 0, 4, 4, 3, 3, 0, 0, 0];
        // The last two steps are the batch's padding.
        let reading = decode(&characters, steps(&classes, 5, 0.9).view(), 11);
        // A repeat is one character unless a blank parts it.
        assert_eq!(reading.text, "aab 1");
        assert!(
            (reading.confidence - 0.9).abs() < 1e-5,
            "{}",
            reading.confidence
        );
        // Eight of the line's eleven steps hold a character.
        assert!((reading.fill - 8.0 / 11.0).abs() < 1e-5, "{}", reading.fill);
        let blank = decode(&characters, steps(&[0, 0, 0], 5, 0.9).view(), 3);
        assert_eq!(
            (blank.text.as_str(), blank.confidence, blank.fill),
            ("", 0.0, 0.0)
        );
    }

    #[test]
    fn a_wide_page_is_detected_within_the_area_and_a_long_slip_at_the_longest_side() {
        // A wide photo: its area, not its longest side, bounds it.
        let (width, height) = detection_size(1600, 1200, DETECTION_SIDE);
        assert_eq!((width, height), (928, 704));
        assert!(width as f32 * height as f32 <= DETECTION_AREA * 1.03);
        // A long, narrow slip keeps the size its longest side gives it.
        assert_eq!(detection_size(700, 2190, DETECTION_SIDE), (416, 1280));
        // A small image is not enlarged.
        assert_eq!(detection_size(384, 288, DETECTION_SIDE), (384, 288));
    }

    #[test]
    fn lines_are_batched_with_lines_of_about_their_width() {
        let (least, most) = (
            MIN_LINE_WIDTH,
            (MIN_LINE_WIDTH as f32 * BATCH_SPREAD) as usize,
        );
        // Short runs are all padded to the narrowest input: eight of them go together.
        let prices = [10, 20, 30, least, least, most - 1, most, most, most];
        assert_eq!(batches(&prices), vec![0..BATCH, BATCH..prices.len()]);
        // A line across the page is not read in the batch of the widest prices.
        let receipt = [least, least + 1, most, most + 1, 1400];
        assert_eq!(batches(&receipt), vec![0..3, 3..4, 4..5]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn a_reading_given_up_stops_at_its_next_model_run() {
        let given_up = GivenUp::default();
        let stop = given_up.0.clone();
        assert!(stop_if_given_up(&stop).is_ok());
        drop(given_up);
        assert!(stop_if_given_up(&stop).is_err());
    }

    #[test]
    fn text_regions_are_found_grown_and_specks_and_faint_ones_dropped() {
        let map = NdTensor::from_fn([64, 160], |[y, x]| match (y, x) {
            (10..20, 10..60) => 0.9,
            (40..42, 100..102) => 0.9,
            (40..52, 110..150) => 0.35,
            _ => 0.0,
        });
        let found = regions(map.view());
        assert_eq!(found.len(), 1, "{found:?}");
        let rect = upright(found[0]);
        assert!((rect.center().x - 35.0).abs() < 1.5, "{rect:?}");
        assert!((rect.center().y - 15.0).abs() < 1.5, "{rect:?}");
        // Grown by 1.6 × area / perimeter on each side: about 6.7 px for 50 × 10.
        assert!(rect.width() > 58.0 && rect.width() < 68.0, "{rect:?}");
        assert!(rect.height() > 18.0 && rect.height() < 28.0, "{rect:?}");
    }

    #[test]
    fn the_smallest_rect_around_a_ragged_outline_holds_all_of_it() {
        // A row of text as the detection map draws it, its top and bottom edges a pixel or
        // three uneven all along: rten-imageproc's rect around its outline is a sliver
        // 2 px high (its hull is not convex), and a shop's name was lost so.
        let bottom = |x: usize| 68 + ((x * 7919 + 104729) % 97 % 4);
        let top = |x: usize| 48 + ((x * 6007 + 7727) % 89 % 3);
        let mask = NdTensor::from_fn([100, 640], |[y, x]| {
            (20..600).contains(&x) && y >= top(x) && y < bottom(x)
        });
        let contours = find_contours(mask.view(), RetrievalMode::External);
        assert_eq!(contours.len(), 1);
        let outline: Vec<PointF> = contours
            .iter()
            .next()
            .unwrap()
            .iter()
            .map(|p| p.to_f32())
            .collect();
        let rect = upright(smallest_rect(&outline).expect("a rect"));
        assert!((rect.width() - 579.0).abs() < 1.0, "{rect:?}");
        assert!(rect.height() > 20.0 && rect.height() < 23.0, "{rect:?}");
        for p in &outline {
            assert!(
                rect.expanded(0.01, 0.01).contains(*p),
                "{p:?} outside {rect:?}"
            );
        }
        // Turned by 30°, the rect turns with it.
        let (sin, cos) = 30f32.to_radians().sin_cos();
        let turned: Vec<PointF> = outline
            .iter()
            .map(|p| PointF::from_yx(p.x * sin + p.y * cos, p.x * cos - p.y * sin))
            .collect();
        let rect = smallest_rect(&turned).expect("a rect");
        let (long, short) = (
            rect.width().max(rect.height()),
            rect.width().min(rect.height()),
        );
        assert!(
            (long - 579.0).abs() < 1.0 && short > 20.0 && short < 23.0,
            "{rect:?}"
        );
        assert!(smallest_rect(&[]).is_none());
    }

    #[test]
    fn a_line_is_cut_out_level_left_to_right_and_top_to_bottom() {
        let across = GrayImage::from_fn(200, 100, |x, _| image::Luma([x as u8]));
        let down = GrayImage::from_fn(200, 100, |_, y| image::Luma([2 * y as u8]));
        let rect = RotatedRect::new(
            PointF::from_yx(50.0, 100.0),
            Vec2::from_yx(-1.0, 0.0),
            100.0,
            20.0,
        );
        let width = line_width(rect.width(), rect.height());
        assert_eq!(width, 240);
        let level = |image: &GrayImage, rect| {
            let mut cut = vec![0.0; width * LINE_HEIGHT];
            for ((x, y), value) in cut_out(image, rect, width) {
                cut[y * width + x] = value;
            }
            cut
        };
        let cut = level(&across, rect);
        let (left, right) = (cut[20 * width], cut[20 * width + width - 1]);
        assert!((left - normalise(50)).abs() < 0.02, "{left}");
        assert!((right - normalise(150)).abs() < 0.02, "{right}");
        let cut = level(&down, rect);
        assert!(cut[0] < cut[(LINE_HEIGHT - 1) * width], "top above bottom");
        assert!((cut[0] - normalise(80)).abs() < 0.02, "{}", cut[0]);
        // Tilted by a few degrees, the same line is still read left to right.
        let tilted = RotatedRect::new(
            PointF::from_yx(50.0, 100.0),
            Vec2::from_yx(-1.0, 0.08),
            100.0,
            20.0,
        );
        let cut = level(&across, upright(tilted));
        assert!(cut[20 * width] < cut[20 * width + width - 1]);
    }

    fn run(left: f32, top: f32, width: f32, text: &str, confidence: f32) -> Found {
        let height = 20.0;
        Found {
            rect: RotatedRect::new(
                PointF::from_yx(top + height / 2.0, left + width / 2.0),
                Vec2::from_yx(-1.0, 0.0),
                width,
                height,
            ),
            text: text.to_string(),
            confidence,
        }
    }

    #[test]
    fn runs_side_by_side_make_one_row_and_unsure_ones_stay_out_of_the_sure_text() {
        let page = page_text(vec![
            run(400.0, 103.0, 60.0, "9,50", 0.95),
            run(20.0, 40.0, 200.0, "TRATTORIA", 0.97),
            run(20.0, 100.0, 150.0, "Margherita", 0.9),
            run(300.0, 40.0, 40.0, "Wee", 0.4),
        ]);
        assert_eq!(page.text, "TRATTORIA  Wee\nMargherita  9,50\n");
        assert_eq!(page.sure, "TRATTORIA\nMargherita  9,50\n");
        assert_eq!(
            page.rows,
            vec![
                RowSpan {
                    top: 40,
                    bottom: 60
                },
                RowSpan {
                    top: 100,
                    bottom: 123
                }
            ]
        );
    }

    #[test]
    fn east_asian_scripts_are_told_from_latin_ones() {
        assert!("图用时".chars().all(east_asian));
        assert!("한글".chars().all(east_asian));
        assert!(!"Müller ¥8,040 zł €".chars().any(east_asian));
    }
}
