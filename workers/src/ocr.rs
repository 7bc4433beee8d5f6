//! Reading the text of a receipt image. Engines sit behind one trait; the guards around
//! them (file type, pixel count, time limit) are the same for all.

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

/// Images larger than this are refused before any decoding: a few kilobytes of PNG can
/// claim gigabytes of pixels.
pub const MAX_PIXELS: u64 = 40_000_000;

/// Why a receipt could not be read, in words for the person who uploaded it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OcrError {
    #[error("the file is not an image that can be read (it may be damaged or cut short)")]
    Unreadable,
    #[error(
        "the image is too large to read ({width}×{height} pixels; at most {MAX_PIXELS} pixels)"
    )]
    TooLarge { width: u64, height: u64 },
    #[error("reading PDF receipts is not supported yet; upload a photo or scan of it")]
    Pdf,
    #[error("no text was found on the receipt")]
    NoText,
    #[error("reading the receipt took longer than {0:?}")]
    TimedOut(Duration),
    /// Not the receipt's fault either, but no retry will help until someone installs it.
    #[error("this server has no OCR engine installed ({0} was not found)")]
    NotInstalled(String),
    /// The engine itself failed (not the receipt's fault): worth another attempt.
    #[error("the OCR engine failed: {0}")]
    Engine(String),
}

impl OcrError {
    /// Whether trying again later could help.
    pub fn is_transient(&self) -> bool {
        matches!(self, OcrError::Engine(_))
    }
}

#[async_trait]
pub trait OcrEngine: Send + Sync {
    fn name(&self) -> &'static str;

    /// The text of the image, line by line.
    async fn read(&self, image: &[u8]) -> Result<String, OcrError>;
}

/// Checks what can be checked without decoding: the type and the claimed size.
pub fn check_image(bytes: &[u8], content_type: &str) -> Result<(), OcrError> {
    if content_type == "application/pdf" {
        return Err(OcrError::Pdf);
    }
    let size = imagesize::blob_size(bytes).map_err(|_| OcrError::Unreadable)?;
    let (width, height) = (size.width as u64, size.height as u64);
    if width == 0 || height == 0 {
        return Err(OcrError::Unreadable);
    }
    if width.saturating_mul(height) > MAX_PIXELS {
        return Err(OcrError::TooLarge { width, height });
    }
    Ok(())
}

/// Reads with an engine, inside the guards and the time limit.
pub async fn read_receipt(
    engine: &dyn OcrEngine,
    bytes: &[u8],
    content_type: &str,
    limit: Duration,
) -> Result<String, OcrError> {
    check_image(bytes, content_type)?;
    let text = tokio::time::timeout(limit, engine.read(bytes))
        .await
        .map_err(|_| OcrError::TimedOut(limit))??;
    if text.trim().is_empty() {
        return Err(OcrError::NoText);
    }
    Ok(text)
}

/// Debian's `tesseract` command: the engine where the ocrs models are not installed.
pub struct Tesseract {
    pub program: String,
}

#[async_trait]
impl OcrEngine for Tesseract {
    fn name(&self) -> &'static str {
        "tesseract"
    }

    async fn read(&self, image: &[u8]) -> Result<String, OcrError> {
        // Page segmentation 4: one column of text of varying sizes — a receipt.
        let mut child = tokio::process::Command::new(&self.program)
            .args(["stdin", "stdout", "--psm", "4", "-l", "eng"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A timed-out read drops the future: the process goes with it.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => OcrError::NotInstalled(self.program.clone()),
                _ => OcrError::Engine(format!("cannot run {}: {e}", self.program)),
            })?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| OcrError::Engine("no stdin".into()))?;
        let input = image.to_vec();
        let writer = tokio::spawn(async move {
            // Tesseract may stop reading early on a damaged file; that is its answer.
            let _ = stdin.write_all(&input).await;
        });
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| OcrError::Engine(e.to_string()))?;
        let _ = writer.await;
        if !output.status.success() {
            // Tesseract exits non-zero for files it cannot decode.
            let message = String::from_utf8_lossy(&output.stderr);
            tracing::info!(engine = "tesseract", error = %message.trim(), "image not read");
            return Err(OcrError::Unreadable);
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_sizes_and_types_are_checked_before_decoding() {
        // A PNG header claiming 20,000 × 20,000 pixels, with no image data at all.
        let mut bomb = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        bomb.extend_from_slice(&20_000u32.to_be_bytes());
        bomb.extend_from_slice(&20_000u32.to_be_bytes());
        bomb.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            check_image(&bomb, "image/png"),
            Err(OcrError::TooLarge {
                width: 20_000,
                height: 20_000
            })
        );
        assert_eq!(
            check_image(b"%PDF-1.7", "application/pdf"),
            Err(OcrError::Pdf)
        );
        assert_eq!(
            check_image(&[0xFF, 0xD8, 0xFF, 0xE0], "image/jpeg"),
            Err(OcrError::Unreadable)
        );
        assert!(!OcrError::Unreadable.is_transient());
        assert!(!OcrError::NotInstalled("tesseract".into()).is_transient());
        assert!(OcrError::Engine("crashed".into()).is_transient());
    }
}

#[cfg(test)]
mod engine_tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_engine_fails_the_scan_with_a_reason() {
        let engine = Tesseract {
            program: "/nonexistent/tesseract".into(),
        };
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\0\0\0\0";
        let outcome = read_receipt(&engine, png, "image/png", Duration::from_secs(5)).await;
        assert_eq!(
            outcome,
            Err(OcrError::NotInstalled("/nonexistent/tesseract".into()))
        );
    }
}
