//! Small JPEGs of crops (the gallery's thumbnails): at most `max_side` pixels a side, a few kB.

use super::Raster;

/// The raster as a JPEG, shrunk to fit `max_side` (aspect kept); `None` when it cannot be
/// encoded (an empty raster).
pub fn jpeg(raster: &Raster, max_side: u32, quality: u8) -> Option<Vec<u8>> {
    let (w, h) = (raster.width, raster.height);
    if w == 0 || h == 0 {
        return None;
    }
    let scale = (max_side as f32 / w.max(h) as f32).min(1.0);
    let (tw, th) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    let encoded = match raster.channels {
        1 => {
            let image = image::GrayImage::from_raw(w, h, raster.data.clone())?;
            let small = image::imageops::thumbnail(&image, tw, th);
            small.write_with_encoder(encoder)
        }
        _ => {
            let image = image::RgbImage::from_raw(w, h, raster.data.clone())?;
            let small = image::imageops::thumbnail(&image, tw, th);
            small.write_with_encoder(encoder)
        }
    };
    encoded.ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crop_becomes_a_small_jpeg_and_an_empty_one_none() {
        let raster = Raster {
            width: 300,
            height: 150,
            channels: 3,
            data: (0..300 * 150 * 3).map(|i| (i % 251) as u8).collect(),
        };
        let bytes = jpeg(&raster, 96, 80).unwrap();
        let back = image::load_from_memory(&bytes).unwrap();
        assert_eq!((back.width(), back.height()), (96, 48));
        let empty = Raster {
            width: 0,
            height: 0,
            channels: 3,
            data: Vec::new(),
        };
        assert!(jpeg(&empty, 96, 80).is_none());
    }
}
