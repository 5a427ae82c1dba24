//! Pictures of what the attention showed: each image a record came from, saved as PNG with
//! its zoom region (red), the zoom's crop (cyan) and part boxes (yellow) drawn on it, beside another sink's output
//! (`edgevit infer --draw DIR`). Images under 256 pixels are enlarged by a whole factor.

use super::{CameraStatusRecord, Record, ResultRecord, Sink, SinkError};
use crate::interpret::{Interpretation, PixelBox};
use std::path::{Path, PathBuf};

/// Part boxes (TransFG) are drawn in amber, the zoom region in red, the zoom's crop (what the
/// second pass saw, inside the frame) in cyan.
const PART_COLOUR: [u8; 3] = [255, 210, 0];
const CROP_COLOUR: [u8; 3] = [0, 190, 230];

pub struct DrawSink {
    inner: Box<dyn Sink>,
    dir: PathBuf,
}

impl DrawSink {
    /// Draws into `dir` (created if missing), and passes every record on to `inner`.
    pub fn new(inner: Box<dyn Sink>, dir: &Path) -> Result<Self, SinkError> {
        std::fs::create_dir_all(dir).map_err(|source| SinkError::Open {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(DrawSink {
            inner,
            dir: dir.to_path_buf(),
        })
    }

    fn draw(&self, record: &ResultRecord) -> Result<(), SinkError> {
        let Some(input) = &record.frame.input else {
            return Ok(());
        };
        let write_error = |e: image::ImageError| SinkError::Write {
            sink: self.dir.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        };
        let picture = image::open(input).map_err(write_error)?.into_rgb8();
        // A small image (a 28x28 digit) is enlarged, pixels kept square, so the boxes show.
        let scale = (256 / picture.width().max(picture.height()).max(1)).max(1);
        let mut picture = image::imageops::resize(
            &picture,
            picture.width() * scale,
            picture.height() * scale,
            image::imageops::FilterType::Nearest,
        );
        annotate(&mut picture, &record.result, scale);
        self.save(picture, record)
    }

    fn save(&self, picture: image::RgbImage, record: &ResultRecord) -> Result<(), SinkError> {
        let stem = record
            .frame
            .input
            .as_deref()
            .and_then(|input| Path::new(input).file_stem())
            .map_or_else(
                || format!("frame-{}", record.frame.seq),
                |s| s.to_string_lossy().into_owned(),
            );
        picture
            .save(self.dir.join(format!("{stem}.png")))
            .map_err(|e| SinkError::Write {
                sink: self.dir.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })
    }
}

/// Draws what `result` found on `picture`, which is the frame enlarged `scale` times: each
/// scene object's box with its caption (track, label, identity) in its track's colour, its
/// zoom region and parts and its key points; an identified crop's box; a classification's
/// zoom region and parts. Shared by `--draw` and the web page's live view.
pub fn annotate(picture: &mut image::RgbImage, result: &Interpretation, scale: u32) {
    let scaled = |b: PixelBox| PixelBox {
        x0: b.x0 * scale,
        y0: b.y0 * scale,
        x1: b.x1 * scale,
        y1: b.y1 * scale,
    };
    // Thick enough to see, thin enough not to hide what is inside.
    let width = (picture.width().max(picture.height()) / 150).max(1);
    let result = match result {
        Interpretation::Classification(result) => result,
        Interpretation::Scene(scene) => {
            // Text a third of a percent of the picture's height a dot: readable at 1080p.
            let dot = (picture.height() / 300).max(1);
            for object in &scene.objects {
                let colour = track_colour(object.track.unwrap_or(0));
                let bounds = scaled(object.object.bounds);
                rectangle(picture, bounds, colour, width);
                if let Some(region) = object.region {
                    rectangle(picture, scaled(region), [230, 20, 20], width);
                }
                for part in &object.parts {
                    rectangle(picture, scaled(part.bounds), PART_COLOUR, width);
                }
                for &[x, y] in &object.object.keypoints {
                    let (x, y) = (x.max(0.0) as u32 * scale, y.max(0.0) as u32 * scale);
                    let spot = PixelBox {
                        x0: x.saturating_sub(width),
                        y0: y.saturating_sub(width),
                        x1: x + width + 1,
                        y1: y + width + 1,
                    };
                    rectangle(picture, spot, [255, 255, 255], width + 1);
                }
                label(picture, bounds, &caption(object), colour, dot);
            }
            return;
        }
        Interpretation::Identification(identified) => {
            rectangle(picture, scaled(identified.bounds), [20, 200, 60], width);
            return;
        }
    };
    for part in result.parts.iter().flatten() {
        rectangle(picture, scaled(part.bounds), PART_COLOUR, width);
    }
    if let Some(region) = &result.region {
        rectangle(picture, scaled(region.crop.inside), CROP_COLOUR, width);
        rectangle(picture, scaled(region.bounds), [230, 20, 20], width + 1);
    }
}

/// What a box's caption says: `#7 person id-000003` (track, label, and the identity's name or
/// id, or the fine label).
fn caption(object: &crate::interpret::SceneObject) -> String {
    let mut text = String::new();
    if let Some(track) = object.track {
        text.push_str(&format!("#{track} "));
    }
    text.push_str(&object.object.label);
    if let Some(who) = object
        .name
        .as_ref()
        .or(object.identity.as_ref())
        .or(object.fine_label.as_ref())
    {
        text.push(' ');
        text.push_str(who);
    }
    text
}

/// Writes `text` in white on a `colour` band just above `bounds` (inside it when the box
/// touches the top), each font pixel `dot` pixels square. Characters the font lacks are blank.
fn label(image: &mut image::RgbImage, bounds: PixelBox, text: &str, colour: [u8; 3], dot: u32) {
    use font8x8::UnicodeFonts;
    let (w, h) = image.dimensions();
    let height = 10 * dot;
    let y0 = if bounds.y0 >= height {
        bounds.y0 - height
    } else {
        bounds.y0
    };
    let x1 = (bounds.x0 + text.chars().count() as u32 * 8 * dot + 2 * dot).min(w);
    for y in y0..(y0 + height).min(h) {
        for x in bounds.x0..x1 {
            image.put_pixel(x, y, image::Rgb(colour));
        }
    }
    for (i, c) in text.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS.get(c).unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for column in 0..8 {
                if bits >> column & 1 == 0 {
                    continue;
                }
                let x = bounds.x0 + dot + (i as u32 * 8 + column) * dot;
                let y = y0 + dot + row as u32 * dot;
                for (px, py) in (0..dot).flat_map(|dx| (0..dot).map(move |dy| (x + dx, y + dy))) {
                    if px < w && py < h {
                        image.put_pixel(px, py, image::Rgb([255, 255, 255]));
                    }
                }
            }
        }
    }
}

/// A colour per track, the same in every picture: hues spread by the golden ratio.
fn track_colour(track: u64) -> [u8; 3] {
    let hue = (track as f32 * 0.618_034).fract() * 6.0;
    let x = (1.0 - (hue % 2.0 - 1.0).abs()) * 255.0;
    let (c, x) = (255u8, x as u8);
    match hue as u32 {
        0 => [c, x, 0],
        1 => [x, c, 0],
        2 => [0, c, x],
        3 => [0, x, c],
        4 => [x, 0, c],
        _ => [c, 0, x],
    }
}

/// Draws the outline of `b`, `width` pixels thick inside the box.
fn rectangle(image: &mut image::RgbImage, b: PixelBox, colour: [u8; 3], width: u32) {
    let (w, h) = image.dimensions();
    let (x1, y1) = (b.x1.min(w), b.y1.min(h));
    for y in b.y0..y1 {
        for x in b.x0..x1 {
            let edge = x < b.x0 + width || x + width >= x1 || y < b.y0 + width || y + width >= y1;
            if edge {
                image.put_pixel(x, y, image::Rgb(colour));
            }
        }
    }
}

impl Sink for DrawSink {
    fn describe(&self) -> String {
        format!(
            "{} (pictures in {})",
            self.inner.describe(),
            self.dir.display()
        )
    }

    fn emit(&mut self, record: &Record) -> Result<(), SinkError> {
        self.inner.emit(record)?;
        if let Record::Result(result) = record {
            self.draw(result)?;
        }
        Ok(())
    }

    fn camera_status(&mut self, status: &CameraStatusRecord) -> Result<(), SinkError> {
        self.inner.camera_status(status)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlines_are_drawn_inside_the_box_only() {
        let mut image = image::RgbImage::new(10, 8);
        rectangle(
            &mut image,
            PixelBox {
                x0: 2,
                y0: 1,
                x1: 7,
                y1: 6,
            },
            [255, 0, 0],
            1,
        );
        let red = |x, y| image.get_pixel(x, y).0 == [255, 0, 0];
        assert!(red(2, 1) && red(6, 5) && red(4, 1) && red(2, 3));
        assert!(!red(4, 3), "the inside stays");
        assert!(!red(7, 1) && !red(1, 1), "nothing outside");
    }
}
