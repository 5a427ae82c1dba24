//! Re-identification: the model's embedding outputs become one unit-length vector (TransReID's
//! test-time concatenation of the global and JPM local features, optionally averaged with the
//! mirror image's), which the gallery matches to an identity.

use super::zoom::PixelBox;
use super::InterpretError;
use crate::backend::Outputs;
use crate::model::ModelPackage;
use crate::preprocess::align::FacePoints;
use serde::{Deserialize, Serialize};

/// `[reid]` of a run configuration (models with `task = "reid"`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReidConfig {
    /// Also embed each crop's mirror image and average the two (a second inference per crop).
    #[serde(default)]
    pub flip: bool,
    /// Which of the model's `outputs.embedding` tensors to concatenate, e.g. `["global"]` for
    /// TransReID's global feature alone. Default: all of them, in the manifest's order.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Named regions of interest (`[[reid.roi]]`); a camera without one is matched whole, as
    /// ROI `frame`.
    #[serde(default, rename = "roi")]
    pub rois: Vec<RoiConfig>,
    /// Put each crop's embedding in its result (`"embedding": [...]`), for consumers that
    /// match embeddings themselves.
    #[serde(default)]
    pub publish_embedding: bool,
}

/// `[[reid.roi]]`: a rectangle of one camera's frames.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoiConfig {
    /// The camera id the region belongs to.
    pub camera: String,
    /// The name reported in each result (`"roi": "door"`).
    pub name: String,
    /// `[x0, y0, x1, y1]` in the camera's native frame pixels, `x1` and `y1` exclusive; cut
    /// to the frame when it is larger.
    #[serde(rename = "box")]
    pub bounds: [u32; 4],
    /// The view index fed to a model with SIE views (`[sie] view`).
    #[serde(default)]
    pub view: usize,
}

/// A crop to identify: the ReID stage's input, from the configured ROIs today and from a
/// detector later.
#[derive(Debug, Clone, PartialEq)]
pub struct Crop {
    pub roi: String,
    pub bounds: PixelBox,
    pub view: usize,
    /// A face's eyes and mouth (a face detector's key points), for `[reid] align = "face"`.
    pub face: Option<FacePoints>,
}

/// One crop's identity: `{"roi":"door","identity":"id-000042","name":null,...}`.
#[derive(Debug, Clone, Serialize)]
pub struct Identification {
    pub roi: String,
    /// The crop in frame pixels.
    #[serde(rename = "box")]
    pub bounds: PixelBox,
    pub identity: String,
    pub name: Option<String>,
    /// Cosine similarity to the identity's closest exemplar (for a new identity: to the
    /// closest other one).
    pub similarity: f32,
    /// The Euclidean distance to that exemplar, for packages with `[reid] metric =
    /// "euclidean"` (dlib's face descriptor: the same person below 0.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance: Option<f32>,
    pub new: bool,
    pub confirmed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// The pixels the model saw (a face's aligned chip, else the box): for snapshots. Not in
    /// the record.
    #[serde(skip)]
    pub crop: Option<std::sync::Arc<crate::preprocess::Raster>>,
}

/// Turns a ReID model's outputs into one embedding.
#[derive(Debug, Clone)]
pub struct Embedder {
    /// Output name and its factor, in concatenation order.
    parts: Vec<(String, f32)>,
    /// Made unit length (cosine packages); Euclidean packages keep the model's own scale,
    /// which their distances are meant on.
    unit: bool,
    /// `[embedding] token`: the row of a `[1, tokens, dim]` output to take (a ViT's class
    /// token is 0).
    token: Option<usize>,
}

impl Embedder {
    pub fn new(package: &ModelPackage, config: &ReidConfig) -> Result<Self, InterpretError> {
        let manifest = &package.manifest;
        let names = manifest.outputs.embedding.clone().unwrap_or_default();
        let weights = &manifest.embedding.weights;
        let all: Vec<(String, f32)> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), weights.get(i).copied().unwrap_or(1.0)))
            .collect();
        let parts = if config.outputs.is_empty() {
            all
        } else {
            config
                .outputs
                .iter()
                .map(|wanted| {
                    all.iter().find(|(name, _)| name == wanted).cloned().ok_or_else(|| {
                        InterpretError::Config(format!(
                            "reid.outputs names {wanted:?}, which is not one of the model's outputs.embedding {names:?}"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?
        };
        if parts.is_empty() {
            return Err(InterpretError::Config(
                "the model has no outputs.embedding".into(),
            ));
        }
        Ok(Embedder {
            parts,
            unit: manifest.reid.metric == crate::gallery::Metric::Cosine,
            token: manifest.embedding.token,
        })
    }

    /// The weighted concatenation of one inference's embedding outputs (not normalised).
    pub fn concatenate(&self, outputs: &Outputs) -> Result<Vec<f32>, InterpretError> {
        let mut embedding = Vec::new();
        for (name, weight) in &self.parts {
            let tensor = outputs
                .get(name)
                .ok_or_else(|| InterpretError::MissingOutput(name.clone()))?;
            let values = match (self.token, tensor.shape()) {
                (None, shape) if super::is_one_vector(shape) => tensor.data(),
                (Some(token), &[1, tokens, dim]) if token < tokens => {
                    &tensor.data()[token * dim..(token + 1) * dim]
                }
                (token, shape) => {
                    return Err(InterpretError::Shape {
                        name: name.clone(),
                        shape: shape.to_vec(),
                        expected: if token.is_some() {
                            "[1, tokens, dim] with embedding.token below tokens"
                        } else {
                            "[1, dim]"
                        },
                    })
                }
            };
            embedding.extend(values.iter().map(|v| v * weight));
        }
        Ok(embedding)
    }

    /// The mean of one crop's embeddings (itself, its mirror), scaled to unit length for cosine
    /// packages. A NaN or infinite embedding is refused.
    pub fn finish(&self, views: &[Vec<f32>]) -> Result<Vec<f32>, InterpretError> {
        let dim = views.first().map_or(0, Vec::len);
        let mut mean = vec![0.0f32; dim];
        for view in views {
            for (m, v) in mean.iter_mut().zip(view) {
                *m += v;
            }
        }
        let finished = if self.unit {
            crate::gallery::normalize(&mean)
        } else {
            let n = views.len().max(1) as f32;
            let mean: Vec<f32> = mean.iter().map(|v| v / n).collect();
            mean.iter().all(|v| v.is_finite()).then_some(mean)
        };
        finished.ok_or_else(|| {
            InterpretError::NonFinite(
                self.parts
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join("+"),
            )
        })
    }

    /// The embedding's size, from the backend's output shapes where it knows them.
    pub fn dim(&self, backend: &dyn crate::backend::InferenceBackend) -> Option<usize> {
        self.parts
            .iter()
            .map(|(name, _)| backend.output_shape(name).and_then(|s| s.last().copied()))
            .sum()
    }
}

/// The crops of one frame of `camera`: its ROIs cut to the frame, or the whole frame.
pub fn crops_for(rois: &[RoiConfig], camera: &str, width: u32, height: u32) -> Vec<Crop> {
    let mine: Vec<Crop> = rois
        .iter()
        .filter(|r| r.camera == camera)
        .map(|r| {
            let [x0, y0, x1, y1] = r.bounds;
            let x0 = x0.min(width.saturating_sub(1));
            let y0 = y0.min(height.saturating_sub(1));
            Crop {
                roi: r.name.clone(),
                bounds: PixelBox {
                    x0,
                    y0,
                    x1: x1.min(width).max(x0 + 1),
                    y1: y1.min(height).max(y0 + 1),
                },
                view: r.view,
                face: None,
            }
        })
        .collect();
    if mine.is_empty() {
        vec![Crop {
            roi: "frame".into(),
            bounds: PixelBox {
                x0: 0,
                y0: 0,
                x1: width.max(1),
                y1: height.max(1),
            },
            view: 0,
            face: None,
        }]
    } else {
        mine
    }
}

/// Refuses ROIs that cannot be right whatever the frame size.
pub fn check_rois(rois: &[RoiConfig]) -> Result<(), String> {
    for (i, roi) in rois.iter().enumerate() {
        let [x0, y0, x1, y1] = roi.bounds;
        if x1 <= x0 || y1 <= y0 {
            return Err(format!(
                "reid.roi[{i}] ({:?}): box [x0, y0, x1, y1] must have x1 > x0 and y1 > y0, got {:?}",
                roi.name, roi.bounds
            ));
        }
        if roi.name.is_empty() {
            return Err(format!("reid.roi[{i}]: name must not be empty"));
        }
        if let Some(twin) = rois[..i]
            .iter()
            .find(|r| r.camera == roi.camera && r.name == roi.name)
        {
            return Err(format!(
                "reid.roi[{i}]: camera {:?} has two ROIs named {:?}",
                twin.camera, roi.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    fn roi(camera: &str, name: &str, bounds: [u32; 4]) -> RoiConfig {
        RoiConfig {
            camera: camera.into(),
            name: name.into(),
            bounds,
            view: 0,
        }
    }

    #[test]
    fn a_camera_without_rois_is_matched_whole_and_boxes_are_cut_to_the_frame() {
        let rois = [roi("cam0", "door", [600, 10, 900, 400])];
        let crops = crops_for(&rois, "cam0", 640, 480);
        assert_eq!(crops[0].roi, "door");
        assert_eq!(
            crops[0].bounds,
            PixelBox {
                x0: 600,
                y0: 10,
                x1: 640,
                y1: 400
            }
        );
        let whole = crops_for(&rois, "cam1", 320, 240);
        assert_eq!(whole[0].roi, "frame");
        assert_eq!(
            whole[0].bounds,
            PixelBox {
                x0: 0,
                y0: 0,
                x1: 320,
                y1: 240
            }
        );
        assert!(check_rois(&[roi("c", "a", [5, 5, 5, 9])]).is_err());
        assert!(check_rois(&[roi("c", "a", [0, 0, 1, 1]), roi("c", "a", [0, 0, 2, 2])]).is_err());
    }

    #[test]
    fn outputs_are_weighted_concatenated_averaged_and_normalised() {
        let embedder = Embedder {
            parts: vec![("g".into(), 1.0), ("l".into(), 0.5)],
            unit: true,
            token: None,
        };
        let outputs = Outputs::new(vec![
            ("g".into(), Tensor::new(vec![1, 2], vec![3.0, 0.0]).unwrap()),
            ("l".into(), Tensor::new(vec![1, 1], vec![8.0]).unwrap()),
        ]);
        let v = embedder.concatenate(&outputs).unwrap();
        assert_eq!(v, [3.0, 0.0, 4.0]);
        let unit = embedder.finish(&[v.clone(), v]).unwrap();
        assert!((unit[0] - 0.6).abs() < 1e-6 && (unit[2] - 0.8).abs() < 1e-6);
        assert!(embedder.finish(&[vec![f32::NAN, 1.0, 0.0]]).is_err());
        assert!(embedder.finish(&[vec![0.0; 3]]).is_err());
    }
}
