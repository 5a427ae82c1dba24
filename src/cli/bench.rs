//! `edgevit bench`: inference latency of model packages, with ratios to the first; with
//! `--frames N`, the whole pipeline on synthetic camera frames, stage by stage and end to end.

use super::args::{at_least_one, BackendArgs};
use super::exit;
use anyhow::{bail, Context, Result};
use edgevit::bench;
use edgevit::bench::pipeline::{BenchError, PipelineBench, PipelineReport};
use edgevit::bench::scene::SceneBench;
use edgevit::frame::PixelFormat;
use edgevit::pipeline::LoadedModel;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Model package folders; the first is the baseline of `ratio_to_first` (inference alone).
    #[arg(value_name = "DIR")]
    models: Vec<PathBuf>,
    /// The model package of the whole-pipeline benchmark (`--frames`); or give it as DIR.
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArgs,
    /// Untimed inferences before measuring (0 for none).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Timed inferences per model.
    #[arg(long, default_value_t = 30, value_parser = at_least_one)]
    iterations: usize,
    /// Runs the whole pipeline on N synthetic frames: each stage timed (convert, resize,
    /// normalize, infer, interpret, publish), then the loop on its threads end to end.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    frames: Option<usize>,
    /// `--frames`: the frames' size.
    #[arg(long, default_value = "1920x1080", value_parser = frame_size)]
    size: (u32, u32),
    /// `--frames`: the frames' pixel format.
    #[arg(long, default_value = "yuyv", value_parser = ["yuyv", "nv12", "mjpeg", "rgb", "bgr", "gray"])]
    format: String,
    /// `--frames`: model instances in the end-to-end run (`[pipeline] workers`).
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    workers: usize,
    /// `--frames`: a recorded frame instead of the synthetic scene: a raw frame of `--format`
    /// and `--size` as `edgevit snapshot` saves it, or a JPEG for `--format mjpeg`.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// `--frames`: publish to the `[sink]` of this TOML file (as in a run configuration, e.g.
    /// MQTT) instead of a file sink on /dev/null.
    #[arg(long, value_name = "FILE")]
    sink: Option<PathBuf>,
    /// `--frames`: also write the whole report, every frame's latency included, as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// `--frames`: a detector package before the model: what a scene costs per stage (decode,
    /// detect, track, the model's looks) for each number of objects in `--objects`.
    #[arg(long, value_name = "DIR")]
    detector: Option<PathBuf>,
    /// `--detector`: the numbers of objects to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,1,5,20")]
    objects: Vec<usize>,
    /// `--frames`: serve the web page on ADDR (`127.0.0.1:8090`) during the end-to-end run,
    /// to measure what a browser looking at it costs the loop.
    #[arg(long, value_name = "ADDR")]
    web: Option<String>,
    /// After the timing, each node of the graph timed over `--iterations` runs, by op class
    /// (weight and attention matmuls, softmax, norm, GELU, copies...), with tract's count of
    /// the multiply-adds: one more JSON line per model, and a table on stderr. tract only.
    #[arg(long, conflicts_with = "frames")]
    profile: bool,
    /// `--frames`: draw the stages and the latency over the frames as an SVG picture.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

/// `WIDTHxHEIGHT`.
fn frame_size(text: &str) -> Result<(u32, u32), String> {
    let parsed = text
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)));
    match parsed {
        Some((w, h)) if w >= 8 && h >= 8 && w <= 8192 && h <= 8192 => Ok((w, h)),
        _ => Err(format!(
            "{text:?} is not a frame size: WIDTHxHEIGHT, each 8 to 8192 (e.g. 1920x1080)"
        )),
    }
}

pub fn run(args: Args) -> Result<i32> {
    if args.frames.is_some() {
        return run_pipeline(args);
    }
    if args.models.is_empty() {
        bail!("name at least one model package (DIR), or --frames N with --model DIR");
    }
    let stop = super::stop_on_signals()?;
    let mut baseline = None;
    for dir in args.models {
        let mut loaded = LoadedModel::load(&dir, &args.backend.config()?)?;
        let input = bench::synthetic_input(loaded.package.manifest.input.shape);
        let measured = bench::measure(
            loaded.backend.as_mut(),
            &input,
            args.warmup,
            args.iterations,
            &stop,
        )?;
        let Some(timing) = measured else {
            eprintln!("bench: interrupted; {} not measured", dir.display());
            return Ok(exit::INTERRUPTED);
        };
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
        if args.profile {
            profile(loaded.backend.as_mut(), &input, args.iterations, &line)?;
        }
    }
    Ok(exit::OK)
}

/// `--profile`: one JSON line (the classes, the ten slowest nodes) and a table on stderr.
fn profile(
    backend: &mut dyn edgevit::backend::InferenceBackend,
    input: &edgevit::tensor::Tensor,
    runs: usize,
    timed: &serde_json::Value,
) -> Result<()> {
    let name = backend.name();
    let Some(profile) = backend.profile(input, runs) else {
        bail!("--profile: the {name} backend cannot time its nodes (tract can)");
    };
    let mut profile = profile.context("profiling")?;
    profile.nodes.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    profile.nodes.truncate(10);
    eprintln!(
        "{:<22} {:>5} {:>9} {:>6} {:>8} {:>8}",
        "class", "nodes", "ms", "share", "GFLOP", "GFLOP/s"
    );
    for c in &profile.classes {
        let rate = if c.ms > 0.0 {
            c.gflop / c.ms * 1e3
        } else {
            0.0
        };
        eprintln!(
            "{:<22} {:>5} {:>9.3} {:>5.1}% {:>8.3} {:>8.1}",
            c.class,
            c.nodes,
            c.ms,
            100.0 * c.share,
            c.gflop,
            rate
        );
    }
    let line = serde_json::json!({
        "model": timed["model"],
        "backend": name,
        "threads": timed["threads"],
        "profile": profile,
    });
    println!("{line}");
    Ok(())
}

/// The pixel format `--format` names.
fn pixel_format(name: &str) -> PixelFormat {
    match name {
        "nv12" => PixelFormat::Nv12,
        "mjpeg" => PixelFormat::Mjpeg,
        "rgb" => PixelFormat::Rgb24,
        "bgr" => PixelFormat::Bgr24,
        "gray" => PixelFormat::Gray8,
        _ => PixelFormat::Yuyv,
    }
}

/// `--frames N --detector DIR --model DIR`: one JSON line per number of objects.
fn run_scene(args: &Args, detector: PathBuf, model: PathBuf) -> Result<i32> {
    let frames = args.frames.unwrap_or(1);
    let setup = SceneBench {
        detector,
        model,
        backend: args.backend.config()?,
        frames,
        width: args.size.0,
        height: args.size.1,
        format: pixel_format(&args.format),
        objects: args.objects.clone(),
    };
    let bar = indicatif::ProgressBar::new((frames * setup.objects.len()) as u64);
    let stop = super::stop_on_signals()?;
    let report = edgevit::bench::scene::run(&setup, &stop, |done| bar.set_position(done as u64));
    bar.finish_and_clear();
    let report = match report {
        Ok(report) => report,
        Err(BenchError::Interrupted) => {
            eprintln!("bench: interrupted; the scene was not measured");
            return Ok(exit::INTERRUPTED);
        }
        Err(e) => return Err(e).context("scene benchmark"),
    };
    for row in &report.rows {
        let line = serde_json::json!({
            "detector": report.detector,
            "model": report.model,
            "backend": report.backend,
            "size": format!("{}x{}", report.width, report.height),
            "frames": report.frames,
            "row": row,
        });
        println!("{line}");
    }
    Ok(exit::OK)
}

fn run_pipeline(args: Args) -> Result<i32> {
    let model = match (&args.model, args.models.as_slice()) {
        (Some(model), []) => model.clone(),
        (None, [model]) => model.clone(),
        (None, []) => bail!("--frames needs the model package: --model DIR"),
        _ => bail!("--frames measures one model package: give one DIR or --model DIR"),
    };
    if let Some(detector) = args.detector.clone() {
        return run_scene(&args, detector, model);
    }
    let format = pixel_format(&args.format);
    let frames = args.frames.unwrap_or(1);
    let setup = PipelineBench {
        model,
        backend: args.backend.config()?,
        frames,
        width: args.size.0,
        height: args.size.1,
        format,
        workers: args.workers,
        sink: args.sink.as_deref().map(sink_section).transpose()?,
        input: args.input.clone(),
        web: args.web.clone().map(|listen| edgevit::web::WebConfig {
            listen,
            ..Default::default()
        }),
    };
    // Drawn on a terminal only.
    let bar = indicatif::ProgressBar::new(frames as u64);
    let stop = super::stop_on_signals()?;
    let report = bench::pipeline::run(&setup, &stop, |done| bar.set_position(done as u64));
    bar.finish_and_clear();
    let report = match report {
        Err(BenchError::Interrupted) => {
            eprintln!("bench: interrupted; nothing measured is printed");
            return Ok(exit::INTERRUPTED);
        }
        other => other?,
    };
    println!("{}", summary(&report));
    if let Some(path) = &args.json {
        bench::pipeline::write_json(&report, path)
            .with_context(|| format!("--json {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        bench::plot::write_svg(&report, path).map_err(anyhow::Error::msg)?;
    }
    Ok(exit::OK)
}

/// The `[sink]` table of a TOML file.
fn sink_section(path: &std::path::Path) -> Result<edgevit::sink::SinkConfig> {
    #[derive(serde::Deserialize)]
    struct SinkOnly {
        sink: edgevit::sink::SinkConfig,
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--sink {}", path.display()))?;
    let parsed: SinkOnly =
        toml::from_str(&text).with_context(|| format!("--sink {}", path.display()))?;
    Ok(parsed.sink)
}

/// The report without the per-frame list, on one line.
fn summary(report: &PipelineReport) -> serde_json::Value {
    let mut value = serde_json::to_value(report).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("frame_ms");
    }
    value
}
