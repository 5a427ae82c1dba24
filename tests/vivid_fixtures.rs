//! edgevit's decoder against raw frames recorded from the Linux `vivid` virtual camera driver
//! (tests/fixtures/vivid/, recorded with tools/vivid-vm/record-fixtures.sh; see the README.md
//! there): 320x180, 75% colour bars, no OSD text, in YUYV, NV12, GREY, RGB24 and BGR24.
//!
//! The eight bars are 40 pixels wide and perfectly uniform in every format (no transitions at
//! the edges, chroma pairs never straddle two bars), so every pixel of the decoded frame is
//! checked against the colour of its bar, not only the bar centres.

mod common;

use edgevit::frame::{Frame, PixelFormat};
use edgevit::model::ColorOrder;
use edgevit::preprocess::{decode, Raster};
use std::path::PathBuf;

const WIDTH: u32 = 320;
const HEIGHT: u32 = 180;
const BAR_WIDTH: u32 = WIDTH / 8;

/// 75% of full scale, the amplitude of vivid's default "75% Colorbar" pattern (sRGB, 0.75 of
/// the non-linear value): round(0.75 * 255).
const A: u8 = 191;

/// Left to right: white, yellow, cyan, green, magenta, red, blue, black.
const BARS: [(&str, [u8; 3]); 8] = [
    ("white", [A, A, A]),
    ("yellow", [A, A, 0]),
    ("cyan", [0, A, A]),
    ("green", [0, A, 0]),
    ("magenta", [A, 0, A]),
    ("red", [A, 0, 0]),
    ("blue", [0, 0, A]),
    ("black", [0, 0, 0]),
];

/// BT.601 limited-range YCbCr from vivid, through edgevit's integer conversion, lands within
/// 3 levels of the ideal bars (yellow comes out as (188, 190, 0)). Swapping U and V moves
/// some bar by 21 levels or more (green), most by ~190; a chroma sample taken from the
/// neighbouring bar is off by far more than 4 too.
const YUV_TOLERANCE: u8 = 4;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vivid")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn frame(name: &str, format: PixelFormat) -> Frame {
    let data = fixture(name);
    assert_eq!(
        Some(data.len()),
        format.raw_len(WIDTH, HEIGHT),
        "{name}: unexpected size for a {WIDTH}x{HEIGHT} {} frame",
        format.name()
    );
    common::frame(data, WIDTH, HEIGHT, format)
}

fn decode_rgb(name: &str, format: PixelFormat) -> Raster {
    let raster = decode(&frame(name, format), ColorOrder::Rgb)
        .unwrap_or_else(|e| panic!("{name}: decode failed: {e}"));
    assert_eq!(
        (raster.width, raster.height, raster.channels),
        (WIDTH, HEIGHT, 3),
        "{name}: decoded size"
    );
    assert_eq!(raster.data.len(), (WIDTH * HEIGHT * 3) as usize);
    raster
}

fn pixel(raster: &Raster, x: u32, y: u32) -> &[u8] {
    let c = raster.channels as usize;
    let i = (y * raster.width + x) as usize * c;
    &raster.data[i..i + c]
}

fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

/// Checks the centre of each bar (at three heights) and then every pixel, against `expected`
/// (one colour or grey level per bar), within `tolerance`.
fn check_bars(name: &str, raster: &Raster, expected: &[(&str, Vec<u8>)], tolerance: u8) {
    // Bar centres first: the clearest message when a colour is wrong.
    for (i, (bar, want)) in expected.iter().enumerate() {
        let x = i as u32 * BAR_WIDTH + BAR_WIDTH / 2;
        for y in [HEIGHT / 10, HEIGHT / 2, HEIGHT * 9 / 10] {
            let got = pixel(raster, x, y);
            assert!(
                max_diff(got, want) <= tolerance,
                "{name}: {bar} bar centre ({x}, {y}) is {got:?}, expected {want:?} ± {tolerance}"
            );
        }
    }
    // Then every pixel: catches chroma taken from the wrong pair or row, stride errors, etc.
    let mut worst = (0u8, 0u32, 0u32);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let (bar, want) = &expected[(x / BAR_WIDTH) as usize];
            let got = pixel(raster, x, y);
            let d = max_diff(got, want);
            assert!(
                d <= tolerance,
                "{name}: pixel ({x}, {y}) in the {bar} bar is {got:?}, expected {want:?} ± {tolerance}"
            );
            if d > worst.0 {
                worst = (d, x, y);
            }
        }
    }
    eprintln!(
        "{name}: worst difference {} at ({}, {}) (tolerance {tolerance})",
        worst.0, worst.1, worst.2
    );
}

fn rgb_bars() -> Vec<(&'static str, Vec<u8>)> {
    BARS.iter().map(|(n, c)| (*n, c.to_vec())).collect()
}

#[test]
fn rgb24_bars_are_exact() {
    let raster = decode_rgb("bars-320x180.rgb24", PixelFormat::Rgb24);
    check_bars("rgb24", &raster, &rgb_bars(), 0);
}

#[test]
fn bgr24_bars_are_exact_after_swapping_to_rgb() {
    let raster = decode_rgb("bars-320x180.bgr24", PixelFormat::Bgr24);
    check_bars("bgr24", &raster, &rgb_bars(), 0);
}

#[test]
fn yuyv_bars_decode_to_the_rgb_colours() {
    let raster = decode_rgb("bars-320x180.yuyv", PixelFormat::Yuyv);
    check_bars("yuyv", &raster, &rgb_bars(), YUV_TOLERANCE);
}

#[test]
fn nv12_bars_decode_to_the_rgb_colours() {
    let raster = decode_rgb("bars-320x180.nv12", PixelFormat::Nv12);
    check_bars("nv12", &raster, &rgb_bars(), YUV_TOLERANCE);
}

#[test]
fn yuyv_and_nv12_decode_identically() {
    // Same picture, same BT.601 samples (the bars are uniform, so 4:2:0 loses nothing).
    let yuyv = decode_rgb("bars-320x180.yuyv", PixelFormat::Yuyv);
    let nv12 = decode_rgb("bars-320x180.nv12", PixelFormat::Nv12);
    assert!(yuyv.data == nv12.data, "YUYV and NV12 decode differently");
}

/// vivid's GREY is full-range luma with Rec. 709 weights of the 75% bars
/// (0.2126 R + 0.7152 G + 0.0722 B): 190 176 149 136 54 40 13 0, within 2 levels of
/// round(191 * weight sum).
fn vivid_grey_levels() -> Vec<(&'static str, Vec<u8>)> {
    BARS.iter()
        .map(|(n, [r, g, b])| {
            let y = 0.2126 * *r as f64 + 0.7152 * *g as f64 + 0.0722 * *b as f64;
            (*n, vec![y.round() as u8])
        })
        .collect()
}

#[test]
fn grey_bars_decode_to_equal_rgb_channels() {
    let raster = decode_rgb("bars-320x180.grey", PixelFormat::Gray8);
    let expected: Vec<(&str, Vec<u8>)> = vivid_grey_levels()
        .into_iter()
        .map(|(n, v)| (n, vec![v[0]; 3]))
        .collect();
    check_bars("grey as rgb", &raster, &expected, 2);
}

#[test]
fn grey_bars_pass_through_as_grey() {
    let raster = decode(
        &frame("bars-320x180.grey", PixelFormat::Gray8),
        ColorOrder::Gray,
    )
    .expect("grey decodes");
    assert_eq!(
        (raster.width, raster.height, raster.channels),
        (WIDTH, HEIGHT, 1)
    );
    assert!(
        raster.data == fixture("bars-320x180.grey"),
        "grey is not passed through"
    );
    check_bars("grey", &raster, &vivid_grey_levels(), 2);
}

#[test]
fn colour_frames_to_grey_use_pillow_weights_not_vivids() {
    // edgevit's grey (for models trained on PIL convert("L")) uses BT.601 weights
    // (0.299, 0.587, 0.114), so an RGB camera and a GREY camera give different grey levels
    // for the same scene: yellow is 169 here and 176 from vivid's GREY.
    let raster = decode(
        &frame("bars-320x180.rgb24", PixelFormat::Rgb24),
        ColorOrder::Gray,
    )
    .expect("rgb24 decodes to grey");
    let expected: Vec<(&str, Vec<u8>)> = BARS
        .iter()
        .map(|(n, [r, g, b])| {
            let y = 0.299 * *r as f64 + 0.587 * *g as f64 + 0.114 * *b as f64;
            (*n, vec![y.round() as u8])
        })
        .collect();
    check_bars("rgb24 as grey", &raster, &expected, 1);
}
