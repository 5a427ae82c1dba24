//! Interpretation: model outputs become what the user asked for (labels now; parts, zoom and
//! identities in their own modules).

mod classify;

pub use classify::{softmax, ClassScore, Classification, Classifier, ClassifyConfig};

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
}

/// What one frame produced, serialised into the result record.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Interpretation {
    Classification(Classification),
}

/// Turns one inference's outputs into an [`Interpretation`].
pub trait Interpret: Send {
    fn interpret(&self, outputs: &Outputs) -> Result<Interpretation, InterpretError>;
}
