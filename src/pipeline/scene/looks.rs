//! The second model's look at an object: its crop, widened and cut from the native frame,
//! identified in the gallery (ReID) or classified (with the zoom and parts on the crop when the
//! model has attention); and how a track's looks become what it reports (the vote).

use super::Models;
use crate::detect::Object;
use crate::interpret::{
    Classification, Classifier, Crop, ExampleClassifier, InterpretError, Part, PixelBox,
    SceneObject,
};
use crate::pipeline::{Camera, FramePasses, ReidStage, StageFailure, VitStage};
use crate::preprocess::Raster;
use crate::track::Looks;

/// The model that looks at each object.
pub enum Second {
    Classify {
        classifier: Classifier,
        vit: Option<Box<VitStage>>,
    },
    Reid(Box<ReidStage>),
    /// Classes by example (`[classify] classes`) on each object's embedding.
    Examples(Box<ExampleClassifier>),
}

/// The second model and how it crops.
pub(super) struct Looker {
    pub model: Second,
    /// Each crop is widened by this fraction of the object's size a side.
    pub margin: f32,
}

/// Where a look happens: the frame as the second model decodes it, its camera and time.
pub(super) struct At<'a> {
    pub raster: &'a Raster,
    pub camera: &'a Camera<'a>,
    pub now_ms: i64,
}

/// What a track remembers: its looks, and what the last look said.
#[derive(Default)]
pub(super) struct Memory {
    pub looks: Looks,
    pub last: Option<SceneObject>,
}

impl Looker {
    /// Runs the second model on an object's crop and writes what it said into `object`.
    pub(super) fn look(
        &mut self,
        object: &mut SceneObject,
        at: &At,
        view: usize,
        worker: &mut Models,
    ) -> Result<(), StageFailure> {
        let raster = at.raster;
        let bounds = widen(
            object.object.bounds,
            self.margin,
            raster.width,
            raster.height,
        );
        match &mut self.model {
            Second::Reid(stage) => {
                let crop = Crop {
                    roi: format!("track-{}", object.track.unwrap_or(0)),
                    bounds,
                    view,
                    face: object.object.face,
                };
                let found = stage
                    .identify(
                        raster,
                        &[crop],
                        at.camera,
                        at.now_ms,
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
                object.distance = found.distance;
                object.crop = found.crop;
            }
            Second::Examples(examples) => {
                let crop = raster.crop(bounds.x0, bounds.y0, bounds.x1, bounds.y1);
                let prepared = worker
                    .preprocess
                    .prepare_raster(&crop)
                    .map_err(StageFailure::Preprocess)?;
                let outputs = worker
                    .backend
                    .run(&prepared.tensor)
                    .map_err(StageFailure::Infer)?;
                worker.preprocess.recycle(prepared);
                let result = examples.classify_outputs(&outputs)?;
                object.fine_label = result.top.first().map(|c| c.label.clone());
                object.top = result.top;
            }
            Second::Classify { classifier, vit } => {
                let crop = raster.crop(bounds.x0, bounds.y0, bounds.x1, bounds.y1);
                let result = classify_crop(&crop, classifier, vit.as_deref(), worker)?;
                object.fine_label = result.top.first().map(|c| c.label.clone());
                // The zoom and the parts were found on the crop: moved to the frame's pixels.
                let moved = |b: PixelBox| b.moved_by(bounds.x0, bounds.y0);
                object.region = result.region.map(|r| moved(r.bounds));
                object.parts = (result.parts.into_iter().flatten())
                    .map(|part| Part {
                        bounds: moved(part.bounds),
                        ..part
                    })
                    .collect();
                object.top = result.top;
            }
        }
        Ok(())
    }
}

/// The classes of one crop, with the zoom and parts on it when the model has attention.
pub(super) fn classify_crop(
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

/// An object as the detector gave it, before tracking and looks.
pub(super) fn plain(object: Object, zones: Vec<String>) -> SceneObject {
    SceneObject {
        zones,
        ..SceneObject::of(object)
    }
}

/// Counts a look in the track's vote and reports the vote's leader, not the look.
pub(super) fn vote(memory: &mut Memory, current: &mut SceneObject) {
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
pub(super) fn carry(last: &SceneObject, current: &mut SceneObject) {
    current.identity.clone_from(&last.identity);
    current.name.clone_from(&last.name);
    current.similarity = last.similarity;
    current.distance = last.distance;
    current.crop.clone_from(&last.crop);
    current.fine_label.clone_from(&last.fine_label);
    current.top.clone_from(&last.top);
    current.agreement = last.agreement;
    // The region was on the last look's crop: it does not move with the object.
    current.region = None;
    current.parts.clear();
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
