//! `edgevit infer`: image files through a model, one JSON line each on stdout.

use super::args::{at_least_one, probability, BackendArgs};
use super::exit;
use anyhow::Result;
use edgevit::backend::{BackendConfig, TractConfig};
use edgevit::detect::DetectOverrides;
use edgevit::gallery::GalleryConfig;
use edgevit::interpret::{ClassifyConfig, MatchBy, PartsConfig, ReidConfig, ZoomConfig};
use edgevit::model::Task;
use edgevit::pipeline::{LoadedModel, Pipeline, VitOptions};
use edgevit::sink::{DrawSink, JsonLinesSink, Sink};
use edgevit::source::ImageListSource;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Model package folder (the one holding model.toml).
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    #[command(flatten)]
    backend: BackendArgs,
    /// Classes to report per image, best first.
    #[arg(long, default_value_t = 5, value_parser = at_least_one)]
    top_k: usize,
    /// Leave out classes whose probability is below this (0 to 1); for a detector, objects
    /// scoring below it (else its package's `detect.min_score`).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    min_score: f32,
    /// Camera id to report in each result (and, for ReID, to record the sightings under).
    #[arg(long, default_value = "cam0")]
    camera: String,
    /// ReID models: the gallery file to match each whole image against (created if absent).
    #[arg(long, value_name = "PATH")]
    gallery: Option<PathBuf>,
    /// Models with an embedding: classify each image by the examples in this file
    /// (`edgevit classes enroll`) instead of matching it in a gallery.
    #[arg(long, value_name = "PATH", conflicts_with = "gallery")]
    classes: Option<PathBuf>,
    /// With --classes: compare with each class's mean example (`prototype`) or its nearest
    /// (`nearest`).
    #[arg(long, value_name = "HOW", default_value = "prototype", value_parser = match_by, requires = "classes")]
    match_by: MatchBy,
    /// ReID models with SIE: the camera index fed to the model.
    #[arg(long, value_name = "N", default_value_t = 0)]
    camera_index: usize,
    /// ReID models: also embed each image's mirror image and average the two.
    #[arg(long)]
    flip: bool,
    /// Zoom (RAMS-Trans): crop the attended region from the full-resolution image, run the
    /// model on it again and fuse the passes; adds `region` and `passes` to each result.
    #[arg(long)]
    zoom: bool,
    /// Report the K strongest attended parts as boxes (`parts`).
    #[arg(long, value_name = "K", value_parser = at_least_one)]
    parts: Option<usize>,
    /// Also save each image as a PNG in DIR with its zoom region (red) and parts (yellow).
    #[arg(long, value_name = "DIR")]
    draw: Option<PathBuf>,
    /// PNG, JPEG or BMP files, each classified once, in the order given.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

/// The CPU backend with `threads` threads.
pub fn tract(threads: usize) -> BackendConfig {
    BackendConfig::Tract(TractConfig {
        threads,
        ..Default::default()
    })
}

pub fn run(args: Args) -> Result<i32> {
    let loaded = LoadedModel::load(&args.model, &args.backend.config()?)?;
    check_flags_fit(&args, loaded.package.manifest.task)?;
    let classify = ClassifyConfig {
        top_k: args.top_k,
        min_score: args.min_score,
        classes: args.classes.clone(),
        match_by: args.match_by,
        ..ClassifyConfig::default()
    };
    let vit = VitOptions {
        zoom: args.zoom.then(ZoomConfig::default),
        parts: args.parts.map(|count| PartsConfig { count }),
        ..VitOptions::default()
    };
    let source = Box::new(
        ImageListSource::new(args.images.clone(), args.camera.clone())
            .with_camera_index(args.camera_index),
    );
    let stdout = Box::new(JsonLinesSink::stdout());
    let sink: Box<dyn Sink> = match &args.draw {
        Some(dir) => Box::new(DrawSink::new(stdout, dir)?),
        None => stdout,
    };
    let mut pipeline = match (loaded.package.manifest.task, &args.gallery) {
        (Task::Reid, None) if args.classes.is_some() => {
            Pipeline::new(loaded, &classify, &vit, source, sink)?
        }
        (Task::Reid, Some(gallery)) => {
            let reid = ReidConfig {
                flip: args.flip,
                ..ReidConfig::default()
            };
            Pipeline::new_reid(loaded, &reid, &GalleryConfig::default(), gallery, source, sink)?
        }
        (Task::Reid, None) => anyhow::bail!(
            "{} is a ReID model: give the gallery to match against with --gallery PATH (created if absent), or classes by example with --classes PATH",
            args.model.display()
        ),
        (Task::Classify, _) => Pipeline::new(loaded, &classify, &vit, source, sink)?,
        (Task::Detect, _) => {
            // --min-score, when given, is the detector's threshold; else its package's.
            let overrides = DetectOverrides {
                min_score: (args.min_score > 0.0).then_some(args.min_score),
                ..DetectOverrides::default()
            };
            Pipeline::new_detect(loaded, &overrides, source, sink)?
        }
    };
    // SIGINT and SIGTERM end the run between images: the image in flight gets its whole line.
    let stop = super::stop_on_signals()?;
    let images = args.images.len() as u64;
    let summary = pipeline.run(&stop)?;
    if summary.frames < images && stop.load(std::sync::atomic::Ordering::SeqCst) {
        eprintln!(
            "infer: interrupted after {} of {images} images",
            summary.frames
        );
        return Ok(exit::INTERRUPTED);
    }
    Ok(if summary.errors > 0 {
        exit::FAILED_ITEMS
    } else {
        exit::OK
    })
}

/// Refuses flags that the model's task would ignore, rather than ignoring them silently.
fn check_flags_fit(args: &Args, task: Task) -> Result<()> {
    let name = task.name();
    let model = args.model.display();
    if args.classes.is_some() && task != Task::Reid {
        anyhow::bail!(
            "--classes classifies by a model's embedding; {model} is a `{name}` model without one"
        );
    }
    match task {
        Task::Classify => {
            for (given, flag) in [(args.gallery.is_some(), "--gallery"), (args.flip, "--flip")] {
                if given {
                    anyhow::bail!("{flag} is for ReID models; {model} is a `{name}` model");
                }
            }
        }
        Task::Detect => {
            let given = [
                (args.gallery.is_some(), "--gallery"),
                (args.flip, "--flip"),
                (args.zoom, "--zoom"),
                (args.parts.is_some(), "--parts"),
            ];
            for (given, flag) in given {
                if given {
                    anyhow::bail!("{flag} is not for detectors; {model} is a `{name}` model");
                }
            }
        }
        Task::Reid => {
            let vit = [(args.zoom, "--zoom"), (args.parts.is_some(), "--parts")];
            for (given, flag) in vit {
                if given {
                    anyhow::bail!(
                        "{flag} is for classification models; {model} is a `{name}` model"
                    );
                }
            }
        }
    }
    Ok(())
}

/// `--match-by`: `prototype` or `nearest`.
fn match_by(text: &str) -> Result<MatchBy, String> {
    match text {
        "prototype" => Ok(MatchBy::Prototype),
        "nearest" => Ok(MatchBy::Nearest),
        other => Err(format!("{other:?}: give prototype or nearest")),
    }
}
