//! The `rknn` backend against `tests/rknn_mock/rknn_mock.c`: a small C library, compiled here
//! with the system's C compiler, that implements the RKNN C API's ABI. It is not an NPU: it
//! records the calls it gets, checks the buffers, sizes and formats it is handed, and computes
//! a known function of the input (output element j = the mean of the input values at
//! positions i with i % n == j, held as int8 and dequantized on request), so every value that
//! comes back can be checked. What runs on a real NPU is not tested here (see docs/boards.md).
#![cfg(feature = "rknn")]

mod common;

use edgevit::backend::rknn::{CoreMask, RknnConfig};
use edgevit::backend::{BackendConfig, InferenceBackend, RknnBackend};
use edgevit::model::ModelPackage;
use edgevit::pipeline::LoadedModel;
use edgevit::tensor::Tensor;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles the mock runtime into `dir` (with `-D<define>`s); `$EDGEVIT_MOCK_CC` names the
/// compiler (CI's aarch64 run sets the cross compiler).
fn mock_runtime(dir: &Path, defines: &[&str]) -> PathBuf {
    let compiler = std::env::var("EDGEVIT_MOCK_CC").unwrap_or_else(|_| "cc".into());
    let out = dir.join(format!("librknnrt{}.so", defines.join("")));
    let source = common::repo().join("tests/rknn_mock/rknn_mock.c");
    let status = Command::new(&compiler)
        .args([
            "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-o",
        ])
        .arg(&out)
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg(&source)
        .status()
        .unwrap_or_else(|e| common::missing(&format!("the C compiler {compiler:?} ({e})")));
    assert!(
        status.success(),
        "{compiler} failed on {}",
        source.display()
    );
    out
}

/// The mock's function: element j of an output of `n` elements is the mean of `values[i]` over
/// the positions i with i % n == j.
fn known_function(values: &[f32], n: usize) -> Vec<f32> {
    let mut sums = vec![(0.0f64, 0usize); n];
    for (i, v) in values.iter().enumerate() {
        sums[i % n].0 += *v as f64;
        sums[i % n].1 += 1;
    }
    sums.iter()
        .map(|(sum, count)| (sum / (*count).max(1) as f64) as f32)
        .collect()
}

/// The largest error of the mock's int8 output for these exact values: half a step of
/// its affine scale over [min(0, lo), max(0, hi)].
fn int8_tolerance(exact: &[f32]) -> f32 {
    let lo = exact.iter().copied().fold(0.0f32, f32::min);
    let hi = exact.iter().copied().fold(0.0f32, f32::max);
    (hi - lo) / 255.0 * 0.5 + 1e-4
}

fn assert_close(actual: &[f32], expected: &[f32]) {
    let tolerance = int8_tolerance(expected);
    assert_eq!(actual.len(), expected.len());
    for (j, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tolerance,
            "element {j}: {a} vs {e} (tolerance {tolerance})"
        );
    }
}

/// vit-mnist's 28x28 input as the 8-bit pixels it was normalised from, row by row.
fn digit_pixels(input: &Tensor) -> Vec<f32> {
    input
        .data()
        .iter()
        .map(|x| ((x * 0.3081 + 0.1307) * 255.0).round().clamp(0.0, 255.0))
        .collect()
}

/// A copy of vit-mnist with `rknn = "model.rknn"` naming a mock model (`lines` after the
/// header, plus the log line), and a self-test reference that is the mock's function of the
/// self-test digit.
fn mock_package(dir: &Path, lines: &str) -> (PathBuf, PathBuf) {
    let (package, log) = package_with_mock(dir, lines, 0.6);
    let opened = ModelPackage::open(&package).unwrap();
    let spec = opened.manifest.selftest.as_ref().unwrap();
    let (input, _) = edgevit::model::selftest::stored_input(&opened, spec).unwrap();
    let expected = known_function(&digit_pixels(&input), 10);
    let reference = Tensor::new(vec![1, 10], expected).unwrap();
    std::fs::write(package.join("selftest/logits.npy"), reference.to_npy()).unwrap();
    (package, log)
}

/// A copy of vit-mnist (its real self-test reference) with a mock `model.rknn` and the
/// self-test tolerance `rknn_tolerance` for the rknn backend.
fn package_with_mock(dir: &Path, lines: &str, rknn_tolerance: f64) -> (PathBuf, PathBuf) {
    let log = dir.join("calls.log");
    let package = common::edited_default_package(&dir.join("vit-mnist"), |manifest| {
        manifest.insert("rknn".into(), "model.rknn".into());
        let selftest = common::table(manifest, "selftest");
        let mut tolerances = toml::Table::new();
        tolerances.insert("ort".into(), 0.1.into());
        tolerances.insert("rknn".into(), rknn_tolerance.into());
        selftest.insert("backend_tolerance".into(), tolerances.into());
    });
    std::fs::write(
        package.join("model.rknn"),
        format!("EDGEVIT-MOCK-RKNN\nlog {}\n{lines}", log.display()),
    )
    .unwrap();
    (package, log)
}

const DIGIT_MODEL: &str = "input input nhwc 1 28 28 1\noutput logits undefined 1 10\n";

fn rknn(library: &Path, core_mask: CoreMask) -> RknnConfig {
    RknnConfig {
        library: Some(library.to_path_buf()),
        core_mask,
    }
}

fn calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_backend_drives_the_c_api_in_order_and_returns_the_dequantized_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let library = mock_runtime(tmp.path(), &[]);
    let (dir, log) = mock_package(tmp.path(), DIGIT_MODEL);
    let package = ModelPackage::open(&dir).unwrap();
    let spec = package.manifest.selftest.as_ref().unwrap();
    let (input, _) = edgevit::model::selftest::stored_input(&package, spec).unwrap();
    {
        let mut backend = RknnBackend::load(&package, &rknn(&library, CoreMask::Cores012)).unwrap();
        assert_eq!(backend.name(), "rknn");
        assert_eq!(backend.output_shape("logits"), Some(vec![1, 10]));
        for _ in 0..2 {
            let outputs = backend.run(&input).unwrap();
            let logits = outputs.get("logits").unwrap();
            assert_eq!(logits.shape(), [1, 10]);
            assert_close(logits.data(), &known_function(&digit_pixels(&input), 10));
        }
    }
    let calls = calls(&log);
    let size = std::fs::metadata(dir.join("model.rknn")).unwrap().len();
    let run = [
        "rknn_inputs_set n=1 index=0 type=3 fmt=1 size=784 pass_through=0",
        "rknn_run extend=null",
        "rknn_outputs_get n=1 extend=null",
        "  output index=0 want_float=1 is_prealloc=1 size=40",
        "rknn_outputs_release n=1",
    ];
    let mut expected = vec![
        format!("rknn_init size={size} flag=0"),
        "rknn_set_core_mask mask=7".to_string(),
        "rknn_query IN_OUT_NUM size=8".to_string(),
        "rknn_query INPUT_ATTR index=0 size=376".to_string(),
        "rknn_query OUTPUT_ATTR index=0 size=376".to_string(),
    ];
    expected.extend(run.iter().chain(run.iter()).map(|s| s.to_string()));
    expected.push("rknn_destroy outstanding=0".to_string());
    assert_eq!(calls, expected);
}

#[test]
fn float_input_goes_in_as_nhwc_and_nhwc_outputs_come_back_as_nchw() {
    let tmp = tempfile::tempdir().unwrap();
    let library = mock_runtime(tmp.path(), &[]);
    let dir = tmp.path().join("rgb");
    std::fs::create_dir(&dir).unwrap();
    let log = tmp.path().join("calls.log");
    common::write_manifest(
        &dir,
        "name = \"rgb\"\ntask = \"classify\"\nonnx = \"model.onnx\"\nrknn = { file = \"model.rknn\", input = \"float\" }\n\
         [input]\nname = \"image\"\nshape = [1, 3, 4, 4]\ncolor = \"rgb\"\n\
         [outputs]\nlogits = \"means\"\nattention = [\"fmap\"]\n",
    );
    std::fs::write(
        dir.join("model.rknn"),
        format!(
            "EDGEVIT-MOCK-RKNN\nlog {}\ninput image nhwc 1 4 4 3\noutput fmap nhwc 1 2 2 3\noutput means undefined 1 3\n",
            log.display()
        ),
    )
    .unwrap();
    let package = ModelPackage::open(&dir).unwrap();
    let mut backend = RknnBackend::load(&package, &rknn(&library, CoreMask::Auto)).unwrap();
    // Channel c, position p: 100 c + p.
    let nchw: Vec<f32> = (0..3)
        .flat_map(|c| (0..16).map(move |p| (100 * c + p) as f32))
        .collect();
    let input = Tensor::new(vec![1, 3, 4, 4], nchw.clone()).unwrap();
    let outputs = backend.run(&input).unwrap();
    // In NHWC, position i holds channel i % 3: the 3 means are the channels' means.
    let means = outputs.get("means").unwrap();
    assert_close(means.data(), &[7.5, 107.5, 207.5]);
    let nhwc: Vec<f32> = (0..16)
        .flat_map(|p| (0..3).map(move |c| (100 * c + p) as f32))
        .collect();
    let fmap = outputs.get("fmap").unwrap();
    assert_eq!(fmap.shape(), [1, 3, 2, 2]);
    assert_close(fmap.data(), &known_function(&nhwc, 12));
    let calls = calls(&log);
    assert!(
        calls.contains(&"rknn_inputs_set n=1 index=0 type=0 fmt=1 size=192 pass_through=0".into()),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("rknn_set_core_mask")),
        "auto leaves the mask to the runtime: {calls:?}"
    );
}

#[test]
fn infer_runs_the_self_test_and_the_image_on_the_npu_runtime() {
    let tmp = tempfile::tempdir().unwrap();
    let library = mock_runtime(tmp.path(), &[]);
    let (dir, log) = mock_package(tmp.path(), DIGIT_MODEL);
    let sample = common::default_model().join("samples/digit-1-10.png");
    let output = common::edgevit(&[
        "infer",
        "--backend",
        "rknn",
        "--library",
        library.to_str().unwrap(),
        "--model",
        dir.to_str().unwrap(),
        sample.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let records = common::json_lines(&output);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["backend"], "rknn", "{records:?}");
    // The mock's logits are its known function of the 8-bit pixels: logit j is the mean of the
    // pixels i with i % 10 == j, held as int8 on the way (so within one step of 1/255 of the
    // range). The top class is theirs.
    let pixels = image::open(&sample).unwrap().to_luma8().into_raw();
    let means: Vec<f32> = (0..10)
        .map(|j| {
            let column: Vec<f32> = pixels
                .iter()
                .skip(j)
                .step_by(10)
                .map(|&v| f32::from(v))
                .collect();
            column.iter().sum::<f32>() / column.len() as f32
        })
        .collect();
    let (max, min) = means
        .iter()
        .fold((f32::MIN, f32::MAX), |(hi, lo), &m| (hi.max(m), lo.min(m)));
    let top = records[0]["top"][0]["index"].as_u64().unwrap() as usize;
    assert!(
        means[top] >= max - (max - min) / 255.0 * 2.0,
        "class {top} has mean {}, the best {max}: {means:?}",
        means[top]
    );
    assert_eq!(
        records[0]["top"][0]["label"],
        top.to_string(),
        "{records:?}"
    );
    let runs = calls(&log)
        .iter()
        .filter(|c| c.starts_with("rknn_run"))
        .count();
    assert_eq!(runs, 2, "the self-test, then the image");
}

#[test]
fn a_fallback_list_runs_the_first_backend_that_loads_and_says_which() {
    let tmp = tempfile::tempdir().unwrap();
    let library = mock_runtime(tmp.path(), &[]);
    // The real reference: tract passes the self-test; the mock passes with a wide tolerance.
    let (dir, _) = package_with_mock(tmp.path(), DIGIT_MODEL, 1e6);
    let samples = common::default_model().join("samples");
    let run = |rknn_library: &str| {
        let config = tmp.path().join("edgevit.toml");
        std::fs::write(
            &config,
            format!(
                "[source]\nkind = \"image-dir\"\npath = \"{}\"\n[model]\npath = \"{}\"\n\
                 [backend]\nfallback = [\"rknn\", \"tract\"]\n[backend.rknn]\nlibrary = \"{rknn_library}\"\n\
                 [backend.tract]\nthreads = 1\n",
                samples.display(),
                dir.display()
            ),
        )
        .unwrap();
        common::edgevit(&["run", "--config", config.to_str().unwrap()])
    };
    let output = run(library.to_str().unwrap());
    assert!(output.status.success(), "{}", common::stderr(&output));
    let records = common::json_lines(&output);
    assert!(!records.is_empty());
    assert!(
        records.iter().all(|r| r["backend"] == "rknn"),
        "{records:?}"
    );

    let missing = tmp.path().join("no/librknnrt.so");
    let output = run(missing.to_str().unwrap());
    assert!(output.status.success(), "{}", common::stderr(&output));
    let records = common::json_lines(&output);
    assert_eq!(records.len(), 10, "every sample digit");
    assert!(
        records.iter().all(|r| r["backend"] == "tract"),
        "{records:?}"
    );
    // The tract run gives the bundled model's real answers.
    let right = records
        .iter()
        .filter(|r| {
            let file = r["input"].as_str().unwrap_or_default().to_string();
            let digit = file
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .split('-')
                .nth(1);
            r["top"][0]["label"].as_str() == digit
        })
        .count();
    assert!(right >= 9, "{records:?}");
    let err = common::stderr(&output);
    assert!(
        err.contains("backend rknn cannot run model") && err.contains(missing.to_str().unwrap()),
        "the refusal is logged with its reason: {err}"
    );
    // probe says which backend of the list runs the model.
    let config = tmp.path().join("edgevit.toml");
    let output = common::edgevit(&["probe", "--config", config.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("model vit-mnist: runs on tract (tried in order: [\"rknn\",\"tract\",\"tract-own-kernels\"])"),
        "{stdout}"
    );
}

fn load_error(package: &Path, config: RknnConfig) -> String {
    let package = ModelPackage::open(package).unwrap();
    match RknnBackend::load(&package, &config) {
        Ok(_) => panic!("should be refused"),
        Err(e) => edgevit::error::chain(&e),
    }
}

#[test]
fn wrong_runtimes_models_and_settings_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let library = mock_runtime(tmp.path(), &[]);
    let one_core = mock_runtime(tmp.path(), &["NO_CORE_MASK"]);

    // No runtime at that path.
    let (dir, _) = mock_package(&tmp.path().join("a"), DIGIT_MODEL);
    let missing = tmp.path().join("nowhere/librknnrt.so");
    let error = load_error(&dir, rknn(&missing, CoreMask::Auto));
    assert!(
        error.contains(missing.to_str().unwrap()) && error.contains("backend.library"),
        "{error}"
    );
    // A library that is not the RKNN runtime.
    let other = tmp.path().join("libother.so");
    std::fs::write(
        tmp.path().join("other.c"),
        "int other(void) { return 1; }\n",
    )
    .unwrap();
    let compiler = std::env::var("EDGEVIT_MOCK_CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args(["-shared", "-fPIC", "-o"])
        .arg(&other)
        .arg(tmp.path().join("other.c"))
        .status()
        .unwrap();
    assert!(status.success());
    let error = load_error(&dir, rknn(&other, CoreMask::Auto));
    assert!(
        error.contains("no `rknn_init`") && error.contains("not the RKNN runtime"),
        "{error}"
    );
    // Cores on a runtime for a one-core NPU.
    let error = load_error(&dir, rknn(&one_core, CoreMask::Core1));
    assert!(
        error.contains("core_mask") && error.contains("\"auto\""),
        "{error}"
    );
    // A mask the NPU refuses... is refused by the mock only past core 2; all is accepted.
    let package = ModelPackage::open(&dir).unwrap();
    assert!(RknnBackend::load(&package, &rknn(&library, CoreMask::All)).is_ok());

    // A file the runtime does not take.
    std::fs::write(dir.join("model.rknn"), "not a model").unwrap();
    let error = load_error(&dir, rknn(&library, CoreMask::Auto));
    assert!(
        error.contains("rknn_init: RKNN_ERR_MODEL_INVALID"),
        "{error}"
    );

    // A model converted for another input size, and one without the manifest's output.
    let (dir, _) = mock_package(
        &tmp.path().join("b"),
        "input input nhwc 1 32 32 1\noutput logits undefined 1 10\n",
    );
    let error = load_error(&dir, rknn(&library, CoreMask::Auto));
    assert!(
        error.contains("[1, 32, 32, 1] (NHWC)") && error.contains("[1, 28, 28, 1]"),
        "{error}"
    );
    let (dir, _) = mock_package(
        &tmp.path().join("c"),
        "input input nhwc 1 28 28 1\noutput scores undefined 1 10\n",
    );
    let error = load_error(&dir, rknn(&library, CoreMask::Auto));
    assert!(
        error.contains("\"logits\"") && error.contains("[\"scores\"]"),
        "{error}"
    );

    // A package with no converted model.
    let plain = common::edited_default_package(&tmp.path().join("plain"), |manifest| {
        manifest.remove("rknn");
    });
    let plain = ModelPackage::open(&plain).unwrap();
    let error = match RknnBackend::load(&plain, &rknn(&library, CoreMask::Auto)) {
        Ok(_) => panic!("should be refused"),
        Err(e) => edgevit::error::chain(&e),
    };
    assert!(
        error.contains("no `rknn` file") && error.contains("tools/rknn_convert.py"),
        "{error}"
    );

    // A run the runtime fails: an error for that frame, and the next call still works.
    let (dir, log) = mock_package(
        &tmp.path().join("d"),
        &format!("{DIGIT_MODEL}fail rknn_run\n"),
    );
    let package = ModelPackage::open(&dir).unwrap();
    let mut backend = RknnBackend::load(&package, &rknn(&library, CoreMask::Auto)).unwrap();
    let input = Tensor::new(vec![1, 1, 28, 28], vec![0.0; 784]).unwrap();
    for _ in 0..2 {
        let error = backend.run(&input).unwrap_err().to_string();
        assert!(error.contains("rknn_run: RKNN_ERR_FAIL (-1)"), "{error}");
    }
    let wrong = Tensor::new(vec![1, 1, 14, 14], vec![0.0; 196]).unwrap();
    assert!(backend.run(&wrong).is_err());
    drop(backend);
    assert_eq!(
        calls(&log).last().map(String::as_str),
        Some("rknn_destroy outstanding=0")
    );
}

#[test]
fn the_pipeline_falls_back_when_the_npu_fails_the_self_test() {
    let tmp = tempfile::tempdir().unwrap();
    let library = mock_runtime(tmp.path(), &[]);
    // The self-test reference is the real model's logits: the mock's function is far from it.
    let dir = common::edited_default_package(&tmp.path().join("pkg"), |manifest| {
        manifest.insert("rknn".into(), "model.rknn".into());
    });
    std::fs::write(
        dir.join("model.rknn"),
        format!("EDGEVIT-MOCK-RKNN\n{DIGIT_MODEL}"),
    )
    .unwrap();
    let only_rknn = BackendConfig::Rknn(rknn(&library, CoreMask::Auto));
    let error = match LoadedModel::load(&dir, &only_rknn) {
        Ok(_) => panic!("the mock is not the model: the self-test must refuse it"),
        Err(e) => edgevit::error::chain(&e),
    };
    assert!(error.contains("failed its self-test"), "{error}");
    let order = BackendConfig::Fallback(vec![only_rknn, BackendConfig::Tract(Default::default())]);
    let model = LoadedModel::load(&dir, &order).unwrap();
    assert_eq!(model.backend.name(), "tract");
}
