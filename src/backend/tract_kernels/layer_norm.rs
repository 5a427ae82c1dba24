//! Finds layer norms in tract's optimised plan and fuses each into one op.
//!
//! tract has no layer-norm op: ONNX's LayerNormalization, and the ReduceMean-Sub-Pow-Sqrt-Div
//! chain PyTorch exports for it (DINOv2), become a row sum, a scaling to the mean, a
//! subtraction, and tract's own `RmsNorm` of the difference, each a pass over the tensor (the
//! subtraction, broadcast, is tract's generic and slowest one). The scale and bias that
//! follow are left to tract, which fuses them. tract may have moved the normalised axis off
//! the last place (DINOv2's norms run over axis 1 of [1, 384, 257]): the fused op takes any.

use super::ops::RowLayerNorm;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::{BinMiniOp, OptBinByScalar, OptBinUnicast, TypedBinOp};
use tract_onnx::tract_core::ops::math::{Div, Mul, Sub};
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer, RmsNorm};

/// Fuses every `RmsNorm(x - mean(x))`; returns how many.
pub fn fuse(model: &mut TypedModel) -> TractResult<usize> {
    let mut found = Vec::new();
    for node in model.nodes() {
        if let Some(found_one) = layer_norm_at(model, node)? {
            found.push(found_one);
        }
    }
    for (norm, x, axis, eps) in &found {
        let mut patch = TypedModelPatch::default();
        let input = patch.tap_model(model, *x)?;
        let name = format!("{}.layer_norm", model.node(*norm).name);
        let fused = patch.wire_node(
            name,
            RowLayerNorm {
                axis: *axis,
                eps: *eps,
            },
            &[input],
        )?;
        patch.shunt_outside(model, OutletId::new(*norm, 0), fused[0])?;
        patch.apply(model)?;
    }
    Ok(found.len())
}

/// The binary op of any of tract's forms of one.
fn binary(node: &TypedNode) -> Option<&dyn BinMiniOp> {
    if let Some(op) = node.op_as::<TypedBinOp>() {
        Some(op.0.as_ref())
    } else if let Some(op) = node.op_as::<OptBinByScalar>() {
        Some(op.binop.as_ref())
    } else {
        node.op_as::<OptBinUnicast>().map(|op| op.binop.as_ref())
    }
}

/// The one value of a constant scalar input.
fn scalar(model: &TypedModel, outlet: OutletId) -> Option<f32> {
    let konst = model.outlet_fact(outlet).ok()?.konst.clone()?;
    if konst.len() != 1 {
        return None;
    }
    konst.cast_to_scalar::<f32>().ok()
}

/// `node` as `RmsNorm(x - mean(x))` over an axis of f32 `x`: (node, x, axis, eps).
fn layer_norm_at(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<(usize, OutletId, usize, f32)>> {
    let Some(norm) = node.op_as::<RmsNorm>() else {
        return Ok(None);
    };
    let fact = model.outlet_fact(node.inputs[0])?;
    let Some(row_len) = (fact.shape.get(norm.axis)).and_then(|d| d.to_i64().ok()) else {
        return Ok(None);
    };
    if fact.datum_type != f32::datum_type() {
        return Ok(None);
    }
    let difference = model.node(node.inputs[0].node);
    if !binary(difference).is_some_and(|op| op.is::<Sub>()) || difference.inputs.len() != 2 {
        return Ok(None);
    }
    let (x, mean) = (difference.inputs[0], difference.inputs[1]);
    if mean_of(model, mean, x, norm.axis, row_len as usize) {
        let eps = norm.eps.cast_to_scalar::<f32>()?;
        Ok(Some((node.id, x, norm.axis, eps)))
    } else {
        Ok(None)
    }
}

/// Whether `outlet` is the mean of `x` over `axis`: its sum, multiplied or divided by
/// constants that come to 1 / `row_len`.
fn mean_of(
    model: &TypedModel,
    mut outlet: OutletId,
    x: OutletId,
    axis: usize,
    row_len: usize,
) -> bool {
    let mut factor = 1.0f64;
    // A sum and at most a couple of scalings (tract's forms of ReduceMean).
    for _ in 0..4 {
        let node = model.node(outlet.node);
        if let Some(reduce) = node.op_as::<Reduce>() {
            let summed = reduce.reducer == Reducer::Sum && reduce.axes.as_slice() == [axis];
            let mean = factor * row_len as f64;
            return summed && node.inputs[0] == x && (mean - 1.0).abs() < 1e-5;
        }
        let Some(op) = binary(node) else {
            return false;
        };
        let [a, b] = node.inputs.as_slice() else {
            return false;
        };
        let (next, constant) = match (scalar(model, *a), scalar(model, *b)) {
            (None, Some(c)) => (*a, c as f64),
            (Some(c), None) if op.is::<Mul>() => (*b, c as f64),
            _ => return false,
        };
        factor = if op.is::<Mul>() {
            factor * constant
        } else if op.is::<Div>() {
            factor / constant
        } else {
            return false;
        };
        outlet = next;
    }
    false
}
