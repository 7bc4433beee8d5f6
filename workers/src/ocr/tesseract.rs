//! Tesseract, run as a program.

use std::process::Stdio;

use async_trait::async_trait;
use image::codecs::tiff::TiffEncoder;
use image::GrayImage;

use super::{OcrEngine, OcrError};

/// Debian's `tesseract` command: the engine where the ocrs models are not installed.
pub struct Tesseract {
    pub program: String,
    /// The models it reads with, `+`-joined, the first tried first (`eng+deu`).
    pub languages: String,
}

impl Tesseract {
    /// Tesseract reading with those of the `wanted` models (`eng+deu`) it has; each one
    /// missing is named once, with the package that brings it. Where Tesseract does not
    /// run, or has none of them, all are kept: reading then fails and says why.
    pub fn with_languages(program: String, wanted: &str) -> Self {
        let installed = installed_languages(&program);
        let (have, missing): (Vec<&str>, Vec<&str>) = wanted
            .split('+')
            .partition(|l| installed.iter().any(|i| i == l));
        if have.is_empty() {
            return Self {
                program,
                languages: wanted.to_string(),
            };
        }
        for language in missing {
            // Debian names its packages after the models (`chi_sim` is in
            // `tesseract-ocr-chi-sim`); the scripts' models (`script/Latin`) follow no rule.
            let how = if language.contains('/') {
                "into Tesseract's tessdata folder".to_string()
            } else {
                format!(
                    "(Debian/Ubuntu: sudo apt-get install tesseract-ocr-{})",
                    language.replace('_', "-")
                )
            };
            tracing::warn!(
                language = %language,
                "Tesseract has no '{language}' model, so receipts are read without it. To \
                 read with it, install it {how} and restart"
            );
        }
        Self {
            program,
            languages: have.join("+"),
        }
    }
}

/// The models `tesseract --list-langs` names (none when it does not run): a line each,
/// after a line saying where they are.
fn installed_languages(program: &str) -> Vec<String> {
    let Ok(output) = std::process::Command::new(program)
        .arg("--list-langs")
        .stdin(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip_while(|l| !l.starts_with("List of available languages"))
        .skip(1)
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
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
            .map(|version| format!("{version} ({})", self.languages))
            .ok_or_else(|| {
                OcrError::Engine(format!("{} does not say it is Tesseract", self.program))
            })
    }

    async fn read(&self, image: GrayImage) -> Result<String, OcrError> {
        let mut pages = self.read_pages(vec![image]).await?;
        Ok(pages.pop().unwrap_or_default())
    }

    async fn read_pages(&self, pages: Vec<GrayImage>) -> Result<Vec<String>, OcrError> {
        let count = pages.len();
        let folder = tempfile::tempdir().map_err(|e| OcrError::Engine(e.to_string()))?;
        let list = folder.path().join("pages.txt");
        let written = {
            let (folder, list) = (folder.path().to_path_buf(), list.clone());
            tokio::task::spawn_blocking(move || write_pages(&folder, &list, pages))
        };
        written
            .await
            .map_err(|e| OcrError::Engine(e.to_string()))?
            .map_err(|e| OcrError::Engine(format!("cannot write the pages for tesseract: {e}")))?;
        // Words with their boxes (TSV), found as sparse text: Tesseract's own line and
        // column finding drops a price column far from its labels, or a tilted one;
        // rows are rebuilt here from the boxes instead. Given a list of images it reads
        // them all in one run: loading a model costs ~0.1 s a run.
        let output = tokio::process::Command::new(&self.program)
            .arg(&list)
            .args([
                "stdout",
                "--psm",
                TESSERACT_PSM,
                "-l",
                &self.languages,
                "tsv",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => OcrError::NotInstalled(self.program.clone()),
                _ => OcrError::Engine(format!("cannot run {}: {e}", self.program)),
            })?;
        if !output.status.success() {
            // The images decoded here, so this is the engine's trouble, not the file's.
            let message = String::from_utf8_lossy(&output.stderr);
            return Err(OcrError::Engine(format!(
                "tesseract failed: {}",
                message.trim()
            )));
        }
        Ok(pages_from_tsv(
            &String::from_utf8_lossy(&output.stdout),
            count,
        ))
    }
}

/// Writes each page as an uncompressed TIFF in `folder`, and their list, a path a line,
/// to `list`. Compressing only costs time on both sides, for a file read once and
/// deleted; and not PGM, which Tesseract's image library reads a byte per call (a tenth
/// of Tesseract's time on a scanned two-page invoice).
fn write_pages(
    folder: &std::path::Path,
    list: &std::path::Path,
    pages: Vec<GrayImage>,
) -> Result<(), String> {
    let mut paths = String::new();
    for (number, page) in pages.into_iter().enumerate() {
        let path = folder.join(format!("page-{number}.tif"));
        let file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
        let encoder = TiffEncoder::new(std::io::BufWriter::new(file));
        page.write_with_encoder(encoder)
            .map_err(|e| e.to_string())?;
        paths.push_str(&path.to_string_lossy());
        paths.push('\n');
    }
    std::fs::write(list, paths).map_err(|e| e.to_string())
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
/// receipt, for each of `pages` pages (TSV numbers them from 1).
fn pages_from_tsv(tsv: &str, pages: usize) -> Vec<String> {
    let mut words: Vec<Vec<Word>> = vec![Vec::new(); pages];
    for line in tsv.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let number = |i: usize| fields.get(i)?.parse::<f32>().ok();
        let text = fields.get(11).map_or("", |t| t.trim());
        if fields.first() != Some(&"5") || text.is_empty() {
            continue;
        }
        let page = fields.get(1).and_then(|p| p.parse::<usize>().ok());
        let Some(page) = page.and_then(|p| words.get_mut(p.checked_sub(1)?)) else {
            continue;
        };
        page.push(Word {
            left: number(6).unwrap_or(0.0),
            top: number(7).unwrap_or(0.0),
            width: number(8).unwrap_or(0.0),
            height: number(9).unwrap_or(0.0),
            text: text.to_string(),
        });
    }
    words.into_iter().map(rows_of_words).collect()
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

    /// The test script installs Tesseract with its English and German models.
    #[test]
    fn models_tesseract_lacks_are_left_out_and_named() {
        let tesseract = Tesseract::with_languages("tesseract".into(), "eng+xyz+deu");
        assert_eq!(tesseract.languages, "eng+deu");
        // Nothing to choose from: kept, for reading to fail and say why.
        let missing = Tesseract::with_languages("/nonexistent/tesseract".into(), "eng+deu");
        assert_eq!(missing.languages, "eng+deu");
        let none = Tesseract::with_languages("tesseract".into(), "xyz");
        assert_eq!(none.languages, "xyz");
    }

    #[test]
    fn words_are_put_back_into_rows() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   1\t1\t0\t0\t0\t0\t0\t0\t900\t400\t-1\t\n\
                   5\t1\t2\t1\t1\t1\t800\t103\t70\t20\t91\t£10.70\n\
                   5\t1\t1\t1\t1\t1\t40\t40\t120\t24\t96\tCORNER\n\
                   5\t1\t1\t1\t1\t2\t170\t41\t60\t24\t96\tDELI\n\
                   5\t1\t1\t1\t2\t1\t40\t100\t80\t22\t95\tTotal\n\
                   5\t1\t1\t1\t3\t1\t40\t160\t80\t22\t95\tThanks\n";
        assert_eq!(
            pages_from_tsv(tsv, 1),
            vec!["CORNER DELI\nTotal  £10.70\nThanks\n".to_string()]
        );
    }

    #[test]
    fn each_page_gets_its_own_rows_and_an_empty_page_stays_empty() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   5\t1\t1\t1\t1\t1\t40\t40\t120\t24\t96\tINVOICE\n\
                   5\t3\t1\t1\t1\t1\t40\t40\t80\t22\t95\tTotal\n\
                   5\t3\t1\t1\t1\t2\t800\t42\t70\t20\t91\t€10.70\n\
                   5\t9\t1\t1\t1\t1\t40\t40\t80\t22\t95\tstray\n";
        assert_eq!(
            pages_from_tsv(tsv, 3),
            vec![
                "INVOICE\n".to_string(),
                String::new(),
                "Total  €10.70\n".to_string()
            ]
        );
    }
}
