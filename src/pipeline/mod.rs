//! The capture loop: source -> preprocess -> backend -> interpret -> sink, with the stages of
//! successive frames overlapping on their own threads (`flow.rs`), one or several model
//! instances (`worker.rs`). A frame that fails in any stage becomes an error record; the loop
//! goes on.

mod config;
mod flow;
mod health;
mod reid_stage;
mod scene;
mod sequence;
mod vit_stage;
mod warnings;
mod worker;

pub use config::{ConfigError, ModelConfig, PipelineConfig, RunConfig};
pub use health::{Health, Snapshot};
pub use reid_stage::{gallery_path, Camera, ReidStage};
pub use scene::{detect, widen, DetectorConfig, SceneStage, Second};
pub use sequence::{SequenceError, Sequences};
pub use vit_stage::{FramePasses, StageFailure, VitOptions, VitStage};
pub use warnings::WarningLimiter;

use self::worker::{Stage, Worker};
use crate::backend::{self, BackendConfig, BackendError, InferenceBackend};
use crate::frame::Frame;
use crate::gallery::GalleryConfig;
use crate::interpret::{Classifier, ClassifyConfig, Interpret, InterpretError, ReidConfig};
use crate::model::selftest::{self, SelfTestError, SelfTestReport};
use crate::model::{ModelError, ModelPackage, Task};
use crate::service::{Metrics, MetricsConfig};
use crate::sink::{self, Record, Sink, SinkError};
use crate::source::{self, FrameSource, SourceError};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a pipeline could not be built or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    SelfTest(#[from] SelfTestError),
    #[error(transparent)]
    Interpret(#[from] InterpretError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    #[error(transparent)]
    Detect(#[from] crate::detect::DetectError),
    /// An error about a file or folder that a configuration key names.
    #[error("`{key}`")]
    Setting {
        key: &'static str,
        #[source]
        source: Box<PipelineError>,
    },
    #[error("model {model:?} has no attention on the {backend} backend: zoom and parts need `outputs.attention` (tensor names, or \"auto\", which only tract can follow into the graph) or `outputs.rollout` in its model.toml")]
    NoAttention { model: String, backend: String },
    #[error("task {0:?} is not supported by this build yet")]
    UnsupportedTask(&'static str),
    #[error("the GPIO trigger failed: {0}")]
    Trigger(String),
    #[error("cannot run the loop's threads: {0}")]
    Thread(String),
    #[error(transparent)]
    Web(#[from] crate::web::WebError),
}

impl PipelineError {
    /// Names the configuration key behind the error, when `applies`.
    fn at_key(self, applies: bool, key: &'static str) -> Self {
        if applies {
            PipelineError::Setting {
                key,
                source: Box::new(self),
            }
        } else {
            self
        }
    }
}

/// Refuses a labels file that does not have one line per class of the loaded graph.
pub fn check_labels(
    package: &ModelPackage,
    backend: &dyn InferenceBackend,
) -> Result<(), ModelError> {
    let classes = package
        .manifest
        .outputs
        .logits
        .as_ref()
        .and_then(|logits| backend.output_shape(logits))
        .and_then(|shape| shape.last().copied());
    if let Some(classes) = classes {
        package.check_labels(classes)?;
    }
    check_output_shapes(package, backend)
}

/// Refuses, at load, a class-score or embedding output that is not one vector (`[1, n]`):
/// every frame would otherwise fail in `interpret`.
fn check_output_shapes(
    package: &ModelPackage,
    backend: &dyn InferenceBackend,
) -> Result<(), ModelError> {
    let outputs = &package.manifest.outputs;
    let vectors = outputs
        .logits
        .iter()
        .map(|name| ("outputs.logits", name))
        .chain(
            outputs
                .embedding
                .iter()
                .flatten()
                .map(|name| ("outputs.embedding", name)),
        );
    let token = package.manifest.embedding.token;
    for (key, name) in vectors {
        let Some(shape) = backend.output_shape(name) else {
            continue;
        };
        // `[embedding] token` takes one row of a [1, tokens, dim] embedding output.
        let one_token = key == "outputs.embedding"
            && token.is_some_and(|t| matches!(shape.as_slice(), &[1, tokens, _] if t < tokens));
        if !one_token && !crate::interpret::is_one_vector(&shape) {
            return Err(ModelError::OutputShape {
                key,
                name: name.clone(),
                shape,
            });
        }
    }
    Ok(())
}

/// A model package loaded into a backend that passed its self-test.
pub struct LoadedModel {
    pub package: ModelPackage,
    pub backend: Box<dyn InferenceBackend>,
    pub selftest: Option<SelfTestReport>,
}

impl LoadedModel {
    /// Opens the package, loads it into the backend and refuses it if its self-test fails.
    /// With a `fallback` list, each backend is tried in order until one loads the model and
    /// passes the self-test; each refusal is logged with its reason.
    pub fn load(dir: &Path, config: &BackendConfig) -> Result<Self, PipelineError> {
        let package = ModelPackage::open(dir)?;
        backend::first_that_works(package.name(), &config.candidates(), |candidate| {
            Self::load_on(package.clone(), candidate)
        })
        .inspect(|_| crate::memory::release_free())
    }

    /// Loads the package into one backend and runs its self-test there.
    fn load_on(package: ModelPackage, config: &BackendConfig) -> Result<Self, PipelineError> {
        let mut backend = backend::open(&package, config)?;
        check_labels(&package, backend.as_ref())?;
        let selftest = selftest::enforce(&package, backend.as_mut())?;
        log::info!(
            "model {:?} runs on the {} backend",
            package.name(),
            backend.name()
        );
        if let Some(report) = &selftest {
            if let Some(worst) = report.worst() {
                log::info!(
                    "model {:?} passed its self-test (worst difference {:e} on {:?}, tolerance {:e})",
                    package.name(),
                    worst.max_abs_diff,
                    worst.output,
                    report.tolerance
                );
            }
        }
        Ok(LoadedModel {
            package,
            backend,
            selftest,
        })
    }

    /// Narrows the backend to the outputs a classification with `vit` reads (the attention
    /// only for zoom and parts), as the loop does.
    pub fn keep_read_outputs(&mut self, vit: &VitOptions) -> Result<(), PipelineError> {
        keep_read_outputs(&self.package, self.backend.as_mut(), vit.reads_attention())
    }

    /// The interpretation the package's task calls for.
    pub fn interpreter(
        &self,
        classify: &ClassifyConfig,
        vit: &VitOptions,
    ) -> Result<Box<dyn Interpret>, PipelineError> {
        if let Some(path) = &classify.classes {
            let by_example = by_example(&self.package, self.backend.as_ref(), path, classify)?;
            return Ok(Box::new(by_example));
        }
        Ok(Box::new(self.classifier(classify, vit)?))
    }

    /// The classifier of a `classify` package (fusing per-patch class scores if it has them).
    pub fn classifier(
        &self,
        classify: &ClassifyConfig,
        vit: &VitOptions,
    ) -> Result<Classifier, PipelineError> {
        classifier_for(&self.package, classify, vit)
    }
}

/// Classes by example for a loaded model (`[classify] classes` must name the file).
pub(crate) fn examples_for(
    model: &LoadedModel,
    classify: &ClassifyConfig,
) -> Result<crate::interpret::ExampleClassifier, PipelineError> {
    let path = classify.classes.as_deref().ok_or_else(|| {
        InterpretError::Config("classes by example need `[classify] classes`".into())
    })?;
    by_example(&model.package, model.backend.as_ref(), path, classify)
}

/// Classes by example (`[classify] classes`): `package`'s embedding against the examples
/// enrolled at `path`.
fn by_example(
    package: &ModelPackage,
    backend: &dyn InferenceBackend,
    path: &Path,
    classify: &ClassifyConfig,
) -> Result<crate::interpret::ExampleClassifier, PipelineError> {
    let examples = crate::interpret::ClassExamples::load(path)?;
    let dim = crate::interpret::Embedder::new(package, &Default::default())?.dim(backend);
    examples
        .check_model(package, dim)
        .map_err(InterpretError::Config)?;
    Ok(crate::interpret::ExampleClassifier::new(
        package,
        &examples,
        classify.match_by,
        classify.unknown_below,
        classify.top_k,
    )?)
}

/// Narrows `backend` to the outputs a classification reads: the attention's (maps, a
/// rolled-out map, parts) only when `attention` (zoom or parts) is on.
fn keep_read_outputs(
    package: &ModelPackage,
    backend: &mut dyn InferenceBackend,
    attention: bool,
) -> Result<(), PipelineError> {
    let outputs = &package.manifest.outputs;
    let names = if attention {
        let mut names = outputs.owned_graph_names();
        for found in backend.attention() {
            if !names.contains(&found.name) {
                names.push(found.name.clone());
            }
        }
        names
    } else {
        outputs.per_frame_names()
    };
    Ok(backend.keep_outputs(&names)?)
}

/// The classifier of a `classify` package (fusing per-patch class scores if it has them).
fn classifier_for(
    package: &ModelPackage,
    classify: &ClassifyConfig,
    vit: &VitOptions,
) -> Result<Classifier, PipelineError> {
    match package.manifest.task {
        Task::Classify => {
            let classifier = Classifier::new(package, classify)?;
            Ok(match &package.manifest.outputs.patch_logits {
                Some(name) => classifier.with_token_labels(name, &vit.token_labels),
                None => classifier,
            })
        }
        task => Err(PipelineError::UnsupportedTask(task.name())),
    }
}

/// The sink configuration to open, with the gallery to share when `[gallery] fleet` is on,
/// and the board's name in the fleet.
fn fleet(
    config: &RunConfig,
    manifest: &crate::model::Manifest,
) -> Result<(sink::SinkConfig, Option<String>), PipelineError> {
    let mut sink_config = config.sink.clone();
    if manifest.task != Task::Reid || !config.gallery.fleet {
        return Ok((sink_config, None));
    }
    let sink::SinkConfig::Mqtt(mqtt) = &mut sink_config else {
        return Err(InterpretError::Config(
            "gallery.fleet shares identities through the MQTT broker: it needs [sink] kind = \"mqtt\"".into(),
        )
        .into());
    };
    mqtt.fleet = Some(crate::sink::mqtt::FleetLink {
        gallery: gallery_path(&config.gallery, config.state_dir.as_deref())?,
        config: (config.gallery).for_package(manifest.reid.metric, manifest.reid.threshold),
    });
    let device = mqtt.device.clone();
    Ok((sink_config, Some(device)))
}

/// The board's name in its fleet (`[gallery] fleet` with an MQTT sink): the ids it mints
/// carry it.
pub fn fleet_device(config: &RunConfig) -> Option<String> {
    match &config.sink {
        sink::SinkConfig::Mqtt(mqtt) if config.gallery.fleet => Some(mqtt.device.clone()),
        _ => None,
    }
}

/// Lets frames through on an edge (a GPIO trigger).
pub trait FrameTrigger: Send {
    /// Blocks until an edge (`Ok(true)`), or until `stop` is set or `timeout` passed.
    fn wait(&mut self, stop: &AtomicBool, timeout: Duration) -> Result<bool, String>;
}

impl<P> FrameTrigger for crate::gpio::Trigger<P>
where
    P: embedded_hal::digital::InputPin + Send,
{
    fn wait(&mut self, stop: &AtomicBool, timeout: Duration) -> Result<bool, String> {
        crate::gpio::Trigger::wait(self, stop, timeout).map_err(|e| format!("{e:?}"))
    }
}

/// Asked for new live settings on a reload (see [`Pipeline::set_reload`]).
pub type ReloadFn = Box<dyn FnMut() -> Result<(ClassifyConfig, VitOptions), String> + Send>;

struct Reload {
    flag: Arc<AtomicBool>,
    reload: ReloadFn,
}

/// Counts of what a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub frames: u64,
    pub results: u64,
    pub errors: u64,
}

/// The stages of one run, wired together.
pub struct Pipeline {
    source: Box<dyn FrameSource>,
    /// At least one; several for `[pipeline] workers` (classification models).
    workers: Vec<Worker>,
    sink: Box<dyn Sink>,
    sequences: Sequences,
    health: Arc<Health>,
    reload: Option<Reload>,
    /// Frames are let through one per edge (`[gpio.trigger]`).
    trigger: Option<Box<dyn FrameTrigger>>,
    metrics: Option<Arc<Metrics>>,
    /// The source's last frame number per camera: a jump is frames dropped before us.
    last_source_seq: std::collections::HashMap<String, u64>,
    model: String,
    /// The self-test the model passed at load (the web page's health shows it).
    selftest: Option<SelfTestReport>,
    /// The web page's live view (`[web]`).
    live: Option<Arc<crate::web::LiveView>>,
}

impl Pipeline {
    /// Builds every stage from a configuration.
    pub fn from_config(config: &RunConfig) -> Result<Self, PipelineError> {
        let model = LoadedModel::load(&config.model.path, &config.backend).map_err(|e| {
            let names_the_path = matches!(
                e,
                PipelineError::Model(
                    ModelError::ReadManifest { .. } | ModelError::NotAPackage { .. }
                )
            );
            e.at_key(names_the_path, "model.path")
        })?;
        let selftest = model.selftest.clone();
        let source = source::open(&config.source).map_err(|e| {
            let names_the_path = matches!(
                e,
                SourceError::Read { .. } | SourceError::EmptyDirectory { .. }
            );
            PipelineError::from(e).at_key(names_the_path, "source.path")
        })?;
        let (sink_config, fleet_device) = fleet(config, &model.package.manifest)?;
        let sink = sink::open(&sink_config).map_err(|e| {
            let names_the_path = matches!(e, SinkError::Open { .. });
            PipelineError::from(e).at_key(names_the_path, "sink.path")
        })?;
        let workers = config.pipeline.workers;
        let scene = scene::is_scene(config, model.package.manifest.task);
        let mut pipeline = match model.package.manifest.task {
            _ if scene => {
                if workers > 1 {
                    log::warn!(
                        "pipeline.workers = {workers}: a scene runs with one worker (its tracks follow the frames in order)"
                    );
                }
                let mut worker = scene::worker(config, model)?;
                if let (Stage::Scene(stage), Some(device)) = (&mut worker.stage, &fleet_device) {
                    if let Some(reid) = stage.reid_mut() {
                        reid.gallery_mut().set_device(device);
                    }
                }
                Self::assemble(worker, source, sink)
            }
            // A ReID package with `[classify] classes` classifies by example.
            Task::Classify | Task::Reid
                if config.classify.classes.is_some()
                    || model.package.manifest.task == Task::Classify =>
            {
                let vit = config.vit_options();
                let mut pipeline = Self::new(model, &config.classify, &vit, source, sink)?;
                for _ in 1..workers {
                    let model = LoadedModel::load(&config.model.path, &config.backend)?;
                    pipeline.add_worker(model, &config.classify, &vit)?;
                }
                pipeline
            }
            Task::Classify | Task::Reid => {
                if workers > 1 {
                    log::warn!(
                        "pipeline.workers = {workers}: a ReID model runs with one worker (its gallery learns from the frames in order)"
                    );
                }
                let path = gallery_path(&config.gallery, config.state_dir.as_deref())?;
                let mut pipeline =
                    Self::new_reid(model, &config.reid, &config.gallery, &path, source, sink)?;
                if let (Stage::Reid(stage), Some(device)) =
                    (&mut pipeline.workers[0].stage, &fleet_device)
                {
                    stage.gallery_mut().set_device(device);
                }
                pipeline
            }
            Task::Detect => unreachable!("a detector's run is a scene"),
        };
        if let Some(dir) = &config.state_dir {
            pipeline.sequences = Sequences::persistent(dir);
        }
        pipeline.selftest = selftest;
        Ok(pipeline)
    }

    pub fn new(
        model: LoadedModel,
        classify: &ClassifyConfig,
        vit: &VitOptions,
        source: Box<dyn FrameSource>,
        sink: Box<dyn Sink>,
    ) -> Result<Self, PipelineError> {
        let worker = Worker::classify_model(model, classify, vit)?;
        Ok(Self::assemble(worker, source, sink))
    }

    /// Another model instance working on successive frames (a classification model; see
    /// `[pipeline] workers`).
    pub fn add_worker(
        &mut self,
        model: LoadedModel,
        classify: &ClassifyConfig,
        vit: &VitOptions,
    ) -> Result<(), PipelineError> {
        if matches!(self.workers[0].stage, Stage::Reid(_)) {
            return Err(InterpretError::Config(
                "a ReID model runs with one worker: its gallery learns from the frames in order"
                    .into(),
            )
            .into());
        }
        self.workers
            .push(Worker::classify_model(model, classify, vit)?);
        Ok(())
    }

    /// A pipeline for a `reid` package, matching in the gallery at `gallery_path`.
    pub fn new_reid(
        model: LoadedModel,
        reid: &ReidConfig,
        gallery: &GalleryConfig,
        gallery_path: &Path,
        source: Box<dyn FrameSource>,
        sink: Box<dyn Sink>,
    ) -> Result<Self, PipelineError> {
        let worker = Worker::reid_model(model, reid, gallery, gallery_path)?;
        Ok(Self::assemble(worker, source, sink))
    }

    /// A pipeline for a `detect` package: each frame's objects, with `overrides` of its
    /// `[detect]` settings (no tracker: `edgevit infer`).
    pub fn new_detect(
        model: LoadedModel,
        overrides: &crate::detect::DetectOverrides,
        source: Box<dyn FrameSource>,
        sink: Box<dyn Sink>,
    ) -> Result<Self, PipelineError> {
        let config = RunConfig::for_detector(&model.package.dir, overrides.clone());
        let worker = scene::worker(&config, model)?;
        Ok(Self::assemble(worker, source, sink))
    }

    fn assemble(worker: Worker, source: Box<dyn FrameSource>, sink: Box<dyn Sink>) -> Self {
        Pipeline {
            source,
            model: worker.package.name().to_string(),
            workers: vec![worker],
            sink,
            sequences: Sequences::in_memory(),
            health: Arc::new(Health::new()),
            reload: None,
            trigger: None,
            metrics: None,
            last_source_seq: std::collections::HashMap::new(),
            selftest: None,
            live: None,
        }
    }

    /// Rebuilds the interpretation (classification, attention, zoom, parts, token labels) of
    /// every worker with new settings; on an error the old ones stay.
    pub fn reconfigure(
        &mut self,
        classify: &ClassifyConfig,
        vit: &VitOptions,
    ) -> Result<(), PipelineError> {
        for worker in &mut self.workers {
            worker.reconfigure(classify, vit)?;
        }
        Ok(())
    }

    /// Between frames, when `flag` is set, `reload` is asked for the settings to use: `Ok`
    /// applies them (the interpretation is rebuilt, which is cheap), `Err` is logged and the
    /// running settings stay (SIGHUP).
    pub fn set_reload(&mut self, flag: Arc<AtomicBool>, reload: ReloadFn) {
        self.reload = Some(Reload { flag, reload });
    }

    /// Saves a picture of each frame read from an image file into `dir`, with what was found
    /// drawn on it, beside the configured sink (`edgevit run --draw`).
    pub fn draw_into(&mut self, dir: &Path) -> Result<(), PipelineError> {
        // The folder first: the sink is handed over only once it cannot fail.
        std::fs::create_dir_all(dir).map_err(|source| SinkError::Open {
            path: dir.to_path_buf(),
            source,
        })?;
        let placeholder: Box<dyn Sink> = Box::new(sink::JsonLinesSink::stdout());
        let inner = std::mem::replace(&mut self.sink, placeholder);
        self.sink = Box::new(sink::DrawSink::new(inner, dir)?);
        Ok(())
    }

    /// Lets one frame through per trigger edge, instead of every frame.
    pub fn set_trigger(&mut self, trigger: Box<dyn FrameTrigger>) {
        self.trigger = Some(trigger);
    }

    /// Serves Prometheus metrics about this pipeline (`[metrics]`); the series of `cameras`
    /// exist, at 0, from the first scrape.
    pub fn serve_metrics(
        &mut self,
        config: &MetricsConfig,
        cameras: &[&str],
    ) -> std::io::Result<()> {
        let metrics = Arc::new(Metrics::new(&self.model, self.workers[0].backend.name()));
        metrics.prime(cameras);
        crate::service::metrics::serve(config, Arc::clone(&metrics))?;
        self.metrics = Some(metrics);
        Ok(())
    }

    /// Serves the web page of `[web]` about this pipeline and `around` it, from threads of its
    /// own, until the returned server is dropped.
    pub fn serve_web(
        &mut self,
        web: &crate::web::WebConfig,
        around: WebSources,
    ) -> Result<crate::web::WebServer, PipelineError> {
        let address = web.address()?;
        let site = web_site(self, web, around)?;
        let server = crate::web::WebServer::start(address, site)?;
        log::info!(
            "web page on http://{}/{}",
            server.address(),
            if web.password_file.is_some() {
                " (user edgevit, password from web.password_file)"
            } else {
                ""
            }
        );
        Ok(server)
    }

    /// What the loop reports about itself (for systemd's watchdog and status).
    pub fn health(&self) -> Arc<Health> {
        Arc::clone(&self.health)
    }

    /// How many model instances process frames.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Runs until the source ends or `stop` is set; see `flow.rs` for the threads. Only a
    /// sink that cannot deliver stops it early, since its records would otherwise be lost
    /// silently. Every frame read before a stop is processed and delivered.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<RunSummary, PipelineError> {
        log::info!(
            "running {:?} on {} to {} ({} worker{})",
            self.model,
            self.source.describe(),
            self.sink.describe(),
            self.workers.len(),
            if self.workers.len() == 1 { "" } else { "s" }
        );
        let parts = flow::Parts {
            source: self.source.as_mut(),
            trigger: &mut self.trigger,
            workers: &mut self.workers,
            sink: self.sink.as_mut(),
            sequences: &mut self.sequences,
            health: &self.health,
            metrics: self.metrics.as_deref(),
            reload: &mut self.reload,
            last_source_seq: &mut self.last_source_seq,
            live: self.live.as_deref(),
        };
        flow::run(parts, stop)
    }

    /// Runs one frame through the stages of the first worker: one record, or one per crop for
    /// ReID.
    pub fn process_frame(&mut self, frame: &Frame) -> Vec<Record> {
        self.workers[0].process_frame(frame)
    }
}

/// What the web page shows besides the loop itself: the cameras, the gallery, the classes.
#[derive(Debug, Clone, Default)]
pub struct WebSources {
    pub cameras: Vec<String>,
    /// The gallery file a ReID run uses.
    pub gallery: Option<std::path::PathBuf>,
    /// The board's name in its fleet (`[gallery] fleet`).
    pub device: Option<String>,
    /// The classes-by-example file (`[classify] classes`).
    pub classes: Option<std::path::PathBuf>,
}

impl WebSources {
    pub fn of(config: &RunConfig) -> Self {
        WebSources {
            cameras: (config.source.camera_ids().into_iter())
                .map(|(_, id)| id.to_string())
                .collect(),
            // A run without one (a classify model) shows none.
            gallery: gallery_path(&config.gallery, config.state_dir.as_deref()).ok(),
            device: fleet_device(config),
            classes: config.classify.classes.clone(),
        }
    }
}

/// What the web page reads of `pipeline` and around it; gives the pipeline its live view.
fn web_site(
    pipeline: &mut Pipeline,
    web: &crate::web::WebConfig,
    around: WebSources,
) -> Result<crate::web::Site, PipelineError> {
    let credentials = web.password()?.map(|p| crate::web::Credentials::new(&p));
    let cameras: Vec<&str> = around.cameras.iter().map(String::as_str).collect();
    let live = Arc::new(crate::web::LiveView::new(&cameras));
    pipeline.live = Some(Arc::clone(&live));
    let worker = &pipeline.workers[0];
    let reid = matches!(worker.stage, Stage::Reid(_))
        || matches!(&worker.stage, Stage::Scene(scene) if scene.has_gallery());
    let selftest = (pipeline.selftest.as_ref()).and_then(|report| {
        let worst = report.worst()?;
        Some(crate::web::SelfTestSummary {
            worst: worst.max_abs_diff,
            output: worst.output.clone(),
            tolerance: report.tolerance,
        })
    });
    Ok(crate::web::Site {
        live,
        health: Arc::clone(&pipeline.health),
        about: crate::web::About {
            model: pipeline.model.clone(),
            task: worker.package.manifest.task.name().to_string(),
            backend: worker.backend.name().to_string(),
            selftest,
            started: crate::web::now_rfc3339(),
        },
        gallery: (around.gallery.filter(|_| reid))
            .map(|path| crate::web::GalleryAccess::new(path, around.device)),
        classes: around.classes,
        read_only: web.read_only,
        credentials,
        snapshot_wait: Duration::from_secs(2),
        pages: crate::web::Pages::new(),
    })
}

fn elapsed_ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e6).round() / 1e3
}
