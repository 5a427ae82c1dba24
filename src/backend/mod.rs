//! Inference backends: run a model package's graph on a preprocessed tensor.
//!
//! The CPU backend is tract; vendor NPU backends implement the same [`InferenceBackend`] trait.

#[cfg(feature = "ort")]
pub mod ort;
mod tract;

#[cfg(feature = "ort")]
pub use self::ort::{OrtBackend, OrtConfig};
pub use self::tract::{TractBackend, TractConfig};

use crate::config;
use crate::model::ModelPackage;
use crate::tensor::Tensor;
use serde::Deserialize;
use std::path::PathBuf;

/// Why a backend could not load or run a model.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot load ONNX model {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("model {path} does not match its manifest: {message}")]
    Mismatch { path: PathBuf, message: String },
    #[error("cannot prepare model {path} for inference: {message}")]
    Optimize { path: PathBuf, message: String },
    #[error("input tensor has shape {actual:?}, the model takes {expected:?}")]
    InputShape {
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("inference failed: {0}")]
    Run(String),
    #[error("invalid backend configuration: {0}")]
    Config(String),
    #[error("cannot load the inference library {path}: {message}")]
    Library { path: PathBuf, message: String },
    #[error("execution provider {provider} cannot be used: {message}")]
    Provider {
        provider: &'static str,
        message: String,
    },
}

/// The named output tensors of one inference.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    tensors: Vec<(String, Tensor)>,
}

impl Outputs {
    pub fn new(tensors: Vec<(String, Tensor)>) -> Self {
        Outputs { tensors }
    }

    /// The output with this graph name.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|(n, _)| n.as_str())
    }
}

/// One block's attention probabilities among a backend's outputs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttentionTensor {
    /// The output's name in [`Outputs`].
    pub name: String,
    pub heads: usize,
    /// Tokens: class token, register tokens, patches.
    pub tokens: usize,
}

/// Runs one model. Implementations own their compiled model and any threads.
pub trait InferenceBackend: Send {
    /// Short name for logs and `probe`.
    fn name(&self) -> &'static str;
    /// Runs the model on one NCHW input and returns every output the manifest names. `side`
    /// holds the values of the model's side inputs (`[sie]`: camera, then view); a missing
    /// value is 0.
    fn run_with(&mut self, input: &Tensor, side: &[i64]) -> Result<Outputs, BackendError>;
    /// [`InferenceBackend::run_with`] with every side input at 0.
    fn run(&mut self, input: &Tensor) -> Result<Outputs, BackendError> {
        self.run_with(input, &[])
    }
    /// The attention tensors among the outputs, first block first (found at load for
    /// `outputs.attention = "auto"`).
    fn attention(&self) -> &[AttentionTensor] {
        &[]
    }
    /// The shape of a named output, when the backend knows it before running.
    fn output_shape(&self, name: &str) -> Option<Vec<usize>> {
        let _ = name;
        None
    }
}

/// `[backend]`: which backend runs the model.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "toml::Table")]
pub enum BackendConfig {
    /// tract on the CPU.
    Tract(TractConfig),
    /// ONNX Runtime (CPU, CUDA, TensorRT), loaded at run time.
    #[cfg(feature = "ort")]
    Ort(OrtConfig),
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig::Tract(TractConfig::default())
    }
}

impl TryFrom<toml::Table> for BackendConfig {
    type Error = String;

    fn try_from(mut table: toml::Table) -> Result<Self, String> {
        match config::take_kind("backend", &mut table)?.as_str() {
            "tract" => Ok(BackendConfig::Tract(config::parse_section(
                "backend", table,
            )?)),
            #[cfg(feature = "ort")]
            "ort" => Ok(BackendConfig::Ort(config::parse_section("backend", table)?)),
            #[cfg(not(feature = "ort"))]
            "ort" => Err(
                "`backend.kind = \"ort\"`: this edgevit was built without ONNX Runtime (build with `--features ort`)"
                    .into(),
            ),
            other => Err(config::unknown_kind("backend", other, &["tract", "ort"])),
        }
    }
}

/// Loads the package's model into the configured backend.
pub fn open(
    package: &ModelPackage,
    config: &BackendConfig,
) -> Result<Box<dyn InferenceBackend>, BackendError> {
    match config {
        BackendConfig::Tract(tract) => Ok(Box::new(TractBackend::load(package, tract)?)),
        #[cfg(feature = "ort")]
        BackendConfig::Ort(config) => Ok(Box::new(OrtBackend::load(package, config)?)),
    }
}

/// An inference backend and whether this build can use it (`edgevit probe`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendAvailability {
    pub name: &'static str,
    pub status: String,
}

/// The backends edgevit knows of; only tract is built in so far.
pub fn available() -> Vec<BackendAvailability> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    vec![
        BackendAvailability {
            name: "tract",
            status: format!("available (CPU, {cores} cores)"),
        },
        BackendAvailability {
            name: "rknpu",
            status: "not built into this binary (Rockchip NPU)".to_string(),
        },
        BackendAvailability {
            name: "ort",
            status: ort_status(),
        },
    ]
}

/// What `probe` says of ONNX Runtime.
#[cfg(feature = "ort")]
fn ort_status() -> String {
    match self::ort::probe(&OrtConfig::default()) {
        Ok(status) => status,
        Err(e) => format!("built in, but {}", crate::error::chain(&e)),
    }
}

#[cfg(not(feature = "ort"))]
fn ort_status() -> String {
    "not built into this binary (ONNX Runtime: CPU, CUDA, TensorRT; build with --features ort)"
        .to_string()
}

/// The side inputs (`[sie]`) among a graph's inputs, in the graph's order, each with its slot
/// in a run's `side` values; `Err` says how the graph's inputs differ from the manifest's.
pub(crate) fn side_inputs(
    package: &ModelPackage,
    graph_inputs: &[&str],
) -> Result<Vec<(String, usize)>, String> {
    let image = package.manifest.input.name.as_str();
    let side: Vec<&str> = package
        .manifest
        .sie
        .as_ref()
        .map(|sie| sie.inputs())
        .unwrap_or_default();
    let declared: Vec<&str> = std::iter::once(image).chain(side.iter().copied()).collect();
    let (mut want, mut have) = (declared.clone(), graph_inputs.to_vec());
    want.sort_unstable();
    have.sort_unstable();
    if want != have {
        return Err(format!(
            "the manifest's inputs are {declared:?} (input.name, then [sie]), the graph's inputs are {graph_inputs:?}"
        ));
    }
    Ok(graph_inputs
        .iter()
        .filter(|name| **name != image)
        .map(|name| {
            let slot = side.iter().position(|s| s == name).unwrap_or(0);
            (name.to_string(), slot)
        })
        .collect())
}

/// Refuses 0 threads.
pub(crate) fn check_threads(threads: usize) -> Result<(), BackendError> {
    if threads == 0 {
        return Err(BackendError::Config(
            "backend.threads must be at least 1".into(),
        ));
    }
    Ok(())
}

/// Refuses an input tensor of another shape than the model's.
pub(crate) fn check_input(expected: &[usize], input: &Tensor) -> Result<(), BackendError> {
    if input.shape() == expected {
        return Ok(());
    }
    Err(BackendError::InputShape {
        expected: expected.to_vec(),
        actual: input.shape().to_vec(),
    })
}

/// The shape of output `name` among `names`, where the backend fixed it at load.
pub(crate) fn known_shape(
    names: &[String],
    shapes: &[Option<Vec<usize>>],
    name: &str,
) -> Option<Vec<usize>> {
    let index = names.iter().position(|n| n == name)?;
    shapes.get(index).cloned().flatten()
}
