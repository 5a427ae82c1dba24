//! Interpretation: model outputs become what the user asked for: labels (`classify`, with
//! LV-ViT's `token_labels`), and from the model's attention (`tokens`, `rollout`) a zoom
//! region (`zoom`) and parts (`parts`).

mod classify;
pub mod embedding;
pub mod examples;
pub mod parts;
pub mod rollout;
mod scene;
pub mod token_labels;
pub mod tokens;
pub mod zoom;

pub use classify::{
    softmax, ClassScore, Classification, Classifier, ClassifyConfig, Pass, ZoomRegion,
};
pub use embedding::{Crop, Embedder, Identification, ReidConfig, RoiConfig};
pub use examples::{ClassExamples, ExampleClassifier, MatchBy};
pub use parts::{Part, PartsConfig};
pub use rollout::{AttentionConfig, AttentionMap};
pub use scene::{Scene, SceneObject};
pub use token_labels::TokenLabelConfig;
pub use tokens::TokenLayout;
pub use zoom::{PixelBox, ZoomConfig};

/// Whether an output of `shape` is one vector for the frame (`[n]` or `[1, n]`): what class
/// scores and embeddings must be, checked at load and on every frame.
pub fn is_one_vector(shape: &[usize]) -> bool {
    matches!(shape, [_] | [1, _])
}

use crate::backend::Outputs;
use serde::Serialize;

/// Why outputs could not be interpreted.
#[derive(Debug, thiserror::Error)]
pub enum InterpretError {
    #[error("the model gave no output {0:?}")]
    MissingOutput(String),
    #[error("output {name:?} has shape {shape:?}, expected {expected}")]
    Shape {
        name: String,
        shape: Vec<usize>,
        expected: &'static str,
    },
    #[error("output {0:?} holds NaN or infinite values")]
    NonFinite(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Gallery(#[from] crate::gallery::GalleryError),
}

/// What one frame produced, serialised into the result record.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Interpretation {
    Classification(Classification),
    Identification(Identification),
    /// The objects of a scene (a detector, and the model on each object).
    Scene(Scene),
}

/// Turns one inference's outputs into an [`Interpretation`].
pub trait Interpret: Send {
    fn interpret(&self, outputs: &Outputs) -> Result<Interpretation, InterpretError>;
}
