//! V4L2 cameras (`kind = "v4l2"`): USB (UVC) webcams, MIPI CSI cameras behind an ISP, and
//! anything else with a Video4Linux capture node, single- or multi-planar.
//!
//! Each camera runs its own capture thread ([`capture`]) that keeps the driver's queue
//! drained and hands the newest frame to a [`hub`], from which the pipeline takes frames
//! camera by camera. A camera that vanishes or stalls is closed and reopened with backoff;
//! the changes reach the sinks as [`CameraStatus`](crate::source::CameraStatus) events.
//!
//! The `v4l` crate opens the device and owns its file descriptor; format negotiation and
//! streaming use our own ioctls ([`raw`]), because `v4l` 0.14 has no multi-planar support
//! and its mmap stream panics in `Drop` on some errors.

mod capture;
mod clock;
mod config;
mod device;
mod formats;
mod hub;
mod policy;
pub mod probe;
mod raw;
mod stream;

pub use capture::Counters;
pub use config::{CameraConfig, V4l2Config};
pub use device::{resolve, CameraError};
pub use formats::CameraFormat;
pub use policy::PolicyKind;

use super::{FrameResult, FrameSource, SourceError, SourceEvent};
use hub::{Hub, HubItem};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a waiting [`V4l2Source::next_event`] looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

/// A camera's counters, by id.
#[derive(Debug, Clone)]
pub struct CameraCounters {
    pub camera: String,
    pub counters: Arc<Counters>,
}

pub struct V4l2Source {
    hub: Arc<Hub>,
    cameras: Vec<CameraCounters>,
    threads: Vec<JoinHandle<()>>,
    description: String,
}

impl V4l2Source {
    /// Starts one capture thread per camera. Cameras that cannot be opened yet are retried in
    /// the background (reported offline), so a missing camera does not stop the others.
    pub fn open(config: &V4l2Config) -> Result<Self, SourceError> {
        config.validate().map_err(SourceError::Config)?;
        let hub = Arc::new(Hub::new(config.camera.len()));
        let mut cameras = Vec::new();
        let mut threads = Vec::new();
        for (index, camera) in config.camera.iter().enumerate() {
            let counters = Arc::new(Counters::default());
            cameras.push(CameraCounters {
                camera: camera.id.clone(),
                counters: counters.clone(),
            });
            let worker = capture::Worker::new(index, camera.clone(), hub.clone(), counters);
            let thread = std::thread::Builder::new()
                .name(format!("capture-{}", camera.id))
                .spawn(move || worker.run())
                .map_err(|e| SourceError::Config(format!("cannot start a capture thread: {e}")))?;
            threads.push(thread);
        }
        let description = config
            .camera
            .iter()
            .map(|c| format!("{}={}", c.id, c.device))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(V4l2Source {
            hub,
            cameras,
            threads,
            description: format!("v4l2 [{description}]"),
        })
    }

    pub fn counters(&self) -> &[CameraCounters] {
        &self.cameras
    }

    /// Frames of camera `index` replaced by a newer one before the pipeline took them.
    pub fn replaced(&self, index: usize) -> u64 {
        self.hub.replaced(index)
    }
}

impl FrameSource for V4l2Source {
    fn describe(&self) -> String {
        self.description.clone()
    }

    /// Blocks until a frame arrives; camera status changes are skipped (use `next_event`).
    fn next_frame(&mut self) -> Option<FrameResult> {
        let never = AtomicBool::new(false);
        loop {
            match self.next_event(&never)? {
                SourceEvent::Frame(frame) => return Some(frame),
                SourceEvent::Camera(_) => continue,
            }
        }
    }

    fn next_event(&mut self, stop: &AtomicBool) -> Option<SourceEvent> {
        while !stop.load(Ordering::Relaxed) {
            match self.hub.take(STOP_POLL) {
                Some(HubItem::Frame(frame)) => return Some(SourceEvent::Frame(Ok(frame))),
                Some(HubItem::Status(status)) => return Some(SourceEvent::Camera(status)),
                None => continue,
            }
        }
        None
    }

    fn recycle(&mut self, data: Vec<u8>) {
        self.hub.recycle(data);
    }
}

impl Drop for V4l2Source {
    fn drop(&mut self) {
        self.hub.close();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                log::warn!("a capture thread ended with a panic");
            }
        }
    }
}
