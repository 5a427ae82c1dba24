//! The row kernels behind edgevit's ops in tract's plan: softmax, layer norm and
//! QuantizeLinear over rows of f32 (edgevit's `backend::tract_kernels`, which tests them).
//!
//! Each is written once as plain loops over lanes of 8 that the compiler vectorises, and
//! compiled twice on x86-64: for the baseline (SSE2) and with AVX2 and FMA, picked at run time.
//! On aarch64, NEON is the baseline and the plain loops vectorise to it. Float sums are kept
//! in 8 lanes: without them the compiler may not reorder a sum, and would not vectorise it.

/// 1.5 x 2^23: adding and subtracting it rounds an f32 of magnitude below 2^22 to the
/// nearest integer, ties to even, in any instruction set (`round_ties_even` is a library
/// call without SSE4.1).
const ROUND: f32 = 12_582_912.0;
/// ROUND's bits: ROUND + k, for an integer k of magnitude below 2^22, has the bits ROUND_BITS + k.
const ROUND_BITS: u32 = 0x4B40_0000;
const LANES: usize = 8;

/// exp(x) for x <= 0 (a value less its row's maximum): Cody-Waite reduction to
/// r in [-ln2/2, ln2/2] and a degree-5 polynomial, the arithmetic of tract's own x86 softmax
/// kernel (relative error about 1e-7). Below -87 the result is flushed to exp(-87)'s order,
/// which a row sum that includes exp(0) = 1 cannot tell from 0.
#[inline(always)]
fn exp_non_positive(x: f32) -> f32 {
    let x = if x < -87.0 { -87.0 } else { x };
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = x - k * 0.693_145_75 - k * 1.428_606_8e-6;
    let mut p = 8.297_654e-3_f32;
    p = p * r + 4.191_538_2e-2;
    p = p * r + 1.666_757_5e-1;
    p = p * r + 4.999_889_5e-1;
    p = p * r + 9.999_997e-1;
    p = p * r + 1.000_000_1;
    // 2^k, k in [-126, 0]: a normal float's exponent field. k is read from the bits of the
    // rounded sum (ROUND's bits plus k) rather than cast: a float-to-int cast saturates in
    // Rust, and that keeps the loop from vectorising.
    let k_bits = shifted.to_bits().wrapping_sub(ROUND_BITS);
    let two_k = f32::from_bits(k_bits.wrapping_add(127) << 23);
    p * two_k
}

#[inline(always)]
fn row_max(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = if x > *lane { x } else { *lane };
        }
    }
    (lanes.iter().chain(chunks.remainder()))
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

#[inline(always)]
fn row_sum(row: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += x;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

#[inline(always)]
fn softmax_row(row: &mut [f32]) {
    let max = row_max(row);
    let mut lanes = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk.iter_mut()) {
            *x = exp_non_positive(*x - max);
            *lane += *x;
        }
    }
    let mut sum = lanes.iter().sum::<f32>();
    for x in chunks.into_remainder() {
        *x = exp_non_positive(*x - max);
        sum += *x;
    }
    let scale = 1.0 / sum;
    for x in row.iter_mut() {
        *x *= scale;
    }
}

/// (x - mean) / sqrt(variance + eps), the variance over the row (biased, as ONNX's
/// LayerNormalization and PyTorch's layer norm take it).
#[inline(always)]
fn layer_norm_row(row: &mut [f32], eps: f32) {
    let n = row.len() as f32;
    let mean = row_sum(row) / n;
    let mut lanes = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk.iter_mut()) {
            *x -= mean;
            *lane += *x * *x;
        }
    }
    let mut squares = lanes.iter().sum::<f32>();
    for x in chunks.into_remainder() {
        *x -= mean;
        squares += *x * *x;
    }
    let scale = 1.0 / (squares / n + eps).sqrt();
    for x in row.iter_mut() {
        *x *= scale;
    }
}

/// The 8-bit integers QuantizeLinear makes.
trait Quantized: Copy {
    const LOWEST: i32;
    const HIGHEST: i32;
    /// `value`, already in [LOWEST, HIGHEST].
    fn from_i32(value: i32) -> Self;
}

impl Quantized for i8 {
    const LOWEST: i32 = i8::MIN as i32;
    const HIGHEST: i32 = i8::MAX as i32;
    fn from_i32(value: i32) -> Self {
        value as i8
    }
}

impl Quantized for u8 {
    const LOWEST: i32 = u8::MIN as i32;
    const HIGHEST: i32 = u8::MAX as i32;
    fn from_i32(value: i32) -> Self {
        value as u8
    }
}

/// Layer norm down the columns of a block of rows of `width` values: each column normalised
/// over the rows. Where tract keeps a layer norm's axis off the last place, the values of one
/// norm are a column, and the columns side by side vectorise as the rows of one would.
#[inline(always)]
fn normalize_columns(block: &mut [f32], width: usize, eps: f32) {
    let rows = (block.len() / width.max(1)) as f32;
    let mut mean = vec![0.0f32; width];
    let mut squares = vec![0.0f32; width];
    for row in block.chunks_exact(width) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += x;
        }
    }
    for m in mean.iter_mut() {
        *m /= rows;
    }
    for row in block.chunks_exact_mut(width) {
        for ((x, m), s) in row.iter_mut().zip(&mean).zip(squares.iter_mut()) {
            *x -= m;
            *s += *x * *x;
        }
    }
    for s in squares.iter_mut() {
        *s = 1.0 / (*s / rows + eps).sqrt();
    }
    for row in block.chunks_exact_mut(width) {
        for (x, s) in row.iter_mut().zip(&squares) {
            *x *= s;
        }
    }
}

/// ONNX QuantizeLinear as tract evaluates it: round(x * inverse_scale) + zero_point, ties to
/// even, saturated to the output type's range. Saturating before rounding gives the same
/// result, the bounds being integers.
#[inline(always)]
fn quantize<T: Quantized>(x: &[f32], y: &mut [T], inverse_scale: f32, zero_point: i32) {
    let below = (T::LOWEST - zero_point) as f32;
    let above = (T::HIGHEST - zero_point) as f32;
    for (x, y) in x.iter().zip(y.iter_mut()) {
        let v = x * inverse_scale;
        let v = if v < below {
            below
        } else if v > above {
            above
        } else {
            v
        };
        // The rounded value from the bits of the sum, not a (saturating, scalar) cast.
        let rounded = (v + ROUND).to_bits().wrapping_sub(ROUND_BITS) as i32;
        *y = T::from_i32(rounded + zero_point);
    }
}

/// Rows of `row_len` values, each independent.
#[inline(always)]
fn each_row(data: &mut [f32], row_len: usize, f: impl Fn(&mut [f32])) {
    for row in data.chunks_exact_mut(row_len.max(1)) {
        f(row);
    }
}

/// The kernels compiled for one instruction set.
macro_rules! kernels {
    ($doc:literal, $name:ident $(, #[$attr:meta])*) => {
        #[doc = $doc]
        ///
        /// # Safety
        /// Each function needs the CPU features its module is compiled for.
        pub mod $name {
            /// Softmax over each row, in place.
            /// # Safety
            /// See the module.
            $(#[$attr])*
            pub unsafe fn softmax_rows(data: &mut [f32], row_len: usize) {
                super::each_row(data, row_len, super::softmax_row)
            }
            /// Layer norm (no scale, no bias) over each row, in place.
            /// # Safety
            /// See the module.
            $(#[$attr])*
            pub unsafe fn layer_norm_rows(data: &mut [f32], row_len: usize, eps: f32) {
                super::each_row(data, row_len, |row| super::layer_norm_row(row, eps))
            }
            /// Layer norm (no scale, no bias) down the columns of a block, in place.
            /// # Safety
            /// See the module.
            $(#[$attr])*
            pub unsafe fn layer_norm_columns(block: &mut [f32], width: usize, eps: f32) {
                super::normalize_columns(block, width, eps)
            }
            /// QuantizeLinear of `x` into `y`, signed.
            /// # Safety
            /// See the module.
            $(#[$attr])*
            pub unsafe fn quantize_i8(x: &[f32], y: &mut [i8], inverse_scale: f32, zero_point: i32) {
                super::quantize(x, y, inverse_scale, zero_point)
            }
            /// QuantizeLinear of `x` into `y`, unsigned.
            /// # Safety
            /// See the module.
            $(#[$attr])*
            pub unsafe fn quantize_u8(x: &[f32], y: &mut [u8], inverse_scale: f32, zero_point: i32) {
                super::quantize(x, y, inverse_scale, zero_point)
            }
        }
    };
}

kernels!(
    "The kernels for the target's baseline instruction set.",
    baseline
);
#[cfg(target_arch = "x86_64")]
kernels!(
    "The kernels with AVX2 and FMA, for CPUs where [`has_avx2`] says so.",
    avx2,
    #[target_feature(enable = "avx2,fma")]
);

/// Whether this CPU runs the AVX2 build of the kernels.
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Calls the AVX2 build where the CPU has it, the baseline build otherwise.
macro_rules! dispatch {
    ($kernel:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU has the features this build was compiled for (checked above).
            return unsafe { avx2::$kernel($($arg),*) };
        }
        // SAFETY: the baseline build needs no feature beyond the target's.
        unsafe { baseline::$kernel($($arg),*) }
    }};
}

/// Softmax over each row of `row_len` values of `data`, in place.
pub fn softmax_rows(data: &mut [f32], row_len: usize) {
    dispatch!(softmax_rows(data, row_len))
}

/// Layer norm without its scale and bias over each row of `row_len` values, in place.
pub fn layer_norm_rows(data: &mut [f32], row_len: usize, eps: f32) {
    dispatch!(layer_norm_rows(data, row_len, eps))
}

/// Layer norm without its scale and bias down the columns of `block` (rows of `width`
/// values), in place.
pub fn layer_norm_columns(block: &mut [f32], width: usize, eps: f32) {
    dispatch!(layer_norm_columns(block, width, eps))
}

/// QuantizeLinear of `x` into signed `y`. (Not generic: a generic function would be compiled
/// in the crate that calls it, at that crate's optimisation level.)
pub fn quantize_i8(x: &[f32], y: &mut [i8], inverse_scale: f32, zero_point: i32) {
    dispatch!(quantize_i8(x, y, inverse_scale, zero_point))
}

/// QuantizeLinear of `x` into unsigned `y`.
pub fn quantize_u8(x: &[f32], y: &mut [u8], inverse_scale: f32, zero_point: i32) {
    dispatch!(quantize_u8(x, y, inverse_scale, zero_point))
}
