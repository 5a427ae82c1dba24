//! `cargo bench --bench inference`: median latencies of inference and of the attention
//! stages, with ratios against a baseline measured in the same run (these machines are shared
//! and noisy). Preprocessing is in `benches/kernels.rs`.
//!
//! Baseline: the f32 ViT-Tiny for inference.

use edgevit::backend::{BackendConfig, TractConfig};
use edgevit::bench::frames::synthetic_frame;
use edgevit::bench::{measure, synthetic_input};
use edgevit::frame::PixelFormat;
use edgevit::pipeline::LoadedModel;
use edgevit::preprocess::{Preprocess, Preprocessor};
use std::path::Path;
use std::time::Instant;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn bench_inference() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut baseline = None;
    for threads in [1, 2] {
        for name in ["vit-tiny-f32", "vit-tiny-int8", "vit-mnist"] {
            let dir = root.join(name);
            if !dir.exists() {
                println!("{name}: not present, skipped");
                continue;
            }
            let config = BackendConfig::Tract(TractConfig {
                threads,
                ..Default::default()
            });
            let mut model = match LoadedModel::load(&dir, &config) {
                Ok(m) => m,
                Err(e) => {
                    println!("{name}: cannot load: {}", edgevit::error::Report(&e));
                    continue;
                }
            };
            let input = synthetic_input(model.package.manifest.input.shape);
            let never = std::sync::atomic::AtomicBool::new(false);
            match measure(model.backend.as_mut(), &input, 3, 20, &never) {
                Ok(None) => {}
                Ok(Some(t)) => {
                    let base = *baseline.get_or_insert(t.median_ms);
                    println!(
                        "tract {name} threads={threads}: median {:.2} ms, p90 {:.2} ms ({:.2}x vit-tiny-f32 1 thread)",
                        t.median_ms,
                        t.p90_ms,
                        t.median_ms / base
                    );
                }
                Err(e) => println!("{name}: {e}"),
            }
        }
    }
}

/// The cost of the ViT-aware stages on DINOv2 ViT-S/14 (../shared), against its inference:
/// the rollout, the last block's map, the zoom box, and the whole second pass.
fn bench_attention() {
    let shared = std::env::var_os("EDGEVIT_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let onnx = shared.join("reference/dinov2-s-focus/vit_s_focus.onnx");
    if !onnx.exists() {
        println!("attention: {} not present, skipped", onnx.display());
        return;
    }
    let dir = std::env::temp_dir().join(format!("edgevit-bench-dino-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let manifest = format!(
        "name = \"dinov2-s-focus\"\ntask = \"reid\"\nonnx = \"{}\"\n[input]\nname = \"input_image\"\n\
         shape = [1, 3, 224, 224]\ncolor = \"rgb\"\nmean = [0.485, 0.456, 0.406]\nstd = [0.229, 0.224, 0.225]\n\
         [outputs]\nembedding = \"output_importance\"\nattention = \"auto\"\n",
        onnx.display()
    );
    std::fs::write(dir.join("model.toml"), manifest).expect("manifest");
    let package = edgevit::model::ModelPackage::open(&dir).expect("package");
    let mut backend =
        edgevit::backend::open(&package, &BackendConfig::default()).expect("DINOv2 loads");
    let stage_with = |map| {
        let options = edgevit::pipeline::VitOptions {
            attention: edgevit::interpret::AttentionConfig { map, layers: None },
            zoom: Some(Default::default()),
            ..Default::default()
        };
        edgevit::pipeline::VitStage::new(&package, backend.as_ref(), &options)
            .expect("stage")
            .expect("zoom asked for")
    };
    let rollout = stage_with(edgevit::interpret::rollout::MapKind::Rollout);
    let last = stage_with(edgevit::interpret::rollout::MapKind::Last);
    let (w, h) = (800u32, 600u32);
    let frame = synthetic_frame(w, h, PixelFormat::Rgb24).expect("a synthetic frame");
    let mut pre = Preprocessor::new(&package.manifest.input);
    let raster = pre.decode(&frame).expect("decode");
    let prepared = pre.prepare_raster(&raster).expect("prepare");
    let time = |f: &mut dyn FnMut()| {
        f();
        median(
            (0..10)
                .map(|_| {
                    let start = Instant::now();
                    f();
                    start.elapsed().as_secs_f64() * 1e3
                })
                .collect(),
        )
    };
    let mut outputs = None;
    let infer = time(&mut || outputs = Some(backend.run(&prepared.tensor).expect("runs")));
    let outputs = outputs.expect("outputs");
    let map_rollout = time(&mut || {
        rollout.map(&outputs).expect("map");
    });
    let map_last = time(&mut || {
        last.map(&outputs).expect("map");
    });
    let map = rollout.map(&outputs).expect("map");
    let config = edgevit::interpret::ZoomConfig::default();
    let boxing = time(&mut || {
        let (b, _) = edgevit::interpret::zoom::region(
            &map,
            rollout.layout(),
            &prepared.placement,
            (w, h),
            &config,
        );
        edgevit::interpret::zoom::crop(b, (w, h), 1.0, &config);
    });
    let (b, _) = edgevit::interpret::zoom::region(
        &map,
        rollout.layout(),
        &prepared.placement,
        (w, h),
        &config,
    );
    // The second pass over the square crop (the default) and over the box crop (before).
    let boxed = edgevit::interpret::ZoomConfig {
        crop_shape: edgevit::interpret::zoom::CropShape::Box,
        ..config.clone()
    };
    let mut second_over = |config: &edgevit::interpret::ZoomConfig| {
        let c = edgevit::interpret::zoom::crop(b, (w, h), 1.0, config);
        time(&mut || {
            let (i, pad) = (c.inside, c.pad);
            let crop = raster.crop(i.x0, i.y0, i.x1, i.y1).padded(pad);
            let next = pre.prepare_raster(&crop).expect("prepare");
            backend.run(&next.tensor).expect("runs");
        })
    };
    let second = second_over(&config);
    let second_box = second_over(&boxed);
    println!("DINOv2 ViT-S/14, 1 thread, 800x600 frame (medians of 10):");
    println!("  first pass inference (12 attention maps as outputs): {infer:.2} ms (1.00x)");
    println!(
        "  rollout over 12 blocks: {map_rollout:.3} ms ({:.3}x)",
        map_rollout / infer
    );
    println!(
        "  last block's map: {map_last:.3} ms ({:.3}x)",
        map_last / infer
    );
    println!(
        "  zoom box and crop: {boxing:.3} ms ({:.4}x)",
        boxing / infer
    );
    println!(
        "  second pass (square crop, preprocess, inference): {second:.2} ms ({:.2}x)",
        second / infer
    );
    println!(
        "  second pass over the box crop instead: {second_box:.2} ms ({:.2}x)",
        second_box / infer
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    // `cargo test --benches` runs this binary with no `--bench` flag: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    bench_inference();
    bench_attention();
}
