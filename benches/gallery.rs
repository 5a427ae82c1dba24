//! `cargo bench --bench gallery`: the cost of matching one embedding against the gallery, with
//! 1k, 10k and 100k stored exemplars of 512 numbers (OSNet's size), as medians with ratios
//! against 1k measured in the same run; a whole `observe` (search + SQLite transaction); and
//! what another connection's write costs a reader (the fleet's MQTT thread): reading the whole
//! gallery again against `refresh`, which reads only what changed.

use edgevit::gallery::index::{dot, FlatIndex};
use edgevit::gallery::{normalize, Gallery, GalleryConfig, ModelStamp};
use std::time::Instant;

const DIM: usize = 512;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Deterministic pseudo-random unit vectors (xorshift).
struct Vectors(u64);

impl Vectors {
    fn next(&mut self) -> Vec<f32> {
        let v: Vec<f32> = (0..DIM)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        normalize(&v).unwrap_or(v)
    }
}

/// The model stamp and configuration of the benchmark's galleries: every embedding its own
/// identity (threshold 0.99), confirmed at once.
fn bench_gallery() -> (ModelStamp, GalleryConfig) {
    let stamp = ModelStamp {
        name: "bench".into(),
        dim: DIM,
    };
    let config = GalleryConfig {
        threshold: Some(0.99),
        confirm_frames: 1,
        ..GalleryConfig::default()
    };
    (stamp, config)
}

/// The search a single running sum gives, for comparison with [`dot`]'s eight lanes.
fn scalar_best(rows: &[f32], query: &[f32]) -> f32 {
    rows.chunks_exact(DIM)
        .map(|row| row.iter().zip(query).fold(0.0f32, |s, (a, b)| s + a * b))
        .fold(f32::NEG_INFINITY, f32::max)
}

fn main() {
    let mut vectors = Vectors(0x9E37_79B9_7F4A_7C15);
    let queries: Vec<Vec<f32>> = (0..20).map(|_| vectors.next()).collect();
    let mut baseline = None;
    for count in [1_000usize, 10_000, 100_000] {
        let mut index = FlatIndex::new(DIM);
        let mut flat = Vec::with_capacity(count * DIM);
        for i in 0..count {
            let v = vectors.next();
            flat.extend_from_slice(&v);
            index.push((i / 50) as i64, i as i64, &v);
        }
        let time = |f: &dyn Fn(&[f32]) -> f32| {
            median(
                queries
                    .iter()
                    .map(|q| {
                        let start = Instant::now();
                        std::hint::black_box(f(q));
                        start.elapsed().as_secs_f64() * 1e3
                    })
                    .collect(),
            )
        };
        let ours = time(&|q| index.best(q).map_or(0.0, |h| h.similarity));
        let scalar = time(&|q| scalar_best(&flat, q));
        let base = *baseline.get_or_insert(ours);
        println!(
            "gallery search {count} exemplars x {DIM}: median {ours:.3} ms ({:.1}x 1k; one running sum: {scalar:.3} ms, {:.2}x ours)",
            ours / base,
            scalar / ours
        );
    }
    // Sanity: the lanes compute the same dot product.
    let (a, b) = (vectors.next(), vectors.next());
    let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    assert!((dot(&a, &b) - plain).abs() < 1e-4);

    let dir = std::env::temp_dir().join(format!("edgevit-bench-{}", std::process::id()));
    let path = dir.join("gallery.sqlite");
    let (stamp, config) = bench_gallery();
    match Gallery::open(&path, &stamp, &config) {
        Ok(mut gallery) => {
            let mut samples = Vec::new();
            for i in 0..2_000 {
                let v = vectors.next();
                let start = Instant::now();
                if let Err(e) = gallery.observe(&v, "cam0", i) {
                    eprintln!("observe failed: {e}");
                    break;
                }
                samples.push(start.elapsed().as_secs_f64() * 1e3);
            }
            println!(
                "gallery observe (search + one SQLite transaction, WAL, synchronous=NORMAL), {} identities: median {:.3} ms",
                gallery.identities().count(),
                median(samples)
            );
        }
        Err(e) => eprintln!("cannot open a gallery in {}: {e}", dir.display()),
    }
    for count in [10_000usize, 100_000] {
        if let Err(e) = bench_refresh(&dir, count, &mut vectors) {
            eprintln!("refresh at {count}: {e}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A gallery of `count` exemplars (5 per identity), written straight into the file; then, 20
/// times, a writer observes one new person and the reader picks it up: by reading the whole
/// gallery (as `refresh` did before) and by `refresh`.
fn bench_refresh(
    dir: &std::path::Path,
    count: usize,
    vectors: &mut Vectors,
) -> Result<(), Box<dyn std::error::Error>> {
    let path = dir.join(format!("refresh-{count}.sqlite"));
    let (stamp, config) = bench_gallery();
    drop(Gallery::open(&path, &stamp, &config)?);
    let mut sql = rusqlite::Connection::open(&path)?;
    let tx = sql.transaction()?;
    for i in 0..count / 5 {
        tx.execute(
            "INSERT INTO identity (id, label, origin, updated_ms, updated_by, confirmed, hits, created_ms, last_seen_ms) VALUES (?1, ?2, '', 0, '', 1, 5, 0, 0)",
            rusqlite::params![i as i64 + 1, format!("id-{:06}", i + 1)],
        )?;
        for _ in 0..5 {
            let blob: Vec<u8> = vectors
                .next()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            tx.execute(
                "INSERT INTO exemplar (identity, embedding, camera, ts_ms) VALUES (?1, ?2, 'cam0', 0)",
                rusqlite::params![i as i64 + 1, blob],
            )?;
        }
    }
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'next_id'",
        [(count / 5 + 1).to_string()],
    )?;
    tx.commit()?;
    let mut reader = Gallery::open(&path, &stamp, &config)?;
    let mut writer = Gallery::open(&path, &stamp, &config)?;
    let mut published = std::collections::HashMap::new();
    for (message, print) in reader.fleet_changes(&published) {
        published.insert(message.id, print);
    }
    let (mut whole, mut incremental) = (Vec::new(), Vec::new());
    let (mut all_messages, mut changed_messages) = (Vec::new(), Vec::new());
    for i in 0..20 {
        writer.observe(&vectors.next(), "cam0", i)?;
        let start = Instant::now();
        std::hint::black_box(Gallery::open(&path, &stamp, &config)?);
        whole.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        assert!(reader.refresh()?, "the reader saw the write");
        incremental.push(start.elapsed().as_secs_f64() * 1e3);
        // The fleet's publisher: every message serialised (as before) against the changed ones.
        let start = Instant::now();
        let all: Vec<String> = (reader.fleet_state().iter())
            .map(|m| serde_json::to_string(m).unwrap_or_default())
            .collect();
        std::hint::black_box(all);
        all_messages.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        for (message, print) in reader.fleet_changes(&published) {
            std::hint::black_box(serde_json::to_string(&message)?);
            published.insert(message.id, print);
        }
        changed_messages.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let (whole, incremental) = (median(whole), median(incremental));
    println!(
        "gallery reader after one write, {count} exemplars: reading it all {whole:.2} ms, refresh {incremental:.2} ms ({:.1}x faster)",
        whole / incremental
    );
    let (all_messages, changed_messages) = (median(all_messages), median(changed_messages));
    println!(
        "fleet messages after one write, {count} exemplars: all built {all_messages:.2} ms, the changed one {changed_messages:.2} ms ({:.1}x faster)",
        all_messages / changed_messages
    );
    assert_eq!(reader.exemplar_count(), count + 20);
    Ok(())
}
