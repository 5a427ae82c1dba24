//! When to try again after a failure: exponential backoff, one implementation for the camera
//! reopen, the MQTT reconnect and the serial port reopen (each configured with
//! `reconnect_min_ms` and `reconnect_max_ms`).
//!
//! The first wait is the minimum; each failure doubles it, up to the maximum; a success starts
//! again from the minimum. With jitter (MQTT), each wait is drawn within +-25% of the nominal
//! one, so that a fleet that lost its broker together does not reconnect in lock-step.

use std::time::{Duration, Instant};

/// Longest wait between attempts, whatever the configuration says, so that instants stay far
/// from overflowing.
const CEILING: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    retry_at: Option<Instant>,
    /// xorshift state for the jitter; `None` without jitter.
    jitter: Option<u32>,
}

impl Backoff {
    /// Waits from `initial` doubling up to `max` (never below `initial`, never above a day).
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.min(CEILING);
        Backoff {
            initial,
            max: max.clamp(initial, CEILING),
            next: initial,
            retry_at: None,
            jitter: None,
        }
    }

    /// Each wait drawn within +-25% of the nominal one, from `seed` (a process id will do).
    pub fn with_jitter(mut self, seed: u32) -> Self {
        self.jitter = Some(seed | 1);
        self
    }

    /// Whether an attempt may be made at `now` (for callers that check rather than sleep).
    pub fn is_due(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| now >= at)
    }

    /// An attempt failed at `now`: returns how long to wait before the next one.
    pub fn failed(&mut self, now: Instant) -> Duration {
        let wait = match &mut self.jitter {
            Some(state) => {
                *state ^= *state << 13;
                *state ^= *state >> 17;
                *state ^= *state << 5;
                self.next.mul_f64(0.75 + f64::from(*state % 500) / 1000.0)
            }
            None => self.next,
        };
        self.retry_at = now.checked_add(wait);
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }

    /// It works again: the next failure waits the initial time.
    pub fn succeeded(&mut self) {
        self.next = self.initial;
        self.retry_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_maximum_and_start_again_after_a_success() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(350));
        let now = Instant::now();
        assert!(b.is_due(now));
        let waits: Vec<Duration> = (0..4).map(|_| b.failed(now)).collect();
        assert_eq!(waits, [ms(100), ms(200), ms(350), ms(350)]);
        assert!(!b.is_due(now + ms(349)));
        assert!(b.is_due(now + ms(350)));
        b.succeeded();
        assert!(b.is_due(now));
        assert_eq!(b.failed(now), ms(100));
    }

    #[test]
    fn the_maximum_is_never_below_the_minimum_nor_above_a_day() {
        let mut b = Backoff::new(Duration::from_secs(5), Duration::from_secs(1));
        assert_eq!(b.failed(Instant::now()), Duration::from_secs(5));
        assert_eq!(b.failed(Instant::now()), Duration::from_secs(5));
        let mut b = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(b.failed(Instant::now()), CEILING);
    }

    #[test]
    fn jitter_stays_within_a_quarter_and_varies() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).with_jitter(7);
        let waits: Vec<Duration> = (0..50).map(|_| b.failed(Instant::now())).collect();
        assert!(waits
            .iter()
            .all(|w| (Duration::from_millis(750)..=Duration::from_millis(1250)).contains(w)));
        assert!(waits.iter().any(|w| *w != waits[0]), "{waits:?}");
    }
}
