//! A receipt photographed on a table: often more table than paper. Read whole, the
//! table's grain comes out of [`super::flatten`] as specks that Tesseract tries to read
//! as words, slowly (a 10-megapixel photo with two thirds of wood took 30 s), and the
//! words it makes of them are noise. The picture is cut down to the paper.

use image::imageops::FilterType;
use image::GrayImage;

use super::otsu_threshold;

/// The paper is looked for on a copy this many times smaller each way.
const SHRINK: u32 = 8;
/// Bright regions this much smaller than the largest are the table's, not the paper's
/// (a shadow across the paper splits it into parts of similar size).
const PART_OF_LARGEST: usize = 20;
/// A picture whose brightest region is smaller than this share of it is not cut: no
/// paper was found.
const MIN_PAPER_SHARE: f64 = 0.1;
/// Cut only where it saves this share of a side or more.
const MIN_SAVING: f64 = 0.1;

/// Smaller pictures are read whole: the time a table costs is in the large ones, and a
/// shadow across the paper can leave part of it darker than the table, which a cut
/// would lose (as it did on one small photo in twelve of the first corpus's dev part).
const MIN_PIXELS: u64 = 4_000_000;

/// The image cut to the paper's box, with a margin, where a table surrounds the paper.
pub fn crop_to_paper(image: GrayImage) -> GrayImage {
    let (width, height) = image.dimensions();
    if u64::from(width) * u64::from(height) < MIN_PIXELS {
        return image;
    }
    let (small_width, small_height) = ((width / SHRINK).max(1), (height / SHRINK).max(1));
    if small_width < 8 || small_height < 8 {
        return image;
    }
    let small = image::imageops::resize(&image, small_width, small_height, FilterType::Triangle);
    let threshold = otsu_threshold(&small);
    let regions = bright_regions(&small, threshold);
    let Some(largest) = regions.iter().map(|r| r.area).max() else {
        return image;
    };
    if (largest as f64) < MIN_PAPER_SHARE * f64::from(small_width) * f64::from(small_height) {
        return image;
    }
    let parts = regions
        .iter()
        .filter(|r| r.area * PART_OF_LARGEST >= largest);
    let (mut left, mut top, mut right, mut bottom) = (u32::MAX, u32::MAX, 0, 0);
    for part in parts {
        left = left.min(part.left);
        top = top.min(part.top);
        right = right.max(part.right);
        bottom = bottom.max(part.bottom);
    }
    let margin = (small_width.max(small_height) / 50).max(2);
    let left = left.saturating_sub(margin);
    let top = top.saturating_sub(margin);
    let right = (right + margin + 1).min(small_width);
    let bottom = (bottom + margin + 1).min(small_height);
    let saves = |kept: u32, all: u32| f64::from(all - kept) >= MIN_SAVING * f64::from(all);
    if !saves(right - left, small_width) && !saves(bottom - top, small_height) {
        return image;
    }
    let (x, y) = (left * SHRINK, top * SHRINK);
    let crop_width = (right * SHRINK).min(width) - x;
    let crop_height = (bottom * SHRINK).min(height) - y;
    image::imageops::crop_imm(&image, x, y, crop_width, crop_height).to_image()
}

/// A connected region of pixels at or above the threshold: its size and box.
struct Region {
    area: usize,
    left: u32,
    top: u32,
    right: u32,
    bottom: u32,
}

/// The regions of pixels at least `threshold` bright, neighbours across and down joined.
fn bright_regions(image: &GrayImage, threshold: u8) -> Vec<Region> {
    let (width, height) = image.dimensions();
    let mut seen = vec![false; (width * height) as usize];
    let mut regions = Vec::new();
    let mut stack = Vec::new();
    for start in 0..width * height {
        let bright = |i: u32| image.as_raw()[i as usize] >= threshold;
        if seen[start as usize] || !bright(start) {
            continue;
        }
        let mut region = Region {
            area: 0,
            left: u32::MAX,
            top: u32::MAX,
            right: 0,
            bottom: 0,
        };
        seen[start as usize] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            region.area += 1;
            region.left = region.left.min(x);
            region.right = region.right.max(x);
            region.top = region.top.min(y);
            region.bottom = region.bottom.max(y);
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < width).then(|| i + 1),
                (y > 0).then(|| i - width),
                (y + 1 < height).then(|| i + width),
            ];
            for n in neighbours.into_iter().flatten() {
                if !seen[n as usize] && bright(n) {
                    seen[n as usize] = true;
                    stack.push(n);
                }
            }
        }
        regions.push(region);
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    /// A white page with lines of black letters at `page` (left, top, width, height) on
    /// a grey table of `size`.
    fn photo(size: (u32, u32), page: (u32, u32, u32, u32)) -> GrayImage {
        let (left, top, width, height) = page;
        GrayImage::from_fn(size.0, size.1, |x, y| {
            let on_page = (left..left + width).contains(&x) && (top..top + height).contains(&y);
            let letter = (y - top.min(y)) % 40 < 16 && (x - left.min(x)) % 14 < 8 && x > left + 20;
            match (
                on_page,
                letter && x + 20 < left + width && y + 20 < top + height,
            ) {
                (true, true) => Luma([20]),
                (true, false) => Luma([235]),
                (false, _) => Luma([if (x / 3 + y / 5) % 2 == 0 { 90 } else { 120 }]),
            }
        })
    }

    #[test]
    fn a_page_on_a_table_is_cut_to_the_page_with_a_margin() {
        let image = photo((2400, 1800), (750, 300, 750, 1200));
        let cropped = crop_to_paper(image);
        // The page (750 x 1200) and a margin of a few dozen pixels a side.
        assert!(
            (750..=880).contains(&cropped.width()),
            "{}",
            cropped.width()
        );
        assert!(
            (1200..=1330).contains(&cropped.height()),
            "{}",
            cropped.height()
        );
    }

    #[test]
    fn a_small_picture_or_a_page_that_fills_it_is_left_whole() {
        let image = photo((1600, 1200), (500, 200, 500, 800));
        assert_eq!(
            crop_to_paper(image.clone()).dimensions(),
            image.dimensions()
        );
        let image = photo((1800, 2700), (10, 10, 1780, 2680));
        assert_eq!(
            crop_to_paper(image.clone()).dimensions(),
            image.dimensions()
        );
    }

    #[test]
    fn a_shadow_across_the_page_keeps_both_of_its_parts() {
        let mut image = photo((2400, 1800), (750, 300, 750, 1200));
        // A dark band across the middle of the page splits its bright part in two.
        for y in 860..960 {
            for x in 0..2400 {
                image.put_pixel(x, y, Luma([60]));
            }
        }
        let cropped = crop_to_paper(image);
        assert!(cropped.height() >= 1200, "{}", cropped.height());
    }
}
