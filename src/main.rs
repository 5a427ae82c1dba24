//! The `edgevit` command line.

mod snapshot;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use edgevit::backend::{BackendConfig, TractConfig};
use edgevit::bench;
use edgevit::interpret::ClassifyConfig;
use edgevit::model::{selftest, ModelPackage};
use edgevit::pipeline::{LoadedModel, Pipeline, RunConfig};
use edgevit::sink::JsonLinesSink;
use edgevit::source::ImageListSource;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "edgevit",
    version,
    about = "Fine-grained recognition and ReID with Vision Transformers on edge boards"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify image files: one JSON line per image on stdout.
    Infer {
        /// Model package folder (with model.toml).
        #[arg(long)]
        model: PathBuf,
        /// Threads for tract's matrix products.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Classes to report per image.
        #[arg(long, default_value_t = 5)]
        top_k: usize,
        /// Leave out classes below this probability.
        #[arg(long, default_value_t = 0.0)]
        min_score: f32,
        /// Camera id to report.
        #[arg(long, default_value = "cam0")]
        camera: String,
        /// PNG, JPEG or BMP files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Run the capture loop described by a configuration file.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Inspect model packages.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// List video capture devices (formats, sizes, frame rates) and the inference backends
    /// this build has.
    Probe {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Grab frames from one camera and save each, decoded by edgevit, as a PNG (with its raw
    /// bytes beside it); prints one JSON line per frame and per camera status change.
    Snapshot {
        /// Device path or name (as `edgevit probe` lists it).
        #[arg(long)]
        device: String,
        /// Pixel format (YUYV, NV12, NM12, GREY, RGB3, BGR3, MJPG); default: the first the
        /// device offers.
        #[arg(long)]
        format: Option<String>,
        #[arg(long, default_value_t = 640)]
        width: u32,
        #[arg(long, default_value_t = 480)]
        height: u32,
        /// Frames to save.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Give up after this many seconds without the frames.
        #[arg(long, default_value_t = 20)]
        timeout: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure inference latency (median of repeated runs) of one or more model packages;
    /// ratios are against the first.
    Bench {
        #[arg(required = true)]
        models: Vec<PathBuf>,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        #[arg(long, default_value_t = 30)]
        iterations: usize,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Load a package, run its self-test and print the worst difference from the reference.
    Check {
        dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
}

fn tract(threads: usize) -> BackendConfig {
    BackendConfig::Tract(TractConfig { threads })
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .target(env_logger::Target::Stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    let never_stop = AtomicBool::new(false);
    match cli.command {
        Command::Infer {
            model,
            threads,
            top_k,
            min_score,
            camera,
            images,
        } => {
            let loaded = LoadedModel::load(&model, &tract(threads))?;
            let classify = ClassifyConfig { top_k, min_score };
            let source = Box::new(ImageListSource::new(images, camera));
            let mut pipeline =
                Pipeline::new(loaded, &classify, source, Box::new(JsonLinesSink::stdout()))?;
            let summary = pipeline.run(&never_stop)?;
            Ok(if summary.errors > 0 { 1 } else { 0 })
        }
        Command::Run { config } => {
            let config = RunConfig::load(&config)?;
            let mut pipeline = Pipeline::from_config(&config)?;
            // SIGTERM (systemd stop) and SIGINT end the loop between frames, so the frame in
            // flight still gets its record and the sink is flushed.
            let stop = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(signal, Arc::clone(&stop))
                    .context("cannot install the signal handlers")?;
            }
            let summary = pipeline.run(&stop)?;
            log::info!(
                "done: {} frames, {} results, {} errors",
                summary.frames,
                summary.results,
                summary.errors
            );
            Ok(0)
        }
        Command::Models {
            command: ModelsCommand::Check { dir, threads },
        } => {
            let package = ModelPackage::open(&dir)?;
            let mut backend = edgevit::backend::open(&package, &tract(threads))?;
            let Some(report) = selftest::run(&package, backend.as_mut())? else {
                bail!(
                    "{} has no [selftest] section: nothing to check",
                    dir.display()
                );
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
            Ok(if report.passed() { 0 } else { 1 })
        }
        Command::Snapshot {
            device,
            format,
            width,
            height,
            count,
            timeout,
            out,
        } => {
            snapshot::run(snapshot::Request {
                device,
                format,
                width,
                height,
                count,
                timeout: std::time::Duration::from_secs(timeout),
                out,
            })?;
            Ok(0)
        }
        Command::Probe { json } => {
            let devices = edgevit::source::v4l2::probe::probe_devices();
            let backends = edgevit::backend::available();
            if json {
                let doc = serde_json::json!({ "devices": devices, "backends": backends });
                println!("{doc:#}");
            } else {
                print!("{}", edgevit::source::v4l2::probe::render(&devices));
                println!("backends:");
                for backend in &backends {
                    println!("    {}: {}", backend.name, backend.status);
                }
            }
            Ok(0)
        }
        Command::Bench {
            models,
            threads,
            warmup,
            iterations,
        } => {
            let mut baseline = None;
            for dir in models {
                let mut loaded = LoadedModel::load(&dir, &tract(threads))?;
                let input = bench::synthetic_input(loaded.package.manifest.input.shape);
                let timing = bench::measure(loaded.backend.as_mut(), &input, warmup, iterations)?;
                let base = *baseline.get_or_insert(timing.median_ms);
                let line = serde_json::json!({
                    "model": loaded.package.name(),
                    "path": dir.display().to_string(),
                    "backend": loaded.backend.name(),
                    "threads": threads,
                    "timing": timing,
                    "ratio_to_first": timing.median_ms / base,
                });
                println!("{line}");
            }
            Ok(0)
        }
    }
}
