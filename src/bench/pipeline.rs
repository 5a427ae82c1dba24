//! `edgevit bench --frames N`: the whole pipeline on camera frames of a given size and format
//! (synthetic, or one recorded frame), measured stage by stage and end to end.
//!
//! - **Cold start**: loading, optimising and self-testing the model.
//! - **Stages**: each frame through the same code as the loop, one stage after the other, each
//!   timed: convert (decode or colour conversion), resize, normalise, infer, interpret,
//!   publish (to the given sink; by default a JSON line to a file sink on /dev/null).
//! - **End to end**: the real loop (reader, workers, collector on their threads) on the same
//!   frames, its frames per second, CPU time per frame and the process's peak RSS.
//!
//! Figures are medians and percentiles; nothing here asserts a speed.

use super::frames::{recorded_frame, synthetic_frame, Replay};
use crate::backend::BackendConfig;
use crate::frame::PixelFormat;
use crate::interpret::ClassifyConfig;
use crate::memory::status_kb;
use crate::model::Task;
use crate::numbers::{percentile, round3};
use crate::pipeline::{LoadedModel, Pipeline, PipelineError, VitOptions};
use crate::preprocess::{lap, Preprocess, Preprocessor, StepTimes};
use crate::sink::{self, FrameInfo, Latency, Record, ResultRecord, SinkConfig};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Debug, Clone)]
pub struct PipelineBench {
    pub model: PathBuf,
    pub backend: BackendConfig,
    pub frames: usize,
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    /// Model instances in the end-to-end run.
    pub workers: usize,
    /// Where results go; a JSON-lines file on /dev/null when absent.
    pub sink: Option<SinkConfig>,
    /// A recorded frame of `format` and that size instead of the synthetic scene.
    pub input: Option<PathBuf>,
    /// The web page served during the end-to-end run, to measure what looking at it costs.
    pub web: Option<crate::web::WebConfig>,
}

/// Why a pipeline benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("{0}")]
    Setup(String),
    #[error("interrupted before the benchmark was done")]
    Interrupted,
}

/// One stage's latency over the frames, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct StageStats {
    pub stage: &'static str,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    pub model: String,
    pub backend: &'static str,
    pub frame: String,
    pub frames: usize,
    pub workers: usize,
    /// Load, optimisation and self-test of the model, once.
    pub cold_start_ms: f64,
    /// convert, resize, normalize, infer, interpret, publish, then the sum per frame.
    pub stages: Vec<StageStats>,
    /// The median share of a frame's time spent outside inference.
    pub outside_inference: f64,
    /// One frame after the other, stages in turn: 1 / mean of the sums.
    pub sequential_fps: f64,
    /// The loop on its threads, end to end.
    pub pipelined_fps: f64,
    /// User and system CPU time of the process per frame, during the end-to-end run.
    pub cpu_ms_per_frame: f64,
    /// The process's peak resident memory (loading included).
    pub peak_rss_mb: f64,
    /// The process's resident memory at the end of the end-to-end run: what the loop holds.
    pub rss_mb: f64,
    /// Of `rss_mb`, the pages of mapped files (the executable and its libraries), which the
    /// system shares and can drop; the rest is memory the process allocated.
    pub rss_file_mb: f64,
    /// Each frame's summed stage time in the stage-by-stage pass, in order.
    pub frame_ms: Vec<f64>,
}

const STAGES: [&str; 6] = [
    "convert",
    "resize",
    "normalize",
    "infer",
    "interpret",
    "publish",
];

/// Runs the benchmark; `progress` is told of each frame of the stage-by-stage pass.
/// `stop` (SIGINT, SIGTERM) ends it between frames with [`BenchError::Interrupted`].
pub fn run(
    bench: &PipelineBench,
    stop: &AtomicBool,
    mut progress: impl FnMut(usize),
) -> Result<PipelineReport, BenchError> {
    let frame = match &bench.input {
        Some(path) => recorded_frame(path, bench.width, bench.height, bench.format),
        None => synthetic_frame(bench.width, bench.height, bench.format),
    }
    .map_err(BenchError::Setup)?;
    let cold = Instant::now();
    let mut model = LoadedModel::load(&bench.model, &bench.backend)?;
    let cold_start_ms = ms(cold.elapsed());
    if model.package.manifest.task != Task::Classify {
        return Err(BenchError::Setup(format!(
            "model {:?} is a {} model: the pipeline benchmark measures classification models",
            model.package.name(),
            model.package.manifest.task.name()
        )));
    }
    let classify = ClassifyConfig::default();
    model.keep_read_outputs(&VitOptions::default())?;
    let interpret = model.interpreter(&classify, &VitOptions::default())?;
    let mut preprocess = Preprocessor::new(&model.package.manifest.input);
    let sink_config = bench.sink.clone().unwrap_or_else(|| {
        SinkConfig::File(sink::JsonLinesConfig {
            path: PathBuf::from("/dev/null"),
        })
    });
    let mut publish = sink::open(&sink_config).map_err(PipelineError::from)?;
    // The end-to-end run's other workers, loaded before the load-time code is handed back
    // (as `edgevit run` does once everything is loaded), so that the stage-by-stage pass's
    // untimed frames, not the timed loop, read the loop's code back.
    let more_workers = (1..bench.workers)
        .map(|_| LoadedModel::load(&bench.model, &bench.backend))
        .collect::<Result<Vec<_>, _>>()?;
    crate::memory::release_cold_code();

    let mut samples: Vec<[f64; 6]> = Vec::with_capacity(bench.frames);
    // A few untimed frames first: caches, lazily built kernels.
    let warmup = 3.min(bench.frames);
    for index in 0..warmup + bench.frames {
        if stop.load(Ordering::SeqCst) {
            return Err(BenchError::Interrupted);
        }
        let mut steps = StepTimes::default();
        let prepared = preprocess
            .prepare_frame_timed(&frame, &mut steps)
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let mut clock = Instant::now();
        let outputs = model
            .backend
            .run(&prepared.tensor)
            .map_err(PipelineError::from)?;
        let infer = lap(&mut clock);
        let result = interpret.interpret(&outputs).map_err(PipelineError::from)?;
        let interpreted = lap(&mut clock);
        preprocess.recycle(prepared);
        let record = Record::Result(ResultRecord {
            frame: FrameInfo::from_meta(&frame.meta),
            model: model.package.name().to_string(),
            backend: model.backend.name(),
            task: Task::Classify,
            result,
            latency_ms: Latency::default(),
        });
        publish.emit(&record).map_err(PipelineError::from)?;
        let published = lap(&mut clock);
        if index >= warmup {
            samples.push(
                [
                    steps.convert,
                    steps.resize,
                    steps.normalize,
                    infer,
                    interpreted,
                    published,
                ]
                .map(ms),
            );
            progress(index - warmup + 1);
        }
    }
    let frame_ms: Vec<f64> = samples.iter().map(|s| round3(s.iter().sum())).collect();
    let mut stages: Vec<StageStats> = STAGES
        .iter()
        .enumerate()
        .map(|(i, stage)| stats(stage, samples.iter().map(|s| s[i]).collect()))
        .collect();
    stages.push(stats("total", frame_ms.clone()));
    let outside = {
        let mut shares: Vec<f64> = samples
            .iter()
            .map(|s| {
                let total: f64 = s.iter().sum();
                if total > 0.0 {
                    (total - s[3]) / total
                } else {
                    0.0
                }
            })
            .collect();
        percentile(&mut shares, 0.5)
    };
    let mean_total = frame_ms.iter().sum::<f64>() / frame_ms.len().max(1) as f64;

    // The loop itself, on its threads: the same model instance first, then more workers.
    let name = model.package.name().to_string();
    let backend = model.backend.name();
    publish.flush().map_err(PipelineError::from)?;
    drop(publish);
    let camera = frame.meta.camera.clone();
    let source = Box::new(Replay::new(frame, bench.frames as u64));
    let sink = sink::open(&sink_config).map_err(PipelineError::from)?;
    let mut pipeline = Pipeline::new(model, &classify, &VitOptions::default(), source, sink)?;
    for model in more_workers {
        pipeline.add_worker(model, &classify, &VitOptions::default())?;
    }
    let around = crate::pipeline::WebSources {
        cameras: vec![camera],
        ..Default::default()
    };
    let _web = (bench.web.as_ref())
        .map(|web| pipeline.serve_web(web, around))
        .transpose()?;
    let cpu_before = cpu_time();
    let start = Instant::now();
    let summary = pipeline.run(stop)?;
    if stop.load(Ordering::SeqCst) {
        return Err(BenchError::Interrupted);
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_time().saturating_sub(cpu_before);
    let rss_kb = status_kb("VmRSS:").unwrap_or(0);
    let rss_file_kb = status_kb("RssFile:").unwrap_or(0);
    let done = summary.frames.max(1) as f64;
    Ok(PipelineReport {
        model: name,
        backend,
        frame: format!("{}x{} {}", bench.width, bench.height, bench.format.name()),
        frames: bench.frames,
        workers: bench.workers,
        cold_start_ms: round3(cold_start_ms),
        stages,
        outside_inference: round3(outside),
        sequential_fps: round3(1e3 / mean_total.max(1e-9)),
        pipelined_fps: round3(done / wall.max(1e-9)),
        cpu_ms_per_frame: round3(ms(cpu) / done),
        peak_rss_mb: round3(peak_rss_kb() as f64 / 1024.0),
        rss_mb: round3(rss_kb as f64 / 1024.0),
        rss_file_mb: round3(rss_file_kb as f64 / 1024.0),
        frame_ms,
    })
}

fn stats(stage: &'static str, mut values: Vec<f64>) -> StageStats {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    StageStats {
        stage,
        p50_ms: round3(percentile(&mut values, 0.5)),
        p90_ms: round3(percentile(&mut values, 0.9)),
        p99_ms: round3(percentile(&mut values, 0.99)),
        mean_ms: round3(mean),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// User plus system CPU time of this process so far.
fn cpu_time() -> Duration {
    let usage = rusage();
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The process's peak resident set size, KiB: `VmHWM` of /proc/self/status. (`ru_maxrss`
/// would do, but it survives `exec` on Linux: a process started by a larger one reports its
/// parent's peak.)
fn peak_rss_kb() -> u64 {
    status_kb("VmHWM:").unwrap_or_else(|| rusage().ru_maxrss.max(0) as u64)
}

fn rusage() -> libc::rusage {
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF cannot fail.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    }
}

/// Writes `report` as pretty JSON to `path`.
pub fn write_json(report: &PipelineReport, path: &Path) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}
