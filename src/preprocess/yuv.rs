//! Camera YUV straight to the model's size: the planes are resampled in their own layout
//! first, and only the model-sized result is converted to RGB. At 1080p that converts 50
//! thousand pixels instead of 2 million, and nothing of full size is written.
//!
//! The resampling is the same antialiased bilinear convolution as for RGB frames. YUYV is read
//! as one 4-channel image of pixel pairs (Y0 U Y1 V); the two lumas of a pair are averaged
//! after resampling, which widens the luma filter by one source pixel. That is why this path
//! is taken only when the frame shrinks at least twofold on both axes. Below that the full
//! conversion runs.

use super::color::yuv_to_rgb;
use super::decode::raw_bytes;
use super::normalize::InputWriter;
use super::resize::Placement;
use super::{lap, PreprocessError, Raster, StepTimes};
use crate::frame::{Frame, PixelFormat};
use crate::tensor::Tensor;
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use std::time::Instant;

/// Reused buffers for the resampled planes.
#[derive(Debug, Default)]
pub struct Scratch {
    luma: Vec<u8>,
    chroma: Vec<u8>,
}

/// Whether `frame` goes through [`resample`]: YUYV or NV12 of even size, shrunk at least
/// twofold on both axes by `placement`.
pub fn applies(frame: &Frame, placement: &Placement) -> bool {
    let meta = &frame.meta;
    let even = meta.width.is_multiple_of(2) && meta.height.is_multiple_of(2);
    let (source, target) = (placement.source, placement.target);
    let shrinks = source.width >= 2.0 * target.width && source.height >= 2.0 * target.height;
    matches!(meta.format, PixelFormat::Yuyv | PixelFormat::Nv12) && even && shrinks
}

/// The frame's region `placement.source` resampled onto the writer's target, converted to
/// RGB and normalised in one pass (letterbox padding black), for a frame that [`applies`]
/// accepts; the time of each step is added to `times` (normalising counts as converting).
pub(super) fn resample(
    resizer: &mut Resizer,
    scratch: &mut Scratch,
    frame: &Frame,
    writer: InputWriter<'_>,
    times: &mut StepTimes,
) -> Result<(Raster, Tensor), PreprocessError> {
    let meta = &frame.meta;
    let mut clock = Instant::now();
    let (w, h) = (meta.width, meta.height);
    let placement = writer.placement;
    let (tw, th) = (
        placement.target.width as u32,
        placement.target.height as u32,
    );
    let pixels = tw as usize * th as usize;
    let source = placement.source;
    let error = |e: &dyn std::fmt::Display| PreprocessError::Resize(e.to_string());
    let written = match meta.format {
        PixelFormat::Yuyv => {
            let data = raw_bytes(frame)?;
            let pairs = ImageRef::new(w / 2, h, data, PixelType::U8x4).map_err(|e| error(&e))?;
            scratch.luma.resize(pixels * 4, 0);
            let mut out = Image::from_slice_u8(tw, th, &mut scratch.luma, PixelType::U8x4)
                .map_err(|e| error(&e))?;
            let options = options(source.x / 2.0, source.y, source.width / 2.0, source.height);
            resizer
                .resize(&pairs, &mut out, &options)
                .map_err(|e| error(&e))?;
            times.resize += lap(&mut clock);
            let pairs = out.buffer();
            writer.write(|first, rgb| {
                let n = rgb[0].len();
                pairs_to_rgb(&pairs[first * 4..(first + n) * 4], rgb)
            })
        }
        PixelFormat::Nv12 => {
            let luma_len = w as usize * h as usize;
            let data = raw_bytes(frame)?;
            let (luma, chroma) = data.split_at(luma_len);
            let y_plane = ImageRef::new(w, h, luma, PixelType::U8).map_err(|e| error(&e))?;
            let uv_plane = ImageRef::new(w / 2, h / 2, &chroma[..luma_len / 2], PixelType::U8x2)
                .map_err(|e| error(&e))?;
            scratch.luma.resize(pixels, 0);
            scratch.chroma.resize(pixels * 2, 0);
            let mut y_out = Image::from_slice_u8(tw, th, &mut scratch.luma, PixelType::U8)
                .map_err(|e| error(&e))?;
            let mut uv_out = Image::from_slice_u8(tw, th, &mut scratch.chroma, PixelType::U8x2)
                .map_err(|e| error(&e))?;
            let full = options(source.x, source.y, source.width, source.height);
            let half = options(
                source.x / 2.0,
                source.y / 2.0,
                source.width / 2.0,
                source.height / 2.0,
            );
            resizer
                .resize(&y_plane, &mut y_out, &full)
                .map_err(|e| error(&e))?;
            resizer
                .resize(&uv_plane, &mut uv_out, &half)
                .map_err(|e| error(&e))?;
            times.resize += lap(&mut clock);
            let (luma, chroma) = (y_out.buffer(), uv_out.buffer());
            writer.write(|first, rgb| {
                let n = rgb[0].len();
                planes_to_rgb(
                    &luma[first..first + n],
                    &chroma[first * 2..(first + n) * 2],
                    rgb,
                )
            })
        }
        other => {
            return Err(PreprocessError::Resize(format!(
                "{} is not a YUV format",
                other.name()
            )))
        }
    };
    times.convert += lap(&mut clock);
    Ok(written)
}

/// Resampled YUYV pixel pairs (Y0 U Y1 V), one per output pixel, to RGB planes.
fn pairs_to_rgb(pairs: &[u8], [r, g, b]: [&mut [u8]; 3]) {
    let out = r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut());
    for (((r, g), b), pair) in out.zip(pairs.chunks_exact(4)) {
        let y = ((pair[0] as u16 + pair[2] as u16 + 1) >> 1) as u8;
        [*r, *g, *b] = yuv_to_rgb(y, pair[1], pair[3]);
    }
}

/// Resampled NV12 luma and interleaved chroma (U V), one of each per output pixel, to RGB
/// planes.
fn planes_to_rgb(luma: &[u8], chroma: &[u8], [r, g, b]: [&mut [u8]; 3]) {
    let out = r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut());
    for (((r, g), b), (y, uv)) in out.zip(luma.iter().zip(chroma.chunks_exact(2))) {
        [*r, *g, *b] = yuv_to_rgb(*y, uv[0], uv[1]);
    }
}

fn options(x: f64, y: f64, width: f64, height: f64) -> ResizeOptions {
    ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        // The fourth channel of a pixel pair is V, not alpha.
        .use_alpha(false)
        .crop(x, y, width, height)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ColorOrder, InputSpec, ResizePolicy};
    use crate::preprocess::{Preprocess, Preprocessor};

    fn frame(format: PixelFormat, w: u32, h: u32) -> Frame {
        crate::bench::frames::synthetic_frame(w, h, format).unwrap()
    }

    fn spec(color: ColorOrder, resize: ResizePolicy) -> InputSpec {
        let channels = color.channels();
        InputSpec {
            name: "x".into(),
            shape: [1, channels, 224, 224],
            color,
            scale: 255.0,
            mean: vec![],
            std: vec![],
            resize,
            layout: Default::default(),
        }
    }

    /// Both ways to the model input, the full way from `decoded` (the frame converted whole):
    /// (largest difference, mean difference) in grey levels.
    fn compare(frame: &Frame, decoded: &Raster, spec: &InputSpec) -> (u8, f64) {
        let mut fast = Preprocessor::new(spec);
        let mut full = Preprocessor::new(spec);
        let quick = fast.prepare_frame(frame).unwrap();
        let reference = full.prepare_raster(decoded).unwrap();
        assert_eq!(quick.placement, reference.placement);
        // The one-pass conversion normalises exactly as the separate step does.
        assert_eq!(
            quick.tensor,
            fast.normalization.to_nchw(&quick.input, spec.color)
        );
        assert_eq!(quick.input.data.len(), reference.input.data.len());
        let diffs: Vec<u8> = quick
            .input
            .data
            .iter()
            .zip(&reference.input.data)
            .map(|(a, b)| a.abs_diff(*b))
            .collect();
        let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
        (diffs.iter().copied().max().unwrap_or(0), mean)
    }

    #[test]
    fn resampling_before_converting_gives_the_full_conversions_pixels() {
        for format in [PixelFormat::Yuyv, PixelFormat::Nv12] {
            for (w, h) in [(1920, 1080), (1280, 720)] {
                let frame = frame(format, w, h);
                for color in [ColorOrder::Rgb, ColorOrder::Gray] {
                    // Converted whole once: slow in an unoptimised build, slower under qemu.
                    let decoded = crate::preprocess::decode(&frame, color).unwrap();
                    for policy in [
                        ResizePolicy::Stretch,
                        ResizePolicy::CenterCrop,
                        ResizePolicy::Letterbox,
                    ] {
                        let spec = spec(color, policy);
                        assert!(applies(&frame, &Placement::new(policy, w, h, 224, 224)));
                        let (worst, mean) = compare(&frame, &decoded, &spec);
                        let what = format!("{format:?} {w}x{h} {policy:?} {color:?}");
                        assert!(
                            worst <= 6 && mean < 0.8,
                            "{what}: worst {worst}, mean {mean}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn small_or_odd_frames_take_the_full_conversion() {
        let placement = |w, h| Placement::new(ResizePolicy::Stretch, w, h, 224, 224);
        assert!(!applies(
            &frame(PixelFormat::Yuyv, 320, 240),
            &placement(320, 240)
        ));
        let mut odd = frame(PixelFormat::Yuyv, 1280, 720);
        odd.meta.width = 1279;
        assert!(crate::bench::frames::synthetic_frame(1279, 720, PixelFormat::Yuyv).is_err());
        assert!(!applies(&odd, &placement(1279, 720)));
        let mut rgb = frame(PixelFormat::Yuyv, 1280, 720);
        rgb.meta.format = PixelFormat::Rgb24;
        assert!(!applies(&rgb, &placement(1280, 720)));
    }

    #[test]
    fn a_short_frame_is_an_error_not_a_panic() {
        let mut short = frame(PixelFormat::Nv12, 1280, 720);
        short.data.truncate(1000);
        let mut pre = Preprocessor::new(&spec(ColorOrder::Rgb, ResizePolicy::Stretch));
        let error = pre.prepare_frame(&short).unwrap_err().to_string();
        assert!(error.contains("needs 1382400 bytes, got 1000"), "{error}");
    }
}
