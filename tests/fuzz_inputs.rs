//! A fuzzed corpus instead of a list of cases: every parser that reads bytes a user, a camera
//! or a crash may have damaged gets valid inputs mutated at random (bit flips, cuts, inserted
//! bytes, overwritten length fields) and random bytes, and must answer with a value or an
//! error, never a panic. Seeds are fixed and the number of cases bounded, so CI is repeatable
//! and quick; the number of cases run is printed (`fuzz: ... cases`).
//!
//! The raw camera buffers (every format, any size and stride) are fuzzed beside their code, in
//! `src/source/v4l2/formats.rs`.

mod common;

use edgevit::frame::{Frame, FrameMeta, PixelFormat};
use edgevit::model::{ColorOrder, InputSpec, ResizePolicy};
use edgevit::pipeline::RunConfig;
use edgevit::preprocess::{with_huffman_tables, Preprocess, Preprocessor};
use edgevit::sink::mqtt::{names, Topics};
use edgevit::sink::spool::{Spool, SpoolConfig};
use edgevit::sink::SinkConfig;
use edgevit::tensor::Tensor;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::path::Path;
use std::time::SystemTime;

/// One change to a seed.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit {
        at: usize,
        bit: u8,
    },
    Cut {
        at: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    /// A little-endian u32 written over four bytes: damages lengths, sizes and offsets.
    Overwrite {
        at: usize,
        value: u32,
    },
    Remove {
        at: usize,
        len: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        1 => any::<usize>().prop_map(|at| Mutation::Cut { at }),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        2 => (any::<usize>(), prop_oneof![Just(0u32), Just(u32::MAX), Just(0x7fff_ffff), any::<u32>()])
            .prop_map(|(at, value)| Mutation::Overwrite { at, value }),
        1 => (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Remove { at, len }),
    ]
}

fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for m in mutations {
        let n = bytes.len().max(1);
        match m {
            Mutation::FlipBit { at, bit } => {
                if let Some(b) = bytes.get_mut(at % n) {
                    *b ^= 1 << bit;
                }
            }
            Mutation::Cut { at } => bytes.truncate(at % n),
            Mutation::Insert { at, bytes: extra } => {
                let at = (at % n).min(bytes.len());
                bytes.splice(at..at, extra.iter().copied());
            }
            Mutation::Overwrite { at, value } => {
                let at = at % n;
                for (i, b) in value.to_le_bytes().into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + i) {
                        *slot = b;
                    }
                }
            }
            Mutation::Remove { at, len } => {
                let at = (at % n).min(bytes.len());
                let end = (at + len).min(bytes.len());
                bytes.drain(at..end);
            }
        }
    }
    bytes
}

/// A seed mutated a few times, or (one case in eight) random bytes.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        7 => (0..seeds.len(), proptest::collection::vec(mutation(), 0..6))
            .prop_map(move |(i, ms)| apply(&seeds[i], &ms)),
        1 => proptest::collection::vec(any::<u8>(), 0..512),
    ]
}

/// Runs `check` on `cases` inputs from a fixed seed; a panic fails the test with the input.
fn fuzz<S: Strategy>(name: &str, cases: u32, strategy: S, check: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let result = runner.run(&strategy, |value| {
        check(value);
        Ok(())
    });
    if let Err(failure) = result {
        panic!("fuzz {name}: {failure}");
    }
    eprintln!("fuzz: {name}: {cases} cases, no panic");
}

fn frame(data: Vec<u8>, width: u32, height: u32, format: PixelFormat) -> Frame {
    Frame {
        meta: FrameMeta {
            seq: 0,
            captured_at: SystemTime::now(),
            source: "fuzz".into(),
            camera: "cam0".into(),
            camera_index: 0,
            path: Some("fuzz.img".into()),
            width,
            height,
            format,
        },
        data,
    }
}

fn preprocessor(color: ColorOrder) -> Preprocessor {
    Preprocessor::new(&InputSpec {
        name: "input".into(),
        shape: [1, color.channels(), 12, 16],
        color,
        scale: 255.0,
        mean: vec![],
        std: vec![],
        resize: ResizePolicy::CenterCrop,
        layout: Default::default(),
    })
}

fn encoded(image: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).expect("encodes");
    bytes.into_inner()
}

fn image_seeds() -> Vec<Vec<u8>> {
    let rgb = image::RgbImage::from_fn(23, 11, |x, y| image::Rgb([x as u8 * 11, y as u8 * 23, 7]));
    let gray = image::GrayImage::from_fn(9, 14, |x, y| image::Luma([(x * y) as u8]));
    let mut seeds = vec![
        encoded(rgb.clone().into(), image::ImageFormat::Png),
        encoded(gray.into(), image::ImageFormat::Png),
        encoded(rgb.clone().into(), image::ImageFormat::Jpeg),
        encoded(rgb.into(), image::ImageFormat::Bmp),
    ];
    let mjpeg = common::repo().join("tests/fixtures/mjpeg");
    for name in [
        "bars-50x30-420-nodht.jpg",
        "bars-64x48-422-nodht.jpg",
        "bars-50x30-422-dri.jpg",
    ] {
        seeds.push(std::fs::read(mjpeg.join(name)).expect("mjpeg fixture"));
    }
    seeds
}

#[test]
fn image_files_and_mjpeg_frames_decode_or_are_refused() {
    let seeds = image_seeds();
    let strategy = (mutated(seeds), any::<bool>(), 0u32..80, 0u32..80);
    fuzz(
        "image bytes",
        1500,
        strategy,
        |(bytes, gray, width, height)| {
            let color = if gray {
                ColorOrder::Gray
            } else {
                ColorOrder::Rgb
            };
            let mut pre = preprocessor(color);
            let _ = pre.prepare(&frame(bytes.clone(), 0, 0, PixelFormat::Encoded));
            let _ = with_huffman_tables(&bytes);
            // As a camera's MJPEG frame of a claimed size (cameras send frames without DHT).
            let _ = pre.prepare(&frame(bytes, width, height, PixelFormat::Mjpeg));
        },
    );
}

#[test]
fn raw_frames_of_any_size_convert_or_are_refused() {
    let formats = [
        PixelFormat::Rgb24,
        PixelFormat::Bgr24,
        PixelFormat::Gray8,
        PixelFormat::Yuyv,
        PixelFormat::Nv12,
    ];
    let size = prop_oneof![6 => 0u32..40, 1 => any::<u32>()];
    let strategy = (
        0..formats.len(),
        size.clone(),
        size,
        proptest::collection::vec(any::<u8>(), 0..5000),
    );
    fuzz(
        "raw frames",
        1500,
        strategy,
        |(format, width, height, data)| {
            let _ =
                preprocessor(ColorOrder::Bgr).prepare(&frame(data, width, height, formats[format]));
        },
    );
}

fn text_seeds(paths: &[&Path]) -> Vec<Vec<u8>> {
    paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

#[test]
fn run_configurations_parse_or_say_why() {
    let repo = common::repo();
    let mut seeds = text_seeds(&[
        &repo.join("board-configs/demo.toml"),
        &repo.join("board-configs/usb-webcam.toml"),
        &repo.join("board-configs/rk3588.toml"),
    ]);
    seeds.push(
        b"[source]\nkind = \"pattern\"\nframes = 3\n[model]\npath = \"m\"\n[sink]\nkind = \"mqtt\"\n\
          host = \"h\"\n[sink.tls]\nca_file = \"ca.pem\"\n[sink.spool]\nmax_bytes = 1000\n\
          [sink.events]\nframes = 2\n"
            .to_vec(),
    );
    seeds.push(
        b"state_dir = \"s\"\n[source]\nkind = \"image-dir\"\npath = \"d\"\nloop = true\nfps = 2.5\n\
          [model]\npath = \"m\"\n[backend]\nkind = \"tract\"\nthreads = 2\n[sink]\nkind = \"serial\"\n\
          path = \"/dev/ttyS0\"\nformat = \"csv\"\nbaud = 9600\n"
            .to_vec(),
    );
    // Names that become topic levels, for the mutations to break.
    seeds.push(
        b"[source]\nkind = \"pattern\"\ncamera = \"door-cam\"\n[model]\npath = \"m\"\n[sink]\n\
          kind = \"mqtt\"\nprefix = \"site/edgevit\"\ndevice = \"gate_1\"\n[sink.discovery]\n\
          enabled = true\nprefix = \"homeassistant\"\n"
            .to_vec(),
    );
    // The seeds themselves parse: a fuzz whose every input is refused would test nothing.
    for seed in &seeds {
        let text = String::from_utf8_lossy(seed);
        if let Err(e) = RunConfig::parse(&text, Path::new("/etc/edgevit")) {
            panic!("seed does not parse: {e}\n{text}");
        }
    }
    fuzz("run configs", 1500, mutated(seeds), |bytes| {
        let text = String::from_utf8_lossy(&bytes);
        match RunConfig::parse(&text, Path::new("/etc/edgevit")) {
            Err(message) => assert!(!message.is_empty()),
            Ok(config) => every_topic_is_publishable(&config),
        }
    });
}

/// A configuration that parses never makes a topic the client or the broker refuses, nor one
/// where a name added a level.
fn every_topic_is_publishable(config: &RunConfig) {
    let SinkConfig::Mqtt(mqtt) = &config.sink else {
        return;
    };
    let topics = Topics::new(&mqtt.prefix, &mqtt.device);
    // The prefix's levels, then the device: the levels every topic starts with.
    let base = mqtt.prefix.trim_end_matches('/').split('/').count() + 1;
    let mut all = vec![
        (topics.availability(), base + 1),
        (topics.stats(), base + 1),
    ];
    for (_, camera) in config.source.camera_ids() {
        for topic in [
            topics.result(camera),
            topics.event(camera),
            topics.identity(camera),
            topics.camera_status(camera),
        ] {
            all.push((topic, base + 2));
        }
    }
    for (topic, levels) in all {
        if let Err(e) = names::check_topic(&topic) {
            panic!("{topic:?}: {e}");
        }
        assert_eq!(
            topic.split('/').count(),
            levels,
            "{topic:?}: a name added a level"
        );
    }
}

#[test]
fn manifests_parse_or_say_why() {
    let repo = common::repo();
    let seeds = text_seeds(&[
        &repo.join("models/vit-mnist/model.toml"),
        &repo.join("models/vit-tiny-int8/model.toml"),
    ]);
    for seed in &seeds {
        let text = String::from_utf8_lossy(seed);
        if let Err(e) = edgevit::model::parse_manifest(&text) {
            panic!("seed does not parse: {e}\n{text}");
        }
    }
    fuzz("manifests", 1500, mutated(seeds), |bytes| {
        if let Err(message) = edgevit::model::parse_manifest(&String::from_utf8_lossy(&bytes)) {
            assert!(!message.trim().is_empty(), "a refusal says why");
        }
    });
}

#[test]
fn npy_files_parse_or_say_why() {
    let repo = common::repo();
    let mut seeds = text_seeds(&[
        &repo.join("models/vit-mnist/selftest/logits.npy"),
        &repo.join("models/vit-mnist/selftest/input.npy"),
        &repo.join("tests/fixtures/osnet_ort/astronaut.embedding.npy"),
    ]);
    let small = Tensor::new(vec![2, 3], vec![0.0, 1.0, -2.5, 3.0, f32::NAN, 1e9]).unwrap();
    seeds.push(small.to_npy());
    fuzz("npy files", 1500, mutated(seeds), |bytes| {
        if let Ok(tensor) = Tensor::from_npy_bytes(&bytes) {
            let count: usize = tensor.shape().iter().product();
            assert_eq!(count, tensor.data().len());
        }
    });
}

/// A spool written by edgevit, then damaged on disk (segments and cursor) as a crash, a full
/// disk or a stray editor might: opening it again recovers or refuses, and what it still
/// delivers are whole entries that were appended.
#[test]
fn damaged_spools_open_or_are_refused() {
    let template = tempfile::tempdir().unwrap();
    let config = |path: &Path| SpoolConfig {
        path: path.to_path_buf(),
        max_bytes: 1 << 20,
        segment_bytes: 600,
        fsync: false,
    };
    let mut entries = Vec::new();
    {
        let mut spool = Spool::open(&config(template.path())).unwrap();
        let mut ids = Vec::new();
        for i in 0..12 {
            let entry = format!(
                "edgevit/test/cam0/result\n{{\"seq\":{i},\"pad\":\"{}\"}}",
                "x".repeat(i * 7)
            );
            ids.push(spool.append(entry.as_bytes()).unwrap());
            entries.push(entry.into_bytes());
        }
        spool.ack_through(ids[3]).unwrap();
    }
    let files: Vec<(String, Vec<u8>)> = {
        let mut files: Vec<_> = std::fs::read_dir(template.path())
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    assert!(files.len() >= 3, "several segments and a cursor: {files:?}");
    let strategy = (
        0..files.len(),
        proptest::collection::vec(mutation(), 1..6),
        any::<bool>(),
    );
    fuzz(
        "spool files",
        300,
        strategy,
        |(victim, mutations, also_cursor)| {
            let dir = tempfile::tempdir().unwrap();
            for (i, (name, bytes)) in files.iter().enumerate() {
                let damaged = i == victim || (also_cursor && name == "cursor");
                let bytes = if damaged {
                    apply(bytes, &mutations)
                } else {
                    bytes.clone()
                };
                std::fs::write(dir.path().join(name), bytes).unwrap();
            }
            let Ok(mut spool) = Spool::open(&config(dir.path())) else {
                return;
            };
            let read: Vec<Vec<u8>> = spool
                .read_after(None, 100)
                .expect("an opened spool reads")
                .into_iter()
                .map(|(_, entry)| entry)
                .collect();
            for entry in &read {
                assert!(
                    entries.contains(entry),
                    "a torn or made-up entry was delivered: {entry:?}"
                );
            }
            // What was written before the damage, in the segments it did not touch and after
            // the acknowledged ones, is still delivered.
            for entry in &entries[4..] {
                let home = files.iter().position(|(name, bytes)| {
                    name != "cursor" && bytes.windows(entry.len()).any(|w| w == entry.as_slice())
                });
                if home.is_some_and(|i| i != victim) {
                    assert!(
                        read.contains(entry),
                        "an undamaged entry was lost: {}",
                        String::from_utf8_lossy(entry)
                    );
                }
            }
            spool
                .append(b"edgevit/test/cam0/result\n{}")
                .expect("a recovered spool takes new entries");
        },
    );
}
