//! Sinks: where result records go (stdout, files, a serial line, MQTT).

mod draw;
mod jsonl;
pub mod mqtt;
mod record;
pub mod serial;
pub mod spool;

pub use draw::{annotate, DrawSink};
pub use jsonl::{JsonLinesConfig, JsonLinesSink};
pub use mqtt::{MqttConfig, MqttSink};
pub use record::{
    run_id, CameraStatusRecord, ErrorDetail, ErrorRecord, FrameInfo, Latency, Record, ResultRecord,
};
pub use serial::{SerialConfig, SerialSink};

use crate::config_parse as config;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Why a record could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write a record to {sink}")]
    Write {
        sink: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{sink}: cannot start its thread")]
    Thread {
        sink: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{sink} was closed by the reader")]
    OutputClosed { sink: String },
    #[error("{count} records were not delivered to {sink} and are lost ({why})")]
    Undelivered {
        sink: String,
        count: usize,
        why: String,
    },
    #[error("cannot serialise a record")]
    Serialize(#[from] serde_json::Error),
    #[error(transparent)]
    Spool(spool::SpoolError),
    #[error(transparent)]
    Mqtt(#[from] mqtt::SetupError),
}

/// Where a sink that keeps records for later delivery stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryState {
    /// Connected to where the records go.
    pub connected: bool,
    /// Records waiting to be delivered.
    pub pending: u64,
    /// Records dropped to make room (a full spool).
    pub dropped: u64,
    /// Records set aside because they can never be delivered (dead letters).
    pub set_aside: u64,
    /// Fleet messages ignored, by reason (`mqtt::fleet_refusals()` names them).
    pub fleet_ignored: [u64; 6],
}

/// Delivers records. A returned error means the record was not delivered.
pub trait Sink: Send {
    fn describe(&self) -> String;
    fn emit(&mut self, record: &Record) -> Result<(), SinkError>;
    /// A camera went offline or came back. Sinks without a place for it ignore it.
    fn camera_status(&mut self, status: &CameraStatusRecord) -> Result<(), SinkError> {
        let _ = status;
        Ok(())
    }
    /// Delivery state for the health and the metrics. `None` for sinks that deliver at once.
    fn delivery(&self) -> Option<DeliveryState> {
        None
    }
    /// Pushes out anything buffered; called at the end of a run.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// `[sink]`: where records go.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "toml::Table")]
pub enum SinkConfig {
    /// JSON lines on standard output.
    Stdout(StdoutConfig),
    /// JSON lines appended to a file.
    File(JsonLinesConfig),
    /// JSON or CSV lines over a serial port.
    Serial(SerialConfig),
    /// JSON results over MQTT, spooled on disk until the broker has them.
    Mqtt(Box<MqttConfig>),
}

/// `kind = "stdout"` takes no options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig::Stdout(StdoutConfig::default())
    }
}

impl TryFrom<toml::Table> for SinkConfig {
    type Error = String;

    fn try_from(mut table: toml::Table) -> Result<Self, String> {
        match config::take_kind("sink", &mut table)?.as_str() {
            "stdout" => Ok(SinkConfig::Stdout(config::parse_section("sink", table)?)),
            "file" => Ok(SinkConfig::File(config::parse_section("sink", table)?)),
            "serial" => {
                for (old, new) in [
                    ("reopen_backoff_ms", "reconnect_min_ms"),
                    ("reopen_backoff_max_ms", "reconnect_max_ms"),
                ] {
                    if table.contains_key(old) {
                        log::warn!("`sink.{old}` is now called `sink.{new}` (as for cameras and MQTT); the old name is still read");
                    }
                }
                Ok(SinkConfig::Serial(config::parse_section("sink", table)?))
            }
            "mqtt" => Ok(SinkConfig::Mqtt(config::parse_section("sink", table)?)),
            other => Err(config::unknown_kind(
                "sink",
                other,
                &["stdout", "file", "serial", "mqtt"],
            )),
        }
    }
}

impl SinkConfig {
    /// Resolves relative paths against `base` (the configuration file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        match self {
            SinkConfig::File(c) => c.path = base.join(&c.path),
            SinkConfig::Mqtt(c) => c.resolve_paths(base),
            SinkConfig::Stdout(_) | SinkConfig::Serial(_) => {}
        }
    }
}

/// Opens the configured sink.
pub fn open(config: &SinkConfig) -> Result<Box<dyn Sink>, SinkError> {
    Ok(match config {
        SinkConfig::Stdout(_) => Box::new(JsonLinesSink::stdout()),
        SinkConfig::File(c) => Box::new(JsonLinesSink::append_to(&c.path)?),
        SinkConfig::Serial(c) => Box::new(SerialSink::new(c.clone())),
        SinkConfig::Mqtt(c) => Box::new(MqttSink::start(c)?),
    })
}
