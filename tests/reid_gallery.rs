//! Re-identification end to end with a real ReID model (OSNet x0.25 from ../shared): two
//! people, each under crops, scaling, mirroring, light, blur and JPEG re-encoding, seen by two
//! cameras, become exactly two identities that stay the same over the sequence, across a
//! restart and after a SIGKILL; an enrolled name is reported for its person.

mod common;

use image::{DynamicImage, RgbImage};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PEOPLE: [(&str, &str); 2] = [
    ("astronaut", "reference/images/astronaut.png"),
    ("grace", "reference/images/grace_hopper.bmp"),
];

/// The OSNet package (a manifest beside nothing: the ONNX file stays in ../shared).
fn osnet(shared: &Path, dir: &Path) -> PathBuf {
    common::osnet_package(shared, dir)
}

fn crop(image: &RgbImage, left: f32, top: f32, width: f32, height: f32) -> RgbImage {
    let (w, h) = (image.width() as f32, image.height() as f32);
    image::imageops::crop_imm(
        image,
        (left * w) as u32,
        (top * h) as u32,
        (width * w) as u32,
        (height * h) as u32,
    )
    .to_image()
}

fn light(image: &RgbImage, factor: f32) -> RgbImage {
    let mut out = image.clone();
    for p in out.pixels_mut() {
        for c in &mut p.0 {
            *c = (*c as f32 * factor).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// The views of one person a camera sees: `(name, image, as JPEG)`.
fn views(person: &RgbImage, mirrored: bool) -> Vec<(&'static str, RgbImage, bool)> {
    let base = if mirrored {
        image::imageops::flip_horizontal(person)
    } else {
        person.clone()
    };
    vec![
        ("whole", base.clone(), false),
        ("shifted", crop(&base, 0.06, 0.04, 0.9, 0.9), false),
        ("scaled", crop(&base, 0.1, 0.1, 0.8, 0.8), false),
        ("mirror", image::imageops::flip_horizontal(&base), false),
        ("bright", light(&base, 1.3), false),
        ("dark", light(&base, 0.7), false),
        ("blur", image::imageops::blur(&base, 2.0), false),
        ("jpeg", base, true),
    ]
}

/// Writes each person's views for one camera into `dir`, the two people interleaved;
/// returns which person each file shows.
fn camera_folder(shared: &Path, dir: &Path, mirrored: bool) -> BTreeMap<String, &'static str> {
    std::fs::create_dir_all(dir).unwrap();
    let mut truth = BTreeMap::new();
    for (p, (person, file)) in PEOPLE.iter().enumerate() {
        let image = image::open(shared.join(file)).unwrap().to_rgb8();
        for (v, (view, picture, jpeg)) in views(&image, mirrored).into_iter().enumerate() {
            let name = format!(
                "{v:02}-{p}-{person}-{view}.{}",
                if jpeg { "jpg" } else { "png" }
            );
            let path = dir.join(&name);
            if jpeg {
                let mut bytes = Vec::new();
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 50)
                    .encode_image(&DynamicImage::ImageRgb8(picture))
                    .unwrap();
                std::fs::write(&path, bytes).unwrap();
            } else {
                picture.save(&path).unwrap();
            }
            truth.insert(path.display().to_string(), *person);
        }
    }
    truth
}

fn config(dir: &Path, model: &Path, camera: &str, index: usize, images: &Path) -> PathBuf {
    let path = dir.join(format!("{camera}.toml"));
    std::fs::write(
        &path,
        format!(
            "state_dir = \"{}\"\n[model]\npath = \"{}\"\n[source]\nkind = \"image-dir\"\n\
             path = \"{}\"\ncamera = \"{camera}\"\ncamera_index = {index}\n",
            dir.join("state").display(),
            model.display(),
            images.display()
        ),
    )
    .unwrap();
    path
}

/// Runs `edgevit run` and returns its records.
fn run(config: &Path) -> Vec<Value> {
    let output = common::edgevit(&["run", "--config", config.to_str().unwrap()]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    common::json_lines(&output)
}

/// person -> the identities given to that person's views once confirmed.
fn identities(
    records: &[Value],
    truth: &BTreeMap<String, &str>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in records {
        assert_eq!(r["task"], "reid", "{r}");
        let person = truth[r["input"].as_str().unwrap()];
        eprintln!(
            "{:<44} {} {:.3} new={} confirmed={}",
            r["input"].as_str().unwrap().rsplit('/').next().unwrap(),
            r["identity"],
            r["similarity"].as_f64().unwrap(),
            r["new"],
            r["confirmed"]
        );
        if r["confirmed"] == true {
            seen.entry(person.to_string())
                .or_default()
                .insert(r["identity"].as_str().unwrap().to_string());
        }
    }
    seen
}

fn confirmed_in_gallery(config: &Path) -> Vec<Value> {
    common::gallery_list(config)
        .into_iter()
        .filter(|i| i["confirmed"] == true)
        .collect()
}

#[test]
fn two_people_over_two_cameras_are_two_identities_through_restarts_and_a_sigkill() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let model = osnet(&shared, tmp.path());
    let mut truth = camera_folder(&shared, &tmp.path().join("cam0"), false);
    truth.extend(camera_folder(&shared, &tmp.path().join("cam1"), true));
    let cam0 = config(tmp.path(), &model, "cam0", 0, &tmp.path().join("cam0"));
    let cam1 = config(tmp.path(), &model, "cam1", 1, &tmp.path().join("cam1"));

    let first = run(&cam0);
    let second = run(&cam1);
    let mut all = first.clone();
    all.extend(second.iter().cloned());
    let by_person = identities(&all, &truth);
    assert_eq!(by_person.len(), 2, "both people confirmed: {by_person:?}");
    for (person, ids) in &by_person {
        assert_eq!(
            ids.len(),
            1,
            "{person} has one identity over both cameras: {ids:?}"
        );
    }
    let astronaut = by_person["astronaut"].iter().next().unwrap().clone();
    let grace = by_person["grace"].iter().next().unwrap().clone();
    assert_ne!(astronaut, grace);
    // Cross-camera: cam1's first view of each person is already known (not new).
    for r in &second {
        assert_eq!(r["new"], false, "cam1 knows everyone from cam0: {r}");
    }
    let gallery = confirmed_in_gallery(&cam0);
    assert_eq!(gallery.len(), 2, "{gallery:?}");

    // The figures docs/reid.md quotes: the worst same-person and best other-person similarity.
    // Same-person is decided by the ground truth, not by the gallery's own `new`: every match
    // must be the person's own identity.
    let own_id = |r: &Value| {
        if truth[r["input"].as_str().unwrap()] == "astronaut" {
            &astronaut
        } else {
            &grace
        }
    };
    for r in all.iter().filter(|r| r["new"] == false) {
        assert_eq!(
            r["identity"].as_str(),
            Some(own_id(r).as_str()),
            "a wrong match: {r}"
        );
    }
    let same = all
        .iter()
        .filter(|r| r["new"] == false)
        .map(|r| r["similarity"].as_f64().unwrap())
        .fold(1.0, f64::min);
    let other = all
        .iter()
        .filter(|r| r["new"] == true)
        .map(|r| r["similarity"].as_f64().unwrap())
        .fold(0.0, f64::max);
    eprintln!("OSNet: same person >= {same:.3}, the other person <= {other:.3}");
    assert!(same > other, "the threshold has room: {same} vs {other}");

    // A restart: the same ids, nothing new.
    let again = run(&cam0);
    for r in &again {
        let person = truth[r["input"].as_str().unwrap()];
        let expected = if person == "astronaut" {
            &astronaut
        } else {
            &grace
        };
        assert_eq!(r["identity"].as_str(), Some(expected.as_str()), "{r}");
        assert_eq!(r["new"], false);
    }

    // A SIGKILL in the middle of a stream of writes leaves a gallery that opens, whole.
    let looping = tmp.path().join("loop.toml");
    std::fs::write(
        &looping,
        std::fs::read_to_string(&cam1).unwrap() + "loop = true\n",
    )
    .unwrap();
    let mut child = common::Running::new(
        Command::new(env!("CARGO_BIN_EXE_edgevit"))
            .args(["run", "--config", looping.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.child_mut().stdout.take().unwrap();
    let lines = std::io::BufReader::new(stdout).lines().take(25).count();
    assert_eq!(lines, 25);
    common::signal(child.child(), "KILL");
    child.wait();
    let after = run(&cam1);
    assert!(after.iter().all(|r| r["new"] == false));
    assert_eq!(confirmed_in_gallery(&cam1).len(), 2);

    // Enrolment names the known person; the name is then reported.
    let photo = shared.join("reference/images/grace_hopper.bmp");
    let enroll = common::enroll(&cam0, "Grace Hopper", &photo);
    assert!(enroll.status.success(), "{}", common::stderr(&enroll));
    let said = String::from_utf8_lossy(&enroll.stdout);
    assert!(
        said.contains(&grace) && said.contains("seen before"),
        "{said}"
    );
    let named = run(&cam1);
    for r in &named {
        let person = truth[r["input"].as_str().unwrap()];
        let name = r["name"].as_str();
        assert_eq!(name, (person == "grace").then_some("Grace Hopper"), "{r}");
    }
}

#[test]
fn a_damaged_or_foreign_gallery_is_refused_and_kept() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let model = osnet(&shared, tmp.path());
    let image = shared.join("reference/images/astronaut.png");
    let gallery = tmp.path().join("gallery.sqlite");
    std::fs::write(&gallery, b"these are someone's notes, not a gallery\n").unwrap();
    let output = common::edgevit(&[
        "infer",
        "--model",
        model.to_str().unwrap(),
        "--gallery",
        gallery.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    common::assert_clean_failure(
        &output,
        &["is not an edgevit gallery", "will not overwrite"],
    );
    assert_eq!(
        std::fs::read(&gallery).unwrap(),
        b"these are someone's notes, not a gallery\n"
    );

    // A gallery made with another model (the bundled TransReID-style one) is refused.
    let other = tmp.path().join("other.sqlite");
    let made = common::edgevit(&[
        "infer",
        "--model",
        common::repo()
            .join("models/transreid-tiny")
            .to_str()
            .unwrap(),
        "--gallery",
        other.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", common::stderr(&made));
    let output = common::edgevit(&[
        "infer",
        "--model",
        model.to_str().unwrap(),
        "--gallery",
        other.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    common::assert_clean_failure(
        &output,
        &[
            "was made with model \"transreid-tiny\" (320-number embeddings)",
            "512-number",
        ],
    );
}

/// A board's configuration: its camera folder, its own gallery, the shared broker.
fn board(dir: &Path, model: &Path, name: &str, camera: &str, images: &Path, port: u16) -> PathBuf {
    board_with(dir, model, name, camera, images, port, "")
}

/// Board `name`, whose camera `camera` sees the two people (mirrored or not), on the broker at
/// `port`: its camera folder written beside its configuration.
fn board_seeing(
    shared: &Path,
    dir: &Path,
    model: &Path,
    (name, camera): (&str, &str),
    mirrored: bool,
    port: u16,
) -> PathBuf {
    let images = dir.join(format!("{name}-cam"));
    camera_folder(shared, &images, mirrored);
    board(dir, model, name, camera, &images, port)
}

/// A board whose `[sink]` has `sink` added (credentials).
fn board_with(
    dir: &Path,
    model: &Path,
    name: &str,
    camera: &str,
    images: &Path,
    port: u16,
    sink: &str,
) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "state_dir = \"{state}\"\n[model]\npath = \"{model}\"\n\
             [source]\nkind = \"image-dir\"\npath = \"{images}\"\ncamera = \"{camera}\"\n\
             [gallery]\nfleet = true\n\
             [sink]\nkind = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\ndevice = \"{name}\"\n{sink}\
             [sink.spool]\npath = \"{spool}\"\n",
            state = dir.join(name).display(),
            model = model.display(),
            images = images.display(),
            spool = dir.join(name).join("spool").display(),
        ),
    )
    .unwrap();
    path
}

/// The `identity` (and `name`) of each record, from the spool-free view: the gallery list.
fn listed(config: &Path) -> BTreeMap<String, Option<String>> {
    confirmed_in_gallery(config)
        .into_iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["name"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn two_boards_through_one_broker_agree_on_the_ids_and_a_rename() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let port = common::broker::free_port();
    std::fs::create_dir_all(tmp.path().join("broker")).unwrap();
    let mut broker = common::broker::Broker::start(&tmp.path().join("broker"), port);
    let model = osnet(&shared, tmp.path());
    let door = board_seeing(&shared, tmp.path(), &model, ("door", "front"), false, port);
    let hall = board_seeing(&shared, tmp.path(), &model, ("hall", "back"), true, port);

    let results = Results::subscribe(port);
    run_quiet(&door);
    let door_ids = listed(&door);
    assert_eq!(door_ids.len(), 2, "{door_ids:?}");
    assert!(
        door_ids.keys().all(|id| id.starts_with("id-door-")),
        "{door_ids:?}"
    );

    // The hall first runs while the broker is down: it cannot hear of the door and mints
    // the same two people under its own (younger) ids; its records wait in its spool.
    broker.stop();
    run_quiet(&hall);
    assert!(listed(&hall).keys().all(|id| id.starts_with("id-hall-")));
    // With the broker back, the hall hears the door's retained identities: the same people,
    // older, so the hall takes the door's ids.
    broker.restart();
    run_quiet(&hall);
    let said: Vec<String> = results
        .of("back", 32)
        .iter()
        .map(|r| r["identity"].as_str().unwrap_or("?").to_string())
        .collect();
    eprintln!("the hall said: {said:?}");
    assert_eq!(
        listed(&hall),
        door_ids,
        "the hall uses the door's (older) ids"
    );
    assert!(
        said[..16].iter().all(|id| id.starts_with("id-hall-")),
        "{said:?}"
    );
    // Its next run reports the door's ids only.
    run_quiet(&hall);
    let again = results.of("back", 48);
    for r in &again[32..] {
        assert!(
            door_ids.contains_key(r["identity"].as_str().unwrap()),
            "{r}"
        );
    }

    // A rename at the door reaches the hall.
    let astronaut = door_ids.keys().next().unwrap().clone();
    let renamed = common::edgevit(&[
        "gallery",
        "rename",
        "--config",
        door.to_str().unwrap(),
        &astronaut,
        "alice",
    ]);
    assert!(renamed.status.success(), "{}", common::stderr(&renamed));
    run_quiet(&door);
    run_quiet(&hall);
    assert_eq!(listed(&hall)[&astronaut].as_deref(), Some("alice"));
}

/// Runs a board to the end of its images; its records went to the broker.
fn run_quiet(config: &Path) {
    let output = common::edgevit(&["run", "--config", config.to_str().unwrap()]);
    assert!(output.status.success(), "{}", common::stderr(&output));
}

/// A subscriber to every board's results, collecting the payloads.
struct Results(Arc<Mutex<Vec<Value>>>);

impl Results {
    fn subscribe(port: u16) -> Results {
        // A persistent session: the broker keeps what it queued for us across its restart.
        let mut options = MqttOptions::new("reid-results", "127.0.0.1", port);
        options.set_clean_session(false);
        let (client, mut connection) = Client::new(options, 64);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.try_subscribe("edgevit/+/+/result", QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(v) = serde_json::from_slice(&p.payload) {
                            sink.lock().unwrap().push(v);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("subscribed to the results");
        Results(seen)
    }

    /// The records of `camera`, once `n` have arrived.
    fn of(&self, camera: &str, n: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got: Vec<Value> = self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r["camera"] == camera)
                .cloned()
                .collect();
            if got.len() >= n {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {n} records of {camera} arrived: {:?}",
                got.len(),
                got.iter()
                    .map(|r| format!("{}/{}", r["run"], r["seq"]))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The camera index reaches the model's SIE input (random weights: it changes the embedding a
/// lot), and an index the model does not know is an error record naming the setting.
#[test]
fn the_camera_index_feeds_sie_and_an_unknown_one_is_refused() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let gallery = tmp.path().join("g.sqlite");
    let image = shared.join("reference/images/astronaut.png");
    let model = common::repo().join("models/transreid-tiny");
    let infer = |index: &str, flip: bool| {
        let mut args = vec![
            "infer",
            "--model",
            model.to_str().unwrap(),
            "--gallery",
            gallery.to_str().unwrap(),
            "--camera-index",
            index,
            image.to_str().unwrap(),
        ];
        if flip {
            args.push("--flip");
        }
        let output = common::edgevit(&args);
        (output.status.code(), common::json_lines(&output).remove(0))
    };
    let (_, first) = infer("0", false);
    let (_, again) = infer("0", false);
    let (_, other) = infer("3", false);
    let (_, flipped) = infer("0", true);
    assert_eq!(again["identity"], first["identity"]);
    assert!(again["similarity"].as_f64().unwrap() > 0.999, "{again}");
    let across = other["similarity"].as_f64().unwrap();
    assert!(across < 0.99, "camera 3 is embedded differently: {other}");
    let mirrored = flipped["similarity"].as_f64().unwrap();
    assert!(
        mirrored < 0.9999,
        "--flip averages in the mirror image: {flipped}"
    );
    let (code, refused) = infer("4", false);
    assert_eq!(code, Some(1));
    assert_eq!(refused["error"]["stage"], "interpret");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("sie.cameras"), "{message}");
}

/// The retained messages under `filter` on the broker at `port`, by topic.
fn retained(port: u16, filter: &str) -> BTreeMap<String, Vec<u8>> {
    let options = MqttOptions::new("reid-reader", "127.0.0.1", port);
    let (client, mut connection) = Client::new(options, 64);
    let mut got = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut subscribed_at = None;
    while std::time::Instant::now() < deadline {
        match connection.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                client.try_subscribe(filter, QoS::AtLeastOnce).unwrap();
            }
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                subscribed_at = Some(std::time::Instant::now());
            }
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                got.insert(p.topic.clone(), p.payload.to_vec());
            }
            _ => {}
        }
        if subscribed_at.is_some_and(|at| at.elapsed() > Duration::from_secs(1)) {
            break;
        }
    }
    let _ = client.try_disconnect();
    got
}

/// Publishes each message retained, as a client that is no board.
fn publish_retained(port: u16, messages: &[(String, Vec<u8>)]) {
    let mut options = MqttOptions::new("rogue", "127.0.0.1", port);
    options.set_max_packet_size(2 << 20, 2 << 20);
    let (client, mut connection) = Client::new(options, 64);
    for (topic, payload) in messages {
        client
            .publish(topic.as_str(), QoS::AtLeastOnce, true, payload.clone())
            .unwrap();
    }
    let mut acked = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while acked < messages.len() && std::time::Instant::now() < deadline {
        if let Ok(Ok(Event::Incoming(Packet::PubAck(_)))) =
            connection.recv_timeout(Duration::from_millis(200))
        {
            acked += 1;
        }
    }
    assert_eq!(acked, messages.len(), "the broker took every message");
    let _ = client.try_disconnect();
}

/// A client that is no board, or a board that speaks for another, cannot change the fleet's
/// identities through messages that break the rules: a copy of the door's identity renamed in
/// another lane, a payload that is not JSON, a topic that names another identity than its
/// payload, a newer format, a message of 600 kB, another model's identity. The hall ignores
/// each, warns once per lane and reason, and keeps the door's ids and names.
#[test]
fn fleet_messages_that_break_the_rules_are_ignored_and_reported_once() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let port = common::broker::free_port();
    std::fs::create_dir_all(tmp.path().join("broker")).unwrap();
    let _broker = common::broker::Broker::start(&tmp.path().join("broker"), port);
    let model = osnet(&shared, tmp.path());
    let door = board_seeing(&shared, tmp.path(), &model, ("door", "front"), false, port);
    let hall = board_seeing(&shared, tmp.path(), &model, ("hall", "back"), true, port);
    run_quiet(&door);
    let door_ids = listed(&door);
    let published = retained(port, "edgevit/gallery/door/+");
    assert_eq!(published.len(), door_ids.len(), "{:?}", published.keys());
    let original: Value = serde_json::from_slice(published.values().next().unwrap()).unwrap();
    let id = original["id"].as_str().unwrap().to_string();
    let edited = |change: &dyn Fn(&mut Value)| {
        let mut m = original.clone();
        change(&mut m);
        serde_json::to_vec(&m).unwrap()
    };
    let lane = |level: &str| format!("edgevit/gallery/mallory/{level}");
    let rogue = vec![
        // The door's identity, renamed, in mallory's lane: mallory neither minted nor renamed it.
        (
            lane(&id),
            edited(&|m| {
                m["name"] = "eve".into();
                m["updated_ms"] = (i64::MAX / 2).into();
            }),
        ),
        (lane("id-mallory-000001"), b"not json".to_vec()),
        (
            lane("id-mallory-000002"),
            edited(&|m| {
                m["id"] = "id-mallory-000003".into();
                m["origin"] = "mallory".into();
            }),
        ),
        (
            lane("id-mallory-000004"),
            edited(&|m| {
                m["id"] = "id-mallory-000004".into();
                m["origin"] = "mallory".into();
                m["format"] = 99.into();
            }),
        ),
        (lane("id-mallory-000005"), vec![b' '; 600 * 1024]),
        (
            lane("id-mallory-000006"),
            edited(&|m| {
                m["id"] = "id-mallory-000006".into();
                m["origin"] = "mallory".into();
                m["model"] = "another-model".into();
            }),
        ),
    ];
    publish_retained(port, &rogue);

    let output = common::edgevit(&["run", "--config", hall.to_str().unwrap()]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let stderr = common::stderr(&output);
    for why in [
        "published in the lane of a board that neither minted nor changed it",
        "not a well-formed gallery message",
        "the topic names another identity than the message",
        "a gallery format this edgevit does not read",
        "larger than any gallery message",
        "another model's identity",
    ] {
        let said = stderr.lines().filter(|l| l.contains(why)).count();
        assert_eq!(said, 1, "{why:?} said {said} times:\n{stderr}");
    }
    assert_eq!(
        listed(&hall),
        door_ids,
        "the hall keeps the door's ids and names"
    );
    assert!(listed(&door)
        .values()
        .all(|name| name.as_deref() != Some("eve")));
}

/// Each board in its own lane: Mosquitto with `deploy/mosquitto/fleet.acl` (the recipe of
/// docs/reid.md) and a password per board. The door (user `door`) shares its identities; a
/// board configured as `hall` but given the door's credentials cannot write the hall's lane, and
/// says so once; a client with the user `mallory` cannot rename the door's identity.
#[test]
fn a_broker_acl_keeps_each_board_to_its_own_lane() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let (port, secure) = (common::broker::free_port(), common::broker::free_port());
    let dir = tmp.path().join("broker");
    std::fs::create_dir_all(&dir).unwrap();
    let passwords = dir.join("passwords");
    for (n, user) in ["door", "hall", "mallory"].iter().enumerate() {
        let mut command = Command::new("mosquitto_passwd");
        if n == 0 {
            command.arg("-c");
        }
        let status = command
            .args([
                "-b",
                passwords.to_str().unwrap(),
                user,
                &format!("{user}-secret"),
            ])
            .status()
            .expect("mosquitto_passwd (Debian's mosquitto package)");
        assert!(status.success());
        std::fs::write(
            tmp.path().join(format!("{user}.pass")),
            format!("{user}-secret\n"),
        )
        .unwrap();
    }
    let acl = common::repo().join("deploy/mosquitto/fleet.acl");
    let _broker = common::broker::Broker::start_with(
        &dir,
        port,
        &format!(
            "listener {secure} 127.0.0.1\nallow_anonymous false\npassword_file {}\nacl_file {}\n",
            passwords.display(),
            acl.display()
        ),
    );
    let model = osnet(&shared, tmp.path());
    camera_folder(&shared, &tmp.path().join("door-cam"), false);
    camera_folder(&shared, &tmp.path().join("hall-cam"), true);
    let login = |user: &str| {
        format!(
            "username = \"{user}\"\npassword_file = \"{}\"\n",
            tmp.path().join(format!("{user}.pass")).display()
        )
    };
    let door = board_with(
        tmp.path(),
        &model,
        "door",
        "front",
        &tmp.path().join("door-cam"),
        secure,
        &login("door"),
    );
    let hall = board_with(
        tmp.path(),
        &model,
        "hall",
        "back",
        &tmp.path().join("hall-cam"),
        secure,
        &login("door"),
    );
    let unheard = "came back from the broker";

    // The hall first: it mints its own ids, and the broker drops what it writes to its lane.
    let output = common::edgevit(&["run", "--config", hall.to_str().unwrap()]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let stderr = common::stderr(&output);
    assert_eq!(stderr.matches(unheard).count(), 1, "{stderr}");
    assert!(retained(port, "edgevit/gallery/#").is_empty());

    let output = common::edgevit(&["run", "--config", door.to_str().unwrap()]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert!(
        !common::stderr(&output).contains(unheard),
        "{}",
        common::stderr(&output)
    );
    let door_ids = listed(&door);
    let fleet = retained(port, "edgevit/gallery/#");
    assert_eq!(fleet.len(), door_ids.len(), "{:?}", fleet.keys());
    assert!(
        fleet.keys().all(|t| t.starts_with("edgevit/gallery/door/")),
        "{:?}",
        fleet.keys()
    );

    // mallory's rename of the door's identity, in the door's lane, never reaches the broker's store.
    let (topic, payload) = fleet.iter().next().unwrap();
    let mut renamed: Value = serde_json::from_slice(payload).unwrap();
    renamed["name"] = "eve".into();
    renamed["updated_ms"] = (i64::MAX / 2).into();
    let mut options = MqttOptions::new("mallory", "127.0.0.1", secure);
    options.set_credentials("mallory", "mallory-secret");
    options.set_max_packet_size(2 << 20, 2 << 20);
    let (client, mut connection) = Client::new(options, 16);
    client
        .publish(
            topic.as_str(),
            QoS::AtLeastOnce,
            true,
            serde_json::to_vec(&renamed).unwrap(),
        )
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(Ok(Event::Incoming(Packet::PubAck(_)))) =
            connection.recv_timeout(Duration::from_millis(200))
        {
            break;
        }
    }
    let after = retained(port, "edgevit/gallery/#");
    assert_eq!(
        &after[topic], payload,
        "the door's message is as the door published it"
    );
}

/// Three boards on two sites: the door and the hall on one Mosquitto, the yard on another
/// bridged to it (`topic edgevit/# both 1`), as sites are joined. Each board sees the same two
/// people; all three end with the same ids, the first board's, and a rename made at the yard
/// reaches the door across the bridge. (`bench/fleet` measures larger fleets.)
#[test]
fn three_boards_on_two_bridged_brokers_agree_on_the_ids_and_a_rename() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let (site_a, site_b) = (common::broker::free_port(), common::broker::free_port());
    for dir in ["a", "b"] {
        std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
    }
    let _a = common::broker::Broker::start(&tmp.path().join("a"), site_a);
    let _b = common::broker::Broker::start_with(
        &tmp.path().join("b"),
        site_b,
        &format!(
            "connection site-a\naddress 127.0.0.1:{site_a}\ntopic edgevit/# both 1\n\
             cleansession true\nrestart_timeout 1\n"
        ),
    );
    let model = osnet(&shared, tmp.path());
    let at = |name, camera, mirrored, port| {
        board_seeing(&shared, tmp.path(), &model, (name, camera), mirrored, port)
    };
    let door = at("door", "front", false, site_a);
    let hall = at("hall", "back", true, site_a);
    let yard = at("yard", "gate", true, site_b);
    run_quiet(&door);
    let door_ids = listed(&door);
    assert_eq!(door_ids.len(), 2, "{door_ids:?}");
    // The bridge carries the door's retained identities to site b.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while retained(site_b, "edgevit/gallery/#").len() < door_ids.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "the bridge carried nothing"
        );
    }
    run_quiet(&yard);
    run_quiet(&hall);
    assert_eq!(listed(&yard), door_ids, "the yard, across the bridge");
    assert_eq!(listed(&hall), door_ids, "the hall, on the door's broker");

    let someone = door_ids.keys().next().unwrap().clone();
    let renamed = common::edgevit(&[
        "gallery",
        "rename",
        "--config",
        yard.to_str().unwrap(),
        &someone,
        "grace",
    ]);
    assert!(renamed.status.success(), "{}", common::stderr(&renamed));
    run_quiet(&yard);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let topic = format!("edgevit/gallery/yard/{someone}");
    let crossed = || {
        retained(site_a, "edgevit/gallery/yard/#")
            .get(&topic)
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
            .is_some_and(|m| m["name"] == "grace")
    };
    while !crossed() {
        assert!(
            std::time::Instant::now() < deadline,
            "the rename did not cross the bridge"
        );
    }
    run_quiet(&door);
    run_quiet(&hall);
    assert_eq!(listed(&door)[&someone].as_deref(), Some("grace"));
    assert_eq!(listed(&hall)[&someone].as_deref(), Some("grace"));
}
