//! The MQTT sink against a real Mosquitto broker (started here on a free loopback port).
//! Where mosquitto is not installed these tests fail, naming the command that installs it.

mod common;

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::broker::{free_port, installed, Broker};

/// A subscriber to `edgevit/#` with a persistent session, collecting (topic, payload).
struct Subscriber {
    messages: Arc<Mutex<Vec<(String, String)>>>,
}

impl Subscriber {
    fn start(port: u16, id: &str) -> Subscriber {
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_clean_session(false);
        // Snapshots (JPEG) are larger than rumqttc's default of 10 kB.
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut connection) = Client::new(options, 100);
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&messages);
        std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.try_subscribe("edgevit/#", QoS::AtLeastOnce);
                        let _ = client.try_subscribe("homeassistant/#", QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let payload = String::from_utf8_lossy(&p.payload).into_owned();
                        sink.lock().unwrap().push((p.topic.clone(), payload));
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        Subscriber { messages }
    }

    /// The results received so far, as (camera topic, seq).
    fn results(&self) -> Vec<(String, u64)> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t.ends_with("/result"))
            .map(|(t, p)| {
                let v: serde_json::Value = serde_json::from_str(p).unwrap();
                (t.clone(), v["seq"].as_u64().unwrap())
            })
            .collect()
    }

    /// Payloads received on topics ending with `suffix`, parsed as JSON.
    fn json(&self, suffix: &str) -> Vec<(String, serde_json::Value)> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t.ends_with(suffix))
            .map(|(t, p)| (t.clone(), serde_json::from_str(p).unwrap()))
            .collect()
    }

    fn availability(&self) -> Vec<String> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t.ends_with("/availability"))
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn wait_for(&self, what: &str, seconds: u64, done: impl Fn(&Subscriber) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:?}",
                self.messages.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The retained payload of `topic`, as bytes, read by a fresh client.
fn retained_bytes(port: u16, topic: &str) -> Vec<u8> {
    let mut options = MqttOptions::new("sub-retained", "127.0.0.1", port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(options, 10);
    let deadline = Instant::now() + Duration::from_secs(10);
    for event in connection.iter() {
        assert!(Instant::now() < deadline, "nothing retained on {topic}");
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                client.subscribe(topic, QoS::AtLeastOnce).unwrap();
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == topic => {
                assert!(p.retain, "{topic} is retained");
                return p.payload.to_vec();
            }
            Ok(_) => {}
            Err(e) => panic!("{topic}: {e}"),
        }
    }
    panic!("the connection to the broker ended");
}

/// The last retained availability, read by a fresh client.
fn retained_availability(port: u16) -> String {
    let sub = Subscriber::start(port, &format!("probe-{}", free_port()));
    sub.wait_for("the retained availability", 10, |s| {
        !s.availability().is_empty()
    });
    sub.availability()[0].clone()
}

/// Publishes one QoS 1 message and waits for the broker's acknowledgement (10 s at most: on a
/// loaded machine the connection may fail and be made again before it comes).
fn publish_once(port: u16, topic: &str, payload: &str) {
    let (client, mut connection) =
        Client::new(MqttOptions::new("publisher", "127.0.0.1", port), 10);
    client
        .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    while Instant::now() < deadline {
        match connection.recv() {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => return,
            Ok(Err(e)) => {
                last = Some(e.to_string());
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(Ok(_)) => {}
            Err(_) => break,
        }
    }
    panic!("no acknowledgement for {topic} (last connection error: {last:?})");
}

fn config(dir: &Path, port: u16, source: &str) -> PathBuf {
    mqtt_config(
        dir,
        port,
        &format!("kind = \"pattern\"\nwidth = 32\nheight = 32\n{source}"),
        "",
    )
}

fn mqtt_config(dir: &Path, port: u16, source: &str, sink_extra: &str) -> PathBuf {
    common::write_config(
        dir,
        &format!(
            "[source]\n{source}\n\
             [model]\npath = \"{{model}}\"\n[classify]\ntop_k = 1\n\
             [sink]\nkind = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\ndevice = \"test\"\n\
             reconnect_min_ms = 200\nreconnect_max_ms = 1000\ndrain_timeout_ms = 20000\n{sink_extra}\n\
             [sink.spool]\npath = \"spool\"\n"
        ),
    )
}

fn edgevit(config: &Path) -> common::Running {
    common::Running::new(
        Command::new(env!("CARGO_BIN_EXE_edgevit"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .spawn()
            .unwrap(),
    )
}

/// After removing duplicates (same seq, from QoS 1 redelivery), `seqs` must be 0..n in order.
fn assert_complete_in_order(results: &[(String, u64)], camera: &str, n: u64) {
    let mut seqs: Vec<u64> = results
        .iter()
        .filter(|(t, _)| t.contains(&format!("/{camera}/")))
        .map(|r| r.1)
        .collect();
    seqs.dedup();
    assert_eq!(
        seqs,
        (0..n).collect::<Vec<_>>(),
        "every result of {camera}, in order"
    );
}

#[test]
fn results_arrive_in_order_and_a_clean_stop_says_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(tmp.path(), port);
    let sub = subscribed(port, "sub-order");
    let status = edgevit(&config(tmp.path(), port, "frames = 25\ncamera = \"gate\"")).wait();
    assert!(status.success());
    sub.wait_for("25 results", 10, |s| s.results().len() >= 25);
    let results = sub.results();
    assert!(
        results.iter().all(|(t, _)| t == "edgevit/test/gate/result"),
        "{results:?}"
    );
    assert_complete_in_order(&results, "gate", 25);
    sub.wait_for("stopped", 5, |s| {
        s.availability().last().is_some_and(|a| a == "stopped")
    });
    assert!(sub.availability().contains(&"online".to_string()));
    assert_eq!(retained_availability(port), "stopped");
}

#[test]
fn broker_restart_mid_run_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = Broker::start(tmp.path(), port);
    let sub = subscribed(port, "sub-restart");
    let run = edgevit(&config(
        tmp.path(),
        port,
        "frames = 60\nfps = 20\ncamera = \"yard\"",
    ));
    sub.wait_for("the first results", 20, |s| !s.results().is_empty());
    broker.stop();
    // What had arrived when the broker went away: the rest was still to be delivered, so it
    // had to wait out the outage in the spool.
    let mut before: Vec<u64> = sub.results().iter().map(|r| r.1).collect();
    before.dedup();
    assert!(
        before.len() < 60,
        "every result arrived before the broker stopped: the outage tested nothing"
    );
    std::thread::sleep(Duration::from_secs(2));
    broker.restart();
    assert!(run.wait().success());
    sub.wait_for("60 distinct results", 20, |s| {
        let mut seqs: Vec<u64> = s.results().iter().map(|r| r.1).collect();
        seqs.dedup();
        seqs.len() >= 60
    });
    assert_complete_in_order(&sub.results(), "yard", 60);
}

#[test]
fn sigkill_while_connected_leaves_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(tmp.path(), port);
    let sub = subscribed(port, "sub-kill");
    let run = edgevit(&config(tmp.path(), port, "fps = 10"));
    sub.wait_for("online", 20, |s| {
        s.availability().last().is_some_and(|a| a == "online")
    });
    common::signal(run.child(), "KILL");
    run.wait();
    sub.wait_for("offline", 10, |s| {
        s.availability().last().is_some_and(|a| a == "offline")
    });
    assert_eq!(retained_availability(port), "offline");
}

#[test]
fn results_spooled_before_a_kill_arrive_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    // The broker starts later: mosquitto must be there (the test fails here if not).
    installed();
    // The broker is down: ten results go to the spool, then edgevit is killed while it waits.
    let first = edgevit(&config(
        tmp.path(),
        port,
        "frames = 10\ncamera = \"before\"",
    ));
    wait_until_spooled(&tmp.path().join("spool"), 10);
    common::signal(first.child(), "KILL");
    first.wait();

    let _broker = Broker::start(tmp.path(), port);
    let sub = subscribed(port, "sub-spool");
    let status = edgevit(&config(tmp.path(), port, "frames = 1\ncamera = \"after\"")).wait();
    assert!(status.success());
    sub.wait_for("11 results", 20, |s| s.results().len() >= 11);
    let results = sub.results();
    assert_complete_in_order(&results, "before", 10);
    assert_complete_in_order(&results, "after", 1);
    let first_after = results
        .iter()
        .position(|(t, _)| t.contains("/after/"))
        .unwrap();
    assert!(
        results[..first_after]
            .iter()
            .filter(|(t, _)| t.contains("/before/"))
            .count()
            >= 10,
        "spooled results go first"
    );
}

/// Waits until the spool's first segment holds `n` results.
fn wait_until_spooled(spool: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Results only: events carry a "seq" too, but no "task".
        let lines = std::fs::read(spool.join("00000000000000000001.seg"))
            .map(|b| b.windows(7).filter(|w| w == b"\"task\":").count())
            .unwrap_or(0);
        if lines >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not spool its {n} results"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The case for the run id (docs/output.md): without `state_dir`, a run whose results wait in the
/// spool through an outage and the next run both number from 0. A subscriber dropping
/// duplicates by the documented key `(device, camera, run, seq)` keeps every record of both;
/// by `(camera, seq)` alone it would throw the first run's away.
#[test]
fn two_runs_with_an_outage_between_are_told_apart_by_the_dedup_key() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    // The broker starts later: mosquitto must be there (the test fails here if not).
    installed();
    let first = edgevit(&config(tmp.path(), port, "frames = 26\ncamera = \"gate\""));
    wait_until_spooled(&tmp.path().join("spool"), 26);
    common::signal(first.child(), "KILL");
    first.wait();

    let _broker = Broker::start(tmp.path(), port);
    let sub = subscribed(port, "sub-dedup");
    let status = edgevit(&config(tmp.path(), port, "frames = 31\ncamera = \"gate\"")).wait();
    assert!(status.success());
    sub.wait_for("57 results", 20, |s| s.json("/result").len() >= 57);
    let mut keys = Vec::new();
    for (topic, record) in sub.json("/result") {
        let run = record["run"].as_str().expect("run id").to_string();
        let key = (topic, run, record["seq"].as_u64().expect("seq"));
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let runs: Vec<&String> = keys.iter().fold(Vec::new(), |mut runs, (_, run, _)| {
        if !runs.contains(&run) {
            runs.push(run);
        }
        runs
    });
    assert_eq!(runs.len(), 2, "two runs, two ids: {runs:?}");
    assert!(runs[0] < runs[1], "a later run's id sorts after: {runs:?}");
    for (run, n) in [(runs[0], 26), (runs[1], 31)] {
        let seqs: Vec<u64> = keys
            .iter()
            .filter(|(topic, r, _)| r == run && topic == "edgevit/test/gate/result")
            .map(|k| k.2)
            .collect();
        assert_eq!(
            seqs,
            (0..n).collect::<Vec<u64>>(),
            "run {run}: every record, in order"
        );
    }
    let by_camera_and_seq: std::collections::HashSet<u64> = keys.iter().map(|k| k.2).collect();
    assert_eq!(
        by_camera_and_seq.len(),
        31,
        "(camera, seq) alone would lose 26 records"
    );
}

#[test]
fn events_discovery_and_stats() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(tmp.path(), port);
    // The same digit, 15 times: one event starts after 3 frames and never ends.
    let frames = tmp.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    let seven = std::fs::read_dir(common::default_model().join("samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("digit-7-")
        })
        .unwrap();
    for i in 0..15 {
        std::fs::copy(&seven, frames.join(format!("{i:02}.png"))).unwrap();
    }
    let sub = subscribed(port, "sub-events");
    let config = mqtt_config(
        tmp.path(),
        port,
        &format!(
            "kind = \"image-dir\"\npath = \"{}\"\nfps = 5\ncamera = \"shelf\"",
            frames.display()
        ),
        "stats_interval_s = 1\n[sink.events]\nframes = 3\nmin_score = 0.5",
    );
    let run = edgevit(&config);
    sub.wait_for("discovery", 20, |s| s.json("/config").len() >= 3);
    let announced = sub.json("/config").len();
    publish_once(port, "homeassistant/status", "online");
    sub.wait_for("discovery again after Home Assistant's restart", 10, |s| {
        s.json("/config").len() >= announced + 3
    });
    assert!(run.wait().success());

    let events = sub.json("/shelf/event");
    assert_eq!(
        events.len(),
        2,
        "one start, no flapping, one end at the stop: {events:?}"
    );
    let (_, start) = &events[0];
    assert_eq!(start["type"], "start");
    assert_eq!(start["event_type"], "start");
    assert_eq!(start["label"], "7");
    assert_eq!(start["seq"], 2, "started by the third frame");
    let run = sub.json("/shelf/result")[0].1["run"]
        .as_str()
        .expect("results carry the run id")
        .to_string();
    assert_eq!(start["id"], format!("shelf-{run}-2"));
    let (_, end) = &events[1];
    assert_eq!(end["type"], "end", "a clean stop ends the open event");
    assert_eq!(end["id"], start["id"]);
    assert_eq!(end["seq"], 14, "at the last frame");

    let discovery = sub.json("/config");
    let ids: std::collections::HashSet<String> = discovery
        .iter()
        .map(|(_, p)| p["unique_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3, "label, score and event entities: {ids:?}");
    for (topic, payload) in &discovery {
        assert!(
            topic.starts_with("homeassistant/sensor/edgevit_test/")
                || topic.starts_with("homeassistant/event/edgevit_test/"),
            "{topic}"
        );
        assert_eq!(
            payload["availability"][0]["topic"],
            "edgevit/test/availability"
        );
        assert!(payload["state_topic"]
            .as_str()
            .unwrap()
            .starts_with("edgevit/test/shelf/"));
    }

    let stats = sub.json("edgevit/test/stats");
    assert!(!stats.is_empty(), "stats every second during a 3 s run");
    let (_, last) = stats.last().unwrap();
    assert_eq!(last["connected"], true);
    assert!(last["fps"].as_f64().unwrap() > 0.0, "{last}");
    assert!(
        last["latency_ms"]["infer"].as_f64().unwrap() > 0.0,
        "{last}"
    );
}

/// A scene on MQTT: two people tracked through a camera (the real detector and ReID model)
/// give one `new` and one `end` per track on `<camera>/objects/<track>` (with an `update` only
/// where what the model said changed), counts by label on `<camera>/objects` when they change,
/// and Home Assistant entities for the person label and the last identity.
#[test]
fn objects_of_a_scene_arrive_as_events_counts_and_discovery() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(tmp.path(), port);
    let cast = common::scene::people(&shared, 300);
    // Grace stands still throughout; the astronaut walks in from frame 4 and out after 12.
    let frames = tmp.path().join("frames");
    common::scene::film(&frames, (1280, 720), 18, &cast, |t| {
        let mut at = vec![("grace", 100, 300)];
        if (4..=12).contains(&t) {
            at.push(("astronaut", 500 + 20 * t as i64, 40));
        }
        at
    });
    let detector = common::centernet_package(tmp.path(), |_| {});
    let osnet = common::osnet_package(&shared, tmp.path());
    let config = tmp.path().join("scene.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nkind = \"image-dir\"\npath = \"{}\"\ncamera = \"porch\"\n\
             [model]\npath = \"{}\"\n[detector]\npath = \"{}\"\n[detect]\nclasses = [\"person\"]\n\
             [tracker]\nmax_age = 2\nevery_frames = 3\n[gallery]\npath = \"gallery.sqlite\"\n\
             [sink]\nkind = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\ndevice = \"test\"\n\
             [sink.spool]\npath = \"spool\"\n",
            frames.display(),
            osnet.display(),
            detector.display()
        ),
    )
    .unwrap();
    let sub = subscribed(port, "sub-objects");
    let run = edgevit(&config);
    assert!(run.wait().success());
    sub.wait_for("the last end", 20, |s| {
        s.json("/objects/1")
            .iter()
            .chain(s.json("/objects/2").iter())
            .filter(|(_, e)| e["type"] == "end")
            .count()
            == 2
    });

    let object_events: Vec<(String, serde_json::Value)> = sub
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| t.contains("/porch/objects/"))
        .map(|(t, p)| (t.clone(), serde_json::from_str(p).unwrap()))
        .collect();
    let mut tracks = std::collections::BTreeMap::new();
    for (topic, event) in object_events {
        assert_eq!(
            topic,
            format!("edgevit/test/porch/objects/{}", event["track"])
        );
        tracks
            .entry(event["track"].as_u64().unwrap())
            .or_insert_with(Vec::new)
            .push(event);
    }
    assert_eq!(tracks.len(), 2, "two people, two tracks: {tracks:?}");
    let mut identities = std::collections::BTreeSet::new();
    for (track, events) in &tracks {
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds.first(), Some(&"new"), "track {track}: {kinds:?}");
        assert_eq!(kinds.last(), Some(&"end"), "track {track}: {kinds:?}");
        assert_eq!(
            kinds.iter().filter(|k| **k == "new").count(),
            1,
            "track {track}: {kinds:?}"
        );
        let end = events.last().unwrap();
        assert_eq!(end["label"], "person");
        assert!(
            end["identity"]
                .as_str()
                .is_some_and(|i| i.starts_with("id-")),
            "{end}"
        );
        identities.insert(end["identity"].as_str().unwrap().to_string());
    }
    assert_eq!(identities.len(), 2, "two people, two identities");

    let counts: Vec<u64> = sub
        .json("/porch/objects")
        .iter()
        .map(|(_, c)| c["person"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        counts.first(),
        Some(&0),
        "no one is confirmed in the first frames: {counts:?}"
    );
    assert!(
        counts.windows(2).all(|w| w[0] != w[1]),
        "sent only on a change: {counts:?}"
    );
    assert!(
        counts.contains(&2) && counts.last() == Some(&1),
        "{counts:?}"
    );

    let discovery: Vec<String> = sub.json("/config").into_iter().map(|(t, _)| t).collect();
    for entity in [
        "binary_sensor/edgevit_test/porch_person_occupancy",
        "sensor/edgevit_test/porch_person_count",
        "sensor/edgevit_test/porch_last_identity",
        "event/edgevit_test/porch_object_event",
    ] {
        assert!(
            discovery.iter().any(|t| t.contains(entity)),
            "{entity} in {discovery:?}"
        );
    }
}

/// "Who is at the door" on MQTT: Grace Hopper, enrolled by name, comes to a door camera for
/// four frames and goes; the camera's identity topic and her own say `recognized` (at the third
/// frame in a row) and `left` (after three frames without her), named, with the distance; Home
/// Assistant gets the last recognised person, the recognition events and an event entity for
/// her.
#[test]
fn a_door_camera_names_who_came_on_mqtt_and_home_assistant() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(tmp.path(), port);
    let frames = tmp.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let grace = image::open(shared.join("reference/images/grace_hopper.bmp"))
        .unwrap()
        .to_rgb8();
    for t in 0..7 {
        let frame = if t < 4 {
            grace.clone()
        } else {
            image::RgbImage::from_pixel(512, 600, image::Rgb([120, 120, 120]))
        };
        frame.save(frames.join(format!("{t}.png"))).unwrap();
    }
    let detector = common::blazeface_package(tmp.path());
    let descriptor = common::face_descriptor_package(tmp.path());
    let config = tmp.path().join("door.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nkind = \"image-dir\"\npath = \"{}\"\ncamera = \"door\"\n\
             [detector]\npath = \"{}\"\n[model]\npath = \"{}\"\n\
             [gallery]\npath = \"gallery.sqlite\"\nthreshold = 0.5\n\
             [sink]\nkind = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\ndevice = \"test\"\n\
             [sink.spool]\npath = \"spool\"\n",
            frames.display(),
            detector.display(),
            descriptor.display()
        ),
    )
    .unwrap();
    let grace_photo = shared.join("reference/images/grace_hopper.bmp");
    let enrolled = common::enroll(&config, "Grace Hopper", &grace_photo);
    assert!(enrolled.status.success(), "{}", common::stderr(&enrolled));
    let sub = subscribed(port, "sub-door");
    let run = edgevit(&config);
    assert!(run.wait().success());
    sub.wait_for("her leaving", 20, |s| {
        s.json("/door/identity")
            .iter()
            .any(|(_, e)| e["type"] == "left")
    });
    let at_door = sub.json("/door/identity");
    let kinds: Vec<(&str, u64)> = at_door
        .iter()
        .map(|(_, e)| (e["type"].as_str().unwrap(), e["seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, [("recognized", 2), ("left", 6)], "{at_door:?}");
    for (_, event) in &at_door {
        assert_eq!(event["name"], "Grace Hopper");
        assert_eq!(event["label"], "Grace Hopper");
        assert!(
            event["distance"].as_f64().is_some_and(|d| d < 0.5),
            "{event}"
        );
    }
    let hers = sub.json("/door/identity/Grace Hopper");
    assert_eq!(hers.len(), 2, "her own topic: {hers:?}");
    // Her face as a retained JPEG, for Home Assistant's MQTT camera.
    let snapshot = retained_bytes(port, "edgevit/test/door/snapshot/face");
    let picture = image::load_from_memory(&snapshot).expect("a JPEG");
    eprintln!(
        "snapshot: {} bytes, {}x{}",
        snapshot.len(),
        picture.width(),
        picture.height()
    );
    assert_eq!(
        (picture.width(), picture.height()),
        (150, 150),
        "the aligned chip"
    );
    let discovery: Vec<String> = sub.json("/config").into_iter().map(|(t, _)| t).collect();
    for entity in [
        "sensor/edgevit_test/door_last_identity",
        "event/edgevit_test/door_recognition",
        "event/edgevit_test/door_grace_hopper_seen",
        "camera/edgevit_test/door_face_snapshot",
    ] {
        assert!(
            discovery.iter().any(|t| t.contains(entity)),
            "{entity} in {discovery:?}"
        );
    }
}

// ---- TLS and authentication ----

/// A throwaway certificate authority whose files live in `dir`.
struct Pki {
    dir: PathBuf,
    name: String,
    ca: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Pki {
    fn new(dir: &Path, name: &str) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("edgevit test {name}"));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), ca.pem()).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            ca,
            key,
        }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join(format!("{}.pem", self.name))
    }

    /// Issues `<name>.crt` and `<name>.key` for `names` (DNS names or IP addresses), for a
    /// server or a client.
    fn issue(&self, name: &str, names: &[&str], client: bool) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = params.signed_by(&key, &self.ca, &self.key).unwrap();
        let (cert_file, key_file) = (
            self.dir.join(format!("{name}.crt")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }
}

/// A TLS listener on `port` with the server certificate `server` of `pki`, then `auth`.
/// A temporary folder with a CA (`pki/ca.pem`) and a broker with two listeners: a plain one for
/// the test subscriber, and a TLS one with a server certificate for `server_names` and the
/// authentication lines `auth` makes (given the folder).
struct TlsSetup {
    tmp: tempfile::TempDir,
    plain: u16,
    secure: u16,
    pki: Pki,
    _broker: Broker,
}

fn tls_setup(server_names: &[&str], auth: impl FnOnce(&Path) -> String) -> TlsSetup {
    installed();
    let tmp = tempfile::tempdir().unwrap();
    let (plain, secure) = (free_port(), free_port());
    let pki = Pki::new(&tmp.path().join("pki"), "ca");
    let server = pki.issue("server", server_names, false);
    let listener = tls_listener(secure, &pki, &server, &auth(tmp.path()));
    let broker = Broker::start_with(tmp.path(), plain, &listener);
    TlsSetup {
        tmp,
        plain,
        secure,
        pki,
        _broker: broker,
    }
}

/// Runs edgevit against the TLS listener of `setup` with settings the broker will not accept:
/// the run ends by itself (short drain time), logs a line holding every one of `needles` on at
/// least two attempts, never connects, and nothing reaches the broker.
fn assert_refused_twice(
    setup: &TlsSetup,
    sub: &Subscriber,
    source: &str,
    sink: &str,
    tls: &str,
    needles: &[&str],
) {
    let config = tls_config(setup.tmp.path(), setup.secure, source, sink, tls, 4_000);
    let mut run = Run::start(&config);
    assert!(run.wait(60).success());
    assert!(
        run.lines_with(needles) >= 2,
        "a clear message on every attempt:\n{}",
        run.log()
    );
    assert_eq!(run.lines_with(&["connected to"]), 0, "{}", run.log());
    assert!(sub.results().is_empty(), "{:?}", sub.results());
    assert!(sub.availability().is_empty(), "{:?}", sub.availability());
}

fn tls_listener(port: u16, pki: &Pki, server: &(PathBuf, PathBuf), auth: &str) -> String {
    format!(
        "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n{auth}\n",
        pki.ca_file().display(),
        server.0.display(),
        server.1.display(),
    )
}

/// `allow_anonymous false` and a password file with `user` / `password` (mosquitto_passwd).
fn password_auth(dir: &Path, user: &str, password: &str) -> String {
    let file = dir.join("passwords");
    let status = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&file)
        .args([user, password])
        .status()
        .expect("mosquitto_passwd (package mosquitto) runs");
    assert!(status.success());
    format!("allow_anonymous false\npassword_file {}\n", file.display())
}

/// An `edgevit run` configuration for a broker on `port` with `[sink.tls]` `tls` (relative
/// paths are relative to `dir`), `sink` lines (credentials) and a drain time short enough for
/// a run that cannot connect to end by itself soon.
fn tls_config(
    dir: &Path,
    port: u16,
    source: &str,
    sink: &str,
    tls: &str,
    drain_ms: u64,
) -> PathBuf {
    common::write_config(
        dir,
        &format!(
            "[source]\nkind = \"pattern\"\nwidth = 32\nheight = 32\n{source}\n\
             [model]\npath = \"{{model}}\"\n[classify]\ntop_k = 1\n\
             [sink]\nkind = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\ndevice = \"test\"\n\
             reconnect_min_ms = 200\nreconnect_max_ms = 1000\ndrain_timeout_ms = {drain_ms}\n{sink}\n\
             [sink.spool]\npath = \"spool\"\n[sink.tls]\n{tls}\n"
        ),
    )
}

/// A running `edgevit run` whose log (stderr) is collected, and echoed for a failing test.
struct Run {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Run {
    fn start(config: &Path) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgevit"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("edgevit: {line}");
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Run {
            child,
            log,
            reader: Some(reader),
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Log lines containing every one of `needles`.
    fn lines_with(&self, needles: &[&str]) -> usize {
        self.log()
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .count()
    }

    /// Waits for the process to end by itself, then for the rest of its log.
    fn wait(&mut self, seconds: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("edgevit did not end within {seconds} s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        status
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Proves the subscriber is subscribed before edgevit starts, so that "nothing arrived" means
/// nothing was published.
fn subscribed(port: u16, id: &str) -> Subscriber {
    let sub = Subscriber::start(port, id);
    let deadline = Instant::now() + Duration::from_secs(10);
    let marked = |s: &Subscriber| {
        s.messages
            .lock()
            .unwrap()
            .iter()
            .any(|(t, _)| t == "edgevit/marker")
    };
    // Not retained, so sent again until the subscription has caught one.
    while !marked(&sub) {
        assert!(Instant::now() < deadline, "the subscriber never subscribed");
        publish_once(port, "edgevit/marker", "here");
        std::thread::sleep(Duration::from_millis(200));
    }
    sub
}

#[test]
fn tls_with_a_password_file_delivers_in_order() {
    let setup = tls_setup(&["localhost", "127.0.0.1"], |dir| {
        password_auth(dir, "camera", "s3cret")
    });
    let (tmp, plain, secure) = (&setup.tmp, setup.plain, setup.secure);
    let sub = subscribed(plain, "sub-tls");
    std::fs::write(tmp.path().join("password"), "s3cret\n").unwrap();
    let config = tls_config(
        tmp.path(),
        secure,
        "frames = 25\ncamera = \"gate\"",
        "username = \"camera\"\npassword_file = \"password\"",
        "ca_file = \"pki/ca.pem\"",
        20_000,
    );
    let mut run = Run::start(&config);
    assert!(run.wait(60).success());
    sub.wait_for("25 results", 10, |s| s.results().len() >= 25);
    assert_complete_in_order(&sub.results(), "gate", 25);
    sub.wait_for("stopped", 5, |s| {
        s.availability().last().is_some_and(|a| a == "stopped")
    });
    assert_eq!(sub.availability()[0], "online");
    assert_eq!(run.lines_with(&["refused"]), 0, "{}", run.log());
}

#[test]
fn wrong_password_is_retried_and_never_online_and_loses_nothing() {
    let setup = tls_setup(&["localhost", "127.0.0.1"], |dir| {
        password_auth(dir, "camera", "s3cret")
    });
    let (tmp, plain, secure) = (&setup.tmp, setup.plain, setup.secure);
    let sub = subscribed(plain, "sub-password");
    let tls = "ca_file = \"pki/ca.pem\"";
    // Ten results go to the spool while the broker refuses the login; the run ends by itself
    // once its drain time is up.
    let broker = format!("MQTT broker 127.0.0.1:{secure} refused the connection");
    assert_refused_twice(
        &setup,
        &sub,
        "frames = 10\ncamera = \"before\"",
        "username = \"camera\"\npassword = \"wrong\"",
        tls,
        &[&broker, "will retry in"],
    );

    let mut second = Run::start(&tls_config(
        tmp.path(),
        secure,
        "frames = 1\ncamera = \"after\"",
        "username = \"camera\"\npassword = \"s3cret\"",
        tls,
        20_000,
    ));
    assert!(second.wait(60).success());
    sub.wait_for("11 results", 20, |s| s.results().len() >= 11);
    let results = sub.results();
    assert_complete_in_order(&results, "before", 10);
    assert_complete_in_order(&results, "after", 1);
    sub.wait_for("stopped", 5, |s| {
        s.availability().last().is_some_and(|a| a == "stopped")
    });
    assert_eq!(sub.availability()[0], "online");
}

#[test]
fn untrusted_ca_is_a_tls_error_and_never_online() {
    let setup = tls_setup(&["localhost", "127.0.0.1"], |_| {
        "allow_anonymous true".to_string()
    });
    let (tmp, plain, secure) = (&setup.tmp, setup.plain, setup.secure);
    let other = Pki::new(&tmp.path().join("pki"), "other-ca");
    let sub = subscribed(plain, "sub-untrusted");
    let broker = format!("TLS with MQTT broker 127.0.0.1:{secure} failed");
    assert_refused_twice(
        &setup,
        &sub,
        "frames = 3",
        "",
        &format!("ca_file = \"{}\"", other.ca_file().display()),
        &[
            &broker,
            "UnknownIssuer",
            "sink.tls.ca_file",
            "will retry in",
        ],
    );
}

#[test]
fn certificate_name_mismatch_fails_and_server_name_fixes_it() {
    let setup = tls_setup(&["broker.test"], |_| "allow_anonymous true".to_string());
    let (tmp, plain, secure) = (&setup.tmp, setup.plain, setup.secure);
    let sub = subscribed(plain, "sub-name");
    assert_refused_twice(
        &setup,
        &sub,
        "frames = 2\ncamera = \"before\"",
        "",
        "ca_file = \"pki/ca.pem\"",
        &["TLS with MQTT broker", "sink.tls.server_name"],
    );

    let mut named = Run::start(&tls_config(
        tmp.path(),
        secure,
        "frames = 2\ncamera = \"after\"",
        "",
        "ca_file = \"pki/ca.pem\"\nserver_name = \"broker.test\"",
        20_000,
    ));
    assert!(named.wait(60).success());
    sub.wait_for("4 results", 20, |s| s.results().len() >= 4);
    assert_complete_in_order(&sub.results(), "before", 2);
    assert_complete_in_order(&sub.results(), "after", 2);
}

#[test]
fn client_certificate_is_required_and_accepted() {
    let setup = tls_setup(&["localhost", "127.0.0.1"], |_| {
        "require_certificate true\nallow_anonymous true".to_string()
    });
    let (tmp, plain, secure, pki) = (&setup.tmp, setup.plain, setup.secure, &setup.pki);
    pki.issue("client", &["edgevit"], true);
    let sub = subscribed(plain, "sub-client-cert");
    assert_refused_twice(
        &setup,
        &sub,
        "frames = 2\ncamera = \"before\"",
        "",
        "ca_file = \"pki/ca.pem\"",
        &[
            &format!("TLS with MQTT broker 127.0.0.1:{secure} failed"),
            "client_cert_file",
            "will retry in",
        ],
    );

    let mut with = Run::start(&tls_config(
        tmp.path(),
        secure,
        "frames = 2\ncamera = \"after\"",
        "",
        "ca_file = \"pki/ca.pem\"\n\
         client_cert_file = \"pki/client.crt\"\nclient_key_file = \"pki/client.key\"",
        20_000,
    ));
    assert!(with.wait(60).success());
    sub.wait_for("4 results", 20, |s| s.results().len() >= 4);
    assert_complete_in_order(&sub.results(), "before", 2);
    assert_complete_in_order(&sub.results(), "after", 2);
    assert_eq!(sub.availability()[0], "online");
}

/// The sink itself, without the binary: a refused login never sets the connected flag, while
/// the right password does (so the broker was reachable all along).
#[test]
fn refused_login_never_counts_as_connected() {
    let setup = tls_setup(&["localhost", "127.0.0.1"], |dir| {
        password_auth(dir, "camera", "s3cret")
    });
    let (tmp, secure) = (&setup.tmp, setup.secure);
    let sink = |password: &str| {
        let mut config: edgevit::sink::MqttConfig = toml::from_str(&format!(
            "host = \"127.0.0.1\"\nport = {secure}\nusername = \"camera\"\n\
             password = \"{password}\"\nreconnect_min_ms = 100\nreconnect_max_ms = 200\n\
             [tls]\nca_file = \"pki/ca.pem\"\n[spool]\npath = \"spool-{password}\"\n"
        ))
        .unwrap();
        config.resolve_paths(tmp.path());
        edgevit::sink::MqttSink::start(&config).unwrap()
    };
    let refused = sink("wrong");
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(
            !refused.is_connected(),
            "a refused login is not a connection"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(refused);
    let accepted = sink("s3cret");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !accepted.is_connected() {
        assert!(Instant::now() < deadline, "the right password connects");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn unusable_tls_files_stop_the_start_with_the_key_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"), "ca");
    pki.issue("client", &["edgevit"], true);
    pki.issue("other", &["edgevit"], true);
    std::fs::write(tmp.path().join("pki/garbage.pem"), "not a certificate\n").unwrap();
    let port = free_port();
    let cases = [
        (
            "ca_file = \"pki/missing.pem\"",
            vec!["sink.tls.ca_file", "pki/missing.pem", "No such file"],
        ),
        (
            "ca_file = \"pki/garbage.pem\"",
            vec!["sink.tls.ca_file", "pki/garbage.pem", "no certificate"],
        ),
        (
            "ca_file = \"pki/ca.pem\"\nclient_cert_file = \"pki/client.crt\"",
            vec!["client_key_file", "neither"],
        ),
        (
            "ca_file = \"pki/ca.pem\"\nclient_cert_file = \"pki/client.crt\"\n\
             client_key_file = \"pki/client.crt\"",
            vec![
                "sink.tls.client_key_file",
                "pki/client.crt",
                "no private key",
            ],
        ),
        (
            "ca_file = \"pki/ca.pem\"\nclient_cert_file = \"pki/client.crt\"\n\
             client_key_file = \"pki/other.key\"",
            vec![
                "sink.tls.client_key_file",
                "pki/other.key",
                "pki/client.crt",
            ],
        ),
        (
            "client_cert_file = \"pki/client.crt\"",
            vec!["sink.tls", "ca_file"],
        ),
    ];
    for (tls, needles) in cases {
        let config = tls_config(tmp.path(), port, "frames = 1", "", tls, 1_000);
        let output = common::edgevit(&["run", "--config", config.to_str().unwrap()]);
        common::assert_clean_failure(&output, &needles);
    }
    // A password file that is not there.
    let config = tls_config(
        tmp.path(),
        port,
        "frames = 1",
        "username = \"u\"\npassword_file = \"nowhere\"",
        "ca_file = \"pki/ca.pem\"",
        1_000,
    );
    let output = common::edgevit(&["run", "--config", config.to_str().unwrap()]);
    common::assert_clean_failure(&output, &["sink.password_file", "nowhere"]);
}

#[test]
fn camera_status_changes_are_published_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(tmp.path(), port);
    let sub = subscribed(port, "sub-camera-status");
    let mut config: edgevit::sink::MqttConfig = toml::from_str(&format!(
        "host = \"127.0.0.1\"\nport = {port}\ndevice = \"test\"\n[spool]\npath = \"spool\"\n"
    ))
    .unwrap();
    config.resolve_paths(tmp.path());
    let mut sink = edgevit::sink::MqttSink::start(&config).unwrap();
    use edgevit::sink::{CameraStatusRecord, Sink};
    use edgevit::source::CameraState;
    for (state, detail, offline_ms) in [
        (
            CameraState::Offline,
            "device gone: VIDIOC_DQBUF failed",
            None,
        ),
        (
            CameraState::Online,
            "/dev/video0 (vivid) 640x480 YUYV",
            Some(2100),
        ),
    ] {
        sink.camera_status(&CameraStatusRecord {
            camera: "door".into(),
            camera_index: 0,
            status: state,
            detail: detail.into(),
            offline_ms,
            ts: "2026-11-22T08:00:00.000Z".into(),
        })
        .unwrap();
    }
    sub.wait_for("two camera statuses", 10, |s| {
        s.json("/door/status").len() >= 2
    });
    let statuses = sub.json("/door/status");
    assert_eq!(statuses[0].0, "edgevit/test/door/status");
    assert_eq!(statuses[0].1["status"], "offline");
    assert_eq!(statuses[1].1["status"], "online");
    assert_eq!(statuses[1].1["offline_ms"], 2100);
    sink.flush().unwrap();
}

/// A spool poisoned by an earlier version (results under `edgevit/door+1/...`, which the client
/// refuses, written before names were checked) no longer blocks the run: those entries are set
/// aside in the spool's `dead-letters.jsonl`, everything behind them is delivered in order, and
/// the run ends with exit code 3 (records not delivered), not 0. The next run starts clean.
#[test]
fn a_poisoned_spool_is_drained_and_its_bad_entries_are_set_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(tmp.path(), port);
    let spool_dir = tmp.path().join("spool");
    {
        let config = edgevit::sink::spool::SpoolConfig {
            path: spool_dir.clone(),
            ..Default::default()
        };
        let mut spool = edgevit::sink::spool::Spool::open(&config).unwrap();
        // The spool's old entry form: topic, newline, payload.
        for seq in 0..3 {
            let entry =
                format!("edgevit/door+1/demo/result\n{{\"seq\":{seq},\"task\":\"classify\"}}");
            spool.append(entry.as_bytes()).unwrap();
        }
        spool
            .append(b"edgevit/test/old/result\n{\"seq\":0,\"task\":\"classify\"}")
            .unwrap();
    }
    let sub = subscribed(port, "sub-poison");
    let run = edgevit(&config(tmp.path(), port, "frames = 5\ncamera = \"gate\""));
    let status = run.wait();
    assert_eq!(
        status.code(),
        Some(3),
        "records set aside are not delivered"
    );
    sub.wait_for("the old result and 5 new ones", 20, |s| {
        s.results().len() >= 6
    });
    let results = sub.results();
    assert_eq!(results[0], ("edgevit/test/old/result".to_string(), 0));
    assert_complete_in_order(&results, "gate", 5);
    assert!(
        results.iter().all(|(t, _)| !t.contains("door")),
        "{results:?}"
    );

    let letters = std::fs::read_to_string(spool_dir.join("dead-letters.jsonl")).unwrap();
    let letters: Vec<serde_json::Value> = letters
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 3, "{letters:?}");
    for (seq, letter) in letters.iter().enumerate() {
        assert_eq!(letter["topic"], "edgevit/door+1/demo/result");
        assert_eq!(letter["payload"]["seq"], seq);
        assert!(
            letter["reason"].as_str().unwrap().contains("wildcard"),
            "{letter}"
        );
    }

    // Nothing is left to set aside: the next run delivers and ends with 0.
    let status = edgevit(&config(tmp.path(), port, "frames = 1\ncamera = \"next\"")).wait();
    assert!(status.success());
    sub.wait_for("the next run's result", 20, |s| {
        s.results().iter().any(|(t, _)| t.contains("/next/"))
    });
}
