//! Preprocessing against tensors computed independently with Pillow, numpy and OpenCV
//! (tools/make_preprocess_fixtures.py wrote tests/fixtures/preprocess/).

mod common;

use edgevit::frame::PixelFormat;
use edgevit::model::{ColorOrder, InputSpec, ResizePolicy};
use edgevit::preprocess::{nv12_to_rgb, yuyv_to_rgb, Preprocess, Preprocessor};
use edgevit::tensor::Tensor;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Case {
    name: String,
    image: String,
    color: ColorOrder,
    width: usize,
    height: usize,
    resize: ResizePolicy,
    scale: f32,
    mean: Vec<f32>,
    std: Vec<f32>,
    expected: String,
}

#[derive(Deserialize)]
struct RawCase {
    format: String,
    width: u32,
    height: u32,
    file: String,
    expected: String,
}

fn fixtures() -> PathBuf {
    common::repo().join("tests/fixtures/preprocess")
}

#[test]
fn encoded_images_match_pillow_within_one_grey_level() {
    let cases: Vec<Case> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("cases.json")).unwrap())
            .unwrap();
    assert!(cases.len() >= 16);
    for case in cases {
        let spec = InputSpec {
            name: "input".into(),
            shape: [1, case.color.channels(), case.height, case.width],
            color: case.color,
            scale: case.scale,
            mean: case.mean.clone(),
            std: case.std.clone(),
            resize: case.resize,
            layout: Default::default(),
        };
        let bytes = std::fs::read(fixtures().join(&case.image)).unwrap();
        let tensor = Preprocessor::new(&spec)
            .prepare(&common::frame(bytes, 0, 0, PixelFormat::Encoded))
            .unwrap();
        let expected = Tensor::read_npy(&fixtures().join(&case.expected)).unwrap();
        assert_eq!(tensor.shape(), expected.shape(), "{}", case.name);
        // One grey level, in normalised units, per channel; JPEG decoders may differ by a few.
        let levels = if case.image.ends_with(".jpg") {
            3.0
        } else {
            1.0
        };
        let plane = case.width * case.height;
        for (c, (got, want)) in tensor
            .data()
            .chunks(plane)
            .zip(expected.data().chunks(plane))
            .enumerate()
        {
            let std = if case.std.len() > 1 {
                case.std[c]
            } else {
                case.std[0]
            };
            let tolerance = levels / (case.scale * std) + 1e-4;
            let worst = got
                .iter()
                .zip(want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                worst <= tolerance,
                "{} channel {c}: off by {worst} (> {tolerance})",
                case.name
            );
        }
    }
}

#[test]
fn camera_yuv_formats_match_opencv_within_one_level() {
    let cases: Vec<RawCase> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("raw_cases.json")).unwrap())
            .unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let raw = std::fs::read(fixtures().join(&case.file)).unwrap();
        let rgb = match case.format.as_str() {
            "yuyv" => yuyv_to_rgb(&raw, case.width, case.height),
            "nv12" => nv12_to_rgb(&raw, case.width, case.height),
            other => panic!("unknown format {other}"),
        };
        let expected = Tensor::read_npy(&fixtures().join(&case.expected)).unwrap();
        assert_eq!(
            expected.shape(),
            [case.height as usize, case.width as usize, 3]
        );
        assert_eq!(
            rgb.len(),
            expected.data().len(),
            "{}: the converter gave {} bytes for {}x{}",
            case.format,
            rgb.len(),
            case.width,
            case.height
        );
        let worst = rgb
            .iter()
            .zip(expected.data())
            .map(|(&a, &b)| (a as f32 - b).abs())
            .fold(0.0, f32::max);
        assert!(worst <= 1.0, "{}: off by {worst}", case.format);
    }
}

#[test]
fn raw_frames_of_every_format_reach_the_same_tensor() {
    // A 4x2 RGB image expressed in each raw format gives the same grey tensor as RGB itself.
    let rgb: Vec<u8> = (0..24).map(|i| (i * 10) as u8).collect();
    let bgr: Vec<u8> = rgb.chunks(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
    let spec = InputSpec {
        name: "input".into(),
        shape: [1, 3, 2, 4],
        color: ColorOrder::Bgr,
        scale: 1.0,
        mean: vec![],
        std: vec![],
        resize: ResizePolicy::Stretch,
        layout: Default::default(),
    };
    let mut pre = Preprocessor::new(&spec);
    let from_rgb = pre
        .prepare(&common::frame(rgb.clone(), 4, 2, PixelFormat::Rgb24))
        .unwrap();
    let from_bgr = pre
        .prepare(&common::frame(bgr, 4, 2, PixelFormat::Bgr24))
        .unwrap();
    assert_eq!(from_rgb, from_bgr);
    // BGR order: the first plane is the blue channel of the first pixel.
    assert_eq!(from_rgb.data()[0], rgb[2] as f32);
    let short = pre
        .prepare(&common::frame(vec![0; 5], 4, 2, PixelFormat::Yuyv))
        .unwrap_err();
    assert!(short.to_string().contains("needs 16 bytes"), "{short}");
}

#[test]
fn a_grey_ramp_in_every_raw_format_gives_the_tensor_of_its_rgb_form() {
    // Grey pixels are exact in every format: Y carries the level (BT.601 limited range), U and
    // V are neutral. So each format must give the RGB tensor, within the one level that the
    // limited-range round trip costs, for colour and for grey models alike.
    let (width, height) = (4u32, 2u32);
    let levels: Vec<u8> = (0..width * height).map(|i| (i * 36) as u8).collect();
    let luma: Vec<u8> = levels
        .iter()
        .map(|&g| (16.0 + 219.0 * g as f32 / 255.0).round() as u8)
        .collect();
    let rgb: Vec<u8> = levels.iter().flat_map(|&g| [g, g, g]).collect();
    let yuyv: Vec<u8> = luma
        .chunks(2)
        .flat_map(|pair| [pair[0], 128, pair[1], 128])
        .collect();
    let nv12: Vec<u8> = luma
        .iter()
        .copied()
        .chain(std::iter::repeat_n(128, (width * height / 2) as usize))
        .collect();
    let formats = [
        (PixelFormat::Rgb24, rgb.clone()),
        (PixelFormat::Bgr24, rgb.clone()),
        (PixelFormat::Gray8, levels.clone()),
        (PixelFormat::Yuyv, yuyv),
        (PixelFormat::Nv12, nv12),
    ];
    for color in [ColorOrder::Rgb, ColorOrder::Bgr, ColorOrder::Gray] {
        let spec = InputSpec {
            name: "input".into(),
            shape: [1, color.channels(), height as usize, width as usize],
            color,
            scale: 1.0,
            mean: vec![],
            std: vec![],
            resize: ResizePolicy::Stretch,
            layout: Default::default(),
        };
        let mut pre = Preprocessor::new(&spec);
        let reference = pre
            .prepare(&common::frame(
                rgb.clone(),
                width,
                height,
                PixelFormat::Rgb24,
            ))
            .unwrap();
        assert_eq!(reference.data().len(), rgb.len() / 3 * color.channels());
        for (format, bytes) in &formats {
            let tensor = pre
                .prepare(&common::frame(bytes.clone(), width, height, *format))
                .unwrap_or_else(|e| panic!("{format:?} as {color:?}: {e}"));
            assert_eq!(tensor.shape(), reference.shape(), "{format:?} as {color:?}");
            let worst = tensor
                .data()
                .iter()
                .zip(reference.data())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst <= 1.0, "{format:?} as {color:?}: off by {worst}");
        }
    }
}
