//! The I/O loop: drives one rumqttc connection at a time, publishes spooled results in order
//! and acknowledges them in the spool once the broker has.
//!
//! A broken connection is dropped whole and a fresh client is made after a backoff, so that
//! nothing rumqttc kept from the old one is re-sent behind the spool's back: the spool cursor
//! alone decides what is sent again (duplicates carry the same `seq`).
//!
//! Connected means a CONNACK that accepted us, never merely an open socket or a finished TLS
//! handshake: a refused login or a failed handshake is logged, retried with the backoff, and
//! leaves `connected` false.
//!
//! Every decision is the session machine's (`session.rs`): this loop only turns rumqttc's
//! events into its inputs and carries out its actions.

use super::dead_letters::DeadLetters;
use super::discovery::Reports;
use super::session::{Action, Capture, Input, Machine, Outcome};
use super::stats::StatsWindow;
use super::topics::Topics;
use super::MqttConfig;
use crate::backoff::Backoff;
use crate::error::Report;
use crate::sink::spool::{EntryId, Spool};
use crate::sync::lock;
use rumqttc::{
    Client, Connection, Event, LastWill, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration,
    Transport,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The largest MQTT packet sent or accepted: 1 MiB (Mosquitto accepts up to 256 MB).
pub const MAX_PACKET: usize = 1 << 20;

/// What the capture side and the I/O thread share.
pub struct Shared {
    pub spool: Mutex<Spool>,
    pub connected: AtomicBool,
    pub stop: AtomicBool,
    /// Cameras seen so far, for discovery; `new_camera` says the list grew.
    pub cameras: Mutex<Vec<(String, Reports)>>,
    pub new_camera: AtomicBool,
    pub stats: Mutex<StatsWindow>,
    /// Spool entries that can never be published.
    pub dead_letters: Mutex<DeadLetters>,
    /// Fleet messages ignored, by [`super::fleet_check::Refusal::index`].
    pub fleet_ignored: [AtomicU64; super::fleet_check::Refusal::ALL.len()],
}

/// What the sink read when it started: the credentials (`password_file` already read) and the
/// TLS configuration (PEM files already parsed), so that a bad file stops the start, not a
/// connection attempt.
pub struct Prepared {
    pub credentials: Option<(String, String)>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

pub fn options(config: &MqttConfig, topics: &Topics, prepared: &Prepared) -> MqttOptions {
    let mut options = MqttOptions::new(config.client_id(), &config.host, config.port);
    // rumqttc's default (10 kB) is smaller than a fleet identity with its exemplars.
    options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
    options.set_keep_alive(Duration::from_secs(config.keep_alive_s.max(5)));
    options.set_clean_session(true);
    options.set_last_will(LastWill::new(
        topics.availability(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    if let Some((user, password)) = &prepared.credentials {
        options.set_credentials(user, password);
    }
    if let Some(tls) = &prepared.tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::clone(tls),
        )));
    }
    options
}

/// Runs until `shared.stop` is set and the spool is drained (or the drain deadline passes).
pub fn run(config: MqttConfig, options: MqttOptions, topics: Topics, shared: Arc<Shared>) {
    // With jitter, so that a fleet that lost its broker together does not reconnect in
    // lock-step.
    let mut backoff = Backoff::new(
        Duration::from_millis(config.reconnect_min_ms.max(10)),
        Duration::from_millis(config.reconnect_max_ms),
    )
    .with_jitter(std::process::id());
    let inflight = config.inflight;
    let mut machine = Machine::new(config, topics);
    loop {
        let (client, mut connection) = Client::new(options.clone(), inflight + 8);
        // rumqttc connects inside `recv_timeout`, and a timeout there drops the attempt half-way
        // (a TLS handshake often takes longer than a poll; the broker then sees a CONNECT cut
        // off and publishes our will). Until the CONNACK, wait longer than rumqttc's own
        // connection timeout, which bounds each attempt.
        let connect_wait =
            Duration::from_secs(connection.eventloop.network_options.connection_timeout() + 1);
        machine.connecting(Instant::now(), connect_wait);
        let outcome = session(&mut machine, &shared, &client, &mut connection);
        shared.connected.store(false, Ordering::SeqCst);
        let wait = match outcome {
            Outcome::Finished => return,
            Outcome::Lost(why) => {
                backoff.succeeded();
                let wait = backoff.failed(Instant::now());
                log::warn!("mqtt: {why} (reconnecting in {})", seconds(wait));
                wait
            }
            Outcome::Failed(why) => {
                let wait = backoff.failed(Instant::now());
                log::warn!("mqtt: {why} (will retry in {})", seconds(wait));
                wait
            }
        };
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if machine.stopping(&*shared, Instant::now()) {
                log::warn!(
                    "mqtt: stopping without a connection to the broker; {} records stay in the spool for the next run",
                    lock(&shared.spool).pending()
                );
                return;
            }
            std::thread::sleep(super::session::POLL.min(until - Instant::now()));
        }
    }
}

fn seconds(wait: Duration) -> String {
    format!("{:.1} s", wait.as_secs_f64())
}

/// One connection: rumqttc's events in, the machine's actions out, until it ends.
fn session(
    machine: &mut Machine,
    shared: &Shared,
    client: &Client,
    connection: &mut Connection,
) -> Outcome {
    loop {
        let event = connection.recv_timeout(machine.wait());
        let input = match &event {
            Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => Input::ConnAck(ack.code),
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => Input::SubAck,
            Ok(Ok(Event::Incoming(Packet::Publish(message)))) => Input::Message {
                topic: &message.topic,
                payload: &message.payload,
            },
            Ok(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => Input::Sent(*pkid),
            Ok(Ok(Event::Incoming(Packet::PubAck(ack)))) => Input::PubAck(ack.pkid),
            Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) => Input::DisconnectSent,
            Ok(Ok(_)) | Err(rumqttc::RecvTimeoutError::Timeout) => Input::Timeout,
            Ok(Err(e)) => Input::Error(e),
            Err(rumqttc::RecvTimeoutError::Disconnected) => Input::Closed,
        };
        let mut actions = machine.handle(input, shared, Instant::now());
        shared
            .connected
            .store(machine.is_connected(), Ordering::SeqCst);
        let mut next = 0;
        while next < actions.len() {
            let failed = match &actions[next] {
                Action::End(outcome) => return outcome.clone(),
                Action::Publish {
                    topic,
                    payload,
                    retain,
                } => client
                    .try_publish(topic.as_str(), QoS::AtLeastOnce, *retain, payload.clone())
                    .map_err(|e| log::warn!("mqtt: cannot queue a publish to {topic}: {e}"))
                    .is_err(),
                Action::Subscribe(filter) => {
                    if let Err(e) = client.try_subscribe(filter.as_str(), QoS::AtLeastOnce) {
                        log::warn!("mqtt: cannot subscribe to {filter}: {e}");
                    }
                    false
                }
                Action::Disconnect => client.try_disconnect().is_err(),
            };
            next += 1;
            if failed {
                let input = if matches!(actions[next - 1], Action::Disconnect) {
                    Input::Closed
                } else {
                    Input::QueueFull
                };
                actions = machine.handle(input, shared, Instant::now());
                next = 0;
            }
        }
    }
}

impl Capture for Shared {
    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn pending(&self) -> u64 {
        lock(&self.spool).pending()
    }

    fn new_cameras(&self) -> Option<Vec<(String, Reports)>> {
        self.new_camera
            .swap(false, Ordering::SeqCst)
            .then(|| lock(&self.cameras).clone())
    }

    fn stats(&self, pending: u64) -> serde_json::Value {
        let dropped = lock(&self.spool).dropped();
        lock(&self.stats).report(true, pending, dropped)
    }

    fn read(&self, after: Option<EntryId>, max: usize) -> Vec<(EntryId, Vec<u8>)> {
        lock(&self.spool)
            .read_after(after, max)
            .unwrap_or_else(|e| {
                log::error!("mqtt: cannot read the spool: {}", Report(&e));
                Vec::new()
            })
    }

    fn acknowledge(&self, through: EntryId) {
        if let Err(e) = lock(&self.spool).ack_through(through) {
            log::error!("mqtt: cannot record delivery in the spool: {}", Report(&e));
        }
    }

    fn set_aside(&self, id: EntryId, topic: &str, payload: &[u8], reason: &str) {
        lock(&self.dead_letters).set_aside(&id.to_string(), topic, payload, reason);
    }

    fn fleet_ignored(&self, refusal: super::fleet_check::Refusal) {
        self.fleet_ignored[refusal.index()].fetch_add(1, Ordering::Relaxed);
    }
}
