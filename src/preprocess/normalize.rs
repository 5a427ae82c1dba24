//! 8-bit pixels to the normalised NCHW f32 tensor.

use super::resize::Placement;
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
        self.to_nchw_into(raster, color, Vec::new())
    }

    /// [`Normalization::to_nchw`] into `buffer` (whatever it held is overwritten; its
    /// allocation is reused).
    pub fn to_nchw_into(&self, raster: &Raster, color: ColorOrder, buffer: Vec<f32>) -> Tensor {
        let (w, h) = (raster.width as usize, raster.height as usize);
        let src_channels = (raster.channels as usize).max(1);
        let channels = self.factors.len();
        let mut data = buffer;
        data.clear();
        data.reserve(channels * w * h);
        for (c, &(mul, add)) in self.factors.iter().enumerate() {
            let src_c = match color {
                ColorOrder::Bgr => 2 - c,
                _ => c.min(src_channels - 1),
            };
            let pixels = &raster.data;
            match src_channels {
                1 => extend_channel::<1>(&mut data, pixels, w * h, src_c, mul, add),
                3 => extend_channel::<3>(&mut data, pixels, w * h, src_c, mul, add),
                n => data.extend(
                    pixels
                        .chunks_exact(n)
                        .take(w * h)
                        .map(|p| p[src_c] as f32 * mul + add),
                ),
            }
        }
        Tensor::new_nchw([1, channels, h, w], data)
    }
}

/// Appends channel `channel` of the first `count` pixels (`N` levels each) normalised. Pixels
/// as arrays of a size known at compile time let the loop become vector code.
fn extend_channel<const N: usize>(
    data: &mut Vec<f32>,
    pixels: &[u8],
    count: usize,
    channel: usize,
    mul: f32,
    add: f32,
) {
    let (pixels, _) = pixels.as_chunks::<N>();
    let channel = channel.min(N - 1);
    data.extend(
        pixels
            .iter()
            .take(count)
            .map(|p| p[channel] as f32 * mul + add),
    );
}

/// The model input written pixel by pixel in one pass: the 8-bit raster (kept for drawing and
/// crops) and the normalised tensor together, into reused buffers. Converting camera YUV
/// this way reads each resampled pixel once.
pub(super) struct InputWriter<'a> {
    pub normalization: &'a Normalization,
    pub color: ColorOrder,
    /// Where the pixels go; what the target leaves (letterbox) is black.
    pub placement: &'a Placement,
    pub width: u32,
    pub height: u32,
    pub raster: Vec<u8>,
    pub tensor: Vec<f32>,
}

/// Pixels converted per step: three planes of this many levels stay in L1 cache, and plain
/// loops over them compile to vector instructions.
const STEP: usize = 64;

impl InputWriter<'_> {
    /// Writes the placement's target. `convert(first, [r, g, b])` fills the three planes with
    /// the levels of the target's pixels `first..first + r.len()` (counted row by row); grey
    /// models take their luma, Pillow's weights.
    pub fn write(self, mut convert: impl FnMut(usize, [&mut [u8]; 3])) -> (Raster, Tensor) {
        let (w, h) = (self.width as usize, self.height as usize);
        let plane = w * h;
        let factors = &self.normalization.factors;
        let channels = factors.len();
        let target = self.placement.target;
        let (x0, y0) = (target.x as usize, target.y as usize);
        let (tw, th) = (target.width as usize, target.height as usize);
        let pads = (x0, y0, tw, th) != (0, 0, w, h);
        let (mut raster, mut tensor) = (self.raster, self.tensor);
        // A full target overwrites every value: only a padded one needs its black first.
        if pads || raster.len() != plane * channels {
            raster.clear();
            raster.resize(plane * channels, 0);
        }
        if pads || tensor.len() != plane * channels {
            tensor.clear();
            for &(_, black) in factors {
                tensor.resize(tensor.len() + plane, black);
            }
        }
        // The steps of each row: (its first pixel in the target, where that pixel lies in a
        // plane, how many pixels).
        let steps = (0..th.min(h.saturating_sub(y0))).flat_map(|row| {
            let start = (y0 + row) * w + x0;
            let len = tw.min(w.saturating_sub(x0));
            (0..len)
                .step_by(STEP)
                .map(move |x| (row * tw + x, start + x, STEP.min(len - x)))
        });
        let mut levels = [[0u8; STEP]; 3];
        let (first_plane, rest) = tensor.split_at_mut(plane);
        let (second_plane, third_plane) = rest.split_at_mut(plane.min(rest.len()));
        for (pixel, at, n) in steps {
            let [r, g, b] = &mut levels;
            let (r, g, b) = (&mut r[..n], &mut g[..n], &mut b[..n]);
            convert(pixel, [&mut *r, &mut *g, &mut *b]);
            if channels == 1 {
                let (mul, add) = factors[0];
                let out = first_plane[at..at + n].iter_mut();
                let lines = out
                    .zip(&mut raster[at..at + n])
                    .zip(r.iter().zip(&*g).zip(&*b));
                for ((value, level), ((&r, &g), &b)) in lines {
                    *level = super::color::luma([r, g, b]);
                    *value = *level as f32 * mul + add;
                }
                continue;
            }
            for (level, ((&r, &g), &b)) in raster[at * 3..(at + n) * 3]
                .chunks_exact_mut(3)
                .zip(r.iter().zip(&*g).zip(&*b))
            {
                level.copy_from_slice(&[r, g, b]);
            }
            // Each of R, G, B into its plane with its factors, in the model's channel order.
            let (red, blue) = match self.color {
                ColorOrder::Bgr => (2, 0),
                _ => (0, 2),
            };
            let planes = [&mut *first_plane, &mut *second_plane, &mut *third_plane];
            for (c, source) in [(red, &*r), (1, &*g), (blue, &*b)] {
                let (mul, add) = factors[c];
                for (value, &level) in planes[c][at..at + n].iter_mut().zip(source) {
                    *value = level as f32 * mul + add;
                }
            }
        }
        (
            Raster {
                width: self.width,
                height: self.height,
                channels: channels as u8,
                data: raster,
            },
            Tensor::new_nchw([1, channels, h, w], tensor),
        )
    }
}

/// `[1, C, H, W]` as `[1, H, W, C]`.
pub fn nchw_to_nhwc(tensor: &Tensor) -> Tensor {
    let &[n, c, h, w] = tensor.shape() else {
        return tensor.clone();
    };
    let data = tensor.data();
    let plane = h * w;
    let mut out = Vec::with_capacity(data.len());
    for image in data.chunks_exact((c * plane).max(1)) {
        for p in 0..plane {
            out.extend((0..c).map(|channel| image[channel * plane + p]));
        }
    }
    // The same number of values in another order: the shape always fits.
    Tensor::new(vec![n, h, w, c], out).unwrap_or_else(|_| tensor.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResizePolicy;

    fn spec(color: ColorOrder) -> InputSpec {
        InputSpec {
            name: "x".into(),
            shape: [1, color.channels(), 4, 4],
            color,
            scale: 255.0,
            mean: vec![0.485, 0.456, 0.406][..color.channels()].to_vec(),
            std: vec![0.229, 0.224, 0.225][..color.channels()].to_vec(),
            resize: ResizePolicy::Letterbox,
            layout: Default::default(),
        }
    }

    /// Writes a 4x2 picture letterboxed into 4x4, twice into the same buffers.
    fn write(color: ColorOrder) -> (Raster, Tensor) {
        let normalization = Normalization::from_spec(&spec(color));
        let placement = Placement::new(ResizePolicy::Letterbox, 8, 4, 4, 4);
        let pixels = |first: usize, [r, g, b]: [&mut [u8]; 3]| {
            for (k, ((r, g), b)) in r.iter_mut().zip(g).zip(b).enumerate() {
                let i = (first + k) as u8;
                (*r, *g, *b) = (i * 30, 255 - i * 30, i * 7);
            }
        };
        let writer = |raster, tensor| InputWriter {
            normalization: &normalization,
            color,
            placement: &placement,
            width: 4,
            height: 4,
            raster,
            tensor,
        };
        let (raster, tensor) = writer(vec![9; 3], vec![]).write(pixels);
        // A second frame into the first one's buffers gives the same values.
        let again = writer(raster.data.clone(), tensor.data().to_vec()).write(pixels);
        assert_eq!(again, (raster.clone(), tensor.clone()));
        (raster, tensor)
    }

    #[test]
    fn writing_in_one_pass_matches_normalising_the_raster() {
        for color in [ColorOrder::Rgb, ColorOrder::Bgr, ColorOrder::Gray] {
            let (raster, tensor) = write(color);
            let channels = color.channels();
            assert_eq!(raster.channels as usize, channels);
            assert_eq!(tensor.shape(), [1, channels, 4, 4]);
            // Rows 0 and 3 are padding: black.
            let row = 4 * channels;
            assert!(raster.data[..row].iter().all(|&v| v == 0), "{color:?}");
            assert!(raster.data[3 * row..].iter().all(|&v| v == 0), "{color:?}");
            let first = [0, 255, 0];
            let expected_first = match color {
                ColorOrder::Gray => vec![super::super::color::luma(first)],
                _ => first.to_vec(),
            };
            assert_eq!(raster.data[row..row + channels], expected_first[..]);
            let normalization = Normalization::from_spec(&spec(color));
            assert_eq!(tensor, normalization.to_nchw(&raster, color), "{color:?}");
        }
    }

    #[test]
    fn bgr_models_get_blue_first() {
        let normalization = Normalization::from_spec(&spec(ColorOrder::Bgr));
        let raster = Raster {
            width: 1,
            height: 1,
            channels: 3,
            data: vec![255, 0, 0],
        };
        let tensor = normalization.to_nchw(&raster, ColorOrder::Bgr);
        // Blue (0) first, with the first mean and std (the model's order); red (255) last.
        let blue = (0.0 - 0.485) / 0.229;
        let red = (1.0 - 0.406) / 0.225;
        assert!(
            (tensor.data()[0] - blue).abs() < 1e-5,
            "{:?}",
            tensor.data()
        );
        assert!((tensor.data()[2] - red).abs() < 1e-5, "{:?}", tensor.data());
    }

    #[test]
    fn nhwc_holds_each_pixel_s_channels_together() {
        // Two channels of a 1x3 image: R = 0 1 2, G = 10 11 12.
        let nchw = Tensor::new(vec![1, 2, 1, 3], vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0]).unwrap();
        let nhwc = nchw_to_nhwc(&nchw);
        assert_eq!(nhwc.shape(), [1, 1, 3, 2]);
        assert_eq!(nhwc.data(), [0.0, 10.0, 1.0, 11.0, 2.0, 12.0]);
    }
}
