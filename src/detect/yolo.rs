//! `format = "yolo"`: a raw YOLO head, `[1, 4 + C, A]` (YOLOv8/v11 exports) or `[1, A, 4 + C]`:
//! per anchor cx, cy, w, h in input pixels, then one score per class (already probabilities).
//! Each anchor is one candidate of its best class; suppression runs after.

use super::Candidate;
use crate::interpret::InterpretError;
use crate::tensor::Tensor;

/// Whether the 4 + C values of an anchor run along the second axis (`[1, 4 + C, A]`).
fn channels_first(shape: &[usize], classes: Option<usize>) -> bool {
    match classes {
        Some(c) => shape[1] == 4 + c,
        // Heads have far more anchors than classes.
        None => shape[1] <= shape[2],
    }
}

/// Refuses a shape that is not `[1, 4 + C, A]` or `[1, A, 4 + C]` with C >= 1 (and C the
/// label count when the package has labels).
pub fn check_shape(
    name: &str,
    shape: &[usize],
    classes: Option<usize>,
) -> Result<(), InterpretError> {
    let fits = match shape {
        [1, a, b] => match classes {
            Some(c) => *a == 4 + c || *b == 4 + c,
            None => (*a).min(*b) >= 5,
        },
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(InterpretError::Shape {
            name: name.to_string(),
            shape: shape.to_vec(),
            expected: "[1, 4 + classes, anchors] or [1, anchors, 4 + classes] for detect.format = \"yolo\"",
        })
    }
}

/// Every anchor whose best class scores at least `min_score`, as a candidate.
pub fn decode(
    name: &str,
    tensor: &Tensor,
    classes: Option<usize>,
    min_score: f32,
) -> Result<Vec<Candidate>, InterpretError> {
    let shape = tensor.shape();
    check_shape(name, shape, classes)?;
    let data = tensor.data();
    let first = channels_first(shape, classes);
    let (values, anchors) = if first {
        (shape[1], shape[2])
    } else {
        (shape[2], shape[1])
    };
    let at = |anchor: usize, value: usize| {
        if first {
            data[value * anchors + anchor]
        } else {
            data[anchor * values + value]
        }
    };
    let mut found = Vec::new();
    for anchor in 0..anchors {
        let (class, score) = (4..values)
            .map(|v| (v - 4, at(anchor, v)))
            .filter(|(_, s)| s.is_finite())
            .fold((0, f32::MIN), |best, c| if c.1 > best.1 { c } else { best });
        if score < min_score {
            continue;
        }
        let [cx, cy, w, h] = [0, 1, 2, 3].map(|v| at(anchor, v));
        if ![cx, cy, w, h].iter().all(|v| v.is_finite()) || w <= 0.0 || h <= 0.0 {
            continue;
        }
        found.push(Candidate {
            bounds: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
            score,
            class,
            keypoints: Vec::new(),
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two anchors, two classes, written both ways round: the same candidates.
    #[test]
    fn both_orientations_decode_alike() {
        // Anchor 0: a box at (50, 40) 20x10, class 1 at 0.8. Anchor 1: all scores low.
        let anchors = [
            [50.0, 40.0, 20.0, 10.0, 0.1, 0.8],
            [5.0, 5.0, 2.0, 2.0, 0.05, 0.1],
        ];
        let last = Tensor::new(vec![1, 2, 6], anchors.concat()).unwrap();
        let first_data: Vec<f32> = (0..6).flat_map(|v| anchors.map(|a| a[v])).collect();
        let first = Tensor::new(vec![1, 6, 2], first_data).unwrap();
        for (tensor, classes) in [(&last, Some(2)), (&first, Some(2))] {
            let found = decode("y", tensor, classes, 0.25).unwrap();
            assert_eq!(found.len(), 1, "{:?}", tensor.shape());
            assert_eq!(found[0].bounds, [40.0, 35.0, 60.0, 45.0]);
            assert_eq!((found[0].class, found[0].score), (1, 0.8));
        }
        assert!(decode("y", &last, Some(3), 0.25).is_err());
    }
}
