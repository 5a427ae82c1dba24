//! The README's demo end to end: the bundled model classifies the bundled digits correctly,
//! and every line has the documented shape.

mod common;

use common::edgevit;

fn digit_in_name(input: &str) -> u64 {
    // samples are named digit-<label>-<index>.png
    let name = std::path::Path::new(input)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    name.split('-').nth(1).unwrap().parse().unwrap()
}

#[test]
fn demo_config_classifies_every_bundled_digit_correctly() {
    let config = common::repo().join("board-configs/demo.toml");
    let output = edgevit(&["run", "--config", config.to_str().unwrap()]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let lines = common::json_lines(&output);
    let samples = std::fs::read_dir(common::default_model().join("samples"))
        .unwrap()
        .count();
    assert_eq!(lines.len(), samples);
    assert!(samples >= 10);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], i as u64);
        assert_eq!(line["camera"], "demo");
        assert_eq!(line["model"], "vit-mnist");
        assert_eq!(line["task"], "classify");
        let ts = line["ts"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(ts).is_ok(), "ts {ts} is RFC 3339");
        let top = line["top"].as_array().unwrap();
        assert_eq!(top.len(), 3, "top_k = 3 in the demo config");
        let scores: Vec<f64> = top.iter().map(|t| t["score"].as_f64().unwrap()).collect();
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "best first: {scores:?}"
        );
        let input = line["input"].as_str().unwrap();
        assert_eq!(
            top[0]["index"].as_u64().unwrap(),
            digit_in_name(input),
            "{input}"
        );
        assert_eq!(
            top[0]["label"].as_str().unwrap(),
            digit_in_name(input).to_string()
        );
        // The three stages and nothing else; inference takes measurable time (microseconds
        // are kept), the others may round to 0.
        let latency = line["latency_ms"].as_object().unwrap();
        let mut stages: Vec<&str> = latency.keys().map(String::as_str).collect();
        stages.sort_unstable();
        assert_eq!(stages, ["infer", "post", "pre"]);
        for (stage, ms) in latency {
            let ms = ms.as_f64().unwrap();
            assert!(ms.is_finite() && ms >= 0.0, "{stage}: {ms}");
        }
        assert!(latency["infer"].as_f64().unwrap() > 0.0, "{line}");
    }
}

/// Every bundled package passes `edgevit models check`. The packages are checked side by side:
/// under qemu-aarch64 in CI each ViT-Tiny check takes minutes on one core.
#[test]
fn bundled_models_pass_their_self_tests() {
    let mut dirs: Vec<_> = std::fs::read_dir(common::repo().join("models"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.join("model.toml").exists())
        .collect();
    dirs.sort();
    let outputs: Vec<_> = std::thread::scope(|scope| {
        let checks: Vec<_> = dirs
            .iter()
            .map(|dir| scope.spawn(move || edgevit(&["models", "check", dir.to_str().unwrap()])))
            .collect();
        checks.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let mut checked = Vec::new();
    for (dir, output) in dirs.iter().zip(&outputs) {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}: {stdout}{}",
            dir.display(),
            common::stderr(output)
        );
        assert!(stdout.contains("PASS"), "{}: {stdout}", dir.display());
        checked.push(dir.file_name().unwrap().to_string_lossy().into_owned());
    }
    for required in [
        "vit-mnist",
        "vit-tiny-int8",
        "vit-tiny-qdq",
        "vit-mnist-canvas",
        "vit-mnist-transfg",
        "vit-mnist-lvvit",
        "centernet-coco",
        "blazeface",
        "face-descriptor",
    ] {
        assert!(
            checked.iter().any(|c| c == required),
            "{required} checked: {checked:?}"
        );
    }
}

#[test]
fn pattern_source_runs_through_a_file_sink_with_two_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let config = common::write_config(
        tmp.path(),
        "[source]\nkind = \"pattern\"\nwidth = 64\nheight = 48\nframes = 3\ncamera = \"bars\"\n\
             [model]\npath = \"{model}\"\n[backend]\nkind = \"tract\"\nthreads = 2\n\
             [classify]\ntop_k = 1\n[sink]\nkind = \"file\"\npath = \"out.jsonl\"\n",
    );
    let output = edgevit(&["run", "--config", config.to_str().unwrap()]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let written = std::fs::read_to_string(tmp.path().join("out.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], i as u64);
        assert_eq!(line["camera"], "bars");
        assert!(
            line.get("input").is_none(),
            "a generated frame has no input file"
        );
        assert_eq!(line["top"].as_array().unwrap().len(), 1);
    }
}

#[test]
fn sigterm_ends_the_loop_cleanly_with_every_record_written() {
    let tmp = tempfile::tempdir().unwrap();
    let config = common::write_config(
        tmp.path(),
        "[source]\nkind = \"pattern\"\nwidth = 32\nheight = 32\nfps = 50\n\
             [model]\npath = \"{model}\"\n[sink]\nkind = \"file\"\npath = \"out.jsonl\"\n",
    );
    let child = common::Running::new(
        std::process::Command::new(env!("CARGO_BIN_EXE_edgevit"))
            .args(["run", "--config", config.to_str().unwrap()])
            .spawn()
            .unwrap(),
    );
    let out = tmp.path().join("out.jsonl");
    // Wait (bounded) until results flow, then ask it to stop as systemd would.
    for _ in 0..300 {
        if std::fs::read_to_string(&out).is_ok_and(|t| t.lines().count() >= 3) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.child().id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait();
    assert!(status.success(), "a clean stop exits 0: {status:?}");
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.ends_with('\n'), "no torn last line");
    let seqs: Vec<u64> = written
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(seqs.len() >= 3);
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "every frame has its record"
    );
}

/// Every board configuration is accepted by `edgevit check` up to the hardware: with the
/// bundled models where the package installs them, and state in a scratch folder, the only
/// failures left are camera devices this machine does not have.
#[test]
fn every_board_config_passes_edgevit_check_but_for_its_cameras() {
    let dir = common::repo().join("board-configs");
    let models = common::repo().join("models");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/share/edgevit/models", models.to_str().unwrap())
            .replace("/var/lib/edgevit", tmp.path().to_str().unwrap());
        let copy = tmp.path().join("board.toml");
        std::fs::write(&copy, &text).unwrap();
        // Relative paths (the demo's) stay relative to the folder of the original.
        let copy = if text.contains("../models") {
            path.clone()
        } else {
            copy
        };
        let output = edgevit(&["check", "--config", copy.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL  ")).collect();
        assert!(
            failures.iter().all(|l| l.contains("source.camera[")),
            "{}: {stdout}{}",
            path.display(),
            common::stderr(&output)
        );
        let model = match path.file_stem().unwrap().to_str() {
            Some("door-faces") => "ok    model: face-descriptor",
            _ => "ok    model: vit-mnist",
        };
        assert!(stdout.contains(model), "{}: {stdout}", path.display());
        let code = output.status.code();
        assert_eq!(
            code,
            Some(if failures.is_empty() { 0 } else { 1 }),
            "{stdout}"
        );
        seen.push(path.file_stem().unwrap().to_string_lossy().into_owned());
    }
    for board in [
        "demo",
        "rk3588",
        "rk3566",
        "jetson-orin-nano",
        "raspberry-pi-5",
        "x86_64-generic",
        "usb-webcam",
        "door-faces",
    ] {
        assert!(seen.iter().any(|s| s == board), "{board}: {seen:?}");
    }
}

#[test]
fn record_numbers_continue_across_restarts_with_a_state_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let config = common::write_config(
        tmp.path(),
        "state_dir = \"state\"\n[source]\nkind = \"pattern\"\nwidth = 32\nheight = 32\nframes = 4\n\
         camera = \"bars\"\n[model]\npath = \"{model}\"\n[classify]\ntop_k = 1\n",
    );
    let mut seqs = Vec::new();
    for _ in 0..2 {
        let output = edgevit(&["run", "--config", config.to_str().unwrap()]);
        assert!(output.status.success(), "{}", common::stderr(&output));
        seqs.extend(
            common::json_lines(&output)
                .iter()
                .map(|l| l["seq"].as_u64().unwrap()),
        );
    }
    // The second run goes on where the first stopped: (camera, seq) is unique across runs.
    assert_eq!(seqs, (0..8).collect::<Vec<u64>>());
    let stored = std::fs::read_to_string(tmp.path().join("state/seq/bars.seq")).unwrap();
    assert_eq!(stored.trim(), "8");
}

/// A trigger that lets `edges` frames through, each after a short wait, then asks the loop to
/// stop; it records what the pipeline's health said while it waited.
struct Pulses {
    edges: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    health: std::sync::Arc<edgevit::pipeline::Health>,
    seen_waiting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl edgevit::pipeline::FrameTrigger for Pulses {
    fn wait(
        &mut self,
        _stop: &std::sync::atomic::AtomicBool,
        _timeout: std::time::Duration,
    ) -> Result<bool, String> {
        use std::sync::atomic::Ordering;
        let snapshot = self.health.snapshot();
        if snapshot.waiting_for_trigger && snapshot.alive(std::time::Duration::from_millis(1)) {
            self.seen_waiting.fetch_add(1, Ordering::SeqCst);
        }
        if self.edges == 0 {
            self.stop.store(true, Ordering::SeqCst);
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        self.edges -= 1;
        Ok(true)
    }
}

#[test]
fn a_trigger_lets_one_frame_through_per_edge_and_waiting_is_not_a_stall() {
    use edgevit::pipeline::{LoadedModel, Pipeline, VitOptions};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let tmp = tempfile::tempdir().unwrap();
    let model = LoadedModel::load(&common::default_model(), &Default::default()).unwrap();
    let samples: Vec<_> = std::fs::read_dir(common::default_model().join("samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(samples.len() >= 5);
    let source = Box::new(edgevit::source::ImageListSource::new(
        samples,
        "gate".into(),
    ));
    let out = tmp.path().join("records.jsonl");
    let sink = Box::new(edgevit::sink::JsonLinesSink::append_to(&out).unwrap());
    let mut pipeline = Pipeline::new(
        model,
        &Default::default(),
        &VitOptions::default(),
        source,
        sink,
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let seen_waiting = Arc::new(AtomicUsize::new(0));
    pipeline.set_trigger(Box::new(Pulses {
        edges: 3,
        stop: Arc::clone(&stop),
        health: pipeline.health(),
        seen_waiting: Arc::clone(&seen_waiting),
    }));
    let summary = pipeline.run(&stop).unwrap();
    assert_eq!(
        summary.frames, 3,
        "one frame per edge, not all of the folder"
    );
    let records = std::fs::read_to_string(&out).unwrap();
    assert_eq!(records.lines().count(), 3);
    // Between edges the loop is waiting, and alive for the watchdog even with no recent frame.
    assert!(seen_waiting.load(Ordering::SeqCst) >= 3);
    assert!(pipeline
        .health()
        .snapshot()
        .status(0.0)
        .contains("3 frames"));
}

/// The self-test decides whether tract's half precision runs: the bundled vit-mnist differs
/// from its reference by about 1e-3 in f16, over its tolerance of 1e-4, so it runs in f32 and
/// says why; a package that accepts 0.01 for `tract-f16` runs in f16.
#[test]
fn the_self_test_decides_whether_half_precision_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = common::default_model().join("samples/digit-3-4.png");
    let infer = |model: &std::path::Path| {
        let output = edgevit(&[
            "infer",
            "--model",
            model.to_str().unwrap(),
            "--backend",
            "tract-f16",
            sample.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", common::stderr(&output));
        let line = common::json_lines(&output).remove(0);
        assert_eq!(line["top"][0]["label"], "3", "{line}");
        (
            line["backend"].as_str().unwrap().to_string(),
            common::stderr(&output),
        )
    };
    let (backend, log) = infer(&common::default_model());
    assert_eq!(backend, "tract", "{log}");
    assert!(
        log.contains("after tract-f16:") && log.contains("failed its self-test"),
        "{log}"
    );

    let accepting = common::edited_default_package(&tmp.path().join("f16"), |manifest| {
        let tolerances = common::table(manifest, "selftest")
            .get_mut("backend_tolerance")
            .and_then(|v| v.as_table_mut())
            .unwrap();
        tolerances.insert("tract-f16".into(), toml::Value::Float(0.01));
    });
    let (backend, log) = infer(&accepting);
    assert_eq!(backend, "tract-f16", "{log}");
    assert!(!log.contains("failed its self-test"), "{log}");
}
