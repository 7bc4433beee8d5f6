//! A receipt image's fingerprint: 128 bits that stay nearly the same when the same paper
//! is photographed again, re-compressed, scaled or slightly cropped, and differ between
//! two receipts of the same shop. Duplicate detection compares them (issue 19).
//!
//! How: the ink is found against the paper around it (each pixel against the mean of its
//! neighbourhood, so uneven light and faded print do not matter), the printed area is
//! cut out (so margins and crops of the frame do not matter), its ink density is sampled
//! on a 32 × 64 grid (so size does not matter), and the signs of the lowest 8 × 16
//! frequencies of its cosine transform against their median are the bits: the layout of
//! lines and words, not their pixels.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Two receipts whose fingerprints differ in at most this many of 128 bits are taken for
/// one: tuned on generated pairs of one seed range and measured on another
/// (docs/benchmarks.md, "Duplicate receipts").
pub const SAME_RECEIPT_WITHIN: u32 = 20;

const GRID_W: usize = 32;
const GRID_H: usize = 64;
const FREQ_W: usize = 8;
const FREQ_H: usize = 16;
/// Images are first brought down to this many pixels on their long side: enough for the
/// grid, and the cost stays bounded whatever the camera.
const WORKING_SIZE: usize = 800;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub u128);

impl Fingerprint {
    pub fn distance(self, other: Fingerprint) -> u32 {
        (self.0 ^ other.0).count_ones()
    }

    pub fn same_receipt(self, other: Fingerprint) -> bool {
        self.distance(other) <= SAME_RECEIPT_WITHIN
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl FromStr for Fingerprint {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u128::from_str_radix(s, 16).map(Fingerprint)
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() != 32 {
            return Err(serde::de::Error::custom("a fingerprint is 32 hex digits"));
        }
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A grey image, row by row, one byte per pixel.
pub struct Gray<'a> {
    pub pixels: &'a [u8],
    pub width: usize,
    pub height: usize,
}

/// The fingerprint of a receipt image; `None` when nothing printed is found on it.
pub fn fingerprint(image: &Gray<'_>) -> Option<Fingerprint> {
    if image.width < 8 || image.height < 8 || image.pixels.len() < image.width * image.height {
        return None;
    }
    let (pixels, width, height) = shrunk(image);
    let ink = ink(&pixels, width, height);
    let points: Vec<(f32, f32)> = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .filter(|(x, y)| ink[y * width + x])
        .map(|(x, y)| (x as f32, y as f32))
        .collect();
    if points.len() < 50 {
        return None;
    }
    let level = upright(&points, height);
    let grid = density(&level)?;
    Some(bits(&grid))
}

/// The ink turned so that its lines of print run level: of small turns, the one whose
/// rows of ink are sharpest (a photo is rarely taken square to the paper).
fn upright(points: &[(f32, f32)], height: usize) -> Vec<(f32, f32)> {
    let turned = |degrees: f32| {
        let (sin, cos) = degrees.to_radians().sin_cos();
        points
            .iter()
            .map(move |(x, y)| (x * cos + y * sin, y * cos - x * sin))
    };
    let sharpness = |degrees: f32| {
        let bins = height * 2 + 8;
        let mut rows = vec![0u32; bins];
        for (_, y) in turned(degrees) {
            let bin = (y + height as f32 / 2.0).clamp(0.0, (bins - 1) as f32) as usize;
            rows[bin] += 1;
        }
        rows.iter()
            .map(|c| f64::from(*c) * f64::from(*c))
            .sum::<f64>()
    };
    let best = (-16..=16)
        .map(|step| step as f32 * 0.25)
        .max_by(|a, b| sharpness(*a).total_cmp(&sharpness(*b)))
        .unwrap_or(0.0);
    turned(best).collect()
}

/// The image averaged down so that its long side is at most [`WORKING_SIZE`].
fn shrunk(image: &Gray<'_>) -> (Vec<f32>, usize, usize) {
    let long = image.width.max(image.height);
    let factor = long.div_ceil(WORKING_SIZE).max(1);
    let (w, h) = (image.width / factor, image.height / factor);
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut sum = 0u32;
            for dy in 0..factor {
                let row = (y * factor + dy) * image.width;
                for dx in 0..factor {
                    sum += u32::from(image.pixels[row + x * factor + dx]);
                }
            }
            out[y * w + x] = sum as f32 / (factor * factor) as f32;
        }
    }
    (out, w, h)
}

/// Ink: pixels clearly darker than the paper around them, where there is paper around
/// them — not the table a photo shows the receipt on, nor the edge between the two.
fn ink(pixels: &[f32], width: usize, height: usize) -> Vec<bool> {
    let threshold = otsu(pixels);
    let sums = Integral::of(width, height, |i| f64::from(pixels[i]));
    let paper = Integral::of(width, height, |i| {
        f64::from(u8::from(pixels[i] > threshold))
    });
    let r = (width.max(height) / 24).max(4);
    let mut ink = vec![false; width * height];
    for y in 0..height {
        for x in 0..width {
            let window = Window::around(x, y, r, width, height);
            let mean = (sums.sum(&window) / window.area()) as f32;
            let paper_share = paper.sum(&window) / window.area();
            // Print has paper right beside it; the table just past the paper's edge
            // has paper on one side only.
            let close = Window::around(x, y, 3, width, height);
            let beside = paper.sum(&close) / close.area();
            ink[y * width + x] =
                paper_share >= 0.6 && beside >= 0.3 && pixels[y * width + x] < 0.72 * mean;
        }
    }
    ink
}

/// The grey level that best splits the image in two (Otsu's method): paper above it,
/// ink and background below.
fn otsu(pixels: &[f32]) -> f32 {
    let mut histogram = [0u64; 256];
    for p in pixels {
        histogram[p.clamp(0.0, 255.0) as usize] += 1;
    }
    let total = pixels.len() as f64;
    let sum: f64 = histogram
        .iter()
        .enumerate()
        .map(|(v, n)| v as f64 * *n as f64)
        .sum();
    let (mut below, mut below_sum, mut best, mut best_level) = (0f64, 0f64, 0f64, 128usize);
    for (level, n) in histogram.iter().enumerate() {
        below += *n as f64;
        below_sum += level as f64 * *n as f64;
        let above = total - below;
        if below == 0.0 || above == 0.0 {
            continue;
        }
        let (m0, m1) = (below_sum / below, (sum - below_sum) / above);
        let between = below * above * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_level = level;
        }
    }
    best_level as f32
}

/// Sums over rectangles in constant time.
struct Integral {
    width: usize,
    table: Vec<f64>,
}

impl Integral {
    fn of(width: usize, height: usize, value: impl Fn(usize) -> f64) -> Self {
        let mut table = vec![0f64; (width + 1) * (height + 1)];
        for y in 0..height {
            let mut row = 0f64;
            for x in 0..width {
                row += value(y * width + x);
                table[(y + 1) * (width + 1) + x + 1] = table[y * (width + 1) + x + 1] + row;
            }
        }
        Self { width, table }
    }

    fn sum(&self, w: &Window) -> f64 {
        let stride = self.width + 1;
        self.table[w.y1 * stride + w.x1]
            - self.table[w.y0 * stride + w.x1]
            - self.table[w.y1 * stride + w.x0]
            + self.table[w.y0 * stride + w.x0]
    }
}

/// A square around a pixel, cut at the image's edges; exclusive ends.
struct Window {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
}

impl Window {
    fn around(x: usize, y: usize, r: usize, width: usize, height: usize) -> Self {
        Self {
            x0: x.saturating_sub(r),
            y0: y.saturating_sub(r),
            x1: (x + r + 1).min(width),
            y1: (y + r + 1).min(height),
        }
    }

    fn area(&self) -> f64 {
        ((self.x1 - self.x0) * (self.y1 - self.y0)) as f64
    }
}

/// The share of ink in each cell of a [`GRID_W`] × [`GRID_H`] grid over where the ink
/// is: from the first to the last hundredth of it across and down, so that a speck, a
/// thin rule fading at a smaller scale or a frame's edge does not move the grid.
fn density(points: &[(f32, f32)]) -> Option<Vec<f32>> {
    let bounds = |mut values: Vec<f32>| {
        values.sort_by(f32::total_cmp);
        let n = values.len();
        let (low, high) = (values[n / 100], values[n - 1 - n / 100]);
        (high - low > 4.0).then_some((low, high))
    };
    let (left, right) = bounds(points.iter().map(|p| p.0).collect())?;
    let (top, bottom) = bounds(points.iter().map(|p| p.1).collect())?;
    let (cell_w, cell_h) = (
        (right - left) / GRID_W as f32,
        (bottom - top) / GRID_H as f32,
    );
    let mut grid = vec![0f32; GRID_W * GRID_H];
    for (x, y) in points {
        if *x < left || *x > right || *y < top || *y > bottom {
            continue;
        }
        let gx = (((x - left) / cell_w) as usize).min(GRID_W - 1);
        let gy = (((y - top) / cell_h) as usize).min(GRID_H - 1);
        grid[gy * GRID_W + gx] += 1.0;
    }
    let area = (cell_w * cell_h).max(1.0);
    grid.iter_mut().for_each(|c| *c /= area);
    Some(grid)
}

/// The signs of the low frequencies of the grid's cosine transform against their median
/// (the constant term left out, its bit always 0).
fn bits(grid: &[f32]) -> Fingerprint {
    let cos = |n: usize, k: usize, size: usize| {
        (std::f32::consts::PI * (2 * n + 1) as f32 * k as f32 / (2 * size) as f32).cos()
    };
    let mut coefficients = Vec::with_capacity(FREQ_W * FREQ_H);
    for v in 0..FREQ_H {
        let column: Vec<f32> = (0..GRID_H).map(|y| cos(y, v, GRID_H)).collect();
        for u in 0..FREQ_W {
            if u == 0 && v == 0 {
                continue;
            }
            let row: Vec<f32> = (0..GRID_W).map(|x| cos(x, u, GRID_W)).collect();
            let mut sum = 0f32;
            for y in 0..GRID_H {
                for x in 0..GRID_W {
                    sum += grid[y * GRID_W + x] * row[x] * column[y];
                }
            }
            coefficients.push(sum);
        }
    }
    let mut sorted = coefficients.clone();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    let mut value = 0u128;
    for (i, c) in coefficients.iter().enumerate() {
        if *c > median {
            value |= 1 << (i + 1);
        }
    }
    Fingerprint(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A white page with dark "lines of text" of the given lengths (share of the width).
    fn page(width: usize, height: usize, lines: &[f32], shade: u8) -> Vec<u8> {
        let mut pixels = vec![shade; width * height];
        let line_height = height / (lines.len() * 2 + 2);
        for (n, length) in lines.iter().enumerate() {
            let y0 = line_height * (2 * n + 1);
            let x1 = width / 10 + (length * (width as f32 * 0.8)) as usize;
            for y in y0..y0 + line_height {
                for x in width / 10..x1 {
                    // Letters: ink with gaps.
                    if (x / 3) % 3 != 0 {
                        pixels[y * width + x] = 20;
                    }
                }
            }
        }
        pixels
    }

    fn of(pixels: &[u8], width: usize, height: usize) -> Fingerprint {
        fingerprint(&Gray {
            pixels,
            width,
            height,
        })
        .unwrap()
    }

    #[test]
    fn the_same_layout_at_another_size_and_light_matches_and_another_does_not() {
        let lines = [0.6, 0.9, 0.3, 0.8, 0.5, 0.7, 0.4, 0.95];
        let a = of(&page(300, 900, &lines, 250), 300, 900);
        let b = of(&page(600, 1800, &lines, 200), 600, 1800);
        assert!(a.same_receipt(b), "distance {}", a.distance(b));
        let other = [0.9, 0.2, 0.7, 0.3, 0.9, 0.2, 0.8, 0.1];
        let c = of(&page(300, 900, &other, 250), 300, 900);
        assert!(!a.same_receipt(c), "distance {}", a.distance(c));
        assert_eq!(a.to_string().parse::<Fingerprint>().unwrap(), a);
        assert!(fingerprint(&Gray {
            pixels: &vec![255; 100 * 100],
            width: 100,
            height: 100
        })
        .is_none());
    }
}
