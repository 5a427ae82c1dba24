//! The session machine's transitions, without a socket: inputs in, actions out.

use super::*;
use std::cell::{Cell, RefCell};

/// The capture side in memory: a list of spool entries and what the machine did with them.
#[derive(Default)]
struct Fake {
    stop: Cell<bool>,
    entries: RefCell<Vec<(EntryId, Vec<u8>)>>,
    acked: Cell<Option<EntryId>>,
    set_aside: RefCell<Vec<(EntryId, String, String)>>,
    cameras: RefCell<Option<Vec<(String, Reports)>>>,
}

impl Fake {
    fn with(topics: &[&str]) -> Fake {
        let fake = Fake::default();
        for (i, topic) in topics.iter().enumerate() {
            let bytes = entry::encode(topic, &serde_json::json!({ "seq": i })).unwrap();
            fake.entries
                .borrow_mut()
                .push((EntryId::at(1, 100 * i as u64), bytes));
        }
        fake
    }
}

impl Capture for Fake {
    fn stop_requested(&self) -> bool {
        self.stop.get()
    }
    fn pending(&self) -> u64 {
        let acked = self.acked.get();
        self.entries
            .borrow()
            .iter()
            .filter(|(id, _)| Some(*id) > acked)
            .count() as u64
    }
    fn new_cameras(&self) -> Option<Vec<(String, Reports)>> {
        self.cameras.borrow_mut().take()
    }
    fn stats(&self, pending: u64) -> serde_json::Value {
        serde_json::json!({ "pending": pending })
    }
    fn read(&self, after: Option<EntryId>, max: usize) -> Vec<(EntryId, Vec<u8>)> {
        let bound = after.max(self.acked.get());
        self.entries
            .borrow()
            .iter()
            .filter(|(id, _)| Some(*id) > bound)
            .take(max)
            .cloned()
            .collect()
    }
    fn acknowledge(&self, through: EntryId) {
        assert!(Some(through) > self.acked.get(), "acknowledged backwards");
        self.acked.set(Some(through));
    }
    fn set_aside(&self, id: EntryId, topic: &str, _payload: &[u8], reason: &str) {
        self.set_aside
            .borrow_mut()
            .push((id, topic.to_string(), reason.to_string()));
    }
}

fn config(text: &str) -> MqttConfig {
    let table: toml::Table = toml::from_str(text).unwrap();
    crate::config_parse::parse_section("sink", table).unwrap()
}

fn machine(text: &str) -> Machine {
    let config = config(text);
    let topics = Topics::new(&config.prefix, &config.device);
    let mut machine = Machine::new(config, topics);
    machine.connecting(Instant::now(), Duration::from_secs(6));
    machine
}

/// The topics of the publishes among `actions`.
fn published(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish { topic, .. } => Some(topic.clone()),
            _ => None,
        })
        .collect()
}

const PLAIN: &str = "device = \"door\"\nstats_interval_s = 0\ninflight = 4\n";

#[test]
fn nothing_is_sent_before_an_accepting_connack() {
    let fake = Fake::with(&["edgevit/door/cam0/result"]);
    let mut m = machine(PLAIN);
    let now = Instant::now();
    assert!(m.handle(Input::Timeout, &fake, now).iter().any(
        |a| matches!(a, Action::End(Outcome::Failed(why)) if why.contains("no answer") && why.contains("6.0 s"))
    ));
    m.connecting(now, Duration::from_secs(6));
    let refused = m.handle(
        Input::ConnAck(ConnectReturnCode::BadUserNamePassword),
        &fake,
        now,
    );
    assert!(
        matches!(&refused[..], [Action::End(Outcome::Failed(why))] if why.contains("sink.username")),
        "{refused:?}"
    );
    assert!(!m.is_connected());
}

#[test]
fn a_connack_announces_online_then_sends_the_spool_in_order() {
    let fake = Fake::with(&["edgevit/door/a/result", "edgevit/door/b/result"]);
    let mut m = machine(PLAIN);
    let now = Instant::now();
    let actions = m.handle(Input::ConnAck(ConnectReturnCode::Success), &fake, now);
    assert!(m.is_connected());
    assert_eq!(
        published(&actions),
        [
            "edgevit/door/availability",
            "edgevit/door/a/result",
            "edgevit/door/b/result"
        ]
    );
    assert_eq!(m.wait(), POLL, "connected: poll the spool");
    // rumqttc reports each publish leaving, in order, then the acknowledgements.
    for pkid in [1, 2, 3] {
        m.handle(Input::Sent(pkid), &fake, now);
    }
    m.handle(Input::PubAck(3), &fake, now);
    assert_eq!(fake.acked.get(), None, "b waits for a");
    m.handle(Input::PubAck(2), &fake, now);
    assert_eq!(fake.acked.get(), Some(EntryId::at(1, 100)));
    assert_eq!(fake.pending(), 0);
}

#[test]
fn the_window_is_topped_up_as_acknowledgements_come() {
    let topics: Vec<String> = (0..6)
        .map(|i| format!("edgevit/door/c{i}/result"))
        .collect();
    let fake = Fake::with(&topics.iter().map(String::as_str).collect::<Vec<_>>());
    let mut m = machine(PLAIN);
    let now = Instant::now();
    let first = m.handle(Input::ConnAck(ConnectReturnCode::Success), &fake, now);
    assert_eq!(published(&first).len(), 1 + 4, "online and a window of 4");
    for pkid in 1..=5 {
        m.handle(Input::Sent(pkid), &fake, now);
    }
    let more = m.handle(Input::PubAck(2), &fake, now);
    assert_eq!(published(&more), ["edgevit/door/c4/result"]);
}

#[test]
fn an_entry_that_can_never_be_published_is_set_aside_and_does_not_block() {
    // Left by an earlier version: a wildcard in the device, a newline in a camera id, an old
    // entry with no topic at all; good entries around them.
    let fake = Fake::with(&[
        "edgevit/door+1/demo/result",
        "edgevit/door/good/result",
        "edgevit/door/cam\nA/result",
    ]);
    fake.entries
        .borrow_mut()
        .push((EntryId::at(2, 0), b"no topic here".to_vec()));
    let mut m = machine(PLAIN);
    let now = Instant::now();
    let actions = m.handle(Input::ConnAck(ConnectReturnCode::Success), &fake, now);
    assert_eq!(
        published(&actions),
        ["edgevit/door/availability", "edgevit/door/good/result"]
    );
    let aside = fake.set_aside.borrow().clone();
    assert_eq!(aside.len(), 3, "{aside:?}");
    assert!(aside[0].2.contains("wildcard"), "{aside:?}");
    assert!(aside[1].2.contains("line break"), "{aside:?}");
    assert!(aside[2].2.contains("no topic"), "{aside:?}");
    assert_eq!(
        fake.acked.get(),
        Some(EntryId::at(1, 0)),
        "the first bad entry is done at once; the rest wait for the good one"
    );
    m.handle(Input::Sent(1), &fake, now);
    m.handle(Input::Sent(2), &fake, now);
    m.handle(Input::PubAck(2), &fake, now);
    assert_eq!(
        fake.acked.get(),
        Some(EntryId::at(2, 0)),
        "everything is done"
    );
    assert_eq!(fake.pending(), 0);
}

#[test]
fn an_entry_over_the_packet_limit_is_set_aside() {
    let fake = Fake::default();
    let big = vec![b'x'; super::super::connection::MAX_PACKET];
    let mut bytes = entry::encode("edgevit/door/cam0/result", &"").unwrap();
    bytes.extend_from_slice(&big);
    fake.entries.borrow_mut().push((EntryId::at(1, 0), bytes));
    let mut m = machine(PLAIN);
    let actions = m.handle(
        Input::ConnAck(ConnectReturnCode::Success),
        &fake,
        Instant::now(),
    );
    assert_eq!(published(&actions), ["edgevit/door/availability"]);
    assert!(fake.set_aside.borrow()[0].2.contains("over the limit"));
}

#[test]
fn losing_the_connection_after_the_connack_is_lost_not_failed() {
    let fake = Fake::default();
    let mut m = machine(PLAIN);
    let now = Instant::now();
    m.handle(Input::ConnAck(ConnectReturnCode::Success), &fake, now);
    let error = ConnectionError::NetworkTimeout;
    let actions = m.handle(Input::Error(&error), &fake, now);
    assert!(
        matches!(&actions[..], [Action::End(Outcome::Lost(why))] if why.contains("lost")),
        "{actions:?}"
    );
    assert!(!m.is_connected());
    let actions = m.handle(Input::QueueFull, &fake, now);
    assert!(matches!(&actions[..], [Action::End(Outcome::Lost(why))] if why == QUEUE_FULL));
}

#[test]
fn a_stop_drains_then_says_stopped_and_disconnects() {
    let fake = Fake::with(&["edgevit/door/a/result"]);
    let mut m = machine(PLAIN);
    let now = Instant::now();
    m.handle(Input::ConnAck(ConnectReturnCode::Success), &fake, now);
    fake.stop.set(true);
    let waiting = m.handle(Input::Timeout, &fake, now);
    assert!(
        !waiting.contains(&Action::Disconnect),
        "one result is still in flight: {waiting:?}"
    );
    m.handle(Input::Sent(1), &fake, now);
    m.handle(Input::Sent(2), &fake, now);
    m.handle(Input::PubAck(1), &fake, now);
    let actions = m.handle(Input::PubAck(2), &fake, now);
    assert_eq!(published(&actions), ["edgevit/door/availability"]);
    assert!(
        matches!(&actions[0], Action::Publish { payload, retain: true, .. } if payload == b"stopped")
    );
    assert!(
        !actions.contains(&Action::Disconnect),
        "the DISCONNECT waits for `stopped` to be acknowledged: {actions:?}"
    );
    m.handle(Input::Sent(3), &fake, now);
    assert!(m.handle(Input::Timeout, &fake, now).is_empty());
    assert_eq!(m.handle(Input::PubAck(3), &fake, now), [Action::Disconnect]);
    let end = m.handle(Input::DisconnectSent, &fake, now);
    assert_eq!(end, [Action::End(Outcome::Finished)]);
}

#[test]
fn a_stop_gives_up_at_the_drain_deadline() {
    let fake = Fake::with(&["edgevit/door/a/result"]);
    let mut m = machine(&format!("{PLAIN}drain_timeout_ms = 1000\n"));
    let now = Instant::now();
    m.handle(Input::ConnAck(ConnectReturnCode::Success), &fake, now);
    fake.stop.set(true);
    assert!(!m.stopping(&fake, now), "the result may still arrive");
    let later = now + Duration::from_millis(1001);
    assert!(m.stopping(&fake, later));
    let actions = m.handle(Input::Timeout, &fake, later);
    assert_eq!(
        published(&actions),
        ["edgevit/door/availability"],
        "stopped"
    );
    // `stopped` is never acknowledged: the DISCONNECT goes at the second drain time's end.
    let before = later + Duration::from_millis(999);
    assert!(m.handle(Input::Timeout, &fake, before).is_empty());
    let end = later + Duration::from_millis(1000);
    assert_eq!(m.handle(Input::Timeout, &fake, end), [Action::Disconnect]);
    let error = ConnectionError::NetworkTimeout;
    assert_eq!(
        m.handle(Input::Error(&error), &fake, later),
        [Action::End(Outcome::Finished)],
        "an error while disconnecting ends the session cleanly"
    );
}

#[test]
fn discovery_subscribes_and_announces_cameras_and_again_when_home_assistant_returns() {
    let fake = Fake::default();
    *fake.cameras.borrow_mut() = Some(vec![("cam0".into(), Reports::Classes)]);
    let mut m = machine(&format!("{PLAIN}[discovery]\nenabled = true\n"));
    let now = Instant::now();
    let actions = m.handle(Input::ConnAck(ConnectReturnCode::Success), &fake, now);
    assert!(actions.contains(&Action::Subscribe("homeassistant/status".into())));
    let announced = published(&actions)
        .iter()
        .filter(|t| t.starts_with("homeassistant/"))
        .count();
    assert!(announced > 0, "{actions:?}");
    assert!(published(&m.handle(Input::Timeout, &fake, now)).is_empty());
    let back = m.handle(
        Input::Message {
            topic: "homeassistant/status",
            payload: b"online",
        },
        &fake,
        now,
    );
    assert_eq!(
        published(&back)
            .iter()
            .filter(|t| t.starts_with("homeassistant/"))
            .count(),
        announced
    );
}

#[test]
fn statistics_go_out_on_their_interval() {
    let fake = Fake::default();
    let mut m = machine("device = \"door\"\nstats_interval_s = 30\n");
    let now = Instant::now();
    let first = m.handle(Input::ConnAck(ConnectReturnCode::Success), &fake, now);
    assert!(!published(&first).contains(&"edgevit/door/stats".to_string()));
    let later = m.handle(Input::Timeout, &fake, now + Duration::from_secs(31));
    assert_eq!(published(&later), ["edgevit/door/stats"]);
    let soon = m.handle(Input::Timeout, &fake, now + Duration::from_secs(32));
    assert!(published(&soon).is_empty());
}
