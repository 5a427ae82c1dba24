//! MJPEG frames without Huffman tables (as many UVC webcams send them) against the same
//! frames with the tables and against Pillow's decode (tools/make_mjpeg_fixtures.py wrote
//! tests/fixtures/mjpeg/).

mod common;

use edgevit::frame::PixelFormat;
use edgevit::model::ColorOrder;
use edgevit::preprocess::{decode, with_huffman_tables, PreprocessError, Raster};
use std::borrow::Cow;
use std::path::PathBuf;

/// name, width, height
const CASES: [(&str, u32, u32); 4] = [
    ("bars-64x48-420", 64, 48),
    ("bars-64x48-422", 64, 48),
    ("bars-50x30-420", 50, 30),
    ("bars-50x30-422-dri", 50, 30),
];

fn read(file: &str) -> Vec<u8> {
    let path: PathBuf = common::repo().join("tests/fixtures/mjpeg").join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn decode_mjpeg(data: Vec<u8>, width: u32, height: u32) -> Result<Raster, PreprocessError> {
    decode(
        &common::frame(data, width, height, PixelFormat::Mjpeg),
        ColorOrder::Rgb,
    )
}

/// Where the scan's entropy-coded data starts: after the SOS header.
fn scan_start(jpeg: &[u8]) -> usize {
    let sos = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("fixture has SOS");
    sos + 2 + usize::from(u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]))
}

/// The DHT tables (class/id, counts, symbols: the segment bodies) before the first SOS.
fn dht_tables(jpeg: &[u8]) -> Vec<u8> {
    let mut tables = Vec::new();
    let mut pos = 2;
    while jpeg[pos + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        if jpeg[pos + 1] == 0xC4 {
            tables.extend_from_slice(&jpeg[pos + 4..pos + 2 + len]);
        }
        pos += 2 + len;
    }
    tables
}

#[test]
fn frames_without_dht_decode_like_frames_with_it_and_like_pillow() {
    for (name, width, height) in CASES {
        let with_dht = read(&format!("{name}.jpg"));
        let without = read(&format!("{name}-nodht.jpg"));
        let pillow = read(&format!("{name}.rgb"));
        assert!(dht_tables(&without).is_empty(), "{name}");

        let a = decode_mjpeg(with_dht.clone(), width, height).unwrap();
        let b = decode_mjpeg(without.clone(), width, height).unwrap();
        assert_eq!(
            (b.width, b.height, b.channels),
            (width, height, 3),
            "{name}"
        );
        assert!(a == b, "{name}: with and without DHT decode differently");

        // zune-jpeg's IDCT and colour conversion round differently from libjpeg-turbo's: most
        // values agree, a few hundred differ by 1-2, and a handful per image by 3.
        assert_eq!(pillow.len(), b.data.len(), "{name}");
        let diffs: Vec<u8> = b
            .data
            .iter()
            .zip(&pillow)
            .map(|(&x, &y)| x.abs_diff(y))
            .collect();
        let worst = diffs.iter().copied().max().unwrap_or(0);
        let over_2 = diffs.iter().filter(|&&d| d > 2).count();
        let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
        assert!(
            worst <= 3 && over_2 <= 8 && mean < 0.5,
            "{name}: from Pillow: max {worst}, {over_2} values over 2, mean {mean:.3}"
        );

        // The tables inserted are the ones Pillow's libjpeg wrote (libjpeg's std_huff_tables).
        let fixed = with_huffman_tables(&without).unwrap();
        assert!(matches!(fixed, Cow::Owned(_)), "{name}");
        assert_eq!(dht_tables(&fixed), dht_tables(&with_dht), "{name}");
        assert!(matches!(
            with_huffman_tables(&with_dht),
            Ok(Cow::Borrowed(_))
        ));
    }
}

#[test]
fn encoded_jpeg_files_without_dht_decode_too() {
    for (name, width, height) in CASES {
        let want = decode_mjpeg(read(&format!("{name}.jpg")), width, height).unwrap();
        // Encoded frames: size unknown to the source in tests (0x0), read from the header.
        let got = decode(
            &common::frame(
                read(&format!("{name}-nodht.jpg")),
                0,
                0,
                PixelFormat::Encoded,
            ),
            ColorOrder::Rgb,
        )
        .unwrap();
        assert!(got == want, "{name}");
    }
}

#[test]
fn grey_output_from_mjpeg_frames() {
    let (name, width, height) = CASES[1];
    let raster = decode(
        &common::frame(
            read(&format!("{name}-nodht.jpg")),
            width,
            height,
            PixelFormat::Mjpeg,
        ),
        ColorOrder::Gray,
    )
    .unwrap();
    assert_eq!((raster.width, raster.height, raster.channels), (64, 48, 1));
    assert_eq!(raster.data.len(), 64 * 48);
}

#[test]
fn zero_padding_after_eoi_decodes() {
    for (name, width, height) in CASES {
        let clean = decode_mjpeg(read(&format!("{name}-nodht.jpg")), width, height).unwrap();
        let mut padded = read(&format!("{name}-nodht.jpg"));
        padded.extend(std::iter::repeat_n(0u8, 4096));
        let got = decode_mjpeg(padded, width, height).unwrap();
        assert!(got == clean, "{name}");
    }
}

#[test]
fn size_other_than_the_camera_format_is_an_error() {
    let (name, width, height) = CASES[0];
    let err = decode_mjpeg(read(&format!("{name}-nodht.jpg")), width, height + 16).unwrap_err();
    assert!(
        matches!(
            err,
            PreprocessError::DecodedSize {
                actual_width: 64,
                actual_height: 48,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn broken_frames_are_errors() {
    for data in [vec![], vec![0xFF, 0xD8], b"not a jpeg".to_vec()] {
        let err = decode_mjpeg(data, 64, 48).unwrap_err();
        assert!(matches!(err, PreprocessError::Mjpeg(_)), "{err}");
    }
    // The header is fine but there is no scan data at all.
    let jpeg = read("bars-64x48-422-nodht.jpg");
    let header = jpeg[..scan_start(&jpeg)].to_vec();
    let _ = decode_mjpeg(header, 64, 48);
}

#[test]
fn camera_frames_truncated_anywhere_are_errors() {
    for (name, width, height) in CASES {
        let jpeg = read(&format!("{name}-nodht.jpg"));
        // Cut anywhere (in the middle of the scan data, as a camera that drops the end of a
        // frame does): an error, not a grey-filled image for the model to classify.
        for len in 0..jpeg.len() - 1 {
            let result = decode_mjpeg(jpeg[..len].to_vec(), width, height);
            assert!(result.is_err(), "{name} cut at {len} decoded");
        }
        // The same cut followed by a camera's zero padding is still incomplete.
        let mut padded = jpeg[..jpeg.len() / 2].to_vec();
        padded.extend([0; 64]);
        let err = decode_mjpeg(padded, width, height).unwrap_err();
        let message = edgevit::error::chain(&err);
        assert!(message.contains("end-of-image"), "{message}");
    }
}
