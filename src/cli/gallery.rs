//! `edgevit gallery ...`: the identities of a ReID gallery: enrol named people from images,
//! list, rename, merge, forget. Safe while `edgevit run` uses the same gallery: SQLite orders
//! the writes and the running service picks the changes up.

use anyhow::{Context, Result};
use edgevit::backend::BackendConfig;
use edgevit::backend::InferenceBackend;
use edgevit::detect::{Decoder, DetectOverrides};
use edgevit::frame::Frame;
use edgevit::gallery::{Enrolled, Gallery, GalleryConfig};
use edgevit::interpret::PixelBox;
use edgevit::interpret::{Crop, ReidConfig};
use edgevit::model::Task;
use edgevit::pipeline::{
    detect, fleet_device, gallery_path, widen, Camera, DetectorConfig, LoadedModel, ReidStage,
    RunConfig, StageFailure,
};
use edgevit::preprocess::{Preprocess, Preprocessor, Raster};
use edgevit::source::{FrameSource, ImageListSource};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Enrol a named person from images of them: each whole image is one view, or, with a
    /// `[detector]` in the configuration (faces), the one object it finds in each image.
    Enroll(EnrollArgs),
    /// List the identities: id, name, confirmed, frames seen, exemplars, thumbnails, last camera.
    List(ListArgs),
    /// Write an identity's thumbnails (its best crops, JPEG) into a folder, to see who it is.
    Show {
        #[command(flatten)]
        at: At,
        /// The identity: its id (id-000042) or its name.
        who: String,
        /// The folder to write `<id>-<n>.jpg` into (created if absent).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Name an identity (named identities never expire).
    Rename {
        #[command(flatten)]
        at: At,
        /// The identity: its id (id-000042) or its name.
        who: String,
        /// The name to give it.
        new_name: String,
    },
    /// Make two identities one; the older id is kept.
    Merge {
        #[command(flatten)]
        at: At,
        /// One identity: its id (id-000042) or its name.
        a: String,
        /// The other identity, by id or name; its exemplars and sightings join the first.
        b: String,
    },
    /// Delete an identity with its exemplars and sightings.
    Forget {
        #[command(flatten)]
        at: At,
        /// The identity: its id (id-000042) or its name.
        who: String,
    },
}

/// Which gallery: the one a configuration uses, or a file.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct At {
    /// The run configuration whose gallery to use (`gallery.path`, else state_dir/gallery.sqlite).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The gallery file.
    #[arg(long, value_name = "PATH")]
    gallery: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct EnrollArgs {
    /// The run configuration: its model, `[backend]`, `[reid]` and `[gallery]` are used.
    #[arg(long, value_name = "FILE", required_unless_present_all = ["model", "gallery"])]
    config: Option<PathBuf>,
    /// Instead of --config: the ReID model package (run on tract, with `[reid]`'s defaults).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "config",
        requires = "gallery"
    )]
    model: Option<PathBuf>,
    /// Instead of --config: the gallery file (created if absent).
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "config",
        requires = "model"
    )]
    gallery: Option<PathBuf>,
    /// The person's name.
    #[arg(long)]
    name: String,
    /// The camera index fed to a model with SIE.
    #[arg(long, value_name = "N", default_value_t = 0)]
    camera_index: usize,
    /// Images of the person (PNG, JPEG, BMP): each cropped to the person, or, with a
    /// `[detector]`, showing the person alone.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    at: At,
    /// One JSON object per identity instead of a table.
    #[arg(long)]
    json: bool,
}

impl At {
    fn path(&self) -> Result<PathBuf> {
        match (&self.gallery, &self.config) {
            (Some(path), _) => Ok(path.clone()),
            (None, Some(config)) => {
                let config = RunConfig::load(config)?;
                Ok(gallery_path(&config.gallery, config.state_dir.as_deref())?)
            }
            (None, None) => anyhow::bail!("give --config FILE or --gallery PATH"),
        }
    }

    /// The gallery, as this board's fleet device when the configuration is in a fleet: a
    /// rename, merge or forget made here is then this board's to publish (another board's
    /// identity included), as the web page's are.
    fn open(&self) -> Result<Gallery> {
        let mut gallery = Gallery::open_existing(&self.path()?, &GalleryConfig::default())?;
        if let (None, Some(config)) = (&self.gallery, &self.config) {
            if let Some(device) = fleet_device(&RunConfig::load(config)?) {
                gallery.set_device(&device);
            }
        }
        Ok(gallery)
    }
}

pub fn run(command: Command) -> Result<i32> {
    match command {
        Command::Enroll(args) => enroll(args),
        Command::List(args) => list(args),
        Command::Show { at, who, out } => show(&at, &who, &out),
        Command::Rename { at, who, new_name } => {
            let id = at.open()?.rename(&who, &new_name)?;
            println!("{id} is now {new_name:?}");
            Ok(super::exit::OK)
        }
        Command::Merge { at, a, b } => {
            let kept = at.open()?.merge(&a, &b)?;
            println!("{a} and {b} are now {kept}");
            Ok(super::exit::OK)
        }
        Command::Forget { at, who } => {
            let id = at.open()?.forget(&who)?;
            println!("{id} forgotten");
            Ok(super::exit::OK)
        }
    }
}

/// What enrolment runs with: from a run configuration, or from `--model` and `--gallery`.
struct EnrollSetup {
    model: PathBuf,
    backend: BackendConfig,
    reid: ReidConfig,
    gallery: GalleryConfig,
    gallery_path: PathBuf,
    fleet_device: Option<String>,
    /// The configuration's detector and its settings: enrolment takes the object it finds.
    detector: Option<(DetectorConfig, DetectOverrides)>,
}

impl EnrollSetup {
    fn of(args: &EnrollArgs) -> Result<Self> {
        if let (Some(model), Some(path)) = (&args.model, &args.gallery) {
            let gallery = GalleryConfig {
                path: Some(path.clone()),
                ..GalleryConfig::default()
            };
            return Ok(EnrollSetup {
                model: model.clone(),
                backend: BackendConfig::default(),
                reid: ReidConfig::default(),
                gallery_path: gallery_path(&gallery, None)?,
                gallery,
                fleet_device: None,
                detector: None,
            });
        }
        let Some(path) = &args.config else {
            anyhow::bail!("give --config FILE, or --model DIR with --gallery PATH");
        };
        let config = RunConfig::load(path)?;
        Ok(EnrollSetup {
            gallery_path: gallery_path(&config.gallery, config.state_dir.as_deref())?,
            fleet_device: fleet_device(&config),
            model: config.model.path,
            backend: config.backend,
            reid: config.reid,
            gallery: config.gallery,
            detector: config.detector.map(|d| (d, config.detect)),
        })
    }
}

fn enroll(args: EnrollArgs) -> Result<i32> {
    let setup = EnrollSetup::of(&args)?;
    let model = LoadedModel::load(&setup.model, &setup.backend)?;
    if model.package.manifest.task != Task::Reid {
        anyhow::bail!(
            "model {:?} is not a ReID model (task = \"{}\")",
            model.package.name(),
            model.package.manifest.task.name()
        );
    }
    let LoadedModel {
        package,
        mut backend,
        ..
    } = model;
    let mut stage = ReidStage::new(
        &package,
        backend.as_ref(),
        &setup.reid,
        &setup.gallery,
        &setup.gallery_path,
    )?;
    if let Some(device) = &setup.fleet_device {
        stage.gallery_mut().set_device(device);
    }
    let mut preprocess = Preprocessor::new(&package.manifest.input);
    let camera = Camera {
        id: "enroll",
        index: args.camera_index,
    };
    let mut finder = match &setup.detector {
        Some((config, overrides)) => Some(Finder::load(config, overrides, &setup.backend)?),
        None => None,
    };
    let mut source = ImageListSource::new(args.images.clone(), "enroll".into());
    let mut embeddings = Vec::new();
    while let Some(frame) = source.next_frame() {
        let frame = frame.map_err(|failed| anyhow::Error::new(failed.error))?;
        let image = frame.meta.path.clone().unwrap_or_default();
        let raster = preprocess
            .decode(&frame)
            .with_context(|| format!("cannot read {}", image.display()))?;
        let crop = match &mut finder {
            Some(finder) => finder.the_one(&frame, &raster, &image)?,
            None => Crop {
                roi: "enroll".into(),
                bounds: PixelBox::whole(raster.width, raster.height),
                view: 0,
                face: None,
            },
        };
        let embedding = stage
            .embed(&raster, &crop, &camera, &mut preprocess, backend.as_mut())
            .map_err(|e| failed_on(&image, &e))?;
        embeddings.push(embedding);
    }
    let outcome =
        stage
            .gallery_mut()
            .enroll(&args.name, &embeddings, edgevit::gallery::now_ms())?;
    let count = embeddings.len();
    match outcome {
        Enrolled::Created(id) => println!("{id} {:?}: new, {count} images", args.name),
        Enrolled::Named(id) => println!(
            "{id} {:?}: the images match this identity, seen before; it has the name now ({count} images added)",
            args.name
        ),
        Enrolled::Added(id) => println!("{id} {:?}: {count} images added", args.name),
    }
    Ok(super::exit::OK)
}

/// What went wrong with an enrolment image, naming it.
fn failed_on(image: &Path, failure: &StageFailure) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: {}",
        image.display(),
        edgevit::error::chain(failure.parts().1)
    )
}

/// The configuration's detector, which finds the one person (or face) of an enrolment image.
struct Finder {
    decoder: Decoder,
    preprocess: Preprocessor,
    backend: Box<dyn InferenceBackend>,
    margin: f32,
}

impl Finder {
    fn load(
        config: &DetectorConfig,
        overrides: &DetectOverrides,
        backend: &BackendConfig,
    ) -> Result<Self> {
        let model = LoadedModel::load(&config.path, backend)
            .with_context(|| format!("detector.path {}", config.path.display()))?;
        if model.package.manifest.task != Task::Detect {
            anyhow::bail!(
                "detector.path: {:?} is not a detector (task = \"{}\")",
                model.package.name(),
                model.package.manifest.task.name()
            );
        }
        Ok(Finder {
            decoder: Decoder::new(&model.package, overrides)?,
            preprocess: Preprocessor::new(&model.package.manifest.input),
            backend: model.backend,
            margin: config.margin.max(0.0),
        })
    }

    /// The crop of the one object the detector finds in `frame` (decoded by the second model
    /// as `raster`); an image with none, or with several, is refused by name.
    fn the_one(&mut self, frame: &Frame, raster: &Raster, image: &Path) -> Result<Crop> {
        let own = self.preprocess.decode(frame)?;
        let objects = detect(
            &self.decoder,
            &mut self.preprocess,
            self.backend.as_mut(),
            &own,
        )
        .map_err(|e| failed_on(image, &e))?;
        let labels = || {
            let labels: std::collections::BTreeSet<&str> =
                objects.iter().map(|o| o.label.as_str()).collect();
            labels.into_iter().collect::<Vec<_>>().join(", ")
        };
        let object = match objects.len() {
            0 => anyhow::bail!(
                "{}: the detector found nothing in it (min_score {}); enrol images that show the person clearly",
                image.display(),
                self.decoder.params().min_score
            ),
            1 => &objects[0],
            n => anyhow::bail!(
                "{}: the detector found {n} objects in it ({}); enrolment needs images of one person alone: crop the image to them",
                image.display(),
                labels()
            ),
        };
        Ok(Crop {
            roi: "enroll".into(),
            bounds: widen(object.bounds, self.margin, raster.width, raster.height),
            view: 0,
            face: object.face,
        })
    }
}

fn list(args: ListArgs) -> Result<i32> {
    let gallery = args.at.open()?;
    let summaries = gallery.summaries()?;
    if args.json {
        for summary in &summaries {
            println!("{}", serde_json::to_value(summary)?);
        }
        return Ok(super::exit::OK);
    }
    println!(
        "gallery {} (model {:?}, {}-number embeddings)",
        gallery.path().display(),
        gallery.model().name,
        gallery.model().dim
    );
    println!(
        "{:<10} {:<16} {:<9} {:>7} {:>9} {:>10}  last seen",
        "id", "name", "confirmed", "frames", "exemplars", "thumbnails"
    );
    for summary in &summaries {
        let identity = &summary.identity;
        let last = humantime::format_rfc3339_seconds(
            UNIX_EPOCH + std::time::Duration::from_millis(identity.last_seen_ms.max(0) as u64),
        );
        println!(
            "{:<10} {:<16} {:<9} {:>7} {:>9} {:>10}  {last} on {}",
            identity.id(),
            identity.name.as_deref().unwrap_or("-"),
            if identity.confirmed { "yes" } else { "no" },
            identity.hits,
            summary.exemplars,
            summary.thumbnails,
            identity.last_camera.as_deref().unwrap_or("-"),
        );
    }
    Ok(super::exit::OK)
}

/// `gallery show`: an identity's thumbnails as `<id>-<n>.jpg` in `out`, best first.
fn show(at: &At, who: &str, out: &Path) -> Result<i32> {
    let gallery = at.open()?;
    let key = gallery.find(who)?;
    let id =
        (gallery.identities().find(|i| i.key == key)).map_or_else(|| who.to_string(), |i| i.id());
    let thumbnails = gallery.thumbnails(who)?;
    if thumbnails.is_empty() {
        println!("{id} has no thumbnails yet (they are kept as the model sees it)");
        return Ok(super::exit::OK);
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (n, thumbnail) in thumbnails.iter().enumerate() {
        let path = out.join(format!("{id}-{}.jpg", n + 1));
        std::fs::write(&path, &thumbnail.jpeg)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let seen = humantime::format_rfc3339_seconds(
            UNIX_EPOCH + std::time::Duration::from_millis(thumbnail.ts_ms.max(0) as u64),
        );
        println!("{} ({} on {seen})", path.display(), thumbnail.camera);
    }
    Ok(super::exit::OK)
}
