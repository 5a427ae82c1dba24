//! Backends compute only the outputs that something reads: the attention maps of a ViT are
//! left out unless zoom or parts use them, on tract and on ONNX Runtime, and come back when a
//! reload turns zoom on.

mod common;

use edgevit::backend::{self, BackendConfig, InferenceBackend};
use edgevit::interpret::zoom::ZoomConfig;
use edgevit::model::ModelPackage;
use edgevit::pipeline::{LoadedModel, Pipeline, VitOptions};
use edgevit::preprocess::{Preprocess, Preprocessor};
use edgevit::tensor::Tensor;

/// vit-mnist-canvas: a classifier whose 6 attention maps tract finds (`attention = "auto"`).
fn canvas() -> std::path::PathBuf {
    common::repo().join("models/vit-mnist-canvas")
}

fn sample_frame() -> edgevit::frame::Frame {
    let path = std::fs::read_dir(canvas().join("samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    common::rgb_frame(&image::open(&path).unwrap().to_rgb8())
}

fn names(outputs: &backend::Outputs) -> Vec<String> {
    outputs.names().map(str::to_string).collect()
}

/// Narrowing to the logits gives the same logits and nothing else; naming every output again
/// brings the attention back, equal to the first run's; an unknown name is refused and the
/// outputs stay as they were.
fn narrows_and_restores(backend: &mut dyn InferenceBackend, input: &Tensor, loaded: &[String]) {
    let full = backend.run(input).unwrap();
    assert_eq!(names(&full), loaded);

    backend.keep_outputs(&["logits".to_string()]).unwrap();
    let narrow = backend.run(input).unwrap();
    assert_eq!(names(&narrow), ["logits"]);
    assert_eq!(narrow.get("logits"), full.get("logits"));

    let error = backend
        .keep_outputs(&["logits".to_string(), "no_such_tensor".to_string()])
        .unwrap_err()
        .to_string();
    assert!(error.contains("no_such_tensor"), "{error}");
    assert_eq!(names(&backend.run(input).unwrap()), ["logits"]);

    backend.keep_outputs(loaded).unwrap();
    let again = backend.run(input).unwrap();
    assert_eq!(names(&again), loaded);
    for name in loaded {
        assert_eq!(again.get(name), full.get(name), "{name}");
    }
}

#[test]
fn tract_leaves_out_the_attention_nothing_reads() {
    let package = ModelPackage::open(&canvas()).unwrap();
    let mut backend = backend::open(&package, &BackendConfig::default()).unwrap();
    let attention: Vec<String> = backend.attention().iter().map(|a| a.name.clone()).collect();
    assert_eq!(attention.len(), 6, "{attention:?}");
    let loaded: Vec<String> = std::iter::once("logits".to_string())
        .chain(attention)
        .collect();
    let input = Preprocessor::new(&package.manifest.input)
        .prepare_frame(&sample_frame())
        .unwrap()
        .tensor;
    narrows_and_restores(backend.as_mut(), &input, &loaded);
}

/// ONNX Runtime returns graph outputs only: the vit-tiny package names its 12 attention maps.
#[cfg(feature = "ort")]
#[test]
fn onnx_runtime_leaves_out_the_attention_nothing_reads() {
    let package = ModelPackage::open(&common::repo().join("models/vit-tiny-qdq")).unwrap();
    let config: BackendConfig = toml::from_str(&format!(
        "kind = \"ort\"\nlibrary = \"{}\"",
        common::ort_library().display()
    ))
    .unwrap();
    let mut backend = backend::open(&package, &config).unwrap();
    let loaded = package.manifest.outputs.owned_graph_names();
    assert_eq!(loaded.len(), 13, "{loaded:?}");
    let input = Tensor::new(vec![1, 3, 224, 224], vec![0.25; 3 * 224 * 224]).unwrap();
    narrows_and_restores(backend.as_mut(), &input, &loaded);
}

/// The loop asks for the attention only while zoom is on: a frame classified without it has
/// no region, one after a reload that turns zoom on has one, and turning it off again works.
#[test]
fn a_reload_that_turns_zoom_on_brings_the_attention_back() {
    let tmp = tempfile::tempdir().unwrap();
    let model = LoadedModel::load(&canvas(), &BackendConfig::default()).unwrap();
    let source = Box::new(edgevit::source::ImageListSource::new(
        Vec::new(),
        "none".into(),
    ));
    let sink = Box::new(edgevit::sink::JsonLinesSink::append_to(&tmp.path().join("out")).unwrap());
    let plain = VitOptions::default();
    let mut pipeline = Pipeline::new(model, &Default::default(), &plain, source, sink).unwrap();
    let frame = sample_frame();
    let record = |pipeline: &mut Pipeline| {
        let records = pipeline.process_frame(&frame);
        assert_eq!(records.len(), 1);
        serde_json::to_value(&records[0]).unwrap()
    };

    let first = record(&mut pipeline);
    assert!(first["top"].is_array(), "{first}");
    assert!(first.get("region").is_none(), "{first}");

    let zoom = VitOptions {
        zoom: Some(ZoomConfig::default()),
        ..VitOptions::default()
    };
    pipeline.reconfigure(&Default::default(), &zoom).unwrap();
    let zoomed = record(&mut pipeline);
    assert_eq!(
        zoomed["region"]["box"].as_array().map(Vec::len),
        Some(4),
        "{zoomed}"
    );
    assert_eq!(
        zoomed["passes"].as_array().map(Vec::len),
        Some(2),
        "{zoomed}"
    );

    pipeline.reconfigure(&Default::default(), &plain).unwrap();
    let last = record(&mut pipeline);
    assert!(last.get("region").is_none(), "{last}");
    assert_eq!(last["top"], first["top"]);
}
