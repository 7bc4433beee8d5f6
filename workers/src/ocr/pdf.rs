//! PDFs: their text layer, or their pages as images.

use expensewise_infra::config::DEFAULT_PDF_PAGES;

use super::{run, temporary_copy, OcrError, PDF_PAGE_PIXELS};

/// Scans are rendered at their own resolution up to this many dots per inch.
const MAX_SCAN_DPI: u32 = 200;
/// Below this resolution an image is no page's scan worth rendering at (or a thumbnail).
const MIN_SCAN_DPI: u32 = 100;
/// An image narrower and lower than this is a logo or a stamp, not a page's scan.
const MIN_SCAN_SIDE: u32 = 600;

/// The finest resolution among the scans `pdfimages -list` lists: its columns are page,
/// num, type, width, height, color, comp, bpc, enc, interp, object, ID, x-ppi, y-ppi, ….
fn scan_dpi(listing: &str) -> Option<u32> {
    listing
        .lines()
        .skip(2)
        .filter_map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            let number = |i: usize| columns.get(i)?.parse::<u32>().ok();
            let (width, height, ppi) = (number(3)?, number(4)?, number(12)?);
            (width.max(height) >= MIN_SCAN_SIDE && ppi >= MIN_SCAN_DPI).then_some(ppi)
        })
        .max()
}

/// Poppler's command-line tools (Debian's `poppler-utils`): `pdftotext` for text layers,
/// `pdfimages` to learn a scan's resolution, `pdftoppm` to turn a scanned page into an
/// image.
pub struct PdfTools {
    pub pdftotext: String,
    pub pdfimages: String,
    pub pdftoppm: String,
    /// Pages read from the start of a PDF; the rest are ignored.
    pub max_pages: u32,
}

impl Default for PdfTools {
    fn default() -> Self {
        PdfTools {
            pdftotext: "pdftotext".into(),
            pdfimages: "pdfimages".into(),
            pdftoppm: "pdftoppm".into(),
            max_pages: DEFAULT_PDF_PAGES,
        }
    }
}

impl PdfTools {
    /// The PDF's own text, if it has any worth the name (a scan saved as PDF has none).
    pub async fn text_layer(&self, pdf: &[u8]) -> Result<Option<String>, OcrError> {
        let file = temporary_copy(pdf)?;
        let last_page = self.max_pages.to_string();
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

    /// The resolution of the finest scan on the pages read, in dots per inch, when the
    /// pages hold one large enough to be a page's scan rather than a logo.
    async fn scan_resolution(
        &self,
        file: &std::path::Path,
        last_page: &str,
    ) -> Result<Option<u32>, OcrError> {
        let output = run(
            &self.pdfimages,
            &[
                "-list".as_ref(),
                "-l".as_ref(),
                last_page.as_ref(),
                file.as_os_str(),
            ],
        )
        .await?;
        Ok(scan_dpi(&String::from_utf8_lossy(&output.stdout)))
    }

    /// Every page (up to the page limit) as a greyscale image (PGM), in order.
    pub async fn rasterise(&self, pdf: &[u8]) -> Result<Vec<Vec<u8>>, OcrError> {
        let file = temporary_copy(pdf)?;
        let folder = tempfile::tempdir().map_err(|e| OcrError::Engine(e.to_string()))?;
        let prefix = folder.path().join("page");
        let last_page = self.max_pages.to_string();
        // A scanned page is rendered at the resolution it was scanned at: finer only
        // interpolates (and costs the engine time), coarser loses what was scanned.
        // Scans finer than 200 dpi are rendered at 200, which reads 10 pt print well;
        // a page with no scan of any size, at a bounded size. A page claiming to be
        // metres long is cut at 3,000 × 6,000 pixels (a 30-inch till roll at 200 dpi).
        let size: Vec<String> = match self.scan_resolution(file.path(), &last_page).await? {
            Some(dpi) => vec![
                "-r".into(),
                dpi.min(MAX_SCAN_DPI).to_string(),
                "-W".into(),
                "3000".into(),
                "-H".into(),
                "6000".into(),
            ],
            None => vec!["-scale-to".into(), PDF_PAGE_PIXELS.to_string()],
        };
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "-f".as_ref(),
            "1".as_ref(),
            "-l".as_ref(),
            last_page.as_ref(),
            // Raw greyscale (PGM), not PNG: compressing a scanned A4 page took pdftoppm
            // half a second, longer than rendering it, for a file read once and deleted.
            "-gray".as_ref(),
        ];
        args.extend(size.iter().map(std::ffi::OsStr::new));
        args.extend([file.path().as_os_str(), prefix.as_os_str()]);
        run(&self.pdftoppm, &args).await?;
        // pdftoppm names pages page-1.pgm or page-01.pgm, by the document's page count:
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pages_scan_gives_its_resolution_and_a_logo_none() {
        let listing = "page   num  type   width height color comp bpc  enc interp  object ID x-ppi y-ppi size ratio\n\
--------------------------------------------------------------------------------------------\n\
   1     0 image    1189  1370  rgb     3   8  jpeg   no         1  0   150   150 90.8K 1.9%\n\
   2     1 image    1189   467  rgb     3   8  jpeg   no         4  0   150   150 29.9K 1.8%\n\
   2     2 image     200    80  rgb     3   8  jpeg   no         5  0   600   600 9.9K 1.8%\n";
        assert_eq!(scan_dpi(listing), Some(150));
        let logo_only = "h\n-\n   1     0 image     200    80  rgb     3   8  jpeg   no         5  0   600   600 9.9K 1.8%\n";
        assert_eq!(scan_dpi(logo_only), None);
        assert_eq!(scan_dpi("h\n-\n"), None);
    }
}
