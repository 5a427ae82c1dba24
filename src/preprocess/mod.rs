//! Preprocessing: a [`Frame`] becomes the NCHW f32 tensor a model package asks for.
//!
//! decode (or convert a raw camera format) -> colour -> resize policy -> scale/mean/std.

pub mod align;
mod color;
mod decode;
mod mjpeg;
mod mjpeg_scaled;
mod normalize;
mod recycle;
mod resize;
pub mod thumbnail;
mod yuv;

use color::AfterResize;
pub use color::{nv12_to_rgb, rgb_to_gray, yuyv_to_rgb};
pub use decode::decode;
pub use mjpeg::{with_huffman_tables, MjpegError};
pub use normalize::Normalization;
pub use recycle::Recycler;
pub use resize::{resize, Placement, Region};

use crate::frame::{Frame, PixelFormat};
use crate::model::{ColorOrder, InputSpec, Layout, ResizePolicy};
use crate::tensor::Tensor;
use std::time::{Duration, Instant};

/// Why a frame could not be turned into a tensor.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("cannot decode image: {0}")]
    Decode(String),
    #[error("cannot decode image {path}: {message}")]
    DecodeFile { path: String, message: String },
    #[error("bad MJPEG frame")]
    Mjpeg(#[from] MjpegError),
    #[error("{format} frame decoded to {actual_width}x{actual_height}, expected {width}x{height}")]
    DecodedSize {
        format: &'static str,
        width: u32,
        height: u32,
        actual_width: u32,
        actual_height: u32,
    },
    #[error("{format} frame of {width}x{height}: no such frame size")]
    FrameDimensions {
        format: &'static str,
        width: u32,
        height: u32,
    },
    #[error("{format} frame of {width}x{height} needs {expected} bytes, got {actual}")]
    FrameSize {
        format: &'static str,
        width: u32,
        height: u32,
        expected: usize,
        actual: usize,
    },
    #[error("cannot resize: {0}")]
    Resize(String),
}

/// An 8-bit image in memory: `channels` interleaved values per pixel, rows packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raster {
    pub width: u32,
    pub height: u32,
    /// 1 (grey) or 3 (R, G, B).
    pub channels: u8,
    pub data: Vec<u8>,
}

/// An 8-bit image read where it lies: a [`Raster`]'s pixels, or a frame's that need no
/// conversion (so a full camera frame is not copied per frame).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pixels<'a> {
    pub width: u32,
    pub height: u32,
    /// 1 (grey) or 3 (R, G, B).
    pub channels: u8,
    pub data: &'a [u8],
}

/// A frame made ready for the model.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub tensor: Tensor,
    /// Where the frame lies in the model input (to map boxes back to frame pixels).
    pub placement: Placement,
    /// The model input as pixels, before normalisation.
    pub input: Raster,
}

/// Turns frames into model input tensors. Implementations may keep scratch buffers.
pub trait Preprocess: Send {
    /// The frame's pixels at its native resolution (grey or RGB, as the model wants).
    fn decode(&self, frame: &Frame) -> Result<Raster, PreprocessError>;
    /// Fits decoded pixels (a frame, or a crop of one) to the model input.
    fn prepare_raster(&mut self, raster: &Raster) -> Result<Prepared, PreprocessError>;
    /// A frame straight to the model input, when its native pixels are not needed (no zoom,
    /// parts or crops): implementations may take a shorter way.
    fn prepare_frame(&mut self, frame: &Frame) -> Result<Prepared, PreprocessError> {
        let raster = self.decode(frame)?;
        self.prepare_raster(&raster)
    }
    fn prepare(&mut self, frame: &Frame) -> Result<Tensor, PreprocessError> {
        Ok(self.prepare_frame(frame)?.tensor)
    }
    /// Takes back a prepared frame that nothing reads any more, to reuse its buffers.
    fn recycle(&mut self, _prepared: Prepared) {}
}

impl Raster {
    pub(crate) fn pixels(&self) -> Pixels<'_> {
        Pixels {
            width: self.width,
            height: self.height,
            channels: self.channels,
            data: &self.data,
        }
    }

    /// The mirror image (left and right swapped).
    pub fn flipped(&self) -> Raster {
        let channels = self.channels as usize;
        let row = self.width as usize * channels;
        let mut data = Vec::with_capacity(self.data.len());
        for line in self.data.chunks_exact(row.max(1)) {
            for pixel in line.chunks_exact(channels.max(1)).rev() {
                data.extend_from_slice(pixel);
            }
        }
        Raster {
            width: self.width,
            height: self.height,
            channels: self.channels,
            data,
        }
    }

    /// The pixels of `[x0, x1) x [y0, y1)`, clamped to the raster (never empty).
    pub fn crop(&self, x0: u32, y0: u32, x1: u32, y1: u32) -> Raster {
        let x0 = x0.min(self.width.saturating_sub(1));
        let y0 = y0.min(self.height.saturating_sub(1));
        let x1 = x1.clamp(x0 + 1, self.width.max(x0 + 1));
        let y1 = y1.clamp(y0 + 1, self.height.max(y0 + 1));
        let channels = self.channels as usize;
        let row = self.width as usize * channels;
        let mut data = Vec::with_capacity((x1 - x0) as usize * (y1 - y0) as usize * channels);
        for y in y0..y1 {
            let start = y as usize * row + x0 as usize * channels;
            let end = y as usize * row + x1 as usize * channels;
            data.extend_from_slice(self.data.get(start..end).unwrap_or(&[]));
        }
        Raster {
            width: x1 - x0,
            height: y1 - y0,
            channels: self.channels,
            data,
        }
    }

    /// The raster with black columns and rows around it: `pad` is left, top, right, bottom.
    pub fn padded(&self, pad: [u32; 4]) -> Raster {
        if pad == [0; 4] {
            return self.clone();
        }
        let [left, top, right, bottom] = pad.map(|p| p as usize);
        let channels = self.channels as usize;
        let (w, h) = (self.width as usize, self.height as usize);
        let width = w + left + right;
        let mut data = vec![0u8; width * (h + top + bottom) * channels];
        for (y, line) in self
            .data
            .chunks_exact((w * channels).max(1))
            .take(h)
            .enumerate()
        {
            let start = ((y + top) * width + left) * channels;
            data[start..start + line.len()].copy_from_slice(line);
        }
        Raster {
            width: width as u32,
            height: (h + top + bottom) as u32,
            channels: self.channels,
            data,
        }
    }
}

/// The standard preprocessing described by a manifest's `[input]`.
pub struct Preprocessor {
    color: ColorOrder,
    layout: Layout,
    policy: ResizePolicy,
    width: u32,
    height: u32,
    normalization: Normalization,
    resizer: fast_image_resize::Resizer,
    scratch: yuv::Scratch,
    recycler: Recycler,
}

impl Preprocessor {
    pub fn new(spec: &InputSpec) -> Self {
        Preprocessor {
            color: spec.color,
            layout: spec.layout,
            policy: spec.resize,
            width: spec.width() as u32,
            height: spec.height() as u32,
            normalization: Normalization::from_spec(spec),
            resizer: fast_image_resize::Resizer::new(),
            scratch: yuv::Scratch::default(),
            recycler: Recycler::default(),
        }
    }

    /// The stock its frames' buffers go back to, for whoever finishes with them (another
    /// thread, say).
    pub fn recycler(&self) -> Recycler {
        self.recycler.clone()
    }
}

impl Preprocess for Preprocessor {
    fn decode(&self, frame: &Frame) -> Result<Raster, PreprocessError> {
        decode(frame, self.color)
    }

    /// Camera YUV that shrinks at least twofold is resampled before it is converted (see
    /// `yuv.rs`); everything else is decoded at full size first.
    fn prepare_frame(&mut self, frame: &Frame) -> Result<Prepared, PreprocessError> {
        self.prepare_frame_timed(frame, &mut StepTimes::default())
    }

    fn prepare_raster(&mut self, raster: &Raster) -> Result<Prepared, PreprocessError> {
        let prepared = self.prepare_raster_timed(
            raster.pixels(),
            AfterResize::Nothing,
            &mut StepTimes::default(),
        )?;
        Ok(self.arrange(prepared))
    }

    fn recycle(&mut self, prepared: Prepared) {
        self.recycler.give_back(prepared);
    }
}

/// Time spent in each preprocessing step of one frame (for `edgevit bench`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StepTimes {
    /// Decoding or colour conversion.
    pub convert: Duration,
    pub resize: Duration,
    /// Scale, mean and std into the NCHW tensor (camera YUV that is resampled first is
    /// converted and normalised in one pass, counted in `convert`).
    pub normalize: Duration,
}

/// The time since `*since`, which then moves to now.
pub(crate) fn lap(since: &mut Instant) -> Duration {
    let now = Instant::now();
    let elapsed = now - *since;
    *since = now;
    elapsed
}

impl Preprocessor {
    /// [`Preprocess::prepare_frame`], adding the time of each step to `times`.
    pub fn prepare_frame_timed(
        &mut self,
        frame: &Frame,
        times: &mut StepTimes,
    ) -> Result<Prepared, PreprocessError> {
        let prepared = self.prepare_frame_nchw(frame, times)?;
        let mut clock = Instant::now();
        let prepared = self.arrange(prepared);
        times.normalize += lap(&mut clock);
        Ok(prepared)
    }

    /// The tensor in the layout the model takes: every step writes NCHW, and an NHWC model
    /// (a TensorFlow export) gets it transposed.
    fn arrange(&self, prepared: Prepared) -> Prepared {
        match self.layout {
            Layout::Nchw => prepared,
            Layout::Nhwc => Prepared {
                tensor: normalize::nchw_to_nhwc(&prepared.tensor),
                ..prepared
            },
        }
    }

    /// [`Preprocessor::prepare_frame_timed`] up to the NCHW tensor.
    fn prepare_frame_nchw(
        &mut self,
        frame: &Frame,
        times: &mut StepTimes,
    ) -> Result<Prepared, PreprocessError> {
        let meta = &frame.meta;
        let placement = Placement::new(
            self.policy,
            meta.width,
            meta.height,
            self.width,
            self.height,
        );
        let factor = mjpeg_scaled::reduction(&placement);
        if meta.format == PixelFormat::Mjpeg && factor > 1 {
            let mut clock = Instant::now();
            mjpeg::check_complete(&frame.data)?;
            let jpeg = with_huffman_tables(&frame.data)?;
            let gray = self.color == ColorOrder::Gray;
            if let Some(small) = mjpeg_scaled::decode(&jpeg, meta.width, meta.height, factor, gray)
            {
                times.convert += lap(&mut clock);
                let prepared =
                    self.prepare_raster_timed(small.pixels(), AfterResize::Nothing, times)?;
                // Boxes map back to the frame's own pixels, not the reduced ones.
                return Ok(Prepared {
                    placement,
                    ..prepared
                });
            }
        }
        if let Some((pixels, after)) = decode::packed_pixels(frame, self.color)? {
            // Luma taken after resizing may differ from luma first by a grey level: worth it
            // only where that saves converting a bigger image.
            if after.is_exact() || placement.shrinks() {
                return self.prepare_raster_timed(pixels, after, times);
            }
        }
        if !yuv::applies(frame, &placement) {
            let mut clock = Instant::now();
            let raster = self.decode(frame)?;
            times.convert += lap(&mut clock);
            return self.prepare_raster_timed(raster.pixels(), AfterResize::Nothing, times);
        }
        let writer = normalize::InputWriter {
            normalization: &self.normalization,
            color: self.color,
            placement: &placement,
            width: self.width,
            height: self.height,
            raster: self.recycler.raster(),
            tensor: self.recycler.tensor(),
        };
        let (input, tensor) =
            yuv::resample(&mut self.resizer, &mut self.scratch, frame, writer, times)?;
        Ok(Prepared {
            tensor,
            placement,
            input,
        })
    }

    /// Resizes `raster` to the model input, converts it as `after` says and normalises it.
    fn prepare_raster_timed(
        &mut self,
        raster: Pixels<'_>,
        after: AfterResize,
        times: &mut StepTimes,
    ) -> Result<Prepared, PreprocessError> {
        let mut clock = Instant::now();
        let mut resized = resize::resize_into(
            &mut self.resizer,
            raster,
            self.policy,
            self.width,
            self.height,
            self.recycler.raster(),
        )?;
        times.resize += lap(&mut clock);
        after.apply(&mut resized);
        times.convert += lap(&mut clock);
        let tensor = self
            .normalization
            .to_nchw_into(&resized, self.color, self.recycler.tensor());
        times.normalize += lap(&mut clock);
        Ok(Prepared {
            tensor,
            placement: Placement::new(
                self.policy,
                raster.width,
                raster.height,
                self.width,
                self.height,
            ),
            input: resized,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crop_holds_the_pixels_of_its_box() {
        let raster = Raster {
            width: 4,
            height: 3,
            channels: 1,
            data: (0..12).collect(),
        };
        let crop = raster.crop(1, 1, 3, 3);
        assert_eq!(
            (crop.width, crop.height, crop.data),
            (2, 2, vec![5, 6, 9, 10])
        );
        let clamped = raster.crop(3, 2, 99, 99);
        assert_eq!(
            (clamped.width, clamped.height, clamped.data),
            (1, 1, vec![11])
        );
    }

    /// Packed frames (RGB24, BGR24, grey) are resized from the frame's own bytes and converted
    /// at the model's size: the same model input as decoding a copy first, for every resize
    /// policy; within a grey level where a grey model takes a colour frame's luma. A frame too
    /// short for its size is still refused.
    #[test]
    fn packed_frames_are_resized_where_they_lie_and_converted_after() {
        for format in [PixelFormat::Rgb24, PixelFormat::Bgr24, PixelFormat::Gray8] {
            for color in [ColorOrder::Rgb, ColorOrder::Bgr, ColorOrder::Gray] {
                for resize in [
                    ResizePolicy::Stretch,
                    ResizePolicy::Letterbox,
                    ResizePolicy::CenterCrop,
                ] {
                    for (width, height) in [(160, 90), (20, 12)] {
                        let case = format!("{format:?} {width}x{height} {color:?} {resize:?}");
                        let spec = InputSpec {
                            name: "x".into(),
                            shape: [1, color.channels(), 32, 32],
                            color,
                            scale: 255.0,
                            mean: vec![],
                            std: vec![],
                            resize,
                            layout: Default::default(),
                        };
                        let frame =
                            crate::bench::frames::synthetic_frame(width, height, format).unwrap();
                        let (_, after) = decode::packed_pixels(&frame, color).unwrap().unwrap();
                        let mut preprocessor = Preprocessor::new(&spec);
                        let direct = preprocessor.prepare_frame(&frame).unwrap();
                        let copied = preprocessor
                            .prepare_raster(&preprocessor.decode(&frame).unwrap())
                            .unwrap();
                        assert_eq!(direct.placement, copied.placement, "{case}");
                        assert_eq!(direct.input.channels, copied.input.channels, "{case}");
                        let exact = after.is_exact() || !direct.placement.shrinks();
                        if exact {
                            assert_eq!(direct.tensor, copied.tensor, "{case}");
                            assert_eq!(direct.input, copied.input, "{case}");
                        } else {
                            let levels = direct.input.data.iter().zip(&copied.input.data);
                            let worst = levels.map(|(a, b)| a.abs_diff(*b)).max();
                            assert!(worst <= Some(1), "{case}: {worst:?} levels apart");
                        }

                        let mut short = frame.clone();
                        short.data.truncate(100);
                        assert!(
                            matches!(
                                preprocessor.prepare_frame(&short),
                                Err(PreprocessError::FrameSize { .. })
                            ),
                            "{case}"
                        );
                    }
                }
            }
        }
        let rgb = crate::bench::frames::synthetic_frame(16, 16, PixelFormat::Rgb24).unwrap();
        assert!(decode::as_pixels(&rgb, ColorOrder::Gray).unwrap().is_none());
        let yuyv = crate::bench::frames::synthetic_frame(16, 16, PixelFormat::Yuyv).unwrap();
        assert!(decode::packed_pixels(&yuyv, ColorOrder::Rgb)
            .unwrap()
            .is_none());
    }
}
