//! Inference backends: run a model package's graph on a preprocessed tensor.
//!
//! The CPU backend is tract; vendor NPU backends implement the same [`InferenceBackend`] trait.

#[cfg(feature = "ort")]
pub mod ort;
#[cfg(feature = "rknn")]
pub mod rknn;
mod tract;
mod tract_kernels;
pub mod tract_profile;

#[cfg(feature = "ort")]
pub use self::ort::{OrtBackend, OrtConfig};
#[cfg(feature = "rknn")]
pub use self::rknn::{RknnBackend, RknnConfig};
pub use self::tract::{Kernels, Precision, TractBackend, TractConfig};

use crate::config_parse as config;
use crate::model::ModelPackage;
use crate::tensor::Tensor;
use serde::Deserialize;
use std::path::PathBuf;

/// Why a backend could not load or run a model.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot load model {path}: {message}")]
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
    /// A vendor runtime's call returned an error code (RKNN): the code says what went wrong
    /// (a timeout, a device that is away, an invalid model), for a caller that acts on it.
    #[error("runtime call {call}: {name} ({code})")]
    RuntimeCall {
        call: &'static str,
        code: i32,
        name: &'static str,
    },
    #[error("invalid backend configuration: {0}")]
    Config(String),
    #[error("cannot load the inference library {path}: {message}")]
    Library { path: PathBuf, message: String },
    #[error("no backend could load the model: {0}")]
    NoneLoaded(String),
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
    /// Narrows what later runs compute and return to `names`, among the outputs the backend
    /// loaded (naming them all brings the whole set back). What nothing reads costs time and
    /// memory on every frame: twelve attention maps of ViT-Tiny are 5.6 MB a frame, and
    /// tract skips the branches that only fed them. A backend that cannot narrow returns
    /// everything, which callers accept.
    fn keep_outputs(&mut self, names: &[String]) -> Result<(), BackendError> {
        let _ = names;
        Ok(())
    }
    /// Where the time goes: each node of the graph timed over `runs` inferences, by op
    /// class. `None` where the backend cannot time its nodes (ONNX Runtime has its own
    /// profiler: compare/profile.py).
    fn profile(
        &mut self,
        input: &Tensor,
        runs: usize,
    ) -> Option<Result<tract_profile::Profile, BackendError>> {
        let _ = (input, runs);
        None
    }
}

/// The positions in `loaded` of `names`, in `loaded`'s order; an error names the first one
/// that was never loaded.
pub(crate) fn kept_positions(
    loaded: &[String],
    names: &[String],
) -> Result<Vec<usize>, BackendError> {
    if let Some(unknown) = names.iter().find(|n| !loaded.contains(n)) {
        return Err(BackendError::Config(format!(
            "output {unknown:?} is not among the loaded outputs {loaded:?}"
        )));
    }
    Ok((0..loaded.len())
        .filter(|&i| names.contains(&loaded[i]))
        .collect())
}

/// `[backend]`: which backend runs the model.
///
/// One backend: `kind = "tract" | "ort" | "rknn"` with its settings beside it. Several, tried
/// in order at start until one loads the model and passes its self-test:
/// `fallback = ["rknn", "tract"]`, each backend's settings in `[backend.<kind>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "toml::Table")]
pub enum BackendConfig {
    /// tract on the CPU.
    Tract(TractConfig),
    /// ONNX Runtime (CPU, CUDA, TensorRT), loaded at run time.
    #[cfg(feature = "ort")]
    Ort(OrtConfig),
    /// Rockchip NPU through the RKNN runtime, loaded at run time.
    #[cfg(feature = "rknn")]
    Rknn(RknnConfig),
    /// These backends in order (none of them a `Fallback`).
    Fallback(Vec<BackendConfig>),
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig::Tract(TractConfig::default())
    }
}

/// The backends `kind` can name.
const KINDS: [&str; 3] = ["tract", "ort", "rknn"];

impl BackendConfig {
    /// The backend's kind (`fallback` for a list).
    pub fn kind(&self) -> &'static str {
        match self {
            BackendConfig::Tract(_) => "tract",
            #[cfg(feature = "ort")]
            BackendConfig::Ort(_) => "ort",
            #[cfg(feature = "rknn")]
            BackendConfig::Rknn(_) => "rknn",
            BackendConfig::Fallback(_) => "fallback",
        }
    }

    /// The backend as logs and `probe` name it: its kind, `tract-f16` for tract in half
    /// precision (the name its self-test tolerance goes by), `tract-own-kernels` for tract
    /// without edgevit's kernels (its tolerance is `tract`'s), `ort-qdq-kept` for ONNX Runtime
    /// optimising with the Q -> DQ pairs kept (its tolerance is `ort`'s).
    pub fn label(&self) -> &'static str {
        match self {
            BackendConfig::Tract(tract) if tract.precision == Precision::F16 => "tract-f16",
            BackendConfig::Tract(tract) if tract.kernels == Kernels::Tract => "tract-own-kernels",
            #[cfg(feature = "ort")]
            BackendConfig::Ort(ort) if ort.keeps_qdq_pairs() => "ort-qdq-kept",
            other => other.kind(),
        }
    }

    /// The single backends to try, in order. Each faster form whose arithmetic departs from
    /// the graph's runs only where it passes the self-test, so it is followed by the exact
    /// one: tract in half precision by tract in full precision, tract with edgevit's kernels
    /// by tract with its own, ONNX Runtime dropping the Q -> DQ pairs by ONNX Runtime keeping
    /// them.
    pub fn candidates(&self) -> Vec<BackendConfig> {
        let listed = match self {
            BackendConfig::Fallback(order) => order.as_slice(),
            single => std::slice::from_ref(single),
        };
        let mut candidates = Vec::with_capacity(listed.len() + 1);
        for candidate in listed {
            candidates.push(candidate.clone());
            match candidate {
                BackendConfig::Tract(tract) => {
                    if tract.precision == Precision::F16 {
                        candidates.push(BackendConfig::Tract(TractConfig {
                            precision: Precision::F32,
                            ..tract.clone()
                        }));
                    }
                    if tract.kernels == Kernels::Edgevit {
                        candidates.push(BackendConfig::Tract(TractConfig {
                            precision: Precision::F32,
                            kernels: Kernels::Tract,
                            ..tract.clone()
                        }));
                    }
                }
                #[cfg(feature = "ort")]
                BackendConfig::Ort(ort) if ort.cleans_up_qdq() => {
                    candidates.push(BackendConfig::Ort(OrtConfig {
                        qdq_cleanup: false,
                        ..ort.clone()
                    }));
                }
                _ => {}
            }
        }
        candidates
    }

    fn parse_kind(section: &str, kind: &str, table: toml::Table) -> Result<Self, String> {
        match kind {
            "tract" => Ok(BackendConfig::Tract(config::parse_section(section, table)?)),
            #[cfg(feature = "ort")]
            "ort" => Ok(BackendConfig::Ort(config::parse_section(section, table)?)),
            #[cfg(not(feature = "ort"))]
            "ort" => Err(not_built(section, "ort", "ONNX Runtime")),
            #[cfg(feature = "rknn")]
            "rknn" => Ok(BackendConfig::Rknn(config::parse_section(section, table)?)),
            #[cfg(not(feature = "rknn"))]
            "rknn" => Err(not_built(section, "rknn", "the Rockchip NPU runtime")),
            other => Err(config::unknown_kind(section, other, &KINDS)),
        }
    }

    /// `fallback = [...]` with `[backend.<kind>]` tables.
    fn parse_order(order: Vec<toml::Value>, mut table: toml::Table) -> Result<Self, String> {
        if table.contains_key("kind") {
            return Err(
                "`backend.kind` and a `backend.fallback` list do not go together: the list names the backends to try, in order"
                    .into(),
            );
        }
        if order.is_empty() {
            return Err("`backend.fallback` must name at least one backend".into());
        }
        let mut candidates = Vec::with_capacity(order.len());
        let mut seen = Vec::new();
        for value in order {
            let Some(kind) = value.as_str().map(str::to_string) else {
                return Err(format!(
                    "`backend.fallback` must list backend names ({}), got {value}",
                    KINDS.join(", ")
                ));
            };
            if seen.contains(&kind) {
                return Err(format!("`backend.fallback` names {kind:?} twice"));
            }
            let section = format!("backend.{kind}");
            let settings = match table.remove(&kind) {
                None => toml::Table::new(),
                Some(toml::Value::Table(settings)) => settings,
                Some(other) => {
                    return Err(format!(
                        "`{section}` must be a table of that backend's settings, got {other}"
                    ))
                }
            };
            candidates.push(Self::parse_kind(&section, &kind, settings)?);
            seen.push(kind);
        }
        if let Some(key) = table.keys().next() {
            return Err(format!(
                "`backend.{key}`: with a `backend.fallback` list, each backend's settings go in its own table ([backend.{}] ...)",
                seen[0]
            ));
        }
        Ok(BackendConfig::Fallback(candidates))
    }
}

/// The error for a backend this build left out.
#[cfg(any(not(feature = "ort"), not(feature = "rknn")))]
fn not_built(section: &str, feature: &str, what: &str) -> String {
    format!(
        "`{section}`: this edgevit was built without {what} (build with `--features {feature}`)"
    )
}

impl TryFrom<toml::Table> for BackendConfig {
    type Error = String;

    fn try_from(mut table: toml::Table) -> Result<Self, String> {
        // A list is the order of backends; `fallback = true` inside `kind = "ort"` is ONNX
        // Runtime's fallback between execution providers.
        if let Some(toml::Value::Array(_)) = table.get("fallback") {
            let Some(toml::Value::Array(order)) = table.remove("fallback") else {
                unreachable!("checked just above");
            };
            return Self::parse_order(order, table);
        }
        let kind = config::take_kind("backend", &mut table)?;
        Self::parse_kind("backend", &kind, table)
    }
}

/// Loads the package's model into the configured backend (the first of the candidates that
/// loads it; [`crate::pipeline::LoadedModel::load`] also runs each one's self-test).
pub fn open(
    package: &ModelPackage,
    config: &BackendConfig,
) -> Result<Box<dyn InferenceBackend>, BackendError> {
    first_that_works(package.name(), &config.candidates(), |candidate| {
        open_one(package, candidate)
    })
}

fn open_one(
    package: &ModelPackage,
    config: &BackendConfig,
) -> Result<Box<dyn InferenceBackend>, BackendError> {
    match config {
        BackendConfig::Tract(tract) => Ok(Box::new(TractBackend::load(package, tract)?)),
        #[cfg(feature = "ort")]
        BackendConfig::Ort(config) => Ok(Box::new(OrtBackend::load(package, config)?)),
        #[cfg(feature = "rknn")]
        BackendConfig::Rknn(config) => Ok(Box::new(RknnBackend::load(package, config)?)),
        BackendConfig::Fallback(_) => Err(BackendError::Config(
            "a backend.fallback list cannot hold another list".into(),
        )),
    }
}

/// Runs `attempt` on each candidate in order and returns the first success. A failure is
/// logged with its reason when another candidate follows; when every one fails, a single
/// candidate's error is returned as it is, several as [`BackendError::NoneLoaded`] listing
/// each refusal.
pub(crate) fn first_that_works<T, E>(
    model: &str,
    candidates: &[BackendConfig],
    mut attempt: impl FnMut(&BackendConfig) -> Result<T, E>,
) -> Result<T, E>
where
    E: std::error::Error + From<BackendError> + 'static,
{
    let mut refused = Vec::new();
    let mut reasons = Vec::new();
    let mut last_error = None;
    for (position, candidate) in candidates.iter().enumerate() {
        match attempt(candidate) {
            Ok(value) => {
                if !refused.is_empty() {
                    log::warn!(
                        "model {model:?} runs on the {} backend (after {})",
                        candidate.label(),
                        refused.join("; ")
                    );
                }
                return Ok(value);
            }
            Err(e) if candidates.len() == 1 => return Err(e),
            Err(e) => {
                let reason = crate::error::chain(&e);
                if position + 1 < candidates.len() {
                    log::warn!(
                        "backend {} cannot run model {model:?}, trying the next one: {reason}",
                        candidate.label()
                    );
                }
                refused.push(format!("{}: {reason}", candidate.label()));
                reasons.push(reason);
                last_error = Some(e);
            }
        }
    }
    // Forms of one backend refused for one reason (a graph it cannot load, whatever its
    // kernels): that reason, once.
    if let Some(error) = last_error.filter(|_| reasons.windows(2).all(|w| w[0] == w[1])) {
        return Err(error);
    }
    let refused = if refused.is_empty() {
        "backend.fallback is empty".to_string()
    } else {
        refused.join("; ")
    };
    Err(BackendError::NoneLoaded(refused).into())
}

/// An inference backend and whether this build can use it (`edgevit probe`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendAvailability {
    pub name: &'static str,
    pub status: String,
}

/// The backends edgevit knows of, and whether each can run here.
pub fn available() -> Vec<BackendAvailability> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    vec![
        BackendAvailability {
            name: "tract",
            status: format!("available (CPU, {cores} cores)"),
        },
        BackendAvailability {
            name: "ort",
            status: ort_status(),
        },
        BackendAvailability {
            name: "rknn",
            status: rknn_status(),
        },
    ]
}

/// What `probe` says of the RKNN runtime.
#[cfg(feature = "rknn")]
fn rknn_status() -> String {
    match self::rknn::probe(&RknnConfig::default()) {
        Ok(status) => status,
        Err(e) => format!("built in, but {}", crate::error::chain(&e)),
    }
}

#[cfg(not(feature = "rknn"))]
fn rknn_status() -> String {
    "not built into this binary (Rockchip NPU; build with --features rknn)".to_string()
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

/// The manifest's `input.shape` against the graph's image input, dimension by dimension
/// (`None`: a symbolic dimension, which matches any); the same check on every backend.
pub(crate) fn check_image_shape(
    graph: &[Option<i64>],
    expected: &[usize; 4],
) -> Result<(), String> {
    let differs = graph.len() != 4
        || graph
            .iter()
            .zip(expected)
            .any(|(dim, want)| dim.is_some_and(|d| d != *want as i64));
    if differs {
        let shown: Vec<String> = graph
            .iter()
            .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
            .collect();
        return Err(format!(
            "the manifest's input.shape is {expected:?}, the graph's input is [{}]",
            shown.join(", ")
        ));
    }
    Ok(())
}

/// The first output the manifest names that the model does not offer (`offers`), said the
/// same way on every backend: what it offers (`available`), then what the backend can do
/// about it (`hint`).
pub(crate) fn check_outputs(
    wanted: &[String],
    offers: impl Fn(&str) -> bool,
    available: &[&str],
    hint: &str,
) -> Result<(), String> {
    match wanted.iter().find(|name| !offers(name)) {
        Some(missing) => Err(format!(
            "the manifest names output {missing:?}, which is not among the model's outputs {available:?}; {hint}"
        )),
        None => Ok(()),
    }
}

/// A vendor runtime loaded at run time: the `library` setting, else the path in the environment
/// variable `env` (when the vendor has one), else `default` from the system's library path.
#[cfg(any(feature = "ort", feature = "rknn"))]
pub(crate) fn runtime_library(
    setting: Option<&std::path::Path>,
    env: Option<&str>,
    default: &str,
) -> std::path::PathBuf {
    setting
        .map(std::path::Path::to_path_buf)
        .or_else(|| env.and_then(std::env::var_os).map(std::path::PathBuf::from))
        .unwrap_or_else(|| std::path::PathBuf::from(default))
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

/// The threads to use for `threads` asked for: at most one per core this machine has (more only
/// share the cores and slow inference; 100,000 asked once made about 9,900 threads and no
/// result). A board configuration copied to a smaller board keeps working, with a warning.
pub(crate) fn bounded_threads(threads: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if threads > cores {
        log::warn!(
            "backend.threads = {threads}, but this machine has {cores} cores: using {cores}"
        );
        return cores;
    }
    threads
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BackendConfig, String> {
        let table: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
        BackendConfig::try_from(table)
    }

    #[test]
    fn a_fallback_list_takes_each_backends_settings_from_its_table() {
        let config = parse("fallback = [\"tract\"]\n[tract]\nthreads = 2\n").unwrap();
        match config.candidates().as_slice() {
            [BackendConfig::Tract(tract), BackendConfig::Tract(own)] => {
                assert_eq!((tract.threads, own.threads), (2, 2))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(config.kind(), "fallback");
        let single = parse("kind = \"tract\"\nthreads = 3\nkernels = \"tract\"\n").unwrap();
        assert!(
            matches!(single.candidates().as_slice(), [BackendConfig::Tract(t)] if t.threads == 3)
        );
    }

    #[test]
    fn half_precision_tract_is_followed_by_full_precision() {
        let labels = |text: &str| -> Vec<&'static str> {
            parse(text)
                .unwrap()
                .candidates()
                .iter()
                .map(BackendConfig::label)
                .collect()
        };
        assert_eq!(labels("kind = \"tract\"\n"), ["tract", "tract-own-kernels"]);
        assert_eq!(
            labels("kind = \"tract\"\nprecision = \"f16\"\n"),
            ["tract-f16", "tract", "tract-own-kernels"]
        );
        assert_eq!(
            labels("kind = \"tract\"\nkernels = \"tract\"\n"),
            ["tract-own-kernels"]
        );
        let error = parse("kind = \"tract\"\nprecision = \"f8\"\n").unwrap_err();
        assert!(error.contains("unknown variant `f8`"), "{error}");
        #[cfg(feature = "ort")]
        assert_eq!(
            labels("fallback = [\"ort\", \"tract\"]\n[tract]\nprecision = \"f16\"\nthreads = 2\n"),
            [
                "ort",
                "ort-qdq-kept",
                "tract-f16",
                "tract",
                "tract-own-kernels"
            ]
        );
    }

    #[cfg(feature = "ort")]
    #[test]
    fn onnx_runtime_dropping_qdq_pairs_is_followed_by_keeping_them() {
        let candidates = |text: &str| -> Vec<(&'static str, bool)> {
            parse(text)
                .unwrap()
                .candidates()
                .iter()
                .map(|candidate| match candidate {
                    BackendConfig::Ort(ort) => (candidate.label(), ort.cleans_up_qdq()),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        assert_eq!(
            candidates("kind = \"ort\"\n"),
            [("ort", true), ("ort-qdq-kept", false)]
        );
        assert_eq!(
            candidates("kind = \"ort\"\noptimization = \"extended\"\n"),
            [("ort", true), ("ort-qdq-kept", false)]
        );
        assert_eq!(
            candidates("kind = \"ort\"\nqdq_cleanup = false\n"),
            [("ort-qdq-kept", false)]
        );
        // `basic` runs exactly the graph's arithmetic: there is nothing to drop or fall back on.
        assert_eq!(
            candidates("kind = \"ort\"\noptimization = \"basic\"\n"),
            [("ort", false)]
        );
        assert_eq!(
            candidates("kind = \"ort\"\noptimization = \"disable\"\nqdq_cleanup = false\n"),
            [("ort", false)]
        );
    }

    #[test]
    fn bad_fallback_lists_say_what_is_wrong() {
        let cases = [
            ("fallback = []\n", "at least one backend"),
            (
                "fallback = [\"tract\", \"tract\"]\n",
                "names \"tract\" twice",
            ),
            ("fallback = [1]\n", "must list backend names"),
            (
                "fallback = [\"gpu\"]\n",
                "`backend.gpu.kind`: unknown variant `gpu`",
            ),
            (
                "kind = \"tract\"\nfallback = [\"tract\"]\n",
                "do not go together",
            ),
            (
                "fallback = [\"tract\"]\nthreads = 2\n",
                "`backend.threads`: with a `backend.fallback` list",
            ),
            (
                "fallback = [\"tract\"]\ntract = 2\n",
                "`backend.tract` must be a table",
            ),
            (
                "fallback = [\"tract\"]\n[tract]\nthread = 2\n",
                "unknown field `thread`",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[cfg(not(feature = "rknn"))]
    #[test]
    fn a_backend_left_out_of_the_build_says_which_feature_brings_it() {
        let error = parse("fallback = [\"rknn\", \"tract\"]\n").unwrap_err();
        assert!(error.contains("--features rknn"), "{error}");
    }
}
