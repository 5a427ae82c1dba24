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

use super::delivery::{Carried, Delivery};
use super::discovery;
use super::fleet::FleetSync;
use super::stats::StatsWindow;
use super::tls;
use super::topics::Topics;
use super::MqttConfig;
use crate::error::Report;
use crate::model::Task;
use crate::sink::spool::Spool;
use rumqttc::{
    Client, ConnectReturnCode, Connection, ConnectionError, Event, LastWill, MqttOptions, Outgoing,
    Packet, QoS, TlsConfiguration, Transport,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(50);

/// The largest MQTT packet sent or accepted: 1 MiB (Mosquitto accepts up to 256 MB).
pub const MAX_PACKET: usize = 1 << 20;

/// Why a session is dropped when rumqttc takes no more requests (logged in `publish`).
const QUEUE_FULL: &str = "dropping the connection: a publish could not be queued";

/// What the capture side and the I/O thread share.
pub struct Shared {
    pub spool: Mutex<Spool>,
    pub connected: AtomicBool,
    pub stop: AtomicBool,
    /// Cameras seen so far, for discovery; `new_camera` says the list grew.
    pub cameras: Mutex<Vec<(String, Task)>>,
    pub new_camera: AtomicBool,
    pub stats: Mutex<StatsWindow>,
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

/// Exponential backoff with jitter, so a fleet does not reconnect in lock-step.
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    seed: u32,
}

impl Backoff {
    fn new(config: &MqttConfig) -> Self {
        let min = Duration::from_millis(config.reconnect_min_ms.max(10));
        Backoff {
            min,
            max: Duration::from_millis(config.reconnect_max_ms).max(min),
            next: min,
            seed: std::process::id() | 1,
        }
    }

    fn reset(&mut self) {
        self.next = self.min;
    }

    fn step(&mut self) -> Duration {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 17;
        self.seed ^= self.seed << 5;
        let jitter = 0.75 + (self.seed % 500) as f64 / 1000.0;
        let wait = self.next.mul_f64(jitter);
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

/// Runs until `shared.stop` is set and the spool is drained (or the drain deadline passes).
pub fn run(config: MqttConfig, options: MqttOptions, topics: Topics, shared: Arc<Shared>) {
    let mut backoff = Backoff::new(&config);
    let mut drain_deadline: Option<Instant> = None;
    let mut fleet = config
        .fleet
        .clone()
        .map(|link| FleetSync::new(link, &config.prefix, &config.device));
    loop {
        let (client, mut connection) = Client::new(options.clone(), config.inflight + 8);
        let outcome = session(
            &config,
            &topics,
            &shared,
            &client,
            &mut connection,
            &mut drain_deadline,
            fleet.as_mut(),
        );
        shared.connected.store(false, Ordering::SeqCst);
        let wait = match outcome {
            Session::Finished => return,
            Session::Lost(why) => {
                backoff.reset();
                let wait = backoff.step();
                log::warn!("mqtt: {why} (reconnecting in {})", seconds(wait));
                wait
            }
            Session::Failed(why) => {
                let wait = backoff.step();
                log::warn!("mqtt: {why} (will retry in {})", seconds(wait));
                wait
            }
        };
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if stopping(&shared, &mut drain_deadline, &config) {
                log::warn!(
                    "mqtt: stopping without a connection to the broker; {} results stay in the spool for the next run",
                    lock(&shared.spool).pending()
                );
                return;
            }
            std::thread::sleep(POLL.min(until - Instant::now()));
        }
    }
}

enum Session {
    /// Stopped cleanly.
    Finished,
    /// Was connected, then lost the connection (why).
    Lost(String),
    /// Never connected (why).
    Failed(String),
}

fn seconds(wait: Duration) -> String {
    format!("{:.1} s", wait.as_secs_f64())
}

/// Why an attempt to connect failed, in words that point at the setting to check.
fn failure(config: &MqttConfig, error: &ConnectionError) -> String {
    let broker = format!("MQTT broker {}:{}", config.host, config.port);
    if let ConnectionError::ConnectionRefused(code) = error {
        return refused(&broker, *code);
    }
    match tls::rustls_error(error) {
        Some(tls) => format!("TLS with {broker} failed: {}", tls::explain(tls)),
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

/// Locks shared state; a panic elsewhere while holding it leaves nothing half-written that
/// matters here (the spool's files are checked on open), so go on.
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// True once a stop was asked for and either nothing is left or the drain time is up.
fn stopping(shared: &Shared, deadline: &mut Option<Instant>, config: &MqttConfig) -> bool {
    if !shared.stop.load(Ordering::SeqCst) {
        return false;
    }
    let deadline = *deadline
        .get_or_insert_with(|| Instant::now() + Duration::from_millis(config.drain_timeout_ms));
    lock(&shared.spool).pending() == 0 || Instant::now() >= deadline
}

fn session(
    config: &MqttConfig,
    topics: &Topics,
    shared: &Shared,
    client: &Client,
    connection: &mut Connection,
    drain_deadline: &mut Option<Instant>,
    mut fleet: Option<&mut FleetSync>,
) -> Session {
    let mut delivery = Delivery::default();
    let mut connected = false;
    let mut disconnecting = false;
    let stats_every = Duration::from_secs(config.stats_interval_s);
    let mut next_stats = Instant::now() + stats_every;
    // rumqttc connects inside `recv_timeout`, and a timeout there drops the attempt half-way
    // (a TLS handshake often takes longer than POLL; the broker then sees a CONNECT cut off and
    // publishes our will). Until the CONNACK, wait longer than rumqttc's own connection
    // timeout, which bounds each attempt.
    let connect_wait =
        Duration::from_secs(connection.eventloop.network_options.connection_timeout() + 1);
    loop {
        let wait = if connected { POLL } else { connect_wait };
        match connection.recv_timeout(wait) {
            // rumqttc turns a refusing CONNACK into an error; checked here too, so that nothing
            // but an accepted login ever counts as connected.
            Ok(Ok(Event::Incoming(Packet::ConnAck(ack))))
                if ack.code != ConnectReturnCode::Success =>
            {
                return Session::Failed(refused(
                    &format!("MQTT broker {}:{}", config.host, config.port),
                    ack.code,
                ));
            }
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                log::info!("mqtt: connected to {}:{}", config.host, config.port);
                connected = true;
                shared.connected.store(true, Ordering::SeqCst);
                delivery.reset();
                if publish(
                    client,
                    &mut delivery,
                    &topics.availability(),
                    b"online".to_vec(),
                    true,
                    Carried::Control,
                )
                .is_err()
                {
                    return Session::Lost(QUEUE_FULL.into());
                }
                if let Some(fleet) = fleet.as_deref_mut() {
                    fleet.connected();
                    if let Err(e) = client.try_subscribe(fleet.filter(), QoS::AtLeastOnce) {
                        log::warn!("mqtt: cannot subscribe to the fleet's gallery: {e}");
                    }
                }
                // A broker that lost the session lost the subscription too: always subscribe.
                if config.discovery.enabled {
                    let status = config.discovery.status_topic();
                    if let Err(e) = client.try_subscribe(status, QoS::AtLeastOnce) {
                        log::warn!("mqtt: cannot subscribe to Home Assistant's status: {e}");
                    }
                    shared.new_camera.store(true, Ordering::SeqCst);
                }
            }
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                if let Some(fleet) = fleet.as_deref_mut() {
                    fleet.subscribed();
                }
            }
            Ok(Ok(Event::Incoming(Packet::Publish(message))))
                if fleet
                    .as_deref_mut()
                    .is_some_and(|f| f.received(&message.topic, &message.payload)) => {}
            Ok(Ok(Event::Incoming(Packet::Publish(message)))) => {
                let online = message.payload.as_ref() == b"online";
                if message.topic == config.discovery.status_topic() && online {
                    log::info!("mqtt: Home Assistant is back; announcing again");
                    shared.new_camera.store(true, Ordering::SeqCst);
                }
            }
            Ok(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => delivery.sent(pkid),
            Ok(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                if let Some(through) = delivery.acknowledged(ack.pkid) {
                    if let Err(e) = lock(&shared.spool).ack_through(through) {
                        log::error!("mqtt: cannot record delivery in the spool: {}", Report(&e));
                    }
                }
            }
            Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) => return Session::Finished,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                if disconnecting {
                    return Session::Finished;
                }
                if connected {
                    return Session::Lost(format!(
                        "connection to {}:{} lost: {e}",
                        config.host, config.port
                    ));
                }
                return Session::Failed(failure(config, &e));
            }
            Err(rumqttc::RecvTimeoutError::Timeout) if !connected => {
                return Session::Failed(format!(
                    "no answer from MQTT broker {}:{} within {}",
                    config.host,
                    config.port,
                    seconds(connect_wait)
                ));
            }
            Err(rumqttc::RecvTimeoutError::Timeout) => {}
            Err(rumqttc::RecvTimeoutError::Disconnected) => return Session::Finished,
        }
        if !connected || disconnecting {
            continue;
        }
        // A stop waits (within the drain time) until the fleet's identities have been heard.
        let stop = stopping(shared, drain_deadline, config)
            && (fleet.as_deref().is_none_or(FleetSync::settled)
                || drain_deadline.is_some_and(|d| Instant::now() >= d));
        if let Some(fleet) = fleet.as_deref_mut() {
            // On a stop, what changed last goes out before `stopped`.
            for (topic, payload) in fleet.due(stop) {
                if publish(
                    client,
                    &mut delivery,
                    &topic,
                    payload,
                    true,
                    Carried::Control,
                )
                .is_err()
                {
                    return Session::Lost(QUEUE_FULL.into());
                }
            }
        }
        if stop {
            let pending = lock(&shared.spool).pending();
            if pending > 0 {
                log::warn!("mqtt: stopping with {pending} results not yet delivered; they stay in the spool");
            }
            let _ = publish(
                client,
                &mut delivery,
                &topics.availability(),
                b"stopped".to_vec(),
                true,
                Carried::Control,
            );
            if client.try_disconnect().is_err() {
                return Session::Finished;
            }
            disconnecting = true;
            continue;
        }
        if config.discovery.enabled && shared.new_camera.swap(false, Ordering::SeqCst) {
            let cameras = lock(&shared.cameras).clone();
            for (camera, task) in cameras {
                for (topic, payload) in discovery::camera_messages(
                    &config.discovery,
                    topics,
                    &config.device,
                    &camera,
                    task,
                ) {
                    if publish(
                        client,
                        &mut delivery,
                        &topic,
                        payload.to_string().into_bytes(),
                        true,
                        Carried::Control,
                    )
                    .is_err()
                    {
                        return Session::Lost(QUEUE_FULL.into());
                    }
                }
            }
        }
        if !stats_every.is_zero() && Instant::now() >= next_stats {
            next_stats = Instant::now() + stats_every;
            let (pending, dropped) = {
                let spool = lock(&shared.spool);
                (spool.pending(), spool.dropped())
            };
            let report = lock(&shared.stats).report(true, pending, dropped);
            if publish(
                client,
                &mut delivery,
                &topics.stats(),
                report.to_string().into_bytes(),
                false,
                Carried::Control,
            )
            .is_err()
            {
                return Session::Lost(QUEUE_FULL.into());
            }
        }
        if send_pending(config, shared, client, &mut delivery).is_err() {
            return Session::Lost(QUEUE_FULL.into());
        }
    }
}

/// Tops up the in-flight window from the spool.
fn send_pending(
    config: &MqttConfig,
    shared: &Shared,
    client: &Client,
    delivery: &mut Delivery,
) -> Result<(), ()> {
    let room = config.inflight.saturating_sub(delivery.in_flight());
    if room == 0 {
        return Ok(());
    }
    let entries = match lock(&shared.spool).read_after(delivery.last_requested(), room) {
        Ok(entries) => entries,
        Err(e) => {
            log::error!("mqtt: cannot read the spool: {}", Report(&e));
            return Ok(());
        }
    };
    for (id, entry) in entries {
        let Some(split) = entry.iter().position(|&b| b == b'\n') else {
            log::error!("mqtt: spool entry {id} has no topic; skipped");
            continue;
        };
        let topic = String::from_utf8_lossy(&entry[..split]).into_owned();
        let payload = entry[split + 1..].to_vec();
        publish(client, delivery, &topic, payload, false, Carried::Entry(id))?;
    }
    Ok(())
}

fn publish(
    client: &Client,
    delivery: &mut Delivery,
    topic: &str,
    payload: Vec<u8>,
    retain: bool,
    carried: Carried,
) -> Result<(), ()> {
    match client.try_publish(topic, QoS::AtLeastOnce, retain, payload) {
        Ok(()) => {
            delivery.requested(carried);
            Ok(())
        }
        Err(e) => {
            log::warn!("mqtt: cannot queue a publish to {topic}: {e}");
            Err(())
        }
    }
}
