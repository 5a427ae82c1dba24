//! The `[detect]` table of a detector's `model.toml`, the same keys as overrides in a run's
//! `[detector]`, and the settings resolved from both.

use super::DetectError;
use serde::Deserialize;

/// How a detector's outputs are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectFormat {
    /// Decoded boxes `[1, N, 6]`: x0, y0, x1, y1 (model input pixels), score, class.
    Boxes,
    /// A raw YOLO head `[1, 4 + C, A]` (or `[1, A, 4 + C]`): cx, cy, w, h in input pixels,
    /// then one score per class; suppression runs here (YOLOv8/v11, RT-DETR-style exports).
    Yolo,
    /// SSD-style regressors `[1, A, 4 + 2K]` and scores `[1, A, 1]` over a generated anchor
    /// grid (`strides`, `anchors_per_cell`), with K key points (MediaPipe's BlazeFace).
    Anchors,
}

/// The anchor grid of an SSD-style detector (`format = "anchors"`), from `[detect]`'s
/// `strides`, `anchors_per_cell`, `keypoints` and `logits`. Per stride, a grid of
/// `ceil(height / stride) x ceil(width / stride)` cells, row by row, `per_cell` anchors a cell,
/// centred at `((x + 0.5) / grid_w, (y + 0.5) / grid_h)`. The regressors are offsets in input
/// pixels from the anchor centre (box centre, width, height, then each key point's x, y).
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorSpec {
    pub strides: Vec<u32>,
    pub per_cell: Vec<usize>,
    pub keypoints: usize,
    pub logits: bool,
}

/// `[detect]` in a detector's `model.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectSpec {
    /// `boxes`, `yolo` or `anchors`.
    pub format: DetectFormat,
    /// Boxes scoring below this are dropped (0 to 1). Default 0.3.
    pub min_score: Option<f32>,
    /// Boxes of one class overlapping a better one by more than this IoU are dropped. Default 0.45.
    pub nms_iou: Option<f32>,
    /// At most this many objects a frame, best first. Default 100.
    pub max_objects: Option<usize>,
    /// Only these classes, by label (`["person"]`). Default: every class.
    pub classes: Option<Vec<String>>,
    /// Boxes narrower or lower than this, in frame pixels, are dropped. Default 0.
    pub min_size: Option<u32>,
    /// `format = "anchors"`: the stride of each grid in input pixels, in the order the
    /// outputs list them (BlazeFace short range: `[8, 16]`).
    #[serde(default)]
    pub strides: Vec<u32>,
    /// `format = "anchors"`: anchors per cell of each grid (BlazeFace short range: `[2, 6]`).
    #[serde(default)]
    pub anchors_per_cell: Vec<usize>,
    /// Key points after the box in each row (BlazeFace: 6).
    #[serde(default)]
    pub keypoints: usize,
    /// What each key point is (`["right_eye", "left_eye", "nose", "mouth", ...]`): face
    /// alignment looks for `right_eye`, `left_eye` and `mouth` (the person's right and left).
    #[serde(default)]
    pub keypoint_names: Vec<String>,
    /// `format = "anchors"`: the scores are logits, made probabilities by a sigmoid
    /// (BlazeFace's are). Default true.
    pub logits: Option<bool>,
}

impl DetectSpec {
    /// The anchor grid of `format = "anchors"`, refused when its keys do not describe one.
    pub fn anchor_grid(&self) -> Result<AnchorSpec, DetectError> {
        if self.strides.is_empty()
            || self.strides.len() != self.anchors_per_cell.len()
            || self.strides.contains(&0)
            || self.anchors_per_cell.contains(&0)
        {
            return Err(DetectError::Setting(format!(
                "detect.format = \"anchors\" needs detect.strides and detect.anchors_per_cell, one positive value per grid each (BlazeFace: [8, 16] and [2, 6]); got {:?} and {:?}",
                self.strides, self.anchors_per_cell
            )));
        }
        Ok(AnchorSpec {
            strides: self.strides.clone(),
            per_cell: self.anchors_per_cell.clone(),
            keypoints: self.keypoints,
            logits: self.logits.unwrap_or(true),
        })
    }
}

/// The keys of `[detect]` a run may override (`[detector]`), each absent where not given.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectOverrides {
    pub min_score: Option<f32>,
    pub nms_iou: Option<f32>,
    pub max_objects: Option<usize>,
    pub classes: Option<Vec<String>>,
    pub min_size: Option<u32>,
}

/// What a detection must pass to become an object.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectParams {
    pub min_score: f32,
    pub nms_iou: f32,
    pub max_objects: usize,
    /// Class indexes kept; `None` keeps every class.
    pub classes: Option<Vec<usize>>,
    pub min_size: u32,
}

impl DetectParams {
    /// The manifest's settings with the run's overrides on top; labels in `classes` are
    /// looked up in `labels`.
    pub fn resolve(
        spec: &DetectSpec,
        overrides: &DetectOverrides,
        labels: &[String],
    ) -> Result<Self, DetectError> {
        let min_score = overrides.min_score.or(spec.min_score).unwrap_or(0.3);
        let nms_iou = overrides.nms_iou.or(spec.nms_iou).unwrap_or(0.45);
        for (key, value) in [("min_score", min_score), ("nms_iou", nms_iou)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(DetectError::Setting(format!(
                    "detect.{key} must be between 0 and 1, got {value}"
                )));
            }
        }
        let max_objects = overrides.max_objects.or(spec.max_objects).unwrap_or(100);
        if max_objects == 0 {
            return Err(DetectError::Setting(
                "detect.max_objects must be at least 1".into(),
            ));
        }
        let classes = match overrides.classes.as_ref().or(spec.classes.as_ref()) {
            None => None,
            Some(names) => Some(class_indexes(names, labels)?),
        };
        Ok(DetectParams {
            min_score,
            nms_iou,
            max_objects,
            classes,
            min_size: overrides.min_size.or(spec.min_size).unwrap_or(0),
        })
    }

    /// Whether objects of class `class` are kept.
    pub fn keeps(&self, class: usize) -> bool {
        self.classes
            .as_ref()
            .is_none_or(|kept| kept.contains(&class))
    }
}

/// The class index of each label in `names`.
fn class_indexes(names: &[String], labels: &[String]) -> Result<Vec<usize>, DetectError> {
    if names.is_empty() {
        return Err(DetectError::Setting(
            "detect.classes is empty: it would drop every object (leave it out to keep every class)"
                .into(),
        ));
    }
    names
        .iter()
        .map(|name| {
            labels
                .iter()
                .position(|l| l == name)
                .ok_or_else(|| DetectError::UnknownLabel {
                    label: name.clone(),
                    known: labels
                        .iter()
                        .take(12)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DetectSpec {
        toml::from_str("format = \"boxes\"\nmin_score = 0.4\nclasses = [\"person\"]").unwrap()
    }

    #[test]
    fn overrides_win_over_the_manifest_and_labels_become_indexes() {
        let labels: Vec<String> = ["person", "bicycle", "car"].map(String::from).to_vec();
        let params = DetectParams::resolve(&spec(), &DetectOverrides::default(), &labels).unwrap();
        assert_eq!((params.min_score, params.classes), (0.4, Some(vec![0])));
        let overrides = DetectOverrides {
            min_score: Some(0.6),
            classes: Some(vec!["car".into(), "bicycle".into()]),
            ..Default::default()
        };
        let params = DetectParams::resolve(&spec(), &overrides, &labels).unwrap();
        assert_eq!((params.min_score, params.classes), (0.6, Some(vec![2, 1])));
        assert_eq!((params.nms_iou, params.max_objects), (0.45, 100));
    }

    #[test]
    fn an_unknown_label_or_an_empty_list_is_refused() {
        let labels: Vec<String> = vec!["person".into()];
        let overrides = DetectOverrides {
            classes: Some(vec!["persn".into()]),
            ..Default::default()
        };
        let error = DetectParams::resolve(&spec(), &overrides, &labels).unwrap_err();
        assert!(error.to_string().contains("\"persn\""), "{error}");
        assert!(error.to_string().contains("person"), "{error}");
        let empty = DetectOverrides {
            classes: Some(vec![]),
            ..Default::default()
        };
        assert!(DetectParams::resolve(&spec(), &empty, &labels).is_err());
        let bad = DetectOverrides {
            nms_iou: Some(1.5),
            ..Default::default()
        };
        assert!(DetectParams::resolve(&spec(), &bad, &labels).is_err());
    }
}
