//! MJPEG frames decoded at 1/2, 1/4 or 1/8 of their size when the model input is much smaller
//! than the frame: the scaled inverse DCT of `jpeg-decoder` skips the work of the pixels the
//! resize would average away anyway. Only for the model input: zoom, parts and ReID crops go
//! back to the full frame, decoded in full.

use super::resize::Placement;
use super::Raster;
use jpeg_decoder::PixelFormat as JpegPixels;

/// The largest reduction (8, 4 or 2) that keeps the frame's region at least twice the model
/// input on both axes; 1 when none does.
pub fn reduction(placement: &Placement) -> u32 {
    let (source, target) = (placement.source, placement.target);
    [8u32, 4, 2]
        .into_iter()
        .find(|&s| {
            source.width / s as f64 >= 2.0 * target.width
                && source.height / s as f64 >= 2.0 * target.height
        })
        .unwrap_or(1)
}

/// Decodes `jpeg` (with its Huffman tables) at `1 / factor` of `width x height`, grey or RGB.
/// `None` when this decoder cannot: the frame is not that size, or not 8-bit grey or YCbCr, or
/// is damaged. The full decoder then decides, and says why.
pub fn decode(jpeg: &[u8], width: u32, height: u32, factor: u32, gray: bool) -> Option<Raster> {
    // jpeg-decoder panics on some malformed headers (an unexpected component count or
    // precision in `info`): a camera's damaged frame must be an error, never a panic.
    std::panic::catch_unwind(|| decode_unguarded(jpeg, width, height, factor, gray))
        .ok()
        .flatten()
}

fn decode_unguarded(
    jpeg: &[u8],
    width: u32,
    height: u32,
    factor: u32,
    gray: bool,
) -> Option<Raster> {
    let mut decoder = jpeg_decoder::Decoder::new(jpeg);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    if (u32::from(info.width), u32::from(info.height)) != (width, height) {
        return None;
    }
    let wanted = |len: u32| u16::try_from(len.div_ceil(factor)).ok();
    let (w, h) = decoder.scale(wanted(width)?, wanted(height)?).ok()?;
    let pixels = decoder.decode().ok()?;
    let (w, h) = (u32::from(w), u32::from(h));
    let (channels, data) = match (info.pixel_format, gray) {
        (JpegPixels::L8, true) => (1, pixels),
        (JpegPixels::L8, false) => (3, pixels.iter().flat_map(|&g| [g, g, g]).collect()),
        (JpegPixels::RGB24, false) => (3, pixels),
        (JpegPixels::RGB24, true) => (1, super::rgb_to_gray(&pixels)),
        _ => return None,
    };
    (data.len() == (w * h) as usize * channels as usize).then_some(Raster {
        width: w,
        height: h,
        channels,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::PixelFormat;
    use crate::model::ResizePolicy;

    #[test]
    fn the_reduction_keeps_twice_the_model_input() {
        let placement = |w, h| Placement::new(ResizePolicy::Stretch, w, h, 224, 224);
        assert_eq!(reduction(&placement(1920, 1080)), 2);
        assert_eq!(reduction(&placement(3840, 2160)), 4);
        assert_eq!(reduction(&placement(640, 480)), 1);
        let small = Placement::new(ResizePolicy::CenterCrop, 1920, 1080, 28, 28);
        assert_eq!(reduction(&small), 8);
    }

    #[test]
    fn a_reduced_frame_looks_like_the_full_one_shrunk() {
        let frame = crate::bench::frames::synthetic_frame(1920, 1080, PixelFormat::Mjpeg).unwrap();
        let reduced = decode(&frame.data, 1920, 1080, 4, false).unwrap();
        assert_eq!(
            (reduced.width, reduced.height, reduced.channels),
            (480, 270, 3)
        );
        let full = image::load_from_memory(&frame.data).unwrap().into_rgb8();
        // Each reduced pixel against the mean of its 4x4 block of the full decode.
        let mut worst = 0u32;
        for y in 0..270usize {
            for x in 0..480usize {
                for c in 0..3usize {
                    let mut sum = 0u32;
                    for dy in 0..4 {
                        for dx in 0..4 {
                            sum += u32::from(
                                full.get_pixel((x * 4 + dx) as u32, (y * 4 + dy) as u32)[c],
                            );
                        }
                    }
                    let mean = (sum + 8) / 16;
                    let got = u32::from(reduced.data[(y * 480 + x) * 3 + c]);
                    worst = worst.max(mean.abs_diff(got));
                }
            }
        }
        assert!(worst <= 24, "worst difference {worst}");
        // Another size than the camera said, and garbage: no reduced decode, no panic.
        assert!(decode(&frame.data, 1280, 720, 4, false).is_none());
        assert!(decode(&frame.data[..frame.data.len() / 3], 1920, 1080, 4, false).is_none());
        assert!(decode(b"\xFF\xD8\xFF\xC0 nonsense", 1920, 1080, 4, true).is_none());
    }
}
