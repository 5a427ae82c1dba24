//! Repeated warnings, counted instead of logged one by one: a looping folder of broken files
//! or a camera sending damaged frames would otherwise write thousands of lines a second.

use std::time::{Duration, Instant};

/// At most `burst` warnings per `window`; the rest are counted and summed up in one line when
/// the window closes (or the run ends).
#[derive(Debug)]
pub struct WarningLimiter {
    window: Duration,
    burst: u32,
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
    latest: Option<String>,
}

impl WarningLimiter {
    pub fn new(window: Duration, burst: u32) -> Self {
        WarningLimiter {
            window,
            burst,
            window_start: None,
            logged: 0,
            suppressed: 0,
            latest: None,
        }
    }

    /// Logs `message`, or counts it when the window's share is used up.
    pub fn warn(&mut self, message: String) {
        for line in self.lines_at(Instant::now(), message) {
            log::warn!("{line}");
        }
    }

    /// Logs the summary of what was counted and not yet reported.
    pub fn finish(&mut self) {
        if let Some(line) = self.summary() {
            log::warn!("{line}");
        }
    }

    /// The lines to log for `message` arriving at `now`.
    fn lines_at(&mut self, now: Instant, message: String) -> Vec<String> {
        let mut lines = Vec::new();
        let start = *self.window_start.get_or_insert(now);
        if now.duration_since(start) >= self.window {
            lines.extend(self.summary());
            self.window_start = Some(now);
            self.logged = 0;
        }
        if self.logged < self.burst {
            self.logged += 1;
            lines.push(message);
        } else {
            self.suppressed += 1;
            self.latest = Some(message);
        }
        lines
    }

    fn summary(&mut self) -> Option<String> {
        if self.suppressed == 0 {
            return None;
        }
        let line = format!(
            "{} more warnings like these in {:.0} s (not logged one by one); the latest: {}",
            self.suppressed,
            self.window.as_secs_f64(),
            self.latest.take().unwrap_or_default()
        );
        self.suppressed = 0;
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_becomes_a_burst_and_one_summary_per_window() {
        let mut limiter = WarningLimiter::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        let mut logged = Vec::new();
        for i in 0..2400 {
            let at = t0 + Duration::from_millis(i / 2);
            logged.extend(limiter.lines_at(at, format!("frame {i}")));
        }
        assert_eq!(logged, ["frame 0", "frame 1", "frame 2"]);
        // The next window opens with the summary of the first, then its own burst.
        let later = limiter.lines_at(t0 + Duration::from_secs(11), "frame x".into());
        assert_eq!(later.len(), 2, "{later:?}");
        assert!(later[0].starts_with("2397 more warnings"), "{later:?}");
        assert!(later[0].ends_with("frame 2399"), "{later:?}");
        assert_eq!(later[1], "frame x");
        assert_eq!(limiter.summary(), None, "nothing left to report");
    }
}
