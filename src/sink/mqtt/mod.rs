//! The MQTT sink: results are appended to an on-disk spool by the capture loop (which never
//! waits for the network) and published in order by an I/O thread, QoS 1, each removed from the
//! spool only once the broker has acknowledged it.
//!
//! Topics: `<prefix>/<device>/availability` (retained: `online` on every connect, `offline` as
//! the last will, `stopped` on a clean stop), `<prefix>/<device>/<camera>/result`,
//! `<prefix>/<device>/<camera>/event` (debounced, spooled with the results),
//! `<prefix>/<device>/<camera>/objects` (counts by label) and `.../objects/<track>` (object
//! events) for scenes,
//! `<prefix>/<device>/stats` (periodic) and Home Assistant discovery.

mod config;
mod connection;
mod dead_letters;
mod delivery;
mod discovery;
mod entry;
mod events;
mod fleet_check;
mod fleet_sync;
pub mod names;
mod object_events;
mod recognitions;
mod session;
mod stats;
mod tls;
mod topics;

pub use config::{MqttConfig, NameKind, SetupError};
pub use discovery::DiscoveryConfig;
pub use discovery::Reports;
pub use events::{EventConfig, EventMessage, EventTracker, Subject};
pub use fleet_sync::FleetLink;

/// The reasons of `DeliveryState::fleet_ignored`, in its order.
pub fn fleet_refusals() -> [&'static str; 6] {
    fleet_check::Refusal::ALL.map(fleet_check::Refusal::reason)
}
pub use object_events::{Counts, ObjectEvent, ObjectEvents};
pub use recognitions::{Recognition, Recognitions};
pub use tls::TlsConfig;
pub use topics::Topics;

use super::spool::Spool;
use super::{CameraStatusRecord, DeliveryState, Record, ResultRecord, Sink, SinkError};
use crate::interpret::Interpretation;
use crate::model::Task;
use crate::preprocess::thumbnail::jpeg;
use connection::Shared;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Snapshots: at most this many pixels a side, JPEG quality 85.
const SNAPSHOT_SIDE: u32 = 320;
const SNAPSHOT_QUALITY: u8 = 85;

pub struct MqttSink {
    topics: Topics,
    events: EventTracker,
    identities: EventTracker,
    objects: ObjectEvents,
    recognitions: Recognitions,
    shared: Arc<Shared>,
    io: Option<JoinHandle<()>>,
    describe: String,
}

impl MqttSink {
    /// Reads the credentials and TLS files, opens the spool and starts the I/O thread. A bad file
    /// is an error here; a broker that is down, or that refuses us, is not: results wait in the
    /// spool.
    pub fn start(config: &MqttConfig) -> Result<Self, SinkError> {
        let prepared = connection::Prepared {
            credentials: config.credentials()?,
            tls: config.tls.as_ref().map(TlsConfig::load).transpose()?,
        };
        let spool = Spool::open(&config.spool).map_err(SinkError::Spool)?;
        if spool.pending() > 0 {
            log::info!(
                "mqtt: {} records from an earlier run wait in the spool",
                spool.pending()
            );
        }
        let topics = Topics::new(&config.prefix, &config.device);
        let options = connection::options(config, &topics, &prepared);
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            connected: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            cameras: Mutex::new(Vec::new()),
            new_camera: AtomicBool::new(false),
            stats: Mutex::new(stats::StatsWindow::default()),
            dead_letters: Mutex::new(dead_letters::DeadLetters::new(&config.spool.path)),
            fleet_ignored: Default::default(),
        });
        let io = {
            let (config, topics, shared) = (config.clone(), topics.clone(), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("mqtt".into())
                .spawn(move || connection::run(config, options, topics, shared))
                .map_err(|source| SinkError::Thread {
                    sink: "mqtt".into(),
                    source,
                })?
        };
        Ok(MqttSink {
            topics,
            events: EventTracker::new(config.events.clone()),
            identities: EventTracker::of(Subject::Identities, config.events.clone()),
            objects: ObjectEvents::default(),
            recognitions: Recognitions::new(config.events.frames),
            shared,
            io: Some(io),
            describe: format!(
                "{}://{}:{}",
                if prepared.tls.is_some() {
                    "mqtts"
                } else {
                    "mqtt"
                },
                config.host,
                config.port
            ),
        })
    }

    /// Results waiting for the broker.
    pub fn pending(&self) -> u64 {
        crate::sync::lock(&self.shared.spool).pending()
    }

    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// A recognition on the camera's identity topic, and a named person's on their own; the
    /// visit's best crop as a retained JPEG on `<camera>/snapshot/<object>` (Home Assistant's
    /// MQTT camera shows the latest).
    fn recognition_entries(&self, recognition: &Recognition) -> Result<Vec<Vec<u8>>, SinkError> {
        let camera = &recognition.camera;
        let mut entries = vec![entry(&self.topics.identity(camera), recognition)?];
        if let Some(name) = &recognition.name {
            entries.push(entry(&self.topics.person(camera, name), recognition)?);
        }
        // At `recognized`, the visit's best crop so far; at `left`, a better one if it came.
        let send = recognition.kind == "recognized" || recognition.better_crop;
        let snapshot = send
            .then_some(recognition.crop.as_deref())
            .flatten()
            .and_then(|crop| jpeg(crop, SNAPSHOT_SIDE, SNAPSHOT_QUALITY));
        if let Some(snapshot) = snapshot {
            let topic = self.topics.snapshot(camera, &recognition.object);
            entries.push(entry::encode_retained(&topic, &snapshot));
        }
        Ok(entries)
    }
}

impl Sink for MqttSink {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn emit(&mut self, record: &Record) -> Result<(), SinkError> {
        let camera = &record.frame().camera;
        let mut entries = vec![entry(&self.topics.result(camera), record)?];
        for event in self.events.observe(record) {
            entries.push(entry(&self.topics.event(camera), &event)?);
        }
        for event in self.identities.observe(record) {
            entries.push(entry(&self.topics.identity(camera), &event)?);
        }
        let (object_events, counts) = self.objects.observe(record);
        for event in &object_events {
            entries.push(entry(&self.topics.object(camera, event.track), event)?);
        }
        if let Some(counts) = &counts {
            entries.push(entry(&self.topics.objects(camera), counts)?);
        }
        let recognitions = self.recognitions.observe(record);
        for recognition in &recognitions {
            entries.extend(self.recognition_entries(recognition)?);
        }
        {
            let mut spool = crate::sync::lock(&self.shared.spool);
            for entry in &entries {
                spool.append(entry).map_err(SinkError::Spool)?;
            }
        }
        crate::sync::lock(&self.shared.stats).record(record);
        // Announced once its first result says what it reports (labels, identities, objects),
        // and again when a scene shows a label not seen before.
        if let Record::Result(result) = record {
            let mut cameras = crate::sync::lock(&self.shared.cameras);
            let known = cameras.iter().position(|(known, _)| known == camera);
            let before = known.map(|i| &cameras[i].1);
            let reports = reports(result, before, counts.as_ref(), &recognitions);
            if before != Some(&reports) {
                match known {
                    Some(i) => cameras[i].1 = reports,
                    None => cameras.push((camera.clone(), reports)),
                }
                self.shared.new_camera.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    fn delivery(&self) -> Option<DeliveryState> {
        let (pending, dropped) = {
            let spool = crate::sync::lock(&self.shared.spool);
            (spool.pending(), spool.dropped())
        };
        Some(DeliveryState {
            connected: self.is_connected(),
            pending,
            dropped,
            set_aside: crate::sync::lock(&self.shared.dead_letters).count(),
            fleet_ignored: std::array::from_fn(|i| {
                self.shared.fleet_ignored[i].load(Ordering::Relaxed)
            }),
        })
    }

    /// Spooled like a result, so an outage seen while the broker was away is not lost either.
    fn camera_status(&mut self, status: &CameraStatusRecord) -> Result<(), SinkError> {
        let entry = entry(&self.topics.camera_status(&status.camera), status)?;
        crate::sync::lock(&self.shared.spool)
            .append(&entry)
            .map_err(SinkError::Spool)?;
        Ok(())
    }

    /// Stops the I/O thread after it has delivered what it can within the drain timeout and
    /// published `stopped`.
    fn flush(&mut self) -> Result<(), SinkError> {
        if self.io.is_some() {
            let mut spool = crate::sync::lock(&self.shared.spool);
            for event in self.events.finish() {
                let entry = entry(&self.topics.event(&event.camera), &event)?;
                spool.append(&entry).map_err(SinkError::Spool)?;
            }
            for event in self.identities.finish() {
                let entry = entry(&self.topics.identity(&event.camera), &event)?;
                spool.append(&entry).map_err(SinkError::Spool)?;
            }
            for event in self.objects.finish() {
                let entry = entry(&self.topics.object(&event.camera, event.track), &event)?;
                spool.append(&entry).map_err(SinkError::Spool)?;
            }
            for recognition in self.recognitions.finish() {
                for entry in self.recognition_entries(&recognition)? {
                    spool.append(&entry).map_err(SinkError::Spool)?;
                }
            }
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(io) = self.io.take() {
            if io.join().is_err() {
                log::error!("mqtt: the I/O thread panicked");
            }
        }
        // Records kept in the spool are delivered by the next run; records set aside are not.
        let letters = crate::sync::lock(&self.shared.dead_letters);
        if letters.count() > 0 {
            return Err(SinkError::Undelivered {
                sink: self.describe.clone(),
                count: letters.count() as usize,
                why: format!(
                    "the broker can never take them; they are set aside in {}",
                    letters.path().display()
                ),
            });
        }
        Ok(())
    }
}

/// What a camera reports after `result`: for a scene, every label its counts have held.
fn reports(
    result: &ResultRecord,
    before: Option<&Reports>,
    counts: Option<&Counts>,
    recognitions: &[Recognition],
) -> Reports {
    if !matches!(result.result, Interpretation::Scene(_)) {
        return Reports::of(result.task);
    }
    let (mut labels, mut people) = match before {
        Some(Reports::Objects { labels, people, .. }) => (labels.clone(), people.clone()),
        _ => (Vec::new(), Vec::new()),
    };
    for label in counts.into_iter().flat_map(|c| c.keys()) {
        if !labels.contains(label) {
            labels.push(label.clone());
        }
    }
    for name in recognitions.iter().filter_map(|r| r.name.as_ref()) {
        if !people.contains(name) {
            people.push(name.clone());
        }
    }
    Reports::Objects {
        labels,
        identities: result.task == Task::Reid,
        people,
    }
}

/// A spool entry: the topic and the JSON payload (`entry.rs`).
fn entry(topic: &str, payload: &impl serde::Serialize) -> Result<Vec<u8>, SinkError> {
    Ok(entry::encode(topic, payload)?)
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
