//! edgevit as a `Type=notify` systemd service, through a real notify socket: a Unix datagram
//! socket the test listens on, named by `NOTIFY_SOCKET`, with `WATCHDOG_USEC` set as systemd
//! sets it. And the unit file itself, checked by `systemd-analyze`.

mod common;

use common::Running;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A notify socket and what arrived on it, in order.
struct NotifySocket {
    socket: UnixDatagram,
    path: std::path::PathBuf,
    messages: Vec<(Instant, String)>,
}

impl NotifySocket {
    fn new(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        NotifySocket {
            socket,
            path,
            messages: Vec::new(),
        }
    }

    /// Collects messages until `child` exits (or `limit` passes: then it is killed).
    fn collect_until_exit(
        &mut self,
        child: &mut Child,
        limit: Duration,
    ) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        loop {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                for line in text.lines() {
                    self.messages.push((Instant::now(), line.to_string()));
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                // Whatever is still queued.
                while let Ok(n) = self.socket.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    self.messages
                        .extend(text.lines().map(|l| (Instant::now(), l.to_string())));
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("edgevit did not end within {limit:?}: {:?}", self.texts());
            }
        }
    }

    /// Collects messages while `child` runs, until `done` says enough (or `limit` passes).
    fn collect_until(&mut self, limit: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "not within {limit:?}: {:?}",
                self.texts()
            );
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.messages
                    .extend(text.lines().map(|l| (Instant::now(), l.to_string())));
            }
        }
    }

    /// The longest time between READY=1 and STOPPING=1 without a WATCHDOG=1: what systemd
    /// compares with WatchdogSec.
    fn longest_silence(&self) -> Duration {
        let marks: Vec<Instant> = self
            .messages
            .iter()
            .filter(|(_, m)| matches!(m.as_str(), "READY=1" | "WATCHDOG=1" | "STOPPING=1"))
            .map(|(at, _)| *at)
            .collect();
        marks
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default()
    }

    fn texts(&self) -> Vec<&str> {
        self.messages.iter().map(|(_, m)| m.as_str()).collect()
    }

    fn count(&self, message: &str) -> usize {
        self.texts().iter().filter(|m| **m == message).count()
    }
}

/// `edgevit run --config CONFIG` with `env` added, its log on a pipe.
fn edgevit_run(config: &Path, env: &[(&str, String)]) -> Running {
    Running::new(
        Command::new(env!("CARGO_BIN_EXE_edgevit"))
            .args(["run", "--config", config.to_str().unwrap()])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn edgevit_under_systemd(config: &Path, socket: &NotifySocket, watchdog: Duration) -> Running {
    let socket = socket.path.to_string_lossy().into_owned();
    let watchdog = watchdog.as_micros().to_string();
    edgevit_run(
        config,
        &[("NOTIFY_SOCKET", socket), ("WATCHDOG_USEC", watchdog)],
    )
}

fn stderr_of(child: Running) -> String {
    String::from_utf8_lossy(&child.wait_with_output().stderr).into_owned()
}

#[test]
fn ready_after_loading_then_watchdog_and_status_while_frames_flow_then_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let mut socket = NotifySocket::new(tmp.path());
    let config = common::write_config(
        tmp.path(),
        "[source]\nkind = \"pattern\"\nwidth = 32\nheight = 32\nframes = 50\nfps = 20\n\
         [model]\npath = \"{model}\"\n[sink]\nkind = \"file\"\npath = \"out.jsonl\"\n",
    );
    let watchdog = Duration::from_secs(2);
    let mut child = edgevit_under_systemd(&config, &socket, watchdog);
    let status = socket.collect_until_exit(child.child_mut(), Duration::from_secs(60));
    assert!(status.success());
    let texts = socket.texts();
    assert_eq!(texts.first(), Some(&"READY=1"), "{texts:?}");
    assert_eq!(texts.last(), Some(&"STOPPING=1"), "{texts:?}");
    // While frames flow, systemd never goes WatchdogSec without a ping (edgevit pings every
    // half of it, which leaves the other half for a loaded machine).
    assert!(socket.count("WATCHDOG=1") >= 1, "{texts:?}");
    let silence = socket.longest_silence();
    assert!(silence < watchdog, "{silence:?} without a ping: {texts:?}");
    let status_line = texts
        .iter()
        .find(|m| m.starts_with("STATUS="))
        .expect("a STATUS= line");
    assert!(
        status_line.contains("frames") && status_line.contains("fps"),
        "{status_line}"
    );
    // READY came after the model was loaded: the records file exists only once frames flow,
    // and every record was written by the clean stop.
    let records = std::fs::read_to_string(tmp.path().join("out.jsonl")).unwrap();
    assert_eq!(records.lines().count(), 50);
}

/// A pipeline that stops producing frames (here a replay paced at one frame per 2.5 s with a
/// 0.6 s watchdog) gets no pings during the stall, and says why.
#[test]
fn a_stalled_pipeline_is_not_pinged() {
    let tmp = tempfile::tempdir().unwrap();
    let mut socket = NotifySocket::new(tmp.path());
    let frames = tmp.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    for name in ["a.png", "b.png"] {
        std::fs::copy(
            common::default_model().join("samples/digit-0-2.png"),
            frames.join(name),
        )
        .unwrap();
    }
    let config = common::write_config(
        tmp.path(),
        &format!(
            "[source]\nkind = \"image-dir\"\npath = \"{}\"\nfps = 0.4\n[model]\npath = \"{{model}}\"\n\
             [sink]\nkind = \"file\"\npath = \"out.jsonl\"\n",
            frames.display()
        ),
    );
    let mut child = edgevit_under_systemd(&config, &socket, Duration::from_millis(600));
    let status = socket.collect_until_exit(child.child_mut(), Duration::from_secs(60));
    assert!(status.success());
    // Pings stop a watchdog interval after the last frame: during the 2.5 s between the two
    // frames systemd sees more than WatchdogSec without a ping (and would restart edgevit).
    let silence = socket.longest_silence();
    assert!(
        silence > Duration::from_millis(600),
        "never more than {silence:?} without a ping during a stall: {:?}",
        socket.texts()
    );
    let log = stderr_of(child);
    assert!(log.contains("not pinging the watchdog"), "{log}");
}

/// Cameras that are all offline and reconnecting are waited for, not a stall.
#[test]
fn a_camera_that_is_reconnecting_is_not_a_stall() {
    let tmp = tempfile::tempdir().unwrap();
    let mut socket = NotifySocket::new(tmp.path());
    let config = common::write_config(
        tmp.path(),
        "[source]\nkind = \"v4l2\"\n[[source.camera]]\nid = \"door\"\ndevice = \"/dev/video-edgevit-none\"\n\
         reconnect_min_ms = 200\nreconnect_max_ms = 400\n[model]\npath = \"{model}\"\n",
    );
    let watchdog = Duration::from_secs(2);
    let mut child = edgevit_under_systemd(&config, &socket, watchdog);
    // Several watchdog intervals without a single frame, pinged throughout.
    socket.collect_until(Duration::from_secs(60), |s| s.count("WATCHDOG=1") >= 5);
    common::signal(child.child(), "TERM");
    let status = socket.collect_until_exit(child.child_mut(), Duration::from_secs(30));
    assert!(status.success());
    let silence = socket.longest_silence();
    assert!(
        silence < watchdog,
        "{silence:?} without a ping: {:?}",
        socket.texts()
    );
    // The status changes as soon as the camera is known to be away.
    assert!(
        socket
            .texts()
            .iter()
            .any(|m| m.starts_with("STATUS=") && m.contains("offline (reconnecting): door")),
        "{:?}",
        socket.texts()
    );
}

/// The unit passes `systemd-analyze verify` and scores 3.0 or better on `systemd-analyze
/// security --offline=yes` (lower is better).
#[test]
fn the_unit_file_verifies_and_is_hardened() {
    let found = Command::new("systemd-analyze").arg("--version").output();
    if found.is_err() {
        common::missing("systemd-analyze (systemd)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(common::repo().join("deploy/edgevit.service")).unwrap();
    // verify checks that ExecStart= exists: point it at the binary under test.
    let unit = unit.replace("/usr/bin/edgevit", env!("CARGO_BIN_EXE_edgevit"));
    let path = tmp.path().join("edgevit.service");
    std::fs::write(&path, unit).unwrap();
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stderr).into_owned();
    assert!(verify.status.success(), "systemd-analyze verify: {said}");
    let relevant: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("edgevit.service"))
        .collect();
    assert!(
        relevant.is_empty(),
        "systemd-analyze verify complains: {relevant:?}"
    );

    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&security.stdout).into_owned();
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for edgevit.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score in: {text}"));
    eprintln!("systemd-analyze security: {score}");
    assert!(score <= 3.0, "exposure {score} > 3.0:\n{text}");
}

/// `systemctl stop` with a slow model and an MQTT broker that is down: the frame in flight
/// gets its record, every record is kept in the spool, and edgevit exits 0 well within the
/// unit's TimeoutStopSec.
#[test]
fn sigterm_with_a_slow_model_and_no_broker_stops_within_the_stop_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = common::write_config(
        tmp.path(),
        &format!(
            "[source]\nkind = \"pattern\"\nwidth = 320\nheight = 240\n\
             [model]\npath = \"{}\"\n[sink]\nkind = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             [sink.spool]\npath = \"spool\"\n",
            common::repo().join("models/vit-tiny-int8").display()
        ),
    );
    let child = edgevit_run(&config, &[]);
    let segment = tmp.path().join("spool/00000000000000000001.seg");
    let spooled = || {
        std::fs::read(&segment)
            .map(|b| b.windows(7).filter(|w| w == b"/result").count())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while spooled() < 3 {
        assert!(Instant::now() < deadline, "no results spooled");
        std::thread::sleep(Duration::from_millis(50));
    }
    let asked = Instant::now();
    common::signal(child.child(), "TERM");
    let output = child.wait_with_output();
    let took = asked.elapsed();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{log}");
    // systemd kills what has not stopped within the unit's TimeoutStopSec; the drain time
    // (2 s) and one frame must fit well inside it.
    let unit = std::fs::read_to_string(common::repo().join("deploy/edgevit.service")).unwrap();
    let timeout_stop: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.trim().parse().ok())
        .expect("TimeoutStopSec= in the unit");
    assert!(
        took < Duration::from_secs(timeout_stop / 2),
        "stopping took {took:?}, TimeoutStopSec={timeout_stop}: {log}"
    );
    // Every record made it to the spool: as many as the run says it produced.
    let results = common::run_summary(&log, "results");
    assert_eq!(spooled(), results, "{log}");
    eprintln!("stopped in {took:?} with {results} results kept in the spool");
}

/// SIGHUP re-reads the configuration: `[classify]` (and the other interpretation sections)
/// change live; a change to another section, or a file that does not parse, is refused with a
/// message and the running configuration stays.
#[test]
fn sighup_applies_live_settings_and_refuses_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let base = "[source]\nkind = \"pattern\"\nwidth = 32\nheight = 32\nfps = 20\n\
                [model]\npath = \"{model}\"\n[sink]\nkind = \"file\"\npath = \"out.jsonl\"\n";
    let config = common::write_config(tmp.path(), &format!("{base}[classify]\ntop_k = 1\n"));
    let child = edgevit_run(&config, &[]);
    let out = tmp.path().join("out.jsonl");
    let records = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while records().len() < n {
            assert!(Instant::now() < deadline, "fewer than {n} records");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(3);
    // A live change: three classes per record from now on.
    common::write_config(tmp.path(), &format!("{base}[classify]\ntop_k = 3\n"));
    common::signal(child.child(), "HUP");
    let before = records().len();
    wait_for(before + 10);
    // Not live: another source. Then a file that does not parse.
    common::write_config(
        tmp.path(),
        &format!(
            "{}[classify]\ntop_k = 2\n",
            base.replace("fps = 20", "fps = 10")
        ),
    );
    common::signal(child.child(), "HUP");
    let refused_at = records().len();
    wait_for(refused_at + 10);
    std::fs::write(&config, "[source\n").unwrap();
    common::signal(child.child(), "HUP");
    let broken_at = records().len();
    wait_for(broken_at + 10);
    common::signal(child.child(), "TERM");
    let output = child.wait_with_output();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{log}");
    let tops: Vec<usize> = records()
        .iter()
        .map(|r| r["top"].as_array().map_or(0, Vec::len))
        .collect();
    assert!(tops[..3].iter().all(|&n| n == 1), "{tops:?}");
    assert_eq!(tops.last(), Some(&3), "{tops:?}");
    assert!(
        !tops.contains(&2),
        "a refused reload changed nothing: {tops:?}"
    );
    let ones_then_threes = tops.windows(2).all(|w| w[0] <= w[1]);
    assert!(ones_then_threes, "{tops:?}");
    assert!(
        log.contains("`source` cannot change while running"),
        "{log}"
    );
    assert!(log.contains("TOML parse error"), "{log}");
    assert_eq!(log.matches("reload refused").count(), 2, "{log}");
}

/// `GET path` on a local HTTP server: the status line and the body.
fn http_get(port: u16, path: &str) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// The value of the exposition's sample `name{labels}`, if present.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

/// The Prometheus endpoint, scraped over HTTP while edgevit runs with its broker down.
#[test]
fn metrics_are_scraped_over_http_and_parse() {
    let tmp = tempfile::tempdir().unwrap();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (metrics_port, broker_port) = (free(), free());
    let config = common::write_config(
        tmp.path(),
        &format!(
            "[source]\nkind = \"pattern\"\nwidth = 32\nheight = 32\nfps = 20\ncamera = \"bars\"\n\
             [model]\npath = \"{{model}}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\
             [sink]\nkind = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {broker_port}\n\
             [sink.spool]\npath = \"spool\"\n"
        ),
    );
    let child = edgevit_run(&config, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first = None;
    let exposition = loop {
        assert!(Instant::now() < deadline, "no metrics with frames");
        if let Some((status, body)) = http_get(metrics_port, "/metrics") {
            assert!(status.contains("200"), "{status}");
            first.get_or_insert_with(|| body.clone());
            if sample(&body, "edgevit_results_total{camera=\"bars\"}").unwrap_or(0.0) >= 5.0 {
                break body;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Every series is there from the first scrape (at 0 before the first frame), so that
    // alerts on absence and rates work from the start.
    let first = first.unwrap();
    for series in [
        "edgevit_frames_total{camera=\"bars\"}",
        "edgevit_results_total{camera=\"bars\"}",
        "edgevit_frames_dropped_total{camera=\"bars\"}",
        "edgevit_errors_total{stage=\"preprocess\"}",
        "edgevit_stage_latency_seconds_count{stage=\"infer\"}",
        "edgevit_spool_set_aside",
    ] {
        assert!(
            sample(&first, series).is_some(),
            "{series} missing from the first scrape:\n{first}"
        );
    }
    common::signal(child.child(), "TERM");
    child.wait();
    for (series, check) in [
        ("edgevit_frames_total{camera=\"bars\"}", ">=5"),
        (
            "edgevit_stage_latency_seconds_count{stage=\"infer\"}",
            ">=5",
        ),
        ("edgevit_broker_connected", "==0"),
        ("edgevit_spool_pending", ">=5"),
        ("edgevit_spool_dropped", "==0"),
        (
            "edgevit_model_info{model=\"vit-mnist\",backend=\"tract\"}",
            "==1",
        ),
    ] {
        let value = sample(&exposition, series)
            .unwrap_or_else(|| panic!("{series} missing:\n{exposition}"));
        let ok = match check {
            ">=5" => value >= 5.0,
            "==0" => value == 0.0,
            _ => value == 1.0,
        };
        assert!(ok, "{series} = {value}, expected {check}");
    }
    // Histogram buckets are cumulative and end at +Inf with the count.
    let inf = sample(
        &exposition,
        "edgevit_stage_latency_seconds_bucket{le=\"+Inf\",stage=\"infer\"}",
    )
    .unwrap_or_else(|| panic!("no +Inf bucket:\n{exposition}"));
    let count = sample(
        &exposition,
        "edgevit_stage_latency_seconds_count{stage=\"infer\"}",
    )
    .unwrap();
    assert_eq!(inf, count);
    assert!(
        exposition.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
}
