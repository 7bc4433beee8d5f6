//! PDFs: their text layer, or their pages as images.

use expensewise_infra::config::DEFAULT_PDF_PAGES;

use super::{run, temporary_copy, OcrError, PDF_PAGE_PIXELS};

/// Poppler's command-line tools (Debian's `poppler-utils`): `pdftotext` for text layers,
/// `pdftoppm` to turn a scanned page into an image.
pub struct PdfTools {
    pub pdftotext: String,
    pub pdftoppm: String,
    /// Pages read from the start of a PDF; the rest are ignored.
    pub max_pages: u32,
}

impl Default for PdfTools {
    fn default() -> Self {
        PdfTools {
            pdftotext: "pdftotext".into(),
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

    /// Every page (up to the page limit) as a greyscale PNG, in order.
    pub async fn rasterise(&self, pdf: &[u8]) -> Result<Vec<Vec<u8>>, OcrError> {
        let file = temporary_copy(pdf)?;
        let folder = tempfile::tempdir().map_err(|e| OcrError::Engine(e.to_string()))?;
        let prefix = folder.path().join("page");
        let size = PDF_PAGE_PIXELS.to_string();
        let last_page = self.max_pages.to_string();
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
