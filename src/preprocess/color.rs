//! Colour conversions to packed RGB and grey.
//!
//! Camera YUV is BT.601 limited range (what UVC and most MIPI sensors send); the integer
//! formula is the classic one used by libyuv and agrees with OpenCV within 2 levels.
//! Grey follows ITU-R 601-2 luma with Pillow's fixed-point weights, so that models trained
//! on `PIL.Image.convert("L")` see the same values.

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
