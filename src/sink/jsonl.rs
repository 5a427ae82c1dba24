//! JSON lines: one record per line, flushed per record so nothing waits in a buffer.

use super::{CameraStatusRecord, Record, Sink, SinkError};
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `kind = "file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonLinesConfig {
    /// File the records are appended to (created if missing).
    pub path: PathBuf,
}

pub struct JsonLinesSink {
    name: String,
    out: Box<dyn Write + Send>,
}

impl JsonLinesSink {
    pub fn stdout() -> Self {
        Self::new("stdout", Box::new(std::io::stdout()))
    }

    pub fn append_to(path: &Path) -> Result<Self, SinkError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| SinkError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self::new(&path.display().to_string(), Box::new(file)))
    }

    /// Writes to any writer (tests use a buffer).
    pub fn new(name: &str, out: Box<dyn Write + Send>) -> Self {
        JsonLinesSink {
            name: name.to_string(),
            out,
        }
    }
}

impl JsonLinesSink {
    fn write_line(&mut self, value: &impl serde::Serialize) -> Result<(), SinkError> {
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        let name = &self.name;
        let write_error = |source| write_error(name, source);
        self.out.write_all(&line).map_err(write_error)?;
        self.out.flush().map_err(write_error)
    }
}

impl Sink for JsonLinesSink {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn emit(&mut self, record: &Record) -> Result<(), SinkError> {
        self.write_line(record)
    }

    fn camera_status(&mut self, status: &CameraStatusRecord) -> Result<(), SinkError> {
        self.write_line(status)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out
            .flush()
            .map_err(|source| write_error(&self.name, source))
    }
}

/// A reader that went away (`edgevit infer ... | head -1`) is not a fault of the output.
fn write_error(sink: &str, source: std::io::Error) -> SinkError {
    if source.kind() == std::io::ErrorKind::BrokenPipe {
        SinkError::OutputClosed {
            sink: sink.to_string(),
        }
    } else {
        SinkError::Write {
            sink: sink.to_string(),
            source,
        }
    }
}
