//! The protocol decisions of the MQTT sink, apart from the I/O loop (`connection.rs`): the
//! loop turns what rumqttc reports into [`Input`]s, the [`Machine`] answers with [`Action`]s
//! (publish, subscribe, disconnect, end the connection), and the loop carries them out. So the
//! whole protocol (what a CONNACK starts, when results are sent and acknowledged in the spool,
//! when an entry is set aside, how a stop drains) is tested here without a socket.
//!
//! The machine lives as long as the sink; each connection starts with [`Machine::connecting`].
//! What it reads from and writes to the capture side (the spool, the stop flag, the cameras,
//! the statistics) goes through [`Capture`].

use super::delivery::{Carried, Delivery};
use super::discovery;
use super::discovery::Reports;
use super::entry;
use super::fleet_sync::FleetSync;
use super::names;
use super::topics::Topics;
use super::MqttConfig;
use crate::sink::spool::EntryId;
use rumqttc::{ConnectReturnCode, ConnectionError};
use std::time::{Duration, Instant};

/// Why the connection is dropped when rumqttc takes no more requests.
pub const QUEUE_FULL: &str = "dropping the connection: a publish could not be queued";

/// How often a connected session looks at the spool and the clock.
pub const POLL: Duration = Duration::from_millis(50);

/// Bytes of a PUBLISH packet besides its topic and payload (fixed header, topic length,
/// packet id), with room to spare: a packet over `MAX_PACKET` is refused by rumqttc.
const PACKET_OVERHEAD: usize = 16;

/// What the capture side shares with the connection.
pub trait Capture {
    /// A stop was asked for (the run is ending).
    fn stop_requested(&self) -> bool;
    /// Spool entries not yet acknowledged.
    fn pending(&self) -> u64;
    /// Every camera seen so far, when the list grew since the last call.
    fn new_cameras(&self) -> Option<Vec<(String, Reports)>>;
    /// The statistics message.
    fn stats(&self, pending: u64) -> serde_json::Value;
    /// Up to `max` spool entries after `after`; a spool that cannot be read logs and gives none.
    fn read(&self, after: Option<EntryId>, max: usize) -> Vec<(EntryId, Vec<u8>)>;
    /// Everything up to `through` is delivered.
    fn acknowledge(&self, through: EntryId);
    /// An entry that can never be published, kept elsewhere.
    fn set_aside(&self, id: EntryId, topic: &str, payload: &[u8], reason: &str);
    /// A fleet message was ignored (counted for the metrics).
    fn fleet_ignored(&self, _refusal: super::fleet_check::Refusal) {}
}

/// What the I/O loop saw.
#[derive(Debug)]
pub enum Input<'a> {
    ConnAck(ConnectReturnCode),
    SubAck,
    Message {
        topic: &'a str,
        payload: &'a [u8],
    },
    /// A publish left with this packet id.
    Sent(u16),
    PubAck(u16),
    /// The DISCONNECT left.
    DisconnectSent,
    Error(&'a ConnectionError),
    /// Nothing happened within the wait the machine asked for.
    Timeout,
    /// rumqttc's event loop has gone.
    Closed,
    /// A publish could not be queued in rumqttc.
    QueueFull,
}

/// What the I/O loop is to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Publish {
        topic: String,
        payload: Vec<u8>,
        retain: bool,
    },
    Subscribe(String),
    Disconnect,
    /// This connection is over.
    End(Outcome),
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stopped cleanly.
    Finished,
    /// Was connected, then lost the connection (why): reconnect soon.
    Lost(String),
    /// Never connected (why): reconnect with a growing backoff.
    Failed(String),
}

pub struct Machine {
    config: MqttConfig,
    topics: Topics,
    fleet: Option<FleetSync>,
    delivery: Delivery,
    connected: bool,
    /// A stop was decided: `stopped` and the last fleet messages are out, and the DISCONNECT
    /// waits (until this instant at most) for the broker to acknowledge them.
    closing: Option<Instant>,
    disconnecting: bool,
    next_stats: Instant,
    drain_deadline: Option<Instant>,
    /// How long to wait for the CONNACK (longer than rumqttc's own connection timeout).
    connect_wait: Duration,
    /// Cameras to announce to Home Assistant, and whether an announcement is due.
    cameras: Vec<(String, Reports)>,
    announce: bool,
}

impl Machine {
    pub fn new(config: MqttConfig, topics: Topics) -> Self {
        let fleet = config
            .fleet
            .clone()
            .map(|link| FleetSync::new(link, &config.prefix, &config.device));
        Machine {
            config,
            topics,
            fleet,
            delivery: Delivery::default(),
            connected: false,
            closing: None,
            disconnecting: false,
            next_stats: Instant::now(),
            drain_deadline: None,
            connect_wait: POLL,
            cameras: Vec::new(),
            announce: false,
        }
    }

    /// A new connection is being made: nothing of the last one is in flight any more. The
    /// CONNACK is waited for `connect_wait`.
    pub fn connecting(&mut self, now: Instant, connect_wait: Duration) {
        self.connect_wait = connect_wait;
        self.delivery.reset();
        self.connected = false;
        self.closing = None;
        self.disconnecting = false;
        self.next_stats = now + self.stats_every();
    }

    /// Connected: a CONNACK accepted us, and the connection has not ended since.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// How long the loop may wait for the next input.
    pub fn wait(&self) -> Duration {
        if self.connected {
            POLL
        } else {
            self.connect_wait
        }
    }

    fn stats_every(&self) -> Duration {
        Duration::from_secs(self.config.stats_interval_s)
    }

    fn broker(&self) -> String {
        format!("MQTT broker {}:{}", self.config.host, self.config.port)
    }

    /// True once a stop was asked for and either nothing is left or the drain time is up.
    pub fn stopping(&mut self, capture: &impl Capture, now: Instant) -> bool {
        if !capture.stop_requested() {
            return false;
        }
        let drain = Duration::from_millis(self.config.drain_timeout_ms);
        let deadline = *self.drain_deadline.get_or_insert(now + drain);
        capture.pending() == 0 || now >= deadline
    }

    /// Takes one input; then, while connected, does what is due (fleet, stop, discovery,
    /// statistics, the next results).
    pub fn handle(&mut self, input: Input, capture: &impl Capture, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(end) = self.react(input, capture, &mut actions) {
            self.connected = false;
            actions.push(Action::End(end));
            return actions;
        }
        if self.connected && !self.disconnecting {
            match self.closing {
                Some(until)
                    if (self.delivery.controls_in_flight() == 0
                        && self.fleet.as_mut().is_none_or(FleetSync::heard_ours))
                        || now >= until =>
                {
                    if let Some(fleet) = &mut self.fleet {
                        fleet.closing();
                    }
                    actions.push(Action::Disconnect);
                    self.disconnecting = true;
                }
                Some(_) => {}
                None => self.due(capture, now, &mut actions),
            }
        }
        if let Some(fleet) = &mut self.fleet {
            for refusal in fleet.take_ignored() {
                capture.fleet_ignored(refusal);
            }
        }
        actions
    }

    /// The input's own consequences; `Some` ends the connection.
    fn react(
        &mut self,
        input: Input,
        capture: &impl Capture,
        out: &mut Vec<Action>,
    ) -> Option<Outcome> {
        match input {
            // rumqttc turns a refusing CONNACK into an error; checked here too, so that nothing
            // but an accepted login ever counts as connected.
            Input::ConnAck(code) if code != ConnectReturnCode::Success => {
                return Some(Outcome::Failed(refused(&self.broker(), code)));
            }
            Input::ConnAck(_) => self.accepted(out),
            Input::SubAck => {
                if let Some(fleet) = &mut self.fleet {
                    fleet.subscribed();
                }
            }
            Input::Message { topic, payload } => {
                let fleet = self
                    .fleet
                    .as_mut()
                    .is_some_and(|f| f.received(topic, payload));
                if !fleet && topic == self.config.discovery.status_topic() && payload == b"online" {
                    log::info!("mqtt: Home Assistant is back; announcing again");
                    self.announce = true;
                }
            }
            Input::Sent(pkid) => self.delivery.sent(pkid),
            Input::PubAck(pkid) => {
                if let Some(through) = self.delivery.acknowledged(pkid) {
                    capture.acknowledge(through);
                }
            }
            Input::DisconnectSent | Input::Closed => return Some(Outcome::Finished),
            Input::Error(_) if self.disconnecting || self.closing.is_some() => {
                return Some(Outcome::Finished)
            }
            Input::Error(e) if self.connected => {
                return Some(Outcome::Lost(format!(
                    "connection to {}:{} lost: {e}",
                    self.config.host, self.config.port
                )));
            }
            Input::Error(e) => return Some(Outcome::Failed(failure(&self.broker(), e))),
            Input::Timeout if !self.connected => {
                return Some(Outcome::Failed(format!(
                    "no answer from {} within {:.1} s",
                    self.broker(),
                    self.connect_wait.as_secs_f64()
                )));
            }
            Input::Timeout => {}
            Input::QueueFull if self.disconnecting || self.closing.is_some() => {
                return Some(Outcome::Finished)
            }
            Input::QueueFull => return Some(Outcome::Lost(QUEUE_FULL.into())),
        }
        None
    }

    /// A CONNACK that accepted us: `online`, the subscriptions, an announcement.
    fn accepted(&mut self, out: &mut Vec<Action>) {
        log::info!(
            "mqtt: connected to {}:{}",
            self.config.host,
            self.config.port
        );
        self.connected = true;
        self.delivery.reset();
        out.push(self.control(self.topics.availability(), b"online".to_vec(), true));
        if let Some(fleet) = &mut self.fleet {
            fleet.connected();
            out.push(Action::Subscribe(fleet.filter()));
        }
        // A broker that lost the session lost the subscription too: always subscribe.
        if self.config.discovery.enabled {
            out.push(Action::Subscribe(self.config.discovery.status_topic()));
            self.announce = true;
        }
    }

    /// A publish that is not a spool entry.
    fn control(&mut self, topic: String, payload: Vec<u8>, retain: bool) -> Action {
        self.delivery.requested(Carried::Control);
        Action::Publish {
            topic,
            payload,
            retain,
        }
    }

    fn due(&mut self, capture: &impl Capture, now: Instant, out: &mut Vec<Action>) {
        // A stop waits (within the drain time) until the fleet's identities have been heard.
        let stop = self.stopping(capture, now)
            && (self.fleet.as_mut().is_none_or(FleetSync::settled)
                || self.drain_deadline.is_some_and(|d| now >= d));
        // On a stop, what changed last goes out before `stopped`.
        let fleet_due = self.fleet.as_mut().map(|f| f.due(stop)).unwrap_or_default();
        for (topic, payload) in fleet_due {
            out.push(self.control(topic, payload, true));
        }
        if stop {
            let pending = capture.pending();
            if pending > 0 {
                log::warn!("mqtt: stopping with {pending} records not yet delivered; they stay in the spool");
            }
            out.push(self.control(self.topics.availability(), b"stopped".to_vec(), true));
            // A DISCONNECT right behind them can cut retained messages off (a board's last
            // identities never reached the broker): it waits for their acknowledgements,
            // within the drain time once more.
            self.closing = Some(now + Duration::from_millis(self.config.drain_timeout_ms));
            return;
        }
        if self.config.discovery.enabled {
            if let Some(cameras) = capture.new_cameras() {
                self.cameras = cameras;
                self.announce = true;
            }
            if std::mem::take(&mut self.announce) {
                self.announce_cameras(out);
            }
        }
        if !self.stats_every().is_zero() && now >= self.next_stats {
            self.next_stats = now + self.stats_every();
            let report = capture.stats(capture.pending());
            out.push(self.control(self.topics.stats(), report.to_string().into_bytes(), false));
        }
        self.send_pending(capture, out);
    }

    fn announce_cameras(&mut self, out: &mut Vec<Action>) {
        let mut messages = Vec::new();
        for (camera, reports) in &self.cameras {
            messages.extend(discovery::camera_messages(
                &self.config.discovery,
                &self.topics,
                &self.config.device,
                camera,
                reports,
            ));
        }
        for (topic, payload) in messages {
            out.push(self.control(topic, payload.to_string().into_bytes(), true));
        }
    }

    /// Tops up the in-flight window from the spool; an entry that can never be published is set
    /// aside in its place.
    fn send_pending(&mut self, capture: &impl Capture, out: &mut Vec<Action>) {
        let room = self
            .config
            .inflight
            .saturating_sub(self.delivery.in_flight());
        if room == 0 {
            return;
        }
        for (id, bytes) in capture.read(self.delivery.last_requested(), room) {
            match publishable(&bytes) {
                Ok(entry) => {
                    self.delivery.requested(Carried::Entry(id));
                    out.push(Action::Publish {
                        topic: entry.topic.to_string(),
                        payload: entry.payload.to_vec(),
                        retain: entry.retain,
                    });
                }
                Err(refused) => {
                    capture.set_aside(id, &refused.topic, refused.payload, &refused.reason);
                    if let Some(through) = self.delivery.skipped(id) {
                        capture.acknowledge(through);
                    }
                }
            }
        }
    }
}

/// A spool entry that can never be published: what of its topic and payload could be read,
/// and why.
struct Unpublishable<'a> {
    topic: String,
    payload: &'a [u8],
    reason: String,
}

/// The topic and payload of a spool entry, or why it can never be published.
fn publishable(bytes: &[u8]) -> Result<entry::Decoded<'_>, Unpublishable<'_>> {
    let decoded = entry::decode_entry(bytes).map_err(|e| Unpublishable {
        topic: String::new(),
        payload: bytes,
        reason: e.to_string(),
    })?;
    let (topic, payload) = (decoded.topic, decoded.payload);
    let refuse = |reason: String| Unpublishable {
        topic: topic.to_string(),
        payload,
        reason,
    };
    if let Err(e) = names::check_topic(topic) {
        return Err(refuse(format!("topic {e}")));
    }
    let size = topic.len() + payload.len() + PACKET_OVERHEAD;
    let limit = super::connection::MAX_PACKET;
    if size > limit {
        return Err(refuse(format!(
            "a packet of {size} bytes is over the limit of {limit}"
        )));
    }
    Ok(decoded)
}

/// Why an attempt to connect failed, in words that point at the setting to check.
fn failure(broker: &str, error: &ConnectionError) -> String {
    if let ConnectionError::ConnectionRefused(code) = error {
        return refused(broker, *code);
    }
    match super::tls::rustls_error(error) {
        Some(tls) => format!("TLS with {broker} failed: {}", super::tls::explain(tls)),
        None => format!("cannot connect to {broker}: {error}"),
    }
}

fn refused(broker: &str, code: ConnectReturnCode) -> String {
    let why = match code {
        ConnectReturnCode::BadUserNamePassword => {
            "bad user name or password (check sink.username and sink.password or password_file)"
        }
        ConnectReturnCode::NotAuthorized => {
            "not authorised (check sink.username and sink.password or password_file)"
        }
        ConnectReturnCode::BadClientId => "client id rejected (sink.client_id)",
        ConnectReturnCode::ServiceUnavailable => "service unavailable",
        ConnectReturnCode::RefusedProtocolVersion => "MQTT 3.1.1 is not accepted",
        ConnectReturnCode::Success => "no reason given",
    };
    format!("{broker} refused the connection: {why}")
}

#[cfg(test)]
mod tests;
