//! What a new user meets in the first hour: error messages that point at the fault and say
//! each cause once, flags checked as flags, the documented exit codes, help for every argument.

mod common;

use common::{assert_clean_failure, edgevit, edited_default_package, stderr};
use std::path::Path;
use std::process::{Command, Stdio};

/// The `error:` line(s) of a failed command.
fn error_text(output: &std::process::Output) -> String {
    let err = stderr(output);
    let start = err
        .find("error:")
        .unwrap_or_else(|| panic!("no error line: {err}"));
    err[start..].to_string()
}

/// `edgevit COMMAND --config FILE` on the configuration `text` written into `dir` (`{model}`
/// stands for the default model).
fn on_config(dir: &Path, command: &str, text: &str) -> std::process::Output {
    let config = common::write_config(dir, text);
    edgevit(&[command, "--config", config.to_str().unwrap()])
}

#[test]
fn a_cause_is_said_once_and_the_key_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let output = on_config(
        tmp.path(),
        "run",
        "[source]\nkind = \"pattern\"\nframes = 1\n[model]\npath = \"no-such-model\"\n",
    );
    assert_eq!(output.status.code(), Some(2));
    let error = error_text(&output);
    assert!(
        error.starts_with("error: `model.path`: cannot read model manifest"),
        "{error}"
    );
    assert_eq!(
        error.matches("No such file or directory").count(),
        1,
        "{error}"
    );

    // A missing self-test file: one mention of the file, one of the cause.
    let dir = edited_default_package(&tmp.path().join("pkg"), |_| {});
    std::fs::remove_file(dir.join("selftest/logits.npy")).unwrap();
    let output = edgevit(&["models", "check", dir.to_str().unwrap()]);
    let error = error_text(&output);
    assert_eq!(error.matches("logits.npy").count(), 1, "{error}");
    assert_eq!(
        error.matches("No such file or directory").count(),
        1,
        "{error}"
    );
}

#[test]
fn file_sink_and_image_folder_paths_name_their_keys() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    let cases = [
        (
            "[source]\nkind = \"pattern\"\nframes = 1\n[model]\npath = \"{model}\"\n\
             [sink]\nkind = \"file\"\npath = \"no/such/dir/out.jsonl\"\n",
            "error: `sink.path`: cannot open",
        ),
        (
            "[source]\nkind = \"image-dir\"\npath = \"empty\"\n[model]\npath = \"{model}\"\n",
            "error: `source.path`:",
        ),
    ];
    for (text, expected) in cases {
        let output = on_config(tmp.path(), "run", text);
        assert!(
            error_text(&output).starts_with(expected),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn a_bad_key_inside_a_section_is_pointed_at() {
    let tmp = tempfile::tempdir().unwrap();
    let config = common::write_config(
        tmp.path(),
        "[source]\nkind = \"v4l2\"\n\n[[source.camera]]\nid = \"door\"\ndevice = \"/dev/video0\"\n\
         width = \"wide\"\n[model]\npath = \"{model}\"\n[sink]\nkind = \"serial\"\npath = \"/dev/ttyS9\"\n\
         parity = \"odd\"\nbaud = -5\n",
    );
    let output = edgevit(&["run", "--config", config.to_str().unwrap()]);
    let error = error_text(&output);
    // The caret is under the value on the key's own line, not under `[source]`.
    assert!(error.contains("line 7, column 9"), "{error}");
    assert!(error.contains("7 | width = \"wide\""), "{error}");
    assert!(error.contains("`source.camera[0].width`"), "{error}");
    assert!(error.contains("expected a whole number"), "{error}");
    assert!(!error.contains("u32"), "{error}");

    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("width = \"wide\"", "width = 640\nfpss = 3");
    std::fs::write(&config, text).unwrap();
    let error = error_text(&edgevit(&["run", "--config", config.to_str().unwrap()]));
    assert!(error.contains("8 | fpss = 3"), "{error}");
    assert!(error.contains("unknown field `fpss`"), "{error}");
}

#[test]
fn manifest_messages_read_well() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = edited_default_package(&tmp.path().join("a"), |m| {
        let mean = toml::Value::try_from([0.5, 0.5]).unwrap();
        common::table(m, "input").insert("mean".into(), mean);
    });
    let error = error_text(&edgevit(&["models", "check", dir.to_str().unwrap()]));
    assert!(
        error.contains("input.mean must have 1 value, got 2"),
        "{error}"
    );

    let dir = edited_default_package(&tmp.path().join("b"), |m| {
        common::table(m, "input").insert("color".into(), "rgb".into());
    });
    let error = error_text(&edgevit(&["models", "check", dir.to_str().unwrap()]));
    assert!(error.contains("input.color = \"rgb\" has 3"), "{error}");

    let onnx = common::default_model().join("model.onnx");
    let output = edgevit(&["models", "check", onnx.to_str().unwrap()]);
    assert_clean_failure(&output, &["expected a model folder with model.toml"]);
    assert!(!stderr(&output).contains("UTF-8"));
}

#[test]
fn a_labels_file_that_does_not_fit_the_model_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = edited_default_package(tmp.path(), |_| {});
    std::fs::write(dir.join("labels.txt"), "zero\none\ntwo\n").unwrap();
    let digit = common::default_model().join("samples/digit-0-2.png");
    for output in [
        edgevit(&["models", "check", dir.to_str().unwrap()]),
        edgevit(&[
            "infer",
            "--model",
            dir.to_str().unwrap(),
            digit.to_str().unwrap(),
        ]),
    ] {
        assert_clean_failure(&output, &["labels.txt has 3 lines", "10 classes"]);
    }
}

#[test]
fn flags_are_checked_as_flags() {
    let model = common::default_model();
    let digit = model.join("samples/digit-0-2.png");
    let (model, digit) = (model.to_str().unwrap(), digit.to_str().unwrap());
    for (args, flag) in [
        (
            vec!["infer", "--model", model, "--top-k", "0", digit],
            "--top-k",
        ),
        (
            vec!["infer", "--model", model, "--min-score", "1.5", digit],
            "--min-score",
        ),
        (
            vec!["infer", "--model", model, "--threads", "0", digit],
            "--threads",
        ),
        (vec!["bench", model, "--iterations", "0"], "--iterations"),
    ] {
        let output = edgevit(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let error = error_text(&output);
        assert!(error.contains(flag), "{args:?}: {error}");
        assert!(
            !error.contains("classify."),
            "{args:?} names a config key: {error}"
        );
    }
}

#[test]
fn every_argument_has_help() {
    for command in [
        vec!["infer"],
        vec!["run"],
        vec!["bench"],
        vec!["snapshot"],
        vec!["probe"],
        vec!["models", "check"],
        vec!["models", "attention"],
        vec!["check"],
        vec!["gallery", "enroll"],
        vec!["gallery", "list"],
        vec!["gallery", "rename"],
        vec!["gallery", "merge"],
        vec!["gallery", "forget"],
    ] {
        let mut args = command.clone();
        args.push("--help");
        let output = edgevit(&args);
        assert!(output.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&output.stdout);
        // clap prints an argument without help text as a bare name: every line under the
        // argument headings must say something after the name.
        let mut in_arguments = false;
        for line in help.lines() {
            if line.ends_with(':') && !line.starts_with(' ') {
                in_arguments = line.starts_with("Arguments") || line.starts_with("Options");
                continue;
            }
            if in_arguments && line.starts_with("  ") && !line.starts_with("         ") {
                let words = line.trim().split("  ").filter(|w| !w.is_empty()).count();
                assert!(words >= 2, "{args:?}: no help for {line:?}\n{help}");
            }
        }
    }
}

/// `edgevit bench` on the bundled model with no warm-up and `extra`: its output and JSON lines.
fn bench_default(extra: &[&str]) -> (std::process::Output, Vec<serde_json::Value>) {
    let model = common::default_model();
    let mut args = vec!["bench", model.to_str().unwrap(), "--warmup", "0"];
    args.extend_from_slice(extra);
    let output = edgevit(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = common::json_lines(&output);
    (output, lines)
}

#[test]
fn bench_rounds_its_figures() {
    let (_, lines) = bench_default(&["--iterations", "3"]);
    for key in ["median_ms", "p90_ms", "min_ms"] {
        let value = lines[0]["timing"][key].as_f64().unwrap();
        assert_eq!(value, (value * 1e3).round() / 1e3, "{key}: {value}");
        let text = lines[0]["timing"][key].to_string();
        assert!(text.len() <= 12, "{key} printed as {text}");
    }
}

/// `--profile` splits the bundled ViT (6 blocks) by op class: its 12 attention matmuls (two
/// per block, no weights), its 6 softmaxes, the weight matmuls with their multiply-adds.
#[test]
fn bench_profile_splits_a_vit_by_op_class() {
    let (output, lines) = bench_default(&["--iterations", "2", "--profile"]);
    let classes = lines[1]["profile"]["classes"].as_array().unwrap();
    let class = |name: &str| {
        (classes.iter())
            .find(|c| c["class"] == name)
            .unwrap_or_else(|| panic!("no {name} in {classes:?}"))
    };
    assert_eq!(class("attention matmul")["nodes"], 12);
    assert_eq!(class("softmax")["nodes"], 6);
    assert!(class("weight matmul")["gflop"].as_f64().unwrap() > 0.001);
    let shares: f64 = classes.iter().map(|c| c["share"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-6, "{shares}");
    assert!(stderr(&output).contains("GFLOP/s"), "{}", stderr(&output));
}

#[test]
fn a_package_without_a_self_test_passes_with_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = edited_default_package(tmp.path(), |m| {
        m.remove("selftest");
    });
    let output = edgevit(&["models", "check", dir.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("graph matches the manifest"), "{stdout}");
    assert!(
        stdout.contains("PASS") && stdout.contains("no outputs were compared"),
        "{stdout}"
    );
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let model = common::default_model();
    let samples: Vec<String> = std::fs::read_dir(model.join("samples"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgevit"))
        .args(["infer", "--model", model.to_str().unwrap()])
        .args(&samples)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the first line is read, like `| head -0`.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("error"), "{}", stderr(&output));
}

#[test]
fn an_empty_serial_path_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let output = on_config(
        tmp.path(),
        "run",
        "[source]\nkind = \"pattern\"\nframes = 1\n[model]\npath = \"{model}\"\n\
         [sink]\nkind = \"serial\"\npath = \"\"\n",
    );
    assert_clean_failure(&output, &["`sink.path`", "must not be empty"]);
}

/// Records a serial port never took are lost (its queue lives in memory): exit code 3, with
/// the count. Records an MQTT sink keeps in its spool are not: exit code 0.
#[test]
fn lost_records_and_kept_records_end_differently() {
    let tmp = tempfile::tempdir().unwrap();
    let serial = common::write_config(
        tmp.path(),
        "[source]\nkind = \"pattern\"\nwidth = 32\nheight = 32\nframes = 4\n\
         [model]\npath = \"{model}\"\n[sink]\nkind = \"serial\"\npath = \"/dev/ttyEDGEVIT-NONE\"\n\
         write_timeout_ms = 50\n",
    );
    let output = edgevit(&["run", "--config", serial.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let error = error_text(&output);
    assert!(error.contains("4 records were not delivered"), "{error}");
    assert!(error.contains("are lost"), "{error}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mqtt = common::write_config(
        tmp.path(),
        &format!(
            "[source]\nkind = \"pattern\"\nwidth = 32\nheight = 32\nframes = 4\n\
             [model]\npath = \"{{model}}\"\n[sink]\nkind = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             drain_timeout_ms = 200\n[sink.spool]\npath = \"spool\"\n"
        ),
    );
    let output = edgevit(&["run", "--config", mqtt.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("stay in the spool"),
        "{}",
        stderr(&output)
    );
    assert!(Path::new(&tmp.path().join("spool")).is_dir());
}

/// Names that end up in MQTT topics are refused when the file is read, by `check` and `run`
/// alike, pointing at the key: before, `device = "door+1"` passed `check`, delivered nothing
/// and exited 0, and a camera id with a newline made the broker drop the connection.
#[test]
fn names_that_would_break_a_topic_are_refused_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let mqtt = |extra: &str, camera: &str| {
        format!(
            "[source]\nkind = \"pattern\"\nframes = 1\ncamera = {camera}\n[model]\npath = \"{{model}}\"\n\
             [sink]\nkind = \"mqtt\"\nport = 1\n{extra}\n[sink.spool]\npath = \"spool\"\n"
        )
    };
    let cases = [
        (mqtt("device = \"door+1\"", "\"cam0\""), "`sink.device`", "wildcard"),
        (mqtt("prefix = \"edge#vit\"", "\"cam0\""), "`sink.prefix`", "wildcard"),
        (mqtt("device = \"door/1\"", "\"cam0\""), "`sink.device`", "`/`"),
        (mqtt("device = \"\"", "\"cam0\""), "`sink.device`", "must not be empty"),
        (mqtt("prefix = \"$SYS\"", "\"cam0\""), "`sink.prefix`", "$SYS"),
        (mqtt("", "\"cam\\nA\""), "`source.camera`", "line break"),
        (
            mqtt("[sink.discovery]\nenabled = true\nprefix = \"home+\"", "\"cam0\""),
            "`sink.discovery.prefix`",
            "wildcard",
        ),
        (
            "[source]\nkind = \"v4l2\"\n[[source.camera]]\nid = \"a#b\"\ndevice = \"/dev/video0\"\n\
             [model]\npath = \"{model}\"\n"
                .to_string(),
            "`source.camera[0].id`",
            "wildcard",
        ),
    ];
    for (text, key, why) in cases {
        for command in ["check", "run"] {
            let output = on_config(tmp.path(), command, &text);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{command} {key}: {}",
                stderr(&output)
            );
            let error = error_text(&output);
            assert!(
                error.contains(key) && error.contains(why),
                "{command}: {error}"
            );
            assert!(
                error.contains("TOML parse error at line"),
                "points at it: {error}"
            );
        }
    }
    assert!(!tmp.path().join("spool").exists(), "nothing was spooled");
}

#[test]
fn a_model_file_of_zero_bytes_is_called_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = edited_default_package(tmp.path(), |_| {});
    std::fs::write(dir.join("model.onnx"), b"").unwrap();
    let output = edgevit(&["models", "check", dir.to_str().unwrap()]);
    assert_clean_failure(&output, &["model.onnx is empty (0 bytes)"]);
    assert!(!stderr(&output).contains("graph"), "{}", stderr(&output));
}

/// A class-score output that is not one vector per frame is refused when the model loads, not
/// on every frame after `models check` passed it.
#[test]
fn an_output_of_the_wrong_shape_is_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pkg");
    common::copy_package(&common::repo().join("models/vit-tiny-qdq"), &dir);
    let manifest = dir.join("model.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.split("[selftest]").next().unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("attention ="))
        .map(|l| {
            format!(
                "{}\n",
                l.replace("logits = \"logits\"", "logits = \"attn_0\"")
            )
        })
        .collect();
    std::fs::write(&manifest, text).unwrap();
    let output = edgevit(&["models", "check", dir.to_str().unwrap()]);
    assert_clean_failure(
        &output,
        &[
            "`outputs.logits` names \"attn_0\"",
            "[1, 3, 197, 197]",
            "[1, n]",
        ],
    );
}

#[test]
fn more_threads_than_cores_are_bounded_with_a_warning() {
    let model = common::default_model();
    let digit = model.join("samples/digit-0-2.png");
    let output = Command::new(env!("CARGO_BIN_EXE_edgevit"))
        .args([
            "infer",
            "--model",
            model.to_str().unwrap(),
            "--threads",
            "100000",
        ])
        .arg(&digit)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let cores = std::thread::available_parallelism().unwrap().get();
    assert!(
        stderr(&output).contains(&format!("this machine has {cores} cores: using {cores}")),
        "{}",
        stderr(&output)
    );
    assert_eq!(common::json_lines(&output).len(), 1);
}

/// Flags the model's task would ignore are refused, not ignored.
#[test]
fn flags_for_another_task_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::default_model();
    let digit = model.join("samples/digit-0-2.png");
    let gallery = tmp.path().join("g.sqlite");
    let (model, digit) = (model.to_str().unwrap(), digit.to_str().unwrap());
    let reid = common::repo().join("models/transreid-tiny");
    let reid = reid.to_str().unwrap();
    for (args, needle) in [
        (
            vec![
                "infer",
                "--model",
                model,
                "--gallery",
                gallery.to_str().unwrap(),
                digit,
            ],
            "--gallery is for ReID models",
        ),
        (
            vec!["infer", "--model", model, "--flip", digit],
            "--flip is for ReID models",
        ),
        (
            vec![
                "infer",
                "--model",
                reid,
                "--gallery",
                gallery.to_str().unwrap(),
                "--zoom",
                digit,
            ],
            "--zoom is for classification models",
        ),
    ] {
        let output = edgevit(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(error_text(&output).contains(needle), "{}", stderr(&output));
    }
    assert!(
        !gallery.exists(),
        "no gallery was made for a refused command"
    );
}

/// `gallery enroll` takes `--model` and `--gallery` as the other gallery commands take
/// `--gallery`, without a run configuration (which needed a `[source]` for nothing).
#[test]
fn enrolment_needs_no_configuration_and_a_folder_is_not_a_gallery() {
    let tmp = tempfile::tempdir().unwrap();
    let reid = common::repo().join("models/transreid-tiny");
    // transreid-tiny has random weights: any picture of a person's proportions will do.
    let image = tmp.path().join("person.png");
    image::RgbImage::from_fn(64, 128, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 2) as u8, 90])
    })
    .save(&image)
    .unwrap();
    let enroll = |gallery: &Path, name: &str| {
        edgevit(&[
            "gallery",
            "enroll",
            "--model",
            reid.to_str().unwrap(),
            "--gallery",
            gallery.to_str().unwrap(),
            "--name",
            name,
            image.to_str().unwrap(),
        ])
    };
    let gallery = tmp.path().join("g.sqlite");
    let output = enroll(&gallery, "ada");
    assert!(output.status.success(), "{}", stderr(&output));
    let listed = edgevit(&[
        "gallery",
        "list",
        "--gallery",
        gallery.to_str().unwrap(),
        "--json",
    ]);
    let identities = common::json_lines(&listed);
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0]["name"], "ada");

    let output = enroll(tmp.path(), "bob");
    assert_clean_failure(&output, &["`gallery.path`", "is a folder"]);
}

#[test]
fn one_problem_is_one_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let output = on_config(
        tmp.path(),
        "check",
        "[source]\nkind = \"image-dir\"\npath = \"no-such-folder\"\n[model]\npath = \"{model}\"\n",
    );
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(": 1 problem\n"), "{stdout}");
}

/// Ctrl-C during `infer` ends it between images: every line printed is whole JSON, and the
/// exit code (130) says that not every image was done.
#[test]
fn an_interrupted_infer_prints_whole_lines_and_says_so() {
    use std::io::{BufRead, Read};
    let model = common::default_model();
    let digit = model.join("samples/digit-0-2.png");
    let images = vec![digit.to_str().unwrap(); 5000];
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgevit"))
        .args(["infer", "--model", model.to_str().unwrap()])
        .args(&images)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    stdout.read_line(&mut text).unwrap();
    common::signal(&child, "INT");
    stdout.read_to_string(&mut text).unwrap();
    let mut stderr_text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr_text)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr_text}");
    assert!(stderr_text.contains("interrupted after"), "{stderr_text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        !lines.is_empty() && lines.len() < images.len(),
        "{} lines",
        lines.len()
    );
    for line in lines {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["top"][0]["label"], "0", "{record}");
    }
    assert!(text.ends_with('\n'), "the last line is whole");
}

/// Ctrl-C during `bench` ends it with exit code 130 and prints nothing partial.
#[test]
fn an_interrupted_bench_prints_nothing_and_says_so() {
    use std::io::Read;
    let model = common::default_model();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgevit"))
        .args(["bench", model.to_str().unwrap(), "--warmup", "0"])
        .args(["--iterations", "100000000"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Loaded and measuring: the self-test's line is on stderr.
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("self-test") {
        assert_eq!(
            stderr.read(&mut byte).unwrap(),
            1,
            "{}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(byte[0]);
    }
    common::signal(&child, "INT");
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    assert!(stdout.is_empty(), "nothing partial: {stdout}");
}
