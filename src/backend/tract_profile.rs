//! Where tract's time goes in one model: each node of the optimised plan timed over several
//! runs (tract's own per-node evaluation hook, as tract-cli's `--profile` does), grouped by
//! op class, with its multiply-adds from tract's own cost model, so that each class's
//! GFLOP/s can be set against the CPU's peak.

use super::tract::TractBackend;
use super::BackendError;
use crate::tensor::Tensor;
use serde::Serialize;
use std::time::Instant;
use tract_linalg::multithread::multithread_tract_scope;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::matmul::optimized::{MatMulOperand, OptMatMul, ProtoFusedSpec};
use tract_onnx::tract_core::ops::Cost;
use tract_onnx::tract_core::plan::{eval, SimpleState};

/// What a group of nodes costs in one inference.
#[derive(Debug, Clone, Serialize)]
pub struct ClassProfile {
    pub class: &'static str,
    pub nodes: usize,
    /// The sum of its nodes' median times.
    pub ms: f64,
    /// Of the sum over all classes.
    pub share: f64,
    /// 2 x multiply-adds, by tract's cost model (0 where it gives none).
    pub gflop: f64,
}

/// One node of the optimised plan.
#[derive(Debug, Clone, Serialize)]
pub struct NodeProfile {
    pub name: String,
    pub op: String,
    pub class: &'static str,
    pub ms: f64,
    pub gflop: f64,
}

/// A model's profile.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// The median of whole runs, timed around the hooked evaluation.
    pub run_ms: f64,
    pub classes: Vec<ClassProfile>,
    pub nodes: Vec<NodeProfile>,
}

/// The op classes of a ViT, in the order they are reported.
pub const CLASSES: [&str; 9] = [
    "weight matmul",
    "attention matmul",
    "quantize / dequantize",
    "softmax",
    "norm",
    "gelu / erf",
    "conv",
    "copies",
    "element-wise, other",
];

/// The class of a node of op `op` whose inputs come from `inputs` nodes of those ops.
fn class_of(op: &str, inputs_from: &[&str]) -> &'static str {
    let lower = op.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if has(&["quantize"]) {
        // Before matmul: tract names some of these after the MatMul they feed.
        "quantize / dequantize"
    } else if has(&["matmul", "einsum", "gemm", "sdpa"]) {
        // Projections and the MLP multiply by weights (packed into the op, or a constant);
        // attention multiplies two activations.
        let activations = inputs_from.iter().filter(|o| **o != "Const").count();
        if has(&["sdpa"]) || activations >= 2 {
            "attention matmul"
        } else {
            "weight matmul"
        }
    } else if has(&["softmax"]) {
        "softmax"
    } else if has(&["norm", "reduce", "rsqrt"]) {
        "norm"
    } else if has(&["erf", "gelu"]) {
        "gelu / erf"
    } else if has(&["conv", "im2col"]) {
        "conv"
    } else if has(&[
        "axisop",
        "moveaxis",
        "reshape",
        "concat",
        "slice",
        "gather",
        "transpose",
        "copy",
    ]) {
        "copies"
    } else {
        "element-wise, other"
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// A node's multiply-adds, by tract's cost model.
fn multiply_adds(model: &TypedModel, node: &TypedNode) -> f64 {
    let Ok(facts) = model.node_input_facts(node.id) else {
        return 0.0;
    };
    let Ok(costs) = node.op.cost(&facts) else {
        return 0.0;
    };
    (costs.iter())
        .filter(|(cost, _)| matches!(cost, Cost::FMA(_)))
        .filter_map(|(_, count)| count.to_i64().ok())
        .sum::<i64>() as f64
}

impl TractBackend {
    /// Runs the model `runs` times on `input`, timing each node.
    pub fn profile_nodes(
        &self,
        input: &Tensor,
        side: &[i64],
        runs: usize,
    ) -> Result<Profile, BackendError> {
        let run_error = |e: TractError| BackendError::Run(format!("{e:#}"));
        let plan = self.plan();
        let model = plan.model();
        let mut state = SimpleState::new(plan).map_err(run_error)?;
        let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); model.nodes().len()];
        let mut whole = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            let inputs = self.inputs(input, side)?;
            let start = Instant::now();
            multithread_tract_scope(self.executor(), || {
                state.run_plan_with_eval(inputs, |session, op_state, node, node_inputs| {
                    let t = Instant::now();
                    let out = eval(session, op_state, node, node_inputs);
                    times[node.id].push(t.elapsed().as_secs_f64() * 1e3);
                    out
                })
            })
            .map_err(run_error)?;
            whole.push(start.elapsed().as_secs_f64() * 1e3);
        }
        let constant = constant_nodes(model);
        let nodes: Vec<NodeProfile> = (model.nodes().iter())
            .zip(times.iter_mut())
            .filter(|(_, times)| !times.is_empty())
            .map(|(node, times)| {
                let from = operand_sources(node, &constant);
                let op = node.op.name().to_string();
                NodeProfile {
                    name: node.name.clone(),
                    class: class_of(&op, &from),
                    op,
                    ms: median(times),
                    gflop: 2.0 * multiply_adds(model, node) / 1e9,
                }
            })
            .collect();
        Ok(Profile {
            run_ms: median(&mut whole),
            classes: by_class(&nodes),
            nodes,
        })
    }
}

/// "Const" or "" for each operand of a matmul node, "" for each input of another: which are
/// weights. An `OptMatMul` holds its packed weights, and its other inputs may be fused
/// additions (the residual), so its own operands are read.
fn operand_sources(node: &TypedNode, constant: &[bool]) -> Vec<&'static str> {
    let input = |i: usize| node.inputs.get(i).is_some_and(|o| constant[o.node]);
    let source = |weight: bool| if weight { "Const" } else { "" };
    if let Some(mm) = node.op_as::<OptMatMul>() {
        let operands = (mm.micro_ops.iter()).find_map(|op| match op {
            ProtoFusedSpec::AddMatMul { a, b, .. } => Some([a, b]),
            _ => None,
        });
        if let Some(operands) = operands {
            return (operands.iter())
                .map(|operand| match operand {
                    MatMulOperand::Const(_) => source(true),
                    MatMulOperand::Input(i) => source(input(*i)),
                })
                .collect();
        }
    }
    (0..node.inputs.len()).map(|i| source(input(i))).collect()
}

/// The nodes whose value depends on no input: constants, and what is computed from
/// constants alone (weights dequantized or cast at each run are still weights).
fn constant_nodes(model: &TypedModel) -> Vec<bool> {
    let mut constant = vec![false; model.nodes().len()];
    // In evaluation order, a node's inputs are decided before it.
    let order = model.eval_order().unwrap_or_default();
    for node in order.iter().map(|&id| &model.nodes()[id]) {
        constant[node.id] = node.op.name() == "Const"
            || (!node.inputs.is_empty() && node.inputs.iter().all(|o| constant[o.node]));
    }
    constant
}

fn by_class(nodes: &[NodeProfile]) -> Vec<ClassProfile> {
    let total: f64 = nodes.iter().map(|n| n.ms).sum();
    (CLASSES.iter())
        .map(|&class| {
            let of: Vec<&NodeProfile> = nodes.iter().filter(|n| n.class == class).collect();
            let ms = of.iter().map(|n| n.ms).sum::<f64>();
            ClassProfile {
                class,
                nodes: of.len(),
                ms,
                share: if total > 0.0 { ms / total } else { 0.0 },
                gflop: of.iter().map(|n| n.gflop).sum(),
            }
        })
        .filter(|c| c.nodes > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vits_ops_fall_in_their_classes() {
        assert_eq!(class_of("OptMatMul", &[""]), "weight matmul");
        assert_eq!(class_of("EinSum", &["", "Const"]), "weight matmul");
        assert_eq!(class_of("OptMatMul", &["", ""]), "attention matmul");
        assert_eq!(class_of("QuantizeLinearI8", &[""]), "quantize / dequantize");
        assert_eq!(class_of("Softmax", &[""]), "softmax");
        assert_eq!(class_of("Reduce<Sum>", &[""]), "norm");
        assert_eq!(class_of("Erf", &[""]), "gelu / erf");
        assert_eq!(class_of("Conv", &[""]), "conv");
        assert_eq!(class_of("MoveAxis", &[""]), "copies");
        assert_eq!(class_of("Add", &["", "Const"]), "element-wise, other");
    }
}
