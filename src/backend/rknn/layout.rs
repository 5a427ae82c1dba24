//! Between edgevit's NCHW float tensors and the layouts the NPU takes and gives.

use crate::preprocess::Normalization;

/// `[1, C, H, W]` normalised floats to NHWC 8-bit pixels (the converted model normalises
/// them again with the mean and std baked in at conversion). Reuses `out`.
pub fn nchw_to_nhwc_pixels(
    data: &[f32],
    [channels, height, width]: [usize; 3],
    normalization: &Normalization,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.reserve(data.len());
    let plane = height * width;
    for position in 0..plane {
        for c in 0..channels {
            let pixel = normalization.pixel(c, data[c * plane + position]);
            out.push(pixel.round().clamp(0.0, 255.0) as u8);
        }
    }
}

/// `[1, C, H, W]` floats to NHWC floats. Reuses `out`.
pub fn nchw_to_nhwc(data: &[f32], [channels, height, width]: [usize; 3], out: &mut Vec<f32>) {
    out.clear();
    out.reserve(data.len());
    let plane = height * width;
    for position in 0..plane {
        out.extend((0..channels).map(|c| data[c * plane + position]));
    }
}

/// A 4-D NHWC output as NCHW: the shape and the values.
pub fn nhwc_to_nchw(dims: [usize; 4], data: &[f32]) -> (Vec<usize>, Vec<f32>) {
    let [n, h, w, c] = dims;
    let mut out = Vec::with_capacity(data.len());
    for image in 0..n {
        let base = image * h * w * c;
        for channel in 0..c {
            out.extend((0..h * w).map(|position| data[base + position * c + channel]));
        }
    }
    (vec![n, c, h, w], out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ColorOrder, InputSpec, ResizePolicy};

    fn spec(mean: Vec<f32>, std: Vec<f32>) -> InputSpec {
        InputSpec {
            name: "x".into(),
            shape: [1, 3, 2, 2],
            color: ColorOrder::Rgb,
            scale: 255.0,
            mean,
            std,
            resize: ResizePolicy::Stretch,
            layout: Default::default(),
        }
    }

    #[test]
    fn pixels_come_back_from_the_normalised_tensor_in_nhwc() {
        let spec = spec(vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225]);
        let normalization = Normalization::from_spec(&spec);
        // Channel c, position p holds pixel 10 * c + p + 1.
        let pixels: Vec<u8> = (0..3)
            .flat_map(|c| (0..4).map(move |p| (10 * c + p + 1) as u8))
            .collect();
        let (mean, std) = (&spec.mean, &spec.std);
        let nchw: Vec<f32> = pixels
            .iter()
            .enumerate()
            .map(|(i, &p)| (p as f32 / 255.0 - mean[i / 4]) / std[i / 4])
            .collect();
        let mut out = Vec::new();
        nchw_to_nhwc_pixels(&nchw, [3, 2, 2], &normalization, &mut out);
        assert_eq!(out, [1, 11, 21, 2, 12, 22, 3, 13, 23, 4, 14, 24]);
    }

    #[test]
    fn out_of_range_values_saturate() {
        let normalization = Normalization::from_spec(&spec(vec![], vec![]));
        let mut out = vec![7; 40];
        nchw_to_nhwc_pixels(&[-1.0, 2.0, 0.25, 0.0], [1, 2, 2], &normalization, &mut out);
        assert_eq!(out, [0, 255, 64, 0]);
    }

    #[test]
    fn nhwc_and_nchw_are_inverse() {
        let nchw: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let mut nhwc = Vec::new();
        nchw_to_nhwc(&nchw, [3, 2, 4], &mut nhwc);
        assert_eq!(&nhwc[..6], &[0.0, 8.0, 16.0, 1.0, 9.0, 17.0]);
        let (shape, back) = nhwc_to_nchw([1, 2, 4, 3], &nhwc);
        assert_eq!(shape, [1, 3, 2, 4]);
        assert_eq!(back, nchw);
    }
}
