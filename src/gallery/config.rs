//! `[gallery]`: where identities are kept and how embeddings are matched to them.

use serde::Deserialize;
use std::path::PathBuf;

/// `[gallery]` of a run configuration (ReID models).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GalleryConfig {
    /// The gallery file (SQLite). Default: `gallery.sqlite` in `state_dir`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Cosine similarity at or above which an embedding is the closest stored identity;
    /// below it, a new identity is minted. OSNet x0.25 measures about 0.8 to 0.99 for one
    /// person under crops, mirroring, blur and light, and 0.4 to 0.5 between two people.
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// Frames that must match a new identity before it is confirmed (reported with
    /// `"confirmed": true`); one odd frame then cannot mint a lasting identity.
    #[serde(default = "default_confirm_frames")]
    pub confirm_frames: u32,
    /// An identity that is still unconfirmed this long after it was last seen is discarded.
    #[serde(default = "default_tentative_timeout_s")]
    pub tentative_timeout_s: u64,
    /// Exemplars kept per identity; past it, the one closest to another of the same identity
    /// (the most redundant) is dropped.
    #[serde(default = "default_max_exemplars")]
    pub max_exemplars: usize,
    /// A matched embedding is kept as a further exemplar when its similarity to the identity's
    /// closest exemplar is below this (it shows the person in a new way).
    #[serde(default = "default_novelty")]
    pub novelty: f32,
    /// Unnamed identities unseen for this many hours are forgotten; 0 keeps them for ever.
    /// Named identities (enrolled, or renamed) never expire.
    #[serde(default = "default_expire_after_h")]
    pub expire_after_h: u64,
    /// Share identities with the other boards on the same MQTT broker (`[sink] kind =
    /// "mqtt"`), so that a person has one id on every board. Ids then name the board that
    /// minted them (`id-<device>-000042`).
    #[serde(default)]
    pub fleet: bool,
}

fn default_threshold() -> f32 {
    0.6
}
fn default_confirm_frames() -> u32 {
    3
}
fn default_tentative_timeout_s() -> u64 {
    10
}
fn default_max_exemplars() -> usize {
    100
}
fn default_novelty() -> f32 {
    0.9
}
fn default_expire_after_h() -> u64 {
    24 * 7
}

impl Default for GalleryConfig {
    fn default() -> Self {
        GalleryConfig {
            path: None,
            threshold: default_threshold(),
            confirm_frames: default_confirm_frames(),
            tentative_timeout_s: default_tentative_timeout_s(),
            max_exemplars: default_max_exemplars(),
            novelty: default_novelty(),
            expire_after_h: default_expire_after_h(),
            fleet: false,
        }
    }
}

impl GalleryConfig {
    /// Refuses values that cannot work.
    pub fn check(&self) -> Result<(), String> {
        for (key, value) in [("threshold", self.threshold), ("novelty", self.novelty)] {
            if !(-1.0..=1.0).contains(&value) {
                return Err(format!(
                    "gallery.{key} is a cosine similarity, between -1 and 1; got {value}"
                ));
            }
        }
        if self.confirm_frames == 0 {
            return Err("gallery.confirm_frames must be at least 1".into());
        }
        if self.max_exemplars == 0 {
            return Err("gallery.max_exemplars must be at least 1".into());
        }
        Ok(())
    }
}
