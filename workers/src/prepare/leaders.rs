//! Rows of marks that hold no text. Tesseract reads each as words of garbage, and a
//! word costs it about as much as a real one:
//! - Dot leaders (`Tortilla ......... 4,50`): small, evenly spaced dots between a label
//!   and its amount. A scanned invoice with leaders on every item line was a quarter of
//!   the PDFs' slowest twentieth on the corpus's development part. Erased, the label and
//!   its amount remain, far apart on one row, which is how the extraction reads an
//!   amount column anyway.
//! - Dashed rules (`-----`, `=====`) across the receipt between its parts: a fifth of
//!   Tesseract's time on the development part's scanned PDFs went on them. (A solid
//!   rule Tesseract finds and drops itself.)

use image::GrayImage;

use super::otsu_threshold;

/// Fewer dots than this in a row may be an ellipsis, a masked card number or two dots of
/// an umlaut: left alone.
const MIN_DOTS: usize = 6;
/// Dots further apart than this many of their own widths are not one leader.
const MAX_SPACING: f32 = 6.0;
/// How much the spacing of a leader's dots may vary (printed leaders are regular; a
/// photo's perspective changes it slowly along the row).
const SPACING_TOLERANCE: f32 = 0.35;

/// Fewer dashes than this in a row may be a minus sign, a date's or a phone number's
/// separators: left alone.
const MIN_DASHES: usize = 6;

/// A run of ink in one row of pixels, `[start, end)`, and the component it belongs to.
pub(super) struct Run {
    pub(super) y: u32,
    pub(super) start: u32,
    pub(super) end: u32,
}

/// A connected blob of ink: its box and how many pixels it has.
#[derive(Clone, Copy)]
pub(super) struct Blob {
    pub(super) left: u32,
    pub(super) right: u32,
    pub(super) top: u32,
    pub(super) bottom: u32,
    pub(super) pixels: u32,
}

impl Blob {
    pub(super) fn width(&self) -> u32 {
        self.right - self.left + 1
    }
    pub(super) fn height(&self) -> u32 {
        self.bottom - self.top + 1
    }
    fn centre(&self) -> (f32, f32) {
        (
            (self.left + self.right) as f32 / 2.0,
            (self.top + self.bottom) as f32 / 2.0,
        )
    }
    /// Small, round or square, and solid: what a printed full stop looks like.
    fn is_dot(&self, letter_height: u32) -> bool {
        let (width, height) = (self.width(), self.height());
        width >= 2
            && height >= 2
            && 2 * height <= letter_height
            && 2 * width <= letter_height
            && width <= 2 * height
            && height <= 2 * width
            && 2 * self.pixels >= width * height
    }
    /// Flat and thin: a dash, or one bar of an equals sign. (A dash of a blurred photo's
    /// rule may have run into its neighbours: no length is too long.)
    fn is_dash(&self, letter_height: u32) -> bool {
        self.width() >= 2 * self.height() && 3 * self.height() <= letter_height
    }
}

/// Paints the dots of every leader, and the dashes of every dashed rule, white.
pub fn erase_leaders_and_rules(image: &mut GrayImage) {
    let threshold = otsu_threshold(image);
    let (runs, component, blobs) = components(image, threshold);
    let letter_height = letter_height(image, blobs.iter().map(|(_, b)| b));
    let mut dots: Vec<(usize, Blob)> = blobs
        .iter()
        .filter(|(_, b)| b.is_dot(letter_height))
        .copied()
        .collect();
    dots.sort_by(|a, b| a.1.centre().0.total_cmp(&b.1.centre().0));
    let mut dashes: Vec<(usize, Blob)> = blobs
        .iter()
        .filter(|(_, b)| b.is_dash(letter_height))
        .copied()
        .collect();
    dashes.sort_by_key(|(_, b)| b.left);
    let mut erased = vec![false; runs.len()];
    for root in leader_dots(&dots, &blobs).into_iter().chain(rule_dashes(
        &dashes,
        image,
        threshold,
        letter_height,
    )) {
        erased[root] = true;
    }
    for (run, &root) in runs.iter().zip(&component) {
        if erased[root] {
            for x in run.start..run.end {
                image.put_pixel(x, run.y, image::Luma([255]));
            }
        }
    }
}

/// The runs of ink darker than `threshold`, the component of each (its first run's
/// index), and each component's blob, by that index.
pub(super) fn components(
    image: &GrayImage,
    threshold: u8,
) -> (Vec<Run>, Vec<usize>, Vec<(usize, Blob)>) {
    let (runs, component) = ink_runs(image, threshold);
    let mut blobs: Vec<Option<Blob>> = vec![None; runs.len()];
    for (run, &root) in runs.iter().zip(&component) {
        let blob = blobs[root].get_or_insert(Blob {
            left: run.start,
            right: run.end - 1,
            top: run.y,
            bottom: run.y,
            pixels: 0,
        });
        blob.left = blob.left.min(run.start);
        blob.right = blob.right.max(run.end - 1);
        blob.top = blob.top.min(run.y);
        blob.bottom = blob.bottom.max(run.y);
        blob.pixels += run.end - run.start;
    }
    let blobs = blobs
        .into_iter()
        .enumerate()
        .filter_map(|(root, blob)| blob.map(|b| (root, b)))
        .collect();
    (runs, component, blobs)
}

/// The height of the page's letters: the median height of its blobs, each counted by
/// the area of its box, so that hundreds of small dots do not outweigh the text. Blobs
/// too large to be a letter (a photo's background, a frame, a shadow) and rules (long
/// and thin) are not counted.
pub(super) fn letter_height<'a>(image: &GrayImage, blobs: impl Iterator<Item = &'a Blob>) -> u32 {
    let mut heights: Vec<(u32, u64)> = blobs
        .filter(|b| {
            b.height() <= image.height() / 12
                && b.width() <= image.width() / 3
                && b.width() <= 8 * b.height()
        })
        .map(|b| (b.height(), u64::from(b.width()) * u64::from(b.height())))
        .collect();
    heights.sort_unstable();
    let half = heights.iter().map(|(_, area)| area).sum::<u64>() / 2;
    let mut seen = 0;
    heights
        .iter()
        .find(|(_, area)| {
            seen += area;
            seen > half
        })
        .map_or(0, |(height, _)| *height)
}

/// Whether a row of dots stands beside text: a leader runs from a label to an amount,
/// and at least one of them is on its row, taller than the dots by far, within a few
/// dots' spacing of its end. (Without this, the cores of a faint photo's letters, cut
/// out by a dark threshold, could pass for dots.)
fn beside_text(chain: &[Blob], spacing: f32, blobs: &[(usize, Blob)]) -> bool {
    let (Some(first), Some(last)) = (chain.first(), chain.last()) else {
        return false;
    };
    let mut heights: Vec<u32> = chain.iter().map(Blob::height).collect();
    heights.sort_unstable();
    let dot_height = heights[heights.len() / 2];
    let reach = (4.0 * spacing) as u32;
    blobs.iter().any(|(_, b)| {
        let on_row =
            |dot: &Blob| b.top <= dot.centre().1 as u32 && dot.centre().1 as u32 <= b.bottom;
        let tall = b.height() >= 2 * dot_height;
        let before = b.right < first.left && first.left - b.right <= reach && on_row(first);
        let after = b.left > last.right && b.left - last.right <= reach && on_row(last);
        tall && (before || after)
    })
}

/// Chains of marks along a line, left to right, among `count` marks sorted by position.
/// From each mark not yet in a kept chain, `next` gives the mark after the chain's last
/// (it may keep state for the chain, such as its spacing) until it gives none; a chain
/// `keep` accepts is taken whole. Returns the indices of the marks of every kept chain.
fn kept_chains<S: Default>(
    count: usize,
    mut next: impl FnMut(&mut S, usize, &[bool]) -> Option<usize>,
    keep: impl Fn(&S, &[usize]) -> bool,
) -> Vec<usize> {
    let mut taken = vec![false; count];
    let mut kept = Vec::new();
    for start in 0..count {
        if taken[start] {
            continue;
        }
        let mut state = S::default();
        let mut chain = vec![start];
        let mut last = start;
        while let Some(index) = next(&mut state, last, &taken) {
            chain.push(index);
            last = index;
        }
        if keep(&state, &chain) {
            for &i in &chain {
                taken[i] = true;
            }
            kept.extend(chain);
        }
    }
    kept
}

/// The components (roots) of the dots that form leaders beside text (`blobs`: every
/// blob of the page). `dots` is sorted left to right.
/// From each dot not yet in a leader, the nearest dot to its right on the same line is
/// followed while the spacing stays what it was at the start.
fn leader_dots(dots: &[(usize, Blob)], blobs: &[(usize, Blob)]) -> Vec<usize> {
    let next = |spacing: &mut Option<f32>, last: usize, taken: &[bool]| {
        let here = &dots[last].1;
        let (x, y) = here.centre();
        let reach = MAX_SPACING * here.width() as f32;
        let (index, (_, blob)) = dots
            .iter()
            .enumerate()
            .skip(last + 1)
            .take_while(|(_, (_, b))| b.centre().0 <= x + reach)
            .find(|(i, (_, b))| {
                let (bx, by) = b.centre();
                !taken[*i]
                    && bx > x
                    && (by - y).abs() <= 1.0 + here.height() as f32 / 2.0
                    && b.width() <= 2 * here.width()
                    && here.width() <= 2 * b.width()
            })?;
        let gap = blob.centre().0 - x;
        match *spacing {
            Some(s) if (gap - s).abs() > SPACING_TOLERANCE * s => return None,
            // The spacing follows the row slowly (a photo's perspective).
            Some(s) => *spacing = Some(0.8 * s + 0.2 * gap),
            None => *spacing = Some(gap),
        }
        Some(index)
    };
    let keep = |spacing: &Option<f32>, chain: &[usize]| {
        let members: Vec<Blob> = chain.iter().map(|&i| dots[i].1).collect();
        chain.len() >= MIN_DOTS && beside_text(&members, spacing.unwrap_or(0.0), blobs)
    };
    kept_chains(dots.len(), next, keep)
        .into_iter()
        .map(|i| dots[i].0)
        .collect()
}

/// The components (roots) of the dashes that form rules. `dashes` is sorted by their
/// left edges. From each dash not yet in a rule, the nearest dash starting to its right
/// on the same line is followed while the gap is shorter than a letter and holds no ink
/// on the dash's line: hyphens between letters or digits (`12-34-56`) never chain.
fn rule_dashes(
    dashes: &[(usize, Blob)],
    image: &GrayImage,
    threshold: u8,
    letter_height: u32,
) -> Vec<usize> {
    let next = |_: &mut (), last: usize, taken: &[bool]| {
        let here = &dashes[last].1;
        let middle = here.centre().1;
        let (index, (_, dash)) = dashes
            .iter()
            .enumerate()
            .skip(last + 1)
            .take_while(|(_, (_, b))| b.left <= here.right + 1 + letter_height)
            .find(|(i, (_, b))| {
                !taken[*i]
                    && b.left > here.right
                    && (b.centre().1 - middle).abs()
                        <= 1.0 + here.height().max(b.height()) as f32 / 2.0
                    && b.height() <= 2 * here.height() + 1
                    && here.height() <= 2 * b.height() + 1
            })?;
        (!ink_between(image, threshold, here, dash)).then_some(index)
    };
    kept_chains(dashes.len(), next, |_, chain| chain.len() >= MIN_DASHES)
        .into_iter()
        .map(|i| dashes[i].0)
        .collect()
}

/// Whether any pixel between two dashes, on their line, is ink.
fn ink_between(image: &GrayImage, threshold: u8, left: &Blob, right: &Blob) -> bool {
    let top = left.top.min(right.top);
    let bottom = left.bottom.max(right.bottom);
    (top..=bottom)
        .any(|y| (left.right + 1..right.left).any(|x| image.get_pixel(x, y).0[0] < threshold))
}

/// Every run of ink (pixels darker than `threshold`), row by row, and the component each
/// belongs to (the index of its component's first run), with diagonal neighbours
/// connected.
fn ink_runs(image: &GrayImage, threshold: u8) -> (Vec<Run>, Vec<usize>) {
    let width = image.width().max(1);
    let mut runs: Vec<Run> = Vec::new();
    let mut parent: Vec<usize> = Vec::new();
    let mut previous_row = 0..0;
    for (y, row) in image.as_raw().chunks_exact(width as usize).enumerate() {
        let row_start = runs.len();
        let mut x = 0;
        while x < row.len() {
            if row[x] >= threshold {
                x += 1;
                continue;
            }
            let start = x;
            while x < row.len() && row[x] < threshold {
                x += 1;
            }
            let index = runs.len();
            let (start, end) = (start as u32, x as u32);
            runs.push(Run {
                y: y as u32,
                start,
                end,
            });
            parent.push(index);
            // Runs of the row above that touch this one, diagonally included.
            for above in previous_row.clone() {
                let other: &Run = &runs[above];
                if other.start <= end && start <= other.end {
                    union(&mut parent, above, index);
                }
            }
        }
        previous_row = row_start..runs.len();
    }
    let roots = (0..runs.len()).map(|i| find(&mut parent, i)).collect();
    (runs, roots)
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (a, b) = (find(parent, a), find(parent, b));
    if a != b {
        parent[a.max(b)] = a.min(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    /// A page with a "label", a leader of `dots` dots and an "amount" with a decimal
    /// point, all drawn as blocks: letters 20 px high, dots 4 px. The page is as tall as
    /// a short receipt: on a page hardly taller than a line, its letters would be taken
    /// for something too large to be text.
    fn line_with_leader(dots: u32) -> GrayImage {
        let mut page = GrayImage::from_pixel(900, 400, Luma([250]));
        let mut fill = |x0: u32, y0: u32, w: u32, h: u32| {
            for x in x0..x0 + w {
                for y in y0..y0 + h {
                    page.put_pixel(x, y, Luma([10]));
                }
            }
        };
        for letter in 0..6 {
            fill(20 + letter * 16, 40, 12, 20);
        }
        for dot in 0..dots {
            fill(140 + dot * 12, 56, 4, 4);
        }
        // "12.50": two digits, a point on the baseline, two digits.
        fill(780, 40, 12, 20);
        fill(796, 40, 12, 20);
        fill(812, 56, 4, 4);
        fill(820, 40, 12, 20);
        fill(836, 40, 12, 20);
        page
    }

    fn ink(page: &GrayImage, x0: u32, x1: u32) -> usize {
        (x0..x1)
            .flat_map(|x| (0..page.height()).map(move |y| (x, y)))
            .filter(|&(x, y)| page.get_pixel(x, y).0[0] < 128)
            .count()
    }

    #[test]
    fn a_leader_is_erased_and_the_label_and_amount_stay() {
        let mut page = line_with_leader(40);
        let (label, amount) = (ink(&page, 0, 130), ink(&page, 770, 900));
        erase_leaders_and_rules(&mut page);
        assert_eq!(ink(&page, 130, 770), 0, "the leader's dots are gone");
        assert_eq!(ink(&page, 0, 130), label);
        assert_eq!(ink(&page, 770, 900), amount, "the decimal point stays");
    }

    #[test]
    fn a_few_dots_in_a_row_are_not_a_leader() {
        let mut page = line_with_leader(4);
        let before = page.clone();
        erase_leaders_and_rules(&mut page);
        assert_eq!(page, before);
    }

    /// A page of three text rows (blocks 20 px high) with a row of `dashes` dashes
    /// (12 × 3 px, 4 px apart) under the first; as equals signs, a second bar 4 px below
    /// each.
    fn rows_with_rule(dashes: u32, equals: bool) -> GrayImage {
        let mut page = GrayImage::from_pixel(900, 400, Luma([250]));
        let mut fill = |x0: u32, y0: u32, w: u32, h: u32| {
            for x in x0..x0 + w {
                for y in y0..y0 + h {
                    page.put_pixel(x, y, Luma([10]));
                }
            }
        };
        for row in [40, 120, 160] {
            for letter in 0..8 {
                fill(20 + letter * 16, row, 12, 20);
            }
            fill(780, row, 12, 20);
        }
        for dash in 0..dashes {
            fill(20 + dash * 16, 88, 12, 3);
            if equals {
                fill(20 + dash * 16, 95, 12, 3);
            }
        }
        page
    }

    #[test]
    fn a_dashed_rule_is_erased_and_the_text_stays() {
        let text = ink(&rows_with_rule(0, false), 0, 900);
        for equals in [false, true] {
            let mut page = rows_with_rule(50, equals);
            assert!(ink(&page, 0, 900) > text);
            erase_leaders_and_rules(&mut page);
            assert_eq!(
                ink(&page, 0, 900),
                text,
                "every dash is gone, no letter is (equals: {equals})"
            );
        }
    }

    #[test]
    fn a_few_dashes_or_hyphens_between_digits_are_no_rule() {
        let mut page = rows_with_rule(5, false);
        let before = page.clone();
        erase_leaders_and_rules(&mut page);
        assert_eq!(page, before, "five dashes");

        // 12-34-56-78-90-12-34-56: hyphens between pairs of digits, on one row.
        let mut page = GrayImage::from_pixel(900, 200, Luma([250]));
        for pair in 0..8u32 {
            let x0 = 20 + pair * 60;
            for x in x0..x0 + 40 {
                for y in 40..60 {
                    page.put_pixel(x, y, Luma([10]));
                }
            }
            for x in x0 + 44..x0 + 56 {
                for y in 49..52 {
                    page.put_pixel(x, y, Luma([10]));
                }
            }
        }
        let before = page.clone();
        erase_leaders_and_rules(&mut page);
        assert_eq!(page, before, "hyphens between digits");
    }
}
