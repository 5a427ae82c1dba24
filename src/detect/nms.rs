//! Greedy non-maximum suppression, per class, with a bounded cost.

use super::Candidate;

/// At most this many candidates enter the suppression, best first: a frame with thousands
/// of boxes over the threshold (a low `min_score` on a raw head) costs a bounded time.
pub const MAX_CANDIDATES: usize = 2000;

/// Intersection over union of two boxes `[x0, y0, x1, y1]`.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Keeps the best candidates, dropping any that overlaps a kept one of its class by more
/// than `max_iou`; at most `limit`, best first.
pub fn suppress(mut candidates: Vec<Candidate>, max_iou: f32, limit: usize) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.truncate(MAX_CANDIDATES);
    let mut kept: Vec<Candidate> = Vec::new();
    for candidate in candidates {
        if kept.len() >= limit {
            break;
        }
        let overlaps = kept
            .iter()
            .any(|k| k.class == candidate.class && iou(&k.bounds, &candidate.bounds) > max_iou);
        if !overlaps {
            kept.push(candidate);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn candidate(bounds: [f32; 4], score: f32, class: usize) -> Candidate {
        Candidate {
            bounds,
            score,
            class,
            keypoints: Vec::new(),
        }
    }

    #[test]
    fn overlapping_boxes_of_one_class_leave_the_best() {
        let kept = suppress(
            vec![
                candidate([0.0, 0.0, 10.0, 10.0], 0.5, 0),
                candidate([1.0, 1.0, 11.0, 11.0], 0.9, 0),
                candidate([1.0, 1.0, 11.0, 11.0], 0.7, 1),
                candidate([50.0, 50.0, 60.0, 60.0], 0.4, 0),
            ],
            0.45,
            10,
        );
        let scores: Vec<f32> = kept.iter().map(|c| c.score).collect();
        assert_eq!(scores, [0.9, 0.7, 0.4]);
        assert_eq!(suppress(kept, 0.45, 2).len(), 2);
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[0.0, 0.0, 10.0, 10.0]), 1.0);
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[10.0, 0.0, 20.0, 10.0]), 0.0);
        assert!((iou(&[0.0, 0.0, 10.0, 10.0], &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]), 0.0);
    }

    proptest! {
        /// No two kept boxes of a class overlap past the threshold, the kept are sorted best
        /// first, the limit holds, and the best candidate is always kept.
        #[test]
        fn suppression_keeps_its_promises(
            boxes in prop::collection::vec(
                (0f32..100.0, 0f32..100.0, 1f32..50.0, 1f32..50.0, 0f32..1.0, 0usize..3), 1..60),
            max_iou in 0.1f32..0.9,
            limit in 1usize..20,
        ) {
            let candidates: Vec<Candidate> = boxes
                .iter()
                .map(|&(x, y, w, h, s, c)| candidate([x, y, x + w, y + h], s, c))
                .collect();
            let best = candidates.iter().map(|c| c.score).fold(f32::MIN, f32::max);
            let kept = suppress(candidates, max_iou, limit);
            prop_assert!(kept.len() <= limit);
            prop_assert_eq!(kept[0].score, best);
            for (i, a) in kept.iter().enumerate() {
                for b in &kept[i + 1..] {
                    prop_assert!(a.score >= b.score);
                    prop_assert!(a.class != b.class || iou(&a.bounds, &b.bounds) <= max_iou);
                }
            }
        }
    }
}
