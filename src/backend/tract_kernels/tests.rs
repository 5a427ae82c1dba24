//! edgevit's row kernels (the `edgevit-kernels` crate) against f64 arithmetic and against
//! tract's own QuantizeLinear, in both builds the CPU can run.

use edgevit_kernels::{
    baseline, has_avx2, layer_norm_columns, layer_norm_rows, quantize_i8, quantize_u8, softmax_rows,
};

/// Values from a fixed generator, spread over [-scale, scale].
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn softmax_reference(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
    let exps: Vec<f64> = row.iter().map(|&x| (x as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

type Kernel = unsafe fn(&mut [f32], usize);

/// The AVX2 build of the softmax, where the CPU runs it.
fn avx2_softmax() -> Option<(&'static str, Kernel)> {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        return Some(("avx2", edgevit_kernels::avx2::softmax_rows));
    }
    None
}

/// Both builds (and the one dispatched) against f64 arithmetic, on row lengths around the
/// lanes and a ViT's token counts, with logits up to +-60 (far tails flushed).
#[test]
fn softmax_rows_match_f64_softmax() {
    let kernels = [("baseline", baseline::softmax_rows as Kernel)]
        .into_iter()
        .chain(avx2_softmax());
    for (name, kernel) in kernels {
        for row_len in [1, 3, 8, 9, 50, 197, 257] {
            let input = values(row_len * 5, row_len as u64, 60.0);
            let mut out = input.clone();
            // SAFETY: the AVX2 build is listed only where the CPU has it.
            unsafe { kernel(&mut out, row_len) };
            let mut dispatched = input.clone();
            softmax_rows(&mut dispatched, row_len);
            for (row, got) in input.chunks(row_len).zip(out.chunks(row_len)) {
                let want = softmax_reference(row);
                let sum: f32 = got.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "{name} {row_len}: sums to {sum}");
                for (g, w) in got.iter().zip(&want) {
                    let err = (*g as f64 - w).abs();
                    assert!(err <= 1e-6 + 1e-5 * w, "{name} {row_len}: {g} for {w}");
                }
            }
            let picked = if has_avx2() { "avx2" } else { "baseline" };
            if name == picked {
                assert_eq!(out, dispatched, "{name}: the dispatched build differs");
            }
        }
    }
}

#[test]
fn layer_norm_rows_match_f64_layer_norm() {
    for row_len in [2, 8, 13, 192, 384] {
        let mut input = values(row_len * 4, 7 + row_len as u64, 3.0);
        // A large common offset: the mean must be taken out before the variance.
        input.iter_mut().for_each(|x| *x += 100.0);
        let mut out = input.clone();
        layer_norm_rows(&mut out, row_len, 1e-6);
        for (row, got) in input.chunks(row_len).zip(out.chunks(row_len)) {
            let n = row_len as f64;
            let mean = row.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = row.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
            for (g, &x) in got.iter().zip(row) {
                let want = (x as f64 - mean) / (var + 1e-6).sqrt();
                assert!((*g as f64 - want).abs() < 2e-4, "{row_len}: {g} for {want}");
            }
        }
    }
}

/// The columns of a block normalised as rows would be: the block is the transpose of rows.
#[test]
fn layer_norm_columns_match_layer_norm_rows_transposed() {
    for (len, width) in [(384, 257), (13, 5), (192, 1)] {
        let mut rows = values(len * width, (len + width) as u64, 3.0);
        rows.iter_mut().for_each(|x| *x += 50.0);
        // rows: `width` norms of `len` values each; block: the same, one norm per column.
        let mut block: Vec<f32> = (0..len * width)
            .map(|k| rows[(k % width) * len + k / width])
            .collect();
        layer_norm_rows(&mut rows, len, 1e-6);
        layer_norm_columns(&mut block, width, 1e-6);
        for k in 0..len * width {
            let want = rows[(k % width) * len + k / width];
            assert!(
                (block[k] - want).abs() < 1e-4,
                "{len}x{width} at {k}: {} for {want}",
                block[k]
            );
        }
    }
}

/// Bit for bit what tract's own QuantizeLinear gives, ties and saturation included.
#[test]
fn quantize_is_tracts_quantize_linear() {
    use tract_onnx::tract_core::ops::quant::{quantize_linear_f32_i8, quantize_linear_f32_u8};
    let mut x = values(4096, 3, 300.0);
    // Exact ties at the scale: x * 2 = k + 0.5.
    x.extend((-300..300).map(|k| (k as f32 + 0.5) / 2.0));
    // (Past 2^31 after scaling, tract's own op overflows its i32: not compared.)
    x.extend([0.0, -0.0, 1e6, -1e6, 1e-30, f32::NAN]);
    for zero_point in [-3, 0, 17] {
        let mut signed = vec![0i8; x.len()];
        quantize_i8(&x, &mut signed, 2.0, zero_point);
        let mut unsigned = vec![0u8; x.len()];
        quantize_u8(&x, &mut unsigned, 2.0, zero_point + 100);
        for (i, &v) in x.iter().enumerate() {
            assert_eq!(signed[i], quantize_linear_f32_i8(v, 2.0, zero_point), "{v}");
            let want = quantize_linear_f32_u8(v, 2.0, zero_point + 100);
            assert_eq!(unsigned[i], want, "{v}");
        }
    }
    let mut extremes = [0i8; 2];
    quantize_i8(&[f32::INFINITY, f32::MIN], &mut extremes, 2.0, 5);
    assert_eq!(extremes, [127, -128]);
}
