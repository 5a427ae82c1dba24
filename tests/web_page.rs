//! The web page of a real `edgevit run` (BlazeFace and the face descriptor on two reference
//! photos in a loop), over real sockets: the password, refusals of bad requests, the live
//! snapshot with the faces drawn, and a rename through the API that `edgevit gallery list`
//! sees.

mod common;

use common::web::{basic, free_port, get, request, Running};
use std::net::SocketAddr;
use std::time::Duration;

/// Two identities with thumbnails: the page has something to show.
fn two_identities(answer: &common::web::Answer) -> bool {
    answer.status == 200
        && answer.json().as_array().is_some_and(|all| {
            all.len() >= 2
                && all
                    .iter()
                    .all(|i| i["thumbnails"].as_u64().unwrap_or(0) >= 1)
        })
}

#[test]
fn the_page_of_a_running_board_with_a_password() {
    let tmp = tempfile::tempdir().unwrap();
    let password = tmp.path().join("web-password");
    std::fs::write(&password, "correct horse\n").unwrap();
    let port = free_port();
    let config = common::web::door_with_page(
        tmp.path(),
        4.0,
        &format!(
            "listen = \"127.0.0.1:{port}\"\npassword_file = \"{}\"",
            password.display()
        ),
    );
    let mut run = Running::start(&config, &tmp.path().join("run.log"));
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let auth = basic("edgevit:correct horse");
    let ok = [("Authorization", auth.as_str())];
    let listed = run.wait_for(
        address,
        "/api/gallery",
        &ok,
        Duration::from_secs(120),
        two_identities,
    );
    eprintln!("gallery: {}", listed.text());

    // Without the password, or with a wrong one: 401 and nothing else.
    for extra in [vec![], vec![("Authorization", basic("edgevit:wrong"))]] {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
        for path in [
            "/",
            "/gallery",
            "/api/gallery",
            "/api/cameras/door/snapshot.jpg",
        ] {
            let refused = get(address, path, &extra);
            assert_eq!(refused.status, 401, "{path}");
            assert!(refused
                .header("WWW-Authenticate")
                .is_some_and(|v| v.starts_with("Basic")));
            assert!(!refused.text().contains("id-000001"));
        }
    }

    // The live view: the page, then a snapshot with the face boxes drawn on the frame.
    let page = get(address, "/", &ok);
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("data-camera=\"door\""),
        "{}",
        page.text()
    );
    let snapshot = get(address, "/api/cameras/door/snapshot.jpg", &ok);
    assert_eq!(snapshot.status, 200, "{}", snapshot.text());
    assert_eq!(snapshot.header("Content-Type"), Some("image/jpeg"));
    assert_drawn(&snapshot.body, &tmp.path().join("out.jsonl"));
    let cameras = get(address, "/api/cameras", &ok).json();
    assert_eq!(cameras[0]["camera"], "door");
    assert!(cameras[0]["frames"].as_u64().unwrap() >= 2, "{cameras}");
    assert!(cameras[0]["latest"][0]["objects"].is_array(), "{cameras}");
    let health = get(address, "/api/health", &ok).json();
    assert_eq!(health["alive"], true, "{health}");
    assert_eq!(health["about"]["model"], "face-descriptor", "{health}");

    refusals(address, &ok);

    // A rename through the API, seen by `edgevit gallery list`.
    let renamed = request(
        address,
        "POST",
        "/api/gallery/id-000002/rename",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"name": "Grace Hopper"}"#,
    );
    assert_eq!(renamed.status, 200, "{}", renamed.text());
    let listed = common::gallery_list(&config);
    let grace = listed.iter().find(|i| i["id"] == "id-000002").unwrap();
    assert_eq!(grace["name"], "Grace Hopper", "{listed:?}");
    // The running loop names her from then on.
    run.wait_for(address, "/api/cameras", &ok, Duration::from_secs(60), |a| {
        a.text().contains("\"name\": \"Grace Hopper\"")
    });
}

/// The face box of the frame the snapshot shows (the astronaut's is 512x512, Grace Hopper's
/// 512x600) is drawn on it: its top edge differs from the photo, the middle of the face not.
fn assert_drawn(jpeg: &[u8], results: &std::path::Path) {
    let picture = image::load_from_memory(jpeg).unwrap().to_rgb8();
    let (file, photo) = match picture.height() {
        512 => ("/a", "astronaut.png"),
        600 => ("/g", "grace_hopper.bmp"),
        h => panic!("a frame of neither photo: {}x{h}", picture.width()),
    };
    let text = std::fs::read_to_string(results).unwrap();
    let record: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| {
            r["input"].as_str().is_some_and(|i| i.contains(file))
                && r["objects"].as_array().is_some_and(|o| !o.is_empty())
        })
        .unwrap();
    let b: Vec<u32> = (record["objects"][0]["box"].as_array().unwrap().iter())
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let original = image::open(common::shared_dir().join("reference/images").join(photo))
        .unwrap()
        .to_rgb8();
    let difference = |xs: std::ops::Range<u32>, y: u32| {
        let mut sum = 0.0;
        for x in xs.clone() {
            let (a, o) = (picture.get_pixel(x, y).0, original.get_pixel(x, y).0);
            sum += (0..3)
                .map(|c| (a[c] as f64 - o[c] as f64).abs())
                .sum::<f64>()
                / 3.0;
        }
        sum / xs.len() as f64
    };
    let (x0, y0, x1, y1) = (b[0], b[1], b[2], b[3]);
    let edge = difference(x0 + 2..x1 - 2, y0.max(1));
    let inside = difference(x0 + (x1 - x0) / 3..x1 - (x1 - x0) / 3, (y0 + y1) / 2);
    eprintln!("{photo}: box {b:?}, edge differs by {edge:.1}, the middle by {inside:.1}");
    assert!(
        edge > 40.0 && inside < 12.0,
        "{photo}: edge {edge}, middle {inside}"
    );
}

/// Bad requests: refused with the right status, and the page goes on answering.
fn refusals(address: SocketAddr, ok: &[(&str, &str)]) {
    for path in [
        "/assets/../../../../etc/passwd",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "/api/gallery/..%2F..%2F..%2Fetc%2Fpasswd/thumbnails/1.jpg",
    ] {
        let answer = get(address, path, ok);
        assert_eq!(answer.status, 400, "{path}: {}", answer.text());
        assert!(!answer.text().contains("root:"));
    }
    let long = format!("/gallery?{}", "a".repeat(5000));
    assert_eq!(get(address, &long, ok).status, 414);
    let big = vec![b'x'; 100_000];
    let mut extra = ok.to_vec();
    extra.push(("Content-Type", "application/json"));
    let answer = request(
        address,
        "POST",
        "/api/gallery/id-000001/rename",
        &extra,
        &big,
    );
    assert_eq!(answer.status, 413, "{}", answer.text());
    // A form posted from another site.
    let mut forged = ok.to_vec();
    forged.push(("Origin", "http://evil.example"));
    forged.push(("Content-Type", "application/x-www-form-urlencoded"));
    let answer = request(
        address,
        "POST",
        "/api/gallery/id-000001/forget",
        &forged,
        b"",
    );
    assert_eq!(answer.status, 403);
    assert_eq!(
        request(address, "DELETE", "/api/gallery/id-000001", ok, b"").status,
        405
    );
    assert_eq!(get(address, "/nowhere", ok).status, 404);
    // A flood of snapshots (each waits for the camera's next frame): the queue in front of the
    // routes is bounded; what does not fit is told to come back (503), nothing hangs.
    let auth = ok[0].1.to_string();
    let flood: Vec<_> = (0..64)
        .map(|_| {
            let auth = auth.clone();
            std::thread::spawn(move || {
                get(
                    address,
                    "/api/cameras/door/snapshot.jpg",
                    &[("Authorization", &auth)],
                )
                .status
            })
        })
        .collect();
    let statuses: Vec<u16> = flood.into_iter().map(|t| t.join().unwrap()).collect();
    let busy = statuses.iter().filter(|s| **s == 503).count();
    eprintln!("flood of 64 snapshots: {busy} told to come back");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(busy > 0 && busy < 64, "{statuses:?}");
    assert_eq!(
        get(address, "/api/gallery/id-000001", ok).status,
        200,
        "still answering"
    );
}

/// A LAN address without a password is refused before anything listens; a bad address too.
#[test]
fn a_lan_address_needs_a_password() {
    let tmp = tempfile::tempdir().unwrap();
    for (web, says) in [
        ("listen = \"0.0.0.0:8090\"", "a password is needed"),
        ("listen = \"localhost\"", "not an address"),
        ("password_file = \"missing-password\"", "missing-password"),
    ] {
        let config = common::web::door_with_page(tmp.path(), 0.0, web);
        let output = common::edgevit(&["run", "--config", config.to_str().unwrap()]);
        let stderr = common::stderr(&output);
        eprintln!("{web}: {stderr}");
        assert!(!output.status.success(), "{web}");
        assert!(stderr.contains(says), "{web}: {stderr}");
        // `edgevit check` says the same, on the `web` line.
        let checked = common::edgevit(&["check", "--config", config.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&checked.stdout);
        assert!(!checked.status.success(), "{web}: {stdout}");
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("FAIL  web") && l.contains(says)),
            "{web}: {stdout}"
        );
    }
    let fine = common::web::door_with_page(tmp.path(), 0.0, "listen = \"127.0.0.1:8090\"");
    let checked = common::edgevit(&["check", "--config", fine.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(
        stdout.contains("ok    web: http://127.0.0.1:8090/ (no password: loopback only)"),
        "{stdout}"
    );
}

/// A rename on one board's page reaches the other board of its fleet (through Mosquitto), as
/// `edgevit gallery rename` does.
#[test]
fn a_rename_on_the_page_reaches_the_fleet() {
    common::broker::installed();
    let tmp = tempfile::tempdir().unwrap();
    let broker_port = common::broker::free_port();
    std::fs::create_dir_all(tmp.path().join("broker")).unwrap();
    let _broker = common::broker::Broker::start(&tmp.path().join("broker"), broker_port);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let port = free_port();
    let web = format!("listen = \"127.0.0.1:{port}\"");
    let front = common::web::door_in_fleet(&a, 4.0, "front", broker_port, &web);
    let back = common::web::door_in_fleet(&b, 4.0, "back", broker_port, "");
    let mut run_a = Running::start(&front, &tmp.path().join("a.log"));
    let _run_b = Running::start(&back, &tmp.path().join("b.log"));
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let listed = run_a.wait_for(
        address,
        "/api/gallery",
        &[],
        Duration::from_secs(120),
        // Both boards minted ids for the same two people at once: wait until the fleet has
        // settled on one id each (the older), so that the name is given to a settled id.
        |a| {
            let ids = |all: &[serde_json::Value]| {
                let mut ids: Vec<String> = (all.iter())
                    .filter_map(|i| i["id"].as_str().map(str::to_string))
                    .collect();
                ids.sort();
                ids
            };
            let front = a.json().as_array().cloned().unwrap_or_default();
            a.status == 200 && front.len() == 2 && ids(&front) == ids(&common::gallery_list(&back))
        },
    );
    let first = listed.json()[0]["id"].as_str().unwrap().to_string();
    eprintln!("front's identities: {}", listed.text());
    let renamed = request(
        address,
        "POST",
        &format!("/api/gallery/{first}/rename"),
        &[("Content-Type", "application/json")],
        br#"{"name": "Eileen Collins"}"#,
    );
    assert_eq!(renamed.status, 200, "{}", renamed.text());
    let start = std::time::Instant::now();
    loop {
        let names: Vec<serde_json::Value> = common::gallery_list(&back)
            .into_iter()
            .map(|i| serde_json::json!([i["id"], i["name"]]))
            .collect();
        if names.iter().any(|n| n[1] == "Eileen Collins") {
            eprintln!("the back board has {names:?} after {:?}", start.elapsed());
            assert!(
                names.iter().any(|n| n[0] == first.as_str()),
                "the front's id: {names:?}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the name never reached the back board: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A browser keeps its connections open: a stop (SIGTERM, as systemd sends) must not wait for
/// them, nor for a request half sent.
#[test]
fn open_connections_do_not_hold_a_stop() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let (mut run, address, _) = common::web::door_running(tmp.path());
    run.wait_for(address, "/api/health", &[], Duration::from_secs(60), |a| {
        a.status == 200
    });
    let _silent = std::net::TcpStream::connect(address).unwrap();
    let mut kept = std::net::TcpStream::connect(address).unwrap();
    kept.write_all(format!("GET /api/health HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes())
        .unwrap();
    let mut buffer = [0u8; 4096];
    assert!(
        kept.read(&mut buffer).unwrap() > 0,
        "answered, connection kept"
    );
    let mut half = std::net::TcpStream::connect(address).unwrap();
    half.write_all(b"GET /api/hea").unwrap();
    let snapshot = std::thread::spawn(move || {
        common::web::get(address, "/api/cameras/door/snapshot.jpg", &[]).status
    });
    std::thread::sleep(Duration::from_millis(100));
    common::signal(&run.child, "TERM");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM:\n{}",
            run.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("stopped in {:?} ({status})", start.elapsed());
    assert!(status.success(), "{}", run.log());
    let _ = snapshot.join();
}
