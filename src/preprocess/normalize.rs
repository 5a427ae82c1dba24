//! 8-bit pixels to the normalised NCHW f32 tensor.

use super::Raster;
use crate::model::{ColorOrder, InputSpec};
use crate::tensor::Tensor;

/// `x = (pixel / scale - mean[c]) / std[c]`, folded into one multiply-add per value.
#[derive(Debug, Clone)]
pub struct Normalization {
    /// Per input channel (in the model's channel order): multiplier and offset.
    factors: Vec<(f32, f32)>,
}

impl Normalization {
    pub fn from_spec(spec: &InputSpec) -> Self {
        let per_channel = |values: &[f32], c: usize, default: f32| match values {
            [] => default,
            [one] => *one,
            many => many[c],
        };
        let factors = (0..spec.channels())
            .map(|c| {
                let mean = per_channel(&spec.mean, c, 0.0);
                let std = per_channel(&spec.std, c, 1.0);
                (1.0 / (spec.scale * std), -mean / std)
            })
            .collect();
        Normalization { factors }
    }

    /// The 8-bit pixel value (before rounding) that normalises to `value` in channel
    /// `channel`: for runtimes that normalise themselves (an RKNN model with its mean and
    /// std baked in takes pixels).
    pub fn pixel(&self, channel: usize, value: f32) -> f32 {
        let (mul, add) = self.factors[channel.min(self.factors.len() - 1)];
        (value - add) / mul
    }

    /// Lays out `raster` (grey, or RGB) as `[1, C, H, W]` in the model's channel order.
    pub fn to_nchw(&self, raster: &Raster, color: ColorOrder) -> Tensor {
        let (w, h) = (raster.width as usize, raster.height as usize);
        let src_channels = raster.channels as usize;
        let channels = self.factors.len();
        let mut data = Vec::with_capacity(channels * w * h);
        for (c, (mul, add)) in self.factors.iter().enumerate() {
            let src_c = match color {
                ColorOrder::Bgr => 2 - c,
                _ => c.min(src_channels - 1),
            };
            data.extend(
                raster.data[src_c..]
                    .iter()
                    .step_by(src_channels)
                    .take(w * h)
                    .map(|&p| p as f32 * mul + add),
            );
        }
        Tensor::new_nchw([1, channels, h, w], data)
    }
}
