//! What the live view shows: each camera's latest frame and what was found in it. The loop
//! pays nothing for it while nobody looks: the reader copies a frame only when a snapshot
//! was asked for since its last copy (one atomic load per frame otherwise), and the
//! collector keeps the records of the last few frames (a clone of each record). Decoding,
//! drawing and encoding the JPEG happen on the page's thread, for the one who asked.

use crate::frame::Frame;
use crate::model::ColorOrder;
use crate::sink::Record;
use crate::sync::lock;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How many frames' records are kept per camera, to pair a copied frame with its own.
const KEEP_RECORDS: usize = 8;
/// JPEG quality of the snapshots: boxes and captions stay sharp, a 720p frame is ~100 kB.
const JPEG_QUALITY: u8 = 80;
/// Frames wider than this are shrunk for the page once drawn on.
const MAX_WIDTH: u32 = 1280;

/// The live view's shared state: written by the loop, read by the page.
#[derive(Default)]
pub struct LiveView {
    /// Some camera wants its next frame copied: the reader's only check when false.
    wanted: AtomicBool,
    cameras: Mutex<BTreeMap<String, CameraView>>,
    arrived: Condvar,
}

#[derive(Default)]
struct CameraView {
    /// A snapshot was asked for: the reader copies this camera's next frame.
    want: bool,
    /// The last copied frame (by its source sequence number).
    frame: Option<Arc<Frame>>,
    /// The records of the last frames, by source sequence number.
    records: VecDeque<(u64, Vec<Record>)>,
    frames: u64,
    last_at: Option<Instant>,
    /// Mean time between frames (exponentially weighted), seconds.
    interval: Option<f64>,
}

impl CameraView {
    /// Frames per second lately, to a tenth.
    fn fps(&self) -> Option<f64> {
        (self.interval)
            .filter(|i| *i > 0.0)
            .map(|i| (10.0 / i).round() / 10.0)
    }
}

/// One camera as the page lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CameraSummary {
    pub camera: String,
    /// Frames that reached the sink since the start.
    pub frames: u64,
    /// Frames per second lately.
    pub fps: Option<f64>,
    /// The latest frame's records, as the sinks get them.
    pub latest: Vec<serde_json::Value>,
}

/// Why there is no snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("no camera {0:?}")]
    UnknownCamera(String),
    #[error("no frame from camera {0:?} yet")]
    NoFrame(String),
    #[error("cannot draw the frame: {0}")]
    Draw(String),
}

impl LiveView {
    /// A view of `cameras` (those of the configuration), each listed before its first frame.
    pub fn new(cameras: &[&str]) -> Self {
        let view = LiveView::default();
        {
            let mut map = lock(&view.cameras);
            for camera in cameras {
                map.insert(camera.to_string(), CameraView::default());
            }
        }
        view
    }

    /// The reader's hook: copies `frame` when its camera's snapshot was asked for.
    pub fn offer(&self, frame: &Frame) {
        if !self.wanted.load(Ordering::Relaxed) {
            return;
        }
        let mut cameras = lock(&self.cameras);
        let view = cameras.entry(frame.meta.camera.clone()).or_default();
        if view.want {
            view.want = false;
            view.frame = Some(Arc::new(frame.clone()));
        }
        let still = cameras.values().any(|v| v.want);
        self.wanted.store(still, Ordering::Relaxed);
        drop(cameras);
        self.arrived.notify_all();
    }

    /// The collector's hook: the records of the frame with `source_seq`, in delivery order.
    pub fn records(&self, camera: &str, source_seq: u64, records: &[Record]) {
        let now = Instant::now();
        let mut cameras = lock(&self.cameras);
        let view = cameras.entry(camera.to_string()).or_default();
        view.frames += 1;
        if let Some(last) = view.last_at {
            let seconds = now.duration_since(last).as_secs_f64();
            view.interval = Some(match view.interval {
                Some(mean) => 0.9 * mean + 0.1 * seconds,
                None => seconds,
            });
        }
        view.last_at = Some(now);
        view.records.push_back((source_seq, records.to_vec()));
        while view.records.len() > KEEP_RECORDS {
            view.records.pop_front();
        }
        drop(cameras);
        self.arrived.notify_all();
    }

    /// Frames per second over every camera.
    pub fn fps(&self) -> f64 {
        lock(&self.cameras)
            .values()
            .filter_map(CameraView::fps)
            .sum()
    }

    /// Every camera with its latest records.
    pub fn cameras(&self) -> Vec<CameraSummary> {
        let cameras = lock(&self.cameras);
        cameras
            .iter()
            .map(|(name, view)| CameraSummary {
                camera: name.clone(),
                frames: view.frames,
                fps: view.fps(),
                latest: view
                    .records
                    .back()
                    .map(|(_, records)| {
                        records
                            .iter()
                            .filter_map(|r| serde_json::to_value(r).ok())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Whether the page knows `camera`.
    pub fn has(&self, camera: &str) -> bool {
        lock(&self.cameras).contains_key(camera)
    }

    /// A JPEG of `camera`'s next frame with what was found in it drawn on; waits up to `wait`
    /// for it, then takes the last frame copied (a camera that went quiet still shows).
    pub fn snapshot(&self, camera: &str, wait: Duration) -> Result<Vec<u8>, SnapshotError> {
        let (frame, records) = self.next_frame(camera, wait)?;
        draw(&frame, &records)
    }

    fn next_frame(
        &self,
        camera: &str,
        wait: Duration,
    ) -> Result<(Arc<Frame>, Vec<Record>), SnapshotError> {
        let deadline = Instant::now() + wait;
        let mut cameras = lock(&self.cameras);
        let view = cameras
            .get_mut(camera)
            .ok_or_else(|| SnapshotError::UnknownCamera(camera.to_string()))?;
        let before = view.frame.as_ref().map(|f| f.meta.seq);
        view.want = true;
        self.wanted.store(true, Ordering::Relaxed);
        loop {
            let view = cameras.get(camera);
            let fresh = view.and_then(|v| {
                let frame = v.frame.as_ref().filter(|f| Some(f.meta.seq) != before)?;
                let records = v.records.iter().find(|(seq, _)| *seq == frame.meta.seq)?;
                Some((Arc::clone(frame), records.1.clone()))
            });
            if let Some(found) = fresh {
                return Ok(found);
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            cameras = self
                .arrived
                .wait_timeout(cameras, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        // Nothing new in time: the last frame copied, with its records if they are still kept
        // (or without: a frame still in the model when the wait ended).
        let view = cameras
            .get(camera)
            .ok_or_else(|| SnapshotError::UnknownCamera(camera.to_string()))?;
        let frame = view
            .frame
            .clone()
            .ok_or_else(|| SnapshotError::NoFrame(camera.to_string()))?;
        let records = (view.records.iter())
            .find(|(seq, _)| *seq == frame.meta.seq)
            .map(|(_, records)| records.clone())
            .unwrap_or_default();
        Ok((frame, records))
    }
}

/// The frame as RGB with each result drawn on it, as a JPEG no wider than [`MAX_WIDTH`].
fn draw(frame: &Frame, records: &[Record]) -> Result<Vec<u8>, SnapshotError> {
    let raster = crate::preprocess::decode(frame, ColorOrder::Rgb)
        .map_err(|e| SnapshotError::Draw(e.to_string()))?;
    let (w, h) = (raster.width, raster.height);
    let rgb: Vec<u8> = match raster.channels {
        1 => raster.data.iter().flat_map(|&g| [g, g, g]).collect(),
        _ => raster.data,
    };
    let mut picture = image::RgbImage::from_raw(w, h, rgb)
        .ok_or_else(|| SnapshotError::Draw("the frame's size does not match its pixels".into()))?;
    for record in records {
        if let Record::Result(result) = record {
            crate::sink::annotate(&mut picture, &result.result, 1);
        }
    }
    if w > MAX_WIDTH {
        let height = (h as f64 * MAX_WIDTH as f64 / w as f64).round().max(1.0) as u32;
        picture = image::imageops::resize(
            &picture,
            MAX_WIDTH,
            height,
            image::imageops::FilterType::Triangle,
        );
    }
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
    picture
        .write_with_encoder(encoder)
        .map_err(|e| SnapshotError::Draw(e.to_string()))?;
    Ok(out)
}
