//! Detection: a detector's outputs become objects in frame pixels.
//!
//! One module per output format (`boxes`, `yolo`, `anchors`), then suppression (`nms`) and
//! the way back through the resize policy to the frame's own pixels (`mapping`).

pub mod anchors;
pub mod boxes;
mod config;
pub mod mapping;
pub mod nms;
pub mod yolo;
pub mod zones;

pub use config::{AnchorSpec, DetectFormat, DetectOverrides, DetectParams, DetectSpec};
pub use zones::ZoneConfig;

use crate::backend::{InferenceBackend, Outputs};
use crate::interpret::{InterpretError, PixelBox};
use crate::model::ModelPackage;
use crate::preprocess::align::FacePoints;
use crate::preprocess::Placement;
use serde::Serialize;

/// Why a detector's settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(
        "detect.classes names {label:?}, which is not one of the model's labels ({known}, ...)"
    )]
    UnknownLabel { label: String, known: String },
    #[error("{0}")]
    Setting(String),
    #[error("model {model:?} is not a detector: a detector package has task = \"detect\", [outputs] detections and a [detect] table")]
    NotADetector { model: String },
    #[error(transparent)]
    Output(#[from] InterpretError),
}

/// A box the model proposed, in model-input pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// x0, y0, x1, y1.
    pub bounds: [f32; 4],
    pub score: f32,
    pub class: usize,
    /// Key points (x, y), as the model gives them (BlazeFace: eyes, nose, mouth, ears).
    pub keypoints: Vec<[f32; 2]>,
}

/// An object found in a frame: `{"box": [x0, y0, x1, y1], "label": "person", "class": 0,
/// "score": 0.81}`, in frame pixels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Object {
    #[serde(rename = "box")]
    pub bounds: PixelBox,
    pub label: String,
    pub class: usize,
    pub score: f32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keypoints: Vec<[f32; 2]>,
    /// The eyes and mouth among the key points (a face detector that names them).
    #[serde(skip)]
    pub face: Option<FacePoints>,
}

/// Turns a detector's outputs into objects.
#[derive(Debug, Clone)]
pub struct Decoder {
    format: DetectFormat,
    detections: String,
    scores: Option<String>,
    params: DetectParams,
    labels: Vec<String>,
    anchors: Option<(AnchorSpec, Vec<[f32; 2]>)>,
    /// Which key points are the right eye, the left eye and the mouth (`keypoint_names`).
    face: Option<[usize; 3]>,
    /// The model input's width and height.
    input: (usize, usize),
}

impl Decoder {
    /// The decoder of a `detect` package, with a run's overrides of its `[detect]` settings.
    pub fn new(package: &ModelPackage, overrides: &DetectOverrides) -> Result<Self, DetectError> {
        let manifest = &package.manifest;
        let not_a_detector = || DetectError::NotADetector {
            model: package.name().to_string(),
        };
        let (Some(spec), Some(detections)) = (&manifest.detect, &manifest.outputs.detections)
        else {
            return Err(not_a_detector());
        };
        let input = (manifest.input.width(), manifest.input.height());
        let anchors = match spec.format {
            DetectFormat::Anchors => {
                let grid = spec.anchor_grid()?;
                let centres = anchors::centres(&grid, input.0, input.1);
                Some((grid, centres))
            }
            _ => None,
        };
        Ok(Decoder {
            format: spec.format,
            detections: detections.clone(),
            scores: manifest.outputs.scores.clone(),
            params: DetectParams::resolve(spec, overrides, &package.labels)?,
            labels: package.labels.clone(),
            anchors,
            face: face_indexes(&spec.keypoint_names),
            input,
        })
    }

    pub fn params(&self) -> &DetectParams {
        &self.params
    }

    /// The label of class `class`: its line in the labels file, else the number.
    pub fn label(&self, class: usize) -> String {
        self.labels
            .get(class)
            .cloned()
            .unwrap_or_else(|| class.to_string())
    }

    fn classes(&self) -> Option<usize> {
        (!self.labels.is_empty()).then_some(self.labels.len())
    }

    /// Refuses, at load, outputs whose shapes the format cannot read (where the backend knows
    /// them before running).
    pub fn check(&self, backend: &dyn InferenceBackend) -> Result<(), DetectError> {
        let Some(shape) = backend.output_shape(&self.detections) else {
            return Ok(());
        };
        match self.format {
            DetectFormat::Boxes => boxes::check_shape(&self.detections, &shape)?,
            DetectFormat::Yolo => yolo::check_shape(&self.detections, &shape, self.classes())?,
            DetectFormat::Anchors => {
                let (spec, centres) = self.anchors.as_ref().ok_or_else(|| {
                    DetectError::Setting("detect.format = \"anchors\" needs detect.strides".into())
                })?;
                let scores = self.scores_name()?;
                if let Some(score_shape) = backend.output_shape(scores) {
                    anchors::check_shapes(
                        (&self.detections, scores),
                        (&shape, &score_shape),
                        spec,
                        centres.len(),
                    )?;
                }
            }
        }
        Ok(())
    }

    fn scores_name(&self) -> Result<&str, InterpretError> {
        self.scores.as_deref().ok_or_else(|| {
            InterpretError::Config(
                "detect.format = \"anchors\" needs [outputs] scores (the scores tensor)".into(),
            )
        })
    }

    fn output<'a>(
        outputs: &'a Outputs,
        name: &str,
    ) -> Result<&'a crate::tensor::Tensor, InterpretError> {
        outputs
            .get(name)
            .ok_or_else(|| InterpretError::MissingOutput(name.to_string()))
    }

    /// The candidates the outputs hold, over the score threshold, of the kept classes.
    fn candidates(&self, outputs: &Outputs) -> Result<Vec<Candidate>, InterpretError> {
        let detections = Self::output(outputs, &self.detections)?;
        let min_score = self.params.min_score;
        let found = match self.format {
            DetectFormat::Boxes => boxes::decode(&self.detections, detections, min_score)?,
            DetectFormat::Yolo => {
                yolo::decode(&self.detections, detections, self.classes(), min_score)?
            }
            DetectFormat::Anchors => {
                let scores_name = self.scores_name()?;
                let scores = Self::output(outputs, scores_name)?;
                let (spec, centres) = self.anchors.as_ref().ok_or_else(|| {
                    InterpretError::Config(
                        "detect.format = \"anchors\" needs detect.strides".into(),
                    )
                })?;
                anchors::decode(
                    (&self.detections, scores_name),
                    (detections, scores),
                    spec,
                    centres,
                    self.input,
                    min_score,
                )?
            }
        };
        Ok(found
            .into_iter()
            .filter(|c| self.params.keeps(c.class))
            .collect())
    }

    /// The objects of a frame of `frame` (width, height) pixels that the model saw through
    /// `placement`: suppressed, mapped to frame pixels, clipped, best first.
    pub fn objects(
        &self,
        outputs: &Outputs,
        placement: &Placement,
        frame: (u32, u32),
    ) -> Result<Vec<Object>, InterpretError> {
        let kept = nms::suppress(
            self.candidates(outputs)?,
            self.params.nms_iou,
            // Boxes dropped after mapping (in the padding, too small) leave room for others.
            self.params.max_objects.saturating_mul(2),
        );
        Ok(kept
            .iter()
            .filter_map(|c| {
                let (bounds, keypoints) =
                    mapping::to_frame(c, placement, frame, self.params.min_size)?;
                let face = self.face.and_then(|[right, left, mouth]| {
                    Some(FacePoints {
                        right_eye: *keypoints.get(right)?,
                        left_eye: *keypoints.get(left)?,
                        mouth: *keypoints.get(mouth)?,
                    })
                });
                Some(Object {
                    bounds,
                    label: self.label(c.class),
                    class: c.class,
                    score: c.score,
                    keypoints,
                    face,
                })
            })
            .take(self.params.max_objects)
            .collect())
    }
}

/// The places of `right_eye`, `left_eye` and `mouth` among a detector's key point names (the
/// mouth may be given by its corners, `mouth_right` and `mouth_left`: the first is taken).
fn face_indexes(names: &[String]) -> Option<[usize; 3]> {
    let find = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
    Some([
        find(&["right_eye"])?,
        find(&["left_eye"])?,
        find(&["mouth", "mouth_right", "mouth_left"])?,
    ])
}
