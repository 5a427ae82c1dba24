//! `edgevit bench --frames N --detector DIR --model DIR`: what a scene costs per stage, for
//! several numbers of objects in the frame.
//!
//! Each frame goes through decode, the detector (its preprocessing, inference and decoding),
//! the tracker, and the second model's look at each of K objects (crop, preprocessing,
//! inference). The K objects are boxes placed on a grid, so that the second model's cost does
//! not depend on what the detector happens to find in a synthetic frame; the detector runs on
//! the whole frame either way. Figures are medians; nothing here asserts a speed.

use super::frames::synthetic_frame;
use super::pipeline::BenchError;
use crate::backend::BackendConfig;
use crate::detect::{Decoder, DetectOverrides};
use crate::frame::PixelFormat;
use crate::interpret::PixelBox;
use crate::model::Task;
use crate::numbers::{percentile, round3};
use crate::pipeline::LoadedModel;
use crate::preprocess::{Preprocess, Preprocessor};
use crate::track::{Seen, Tracker, TrackerConfig};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What to measure.
#[derive(Debug, Clone)]
pub struct SceneBench {
    pub detector: PathBuf,
    pub model: PathBuf,
    pub backend: BackendConfig,
    pub frames: usize,
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    /// The numbers of objects to measure (each a row).
    pub objects: Vec<usize>,
}

/// One number of objects: each stage's median over the frames, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct SceneRow {
    pub objects: usize,
    pub decode_ms: f64,
    pub detect_ms: f64,
    pub track_ms: f64,
    /// The second model's looks at every object of the frame.
    pub looks_ms: f64,
    /// A frame in which every object is looked at.
    pub frame_ms: f64,
    /// A frame with each object looked at once every `tracker.every_frames` (10) frames.
    pub frame_every_10_ms: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct SceneReport {
    pub detector: String,
    pub model: String,
    pub backend: &'static str,
    pub width: u32,
    pub height: u32,
    pub frames: usize,
    pub rows: Vec<SceneRow>,
}

/// `count` boxes of a standing person's shape on a grid over a `width x height` frame.
fn grid(count: usize, width: u32, height: u32) -> Vec<PixelBox> {
    let columns = (count as f64).sqrt().ceil().max(1.0) as u32;
    let rows = (count as u32).div_ceil(columns).max(1);
    let (cell_w, cell_h) = (width / columns, height / rows);
    (0..count as u32)
        .map(|i| {
            let (x, y) = ((i % columns) * cell_w, (i / columns) * cell_h);
            let w = (cell_w / 2).max(2).min(cell_h / 4 + 1);
            PixelBox {
                x0: x + cell_w / 4,
                y0: y + cell_h / 8,
                x1: x + cell_w / 4 + w,
                y1: y + cell_h / 8 + (cell_h * 3 / 4).max(2),
            }
        })
        .collect()
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn median(mut values: Vec<f64>) -> f64 {
    round3(percentile(&mut values, 0.5))
}

/// Measures every row; `progress` is told each frame done.
pub fn run(
    setup: &SceneBench,
    stop: &AtomicBool,
    mut progress: impl FnMut(usize),
) -> Result<SceneReport, BenchError> {
    let mut detector = LoadedModel::load(&setup.detector, &setup.backend)?;
    let mut model = LoadedModel::load(&setup.model, &setup.backend)?;
    if detector.package.manifest.task != Task::Detect {
        return Err(BenchError::Setup(format!(
            "--detector {}: not a detector package (task = \"detect\")",
            setup.detector.display()
        )));
    }
    let decoder = Decoder::new(&detector.package, &DetectOverrides::default())
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let kept = detector.package.manifest.outputs.per_frame_names();
    detector
        .backend
        .keep_outputs(&kept)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let kept = model.package.manifest.outputs.per_frame_names();
    model
        .backend
        .keep_outputs(&kept)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let mut detect_pre = Preprocessor::new(&detector.package.manifest.input);
    let mut look_pre = Preprocessor::new(&model.package.manifest.input);
    let frame =
        synthetic_frame(setup.width, setup.height, setup.format).map_err(BenchError::Setup)?;
    let mut rows = Vec::new();
    let mut done = 0;
    for &count in &setup.objects {
        let boxes = grid(count, setup.width, setup.height);
        let mut tracker = Tracker::new(TrackerConfig::default());
        let mut next = 0;
        let mut stages: [Vec<f64>; 4] = Default::default();
        for _ in 0..setup.frames {
            if stop.load(Ordering::SeqCst) {
                return Err(BenchError::Interrupted);
            }
            let start = Instant::now();
            let raster = detect_pre
                .decode(&frame)
                .map_err(|e| BenchError::Setup(e.to_string()))?;
            stages[0].push(ms(start));
            let start = Instant::now();
            let prepared = detect_pre
                .prepare_raster(&raster)
                .map_err(|e| BenchError::Setup(e.to_string()))?;
            let outputs = detector
                .backend
                .run(&prepared.tensor)
                .map_err(|e| BenchError::Setup(e.to_string()))?;
            decoder
                .objects(&outputs, &prepared.placement, (raster.width, raster.height))
                .map_err(|e| BenchError::Setup(e.to_string()))?;
            stages[1].push(ms(start));
            let start = Instant::now();
            let seen: Vec<Seen> = boxes
                .iter()
                .map(|b| Seen {
                    bounds: [b.x0 as f32, b.y0 as f32, b.x1 as f32, b.y1 as f32],
                    score: 0.9,
                    class: 0,
                })
                .collect();
            tracker.step(&seen, &mut || {
                next += 1;
                next
            });
            stages[2].push(ms(start));
            let start = Instant::now();
            for b in &boxes {
                let crop = raster.crop(b.x0, b.y0, b.x1, b.y1);
                let prepared = look_pre
                    .prepare_raster(&crop)
                    .map_err(|e| BenchError::Setup(e.to_string()))?;
                model
                    .backend
                    .run(&prepared.tensor)
                    .map_err(|e| BenchError::Setup(e.to_string()))?;
            }
            stages[3].push(ms(start));
            done += 1;
            progress(done);
        }
        let [decode, detect, track, looks] = stages.map(median);
        rows.push(SceneRow {
            objects: count,
            decode_ms: decode,
            detect_ms: detect,
            track_ms: track,
            looks_ms: looks,
            frame_ms: round3(decode + detect + track + looks),
            frame_every_10_ms: round3(decode + detect + track + looks / 10.0),
        });
    }
    Ok(SceneReport {
        detector: detector.package.name().to_string(),
        model: model.package.name().to_string(),
        backend: model.backend.name(),
        width: setup.width,
        height: setup.height,
        frames: setup.frames,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_holds_the_objects_inside_the_frame() {
        for count in [0, 1, 5, 20] {
            let boxes = grid(count, 1920, 1080);
            assert_eq!(boxes.len(), count);
            assert!(boxes
                .iter()
                .all(|b| b.x0 < b.x1 && b.y0 < b.y1 && b.x1 <= 1920 && b.y1 <= 1080));
        }
    }
}
