//! `cargo bench --bench kernels` (criterion): the preprocessing kernels and the post-processing
//! around the model, each beside the baseline it replaces or is compared with.
//!
//! - camera frame -> normalised 224x224 tensor: YUYV and NV12 at 720p and 1080p, the
//!   resample-then-convert path (`prepare_frame`) against the full conversion first
//!   (`decode` + `prepare_raster`, the baseline); MJPEG 1080p decoded in full (the baseline)
//!   and at reduced size; BGR24, and RGB24 for a grey model, converted whole first (the
//!   baseline) and resized first;
//! - attention rollout of a ViT-S/14-sized model (12 blocks, 6 heads, 257 tokens);
//! - gallery search over 10k exemplars of 512 numbers.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use edgevit::bench::frames::synthetic_frame;
use edgevit::frame::{Frame, PixelFormat};
use edgevit::gallery::index::FlatIndex;
use edgevit::interpret::rollout::rollout_row;
use edgevit::model::{ColorOrder, InputSpec, ResizePolicy};
use edgevit::preprocess::{Preprocess, Preprocessor};
use std::hint::black_box;

fn frame(width: u32, height: u32, format: PixelFormat) -> Frame {
    synthetic_frame(width, height, format).expect("a synthetic frame")
}

fn imagenet(resize: ResizePolicy) -> InputSpec {
    InputSpec {
        name: "input".into(),
        shape: [1, 3, 224, 224],
        color: ColorOrder::Rgb,
        scale: 255.0,
        mean: vec![0.485, 0.456, 0.406],
        std: vec![0.229, 0.224, 0.225],
        resize,
        layout: Default::default(),
    }
}

/// The baseline path: the whole frame decoded or converted, then resized.
fn convert_then_resize(pre: &mut Preprocessor, frame: &Frame) {
    let raster = pre.decode(frame).expect("decode");
    let prepared = pre.prepare_raster(&raster).expect("prepare");
    pre.recycle(black_box(prepared));
}

/// The pipeline's path; its buffers go back for the next frame, as the loop's workers hand
/// them back.
fn prepare(pre: &mut Preprocessor, frame: &Frame) {
    let prepared = pre.prepare_frame(frame).expect("prepare");
    pre.recycle(black_box(prepared));
}

fn preprocessing(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_to_224_tensor");
    let spec = imagenet(ResizePolicy::Stretch);
    for (format, w, h) in [
        (PixelFormat::Yuyv, 1280, 720),
        (PixelFormat::Yuyv, 1920, 1080),
        (PixelFormat::Nv12, 1920, 1080),
    ] {
        let input = frame(w, h, format);
        let label = format!("{}_{w}x{h}", format.name());
        let mut full = Preprocessor::new(&spec);
        group.bench_with_input(
            BenchmarkId::new("convert_then_resize", &label),
            &input,
            |b, f| b.iter(|| convert_then_resize(&mut full, f)),
        );
        let mut fast = Preprocessor::new(&spec);
        group.bench_with_input(
            BenchmarkId::new("resample_then_convert", &label),
            &input,
            |b, f| b.iter(|| prepare(&mut fast, f)),
        );
    }
    let yuyv = frame(1280, 720, PixelFormat::Yuyv);
    for policy in [ResizePolicy::CenterCrop, ResizePolicy::Letterbox] {
        let mut pre = Preprocessor::new(&imagenet(policy));
        group.bench_function(format!("yuyv_1280x720_{policy:?}"), |b| {
            b.iter(|| prepare(&mut pre, &yuyv))
        });
    }
    let rgb = frame(1920, 1080, PixelFormat::Rgb24);
    let mut pre = Preprocessor::new(&spec);
    group.bench_function("rgb24_1920x1080", |b| b.iter(|| prepare(&mut pre, &rgb)));
    let bgr = frame(1920, 1080, PixelFormat::Bgr24);
    group.bench_function("bgr24_1920x1080_swap_then_resize", |b| {
        b.iter(|| convert_then_resize(&mut pre, &bgr))
    });
    group.bench_function("bgr24_1920x1080_resize_then_swap", |b| {
        b.iter(|| prepare(&mut pre, &bgr))
    });
    let mjpeg = frame(1920, 1080, PixelFormat::Mjpeg);
    group.bench_function("mjpeg_1920x1080_full_decode", |b| {
        b.iter(|| convert_then_resize(&mut pre, &mjpeg))
    });
    group.bench_function("mjpeg_1920x1080_reduced_decode", |b| {
        b.iter(|| prepare(&mut pre, &mjpeg))
    });
    let mut thumb = Preprocessor::new(&InputSpec {
        shape: [1, 1, 28, 28],
        color: ColorOrder::Gray,
        ..imagenet(ResizePolicy::Stretch)
    });
    group.bench_function("mjpeg_1920x1080_to_28x28_full_decode", |b| {
        b.iter(|| convert_then_resize(&mut thumb, &mjpeg))
    });
    group.bench_function("mjpeg_1920x1080_to_28x28_reduced_decode", |b| {
        b.iter(|| prepare(&mut thumb, &mjpeg))
    });
    group.bench_function("rgb24_1920x1080_to_28x28_gray_luma_then_resize", |b| {
        b.iter(|| convert_then_resize(&mut thumb, &rgb))
    });
    group.bench_function("rgb24_1920x1080_to_28x28_gray_resize_then_luma", |b| {
        b.iter(|| prepare(&mut thumb, &rgb))
    });
    group.finish();
}

fn post_processing(c: &mut Criterion) {
    let (blocks, heads, tokens) = (12usize, 6usize, 257usize);
    let mut state = 1u32;
    let attention: Vec<Vec<f32>> = (0..blocks)
        .map(|_| {
            let mut data: Vec<f32> = (0..heads * tokens * tokens)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (state >> 8) as f32 / (1u32 << 24) as f32
                })
                .collect();
            for row in data.chunks_exact_mut(tokens) {
                let sum: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= sum);
            }
            data
        })
        .collect();
    let views: Vec<(&[f32], usize)> = attention.iter().map(|a| (a.as_slice(), heads)).collect();
    c.bench_function("rollout_vit_s_12x6x257", |b| {
        b.iter(|| black_box(rollout_row(&views, tokens)))
    });

    let dim = 512;
    let mut index = FlatIndex::new(dim);
    let vector = |seed: usize| -> Vec<f32> {
        let v: Vec<f32> = (0..dim)
            .map(|i| (((seed * 31 + i * 17) % 1000) as f32 / 500.0) - 1.0)
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect()
    };
    for row in 0..10_000 {
        index.push((row / 20) as i64, row as i64, &vector(row));
    }
    let query = vector(123_457);
    c.bench_function("gallery_search_10k_x_512", |b| {
        b.iter(|| black_box(index.best(&query)))
    });
}

criterion_group!(benches, preprocessing, post_processing);
criterion_main!(benches);
