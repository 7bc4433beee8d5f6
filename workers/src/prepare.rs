//! Turning an uploaded photo into the image an OCR engine reads best: upright (EXIF
//! orientation), grey, cut to the paper (a large photo's table), at a workable size,
//! evenly lit (flatten), cleared around the paper (drawn upright where photographed at a
//! slant), smoothed where grainy, with its text lines level (deskew) and its
//! white-on-black bars turned black on white, and without the dot leaders and dashed
//! rules the engine would read as garbage.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, ImageDecoder, ImageReader, Limits, Luma};

use crate::ocr::{OcrError, MAX_PIXELS};

mod bars;
mod leaders;
mod paper;

pub(crate) use paper::convex_hull;

use bars::invert_bars;
use leaders::erase_leaders_and_rules;
use paper::{clear_around_paper, crop_to_paper};

/// Narrower than this and the letters are too small to read well: scaled up.
const MIN_WIDTH: u32 = 700;
/// More pixels than this only make reading slower: scaled down.
const MAX_WORKING_PIXELS: u64 = 10_000_000;
/// Skew is looked for within this many degrees either way; phones and scanners rarely
/// do worse, and beyond it a wrong answer gets likelier.
const MAX_SKEW_DEGREES: f32 = 15.0;
/// Less skew than this does not bother the engines: left alone (rotating blurs).
const MIN_SKEW_DEGREES: f32 = 0.4;

/// Decodes `bytes` and prepares the image for reading.
pub fn prepare(bytes: &[u8]) -> Result<GrayImage, OcrError> {
    let image = decode(bytes)?;
    let image = scale(crop_to_paper(image));
    let flat = flatten(&image);
    // Grain is measured before the table is cleared: the white put in its place would
    // hide the grain of a photo that is grainy all over.
    let grainy = is_grainy(&flat.image);
    let image = scale(clear_around_paper(flat));
    let mut image = deskew(if grainy { smooth(image) } else { image });
    invert_bars(&mut image);
    erase_leaders_and_rules(&mut image);
    Ok(image)
}

/// Decodes with the pixel limit checked before any pixel is allocated, and turns the
/// image the way its EXIF orientation says the camera was held.
pub fn decode(bytes: &[u8]) -> Result<GrayImage, OcrError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| OcrError::Unreadable)?;
    let mut limits = Limits::default();
    // The decoder's own allocations (a few bytes per pixel) within the pixel limit.
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|_| OcrError::Unreadable)?;
    let (width, height) = decoder.dimensions();
    let (width, height) = (u64::from(width), u64::from(height));
    if width == 0 || height == 0 {
        return Err(OcrError::Unreadable);
    }
    if width * height > MAX_PIXELS {
        return Err(OcrError::TooLarge { width, height });
    }
    // A damaged EXIF block is no reason to refuse the picture: read it as it lies.
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(|_| OcrError::Unreadable)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(image.into_luma8())
}

/// Brings the image into the size range the engines read well and quickly.
pub fn scale(image: GrayImage) -> GrayImage {
    let (width, height) = image.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    let factor = if width < MIN_WIDTH {
        (f64::from(MIN_WIDTH) / f64::from(width)).min(3.0)
    } else if pixels > MAX_WORKING_PIXELS {
        (MAX_WORKING_PIXELS as f64 / pixels as f64).sqrt()
    } else {
        return image;
    };
    let new_width = ((f64::from(width) * factor).round() as u32).max(1);
    let new_height = ((f64::from(height) * factor).round() as u32).max(1);
    image::imageops::resize(&image, new_width, new_height, FilterType::Triangle)
}

/// A flattened photo whose neighbouring pixels differ by this many grey levels or more
/// in the median is grainy: a small or cheap camera's sensor noise, strongest where the
/// light was weakest, and a rough table. Scans and the first corpus's photos differ by 0
/// to 3; the second corpus's photos by up to 18.
const GRAINY: u8 = 8;
/// How much a grainy photo is blurred (the Gaussian's sigma, in pixels): enough to melt
/// single-pixel grain into grey, not enough to join the strokes of 10-pixel letters.
const GRAIN_BLUR: f32 = 0.8;

/// Whether a flattened photo is grainy, to be smoothed. Tesseract reads grain as specks
/// beside and inside letters and, on a table, as thousands of would-be words: on the
/// development part of the second corpus's photos, smoothing made 11 more totals of 300
/// right and halved the mean time (the slowest fell from 69 s to 8 s); the first
/// corpus's photos are not grainy and read the same.
fn is_grainy(image: &GrayImage) -> bool {
    median_neighbour_difference(image) >= GRAINY
}

fn smooth(image: GrayImage) -> GrayImage {
    image::imageops::blur(&image, GRAIN_BLUR)
}

/// The median absolute difference between pixels side by side.
fn median_neighbour_difference(image: &GrayImage) -> u8 {
    let mut histogram = [0u64; 256];
    for row in image.as_raw().chunks_exact(image.width() as usize) {
        for pair in row.windows(2) {
            histogram[usize::from(pair[0].abs_diff(pair[1]))] += 1;
        }
    }
    let half = histogram.iter().sum::<u64>() / 2;
    let mut seen = 0;
    histogram
        .iter()
        .position(|&count| {
            seen += count;
            seen > half
        })
        .unwrap_or(0) as u8
}

/// The side of the square around each pixel that [`binarise`] measures, in pixels: a
/// few letters' worth at the sizes receipts are read at.
const BINARY_WINDOW: usize = 41;
/// How far below the mean around it a pixel must be to turn black, as Sauvola weighs it:
/// by the contrast there (0.2 is the usual choice, and read best on the dev photos).
const BINARY_K: f64 = 0.2;

/// The image in black and white, each pixel measured against the brightness and contrast
/// of the square around it (Sauvola's threshold), for a second reading of a photo in
/// doubt: Tesseract's own global threshold joins blurred digits or breaks faint ones
/// where the paper's light still varies after [`flatten`]. Read so, after the smaller
/// reading, 6 more of 257 dev photos of the second corpus had their total right and 11
/// fewer went to a person. The sums over the square are kept per column and slid along
/// each row: memory for one row, not for an integral image of the page.
pub fn binarise(image: &GrayImage) -> GrayImage {
    let (width, height) = image.dimensions();
    let (w, h) = (width as usize, height as usize);
    let reach = BINARY_WINDOW / 2;
    let pixels = image.as_raw();
    let mut column = vec![0u64; w];
    let mut column_squares = vec![0u64; w];
    let mut out = GrayImage::new(width, height);
    let (mut top, mut bottom) = (0, 0);
    for y in 0..h {
        while bottom < (y + reach + 1).min(h) {
            for (x, &v) in pixels[bottom * w..(bottom + 1) * w].iter().enumerate() {
                column[x] += u64::from(v);
                column_squares[x] += u64::from(v) * u64::from(v);
            }
            bottom += 1;
        }
        while top < y.saturating_sub(reach) {
            for (x, &v) in pixels[top * w..(top + 1) * w].iter().enumerate() {
                column[x] -= u64::from(v);
                column_squares[x] -= u64::from(v) * u64::from(v);
            }
            top += 1;
        }
        let rows = (bottom - top) as u64;
        let (mut sum, mut squares) = (0u64, 0u64);
        let (mut left, mut right) = (0, 0);
        for x in 0..w {
            while right < (x + reach + 1).min(w) {
                sum += column[right];
                squares += column_squares[right];
                right += 1;
            }
            while left < x.saturating_sub(reach) {
                sum -= column[left];
                squares -= column_squares[left];
                left += 1;
            }
            let count = (rows * (right - left) as u64) as f64;
            let mean = sum as f64 / count;
            let deviation = (squares as f64 / count - mean * mean).max(0.0).sqrt();
            let threshold = mean * (1.0 + BINARY_K * (deviation / 128.0 - 1.0));
            let white = f64::from(pixels[y * w + x]) > threshold;
            out.put_pixel(x as u32, y as u32, Luma([if white { 255 } else { 0 }]));
        }
    }
    out
}

/// A photo with its light evened out ([`flatten`]).
pub struct Flattened {
    /// Divided by the light around each point, shadows' edges followed: what is read.
    pub image: GrayImage,
    /// Divided by the brightest light around each point, where the table by the paper
    /// comes out dark: what the paper is told from the table on
    /// ([`paper::clear_around_paper`]).
    pub by_brightest: GrayImage,
}

/// The paper's light is estimated on a copy this many times smaller each way.
const LIGHT_SHRINK: u32 = 8;
/// How far (in the small copy's pixels) the light is looked for around each point:
/// wider than a text stroke and a white-on-black bar's half height, so both vanish.
const LIGHT_RADIUS: u32 = 3;

/// A shadow takes at most this part of the light: the light is never estimated lower
/// than the brightest around divided by it. Darker than that is ink, and a white-on-black
/// bar taller than the light's radius, lit as if in shadow, came out grey with a black
/// smear across its letters (`SUMME  1323,46 EUR` read as `Ti ER`).
const SHADOW_DEPTH: u8 = 2;

/// Evens out the light: a photo's paper is darker in one corner, under a shadow or on
/// faded thermal print, and a single threshold (Tesseract's, or the skew estimate's)
/// then loses whole regions. The paper's brightness is estimated on a small copy,
/// divided out, and the faintest ink stretched back to black. A clean scan comes out
/// unchanged.
///
/// The brightest pixels around each point make the text strokes vanish, but carry the
/// lit side's light 24 pixels into a shadow: a grey band along the shadow's edge, in
/// which Tesseract's threshold darkens digits into blots. The darkest of those again
/// (a closing), down to half the brightest ([`SHADOW_DEPTH`]), puts the edge back where
/// it is; it also evens the table out towards the paper's white, so the paper is told
/// from the table on the brightest alone.
pub fn flatten(image: &GrayImage) -> Flattened {
    let (width, height) = image.dimensions();
    let small = image::imageops::resize(
        image,
        (width / LIGHT_SHRINK).max(1),
        (height / LIGHT_SHRINK).max(1),
        FilterType::Triangle,
    );
    let brightest = brightest_around(&small, LIGHT_RADIUS);
    let blurred = |light: &GrayImage| image::imageops::blur(light, 2.0);
    let mut light = darkest_around(&brightest, LIGHT_RADIUS);
    for (light, brightest) in light.pixels_mut().zip(brightest.pixels()) {
        light.0[0] = light.0[0].max(brightest.0[0] / SHADOW_DEPTH);
    }
    let by_brightest = divide_by_light(image, &blurred(&brightest));
    // Without a shadow's edge or a large dark patch (a scan, most clean receipts) the
    // two lights are one, and so are the divisions.
    let image = if light == brightest {
        by_brightest.clone()
    } else {
        divide_by_light(image, &blurred(&light))
    };
    Flattened {
        image,
        by_brightest,
    }
}

/// `image` divided by `light` (a smaller copy's), its darkest percent then made black.
fn divide_by_light(image: &GrayImage, light: &GrayImage) -> GrayImage {
    let (width, height) = image.dimensions();
    // The light at each pixel is interpolated (bilinearly, as a resize would) from the
    // small copy while the pixel is divided by it: a full-size copy made by `resize`
    // took most of the preparation's time on a scanned A4 page.
    let mut flat = GrayImage::new(width, height);
    let columns = between(width, light.width());
    let stride = light.width() as usize;
    let mut light_row = vec![0f32; stride];
    let rows = flat
        .chunks_exact_mut(width as usize)
        .zip(image.chunks_exact(width as usize));
    for ((out, ink), (top, bottom, down)) in rows.zip(between(height, light.height())) {
        let top = &light.as_raw()[top * stride..][..stride];
        let bottom = &light.as_raw()[bottom * stride..][..stride];
        for ((light, &t), &b) in light_row.iter_mut().zip(top).zip(bottom) {
            *light = f32::from(t) * (1.0 - down) + f32::from(b) * down;
        }
        for ((out, &ink), &(left, right, across)) in out.iter_mut().zip(ink).zip(&columns) {
            let light = light_row[left] * (1.0 - across) + light_row[right] * across;
            let light = round_non_negative(light).max(1);
            *out = (u32::from(ink) * 255 / light).min(255) as u8;
        }
    }
    // The darkest percent of pixels is ink: it becomes black, the paper stays white.
    let mut histogram = [0u64; 256];
    for p in flat.pixels() {
        histogram[usize::from(p.0[0])] += 1;
    }
    let darkest = u64::from(width) * u64::from(height) / 100;
    let mut seen = 0;
    let ink = histogram
        .iter()
        .position(|&count| {
            seen += count;
            seen > darkest
        })
        .unwrap_or(0) as u32;
    if ink > 0 && ink < 200 {
        for p in flat.pixels_mut() {
            let v = u32::from(p.0[0]).saturating_sub(ink);
            p.0[0] = (v * 255 / (255 - ink)).min(255) as u8;
        }
    }
    flat
}

/// For each of `length` positions along a side, the two of `source` positions (a
/// smaller copy's, pixel centres aligned) it lies between, and the second's weight.
fn between(length: u32, source: u32) -> Vec<(usize, usize, f32)> {
    let last = source.saturating_sub(1) as f32;
    (0..length)
        .map(|i| {
            let at = ((i as f32 + 0.5) * source as f32 / length as f32 - 0.5).clamp(0.0, last);
            let low = at.floor();
            let high = (low + 1.0).min(last);
            (low as usize, high as usize, at - low)
        })
        .collect()
}

/// Each pixel replaced by the brightest within `radius` (rows, then columns).
pub(crate) fn brightest_around(image: &GrayImage, radius: u32) -> GrayImage {
    extreme_around(image, radius, u8::max)
}

/// Each pixel replaced by the darkest within `radius` (rows, then columns).
fn darkest_around(image: &GrayImage, radius: u32) -> GrayImage {
    extreme_around(image, radius, u8::min)
}

fn extreme_around(image: &GrayImage, radius: u32, pick: fn(u8, u8) -> u8) -> GrayImage {
    let (width, height) = image.dimensions();
    let pass = |source: &GrayImage, horizontal: bool| {
        GrayImage::from_fn(width, height, |x, y| {
            let (centre, limit) = if horizontal { (x, width) } else { (y, height) };
            let range = centre.saturating_sub(radius)..=(centre + radius).min(limit - 1);
            let extreme = range
                .map(|i| {
                    let (px, py) = if horizontal { (i, y) } else { (x, i) };
                    source.get_pixel(px, py).0[0]
                })
                .reduce(pick)
                .unwrap_or(255);
            Luma([extreme])
        })
    };
    pass(&pass(image, true), false)
}

/// Rotates the image so that its text lines run level, when they noticeably do not.
pub fn deskew(image: GrayImage) -> GrayImage {
    let angle = estimate_skew(&image);
    if angle.abs() < MIN_SKEW_DEGREES {
        return image;
    }
    rotate(&image, -angle)
}

/// The angle, in degrees (positive: lines fall to the right, image y pointing down), at
/// which the dark pixels line up best into rows: lines of text make the row histogram
/// spiky, and it is spikiest when its rows follow the text.
pub fn estimate_skew(image: &GrayImage) -> f32 {
    // A small copy is enough to measure an angle and keeps this cheap.
    let sample = if image.width() > 800 {
        let height = (u64::from(image.height()) * 800 / u64::from(image.width())).max(1) as u32;
        image::imageops::resize(image, 800, height, FilterType::Triangle)
    } else {
        image.clone()
    };
    let threshold = otsu_threshold(&sample);
    // The dark pixels' rows, column by column: at a given angle a pixel's row moves by
    // an amount that depends on its column alone, so each angle costs one integer
    // addition per pixel (121 angles over every dark pixel took a quarter of the
    // preparation's time).
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); sample.width() as usize];
    for (x, y, p) in sample.enumerate_pixels() {
        if p.0[0] < threshold {
            columns[x as usize].push(y as usize);
        }
    }
    if columns.iter().map(Vec::len).sum::<usize>() < 50 {
        return 0.0;
    }
    let width = sample.width() as f32;
    let height = sample.height() as f32;
    let margin = width * MAX_SKEW_DEGREES.to_radians().tan();
    let bins = (height + 2.0 * margin).ceil() as usize + 2;
    let mut histogram = vec![0u32; bins];
    let mut best = (0.0f32, 0.0f64);
    let steps = (MAX_SKEW_DEGREES * 4.0) as i32;
    for step in -steps..=steps {
        let degrees = step as f32 / 4.0;
        let slope = degrees.to_radians().tan();
        histogram.iter_mut().for_each(|b| *b = 0);
        for (x, rows) in columns.iter().enumerate() {
            // Never negative: the margin is the most any column moves.
            let shift = round_non_negative(margin - x as f32 * slope) as usize;
            for &y in rows {
                histogram[(y + shift).min(bins - 1)] += 1;
            }
        }
        let score: f64 = histogram.iter().map(|&c| f64::from(c) * f64::from(c)).sum();
        // Ties go to the smaller angle: no rotation unless it clearly helps.
        if score > best.1 * 1.0001 || (score >= best.1 && degrees.abs() < best.0.abs()) {
            best = (degrees, score);
        }
    }
    best.0
}

/// The grey level that best splits the image into ink and paper (Otsu's method).
fn otsu_threshold(image: &GrayImage) -> u8 {
    let mut histogram = [0u64; 256];
    for p in image.pixels() {
        histogram[usize::from(p.0[0])] += 1;
    }
    let total: u64 = histogram.iter().sum();
    let sum_all: f64 = histogram
        .iter()
        .enumerate()
        .map(|(level, &count)| level as f64 * count as f64)
        .sum();
    let (mut below, mut sum_below) = (0u64, 0f64);
    let (mut best_level, mut best_variance) = (128u8, -1f64);
    for (level, &count) in histogram.iter().enumerate() {
        below += count;
        sum_below += level as f64 * count as f64;
        let above = total - below;
        if below == 0 || above == 0 {
            continue;
        }
        let mean_below = sum_below / below as f64;
        let mean_above = (sum_all - sum_below) / above as f64;
        let variance = below as f64 * above as f64 * (mean_below - mean_above).powi(2);
        if variance > best_variance {
            best_variance = variance;
            best_level = level as u8;
        }
    }
    best_level.saturating_add(1)
}

/// Rotates by `degrees` (positive: clockwise on screen) onto a white canvas large
/// enough to hold every corner, sampling bilinearly.
pub fn rotate(image: &GrayImage, degrees: f32) -> GrayImage {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (width, height) = (image.width() as f32, image.height() as f32);
    let new_width = (width * cos.abs() + height * sin.abs()).ceil() as u32;
    let new_height = (width * sin.abs() + height * cos.abs()).ceil() as u32;
    let (cx, cy) = (width / 2.0, height / 2.0);
    let (ncx, ncy) = (new_width as f32 / 2.0, new_height as f32 / 2.0);
    GrayImage::from_fn(new_width, new_height, |x, y| {
        // Each output pixel comes from the source point the inverse rotation gives.
        let (u, v) = (x as f32 + 0.5 - ncx, y as f32 + 0.5 - ncy);
        let sx = cos * u + sin * v + cx - 0.5;
        let sy = -sin * u + cos * v + cy - 0.5;
        Luma([sample(image, sx, sy)])
    })
}

pub(crate) fn sample(image: &GrayImage, x: f32, y: f32) -> u8 {
    let (x0, y0) = (floor(x), floor(y));
    let (fx, fy) = (x - x0, y - y0);
    let (width, height) = (image.width() as f32, image.height() as f32);
    let raw = image.as_raw();
    let stride = image.width() as usize;
    let [top_left, top_right, bottom_left, bottom_right] =
        if x0 >= 0.0 && y0 >= 0.0 && x0 + 1.0 < width && y0 + 1.0 < height {
            // All four inside, as for nearly every pixel: two rows of two.
            let at = y0 as usize * stride + x0 as usize;
            let (top, bottom) = (&raw[at..at + 2], &raw[at + stride..at + stride + 2]);
            [top[0], top[1], bottom[0], bottom[1]].map(f32::from)
        } else {
            let at = |dx: f32, dy: f32| -> f32 {
                let (px, py) = (x0 + dx, y0 + dy);
                if px < 0.0 || py < 0.0 || px >= width || py >= height {
                    255.0
                } else {
                    f32::from(raw[py as usize * stride + px as usize])
                }
            };
            [at(0.0, 0.0), at(1.0, 0.0), at(0.0, 1.0), at(1.0, 1.0)]
        };
    let top = top_left * (1.0 - fx) + top_right * fx;
    let bottom = bottom_left * (1.0 - fx) + bottom_right * fx;
    round_non_negative(top * (1.0 - fy) + bottom * fy) as u8
}

/// `value.floor()` for the coordinates of an image, without the call to `floorf` that
/// `floor` is on this target (and a rotation makes for every pixel).
fn floor(value: f32) -> f32 {
    let truncated = value as i32 as f32;
    if truncated > value {
        truncated - 1.0
    } else {
        truncated
    }
}

/// Rounds a value that is never negative as `f32::round` does (a negative one gives 0).
/// `round` is a call to `roundf` on this target, and on every pixel of a page (and
/// every angle of the skew search) it took up to half the preparation's time.
fn round_non_negative(value: f32) -> u32 {
    (value + 0.5) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binarising_keeps_the_strokes_in_a_shadow_and_the_paper_around_them_white() {
        // Strokes 60 levels darker than the paper, the right half in shadow: darker there
        // than the left half's strokes. One threshold for the page loses one half.
        let page = GrayImage::from_fn(400, 120, |x, y| {
            let paper = if x < 200 { 230 } else { 110 };
            let stroke = (40..80).contains(&y) && x % 20 < 4;
            Luma([if stroke { paper - 60 } else { paper }])
        });
        let binary = binarise(&page);
        for (x, y, pixel) in binary.enumerate_pixels() {
            // Away from the shadow's edge, where the square spans both halves.
            if (180..220).contains(&x) {
                continue;
            }
            let stroke = (40..80).contains(&y) && x % 20 < 4;
            assert_eq!(pixel[0], if stroke { 0 } else { 255 }, "({x}, {y})");
        }
        let global = otsu_threshold(&page);
        assert!(page.get_pixel(300, 10)[0] <= global && page.get_pixel(0, 60)[0] > global);
    }

    /// Ten dark bars across a white page, like lines of text.
    fn ruled_page() -> GrayImage {
        GrayImage::from_fn(600, 800, |x, y| {
            let in_bar = (100..700).contains(&y) && (y - 100) % 60 < 14;
            let in_word = (50..550).contains(&x) && (x / 40) % 4 != 3;
            Luma([if in_bar && in_word { 20 } else { 245 }])
        })
    }

    #[test]
    fn skew_is_measured_and_undone() {
        let page = ruled_page();
        assert_eq!(estimate_skew(&page), 0.0);
        for degrees in [-7.0f32, -2.5, 1.5, 4.0, 8.0] {
            let tilted = rotate(&page, degrees);
            let measured = estimate_skew(&tilted);
            assert!(
                (measured - degrees).abs() <= 0.5,
                "rotated by {degrees}°, measured {measured}°"
            );
            let level = deskew(tilted);
            assert!(estimate_skew(&level).abs() <= 0.5);
        }
    }

    #[test]
    fn a_shadow_is_lifted_and_the_ink_stays_dark() {
        // Paper fading from white on the left to mid-grey on the right.
        let flat = flattened_ruled_page(|x| 250.0 - 130.0 * x as f32 / 599.0);
        assert_paper_and_ink(&flat, [60, 330, 540], 235);
    }

    /// [`ruled_page`] under the paper's brightness `light` gives at each column, its bars
    /// printed at a third of it, flattened.
    fn flattened_ruled_page(light: impl Fn(u32) -> f32) -> GrayImage {
        let page = ruled_page();
        let shaded = GrayImage::from_fn(600, 800, |x, y| {
            let paper = light(x);
            let ink = page.get_pixel(x, y).0[0] < 128;
            Luma([(if ink { paper / 3.0 } else { paper }) as u8])
        });
        flatten(&shaded).image
    }

    /// At each of `columns`, the paper above the first bar (y = 50) at least `paper`
    /// bright and the bar (y = 105) dark.
    fn assert_paper_and_ink(flat: &GrayImage, columns: [u32; 3], paper: u8) {
        for x in columns {
            let white = flat.get_pixel(x, 50).0[0];
            let ink = flat.get_pixel(x, 105).0[0];
            assert!(white >= paper, "paper at x = {x} is {white}");
            assert!(ink <= 60, "ink at x = {x} is {ink}");
        }
    }

    #[test]
    fn a_hard_shadow_leaves_no_grey_band_along_its_edge() {
        // The right half in a shadow that halves the light; looked at just beside the
        // edge, on the shadow's side.
        let flat = flattened_ruled_page(|x| if x < 300 { 240.0 } else { 120.0 });
        assert_paper_and_ink(&flat, [322, 345, 370], 200);
    }

    #[test]
    fn a_tall_white_on_black_bar_is_not_lifted_to_white() {
        // A bar 100 pixels tall across the page, as a till prints its total: white
        // blocks for the label's and the amount's letters at its ends, none between.
        let page = GrayImage::from_fn(600, 400, |x, y| {
            let in_bar = (150..250).contains(&y) && (20..580).contains(&x);
            let in_letter = (175..225).contains(&y)
                && ((40..140).contains(&x) || (440..560).contains(&x))
                && (x / 12) % 2 == 0;
            Luma([if in_bar && !in_letter { 25 } else { 240 }])
        });
        let flat = flatten(&page).image;
        // Far from its letters the bar comes out grey, as it did by the brightest light
        // alone, and not lifted to the paper's white.
        for x in [200, 300, 400] {
            let bar = flat.get_pixel(x, 200).0[0];
            assert!(bar < 200, "bar at x = {x} is {bar}");
        }
    }

    #[test]
    fn grain_is_smoothed_and_a_clean_page_left_alone() {
        let page = ruled_page();
        assert!(!is_grainy(&page));
        // The same page with every pixel pushed up or down by up to 40 levels, as a cheap
        // camera's sensor noise comes out of flattening.
        let mut seed = 7u32;
        let grainy = GrayImage::from_fn(600, 800, |x, y| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let noise = (seed >> 16) % 81;
            let value = i64::from(page.get_pixel(x, y).0[0]) + i64::from(noise) - 40;
            Luma([value.clamp(0, 255) as u8])
        });
        assert!(is_grainy(&grainy));
        let smoothed = smooth(grainy);
        assert!(!is_grainy(&smoothed));
        // The bars are still dark and the paper between them light.
        assert!(smoothed.get_pixel(260, 107).0[0] < 80);
        assert!(smoothed.get_pixel(260, 140).0[0] > 180);
    }

    #[test]
    fn small_images_grow_and_huge_ones_shrink() {
        let small = scale(GrayImage::new(350, 500));
        assert_eq!(small.dimensions(), (700, 1000));
        let huge = scale(GrayImage::new(4000, 4000));
        assert!(u64::from(huge.width()) * u64::from(huge.height()) <= MAX_WORKING_PIXELS);
        assert_eq!(huge.width(), huge.height());
        let fine = scale(GrayImage::new(1000, 2000));
        assert_eq!(fine.dimensions(), (1000, 2000));
    }

    #[test]
    fn exif_orientation_turns_the_picture_upright() {
        // A 2×1 JPEG would lose its pixels to compression; orientation is about the
        // frame, so a 16×8 image with EXIF orientation 6 (camera turned right) must come
        // out 8×16.
        let image = DynamicImage::ImageLuma8(GrayImage::from_pixel(16, 8, Luma([200])));
        let mut jpeg = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .expect("encode");
        let exif: &[u8] = &[
            b'E', b'x', b'i', b'f', 0, 0, // EXIF header
            b'M', b'M', 0, 42, 0, 0, 0, 8, // big-endian TIFF, first directory at 8
            0, 1, // one entry
            0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, // Orientation, SHORT, 1, value 6
            0, 0, 0, 0, // no next directory
        ];
        let mut segment = vec![0xFF, 0xE1];
        segment.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        segment.extend_from_slice(exif);
        jpeg.splice(2..2, segment);
        let upright = decode(&jpeg).expect("decodes");
        assert_eq!(upright.dimensions(), (8, 16));
    }

    #[test]
    fn damaged_and_oversized_images_are_refused() {
        assert_eq!(decode(b"not an image"), Err(OcrError::Unreadable));
        assert_eq!(decode(&[]), Err(OcrError::Unreadable));
        // A PNG claiming 20,000 × 20,000 pixels, with no image data at all.
        let mut header = 20_000u32.to_be_bytes().to_vec();
        header.extend_from_slice(&20_000u32.to_be_bytes());
        header.extend_from_slice(&[8, 0, 0, 0, 0]);
        let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [(b"IHDR", &header[..]), (b"IDAT", &[]), (b"IEND", &[])] {
            bomb.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = bomb.len();
            bomb.extend_from_slice(kind);
            bomb.extend_from_slice(data);
            let crc = crc32(&bomb[start..]);
            bomb.extend_from_slice(&crc.to_be_bytes());
        }
        assert_eq!(
            decode(&bomb),
            Err(OcrError::TooLarge {
                width: 20_000,
                height: 20_000
            })
        );
    }

    /// PNG's chunk checksum, so that the decoder gets as far as the size.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
