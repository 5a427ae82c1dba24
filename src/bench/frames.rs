//! Frames for benchmarks and tests: a synthetic scene (smooth gradients, hard edges, fine
//! ripples) in any size and in the pixel formats cameras send, or a recorded frame.

use crate::frame::{Frame, FrameMeta, PixelFormat};
use crate::source::{FrameResult, FrameSource};
use std::time::SystemTime;

/// The scene's colour at `(x, y)`.
pub fn scene(x: u32, y: u32) -> [f32; 3] {
    let (fx, fy) = (x as f32, y as f32);
    let checker = if (x / 40 + y / 40).is_multiple_of(2) {
        60.0
    } else {
        0.0
    };
    let ripple = 40.0 * ((fx * 0.05).sin() * (fy * 0.07).cos());
    [
        (fx * 0.15 + checker + ripple).clamp(0.0, 255.0),
        (fy * 0.3 + ripple + 30.0).clamp(0.0, 255.0),
        (200.0 - fx * 0.1 + checker).clamp(0.0, 255.0),
    ]
}

/// RGB to BT.601 limited-range Y, U, V, the encoding cameras use.
pub fn rgb_to_yuv([r, g, b]: [f32; 3]) -> [u8; 3] {
    let y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b;
    let u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
    let v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
    [y, u, v].map(|c| c.round().clamp(0.0, 255.0) as u8)
}

/// The scene as a `width x height` frame in `format` (MJPEG at quality 85). Odd sizes are
/// refused for the 4:2:x formats, as cameras do.
pub fn synthetic_frame(width: u32, height: u32, format: PixelFormat) -> Result<Frame, String> {
    if width == 0 || height == 0 {
        return Err(format!("a frame of {width}x{height} has no pixels"));
    }
    let yuv = |x, y| rgb_to_yuv(scene(x, y));
    let data = match format {
        PixelFormat::Yuyv | PixelFormat::Nv12 if width % 2 == 1 || height % 2 == 1 => {
            return Err(format!(
                "{} frames have an even width and height, not {width}x{height}",
                format.name()
            ))
        }
        PixelFormat::Yuyv => {
            let mut data = Vec::with_capacity(width as usize * height as usize * 2);
            for y in 0..height {
                for x in (0..width).step_by(2) {
                    let (a, b) = (yuv(x, y), yuv(x + 1, y));
                    let u = ((a[1] as u16 + b[1] as u16) / 2) as u8;
                    let v = ((a[2] as u16 + b[2] as u16) / 2) as u8;
                    data.extend_from_slice(&[a[0], u, b[0], v]);
                }
            }
            data
        }
        PixelFormat::Nv12 => {
            let mut data = Vec::with_capacity(width as usize * height as usize * 3 / 2);
            for y in 0..height {
                data.extend((0..width).map(|x| yuv(x, y)[0]));
            }
            for y in (0..height).step_by(2) {
                for x in (0..width).step_by(2) {
                    let p = yuv(x, y);
                    data.extend_from_slice(&[p[1], p[2]]);
                }
            }
            data
        }
        PixelFormat::Gray8 => (0..height)
            .flat_map(|y| (0..width).map(move |x| yuv(x, y)[0]))
            .collect(),
        PixelFormat::Rgb24 | PixelFormat::Bgr24 | PixelFormat::Mjpeg | PixelFormat::Encoded => {
            let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
            for y in 0..height {
                for x in 0..width {
                    let [r, g, b] = scene(x, y).map(|c| c as u8);
                    match format {
                        PixelFormat::Bgr24 => rgb.extend_from_slice(&[b, g, r]),
                        _ => rgb.extend_from_slice(&[r, g, b]),
                    }
                }
            }
            if matches!(format, PixelFormat::Mjpeg | PixelFormat::Encoded) {
                let mut jpeg = Vec::new();
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
                    .encode(&rgb, width, height, image::ExtendedColorType::Rgb8)
                    .map_err(|e| e.to_string())?;
                jpeg
            } else {
                rgb
            }
        }
    };
    Ok(Frame::in_memory("synthetic", data, width, height, format))
}

/// A recorded frame: the bytes of `path` as one `width x height` frame of `format` (a raw
/// frame as `edgevit snapshot` saves it, or a JPEG for MJPEG).
pub fn recorded_frame(
    path: &std::path::Path,
    width: u32,
    height: u32,
    format: PixelFormat,
) -> Result<Frame, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if let Some(expected) = format.raw_len(width, height) {
        if data.len() != expected {
            return Err(format!(
                "{} has {} bytes; a {width}x{height} {} frame has {expected}",
                path.display(),
                data.len(),
                format.name()
            ));
        }
    }
    let mut frame = Frame::in_memory("recorded", data, width, height, format);
    frame.meta.path = Some(path.to_path_buf());
    Ok(frame)
}

/// One frame handed out `count` times, numbered, as fast as it is taken. Each is a copy, into
/// a buffer the pipeline gave back when there is one, as a camera's capture copies out of the
/// driver's buffer.
#[derive(Debug)]
pub struct Replay {
    frame: Frame,
    count: u64,
    next: u64,
    spare: Option<Vec<u8>>,
}

impl Replay {
    pub fn new(frame: Frame, count: u64) -> Self {
        Replay {
            frame,
            count,
            next: 0,
            spare: None,
        }
    }
}

impl FrameSource for Replay {
    fn describe(&self) -> String {
        let meta = &self.frame.meta;
        format!(
            "synthetic {}x{} {}",
            meta.width,
            meta.height,
            meta.format.name()
        )
    }

    fn next_frame(&mut self) -> Option<FrameResult> {
        if self.next >= self.count {
            return None;
        }
        let mut data = self.spare.take().unwrap_or_default();
        data.clear();
        data.extend_from_slice(&self.frame.data);
        let meta = FrameMeta {
            seq: self.next,
            captured_at: SystemTime::now(),
            ..self.frame.meta.clone()
        };
        self.next += 1;
        Some(Ok(Frame { meta, data }))
    }

    fn recycle(&mut self, data: Vec<u8>) {
        self.spare = Some(data);
    }
}
