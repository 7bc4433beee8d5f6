//! A receipt image's fingerprint: 128 bits that stay nearly the same when the same paper
//! is photographed again, re-compressed, scaled or slightly cropped, and differ between
//! two receipts of the same shop. Duplicate detection compares them (issue 19).
//!
//! How: the ink is found against the paper around it (each pixel against the mean of its
//! neighbourhood, the paper against the brightest paper near it, so uneven light and
//! faded print do not matter; strokes with paper all around, so the table and the
//! paper's edge in a photo do not pass for print), the printed area is cut out (so
//! margins and crops of the frame do not matter), its ink density is sampled on a 32 × 64
//! grid (so size does not matter; each dot shared by its nearest cells, so a small shift
//! does not either), and the signs of the lowest 8 × 16 frequencies of its cosine
//! transform against their median are the bits: the layout of lines and words, not
//! their pixels.

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
/// A stroke of print is at most this fraction of the image's long side thick.
const STROKES_PER_SIDE: usize = 80;
/// Print has paper within this fraction of the image's long side on every side; the
/// paper's edge has the table, wider than that in a photo, on one.
const PAPER_WITHIN_PER_SIDE: usize = 20;
/// Paper is at least this bright against the brightest paper near it; a table is darker.
const PAPER: f32 = 0.72;

/// Bit 0 is the cosine transform's constant term, which the bits leave out: it tells the
/// method instead — 0 in prints of the first method (ink found against a global paper
/// level, so a photo's paper edge and uneven light could pass for print), 1 since.
const METHOD_2: u128 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub u128);

impl Fingerprint {
    pub fn distance(self, other: Fingerprint) -> u32 {
        (self.0 ^ other.0).count_ones()
    }

    /// Prints made by different methods are never taken for one receipt: their bits do
    /// not mean the same.
    pub fn same_receipt(self, other: Fingerprint) -> bool {
        (self.0 ^ other.0) & METHOD_2 == 0 && self.distance(other) <= SAME_RECEIPT_WITHIN
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

/// Ink: pixels clearly darker than the paper around them (each against the mean of its
/// neighbourhood), where most of the neighbourhood is paper, in strokes (a dark run across
/// or down no thicker than a bold letter's), with paper on every side within reach. The
/// table a photo shows the receipt on, and the shadow or fringe along the paper's edge,
/// fail the last: they have table on one side.
fn ink(pixels: &[f32], width: usize, height: usize) -> Vec<bool> {
    let long = width.max(height);
    let brightest = brightest_near(pixels, width, height);
    let paper: Vec<bool> = (0..width * height)
        .map(|i| pixels[i] > PAPER * brightest(i))
        .collect();
    let sums = Integral::of(width, height, |i| f64::from(pixels[i]));
    let papers = Integral::of(width, height, |i| f64::from(u8::from(paper[i])));
    let r = (long / 24).max(4);
    let mut dark = vec![false; width * height];
    for y in 0..height {
        for x in 0..width {
            let window = Window::around(x, y, r, width, height);
            let mean = (sums.sum(&window) / window.area()) as f32;
            let paper_share = papers.sum(&window) / window.area();
            let close = Window::around(x, y, 3, width, height);
            let beside = papers.sum(&close) / close.area();
            dark[y * width + x] =
                paper_share >= 0.6 && beside >= 0.3 && pixels[y * width + x] < 0.72 * mean;
        }
    }
    let stroke = (long / STROKES_PER_SIDE).max(3);
    let across = runs(&dark, width, height, 1, width);
    let down = runs(&dark, height, width, width, 1);
    let reach = long / PAPER_WITHIN_PER_SIDE;
    let sideways = within(&paper, reach, width, height, 1, width);
    let upways = within(&paper, reach, height, width, width, 1);
    (0..width * height)
        .map(|i| dark[i] && across[i].min(down[i]) <= stroke && sideways[i] && upways[i])
        .collect()
}

/// For each pixel, whether `bright` pixels lie within `reach` of it on both sides along
/// its line (lines as in [`runs`]): print has paper all around it, the paper's edge has
/// the table on one side.
fn within(
    bright: &[bool],
    reach: usize,
    len: usize,
    lines: usize,
    step: usize,
    stride: usize,
) -> Vec<bool> {
    let mut out = vec![false; bright.len()];
    for line in 0..lines {
        let at = |k: usize| line * stride + k * step;
        let mut last: Option<usize> = None;
        let mut before = vec![false; len];
        for (k, b) in before.iter_mut().enumerate() {
            if bright[at(k)] {
                last = Some(k);
            }
            *b = last.is_some_and(|l| k - l <= reach);
        }
        let mut next: Option<usize> = None;
        for k in (0..len).rev() {
            if bright[at(k)] {
                next = Some(k);
            }
            out[at(k)] = before[k] && next.is_some_and(|n| n - k <= reach);
        }
    }
    out
}

/// For each pixel, the brightness of the brightest paper near it: the maximum, within an
/// eighth of the image's long side, of the image averaged in small blocks (so that noise
/// does not count). Light falling across the page changes little over that distance; the
/// table beside the paper is far darker than the paper.
fn brightest_near(pixels: &[f32], width: usize, height: usize) -> impl Fn(usize) -> f32 {
    let block = (width.max(height) / 64).max(2);
    let (bw, bh) = (width.div_ceil(block), height.div_ceil(block));
    let mut means = vec![0f32; bw * bh];
    let mut counts = vec![0f32; bw * bh];
    for y in 0..height {
        for x in 0..width {
            let b = (y / block) * bw + x / block;
            means[b] += pixels[y * width + x];
            counts[b] += 1.0;
        }
    }
    for (m, c) in means.iter_mut().zip(&counts) {
        *m /= c.max(1.0);
    }
    let reach = 8;
    let across: Vec<f32> = (0..bw * bh)
        .map(|b| {
            let (bx, by) = (b % bw, b / bw);
            (bx.saturating_sub(reach)..(bx + reach + 1).min(bw))
                .map(|x| means[by * bw + x])
                .fold(0f32, f32::max)
        })
        .collect();
    let near: Vec<f32> = (0..bw * bh)
        .map(|b| {
            let (bx, by) = (b % bw, b / bw);
            (by.saturating_sub(reach)..(by + reach + 1).min(bh))
                .map(|y| across[y * bw + bx])
                .fold(0f32, f32::max)
        })
        .collect();
    move |i| near[(i / width / block) * bw + (i % width) / block]
}

/// For each pixel, the length of the run of dark pixels it is in, along lines of `len`
/// pixels `step` apart, `lines` of them starting `stride` apart.
fn runs(dark: &[bool], len: usize, lines: usize, step: usize, stride: usize) -> Vec<usize> {
    let mut out = vec![0usize; dark.len()];
    for line in 0..lines {
        let at = |k: usize| line * stride + k * step;
        let mut k = 0;
        while k < len {
            if !dark[at(k)] {
                k += 1;
                continue;
            }
            let start = k;
            while k < len && dark[at(k)] {
                k += 1;
            }
            for j in start..k {
                out[at(j)] = k - start;
            }
        }
    }
    out
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
        // Shared between the four nearest cells by closeness, so that a small shift
        // moves ink between cells gradually rather than all at once.
        let fx = ((x - left) / cell_w - 0.5).clamp(0.0, (GRID_W - 1) as f32);
        let fy = ((y - top) / cell_h - 0.5).clamp(0.0, (GRID_H - 1) as f32);
        let (gx, gy) = (fx as usize, fy as usize);
        let (ax, ay) = (fx - gx as f32, fy - gy as f32);
        let (gx1, gy1) = ((gx + 1).min(GRID_W - 1), (gy + 1).min(GRID_H - 1));
        grid[gy * GRID_W + gx] += (1.0 - ax) * (1.0 - ay);
        grid[gy * GRID_W + gx1] += ax * (1.0 - ay);
        grid[gy1 * GRID_W + gx] += (1.0 - ax) * ay;
        grid[gy1 * GRID_W + gx1] += ax * ay;
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
    let mut value = METHOD_2;
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

    #[test]
    fn prints_of_the_first_method_are_never_taken_for_prints_of_this_one() {
        let print = Fingerprint(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert!(print.same_receipt(print));
        let first_method = Fingerprint(print.0 & !METHOD_2);
        assert_eq!(print.distance(first_method), 1);
        assert!(!print.same_receipt(first_method));
    }

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
