//! `edgevit models ...`: inspect model packages.

use super::args::BackendArgs;
use super::exit;
use super::infer::tract;
use anyhow::{Context, Result};
use edgevit::model::{selftest, ModelPackage};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Load a package, check its manifest against the graph, run its self-test and print the
    /// worst difference from the reference; exit code 1 on FAIL.
    Check {
        /// Model package folder (the one holding model.toml).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Show the attention that zoom and parts use: each block's tensor (found by
    /// `attention = "auto"` or named in model.toml), heads, tokens, and the token layout.
    Attention {
        /// Model package folder (the one holding model.toml).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: Command) -> Result<i32> {
    match command {
        Command::Check { dir, backend } => check(dir, &backend),
        Command::Attention { dir, json } => attention(dir, json),
    }
}

/// What zoom and parts will use: the attention tensors (found by `"auto"` or named), their
/// heads and tokens, and the token layout.
fn attention(dir: PathBuf, json: bool) -> Result<i32> {
    let package = ModelPackage::open(&dir)?;
    let backend = edgevit::backend::open(&package, &tract(1))?;
    let stage = edgevit::pipeline::VitStage::new(
        &package,
        backend.as_ref(),
        &edgevit::pipeline::VitOptions {
            parts: Some(Default::default()),
            ..Default::default()
        },
    )?
    .context("no attention stage")?;
    let layout = stage.layout();
    let tensors = backend.attention();
    if json {
        let doc = serde_json::json!({
            "model": package.name(),
            "source": format!("{:?}", package.manifest.outputs.attention),
            "rollout": package.manifest.outputs.rollout,
            "blocks": tensors,
            "layout": layout,
        });
        println!("{doc:#}");
        return Ok(exit::OK);
    }
    println!(
        "model {:?}: {} attention blocks",
        package.name(),
        tensors.len()
    );
    for (i, t) in tensors.iter().enumerate() {
        println!(
            "  {i:>2}: {} [1, {}, {}, {}]",
            t.name, t.heads, t.tokens, t.tokens
        );
    }
    if let Some(rollout) = &package.manifest.outputs.rollout {
        println!("  rolled-out map computed in the graph: {rollout}");
    }
    println!(
        "tokens: 1 class token, {} register tokens, {} patches in a {}x{} grid; patch {}x{} px every {}x{} px of the {}x{} input",
        layout.registers,
        layout.patches(),
        layout.grid_w,
        layout.grid_h,
        layout.patch.0,
        layout.patch.1,
        layout.stride.0,
        layout.stride.1,
        package.manifest.input.width(),
        package.manifest.input.height()
    );
    Ok(exit::OK)
}

fn check(dir: PathBuf, backend: &BackendArgs) -> Result<i32> {
    let package = ModelPackage::open(&dir)?;
    // Loading checks the manifest against the graph: input name and shape, output names.
    let mut backend = edgevit::backend::open(&package, &backend.config()?)?;
    edgevit::pipeline::check_labels(&package, backend.as_ref())?;
    let manifest = &package.manifest;
    println!(
        "graph matches the manifest: input {:?} {:?}, outputs {:?}",
        manifest.input.name,
        manifest.input.shape,
        manifest.outputs.graph_names()
    );
    let Some(report) = selftest::run(&package, backend.as_mut())? else {
        println!(
            "PASS {}: no [selftest] in {}, so no outputs were compared with a reference",
            package.name(),
            dir.display()
        );
        return Ok(exit::OK);
    };
    for check in &report.checks {
        println!("{}: max abs diff {:e}", check.output, check.max_abs_diff);
    }
    let worst = report.worst().context("the self-test lists no outputs")?;
    let verdict = if report.passed() { "PASS" } else { "FAIL" };
    println!(
        "{verdict} {}: worst difference {:e} on {:?} (tolerance {:e})",
        report.model, worst.max_abs_diff, worst.output, report.tolerance
    );
    Ok(if report.passed() {
        exit::OK
    } else {
        exit::FAILED_ITEMS
    })
}
