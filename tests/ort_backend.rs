//! The `ort` backend (ONNX Runtime, loaded at run time) against the real library: the one in the
//! PyPI `onnxruntime` wheel (`tools/install-test-deps.sh` unpacks it), on the CPU provider.
//! Its outputs equal tract's on every bundled model, vit4mnist and OSNet; its errors name the
//! library, the path or the provider at fault. CUDA and TensorRT are not on this machine.
#![cfg(feature = "ort")]

mod common;

use edgevit::backend::ort::{Int8Precision, Optimization, OrtConfig};
use edgevit::backend::{BackendConfig, InferenceBackend, OrtBackend};
use edgevit::model::ModelPackage;
use edgevit::pipeline::LoadedModel;
use edgevit::preprocess::{Preprocess, Preprocessor};
use edgevit::source::{FrameSource, ImageListSource};
use edgevit::tensor::Tensor;
use std::path::{Path, PathBuf};

fn ort_backend(optimization: Optimization) -> BackendConfig {
    ort_backend_with(|config| config.optimization = optimization)
}

/// ONNX Runtime from the test library, with `edit`'s changes to the default settings.
fn ort_backend_with(edit: impl FnOnce(&mut OrtConfig)) -> BackendConfig {
    let mut config = OrtConfig {
        library: Some(common::ort_library()),
        ..OrtConfig::default()
    };
    edit(&mut config);
    BackendConfig::Ort(config)
}

/// A copy of a bundled package without `attention = "auto"` (it names tensors inside the
/// graph, which only tract can read).
fn without_inner_attention(name: &str, dest: &Path) -> PathBuf {
    let dir = dest.join(name);
    common::copy_package(&common::repo().join("models").join(name), &dir);
    let manifest = dir.join("model.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("attention = \"auto\"\n", "")).unwrap();
    dir
}

/// ../shared's vit4mnist as a package in `dest`.
fn vit4mnist_package(shared: &Path, dest: &Path) -> PathBuf {
    let onnx = shared.join("reference/vit4mnist/vit4mnist.onnx");
    common::write_manifest(&dest.join("vit4mnist"), &common::vit4mnist_manifest(&onnx))
}

/// The self-test input of a package with its side inputs, as the self-test runs it.
fn selftest_input(package: &ModelPackage) -> (Tensor, Vec<i64>) {
    let spec = package.manifest.selftest.as_ref().unwrap();
    edgevit::model::selftest::stored_input(package, spec).unwrap()
}

fn worst_difference(
    a: &mut dyn InferenceBackend,
    b: &mut dyn InferenceBackend,
    package: &ModelPackage,
) -> (String, f32) {
    let (input, side) = selftest_input(package);
    let (x, y) = (
        a.run_with(&input, &side).unwrap(),
        b.run_with(&input, &side).unwrap(),
    );
    let mut worst = (String::new(), 0.0f32);
    for name in package.manifest.outputs.graph_names() {
        let d = x
            .get(name)
            .unwrap()
            .max_abs_diff(y.get(name).unwrap())
            .unwrap_or_else(|| panic!("{name}: shapes differ"));
        if d > worst.1 || d.is_nan() {
            worst = (name.to_string(), d);
        }
    }
    worst
}

#[test]
fn every_bundled_model_gives_tracts_outputs_and_passes_its_self_test() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "vit-mnist",
        "vit-tiny-int8",
        "vit-tiny-qdq",
        "vit-mnist-canvas",
        "vit-mnist-transfg",
        "vit-mnist-lvvit",
        "transreid-tiny",
    ] {
        let dir = without_inner_attention(name, tmp.path());
        let mut tract = LoadedModel::load(&dir, &BackendConfig::default()).unwrap();
        // `basic` computes the graph's own arithmetic: the self-test (ONNX Runtime's outputs
        // at that level) holds at the package's tolerance, and so does the comparison.
        let mut exact = LoadedModel::load(&dir, &ort_backend(Optimization::Basic))
            .unwrap_or_else(|e| panic!("{name}: {}", edgevit::error::chain(&e)));
        assert_eq!(exact.backend.name(), "ort");
        let tolerance = tract.package.manifest.selftest.as_ref().unwrap().tolerance;
        let (output, d) = worst_difference(
            tract.backend.as_mut(),
            exact.backend.as_mut(),
            &tract.package,
        );
        eprintln!(
            "{name}: ort (basic) vs tract: worst {d:e} on {output:?} (tolerance {tolerance:e})"
        );
        assert!(d <= tolerance, "{name}: {output} differs by {d}");
        // `all` (ONNX Runtime's default) fuses more: the model still loads there, its
        // self-test holding at the package's tolerance for ONNX Runtime, and its outputs stay
        // within that of tract's (plus tract's own distance from the reference).
        let mut fused = LoadedModel::load(&dir, &ort_backend(Optimization::All))
            .unwrap_or_else(|e| panic!("{name} at `all`: {}", edgevit::error::chain(&e)));
        let selftest = tract.package.manifest.selftest.as_ref().unwrap();
        let allowed = selftest.tolerance_for("ort") + tolerance;
        let (output, d) = worst_difference(
            tract.backend.as_mut(),
            fused.backend.as_mut(),
            &tract.package,
        );
        eprintln!("{name}: ort (all) vs tract: worst {d:e} on {output:?} (allowed {allowed:e})");
        assert!(d <= allowed, "{name} at `all`: {output} differs by {d}");
    }
}

/// The static QDQ ViT-Tiny at `all`: ONNX Runtime's u8 x s8 kernels saturate on x86-64 CPUs
/// without VNNI (seen on an AMD EPYC: its logits 0.24 off, tolerance 0.15). `exact` and
/// `auto` pass the self-test on every CPU; `fast` is ONNX Runtime's default.
#[test]
fn the_int8_precision_setting_keeps_the_qdq_model_within_its_self_test() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = without_inner_attention("vit-tiny-qdq", tmp.path());
    let load = |int8_precision| {
        LoadedModel::load(
            &dir,
            &ort_backend_with(|config| config.int8_precision = int8_precision),
        )
    };
    for precision in [Int8Precision::Exact, Int8Precision::Auto] {
        let model = load(precision)
            .unwrap_or_else(|e| panic!("{precision:?}: {}", edgevit::error::chain(&e)));
        assert_eq!(model.backend.name(), "ort");
    }
    match load(Int8Precision::Fast) {
        Ok(model) => {
            assert!(
                model.backend.name().starts_with("ort"),
                "{}",
                model.backend.name()
            );
            eprintln!("fast int8 passes the self-test on this CPU");
        }
        Err(e) => {
            let message = edgevit::error::chain(&e);
            // Only a CPU where `auto` chooses the exact kernels may fail with the fast ones.
            assert!(Int8Precision::Auto.exact_here(), "{message}");
            assert!(message.contains("differs from the reference"), "{message}");
            eprintln!("fast int8 fails the self-test on this CPU: {message}");
        }
    }
}

/// The products of [`shared_input_weight_matmuls`], for each of its two matmuls.
struct WeightMatmuls {
    x: Vec<f32>,
    /// x . W, in f32 on the dequantized weights.
    of_x: [Vec<f32>; 2],
    /// The same with x rounded to its int8 grid first, as the graph's pair rounds it.
    of_rounded_x: [Vec<f32>; 2],
}

const ROWS: usize = 8;
const DEPTH: usize = 64;
const COLUMNS: usize = 32;
/// The input pair's scale: x is generated within its range, off its grid.
const X_SCALE: f32 = 8.0 / 127.0;

/// x (1 x 1 x 8 x 64) -> QuantizeLinear -> DequantizeLinear, shared by two matmuls with int8
/// weights per column (DequantizeLinear on the constants) whose outputs are added: a ViT
/// block's query and key. With `output_scale`, each matmul's output goes through a pair of
/// its own at that scale, as a static QDQ export quantizes it.
fn shared_input_weight_matmuls(path: &Path, output_scale: Option<f32>) -> WeightMatmuls {
    use common::graph::Size;
    use tract_onnx::pb::{attribute_proto, AttributeProto, GraphProto};
    let axis = || AttributeProto {
        name: "axis".into(),
        r#type: attribute_proto::AttributeType::Int as i32,
        i: 1,
        ..Default::default()
    };
    let x: Vec<f32> = (0..ROWS * DEPTH)
        .map(|i| 7.9 * ((i * 37 % 101) as f32 / 50.0 - 1.0))
        .collect();
    let rounded: Vec<f32> = x
        .iter()
        .map(|v| (v / X_SCALE).round_ties_even().clamp(-128.0, 127.0) * X_SCALE)
        .collect();
    let mut initializer = vec![
        common::graph::constant("x_scale", vec![], 1, vec![X_SCALE]),
        common::graph::constant("zero", vec![], 3, vec![0.0]),
    ];
    let mut node = vec![
        common::graph::node("QuantizeLinear", &["x", "x_scale", "zero"], "xq", vec![]),
        common::graph::node("DequantizeLinear", &["xq", "x_scale", "zero"], "xd", vec![]),
    ];
    if let Some(scale) = output_scale {
        initializer.push(common::graph::constant("y_scale", vec![], 1, vec![scale]));
    }
    let mut products = Vec::new();
    for w in 0..2 {
        let weights: Vec<f32> = (0..DEPTH * COLUMNS)
            .map(|i| ((i * (13 + 4 * w) + 7 * w) % 255) as f32 - 127.0)
            .collect();
        let scales: Vec<f32> = (0..COLUMNS).map(|c| 0.002 * (1 + c % 5) as f32).collect();
        let product = |x: &[f32]| -> Vec<f32> {
            (0..ROWS * COLUMNS)
                .map(|i| {
                    let (r, c) = (i / COLUMNS, i % COLUMNS);
                    (0..DEPTH)
                        .map(|k| x[r * DEPTH + k] * weights[k * COLUMNS + c] * scales[c])
                        .sum()
                })
                .collect()
        };
        products.push((product(&x), product(&rounded)));
        let [q, s, z, d, y] = ["w", "s", "z", "wd", "y"].map(|n| format!("{n}{w}"));
        initializer.extend([
            common::graph::constant(&q, vec![DEPTH as i64, COLUMNS as i64], 3, weights),
            common::graph::constant(&s, vec![COLUMNS as i64], 1, scales),
            common::graph::constant(&z, vec![COLUMNS as i64], 3, vec![0.0; COLUMNS]),
        ]);
        node.push(common::graph::node(
            "DequantizeLinear",
            &[&q, &s, &z],
            &d,
            vec![axis()],
        ));
        if output_scale.is_some() {
            let [p, pq] = ["p", "pq"].map(|n| format!("{n}{w}"));
            node.push(common::graph::node("MatMul", &["xd", &d], &p, vec![]));
            node.push(common::graph::node(
                "QuantizeLinear",
                &[&p, "y_scale", "zero"],
                &pq,
                vec![],
            ));
            node.push(common::graph::node(
                "DequantizeLinear",
                &[&pq, "y_scale", "zero"],
                &y,
                vec![],
            ));
        } else {
            node.push(common::graph::node("MatMul", &["xd", &d], &y, vec![]));
        }
    }
    node.push(common::graph::node("Add", &["y0", "y1"], "logits", vec![]));
    let shape = |columns: usize| vec![Size(1), Size(1), Size(ROWS as i64), Size(columns as i64)];
    common::graph::write(
        path,
        GraphProto {
            name: "shared_input_weight_matmuls".into(),
            input: vec![common::graph::tensor("x", shape(DEPTH))],
            initializer,
            node,
            output: vec![common::graph::tensor("logits", shape(COLUMNS))],
            ..Default::default()
        },
    );
    let [(of_x0, rounded0), (of_x1, rounded1)]: [(Vec<f32>, Vec<f32>); 2] =
        products.try_into().unwrap();
    WeightMatmuls {
        x,
        of_x: [of_x0, of_x1],
        of_rounded_x: [rounded0, rounded1],
    }
}

/// A package in `dir` of [`shared_input_weight_matmuls`].
fn weight_matmuls_package(dir: &Path, output_scale: Option<f32>) -> (ModelPackage, WeightMatmuls) {
    std::fs::create_dir_all(dir).unwrap();
    let matmuls = shared_input_weight_matmuls(&dir.join("model.onnx"), output_scale);
    common::write_manifest(
        dir,
        &common::reference_manifest(
            "weight-matmuls",
            "classify",
            &dir.join("model.onnx"),
            "name = \"x\"\nshape = [1, 1, 8, 64]\ncolor = \"gray\"",
            "logits = \"logits\"",
        ),
    );
    (ModelPackage::open(dir).unwrap(), matmuls)
}

/// The largest difference of the package's logits on `x` from `expected`, with `edit`'s
/// changes to the default settings.
fn logits_differ(
    package: &ModelPackage,
    x: &[f32],
    expected: Vec<f32>,
    edit: impl FnOnce(&mut OrtConfig),
) -> f32 {
    let mut config = OrtConfig {
        library: Some(common::ort_library()),
        ..OrtConfig::default()
    };
    edit(&mut config);
    let mut backend = OrtBackend::load(package, &config)
        .unwrap_or_else(|e| panic!("{}", edgevit::error::chain(&e)));
    let outputs = backend
        .run(&Tensor::new(vec![1, 1, 8, 64], x.to_vec()).unwrap())
        .unwrap();
    let expected = Tensor::new(vec![1, 1, 8, 32], expected).unwrap();
    outputs
        .get("logits")
        .unwrap()
        .max_abs_diff(&expected)
        .unwrap()
}

/// `exact` int8 also computes the weight matmuls that ONNX Runtime turns into `MatMulNBits`
/// in f32 (within 1e-3 of x . W, outputs about 40); ONNX Runtime's default quantizes their
/// input to int8 block by block and is off by far more.
#[test]
fn exact_int8_computes_the_unquantized_weight_matmuls_in_f32() {
    let tmp = tempfile::tempdir().unwrap();
    let (package, matmuls) = weight_matmuls_package(&tmp.path().join("weight-matmuls"), None);
    let [a, b] = &matmuls.of_x;
    let sum: Vec<f32> = a.iter().zip(b).map(|(a, b)| a + b).collect();
    let difference = |int8_precision| {
        logits_differ(&package, &matmuls.x, sum.clone(), |config| {
            config.int8_precision = int8_precision;
            // The shared pair as it is: what ONNX Runtime makes of the matmuls then.
            config.dedicated_qdq_pairs = false;
        })
    };
    let exact = difference(Int8Precision::Exact);
    assert!(exact < 1e-3, "exact: {exact}");
    let fast = difference(Int8Precision::Fast);
    assert!(fast > 1e-2, "fast: {fast}");
}

/// With a pair per reader (the default), ONNX Runtime runs each quantized matmul as one int8
/// kernel, which rounds x and the products as the graph does (within 1e-3, on an output grid
/// 1.5 apart); with the pair shared, it runs them on kernels that skip the products' rounding
/// (off by up to 1.5).
#[test]
fn a_pair_per_reader_runs_the_graphs_int8_arithmetic() {
    const Y_SCALE: f32 = 1.5;
    let tmp = tempfile::tempdir().unwrap();
    let (package, matmuls) =
        weight_matmuls_package(&tmp.path().join("weight-matmuls"), Some(Y_SCALE));
    let on_grid = |v: f32| (v / Y_SCALE).round_ties_even().clamp(-128.0, 127.0) * Y_SCALE;
    let [a, b] = &matmuls.of_rounded_x;
    let graph: Vec<f32> = a
        .iter()
        .zip(b)
        .map(|(a, b)| on_grid(*a) + on_grid(*b))
        .collect();
    let largest = a.iter().chain(b).fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        largest < 127.0 * Y_SCALE,
        "{largest}: a product beyond the output's range would test the clamp, not the rounding"
    );
    let difference = |dedicated_qdq_pairs| {
        logits_differ(&package, &matmuls.x, graph.clone(), |config| {
            config.dedicated_qdq_pairs = dedicated_qdq_pairs;
        })
    };
    let dedicated = difference(true);
    assert!(dedicated < 1e-3, "a pair per reader: {dedicated}");
    let shared = difference(false);
    assert!(shared > 0.1, "the pair shared: {shared}");
}

/// A weight-only int8 package on ONNX Runtime at `all` runs its graph's own arithmetic with
/// the weights dequantized at load (tract's outputs within 1e-4). With `dequantize_weights`
/// off, ONNX Runtime's int8 kernels take the int8 weights: at `int8_precision = "fast"` they
/// quantize the activations too and the outputs move by more (about 1e-2); at `exact` they
/// compute in f32 and stay within 1e-4. A static QDQ package is left to the int8 kernels
/// either way.
#[test]
fn weight_only_int8_runs_in_f32_unless_told_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let load = |name: &str, dequantize_weights, int8_precision| {
        let dir = without_inner_attention(
            name,
            &tmp.path()
                .join(format!("{dequantize_weights}-{int8_precision:?}")),
        );
        LoadedModel::load(
            &dir,
            &ort_backend_with(|config| {
                config.dequantize_weights = dequantize_weights;
                config.int8_precision = int8_precision;
            }),
        )
        .unwrap_or_else(|e| panic!("{name}: {}", edgevit::error::chain(&e)))
    };
    for name in ["vit-mnist", "vit-tiny-int8"] {
        let dir = without_inner_attention(name, tmp.path());
        let mut tract = LoadedModel::load(&dir, &BackendConfig::default()).unwrap();
        let mut difference = |dequantize_weights, int8_precision| {
            worst_difference(
                tract.backend.as_mut(),
                load(name, dequantize_weights, int8_precision)
                    .backend
                    .as_mut(),
                &tract.package,
            )
        };
        let (output, f32_weights) = difference(true, Int8Precision::Auto);
        assert!(
            f32_weights < 1e-4,
            "{name}: {output} differs by {f32_weights}"
        );
        let (output, exact_int8_kernels) = difference(false, Int8Precision::Exact);
        assert!(
            exact_int8_kernels < 1e-4,
            "{name}: {output} differs by {exact_int8_kernels} with the exact int8 kernels"
        );
        let (output, fast_int8_kernels) = difference(false, Int8Precision::Fast);
        assert!(
            fast_int8_kernels > 1e-3,
            "{name}: {output} differs by {fast_int8_kernels} only: were the int8 kernels used?"
        );
    }
    // The static QDQ ViT-Tiny: the setting does not apply, the outputs are the same.
    let (mut on, mut off) = (
        load("vit-tiny-qdq", true, Int8Precision::Auto),
        load("vit-tiny-qdq", false, Int8Precision::Auto),
    );
    let package = on.package.clone();
    let (output, d) = worst_difference(on.backend.as_mut(), off.backend.as_mut(), &package);
    assert_eq!(d, 0.0, "{output}");
}

/// The memory settings move where intermediate tensors live, and spinning only how the CPU
/// provider's threads wait, not what is computed: with the arena or the memory pattern off, or
/// two threads that sleep instead of spinning, the QDQ ViT-Tiny passes its self-test and gives
/// the outputs of the same session with ONNX Runtime's defaults bit for bit, run after run (the
/// pattern is planned from the first).
#[test]
fn the_memory_and_threading_settings_change_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = without_inner_attention("vit-tiny-qdq", tmp.path());
    let load = |what: &str, edit: &dyn Fn(&mut OrtConfig)| {
        LoadedModel::load(&dir, &ort_backend_with(edit))
            .unwrap_or_else(|e| panic!("{what}: {}", edgevit::error::chain(&e)))
    };
    // What each variant is called, its thread count (1 or 2), and what it changes.
    type Variant<'a> = (&'a str, usize, &'a dyn Fn(&mut OrtConfig));
    let variants: [Variant; 4] = [
        ("arena and pattern off", 1, &|c| {
            (c.arena, c.memory_pattern) = (false, false)
        }),
        ("pattern off", 1, &|c| c.memory_pattern = false),
        ("arena off", 1, &|c| c.arena = false),
        ("no spinning", 2, &|c| c.spin = false),
    ];
    let mut defaults = [1, 2].map(|threads| load("defaults", &|c| c.threads = threads));
    let package = defaults[0].package.clone();
    for (what, threads, edit) in variants {
        let mut changed = load(what, &|c| {
            c.threads = threads;
            edit(c);
        });
        let reference = defaults[threads - 1].backend.as_mut();
        for run in 0..3 {
            let (output, d) = worst_difference(reference, changed.backend.as_mut(), &package);
            assert_eq!(d, 0.0, "{what}, run {run}: {output}");
        }
    }
}

#[test]
fn vit4mnist_and_osnet_agree_with_tract() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let dir = vit4mnist_package(&shared, tmp.path());
    let mut tract = LoadedModel::load(&dir, &BackendConfig::default()).unwrap();
    let mut ort = LoadedModel::load(&dir, &ort_backend(Optimization::All)).unwrap();
    let mut preprocess = Preprocessor::new(&tract.package.manifest.input);
    let dev = shared.join("reference/mnist-dev");
    let labels: std::collections::HashMap<String, usize> =
        std::fs::read_to_string(dev.join("labels.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let (f, v) = l.split_once(',').unwrap();
                (f.to_string(), v.trim().parse().unwrap())
            })
            .collect();
    let mut files: Vec<&String> = labels.keys().collect();
    files.sort();
    let paths = files.iter().map(|f| dev.join(f)).collect();
    let mut source = ImageListSource::new(paths, "dev".into());
    let (mut right_tract, mut right_ort, mut worst) = (0, 0, 0.0f32);
    let argmax = |v: &[f32]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
    let mut i = 0;
    while let Some(frame) = source.next_frame() {
        let input = preprocess.prepare(&frame.unwrap()).unwrap();
        let a = tract.backend.run(&input).unwrap();
        let b = ort.backend.run(&input).unwrap();
        let (a, b) = (a.get("logits").unwrap(), b.get("logits").unwrap());
        worst = worst.max(a.max_abs_diff(b).unwrap());
        let label = labels[files[i].as_str()];
        right_tract += usize::from(argmax(a.data()) == label);
        right_ort += usize::from(argmax(b.data()) == label);
        i += 1;
    }
    assert_eq!(i, 300);
    eprintln!(
        "vit4mnist on 300 mnist-dev digits: tract {right_tract}, ort {right_ort} right; logits differ by at most {worst:e}"
    );
    assert_eq!(right_tract, right_ort);
    assert!(worst < 1e-4, "{worst}");

    let dir = common::osnet_package(&shared, tmp.path());
    let mut tract = LoadedModel::load(&dir, &BackendConfig::default()).unwrap();
    let mut ort = LoadedModel::load(&dir, &ort_backend(Optimization::All)).unwrap();
    let mut preprocess = Preprocessor::new(&tract.package.manifest.input);
    for image in ["astronaut.png", "grace_hopper.bmp"] {
        let picture = image::open(shared.join("reference/images").join(image))
            .unwrap()
            .to_rgb8();
        let input = preprocess.prepare(&common::rgb_frame(&picture)).unwrap();
        let a = tract.backend.run(&input).unwrap();
        let b = ort.backend.run(&input).unwrap();
        let d = a
            .get("output")
            .unwrap()
            .max_abs_diff(b.get("output").unwrap())
            .unwrap();
        eprintln!("osnet {image}: ort vs tract {d:e}");
        assert!(d < 1e-3, "{image}: {d}");
    }
}

/// vit4mnist is exported with a free batch (`batch`): ONNX Runtime plans it at batch 1, the
/// size edgevit feeds, unless told not to, and the answers stay those of the free graph. A
/// graph with no free dimension is left as it is.
#[test]
fn a_free_batch_is_planned_at_the_size_edgevit_feeds() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let dir = vit4mnist_package(&shared, tmp.path());
    let package = ModelPackage::open(&dir).unwrap();
    let mut fixed = load_fixing_free_dimensions(&package, true);
    let mut free = load_fixing_free_dimensions(&package, false);
    assert_eq!(fixed.fixed_dimensions(), [("batch".to_string(), 1)]);
    assert!(free.fixed_dimensions().is_empty());

    let mut preprocess = Preprocessor::new(&package.manifest.input);
    let mut digits = common::mnist_dev_digits(&shared);
    digits.truncate(20);
    assert_eq!(digits.len(), 20, "mnist-dev has fewer digits than expected");
    let mut source = ImageListSource::new(digits, "dev".into());
    let mut worst = 0.0f32;
    while let Some(frame) = source.next_frame() {
        let input = preprocess.prepare(&frame.unwrap()).unwrap();
        let a = fixed.run(&input).unwrap();
        let b = free.run(&input).unwrap();
        worst = worst.max(
            a.get("logits")
                .unwrap()
                .max_abs_diff(b.get("logits").unwrap())
                .unwrap(),
        );
    }
    eprintln!("vit4mnist, batch fixed against free: logits differ by at most {worst:e}");
    assert!(worst < 1e-5, "{worst}");

    let bundled = ModelPackage::open(&common::repo().join("models/vit-mnist")).unwrap();
    let static_graph = OrtBackend::load(
        &bundled,
        &OrtConfig {
            library: Some(common::ort_library()),
            ..OrtConfig::default()
        },
    )
    .unwrap();
    assert!(static_graph.fixed_dimensions().is_empty());
}

/// A configuration running the bundled default model on one sample through ORT.
fn config(dir: &Path, backend: &str) -> PathBuf {
    common::write_config(
        dir,
        &format!(
            "[source]\nkind = \"image-file\"\npath = \"{}\"\n[model]\npath = \"{{model}}\"\n[backend]\nkind = \"ort\"\n{backend}\n",
            common::repo()
                .join("models/vit-mnist/samples/digit-7-8.png")
                .display()
        ),
    )
}

fn run(config: &Path) -> std::process::Output {
    common::edgevit(&["run", "--config", config.to_str().unwrap()])
}

#[test]
fn a_missing_library_a_wrong_file_and_an_absent_provider_are_clear_errors() {
    let library = common::ort_library();
    let tmp = tempfile::tempdir().unwrap();

    let output = run(&config(
        tmp.path(),
        "library = \"/nonexistent/libonnxruntime.so\"",
    ));
    assert_eq!(output.status.code(), Some(2));
    common::assert_clean_failure(
        &output,
        &[
            "cannot load the inference library /nonexistent/libonnxruntime.so",
            "ORT_DYLIB_PATH",
        ],
    );

    let not_a_library = tmp.path().join("libonnxruntime.so");
    std::fs::write(&not_a_library, "not a shared object").unwrap();
    let output = run(&config(
        tmp.path(),
        &format!("library = \"{}\"", not_a_library.display()),
    ));
    common::assert_clean_failure(
        &output,
        &["cannot load the inference library", "libonnxruntime.so"],
    );

    // This machine's library has no CUDA: an error naming the provider, or with
    // `fallback = true` a warning and the CPU.
    let output = run(&config(
        tmp.path(),
        &format!(
            "library = \"{}\"\nproviders = [\"cuda\", \"cpu\"]",
            library.display()
        ),
    ));
    common::assert_clean_failure(
        &output,
        &["execution provider cuda cannot be used", "fallback"],
    );
    let output = run(&config(
        tmp.path(),
        &format!(
            "library = \"{}\"\nproviders = [\"cuda\", \"cpu\"]\nfallback = true",
            library.display()
        ),
    ));
    assert!(output.status.success(), "{}", common::stderr(&output));
    let stderr = common::stderr(&output);
    assert!(
        stderr.contains("runs on the cpu provider: cuda could not be used"),
        "{stderr}"
    );
    let record = &common::json_lines(&output)[0];
    assert_eq!(record["top"][0]["label"], "7", "{record}");

    // Attention found inside the graph is tract's alone: the package still classifies on
    // ONNX Runtime, and `--zoom` is refused saying why.
    let canvas = common::repo().join("models/vit-mnist-canvas");
    let sample = std::fs::read_dir(canvas.join("samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    let on_ort = |extra: &[&str]| {
        let mut args = vec![
            "infer",
            "--model",
            canvas.to_str().unwrap(),
            "--backend",
            "ort",
            "--library",
            library.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push(sample.to_str().unwrap());
        common::edgevit(&args)
    };
    let output = on_ort(&[]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(common::json_lines(&output)[0]["backend"], "ort");
    common::assert_clean_failure(
        &on_ort(&["--zoom"]),
        &["no attention on the ort backend", "only tract"],
    );
}

#[test]
fn probe_lists_the_library_and_its_providers() {
    let library = common::ort_library();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_edgevit"))
        .args(["probe"])
        .env("ORT_DYLIB_PATH", &library)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!("ONNX Runtime 1.31.1 from {}", library.display())),
        "{text}"
    );
    assert!(text.contains("providers: cpu"), "{text}");
}

/// `package` on ONNX Runtime, with `fix_free_dimensions` as given.
fn load_fixing_free_dimensions(package: &ModelPackage, fix_free_dimensions: bool) -> OrtBackend {
    let config = OrtConfig {
        library: Some(common::ort_library()),
        fix_free_dimensions,
        ..OrtConfig::default()
    };
    OrtBackend::load(package, &config).unwrap_or_else(|e| panic!("{}", edgevit::error::chain(&e)))
}

/// A graph whose free batch cannot be 1: its batch axis is the inner dimension of a product
/// with a 3-row matrix. ONNX Runtime accepts it with the batch free (the size is checked when it
/// runs) and refuses to plan it with the batch fixed at 1.
fn batch_must_be_three(path: &Path) {
    use common::graph::{Named, Size};
    use tract_onnx::pb::{attribute_proto, AttributeProto, GraphProto};
    let perm = AttributeProto {
        name: "perm".into(),
        r#type: attribute_proto::AttributeType::Ints as i32,
        ints: vec![1, 2, 3, 0],
        ..Default::default()
    };
    common::graph::write(
        path,
        GraphProto {
            name: "batch_must_be_three".into(),
            input: vec![common::graph::tensor(
                "x",
                vec![Named("batch".into()), Size(1), Size(2), Size(2)],
            )],
            initializer: vec![common::graph::constant("w", vec![3, 5], 1, vec![0.5; 15])],
            node: vec![
                common::graph::node("Transpose", &["x"], "batch_last", vec![perm]),
                common::graph::node("MatMul", &["batch_last", "w"], "logits", vec![]),
            ],
            output: vec![common::graph::tensor(
                "logits",
                vec![Size(1), Size(2), Size(2), Size(5)],
            )],
            ..Default::default()
        },
    );
}

/// Where ONNX Runtime cannot plan a graph at the sizes edgevit feeds, the session is built again
/// with the graph's dimensions free (a warning says so), rather than the model failing to load.
#[test]
fn a_graph_that_refuses_the_fixed_size_loads_with_its_dimensions_free() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("batch3");
    std::fs::create_dir_all(&dir).unwrap();
    batch_must_be_three(&dir.join("model.onnx"));
    common::write_manifest(
        &dir,
        &common::reference_manifest(
            "batch3",
            "classify",
            &dir.join("model.onnx"),
            "name = \"x\"\nshape = [1, 1, 2, 2]\ncolor = \"gray\"",
            "logits = \"logits\"",
        ),
    );
    let package = ModelPackage::open(&dir).unwrap();
    record_warnings();
    let fallback = load_fixing_free_dimensions(&package, true);
    assert!(
        fallback.fixed_dimensions().is_empty(),
        "{:?}",
        fallback.fixed_dimensions()
    );
    let about_this_graph = || warnings_about("batch3");
    let warnings = about_this_graph();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("could not plan") && w.contains("[(\"batch\", 1)]")),
        "{warnings:?}"
    );
    // With the setting off, nothing is tried: no warning.
    load_fixing_free_dimensions(&package, false);
    assert_eq!(about_this_graph().len(), warnings.len());
}

/// x -> QuantizeLinear (scale 1, int8) -> DequantizeLinear -> Mul by 2 (-> Flatten, to one
/// vector). No int8 kernel takes
/// the pair, so ONNX Runtime's Q/DQ cleanup drops it and the Mul gets x unrounded.
fn qdq_pair_before_a_float_op(path: &Path) {
    use common::graph::Size;
    use tract_onnx::pb::GraphProto;
    let shape = || vec![Size(1), Size(1), Size(2), Size(2)];
    common::graph::write(
        path,
        GraphProto {
            name: "qdq_pair_before_a_float_op".into(),
            input: vec![common::graph::tensor("x", shape())],
            initializer: vec![
                common::graph::constant("scale", vec![], 1, vec![1.0]),
                common::graph::constant("zero", vec![], 3, vec![0.0]),
                common::graph::constant("two", vec![], 1, vec![2.0]),
            ],
            node: vec![
                common::graph::node("QuantizeLinear", &["x", "scale", "zero"], "q", vec![]),
                common::graph::node("DequantizeLinear", &["q", "scale", "zero"], "dq", vec![]),
                common::graph::node("Mul", &["dq", "two"], "doubled", vec![]),
                // One vector per frame, as a classifier's logits are.
                common::graph::node("Flatten", &["doubled"], "logits", vec![]),
            ],
            output: vec![common::graph::tensor("logits", vec![Size(1), Size(4)])],
            ..Default::default()
        },
    );
}

const QDQ_INPUT: [f32; 4] = [0.3, 1.6, -0.4, 200.0];
/// The graph's own arithmetic: x rounded and clamped to int8, doubled.
const QDQ_EXACT: [f32; 4] = [0.0, 4.0, 0.0, 254.0];
/// With the pair dropped: x doubled.
const QDQ_DROPPED: [f32; 4] = [0.6, 3.2, -0.8, 400.0];

/// ONNX Runtime drops the Q -> DQ pairs by default, and a package whose self-test fails that
/// way is loaded again with them kept, with a warning: the faster form never runs a model it
/// computes wrongly.
#[test]
fn dropping_qdq_pairs_runs_only_where_the_self_test_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("qdq-pair");
    std::fs::create_dir_all(dir.join("selftest")).unwrap();
    qdq_pair_before_a_float_op(&dir.join("model.onnx"));
    let tensor = |values: [f32; 4]| Tensor::new(vec![1, 1, 2, 2], values.to_vec()).unwrap();
    let logits = |values: [f32; 4]| Tensor::new(vec![1, 4], values.to_vec()).unwrap();
    std::fs::write(dir.join("selftest/input.npy"), tensor(QDQ_INPUT).to_npy()).unwrap();
    std::fs::write(dir.join("selftest/logits.npy"), logits(QDQ_EXACT).to_npy()).unwrap();
    let manifest = common::reference_manifest(
        "qdq-pair",
        "classify",
        &dir.join("model.onnx"),
        "name = \"x\"\nshape = [1, 1, 2, 2]\ncolor = \"gray\"",
        "logits = \"logits\"",
    );
    common::write_manifest(
        &dir,
        &format!(
            "{manifest}[selftest]\ninput = \"selftest/input.npy\"\n\
             outputs = {{ logits = \"selftest/logits.npy\" }}\ntolerance = 0.0001\n"
        ),
    );
    let package = ModelPackage::open(&dir).unwrap();
    let differs_from = |backend: &mut dyn InferenceBackend, expected: [f32; 4]| {
        let outputs = backend.run(&tensor(QDQ_INPUT)).unwrap();
        outputs
            .get("logits")
            .unwrap()
            .max_abs_diff(&logits(expected))
            .unwrap()
    };

    // The setting reaches ONNX Runtime, both ways.
    for (qdq_cleanup, expected) in [(true, QDQ_DROPPED), (false, QDQ_EXACT)] {
        let config = OrtConfig {
            library: Some(common::ort_library()),
            qdq_cleanup,
            ..OrtConfig::default()
        };
        let mut backend = OrtBackend::load(&package, &config)
            .unwrap_or_else(|e| panic!("{}", edgevit::error::chain(&e)));
        let difference = differs_from(&mut backend, expected);
        assert!(
            difference < 1e-5,
            "qdq_cleanup = {qdq_cleanup}: {difference}"
        );
    }

    // Loaded as `run` loads it: dropped, the self-test fails (0.6 for 0 at a tolerance of
    // 1e-4), so the model runs with the pairs kept.
    record_warnings();
    let mut model = LoadedModel::load(&dir, &ort_backend(Optimization::All))
        .unwrap_or_else(|e| panic!("{}", edgevit::error::chain(&e)));
    let difference = differs_from(model.backend.as_mut(), QDQ_EXACT);
    assert!(difference < 1e-5, "{difference}");
    let warnings = warnings_about("qdq-pair");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("runs on the ort-qdq-kept backend") && w.contains("self-test")),
        "{warnings:?}"
    );

    // The bundled static QDQ ViT-Tiny passes its self-test with the pairs dropped: it runs in
    // the faster form, nothing falls back.
    let bundled = without_inner_attention("vit-tiny-qdq", tmp.path());
    LoadedModel::load(&bundled, &ort_backend(Optimization::All))
        .unwrap_or_else(|e| panic!("{}", edgevit::error::chain(&e)));
    let warnings = warnings_about("vit-tiny-qdq");
    assert!(warnings.is_empty(), "{warnings:?}");
}

/// Sends this test binary's warnings to [`WARNINGS`].
fn record_warnings() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::set_logger(&WARNINGS).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// The warnings logged so far that name `needle`: the tests of this binary run side by side.
fn warnings_about(needle: &str) -> Vec<String> {
    let warnings = WARNINGS.0.lock().unwrap();
    warnings
        .iter()
        .filter(|w| w.contains(needle))
        .cloned()
        .collect()
}

/// The warnings logged in this test binary.
struct Warnings(std::sync::Mutex<Vec<String>>);

static WARNINGS: Warnings = Warnings(std::sync::Mutex::new(Vec::new()));

impl log::Log for Warnings {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let mut warnings = self.0.lock().unwrap_or_else(|e| e.into_inner());
            warnings.push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// `attention = "auto"` follows the attention into the graph, which ONNX Runtime cannot do:
/// the package still loads there and classifies (its self-test passes), and only zoom, which
/// needs the maps, is refused, naming the backend. Before, the whole package was refused, with
/// a message about a `backend.fallback` the user never set.
#[test]
fn auto_attention_classifies_on_onnx_runtime_and_only_zoom_is_refused() {
    let dir = common::repo().join("models/vit-mnist-canvas");
    let loaded = LoadedModel::load(&dir, &ort_backend_with(|_| {})).unwrap();
    assert_eq!(loaded.backend.name(), "ort");
    assert!(loaded.selftest.is_some(), "the self-test ran");
    assert!(loaded.backend.attention().is_empty());
    let zoom = edgevit::pipeline::VitOptions {
        zoom: Some(edgevit::interpret::zoom::ZoomConfig::default()),
        ..Default::default()
    };
    let error =
        match edgevit::pipeline::VitStage::new(&loaded.package, loaded.backend.as_ref(), &zoom) {
            Ok(_) => panic!("zoom without attention maps must be refused"),
            Err(e) => e.to_string(),
        };
    assert!(
        error.contains("no attention on the ort backend") && error.contains("only tract"),
        "{error}"
    );
}
