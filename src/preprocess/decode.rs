//! Frame bytes (an encoded file, an MJPEG frame or a raw camera format) to an 8-bit [`Raster`].

use super::color::{nv12_to_rgb, rgb_to_gray, yuyv_to_rgb, AfterResize};
use super::mjpeg::{check_complete, with_huffman_tables};
use super::{Pixels, PreprocessError, Raster};
use crate::frame::{Frame, PixelFormat};
use crate::model::ColorOrder;
use image::{DynamicImage, ImageFormat};
use std::borrow::Cow;
use std::io::Cursor;

/// Decodes or converts a frame to grey (`ColorOrder::Gray`) or RGB (otherwise; BGR order is
/// applied when the tensor is laid out).
pub fn decode(frame: &Frame, color: ColorOrder) -> Result<Raster, PreprocessError> {
    if let Some(pixels) = as_pixels(frame, color)? {
        return Ok(raster(
            pixels.width,
            pixels.height,
            pixels.channels,
            pixels.data.to_vec(),
        ));
    }
    let want_gray = color == ColorOrder::Gray;
    let meta = &frame.meta;
    let (width, height) = (meta.width, meta.height);
    let rgb = match meta.format {
        PixelFormat::Encoded => {
            let image = if frame.data.starts_with(&[0xFF, 0xD8]) {
                // A JPEG file may lack Huffman tables too. One whose markers cannot be followed
                // goes to the decoder as it is, which then decides, as it did before.
                let jpeg =
                    with_huffman_tables(&frame.data).unwrap_or(Cow::Borrowed(&frame.data[..]));
                decode_jpeg(&jpeg)
            } else {
                decode_limited(
                    image::ImageReader::new(Cursor::new(&frame.data[..]))
                        .with_guessed_format()
                        .map_err(|e| PreprocessError::Decode(e.to_string()))?,
                )
            };
            let image = image.map_err(|e| match (&meta.path, e) {
                (Some(path), PreprocessError::Decode(message)) => PreprocessError::DecodeFile {
                    path: path.display().to_string(),
                    message,
                },
                (_, other) => other,
            })?;
            // The size of a file is whatever it says (sources read it from the header).
            return Ok(from_dynamic(image, want_gray));
        }
        PixelFormat::Mjpeg => {
            check_complete(&frame.data)?;
            let image = decode_jpeg(&with_huffman_tables(&frame.data)?)?;
            // A camera sends the size it was set to; anything else is a damaged frame.
            if (image.width(), image.height()) != (width, height) {
                return Err(PreprocessError::DecodedSize {
                    format: meta.format.name(),
                    width,
                    height,
                    actual_width: image.width(),
                    actual_height: image.height(),
                });
            }
            return Ok(from_dynamic(image, want_gray));
        }
        PixelFormat::Gray8 => raw_bytes(frame)?.iter().flat_map(|&g| [g, g, g]).collect(),
        PixelFormat::Rgb24 => raw_bytes(frame)?.to_vec(),
        PixelFormat::Bgr24 => raw_bytes(frame)?
            .chunks_exact(3)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect(),
        PixelFormat::Yuyv => yuyv_to_rgb(raw_bytes(frame)?, width, height),
        PixelFormat::Nv12 => nv12_to_rgb(raw_bytes(frame)?, width, height),
    };
    Ok(finish(width, height, rgb, want_gray))
}

/// A frame whose bytes already are what [`decode`] would make of it, read where they lie: RGB24
/// for a colour model, grey for a grey one. `None` for the formats that need converting.
pub(super) fn as_pixels(
    frame: &Frame,
    color: ColorOrder,
) -> Result<Option<Pixels<'_>>, PreprocessError> {
    Ok(packed_pixels(frame, color)?
        .filter(|(_, after)| *after == AfterResize::Nothing)
        .map(|(pixels, _)| pixels))
}

/// A packed 8-bit frame (RGB24, BGR24, grey) read where it lies, with what its pixels need once
/// resized. `None` for the formats that are decoded or converted as a whole.
pub(super) fn packed_pixels(
    frame: &Frame,
    color: ColorOrder,
) -> Result<Option<(Pixels<'_>, AfterResize)>, PreprocessError> {
    let gray = color == ColorOrder::Gray;
    let (channels, after) = match (frame.meta.format, gray) {
        (PixelFormat::Rgb24, false) => (3, AfterResize::Nothing),
        (PixelFormat::Gray8, true) => (1, AfterResize::Nothing),
        (PixelFormat::Bgr24, false) => (3, AfterResize::SwapRedBlue),
        (PixelFormat::Gray8, false) => (1, AfterResize::Replicate),
        (PixelFormat::Rgb24, true) => (3, AfterResize::Luma { bgr: false }),
        (PixelFormat::Bgr24, true) => (3, AfterResize::Luma { bgr: true }),
        _ => return Ok(None),
    };
    let pixels = Pixels {
        width: frame.meta.width,
        height: frame.meta.height,
        channels,
        data: raw_bytes(frame)?,
    };
    Ok(Some((pixels, after)))
}

/// Decodes bytes known to be JPEG; guessing from the bytes would also let a PNG or BMP through
/// as a camera frame.
fn decode_jpeg(jpeg: &[u8]) -> Result<DynamicImage, PreprocessError> {
    decode_limited(image::ImageReader::with_format(
        Cursor::new(jpeg),
        ImageFormat::Jpeg,
    ))
}

/// Decodes within bounds that suit a board: a damaged or hostile header claiming a huge
/// image is refused before anything that size is allocated.
fn decode_limited(
    mut reader: image::ImageReader<Cursor<&[u8]>>,
) -> Result<DynamicImage, PreprocessError> {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => PreprocessError::Decode(format!(
            "{e}: edgevit decodes images of at most {MAX_SIDE} pixels a side and {} MiB decoded",
            MAX_DECODE_BYTES >> 20
        )),
        other => PreprocessError::Decode(other.to_string()),
    })
}

/// The largest image side decoded (16384: beyond any camera, and 8K is 7680).
const MAX_SIDE: u32 = 16_384;
/// The most memory one decode may take.
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// The frame's bytes, checked to hold a whole raw frame of its format and size.
pub(super) fn raw_bytes(frame: &Frame) -> Result<&[u8], PreprocessError> {
    let meta = &frame.meta;
    let unusable = PreprocessError::FrameDimensions {
        format: meta.format.name(),
        width: meta.width,
        height: meta.height,
    };
    if meta.width == 0 || meta.height == 0 {
        return Err(unusable);
    }
    let expected = meta
        .format
        .raw_len(meta.width, meta.height)
        .ok_or(unusable)?;
    frame
        .data
        .get(..expected)
        .ok_or(PreprocessError::FrameSize {
            format: meta.format.name(),
            width: meta.width,
            height: meta.height,
            expected,
            actual: frame.data.len(),
        })
}

fn from_dynamic(image: DynamicImage, want_gray: bool) -> Raster {
    let (width, height) = (image.width(), image.height());
    match image {
        DynamicImage::ImageLuma8(gray) if want_gray => raster(width, height, 1, gray.into_raw()),
        other => finish(width, height, other.into_rgb8().into_raw(), want_gray),
    }
}

fn finish(width: u32, height: u32, rgb: Vec<u8>, want_gray: bool) -> Raster {
    if want_gray {
        raster(width, height, 1, rgb_to_gray(&rgb))
    } else {
        raster(width, height, 3, rgb)
    }
}

fn raster(width: u32, height: u32, channels: u8, data: Vec<u8>) -> Raster {
    Raster {
        width,
        height,
        channels,
        data,
    }
}
