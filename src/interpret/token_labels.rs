//! LV-ViT token labeling at inference: every patch token also predicts the classes, and the
//! final score combines the class token's logits with the patch tokens' (`logits + beta x
//! pool(patch logits)`), as LV-ViT does at test time.

use serde::Deserialize;

/// `[token_labels]`: used when the model has `outputs.patch_logits`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenLabelConfig {
    /// Weight of the patch tokens' scores (LV-ViT: 0.5).
    #[serde(default = "default_beta")]
    pub beta: f32,
    /// `mean` (default) or `max` over the patches, per class.
    #[serde(default)]
    pub pool: Pool,
}

fn default_beta() -> f32 {
    0.5
}

impl Default for TokenLabelConfig {
    fn default() -> Self {
        TokenLabelConfig {
            beta: default_beta(),
            pool: Pool::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    #[default]
    Mean,
    Max,
}

/// `class_logits + beta x pool(patch_logits)`, where `patch_logits` holds `patches x classes`
/// values in row order. `None` when the sizes do not agree.
pub fn fuse(
    class_logits: &[f32],
    patch_logits: &[f32],
    config: &TokenLabelConfig,
) -> Option<Vec<f32>> {
    let classes = class_logits.len();
    if classes == 0 || patch_logits.is_empty() || !patch_logits.len().is_multiple_of(classes) {
        return None;
    }
    let patches = patch_logits.len() / classes;
    let pooled: Vec<f32> = (0..classes)
        .map(|c| {
            let column = patch_logits.iter().skip(c).step_by(classes);
            match config.pool {
                Pool::Mean => column.sum::<f32>() / patches as f32,
                Pool::Max => column.copied().fold(f32::NEG_INFINITY, f32::max),
            }
        })
        .collect();
    Some(
        class_logits
            .iter()
            .zip(pooled)
            .map(|(l, p)| l + config.beta * p)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_scores_are_pooled_and_weighted() {
        let class = [1.0, 0.0, 0.0];
        // Two patches, three classes: both patches vote for class 2.
        let patches = [0.0, 0.0, 4.0, 0.0, 2.0, 6.0];
        let mean = fuse(&class, &patches, &TokenLabelConfig::default()).unwrap();
        assert_eq!(mean, [1.0, 0.5, 2.5]);
        let max = fuse(
            &class,
            &patches,
            &TokenLabelConfig {
                beta: 1.0,
                pool: Pool::Max,
            },
        )
        .unwrap();
        assert_eq!(max, [1.0, 2.0, 6.0]);
        assert!(fuse(&class, &patches[..5], &TokenLabelConfig::default()).is_none());
    }
}
