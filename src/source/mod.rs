//! Frame sources: V4L2 cameras, image files, image directories, a synthetic test pattern.
//!
//! A source yields frames until it ends. A frame it cannot read is yielded as a
//! [`FrameError`] carrying the frame's metadata, so the pipeline emits an error record for it
//! and goes on.

mod files;
mod pattern;
pub mod v4l2;

pub use files::{ImageDirConfig, ImageDirSource, ImageFileConfig, ImageListSource};
pub use pattern::{PatternConfig, PatternSource};
pub use v4l2::{V4l2Config, V4l2Source};

use crate::config_parse as config;
use crate::frame::{Frame, FrameMeta};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

/// Why a source could not start, or could not produce one frame.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a readable PNG, JPEG or BMP image: {message}")]
    NotAnImage { path: PathBuf, message: String },
    #[error("{path} holds no PNG, JPEG or BMP images")]
    EmptyDirectory { path: PathBuf },
    #[error("invalid source configuration: {0}")]
    Config(String),
}

/// A frame the source failed to produce, with what is known about it.
#[derive(Debug)]
pub struct FrameError {
    pub meta: FrameMeta,
    pub error: SourceError,
}

/// A frame, or what went wrong producing it.
pub type FrameResult = Result<Frame, Box<FrameError>>;

/// Whether a camera is delivering frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraState {
    Online,
    Offline,
}

/// A camera came online (with what it negotiated) or went offline (with why).
#[derive(Debug, Clone)]
pub struct CameraStatus {
    pub camera: String,
    /// The camera's position in the configuration (ReID models take it as the camera index).
    pub index: usize,
    pub state: CameraState,
    /// Online: the device, format, size and rate in use. Offline: the reason.
    pub detail: String,
    /// Online after an outage: how long the camera was away.
    pub offline_ms: Option<u64>,
    pub at: SystemTime,
}

/// What a source yields.
#[derive(Debug)]
pub enum SourceEvent {
    Frame(FrameResult),
    Camera(CameraStatus),
}

/// Produces frames. `None` ends the stream.
pub trait FrameSource: Send {
    /// A description for logs and result records (a path, a device).
    fn describe(&self) -> String;
    fn next_frame(&mut self) -> Option<FrameResult>;

    /// The next frame or camera status change; `None` when the source has ended or `stop`
    /// is set. Sources that can wait long for a frame (cameras) watch `stop` while waiting.
    fn next_event(&mut self, stop: &AtomicBool) -> Option<SourceEvent> {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        self.next_frame().map(SourceEvent::Frame)
    }

    /// Takes back the pixels of a frame the pipeline has finished with, so that a later frame
    /// is read into that memory instead of a new allocation (a 1080p frame is 4 MB). Sources
    /// that copy frames (cameras, replays, patterns) keep a few; the rest drop it.
    fn recycle(&mut self, _data: Vec<u8>) {}
}

/// The camera id used when the configuration names none.
pub fn default_camera() -> String {
    "cam0".to_string()
}

/// `[source]`: where frames come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "toml::Table")]
pub enum SourceConfig {
    /// One image file, once.
    ImageFile(ImageFileConfig),
    /// The images of a directory in file-name order, optionally looping.
    ImageDir(ImageDirConfig),
    /// A generated colour-bar test pattern.
    Pattern(PatternConfig),
    /// V4L2 cameras.
    V4l2(V4l2Config),
}

impl TryFrom<toml::Table> for SourceConfig {
    type Error = String;

    fn try_from(mut table: toml::Table) -> Result<Self, String> {
        match config::take_kind("source", &mut table)?.as_str() {
            "image-file" => Ok(SourceConfig::ImageFile(config::parse_section(
                "source", table,
            )?)),
            "image-dir" => Ok(SourceConfig::ImageDir(config::parse_section(
                "source", table,
            )?)),
            "pattern" => Ok(SourceConfig::Pattern(config::parse_section(
                "source", table,
            )?)),
            "v4l2" => {
                let config: V4l2Config = config::parse_section("source", table)?;
                config.validate()?;
                Ok(SourceConfig::V4l2(config))
            }
            other => Err(config::unknown_kind(
                "source",
                other,
                &["image-file", "image-dir", "pattern", "v4l2"],
            )),
        }
    }
}

impl SourceConfig {
    /// Each camera id with the key that sets it (`source.camera`, `source.camera[1].id`).
    pub fn camera_ids(&self) -> Vec<(String, &str)> {
        match self {
            SourceConfig::ImageFile(c) => vec![("source.camera".into(), c.camera.as_str())],
            SourceConfig::ImageDir(c) => vec![("source.camera".into(), c.camera.as_str())],
            SourceConfig::Pattern(c) => vec![("source.camera".into(), c.camera.as_str())],
            SourceConfig::V4l2(c) => c
                .camera
                .iter()
                .enumerate()
                .map(|(i, camera)| (format!("source.camera[{i}].id"), camera.id.as_str()))
                .collect(),
        }
    }

    /// Resolves relative paths against `base` (the configuration file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        match self {
            SourceConfig::ImageFile(c) => c.path = base.join(&c.path),
            SourceConfig::ImageDir(c) => c.path = base.join(&c.path),
            SourceConfig::Pattern(_) | SourceConfig::V4l2(_) => {}
        }
    }
}

/// Opens the configured source.
pub fn open(config: &SourceConfig) -> Result<Box<dyn FrameSource>, SourceError> {
    Ok(match config {
        SourceConfig::ImageFile(c) => Box::new(
            ImageListSource::new(vec![c.path.clone()], c.camera.clone())
                .with_camera_index(c.camera_index),
        ),
        SourceConfig::ImageDir(c) => Box::new(ImageDirSource::open(c)?),
        SourceConfig::Pattern(c) => Box::new(PatternSource::new(c)?),
        SourceConfig::V4l2(c) => Box::new(V4l2Source::open(c)?),
    })
}

/// Sleeps so that successive frames are `1 / fps` apart; no pacing when `fps` is 0.
#[derive(Debug)]
struct Pacer {
    period: Option<std::time::Duration>,
    next: Option<std::time::Instant>,
}

impl Pacer {
    fn new(fps: f64) -> Result<Self, SourceError> {
        if !(fps.is_finite() && fps >= 0.0) {
            return Err(SourceError::Config(format!(
                "fps must be 0 (unpaced) or positive, got {fps}"
            )));
        }
        let period = (fps > 0.0).then(|| std::time::Duration::from_secs_f64(1.0 / fps));
        Ok(Pacer { period, next: None })
    }

    fn wait(&mut self) {
        let Some(period) = self.period else { return };
        let now = std::time::Instant::now();
        if let Some(next) = self.next {
            if next > now {
                std::thread::sleep(next - now);
            }
        }
        self.next = Some(self.next.map_or(now, |n| n.max(now)) + period);
    }
}
