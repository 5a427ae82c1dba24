//! Objects in a scene: a detector finds them, the tracker follows them, and the second model
//! (classify or ReID) looks at each track's crop, cut from the native-resolution frame, at
//! most every `tracker.every_frames` frames; a track keeps the vote of its looks.
//!
//! source -> preprocess -> detector -> track -> crops -> model -> interpret -> sink.

use super::vit_stage::StageFailure;
use super::worker::Worker;
use super::{
    gallery_path, keep_read_outputs, Camera, FramePasses, LoadedModel, PipelineError, ReidStage,
    RunConfig, VitStage,
};
use crate::backend::InferenceBackend;
use crate::detect::DetectError;
use crate::detect::{zones, Decoder, DetectOverrides, Object, ZoneConfig};
use crate::frame::Frame;
use crate::interpret::{
    Classification, Classifier, Crop, InterpretError, PixelBox, Scene, SceneObject,
};
use crate::model::Task;
use crate::model::{ColorOrder, ModelPackage};
use crate::preprocess::{Preprocess, PreprocessError, Preprocessor, Raster};
use crate::track::{Looks, Seen, Tracker, TrackerConfig};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;

/// `[detector]`: a detector package that runs before the model, which then looks at each
/// object (the `[detect]` table overrides the package's settings).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    /// The detector's package folder (holding `model.toml`, task `detect`).
    pub path: PathBuf,
    /// Each object's crop is widened by this fraction of its size on every side before the
    /// model sees it (clipped to the frame). Default 0.1.
    #[serde(default = "default_margin")]
    pub margin: f32,
}

fn default_margin() -> f32 {
    0.1
}

/// The model that looks at each object.
pub enum Second {
    Classify {
        classifier: Classifier,
        vit: Option<Box<VitStage>>,
    },
    Reid(Box<ReidStage>),
}

/// The detector's own model, when the worker's backend runs the second one.
struct OwnModel {
    preprocess: Preprocessor,
    backend: Box<dyn InferenceBackend>,
    color: ColorOrder,
    /// The second model decodes frames in the detector's colour order: one decode serves both.
    same_color: bool,
}

/// What a track remembers: its looks, and what the last look said.
#[derive(Default)]
struct Memory {
    looks: Looks,
    last: Option<SceneObject>,
}

/// Detection, tracking and the second model's looks.
pub struct SceneStage {
    decoder: Decoder,
    own: Option<OwnModel>,
    margin: f32,
    zones: Vec<ZoneConfig>,
    tracker: Option<TrackerConfig>,
    trackers: HashMap<String, Tracker>,
    memory: HashMap<u64, Memory>,
    next_track: u64,
    /// Frames of each camera so far (for `tracker.detect_every`).
    frames: HashMap<String, u64>,
    second: Option<Second>,
}

/// The models a frame goes through: the worker's own (the detector, or the second model
/// when the detector has its own).
pub struct Models<'a> {
    pub preprocess: &'a mut dyn Preprocess,
    pub backend: &'a mut dyn InferenceBackend,
}

impl SceneStage {
    /// A stage for a detector package; `own` is the detector's backend when the worker's
    /// backend runs `second`.
    pub fn new(
        package: &ModelPackage,
        own: Option<Box<dyn InferenceBackend>>,
        overrides: &DetectOverrides,
        zones: &[ZoneConfig],
        tracker: Option<&TrackerConfig>,
    ) -> Result<Self, PipelineError> {
        let decoder = Decoder::new(package, overrides)?;
        for zone in zones {
            zone.check().map_err(InterpretError::Config)?;
        }
        if let Some(config) = tracker {
            config.check().map_err(InterpretError::Config)?;
        }
        let own = own.map(|backend| OwnModel {
            preprocess: Preprocessor::new(&package.manifest.input),
            backend,
            color: package.manifest.input.color,
            same_color: true,
        });
        if let Some(own) = &own {
            decoder.check(own.backend.as_ref())?;
        }
        Ok(SceneStage {
            decoder,
            own,
            margin: default_margin(),
            zones: zones.to_vec(),
            tracker: tracker.cloned(),
            trackers: HashMap::new(),
            memory: HashMap::new(),
            next_track: 0,
            frames: HashMap::new(),
            second: None,
        })
    }

    /// The second model (taking `color`) looks at each object's crop, widened by `margin` a
    /// side.
    pub fn with_second(mut self, second: Second, margin: f32, color: ColorOrder) -> Self {
        self.second = Some(second);
        self.margin = margin.max(0.0);
        if let Some(own) = &mut self.own {
            own.same_color = own.color == color;
        }
        self
    }

    /// The frame as the detector decodes it, and as the second model does where its colour
    /// order differs.
    pub fn decode(
        &self,
        frame: &Frame,
        worker: &dyn Preprocess,
    ) -> Result<(Raster, Option<Raster>), PreprocessError> {
        match &self.own {
            None => Ok((worker.decode(frame)?, None)),
            Some(own) => {
                let raster = own.preprocess.decode(frame)?;
                let second = match own.same_color {
                    true => None,
                    false => Some(worker.decode(frame)?),
                };
                Ok((raster, second))
            }
        }
    }

    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The gallery of a ReID second model.
    pub fn reid_mut(&mut self) -> Option<&mut ReidStage> {
        match &mut self.second {
            Some(Second::Reid(stage)) => Some(stage),
            _ => None,
        }
    }

    /// The detector's objects in a decoded frame that count (inside the camera's zones).
    fn detect(
        &mut self,
        raster: &Raster,
        camera: &str,
        worker: &mut Models,
    ) -> Result<Vec<(Object, Vec<String>)>, StageFailure> {
        let (preprocess, backend): (&mut dyn Preprocess, &mut dyn InferenceBackend) =
            match &mut self.own {
                Some(own) => (&mut own.preprocess, own.backend.as_mut()),
                None => (&mut *worker.preprocess, &mut *worker.backend),
            };
        let prepared = preprocess
            .prepare_raster(raster)
            .map_err(StageFailure::Preprocess)?;
        let outputs = backend.run(&prepared.tensor).map_err(StageFailure::Infer)?;
        let objects =
            self.decoder
                .objects(&outputs, &prepared.placement, (raster.width, raster.height))?;
        preprocess.recycle(prepared);
        Ok(objects
            .into_iter()
            .filter_map(|o| {
                let inside = zones::zones_of(&self.zones, camera, o.bounds)?;
                Some((o, inside))
            })
            .collect())
    }

    /// A frame the detector skips (`tracker.detect_every`): the confirmed tracks at their
    /// predicted boxes, saying what their last look said. `None` when the detector runs on
    /// this frame.
    pub fn coast(&mut self, camera: &str, frame: (u32, u32)) -> Option<Scene> {
        let every = u64::from(self.tracker.as_ref()?.detect_every.max(1));
        let count = self.frames.entry(camera.to_string()).or_insert(0);
        let skipped = *count % every != 0;
        *count += 1;
        if !skipped {
            return None;
        }
        let tracker = self.trackers.get_mut(camera)?;
        let objects = tracker
            .coast()
            .into_iter()
            .filter_map(|(track, [x0, y0, x1, y1])| {
                let mut object = self.memory.get(&track)?.last.clone()?;
                let (right, bottom) = (x1.min(frame.0 as f32), y1.min(frame.1 as f32));
                let (left, top) = (x0.max(0.0), y0.max(0.0));
                // A track predicted out of the frame is not reported until it is seen again.
                if right - left < 1.0 || bottom - top < 1.0 {
                    return None;
                }
                object.object.bounds = PixelBox {
                    x0: left as u32,
                    y0: top as u32,
                    x1: right.ceil() as u32,
                    y1: bottom.ceil() as u32,
                };
                object.region = None;
                Some(object)
            })
            .collect();
        Some(Scene {
            objects,
            ended: Vec::new(),
        })
    }

    /// One frame: its objects, tracked, each with what the second model made of it.
    /// `second_raster` is the frame as the second model decodes it (its colour order).
    pub fn process(
        &mut self,
        raster: &Raster,
        second_raster: &Raster,
        camera: &Camera,
        now_ms: i64,
        worker: &mut Models,
    ) -> Result<Scene, StageFailure> {
        let found = self.detect(raster, camera.id, worker)?;
        let frame = (raster.width, raster.height);
        let Some(config) = self.tracker.clone() else {
            // No tracker: every object, every frame, looked at once.
            let mut objects = Vec::new();
            for (object, zones) in found {
                let mut scene_object = plain(object, zones);
                self.look(&mut scene_object, second_raster, camera, now_ms, worker)?;
                objects.push(scene_object);
            }
            return Ok(Scene {
                objects,
                ended: Vec::new(),
            });
        };
        let seen: Vec<Seen> = found
            .iter()
            .map(|(o, _)| Seen {
                bounds: [
                    o.bounds.x0 as f32,
                    o.bounds.y0 as f32,
                    o.bounds.x1 as f32,
                    o.bounds.y1 as f32,
                ],
                score: o.score,
                class: o.class,
            })
            .collect();
        let next = &mut self.next_track;
        let step = self
            .trackers
            .entry(camera.id.to_string())
            .or_insert_with(|| Tracker::new(config.clone()))
            .step(&seen, &mut || {
                *next += 1;
                *next
            });
        let mut scene = Scene {
            objects: Vec::new(),
            ended: step.ended.clone(),
        };
        for id in &step.ended {
            self.memory.remove(id);
        }
        for assigned in step.assigned.iter().filter(|a| a.confirmed) {
            let (object, zones) = found[assigned.detection].clone();
            let mut memory = self.memory.remove(&assigned.track).unwrap_or_default();
            let mut current = plain(object, zones);
            current.track = Some(assigned.track);
            let due = self.second.is_some()
                && memory.looks.see(
                    current.object.bounds,
                    current.object.score,
                    frame,
                    config.every_frames,
                );
            if due {
                let looked = self.look(&mut current, second_raster, camera, now_ms, worker);
                if let Err(failure) = looked {
                    self.memory.insert(assigned.track, memory);
                    return Err(failure);
                }
                vote(&mut memory, &mut current);
            } else if let Some(last) = &memory.last {
                carry(last, &mut current);
            }
            memory.last = Some(current.clone());
            self.memory.insert(assigned.track, memory);
            scene.objects.push(current);
        }
        Ok(scene)
    }

    /// Runs the second model on an object's crop and writes what it said into `object`.
    fn look(
        &mut self,
        object: &mut SceneObject,
        raster: &Raster,
        camera: &Camera,
        now_ms: i64,
        worker: &mut Models,
    ) -> Result<(), StageFailure> {
        let Some(second) = &mut self.second else {
            return Ok(());
        };
        let bounds = widen(
            object.object.bounds,
            self.margin,
            raster.width,
            raster.height,
        );
        match second {
            Second::Reid(stage) => {
                let crop = Crop {
                    roi: format!("track-{}", object.track.unwrap_or(0)),
                    bounds,
                    view: 0,
                };
                let found = stage
                    .identify(
                        raster,
                        &[crop],
                        camera,
                        now_ms,
                        &mut *worker.preprocess,
                        &mut *worker.backend,
                    )
                    .pop()
                    .ok_or_else(|| {
                        StageFailure::Interpret(InterpretError::Config(
                            "no crop was identified".into(),
                        ))
                    })??;
                object.identity = Some(found.identity);
                object.name = found.name;
                object.similarity = Some(found.similarity);
            }
            Second::Classify { classifier, vit } => {
                let crop = raster.crop(bounds.x0, bounds.y0, bounds.x1, bounds.y1);
                let result = classify_crop(&crop, classifier, vit.as_deref(), worker)?;
                object.fine_label = result.top.first().map(|c| c.label.clone());
                object.region = result.region.map(|r| PixelBox {
                    x0: r.bounds.x0 + bounds.x0,
                    y0: r.bounds.y0 + bounds.y0,
                    x1: r.bounds.x1 + bounds.x0,
                    y1: r.bounds.y1 + bounds.y0,
                });
                object.top = result.top;
            }
        }
        Ok(())
    }

    /// Ends every track (the run stops): their ids.
    pub fn end_all(&mut self) -> Vec<u64> {
        self.memory.clear();
        self.trackers
            .values_mut()
            .flat_map(Tracker::end_all)
            .collect()
    }
}

/// The classes of one crop, with the zoom and parts on it when the model has attention.
fn classify_crop(
    crop: &Raster,
    classifier: &Classifier,
    vit: Option<&VitStage>,
    worker: &mut Models,
) -> Result<Classification, StageFailure> {
    let prepared = worker
        .preprocess
        .prepare_raster(crop)
        .map_err(StageFailure::Preprocess)?;
    let outputs = worker
        .backend
        .run(&prepared.tensor)
        .map_err(StageFailure::Infer)?;
    let probabilities = classifier.probabilities(&outputs)?;
    let result = match vit {
        None => Ok(classifier.top(&probabilities)),
        Some(stage) => stage.extend(
            &outputs,
            probabilities,
            FramePasses {
                raster: crop,
                prepared: &prepared,
                preprocess: &mut *worker.preprocess,
                backend: &mut *worker.backend,
                classifier,
            },
        ),
    };
    worker.preprocess.recycle(prepared);
    result
}

/// The worker of a run with a `[detector]` (the `[model]` looks at each object), or whose
/// `[model]` is itself a detector.
pub(super) fn worker(config: &RunConfig, mut model: LoadedModel) -> Result<Worker, PipelineError> {
    let task = model.package.manifest.task;
    let tracker = config.tracker.as_ref();
    let Some(detector) = &config.detector else {
        let stage = SceneStage::new(&model.package, None, &config.detect, &config.zones, tracker)?;
        stage.decoder().check(model.backend.as_ref())?;
        let kept = model.package.manifest.outputs.per_frame_names();
        model.backend.keep_outputs(&kept)?;
        return Ok(Worker::scene_model(model, stage));
    };
    if task == Task::Detect {
        return Err(InterpretError::Config(
            "`model.path` is a detector and `detector.path` names one too: [model] is the model that looks at each object the detector finds (classify or reid)".into(),
        )
        .into());
    }
    let found =
        LoadedModel::load(&detector.path, &config.backend).map_err(|e| PipelineError::Setting {
            key: "detector.path",
            source: Box::new(e),
        })?;
    if found.package.manifest.task != Task::Detect {
        return Err(PipelineError::Setting {
            key: "detector.path",
            source: Box::new(
                DetectError::NotADetector {
                    model: found.package.name().to_string(),
                }
                .into(),
            ),
        });
    }
    let mut detector_backend = found.backend;
    detector_backend.keep_outputs(&found.package.manifest.outputs.per_frame_names())?;
    let stage = SceneStage::new(
        &found.package,
        Some(detector_backend),
        &config.detect,
        &config.zones,
        tracker,
    )?;
    let second = match task {
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
    Ok(Worker::scene_model(
        model,
        stage.with_second(second, detector.margin, color),
    ))
}

/// An object as the detector gave it, before tracking and looks.
fn plain(object: Object, zones: Vec<String>) -> SceneObject {
    SceneObject {
        track: None,
        object,
        zones,
        identity: None,
        name: None,
        similarity: None,
        fine_label: None,
        top: Vec::new(),
        region: None,
        agreement: None,
    }
}

/// Counts a look in the track's vote and reports the vote's leader, not the look.
fn vote(memory: &mut Memory, current: &mut SceneObject) {
    let (value, score) = match (&current.identity, &current.fine_label) {
        (Some(identity), _) => (identity.clone(), current.similarity.unwrap_or(0.0)),
        (None, Some(label)) => (label.clone(), current.top.first().map_or(0.0, |c| c.score)),
        (None, None) => return,
    };
    memory.looks.vote.add(&value, score);
    let Some((leader, share)) = memory.looks.vote.leader() else {
        return;
    };
    current.agreement = Some(share);
    if leader == value {
        return;
    }
    // The look disagrees with the vote: the track keeps the leader (and what the last look
    // that gave it said).
    if let Some(last) = &memory.last {
        let mut kept = current.clone();
        carry(last, &mut kept);
        *current = SceneObject {
            agreement: Some(share),
            ..kept
        };
    }
    if current.identity.is_some() {
        current.identity = Some(leader.to_string());
    } else {
        current.fine_label = Some(leader.to_string());
    }
}

/// Between looks, a track reports what its last look said.
fn carry(last: &SceneObject, current: &mut SceneObject) {
    current.identity.clone_from(&last.identity);
    current.name.clone_from(&last.name);
    current.similarity = last.similarity;
    current.fine_label.clone_from(&last.fine_label);
    current.top.clone_from(&last.top);
    current.agreement = last.agreement;
    // The region was on the last look's crop: it does not move with the object.
    current.region = None;
}

/// `bounds` widened by `margin` of its size on each side, clipped to the frame.
pub fn widen(bounds: PixelBox, margin: f32, width: u32, height: u32) -> PixelBox {
    let dx = (bounds.width() as f32 * margin).round() as u32;
    let dy = (bounds.height() as f32 * margin).round() as u32;
    PixelBox {
        x0: bounds.x0.saturating_sub(dx),
        y0: bounds.y0.saturating_sub(dy),
        x1: (bounds.x1 + dx)
            .min(width)
            .max(bounds.x0.saturating_sub(dx) + 1),
        y1: (bounds.y1 + dy)
            .min(height)
            .max(bounds.y0.saturating_sub(dy) + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_widen_within_the_frame() {
        let b = PixelBox {
            x0: 10,
            y0: 20,
            x1: 110,
            y1: 220,
        };
        assert_eq!(
            widen(b, 0.1, 1000, 1000),
            PixelBox {
                x0: 0,
                y0: 0,
                x1: 120,
                y1: 240
            }
        );
        assert_eq!(
            widen(b, 0.1, 115, 230),
            PixelBox {
                x0: 0,
                y0: 0,
                x1: 115,
                y1: 230
            }
        );
        assert_eq!(widen(b, 0.0, 1000, 1000), b);
    }
}
