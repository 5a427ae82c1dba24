//! Whether the pipeline is alive, as systemd's watchdog sees it: frames are flowing, or every
//! camera is offline and reconnecting (which is waiting, not a stall). A camera that is online
//! (or a file source) and has delivered no frame for longer than the watchdog allows is a stall:
//! the pings stop and systemd restarts the service.

use crate::source::CameraState;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the loop reports, read by the notifier thread.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_frame: Option<Instant>,
    frames: u64,
    /// Cameras that reported a state; cameras never heard of count as expected to deliver.
    cameras: BTreeMap<String, CameraState>,
    /// Whether the sink reaches its broker (sinks that have one).
    broker_connected: Option<bool>,
    /// The loop's last look at the trigger while waiting for an edge.
    trigger_wait: Option<Instant>,
}

/// One look at the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub frames: u64,
    pub since_last_frame: Duration,
    pub online: Vec<String>,
    pub offline: Vec<String>,
    /// The sink's broker, for sinks that have one.
    pub broker_connected: Option<bool>,
    /// The loop is waiting for a trigger edge (it turns, but lets no frame through).
    pub waiting_for_trigger: bool,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    pub fn new() -> Self {
        Health {
            started: Instant::now(),
            inner: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        crate::sync::lock(&self.inner)
    }

    /// A frame went through (a result or an error record: the loop is turning).
    pub fn frame(&self) {
        let mut state = self.state();
        state.last_frame = Some(Instant::now());
        state.frames += 1;
    }

    pub fn camera(&self, camera: &str, state: CameraState) {
        self.state().cameras.insert(camera.to_string(), state);
    }

    /// Whether the sink reaches its broker.
    pub fn delivery(&self, connected: bool) {
        self.state().broker_connected = Some(connected);
    }

    /// The loop is waiting for the trigger and still turning.
    pub fn waiting_for_trigger(&self) {
        self.state().trigger_wait = Some(Instant::now());
    }

    pub fn snapshot(&self) -> Snapshot {
        self.snapshot_at(Instant::now())
    }

    fn snapshot_at(&self, now: Instant) -> Snapshot {
        let state = self.state();
        let since = now.duration_since(state.last_frame.unwrap_or(self.started));
        let by = |wanted: CameraState| {
            state
                .cameras
                .iter()
                .filter(|(_, s)| **s == wanted)
                .map(|(c, _)| c.clone())
                .collect()
        };
        Snapshot {
            frames: state.frames,
            since_last_frame: since,
            online: by(CameraState::Online),
            offline: by(CameraState::Offline),
            broker_connected: state.broker_connected,
            // A look within the last second: the loop has not stalled inside the wait.
            waiting_for_trigger: state.trigger_wait.is_some_and(|at| {
                now.saturating_duration_since(at) < Duration::from_secs(1)
                    && state.last_frame.is_none_or(|frame| at > frame)
            }),
        }
    }
}

impl Snapshot {
    /// Alive: a frame within `window`, or cameras that are all offline (reconnecting).
    pub fn alive(&self, window: Duration) -> bool {
        let waiting_for_cameras = !self.offline.is_empty() && self.online.is_empty();
        self.since_last_frame < window || waiting_for_cameras || self.waiting_for_trigger
    }

    /// systemd's `STATUS=` line.
    pub fn status(&self, fps: f64) -> String {
        let mut text = format!("{} frames, {fps:.1} fps", self.frames);
        if !self.online.is_empty() {
            text.push_str(&format!("; online: {}", self.online.join(", ")));
        }
        if !self.offline.is_empty() {
            text.push_str(&format!(
                "; offline (reconnecting): {}",
                self.offline.join(", ")
            ));
        }
        if self.waiting_for_trigger {
            text.push_str("; waiting for the trigger");
        }
        if self.broker_connected == Some(false) {
            text.push_str("; broker unreachable (results spooled)");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_keep_it_alive_and_a_stall_does_not() {
        let health = Health::new();
        let window = Duration::from_secs(10);
        let t0 = Instant::now();
        health.frame();
        assert!(health
            .snapshot_at(t0 + Duration::from_secs(5))
            .alive(window));
        // An online camera (or a file source) that stops delivering: a stall.
        health.camera("door", CameraState::Online);
        assert!(!health
            .snapshot_at(t0 + Duration::from_secs(11))
            .alive(window));
    }

    #[test]
    fn cameras_that_are_all_reconnecting_are_waiting_not_stalled() {
        let health = Health::new();
        let window = Duration::from_secs(10);
        let later = Instant::now() + Duration::from_secs(60);
        health.camera("door", CameraState::Offline);
        health.camera("yard", CameraState::Offline);
        let snapshot = health.snapshot_at(later);
        assert!(snapshot.alive(window));
        assert_eq!(
            snapshot.status(0.0),
            "0 frames, 0.0 fps; offline (reconnecting): door, yard"
        );
        // One back online and silent: that one is stalled.
        health.camera("yard", CameraState::Online);
        assert!(!health.snapshot_at(later).alive(window));
    }
}
