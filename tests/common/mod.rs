//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod broker;
pub mod graph;
pub mod scene;
pub mod web;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` (or `$EDGEVIT_SHARED_DIR`): the reference models and images. A missing folder
/// fails the test with what to do.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("EDGEVIT_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"));
    if !dir.join("reference").is_dir() {
        panic!(
            "{} has no reference/ folder: the conformance tests need the shared reference models \
             beside the repository (or set EDGEVIT_SHARED_DIR)",
            dir.display()
        );
    }
    dir
}

/// `edgevit gallery enroll --config CONFIG --name NAME IMAGE`.
pub fn enroll(config: &Path, name: &str, image: &Path) -> Output {
    edgevit(&[
        "gallery",
        "enroll",
        "--config",
        config.to_str().unwrap(),
        "--name",
        name,
        image.to_str().unwrap(),
    ])
}

/// `edgevit gallery list --config CONFIG --json`: one object per identity.
pub fn gallery_list(config: &Path) -> Vec<serde_json::Value> {
    let output = edgevit(&[
        "gallery",
        "list",
        "--config",
        config.to_str().unwrap(),
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    json_lines(&output)
}

/// Test data from the package registries that `../shared` does not hold (`$EDGEVIT_TEST_DATA`,
/// else `target/test-data`): `relative` in it, or the test fails saying how to fetch it.
pub fn test_data(relative: &str) -> PathBuf {
    let dir = std::env::var_os("EDGEVIT_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/test-data"));
    let path = dir.join(relative);
    if !path.exists() {
        panic!(
            "{} is missing: fetch the test data with\n    python3 tools/fetch_references.py {} {}\n\
             (tools/test.sh does it)",
            path.display(),
            shared_dir().display(),
            dir.display()
        );
    }
    path
}

/// Fails the calling test: something the tests need is not installed. No test passes
/// quietly for want of what it tests against.
pub fn missing(what: &str) -> ! {
    panic!(
        "{what} is missing: the tests need it. Install everything they need with:\n    \
         sudo bash tools/install-test-deps.sh"
    )
}

/// The ONNX Runtime library the `ort` backend's tests load: `$EDGEVIT_ORT_LIBRARY`, else the
/// one `tools/install-test-deps.sh` unpacks from the PyPI wheel.
pub fn ort_library() -> PathBuf {
    if let Some(path) = std::env::var_os("EDGEVIT_ORT_LIBRARY") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from("/opt/edgevit-test/onnxruntime/libonnxruntime.so.1.31.1");
    if !path.exists() {
        missing(&format!(
            "{} (ONNX Runtime's library, or set EDGEVIT_ORT_LIBRARY)",
            path.display()
        ));
    }
    path
}

/// Runs the `edgevit` binary.
pub fn edgevit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgevit"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the edgevit binary runs")
}

/// Parses stdout as JSON lines.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes a `model.toml` into `dir`.
pub fn write_manifest(dir: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("model.toml"), text).unwrap();
    dir.to_path_buf()
}

/// A manifest for a third-party ONNX model in `../shared`: the model's own facts are given as
/// TOML lines (`input_lines` under `[input]`, `output_line` under `[outputs]`).
pub fn reference_manifest(
    name: &str,
    task: &str,
    onnx: &Path,
    input_lines: &str,
    output_line: &str,
) -> String {
    format!(
        "name = \"{name}\"\ntask = \"{task}\"\nonnx = \"{}\"\n[input]\n{input_lines}\n\
         scale = 255.0\nresize = \"stretch\"\n[outputs]\n{output_line}\n",
        onnx.display()
    )
}

/// The `[input]` lines of ../shared's DINOv2 ViT-S/14: 224x224 RGB, ImageNet's normalisation.
pub const DINOV2_INPUT: &str =
    "name = \"input_image\"\nshape = [1, 3, 224, 224]\ncolor = \"rgb\"\n\
     mean = [0.485, 0.456, 0.406]\nstd = [0.229, 0.224, 0.225]";

/// A manifest of ../shared's DINOv2 ViT-S/14 (a saliency model) called `name`, of `task`, with
/// `output_lines` under `[outputs]`.
pub fn dinov2_manifest(shared: &Path, name: &str, task: &str, output_lines: &str) -> String {
    let onnx = shared.join("reference/dinov2-s-focus/vit_s_focus.onnx");
    reference_manifest(name, task, &onnx, DINOV2_INPUT, output_lines)
}

/// The digits of ../shared's MNIST development set, in name order.
pub fn mnist_dev_digits(shared: &Path) -> Vec<PathBuf> {
    let dir = shared.join("reference/mnist-dev");
    let mut digits: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    digits.sort();
    digits
}

/// The manifest of the third-party vit4mnist ONNX model at `onnx` (see ../shared/README.md).
pub fn vit4mnist_manifest(onnx: &Path) -> String {
    reference_manifest(
        "vit4mnist",
        "classify",
        onnx,
        "name = \"input\"\nshape = [1, 1, 28, 28]\ncolor = \"gray\"\nmean = [0.1307]\nstd = [0.3081]",
        "logits = \"logits\"",
    )
}

/// The manifest of the third-party OSNet ReID model at `onnx` (see ../shared/README.md).
pub fn osnet_manifest(onnx: &Path) -> String {
    reference_manifest(
        "osnet_x0_25_msmt17",
        "reid",
        onnx,
        "name = \"images\"\nshape = [1, 3, 256, 128]\ncolor = \"rgb\"\n\
         mean = [0.485, 0.456, 0.406]\nstd = [0.229, 0.224, 0.225]",
        "embedding = \"output\"",
    )
}

/// OSNet from `shared`, packaged in `dir/osnet`.
pub fn osnet_package(shared: &Path, dir: &Path) -> PathBuf {
    let onnx = shared.join("reference/osnet/osnet_x0_25_msmt17.onnx");
    write_manifest(&dir.join("osnet"), &osnet_manifest(&onnx))
}

/// The bundled detector package (`models/centernet-coco`) copied into `dir`, `edit` applied
/// to its manifest; its ONNX file and self-test stay where they are.
pub fn centernet_package(dir: &Path, edit: impl FnOnce(&mut toml::Table)) -> PathBuf {
    bundled_package("centernet-coco", dir, edit)
}

/// The bundled face descriptor (`models/face-descriptor`), its manifest copied into `dir`.
pub fn face_descriptor_package(dir: &Path) -> PathBuf {
    bundled_package("face-descriptor", dir, |_| {})
}

/// A bundled package of `models/` whose manifest is copied into `dir/name` with `edit` applied
/// and every file it names made absolute: the large files stay where they are.
fn bundled_package(name: &str, dir: &Path, edit: impl FnOnce(&mut toml::Table)) -> PathBuf {
    let bundled = repo().join("models").join(name);
    let dest = dir.join(name);
    std::fs::create_dir_all(&dest).unwrap();
    let mut manifest: toml::Table = std::fs::read_to_string(bundled.join("model.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let absolute = |v: &toml::Value| -> toml::Value {
        bundled
            .join(v.as_str().unwrap())
            .display()
            .to_string()
            .into()
    };
    for key in ["onnx", "labels"] {
        if let Some(value) = manifest.get(key).map(absolute) {
            manifest.insert(key.into(), value);
        }
    }
    if let Some(selftest) = manifest.get_mut("selftest").and_then(|s| s.as_table_mut()) {
        if let Some(input) = selftest.get("input").map(absolute) {
            selftest.insert("input".into(), input);
        }
        if let Some(outputs) = selftest.get_mut("outputs").and_then(|o| o.as_table_mut()) {
            for (_, value) in outputs.iter_mut() {
                *value = absolute(value);
            }
        }
    }
    edit(&mut manifest);
    std::fs::write(dest.join("model.toml"), manifest.to_string()).unwrap();
    dest
}

/// The bundled face detector (`models/blazeface`), its manifest copied into `dir`.
pub fn blazeface_package(dir: &Path) -> PathBuf {
    bundled_package("blazeface", dir, |_| {})
}

/// Intersection over union of two `[x0, y0, x1, y1]` boxes.
pub fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: [f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    w * h / (area(a) + area(b) - w * h)
}

/// The bundled default model package.
pub fn default_model() -> PathBuf {
    repo().join("models/vit-mnist")
}

/// Copies a model package (its files and sub-folders) into `dest`.
pub fn copy_package(from: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = dest.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_package(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Copies the default package into `dest` and applies `edit` to its manifest.
pub fn edited_default_package(dest: &Path, edit: impl FnOnce(&mut toml::Table)) -> PathBuf {
    copy_package(&default_model(), dest);
    let manifest_path = dest.join("model.toml");
    let mut manifest: toml::Table = std::fs::read_to_string(&manifest_path)
        .unwrap()
        .parse()
        .unwrap();
    edit(&mut manifest);
    std::fs::write(&manifest_path, toml::to_string(&manifest).unwrap()).unwrap();
    dest.to_path_buf()
}

/// A sub-table of a manifest.
pub fn table<'a>(manifest: &'a mut toml::Table, key: &str) -> &'a mut toml::Table {
    manifest
        .get_mut(key)
        .and_then(|v| v.as_table_mut())
        .unwrap()
}

/// Asserts the process failed with a message containing every `needle`, without panicking.
pub fn assert_clean_failure(output: &Output, needles: &[&str]) {
    let err = stderr(output);
    assert!(!output.status.success(), "should fail; stderr: {err}");
    assert!(!err.contains("panicked"), "must not panic: {err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "stderr should mention {needle:?}: {err}"
        );
    }
}

/// Writes `dir/edgevit.toml` from `text`, with `{model}` standing for the default model folder.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("edgevit.toml");
    let model = default_model().display().to_string();
    std::fs::write(&path, text.replace("{model}", &model)).unwrap();
    path
}

/// A frame of `data` in `format`, as a camera would hand it over.
pub fn frame(
    data: Vec<u8>,
    width: u32,
    height: u32,
    format: edgevit::frame::PixelFormat,
) -> edgevit::frame::Frame {
    edgevit::frame::Frame::in_memory("fixture", data, width, height, format)
}

/// A running `edgevit` that is killed if the test ends before waiting for it: a test that
/// fails half-way must not leave an endless run behind on the machine.
pub struct Running(Option<std::process::Child>);

impl Running {
    pub fn new(child: std::process::Child) -> Self {
        Running(Some(child))
    }

    pub fn child(&self) -> &std::process::Child {
        self.0.as_ref().expect("a child not yet waited for")
    }

    pub fn child_mut(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("a child not yet waited for")
    }

    pub fn wait(mut self) -> std::process::ExitStatus {
        let mut child = self.0.take().expect("a child not yet waited for");
        child.wait().unwrap()
    }

    pub fn wait_with_output(mut self) -> Output {
        let child = self.0.take().expect("a child not yet waited for");
        child.wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends signal `name` (`TERM`, `KILL`, ...) to a child process.
pub fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A `[1, 3, H, W]` tensor of 8-bit RGB values, normalised as ImageNet models want
/// (`(v / 255 - mean) / std` per channel).
pub fn imagenet_input(pixels: &edgevit::tensor::Tensor) -> edgevit::tensor::Tensor {
    let (mean, std) = ([0.485f32, 0.456, 0.406], [0.229f32, 0.224, 0.225]);
    let plane = pixels.shape()[2] * pixels.shape()[3];
    let data = pixels
        .data()
        .iter()
        .enumerate()
        .map(|(i, &v)| (v / 255.0 - mean[i / plane]) / std[i / plane])
        .collect();
    edgevit::tensor::Tensor::new(pixels.shape().to_vec(), data).unwrap()
}

/// An RGB image as a raw RGB24 frame.
pub fn rgb_frame(image: &image::RgbImage) -> edgevit::frame::Frame {
    frame(
        image.as_raw().clone(),
        image.width(),
        image.height(),
        edgevit::frame::PixelFormat::Rgb24,
    )
}

/// A count from the `done: N frames, N results, N errors` line that `edgevit run` logs at a
/// clean stop: `what` is `frames`, `results` or `errors`.
pub fn run_summary(log: &str, what: &str) -> usize {
    let done = log
        .lines()
        .find_map(|l| l.split("done: ").nth(1))
        .unwrap_or_else(|| panic!("no summary: {log}"));
    done.split(", ")
        .find_map(|p| p.strip_suffix(&format!(" {what}")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {what} in {done}"))
}
