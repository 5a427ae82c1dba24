//! A real ReID CNN (../shared/reference/osnet) loads and runs through the tract backend, and
//! its embeddings behave as documented: an image and its mirror are near-identical.

mod common;

use edgevit::backend::{self, BackendConfig};
use edgevit::model::ModelPackage;
use edgevit::preprocess::{Preprocess, Preprocessor};
use edgevit::tensor::Tensor;
use std::path::Path;

/// OSNet from `shared`, packaged and loaded into tract.
fn load_osnet(shared: &Path) -> (ModelPackage, Box<dyn backend::InferenceBackend>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::osnet_package(shared, tmp.path());
    let package = ModelPackage::open(&dir).unwrap();
    let backend = backend::open(&package, &BackendConfig::default()).unwrap();
    (package, backend)
}

fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    unit(a).iter().zip(unit(b)).map(|(x, y)| x * y).sum()
}

#[test]
fn osnet_embeds_a_person_and_its_mirror_alike() {
    let shared = common::shared_dir();
    let (package, mut backend) = load_osnet(&shared);
    let mut preprocess = Preprocessor::new(&package.manifest.input);

    let embed = |image: &image::RgbImage,
                 backend: &mut Box<dyn backend::InferenceBackend>,
                 pre: &mut Preprocessor| {
        let input = pre.prepare(&common::rgb_frame(image)).unwrap();
        let outputs = backend.run(&input).unwrap();
        let embedding = outputs.get("output").unwrap();
        assert_eq!(embedding.shape(), [1, 512]);
        embedding.data().to_vec()
    };
    let person = image::open(shared.join("reference/images/astronaut.png"))
        .unwrap()
        .to_rgb8();
    let mirrored = image::imageops::flip_horizontal(&person);
    let other = image::open(shared.join("reference/images/coffee.png"))
        .unwrap()
        .to_rgb8();
    let a = embed(&person, &mut backend, &mut preprocess);
    let b = embed(&mirrored, &mut backend, &mut preprocess);
    let c = embed(&other, &mut backend, &mut preprocess);
    assert!(a.iter().all(|v| v.is_finite()));
    let same = cosine(&a, &b);
    let different = cosine(&a, &c);
    eprintln!("osnet cosine: mirror {same:.3}, other image {different:.3}");
    assert!(same > 0.9, "mirror image similarity {same}");
    assert!(
        different < same - 0.1,
        "a cup of coffee ({different}) is not the astronaut ({same})"
    );
}

/// The embeddings tract computes equal ONNX Runtime's on the same input tensors
/// (tools/osnet_ort_reference.py wrote tests/fixtures/osnet_ort/ with ORT 1.32).
#[test]
fn osnet_embeddings_match_onnx_runtime() {
    let shared = common::shared_dir();
    let (_, mut backend) = load_osnet(&shared);
    let fixtures = common::repo().join("tests/fixtures/osnet_ort");
    let mut embeddings = Vec::new();
    for name in ["astronaut", "grace_hopper"] {
        let pixels = Tensor::read_npy(&fixtures.join(format!("{name}.input.npy"))).unwrap();
        assert_eq!(pixels.shape(), [1, 3, 256, 128]);
        let outputs = backend.run(&common::imagenet_input(&pixels)).unwrap();
        let ours = outputs.get("output").unwrap();
        let reference = Tensor::read_npy(&fixtures.join(format!("{name}.embedding.npy"))).unwrap();
        let worst = ours
            .max_abs_diff(&reference)
            .unwrap_or_else(|| panic!("{name}: shape {:?}", ours.shape()));
        let norm = reference.data().iter().map(|v| v * v).sum::<f32>().sqrt();
        eprintln!("osnet {name}: max abs diff from ORT {worst:e} (embedding norm {norm:.2})");
        assert!(worst < 1e-3, "{name}: tract differs from ORT by {worst}");
        embeddings.push(ours.data().to_vec());
    }
    // Two different people are far apart in edgevit's embeddings (ORT's: 0.52, summary.json).
    assert!(cosine(&embeddings[0], &embeddings[1]) < 0.7);
}

/// How close body ReID brings two different people in similar dark clothes, measured on what
/// the reference photos allow: Grace Hopper wears a dark navy uniform; the astronaut's orange
/// suit is recoloured here to the same navy (its shading kept), a different person in similar
/// dark clothes. Against them: the same person in two looks (two different cuts of one photo,
/// at two sizes) and the two people as photographed. The figures go to docs/scenes.md ("What
/// to expect of body ReID"); what is asserted is what held when measured: a change of clothes
/// moves one person's embedding much further than a second look does, down to the similarity
/// of two different people.
#[test]
fn a_change_of_clothes_moves_the_embedding_more_than_a_second_look() {
    let shared = common::shared_dir();
    let (package, mut backend) = load_osnet(&shared);
    let mut preprocess = Preprocessor::new(&package.manifest.input);
    let mut embed = |image: &image::RgbImage| {
        let input = preprocess.prepare(&common::rgb_frame(image)).unwrap();
        let outputs = backend.run(&input).unwrap();
        outputs.get("output").unwrap().data().to_vec()
    };
    let photo = |name: &str| {
        image::open(shared.join("reference/images").join(name))
            .unwrap()
            .to_rgb8()
    };
    let cut = |photo: &image::RgbImage, b: [u32; 4], height: u32| {
        let crop =
            image::imageops::crop_imm(photo, b[0], b[1], b[2] - b[0], b[3] - b[1]).to_image();
        let width = crop.width() * height / crop.height();
        let filter = image::imageops::FilterType::Triangle;
        image::imageops::resize(&crop, width, height, filter)
    };
    let (astronaut, grace) = (photo("astronaut.png"), photo("grace_hopper.bmp"));
    // The hand-drawn person boxes (tests/detect_objects.rs), and a second, tighter cut.
    let grace_a = cut(&grace, [12, 20, 512, 600], 256);
    let grace_b = cut(&grace, [40, 70, 480, 560], 160);
    let astronaut_a = cut(&astronaut, [18, 14, 365, 512], 256);
    let astronaut_b = cut(&astronaut, [40, 60, 340, 500], 160);
    // Orange becomes navy, each pixel's brightness kept.
    let mut dark = astronaut_a.clone();
    let mut recoloured = 0usize;
    for pixel in dark.pixels_mut() {
        let [r, g, b] = pixel.0.map(f32::from);
        if r > 120.0 && r > g + 50.0 && r > b + 70.0 {
            let light = (0.3 * r + 0.59 * g + 0.11 * b) / 255.0;
            pixel.0 = [28.0, 34.0, 62.0].map(|c| (c * light / 0.45).min(255.0) as u8);
            recoloured += 1;
        }
    }
    let share = recoloured as f64 / (dark.width() * dark.height()) as f64;
    let (ga, gb) = (embed(&grace_a), embed(&grace_b));
    let (aa, ab, ad) = (embed(&astronaut_a), embed(&astronaut_b), embed(&dark));
    let same_grace = cosine(&ga, &gb);
    let same_astronaut = cosine(&aa, &ab);
    let apart = cosine(&aa, &ga);
    let dark_pair = cosine(&ad, &ga);
    let changed_clothes = cosine(&ad, &aa);
    eprintln!(
        "osnet cosine: one person, two cuts: grace {same_grace:.3}, astronaut {same_astronaut:.3}; \
         two people: {apart:.3}; two people in navy (astronaut's suit recoloured, {:.0}% of \
         her pixels): {dark_pair:.3}; the astronaut in orange and in navy: {changed_clothes:.3}",
        share * 100.0
    );
    assert!(share > 0.2, "the suit was recoloured: {share:.2}");
    assert!(
        changed_clothes < same_grace.min(same_astronaut) - 0.1,
        "a change of clothes moves one person further than a second look: {changed_clothes:.3}"
    );
    assert!(
        changed_clothes < apart + 0.15,
        "in other clothes, one person is nearly as far as two people: {changed_clothes:.3} \
         against {apart:.3}"
    );
    assert!(
        dark_pair < 0.7,
        "two people in navy stay apart: {dark_pair:.3}"
    );
}
