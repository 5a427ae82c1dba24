//! `[source] kind = "v4l2"`: one or more cameras, each with its own `[[source.camera]]` table.

use super::formats::CameraFormat;
use super::policy::{FramePolicy, PolicyKind};
use serde::Deserialize;
use std::time::Duration;

/// `kind = "v4l2"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct V4l2Config {
    /// The cameras, in order: a camera's position is its index (fed to ReID models).
    pub camera: Vec<CameraConfig>,
}

/// One camera (`[[source.camera]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// Camera id reported with the results (unique within the source).
    pub id: String,
    /// A device path (`/dev/video0`, `/dev/v4l/by-id/...`) or a name: the first capture
    /// device whose card name (as `edgevit probe` lists it) contains it, ignoring case.
    pub device: String,
    /// Requested size; the driver may choose another (the one it returns is used).
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    /// Requested frame rate; 0 keeps the driver's.
    #[serde(default = "default_fps")]
    pub fps: u32,
    /// Pixel formats to try, in order (`YUYV`, `NV12`, `NM12`, `GREY`, `RGB3`, `BGR3`,
    /// `MJPG`); empty tries every supported format the device offers, raw ones first.
    #[serde(default)]
    pub formats: Vec<String>,
    /// Driver buffers (more absorbs jitter, fewer keeps latency low).
    #[serde(default = "default_buffers")]
    pub buffers: u32,
    /// A stream that yields no frame for this long is closed and reopened.
    #[serde(default = "default_read_timeout_ms")]
    pub read_timeout_ms: u64,
    /// Reopen backoff: first wait, doubling up to the maximum.
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// Which frames go to the model: `latest`, `every-nth`, `max-fps`.
    #[serde(default)]
    pub policy: PolicyKind,
    /// For `every-nth`: offer one frame in this many.
    #[serde(default = "default_every_nth")]
    pub every_nth: u32,
    /// For `max-fps`: offer at most this many frames a second.
    #[serde(default)]
    pub max_fps: f64,
}

fn default_width() -> u32 {
    640
}
fn default_height() -> u32 {
    480
}
fn default_fps() -> u32 {
    30
}
fn default_buffers() -> u32 {
    3
}
fn default_read_timeout_ms() -> u64 {
    2000
}
fn default_reconnect_min_ms() -> u64 {
    500
}
fn default_reconnect_max_ms() -> u64 {
    30_000
}
fn default_every_nth() -> u32 {
    1
}

impl V4l2Config {
    /// Checks what serde cannot: at least one camera, unique ids, sane numbers.
    pub fn validate(&self) -> Result<(), String> {
        if self.camera.is_empty() {
            return Err("`source.camera`: at least one `[[source.camera]]` is needed".into());
        }
        for (i, camera) in self.camera.iter().enumerate() {
            let at = |key: &str| format!("`source.camera[{i}].{key}`");
            if camera.id.is_empty() {
                return Err(format!("{}: must not be empty", at("id")));
            }
            if self.camera[..i].iter().any(|c| c.id == camera.id) {
                return Err(format!("{}: {:?} is used twice", at("id"), camera.id));
            }
            if camera.width == 0 || camera.height == 0 {
                return Err(format!(
                    "{}: width and height must be positive",
                    at("width")
                ));
            }
            if camera.read_timeout_ms == 0 {
                return Err(format!("{}: must be positive", at("read_timeout_ms")));
            }
            camera
                .preferred_formats()
                .map_err(|e| format!("{}: {e}", at("formats")))?;
            camera
                .frame_policy()
                .map_err(|e| format!("{}: {e}", at("policy")))?;
        }
        Ok(())
    }
}

impl CameraConfig {
    /// A camera with every optional setting at its default.
    pub fn new(id: &str, device: &str) -> Self {
        CameraConfig {
            id: id.to_string(),
            device: device.to_string(),
            width: default_width(),
            height: default_height(),
            fps: default_fps(),
            formats: Vec::new(),
            buffers: default_buffers(),
            read_timeout_ms: default_read_timeout_ms(),
            reconnect_min_ms: default_reconnect_min_ms(),
            reconnect_max_ms: default_reconnect_max_ms(),
            policy: PolicyKind::default(),
            every_nth: default_every_nth(),
            max_fps: 0.0,
        }
    }

    /// The formats to try, in order.
    pub fn preferred_formats(&self) -> Result<Vec<CameraFormat>, String> {
        if self.formats.is_empty() {
            return Ok(super::formats::PREFERENCE.to_vec());
        }
        self.formats
            .iter()
            .map(|name| {
                CameraFormat::parse(name).ok_or_else(|| {
                    format!("unsupported pixel format {name:?} (supported: YUYV, NV12, NM12, GREY, RGB3, BGR3, MJPG)")
                })
            })
            .collect()
    }

    pub fn frame_policy(&self) -> Result<FramePolicy, String> {
        FramePolicy::new(self.policy, self.every_nth, self.max_fps)
    }

    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ms)
    }
}
