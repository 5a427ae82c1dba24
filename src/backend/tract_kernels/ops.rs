//! edgevit's ops in tract's optimised plan, each over rows (or blocks) of its input, split
//! across tract's threads by whole rows, as tract's own ops are.

use edgevit_kernels as rows;
use tract_linalg::multithread::par_chunks_mut;
use tract_onnx::tract_core::internal::*;

/// In-place work on blocks of `block` f32 values each, split across tract's threads by whole
/// blocks: `kernel` gets one or more blocks at a time.
fn map_blocks(
    mut tensor: Tensor,
    block: usize,
    kernel: impl Fn(&mut [f32]) + Sync + Send,
) -> TractResult<TVec<TValue>> {
    ensure!(block > 0, "empty rows");
    {
        let mut plain = tensor.try_as_plain_ram_mut()?;
        let data = plain.as_slice_mut::<f32>()?;
        let total = data.len();
        par_chunks_mut(data, block, total, |_, blocks| {
            kernel(blocks);
            Ok(())
        })?;
    }
    Ok(tvec!(tensor.into_tvalue()))
}

/// Softmax over the last axis (the attention maps' keys), for tract's `Softmax`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowSoftmax;

impl Op for RowSoftmax {
    fn name(&self) -> StaticName {
        "RowSoftmax".into()
    }
    op_as_typed_op!();
}

impl EvalOp for RowSoftmax {
    op_out_of_plan!();

    fn eval(&self, _: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let tensor = args_1!(inputs).into_tensor();
        let row_len = *tensor.shape().last().context("a scalar has no rows")?;
        map_blocks(tensor, row_len, |rows| rows::softmax_rows(rows, row_len))
    }
}

impl TypedOp for RowSoftmax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].without_value()))
    }
    as_op!();
}

/// Layer norm over one axis without its scale and bias (those stay tract's), for tract's
/// decomposition of it: the sum over the axis, the mean taken out, and `RmsNorm` of that.
#[derive(Debug, Clone, PartialEq)]
pub struct RowLayerNorm {
    pub axis: usize,
    pub eps: f32,
}

impl Eq for RowLayerNorm {}

impl std::hash::Hash for RowLayerNorm {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.axis.hash(state);
        self.eps.to_bits().hash(state)
    }
}

impl Op for RowLayerNorm {
    fn name(&self) -> StaticName {
        "RowLayerNorm".into()
    }
    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("axis: {} eps: {}", self.axis, self.eps)])
    }
    op_as_typed_op!();
}

impl EvalOp for RowLayerNorm {
    op_out_of_plan!();

    fn eval(&self, _: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let tensor = args_1!(inputs).into_tensor();
        let shape = tensor.shape();
        let len = *shape.get(self.axis).context("the axis is past the rank")?;
        // Each block is [len, inner]: the norm runs down the columns (rows where inner is 1).
        let inner: usize = shape[self.axis + 1..].iter().product();
        let eps = self.eps;
        map_blocks(tensor, len * inner, |blocks| {
            if inner == 1 {
                rows::layer_norm_rows(blocks, len, eps);
            } else {
                for block in blocks.chunks_exact_mut(len * inner) {
                    rows::layer_norm_columns(block, inner, eps);
                }
            }
        })
    }
}

impl TypedOp for RowLayerNorm {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].without_value()))
    }
    as_op!();
}

/// QuantizeLinear of f32 to 8 bits, for tract's `QuantizeLinearI8` and `QuantizeLinearU8`:
/// the same arithmetic, vectorised.
#[derive(Debug, Clone, PartialEq)]
pub struct RowQuantize {
    /// 1 / the ONNX scale, as tract's op holds it.
    pub inverse_scale: f32,
    pub zero_point: i32,
    /// The output's type: i8 or u8, or their quantized forms (QI8, QU8) tract gives it.
    pub output: DatumType,
}

impl Eq for RowQuantize {}

impl std::hash::Hash for RowQuantize {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inverse_scale.to_bits().hash(state);
        self.zero_point.hash(state);
        self.output.hash(state);
    }
}

impl Op for RowQuantize {
    fn name(&self) -> StaticName {
        "RowQuantize".into()
    }
    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "1/scale: {} zero_point: {} to {:?}",
            self.inverse_scale, self.zero_point, self.output
        )])
    }
    op_as_typed_op!();
}

impl RowQuantize {
    /// `kernel` from `input` into a new tensor of the output type, whose items are `T`.
    fn quantize<T: Datum>(
        &self,
        input: &Tensor,
        kernel: fn(&[f32], &mut [T], f32, i32),
    ) -> TractResult<Tensor> {
        let mut output = Tensor::zero_dt(self.output, input.shape())?;
        let plain = input.try_as_plain_ram()?;
        let x = plain.as_slice::<f32>()?;
        {
            let mut out = output.try_as_plain_ram_mut()?;
            let y = out.as_slice_mut::<T>()?;
            let total = y.len();
            let (inverse_scale, zero_point) = (self.inverse_scale, self.zero_point);
            par_chunks_mut(y, 1, total, |first, chunk| {
                kernel(
                    &x[first..first + chunk.len()],
                    chunk,
                    inverse_scale,
                    zero_point,
                );
                Ok(())
            })?;
        }
        Ok(output)
    }
}

impl EvalOp for RowQuantize {
    op_out_of_plan!();

    fn eval(&self, _: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let output = match self.output.unquantized() {
            DatumType::I8 => self.quantize(&input, rows::quantize_i8)?,
            DatumType::U8 => self.quantize(&input, rows::quantize_u8)?,
            other => bail!("RowQuantize to {other:?}"),
        };
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for RowQuantize {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(self.output.fact(inputs[0].shape.clone())))
    }
    as_op!();
}
