//! GPIO: an optional trigger input (capture and infer on an edge instead of continuously) and a
//! status LED (on while frames flow, blinking while a camera or the broker is away).
//!
//! The logic is written against the `embedded-hal` 1.0 traits (`InputPin`, `OutputPin`), so
//! it is tested with `embedded-hal-mock` and runs on any pin that implements them; on Linux the
//! pins are lines of a GPIO character device (`/dev/gpiochipN`) through `gpiocdev`.

mod cdev;
pub mod led;
pub mod trigger;

pub use cdev::CdevPin;
pub use led::{LedState, StatusLed};
pub use trigger::{Edge, Trigger};

use serde::Deserialize;
use std::path::PathBuf;

/// `[gpio]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpioConfig {
    /// The GPIO character device the lines belong to.
    #[serde(default = "default_chip")]
    pub chip: PathBuf,
    /// `[gpio.trigger]`: absent, frames are taken continuously.
    #[serde(default)]
    pub trigger: Option<TriggerConfig>,
    /// `[gpio.status_led]`: absent, no LED.
    #[serde(default)]
    pub status_led: Option<LedConfig>,
}

fn default_chip() -> PathBuf {
    PathBuf::from("/dev/gpiochip0")
}

/// `[gpio.trigger]`: each edge lets one frame through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    /// The line's offset on the chip (`gpioinfo` lists them).
    pub line: u32,
    /// `rising`, `falling` or `both`.
    #[serde(default)]
    pub edge: Edge,
    /// The line is active low (a button to ground with a pull-up): `rising` then means pressed.
    #[serde(default)]
    pub active_low: bool,
    /// A new level must hold this long to count (switch bounce).
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
}

fn default_debounce_ms() -> u64 {
    20
}

/// `[gpio.status_led]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedConfig {
    pub line: u32,
    /// The LED lights when the line is low.
    #[serde(default)]
    pub active_low: bool,
}

/// Why a GPIO line could not be used.
#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    #[error("cannot request line {line} of {chip} (is the chip there, and the line free? `gpioinfo` lists them)")]
    Request {
        chip: PathBuf,
        line: u32,
        #[source]
        source: gpiocdev::Error,
    },
    #[error("GPIO line {line}")]
    Line {
        line: u32,
        #[source]
        source: gpiocdev::Error,
    },
}
