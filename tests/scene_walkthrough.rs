//! Synthetic walk-throughs on real weights: two people cut from the reference photos walk
//! across larger frames (1280x720 on one camera, 1920x1080 on another), cross, leave and come
//! back. The real detector (CenterNet) finds them, the tracker follows them, the real ReID
//! model (OSNet) names them through the gallery. The frames are made here, deterministically
//! (a seeded noise background, people pasted at known places), so the truth is known.

mod common;

use common::scene::{film, people, Placed};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn config(tmp: &Path, camera: &str, frames: &Path, detector: &Path, osnet: &Path) -> PathBuf {
    config_with(
        tmp,
        camera,
        frames,
        (detector, osnet),
        "max_age = 4\nevery_frames = 3",
    )
}

/// A run of the detector and OSNet on `frames` as `camera`, with `tracker` as `[tracker]`.
fn config_with(
    tmp: &Path,
    camera: &str,
    frames: &Path,
    models: (&Path, &Path),
    tracker: &str,
) -> PathBuf {
    let (detector, osnet) = models;
    let text = format!(
        r#"
[source]
kind = "image-dir"
path = "{frames}"
camera = "{camera}"

[model]
path = "{osnet}"

[detector]
path = "{detector}"

[detect]
classes = ["person"]

[tracker]
{tracker}

[gallery]
path = "{gallery}"
"#,
        frames = frames.display(),
        osnet = osnet.display(),
        detector = detector.display(),
        gallery = tmp.join("gallery.sqlite").display(),
    );
    let path = tmp.join(format!("{camera}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn run(config: &Path) -> Vec<Value> {
    run_with(config, &[])
}

fn run_with(config: &Path, flags: &[&str]) -> Vec<Value> {
    let mut args = vec!["run", "--config", config.to_str().unwrap()];
    args.extend_from_slice(flags);
    let output = common::edgevit(&args);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let lines = common::json_lines(&output);
    for line in &lines {
        assert!(line.get("error").is_none(), "no frame fails: {line}");
    }
    lines
}

/// Who each reported object is: the person whose true box it overlaps best (IoU >= 0.5).
fn matched<'a>(object: &Value, truth: &'a [Placed]) -> Option<&'a Placed> {
    let b: Vec<f64> = object["box"]
        .as_array()?
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    truth
        .iter()
        .map(|p| (common::iou([b[0], b[1], b[2], b[3]], p.bounds), p))
        .filter(|(overlap, _)| *overlap >= 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, p)| p)
}

/// What a camera's run said about each person: their track ids in order of appearance, and
/// their identities.
#[derive(Debug, Default)]
struct Seen {
    tracks: BTreeMap<&'static str, Vec<u64>>,
    identities: BTreeMap<&'static str, BTreeSet<String>>,
    /// Frames whose count of reported people differs from the truth (after the tracks'
    /// first `min_hits` frames).
    wrong_counts: Vec<usize>,
    unmatched: usize,
}

fn read(lines: &[Value], truth: &[Vec<Placed>], settled: impl Fn(usize) -> bool) -> Seen {
    let mut seen = Seen::default();
    for (t, line) in lines.iter().enumerate() {
        let objects = line["objects"].as_array().unwrap();
        if settled(t) && objects.len() != truth[t].len() {
            seen.wrong_counts.push(t);
        }
        for object in objects {
            let Some(person) = matched(object, &truth[t]) else {
                seen.unmatched += 1;
                continue;
            };
            let track = object["track"].as_u64().unwrap();
            let tracks = seen.tracks.entry(person.who).or_default();
            if tracks.last() != Some(&track) {
                tracks.push(track);
            }
            if let Some(identity) = object["identity"].as_str() {
                seen.identities
                    .entry(person.who)
                    .or_default()
                    .insert(identity.to_string());
            }
        }
    }
    seen
}

#[test]
fn people_walking_through_two_cameras_keep_their_tracks_and_identities() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let detector = common::centernet_package(tmp.path(), |_| {});
    let osnet = common::osnet_package(&shared, tmp.path());
    let cast = people(&shared, 300);

    // cam0, 1280x720, 36 frames: the astronaut walks right and leaves (frames 0-21), is away
    // (22-25) and comes back from the right (26-35); Grace walks left from frame 0, crossing
    // the astronaut's path around frame 9, lower in the picture.
    let cam0 = film(&tmp.path().join("cam0"), (1280, 720), 36, &cast, |t| {
        let t = t as i64;
        let mut at = vec![("grace", 1000 - 30 * t, 360)];
        if t <= 21 {
            at.push(("astronaut", 60 + 50 * t, 40));
        } else if t >= 26 {
            at.push(("astronaut", 1280 - 60 * (t - 25), 40));
        }
        at
    });
    // cam1, 1920x1080, 12 frames: the astronaut alone.
    let cam1 = film(&tmp.path().join("cam1"), (1920, 1080), 12, &cast, |t| {
        vec![("astronaut", 300 + 40 * t as i64, 500)]
    });

    let first = run(&config(
        tmp.path(),
        "cam0",
        &tmp.path().join("cam0"),
        &detector,
        &osnet,
    ));
    let second = run(&config(
        tmp.path(),
        "cam1",
        &tmp.path().join("cam1"),
        &detector,
        &osnet,
    ));
    assert_eq!((first.len(), second.len()), (36, 12));

    // Counts are checked where nobody is half out of the frame or newly (re)appeared: a
    // track is reported from its `min_hits`-th frame, and a person coming in from the edge is
    // found once enough of them is in sight.
    let settled0 = |t: usize| (3..=17).contains(&t) || (30..=35).contains(&t);
    let seen0 = read(&first, &cam0, settled0);
    let seen1 = read(&second, &cam1, |t| t >= 3);
    eprintln!("cam0: {seen0:?}\ncam1: {seen1:?}");

    // Grace keeps one track through the crossing; the astronaut has one before leaving and
    // one after coming back.
    assert_eq!(
        seen0.tracks["grace"].len(),
        1,
        "Grace's track through the crossing"
    );
    assert_eq!(
        seen0.tracks["astronaut"].len(),
        2,
        "one track before leaving, one after"
    );
    assert!(
        seen0.wrong_counts.is_empty(),
        "frames with the wrong count: {:?}",
        seen0.wrong_counts
    );
    assert!(
        seen1.wrong_counts.is_empty(),
        "cam1 frames with the wrong count: {:?}",
        seen1.wrong_counts
    );
    assert_eq!(
        seen0.unmatched + seen1.unmatched,
        0,
        "every reported object is a person placed there"
    );

    // Identities: one per person over both cameras and the re-entry, different people
    // different identities.
    let astronaut: BTreeSet<String> = seen0.identities["astronaut"]
        .union(&seen1.identities["astronaut"])
        .cloned()
        .collect();
    assert_eq!(
        astronaut.len(),
        1,
        "the astronaut is one identity on both cameras: {astronaut:?}"
    );
    assert_eq!(seen0.identities["grace"].len(), 1, "{:?}", seen0.identities);
    assert!(astronaut.is_disjoint(&seen0.identities["grace"]));
}

/// With `detect_every = 3` the detector runs on one frame in three; on the others each track
/// is reported where its motion model puts it, which is where the person walked.
#[test]
fn between_detections_tracks_follow_their_motion() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let detector = common::centernet_package(tmp.path(), |_| {});
    let osnet = common::osnet_package(&shared, tmp.path());
    let cast = people(&shared, 300);
    let frames = tmp.path().join("frames");
    let truth = film(&frames, (1280, 720), 15, &cast, |t| {
        vec![("grace", 100 + 25 * t as i64, 200)]
    });
    let tracker = "min_hits = 2\ndetect_every = 3";
    let lines = run(&config_with(
        tmp.path(),
        "cam0",
        &frames,
        (&detector, &osnet),
        tracker,
    ));
    assert_eq!(lines.len(), 15);
    // Detections at frames 0 and 3 confirm the track; from then on every frame reports it.
    for (t, line) in lines.iter().enumerate().skip(3) {
        let objects = line["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 1, "frame {t}: {objects:?}");
        let placed = matched(&objects[0], &truth[t]);
        assert!(
            placed.is_some(),
            "frame {t}: {} is where Grace stands, {:?}",
            objects[0]["box"],
            truth[t][0].bounds
        );
        assert_eq!(objects[0]["track"], 1);
        assert!(
            objects[0]["identity"].is_string(),
            "frame {t}: the identity carries over"
        );
    }
}

/// Frigate's state classification: a classify model on fixed regions (`[[reid.roi]]`). Each
/// region is an object with a stable track, labelled by its name, and its state (`fine_label`)
/// is the vote of its latest looks: a change wins within a few frames, and MQTT would send it
/// as the track's `update`.
#[test]
fn fixed_regions_report_their_state_by_a_classify_model() {
    let tmp = tempfile::tempdir().unwrap();
    let samples = common::default_model().join("samples");
    let digit = |name: &str| image::open(samples.join(name)).unwrap().to_luma8();
    let (three, seven, one) = (
        digit("digit-3-4.png"),
        digit("digit-7-8.png"),
        digit("digit-1-10.png"),
    );
    let frames = tmp.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    for t in 0..12 {
        let mut frame = image::GrayImage::new(200, 80);
        image::imageops::replace(&mut frame, if t < 6 { &three } else { &seven }, 20, 20);
        image::imageops::replace(&mut frame, &one, 120, 20);
        frame.save(frames.join(format!("{t:04}.png"))).unwrap();
    }
    let config = tmp.path().join("state.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nkind = \"image-dir\"\npath = \"{}\"\n[model]\npath = \"{}\"\n\
             [tracker]\nevery_frames = 1\n\
             [[reid.roi]]\ncamera = \"cam0\"\nname = \"left\"\nbox = [20, 20, 48, 48]\n\
             [[reid.roi]]\ncamera = \"cam0\"\nname = \"right\"\nbox = [120, 20, 148, 48]\n",
            frames.display(),
            common::default_model().display()
        ),
    )
    .unwrap();
    let lines = run(&config);
    assert_eq!(lines.len(), 12);
    let states: Vec<(String, String)> = lines
        .iter()
        .map(|line| {
            let objects = line["objects"].as_array().unwrap();
            assert_eq!(objects.len(), 2, "{line}");
            let state = |i: usize| {
                assert_eq!(objects[i]["track"], i as u64 + 1);
                assert_eq!(objects[i]["label"], ["left", "right"][i]);
                objects[i]["fine_label"].as_str().unwrap().to_string()
            };
            (state(0), state(1))
        })
        .collect();
    let left: String = states.iter().map(|s| s.0.as_str()).collect();
    let right: String = states.iter().map(|s| s.1.as_str()).collect();
    eprintln!("left {left}, right {right}");
    assert_eq!(right, "111111111111");
    assert_eq!(
        left, "333333337777",
        "the change wins at the third look of 7 (5 looks vote)"
    );
}

/// The RAMS-Trans zoom runs on each object's crop and its box comes back in frame pixels: two
/// of vit-mnist-canvas's held-out frames (a digit somewhere in 84x84 of black; the model was
/// trained on such frames, real weights trained here) pasted at known places of a larger
/// frame, each a fixed region. Each object's `region` lies inside its own region and covers
/// its digit, far from where a box on the crop (not moved to the frame) would be; so do its
/// TransFG-style part boxes (`[parts]`).
#[test]
fn the_zoom_runs_on_each_object_and_its_box_is_in_frame_pixels() {
    let tmp = tempfile::tempdir().unwrap();
    let canvas = common::repo().join("models/vit-mnist-canvas");
    let sample = |name: &str| {
        image::open(canvas.join("samples").join(name))
            .unwrap()
            .to_luma8()
    };
    let pieces = [
        (sample("frame-0-3.png"), (16u32, 40u32), "0"),
        (sample("frame-4-1.png"), (230, 70), "4"),
    ];
    let mut frame = image::GrayImage::new(360, 200);
    let mut rois = String::new();
    let mut digits = Vec::new();
    for (n, (piece, (x, y), _)) in pieces.iter().enumerate() {
        image::imageops::replace(&mut frame, piece, *x as i64, *y as i64);
        let (w, h) = piece.dimensions();
        rois += &format!(
            "[[reid.roi]]\ncamera = \"cam0\"\nname = \"r{n}\"\nbox = [{x}, {y}, {}, {}]\n",
            x + w,
            y + h
        );
        // The digit's own box in frame pixels: its bright pixels.
        let lit: Vec<(u32, u32)> = piece
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0[0] > 60)
            .map(|(px, py, _)| (px + x, py + y))
            .collect();
        let bounds = |f: fn(&(u32, u32)) -> u32| {
            let values = lit.iter().map(f);
            (values.clone().min().unwrap(), values.max().unwrap() + 1)
        };
        let ((x0, x1), (y0, y1)) = (bounds(|p| p.0), bounds(|p| p.1));
        digits.push((
            [x0 as f64, y0 as f64, x1 as f64, y1 as f64],
            [*x, *y, x + w, y + h],
        ));
    }
    let frames = tmp.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    for t in 0..3 {
        frame.save(frames.join(format!("{t:04}.png"))).unwrap();
    }
    let config = tmp.path().join("zoom.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nkind = \"image-dir\"\npath = \"{}\"\n[model]\npath = \"{}\"\n\
             [tracker]\nevery_frames = 1\n[zoom]\nwhen = \"always\"\n\
             [parts]\ncount = 2\n{rois}",
            frames.display(),
            canvas.display()
        ),
    )
    .unwrap();
    let lines = run(&config);
    assert_eq!(lines.len(), 3);
    for line in &lines {
        let objects = line["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 2, "{line}");
        for (object, ((digit, roi), (_, _, label))) in
            objects.iter().zip(digits.iter().zip(&pieces))
        {
            let region: Vec<f64> = object["region"]
                .as_array()
                .unwrap_or_else(|| panic!("a zoom region: {object}"))
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let inside = |b: &[f64]| {
                b[0] >= roi[0] as f64
                    && b[1] >= roi[1] as f64
                    && b[2] <= roi[2] as f64
                    && b[3] <= roi[3] as f64
            };
            let parts = object["parts"].as_array().expect("parts");
            assert_eq!(parts.len(), 2, "{object}");
            for part in parts {
                let b: Vec<f64> = (part["box"].as_array().unwrap().iter())
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                assert!(inside(&b), "the part {b:?} is inside its object {roi:?}");
            }
            let covered = (region[2].min(digit[2]) - region[0].max(digit[0])).max(0.0)
                * (region[3].min(digit[3]) - region[1].max(digit[1])).max(0.0)
                / ((digit[2] - digit[0]) * (digit[3] - digit[1]));
            eprintln!(
                "{}: region {region:?} in {roi:?}, digit {digit:?}: covers {:.0}%, label {}",
                object["label"],
                covered * 100.0,
                object["fine_label"]
            );
            assert!(
                inside(&region),
                "the region {region:?} is inside its object {roi:?}"
            );
            assert!(covered > 0.7, "the region covers the digit: {covered:.2}");
            assert_eq!(object["fine_label"], *label, "{object}");
        }
    }
}
