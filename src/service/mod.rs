//! Running as a systemd service (`Type=notify`): `READY=1` once the model is loaded and
//! self-tested and the source and sink are open; `WATCHDOG=1` at half the unit's `WatchdogSec`
//! while the pipeline is alive (see [`crate::pipeline::Health`]: frames flowing, or every
//! camera offline and reconnecting); `STATUS=` with frames, FPS and camera states;
//! `STOPPING=1` on the way out. Nothing happens when systemd did not start us.

pub mod metrics;

pub use metrics::{Metrics, MetricsConfig};

use crate::pipeline::Health;
use sd_notify::NotifyState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often `STATUS=` is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// The thread that talks to systemd's notify socket.
pub struct Notifier {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Notifier {
    /// Says `READY=1` and starts the watchdog and status thread, when `NOTIFY_SOCKET` is set.
    pub fn start(health: Arc<Health>) -> Option<Notifier> {
        std::env::var_os("NOTIFY_SOCKET")?;
        if let Err(e) = sd_notify::notify(&[NotifyState::Ready]) {
            log::warn!("cannot tell systemd we are ready: {e}");
        }
        let watchdog = sd_notify::watchdog_enabled();
        if let Some(interval) = watchdog {
            log::info!(
                "systemd watchdog: {:.1} s; pinged while frames flow or all cameras reconnect",
                interval.as_secs_f64()
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("systemd-notify".into())
                .spawn(move || run(&health, watchdog, &stop))
                .ok()
        };
        Some(Notifier { stop, thread })
    }

    /// Ends the thread, then says `STOPPING=1` (so nothing follows it).
    pub fn stopping(mut self) {
        self.end();
        let _ = sd_notify::notify(&[NotifyState::Stopping]);
    }

    fn end(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.end();
    }
}

fn run(health: &Health, watchdog: Option<Duration>, stop: &AtomicBool) {
    // Ping at half the watchdog interval, as sd_watchdog_enabled(3) advises.
    let ping_every = watchdog.map(|w| w / 2);
    let now = Instant::now();
    let (mut next_ping, mut next_status) = (now, now);
    let (mut last_frames, mut last_at) = (0, now);
    let mut last_cameras = (Vec::new(), Vec::new());
    let mut warned = false;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if let (Some(window), Some(every)) = (watchdog, ping_every) {
            if now >= next_ping {
                next_ping = now + every;
                let snapshot = health.snapshot();
                if snapshot.alive(window) {
                    let _ = sd_notify::notify(&[NotifyState::Watchdog]);
                    warned = false;
                } else if !warned {
                    log::error!(
                        "no frame for {:.1} s with frames expected: not pinging the watchdog; systemd will restart edgevit",
                        snapshot.since_last_frame.as_secs_f64()
                    );
                    warned = true;
                }
            }
        }
        let snapshot = health.snapshot();
        let cameras = (snapshot.online.clone(), snapshot.offline.clone());
        // Refreshed every few seconds, and at once when a camera comes or goes.
        if now >= next_status || cameras != last_cameras {
            last_cameras = cameras;
            let elapsed = now.duration_since(last_at).as_secs_f64().max(1e-3);
            let fps = (snapshot.frames - last_frames) as f64 / elapsed;
            let _ = sd_notify::notify(&[NotifyState::Status(&snapshot.status(fps))]);
            (last_frames, last_at) = (snapshot.frames, now);
            next_status = now + STATUS_EVERY;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
