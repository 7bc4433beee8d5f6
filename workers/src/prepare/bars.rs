//! Text printed white on black: tills print the total in a black bar, invoices head
//! their tables with one. Neither engine reads it there: the bar is one large blob of
//! ink, and its letters holes in it. Each bar is turned black on white where it stands.

use std::collections::HashMap;

use image::GrayImage;

use super::leaders::{components, letter_height, Blob};
use super::otsu_threshold;

/// A bar is at least this many letter heights wide: a logo or a filled box is not.
const MIN_WIDTH_IN_LETTERS: u32 = 6;
/// A bar holds a line or two of letters, at most double height, with a margin; a
/// photo's dark background or a shadow is taller.
const MAX_HEIGHT_IN_LETTERS: u32 = 5;

/// Turns every bar of ink that holds a line of white letters black on white.
pub fn invert_bars(image: &mut GrayImage) {
    let threshold = otsu_threshold(image);
    let (runs, component, blobs) = components(image, threshold);
    let letter = letter_height(image, blobs.iter().map(|(_, b)| b));
    if letter == 0 {
        return;
    }
    let candidates: Vec<usize> = blobs
        .iter()
        .filter(|(_, b)| {
            let (width, height) = (b.width(), b.height());
            width >= MIN_WIDTH_IN_LETTERS * letter
                && width < image.width()
                && 5 * height >= 6 * letter
                && height <= MAX_HEIGHT_IN_LETTERS * letter
                // Solid, with room for the letters cut out of it: a frame drawn as a
                // thin outline is mostly empty.
                && 2 * u64::from(b.pixels) >= u64::from(width) * u64::from(height)
        })
        .map(|(root, _)| *root)
        .collect();
    if candidates.is_empty() {
        return;
    }
    // Row by row, between the blob's own first and last ink, and how much of that is ink.
    // Indexed by blob and row: a tall bar has thousands of runs.
    let mut extent: Vec<(usize, u32, u32, u32, u32)> = Vec::new();
    let mut at: HashMap<(usize, u32), usize> = HashMap::new();
    for (run, root) in runs.iter().zip(&component) {
        if !candidates.contains(root) {
            continue;
        }
        match at.get(&(*root, run.y)) {
            Some(&i) => {
                let (_, _, start, end, ink) = &mut extent[i];
                *start = (*start).min(run.start);
                *end = (*end).max(run.end);
                *ink += run.end - run.start;
            }
            None => {
                at.insert((*root, run.y), extent.len());
                extent.push((*root, run.y, run.start, run.end, run.end - run.start));
            }
        }
    }
    // A bar has solid rows above and below its letters, where a line of text that blur
    // ran together with its underline into one blob has few; and letters cut out of it,
    // where a photo's dark margin (a wedge of table left by the turn) has specks.
    let bars: Vec<usize> = candidates
        .into_iter()
        .filter(|root| {
            let Some((_, b)) = blobs.iter().find(|(r, _)| r == root) else {
                return false;
            };
            let rows = || extent.iter().filter(|(r, ..)| r == root);
            let solid = rows().filter(|(.., ink)| 10 * ink >= 9 * b.width()).count() as u32;
            solid >= 2
                && 5 * solid >= b.height()
                && letters_within(image, b, threshold, letter) >= 3
        })
        .collect();
    // Its letters become ink and the bar paper, and the page beside it is left alone.
    for (root, y, start, end, _) in extent {
        if !bars.contains(&root) {
            continue;
        }
        for x in start..end {
            let pixel = image.get_pixel_mut(x, y);
            pixel.0[0] = 255 - pixel.0[0];
        }
    }
}

/// How many white blobs of a letter's size the bar holds, clear of its box's edges.
fn letters_within(image: &GrayImage, bar: &Blob, threshold: u8, letter: u32) -> usize {
    let mut inside =
        image::imageops::crop_imm(image, bar.left, bar.top, bar.width(), bar.height()).to_image();
    image::imageops::invert(&mut inside);
    let (_, _, holes) = components(&inside, 255 - threshold + 1);
    holes
        .iter()
        .filter(|(_, h)| {
            h.left > 0
                && h.top > 0
                && h.right + 1 < bar.width()
                && h.bottom + 1 < bar.height()
                && 2 * h.height() >= letter
                && h.height() <= 4 * letter
                && h.width() <= 3 * h.height()
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    /// A white page with four lines of black letters (blocks 20 px high) at `rows`.
    fn page_with_lines(rows: [u32; 4]) -> GrayImage {
        let mut page = GrayImage::from_pixel(600, 400, Luma([255]));
        for row in rows {
            for letter in 0..12 {
                for y in row..row + 20 {
                    for x in 30 + letter * 16..40 + letter * 16 {
                        page.put_pixel(x, y, Luma([0]));
                    }
                }
            }
        }
        page
    }

    /// [`page_with_lines`] and, between its lines, a black bar with white letters cut
    /// out of it.
    fn page_with_bar() -> GrayImage {
        let mut page = page_with_lines([40, 80, 300, 340]);
        for y in 150..210 {
            for x in 20..580 {
                let letter =
                    (170..190).contains(&y) && (40..232).contains(&x) && (x - 40) % 16 < 10;
                page.put_pixel(x, y, Luma([if letter { 255 } else { 0 }]));
            }
        }
        page
    }

    #[test]
    fn a_bar_with_white_letters_turns_black_on_white() {
        let mut page = page_with_bar();
        invert_bars(&mut page);
        // The bar is paper, its letters ink; the lines above and below are as they were.
        assert_eq!(page.get_pixel(25, 155).0[0], 255);
        assert_eq!(page.get_pixel(570, 205).0[0], 255);
        assert_eq!(page.get_pixel(45, 180).0[0], 0);
        assert_eq!(page.get_pixel(35, 50).0[0], 0);
        assert_eq!(page.get_pixel(35, 310).0[0], 0);
        assert_eq!(page.get_pixel(300, 50).0[0], 255);
    }

    #[test]
    fn black_on_white_text_a_thin_rule_and_an_outlined_box_are_left_alone() {
        let mut page = page_with_lines([40, 80, 300, 340]);
        for x in 20..580 {
            page.put_pixel(x, 120, Luma([0]));
            page.put_pixel(x, 121, Luma([0]));
            page.put_pixel(x, 150, Luma([0]));
            page.put_pixel(x, 210, Luma([0]));
        }
        for y in 150..=210 {
            page.put_pixel(20, y, Luma([0]));
            page.put_pixel(579, y, Luma([0]));
        }
        let before = page.clone();
        invert_bars(&mut page);
        assert_eq!(page, before);
    }

    #[test]
    fn a_dark_wedge_of_table_is_no_bar() {
        let mut page = page_with_lines([120, 160, 300, 340]);
        // Above the paper's turned edge, the table: dark, solid, narrowing to one side.
        for y in 0..50u32 {
            for x in 0..580 - 10 * y.saturating_sub(16) {
                page.put_pixel(x, y, Luma([30]));
            }
        }
        let before = page.clone();
        invert_bars(&mut page);
        assert_eq!(page, before);
    }

    #[test]
    fn a_line_of_letters_run_together_with_its_underline_is_no_bar() {
        let mut page = page_with_lines([40, 80, 300, 340]);
        // Bold letters two pixels apart on a three-pixel underline: one solid blob.
        for y in 150..174 {
            for x in 20..580 {
                if y >= 171 || (x - 20) % 14 < 12 {
                    page.put_pixel(x, y, Luma([0]));
                }
            }
        }
        let before = page.clone();
        invert_bars(&mut page);
        assert_eq!(page, before);
    }
}
