//! Records over a serial line, for a PLC or a microcontroller: one record per `\n`-terminated
//! line, JSON or CSV, through a port that may be absent, unplugged or stuck.
//!
//! # Line formats
//!
//! `format = "json"` writes the JSON object stdout prints (docs/output.md).
//!
//! `format = "csv"` writes a compact line that a microcontroller can split on `,`:
//!
//! ```text
//! R,<seq>,<camera>,<ts>,<index>,<label>,<score>
//! E,<seq>,<camera>,<ts>,<stage>,<message>
//! S,<camera>,<online|offline>,<ts>,<detail>
//! ```
//!
//! - `R` is a result: its best class only (`index`, `label`, `score` with 4 decimals), or
//!   three empty fields (`R,7,cam0,<ts>,,,`) when no class passed `min_score`.
//! - `E` is a frame that failed: `stage` is `source`, `preprocess`, `infer` or `interpret`.
//! - `S` is a camera going offline (`detail` says why) or coming back (what it negotiated).
//! - `ts` is RFC 3339 UTC with milliseconds, as in the JSON.
//! - In text fields (`camera`, `ts`, `label`, `stage`, `message`) each `,` becomes `;` and each
//!   control character (`\n`, `\r`, tab, ...) a space, so a line always has exactly 7 (`R`)
//!   or 6 (`E`) fields. Other characters, UTF-8 included, are kept as they are.
//!
//! [`write_line`] writes either format to any [`embedded_io::Write`], so the same code serves
//! a consumer that has an `embedded-io` writer rather than a file descriptor; [`IoWrite`]
//! adapts a `std::io::Write` (the serial port among them) to it.
//!
//! # Delivery
//!
//! A port that is absent, unplugged or stuck never stops the capture loop: `emit` fails only
//! for a record that cannot be serialised.
//!
//! - Each record is rendered once and queued; `emit` then writes as much of the queue as the
//!   port takes at once, waiting at most about a millisecond. Records leave in order, and a
//!   record leaves the queue only once all of its bytes are handed to the driver ("delivered";
//!   bytes in the driver when a device is unplugged are lost with it).
//! - A write error, or a port that takes nothing for `write_timeout_ms` while records wait
//!   (the driver's own output queue not shrinking either), closes the port, on a thread of its
//!   own since Linux may hold a `close` for 30 s while a driver sends what it holds. The
//!   record being written is sent again whole on the next port; if part of it had gone out, a
//!   `\n` is sent first so that the fragment ends as a line of its own: readers should skip
//!   lines that do not parse, and empty ones.
//! - A closed or absent port is reopened on a later `emit` once the backoff has passed:
//!   `reconnect_min_ms`, doubling after each failure up to `reconnect_max_ms`. Nothing
//!   sleeps: each `emit` checks whether it is time.
//! - At most `queue` records wait; beyond that the oldest is dropped, counted and logged.
//! - `flush` (the end of a run) opens the port if it can, whatever the backoff, and waits for
//!   room (never longer than `write_timeout_ms` without progress); it fails if records are
//!   still undelivered, since they are lost when the process ends.
//!
//! [`SerialSink::counters`] tells what happened: delivered, queued, dropped, reopens, and
//! write failures.

mod config;
mod format;
mod port;
mod queue;
#[cfg(test)]
mod tests;

pub use config::{DataBits, FlowControl, Parity, SerialConfig, StopBits};
pub use format::{render, render_status, write_line, LineError, LineFormat};
pub use port::IoWrite;

use super::{CameraStatusRecord, Record, Sink, SinkError};
use crate::backoff::Backoff;
use port::NativePort;
use queue::LineQueue;
use serialport::SerialPort;
use std::io;
use std::time::{Duration, Instant};

/// What the sink has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SerialCounters {
    /// Records whose every byte was handed to the port's driver.
    pub delivered: u64,
    /// Records waiting now.
    pub queued: usize,
    /// Records dropped, oldest first, because the queue was full.
    pub dropped: u64,
    /// Successful opens after the first one.
    pub reopens: u64,
    /// Ports closed because a write failed or the port stopped taking data.
    pub write_failures: u64,
}

/// `kind = "serial"`: see the [module documentation](self).
pub struct SerialSink {
    config: SerialConfig,
    name: String,
    port: Option<IoWrite<NativePort>>,
    queue: LineQueue,
    backoff: Backoff,
    counters: SerialCounters,
    opened_once: bool,
    /// Since when records have waited on an open port that takes nothing.
    stalled_since: Option<Instant>,
    /// The driver's output queue when the port last took nothing: if it shrinks, the line is
    /// slow, not stuck.
    driver_queue: Option<u32>,
    /// The current outage was logged as a warning; further failures go to debug.
    outage_logged: bool,
    /// Records dropped since the queue last emptied, for one warning per episode.
    dropped_in_episode: u64,
    last_error: Option<String>,
}

impl SerialSink {
    /// Opens the port if it is there; an absent or failing port is only logged, and tried again
    /// on later records.
    pub fn new(config: SerialConfig) -> Self {
        let backoff = Backoff::new(
            Duration::from_millis(config.reconnect_min_ms),
            Duration::from_millis(config.reconnect_max_ms),
        );
        let mut sink = SerialSink {
            name: format!("serial {}", config.path),
            queue: LineQueue::new(config.queue.get()),
            config,
            port: None,
            backoff,
            counters: SerialCounters::default(),
            opened_once: false,
            stalled_since: None,
            driver_queue: None,
            outage_logged: false,
            dropped_in_episode: 0,
            last_error: None,
        };
        sink.try_open(Instant::now());
        sink
    }

    pub fn counters(&self) -> SerialCounters {
        SerialCounters {
            queued: self.queue.len(),
            ..self.counters
        }
    }

    /// Whether the port is open now.
    pub fn is_open(&self) -> bool {
        self.port.is_some()
    }

    fn enqueue(&mut self, line: Vec<u8>) {
        if !self.queue.push(line) {
            return;
        }
        self.counters.dropped += 1;
        self.dropped_in_episode += 1;
        if self.dropped_in_episode == 1 {
            log::warn!(
                "{}: {} records waiting, the most allowed (`queue`); dropping the oldest until \
                 the port takes them again",
                self.name,
                self.queue.len()
            );
        }
    }

    /// Opens the port; true when it is open.
    fn try_open(&mut self, now: Instant) -> bool {
        match port::open(&self.config) {
            Ok(port) => {
                if self.opened_once {
                    self.counters.reopens += 1;
                    log::info!(
                        "{}: open again; {} records waiting",
                        self.name,
                        self.queue.len()
                    );
                } else {
                    log::info!("{}: open", self.name);
                }
                self.opened_once = true;
                self.port = Some(IoWrite::new(port));
                self.stalled_since = None;
                self.driver_queue = None;
                true
            }
            Err(e) => {
                let wait = self.backoff.failed(now);
                self.outage(&e.to_string(), "cannot open", wait);
                false
            }
        }
    }

    /// Logs a failure: the first of an outage as a warning, the rest at debug level.
    fn outage(&mut self, error: &str, what: &str, wait: Duration) {
        if self.outage_logged {
            log::debug!(
                "{}: {what}: {error}; next attempt in {} ms",
                self.name,
                wait.as_millis()
            );
        } else {
            log::warn!(
                "{}: {what}: {error}; records wait in memory (up to {}) and the port is tried \
                 again, first in {} ms",
                self.name,
                self.config.queue,
                wait.as_millis()
            );
            self.outage_logged = true;
        }
        self.last_error = Some(error.to_string());
    }

    /// Closes the port after a failed or stalled write; the line being written goes again.
    fn lose_port(&mut self, error: &io::Error) {
        if let Some(port) = self.port.take() {
            port::close_in_background(port.into_inner());
        }
        self.queue.rewind();
        self.counters.write_failures += 1;
        self.stalled_since = None;
        self.driver_queue = None;
        let wait = self.backoff.failed(Instant::now());
        self.outage(&error.to_string(), "write failed, port closed", wait);
    }

    /// Bytes were taken: the port works.
    fn progressed(&mut self) {
        self.stalled_since = None;
        self.driver_queue = None;
        self.backoff.succeeded();
        if self.outage_logged {
            log::info!(
                "{}: delivering again; {} records waiting",
                self.name,
                self.queue.len()
            );
            self.outage_logged = false;
        }
    }

    /// The port took nothing at `attempt`; returns true when it has not for `write_timeout_ms`.
    fn stalled(&mut self, attempt: Instant) -> bool {
        let driver_queue = self
            .port
            .as_ref()
            .and_then(|p| p.get_ref().bytes_to_write().ok());
        let draining = matches!((self.driver_queue, driver_queue), (Some(a), Some(b)) if b < a);
        self.driver_queue = driver_queue;
        if draining {
            self.stalled_since = Some(attempt);
            return false;
        }
        let since = *self.stalled_since.get_or_insert(attempt);
        since.elapsed() >= self.config.write_timeout()
    }

    /// Writes queued lines until the queue is empty, the port takes no more, or it fails.
    /// `wait`: wait for room (flush) rather than give up at once (emit), and open the port
    /// whatever the backoff.
    fn pump(&mut self, wait: bool) {
        if self.port.is_none() {
            let now = Instant::now();
            if !(wait || self.backoff.is_due(now)) || !self.try_open(now) {
                return;
            }
        }
        let write_timeout = self.config.write_timeout();
        loop {
            let Some(port) = self.port.as_mut() else {
                return;
            };
            let Some(bytes) = self.queue.pending() else {
                if self.dropped_in_episode > 0 {
                    log::warn!(
                        "{}: caught up; {} records were dropped meanwhile",
                        self.name,
                        self.dropped_in_episode
                    );
                    self.dropped_in_episode = 0;
                }
                return;
            };
            let timeout = if wait {
                let waited = self.stalled_since.map_or(Duration::ZERO, |t| t.elapsed());
                write_timeout.saturating_sub(waited)
            } else {
                Duration::ZERO
            };
            // At least a millisecond: on Windows a zero timeout means none at all.
            let timeout = timeout.max(Duration::from_millis(1));
            if let Err(e) = port.get_mut().set_timeout(timeout) {
                log::debug!("{}: cannot set the write timeout: {e}", self.name);
            }
            let attempt = Instant::now();
            match embedded_io::Write::write(port, bytes) {
                Ok(n) => {
                    self.progressed();
                    if self.queue.advance(n) {
                        self.counters.delivered += 1;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                    ) =>
                {
                    if self.stalled(attempt) {
                        let error = io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("took nothing for {} ms", write_timeout.as_millis()),
                        );
                        self.lose_port(&error);
                        return;
                    }
                    if !wait {
                        return;
                    }
                    if e.kind() == io::ErrorKind::WouldBlock {
                        // Writable by poll yet refused by write: do not spin on it.
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                Err(e) => {
                    self.lose_port(&e);
                    return;
                }
            }
        }
    }
}

impl Sink for SerialSink {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn emit(&mut self, record: &Record) -> Result<(), SinkError> {
        let line = render(record, self.config.format)?;
        self.enqueue(line);
        self.pump(false);
        Ok(())
    }

    fn camera_status(&mut self, status: &CameraStatusRecord) -> Result<(), SinkError> {
        let line = render_status(status, self.config.format)?;
        self.enqueue(line);
        self.pump(false);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.pump(true);
        let counters = self.counters();
        log::debug!("{}: {counters:?}", self.name);
        if self.queue.is_empty() {
            return Ok(());
        }
        let why = self
            .last_error
            .as_deref()
            .unwrap_or("the port takes no more");
        // The queue lives in memory: what is still in it when the run ends is lost.
        Err(SinkError::Undelivered {
            sink: self.name.clone(),
            count: self.queue.len(),
            why: why.to_string(),
        })
    }
}

impl Drop for SerialSink {
    fn drop(&mut self) {
        if !self.queue.is_empty() {
            log::warn!(
                "{}: {} records never delivered",
                self.name,
                self.queue.len()
            );
        }
        if let Some(port) = self.port.take() {
            port::release(port.into_inner());
        }
    }
}
