//! `edgevit run`: the capture loop described by a configuration file.

use super::exit;
use anyhow::{Context, Result};
use edgevit::gpio::{CdevPin, GpioConfig, StatusLed, Trigger};
use edgevit::pipeline::{Pipeline, RunConfig, WebSources};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The TOML configuration file (see board-configs/ and docs/configuration.md).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Also save each frame read from an image file as a PNG in DIR, with what was found drawn
    /// on it (boxes, track ids, identities; zoom regions and parts).
    #[arg(long, value_name = "DIR")]
    draw: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<i32> {
    let config = RunConfig::load(&args.config)?;
    let release_load_code = config.pipeline.release_load_code;
    let mut pipeline = Pipeline::from_config(&config)?;
    if let Some(dir) = &args.draw {
        pipeline.draw_into(dir)?;
    }
    if let Some(metrics) = &config.metrics {
        let cameras: Vec<&str> = config
            .source
            .camera_ids()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        pipeline.serve_metrics(metrics, &cameras)?;
    }
    // Served until the loop ends (dropped at the end of this function).
    let _web = match &config.web {
        Some(web) => Some(pipeline.serve_web(web, WebSources::of(&config))?),
        None => None,
    };
    let led_stop = Arc::new(AtomicBool::new(false));
    let led = match &config.gpio {
        Some(gpio) => gpio_lines(gpio, &mut pipeline, &led_stop)?,
        None => None,
    };
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
    let stop = super::stop_on_signals()?;
    // Ready: the model is loaded and self-tested, the source and the sink are open. What ran
    // to load it runs no more: its code pages go back to the kernel.
    if release_load_code {
        edgevit::memory::release_cold_code();
    }
    let notifier = edgevit::service::Notifier::start(pipeline.health());
    let summary = pipeline.run(&stop);
    if let Some(notifier) = notifier {
        notifier.stopping();
    }
    led_stop.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(led) = led {
        let _ = led.join();
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

/// Requests the trigger and LED lines of `[gpio]`: the trigger gates the pipeline, the LED is
/// driven by its own thread from the pipeline's health.
fn gpio_lines(
    gpio: &GpioConfig,
    pipeline: &mut Pipeline,
    stop: &Arc<AtomicBool>,
) -> Result<Option<std::thread::JoinHandle<()>>> {
    if let Some(trigger) = &gpio.trigger {
        let pin = CdevPin::input(&gpio.chip, trigger.line, trigger.active_low)
            .context("`gpio.trigger`")?;
        pipeline.set_trigger(Box::new(Trigger::new(
            pin,
            trigger.edge,
            Duration::from_millis(trigger.debounce_ms),
        )));
        log::info!(
            "frames are taken on {:?} edges of line {} of {}",
            trigger.edge,
            trigger.line,
            gpio.chip.display()
        );
    }
    let Some(led) = &gpio.status_led else {
        return Ok(None);
    };
    let pin = CdevPin::output(&gpio.chip, led.line, led.active_low).context("`gpio.status_led`")?;
    let thread =
        edgevit::gpio::led::spawn(StatusLed::new(pin), pipeline.health(), Arc::clone(stop))
            .context("cannot start the status LED thread")?;
    Ok(Some(thread))
}
