//! Objects in a scene: a detector finds them (or fixed regions stand for them), the tracker
//! follows them, and the second model (classify or ReID) looks at each track's crop, cut from
//! the native-resolution frame, at most every `tracker.every_frames` frames; a track keeps the
//! vote of its looks.
//!
//! source -> preprocess -> detector -> track -> crops -> model -> interpret -> sink.

mod build;
mod finder;
mod looks;

pub use build::is_scene;
pub(super) use build::worker;
pub use finder::detect;
pub use looks::{widen, Second};

use self::finder::{Finder, Found};
use self::looks::{carry, plain, vote, At, Looker, Memory};
use super::{Camera, PipelineError, ReidStage, StageFailure};
use crate::backend::InferenceBackend;
use crate::detect::DetectError;
use crate::frame::Frame;
use crate::interpret::{InterpretError, PixelBox, Scene, SceneObject};
use crate::preprocess::{Preprocess, PreprocessError, Raster};
use crate::track::{Seen, Tracker, TrackerConfig};
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
    /// A detector run first, this one then inside each of its objects (faces inside the
    /// people a COCO detector finds: BlazeFace short-range wants faces of a fifth of its input
    /// or more, which a person far from the camera is not). Default: none, the whole frame.
    #[serde(default)]
    pub within: Option<PathBuf>,
    /// With `within`: only inside its objects of these labels (`["person"]`). Default: all.
    #[serde(default)]
    pub within_labels: Option<Vec<String>>,
}

fn default_margin() -> f32 {
    0.1
}

/// The models a frame goes through: the worker's own (the detector, or the second model
/// when the detector has its own).
pub struct Models<'a> {
    pub preprocess: &'a mut dyn Preprocess,
    pub backend: &'a mut dyn InferenceBackend,
}

/// Finding, tracking and the second model's looks.
pub struct SceneStage {
    finder: Finder,
    looker: Option<Looker>,
    tracker: Option<TrackerConfig>,
    trackers: HashMap<String, Tracker>,
    memory: HashMap<u64, Memory>,
    next_track: u64,
    /// Frames of each camera so far (for `tracker.detect_every`).
    frames: HashMap<String, u64>,
}

impl SceneStage {
    fn new(finder: Finder, tracker: Option<&TrackerConfig>) -> Result<Self, PipelineError> {
        if let Some(config) = tracker {
            config.check().map_err(InterpretError::Config)?;
        }
        if let Finder::Detector { zones, .. } = &finder {
            for zone in zones {
                zone.check().map_err(InterpretError::Config)?;
            }
        }
        Ok(SceneStage {
            finder,
            looker: None,
            tracker: tracker.cloned(),
            trackers: HashMap::new(),
            memory: HashMap::new(),
            next_track: 0,
            frames: HashMap::new(),
        })
    }

    /// The second model (taking `color`) looks at each object.
    fn with_second(mut self, looker: Looker, color: crate::model::ColorOrder) -> Self {
        self.finder.second_takes(color);
        self.looker = Some(looker);
        self
    }

    /// Refuses a detector whose outputs the worker's backend gives in unreadable shapes.
    fn check(&self, worker: &dyn InferenceBackend) -> Result<(), DetectError> {
        self.finder.check(worker)
    }

    /// The frame as the detector decodes it, and as the second model does where its colour
    /// order differs.
    pub fn decode(
        &self,
        frame: &Frame,
        worker: &dyn Preprocess,
    ) -> Result<(Raster, Option<Raster>), PreprocessError> {
        self.finder.decode(frame, worker)
    }

    /// Whether the objects are identified in a gallery (a ReID second model).
    pub fn has_gallery(&self) -> bool {
        matches!(
            &self.looker,
            Some(Looker {
                model: Second::Reid(_),
                ..
            })
        )
    }

    /// The gallery of a ReID second model.
    pub fn reid_mut(&mut self) -> Option<&mut ReidStage> {
        match &mut self.looker {
            Some(Looker {
                model: Second::Reid(stage),
                ..
            }) => Some(stage),
            _ => None,
        }
    }

    /// A frame the detector skips (`tracker.detect_every`): the confirmed tracks at their
    /// predicted boxes, saying what their last look said. `None` when the detector runs on
    /// this frame.
    pub fn coast(&mut self, camera: &str, frame: (u32, u32)) -> Option<Scene> {
        let every = u64::from(self.tracker.as_ref()?.detect_every.max(1));
        let count = self.frames.entry(camera.to_string()).or_insert(0);
        let skipped = !count.is_multiple_of(every);
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
                object.parts.clear();
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
        let found = self.finder.find(raster, camera.id, worker)?;
        let at = At {
            raster: second_raster,
            camera,
            now_ms,
        };
        let frame = (raster.width, raster.height);
        let every = self.tracker.as_ref().map_or(1, |t| t.every_frames);
        if matches!(self.finder, Finder::Regions(_)) {
            // Fixed regions keep their tracks: each is followed without a tracker.
            let mut objects = Vec::new();
            for one in found {
                let track = one.track.unwrap_or_default();
                objects.push(self.follow(track, one, every, frame, &at, worker)?);
            }
            return Ok(Scene {
                objects,
                ended: Vec::new(),
            });
        }
        let Some(config) = self.tracker.clone() else {
            // No tracker: every object, every frame, looked at once.
            let mut objects = Vec::new();
            for one in found {
                let mut object = plain(one.object, one.zones);
                if let Some(looker) = &mut self.looker {
                    looker.look(&mut object, &at, one.view, worker)?;
                }
                objects.push(object);
            }
            return Ok(Scene {
                objects,
                ended: Vec::new(),
            });
        };
        let step = self.step(camera.id, &config, &found);
        let mut scene = Scene {
            objects: Vec::new(),
            ended: step.ended.clone(),
        };
        for id in &step.ended {
            self.memory.remove(id);
        }
        for assigned in step.assigned.iter().filter(|a| a.confirmed) {
            let one = found[assigned.detection].clone();
            let object =
                self.follow(assigned.track, one, config.every_frames, frame, &at, worker)?;
            scene.objects.push(object);
        }
        Ok(scene)
    }

    /// The camera's tracker takes the frame's objects.
    fn step(
        &mut self,
        camera: &str,
        config: &TrackerConfig,
        found: &[Found],
    ) -> crate::track::Step {
        let seen: Vec<Seen> = found
            .iter()
            .map(|f| {
                let b = f.object.bounds;
                Seen {
                    bounds: [b.x0 as f32, b.y0 as f32, b.x1 as f32, b.y1 as f32],
                    score: f.object.score,
                    class: f.object.class,
                }
            })
            .collect();
        let next = &mut self.next_track;
        self.trackers
            .entry(camera.to_string())
            .or_insert_with(|| Tracker::new(config.clone()))
            .step(&seen, &mut || {
                *next += 1;
                *next
            })
    }

    /// One frame of a track: the second model looks when due (else the track says what its
    /// last look said), and the track reports its vote.
    fn follow(
        &mut self,
        track: u64,
        found: Found,
        every: u32,
        frame: (u32, u32),
        at: &At,
        worker: &mut Models,
    ) -> Result<SceneObject, StageFailure> {
        let mut memory = self.memory.remove(&track).unwrap_or_default();
        let mut current = plain(found.object, found.zones);
        current.track = Some(track);
        let due = self.looker.is_some()
            && memory
                .looks
                .see(current.object.bounds, current.object.score, frame, every);
        if due {
            if let Some(looker) = &mut self.looker {
                let looked = looker.look(&mut current, at, found.view, worker);
                if let Err(failure) = looked {
                    self.memory.insert(track, memory);
                    return Err(failure);
                }
            }
            vote(&mut memory, &mut current);
        } else if let Some(last) = &memory.last {
            carry(last, &mut current);
        }
        memory.last = Some(current.clone());
        self.memory.insert(track, memory);
        Ok(current)
    }
}
