//! `edgevit run`: the capture loop described by a configuration file.

use super::exit;
use anyhow::{Context, Result};
use edgevit::pipeline::{Pipeline, RunConfig};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// The TOML configuration file (see board-configs/ and the README's "Configuration").
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

pub fn run(args: Args) -> Result<i32> {
    let config = RunConfig::load(&args.config)?;
    let mut pipeline = Pipeline::from_config(&config)?;
    if let Some(metrics) = &config.metrics {
        pipeline.serve_metrics(metrics)?;
    }
    // SIGHUP (systemctl reload): re-read the file; the interpretation sections change live,
    // anything else is refused with a message and the running configuration stays.
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hangup))
        .context("cannot install the signal handlers")?;
    let started = config;
    let path = args.config.clone();
    pipeline.set_reload(
        hangup,
        Box::new(move || {
            let new = RunConfig::load(&path).map_err(|e| edgevit::error::chain(&e))?;
            new.check_restart_sections(&started)?;
            Ok((new.classify.clone(), new.vit_options()))
        }),
    );
    // SIGTERM (systemd stop) and SIGINT end the loop between frames, so the frame in flight
    // still gets its record and the sink is flushed.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handlers")?;
    }
    // Ready: the model is loaded and self-tested, the source and the sink are open.
    let notifier = edgevit::service::Notifier::start(pipeline.health());
    let summary = pipeline.run(&stop);
    if let Some(notifier) = notifier {
        notifier.stopping();
    }
    let summary = summary?;
    log::info!(
        "done: {} frames, {} results, {} errors",
        summary.frames,
        summary.results,
        summary.errors
    );
    Ok(exit::OK)
}
