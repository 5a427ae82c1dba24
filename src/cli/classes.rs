//! `edgevit classes ...`: classes by example. Enrol a few images per class with a model that
//! gives an embedding; a run with `[classify] classes` then classifies by them, no training.

use anyhow::{Context, Result};
use edgevit::backend::BackendConfig;
use edgevit::interpret::{ClassExamples, Embedder, ReidConfig};
use edgevit::model::Task;
use edgevit::pipeline::{LoadedModel, RunConfig};
use edgevit::preprocess::{Preprocess, Preprocessor};
use edgevit::source::{FrameSource, ImageListSource};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Add images of one class (each whole image one example; a class that exists gains them).
    Enroll(EnrollArgs),
    /// List the classes of a file and their numbers of examples.
    List {
        #[command(flatten)]
        at: At,
    },
    /// Remove a class and its examples.
    Forget {
        #[command(flatten)]
        at: At,
        /// The class.
        class: String,
    },
}

/// Which model and classes file: a run configuration's, or given.
#[derive(clap::Args)]
pub struct At {
    /// The run configuration: its `[model]`, `[backend]` and `[classify] classes` are used.
    #[arg(long, value_name = "FILE", required_unless_present = "classes")]
    config: Option<PathBuf>,
    /// Instead of --config: the classes file (created by the first enrolment).
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    classes: Option<PathBuf>,
    /// With --classes: the model package that embeds (run on tract).
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    model: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct EnrollArgs {
    #[command(flatten)]
    at: At,
    /// The class's name.
    #[arg(long = "class", value_name = "NAME")]
    class: String,
    /// Images of the class (PNG, JPEG, BMP).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

/// The model, backend and classes file an `At` names.
struct Setup {
    model: Option<PathBuf>,
    backend: BackendConfig,
    classes: PathBuf,
}

impl At {
    fn setup(&self) -> Result<Setup> {
        if let Some(classes) = &self.classes {
            return Ok(Setup {
                model: self.model.clone(),
                backend: BackendConfig::default(),
                classes: classes.clone(),
            });
        }
        let Some(path) = &self.config else {
            anyhow::bail!("give --config FILE, or --classes PATH (with --model DIR to enrol)");
        };
        let config = RunConfig::load(path)?;
        let classes = config
            .classify
            .classes
            .clone()
            .with_context(|| format!("{} has no `[classify] classes` file", path.display()))?;
        Ok(Setup {
            model: Some(config.model.path),
            backend: config.backend,
            classes,
        })
    }
}

pub fn run(command: Command) -> Result<i32> {
    match command {
        Command::Enroll(args) => enroll(args),
        Command::List { at } => {
            let examples = ClassExamples::load(&at.setup()?.classes)?;
            println!(
                "classes of model {:?} ({}-number embeddings)",
                examples.model, examples.dim
            );
            for (name, rows) in &examples.classes {
                println!("{name:<24} {} examples", rows.len());
            }
            Ok(super::exit::OK)
        }
        Command::Forget { at, class } => {
            let path = at.setup()?.classes;
            let mut examples = ClassExamples::load(&path)?;
            if examples.classes.remove(&class).is_none() {
                anyhow::bail!("{}: no class {class:?}", path.display());
            }
            examples.save(&path)?;
            println!("{class:?} forgotten");
            Ok(super::exit::OK)
        }
    }
}

fn enroll(args: EnrollArgs) -> Result<i32> {
    let setup = args.at.setup()?;
    let model_dir = setup
        .model
        .context("enrolment needs the model: give --model DIR (or --config FILE)")?;
    let model = LoadedModel::load(&model_dir, &setup.backend)?;
    if model.package.manifest.task != Task::Reid {
        anyhow::bail!(
            "model {:?} gives no embedding (task = \"{}\"): classes by example need a package with [outputs] embedding (task = \"reid\")",
            model.package.name(),
            model.package.manifest.task.name()
        );
    }
    let embedder = Embedder::new(&model.package, &ReidConfig::default())?;
    let dim = embedder.dim(model.backend.as_ref());
    let mut examples = if setup.classes.exists() {
        let examples = ClassExamples::load(&setup.classes)?;
        examples
            .check_model(&model.package, dim)
            .map_err(anyhow::Error::msg)?;
        examples
    } else {
        ClassExamples::new(model.package.name(), dim.unwrap_or(0))
    };
    let mut backend = model.backend;
    let mut preprocess = Preprocessor::new(&model.package.manifest.input);
    let mut source = ImageListSource::new(args.images.clone(), "enroll".into());
    let mut added = Vec::new();
    while let Some(frame) = source.next_frame() {
        let frame = frame.map_err(|failed| anyhow::Error::new(failed.error))?;
        let image = frame.meta.path.clone().unwrap_or_default();
        let tensor = preprocess
            .prepare(&frame)
            .with_context(|| format!("cannot read {}", image.display()))?;
        let outputs = backend
            .run(&tensor)
            .with_context(|| format!("{}: inference", image.display()))?;
        let one = embedder.concatenate(&outputs)?;
        added.push(embedder.finish(&[one])?);
    }
    if examples.dim == 0 {
        examples.dim = added.first().map_or(0, Vec::len);
    }
    let count = added.len();
    examples
        .classes
        .entry(args.class.clone())
        .or_default()
        .extend(added);
    examples.save(&setup.classes)?;
    println!(
        "{:?}: {count} examples added, {} in all ({})",
        args.class,
        examples.classes[&args.class].len(),
        setup.classes.display()
    );
    Ok(super::exit::OK)
}
