//! The trigger: a debounced edge on an input pin lets one frame through.

use embedded_hal::digital::InputPin;
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Which transitions count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Edge {
    /// Inactive to active (a button pressed, with `active_low` for one wired to ground).
    #[default]
    Rising,
    Falling,
    Both,
}

impl Edge {
    fn wants(self, from_high: bool) -> bool {
        match self {
            Edge::Rising => !from_high,
            Edge::Falling => from_high,
            Edge::Both => true,
        }
    }
}

/// Waits for debounced edges of a pin, by polling it (any `InputPin` will do).
pub struct Trigger<P> {
    pin: P,
    edge: Edge,
    debounce: Duration,
    poll: Duration,
    /// The last level that held for `debounce`; the first reading sets it.
    level: Option<bool>,
    /// A new level, and since when it has held.
    candidate: Option<(bool, Instant)>,
}

impl<P: InputPin> Trigger<P> {
    pub fn new(pin: P, edge: Edge, debounce: Duration) -> Self {
        Trigger {
            pin,
            edge,
            debounce,
            poll: Duration::from_millis(2),
            level: None,
            candidate: None,
        }
    }

    /// How often the pin is read while waiting.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// One reading at `now`: whether it completes a wanted, debounced edge.
    pub fn sample(&mut self, high: bool, now: Instant) -> bool {
        let Some(level) = self.level else {
            self.level = Some(high);
            return false;
        };
        if high == level {
            self.candidate = None;
            return false;
        }
        let since = match self.candidate {
            Some((candidate, since)) if candidate == high => since,
            _ => {
                self.candidate = Some((high, now));
                now
            }
        };
        if now.duration_since(since) < self.debounce {
            return false;
        }
        self.level = Some(high);
        self.candidate = None;
        self.edge.wants(level)
    }

    /// Blocks until a wanted edge (`true`), or until `stop` is set or `timeout` has passed
    /// (`false`).
    pub fn wait(&mut self, stop: &AtomicBool, timeout: Duration) -> Result<bool, P::Error> {
        let start = Instant::now();
        loop {
            let high = self.pin.is_high()?;
            if self.sample(high, Instant::now()) {
                return Ok(true);
            }
            if stop.load(Ordering::Relaxed) || start.elapsed() >= timeout {
                return Ok(false);
            }
            std::thread::sleep(self.poll);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};

    #[test]
    fn a_bouncing_press_is_one_rising_edge() {
        let mut t = Trigger::new(Mock::new(&[]), Edge::Rising, Duration::from_millis(20));
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert!(!t.sample(false, at(0)), "the first reading is the baseline");
        // Bounce: high, low, high within 20 ms, then held.
        assert!(!t.sample(true, at(1)));
        assert!(!t.sample(false, at(3)));
        assert!(!t.sample(true, at(5)));
        assert!(!t.sample(true, at(15)));
        assert!(t.sample(true, at(26)), "held for 21 ms: the edge");
        assert!(!t.sample(true, at(40)), "no second edge while held");
        // Release: a falling edge, not wanted.
        assert!(!t.sample(false, at(50)));
        assert!(!t.sample(false, at(80)));
        assert!(!t.sample(true, at(90)));
        assert!(t.sample(true, at(111)), "pressed again");
        t.pin.done();
    }

    #[test]
    fn both_edges_and_falling_edges_count_as_configured() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut both = Trigger::new(Mock::new(&[]), Edge::Both, Duration::ZERO);
        let mut falling = Trigger::new(Mock::new(&[]), Edge::Falling, Duration::ZERO);
        let levels = [true, false, true, false];
        let got: Vec<(bool, bool)> = levels
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                (
                    both.sample(l, at(i as u64)),
                    falling.sample(l, at(i as u64)),
                )
            })
            .collect();
        assert_eq!(
            got,
            [(false, false), (true, true), (true, false), (true, true)]
        );
        both.pin.done();
        falling.pin.done();
    }

    #[test]
    fn wait_reads_the_pin_until_the_edge_and_stops_when_asked() {
        let readings = [State::Low, State::Low, State::High];
        let transactions: Vec<Transaction> =
            readings.iter().map(|s| Transaction::get(*s)).collect();
        let mut t = Trigger::new(Mock::new(&transactions), Edge::Rising, Duration::ZERO)
            .with_poll(Duration::ZERO);
        assert!(t
            .wait(&AtomicBool::new(false), Duration::from_secs(5))
            .unwrap());
        t.pin.done();

        let mut idle = Trigger::new(
            Mock::new(&[Transaction::get(State::Low)]),
            Edge::Rising,
            Duration::ZERO,
        );
        assert!(!idle
            .wait(&AtomicBool::new(true), Duration::from_secs(5))
            .unwrap());
        idle.pin.done();
    }
}
