//! The MQTT sink: results are appended to an on-disk spool by the capture loop (which never
//! waits for the network) and published in order by an I/O thread, QoS 1, each removed from the
//! spool only once the broker has acknowledged it.
//!
//! Topics: `<prefix>/<device>/availability` (retained: `online` on every connect, `offline` as
//! the last will, `stopped` on a clean stop) and `<prefix>/<device>/<camera>/result`.

mod config;
mod connection;
mod delivery;
mod topics;

pub use config::MqttConfig;
pub use topics::Topics;

use super::spool::Spool;
use super::{Record, Sink, SinkError};
use connection::Shared;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub struct MqttSink {
    topics: Topics,
    shared: Arc<Shared>,
    io: Option<JoinHandle<()>>,
    describe: String,
}

impl MqttSink {
    /// Opens the spool and starts the I/O thread. A broker that is down is not an error: results
    /// wait in the spool.
    pub fn start(config: &MqttConfig) -> Result<Self, SinkError> {
        let spool = Spool::open(&config.spool).map_err(SinkError::Spool)?;
        if spool.pending() > 0 {
            log::info!(
                "mqtt: {} results from an earlier run wait in the spool",
                spool.pending()
            );
        }
        let topics = Topics::new(&config.prefix, &config.device);
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            connected: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let io = {
            let (config, topics, shared) = (config.clone(), topics.clone(), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("mqtt".into())
                .spawn(move || connection::run(config, topics, shared))
                .map_err(|source| SinkError::Write {
                    sink: "mqtt".into(),
                    source,
                })?
        };
        Ok(MqttSink {
            topics,
            shared,
            io: Some(io),
            describe: format!("mqtt://{}:{}", config.host, config.port),
        })
    }

    /// Results waiting for the broker.
    pub fn pending(&self) -> u64 {
        self.shared.spool.lock().map(|s| s.pending()).unwrap_or(0)
    }

    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }
}

impl Sink for MqttSink {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn emit(&mut self, record: &Record) -> Result<(), SinkError> {
        let mut entry = self.topics.result(&record.frame().camera).into_bytes();
        entry.push(b'\n');
        serde_json::to_writer(&mut entry, record)?;
        let mut spool = self
            .shared
            .spool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        spool.append(&entry).map_err(SinkError::Spool)?;
        Ok(())
    }

    /// Stops the I/O thread after it has delivered what it can within the drain timeout and
    /// published `stopped`.
    fn flush(&mut self) -> Result<(), SinkError> {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(io) = self.io.take() {
            if io.join().is_err() {
                log::error!("mqtt: the I/O thread panicked");
            }
        }
        Ok(())
    }
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
