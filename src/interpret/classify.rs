//! Classification: softmax over the logits, top-k with labels, a score threshold.

use super::parts::Part;
use super::token_labels::{self, TokenLabelConfig};
use super::zoom::{Crop, PixelBox};
use super::{Interpret, InterpretError, Interpretation};
use crate::backend::Outputs;
use crate::model::ModelPackage;
use serde::{Deserialize, Serialize};

/// `[classify]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyConfig {
    /// How many classes to report, best first.
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Classes whose probability is below this are left out (0 keeps all `top_k`).
    #[serde(default)]
    pub min_score: f32,
    /// Classes by example: the file `edgevit classes enroll` writes. The model is then a
    /// package with an embedding (`task = "reid"`), and each frame's classes are the enrolled
    /// ones its embedding is closest to (cosine). Default: none (the model's own classes).
    #[serde(default)]
    pub classes: Option<std::path::PathBuf>,
    /// With `classes`: compare with each class's mean example (`prototype`) or its nearest
    /// one (`nearest`).
    #[serde(default)]
    pub match_by: super::MatchBy,
    /// With `classes`: below this cosine similarity to the best class, the answer is
    /// `unknown`. Default 0.5.
    #[serde(default = "default_unknown_below")]
    pub unknown_below: f32,
}

fn default_unknown_below() -> f32 {
    0.5
}

fn default_top_k() -> usize {
    5
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        ClassifyConfig {
            top_k: default_top_k(),
            min_score: 0.0,
            classes: None,
            match_by: super::MatchBy::default(),
            unknown_below: default_unknown_below(),
        }
    }
}

/// One class in the result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    pub index: usize,
    pub label: String,
    /// Softmax probability.
    pub score: f32,
}

/// The classes of one frame, best first, and what the attention showed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Classification {
    pub top: Vec<ClassScore>,
    /// The zoom's region in frame pixels (`edgevit infer --zoom`, `[zoom]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<ZoomRegion>,
    /// Each pass's own classes when the zoom ran: `full`, then `zoom` per zoom pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passes: Option<Vec<Pass>>,
    /// Discriminative parts (`--parts K`, `[parts]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<Vec<Part>>,
}

/// Where the zoom looked: `{"box": [x0, y0, x1, y1], "score": s, "crop": {"box": [...]}}`;
/// the box is the attention's component, the score the share of the map's mass inside it (0
/// when the map had none: the whole frame), the crop what the second pass saw (with `"pad"`
/// where black bars gave it the model's aspect).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoomRegion {
    #[serde(rename = "box")]
    pub bounds: PixelBox,
    pub score: f32,
    pub crop: Crop,
}

/// One pass of the model over the frame (`full`) or a zoomed crop of it (`zoom`).
#[derive(Debug, Clone, Serialize)]
pub struct Pass {
    pub scale: &'static str,
    pub top: Vec<ClassScore>,
}

/// Numerically stable softmax.
///
/// ```
/// let p = edgevit::interpret::softmax(&[1000.0, 1000.0]);
/// assert_eq!(p, vec![0.5, 0.5]);
/// ```
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Classifies from the package's logits output (fused with its per-patch class scores when
/// it has them: LV-ViT token labeling).
#[derive(Debug, Clone)]
pub struct Classifier {
    logits: String,
    patch_logits: Option<(String, TokenLabelConfig)>,
    labels: Vec<String>,
    config: ClassifyConfig,
}

impl Classifier {
    pub fn new(package: &ModelPackage, config: &ClassifyConfig) -> Result<Self, InterpretError> {
        let logits = package
            .manifest
            .outputs
            .logits
            .clone()
            .ok_or_else(|| InterpretError::Config("the model has no outputs.logits".into()))?;
        if config.top_k == 0 {
            return Err(InterpretError::Config(
                "classify.top_k must be at least 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&config.min_score) {
            return Err(InterpretError::Config(format!(
                "classify.min_score must be between 0 and 1, got {}",
                config.min_score
            )));
        }
        Ok(Classifier {
            logits,
            patch_logits: None,
            labels: package.labels.clone(),
            config: config.clone(),
        })
    }

    /// Fuses the class token's logits with the model's per-patch class scores.
    pub fn with_token_labels(mut self, output: &str, config: &TokenLabelConfig) -> Self {
        self.patch_logits = Some((output.to_string(), config.clone()));
        self
    }

    /// Top classes of one logits vector.
    pub fn classify(&self, logits: &[f32]) -> Classification {
        self.top(&softmax(logits))
    }

    /// The class probabilities of one inference (token labels fused in first, if any).
    pub fn probabilities(&self, outputs: &Outputs) -> Result<Vec<f32>, InterpretError> {
        let logits = self.logits_of(outputs)?;
        let Some((name, config)) = &self.patch_logits else {
            return Ok(softmax(logits));
        };
        let patches = outputs
            .get(name)
            .ok_or_else(|| InterpretError::MissingOutput(name.clone()))?;
        if patches.data().iter().any(|v| !v.is_finite()) {
            return Err(InterpretError::NonFinite(name.clone()));
        }
        let fused = token_labels::fuse(logits, patches.data(), config).ok_or_else(|| {
            InterpretError::Shape {
                name: name.clone(),
                shape: patches.shape().to_vec(),
                expected: "[1, patches, classes]",
            }
        })?;
        Ok(softmax(&fused))
    }

    /// The logits, checked to be one finite row.
    fn logits_of<'a>(&self, outputs: &'a Outputs) -> Result<&'a [f32], InterpretError> {
        let tensor = outputs
            .get(&self.logits)
            .ok_or_else(|| InterpretError::MissingOutput(self.logits.clone()))?;
        let shape = tensor.shape();
        let one_row = super::is_one_vector(shape);
        if !one_row || tensor.data().is_empty() {
            return Err(InterpretError::Shape {
                name: self.logits.clone(),
                shape: shape.to_vec(),
                expected: "[1, classes]",
            });
        }
        if tensor.data().iter().any(|v| !v.is_finite()) {
            return Err(InterpretError::NonFinite(self.logits.clone()));
        }
        Ok(tensor.data())
    }

    /// Top classes of a probability vector.
    pub fn top(&self, probabilities: &[f32]) -> Classification {
        let mut order: Vec<usize> = (0..probabilities.len()).collect();
        order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
        let top = order
            .into_iter()
            .take(self.config.top_k)
            .filter(|&i| probabilities[i] >= self.config.min_score)
            .map(|index| ClassScore {
                index,
                label: self
                    .labels
                    .get(index)
                    .cloned()
                    .unwrap_or_else(|| index.to_string()),
                score: probabilities[index],
            })
            .collect();
        Classification {
            top,
            ..Classification::default()
        }
    }
}

impl Interpret for Classifier {
    fn interpret(&self, outputs: &Outputs) -> Result<Interpretation, InterpretError> {
        Ok(Interpretation::Classification(
            self.top(&self.probabilities(outputs)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classifier(top_k: usize, min_score: f32, labels: &[&str]) -> Classifier {
        Classifier {
            logits: "logits".into(),
            patch_logits: None,
            labels: labels.iter().map(|s| s.to_string()).collect(),
            config: ClassifyConfig {
                top_k,
                min_score,
                ..ClassifyConfig::default()
            },
        }
    }

    #[test]
    fn softmax_is_stable_and_sums_to_one() {
        let p = softmax(&[1000.0, 1000.0, 999.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((p[0] - p[1]).abs() < 1e-7 && p[2] < p[0]);
        let q = softmax(&[0.0, (2.0f32).ln()]);
        assert!((q[1] - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn top_k_is_ordered_labelled_and_thresholded() {
        let c = classifier(2, 0.0, &["cat", "dog", "owl"]);
        let result = c.classify(&[0.0, 3.0, 1.0]);
        let labels: Vec<&str> = result.top.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["dog", "owl"]);
        assert_eq!(result.top[0].index, 1);
        let strict = classifier(3, 0.5, &[]);
        let result = strict.classify(&[0.0, 3.0, 1.0]);
        assert_eq!(result.top.len(), 1);
        assert_eq!(
            result.top[0].label, "1",
            "the index stands in for a missing label"
        );
    }

    #[test]
    fn rejects_batched_or_non_finite_logits() {
        use crate::tensor::Tensor;
        let c = classifier(1, 0.0, &[]);
        let batched = Outputs::new(vec![(
            "logits".into(),
            Tensor::new(vec![2, 2], vec![0.0; 4]).unwrap(),
        )]);
        assert!(matches!(
            c.interpret(&batched),
            Err(InterpretError::Shape { .. })
        ));
        let nan = Outputs::new(vec![(
            "logits".into(),
            Tensor::new(vec![1, 2], vec![f32::NAN, 0.0]).unwrap(),
        )]);
        assert!(matches!(
            c.interpret(&nan),
            Err(InterpretError::NonFinite(_))
        ));
        assert!(matches!(
            c.interpret(&Outputs::default()),
            Err(InterpretError::MissingOutput(_))
        ));
    }

    #[test]
    fn token_labels_change_the_probabilities() {
        use crate::backend::Outputs;
        use crate::tensor::Tensor;
        let plain = classifier(3, 0.0, &[]);
        let fused = plain
            .clone()
            .with_token_labels("patches", &TokenLabelConfig::default());
        let outputs = Outputs::new(vec![
            (
                "logits".into(),
                Tensor::new(vec![1, 3], vec![2.0, 0.0, 0.0]).unwrap(),
            ),
            (
                "patches".into(),
                Tensor::new(vec![1, 2, 3], vec![0.0, 0.0, 8.0, 0.0, 0.0, 8.0]).unwrap(),
            ),
        ]);
        let before = plain.probabilities(&outputs).unwrap();
        let after = fused.probabilities(&outputs).unwrap();
        assert!(before[0] > before[2], "the class token alone says class 0");
        assert!(
            after[2] > after[0],
            "the patches' votes win with beta 0.5: {after:?}"
        );
        let missing = Outputs::new(vec![outputs
            .get("logits")
            .map(|t| ("logits".to_string(), t.clone()))
            .unwrap()]);
        assert!(fused.probabilities(&missing).is_err());
    }
}
