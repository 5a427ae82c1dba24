//! The capture loop: source -> preprocess -> backend -> interpret -> sink, one frame at a time.
//! A frame that fails in any stage becomes an error record; the loop goes on.

mod config;
mod health;
mod reid;
mod sequence;
mod vit;
mod warnings;

pub use config::{ConfigError, ModelConfig, RunConfig};
pub use health::{Health, Snapshot};
pub use reid::{gallery_path, Camera, ReidStage};
pub use sequence::{SequenceError, Sequences};
pub use vit::{FramePasses, StageFailure, VitOptions, VitStage};
pub use warnings::WarningLimiter;

use crate::backend::{self, BackendConfig, BackendError, InferenceBackend};
use crate::frame::Frame;
use crate::gallery::GalleryConfig;
use crate::interpret::{
    Classifier, ClassifyConfig, Interpret, InterpretError, Interpretation, ReidConfig,
};
use crate::model::selftest::{self, SelfTestError, SelfTestReport};
use crate::model::{ModelError, ModelPackage, Task};
use crate::preprocess::{Preprocess, Preprocessor};
use crate::service::{Metrics, MetricsConfig};
use crate::sink::{
    self, CameraStatusRecord, ErrorDetail, ErrorRecord, FrameInfo, Latency, Record, ResultRecord,
    Sink, SinkError,
};
use crate::source::{self, CameraState, FrameSource, SourceError, SourceEvent};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// An error about a file or folder that a configuration key names.
    #[error("`{key}`")]
    Setting {
        key: &'static str,
        #[source]
        source: Box<PipelineError>,
    },
    #[error("model {model:?} has no attention: zoom and parts need `outputs.attention` (tensor names, or \"auto\") or `outputs.rollout` in its model.toml")]
    NoAttention { model: String },
    #[error("task {0:?} is not supported by this build yet")]
    UnsupportedTask(&'static str),
    #[error("the GPIO trigger failed: {0}")]
    Trigger(String),
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
    match classes {
        Some(classes) => package.check_labels(classes),
        None => Ok(()),
    }
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
        let candidates = config.candidates();
        let mut refused = Vec::new();
        for (position, candidate) in candidates.iter().enumerate() {
            match Self::load_on(package.clone(), candidate) {
                Ok(model) => {
                    if !refused.is_empty() {
                        log::warn!(
                            "model {:?} runs on the {} backend (after {})",
                            model.package.name(),
                            model.backend.name(),
                            refused.join("; ")
                        );
                    }
                    return Ok(model);
                }
                Err(e) if position + 1 < candidates.len() => {
                    let reason = crate::error::chain(&e);
                    log::warn!(
                        "backend {} cannot run model {:?}, trying the next one: {reason}",
                        candidate.kind(),
                        package.name()
                    );
                    refused.push(format!("{}: {reason}", candidate.kind()));
                }
                Err(e) if refused.is_empty() => return Err(e),
                Err(e) => {
                    refused.push(format!("{}: {}", candidate.kind(), crate::error::chain(&e)));
                    return Err(BackendError::NoneLoaded(refused.join("; ")).into());
                }
            }
        }
        Err(BackendError::NoneLoaded("backend.fallback is empty".into()).into())
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

    /// The interpretation the package's task calls for.
    pub fn interpreter(
        &self,
        classify: &ClassifyConfig,
        vit: &VitOptions,
    ) -> Result<Box<dyn Interpret>, PipelineError> {
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
        Task::Reid => Err(PipelineError::UnsupportedTask(Task::Reid.name())),
    }
}

/// The sink configuration to open, with the gallery to share when `[gallery] fleet` is on,
/// and the board's name in the fleet.
fn fleet(
    config: &RunConfig,
    task: Task,
) -> Result<(sink::SinkConfig, Option<String>), PipelineError> {
    let mut sink_config = config.sink.clone();
    if task != Task::Reid || !config.gallery.fleet {
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
        config: config.gallery.clone(),
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

/// What turns the model's outputs into results.
enum Stage {
    Classify {
        interpret: Box<dyn Interpret>,
        /// Zoom and parts, when asked for, with the classifier their passes use.
        vit: Option<Box<(VitStage, Classifier)>>,
    },
    Reid(Box<ReidStage>),
}

/// The stages of one run, wired together.
pub struct Pipeline {
    source: Box<dyn FrameSource>,
    preprocess: Box<dyn Preprocess>,
    backend: Box<dyn InferenceBackend>,
    stage: Stage,
    sink: Box<dyn Sink>,
    sequences: Sequences,
    health: Arc<Health>,
    /// The package, to rebuild the interpretation on a reload.
    package: ModelPackage,
    reload: Option<Reload>,
    /// Frames are let through one per edge (`[gpio.trigger]`).
    trigger: Option<Box<dyn FrameTrigger>>,
    metrics: Option<Arc<Metrics>>,
    /// The source's last frame number per camera: a jump is frames dropped before us.
    last_source_seq: std::collections::HashMap<String, u64>,
    model: String,
    task: Task,
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
        let source = source::open(&config.source).map_err(|e| {
            let names_the_path = matches!(
                e,
                SourceError::Read { .. } | SourceError::EmptyDirectory { .. }
            );
            PipelineError::from(e).at_key(names_the_path, "source.path")
        })?;
        let (sink_config, fleet_device) = fleet(config, model.package.manifest.task)?;
        let sink = sink::open(&sink_config).map_err(|e| {
            let names_the_path = matches!(e, SinkError::Open { .. });
            PipelineError::from(e).at_key(names_the_path, "sink.path")
        })?;
        let mut pipeline = match model.package.manifest.task {
            Task::Classify => {
                Self::new(model, &config.classify, &config.vit_options(), source, sink)?
            }
            Task::Reid => {
                let path = gallery_path(&config.gallery, config.state_dir.as_deref())?;
                let mut pipeline =
                    Self::new_reid(model, &config.reid, &config.gallery, &path, source, sink)?;
                if let (Stage::Reid(stage), Some(device)) = (&mut pipeline.stage, &fleet_device) {
                    stage.gallery_mut().set_device(device);
                }
                pipeline
            }
        };
        if let Some(dir) = &config.state_dir {
            pipeline.sequences = Sequences::persistent(dir);
        }
        Ok(pipeline)
    }

    pub fn new(
        model: LoadedModel,
        classify: &ClassifyConfig,
        vit: &VitOptions,
        source: Box<dyn FrameSource>,
        sink: Box<dyn Sink>,
    ) -> Result<Self, PipelineError> {
        let interpret = model.interpreter(classify, vit)?;
        let vit = match VitStage::new(&model.package, model.backend.as_ref(), vit)? {
            Some(stage) => Some(Box::new((stage, model.classifier(classify, vit)?))),
            None => None,
        };
        Ok(Self::assemble(
            model,
            Stage::Classify { interpret, vit },
            source,
            sink,
        ))
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
        let stage = ReidStage::new(
            &model.package,
            model.backend.as_ref(),
            reid,
            gallery,
            gallery_path,
        )?;
        Ok(Self::assemble(
            model,
            Stage::Reid(Box::new(stage)),
            source,
            sink,
        ))
    }

    fn assemble(
        model: LoadedModel,
        stage: Stage,
        source: Box<dyn FrameSource>,
        sink: Box<dyn Sink>,
    ) -> Self {
        Pipeline {
            source,
            preprocess: Box::new(Preprocessor::new(&model.package.manifest.input)),
            stage,
            sink,
            sequences: Sequences::in_memory(),
            health: Arc::new(Health::new()),
            package: model.package.clone(),
            reload: None,
            trigger: None,
            metrics: None,
            last_source_seq: std::collections::HashMap::new(),
            model: model.package.name().to_string(),
            task: model.package.manifest.task,
            backend: model.backend,
        }
    }

    /// Rebuilds the interpretation (classification, attention, zoom, parts, token labels) with
    /// new settings; on an error the old ones stay.
    pub fn reconfigure(
        &mut self,
        classify: &ClassifyConfig,
        vit: &VitOptions,
    ) -> Result<(), PipelineError> {
        if let Stage::Reid(_) = self.stage {
            // [reid] and [gallery] are compared with the running ones before this (a
            // change needs a restart): nothing of a ReID run changes live.
            return Ok(());
        }
        let classifier = classifier_for(&self.package, classify, vit)?;
        let stage = VitStage::new(&self.package, self.backend.as_ref(), vit)?;
        self.stage = Stage::Classify {
            interpret: Box::new(classifier.clone()),
            vit: stage.map(|s| Box::new((s, classifier))),
        };
        Ok(())
    }

    /// Between frames, when `flag` is set, `reload` is asked for the settings to use: `Ok`
    /// applies them (the interpretation is rebuilt, which is cheap), `Err` is logged and the
    /// running settings stay (SIGHUP).
    pub fn set_reload(&mut self, flag: Arc<AtomicBool>, reload: ReloadFn) {
        self.reload = Some(Reload { flag, reload });
    }

    fn reload_if_asked(&mut self) {
        let Some(reload) = self.reload.as_mut() else {
            return;
        };
        if !reload.flag.swap(false, Ordering::SeqCst) {
            return;
        }
        match (reload.reload)() {
            Ok((classify, vit)) => match self.reconfigure(&classify, &vit) {
                Ok(()) => log::info!("reload: new [classify], [attention], [zoom], [parts] and [token_labels] in use"),
                Err(e) => log::error!(
                    "reload refused, the running configuration stays: {}",
                    crate::error::Report(&e)
                ),
            },
            Err(why) => log::error!("reload refused, the running configuration stays: {why}"),
        }
    }

    /// Lets one frame through per trigger edge, instead of every frame.
    pub fn set_trigger(&mut self, trigger: Box<dyn FrameTrigger>) {
        self.trigger = Some(trigger);
    }

    /// Waits for the trigger (when there is one); `false` when the loop should stop.
    fn wait_for_trigger(&mut self, stop: &AtomicBool) -> Result<bool, PipelineError> {
        let Some(trigger) = self.trigger.as_mut() else {
            return Ok(true);
        };
        loop {
            self.health.waiting_for_trigger();
            match trigger.wait(stop, Duration::from_millis(200)) {
                Ok(true) => return Ok(true),
                Ok(false) if stop.load(Ordering::Relaxed) => return Ok(false),
                Ok(false) => {}
                Err(why) => {
                    return Err(PipelineError::Trigger(why));
                }
            }
        }
    }

    /// Serves Prometheus metrics about this pipeline (`[metrics]`).
    pub fn serve_metrics(&mut self, config: &MetricsConfig) -> std::io::Result<()> {
        let metrics = Arc::new(Metrics::new(&self.model, self.backend.name()));
        crate::service::metrics::serve(config, Arc::clone(&metrics))?;
        self.metrics = Some(metrics);
        Ok(())
    }

    /// Counts one record, and the frames the source skipped before it, in the metrics.
    fn count(&mut self, record: &Record, source_seq: u64) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        let camera = &record.frame().camera;
        if let Some(last) = self.last_source_seq.insert(camera.clone(), source_seq) {
            if source_seq > last + 1 {
                metrics.dropped(camera, source_seq - last - 1);
            }
        }
        match record {
            Record::Result(r) => {
                let l = r.latency_ms;
                metrics.record(camera, Some([l.pre, l.infer, l.post]), None);
            }
            Record::Error(e) => metrics.record(camera, None, Some(e.error.stage)),
        }
    }

    /// The sink's delivery state, once per frame, for the health (LED) and the metrics.
    fn report_delivery(&self) {
        let Some((connected, pending, dropped)) = self.sink.delivery() else {
            return;
        };
        self.health.delivery(connected);
        if let Some(metrics) = &self.metrics {
            metrics.delivery(connected, pending, dropped);
        }
    }

    /// What the loop reports about itself (for systemd's watchdog and status).
    pub fn health(&self) -> Arc<Health> {
        Arc::clone(&self.health)
    }

    /// Runs until the source ends or `stop` is set. Only a sink that cannot deliver stops it
    /// early, since its records would otherwise be lost silently.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<RunSummary, PipelineError> {
        log::info!(
            "running {:?} on {} to {}",
            self.model,
            self.source.describe(),
            self.sink.describe()
        );
        let mut summary = RunSummary::default();
        let mut warnings = WarningLimiter::new(Duration::from_secs(10), 5);
        while !stop.load(Ordering::Relaxed) {
            self.reload_if_asked();
            if !self.wait_for_trigger(stop)? {
                break;
            }
            let next = match self.source.next_event(stop) {
                None => break,
                Some(SourceEvent::Camera(status)) => {
                    self.health.camera(&status.camera, status.state);
                    if let Some(metrics) = &self.metrics {
                        metrics.camera(&status.camera, status.state == CameraState::Online);
                    }
                    self.sink
                        .camera_status(&CameraStatusRecord::from(&status))?;
                    continue;
                }
                Some(SourceEvent::Frame(next)) => next,
            };
            summary.frames += 1;
            let (source_seq, camera) = match &next {
                Ok(frame) => (frame.meta.seq, frame.meta.camera.clone()),
                Err(failed) => (failed.meta.seq, failed.meta.camera.clone()),
            };
            let records = match next {
                Ok(frame) => self.process_frame(&frame),
                Err(failed) => vec![self.error_record(
                    FrameInfo::from_meta(&failed.meta),
                    "source",
                    &failed.error,
                )],
            };
            // One number per frame: the records of a frame's crops share it.
            let seq = self.sequences.issue(&camera, source_seq)?;
            for mut record in records {
                record.frame_mut().seq = seq;
                match record {
                    Record::Result(_) => summary.results += 1,
                    Record::Error(ref e) => {
                        summary.errors += 1;
                        warnings.warn(format!(
                            "frame {} of {}: {}",
                            e.frame.seq, e.frame.source, e.error.message
                        ));
                    }
                }
                self.sink.emit(&record)?;
                self.count(&record, source_seq);
            }
            self.report_delivery();
            self.health.frame();
        }
        warnings.finish();
        self.sink.flush()?;
        self.sequences.close()?;
        Ok(summary)
    }

    /// Runs one frame through the stages: one record, or one per crop for ReID.
    pub fn process_frame(&mut self, frame: &Frame) -> Vec<Record> {
        if matches!(self.stage, Stage::Reid(_)) {
            self.identify(frame)
        } else {
            vec![self.classify(frame)]
        }
    }

    /// Identifies each crop of a frame (a ReID model).
    fn identify(&mut self, frame: &Frame) -> Vec<Record> {
        let info = FrameInfo::from_meta(&frame.meta);
        let start = Instant::now();
        let raster = match self.preprocess.decode(frame) {
            Ok(r) => r,
            Err(e) => return vec![self.error_record(info, "preprocess", &e)],
        };
        let Stage::Reid(stage) = &mut self.stage else {
            return Vec::new();
        };
        let crops = stage.crops(&frame.meta.camera, raster.width, raster.height);
        let camera = Camera {
            id: &frame.meta.camera,
            index: frame.meta.camera_index,
        };
        let now_ms = frame
            .meta
            .captured_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let found = stage.identify(
            &raster,
            &crops,
            &camera,
            now_ms,
            self.preprocess.as_mut(),
            self.backend.as_mut(),
        );
        let each_ms = elapsed_ms(start) / found.len().max(1) as f64;
        found
            .into_iter()
            .map(|result| match result {
                Ok(identified) => Record::Result(ResultRecord {
                    frame: info.clone(),
                    model: self.model.clone(),
                    backend: self.backend.name(),
                    task: self.task,
                    result: Interpretation::Identification(identified),
                    // Crops go through preprocessing, inference and matching in turn: the
                    // frame's time is shared out among them, as inference.
                    latency_ms: Latency {
                        pre: 0.0,
                        infer: each_ms,
                        post: 0.0,
                    },
                }),
                Err(failure) => {
                    let (stage, error) = failure.parts();
                    self.error_record(info.clone(), stage, error)
                }
            })
            .collect()
    }

    /// Runs one frame through the stages of a classification model.
    fn classify(&mut self, frame: &Frame) -> Record {
        let info = FrameInfo::from_meta(&frame.meta);
        let start = Instant::now();
        // The native pixels are kept only for the stages that go back to them (zoom, parts).
        let needs_native = matches!(&self.stage, Stage::Classify { vit: Some(_), .. });
        let prepared = if needs_native {
            self.preprocess
                .decode(frame)
                .and_then(|raster| Ok((self.preprocess.prepare_raster(&raster)?, Some(raster))))
        } else {
            self.preprocess.prepare_frame(frame).map(|p| (p, None))
        };
        let (prepared, native) = match prepared {
            Ok(p) => p,
            Err(e) => return self.error_record(info, "preprocess", &e),
        };
        let preprocessed = Instant::now();
        let outputs = match self.backend.run(&prepared.tensor) {
            Ok(o) => o,
            Err(e) => return self.error_record(info, "infer", &e),
        };
        let inferred = Instant::now();
        let result = match &self.stage {
            Stage::Reid(_) => Err(InterpretError::Config(
                "a ReID model's frames are identified, not classified".into(),
            )),
            Stage::Classify {
                interpret,
                vit: None,
            } => interpret.interpret(&outputs),
            Stage::Classify { vit: Some(vit), .. } => {
                let (stage, classifier) = vit.as_ref();
                let raster = match native {
                    Some(raster) => raster,
                    None => match self.preprocess.decode(frame) {
                        Ok(raster) => raster,
                        Err(e) => return self.error_record(info, "preprocess", &e),
                    },
                };
                let extended = classifier
                    .probabilities(&outputs)
                    .map_err(StageFailure::from)
                    .and_then(|p| {
                        let frame = FramePasses {
                            raster: &raster,
                            prepared: &prepared,
                            preprocess: self.preprocess.as_mut(),
                            backend: self.backend.as_mut(),
                            classifier,
                        };
                        stage.extend(&outputs, p, frame)
                    });
                match extended {
                    Ok(c) => Ok(Interpretation::Classification(c)),
                    Err(StageFailure::Interpret(e)) => Err(e),
                    Err(StageFailure::Preprocess(e)) => {
                        return self.error_record(info, "preprocess", &e)
                    }
                    Err(StageFailure::Infer(e)) => return self.error_record(info, "infer", &e),
                }
            }
        };
        let result = match result {
            Ok(r) => r,
            Err(e) => return self.error_record(info, "interpret", &e),
        };
        let done = Instant::now();
        let ms = |a: Instant, b: Instant| ((b - a).as_secs_f64() * 1e6).round() / 1e3;
        Record::Result(ResultRecord {
            frame: info,
            model: self.model.clone(),
            backend: self.backend.name(),
            task: self.task,
            result,
            latency_ms: Latency {
                pre: ms(start, preprocessed),
                infer: ms(preprocessed, inferred),
                post: ms(inferred, done),
            },
        })
    }

    fn error_record(
        &self,
        frame: FrameInfo,
        stage: &'static str,
        error: &(dyn std::error::Error + 'static),
    ) -> Record {
        Record::Error(ErrorRecord {
            frame,
            model: self.model.clone(),
            error: ErrorDetail {
                stage,
                message: crate::error::chain(error),
            },
        })
    }
}

fn elapsed_ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e6).round() / 1e3
}
