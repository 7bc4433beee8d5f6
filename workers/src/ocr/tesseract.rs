//! Tesseract, run as a program.

use std::process::Stdio;

use async_trait::async_trait;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::GrayImage;
use tokio::io::AsyncWriteExt;

use super::{OcrEngine, OcrError};

/// Debian's `tesseract` command: the engine where the ocrs models are not installed.
pub struct Tesseract {
    pub program: String,
}

#[async_trait]
impl OcrEngine for Tesseract {
    fn name(&self) -> &'static str {
        "tesseract"
    }

    fn check(&self) -> Result<String, OcrError> {
        let output = std::process::Command::new(&self.program)
            .arg("--version")
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => OcrError::NotInstalled(self.program.clone()),
                _ => OcrError::Engine(format!("{} --version: {e}", self.program)),
            })?;
        // Older versions print their banner on standard error.
        let text = [output.stdout, output.stderr].concat();
        let banner = String::from_utf8_lossy(&text);
        banner
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("tesseract"))
            .map(str::to_string)
            .ok_or_else(|| {
                OcrError::Engine(format!("{} does not say it is Tesseract", self.program))
            })
    }

    async fn read(&self, image: GrayImage) -> Result<String, OcrError> {
        let png = tokio::task::spawn_blocking(move || {
            let mut png = Vec::new();
            // Tesseract decodes whatever it gets; fast compression saves most of the
            // encoding time and costs only pipe bytes.
            let encoder =
                PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Sub);
            image.write_with_encoder(encoder).map(|()| png)
        })
        .await
        .map_err(|e| OcrError::Engine(e.to_string()))?
        .map_err(|e| OcrError::Engine(e.to_string()))?;
        // Words with their boxes (TSV), found as sparse text: Tesseract's own line and
        // column finding drops a price column far from its labels, or a tilted one;
        // rows are rebuilt here from the boxes instead.
        let mut child = tokio::process::Command::new(&self.program)
            .args([
                "stdin",
                "stdout",
                "--psm",
                TESSERACT_PSM,
                "-l",
                "eng",
                "tsv",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
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
        let writer = tokio::spawn(async move {
            // If Tesseract stops reading early, its exit status says why.
            let _ = stdin.write_all(&png).await;
        });
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| OcrError::Engine(e.to_string()))?;
        let _ = writer.await;
        if !output.status.success() {
            // The image decoded here, so this is the engine's trouble, not the file's.
            let message = String::from_utf8_lossy(&output.stderr);
            return Err(OcrError::Engine(format!(
                "tesseract failed: {}",
                message.trim()
            )));
        }
        Ok(rows_from_tsv(&String::from_utf8_lossy(&output.stdout)))
    }
}

/// Tesseract's page segmentation mode: 11 is sparse text, every word found wherever it
/// stands.
const TESSERACT_PSM: &str = "11";

/// A recognised word and its box.
#[derive(Debug, Clone, PartialEq)]
struct Word {
    left: f32,
    top: f32,
    width: f32,
    height: f32,
    text: String,
}

/// The words of Tesseract's TSV output (level 5 rows) as text, a line per row of the
/// receipt.
fn rows_from_tsv(tsv: &str) -> String {
    let words = tsv
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let number = |i: usize| fields.get(i)?.parse::<f32>().ok();
            let text = fields.get(11)?.trim();
            (fields.first() == Some(&"5") && !text.is_empty()).then(|| Word {
                left: number(6).unwrap_or(0.0),
                top: number(7).unwrap_or(0.0),
                width: number(8).unwrap_or(0.0),
                height: number(9).unwrap_or(0.0),
                text: text.to_string(),
            })
        })
        .collect();
    rows_of_words(words)
}

/// Puts words whose vertical extents mostly overlap into one row, left to right; a gap
/// wider than two letter heights (a price far from its label) becomes two spaces.
fn rows_of_words(mut words: Vec<Word>) -> String {
    words.sort_by(|a, b| (a.top + a.height / 2.0).total_cmp(&(b.top + b.height / 2.0)));
    // Each row: its band (top, bottom) and its words.
    let mut rows: Vec<(f32, f32, Vec<Word>)> = Vec::new();
    for word in words {
        let (top, bottom) = (word.top, word.top + word.height);
        let row = rows
            .iter_mut()
            .rev()
            .take(3)
            .find(|(row_top, row_bottom, _)| {
                let overlap = bottom.min(*row_bottom) - top.max(*row_top);
                overlap >= 0.5 * (bottom - top).min(row_bottom - row_top)
            });
        match row {
            Some((_, _, members)) => members.push(word),
            None => rows.push((top, bottom, vec![word])),
        }
    }
    let mut text = String::new();
    for (_, _, mut members) in rows {
        members.sort_by(|a, b| a.left.total_cmp(&b.left));
        let mut right_edge: Option<f32> = None;
        for word in members {
            if let Some(edge) = right_edge {
                let far = word.left - edge > 2.0 * word.height;
                text.push_str(if far { "  " } else { " " });
            }
            right_edge = Some(word.left + word.width);
            text.push_str(&word.text);
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_put_back_into_rows() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   1\t1\t0\t0\t0\t0\t0\t0\t900\t400\t-1\t\n\
                   5\t1\t2\t1\t1\t1\t800\t103\t70\t20\t91\t£10.70\n\
                   5\t1\t1\t1\t1\t1\t40\t40\t120\t24\t96\tCORNER\n\
                   5\t1\t1\t1\t1\t2\t170\t41\t60\t24\t96\tDELI\n\
                   5\t1\t1\t1\t2\t1\t40\t100\t80\t22\t95\tTotal\n\
                   5\t1\t1\t1\t3\t1\t40\t160\t80\t22\t95\tThanks\n";
        assert_eq!(rows_from_tsv(tsv), "CORNER DELI\nTotal  £10.70\nThanks\n");
    }
}
