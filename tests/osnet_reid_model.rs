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
