//! V4L2 capture against a real kernel driver: the `vivid` virtual camera, in a qemu VM booted
//! by tools/vivid-vm/run-in-vm.sh (no KVM needed). vivid device 0 is single-planar, device 1
//! multi-planar (`multiplanar=1,2`), both capture-only.
//!
//! Where qemu is not installed these tests fail, naming the command that installs it.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

const VIVID: &str = "n_devs=2 multiplanar=1,2 node_types=1,1";

/// One VM at a time: they are CPU-bound emulations on a small machine.
static VM: Mutex<()> = Mutex::new(());

struct VmRun {
    status: i32,
    stdout: String,
    stderr: String,
}

/// Runs `script` in a fresh VM with edgevit (and `extra`) in /work; files the script writes
/// under /out come back in `out`. Where the VM cannot run, the test fails saying what is missing.
fn run_in_vm(extra: &[&Path], out: &Path, script: &str) -> VmRun {
    let _one_at_a_time = VM.lock().unwrap_or_else(|e| e.into_inner());
    let qemu_found = Command::new("sh")
        .args(["-c", "command -v qemu-system-x86_64"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !qemu_found {
        common::missing("qemu-system-x86_64 (for the vivid camera VM)");
    }
    let mut command = Command::new(common::repo().join("tools/vivid-vm/run-in-vm.sh"));
    command.args(["--vivid", VIVID, "--timeout", "400", "--mem", "768"]);
    command.args(["--add", env!("CARGO_BIN_EXE_edgevit")]);
    for path in extra {
        command.arg("--add").arg(path);
    }
    command.arg("--out").arg(out).arg("--").arg(script);
    let output = command.output().expect("run-in-vm.sh starts");
    let run = VmRun {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    if run.status == 3 {
        eprintln!("{}", run.stderr);
        common::missing("the kernel package for the vivid VM (fetched with apt-get download)");
    }
    assert_ne!(
        run.status, 124,
        "the VM timed out:\n{}\n{}",
        run.stdout, run.stderr
    );
    run
}

/// The host's v4l2-ctl, to be copied into the VM (always `Some`: missing, the test fails).
fn v4l2_ctl() -> PathBuf {
    Command::new("sh")
        .args(["-c", "command -v v4l2-ctl"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|| common::missing("v4l2-ctl (v4l-utils)"))
}

/// The fourccs of `v4l2-ctl --list-formats` (lines like `[0]: 'YUYV' (YUYV 4:2:2)`).
fn fourccs(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| line.split_once("]: '")?.1.split_once('\'').map(|(f, _)| f))
        .map(|f| f.trim_end().to_string())
        .collect()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// vivid's default pattern, 75% colour bars, left to right, as RGB.
const BARS: [(&str, [u8; 3]); 8] = [
    ("white", [191, 191, 191]),
    ("yellow", [191, 191, 0]),
    ("cyan", [0, 191, 191]),
    ("green", [0, 191, 0]),
    ("magenta", [191, 0, 191]),
    ("red", [191, 0, 0]),
    ("blue", [0, 0, 191]),
    ("black", [0, 0, 0]),
];

/// Checks the bar colours near the bottom of a decoded frame (vivid writes its text at the
/// top). Grey frames are checked against the bars' luma, which vivid computes with the
/// BT.709 weights of its default sRGB colorspace.
fn assert_colour_bars(png: &Path, grey: bool) {
    let image = image::open(png)
        .unwrap_or_else(|e| panic!("{}: {e}", png.display()))
        .into_rgb8();
    let (width, height) = image.dimensions();
    let y = height * 9 / 10;
    let all: Vec<[u8; 3]> = (0..8)
        .map(|bar| image.get_pixel((2 * bar + 1) * width / 16, y).0)
        .collect();
    for (bar, (name, rgb)) in BARS.iter().enumerate() {
        let x = (2 * bar as u32 + 1) * width / 16;
        let got = all[bar];
        let want = if grey {
            let luma = 0.2126 * f64::from(rgb[0])
                + 0.7152 * f64::from(rgb[1])
                + 0.0722 * f64::from(rgb[2]);
            [luma.round() as u8; 3]
        } else {
            *rgb
        };
        let off = got
            .iter()
            .zip(want)
            .map(|(&g, w)| (i32::from(g) - i32::from(w)).abs())
            .max()
            .unwrap_or(0);
        assert!(
            off <= 6,
            "{}: the {name} bar at ({x}, {y}) is {got:?}, expected {want:?} (all bars: {all:?})",
            png.display()
        );
    }
}

const FORMATS: [&str; 6] = ["YUYV", "NV12", "NM12", "GREY", "RGB3", "BGR3"];

#[test]
fn every_supported_format_on_single_and_multi_planar_nodes_decodes_to_the_colour_bars() {
    let out = tempfile::tempdir().unwrap();
    // What vivid offers is read with v4l2-ctl, independently of edgevit's own enumeration.
    let v4l2_ctl = v4l2_ctl();
    let script = format!(
        "./edgevit probe --json > /out/probe.json; \
         for node in /dev/video*; do n=${{node#/dev/}}; \
           ./v4l2-ctl -d $node --list-formats > /out/$n.formats 2>&1; \
           for f in {formats}; do \
           ./edgevit snapshot --device $node --format $f --width 320 --height 180 --count 2 \
             --timeout 60 --out /out/$n-$f > /out/$n-$f.jsonl 2> /out/$n-$f.err; \
           echo \"$n $f $?\"; \
         done; done",
        formats = FORMATS.join(" ")
    );
    let run = run_in_vm(&[&v4l2_ctl], out.path(), &script);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let probe: Value = serde_json::from_slice(
        &std::fs::read(out.path().join("probe.json")).expect("probe.json written"),
    )
    .expect("probe --json is JSON");
    let devices = probe["devices"].as_array().expect("devices listed");
    let planar: Vec<&str> = devices
        .iter()
        .filter_map(|d| d["capture"].as_str())
        .collect();
    assert!(
        planar.contains(&"single-planar") && planar.contains(&"multi-planar"),
        "{planar:?}"
    );
    assert!(probe["backends"][0]["name"] == "tract", "{probe}");

    let mut checked = Vec::new();
    for device in devices {
        let node = device["path"].as_str().unwrap().trim_start_matches("/dev/");
        let capture = device["capture"].as_str().unwrap();
        let listed = std::fs::read_to_string(out.path().join(format!("{node}.formats")))
            .expect("v4l2-ctl's list written");
        let offered = fourccs(&listed);
        assert!(!offered.is_empty(), "v4l2-ctl listed nothing: {listed}");
        let probed: Vec<String> = device["formats"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["fourcc"].as_str().map(str::to_string))
            .collect();
        let offered: Vec<&str> = offered.iter().map(String::as_str).collect();
        for format in FORMATS {
            assert_eq!(
                probed.iter().any(|p| p == format),
                offered.contains(&format),
                "{format} on {node}: edgevit probe lists {probed:?}, v4l2-ctl {offered:?}"
            );
        }
        for format in FORMATS {
            let exit = run
                .stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{node} {format} ")))
                .unwrap_or_else(|| panic!("no result for {node} {format}:\n{}", run.stdout));
            let err = std::fs::read_to_string(out.path().join(format!("{node}-{format}.err")))
                .unwrap_or_default();
            if !offered.contains(&format) {
                assert_ne!(
                    exit, "0",
                    "{node} does not offer {format}, yet the snapshot passed"
                );
                assert!(
                    err.contains("offers none of the configured formats"),
                    "{err}"
                );
                continue;
            }
            assert_eq!(exit, "0", "{node} ({capture}) {format}: {err}");
            let text =
                std::fs::read_to_string(out.path().join(format!("{node}-{format}.jsonl"))).unwrap();
            let frames: Vec<Value> = json_lines(&text)
                .into_iter()
                .filter(|l| l.get("png").is_some())
                .collect();
            assert_eq!(frames.len(), 2, "{text}");
            // The size the driver returned is the one used (vivid has 320x180, not 320x240).
            assert_eq!(
                (frames[1]["width"].as_u64(), frames[1]["height"].as_u64()),
                (Some(320), Some(180))
            );
            assert!(frames[1]["seq"].as_u64() > frames[0]["seq"].as_u64());
            let png = PathBuf::from(
                frames[1]["png"]
                    .as_str()
                    .unwrap()
                    .replace("/out", &out.path().display().to_string()),
            );
            assert_colour_bars(&png, format == "GREY");
            checked.push(format!("{node}:{capture}:{format}"));
        }
    }
    for needed in [
        "single-planar:YUYV",
        "single-planar:NV12",
        "single-planar:GREY",
        "single-planar:RGB3",
        "single-planar:BGR3",
        "multi-planar:NM12",
        "multi-planar:YUYV",
        "multi-planar:NV12",
        "multi-planar:GREY",
        "multi-planar:RGB3",
        "multi-planar:BGR3",
    ] {
        assert!(
            checked.iter().any(|c| c.ends_with(needed)),
            "{needed} was not checked: {checked:?}"
        );
    }
    eprintln!("checked: {checked:?}");
}

fn camera_config(dir: &Path) -> PathBuf {
    let config = dir.join("cameras.toml");
    std::fs::write(
        &config,
        r#"state_dir = "/tmp/state"
[source]
kind = "v4l2"
[[source.camera]]
id = "single"
device = "/dev/video0"
width = 320
height = 180
reconnect_min_ms = 200
reconnect_max_ms = 1000
[[source.camera]]
id = "multi"
device = "vivid-001-vid-cap"
width = 320
height = 180
formats = ["NM12"]
[model]
path = "/work/vit-mnist"
[classify]
top_k = 1
"#,
    )
    .unwrap();
    config
}

#[test]
fn two_cameras_run_through_the_model_and_numbering_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = camera_config(dir.path());
    let model = common::repo().join("models/vit-mnist");
    let script = "for run in 1 2; do \
        ./edgevit run --config cameras.toml > /out/run$run.jsonl 2> /out/run$run.err & pid=$!; \
        sleep 12; kill -TERM $pid; wait $pid; echo \"run $run exit $?\"; done";
    let run = run_in_vm(&[&config, &model], dir.path(), script);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let mut last_seq = std::collections::HashMap::new();
    for round in [1, 2] {
        assert!(
            run.stdout.contains(&format!("run {round} exit 0")),
            "{}",
            run.stdout
        );
        let text = std::fs::read_to_string(dir.path().join(format!("run{round}.jsonl"))).unwrap();
        let lines = json_lines(&text);
        for camera in ["single", "multi"] {
            let online = lines
                .iter()
                .find(|l| l["camera"] == camera && l["status"] == "online")
                .unwrap_or_else(|| panic!("no online status for {camera}:\n{text}"));
            assert!(online["detail"]
                .as_str()
                .unwrap()
                .contains(if camera == "multi" {
                    "multi-planar"
                } else {
                    "single-planar"
                }));
            let results: Vec<&Value> = lines
                .iter()
                .filter(|l| l["camera"] == camera && l.get("top").is_some())
                .collect();
            assert!(
                results.len() >= 2,
                "{camera}: {} results in run {round}:\n{text}",
                results.len()
            );
            for r in &results {
                assert_eq!(r["model"], "vit-mnist");
                assert_eq!(r["top"].as_array().unwrap().len(), 1);
            }
            let seqs: Vec<u64> = results.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{camera}: {seqs:?}");
            // The state directory carries the numbering across the restart.
            if let Some(previous) = last_seq.get(camera) {
                assert!(
                    seqs[0] > *previous,
                    "{camera}: run 2 starts at {} after {previous}",
                    seqs[0]
                );
            }
            last_seq.insert(camera, *seqs.last().unwrap());
        }
    }
}

#[test]
fn cameras_unplugged_while_running_come_back_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = camera_config(dir.path());
    let model = common::repo().join("models/vit-mnist");
    // Unbinding vivid's platform device removes both cameras, as pulling a USB hub would;
    // binding it again brings them back (tools/vivid-vm/README.md).
    let script = "./edgevit run --config cameras.toml > /out/run.jsonl 2> /out/run.err & pid=$!; \
        sleep 10; echo vivid.0 > /sys/bus/platform/drivers/vivid/unbind; echo unplugged; \
        sleep 3; echo vivid.0 > /sys/bus/platform/drivers/vivid/bind; echo replugged; \
        sleep 12; kill -TERM $pid; wait $pid; echo \"exit $?\"";
    let run = run_in_vm(&[&config, &model], dir.path(), script);
    let err = std::fs::read_to_string(dir.path().join("run.err")).unwrap_or_default();
    assert_eq!(run.status, 0, "{}\n{}\n{err}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("exit 0"),
        "edgevit kept running and stopped cleanly:\n{}\n{err}",
        run.stdout
    );
    let text = std::fs::read_to_string(dir.path().join("run.jsonl")).unwrap();
    let lines = json_lines(&text);
    for camera in ["single", "multi"] {
        let mine: Vec<&Value> = lines.iter().filter(|l| l["camera"] == camera).collect();
        let statuses: Vec<&str> = mine.iter().filter_map(|l| l["status"].as_str()).collect();
        // online, offline (perhaps more than once while it is away), online again.
        assert_eq!(
            statuses.first(),
            Some(&"online"),
            "{camera}: {statuses:?}\n{err}"
        );
        assert_eq!(
            statuses.last(),
            Some(&"online"),
            "{camera}: {statuses:?}\n{err}"
        );
        assert!(
            statuses.contains(&"offline"),
            "{camera}: {statuses:?}\n{err}"
        );
        let offline_at = mine.iter().position(|l| l["status"] == "offline").unwrap();
        let back_at = mine.iter().rposition(|l| l["status"] == "online").unwrap();
        let back = mine[back_at];
        let gap = back["offline_ms"].as_u64().expect("the gap is reported");
        assert!(
            gap >= 1500,
            "{camera}: offline for {gap} ms, unplugged for 3 s"
        );
        let results = |range: &[&Value]| range.iter().filter(|l| l.get("top").is_some()).count();
        assert!(
            results(&mine[..offline_at]) >= 1,
            "{camera}: results before the unplug"
        );
        assert!(
            results(&mine[back_at..]) >= 1,
            "{camera}: results after the replug:\n{text}\n{err}"
        );
        eprintln!(
            "{camera}: {statuses:?}, offline for {gap} ms; reason: {}",
            mine[offline_at]["detail"]
        );
    }
}
