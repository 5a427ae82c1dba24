//! A real detector (CenterNet MobileNetV3 trained on COCO) through the bundled package
//! `models/centernet-coco`: it finds the people in the reference
//! photos where a person drew them, tract agrees with ONNX Runtime, and bad packages or
//! settings are refused with clear errors.

mod common;

use edgevit::backend::{self, BackendConfig};
use edgevit::detect::{Decoder, DetectOverrides};
use edgevit::model::ModelPackage;
use edgevit::preprocess::{Preprocess, Preprocessor};
use std::path::Path;

/// The person in each photo, boxed by hand (frame pixels, x1/y1 exclusive).
const PEOPLE: [(&str, [f64; 4]); 2] = [
    ("astronaut.png", [18.0, 14.0, 365.0, 512.0]),
    ("grace_hopper.bmp", [12.0, 20.0, 512.0, 600.0]),
];

/// The best-scoring person of an `infer` line, and its box.
fn best_person(line: &serde_json::Value) -> Option<([f64; 4], f64)> {
    line["objects"]
        .as_array()?
        .iter()
        .find(|o| o["label"] == "person")
        .map(|o| {
            let b: Vec<f64> = o["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            ([b[0], b[1], b[2], b[3]], o["score"].as_f64().unwrap())
        })
}

#[test]
fn the_detector_finds_the_people_in_the_photos() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let package = common::centernet_package(tmp.path(), |_| {});
    let images: Vec<String> = PEOPLE
        .iter()
        .map(|(name, _)| {
            shared
                .join("reference/images")
                .join(name)
                .display()
                .to_string()
        })
        .collect();
    let draw = tmp.path().join("drawn");
    let mut args = vec![
        "infer",
        "--model",
        package.to_str().unwrap(),
        "--draw",
        draw.to_str().unwrap(),
    ];
    args.extend(images.iter().map(String::as_str));
    let output = common::edgevit(&args);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let lines = common::json_lines(&output);
    assert_eq!(lines.len(), 2);
    for ((name, truth), line) in PEOPLE.iter().zip(&lines) {
        assert_eq!(line["task"], "detect");
        let (found, score) =
            best_person(line).unwrap_or_else(|| panic!("no person in {name}: {line}"));
        let overlap = common::iou(found, *truth);
        eprintln!(
            "{name}: person {score:.3} at {found:?}, IoU {overlap:.3} with the hand-drawn box"
        );
        assert!(overlap >= 0.5, "{name}: IoU {overlap}");
        // Best first, and every box inside the frame.
        let objects = line["objects"].as_array().unwrap();
        let scores: Vec<f64> = objects
            .iter()
            .map(|o| o["score"].as_f64().unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert!(draw
            .join(Path::new(name).with_extension("png").file_name().unwrap())
            .exists());
    }
}

/// The anchor format on real weights (MediaPipe's BlazeFace): one face in each person's
/// photo where a person drew it, both eyes inside it, and none on the cat.
#[test]
fn the_face_detector_finds_the_faces_with_their_key_points() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let package = common::blazeface_package(tmp.path());
    let faces = [
        ("astronaut.png", Some([175.0, 75.0, 280.0, 185.0])),
        ("grace_hopper.bmp", Some([165.0, 130.0, 370.0, 345.0])),
        ("chelsea.png", None),
    ];
    let mut args = vec![
        "infer".to_string(),
        "--model".into(),
        package.display().to_string(),
    ];
    args.extend(faces.iter().map(|(name, _)| {
        shared
            .join("reference/images")
            .join(name)
            .display()
            .to_string()
    }));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = common::edgevit(&args);
    assert!(output.status.success(), "{}", common::stderr(&output));
    for ((name, truth), line) in faces.iter().zip(common::json_lines(&output)) {
        let objects = line["objects"].as_array().unwrap();
        let Some(truth) = truth else {
            assert!(objects.is_empty(), "{name}: {objects:?}");
            continue;
        };
        assert_eq!(objects.len(), 1, "{name}: {objects:?}");
        let face = &objects[0];
        let b: Vec<f64> = face["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let overlap = common::iou([b[0], b[1], b[2], b[3]], *truth);
        let score = face["score"].as_f64().unwrap();
        eprintln!("{name}: face {score:.3} at {b:?}, IoU {overlap:.3} with the hand-drawn box");
        assert!(score >= 0.9 && overlap >= 0.5, "{name}: {face}");
        let keypoints = face["keypoints"].as_array().unwrap();
        assert_eq!(keypoints.len(), 6);
        for eye in &keypoints[..2] {
            let (x, y) = (eye[0].as_f64().unwrap(), eye[1].as_f64().unwrap());
            assert!(
                x > b[0] && x < b[2] && y > b[1] && y < b[3],
                "{name}: eye {eye} outside {b:?}"
            );
        }
    }
}

/// The model was trained on square inputs: a tall frame letterboxed keeps the person's shape;
/// stretched, it is squeezed. Both measured on a portrait made by padding a photo.
#[test]
fn letterbox_and_stretch_are_measured_on_a_portrait() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let person = image::open(shared.join("reference/images/astronaut.png"))
        .unwrap()
        .to_rgb8();
    // 512x1100: the photo at the top of a grey column, like a door camera's frame.
    let mut portrait = image::RgbImage::from_pixel(512, 1100, image::Rgb([120, 120, 120]));
    image::imageops::replace(&mut portrait, &person, 0, 300);
    let path = tmp.path().join("portrait.png");
    portrait.save(&path).unwrap();
    let truth = [18.0, 314.0, 365.0, 812.0];
    let mut results = Vec::new();
    for policy in ["letterbox", "stretch"] {
        let package = common::centernet_package(&tmp.path().join(policy), |m| {
            common::table(m, "input").insert("resize".into(), policy.into());
        });
        let output = common::edgevit(&[
            "infer",
            "--model",
            package.to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", common::stderr(&output));
        let found = best_person(&common::json_lines(&output)[0]);
        let overlap = found.map_or(0.0, |(b, _)| common::iou(b, truth));
        eprintln!("{policy}: {found:?}, IoU {overlap:.3}");
        results.push(overlap);
    }
    assert!(results[0] >= 0.5, "letterboxed: IoU {}", results[0]);
}

/// Decodes a package's detections on one photo with the given backend.
fn detections(package: &ModelPackage, config: &BackendConfig, photo: &Path) -> Vec<Vec<f32>> {
    let mut backend =
        backend::open(package, config).unwrap_or_else(|e| panic!("{}", edgevit::error::chain(&e)));
    let mut preprocess = Preprocessor::new(&package.manifest.input);
    let image = image::open(photo).unwrap().to_rgb8();
    let input = preprocess.prepare(&common::rgb_frame(&image)).unwrap();
    assert_eq!(input.shape(), [1, 512, 512, 3]);
    let outputs = backend.run(&input).unwrap();
    let boxes = outputs.get("tower_0/detections").unwrap();
    assert_eq!(boxes.shape(), [1, 100, 6]);
    boxes.data().chunks_exact(6).map(<[f32]>::to_vec).collect()
}

/// tract and ONNX Runtime give the same boxes and scores on every reference photo (the rows
/// that pass a threshold of 0.1; below it the order of near-equal scores may differ).
#[cfg(feature = "ort")]
#[test]
fn tract_and_onnx_runtime_agree_on_the_detector() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let package = ModelPackage::open(&common::centernet_package(tmp.path(), |_| {})).unwrap();
    let ort = BackendConfig::Ort(edgevit::backend::OrtConfig {
        library: Some(common::ort_library()),
        ..Default::default()
    });
    let (mut worst_box, mut worst_score, mut rows) = (0f32, 0f32, 0);
    for entry in std::fs::read_dir(shared.join("reference/images")).unwrap() {
        let photo = entry.unwrap().path();
        let ours = detections(&package, &BackendConfig::default(), &photo);
        let theirs = detections(&package, &ort, &photo);
        let kept = |rows: &[Vec<f32>]| {
            rows.iter()
                .filter(|r| r[4] >= 0.1)
                .cloned()
                .collect::<Vec<_>>()
        };
        let (ours, theirs) = (kept(&ours), kept(&theirs));
        assert_eq!(ours.len(), theirs.len(), "{}", photo.display());
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a[5], b[5], "class, {}", photo.display());
            worst_box = (0..4)
                .map(|i| (a[i] - b[i]).abs())
                .fold(worst_box, f32::max);
            worst_score = worst_score.max((a[4] - b[4]).abs());
            rows += 1;
        }
    }
    eprintln!("tract vs ONNX Runtime: {rows} detections, worst box difference {worst_box:.4} px, worst score difference {worst_score:.2e}");
    assert!(rows >= 7, "at least one object per photo");
    assert!(
        worst_box < 0.5 && worst_score < 1e-3,
        "{worst_box} px, {worst_score}"
    );
}

/// The bundled ONNX file, which this project's converter made from the TF.js weights
/// (tools/tfjs_detector.py: the trunk in NCHW, float16 weights cast in the graph), gives the
/// same detections as the reference conversion in `shared` (NHWC with transposes, float32
/// weights) on every photo, through tract.
#[test]
fn the_bundled_conversion_equals_the_reference_conversion() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let ours = ModelPackage::open(&common::centernet_package(tmp.path(), |_| {})).unwrap();
    let reference = common::centernet_package(&tmp.path().join("reference"), |m| {
        let onnx = shared.join("reference/centernet/centernet_mbv3_coco.onnx");
        m.insert("onnx".into(), onnx.display().to_string().into());
        m.remove("selftest");
    });
    let reference = ModelPackage::open(&reference).unwrap();
    let mut worst = 0f32;
    for entry in std::fs::read_dir(shared.join("reference/images")).unwrap() {
        let photo = entry.unwrap().path();
        let a = detections(&ours, &BackendConfig::default(), &photo);
        let b = detections(&reference, &BackendConfig::default(), &photo);
        for (x, y) in a.iter().zip(&b).filter(|(x, _)| x[4] >= 0.1) {
            assert_eq!(x[5], y[5], "{}", photo.display());
            worst = x
                .iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .fold(worst, f32::max);
        }
    }
    eprintln!("our conversion against the reference, through tract: worst difference {worst:e}");
    assert!(worst < 0.01, "{worst}");
}

#[test]
fn bad_detector_packages_and_settings_are_refused_clearly() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let image = shared.join("reference/images/coffee.png");
    // `infer` on the package edited by `edit`, with `flags`, fails naming each of `needles`.
    let refused =
        |name: &str, flags: &[&str], edit: &dyn Fn(&mut toml::Table), needles: &[&str]| {
            let package = common::centernet_package(&tmp.path().join(name), edit);
            let mut args = vec!["infer", "--model", package.to_str().unwrap()];
            args.extend_from_slice(flags);
            args.push(image.to_str().unwrap());
            common::assert_clean_failure(&common::edgevit(&args), needles);
        };
    // The heat map named as the boxes: the wrong shape, refused at load.
    refused(
        "wrong",
        &[],
        &|m| {
            common::table(m, "outputs").insert("detections".into(), "tower_0/keypoints".into());
            m.remove("selftest");
        },
        &["tower_0/keypoints", "[1, N, 6]"],
    );
    // A label the model does not have.
    refused(
        "unknown",
        &[],
        &|m| {
            common::table(m, "detect")
                .insert("classes".into(), toml::Value::Array(vec!["persn".into()]));
        },
        &["\"persn\"", "person"],
    );
    // No [detect] table.
    refused("bare", &[], &|m| drop(m.remove("detect")), &["[detect]"]);
    // A ViT flag on a detector.
    refused("zoom", &["--zoom"], &|_| {}, &["--zoom"]);
}

/// A YOLO head written here (`[1, 4 + 2, 3]`: cx, cy, w, h in input pixels, then two class
/// scores) through the real backend: the overlapping weaker box of a class is suppressed, the
/// other class's box stays, and both map back to frame pixels (a 128x128 image stretched to the
/// 64x64 input: everything doubles).
#[test]
fn a_yolo_head_is_decoded_suppressed_and_mapped() {
    use common::graph::{self, Size};
    use tract_onnx::pb::{attribute_proto, AttributeProto, GraphProto};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("yolo");
    std::fs::create_dir_all(&dir).unwrap();
    // Anchor by anchor: (cx, cy, w, h, score of class 0, score of class 1).
    let anchors = [
        [20.0, 20.0, 10.0, 10.0, 0.05, 0.9],
        [21.0, 20.0, 10.0, 10.0, 0.05, 0.8],
        [50.0, 50.0, 8.0, 8.0, 0.6, 0.1],
    ];
    let head: Vec<f32> = (0..6).flat_map(|v| anchors.map(|a| a[v])).collect();
    let keepdims = AttributeProto {
        name: "keepdims".into(),
        r#type: attribute_proto::AttributeType::Int as i32,
        i: 1,
        ..Default::default()
    };
    // The head does not depend on the pixels, but flows from the input as a real one does.
    graph::write(
        &dir.join("yolo.onnx"),
        GraphProto {
            name: "yolo_head".into(),
            input: vec![graph::tensor(
                "x",
                vec![Size(1), Size(3), Size(64), Size(64)],
            )],
            initializer: vec![
                tract_onnx::pb::TensorProto {
                    name: "shape".into(),
                    dims: vec![3],
                    data_type: 7,
                    int64_data: vec![1, 1, 1],
                    ..Default::default()
                },
                graph::constant("zero", vec![1, 1, 1], 1, vec![0.0]),
                graph::constant("anchors", vec![1, 6, 3], 1, head),
            ],
            node: vec![
                graph::node("ReduceMean", &["x"], "mean", vec![keepdims]),
                graph::node("Reshape", &["mean", "shape"], "flat", vec![]),
                graph::node("Mul", &["flat", "zero"], "nothing", vec![]),
                graph::node("Add", &["nothing", "anchors"], "head", vec![]),
            ],
            output: vec![graph::tensor("head", vec![Size(1), Size(6), Size(3)])],
            ..Default::default()
        },
    );
    std::fs::write(dir.join("labels.txt"), "cat\ndog\n").unwrap();
    std::fs::write(
        dir.join("model.toml"),
        "name = \"yolo-head\"\ntask = \"detect\"\nonnx = \"yolo.onnx\"\nlabels = \"labels.txt\"\n\
         [input]\nname = \"x\"\nshape = [1, 3, 64, 64]\ncolor = \"rgb\"\n\
         [outputs]\ndetections = \"head\"\n[detect]\nformat = \"yolo\"\nmin_score = 0.25\n",
    )
    .unwrap();
    let image = tmp.path().join("frame.png");
    image::RgbImage::new(128, 128).save(&image).unwrap();
    let output = common::edgevit(&[
        "infer",
        "--model",
        dir.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let line = &common::json_lines(&output)[0];
    let objects = line["objects"].as_array().unwrap();
    let found: Vec<(String, Vec<u64>)> = objects
        .iter()
        .map(|o| {
            let b = o["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            (o["label"].as_str().unwrap().to_string(), b)
        })
        .collect();
    assert_eq!(
        found,
        [
            ("dog".to_string(), vec![30, 30, 50, 50]),
            ("cat".to_string(), vec![92, 92, 108, 108])
        ],
        "{line}"
    );
}

/// A scene's configuration mistakes (an unknown label, a zone without an inside, a tracker
/// that could never report, a detector that is not one) are named by `check` (exit 1) and
/// refused by `run` before any frame (exit 2), never a panic.
#[test]
fn bad_scene_configurations_are_named_by_check_and_refused_by_run() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let detector = common::centernet_package(tmp.path(), |_| {});
    let images = shared.join("reference/images");
    let base = format!(
        "[source]\nkind = \"image-dir\"\npath = \"{}\"\n[model]\npath = \"{}\"\n",
        images.display(),
        detector.display()
    );
    let cases = [
        ("[detect]\nclasses = [\"persn\"]\n", "\"persn\""),
        (
            "[[zones]]\nname = \"porch\"\ncamera = \"cam0\"\npoints = [[0, 0], [5, 5]]\n",
            "porch",
        ),
        ("[tracker]\nmin_hits = 0\n", "tracker.min_hits"),
        (
            &format!(
                "[detector]\npath = \"{}\"\n",
                common::default_model().display()
            ),
            "detector",
        ),
    ];
    for (i, (extra, needle)) in cases.iter().enumerate() {
        let config = tmp.path().join(format!("bad-{i}.toml"));
        std::fs::write(&config, format!("{base}{extra}")).unwrap();
        let checked = common::edgevit(&["check", "--config", config.to_str().unwrap()]);
        let report = String::from_utf8_lossy(&checked.stdout);
        assert_eq!(checked.status.code(), Some(1), "check, case {i}: {report}");
        assert!(
            report.contains("FAIL") && report.contains(needle),
            "check, case {i}: {report}"
        );
        let ran = common::edgevit(&["run", "--config", config.to_str().unwrap()]);
        assert_eq!(ran.status.code(), Some(2), "run, case {i}");
        common::assert_clean_failure(&ran, &[needle]);
        assert!(ran.stdout.is_empty(), "no frame was processed, case {i}");
    }
}

/// 500 boxes in a frame (a noisy scene, a threshold too low): at most `max_objects` come
/// out, best first, inside the frame, without a panic.
#[test]
fn five_hundred_detections_are_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::centernet_package(tmp.path(), |m| {
        common::table(m, "detect").insert("max_objects".into(), 20.into());
    });
    let package = ModelPackage::open(&dir).unwrap();
    let decoder = Decoder::new(&package, &DetectOverrides::default()).unwrap();
    let rows: Vec<f32> = (0..500)
        .flat_map(|i| {
            let x = (i % 25) as f32 * 20.0 - 10.0;
            let y = (i / 25) as f32 * 25.0 - 10.0;
            [
                x,
                y,
                x + 30.0,
                y + 40.0,
                0.3 + (i % 7) as f32 * 0.1,
                (i % 80) as f32,
            ]
        })
        .collect();
    let tensor = edgevit::tensor::Tensor::new(vec![1, 500, 6], rows).unwrap();
    let outputs = edgevit::backend::Outputs::new(vec![("tower_0/detections".into(), tensor)]);
    let placement =
        edgevit::preprocess::Placement::new(package.manifest.input.resize, 1920, 1080, 512, 512);
    let objects = decoder.objects(&outputs, &placement, (1920, 1080)).unwrap();
    assert_eq!(objects.len(), 20);
    assert!(objects.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(objects
        .iter()
        .all(|o| o.bounds.x1 <= 1920 && o.bounds.y1 <= 1080 && o.bounds.x0 < o.bounds.x1));
    // Wrong shapes at run time are errors, not panics.
    let short = edgevit::tensor::Tensor::new(vec![1, 3, 5], vec![0.0; 15]).unwrap();
    let outputs = edgevit::backend::Outputs::new(vec![("tower_0/detections".into(), short)]);
    assert!(decoder.objects(&outputs, &placement, (1920, 1080)).is_err());
    let _ = Preprocessor::new(&package.manifest.input)
        .decode(&common::rgb_frame(&image::RgbImage::new(4, 4)));
}
