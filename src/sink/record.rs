//! The records every sink delivers: one per frame, a result or an error.
//! The JSON shape is documented in docs/output.md.

use crate::frame::FrameMeta;
use crate::interpret::Interpretation;
use crate::model::Task;
use crate::source::{CameraState, CameraStatus};
use serde::Serialize;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// This process's run id: the start time in milliseconds since 1970 and the process id, both
/// in hexadecimal (`18f3a2b4c5d-1a2b`). It changes at every start, so `(device, camera, run,
/// seq)` names a record even when `seq` starts again from 0 (no `state_dir`); ids of later runs
/// sort after earlier ones.
pub fn run_id() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("{millis:x}-{:x}", std::process::id())
    })
}

/// Where a record's frame came from.
#[derive(Debug, Clone, Serialize)]
pub struct FrameInfo {
    /// The run that produced the record ([`run_id`]).
    pub run: String,
    pub seq: u64,
    pub source: String,
    pub camera: String,
    /// Capture time, RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// The image file, when the frame was read from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
}

impl FrameInfo {
    pub fn from_meta(meta: &FrameMeta) -> Self {
        FrameInfo {
            run: run_id().to_string(),
            seq: meta.seq,
            source: meta.source.clone(),
            camera: meta.camera.clone(),
            ts: humantime::format_rfc3339_millis(meta.captured_at).to_string(),
            input: meta.path.as_ref().map(|p| p.display().to_string()),
        }
    }
}

/// Milliseconds spent in each stage for one frame.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub pre: f64,
    pub infer: f64,
    pub post: f64,
}

/// A processed frame.
#[derive(Debug, Clone, Serialize)]
pub struct ResultRecord {
    #[serde(flatten)]
    pub frame: FrameInfo,
    pub model: String,
    /// The backend that ran the model (with `backend.fallback`, the one that loaded).
    pub backend: &'static str,
    pub task: Task,
    #[serde(flatten)]
    pub result: Interpretation,
    pub latency_ms: Latency,
}

/// What went wrong with a frame, and in which stage.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorDetail {
    /// `source`, `preprocess`, `infer` or `interpret`.
    pub stage: &'static str,
    pub message: String,
}

/// A frame that produced no result.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorRecord {
    #[serde(flatten)]
    pub frame: FrameInfo,
    pub model: String,
    pub error: ErrorDetail,
}

/// One line of output.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Record {
    Result(ResultRecord),
    Error(ErrorRecord),
}

impl Record {
    pub fn frame(&self) -> &FrameInfo {
        match self {
            Record::Result(r) => &r.frame,
            Record::Error(e) => &e.frame,
        }
    }

    pub fn frame_mut(&mut self) -> &mut FrameInfo {
        match self {
            Record::Result(r) => &mut r.frame,
            Record::Error(e) => &mut e.frame,
        }
    }
}

/// A camera's availability change (not a frame): `{"camera":..,"status":"offline",..}`.
#[derive(Debug, Clone, Serialize)]
pub struct CameraStatusRecord {
    pub camera: String,
    pub camera_index: usize,
    pub status: CameraState,
    /// Online: the device and what was negotiated. Offline: why.
    pub detail: String,
    /// Online again after an outage: how long the camera was away.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_ms: Option<u64>,
    pub ts: String,
}

impl From<&CameraStatus> for CameraStatusRecord {
    fn from(status: &CameraStatus) -> Self {
        CameraStatusRecord {
            camera: status.camera.clone(),
            camera_index: status.index,
            status: status.state,
            detail: status.detail.clone(),
            offline_ms: status.offline_ms,
            ts: humantime::format_rfc3339_millis(status.at).to_string(),
        }
    }
}
