//! The status LED: on while frames flow, blinking while a camera or the broker is away, off
//! before the first frame and after a stall or a stop.

use crate::pipeline::{Health, Snapshot};
use embedded_hal::digital::OutputPin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the LED shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedState {
    Off,
    On,
    Blink,
}

impl LedState {
    /// From a look at the pipeline: a frame within `window` (or waiting for the trigger) is
    /// flowing; an offline camera or a disconnected broker is trouble.
    pub fn of(snapshot: &Snapshot, window: Duration) -> LedState {
        if !snapshot.offline.is_empty() || snapshot.broker_connected == Some(false) {
            LedState::Blink
        } else if snapshot.frames > 0
            && (snapshot.since_last_frame < window || snapshot.waiting_for_trigger)
        {
            LedState::On
        } else {
            LedState::Off
        }
    }
}

/// Drives an LED on an output pin; writes the pin only when the light changes.
pub struct StatusLed<P> {
    pin: P,
    lit: Option<bool>,
}

impl<P: OutputPin> StatusLed<P> {
    pub fn new(pin: P) -> Self {
        StatusLed { pin, lit: None }
    }

    /// Shows `state`; `phase` alternates at the blinking rate.
    pub fn show(&mut self, state: LedState, phase: bool) -> Result<(), P::Error> {
        let light = match state {
            LedState::Off => false,
            LedState::On => true,
            LedState::Blink => phase,
        };
        if self.lit != Some(light) {
            if light {
                self.pin.set_high()?;
            } else {
                self.pin.set_low()?;
            }
            self.lit = Some(light);
        }
        Ok(())
    }

    pub fn release(self) -> P {
        self.pin
    }
}

/// Updates the LED from `health` four times a second (a 2 Hz blink) until `stop`, then turns
/// it off.
pub fn spawn<P: OutputPin + Send + 'static>(
    mut led: StatusLed<P>,
    health: Arc<Health>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("status-led".into())
        .spawn(move || {
            let mut phase = false;
            let mut failed = false;
            while !stop.load(Ordering::Relaxed) {
                phase = !phase;
                let state = LedState::of(&health.snapshot(), Duration::from_secs(2));
                if let Err(e) = led.show(state, phase) {
                    if !failed {
                        log::warn!("status LED: {e:?}");
                        failed = true;
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            let _ = led.show(LedState::Off, false);
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};

    fn snapshot(frames: u64, since_ms: u64, offline: &[&str], broker: Option<bool>) -> Snapshot {
        Snapshot {
            frames,
            since_last_frame: Duration::from_millis(since_ms),
            online: vec!["cam0".into()],
            offline: offline.iter().map(|s| s.to_string()).collect(),
            broker_connected: broker,
            waiting_for_trigger: false,
        }
    }

    #[test]
    fn the_light_follows_the_pipeline() {
        let window = Duration::from_secs(2);
        assert_eq!(
            LedState::of(&snapshot(0, 0, &[], None), window),
            LedState::Off
        );
        assert_eq!(
            LedState::of(&snapshot(5, 100, &[], Some(true)), window),
            LedState::On
        );
        assert_eq!(
            LedState::of(&snapshot(5, 9000, &[], None), window),
            LedState::Off
        );
        assert_eq!(
            LedState::of(&snapshot(5, 100, &["yard"], None), window),
            LedState::Blink
        );
        assert_eq!(
            LedState::of(&snapshot(5, 100, &[], Some(false)), window),
            LedState::Blink
        );
        let mut waiting = snapshot(5, 60_000, &[], None);
        waiting.waiting_for_trigger = true;
        assert_eq!(LedState::of(&waiting, window), LedState::On);
    }

    #[test]
    fn the_pin_is_written_only_on_changes_and_blinks_with_the_phase() {
        let expected = [
            Transaction::set(State::High), // on
            Transaction::set(State::Low),  // blink, phase off
            Transaction::set(State::High), // blink, phase on
            Transaction::set(State::Low),  // off
        ];
        let mut led = StatusLed::new(Mock::new(&expected));
        led.show(LedState::On, false).unwrap();
        led.show(LedState::On, true).unwrap();
        led.show(LedState::Blink, false).unwrap();
        led.show(LedState::Blink, true).unwrap();
        led.show(LedState::Off, true).unwrap();
        led.show(LedState::Off, false).unwrap();
        led.release().done();
    }
}
