//! The CPU backend: tract, with optional multi-threaded matrix products.

use super::{AttentionTensor, BackendError, InferenceBackend, Outputs};
use crate::model::{AttentionSource, ModelPackage};
use crate::tensor::Tensor;
use serde::Deserialize;
use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::nn::{Softmax, SoftmaxKind};
use tract_onnx::tract_core::transform::build_float_translator;
use tract_onnx::tract_hir::infer::Factoid;

/// `[backend] kind = "tract"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TractConfig {
    /// Threads for matrix products. tract runs on the calling thread alone with 1; more
    /// threads use a private pool (tract-linalg's `multithread-mm` executor).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// The arithmetic: `"f32"` as exported, or `"f16"`, the graph translated to half precision
    /// (tract's `f32_to_f16`). Half precision is for cores with FP16 arithmetic (ARMv8.2:
    /// Cortex-A55/A76 in RK3588 and the like), where tract has f16 kernels; elsewhere it is
    /// emulated and slow. The f16 form runs only if it passes the package's self-test within
    /// `backend_tolerance."tract-f16"` (the plain tolerance otherwise); if not, tract runs
    /// f32 and logs why.
    #[serde(default)]
    pub precision: Precision,
    /// Whose kernels run a ViT's softmax, layer norm and QuantizeLinear: `"edgevit"`'s,
    /// put in place of tract's in its optimised plan (the same results within float rounding;
    /// the plan is otherwise tract's), or `"tract"`'s own. edgevit's are faster on the CPUs
    /// measured (docs/engineering/tract-speed.md); `"tract"` is there to compare, and as a way
    /// out should one misbehave on a CPU not measured.
    #[serde(default)]
    pub kernels: Kernels,
}

/// `[backend] kernels`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernels {
    #[default]
    Edgevit,
    Tract,
}

/// tract's arithmetic precision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F16,
}

fn default_threads() -> usize {
    1
}

impl Default for TractConfig {
    fn default() -> Self {
        TractConfig {
            threads: default_threads(),
            precision: Precision::default(),
            kernels: Kernels::default(),
        }
    }
}

/// Whether tract reads the shapes a graph's file declares for its inner tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeclaredShapes {
    Read,
    SetAside,
}

/// A model compiled and optimised by tract.
pub struct TractBackend {
    /// The plan of every loaded output, and the one that runs (fewer outputs, after
    /// [`InferenceBackend::keep_outputs`]).
    full: Arc<TypedRunnableModel>,
    plan: Arc<TypedRunnableModel>,
    input_shape: Vec<usize>,
    /// Side inputs (`[sie]`), in the graph's input order after the image: where each one's
    /// value is in the `side` slice of a run.
    side_inputs: Vec<usize>,
    /// Every loaded output, and the ones `plan` returns.
    loaded_names: Vec<String>,
    output_names: Vec<String>,
    /// The shape of each loaded output where the optimised graph fixes it.
    output_shapes: Vec<Option<Vec<usize>>>,
    attention: Vec<AttentionTensor>,
    executor: Executor,
    /// f32, or f16 for a graph in half precision: what the image is cast to.
    input_type: DatumType,
}

impl TractBackend {
    /// The package's graph, analysed at the manifest's input shape and optimised. A graph
    /// whose file declares inner shapes (`value_info`) that contradict that shape is loaded
    /// again without them, with a warning: ONNX Runtime's quantization tools write the shapes
    /// with the batch free (`batch_size`), which tract refuses to unify with the batch of 1
    /// that edgevit feeds.
    pub fn load(package: &ModelPackage, config: &TractConfig) -> Result<Self, BackendError> {
        match Self::load_with(package, config, DeclaredShapes::Read) {
            Err(refused @ BackendError::Optimize { .. }) => {
                match Self::load_with(package, config, DeclaredShapes::SetAside) {
                    Ok(backend) => {
                        log::warn!(
                            "{}: loaded without the inner shapes its file declares, which tract could not reconcile with the input shape ({refused})",
                            package.name()
                        );
                        Ok(backend)
                    }
                    Err(_) => Err(refused),
                }
            }
            loaded => loaded,
        }
    }

    fn load_with(
        package: &ModelPackage,
        config: &TractConfig,
        declared_shapes: DeclaredShapes,
    ) -> Result<Self, BackendError> {
        let path = package.onnx_path();
        super::check_threads(config.threads)?;
        let spec = &package.manifest.input;
        let mut model = tract_onnx::onnx()
            .with_ignore_value_info(declared_shapes == DeclaredShapes::SetAside)
            .model_for_path(&path)
            .map_err(|e| BackendError::Load {
                path: path.clone(),
                message: format!("{e:#}"),
            })?;
        let mismatch = |message: String| BackendError::Mismatch {
            path: path.clone(),
            message,
        };

        let input_names: Vec<String> = input_names(&model)
            .into_iter()
            .map(str::to_string)
            .collect();
        let graph_inputs: Vec<&str> = input_names.iter().map(String::as_str).collect();
        let side_inputs: Vec<usize> = super::side_inputs(package, &graph_inputs)
            .map_err(&mismatch)?
            .into_iter()
            .map(|(_, slot)| slot)
            .collect();
        if input_names[0] != spec.name {
            return Err(mismatch(format!(
                "the image input {:?} must be the graph's first input; the graph's inputs are {:?}",
                spec.name, input_names
            )));
        }
        check_input_shape(&model, &spec.shape).map_err(&mismatch)?;

        let mut output_names = package.manifest.outputs.owned_graph_names();
        // A name may be a graph output or any tensor inside the graph (attention maps of an
        // export that only has `logits` as output): tract makes it an output.
        let available = output_labels(&model);
        let listed: Vec<&str> = available.iter().map(String::as_str).collect();
        super::check_outputs(
            &output_names,
            |n| listed.contains(&n) || has_tensor(&model, n),
            &listed,
            "nor is it a tensor inside the graph",
        )
        .map_err(&mismatch)?;
        model
            .select_outputs_by_name(&output_names)
            .map_err(|e| mismatch(format!("{e:#}")))?;

        let optimize = |e: TractError| BackendError::Optimize {
            path: path.clone(),
            message: format!("{e:#}"),
        };
        let fact = InferenceFact::dt_shape(f32::datum_type(), spec.shape.to_vec());
        let mut model = model.with_input_fact(0, fact).map_err(optimize)?;
        for index in 1..input_names.len() {
            let side_fact = InferenceFact::dt_shape(i64::datum_type(), [1usize]);
            model = model.with_input_fact(index, side_fact).map_err(optimize)?;
        }
        let mut typed = model.into_typed().map_err(optimize)?;
        let attention = match &package.manifest.outputs.attention {
            AttentionSource::None => Vec::new(),
            AttentionSource::Named(names) => names
                .iter()
                .map(|name| {
                    let index = output_names.iter().position(|n| n == name).unwrap_or(0);
                    let outlet = typed.output_outlets().map_err(optimize)?[index];
                    attention_tensor(&typed, outlet, name).ok_or_else(|| {
                        mismatch(format!(
                            "attention tensor {name:?} is not [1, heads, tokens, tokens]"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            AttentionSource::Auto => {
                let found = find_attention(&typed).map_err(optimize)?;
                if found.is_empty() {
                    return Err(mismatch(
                        "`outputs.attention = \"auto\"` found no attention in the graph: no Softmax over the last axis of a [1, heads, tokens, tokens] tensor (is it a transformer?)".into(),
                    ));
                }
                let mut outlets = typed.output_outlets().map_err(optimize)?.to_vec();
                for (outlet, tensor) in &found {
                    outlets.push(*outlet);
                    output_names.push(tensor.name.clone());
                }
                typed.select_output_outlets(&outlets).map_err(optimize)?;
                log::info!(
                    "{}: found the attention of {} blocks ({} heads, {} tokens): {} ... {}",
                    package.name(),
                    found.len(),
                    found[0].1.heads,
                    found[0].1.tokens,
                    found[0].1.name,
                    found[found.len() - 1].1.name
                );
                found.into_iter().map(|(_, tensor)| tensor).collect()
            }
        };
        if config.precision == Precision::F16 {
            let half =
                build_float_translator(f32::datum_type(), f16::datum_type(), Default::default());
            typed = typed
                .into_decluttered()
                .and_then(|m| half.transform_into(m))
                .map_err(optimize)?;
        }
        let mut optimized = typed.into_optimized().map_err(optimize)?;
        if config.kernels == Kernels::Edgevit {
            let done = super::tract_kernels::rewrite(&mut optimized).map_err(optimize)?;
            log::debug!(
                "{}: edgevit's kernels in the plan: {done:?}",
                package.name()
            );
        }
        let plan = optimized.into_runnable().map_err(optimize)?;
        let input_type = plan.model().input_fact(0).map_err(optimize)?.datum_type;
        let output_shapes = (0..output_names.len())
            .map(|i| {
                plan.model()
                    .output_fact(i)
                    .ok()
                    .and_then(|fact| fact.shape.as_concrete().map(<[usize]>::to_vec))
            })
            .collect();
        let threads = super::bounded_threads(config.threads);
        let executor = if threads > 1 {
            Executor::multithread(threads)
        } else {
            Executor::SingleThread
        };
        Ok(TractBackend {
            full: plan.clone(),
            plan,
            input_shape: spec.shape.to_vec(),
            side_inputs,
            loaded_names: output_names.clone(),
            output_names,
            output_shapes,
            attention,
            executor,
            input_type,
        })
    }
}

fn input_names(model: &InferenceModel) -> Vec<&str> {
    model
        .input_outlets()
        .map(|outlets| {
            outlets
                .iter()
                .map(|o| model.node(o.node).name.as_str())
                .collect()
        })
        .unwrap_or_default()
}

fn output_labels(model: &InferenceModel) -> Vec<String> {
    model
        .output_outlets()
        .map(|outlets| {
            outlets
                .iter()
                .map(|o| {
                    model
                        .outlet_label(*o)
                        .map(str::to_string)
                        .unwrap_or_else(|| model.node(o.node).name.clone())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `name` is a tensor (outlet label) or a node of the graph.
fn has_tensor(model: &InferenceModel, name: &str) -> bool {
    model.find_outlet_label(name).is_some() || model.node_by_name(name).is_ok()
}

/// `[1, heads, tokens, tokens]` at `outlet`, as an attention tensor called `name`.
fn attention_tensor(model: &TypedModel, outlet: OutletId, name: &str) -> Option<AttentionTensor> {
    let fact = model.outlet_fact(outlet).ok()?;
    match fact.shape.as_concrete()? {
        &[1, heads, tokens, keys] if tokens == keys && tokens > 1 => Some(AttentionTensor {
            name: name.to_string(),
            heads,
            tokens,
        }),
        _ => None,
    }
}

/// The attention probabilities of every block, in evaluation (block) order: each Softmax
/// over the key axis of a `[1, heads, tokens, tokens]` tensor.
fn find_attention(model: &TypedModel) -> TractResult<Vec<(OutletId, AttentionTensor)>> {
    let mut found = Vec::new();
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(softmax) = node.op_as::<Softmax>() else {
            continue;
        };
        if softmax.kind != SoftmaxKind::Softmax || softmax.axes.as_slice() != [3] {
            continue;
        }
        let outlet = OutletId::new(id, 0);
        let name = model
            .outlet_label(outlet)
            .map_or_else(|| node.name.clone(), str::to_string);
        if let Some(tensor) = attention_tensor(model, outlet, &name) {
            found.push((outlet, tensor));
        }
    }
    // Blocks over fewer tokens (TransFG's last block sees only the selected parts) are not
    // part of the patch grid's attention: keep the blocks with the first block's tokens.
    if let Some(tokens) = found.first().map(|(_, t)| t.tokens) {
        let (grid, other): (Vec<_>, Vec<_>) =
            found.into_iter().partition(|(_, t)| t.tokens == tokens);
        for (_, t) in &other {
            log::info!(
                "attention {} over {} tokens is not over the patch grid; left out",
                t.name,
                t.tokens
            );
        }
        found = grid;
    }
    Ok(found)
}

/// Compares the manifest's shape with the dimensions the graph fixes (symbolic ones match any).
fn check_input_shape(model: &InferenceModel, expected: &[usize; 4]) -> Result<(), String> {
    let fact = model.input_fact(0).map_err(|e| format!("{e:#}"))?;
    // A graph of unknown rank fixes nothing to compare with.
    if fact.shape.rank().concretize().is_none() {
        return Ok(());
    }
    let dims: Vec<Option<i64>> = fact
        .shape
        .dims()
        .map(|d| d.concretize().and_then(|d| d.to_i64().ok()))
        .collect();
    super::check_image_shape(&dims, expected)
}

impl InferenceBackend for TractBackend {
    fn name(&self) -> &'static str {
        if self.input_type == f16::datum_type() {
            "tract-f16"
        } else {
            "tract"
        }
    }

    fn attention(&self) -> &[AttentionTensor] {
        &self.attention
    }

    fn output_shape(&self, name: &str) -> Option<Vec<usize>> {
        super::known_shape(&self.loaded_names, &self.output_shapes, name)
    }

    fn keep_outputs(&mut self, names: &[String]) -> Result<(), BackendError> {
        let kept = super::kept_positions(&self.loaded_names, names)?;
        let kept_names: Vec<String> = kept.iter().map(|&i| self.loaded_names[i].clone()).collect();
        if kept_names == self.output_names {
            return Ok(());
        }
        if kept.len() == self.loaded_names.len() {
            self.plan = self.full.clone();
        } else {
            // A plan runs only the nodes its outputs depend on: the same optimised graph
            // with fewer outputs skips what fed the others.
            let plan_error = |e: TractError| BackendError::Run(format!("{e:#}"));
            let mut graph = self.full.model().clone();
            let outlets = graph.output_outlets().map_err(plan_error)?;
            let outlets: Vec<OutletId> = kept.iter().map(|&i| outlets[i]).collect();
            graph.select_output_outlets(&outlets).map_err(plan_error)?;
            self.plan = graph.into_runnable().map_err(plan_error)?;
        }
        self.output_names = kept_names;
        Ok(())
    }

    fn profile(
        &mut self,
        input: &Tensor,
        runs: usize,
    ) -> Option<Result<super::tract_profile::Profile, BackendError>> {
        Some(self.profile_nodes(input, &[], runs))
    }

    fn run_with(&mut self, input: &Tensor, side: &[i64]) -> Result<Outputs, BackendError> {
        let run_error = |e: TractError| BackendError::Run(format!("{e:#}"));
        let inputs = self.inputs(input, side)?;
        let plan = &self.plan;
        let results = multithread_tract_scope(self.executor.clone(), || plan.run(inputs))
            .map_err(run_error)?;
        let tensors = self
            .output_names
            .iter()
            .zip(results)
            .map(|(name, value)| {
                let value = value.cast_to::<f32>().map_err(run_error)?;
                let view = value.to_plain_array_view::<f32>().map_err(run_error)?;
                let tensor = Tensor::new(view.shape().to_vec(), view.iter().copied().collect())
                    .map_err(|e| BackendError::Run(e.to_string()))?;
                Ok((name.clone(), tensor))
            })
            .collect::<Result<Vec<_>, BackendError>>()?;
        Ok(Outputs::new(tensors))
    }
}

impl TractBackend {
    /// The plan that runs.
    pub(super) fn plan(&self) -> &Arc<TypedRunnableModel> {
        &self.plan
    }

    /// How many nodes of each op the plan runs (`RowSoftmax`, `OptMatMul`...).
    pub fn ops_in_plan(&self) -> std::collections::BTreeMap<String, usize> {
        let mut ops = std::collections::BTreeMap::new();
        let model = self.plan.model();
        for &id in self.plan.order_without_consts() {
            *ops.entry(model.node(id).op.name().to_string()).or_insert(0) += 1;
        }
        ops
    }

    /// The thread pool it runs on.
    pub(super) fn executor(&self) -> Executor {
        self.executor.clone()
    }

    /// The graph's inputs for `input` (cast to the graph's type) and the side inputs.
    pub(super) fn inputs(
        &self,
        input: &Tensor,
        side: &[i64],
    ) -> Result<TVec<TValue>, BackendError> {
        super::check_input(&self.input_shape, input)?;
        let run_error = |e: TractError| BackendError::Run(format!("{e:#}"));
        let tensor = tract_ndarray::ArrayD::from_shape_vec(input.shape(), input.data().to_vec())
            .map_err(|e| BackendError::Run(e.to_string()))?
            .into_tensor();
        let tensor = if self.input_type == f32::datum_type() {
            tensor
        } else {
            tensor
                .cast_to_dt(self.input_type)
                .map_err(run_error)?
                .into_owned()
        };
        let mut inputs: TVec<TValue> = tvec!(tensor.into_tvalue());
        for &slot in &self.side_inputs {
            let value = side.get(slot).copied().unwrap_or(0);
            inputs.push(tract_ndarray::arr1(&[value]).into_tensor().into_tvalue());
        }
        Ok(inputs)
    }
}
