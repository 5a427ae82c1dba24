//! Would caching the model as NNEF cut tract's cold start? Loads a package's ONNX file the way
//! the tract backend does (parse, type, declutter, optimise, plan) and the same model from an
//! NNEF archive, several times each, and prints the medians of each step in milliseconds.
//!
//! The archive holds the typed model before decluttering: tract 0.23.9 cannot write the
//! decluttered form of these ViTs (declutter turns their erf GELU into `GeluExact`, which has
//! no NNEF serializer), so the cached path still declutters.
//!
//!     cargo run --release --example nnef_cache -- models/vit-tiny-int8/model.onnx [runs]
//!
//! The answer is in the README (Benchmarks); the backend does not cache.

use std::time::Instant;
use tract_onnx::prelude::*;
use tract_onnx_opl::WithOnnx;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

fn main() -> TractResult<()> {
    let mut args = std::env::args().skip(1);
    let Some(onnx_path) = args.next() else {
        eprintln!("usage: nnef_cache MODEL.onnx [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let nnef = tract_nnef::nnef().with_onnx();
    let cache = std::env::temp_dir().join("edgevit-nnef-cache.nnef.tar");

    let (mut parse, mut typed, mut declutter, mut optimize) = (vec![], vec![], vec![], vec![]);
    let (mut read_nnef, mut optimize_nnef) = (vec![], vec![]);
    for run in 0..runs {
        let start = Instant::now();
        let model = tract_onnx::onnx().model_for_path(&onnx_path)?;
        parse.push(ms_since(start));
        let start = Instant::now();
        let model = model.into_typed()?;
        typed.push(ms_since(start));
        if run == 0 {
            nnef.write_to_tar(&model, std::fs::File::create(&cache)?)?;
        }
        let start = Instant::now();
        let model = model.into_decluttered()?;
        declutter.push(ms_since(start));
        let start = Instant::now();
        let _plan = model.into_optimized()?.into_runnable()?;
        optimize.push(ms_since(start));

        let start = Instant::now();
        let cached = nnef.model_for_path(&cache)?;
        read_nnef.push(ms_since(start));
        let start = Instant::now();
        let _plan = cached
            .into_decluttered()?
            .into_optimized()?
            .into_runnable()?;
        optimize_nnef.push(ms_since(start));
    }
    let onnx_steps = [
        median(parse),
        median(typed),
        median(declutter),
        median(optimize),
    ];
    let nnef_steps = [median(read_nnef), median(optimize_nnef)];
    let onnx_total: f64 = onnx_steps.iter().sum();
    let nnef_total: f64 = nnef_steps.iter().sum();
    println!(
        "{}",
        serde_json::json!({
            "model": onnx_path,
            "runs": runs,
            "onnx_ms": { "parse": onnx_steps[0], "type": onnx_steps[1], "declutter": onnx_steps[2],
                         "optimize_and_plan": onnx_steps[3], "total": onnx_total },
            "nnef_ms": { "read": nnef_steps[0], "declutter_optimize_and_plan": nnef_steps[1], "total": nnef_total },
            "nnef_archive_bytes": std::fs::metadata(&cache)?.len(),
            "ratio_onnx_to_nnef": onnx_total / nnef_total,
        })
    );
    std::fs::remove_file(&cache)?;
    Ok(())
}
