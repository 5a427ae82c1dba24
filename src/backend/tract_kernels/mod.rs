//! edgevit's kernels for the ops of a Vision Transformer that tract runs slowly on CPUs
//! (docs/engineering/tract-speed.md): softmax, layer norm and QuantizeLinear. Each replaces
//! tract's op in the optimised plan, where nothing in tract looks at it again: the graph, its
//! outputs (the attention maps the zoom reads included) and tract's matmuls are unchanged.

mod layer_norm;
mod ops;
#[cfg(test)]
mod tests;

use ops::{RowQuantize, RowSoftmax};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::nn::{Softmax, SoftmaxKind};
use tract_onnx::tract_core::ops::quant::{QuantizeLinearI8, QuantizeLinearU8};

/// How many ops of each kind were replaced in one plan.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    pub softmax: usize,
    pub layer_norm: usize,
    pub quantize: usize,
}

/// Replaces tract's f32 softmax over the last axis, its layer norms (as tract decomposes
/// them) and its QuantizeLinear by edgevit's ops, in an optimised model. Other precisions
/// and layouts are left to tract.
pub fn rewrite(model: &mut TypedModel) -> TractResult<Rewritten> {
    let mut done = Rewritten {
        layer_norm: layer_norm::fuse(model)?,
        ..Rewritten::default()
    };
    for id in 0..model.nodes().len() {
        let node = model.node(id);
        let Some(input) = node.inputs.first() else {
            continue;
        };
        let input = model.outlet_fact(*input)?;
        if input.datum_type != f32::datum_type() {
            continue;
        }
        let output = node.outputs[0].fact.datum_type;
        let replacement: Box<dyn TypedOp> = if let Some(softmax) = node.op_as::<Softmax>() {
            let last = input.rank().checked_sub(1);
            if softmax.kind != SoftmaxKind::Softmax || softmax.axes.as_slice() != last.as_slice() {
                continue;
            }
            done.softmax += 1;
            Box::new(RowSoftmax)
        } else if let Some(quantize) = quantize_linear(node, output) {
            done.quantize += 1;
            Box::new(quantize)
        } else {
            continue;
        };
        model.node_mut(id).op = replacement;
    }
    Ok(done)
}

/// tract's QuantizeLinear from f32, as edgevit's op.
fn quantize_linear(node: &TypedNode, output: DatumType) -> Option<RowQuantize> {
    let mini = &node.op_as::<ElementWiseOp>()?.0;
    let (inverse_scale, zero_point) = if let Some(op) = mini.downcast_ref::<QuantizeLinearI8>() {
        (op.scale, op.zero_point as i32)
    } else if let Some(op) = mini.downcast_ref::<QuantizeLinearU8>() {
        (op.scale, op.zero_point as i32)
    } else {
        return None;
    };
    matches!(output.unquantized(), DatumType::I8 | DatumType::U8).then_some(RowQuantize {
        inverse_scale,
        zero_point,
        output,
    })
}
