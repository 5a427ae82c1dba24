//! How a ReID package compares embeddings: by cosine similarity (ReID CNNs and ViTs) or by
//! Euclidean distance (dlib's face descriptor: the same person below 0.6, on its raw
//! descriptors). The gallery scores both as one similarity, `1 - d² / 2`: the cosine for the
//! unit-length embeddings of cosine packages, and for the raw embeddings of Euclidean ones a
//! score in the same order as their distance. A Euclidean setting becomes the score it equals,
//! so one index and one set of rules serve both.

use serde::Deserialize;

/// `[reid] metric` of a package.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Cosine similarity: higher is closer, a match at or above the threshold.
    #[default]
    Cosine,
    /// Euclidean distance between the model's own embeddings: lower is closer, a match at or
    /// below the threshold.
    Euclidean,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Euclidean => "euclidean",
        }
    }

    /// The cosine similarity that `value`, in this metric, equals.
    pub fn to_similarity(self, value: f32) -> f32 {
        match self {
            Metric::Cosine => value,
            Metric::Euclidean => 1.0 - value * value / 2.0,
        }
    }

    /// A cosine similarity in this metric.
    pub fn from_similarity(self, similarity: f32) -> f32 {
        match self {
            Metric::Cosine => similarity,
            Metric::Euclidean => (2.0 - 2.0 * similarity).max(0.0).sqrt(),
        }
    }

    /// The values a setting in this metric may take.
    pub fn range(self) -> std::ops::RangeInclusive<f32> {
        match self {
            Metric::Cosine => -1.0..=1.0,
            Metric::Euclidean => 0.0..=f32::MAX,
        }
    }

    /// What a setting in this metric is, for messages.
    pub fn meaning(self) -> &'static str {
        match self {
            Metric::Cosine => "a cosine similarity, between -1 and 1",
            Metric::Euclidean => "a Euclidean distance, 0 or more",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_distance_and_its_cosine_agree_on_unit_vectors() {
        let (a, b) = ([0.6f32, 0.8], [1.0f32, 0.0]);
        let cosine = a[0] * b[0] + a[1] * b[1];
        let distance = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
        assert!((Metric::Euclidean.from_similarity(cosine) - distance).abs() < 1e-6);
        assert!((Metric::Euclidean.to_similarity(distance) - cosine).abs() < 1e-6);
        // dlib's threshold 0.6 is a cosine of 0.82.
        assert!((Metric::Euclidean.to_similarity(0.6) - 0.82).abs() < 1e-6);
        assert_eq!(Metric::Cosine.to_similarity(0.6), 0.6);
    }
}
