//! Classes by example on real weights: DINOv2 ViT-S's class token (read inside the graph, after
//! its final layer norm) and a few enrolled photos per class classify without a training run.
//! Measured leave-one-out on what real photos there are (`../shared/reference/images`: three
//! birds, two people), with two photos of neither as the unknowns. That is very little: the
//! figures say whether it works at all, not how well.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};

/// DINOv2 ViT-S (the saliency model of `shared`) as an embedding package: its final layer
/// norm's output, token 0 (the class token).
fn dino_embedding(shared: &Path, dir: &Path) -> PathBuf {
    let text = common::dinov2_manifest(
        shared,
        "dinov2-s-cls",
        "reid",
        "embedding = \"/backbone/layernorm/Add_1_output_0\"\n[embedding]\ntoken = 0",
    );
    common::write_manifest(&dir.join("dino"), &text)
}

fn enroll(model: &Path, classes: &Path, class: &str, images: &[PathBuf]) {
    let mut args = vec![
        "classes".to_string(),
        "enroll".into(),
        "--model".into(),
        model.display().to_string(),
        "--classes".into(),
        classes.display().to_string(),
        "--class".into(),
        class.into(),
    ];
    args.extend(images.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = common::edgevit(&args);
    assert!(output.status.success(), "{}", common::stderr(&output));
}

/// `edgevit infer --classes` on each image: its top classes.
fn classify(model: &Path, classes: &Path, by: &[&str], images: &[PathBuf]) -> Vec<Value> {
    let mut args = vec![
        "infer".to_string(),
        "--model".into(),
        model.display().to_string(),
        "--classes".into(),
        classes.display().to_string(),
    ];
    args.extend(by.iter().map(|s| s.to_string()));
    args.extend(images.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = common::edgevit(&args);
    assert!(output.status.success(), "{}", common::stderr(&output));
    common::json_lines(&output)
}

/// Leave one photo out, enrol the rest of its class and the other class, classify it; the
/// photos of neither class are classified against everything enrolled. Then a run with
/// `[classify] classes` over a folder, after a restart, gives the same answers.
#[test]
fn a_few_photos_per_class_classify_without_training() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let model = dino_embedding(&shared, tmp.path());
    let photo = |name: &str| shared.join("reference/images").join(name);
    let birds = ["bird.bmp", "owl.jpg", "parrot.jpg"].map(photo);
    let people = ["astronaut.png", "grace_hopper.bmp"].map(photo);
    let neither = ["chelsea.png", "coffee.png"].map(photo);
    let mut right = [0, 0];
    let mut held_out = 0;
    for (class, members) in [("bird", &birds[..]), ("person", &people[..])] {
        for (i, out) in members.iter().enumerate() {
            let classes = tmp.path().join(format!("loo-{class}-{i}.json"));
            let rest: Vec<PathBuf> = (members.iter().enumerate())
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| p.clone())
                .collect();
            enroll(&model, &classes, class, &rest);
            let other: &[PathBuf] = if class == "bird" { &people } else { &birds };
            enroll(
                &model,
                &classes,
                if class == "bird" { "person" } else { "bird" },
                other,
            );
            held_out += 1;
            for (k, how) in ["prototype", "nearest"].into_iter().enumerate() {
                let by = ["--match-by", how];
                let line = &classify(&model, &classes, &by, std::slice::from_ref(out))[0];
                let top = &line["top"];
                eprintln!(
                    "{how}: {class} {}: {} {:.3}, then {} {:.3}",
                    out.file_name().unwrap().to_string_lossy(),
                    top[0]["label"],
                    top[0]["score"].as_f64().unwrap(),
                    top[1]["label"],
                    top[1]["score"].as_f64().unwrap()
                );
                right[k] += usize::from(top[0]["label"] == class);
            }
        }
    }
    eprintln!(
        "leave-one-out: prototypes {} of {held_out} right, nearest example {} of {held_out}",
        right[0], right[1]
    );
    assert_eq!(
        right[0], held_out,
        "every held-out photo in its class by prototype"
    );

    // Everything enrolled; the photos of neither class and the margin to `unknown`.
    let classes = tmp.path().join("classes.json");
    enroll(&model, &classes, "bird", &birds);
    enroll(&model, &classes, "person", &people);
    for line in classify(&model, &classes, &[], &neither) {
        eprintln!(
            "neither ({}): {} {:.3}",
            line["input"],
            line["top"][0]["label"],
            line["top"][0]["score"].as_f64().unwrap()
        );
    }

    // A run with [classify] classes; restarts keep the classes (they are in the file).
    let frames = tmp.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    for (i, p) in birds.iter().chain(&people).enumerate() {
        let ext = p.extension().unwrap().to_string_lossy().to_string();
        std::fs::copy(p, frames.join(format!("{i}.{ext}"))).unwrap();
    }
    let config = tmp.path().join("classes.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nkind = \"image-dir\"\npath = \"{}\"\n[model]\npath = \"{}\"\n\
             [classify]\nclasses = \"classes.json\"\ntop_k = 2\nunknown_below = 0.3\n",
            frames.display(),
            model.display()
        ),
    )
    .unwrap();
    for _ in 0..2 {
        let output = common::edgevit(&["run", "--config", config.to_str().unwrap()]);
        assert!(output.status.success(), "{}", common::stderr(&output));
        let labels: Vec<String> = common::json_lines(&output)
            .iter()
            .map(|l| l["top"][0]["label"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(labels, ["bird", "bird", "bird", "person", "person"]);
    }
    let checked = common::edgevit(&["check", "--config", config.to_str().unwrap()]);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
    // Below `unknown_below`, the answer is `unknown` (here set above every similarity).
    let strict = std::fs::read_to_string(&config)
        .unwrap()
        .replace("unknown_below = 0.3", "unknown_below = 0.99");
    std::fs::write(&config, strict).unwrap();
    let output = common::edgevit(&["run", "--config", config.to_str().unwrap()]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    for line in common::json_lines(&output) {
        assert_eq!(line["top"][0]["label"], "unknown", "{line}");
        assert!(
            line["top"][1]["label"].is_string(),
            "the classes follow: {line}"
        );
    }
}

/// What is wrong is said: a classes file of another model, a torn one, a model without an
/// embedding.
#[test]
fn wrong_classes_files_and_models_are_refused_clearly() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let model = dino_embedding(&shared, tmp.path());
    let classes = tmp.path().join("classes.json");
    let bird = shared.join("reference/images/bird.bmp");
    enroll(&model, &classes, "bird", std::slice::from_ref(&bird));
    let infer = |model: &Path| {
        common::edgevit(&[
            "infer",
            "--model",
            model.to_str().unwrap(),
            "--classes",
            classes.to_str().unwrap(),
            bird.to_str().unwrap(),
        ])
    };
    let osnet = common::osnet_package(&shared, tmp.path());
    let output = infer(&osnet);
    let said = common::stderr(&output);
    assert!(!output.status.success());
    assert!(
        said.contains("dinov2-s-cls") && said.contains("osnet"),
        "{said}"
    );
    let text = std::fs::read_to_string(&classes).unwrap();
    std::fs::write(&classes, &text[..text.len() / 3]).unwrap();
    let output = infer(&model);
    let said = common::stderr(&output);
    assert!(
        !output.status.success() && said.contains("damaged"),
        "{said}"
    );
    let output = common::edgevit(&[
        "classes",
        "enroll",
        "--model",
        common::default_model().to_str().unwrap(),
        "--classes",
        tmp.path().join("other.json").to_str().unwrap(),
        "--class",
        "seven",
        bird.to_str().unwrap(),
    ]);
    let said = common::stderr(&output);
    assert!(
        !output.status.success() && said.contains("no embedding"),
        "{said}"
    );
}

/// Classes by example on fixed regions (state classification) and on a detector's objects:
/// each region, then each object, of the frame is classified by the enrolled examples.
/// The photos in the frame were not enrolled.
#[test]
fn fixed_regions_and_detected_objects_are_classified_by_example() {
    let shared = common::shared_dir();
    let tmp = tempfile::tempdir().unwrap();
    let model = dino_embedding(&shared, tmp.path());
    let photo = |name: &str| shared.join("reference/images").join(name);
    let classes = tmp.path().join("classes.json");
    enroll(
        &model,
        &classes,
        "bird",
        &[photo("bird.bmp"), photo("owl.jpg")],
    );
    enroll(&model, &classes, "person", &[photo("astronaut.png")]);
    let filter = image::imageops::FilterType::Triangle;
    let square = |name: &str| {
        let image = image::open(photo(name)).unwrap().to_rgb8();
        image::imageops::resize(&image, 300, 300, filter)
    };
    let mut frame = image::RgbImage::from_pixel(640, 320, image::Rgb([120, 120, 120]));
    image::imageops::replace(&mut frame, &square("parrot.jpg"), 10, 10);
    image::imageops::replace(&mut frame, &square("grace_hopper.bmp"), 330, 10);
    let frames = tmp.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    for t in 0..3 {
        frame.save(frames.join(format!("{t}.png"))).unwrap();
    }
    let config = tmp.path().join("regions.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nkind = \"image-dir\"\npath = \"{}\"\n[model]\npath = \"{}\"\n\
             [classify]\nclasses = \"classes.json\"\n[tracker]\nevery_frames = 1\n\
             [[reid.roi]]\ncamera = \"cam0\"\nname = \"perch\"\nbox = [10, 10, 310, 310]\n\
             [[reid.roi]]\ncamera = \"cam0\"\nname = \"desk\"\nbox = [330, 10, 630, 310]\n",
            frames.display(),
            model.display()
        ),
    )
    .unwrap();
    let output = common::edgevit(&["run", "--config", config.to_str().unwrap()]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let lines = common::json_lines(&output);
    assert_eq!(lines.len(), 3);
    for line in &lines {
        let objects = line["objects"].as_array().unwrap();
        let states: Vec<(&str, &str)> = objects
            .iter()
            .map(|o| {
                (
                    o["label"].as_str().unwrap(),
                    o["fine_label"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(states, [("perch", "bird"), ("desk", "person")], "{line}");
    }
    // The same frames with the COCO detector in front: each object it finds is classified by
    // example too (its own label is COCO's; `fine_label` is the enrolled class).
    let detector = common::centernet_package(tmp.path(), |_| {});
    let config = tmp.path().join("objects.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nkind = \"image-dir\"\npath = \"{}\"\n[model]\npath = \"{}\"\n\
             [detector]\npath = \"{}\"\n[classify]\nclasses = \"classes.json\"\n",
            frames.display(),
            model.display(),
            detector.display()
        ),
    )
    .unwrap();
    let output = common::edgevit(&["run", "--config", config.to_str().unwrap()]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    for line in common::json_lines(&output) {
        let objects = line["objects"].as_array().unwrap();
        eprintln!("{objects:?}");
        for object in objects.iter().filter(|o| o["score"].as_f64() > Some(0.4)) {
            let (coco, fine) = (&object["label"], &object["fine_label"]);
            assert!(
                (coco == "bird" && fine == "bird") || (coco == "person" && fine == "person"),
                "{object}"
            );
        }
        assert!(objects.len() >= 2, "{line}");
    }
}
