//! A synthetic test pattern: eight vertical colour bars (white, yellow, cyan, green, magenta,
//! red, blue, black, like a camera's test mode) with a small square that moves each frame,
//! so every frame differs.

use super::{default_camera, FrameResult, FrameSource, Pacer, SourceError};
use crate::frame::{Frame, FrameMeta, PixelFormat};
use serde::Deserialize;
use std::time::SystemTime;

/// `kind = "pattern"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    /// How many frames to produce; endless when absent.
    pub frames: Option<u64>,
    /// Frames per second; 0 produces them as fast as the pipeline takes them.
    #[serde(default)]
    pub fps: f64,
    /// Camera id reported with the results.
    #[serde(default = "default_camera")]
    pub camera: String,
}

fn default_width() -> u32 {
    640
}

fn default_height() -> u32 {
    480
}

/// The bar colours, left to right.
pub const BARS: [[u8; 3]; 8] = [
    [255, 255, 255],
    [255, 255, 0],
    [0, 255, 255],
    [0, 255, 0],
    [255, 0, 255],
    [255, 0, 0],
    [0, 0, 255],
    [0, 0, 0],
];

#[derive(Debug)]
pub struct PatternSource {
    config: PatternConfig,
    pacer: Pacer,
    seq: u64,
    /// A frame's buffer the pipeline gave back, drawn over for the next frame.
    spare: Option<Vec<u8>>,
}

impl PatternSource {
    pub fn new(config: &PatternConfig) -> Result<Self, SourceError> {
        if config.width < 8 || config.height < 8 {
            return Err(SourceError::Config(format!(
                "pattern size must be at least 8x8, got {}x{}",
                config.width, config.height
            )));
        }
        Ok(PatternSource {
            config: config.clone(),
            pacer: Pacer::new(config.fps)?,
            seq: 0,
            spare: None,
        })
    }

    /// Draws the bars and the moving square into `rgb`, replacing what it held.
    fn render(&self, mut rgb: Vec<u8>) -> Vec<u8> {
        let (w, h) = (self.config.width as usize, self.config.height as usize);
        rgb.clear();
        rgb.reserve(w * h * 3);
        for _ in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(&BARS[x * BARS.len() / w]);
            }
        }
        let side = (w.min(h) / 8).max(1);
        let x0 = (self.seq as usize * 4) % (w - side);
        let y0 = (h - side) / 2;
        for y in y0..y0 + side {
            for x in x0..x0 + side {
                rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[128, 128, 128]);
            }
        }
        rgb
    }
}

impl FrameSource for PatternSource {
    fn describe(&self) -> String {
        format!("pattern {}x{}", self.config.width, self.config.height)
    }

    fn next_frame(&mut self) -> Option<FrameResult> {
        if self.config.frames.is_some_and(|n| self.seq >= n) {
            return None;
        }
        self.pacer.wait();
        let meta = FrameMeta {
            seq: self.seq,
            captured_at: SystemTime::now(),
            source: self.describe(),
            camera: self.config.camera.clone(),
            camera_index: 0,
            path: None,
            width: self.config.width,
            height: self.config.height,
            format: PixelFormat::Rgb24,
        };
        let spare = self.spare.take().unwrap_or_default();
        let data = self.render(spare);
        self.seq += 1;
        Some(Ok(Frame { meta, data }))
    }

    fn recycle(&mut self, data: Vec<u8>) {
        self.spare = Some(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_the_eight_bars_and_stops_after_the_frame_count() {
        let config = PatternConfig {
            width: 80,
            height: 16,
            frames: Some(2),
            fps: 0.0,
            camera: "test".into(),
        };
        let mut source = PatternSource::new(&config).unwrap();
        let frame = source.next_frame().unwrap().unwrap();
        assert_eq!(frame.data.len(), 80 * 16 * 3);
        for (bar, colour) in BARS.iter().enumerate() {
            let x = bar * 10 + 5;
            assert_eq!(
                &frame.data[x * 3..x * 3 + 3],
                colour,
                "bar {bar} in the top row"
            );
        }
        let second = source.next_frame().unwrap().unwrap();
        assert_ne!(frame.data, second.data, "the square moves");
        assert!(source.next_frame().is_none());
    }

    #[test]
    fn a_buffer_given_back_is_drawn_over() {
        let config = PatternConfig {
            width: 40,
            height: 8,
            frames: Some(3),
            fps: 0.0,
            camera: "test".into(),
        };
        let mut recycling = PatternSource::new(&config).unwrap();
        let mut fresh = PatternSource::new(&config).unwrap();
        for _ in 0..2 {
            fresh.next_frame().unwrap().unwrap();
        }
        let mut given = recycling.next_frame().unwrap().unwrap().data;
        recycling.next_frame().unwrap().unwrap();
        given.fill(7);
        let at = given.as_ptr();
        recycling.recycle(given);
        let third = recycling.next_frame().unwrap().unwrap();
        assert_eq!(third.data.as_ptr(), at, "the buffer given back");
        assert_eq!(third.data, fresh.next_frame().unwrap().unwrap().data);
    }
}
