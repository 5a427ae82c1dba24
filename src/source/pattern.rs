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
        })
    }

    fn render(&self) -> Vec<u8> {
        let (w, h) = (self.config.width as usize, self.config.height as usize);
        let mut rgb = Vec::with_capacity(w * h * 3);
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
        let data = self.render();
        self.seq += 1;
        Some(Ok(Frame { meta, data }))
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
}
