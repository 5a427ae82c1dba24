//! `edgevit models ...`: inspect model packages.

use super::args::at_least_one;
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
        /// Threads for tract's matrix products.
        #[arg(long, default_value_t = 1, value_parser = at_least_one)]
        threads: usize,
    },
}

pub fn run(command: Command) -> Result<i32> {
    match command {
        Command::Check { dir, threads } => check(dir, threads),
    }
}

fn check(dir: PathBuf, threads: usize) -> Result<i32> {
    let package = ModelPackage::open(&dir)?;
    // Loading checks the manifest against the graph: input name and shape, output names.
    let mut backend = edgevit::backend::open(&package, &tract(threads))?;
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
