//! When to try the port again: exponential backoff, checked (never slept) on each record.

use std::time::{Duration, Instant};

/// Longest wait between attempts, whatever the configuration says, so that instants stay far
/// from overflowing.
const CEILING: Duration = Duration::from_secs(24 * 3600);

pub(super) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    retry_at: Option<Instant>,
}

impl Backoff {
    pub(super) fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.min(CEILING);
        Backoff {
            initial,
            max: max.clamp(initial, CEILING),
            next: initial,
            retry_at: None,
        }
    }

    /// Whether an attempt may be made at `now`.
    pub(super) fn is_due(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| now >= at)
    }

    /// An attempt failed at `now`: returns how long until the next one.
    pub(super) fn failed(&mut self, now: Instant) -> Duration {
        let wait = self.next;
        self.retry_at = now.checked_add(wait);
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }

    /// The port works again: the next failure waits the initial time.
    pub(super) fn succeeded(&mut self) {
        self.next = self.initial;
        self.retry_at = None;
    }
}
