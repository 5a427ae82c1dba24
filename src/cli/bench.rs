//! `edgevit bench`: inference latency of model packages, with ratios to the first.

use super::args::{at_least_one, BackendArgs};
use super::exit;
use anyhow::Result;
use edgevit::bench;
use edgevit::pipeline::LoadedModel;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Model package folders; the first is the baseline of `ratio_to_first`.
    #[arg(required = true, value_name = "DIR")]
    models: Vec<PathBuf>,
    #[command(flatten)]
    backend: BackendArgs,
    /// Untimed inferences before measuring (0 for none).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Timed inferences per model.
    #[arg(long, default_value_t = 30, value_parser = at_least_one)]
    iterations: usize,
}

pub fn run(args: Args) -> Result<i32> {
    let mut baseline = None;
    for dir in args.models {
        let mut loaded = LoadedModel::load(&dir, &args.backend.config()?)?;
        let input = bench::synthetic_input(loaded.package.manifest.input.shape);
        let timing = bench::measure(
            loaded.backend.as_mut(),
            &input,
            args.warmup,
            args.iterations,
        )?;
        let base = *baseline.get_or_insert(timing.median_ms);
        let line = serde_json::json!({
            "model": loaded.package.name(),
            "path": dir.display().to_string(),
            "backend": loaded.backend.name(),
            "threads": args.backend.threads(),
            "timing": timing,
            "ratio_to_first": bench::round3(timing.median_ms / base),
        });
        println!("{line}");
    }
    Ok(exit::OK)
}
