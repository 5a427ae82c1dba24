//! The `edgevit` subcommands, one module each; `main.rs` only parses and dispatches.

mod args;
mod bench;
mod check;
mod classes;
mod gallery;
mod infer;
pub mod logging;
mod models;
mod probe;
mod run;
mod snapshot;

use clap::{Parser, Subcommand};

/// Exit codes (documented in docs/command-line.md, "Exit codes").
pub mod exit {
    /// Done: every record was delivered, or is kept in the MQTT spool for a later delivery.
    pub const OK: i32 = 0;
    /// `infer`: an image gave an error record; `models check`: the self-test failed.
    pub const FAILED_ITEMS: i32 = 1;
    /// An error stopped edgevit: bad configuration, unusable model, a source or sink that
    /// could not start, a state file that cannot be written.
    pub const ERROR: i32 = 2;
    /// The run ended but records were lost: a sink could not deliver them and had nowhere to
    /// keep them (a serial port that stayed away).
    pub const RECORDS_LOST: i32 = 3;
    /// `infer`, `bench`: stopped by SIGINT or SIGTERM before the end (128 + 2, as a shell
    /// reports a command ended by Ctrl-C); every line printed is whole.
    pub const INTERRUPTED: i32 = 130;
}

/// A flag that SIGINT (Ctrl-C) and SIGTERM (systemd, `kill`) set: the commands that loop
/// watch it and end between frames, so that no record is cut in half and sinks are flushed.
pub fn stop_on_signals() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))
            .map_err(|e| anyhow::anyhow!("cannot install the signal handlers: {e}"))?;
    }
    Ok(stop)
}

#[derive(Parser)]
#[command(
    name = "edgevit",
    version,
    about = "Fine-grained recognition and ReID with Vision Transformers on edge boards"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify image files: one JSON line per image on stdout.
    Infer(infer::Args),
    /// Run the capture loop described by a configuration file.
    Run(run::Args),
    /// Check a configuration completely without capturing: it parses, the model loads and
    /// passes its self-test, the files and devices it names exist; exit code 1 on FAIL.
    Check(check::Args),
    /// The identities of a ReID gallery: enroll, list, rename, merge, forget.
    Gallery {
        #[command(subcommand)]
        command: gallery::Command,
    },
    /// Classes by example: enrol a few images per class, then classify by them
    /// (`[classify] classes`) without a training run.
    Classes {
        #[command(subcommand)]
        command: classes::Command,
    },
    /// Inspect model packages.
    Models {
        #[command(subcommand)]
        command: models::Command,
    },
    /// List video capture devices (formats, sizes, frame rates) and the inference backends
    /// this build has.
    Probe(probe::Args),
    /// Grab frames from one camera and save each, decoded by edgevit, as a PNG (with its raw
    /// bytes beside it); prints one JSON line per frame and per camera status change.
    Snapshot(snapshot::Args),
    /// Measure inference latency (median of repeated runs) of one or more model packages;
    /// ratios are against the first.
    Bench(bench::Args),
}

/// Runs the parsed command and returns the process's exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Infer(args) => infer::run(args),
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::run(args),
        Command::Models { command } => models::run(command),
        Command::Gallery { command } => gallery::run(command),
        Command::Classes { command } => classes::run(command),
        Command::Probe(args) => probe::run(args),
        Command::Snapshot(args) => snapshot::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

/// The exit code for an error that ended a command, and whether to print it: a closed
/// standard output (`edgevit infer ... | head -1`) ends quietly.
pub fn exit_code(error: &anyhow::Error) -> (i32, bool) {
    use edgevit::pipeline::PipelineError;
    use edgevit::sink::SinkError;
    match error.downcast_ref::<PipelineError>() {
        Some(PipelineError::Sink(SinkError::OutputClosed { .. })) => (exit::OK, false),
        Some(PipelineError::Sink(SinkError::Undelivered { .. })) => (exit::RECORDS_LOST, true),
        _ => (exit::ERROR, true),
    }
}
