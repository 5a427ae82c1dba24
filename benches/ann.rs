//! `cargo bench --bench ann [-- SIZES... osnet|face-descriptor]`: the gallery's approximate index (HNSW, used above
//! `[gallery] hnsw_above`) against flat search, on real embeddings: OSNet x0.25 (../shared)
//! and the bundled face descriptor on augmented crops of the reference photos (random windows,
//! mirrored, lighter and darker). For each size: the time to build the graph, the median time
//! of one search, flat and through the graph, and recall@1 (the share of queries for which
//! the graph's best exemplar is flat search's), for several efSearch values; the queries are
//! crops that are not in the gallery. Also what carrying exemplars as f16 or int8 in fleet
//! messages would change: the largest similarity error and the match decisions that flip.
//!
//! Sizes past the real embeddings computed here (SIZES default 10000 100000) are filled with
//! perturbed copies of them (each a real embedding plus Gaussian noise, at cosine about 0.9 to
//! it, made unit length again): a dense gallery of near-duplicates, harder for the graph than
//! distinct people, said as such in docs/engineering/fleet.md. The embeddings are cached in
//! target/ann-cache/ (delete it to compute them again).

use edgevit::backend::{self, BackendConfig};
use edgevit::gallery::index::{FlatIndex, SearchPolicy};
use edgevit::gallery::Metric;
use edgevit::model::ModelPackage;
use edgevit::preprocess::{Preprocess, Preprocessor};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Real embeddings per model (gallery) and the queries, none of them in the gallery.
const QUERIES: usize = 300;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// A deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn gauss(&mut self) -> f32 {
        let (u, v) = (self.uniform().max(1e-7), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

struct Embedder {
    name: &'static str,
    metric: Metric,
    /// The threshold in the package's metric (match decisions).
    threshold: f32,
    package: ModelPackage,
    backend: Box<dyn backend::InferenceBackend>,
    output: &'static str,
}

fn shared() -> PathBuf {
    let dir = std::env::var_os("EDGEVIT_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    assert!(
        dir.join("reference/osnet").is_dir(),
        "the reference models are not in {}: set EDGEVIT_SHARED_DIR",
        dir.display()
    );
    dir
}

fn osnet(shared: &Path) -> Embedder {
    let onnx = shared.join("reference/osnet/osnet_x0_25_msmt17.onnx");
    let dir = std::env::temp_dir().join(format!("edgevit-bench-osnet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let manifest = format!(
        "name = \"osnet\"\ntask = \"reid\"\nonnx = \"{}\"\n[input]\nname = \"images\"\n\
         shape = [1, 3, 256, 128]\ncolor = \"rgb\"\nmean = [0.485, 0.456, 0.406]\nstd = [0.229, 0.224, 0.225]\n\
         [outputs]\nembedding = \"output\"\n",
        onnx.display()
    );
    std::fs::write(dir.join("model.toml"), manifest).expect("manifest");
    let package = ModelPackage::open(&dir).expect("OSNet package");
    let backend = backend::open(&package, &BackendConfig::default()).expect("OSNet loads");
    Embedder {
        name: "osnet",
        metric: Metric::Cosine,
        threshold: 0.6,
        package,
        backend,
        output: "output",
    }
}

fn face() -> Embedder {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/face-descriptor");
    let package = ModelPackage::open(&dir).expect("face descriptor package");
    let backend = backend::open(&package, &BackendConfig::default()).expect("it loads");
    Embedder {
        name: "face-descriptor",
        metric: Metric::Euclidean,
        threshold: 0.6,
        package,
        backend,
        output: "descriptor",
    }
}

/// An augmented crop of one of the photos: a random window (a fifth to the whole of each
/// side), maybe mirrored, lighter or darker.
fn crop(photos: &[image::RgbImage], rng: &mut Rng) -> image::RgbImage {
    let photo = &photos[(rng.next() % photos.len() as u64) as usize];
    let (w, h) = photo.dimensions();
    let cw = ((0.2 + 0.8 * rng.uniform()) * w as f32).max(16.0) as u32;
    let ch = ((0.2 + 0.8 * rng.uniform()) * h as f32).max(16.0) as u32;
    let x = (rng.uniform() * (w - cw) as f32) as u32;
    let y = (rng.uniform() * (h - ch) as f32) as u32;
    let mut out = image::imageops::crop_imm(photo, x, y, cw, ch).to_image();
    if rng.next().is_multiple_of(2) {
        out = image::imageops::flip_horizontal(&out);
    }
    let gain = 0.7 + 0.6 * rng.uniform();
    for p in out.pixels_mut() {
        for c in &mut p.0 {
            *c = (*c as f32 * gain).min(255.0) as u8;
        }
    }
    out
}

/// `count` embeddings of augmented crops (seeded), from the cache when it has them.
fn embeddings(embedder: &mut Embedder, photos: &[image::RgbImage], count: usize) -> Vec<Vec<f32>> {
    let cache = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/ann-cache")
        .join(format!("{}-{count}.f32", embedder.name));
    if let Ok(bytes) = std::fs::read(&cache) {
        let numbers: Vec<f32> = (bytes.chunks_exact(4))
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let dim = numbers.len() / count;
        return numbers.chunks_exact(dim).map(<[f32]>::to_vec).collect();
    }
    let mut rng = Rng(0x5EED_0000 + embedder.name.len() as u64);
    let mut pre = Preprocessor::new(&embedder.package.manifest.input);
    let start = Instant::now();
    let out: Vec<Vec<f32>> = (0..count)
        .map(|_| {
            let image = crop(photos, &mut rng);
            let (w, h) = image.dimensions();
            let frame = edgevit::frame::Frame::in_memory(
                "crop",
                image.into_raw(),
                w,
                h,
                edgevit::frame::PixelFormat::Rgb24,
            );
            let input = pre.prepare(&frame).expect("a crop prepares");
            let outputs = embedder.backend.run(&input).expect("the model runs");
            let v = outputs
                .get(embedder.output)
                .expect("embedding")
                .data()
                .to_vec();
            match embedder.metric {
                Metric::Cosine => edgevit::gallery::normalize(&v).unwrap_or(v),
                Metric::Euclidean => v,
            }
        })
        .collect();
    println!(
        "{}: {count} crops embedded in {:.0} s",
        embedder.name,
        start.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(cache.parent().expect("a folder")).expect("cache folder");
    let bytes: Vec<u8> = out.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&cache, bytes).expect("cache written");
    out
}

/// `real` extended to `size` with perturbed copies (cosine about 0.9 to their source).
fn extend(real: &[Vec<f32>], size: usize, metric: Metric) -> Vec<Vec<f32>> {
    let dim = real[0].len();
    let mut rng = Rng(0xC0FF_EE00 + size as u64);
    let sigma = (0.2346 / dim as f32).sqrt();
    let mut out: Vec<Vec<f32>> = real.iter().take(size).cloned().collect();
    while out.len() < size {
        let source = &real[(rng.next() % real.len() as u64) as usize];
        let norm = source.iter().map(|x| x * x).sum::<f32>().sqrt();
        let v: Vec<f32> = source
            .iter()
            .map(|x| x + sigma * norm * rng.gauss())
            .collect();
        out.push(match metric {
            Metric::Cosine => edgevit::gallery::normalize(&v).unwrap_or(v),
            Metric::Euclidean => {
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x * norm / n).collect()
            }
        });
    }
    out
}

/// An index of `rows`, each its own identity (so that recall is per exemplar).
fn index(rows: &[Vec<f32>], metric: Metric, policy: SearchPolicy) -> FlatIndex {
    let mut index = FlatIndex::with_metric(rows[0].len(), metric).searching(policy);
    for (i, v) in rows.iter().enumerate() {
        index.push(i as i64 + 1, i as i64 + 1, v);
    }
    index
}

fn bench_size(embedder: &Embedder, rows: &[Vec<f32>], queries: &[Vec<f32>]) {
    let size = rows.len();
    let mut flat = index(rows, embedder.metric, SearchPolicy::default());
    let mut exact = Vec::new();
    let flat_ms = median(
        (queries.iter())
            .map(|q| {
                let start = Instant::now();
                exact.push(flat.search(q).expect("a hit").identity);
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    );
    let mut graph = index(
        rows,
        embedder.metric,
        SearchPolicy {
            hnsw_above: 1,
            ef: 16,
        },
    );
    let start = Instant::now();
    graph.search_with(&queries[0], true);
    let build_s = start.elapsed().as_secs_f64();
    println!(
        "{} {size}: flat search {flat_ms:.3} ms; graph built in {build_s:.1} s",
        embedder.name
    );
    for ef in [16, 32, 64, 128] {
        graph.set_ef(ef);
        let mut found = 0;
        let ms = median(
            (queries.iter().zip(&exact))
                .map(|(q, want)| {
                    let start = Instant::now();
                    let hit = graph.search(q).expect("a hit");
                    let ms = start.elapsed().as_secs_f64() * 1e3;
                    found += usize::from(hit.identity == *want);
                    ms
                })
                .collect(),
        );
        println!(
            "{} {size} ef {ef}: graph search {ms:.3} ms ({:.1}x faster than flat), recall@1 {:.3}",
            embedder.name,
            flat_ms / ms,
            found as f64 / queries.len() as f64
        );
    }
}

/// An exemplar coded and decoded again.
type Coding = dyn Fn(&[f32]) -> Vec<f32>;

/// What f16 or int8 exemplars (as a fleet message would carry them) change against f32.
fn bench_encodings(embedder: &Embedder, rows: &[Vec<f32>], queries: &[Vec<f32>]) {
    let f16 =
        |v: &[f32]| -> Vec<f32> { v.iter().map(|x| half::f16::from_f32(*x).to_f32()).collect() };
    let int8 = |v: &[f32]| -> Vec<f32> {
        let scale = v.iter().fold(0.0f32, |m, x| m.max(x.abs())) / 127.0;
        v.iter().map(|x| (x / scale).round() * scale).collect()
    };
    let coded: [(&str, &Coding); 2] = [("f16", &f16), ("int8", &int8)];
    let similarity = |a: &[f32], b: &[f32]| -> f32 {
        let d: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
        match embedder.metric {
            Metric::Cosine => a.iter().zip(b).map(|(x, y)| x * y).sum(),
            Metric::Euclidean => -d.sqrt(),
        }
    };
    let limit = match embedder.metric {
        Metric::Cosine => embedder.threshold,
        Metric::Euclidean => -embedder.threshold,
    };
    for (name, code) in coded {
        let (mut worst, mut flips, mut best_changed, mut pairs) = (0.0f32, 0, 0, 0);
        for q in queries {
            let (mut best, mut best_coded) = ((0, f32::MIN), (0, f32::MIN));
            for (i, row) in rows.iter().enumerate() {
                let s = similarity(q, row);
                let c = similarity(q, &code(row));
                worst = worst.max((s - c).abs());
                flips += usize::from((s >= limit) != (c >= limit));
                pairs += 1;
                if s > best.1 {
                    best = (i, s);
                }
                if c > best_coded.1 {
                    best_coded = (i, c);
                }
            }
            best_changed += usize::from(best.0 != best_coded.0);
        }
        let unit = match embedder.metric {
            Metric::Cosine => "cosine",
            Metric::Euclidean => "distance",
        };
        println!(
            "{} exemplars as {name}: largest {unit} error {worst:.5}; match decisions flipped {flips} of {pairs}; best exemplar changed for {best_changed} of {} queries",
            embedder.name,
            queries.len()
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    // Model names among the arguments pick the models (default both).
    let named: Vec<&String> = (args.iter())
        .filter(|a| a.parse::<usize>().is_err() && !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| named.is_empty() || named.iter().any(|n| *n == name);
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000];
    }
    let shared = shared();
    let photos: Vec<image::RgbImage> = std::fs::read_dir(shared.join("reference/images"))
        .expect("reference images")
        .filter_map(|e| image::open(e.ok()?.path()).ok())
        .map(|i| i.to_rgb8())
        .collect();
    let real = sizes[0].min(10_000);
    let mut embedders = Vec::new();
    if wanted("osnet") {
        embedders.push((osnet(&shared), real));
    }
    if wanted("face-descriptor") {
        embedders.push((face(), real.min(3000)));
    }
    for (mut embedder, count) in embedders {
        let all = embeddings(&mut embedder, &photos, count + QUERIES);
        let (rows, queries) = all.split_at(count);
        bench_encodings(&embedder, &rows[..rows.len().min(2000)], &queries[..100]);
        for &size in &sizes {
            let rows = extend(rows, size, embedder.metric);
            bench_size(&embedder, &rows, queries);
        }
    }
}
