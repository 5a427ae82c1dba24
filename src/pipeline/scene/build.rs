//! Building a scene's worker from a run configuration: a detector alone, a detector before the
//! model, or the model on fixed regions (`[[reid.roi]]` with a classify model).

use super::finder::{Finder, OwnModel, Within};
use super::looks::{Looker, Second};
use super::SceneStage;
use crate::detect::{Decoder, DetectError};
use crate::interpret::InterpretError;
use crate::model::Task;
use crate::pipeline::worker::Worker;
use crate::pipeline::{
    gallery_path, keep_read_outputs, LoadedModel, PipelineError, ReidStage, RunConfig, VitStage,
};

/// Whether a run is a scene: a detector (in `[detector]`, or as the `[model]`), or a classify
/// model on fixed regions.
pub fn is_scene(config: &RunConfig, task: Task) -> bool {
    let classifies = task == Task::Classify || config.classify.classes.is_some();
    config.detector.is_some()
        || task == Task::Detect
        || (classifies && !config.reid.rois.is_empty())
}

/// The worker of a scene (see [`is_scene`]).
pub(in crate::pipeline) fn worker(
    config: &RunConfig,
    mut model: LoadedModel,
) -> Result<Worker, PipelineError> {
    let task = model.package.manifest.task;
    let tracker = config.tracker.as_ref();
    if task == Task::Detect {
        if config.detector.is_some() {
            return Err(InterpretError::Config(
                "`model.path` is a detector and `detector.path` names one too: [model] is the model that looks at each object the detector finds (classify or reid)".into(),
            )
            .into());
        }
        let finder = Finder::Detector {
            decoder: Box::new(Decoder::new(&model.package, &config.detect)?),
            own: None,
            zones: config.zones.clone(),
            within: None,
        };
        let stage = SceneStage::new(finder, tracker)?;
        stage.check(model.backend.as_ref())?;
        let kept = model.package.manifest.outputs.per_frame_names();
        model.backend.keep_outputs(&kept)?;
        return Ok(Worker::scene_model(model, stage));
    }
    let (finder, margin) = match &config.detector {
        Some(detector) => (detector_finder(config, &detector.path)?, detector.margin),
        // Fixed regions are cropped as drawn.
        None => (Finder::Regions(config.reid.rois.clone()), 0.0),
    };
    let stage = SceneStage::new(finder, tracker)?;
    stage.check(model.backend.as_ref())?;
    let second = match task {
        Task::Reid if config.classify.classes.is_some() => {
            let by_example = crate::pipeline::examples_for(&model, &config.classify)?;
            Second::Examples(Box::new(by_example))
        }
        Task::Reid => {
            let path = gallery_path(&config.gallery, config.state_dir.as_deref())?;
            let reid = ReidStage::new(
                &model.package,
                model.backend.as_ref(),
                &config.reid,
                &config.gallery,
                &path,
            )?;
            Second::Reid(Box::new(reid))
        }
        _ => {
            let vit = config.vit_options();
            let stage = VitStage::new(&model.package, model.backend.as_ref(), &vit)?;
            keep_read_outputs(&model.package, model.backend.as_mut(), stage.is_some())?;
            Second::Classify {
                classifier: model.classifier(&config.classify, &vit)?,
                vit: stage.map(Box::new),
            }
        }
    };
    let color = model.package.manifest.input.color;
    let looker = Looker {
        model: second,
        margin: margin.max(0.0),
    };
    Ok(Worker::scene_model(model, stage.with_second(looker, color)))
}

/// The `[detector]` package loaded on the run's backend, with its decoder.
fn detector_finder(config: &RunConfig, path: &std::path::Path) -> Result<Finder, PipelineError> {
    let at_key = |e: PipelineError| PipelineError::Setting {
        key: "detector.path",
        source: Box::new(e),
    };
    let found = LoadedModel::load(path, &config.backend).map_err(at_key)?;
    if found.package.manifest.task != Task::Detect {
        let model = found.package.name().to_string();
        return Err(at_key(DetectError::NotADetector { model }.into()));
    }
    let mut backend = found.backend;
    backend.keep_outputs(&found.package.manifest.outputs.per_frame_names())?;
    let within = match config.detector.as_ref().and_then(|d| d.within.as_ref()) {
        Some(path) => {
            let within = within_detector(config, path)?;
            // Both search the same decoded frame: their colour orders must agree.
            if within.model.color != found.package.manifest.input.color {
                return Err(InterpretError::Config(
                    "detector.within: its colour order differs from detector.path's".into(),
                )
                .into());
            }
            Some(Box::new(within))
        }
        None => None,
    };
    let finder = Finder::Detector {
        decoder: Box::new(Decoder::new(&found.package, &config.detect)?),
        own: Some(Box::new(OwnModel::new(&found.package, backend))),
        zones: config.zones.clone(),
        within,
    };
    Ok(finder)
}

/// The detector `[detector] within` names, with its own settings (its package's `[detect]`).
fn within_detector(config: &RunConfig, path: &std::path::Path) -> Result<Within, PipelineError> {
    let at_key = |e: PipelineError| PipelineError::Setting {
        key: "detector.within",
        source: Box::new(e),
    };
    let found = LoadedModel::load(path, &config.backend).map_err(at_key)?;
    if found.package.manifest.task != Task::Detect {
        let model = found.package.name().to_string();
        return Err(at_key(DetectError::NotADetector { model }.into()));
    }
    let decoder = Decoder::new(&found.package, &Default::default())?;
    let labels = config
        .detector
        .as_ref()
        .and_then(|d| d.within_labels.clone());
    for label in labels.iter().flatten() {
        if !found.package.labels.contains(label) {
            return Err(InterpretError::Config(format!(
                "detector.within_labels: {label:?} is not a label of {:?}",
                found.package.name()
            ))
            .into());
        }
    }
    let mut backend = found.backend;
    backend.keep_outputs(&found.package.manifest.outputs.per_frame_names())?;
    decoder.check(backend.as_ref())?;
    Ok(Within {
        decoder,
        model: OwnModel::new(&found.package, backend),
        labels,
    })
}
