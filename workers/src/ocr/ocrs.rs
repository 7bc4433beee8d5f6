//! The ocrs engine, in this process.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use image::GrayImage;
use rten_imageproc::RotatedRect;

use super::{into_rows, Extent, OcrEngine, OcrError, PageText};

/// The ocrs engine: a detection model finds words and lines, a recognition model reads
/// each line.
pub struct Ocrs {
    engine: Arc<ocrs::OcrEngine>,
}

/// One row of a receipt: the text lines the detector found side by side (an item and
/// its price are often detected as two lines), left to right.
pub struct Row {
    pub lines: Vec<Vec<RotatedRect>>,
}

impl Ocrs {
    /// Loads the models; without a recognition model the engine can find text but not
    /// read it (`rows` works, `read` fails).
    pub fn load(detection: &Path, recognition: Option<&Path>) -> anyhow::Result<Ocrs> {
        use anyhow::Context as _;
        let detection_model = rten::Model::load_file(detection)
            .with_context(|| format!("cannot load the detection model {}", detection.display()))?;
        let recognition_model = recognition
            .map(|path| {
                rten::Model::load_file(path).with_context(|| {
                    format!("cannot load the recognition model {}", path.display())
                })
            })
            .transpose()?;
        let engine = ocrs::OcrEngine::new(ocrs::OcrEngineParams {
            detection_model: Some(detection_model),
            recognition_model,
            ..Default::default()
        })?;
        Ok(Ocrs {
            engine: Arc::new(engine),
        })
    }

    /// The rows of text in the image, top to bottom.
    pub fn rows(&self, image: &GrayImage) -> Result<(ocrs::OcrInput, Vec<Row>), OcrError> {
        let engine_error = |e: &dyn std::fmt::Display| OcrError::Engine(e.to_string());
        let source = ocrs::ImageSource::from_bytes(image.as_raw(), image.dimensions())
            .map_err(|e| engine_error(&e))?;
        let input = self
            .engine
            .prepare_input(source)
            .map_err(|e| engine_error(&e))?;
        let words = self
            .engine
            .detect_words(&input)
            .map_err(|e| engine_error(&e))?;
        let lines = self.engine.find_text_lines(&input, &words);
        Ok((input, group_into_rows(lines)))
    }
}

#[async_trait]
impl OcrEngine for Ocrs {
    fn name(&self) -> &'static str {
        "ocrs"
    }

    fn check(&self) -> Result<String, OcrError> {
        // Its models loaded when it was made.
        Ok("ocrs".to_string())
    }

    async fn read(&self, image: GrayImage) -> Result<PageText, OcrError> {
        let engine = self.engine.clone();
        let this = Ocrs { engine };
        tokio::task::spawn_blocking(move || {
            let (input, rows) = this.rows(&image)?;
            let mut text = String::new();
            for row in rows {
                let read = this
                    .engine
                    .recognize_text(&input, &row.lines)
                    .map_err(|e| OcrError::Engine(e.to_string()))?;
                let parts: Vec<String> =
                    read.into_iter().flatten().map(|l| l.to_string()).collect();
                text.push_str(&parts.join("  "));
                text.push('\n');
            }
            // ocrs says nothing of how sure it is of a word.
            Ok(PageText::all_sure(text))
        })
        .await
        .map_err(|e| OcrError::Engine(e.to_string()))?
    }
}

/// Puts lines whose vertical extents mostly overlap into one row: receipts print an
/// item's name at the left and its price at the right of the same row.
fn group_into_rows(lines: Vec<Vec<RotatedRect>>) -> Vec<Row> {
    let extent = |line: &[RotatedRect]| {
        let corners = line.iter().flat_map(|word| word.corners());
        corners.fold(
            Extent {
                top: f32::MAX,
                bottom: f32::MIN,
                left: f32::MAX,
            },
            |e, p| Extent {
                top: e.top.min(p.y),
                bottom: e.bottom.max(p.y),
                left: e.left.min(p.x),
            },
        )
    };
    let lines = lines
        .into_iter()
        .filter(|line| !line.is_empty())
        .map(|line| (extent(&line), line))
        .collect();
    into_rows(lines)
        .into_iter()
        .map(|(_, lines)| Row { lines })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rten_imageproc::{PointF, Vec2};

    fn word(left: f32, top: f32, width: f32, height: f32) -> RotatedRect {
        let center = PointF::from_yx(top + height / 2.0, left + width / 2.0);
        RotatedRect::new(center, Vec2::from_yx(-1.0, 0.0), width, height)
    }

    #[test]
    fn lines_side_by_side_make_one_row() {
        let lines = vec![
            vec![word(400.0, 102.0, 80.0, 20.0)], // a price, slightly lower
            vec![
                word(20.0, 100.0, 90.0, 22.0),
                word(120.0, 100.0, 60.0, 22.0),
            ],
            vec![word(20.0, 140.0, 120.0, 22.0)],
            vec![word(20.0, 40.0, 200.0, 30.0)],
        ];
        let rows = group_into_rows(lines);
        let lefts: Vec<Vec<f32>> = rows
            .iter()
            .map(|r| {
                r.lines
                    .iter()
                    .map(|l| l[0].corners()[0].x.min(l[0].corners()[2].x))
                    .collect()
            })
            .collect();
        assert_eq!(rows.len(), 3, "{lefts:?}");
        assert_eq!(rows[1].lines.len(), 2);
        assert!(lefts[1][0] < lefts[1][1], "left to right: {lefts:?}");
        assert_eq!(rows[2].lines.len(), 1);
    }
}
