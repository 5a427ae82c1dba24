//! A ViT trained by someone else (../shared/reference/vit4mnist) through edgevit must agree
//! with ONNX Runtime: the same top-1 accuracy on mnist-dev and logits within 1e-4.
//! The ORT reference was computed by tools/ort_reference.py (tests/fixtures/vit4mnist_ort/).

mod common;

use edgevit::backend::BackendConfig;
use edgevit::pipeline::LoadedModel;
use edgevit::preprocess::{Preprocess, Preprocessor};
use edgevit::source::{FrameSource, ImageListSource};
use edgevit::tensor::Tensor;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

struct Reference {
    files: Vec<String>,
    logits: Tensor,
    labels: HashMap<String, usize>,
}

fn reference(shared: &Path) -> Reference {
    let fixtures = common::repo().join("tests/fixtures/vit4mnist_ort");
    let files: Vec<String> = std::fs::read_to_string(fixtures.join("files.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let logits = Tensor::read_npy(&fixtures.join("logits.npy")).unwrap();
    assert_eq!(logits.shape(), [files.len(), 10]);
    let labels = std::fs::read_to_string(shared.join("reference/mnist-dev/labels.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let (file, label) = line.split_once(',').unwrap();
            (file.to_string(), label.trim().parse().unwrap())
        })
        .collect();
    Reference {
        files,
        logits,
        labels,
    }
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap()
}

fn package(shared: &Path, dir: &Path) -> PathBuf {
    let onnx = shared.join("reference/vit4mnist/vit4mnist.onnx");
    common::write_manifest(dir, &common::vit4mnist_manifest(&onnx))
}

#[test]
fn logits_match_onnx_runtime_within_1e4() {
    let shared = common::shared_dir();
    let reference = reference(&shared);
    let tmp = tempfile::tempdir().unwrap();
    let mut model =
        LoadedModel::load(&package(&shared, tmp.path()), &BackendConfig::default()).unwrap();
    let mut preprocess = Preprocessor::new(&model.package.manifest.input);
    let dev = shared.join("reference/mnist-dev");
    let paths = reference.files.iter().map(|f| dev.join(f)).collect();
    let mut source = ImageListSource::new(paths, "test".into());
    let mut worst = 0.0f32;
    let mut count = 0;
    while let Some(frame) = source.next_frame() {
        let frame = frame.unwrap();
        let input = preprocess.prepare(&frame).unwrap();
        let outputs = model.backend.run(&input).unwrap();
        let logits = outputs.get("logits").unwrap();
        let row = &reference.logits.data()[count * 10..(count + 1) * 10];
        let expected = Tensor::new(vec![1, 10], row.to_vec()).unwrap();
        let diff = logits.max_abs_diff(&expected).unwrap();
        assert!(
            diff <= 1e-4,
            "{}: logits differ from ORT by {diff}",
            reference.files[count]
        );
        worst = worst.max(diff);
        count += 1;
    }
    assert_eq!(count, 300);
    eprintln!("vit4mnist: worst logit difference from ONNX Runtime over 300 digits: {worst:e}");
}

/// One of the first `count` digits through the CLI: its JSON line, edgevit's top-1, ONNX
/// Runtime's top-1 and the true label.
struct Digit {
    line: serde_json::Value,
    predicted: usize,
    ort_predicted: usize,
    label: usize,
}

/// The first `count` digits of the reference list through `edgevit infer --top-k 1` and the
/// `flags` given, in order.
fn classify_digits(count: usize, flags: &[&str]) -> Vec<Digit> {
    let shared = common::shared_dir();
    let reference = reference(&shared);
    let tmp = tempfile::tempdir().unwrap();
    let model = package(&shared, tmp.path());
    let dev = shared.join("reference/mnist-dev");
    let paths: Vec<String> = reference.files[..count]
        .iter()
        .map(|f| dev.join(f).display().to_string())
        .collect();
    let mut args = vec!["infer", "--model", model.to_str().unwrap(), "--top-k", "1"];
    args.extend_from_slice(flags);
    args.extend(paths.iter().map(String::as_str));
    let output = common::edgevit(&args);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let lines = common::json_lines(&output);
    assert_eq!(lines.len(), count);
    let digits = lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            assert_eq!(
                line["input"].as_str().unwrap(),
                paths[i],
                "one line per image, in order"
            );
            assert_eq!(line["seq"], i as u64);
            Digit {
                predicted: line["top"][0]["index"].as_u64().unwrap() as usize,
                ort_predicted: argmax(&reference.logits.data()[i * 10..(i + 1) * 10]),
                label: reference.labels[&reference.files[i]],
                line,
            }
        })
        .collect();
    digits
}

/// How many edgevit got right, how many ONNX Runtime got right, and on how many they agree.
fn tally(digits: &[Digit]) -> (usize, usize, usize) {
    let count = |keep: fn(&Digit) -> bool| digits.iter().filter(|d| keep(d)).count();
    (
        count(|d| d.predicted == d.label),
        count(|d| d.ort_predicted == d.label),
        count(|d| d.predicted == d.ort_predicted),
    )
}

#[test]
fn top1_accuracy_through_the_cli_equals_onnx_runtime() {
    let digits = classify_digits(300, &[]);
    let (ours, ort, agree) = tally(&digits);
    assert_eq!(agree, 300, "every prediction equals ONNX Runtime's");
    assert_eq!(ours, ort);
    assert_eq!(ours, 298, "99.33% of 300, as ONNX Runtime measured");
}

/// tract in half precision (`--backend tract-f16`: the graph translated by tract's
/// `f32_to_f16`) keeps ONNX Runtime's top-1. The package has no self-test, so nothing refuses
/// the f16 form: every record says it ran. Under qemu-aarch64 in CI this goes through tract's
/// ARMv8.2 code, whose f16 kernels qemu's CPU allows (100 digits: qemu emulates f16 arithmetic
/// slowly); on x86 f16 is emulated too.
#[test]
fn half_precision_keeps_onnx_runtimes_top1() {
    let count = 100;
    let digits = classify_digits(count, &["--backend", "tract-f16"]);
    for digit in &digits {
        assert_eq!(digit.line["backend"], "tract-f16", "{}", digit.line);
    }
    let (correct, ort_correct, agree) = tally(&digits);
    // Measured on all 300 digits: every one agrees, 298 right in f16 as in f32.
    assert!(
        agree + 1 >= count,
        "{agree} of {count} agree with ONNX Runtime"
    );
    assert!(
        correct + 1 >= ort_correct,
        "{correct} of {count} right in f16, {ort_correct} with ONNX Runtime"
    );
}
