//! Fitting a frame to the model's input size under a [`ResizePolicy`].
//!
//! Bilinear convolution (`fast_image_resize`), which reproduces Pillow's `BILINEAR` resize
//! within one grey level, so models exported from PIL-based training see the same pixels.

use super::{Pixels, PreprocessError, Raster};
use crate::model::ResizePolicy;
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

/// An axis-aligned rectangle in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// Where the frame goes in the model input: `source` (in frame pixels) is resized onto
/// `target` (in input pixels); the rest of the input is padding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub source: Region,
    pub target: Region,
}

impl Placement {
    /// Computes the placement of a `src_w x src_h` frame in a `dst_w x dst_h` input.
    pub fn new(policy: ResizePolicy, src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> Self {
        let (sw, sh, dw, dh) = (src_w as f64, src_h as f64, dst_w as f64, dst_h as f64);
        let whole = |w: f64, h: f64| Region {
            x: 0.0,
            y: 0.0,
            width: w,
            height: h,
        };
        match policy {
            ResizePolicy::Stretch => Placement {
                source: whole(sw, sh),
                target: whole(dw, dh),
            },
            ResizePolicy::CenterCrop => {
                let source = if src_w as u64 * dst_h as u64 > src_h as u64 * dst_w as u64 {
                    let crop_w = (sh * dw / dh).round();
                    Region {
                        x: ((sw - crop_w) / 2.0).floor(),
                        y: 0.0,
                        width: crop_w,
                        height: sh,
                    }
                } else {
                    let crop_h = (sw * dh / dw).round();
                    Region {
                        x: 0.0,
                        y: ((sh - crop_h) / 2.0).floor(),
                        width: sw,
                        height: crop_h,
                    }
                };
                Placement {
                    source,
                    target: whole(dw, dh),
                }
            }
            ResizePolicy::Letterbox => {
                let scale = (dw / sw).min(dh / sh);
                let new_w = (sw * scale).round().max(1.0);
                let new_h = (sh * scale).round().max(1.0);
                Placement {
                    source: whole(sw, sh),
                    target: Region {
                        x: ((dw - new_w) / 2.0).floor(),
                        y: ((dh - new_h) / 2.0).floor(),
                        width: new_w,
                        height: new_h,
                    },
                }
            }
        }
    }

    /// Whether the frame's pixels are fewer in the model input than in the frame.
    pub fn shrinks(&self) -> bool {
        self.target.width * self.target.height < self.source.width * self.source.height
    }

    /// Maps a rectangle in frame pixels to model-input pixels (the inverse of `to_source`).
    pub fn to_target(&self, r: Region) -> Region {
        let sx = self.target.width / self.source.width;
        let sy = self.target.height / self.source.height;
        Region {
            x: self.target.x + (r.x - self.source.x) * sx,
            y: self.target.y + (r.y - self.source.y) * sy,
            width: r.width * sx,
            height: r.height * sy,
        }
    }

    /// Maps a rectangle in model-input pixels back to frame pixels.
    pub fn to_source(&self, r: Region) -> Region {
        let sx = self.source.width / self.target.width;
        let sy = self.source.height / self.target.height;
        Region {
            x: self.source.x + (r.x - self.target.x) * sx,
            y: self.source.y + (r.y - self.target.y) * sy,
            width: r.width * sx,
            height: r.height * sy,
        }
    }
}

/// Resizes `image` to `width x height` under `policy`; letterbox padding is black.
pub fn resize(
    resizer: &mut Resizer,
    image: &Raster,
    policy: ResizePolicy,
    width: u32,
    height: u32,
) -> Result<Raster, PreprocessError> {
    resize_into(resizer, image.pixels(), policy, width, height, Vec::new())
}

/// [`resize`] into `buffer`'s allocation (its contents are overwritten).
pub(super) fn resize_into(
    resizer: &mut Resizer,
    image: Pixels<'_>,
    policy: ResizePolicy,
    width: u32,
    height: u32,
    mut buffer: Vec<u8>,
) -> Result<Raster, PreprocessError> {
    if image.width == 0 || image.height == 0 {
        return Err(PreprocessError::Resize("the frame is empty".into()));
    }
    let pixel_type = match image.channels {
        1 => PixelType::U8,
        3 => PixelType::U8x3,
        n => {
            return Err(PreprocessError::Resize(format!(
                "{n} channels are not supported"
            )))
        }
    };
    let placement = Placement::new(policy, image.width, image.height, width, height);
    let target = placement.target;
    let (tw, th) = (target.width as u32, target.height as u32);
    // Borrow the frame's pixels: copying a full camera frame per frame costs as much as the resize.
    let src = ImageRef::new(image.width, image.height, image.data, pixel_type)
        .map_err(|e| PreprocessError::Resize(e.to_string()))?;
    buffer.resize(tw as usize * th as usize * image.channels as usize, 0);
    let mut dst = Image::from_vec_u8(tw, th, buffer, pixel_type)
        .map_err(|e| PreprocessError::Resize(e.to_string()))?;
    let source = placement.source;
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(source.x, source.y, source.width, source.height);
    resizer
        .resize(&src, &mut dst, &options)
        .map_err(|e| PreprocessError::Resize(e.to_string()))?;
    Ok(place(
        dst.into_vec(),
        image.channels,
        &placement,
        width,
        height,
    ))
}

/// `resized` (the pixels of `placement.target`, `channels` per pixel) in a `width x height`
/// raster, on black where the target leaves room (letterbox).
pub(super) fn place(
    resized: Vec<u8>,
    channels: u8,
    placement: &Placement,
    width: u32,
    height: u32,
) -> Raster {
    let target = placement.target;
    let tw = target.width as u32;
    if tw == width && target.height as u32 == height {
        return Raster {
            width,
            height,
            channels,
            data: resized,
        };
    }
    let channels_n = channels as usize;
    let mut canvas = vec![0u8; width as usize * height as usize * channels_n];
    let (x0, y0) = (target.x as usize, target.y as usize);
    let row_len = tw as usize * channels_n;
    for (row, line) in resized.chunks_exact(row_len.max(1)).enumerate() {
        let start = ((y0 + row) * width as usize + x0) * channels_n;
        canvas[start..start + row_len].copy_from_slice(line);
    }
    Raster {
        width,
        height,
        channels,
        data: canvas,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn center_crop_takes_the_middle_of_the_long_side() {
        let p = Placement::new(ResizePolicy::CenterCrop, 640, 480, 224, 224);
        assert_eq!(
            p.source,
            Region {
                x: 80.0,
                y: 0.0,
                width: 480.0,
                height: 480.0
            }
        );
        let p = Placement::new(ResizePolicy::CenterCrop, 100, 300, 50, 50);
        assert_eq!(
            p.source,
            Region {
                x: 0.0,
                y: 100.0,
                width: 100.0,
                height: 100.0
            }
        );
    }

    #[test]
    fn letterbox_keeps_aspect_and_centres() {
        let p = Placement::new(ResizePolicy::Letterbox, 640, 480, 224, 224);
        assert_eq!(
            p.target,
            Region {
                x: 0.0,
                y: 28.0,
                width: 224.0,
                height: 168.0
            }
        );
        let back = p.to_source(Region {
            x: 0.0,
            y: 28.0,
            width: 224.0,
            height: 168.0,
        });
        assert_eq!(
            back,
            Region {
                x: 0.0,
                y: 0.0,
                width: 640.0,
                height: 480.0
            }
        );
    }

    #[test]
    fn letterbox_pads_with_black() {
        let white = Raster {
            width: 4,
            height: 2,
            channels: 1,
            data: vec![255; 8],
        };
        let out = resize(&mut Resizer::new(), &white, ResizePolicy::Letterbox, 4, 4).unwrap();
        assert_eq!(out.data[..4], [0, 0, 0, 0]);
        assert_eq!(out.data[4..12], [255; 8]);
        assert_eq!(out.data[12..], [0, 0, 0, 0]);
    }
}
