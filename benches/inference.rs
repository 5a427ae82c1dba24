//! `cargo bench`: median latencies of preprocessing and inference, with ratios against a
//! baseline measured in the same run (these machines are shared and noisy).
//!
//! Baselines: the f32 ViT-Tiny for inference, stretch resizing for preprocessing.

use edgevit::backend::{BackendConfig, TractConfig};
use edgevit::bench::{measure, synthetic_input};
use edgevit::frame::{Frame, FrameMeta, PixelFormat};
use edgevit::model::{ColorOrder, InputSpec, ResizePolicy};
use edgevit::pipeline::LoadedModel;
use edgevit::preprocess::{Preprocess, Preprocessor};
use std::path::Path;
use std::time::{Instant, SystemTime};

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn bench_preprocessing() {
    let (w, h) = (1280u32, 720u32);
    let frame = Frame {
        meta: FrameMeta {
            seq: 0,
            captured_at: SystemTime::now(),
            source: "bench".into(),
            camera: "cam0".into(),
            path: None,
            width: w,
            height: h,
            format: PixelFormat::Yuyv,
        },
        data: (0..w * h * 2).map(|i| (i % 251) as u8).collect(),
    };
    let mut baseline = None;
    for policy in [
        ResizePolicy::Stretch,
        ResizePolicy::CenterCrop,
        ResizePolicy::Letterbox,
    ] {
        let spec = InputSpec {
            name: "input".into(),
            shape: [1, 3, 224, 224],
            color: ColorOrder::Rgb,
            scale: 255.0,
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
            resize: policy,
        };
        let mut pre = Preprocessor::new(&spec);
        let samples: Vec<f64> = (0..30)
            .map(|_| {
                let start = Instant::now();
                let _ = pre.prepare(&frame);
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        let m = median(samples);
        let base = *baseline.get_or_insert(m);
        println!(
            "preprocess yuyv 1280x720 -> 224x224 {policy:?}: median {m:.3} ms ({:.2}x stretch)",
            m / base
        );
    }
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
            let config = BackendConfig::Tract(TractConfig { threads });
            let mut model = match LoadedModel::load(&dir, &config) {
                Ok(m) => m,
                Err(e) => {
                    println!("{name}: cannot load: {e}");
                    continue;
                }
            };
            let input = synthetic_input(model.package.manifest.input.shape);
            match measure(model.backend.as_mut(), &input, 3, 20) {
                Ok(t) => {
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

fn main() {
    // `cargo test --benches` runs this binary with no `--bench` flag: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    bench_preprocessing();
    bench_inference();
}
