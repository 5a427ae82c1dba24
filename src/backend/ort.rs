//! ONNX Runtime through the `ort` crate (feature `ort`), loaded at run time: CPU, CUDA and
//! TensorRT execution providers (Jetson boards), with nothing downloaded at build time.
//!
//! The library is `[backend] library`, else `$ORT_DYLIB_PATH`, else the system's
//! `libonnxruntime.so`. It is loaded once per process.

use super::{BackendError, InferenceBackend, Outputs};
use crate::model::graph_outline::{read_outline, DeclaredInput, Dim, GraphOutline};
use crate::model::{AttentionSource, ModelPackage};
use crate::tensor::Tensor;
use ort::ep::{self, ExecutionProvider};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session};
use ort::value::{TensorElementType, ValueType};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `[backend] kind = "ort"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrtConfig {
    /// The ONNX Runtime library; default `$ORT_DYLIB_PATH`, else `libonnxruntime.so` from
    /// the system's library path.
    #[serde(default)]
    pub library: Option<PathBuf>,
    /// Execution providers, most preferred first: `tensorrt`, `cuda`, `cpu`.
    #[serde(default = "default_providers")]
    pub providers: Vec<Provider>,
    /// A provider that cannot be registered is an error; with `fallback = true` the next one
    /// is tried instead, and the one that runs is logged as a warning.
    #[serde(default)]
    pub fallback: bool,
    /// Threads of the CPU provider (intra-op).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Graph optimisation: `disable`, `basic` (exactly the graph's arithmetic), `extended` or
    /// `all` (ONNX Runtime's default: also fuses DequantizeLinear -> MatMul into int8
    /// kernels, which computes another function than the graph says; see the self-test).
    #[serde(default)]
    pub optimization: Optimization,
    /// TensorRT options.
    #[serde(default)]
    pub tensorrt: TensorRtConfig,
    /// The CUDA device (and TensorRT's).
    #[serde(default)]
    pub device: i32,
    /// ONNX Runtime's CPU memory arena (its own default, and what Python sessions get):
    /// intermediate tensors reuse memory from run to run. Off trades a little speed for a
    /// smaller resident set.
    #[serde(default = "default_arena")]
    pub arena: bool,
    /// ONNX Runtime's memory pattern (its own default): after the first run, each run's
    /// intermediate tensors are placed in one block planned from the first. Off, each tensor
    /// is allocated on its own.
    #[serde(default = "default_memory_pattern")]
    pub memory_pattern: bool,
    /// How ONNX Runtime multiplies int8 on x86-64: `auto` (the default) is `exact` on CPUs
    /// without VNNI and `fast` on the others; `fast` is ONNX Runtime's own default (u8 x s8
    /// products whose pairwise sums saturate at 16 bits on CPUs without VNNI: a static int8
    /// model can then fail its self-test); `exact` takes the slower u8 x u8 kernels
    /// (`session.x64quantprecision`). `exact` also has the matmuls that ONNX Runtime makes
    /// `MatMulNBits` (int8 weights through DequantizeLinear, an input that no int8 kernel
    /// takes: a weight-only graph left to the int8 kernels, a static QDQ graph's matmuls that
    /// share their input's pair) computed in f32 on the int8 weights instead of quantizing
    /// their input again block by block (`session.qdq_matmulnbits_accuracy_level` 1, not 4):
    /// exact, and faster on the CPU without VNNI measured. Elsewhere it changes nothing.
    #[serde(default)]
    pub int8_precision: Int8Precision,
    /// Gives the graph's free (named, dynamic) input dimensions the sizes edgevit feeds, the
    /// manifest's `input.shape` (batch 1), so that ONNX Runtime plans the graph for them
    /// alone: a graph exported with a free batch then runs faster. Off, they stay free.
    #[serde(default = "default_fix_free_dimensions")]
    pub fix_free_dimensions: bool,
    /// At the `extended` and `all` levels, drops the QuantizeLinear -> DequantizeLinear pairs
    /// that no int8 kernel consumes (`session.enable_quant_qdq_cleanup`): the operator between
    /// them runs in f32 without the round trip through int8, which also lets ONNX Runtime fuse
    /// what the pairs split (a static QDQ ViT's GELU). Faster, and nearer the f32 model rather
    /// than exactly the graph: where the package's self-test fails with it, the model is
    /// loaded again with the pairs kept (a warning says so).
    #[serde(default = "default_qdq_cleanup")]
    pub qdq_cleanup: bool,
    /// A weight-only int8 graph (int8 weights through DequantizeLinear, no activation
    /// quantized) has its weights dequantized to f32 once, when it loads
    /// (`session.disable_quant_qdq`): the graph's own arithmetic, at f32 speed, for the memory
    /// of f32 weights. Off, ONNX Runtime fuses DequantizeLinear -> MatMul into kernels that
    /// keep the weights in int8 (a quarter of the memory): at `int8_precision` `fast` they
    /// quantize the activations as well (another function), at `exact` they compute in f32
    /// (the graph's arithmetic); slower either way on the x86 CPUs measured (see docs/backends.md).
    /// Graphs that quantize activations are never touched.
    #[serde(default = "default_dequantize_weights")]
    pub dequantize_weights: bool,
    /// At the `extended` and `all` levels, gives each operator that reads a quantized
    /// activation its own QuantizeLinear -> DequantizeLinear pair (the graph is copied in
    /// memory; the file is not changed), with ONNX Runtime's common-subexpression pass, which
    /// would merge the copies back, off for that graph. ONNX Runtime fuses a pair into an int8
    /// kernel only where the pair has one reader: a static QDQ ViT whose query, key and value
    /// are three matmuls on the same quantized tokens (Hugging Face's ViT, DeiT, DINOv2)
    /// otherwise runs them on float or per-block kernels. The same arithmetic, faster (see the
    /// docs/backends.md). Graphs without such a pair are loaded from their file as they are.
    #[serde(default = "default_dedicated_qdq_pairs")]
    pub dedicated_qdq_pairs: bool,
    /// With more than one thread, whether the CPU provider's threads spin-wait for work
    /// between the parallel parts of a run (`session.intra_op.allow_spinning`, ONNX
    /// Runtime's default) instead of sleeping. Spinning burns CPU time that the rest of the
    /// pipeline (the reader's preprocessing) and other processes then lack.
    #[serde(default = "default_spin")]
    pub spin: bool,
}

impl OrtConfig {
    /// Whether ONNX Runtime drops the Q -> DQ pairs: `qdq_cleanup` on, at a level that can.
    pub fn cleans_up_qdq(&self) -> bool {
        self.qdq_cleanup && self.optimization.can_clean_up_qdq()
    }

    /// Whether the Q -> DQ pairs are kept at a level that could drop them (`qdq_cleanup`
    /// off, or the exact form tried after the cleaned-up one failed its self-test).
    pub fn keeps_qdq_pairs(&self) -> bool {
        !self.qdq_cleanup && self.optimization.can_clean_up_qdq()
    }
}

/// `[backend.ort] int8_precision`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Int8Precision {
    #[default]
    Auto,
    Fast,
    Exact,
}

impl Int8Precision {
    /// Whether the session should take the saturation-free kernels on this CPU.
    pub fn exact_here(self) -> bool {
        match self {
            Int8Precision::Fast => false,
            Int8Precision::Exact => true,
            Int8Precision::Auto => x86_without_vnni(),
        }
    }
}

/// An x86-64 CPU whose int8 dot products saturate in ONNX Runtime's u8 x s8 kernels: one
/// without AVX-512 VNNI or AVX-VNNI.
fn x86_without_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        !(std::arch::is_x86_feature_detected!("avx512vnni")
            || std::arch::is_x86_feature_detected!("avxvnni"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn default_arena() -> bool {
    true
}

fn default_memory_pattern() -> bool {
    true
}

fn default_fix_free_dimensions() -> bool {
    true
}

fn default_qdq_cleanup() -> bool {
    true
}

fn default_dequantize_weights() -> bool {
    true
}

fn default_dedicated_qdq_pairs() -> bool {
    true
}

fn default_spin() -> bool {
    true
}

/// An execution provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Tensorrt,
    Cuda,
    Cpu,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Tensorrt => "tensorrt",
            Provider::Cuda => "cuda",
            Provider::Cpu => "cpu",
        }
    }
}

/// Graph optimisation level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimization {
    Disable,
    Basic,
    Extended,
    #[default]
    All,
}

impl Optimization {
    /// Whether ONNX Runtime's Q -> DQ cleanup runs at this level when asked (it is one of the
    /// `extended` transformers; `basic` keeps exactly the graph's arithmetic).
    fn can_clean_up_qdq(self) -> bool {
        matches!(self, Optimization::Extended | Optimization::All)
    }
}

/// `[backend.tensorrt]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorRtConfig {
    /// Where built engines are kept between runs (building one takes minutes on a Jetson).
    #[serde(default)]
    pub engine_cache: Option<PathBuf>,
    /// Let TensorRT run layers in fp16.
    #[serde(default)]
    pub fp16: bool,
    /// TensorRT's workspace, bytes; its own default when absent.
    #[serde(default)]
    pub workspace_bytes: Option<usize>,
}

fn default_providers() -> Vec<Provider> {
    vec![Provider::Cpu]
}

fn default_threads() -> usize {
    1
}

impl Default for OrtConfig {
    fn default() -> Self {
        OrtConfig {
            library: None,
            providers: default_providers(),
            fallback: false,
            threads: default_threads(),
            optimization: Optimization::default(),
            tensorrt: TensorRtConfig::default(),
            device: 0,
            arena: default_arena(),
            memory_pattern: default_memory_pattern(),
            int8_precision: Int8Precision::default(),
            fix_free_dimensions: default_fix_free_dimensions(),
            qdq_cleanup: default_qdq_cleanup(),
            dequantize_weights: default_dequantize_weights(),
            dedicated_qdq_pairs: default_dedicated_qdq_pairs(),
            spin: default_spin(),
        }
    }
}

/// The ONNX Runtime this process loaded: ONNX Runtime allows one environment per process,
/// made once and shared by every session.
struct Loaded {
    path: PathBuf,
    version: String,
    environment: ort::environment::Environment,
}

static LOADED: OnceLock<Loaded> = OnceLock::new();

/// The library to load: the setting, else `$ORT_DYLIB_PATH`, else the system's.
pub fn library_path(config: &OrtConfig) -> PathBuf {
    super::runtime_library(
        config.library.as_deref(),
        Some("ORT_DYLIB_PATH"),
        "libonnxruntime.so",
    )
}

/// Loads ONNX Runtime (once per process) and makes its environment.
fn load(config: &OrtConfig) -> Result<&'static Loaded, BackendError> {
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = crate::sync::lock(&MAKING);
    let path = library_path(config);
    if let Some(loaded) = LOADED.get() {
        if loaded.path != path {
            return Err(BackendError::Config(format!(
                "ONNX Runtime was already loaded from {} in this process; {} cannot be loaded beside it",
                loaded.path.display(),
                path.display()
            )));
        }
        return Ok(loaded);
    }
    let builder = ort::init_from(&path).map_err(|e| BackendError::Library {
        path: path.clone(),
        message: format!(
            "{e} (set `backend.library` or ORT_DYLIB_PATH to libonnxruntime.so of ONNX Runtime 1.{} or later)",
            ort::MINOR_VERSION
        ),
    })?;
    let environment = builder
        .with_name("edgevit")
        .build()
        .map_err(|e| BackendError::Library {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let version = version(&path).unwrap_or_else(|| "of unknown version".into());
    Ok(LOADED.get_or_init(|| Loaded {
        path,
        version,
        environment,
    }))
}

/// The library's own version string (`1.31.1`), read through its C API's entry point.
fn version(path: &Path) -> Option<String> {
    // SAFETY: the library is already loaded by `ort` (this only takes another reference to
    // it); `OrtGetApiBase` is its documented entry point, returning a static table whose
    // `GetVersionString` returns a static NUL-terminated string.
    unsafe {
        let library = libloading::Library::new(path).ok()?;
        let entry: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
            library.get(b"OrtGetApiBase").ok()?;
        let base = entry();
        if base.is_null() {
            return None;
        }
        let text = ((*base).GetVersionString)();
        if text.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(text)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// A model in an ONNX Runtime session.
pub struct OrtBackend {
    session: Session,
    input: String,
    input_shape: Vec<usize>,
    /// Side inputs (`[sie]`), each with where its value is in a run's `side` slice.
    side_inputs: Vec<(String, usize)>,
    /// Every loaded output, and the ones runs return (fewer after `keep_outputs`, asked of
    /// ONNX Runtime through `selected`).
    outputs: Vec<String>,
    kept: Vec<String>,
    selected: Option<RunOptions<HasSelectedOutputs>>,
    output_shapes: Vec<Option<Vec<usize>>>,
    /// The execution provider that registered first.
    provider: Provider,
    /// The graph's free input dimensions, fixed at the sizes edgevit feeds.
    fixed_dimensions: Vec<(String, i64)>,
}

impl OrtBackend {
    pub fn load(package: &ModelPackage, config: &OrtConfig) -> Result<Self, BackendError> {
        let path = package.onnx_path();
        super::check_threads(config.threads)?;
        if config.providers.is_empty() {
            return Err(BackendError::Config(
                "backend.providers must name at least one of tensorrt, cuda, cpu".into(),
            ));
        }
        let spec = &package.manifest.input;
        let outline = if config.fix_free_dimensions
            || config.dequantize_weights
            || config.dedicated_qdq_pairs
        {
            read_outline(&path).unwrap_or_else(|e| {
                // ONNX Runtime reads the file next, and says what is wrong with it.
                log::debug!(
                    "the graph's free dimensions stay free and its weights as they are: {}",
                    crate::error::chain(&e)
                );
                GraphOutline::default()
            })
        } else {
            GraphOutline::default()
        };
        let mut plan = SessionPlan {
            fixed: if config.fix_free_dimensions {
                free_dimensions(&outline.inputs, &spec.name, &spec.shape)
            } else {
                Vec::new()
            },
            dequantize_weights: config.dequantize_weights && outline.quantizes_weights_only(),
            graph: None,
        };
        let shared = outline.shared_quantized_activations();
        if config.dedicated_qdq_pairs && config.optimization.can_clean_up_qdq() && shared > 0 {
            plan.graph = with_dedicated_pairs(&path).unwrap_or_else(|message| {
                log::warn!("{path:?} is loaded as it is, its {shared} shared Q -> DQ pairs kept: {message}");
                None
            });
        }
        let (session, provider) = match build_session(&path, config, &plan) {
            Err(e @ BackendError::Load { .. }) if !plan.fixed.is_empty() => {
                log::warn!(
                    "ONNX Runtime could not plan {path:?} with its free dimensions fixed ({:?}): {e}; it runs with them free",
                    plan.fixed
                );
                plan.fixed.clear();
                build_session(&path, config, &plan)?
            }
            built => built?,
        };
        let fixed = plan.fixed;
        if !fixed.is_empty() {
            log::info!("ONNX Runtime plans {path:?} with its free dimensions fixed: {fixed:?}");
        }
        if plan.dequantize_weights {
            log::info!("ONNX Runtime runs {path:?}, weight-only int8, with its weights in f32");
        }
        let mismatch = |message: String| BackendError::Mismatch {
            path: path.clone(),
            message,
        };
        let graph_inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        let side_inputs = super::side_inputs(package, &graph_inputs).map_err(&mismatch)?;
        if let Some(image) = session.inputs().iter().find(|i| i.name() == spec.name) {
            check_image_input(image.dtype(), &spec.shape).map_err(&mismatch)?;
        }
        let outputs = package.manifest.outputs.owned_graph_names();
        let available: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        super::check_outputs(
            &outputs,
            |n| available.contains(&n),
            &available,
            "ONNX Runtime returns graph outputs only (attention maps must be exported as outputs for this backend, \
             e.g. with tools/add_attention_outputs.py)",
        )
        .map_err(&mismatch)?;
        // "auto" follows the attention into the graph, which ONNX Runtime cannot: the model
        // still classifies; zoom and parts, which need the maps, are refused where they are
        // asked for (`NoAttention`).
        if package.manifest.outputs.attention == AttentionSource::Auto {
            log::info!(
                "model {:?}: `outputs.attention = \"auto\"` is not available on ONNX Runtime (graph outputs only): zoom and parts cannot run on it",
                package.name()
            );
        }
        let output_shapes = outputs
            .iter()
            .map(|name| {
                session
                    .outputs()
                    .iter()
                    .find(|o| o.name() == name)
                    .and_then(|o| o.dtype().tensor_shape())
                    .and_then(|shape| {
                        shape
                            .iter()
                            .map(|&d| usize::try_from(d).ok())
                            .collect::<Option<Vec<usize>>>()
                    })
            })
            .collect();
        Ok(OrtBackend {
            input: spec.name.clone(),
            input_shape: spec.shape.to_vec(),
            side_inputs,
            kept: outputs.clone(),
            selected: None,
            outputs,
            output_shapes,
            provider,
            fixed_dimensions: fixed,
            session,
        })
    }

    /// The execution provider in use.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The graph's free input dimensions that ONNX Runtime planned at a fixed size (empty
    /// where the graph has none, or `fix_free_dimensions` is off), with that size.
    pub fn fixed_dimensions(&self) -> &[(String, i64)] {
        &self.fixed_dimensions
    }
}

/// What edgevit tells ONNX Runtime about one graph, beyond the configuration.
struct SessionPlan {
    /// The free input dimensions to plan at a fixed size, with that size.
    fixed: Vec<(String, i64)>,
    /// The graph is weight-only int8 and its weights are to be dequantized at load.
    dequantize_weights: bool,
    /// The graph to load instead of the file's: with a pair per reader of a quantized
    /// activation (`dedicated_qdq_pairs`), encoded.
    graph: Option<Vec<u8>>,
}

/// The graph in the ONNX file at `path` with a QuantizeLinear -> DequantizeLinear pair per
/// reader of each quantized activation, encoded; `None` where its weights are in external
/// files, which a graph loaded from memory cannot find.
fn with_dedicated_pairs(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let map = crate::model::graph_outline::map_model(path).map_err(|e| e.to_string())?;
    let mut model = <tract_onnx::pb::ModelProto as prost::Message>::decode(&map[..])
        .map_err(|e| format!("not an ONNX model: {e}"))?;
    drop(map);
    let Some(graph) = model.graph.as_mut() else {
        return Ok(None);
    };
    if graph.initializer.iter().any(|t| {
        t.data_location == Some(tract_onnx::pb::tensor_proto::DataLocation::External as i32)
    }) {
        log::info!(
            "{path:?} keeps its weights in external files: its shared Q -> DQ pairs stay shared"
        );
        return Ok(None);
    }
    let added = crate::model::qdq_pairs::dedicate_pairs(graph);
    log::info!("ONNX Runtime runs {path:?} with {added} more Q -> DQ pairs, one per reader of a quantized activation");
    Ok(Some(prost::Message::encode_to_vec(&model)))
}

/// A session on the configured providers, planned as `plan` says.
fn build_session(
    path: &Path,
    config: &OrtConfig,
    plan: &SessionPlan,
) -> Result<(Session, Provider), BackendError> {
    let environment = &load(config)?.environment;
    let optimize = |e: ort::Error| BackendError::Optimize {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let builder = Session::builder(environment).map_err(optimize)?;
    let builder = builder
        .with_optimization_level(level(config.optimization))
        .map_err(|e| optimize(e.into()))?;
    let builder = builder
        .with_intra_threads(super::bounded_threads(config.threads))
        .map_err(|e| optimize(e.into()))?;
    let builder = builder
        .with_inter_threads(1)
        .map_err(|e| optimize(e.into()))?;
    let builder = builder
        .with_memory_pattern(config.memory_pattern)
        .map_err(|e| optimize(e.into()))?;
    let mut builder = builder
        .with_intra_op_spinning(config.spin)
        .map_err(|e| optimize(e.into()))?;
    if config.int8_precision.exact_here() {
        builder = builder
            .with_config_entry("session.x64quantprecision", "1")
            .map_err(|e| optimize(e.into()))?;
        // Level 1 is f32 arithmetic on the int8 weights; ONNX Runtime's default (4) quantizes
        // the input again, block by block: neither exact nor, without VNNI, faster.
        builder = builder
            .with_config_entry("session.qdq_matmulnbits_accuracy_level", "1")
            .map_err(|e| optimize(e.into()))?;
    }
    if config.cleans_up_qdq() {
        builder = builder
            .with_config_entry("session.enable_quant_qdq_cleanup", "1")
            .map_err(|e| optimize(e.into()))?;
    }
    if plan.dequantize_weights {
        // With the QDQ transformers off, constant folding turns DequantizeLinear of a
        // constant into the f32 constant, and the float operators after it stay float.
        builder = builder
            .with_config_entry("session.disable_quant_qdq", "1")
            .map_err(|e| optimize(e.into()))?;
    }
    for (name, size) in &plan.fixed {
        builder = builder
            .with_dimension_override(name, *size)
            .map_err(|e| optimize(e.into()))?;
    }
    if plan.graph.is_some() {
        builder = builder
            .with_disabled_optimizers("CommonSubexpressionElimination")
            .map_err(|e| optimize(e.into()))?;
    }
    let provider = register(&mut builder, config)?;
    let session = match &plan.graph {
        Some(graph) => builder.commit_from_memory(graph),
        None => builder.commit_from_file(path),
    }
    .map_err(|e| BackendError::Load {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok((session, provider))
}

/// The size edgevit feeds for each named free dimension of the graph's inputs: the
/// manifest's shape for the image, 1 for a side input's single value. A graph exported with
/// a free batch is planned by ONNX Runtime for any size; with the sizes fixed it folds the
/// shape arithmetic and fuses more (DINOv2 ViT-S: see docs/backends.md). A name given two sizes
/// stays free.
fn free_dimensions(
    inputs: &[DeclaredInput],
    image: &str,
    shape: &[usize; 4],
) -> Vec<(String, i64)> {
    let mut sizes: Vec<(String, Option<i64>)> = Vec::new();
    for input in inputs {
        for (position, dim) in input.dims.iter().flatten().enumerate() {
            let Dim::Named(symbol) = dim else {
                continue;
            };
            let size = if input.name == image {
                shape.get(position).map(|&s| s as i64)
            } else {
                Some(1)
            };
            match sizes.iter_mut().find(|(name, _)| name == symbol) {
                Some((_, known)) if *known != size => *known = None,
                Some(_) => {}
                None => sizes.push((symbol.clone(), size)),
            }
        }
    }
    sizes
        .into_iter()
        .filter_map(|(name, size)| size.map(|size| (name, size)))
        .collect()
}

fn level(optimization: Optimization) -> GraphOptimizationLevel {
    match optimization {
        Optimization::Disable => GraphOptimizationLevel::Disable,
        Optimization::Basic => GraphOptimizationLevel::Level1,
        Optimization::Extended => GraphOptimizationLevel::Level2,
        Optimization::All => GraphOptimizationLevel::All,
    }
}

/// Registers the configured providers in order; returns the first that registered.
fn register(
    builder: &mut ort::session::builder::SessionBuilder,
    config: &OrtConfig,
) -> Result<Provider, BackendError> {
    let mut refused = Vec::new();
    for &provider in &config.providers {
        let result = match provider {
            // The `ort` crate's CPU provider turns the arena off unless asked.
            Provider::Cpu => ep::CPU::default()
                .with_arena_allocator(config.arena)
                .register(builder),
            Provider::Cuda => ep::CUDA::default()
                .with_device_id(config.device)
                .register(builder),
            Provider::Tensorrt => {
                let mut trt = ep::TensorRT::default()
                    .with_device_id(config.device)
                    .with_fp16(config.tensorrt.fp16);
                if let Some(dir) = &config.tensorrt.engine_cache {
                    trt = trt
                        .with_engine_cache(true)
                        .with_engine_cache_path(dir.display());
                }
                if let Some(bytes) = config.tensorrt.workspace_bytes {
                    trt = trt.with_max_workspace_size(bytes);
                }
                trt.register(builder)
            }
        };
        match result {
            Ok(()) => {
                if !refused.is_empty() {
                    log::warn!(
                        "ONNX Runtime runs on the {} provider: {} could not be used ({})",
                        provider.name(),
                        refused
                            .iter()
                            .map(|(p, _): &(Provider, String)| p.name())
                            .collect::<Vec<_>>()
                            .join(", "),
                        refused
                            .iter()
                            .map(|(p, why)| format!("{}: {why}", p.name()))
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                } else {
                    log::info!("ONNX Runtime runs on the {} provider", provider.name());
                }
                return Ok(provider);
            }
            Err(e) if config.fallback => refused.push((provider, e.to_string())),
            Err(e) => {
                return Err(BackendError::Provider {
                    provider: provider.name(),
                    message: format!(
                        "{e} (the library offers {}; set `backend.fallback = true` to go on with the next provider)",
                        providers().join(", ")
                    ),
                })
            }
        }
    }
    Err(BackendError::Provider {
        provider: "every configured",
        message: refused
            .iter()
            .map(|(p, why)| format!("{}: {why}", p.name()))
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// The execution providers the loaded library was built with.
pub fn providers() -> Vec<&'static str> {
    [
        ("tensorrt", ep::TensorRT::is_available()),
        ("cuda", ep::CUDA::is_available()),
        ("cpu", ep::CPU::is_available()),
    ]
    .into_iter()
    .filter(|(_, available)| matches!(available, Ok(true)))
    .map(|(name, _)| name)
    .collect()
}

/// `edgevit probe`: which library would load, its version and providers.
pub fn probe(config: &OrtConfig) -> Result<String, BackendError> {
    let loaded = load(config)?;
    Ok(format!(
        "available: ONNX Runtime {} from {} (providers: {})",
        loaded.version,
        loaded.path.display(),
        providers().join(", ")
    ))
}

/// Compares the manifest's input shape with the graph's (symbolic dimensions match any).
fn check_image_input(dtype: &ValueType, expected: &[usize; 4]) -> Result<(), String> {
    if dtype.tensor_type() != Some(TensorElementType::Float32) {
        return Err(format!(
            "the image input must be float32, the graph's is {:?}",
            dtype.tensor_type()
        ));
    }
    let Some(shape) = dtype.tensor_shape() else {
        return Ok(());
    };
    // ONNX Runtime gives a free dimension as -1.
    let dims: Vec<Option<i64>> = shape.iter().map(|&d| (d >= 0).then_some(d)).collect();
    super::check_image_shape(&dims, expected)
}

impl InferenceBackend for OrtBackend {
    fn name(&self) -> &'static str {
        "ort"
    }

    fn output_shape(&self, name: &str) -> Option<Vec<usize>> {
        super::known_shape(&self.outputs, &self.output_shapes, name)
    }

    fn keep_outputs(&mut self, names: &[String]) -> Result<(), BackendError> {
        let kept = super::kept_positions(&self.outputs, names)?;
        let kept: Vec<String> = kept.into_iter().map(|i| self.outputs[i].clone()).collect();
        if kept == self.kept {
            return Ok(());
        }
        self.selected = if kept.len() == self.outputs.len() {
            None
        } else {
            let selector = kept.iter().fold(OutputSelector::no_default(), |s, name| {
                s.with(name.as_str())
            });
            let options = RunOptions::new().map_err(|e| BackendError::Run(e.to_string()))?;
            Some(options.with_outputs(selector))
        };
        self.kept = kept;
        Ok(())
    }

    fn run_with(&mut self, input: &Tensor, side: &[i64]) -> Result<Outputs, BackendError> {
        super::check_input(&self.input_shape, input)?;
        let run = |e: ort::Error| BackendError::Run(e.to_string());
        // Borrowed, not copied: ONNX Runtime reads the frame's tensor where it lies.
        let image =
            ort::value::TensorRef::from_array_view((input.shape(), input.data())).map_err(run)?;
        let mut inputs: Vec<(String, ort::session::SessionInputValue)> =
            vec![(self.input.clone(), image.into())];
        for (name, slot) in &self.side_inputs {
            let value = side.get(*slot).copied().unwrap_or(0);
            let tensor =
                ort::value::Tensor::from_array((vec![1usize], vec![value])).map_err(run)?;
            inputs.push((name.clone(), tensor.into()));
        }
        let results = match &self.selected {
            Some(options) => self.session.run_with_options(inputs, options),
            None => self.session.run(inputs),
        }
        .map_err(run)?;
        let mut tensors = Vec::with_capacity(self.kept.len());
        for name in &self.kept {
            let value = results
                .get(name)
                .ok_or_else(|| BackendError::Run(format!("no output {name:?}")))?;
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(run)?;
            let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
            let tensor =
                Tensor::new(shape, data.to_vec()).map_err(|e| BackendError::Run(e.to_string()))?;
            tensors.push((name.clone(), tensor));
        }
        Ok(Outputs::new(tensors))
    }
}

#[cfg(test)]
mod tests {
    use super::free_dimensions;
    use crate::model::graph_outline::{DeclaredInput, Dim};

    fn input(name: &str, dims: Vec<Dim>) -> DeclaredInput {
        DeclaredInput {
            name: name.into(),
            dims: Some(dims),
        }
    }

    #[test]
    fn named_free_dimensions_take_the_sizes_edgevit_feeds() {
        let named = |n: &str| Dim::Named(n.into());
        let inputs = [
            input(
                "pixels",
                vec![
                    named("batch"),
                    Dim::Size(3),
                    named("height"),
                    named("width"),
                ],
            ),
            input("camera", vec![named("batch")]),
        ];
        assert_eq!(
            free_dimensions(&inputs, "pixels", &[1, 3, 256, 128]),
            [
                ("batch".to_string(), 1),
                ("height".to_string(), 256),
                ("width".to_string(), 128)
            ]
        );
    }

    #[test]
    fn fixed_unnamed_and_contradictory_dimensions_are_left_alone() {
        let inputs = [
            input(
                "pixels",
                vec![
                    Dim::Size(1),
                    Dim::Size(3),
                    Dim::Named("side".into()),
                    Dim::Unnamed,
                ],
            ),
            input("camera", vec![Dim::Named("side".into())]),
            DeclaredInput {
                name: "view".into(),
                dims: None,
            },
        ];
        let fixed = free_dimensions(&inputs, "pixels", &[1, 3, 224, 224]);
        assert!(fixed.is_empty(), "{fixed:?}");
    }
}
