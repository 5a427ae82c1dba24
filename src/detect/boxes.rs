//! `format = "boxes"`: boxes decoded inside the graph, `[1, N, 6]` rows of x0, y0, x1, y1
//! (model input pixels), score, class index.

use super::Candidate;
use crate::interpret::InterpretError;
use crate::tensor::Tensor;

/// The rows of a `[1, N, 6]` output scoring at least `min_score`.
pub fn decode(
    name: &str,
    tensor: &Tensor,
    min_score: f32,
) -> Result<Vec<Candidate>, InterpretError> {
    check_shape(name, tensor.shape())?;
    Ok(tensor
        .data()
        .chunks_exact(6)
        .filter(|row| row.iter().all(|v| v.is_finite()) && row[4] >= min_score && row[5] >= 0.0)
        .map(|row| Candidate {
            bounds: [row[0], row[1], row[2], row[3]],
            score: row[4],
            class: row[5].round() as usize,
            keypoints: Vec::new(),
        })
        .collect())
}

/// Refuses any shape but `[1, N, 6]`.
pub fn check_shape(name: &str, shape: &[usize]) -> Result<(), InterpretError> {
    match shape {
        [1, _, 6] => Ok(()),
        _ => Err(InterpretError::Shape {
            name: name.to_string(),
            shape: shape.to_vec(),
            expected: "[1, N, 6] (x0, y0, x1, y1, score, class) for detect.format = \"boxes\"",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_under_the_threshold_or_not_finite_are_dropped() {
        let rows = [
            [1.0, 2.0, 3.0, 4.0, 0.9, 2.0],
            [1.0, 2.0, 3.0, 4.0, 0.1, 0.0],
            [f32::NAN, 2.0, 3.0, 4.0, 0.9, 0.0],
            [1.0, 2.0, 3.0, 4.0, 0.5, -1.0],
        ];
        let tensor = Tensor::new(vec![1, 4, 6], rows.concat()).unwrap();
        let found = decode("d", &tensor, 0.3).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].bounds, found[0].class), ([1.0, 2.0, 3.0, 4.0], 2));
        let wrong = Tensor::new(vec![1, 4, 5], vec![0.0; 20]).unwrap();
        let error = decode("d", &wrong, 0.3).unwrap_err().to_string();
        assert!(error.contains("[1, 4, 5]"), "{error}");
    }
}
