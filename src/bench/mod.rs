//! Latency measurement for `edgevit bench` and `cargo bench`: medians, never assertions.

pub mod frames;
pub mod pipeline;
pub mod plot;
pub mod scene;

use crate::backend::{BackendError, InferenceBackend};
pub use crate::numbers::{percentile, round3};
use crate::tensor::Tensor;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Latency of repeated inferences, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub iterations: usize,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub min_ms: f64,
}

/// A deterministic input of the given shape with values in [-1, 1) (an LCG, so runs compare).
pub fn synthetic_input(shape: [usize; 4]) -> Tensor {
    let mut state: u32 = 0x2545_f491;
    let data = (0..shape.iter().product::<usize>())
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect();
    Tensor::new_nchw(shape, data)
}

/// Runs `warmup` untimed inferences, then times `iterations` of them; `None` when `stop` was
/// set first (a benchmark cut short measures nothing worth printing).
pub fn measure(
    backend: &mut dyn InferenceBackend,
    input: &Tensor,
    warmup: usize,
    iterations: usize,
    stop: &AtomicBool,
) -> Result<Option<Timing>, BackendError> {
    let stopped = || stop.load(Ordering::SeqCst);
    for _ in 0..warmup {
        if stopped() {
            return Ok(None);
        }
        backend.run(input)?;
    }
    let mut samples = Vec::with_capacity(iterations.max(1));
    for _ in 0..iterations.max(1) {
        if stopped() {
            return Ok(None);
        }
        let start = Instant::now();
        backend.run(input)?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Some(Timing {
        iterations: samples.len(),
        median_ms: round3(percentile(&mut samples, 0.5)),
        p90_ms: round3(percentile(&mut samples, 0.9)),
        min_ms: round3(percentile(&mut samples, 0.0)),
    }))
}
