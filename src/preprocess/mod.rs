//! Preprocessing: a [`Frame`] becomes the NCHW f32 tensor a model package asks for.
//!
//! decode (or convert a raw camera format) -> colour -> resize policy -> scale/mean/std.

mod color;
mod decode;
mod mjpeg;
mod normalize;
mod resize;

pub use color::{nv12_to_rgb, rgb_to_gray, yuyv_to_rgb};
pub use decode::decode;
pub use mjpeg::{with_huffman_tables, MjpegError};
pub use normalize::Normalization;
pub use resize::{resize, Placement, Region};

use crate::frame::Frame;
use crate::model::{ColorOrder, InputSpec, ResizePolicy};
use crate::tensor::Tensor;

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

/// Turns frames into model input tensors. Implementations may keep scratch buffers.
pub trait Preprocess: Send {
    fn prepare(&mut self, frame: &Frame) -> Result<Tensor, PreprocessError>;
}

/// The standard preprocessing described by a manifest's `[input]`.
pub struct Preprocessor {
    color: ColorOrder,
    policy: ResizePolicy,
    width: u32,
    height: u32,
    normalization: Normalization,
    resizer: fast_image_resize::Resizer,
}

impl Preprocessor {
    pub fn new(spec: &InputSpec) -> Self {
        Preprocessor {
            color: spec.color,
            policy: spec.resize,
            width: spec.width() as u32,
            height: spec.height() as u32,
            normalization: Normalization::from_spec(spec),
            resizer: fast_image_resize::Resizer::new(),
        }
    }
}

impl Preprocess for Preprocessor {
    fn prepare(&mut self, frame: &Frame) -> Result<Tensor, PreprocessError> {
        let decoded = decode(frame, self.color)?;
        let resized = resize(
            &mut self.resizer,
            &decoded,
            self.policy,
            self.width,
            self.height,
        )?;
        Ok(self.normalization.to_nchw(&resized, self.color))
    }
}
