//! The formats, the configuration, and delivery through real pseudo-terminals: the sink writes
//! to the slave side (through a symlink, as a udev `/dev/serial/by-id` name would be), the
//! test reads the master side.

use super::format::field;
use super::queue::LineQueue;
use super::*;
use crate::interpret::{ClassScore, Classification, Interpretation};
use crate::model::Task;
use crate::sink::{ErrorDetail, ErrorRecord, FrameInfo, Latency, ResultRecord, SinkConfig};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::thread;

const TS: &str = "2026-11-22T07:01:02.345Z";

fn frame(seq: u64, camera: &str) -> FrameInfo {
    FrameInfo {
        run: "r1".into(),
        seq,
        source: "models/vit-mnist/samples".into(),
        camera: camera.into(),
        ts: TS.into(),
        input: Some(format!("digit-{seq}.png")),
    }
}

fn result_with(seq: u64, top: Vec<ClassScore>) -> Record {
    Record::Result(ResultRecord {
        frame: frame(seq, "cam0"),
        model: "vit-mnist".into(),
        backend: "tract",
        task: Task::Classify,
        result: Interpretation::Classification(Classification {
            top,
            ..Classification::default()
        }),
        latency_ms: Latency {
            pre: 0.05,
            infer: 1.2,
            post: 0.01,
        },
    })
}

/// A result whose best class is `seq % 10`.
fn result(seq: u64) -> Record {
    let best = (seq % 10) as usize;
    result_with(
        seq,
        vec![
            ClassScore {
                index: best,
                label: best.to_string(),
                score: 0.987_654,
            },
            ClassScore {
                index: (best + 1) % 10,
                label: ((best + 1) % 10).to_string(),
                score: 0.01,
            },
        ],
    )
}

/// A result with a long label: lines of about 1 KB, so a pty's buffers fill quickly.
fn big(seq: u64) -> Record {
    result_with(
        seq,
        vec![ClassScore {
            index: 1,
            label: "x".repeat(900),
            score: 0.5,
        }],
    )
}

fn error(seq: u64, message: &str) -> Record {
    Record::Error(ErrorRecord {
        frame: frame(seq, "cam0"),
        model: "vit-mnist".into(),
        error: ErrorDetail {
            stage: "preprocess",
            message: message.into(),
        },
    })
}

fn config(path: &Path, format: LineFormat) -> SerialConfig {
    let mut config = SerialConfig::new(path.to_string_lossy());
    config.format = format;
    config.reconnect_min_ms = 10;
    config.reconnect_max_ms = 40;
    config
}

/// `[sink]` as a user would write it.
fn sink_config(toml_text: &str) -> Result<SinkConfig, String> {
    let table: toml::Table = toml::from_str(toml_text).map_err(|e| e.to_string())?;
    SinkConfig::try_from(table)
}

// ---- formats ----

fn line_of(record: &Record, format: LineFormat) -> String {
    let mut out = Vec::new();
    write_line(&mut out, record, format).expect("a Vec takes any line");
    String::from_utf8(out).expect("lines are UTF-8")
}

#[test]
fn json_line_is_the_stdout_line() {
    let record = result(3);
    let line = line_of(&record, LineFormat::Json);
    let stdout = serde_json::to_string(&record).expect("serialises") + "\n";
    assert_eq!(line, stdout);
    assert_eq!(line.matches('\n').count(), 1);
}

#[test]
fn csv_result_is_the_best_class_with_four_decimals() {
    assert_eq!(
        line_of(&result(3), LineFormat::Csv),
        format!("R,3,cam0,{TS},3,3,0.9877\n")
    );
}

#[test]
fn csv_result_without_classes_has_empty_fields() {
    assert_eq!(
        line_of(&result_with(4, vec![]), LineFormat::Csv),
        format!("R,4,cam0,{TS},,,\n")
    );
}

#[test]
fn csv_fields_lose_commas_and_line_breaks() {
    let line = line_of(
        &error(5, "cannot decode image: a,b\nline two\r\tend"),
        LineFormat::Csv,
    );
    assert_eq!(
        line,
        format!("E,5,cam0,{TS},preprocess,cannot decode image: a;b line two  end\n")
    );
    let mut record = result_with(
        6,
        vec![ClassScore {
            index: 12,
            label: "Laysan albatross, adult\n(Phoebastria)".into(),
            score: 0.5,
        }],
    );
    if let Record::Result(r) = &mut record {
        r.frame.camera = "gate,1".into();
    }
    let line = line_of(&record, LineFormat::Csv);
    assert_eq!(
        line,
        format!("R,6,gate;1,{TS},12,Laysan albatross; adult (Phoebastria),0.5000\n")
    );
    assert_eq!(line.trim_end().split(',').count(), 7);
    assert_eq!(field("élan vital"), "élan vital");
}

/// The formatter on a fixed buffer, as a microcontroller would use it: a line that does not fit
/// is a write error, not a panic.
#[test]
fn formatter_writes_to_a_fixed_buffer() {
    let mut buffer = [0u8; 64];
    let mut out: &mut [u8] = &mut buffer;
    write_line(&mut out, &result(7), LineFormat::Csv).expect("fits in 64 bytes");
    let left = out.len();
    let written = 64 - left;
    assert_eq!(
        std::str::from_utf8(&buffer[..written]),
        Ok(format!("R,7,cam0,{TS},7,7,0.9877\n").as_str())
    );

    let mut small = [0u8; 16];
    let mut out: &mut [u8] = &mut small;
    assert!(matches!(
        write_line(&mut out, &result(7), LineFormat::Json),
        Err(LineError::Write(_))
    ));
}

/// `IoWrite` turns a writer that takes nothing into an error, where `embedded_io`'s
/// `write_all` would otherwise panic.
#[test]
fn io_adapter_reports_a_writer_that_takes_nothing() {
    struct Full;
    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Ok(0)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = IoWrite::new(Full);
    match write_line(&mut out, &result(1), LineFormat::Csv) {
        Err(LineError::Write(e)) => assert_eq!(e.kind(), std::io::ErrorKind::WriteZero),
        other => panic!("expected WriteZero, got {other:?}"),
    }
}

// ---- configuration ----

#[test]
fn config_defaults() {
    let Ok(SinkConfig::Serial(c)) = sink_config("kind = \"serial\"\npath = \"/dev/ttyUSB0\"")
    else {
        panic!("a serial sink");
    };
    assert_eq!(c.path, "/dev/ttyUSB0");
    assert_eq!(c.baud.get(), 115_200);
    assert_eq!(c.data_bits, DataBits::default());
    assert_eq!(c.parity, Parity::None);
    assert_eq!(c.stop_bits, StopBits::default());
    assert_eq!(c.flow_control, FlowControl::None);
    assert_eq!(c.format, LineFormat::Json);
    assert_eq!(c.write_timeout_ms.get(), 1000);
    assert_eq!(c.reconnect_min_ms, 500);
    assert_eq!(c.reconnect_max_ms, 10_000);
    assert_eq!(c.queue.get(), 1000);
}

#[test]
fn config_takes_every_key() {
    let text = r#"
        kind = "serial"
        path = "/dev/ttyAMA0"
        baud = 9600
        data_bits = 7
        parity = "even"
        stop_bits = 2
        flow_control = "hardware"
        format = "csv"
        write_timeout_ms = 5000
        reopen_backoff_ms = 100
        reopen_backoff_max_ms = 2000
        queue = 50
    "#;
    let Ok(SinkConfig::Serial(c)) = sink_config(text) else {
        panic!("a serial sink");
    };
    assert_eq!(c.baud.get(), 9600);
    assert_eq!(
        serialport::DataBits::from(c.data_bits),
        serialport::DataBits::Seven
    );
    assert_eq!(c.parity, Parity::Even);
    assert_eq!(
        serialport::StopBits::from(c.stop_bits),
        serialport::StopBits::Two
    );
    assert_eq!(c.flow_control, FlowControl::Hardware);
    assert_eq!(c.format, LineFormat::Csv);
    assert_eq!(c.queue.get(), 50);
    // The backoff's earlier names are still read.
    assert_eq!((c.reconnect_min_ms, c.reconnect_max_ms), (100, 2000));
}

#[test]
fn config_errors_name_the_key() {
    let bad = [
        ("stop_bits = 3", "sink.stop_bits"),
        ("data_bits = 9", "sink.data_bits"),
        ("parity = \"mark\"", "sink.parity"),
        ("flow_control = \"rts\"", "sink.flow_control"),
        ("format = \"xml\"", "sink.format"),
        ("queue = 0", "sink.queue"),
        ("baud = 0", "sink.baud"),
        ("speed = 9600", "speed"),
    ];
    for (line, key) in bad {
        let text = format!("kind = \"serial\"\npath = \"/dev/ttyS0\"\n{line}");
        match sink_config(&text) {
            Err(e) => assert!(e.contains(key), "{line}: {e}"),
            Ok(c) => panic!("{line} was accepted: {c:?}"),
        }
    }
    assert!(sink_config("kind = \"serial\"").is_err_and(|e| e.contains("path")));
    assert!(sink_config("kind = \"uart\"").is_err_and(|e| e.contains("`serial`")));
}

// ---- queue ----

#[test]
fn queue_keeps_a_line_until_it_is_written_whole() {
    let mut queue = LineQueue::new(2);
    assert!(!queue.push(b"ab\n".to_vec()));
    assert!(!queue.advance(1));
    assert_eq!(queue.pending(), Some(&b"b\n"[..]));
    // Port lost part-way: a separator, then the whole line again.
    queue.rewind();
    assert_eq!(queue.pending(), Some(&b"\n"[..]));
    assert!(!queue.advance(1));
    assert_eq!(queue.pending(), Some(&b"ab\n"[..]));
    assert!(queue.advance(3));
    assert!(queue.is_empty());
    // Full: the oldest goes, even part-written, and the fragment is closed off.
    queue.push(b"1\n".to_vec());
    queue.push(b"2\n".to_vec());
    queue.advance(1);
    assert!(queue.push(b"3\n".to_vec()));
    assert_eq!(queue.len(), 2);
    assert_eq!(queue.pending(), Some(&b"\n"[..]));
    queue.advance(1);
    assert_eq!(queue.pending(), Some(&b"2\n"[..]));
}

// ---- through pseudo-terminals ----

/// A pseudo-terminal: the sink writes to `slave_path`, the test reads `master`. The test keeps
/// its own slave descriptor open, so that reads on the master do not fail while the sink has
/// the port closed.
struct Pty {
    master: serialport::TTYPort,
    slave: serialport::TTYPort,
    pending: Vec<u8>,
}

impl Pty {
    fn new() -> Pty {
        let (mut master, slave) = serialport::TTYPort::pair().expect("a pseudo-terminal");
        master
            .set_timeout(Duration::from_millis(20))
            .expect("master timeout");
        Pty {
            master,
            slave,
            pending: Vec::new(),
        }
    }

    fn slave_path(&self) -> PathBuf {
        PathBuf::from(self.slave.name().expect("pty slaves have names"))
    }

    /// The next `n` non-empty lines; fails after `within`.
    fn lines(&mut self, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut lines = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = String::from_utf8(line).expect("UTF-8 lines");
                let line = line.trim_end_matches('\n');
                if !line.is_empty() {
                    lines.push(line.to_string());
                }
                if lines.len() == n {
                    return lines;
                }
            }
            assert!(
                Instant::now() < deadline,
                "got {} of {n} lines in {within:?}: {lines:#?}",
                lines.len()
            );
            match self.master.read(&mut buf) {
                Ok(got) => self.pending.extend_from_slice(&buf[..got]),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("reading the pty master: {e}"),
            }
        }
    }

    /// Nothing more arrives for a short while.
    fn assert_quiet(&mut self) {
        let mut buf = [0u8; 256];
        let deadline = Instant::now() + Duration::from_millis(60);
        while Instant::now() < deadline {
            match self.master.read(&mut buf) {
                Ok(got) => self.pending.extend_from_slice(&buf[..got]),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("reading the pty master: {e}"),
            }
        }
        assert!(
            self.pending.iter().all(|&b| b == b'\n'),
            "unexpected output: {:?}",
            String::from_utf8_lossy(&self.pending)
        );
    }
}

/// Points `link` at `target`, replacing it atomically as udev would.
fn point(link: &Path, target: &Path) {
    let next = link.with_extension("next");
    let _ = std::fs::remove_file(&next);
    std::os::unix::fs::symlink(target, &next).expect("symlink");
    std::fs::rename(&next, link).expect("replace symlink");
}

/// Calls `flush` until the queue is empty; fails after `within`.
fn deliver(sink: &mut SerialSink, within: Duration) {
    let deadline = Instant::now() + within;
    while sink.counters().queued > 0 {
        assert!(
            Instant::now() < deadline,
            "still queued after {within:?}: {:?}",
            sink.counters()
        );
        let _ = sink.flush();
        if sink.counters().queued > 0 {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

fn seq_of_json(line: &str) -> u64 {
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
    value["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no seq: {line}"))
}

fn seq_of_csv(line: &str) -> u64 {
    line.split(',')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no seq: {line}"))
}

const WITHIN: Duration = Duration::from_secs(5);

#[test]
fn pty_receives_json_lines() {
    let mut pty = Pty::new();
    let mut sink = SerialSink::new(config(&pty.slave_path(), LineFormat::Json));
    assert!(sink.is_open());
    let records = [
        result(0),
        error(1, "cannot decode image: bad, very\nbad"),
        result(2),
    ];
    for record in &records {
        sink.emit(record).expect("emit");
    }
    sink.flush().expect("flush");
    let lines = pty.lines(3, WITHIN);
    for (line, record) in lines.iter().zip(&records) {
        let got: serde_json::Value = serde_json::from_str(line).expect("JSON");
        // Through the text, as a reader gets it: f32 scores do not survive `to_value`.
        let want: serde_json::Value =
            serde_json::from_slice(&serde_json::to_vec(record).expect("serialises")).expect("JSON");
        assert_eq!(got, want);
    }
    let error: serde_json::Value = serde_json::from_str(&lines[1]).expect("JSON");
    assert_eq!(
        error["error"]["message"],
        "cannot decode image: bad, very\nbad"
    );
    pty.assert_quiet();
    assert_eq!(
        sink.counters(),
        SerialCounters {
            delivered: 3,
            ..SerialCounters::default()
        }
    );
}

#[test]
fn pty_receives_csv_lines() {
    let mut pty = Pty::new();
    let mut sink = SerialSink::new(config(&pty.slave_path(), LineFormat::Csv));
    sink.emit(&result(0)).expect("emit");
    sink.emit(&error(1, "no, such\nfile")).expect("emit");
    sink.emit(&result_with(2, vec![])).expect("emit");
    sink.emit(&result(13)).expect("emit");
    let lines = pty.lines(4, WITHIN);
    let fields: Vec<Vec<&str>> = lines.iter().map(|l| l.split(',').collect()).collect();
    assert_eq!(fields[0], ["R", "0", "cam0", TS, "0", "0", "0.9877"]);
    assert_eq!(
        fields[1],
        ["E", "1", "cam0", TS, "preprocess", "no; such file"]
    );
    assert_eq!(fields[2], ["R", "2", "cam0", TS, "", "", ""]);
    assert_eq!(fields[3][0], "R");
    assert_eq!(fields[3][4].parse::<usize>(), Ok(3));
    let score: f32 = fields[3][6].parse().expect("a number");
    assert!((score - 0.9877).abs() < 1e-6);
    pty.assert_quiet();
    assert_eq!(sink.counters().delivered, 4);
}

/// The device goes away (its pseudo-terminal is closed) and comes back as another one behind
/// the same name: the records emitted meanwhile arrive on the new one, in order, none lost.
#[test]
fn port_goes_away_and_comes_back_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("ttyEDGE");
    let mut first = Pty::new();
    point(&link, &first.slave_path());
    let mut sink = SerialSink::new(config(&link, LineFormat::Json));
    for seq in 0..3 {
        sink.emit(&result(seq)).expect("emit");
    }
    let lines = first.lines(3, WITHIN);
    assert_eq!(
        lines.iter().map(|l| seq_of_json(l)).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    drop(first);

    for seq in 3..8 {
        sink.emit(&result(seq))
            .expect("a lost port is not an error");
    }
    let away = sink.counters();
    assert!(!sink.is_open());
    assert_eq!(away.delivered, 3);
    assert_eq!(away.queued, 5);
    assert_eq!(away.write_failures, 1);
    assert!(sink.flush().is_err(), "undelivered records are reported");

    let mut second = Pty::new();
    point(&link, &second.slave_path());
    sink.emit(&result(8)).expect("emit");
    deliver(&mut sink, WITHIN);
    let lines = second.lines(6, WITHIN);
    assert_eq!(
        lines.iter().map(|l| seq_of_json(l)).collect::<Vec<_>>(),
        [3, 4, 5, 6, 7, 8]
    );
    second.assert_quiet();
    let back = sink.counters();
    assert_eq!(back.delivered, 9);
    assert_eq!(back.queued, 0);
    assert_eq!(back.dropped, 0);
    assert_eq!(back.reopens, 1);
    sink.flush().expect("nothing left");
}

/// An absent device at start is not fatal: records wait, and leave once it appears.
#[test]
fn absent_port_at_start_delivers_once_it_appears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("ttyACM9");
    let text = format!(
        "kind = \"serial\"\npath = {:?}\nformat = \"csv\"\nreconnect_min_ms = 5\n\
         reconnect_max_ms = 20",
        link.to_string_lossy()
    );
    let config = sink_config(&text).expect("valid config");
    let mut sink = crate::sink::open(&config).expect("an absent port is not an error");
    assert_eq!(sink.describe(), format!("serial {}", link.display()));
    for seq in 0..3 {
        sink.emit(&result(seq)).expect("queued");
    }
    assert!(sink.flush().is_err());

    let mut pty = Pty::new();
    point(&link, &pty.slave_path());
    let deadline = Instant::now() + WITHIN;
    while sink.flush().is_err() {
        assert!(Instant::now() < deadline, "never delivered");
        thread::sleep(Duration::from_millis(5));
    }
    let lines = pty.lines(3, WITHIN);
    assert_eq!(
        lines.iter().map(|l| seq_of_csv(l)).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    pty.assert_quiet();
}

/// While the port is away the queue keeps the newest `queue` records; the rest are counted.
#[test]
fn full_queue_drops_the_oldest_and_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("ttyUSB7");
    let mut config = config(&link, LineFormat::Csv);
    config.queue = std::num::NonZeroUsize::new(3).expect("3 > 0");
    let mut sink = SerialSink::new(config);
    for seq in 0..8 {
        sink.emit(&result(seq)).expect("queued");
    }
    assert_eq!(
        sink.counters(),
        SerialCounters {
            queued: 3,
            dropped: 5,
            ..SerialCounters::default()
        }
    );

    let mut pty = Pty::new();
    point(&link, &pty.slave_path());
    deliver(&mut sink, WITHIN);
    let lines = pty.lines(3, WITHIN);
    assert_eq!(
        lines.iter().map(|l| seq_of_csv(l)).collect::<Vec<_>>(),
        [5, 6, 7]
    );
    pty.assert_quiet();
    let counters = sink.counters();
    assert_eq!((counters.delivered, counters.dropped), (3, 5));
    assert_eq!(counters.reopens, 0, "the first open is not a reopen");
}

/// Nobody reads the other end: the port fills up, takes nothing for `write_timeout_ms`, and
/// is closed and reopened; `emit` never blocks meanwhile. Once a reader drains it, every
/// record arrives in order; a record cut short when its port was closed arrives whole
/// afterwards, its fragment on a line of its own.
#[test]
fn stuck_port_is_closed_and_reopened_without_blocking() {
    let pty = Pty::new();
    let slave_path = pty.slave_path();
    let Pty {
        mut master, slave, ..
    } = pty;
    let mut config = config(&slave_path, LineFormat::Json);
    config.write_timeout_ms = std::num::NonZeroU64::new(50).expect("50 > 0");
    let mut sink = SerialSink::new(config);

    let deadline = Instant::now() + WITHIN;
    let mut emitted = 0;
    while sink.counters().write_failures == 0 {
        assert!(
            Instant::now() < deadline,
            "never stalled: {:?}",
            sink.counters()
        );
        sink.emit(&big(emitted)).expect("emit");
        emitted += 1;
        if sink.counters().queued > 0 {
            thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(sink.counters().queued > 0);

    let reader = thread::spawn(move || {
        let _slave = slave;
        let mut bytes = Vec::new();
        let mut buf = [0u8; 8192];
        let deadline = Instant::now() + WITHIN;
        let want = format!("\"seq\":{},", emitted - 1);
        while Instant::now() < deadline {
            match master.read(&mut buf) {
                Ok(got) => bytes.extend_from_slice(&buf[..got]),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("reading the pty master: {e}"),
            }
            let text = String::from_utf8_lossy(&bytes);
            if text.ends_with('\n') && text.lines().last().is_some_and(|l| l.contains(&want)) {
                break;
            }
        }
        bytes
    });
    deliver(&mut sink, WITHIN);
    let bytes = reader.join().expect("reader");
    let text = String::from_utf8(bytes).expect("UTF-8");
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let mut expected = 0;
    for (i, line) in lines.iter().enumerate() {
        if serde_json::from_str::<serde_json::Value>(line).is_ok() {
            assert_eq!(seq_of_json(line), expected, "line {i}");
            expected += 1;
        } else {
            let next = lines
                .get(i + 1)
                .expect("a fragment is followed by its record");
            assert!(
                next.starts_with(line),
                "line {i} is neither a record nor a fragment: {}... ({} bytes), then {}... ({} bytes)",
                &line[..line.len().min(60)],
                line.len(),
                &next[..next.len().min(60)],
                next.len()
            );
        }
    }
    assert_eq!(expected, emitted);
    let counters = sink.counters();
    assert_eq!(counters.delivered, emitted);
    assert_eq!(counters.dropped, 0);
    assert!(counters.reopens >= 1, "{counters:?}");
}

#[test]
fn camera_status_lines() {
    let status = crate::sink::CameraStatusRecord {
        camera: "door".into(),
        camera_index: 0,
        status: crate::source::CameraState::Offline,
        detail: "device gone: VIDIOC_DQBUF failed, errno 19".into(),
        offline_ms: None,
        ts: TS.into(),
    };
    let csv = String::from_utf8(render_status(&status, LineFormat::Csv).unwrap()).unwrap();
    assert_eq!(
        csv,
        format!("S,door,offline,{TS},device gone: VIDIOC_DQBUF failed; errno 19\n")
    );
    let json = String::from_utf8(render_status(&status, LineFormat::Json).unwrap()).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["status"], "offline");
    assert_eq!(json.matches('\n').count(), 1);
}

/// `emit` returns while nobody reads the port: with a write timeout of an hour, a sink that
/// waited for room would never come back; this one queues and goes on. (A watchdog fails the
/// test instead of letting it hang.)
#[test]
fn emit_never_waits_for_a_full_port() {
    let pty = Pty::new();
    let mut config = config(&pty.slave_path(), LineFormat::Json);
    config.write_timeout_ms = std::num::NonZeroU64::new(3_600_000).expect("an hour > 0");
    let (done, finished) = std::sync::mpsc::channel();
    let worker = thread::spawn(move || {
        let _pty = pty;
        let mut sink = SerialSink::new(config);
        let mut seq = 0;
        // Until the port takes no more...
        while sink.counters().queued == 0 {
            sink.emit(&big(seq)).expect("emit");
            seq += 1;
        }
        // ...and then many more records, none of which may wait for room.
        let queued = sink.counters().queued;
        for _ in 0..50 {
            sink.emit(&big(seq)).expect("emit");
            seq += 1;
        }
        let _ = done.send((queued, sink.counters()));
    });
    let (queued, counters) = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("emit blocked on a full port");
    worker.join().expect("worker");
    // The driver may still take a few bytes now and then, so a line or two may leave.
    assert!(counters.queued >= queued + 45, "{queued} then {counters:?}");
    assert_eq!(
        counters.write_failures, 0,
        "an hour has not passed: {counters:?}"
    );
}
