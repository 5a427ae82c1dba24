//! One capture thread per camera: open, stream, hand frames to the hub, and when the device
//! vanishes or stalls, close it and open it again with backoff, reporting each change.

use super::clock;
use super::config::CameraConfig;
use super::device::Camera;
use super::formats;
use super::hub::Hub;
use crate::error::chain;
use crate::frame::{Frame, FrameMeta};
use crate::source::{CameraState, CameraStatus};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How long one wait for a frame may block, so that a stop request is seen promptly.
const WAIT_SLICE: Duration = Duration::from_millis(200);

/// Frames a camera lost, by cause (all cumulative since start).
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames dequeued from the driver.
    pub captured: AtomicU64,
    /// Gaps in the driver's sequence numbers: frames the driver dropped (no free buffer).
    pub driver_dropped: AtomicU64,
    /// Buffers flagged as damaged or too short for the format.
    pub damaged: AtomicU64,
    /// Frames the policy (`every-nth`, `max-fps`) did not offer.
    pub skipped: AtomicU64,
}

/// The state a camera keeps across reopenings.
pub struct Worker {
    pub index: usize,
    pub config: CameraConfig,
    pub hub: Arc<Hub>,
    pub counters: Arc<Counters>,
    /// The next frame's sequence number: continues across reopenings, and counts driver
    /// drops, so a gap in `seq` downstream means frames that were not processed.
    next_seq: u64,
    offline_since: Option<Instant>,
    last_reason: Option<String>,
}

impl Worker {
    pub fn new(index: usize, config: CameraConfig, hub: Arc<Hub>, counters: Arc<Counters>) -> Self {
        Worker {
            index,
            config,
            hub,
            counters,
            next_seq: 0,
            offline_since: None,
            last_reason: None,
        }
    }

    /// Runs until the hub closes. A panic anywhere below (in the `v4l` crate, say) is caught,
    /// reported as the camera going offline, and followed by a reopen.
    pub fn run(mut self) {
        let mut backoff = crate::backoff::Backoff::new(
            Duration::from_millis(self.config.reconnect_min_ms.max(10)),
            Duration::from_millis(self.config.reconnect_max_ms),
        );
        while !self.hub.is_closed() {
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| self.session()));
            let (reason, was_online) = match outcome {
                Ok(ended) => ended,
                Err(panic) => (
                    format!("capture panicked: {}", panic_message(&panic)),
                    false,
                ),
            };
            if self.hub.is_closed() {
                break;
            }
            if was_online {
                backoff.succeeded();
            }
            self.report_offline(reason);
            let wait = backoff.failed(std::time::Instant::now());
            log::info!(
                "camera {}: reopening in {:.1} s",
                self.config.id,
                wait.as_secs_f64()
            );
            if !self.hub.sleep(wait) {
                break;
            }
        }
    }

    /// Opens the camera and streams until it fails; returns why, and whether it had streamed.
    fn session(&mut self) -> (String, bool) {
        let mut camera = match Camera::open(&self.config) {
            Ok(camera) => camera,
            Err(e) => return (chain(&e), false),
        };
        let description = camera.describe();
        log::info!("camera {}: streaming {description}", self.config.id);
        self.report_online(&description);
        let reason = self.stream(&mut camera);
        // Dropping the camera releases its buffers and closes it; nothing in it panics, but
        // `v4l` closes the fd with an `unwrap`: keep a failure there from ending the thread.
        if panic::catch_unwind(AssertUnwindSafe(move || drop(camera))).is_err() {
            log::warn!("camera {}: closing the device failed", self.config.id);
        }
        (reason, true)
    }

    /// Hands frames to the hub until the stream fails or stalls; returns why it ended.
    fn stream(&mut self, camera: &mut Camera) -> String {
        let timeout = self.config.read_timeout();
        let mut policy = match self.config.frame_policy() {
            Ok(policy) => policy,
            Err(e) => return e,
        };
        let mut last_frame = Instant::now();
        let mut last_driver_seq: Option<u32> = None;
        let source = camera.path.display().to_string();
        loop {
            if self.hub.is_closed() {
                return "stopped".to_string();
            }
            let (format, pix) = (camera.format, camera.pix);
            let buffer = match camera.stream.dequeue(WAIT_SLICE.min(timeout)) {
                Ok(buffer) => buffer,
                Err(e) if e.timed_out() => {
                    if last_frame.elapsed() >= timeout {
                        return format!(
                            "no frame for {:.1} s: the stream stalled",
                            timeout.as_secs_f64()
                        );
                    }
                    continue;
                }
                Err(e) if e.device_gone() => return format!("device gone: {}", chain(&e)),
                Err(e) => return chain(&e),
            };
            let now = Instant::now();
            last_frame = now;
            let info = buffer.info;
            self.counters.captured.fetch_add(1, Ordering::Relaxed);
            let gap = last_driver_seq
                .map(|prev| info.sequence.wrapping_sub(prev).saturating_sub(1))
                .unwrap_or(0);
            last_driver_seq = Some(info.sequence);
            if gap > 0 {
                self.counters
                    .driver_dropped
                    .fetch_add(gap.into(), Ordering::Relaxed);
            }
            let seq = self.next_seq + u64::from(gap);
            self.next_seq = seq + 1;
            if buffer.damaged() {
                self.counters.damaged.fetch_add(1, Ordering::Relaxed);
                log::debug!(
                    "camera {}: frame {seq} flagged damaged by the driver",
                    self.config.id
                );
                continue;
            }
            if !policy.admit(now) {
                self.counters.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let packed = formats::pack(format, &pix, &buffer.planes(), self.hub.spare_buffer());
            let captured_at = clock::wall_time(info.timestamp, info.monotonic_timestamp());
            drop(buffer);
            let data = match packed {
                Ok(data) => data,
                Err(e) => {
                    self.counters.damaged.fetch_add(1, Ordering::Relaxed);
                    log::debug!("camera {}: frame {seq}: {}", self.config.id, chain(&e));
                    continue;
                }
            };
            let frame = Frame {
                meta: FrameMeta {
                    seq,
                    captured_at,
                    source: source.clone(),
                    camera: self.config.id.clone(),
                    camera_index: self.index,
                    path: None,
                    width: pix.width,
                    height: pix.height,
                    format: format.pixel_format(),
                },
                data,
            };
            self.hub.offer(self.index, frame);
        }
    }

    fn report_online(&mut self, detail: &str) {
        let offline_ms = self
            .offline_since
            .take()
            .map(|since| since.elapsed().as_millis() as u64);
        self.last_reason = None;
        self.hub.report(CameraStatus {
            camera: self.config.id.clone(),
            index: self.index,
            state: CameraState::Online,
            detail: detail.to_string(),
            offline_ms,
            at: SystemTime::now(),
        });
    }

    /// Reports the camera offline once per distinct reason, so a camera that stays away does
    /// not flood the sinks while it is retried.
    fn report_offline(&mut self, reason: String) {
        self.offline_since.get_or_insert_with(Instant::now);
        if self.last_reason.as_deref() == Some(reason.as_str()) {
            log::debug!("camera {}: still offline: {reason}", self.config.id);
            return;
        }
        log::warn!("camera {}: offline: {reason}", self.config.id);
        self.last_reason = Some(reason.clone());
        self.hub.report(CameraStatus {
            camera: self.config.id.clone(),
            index: self.index,
            state: CameraState::Offline,
            detail: reason,
            offline_ms: None,
            at: SystemTime::now(),
        });
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".to_string())
}
