//! Colour conversions to packed RGB and grey.
//!
//! Camera YUV is BT.601 limited range (what UVC and most MIPI sensors send); the integer
//! formula is the classic one used by libyuv and agrees with OpenCV within 2 levels.
//! Grey follows ITU-R 601-2 luma with Pillow's fixed-point weights, so that models trained
//! on `PIL.Image.convert("L")` see the same values.

use super::Raster;

fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

pub(super) fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    // Y below 16 (footroom) is black, as OpenCV treats it.
    let c = 298 * (y as i32 - 16).max(0);
    let d = u as i32 - 128;
    let e = v as i32 - 128;
    [
        clamp_u8((c + 409 * e + 128) >> 8),
        clamp_u8((c - 100 * d - 208 * e + 128) >> 8),
        clamp_u8((c + 516 * d + 128) >> 8),
    ]
}

/// Packed YUYV 4:2:2 (Y0 U Y1 V) to packed RGB. `data` must hold `width * height * 2` bytes.
pub fn yuyv_to_rgb(data: &[u8], width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut out = vec![0u8; w * h * 3];
    let row_bytes = w * 2;
    for row in 0..h {
        let src = &data[row * row_bytes..(row + 1) * row_bytes];
        let dst = &mut out[row * w * 3..(row + 1) * w * 3];
        for x in 0..w {
            let pair = x / 2 * 4;
            let y = src[x * 2];
            let (u, v) = (src[pair + 1], src.get(pair + 3).copied().unwrap_or(128));
            dst[x * 3..x * 3 + 3].copy_from_slice(&yuv_to_rgb(y, u, v));
        }
    }
    out
}

/// NV12 (Y plane, then interleaved U V at half resolution) to packed RGB.
pub fn nv12_to_rgb(data: &[u8], width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let chroma_stride = w.div_ceil(2) * 2;
    let (luma, chroma) = data.split_at(w * h);
    let mut out = vec![0u8; w * h * 3];
    for row in 0..h {
        let chroma_row = &chroma[row / 2 * chroma_stride..];
        for x in 0..w {
            let y = luma[row * w + x];
            let (u, v) = (chroma_row[x / 2 * 2], chroma_row[x / 2 * 2 + 1]);
            out[(row * w + x) * 3..(row * w + x) * 3 + 3].copy_from_slice(&yuv_to_rgb(y, u, v));
        }
    }
    out
}

/// Packed RGB to grey, Pillow's `convert("L")`.
pub fn rgb_to_gray(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .map(|p| luma([p[0], p[1], p[2]]))
        .collect()
}

/// One RGB pixel's grey level, Pillow's `convert("L")`.
pub(super) fn luma([r, g, b]: [u8; 3]) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

/// What the pixels of a packed 8-bit frame (RGB24, BGR24 or grey), resized as they lie, still
/// need to become what the model reads. The frame is resized first and only the model-sized
/// result is converted, so nothing of the frame's size is converted or copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterResize {
    /// Already the model's: RGB24 for a colour model, grey for a grey one.
    Nothing,
    /// BGR24 for a colour model.
    SwapRedBlue,
    /// Grey for a colour model: the level in all three channels.
    Replicate,
    /// RGB24, or BGR24 (`bgr`), for a grey model: Pillow's luma.
    Luma { bgr: bool },
}

impl AfterResize {
    /// Whether converting after resizing gives exactly what converting first would. Resizing
    /// works on each channel alone, so reordering or copying channels commutes with it; luma
    /// mixes channels and rounds, so it may differ by a grey level.
    pub fn is_exact(self) -> bool {
        !matches!(self, AfterResize::Luma { .. })
    }

    /// Converts `raster` (the resized frame, in the frame's channels) in place.
    pub fn apply(self, raster: &mut Raster) {
        let pixels = raster.width as usize * raster.height as usize;
        let data = &mut raster.data;
        match self {
            AfterResize::Nothing => {}
            AfterResize::SwapRedBlue => data
                .chunks_exact_mut(3)
                .take(pixels)
                .for_each(|p| p.swap(0, 2)),
            AfterResize::Replicate => {
                data.resize(pixels * 3, 0);
                // From the end, so that no grey level is overwritten before it is read.
                for i in (0..pixels).rev() {
                    let level = data[i];
                    data[i * 3..i * 3 + 3].fill(level);
                }
                raster.channels = 3;
            }
            AfterResize::Luma { bgr } => {
                // Pixel i's luma lands at i, which no later pixel (3i and up) reads.
                for i in 0..pixels {
                    let p = [data[i * 3], data[i * 3 + 1], data[i * 3 + 2]];
                    data[i] = luma(if bgr { [p[2], p[1], p[0]] } else { p });
                }
                data.truncate(pixels);
                raster.channels = 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_range_extremes_map_to_black_and_white() {
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        // Pure red in BT.601 limited range is about Y=81, U=90, V=240.
        let [r, g, b] = yuv_to_rgb(81, 90, 240);
        assert!(r >= 250 && g <= 5 && b <= 5, "{r} {g} {b}");
    }

    #[test]
    fn yuyv_shares_chroma_between_pixel_pairs() {
        let rgb = yuyv_to_rgb(&[16, 128, 235, 128], 2, 1);
        assert_eq!(rgb, vec![0, 0, 0, 255, 255, 255]);
    }

    #[test]
    fn gray_matches_pillow_weights() {
        assert_eq!(rgb_to_gray(&[255, 255, 255, 0, 0, 0]), vec![255, 0]);
        // Pillow: convert("L") of (255, 0, 0) is 76, of (0, 255, 0) is 150, of (0, 0, 255) is 29.
        assert_eq!(
            rgb_to_gray(&[255, 0, 0, 0, 255, 0, 0, 0, 255]),
            vec![76, 150, 29]
        );
    }
}
