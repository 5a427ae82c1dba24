//! `[sink]` with `kind = "serial"`: the device, its framing, the line format and the delivery
//! policy.

use super::format::LineFormat;
use serde::Deserialize;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

/// `kind = "serial"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialConfig {
    /// The device, used as given (not relative to the configuration file): `/dev/ttyUSB0`,
    /// `/dev/serial/by-id/...`, `COM3`. It may be absent at start and may come and go.
    #[serde(deserialize_with = "crate::config_parse::non_empty")]
    pub path: String,
    /// Line speed in bits per second (default 115200).
    #[serde(default = "default_baud")]
    pub baud: NonZeroU32,
    /// Data bits per character: 5, 6, 7 or 8 (default 8).
    #[serde(default)]
    pub data_bits: DataBits,
    /// `none` (default), `even` or `odd`.
    #[serde(default)]
    pub parity: Parity,
    /// 1 (default) or 2.
    #[serde(default)]
    pub stop_bits: StopBits,
    /// `none` (default), `software` (XON/XOFF) or `hardware` (RTS/CTS).
    #[serde(default)]
    pub flow_control: FlowControl,
    /// `json` (default): the same line as stdout; `csv`: a compact line (see the module
    /// documentation).
    #[serde(default)]
    pub format: LineFormat,
    /// How long the port may accept nothing while records wait before it is taken as lost:
    /// it is then closed and reopened (default 1000). Also the longest `flush` waits for room.
    /// On a slow line, keep it above the time the driver needs to send its buffer (about 4 KB:
    /// 4.3 s at 9600 baud), or a merely slow port is taken as lost.
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: NonZeroU64,
    /// Wait before the first attempt to reopen a lost or absent port, in milliseconds
    /// (default 500); it doubles after each failed attempt, up to `reconnect_max_ms`, and
    /// starts again from here once a write succeeds. 0 tries on every record. (The same keys
    /// as the cameras' and the MQTT sink's; `reopen_backoff_ms` is still read, with a warning.)
    #[serde(default = "default_reconnect_min_ms", alias = "reopen_backoff_ms")]
    pub reconnect_min_ms: u64,
    /// Upper bound of the reopen wait, in milliseconds (default 10000; never below
    /// `reconnect_min_ms`, never above a day). `reopen_backoff_max_ms` is still read.
    #[serde(default = "default_reconnect_max_ms", alias = "reopen_backoff_max_ms")]
    pub reconnect_max_ms: u64,
    /// Most records held in memory while the port is away or too slow (default 1000). When
    /// full, the oldest is dropped, counted and logged.
    #[serde(default = "default_queue")]
    pub queue: NonZeroUsize,
}

// Constants, so a zero here is a compile error rather than a panic at run time.
const DEFAULT_BAUD: NonZeroU32 = NonZeroU32::new(115_200).unwrap();
const DEFAULT_WRITE_TIMEOUT_MS: NonZeroU64 = NonZeroU64::new(1000).unwrap();
const DEFAULT_QUEUE: NonZeroUsize = NonZeroUsize::new(1000).unwrap();

fn default_baud() -> NonZeroU32 {
    DEFAULT_BAUD
}

fn default_write_timeout_ms() -> NonZeroU64 {
    DEFAULT_WRITE_TIMEOUT_MS
}

fn default_reconnect_min_ms() -> u64 {
    500
}

fn default_reconnect_max_ms() -> u64 {
    10_000
}

fn default_queue() -> NonZeroUsize {
    DEFAULT_QUEUE
}

impl SerialConfig {
    /// The defaults for everything but the device.
    pub fn new(path: impl Into<String>) -> Self {
        SerialConfig {
            path: path.into(),
            baud: default_baud(),
            data_bits: DataBits::default(),
            parity: Parity::default(),
            stop_bits: StopBits::default(),
            flow_control: FlowControl::default(),
            format: LineFormat::default(),
            write_timeout_ms: default_write_timeout_ms(),
            reconnect_min_ms: default_reconnect_min_ms(),
            reconnect_max_ms: default_reconnect_max_ms(),
            queue: default_queue(),
        }
    }

    pub(super) fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms.get())
    }
}

/// Data bits per character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u8")]
pub struct DataBits(u8);

impl Default for DataBits {
    fn default() -> Self {
        DataBits(8)
    }
}

impl TryFrom<u8> for DataBits {
    type Error = String;

    fn try_from(bits: u8) -> Result<Self, String> {
        match bits {
            5..=8 => Ok(DataBits(bits)),
            _ => Err(format!("data bits must be 5, 6, 7 or 8, got {bits}")),
        }
    }
}

impl From<DataBits> for serialport::DataBits {
    fn from(bits: DataBits) -> Self {
        match bits.0 {
            5 => serialport::DataBits::Five,
            6 => serialport::DataBits::Six,
            7 => serialport::DataBits::Seven,
            _ => serialport::DataBits::Eight,
        }
    }
}

/// Parity bit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    #[default]
    None,
    Even,
    Odd,
}

impl From<Parity> for serialport::Parity {
    fn from(parity: Parity) -> Self {
        match parity {
            Parity::None => serialport::Parity::None,
            Parity::Even => serialport::Parity::Even,
            Parity::Odd => serialport::Parity::Odd,
        }
    }
}

/// Stop bits per character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u8")]
pub struct StopBits(u8);

impl Default for StopBits {
    fn default() -> Self {
        StopBits(1)
    }
}

impl TryFrom<u8> for StopBits {
    type Error = String;

    fn try_from(bits: u8) -> Result<Self, String> {
        match bits {
            1 | 2 => Ok(StopBits(bits)),
            _ => Err(format!("stop bits must be 1 or 2, got {bits}")),
        }
    }
}

impl From<StopBits> for serialport::StopBits {
    fn from(bits: StopBits) -> Self {
        match bits.0 {
            2 => serialport::StopBits::Two,
            _ => serialport::StopBits::One,
        }
    }
}

/// Flow control.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowControl {
    #[default]
    None,
    /// XON/XOFF.
    Software,
    /// RTS/CTS.
    Hardware,
}

impl From<FlowControl> for serialport::FlowControl {
    fn from(flow: FlowControl) -> Self {
        match flow {
            FlowControl::None => serialport::FlowControl::None,
            FlowControl::Software => serialport::FlowControl::Software,
            FlowControl::Hardware => serialport::FlowControl::Hardware,
        }
    }
}
