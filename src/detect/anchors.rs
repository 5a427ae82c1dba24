//! `format = "anchors"`: SSD-style regressors over a generated anchor grid (MediaPipe's
//! BlazeFace). Each anchor's row holds the box centre's offset from the anchor centre, the
//! box's width and height, then each key point's offset, all in input pixels.

use super::config::AnchorSpec;
use super::Candidate;
use crate::interpret::InterpretError;
use crate::tensor::Tensor;

/// The anchor centres, as fractions of the input, in the order of the model's outputs:
/// grid by grid, row by row, `per_cell` anchors a cell.
pub fn centres(spec: &AnchorSpec, width: usize, height: usize) -> Vec<[f32; 2]> {
    let mut centres = Vec::new();
    for (&stride, &per_cell) in spec.strides.iter().zip(&spec.per_cell) {
        let stride = stride.max(1) as usize;
        let (gw, gh) = (width.div_ceil(stride), height.div_ceil(stride));
        for y in 0..gh {
            for x in 0..gw {
                let centre = [(x as f32 + 0.5) / gw as f32, (y as f32 + 0.5) / gh as f32];
                centres.extend(std::iter::repeat_n(centre, per_cell));
            }
        }
    }
    centres
}

/// Refuses a grid the model's outputs do not have: `[1, anchors, 4 + 2K]` regressors and
/// `[1, anchors, 1]` (or `[1, anchors]`) scores.
pub fn check_shapes(
    names: (&str, &str),
    shapes: (&[usize], &[usize]),
    spec: &AnchorSpec,
    anchors: usize,
) -> Result<(), InterpretError> {
    let values = 4 + 2 * spec.keypoints;
    let boxes_fit = shapes.0 == [1, anchors, values];
    let scores_fit = shapes.1 == [1, anchors, 1] || shapes.1 == [1, anchors];
    let (name, shape, fits) = if !boxes_fit {
        (names.0, shapes.0, false)
    } else {
        (names.1, shapes.1, scores_fit)
    };
    if fits {
        return Ok(());
    }
    Err(InterpretError::Shape {
        name: name.to_string(),
        shape: shape.to_vec(),
        expected: "[1, anchors, 4 + 2 x keypoints] regressors and [1, anchors, 1] scores, anchors as many as detect.strides and detect.anchors_per_cell generate",
    })
}

/// Every anchor scoring at least `min_score`, as a class-0 candidate with its key points.
pub fn decode(
    names: (&str, &str),
    tensors: (&Tensor, &Tensor),
    spec: &AnchorSpec,
    centres: &[[f32; 2]],
    input: (usize, usize),
    min_score: f32,
) -> Result<Vec<Candidate>, InterpretError> {
    let (boxes, scores) = tensors;
    check_shapes(names, (boxes.shape(), scores.shape()), spec, centres.len())?;
    let values = 4 + 2 * spec.keypoints;
    let (w, h) = (input.0 as f32, input.1 as f32);
    let mut found = Vec::new();
    for (i, (row, &raw)) in boxes
        .data()
        .chunks_exact(values)
        .zip(scores.data())
        .enumerate()
    {
        let score = if spec.logits {
            1.0 / (1.0 + (-raw).exp())
        } else {
            raw
        };
        // A NaN score is no detection.
        if score.is_nan() || score < min_score || !row.iter().all(|v| v.is_finite()) {
            continue;
        }
        let [ax, ay] = [centres[i][0] * w, centres[i][1] * h];
        let (cx, cy, bw, bh) = (ax + row[0], ay + row[1], row[2], row[3]);
        if bw <= 0.0 || bh <= 0.0 {
            continue;
        }
        found.push(Candidate {
            bounds: [cx - bw / 2.0, cy - bh / 2.0, cx + bw / 2.0, cy + bh / 2.0],
            score,
            class: 0,
            keypoints: row[4..]
                .chunks_exact(2)
                .map(|p| [ax + p[0], ay + p[1]])
                .collect(),
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blazeface() -> AnchorSpec {
        AnchorSpec {
            strides: vec![8, 16],
            per_cell: vec![2, 6],
            keypoints: 6,
            logits: true,
        }
    }

    /// BlazeFace short range: 16x16x2 + 8x8x6 = 896 anchors, centred as its README says.
    #[test]
    fn the_blazeface_grid_has_896_anchors_in_model_order() {
        let c = centres(&blazeface(), 128, 128);
        assert_eq!(c.len(), 896);
        assert_eq!(c[0], [0.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(c[1], c[0]);
        assert_eq!(c[2], [1.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(c[512], [0.5 / 8.0, 0.5 / 8.0]);
        assert_eq!(c[895], [7.5 / 8.0, 7.5 / 8.0]);
    }

    #[test]
    fn a_regressor_row_becomes_a_box_with_key_points() {
        let spec = AnchorSpec {
            strides: vec![64],
            per_cell: vec![1],
            keypoints: 1,
            logits: true,
        };
        let c = centres(&spec, 128, 128);
        assert_eq!(c.len(), 4);
        // Anchor 3 is centred at (96, 96): a 20x10 box 4 px right of it, a key point 2 px up.
        let mut rows = vec![0.0; 4 * 6];
        rows[18..24].copy_from_slice(&[4.0, 0.0, 20.0, 10.0, 0.0, -2.0]);
        let boxes = Tensor::new(vec![1, 4, 6], rows).unwrap();
        let scores = Tensor::new(vec![1, 4, 1], vec![-9.0, -9.0, -9.0, 3.0]).unwrap();
        let found = decode(("r", "s"), (&boxes, &scores), &spec, &c, (128, 128), 0.5).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].bounds, [90.0, 91.0, 110.0, 101.0]);
        assert_eq!(found[0].keypoints, [[96.0, 94.0]]);
        assert!((found[0].score - 0.952_574).abs() < 1e-5);
        let short = Tensor::new(vec![1, 3, 6], vec![0.0; 18]).unwrap();
        assert!(decode(("r", "s"), (&short, &scores), &spec, &c, (128, 128), 0.5).is_err());
    }
}
