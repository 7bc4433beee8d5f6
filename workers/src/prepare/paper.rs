//! A receipt photographed on a table: often more table than paper. Read whole, the
//! table's grain comes out of [`super::flatten`] as specks that Tesseract tries to read
//! as words, slowly (a 10-megapixel photo with two thirds of wood took 30 s), and the
//! words it makes of them are noise. The picture is cut down to the paper: a large one
//! before anything else, every one again once flattened (and drawn upright where it was
//! photographed at a slant).

use image::imageops::FilterType;
use image::{GrayImage, Luma};

use super::{brightest_around, estimate_skew, otsu_threshold, sample, Flattened};

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

/// Smaller pictures are not cut here, before flattening: a shadow across the paper can
/// leave part of it darker than the table, which a cut by brightness would lose (as it
/// did on one small photo in twelve of the first corpus's dev part). They are cleared
/// around the paper after flattening ([`clear_around_paper`]), where the shadow is gone.
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

/// Divided by the brightest light, the paper is looked for where it is at least this
/// bright (the small copy's grey; such paper is 230 and more, even under a shadow).
const FLAT_PAPER: u8 = 200;
/// Bright regions inside the ring this much smaller than the largest are still the
/// paper's: a shadow's hard edge across the paper cuts off a strip (where a total is
/// printed at the right). Taking a bright patch of the table for paper only keeps more
/// of the table.
const FLAT_PART_OF_LARGEST: usize = 100;
/// The paper kept around the outline of its bright part, in pixels: the small copy's
/// pixels at the paper's edge are half table, and not bright.
const FLAT_PAPER_MARGIN: u32 = 6;

/// The flattened photo with the table around the paper cleared to white, and cut to the
/// paper. Flattening lifts the table's grain to the paper's white, and a dark ring
/// remains by the paper. Tesseract reads the grain as words, a shadow's edge beside the
/// print as the print's end, and the ring pulls its global threshold down until grey
/// print turns white (a blurred photo read as a few words of its heading); cleared, it
/// reads the paper alone, and sooner. The paper is found where the table was divided by
/// the brightest light around it, the paper's: there the ring is wide and dark, and the
/// paper is the largest bright region inside it, clear of the picture's edges, with its
/// smaller parts; cleared is what lies outside their hull. A page that runs off the
/// picture (a scan, a close-up) or no region large enough leaves the picture as it is.
/// Paper photographed at a slant is drawn upright from its corners instead, where its
/// lines then run straight (`keystoned_corners`, `straight_across`).
pub fn clear_around_paper(flattened: Flattened) -> GrayImage {
    let Flattened {
        image: flat,
        by_brightest,
    } = flattened;
    let (width, height) = flat.dimensions();
    let (small_width, small_height) = ((width / SHRINK).max(1), (height / SHRINK).max(1));
    if small_width < 8 || small_height < 8 {
        return flat;
    }
    let small = image::imageops::resize(
        &by_brightest,
        small_width,
        small_height,
        FilterType::Triangle,
    );
    // A crease or a dense line of print across the paper shrinks to a thin grey line
    // that would split it; the table's dark ring is wider than the one pixel bridged.
    let (regions, labels) = labelled_regions(&brightest_around(&small, 1), FLAT_PAPER);
    let inside = |r: &Region| {
        r.left > 0 && r.top > 0 && r.right + 1 < small_width && r.bottom + 1 < small_height
    };
    let largest = regions
        .iter()
        .filter(|r| inside(r))
        .map(|r| r.area)
        .max()
        .unwrap_or(0);
    if (largest as f64) < MIN_PAPER_SHARE * f64::from(small_width) * f64::from(small_height) {
        return flat;
    }
    let paper: Vec<bool> = regions
        .iter()
        .map(|r| inside(r) && r.area * FLAT_PART_OF_LARGEST >= largest)
        .collect();
    // The paper's outline: the hull of its bright pixels (a line of print that runs to
    // the paper's edge is not bright, but the paper above and below it is).
    let points: Vec<Point> = labels
        .iter()
        .zip(small.as_raw())
        .enumerate()
        .filter(|(_, (label, v))| label.is_some_and(|l| paper[l]) && **v >= FLAT_PAPER)
        .map(|(i, _)| {
            let (x, y) = (i as u32 % small_width, i as u32 / small_width);
            (
                (x as f32 + 0.5) * SHRINK as f32,
                (y as f32 + 0.5) * SHRINK as f32,
            )
        })
        .collect();
    let hull = convex_hull(points);
    if let Some(corners) = keystoned_corners(&hull) {
        let upright = straighten(&flat, corners, FLAT_PAPER_MARGIN as f32);
        if straight_across(&upright) {
            return upright;
        }
    }
    let spans = row_spans(&hull, (width, height), FLAT_PAPER_MARGIN as f32);
    let Some(top) = spans.iter().position(Option::is_some) else {
        return flat;
    };
    let bottom = spans.iter().rposition(Option::is_some).unwrap_or(top);
    let left = spans.iter().flatten().map(|s| s.0).min().unwrap_or(0);
    let right = spans.iter().flatten().map(|s| s.1).max().unwrap_or(width);
    let mut cut = image::imageops::crop_imm(
        &flat,
        left,
        top as u32,
        right - left,
        (bottom - top + 1) as u32,
    )
    .to_image();
    let cut_width = (right - left) as usize;
    for (row, span) in cut.chunks_exact_mut(cut_width).zip(&spans[top..=bottom]) {
        let (from, to) = span.map_or((0, 0), |(from, to)| {
            ((from - left) as usize, (to - left) as usize)
        });
        row[..from].fill(255);
        row[to..].fill(255);
    }
    cut
}

/// The outline of the paper is taken for a quadrilateral where the quadrilateral of its
/// four outermost corners covers at least this share of it (a curled or torn page does
/// not).
const QUADRILATERAL_SHARE: f32 = 0.97;
/// Opposite sides of the paper that converge by this many degrees or more were
/// photographed at a slant (the phone tilted towards one end of the receipt): the print
/// narrows towards the far end and its upright strokes lean, which a rotation leaves as
/// it is. Less is left to [`super::deskew`].
const MIN_CONVERGENCE_DEGREES: f32 = 1.5;

type Point = (f32, f32);

/// The paper's corners (upper left, upper right, lower right, lower left), where its
/// outline is a quadrilateral whose opposite sides converge.
fn keystoned_corners(hull: &[Point]) -> Option<[Point; 4]> {
    // A corner is the outline's point furthest out along its diagonal: so it stays while
    // the page is turned by less than the angle between diagonal and sides.
    let furthest = |(dx, dy): Point| {
        hull.iter()
            .copied()
            .max_by(|a, b| (a.0 * dx + a.1 * dy).total_cmp(&(b.0 * dx + b.1 * dy)))
    };
    let corners = [
        furthest((-1.0, -1.0))?,
        furthest((1.0, -1.0))?,
        furthest((1.0, 1.0))?,
        furthest((-1.0, 1.0))?,
    ];
    if area(&corners) < QUADRILATERAL_SHARE * area(hull) {
        return None;
    }
    let [upper_left, upper_right, lower_right, lower_left] = corners;
    let direction = |from: Point, to: Point| (to.1 - from.1).atan2(to.0 - from.0);
    let between = |a: f32, b: f32| {
        let turn = (a - b).abs() % std::f32::consts::TAU;
        turn.min(std::f32::consts::TAU - turn).to_degrees()
    };
    let across = between(
        direction(upper_left, upper_right),
        direction(lower_left, lower_right),
    );
    let down = between(
        direction(upper_left, lower_left),
        direction(upper_right, lower_right),
    );
    (across.max(down) >= MIN_CONVERGENCE_DEGREES).then_some(corners)
}

/// Text lines straightened by the paper's outline run at one angle in both halves of the
/// page, to within this many degrees (a quarter degree is the skew estimate's step).
/// Where the paper is curled, or a corner was misplaced (a shadow or the table's light
/// taken for paper, as on a third of the first corpus's photos), they do not: one half's
/// rows rise or fall against the other's, and a price would meet the label of the row
/// above it. The page is then only turned, as before.
const MAX_BEND_DEGREES: f32 = 0.75;
/// Nor may the lines run further than this from level: [`super::deskew`] turns what is
/// left, but corners that far off are not to be trusted with the slant either.
const MAX_RESIDUAL_SKEW_DEGREES: f32 = 2.0;

/// Whether the text lines of a straightened page run straight across it: at one angle,
/// near level, in its left half and its right half.
fn straight_across(image: &GrayImage) -> bool {
    let (width, height) = image.dimensions();
    let half = width / 2;
    let skew = |left: u32| {
        estimate_skew(&image::imageops::crop_imm(image, left, 0, half, height).to_image())
    };
    let left = skew(0);
    if left.abs() > MAX_RESIDUAL_SKEW_DEGREES {
        return false;
    }
    let right = skew(half);
    right.abs() <= MAX_RESIDUAL_SKEW_DEGREES && (left - right).abs() <= MAX_BEND_DEGREES
}

/// The area of a polygon (the shoelace formula).
fn area(polygon: &[Point]) -> f32 {
    let twice: f32 = polygon
        .iter()
        .zip(polygon.iter().cycle().skip(1))
        .map(|(a, b)| a.0 * b.1 - b.0 * a.1)
        .sum();
    twice.abs() / 2.0
}

/// The paper between `corners` (upper left, upper right, lower right, lower left) drawn
/// onto an upright rectangle as long as its longer sides, with `margin` pixels around:
/// the slant and the turn undone in one resampling.
fn straighten(image: &GrayImage, corners: [Point; 4], margin: f32) -> GrayImage {
    let [upper_left, upper_right, lower_right, lower_left] = corners;
    let length = |a: Point, b: Point| (a.0 - b.0).hypot(a.1 - b.1);
    let width = length(upper_left, upper_right).max(length(lower_left, lower_right));
    let height = length(upper_left, lower_left).max(length(upper_right, lower_right));
    let onto = SquareToQuadrilateral::new(corners);
    let side = |length: f32| (length + 2.0 * margin).round().max(1.0) as u32;
    GrayImage::from_fn(side(width), side(height), |x, y| {
        let u = (x as f32 + 0.5 - margin) / width;
        let v = (y as f32 + 0.5 - margin) / height;
        let (sx, sy) = onto.apply(u, v);
        // `sample` takes a pixel's centre at whole coordinates.
        Luma([sample(image, sx - 0.5, sy - 0.5)])
    })
}

/// The projective map of the unit square onto a quadrilateral, (0, 0) to its first
/// corner and on clockwise (Heckbert's closed form).
struct SquareToQuadrilateral {
    a: f32,
    b: f32,
    c: f32,
    d: f32,
    e: f32,
    f: f32,
    g: f32,
    h: f32,
}

impl SquareToQuadrilateral {
    fn new([(x0, y0), (x1, y1), (x2, y2), (x3, y3)]: [Point; 4]) -> Self {
        let (sx, sy) = (x0 - x1 + x2 - x3, y0 - y1 + y2 - y3);
        let (dx1, dx2, dy1, dy2) = (x1 - x2, x3 - x2, y1 - y2, y3 - y2);
        // Never 0: the corners span most of the paper (`keystoned_corners`).
        let determinant = dx1 * dy2 - dx2 * dy1;
        let g = (sx * dy2 - dx2 * sy) / determinant;
        let h = (dx1 * sy - sx * dy1) / determinant;
        Self {
            a: x1 - x0 + g * x1,
            b: x3 - x0 + h * x3,
            c: x0,
            d: y1 - y0 + g * y1,
            e: y3 - y0 + h * y3,
            f: y0,
            g,
            h,
        }
    }

    fn apply(&self, u: f32, v: f32) -> Point {
        let w = self.g * u + self.h * v + 1.0;
        (
            (self.a * u + self.b * v + self.c) / w,
            (self.d * u + self.e * v + self.f) / w,
        )
    }
}

/// The convex hull of `points`, counter-clockwise in image coordinates (Andrew's
/// monotone chain).
pub(crate) fn convex_hull(mut points: Vec<Point>) -> Vec<Point> {
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    points.dedup();
    if points.len() < 3 {
        return points;
    }
    let cross = |o: (f32, f32), a: (f32, f32), b: (f32, f32)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    let mut hull: Vec<(f32, f32)> = Vec::with_capacity(points.len() + 1);
    for pass in [points.clone(), points.into_iter().rev().collect()] {
        let start = hull.len();
        for p in pass {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

/// For each of `height` rows, the columns [from, to) a convex polygon covers, widened by
/// `margin` pixels each way (and to the rows within `margin` above and below it).
fn row_spans(
    polygon: &[(f32, f32)],
    (width, height): (u32, u32),
    margin: f32,
) -> Vec<Option<(u32, u32)>> {
    let mut spans: Vec<Option<(f32, f32)>> = vec![None; height as usize];
    for (i, &a) in polygon.iter().enumerate() {
        let b = polygon[(i + 1) % polygon.len()];
        let (low, high) = if a.1 <= b.1 { (a, b) } else { (b, a) };
        // The polygon's corners are pixels of the picture: its rows are the picture's.
        let (first, last) = (low.1.ceil() as usize, high.1.floor() as usize);
        let rows = spans.iter_mut().enumerate().take(last + 1).skip(first);
        for (y, span) in rows {
            let (x, x_end) = if high.1 > low.1 {
                let x = low.0 + (high.0 - low.0) * (y as f32 - low.1) / (high.1 - low.1);
                (x, x)
            } else {
                (low.0.min(high.0), low.0.max(high.0))
            };
            *span = Some(match *span {
                Some((from, to)) => (from.min(x), to.max(x_end)),
                None => (x, x_end),
            });
        }
    }
    let reach = margin.ceil() as usize;
    (0..height as usize)
        .map(|y| {
            let near = y.saturating_sub(reach)..(y + reach + 1).min(height as usize);
            let (from, to) = near
                .filter_map(|n| spans[n])
                .fold((f32::MAX, f32::MIN), |(from, to), (f, t)| {
                    (from.min(f), to.max(t))
                });
            (from <= to).then(|| {
                (
                    ((from - margin).max(0.0) as u32).min(width),
                    ((to + margin + 1.0).max(0.0) as u32).min(width),
                )
            })
        })
        .collect()
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
    labelled_regions(image, threshold).0
}

/// The bright regions, and for each pixel the region it belongs to.
fn labelled_regions(image: &GrayImage, threshold: u8) -> (Vec<Region>, Vec<Option<usize>>) {
    let (width, height) = image.dimensions();
    let mut seen = vec![None; (width * height) as usize];
    let mut regions = Vec::new();
    let mut stack = Vec::new();
    for start in 0..width * height {
        let bright = |i: u32| image.as_raw()[i as usize] >= threshold;
        if seen[start as usize].is_some() || !bright(start) {
            continue;
        }
        let mut region = Region {
            area: 0,
            left: u32::MAX,
            top: u32::MAX,
            right: 0,
            bottom: 0,
        };
        let label = Some(regions.len());
        seen[start as usize] = label;
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
                if seen[n as usize].is_none() && bright(n) {
                    seen[n as usize] = label;
                    stack.push(n);
                }
            }
        }
        regions.push(region);
    }
    (regions, seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    /// A table's grey grain at (x, y).
    fn table(x: u32, y: u32) -> Luma<u8> {
        Luma([if (x / 3 + y / 5).is_multiple_of(2) {
            90
        } else {
            120
        }])
    }

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
                (false, _) => table(x, y),
            }
        })
    }

    fn assert_size(
        image: &GrayImage,
        widths: std::ops::RangeInclusive<u32>,
        heights: std::ops::RangeInclusive<u32>,
    ) {
        let (width, height) = image.dimensions();
        assert!(
            widths.contains(&width) && heights.contains(&height),
            "{width} x {height}"
        );
    }

    #[test]
    fn a_page_on_a_table_is_cut_to_the_page_with_a_margin() {
        let image = photo((2400, 1800), (750, 300, 750, 1200));
        // The page (750 x 1200) and a margin of a few dozen pixels a side.
        assert_size(&crop_to_paper(image), 750..=880, 1200..=1330);
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

    /// The page of [`photo`] on its table, flattened as [`super::super::prepare`] does.
    fn flattened(size: (u32, u32), page: (u32, u32, u32, u32)) -> Flattened {
        crate::prepare::flatten(&photo(size, page))
    }

    /// The print's pixels: the table, even by the paper, is lighter.
    fn print(image: &GrayImage) -> usize {
        image.pixels().filter(|p| p.0[0] < 60).count()
    }

    #[test]
    fn the_table_around_a_flattened_page_is_cleared_and_cut_off() {
        let (size, page) = ((1000, 1200), (250, 200, 450, 700));
        let cleared = clear_around_paper(flattened(size, page));
        // The page (450 x 700), to a few pixels.
        assert_size(&cleared, 440..=470, 690..=720);
        // Turned, the page's box holds table far from the page, which is cleared; the
        // print is all kept.
        let turned = crate::prepare::flatten(&crate::prepare::rotate(&photo(size, page), 30.0));
        let (turned_width, turned_height) = turned.image.dimensions();
        let printed = print(&turned.image);
        let cleared = clear_around_paper(turned);
        let (width, height) = cleared.dimensions();
        assert!(width < turned_width && height < turned_height);
        for (x, y) in [
            (0, 0),
            (width - 1, 0),
            (0, height - 1),
            (width - 1, height - 1),
        ] {
            assert_eq!(cleared.get_pixel(x, y).0[0], 255, "at {x}, {y}");
        }
        assert_eq!(print(&cleared), printed);
    }

    /// A page 500 wide at the bottom and 400 at the top (the phone tilted towards its
    /// upper end), turned by 3 degrees, on a table, with a rule down its left side a
    /// twelfth of its width in and lines of print across, which rise by `bend` degrees
    /// in its right half (curled paper).
    fn slanted_page(bend: f32) -> GrayImage {
        let (top, bottom) = (150.0, 1050.0);
        let (sin, cos) = 3f32.to_radians().sin_cos();
        let rise = bend.to_radians().tan();
        GrayImage::from_fn(1000, 1200, |x, y| {
            let (u, v) = (x as f32 - 500.0, y as f32 - 600.0);
            let (x, y) = (cos * u + sin * v + 500.0, -sin * u + cos * v + 600.0);
            let along = (y - top) / (bottom - top);
            let (left, right) = (300.0 - 50.0 * along, 700.0 + 50.0 * along);
            let inside = (top..bottom).contains(&y) && (left..right).contains(&x);
            let rule_x = left + (right - left) / 12.0;
            let rule = (x - rule_x).abs() < 4.0 && (top + 40.0..bottom - 40.0).contains(&y);
            let middle = (left + right) / 2.0;
            let lifted = y + (x - middle).max(0.0) * rise;
            let print = x > rule_x + 20.0
                && x < right - 20.0
                && (top + 60.0..bottom - 60.0).contains(&y)
                && (lifted as u32 % 40) < 10
                && (x as u32 % 14) < 6;
            match (inside, rule || print) {
                (true, true) => Luma([20]),
                (true, false) => Luma([235]),
                (false, _) => table(x as u32, y as u32),
            }
        })
    }

    /// Where [`slanted_page`]'s rule crosses a fifth and four fifths down the image: the
    /// middle of the first dark run from the left, past the margin.
    fn rule_at(image: &GrayImage) -> (f32, f32) {
        let at = |y: u32| {
            let dark = |x: &u32| image.get_pixel(*x, y).0[0] < 100;
            let start = (15..image.width()).find(dark).unwrap_or(0);
            let end = (start..image.width()).find(|x| !dark(x)).unwrap_or(start);
            (start + end) as f32 / 2.0
        };
        (at(image.height() / 5), at(image.height() * 4 / 5))
    }

    #[test]
    fn a_page_photographed_at_a_slant_is_drawn_upright() {
        let turned = slanted_page(0.0);
        let upright = clear_around_paper(crate::prepare::flatten(&turned));
        // The rule runs straight down, about a twelfth of the page's width from its left
        // edge (the outline is found to a small copy's pixel, 8 pixels).
        let (high, low) = rule_at(&upright);
        assert!((high - low).abs() <= 3.0, "the rule at {high} and at {low}");
        assert!((30.0..=56.0).contains(&high), "the rule at {high}");
        // As wide as the page's wider end and as high as it is, to a few pixels.
        assert_size(&upright, 490..=530, 880..=930);
    }

    #[test]
    fn a_curled_page_photographed_at_a_slant_is_only_cut() {
        // Its lines bend: drawn upright by its outline, its right half's rows would rise
        // against its left half's. It is cut to its box instead, as a turned page is.
        // (`deskew` turns it after.)
        let cut = clear_around_paper(crate::prepare::flatten(&slanted_page(4.0)));
        let (high, low) = rule_at(&cut);
        assert!((high - low).abs() > 20.0, "the rule at {high} and at {low}");
    }

    #[test]
    fn a_page_that_runs_off_the_picture_is_left_whole() {
        let flat = flattened((800, 1000), (0, 0, 800, 1000));
        let image = flat.image.clone();
        assert_eq!(clear_around_paper(flat), image);
    }

    /// [`photo`]'s page with a band of `grey` over `columns` × `rows`, flattened and
    /// cleared around.
    fn cleared_with_band(
        (size, page): ((u32, u32), (u32, u32, u32, u32)),
        (columns, rows): (std::ops::Range<u32>, std::ops::Range<u32>),
        grey: u8,
    ) -> GrayImage {
        let mut image = photo(size, page);
        for y in rows {
            for x in columns.clone() {
                image.put_pixel(x, y, Luma([grey]));
            }
        }
        clear_around_paper(crate::prepare::flatten(&image))
    }

    #[test]
    fn a_crease_across_the_flattened_page_keeps_both_of_its_parts() {
        // A dark line across the page, above a part of it too small to be a page alone.
        let page = ((1000, 1200), (250, 200, 450, 700));
        let cleared = cleared_with_band(page, (250..700, 760..772), 70);
        assert!(cleared.height() >= 700, "{}", cleared.height());
    }

    #[test]
    fn a_shadow_edge_across_the_page_keeps_the_strip_beyond_it() {
        // A hard shadow's edge down the page, a narrow strip of the page beyond.
        let page = ((1100, 1200), (100, 200, 900, 700));
        let cleared = cleared_with_band(page, (940..984, 200..900), 60);
        // The page's width, to a few pixels of its blank edges.
        assert!(cleared.width() >= 880, "{}", cleared.width());
    }
}
