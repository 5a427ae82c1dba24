//! `edgevit probe`: the video devices and the inference backends of this machine.

use super::exit;
use anyhow::Result;
use edgevit::error::chain;
use edgevit::pipeline::{LoadedModel, RunConfig};
use edgevit::source::v4l2::probe;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON document (`devices`, `backends`, and `model` with --config) instead of
    /// text.
    #[arg(long)]
    json: bool,
    /// Also load this run configuration's model on its `[backend]` (a fallback list is tried
    /// in order, each refusal logged) and say which backend runs it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Which backend of the configuration runs its model, or why none does.
fn chosen_backend(path: &Path) -> Result<serde_json::Value> {
    let config = RunConfig::load(path)?;
    let tried: Vec<&str> = config
        .backend
        .candidates()
        .iter()
        .map(|c| c.label())
        .collect();
    Ok(
        match LoadedModel::load(&config.model.path, &config.backend) {
            Ok(model) => serde_json::json!({
                "model": model.package.name(),
                "tried": tried,
                "backend": model.backend.name(),
            }),
            Err(e) => serde_json::json!({ "tried": tried, "backend": null, "error": chain(&e) }),
        },
    )
}

pub fn run(args: Args) -> Result<i32> {
    let devices = probe::probe_devices();
    let backends = edgevit::backend::available();
    let model = args.config.as_deref().map(chosen_backend).transpose()?;
    if args.json {
        let mut doc = serde_json::json!({ "devices": devices, "backends": backends });
        if let Some(model) = &model {
            doc["model"] = model.clone();
        }
        println!("{doc:#}");
    } else {
        print!("{}", probe::render(&devices));
        println!("backends:");
        for backend in &backends {
            println!("    {}: {}", backend.name, backend.status);
        }
        if let Some(model) = &model {
            match model["backend"].as_str() {
                Some(backend) => println!(
                    "model {}: runs on {backend} (tried in order: {})",
                    model["model"].as_str().unwrap_or_default(),
                    model["tried"]
                ),
                None => println!(
                    "model: no backend runs it: {}",
                    model["error"].as_str().unwrap_or_default()
                ),
            }
        }
    }
    Ok(exit::OK)
}
