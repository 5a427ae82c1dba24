//! `[gallery]`: where identities are kept and how embeddings are matched to them.

use super::Metric;
use serde::Deserialize;
use std::path::PathBuf;

/// `[gallery]` of a run configuration (ReID models).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GalleryConfig {
    /// The gallery file (SQLite). Default: `gallery.sqlite` in `state_dir`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// How close an embedding must be to the closest stored identity to be it; further, a new
    /// identity is minted. In the package's metric (`[reid] metric`): a cosine similarity at
    /// or above which it matches (default 0.6; OSNet x0.25 measures about 0.8 to 0.99 for one
    /// person under crops, mirroring, blur and light, and 0.4 to 0.5 between two people), or a
    /// Euclidean distance at or below which it matches. Default: the package's
    /// `[reid] threshold`, else 0.6.
    #[serde(default)]
    pub threshold: Option<f32>,
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
    /// A matched embedding is kept as a further exemplar when it is further than this from the
    /// identity's closest exemplar (it shows the person in a new way), in the package's metric.
    /// Default: a cosine similarity of 0.9 (a Euclidean distance of 0.45).
    #[serde(default)]
    pub novelty: Option<f32>,
    /// Unnamed identities unseen for this many hours are forgotten; 0 keeps them for ever.
    /// Named identities (enrolled, or renamed) never expire.
    #[serde(default = "default_expire_after_h")]
    pub expire_after_h: u64,
    /// Share identities with the other boards on the same MQTT broker (`[sink] kind =
    /// "mqtt"`), so that a person has one id on every board. Ids then name the board that
    /// minted them (`id-<device>-000042`).
    #[serde(default)]
    pub fleet: bool,
    /// Crops kept per identity as small JPEGs (its best: largest), so that an unnamed id can be
    /// seen before it is named (`edgevit gallery show`); 0 keeps none. They stay in the
    /// board's gallery file: fleet sync does not share them. Default 3.
    #[serde(default = "default_thumbnails")]
    pub thumbnails: usize,
    /// With `fleet`: also share the thumbnails (pictures of faces and people) with the other
    /// boards, and take theirs. Off by default: pictures stay on the board that took them.
    #[serde(default)]
    pub fleet_thumbnails: bool,
    /// Searches go through an approximate index (an HNSW graph, built in memory beside the
    /// exemplars, about as large again) once the gallery holds more exemplars than this; 0
    /// never. Below it every exemplar is compared (exact). Measured in docs/reid.md: flat
    /// search costs about 1 ms per embedding at 10k exemplars of 512 numbers, 12 to 19 ms at
    /// 100k; through the graph 1.2 ms at 100k, recall@1 1.000.
    #[serde(default = "default_hnsw_above")]
    pub hnsw_above: usize,
    /// Candidates the approximate search keeps (HNSW's efSearch): higher finds the exact best
    /// exemplar more often, and costs more.
    #[serde(default = "default_hnsw_ef")]
    pub hnsw_ef: usize,
    /// A forgotten or merged identity's tombstone (what tells the fleet, and boards that were
    /// away, that it is gone) is dropped this many days after it was made, and its retained
    /// message cleared from the broker; 0 keeps them for ever. A board away for longer than
    /// this brings back what was forgotten while it was away.
    #[serde(default = "default_tombstone_days")]
    pub tombstone_days: u64,
    /// With `fleet`: how much closer than `threshold` (in cosine similarity; 0.05 is about a
    /// Euclidean distance of 0.51 for 0.6) another board's identity must be to one held here
    /// for the two to be joined. The join is said to every board and followed by all: wrong,
    /// it makes two people one everywhere, while an extra id is only one `edgevit gallery
    /// merge` away. Measured on the fleet harness's two people (bench/fleet): up to 0.62
    /// between them, 0.84 or more for one person.
    #[serde(default = "default_fleet_margin")]
    pub fleet_margin: f32,
    /// The package's metric and threshold (`[reid]` of its `model.toml`), set when the gallery
    /// is opened for a model ([`GalleryConfig::for_package`]).
    #[serde(skip)]
    pub metric: Metric,
    #[serde(skip)]
    pub package_threshold: Option<f32>,
}

/// The threshold when neither the run nor the package sets one (in either metric: dlib's 0.6
/// distance for faces, 0.6 similarity for body ReID).
const DEFAULT_THRESHOLD: f32 = 0.6;
/// The novelty when the run sets none, as a cosine similarity.
const DEFAULT_NOVELTY: f32 = 0.9;
fn default_confirm_frames() -> u32 {
    3
}
fn default_tentative_timeout_s() -> u64 {
    10
}
fn default_max_exemplars() -> usize {
    100
}
fn default_thumbnails() -> usize {
    3
}
fn default_expire_after_h() -> u64 {
    24 * 7
}
fn default_hnsw_above() -> usize {
    50_000
}
fn default_hnsw_ef() -> usize {
    64
}
fn default_tombstone_days() -> u64 {
    30
}
fn default_fleet_margin() -> f32 {
    0.05
}

impl Default for GalleryConfig {
    fn default() -> Self {
        GalleryConfig {
            path: None,
            threshold: None,
            confirm_frames: default_confirm_frames(),
            tentative_timeout_s: default_tentative_timeout_s(),
            max_exemplars: default_max_exemplars(),
            novelty: None,
            expire_after_h: default_expire_after_h(),
            fleet: false,
            thumbnails: default_thumbnails(),
            fleet_thumbnails: false,
            hnsw_above: default_hnsw_above(),
            hnsw_ef: default_hnsw_ef(),
            tombstone_days: default_tombstone_days(),
            fleet_margin: default_fleet_margin(),
            metric: Metric::Cosine,
            package_threshold: None,
        }
    }
}

impl GalleryConfig {
    /// This configuration for a package that compares by `metric`, with `threshold` its own
    /// default (`[reid]` of its `model.toml`).
    pub fn for_package(&self, metric: Metric, threshold: Option<f32>) -> GalleryConfig {
        GalleryConfig {
            metric,
            package_threshold: threshold,
            ..self.clone()
        }
    }

    /// The threshold in the package's metric: the run's, else the package's, else 0.6.
    pub fn threshold(&self) -> f32 {
        self.threshold
            .or(self.package_threshold)
            .unwrap_or(DEFAULT_THRESHOLD)
    }

    /// The cosine similarity at or above which an embedding matches.
    pub fn match_at(&self) -> f32 {
        self.metric.to_similarity(self.threshold())
    }

    /// The cosine similarity at or above which another board's identity is joined to one
    /// held here (`fleet_margin` above [`GalleryConfig::match_at`]).
    pub fn fleet_join_at(&self) -> f32 {
        (self.match_at() + self.fleet_margin).min(1.0)
    }

    /// The cosine similarity below which a matched embedding is kept as a further exemplar.
    pub fn learn_below(&self) -> f32 {
        self.novelty
            .map(|n| self.metric.to_similarity(n))
            .unwrap_or(DEFAULT_NOVELTY)
    }

    /// Refuses values that cannot work.
    pub fn check(&self) -> Result<(), String> {
        let values = [
            ("threshold", Some(self.threshold())),
            ("novelty", self.novelty),
        ];
        for (key, value) in values {
            let Some(value) = value else { continue };
            if !self.metric.range().contains(&value) {
                return Err(format!(
                    "gallery.{key} is {} (the model's [reid] metric = \"{}\"); got {value}",
                    self.metric.meaning(),
                    self.metric.name()
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.fleet_margin) {
            return Err(format!(
                "gallery.fleet_margin is a cosine similarity from 0 to 1; got {}",
                self.fleet_margin
            ));
        }
        if self.confirm_frames == 0 {
            return Err("gallery.confirm_frames must be at least 1".into());
        }
        if self.max_exemplars == 0 {
            return Err("gallery.max_exemplars must be at least 1".into());
        }
        if !(1..=4096).contains(&self.hnsw_ef) {
            return Err(format!(
                "gallery.hnsw_ef must be from 1 to 4096; got {}",
                self.hnsw_ef
            ));
        }
        Ok(())
    }

    /// When searches use the approximate index.
    pub fn search_policy(&self) -> super::index::SearchPolicy {
        super::index::SearchPolicy {
            hnsw_above: self.hnsw_above,
            ef: self.hnsw_ef,
        }
    }
}
