//! `[tracker]`: how objects are followed from frame to frame, and how often the second model
//! looks at each one.

use serde::Deserialize;

/// `[tracker]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    /// Detections scoring at least this start tracks and are matched first; those between
    /// `detect.min_score` and this only keep existing tracks alive (ByteTrack's second pass).
    pub high_score: f32,
    /// A detection continues a track when their boxes overlap by at least this IoU (first pass).
    pub match_iou: f32,
    /// The same for the low-scoring detections' pass, stricter.
    pub low_match_iou: f32,
    /// A track is reported once it has been seen in this many frames in a row.
    pub min_hits: u32,
    /// A track not seen for this many frames ends.
    pub max_age: u32,
    /// The second model (classify or ReID) looks at each track at most once every this many
    /// frames, on its best crop; its label or identity is the vote of those looks.
    pub every_frames: u32,
    /// The detector runs on one frame in this many; on the others each track's box is the
    /// motion model's prediction (and the model does not look). 1: every frame.
    pub detect_every: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            high_score: 0.5,
            match_iou: 0.2,
            low_match_iou: 0.5,
            min_hits: 3,
            max_age: 30,
            every_frames: 10,
            detect_every: 1,
        }
    }
}

impl TrackerConfig {
    /// Refuses values that would make every track flicker or never end.
    pub fn check(&self) -> Result<(), String> {
        for (key, v) in [
            ("high_score", self.high_score),
            ("match_iou", self.match_iou),
            ("low_match_iou", self.low_match_iou),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("tracker.{key} must be between 0 and 1, got {v}"));
            }
        }
        for (key, v) in [
            ("min_hits", self.min_hits),
            ("max_age", self.max_age),
            ("every_frames", self.every_frames),
            ("detect_every", self.detect_every),
        ] {
            if v == 0 {
                return Err(format!("tracker.{key} must be at least 1"));
            }
        }
        Ok(())
    }
}
