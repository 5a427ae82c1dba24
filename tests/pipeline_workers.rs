//! The loop on its threads (`[pipeline] workers`): several model instances on successive
//! frames give the records in frame order with contiguous numbers, the zoom (which goes back to
//! the frame's pixels) works on every worker, a stop in the middle of a run loses nothing
//! that was read, and the reader hands frame buffers back to the source for reuse.

mod common;

use edgevit::backend::BackendConfig;
use edgevit::pipeline::{LoadedModel, Pipeline, VitOptions};
use edgevit::sink::JsonLinesSink;
use edgevit::source::{FrameResult, FrameSource};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lines the sink has finished writing to `path` so far: while it runs, the last one may be
/// partly written.
fn complete_lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches('\n')
        .count()
}

fn records(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn workers_deliver_every_frame_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    // The ten sample digits, four times over under other names: 40 frames.
    let samples = tmp.path().join("frames");
    std::fs::create_dir(&samples).unwrap();
    for entry in std::fs::read_dir(common::default_model().join("samples")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        for copy in ["a", "b", "c", "d"] {
            std::fs::copy(&path, samples.join(format!("{stem}-{copy}.png"))).unwrap();
        }
    }
    for workers in [1, 3] {
        let out = tmp.path().join(format!("out-{workers}.jsonl"));
        let config = common::write_config(
            tmp.path(),
            &format!(
                "[source]\nkind = \"image-dir\"\npath = \"{}\"\n\
                 [model]\npath = \"{{model}}\"\n[pipeline]\nworkers = {workers}\n\
                 [sink]\nkind = \"file\"\npath = \"{}\"\n",
                samples.display(),
                out.display()
            ),
        );
        let output = common::edgevit(&["run", "--config", config.to_str().unwrap()]);
        assert!(output.status.success(), "{}", common::stderr(&output));
        let records = records(&out);
        assert_eq!(records.len(), 40, "workers = {workers}");
        let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (0..40).collect::<Vec<u64>>(), "workers = {workers}");
        // The image folder in its sorted order: the right digit each time.
        let mut files: Vec<String> = std::fs::read_dir(&samples)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        for (i, record) in records.iter().enumerate() {
            let input = record["input"].as_str().unwrap();
            assert!(input.ends_with(&files[i]), "{i}: {input}");
            let digit = files[i].split('-').nth(1).unwrap();
            assert_eq!(record["top"][0]["label"], digit, "{record}");
        }
    }
}

/// A pattern source that counts the pixel buffers the loop gives back.
struct CountingSource {
    inner: edgevit::source::PatternSource,
    given_back: Arc<AtomicUsize>,
}

impl FrameSource for CountingSource {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn next_frame(&mut self) -> Option<FrameResult> {
        self.inner.next_frame()
    }

    fn recycle(&mut self, data: Vec<u8>) {
        assert_eq!(data.len(), 64 * 48 * 3, "a whole frame's pixels");
        self.given_back.fetch_add(1, Ordering::SeqCst);
        self.inner.recycle(data);
    }
}

/// Runs `frames` pattern frames through `model` on `workers` workers; returns how many frame
/// buffers came back to the source and the records' `seq` numbers.
fn run_counting_given_back(
    model: &std::path::Path,
    vit: &VitOptions,
    workers: usize,
    frames: u64,
) -> (usize, Vec<u64>) {
    let tmp = tempfile::tempdir().unwrap();
    let given_back = Arc::new(AtomicUsize::new(0));
    let pattern = edgevit::source::PatternConfig {
        width: 64,
        height: 48,
        frames: Some(frames),
        fps: 0.0,
        camera: "cam0".into(),
    };
    let source = Box::new(CountingSource {
        inner: edgevit::source::PatternSource::new(&pattern).unwrap(),
        given_back: given_back.clone(),
    });
    let out = tmp.path().join("out.jsonl");
    let sink = Box::new(JsonLinesSink::append_to(&out).unwrap());
    let load = || LoadedModel::load(model, &BackendConfig::default()).unwrap();
    let classify = Default::default();
    let mut pipeline = Pipeline::new(load(), &classify, vit, source, sink).unwrap();
    for _ in 1..workers {
        pipeline.add_worker(load(), &classify, vit).unwrap();
    }
    let summary = pipeline.run(&AtomicBool::new(false)).unwrap();
    assert_eq!(summary.frames, frames);
    let seqs = records(&out)
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    (given_back.load(Ordering::SeqCst), seqs)
}

/// Each frame's pixel buffer goes back to the source for a later frame once no stage reads it:
/// from the reader, which preprocesses plain classification, and from the workers, which go
/// back to the frame's pixels for the zoom. Every frame is still delivered, in order.
#[test]
fn every_frame_buffer_goes_back_to_the_source() {
    let (given_back, seqs) =
        run_counting_given_back(&common::default_model(), &VitOptions::default(), 1, 12);
    assert_eq!(given_back, 12, "from the reader");
    assert_eq!(seqs, (0..12).collect::<Vec<u64>>());

    let zoom = VitOptions {
        zoom: Some(Default::default()),
        ..VitOptions::default()
    };
    let canvas = common::repo().join("models/vit-mnist-canvas");
    let (given_back, seqs) = run_counting_given_back(&canvas, &zoom, 2, 12);
    // The reader passes them on before each read: those of the frames still in the queue or
    // in a worker's hands when the source ends (up to four with two workers) are not.
    assert!(
        (12 - 5..=12).contains(&given_back),
        "{given_back} of 12 from the workers"
    );
    assert_eq!(seqs, (0..12).collect::<Vec<u64>>());
}

#[test]
fn zoom_runs_on_every_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let canvas = common::repo().join("models/vit-mnist-canvas");
    // The four samples ten times over: enough frames that both workers get some, however the
    // threads are scheduled.
    let samples = tmp.path().join("samples");
    std::fs::create_dir(&samples).unwrap();
    for entry in std::fs::read_dir(canvas.join("samples")).unwrap() {
        let path = entry.unwrap().path();
        for copy in 0..10 {
            let name = format!("{copy}-{}", path.file_name().unwrap().to_string_lossy());
            std::fs::copy(&path, samples.join(name)).unwrap();
        }
    }
    let out = tmp.path().join("out.jsonl");
    let config = tmp.path().join("edgevit.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nkind = \"image-dir\"\npath = \"{}\"\n[model]\npath = \"{}\"\n\
             [pipeline]\nworkers = 2\n[zoom]\n[sink]\nkind = \"file\"\npath = \"{}\"\n",
            samples.display(),
            canvas.display(),
            out.display()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_edgevit"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "edgevit::pipeline=debug")
        .output()
        .unwrap();
    let log = common::stderr(&output);
    assert!(output.status.success(), "{log}");
    // Both workers took frames: each says how many at the end.
    for worker in 0..2 {
        let jobs: u64 = log
            .lines()
            .find_map(|l| l.split(&format!("worker {worker}: ")).nth(1))
            .and_then(|rest| rest.split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("worker {worker} said nothing: {log}"));
        assert!(jobs >= 1, "worker {worker} took no frame: {log}");
    }
    let records = records(&out);
    assert_eq!(records.len(), 40);
    for record in &records {
        assert!(record["region"]["box"].is_array(), "{record}");
        assert!(
            record["passes"].as_array().is_some_and(|p| p.len() == 2),
            "{record}"
        );
        assert!(record["error"].is_null(), "{record}");
    }
}

#[test]
fn a_stop_delivers_every_frame_that_was_read() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.jsonl");
    let config = common::write_config(
        tmp.path(),
        &format!(
            "[source]\nkind = \"pattern\"\nwidth = 640\nheight = 480\nfps = 0\n\
             [model]\npath = \"{{model}}\"\n[pipeline]\nworkers = 2\n\
             [sink]\nkind = \"file\"\npath = \"{}\"\n",
            out.display()
        ),
    );
    let child = common::Running::new(
        Command::new(env!("CARGO_BIN_EXE_edgevit"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while complete_lines(&out) < 50 {
        assert!(Instant::now() < deadline, "no records");
        std::thread::sleep(Duration::from_millis(20));
    }
    common::signal(child.child(), "TERM");
    let output = child.wait_with_output();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{log}");
    let frames = common::run_summary(&log, "frames");
    let records = records(&out);
    assert_eq!(records.len(), frames, "{log}");
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..frames as u64).collect::<Vec<u64>>());
    assert!(log.contains("(2 workers)"), "{log}");
}

#[test]
fn bench_measures_each_stage_and_the_loop_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, svg) = (tmp.path().join("bench.json"), tmp.path().join("bench.svg"));
    let model = common::default_model();
    for (format, name) in [
        ("yuyv", "yuyv"),
        ("nv12", "nv12"),
        ("mjpeg", "mjpeg"),
        ("rgb", "rgb24"),
        ("gray", "gray8"),
    ] {
        let output = common::edgevit(&[
            "bench",
            "--model",
            model.to_str().unwrap(),
            "--frames",
            "6",
            "--size",
            "320x240",
            "--format",
            format,
            "--workers",
            "2",
            "--json",
            json.to_str().unwrap(),
            "--plot",
            svg.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", common::stderr(&output));
        let summary = &common::json_lines(&output)[0];
        assert_eq!(summary["frame"], format!("320x240 {name}"), "{summary}");
        assert!(
            summary.get("frame_ms").is_none(),
            "the per-frame list goes to --json only"
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let stages: Vec<&str> = report["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["stage"].as_str().unwrap())
            .collect();
        assert_eq!(
            stages,
            [
                "convert",
                "resize",
                "normalize",
                "infer",
                "interpret",
                "publish",
                "total"
            ]
        );
        let p50 = |name: &str| {
            report["stages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["stage"] == name)
                .unwrap()["p50_ms"]
                .as_f64()
                .unwrap()
        };
        assert!(
            p50("infer") > 0.0 && p50("total") >= p50("infer"),
            "{report}"
        );
        assert_eq!(report["frame_ms"].as_array().unwrap().len(), 6);
        assert_eq!(report["workers"], 2);
        for key in [
            "pipelined_fps",
            "sequential_fps",
            "cold_start_ms",
            "peak_rss_mb",
            "rss_mb",
            "rss_file_mb",
        ] {
            assert!(report[key].as_f64().unwrap() > 0.0, "{key}: {report}");
        }
        // The executable's own pages are part of the resident set, never all of it.
        assert!(
            report["rss_file_mb"].as_f64() < report["rss_mb"].as_f64(),
            "{report}"
        );
        let picture = std::fs::read_to_string(&svg).unwrap();
        assert!(
            picture.starts_with("<svg") && picture.contains("infer"),
            "{picture}"
        );
    }
    // A recorded frame: a raw YUYV frame of the size given, and one of another size.
    let raw = tmp.path().join("frame.raw");
    std::fs::write(&raw, vec![128u8; 320 * 240 * 2]).unwrap();
    let recorded = |size: &str| {
        common::edgevit(&[
            "bench",
            "--model",
            model.to_str().unwrap(),
            "--frames",
            "3",
            "--size",
            size,
            "--format",
            "yuyv",
            "--input",
            raw.to_str().unwrap(),
        ])
    };
    let output = recorded("320x240");
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(common::json_lines(&output)[0]["frames"], 3);
    common::assert_clean_failure(&recorded("640x480"), &["has 153600 bytes", "has 614400"]);
    // A bad size, and a ReID model: clear errors.
    let output = common::edgevit(&[
        "bench",
        "--model",
        model.to_str().unwrap(),
        "--frames",
        "2",
        "--size",
        "1920",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(common::stderr(&output).contains("WIDTHxHEIGHT"));
    let reid = common::repo().join("models/transreid-tiny");
    let output = common::edgevit(&["bench", "--model", reid.to_str().unwrap(), "--frames", "2"]);
    common::assert_clean_failure(&output, &["measures classification models"]);
}

/// `--backend-config FILE`: the backend comes from a file's `[backend]` table, for settings
/// that have no flag; a bad table and a flag given beside it are clear errors.
#[test]
fn bench_takes_its_backend_from_a_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::default_model();
    let model = model.to_str().unwrap();
    let file = tmp.path().join("backend.toml");
    std::fs::write(&file, "[backend]\nkind = \"tract\"\nthreads = 2\n").unwrap();
    let file = file.to_str().unwrap();
    let output = common::edgevit(&[
        "bench",
        model,
        "--backend-config",
        file,
        "--warmup",
        "0",
        "--iterations",
        "2",
    ]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let line = &common::json_lines(&output)[0];
    assert_eq!(line["backend"], "tract", "{line}");
    // The threads are the file's, which the flag would misreport.
    assert!(line["threads"].is_null(), "{line}");
    let output = common::edgevit(&[
        "bench",
        "--model",
        model,
        "--frames",
        "2",
        "--size",
        "320x240",
        "--backend-config",
        file,
    ]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(common::json_lines(&output)[0]["backend"], "tract");

    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[backend]\nkind = \"tract\"\nthreads = \"two\"\n").unwrap();
    let output = common::edgevit(&["bench", model, "--backend-config", bad.to_str().unwrap()]);
    common::assert_clean_failure(&output, &["--backend-config", "backend.threads"]);
    let output = common::edgevit(&[
        "bench",
        model,
        "--backend",
        "tract",
        "--backend-config",
        file,
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", common::stderr(&output));
    assert!(common::stderr(&output).contains("cannot be used with"));
}
