//! Tracking: objects followed across frames (a Kalman motion model and ByteTrack's two-pass
//! association, `tracker.rs`), and per track the votes of the second model's looks and the
//! choice of when and on which crop to look (`vote.rs`).

mod config;
mod kalman;
mod tracker;
mod vote;

pub use config::TrackerConfig;
pub use kalman::Motion;
pub use tracker::{Assigned, Seen, Step, Tracker};
pub use vote::{Looks, Vote};
