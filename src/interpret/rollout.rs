//! Attention rollout (Abnar & Zuidema 2020, as TransFG and RAMS-Trans use it): per block, the
//! heads averaged, the identity added for the residual path and the rows renormalised; the
//! blocks multiplied through; the class token's row over the patches is the map. Also the last
//! block's class-token attention alone, a cheaper and noisier map.

use super::tokens::TokenLayout;
use super::InterpretError;
use crate::backend::Outputs;
use serde::Deserialize;

/// `[attention]`: how the attention map is made.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionConfig {
    /// `rollout` (default) or `last` (the last block's class-token attention).
    #[serde(default)]
    pub map: MapKind,
    /// Blocks to roll out, by index from 0 (default: all).
    #[serde(default)]
    pub layers: Option<Vec<usize>>,
}

/// Which map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MapKind {
    #[default]
    Rollout,
    Last,
}

/// A class-token attention map over the patch grid, row order.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionMap {
    pub grid_w: usize,
    pub grid_h: usize,
    pub values: Vec<f32>,
}

impl AttentionMap {
    pub fn at(&self, col: usize, row: usize) -> f32 {
        self.values[row * self.grid_w + col]
    }
}

/// One block's head-averaged attention, `tokens x tokens`, row order.
fn head_mean(data: &[f32], heads: usize, tokens: usize) -> Vec<f32> {
    let size = tokens * tokens;
    let mut mean = vec![0.0f32; size];
    for head in data.chunks_exact(size).take(heads) {
        for (m, v) in mean.iter_mut().zip(head) {
            *m += v;
        }
    }
    let scale = 1.0 / heads as f32;
    mean.iter_mut().for_each(|m| *m *= scale);
    mean
}

/// The class-token row of the rollout of `blocks` (each `[1, heads, tokens, tokens]`, first
/// block first): `e0^T (A_L + I)' ... (A_1 + I)'`, where `'` renormalises rows.
///
/// Only the one row is carried through, so the cost is `blocks x tokens^2`, not `tokens^3`.
pub fn rollout_row(blocks: &[(&[f32], usize)], tokens: usize) -> Vec<f32> {
    let mut row = vec![0.0f32; tokens];
    row[0] = 1.0;
    for (data, heads) in blocks.iter().rev() {
        let mut a = head_mean(data, *heads, tokens);
        for i in 0..tokens {
            let line = &mut a[i * tokens..(i + 1) * tokens];
            line[i] += 1.0;
            let sum: f32 = line.iter().sum();
            if sum > 0.0 {
                line.iter_mut().for_each(|v| *v /= sum);
            }
        }
        let mut next = vec![0.0f32; tokens];
        for (i, weight) in row.iter().enumerate() {
            if *weight == 0.0 {
                continue;
            }
            for (n, v) in next.iter_mut().zip(&a[i * tokens..(i + 1) * tokens]) {
                *n += weight * v;
            }
        }
        row = next;
    }
    row
}

/// The map of a model's outputs: from its attention tensors (`names`, first block first), or
/// from a map rolled out inside the graph (`rollout`, `[1, patches]`).
pub fn class_token_map(
    outputs: &Outputs,
    names: &[String],
    rollout: Option<&str>,
    layout: &TokenLayout,
    config: &AttentionConfig,
) -> Result<AttentionMap, InterpretError> {
    let patches = layout.patches();
    let values: Vec<f32> = if let Some(name) = rollout {
        let tensor = outputs
            .get(name)
            .ok_or_else(|| InterpretError::MissingOutput(name.to_string()))?;
        if tensor.data().len() != patches {
            return Err(InterpretError::Shape {
                name: name.to_string(),
                shape: tensor.shape().to_vec(),
                expected: "[1, patches]",
            });
        }
        tensor.data().to_vec()
    } else {
        let chosen: Vec<&String> = match &config.layers {
            Some(layers) => layers
                .iter()
                .map(|&l| {
                    names.get(l).ok_or_else(|| {
                        InterpretError::Config(format!(
                            "attention.layers names block {l}, the model has {}",
                            names.len()
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
            None => names.iter().collect(),
        };
        let tokens = layout.prefix + patches;
        let mut blocks = Vec::with_capacity(chosen.len());
        for name in chosen {
            let tensor = outputs
                .get(name)
                .ok_or_else(|| InterpretError::MissingOutput(name.clone()))?;
            match tensor.shape() {
                [1, heads, t, k] if *t == tokens && *k == tokens => {
                    blocks.push((tensor.data(), *heads))
                }
                shape => {
                    return Err(InterpretError::Shape {
                        name: name.clone(),
                        shape: shape.to_vec(),
                        expected: "[1, heads, tokens, tokens]",
                    })
                }
            }
        }
        let Some(last) = blocks.last().copied() else {
            return Err(InterpretError::Config("no attention blocks to use".into()));
        };
        let row = match config.map {
            MapKind::Rollout => rollout_row(&blocks, tokens),
            MapKind::Last => head_mean(last.0, last.1, tokens)[..tokens].to_vec(),
        };
        row[layout.prefix..].to_vec()
    };
    if values.iter().any(|v| !v.is_finite()) {
        return Err(InterpretError::NonFinite("attention".into()));
    }
    Ok(AttentionMap {
        grid_w: layout.grid_w,
        grid_h: layout.grid_h,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A naive rollout of full matrices, to check the one-row shortcut against.
    fn full_rollout(blocks: &[Vec<f32>], tokens: usize) -> Vec<f32> {
        let normalised = |a: &[f32]| {
            let mut m = a.to_vec();
            for i in 0..tokens {
                m[i * tokens + i] += 1.0;
                let sum: f32 = m[i * tokens..(i + 1) * tokens].iter().sum();
                m[i * tokens..(i + 1) * tokens]
                    .iter_mut()
                    .for_each(|v| *v /= sum);
            }
            m
        };
        let mut product = normalised(&blocks[0]);
        for block in &blocks[1..] {
            let a = normalised(block);
            let mut next = vec![0.0; tokens * tokens];
            for i in 0..tokens {
                for j in 0..tokens {
                    next[i * tokens + j] = (0..tokens)
                        .map(|k| a[i * tokens + k] * product[k * tokens + j])
                        .sum();
                }
            }
            product = next;
        }
        product[..tokens].to_vec()
    }

    fn softmax_rows(tokens: usize, seed: u32) -> Vec<f32> {
        let mut state = seed;
        let mut out = Vec::new();
        for _ in 0..tokens {
            let row: Vec<f32> = (0..tokens)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (state >> 16) as f32 / 65536.0 * 4.0
                })
                .collect();
            out.extend(crate::interpret::softmax(&row));
        }
        out
    }

    #[test]
    fn the_one_row_rollout_equals_the_matrix_product() {
        let tokens = 5;
        // Two heads per block: their mean is what is rolled out.
        let blocks: Vec<Vec<f32>> = (0..3)
            .map(|b| {
                [
                    softmax_rows(tokens, b * 2 + 1),
                    softmax_rows(tokens, b * 2 + 2),
                ]
                .concat()
            })
            .collect();
        let means: Vec<Vec<f32>> = blocks.iter().map(|b| head_mean(b, 2, tokens)).collect();
        let expected = full_rollout(&means, tokens);
        let views: Vec<(&[f32], usize)> = blocks.iter().map(|b| (b.as_slice(), 2)).collect();
        let row = rollout_row(&views, tokens);
        for (a, b) in row.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-6, "{row:?} vs {expected:?}");
        }
        assert!(
            (row.iter().sum::<f32>() - 1.0).abs() < 1e-5,
            "rows stay distributions"
        );
    }

    #[test]
    fn attention_on_one_patch_rolls_out_to_that_patch() {
        // Every token attends to token 3 only: the rollout's class row peaks there.
        let tokens = 5;
        let block: Vec<f32> = (0..tokens * tokens)
            .map(|i| if i % tokens == 3 { 1.0 } else { 0.0 })
            .collect();
        let row = rollout_row(&[(&block, 1), (&block, 1)], tokens);
        let best = row[1..]
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i + 1);
        assert_eq!(best, Some(3), "{row:?}");
    }
}
