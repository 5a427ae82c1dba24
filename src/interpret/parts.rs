//! Discriminative parts as boxes (TransFG's Part Selection Module): the tokens a TransFG-style
//! export selected (one per head, from the product of the attention maps of the blocks before
//! the last), or, for any ViT, the strongest cells of the attention map. Each becomes the box
//! of its patch in frame pixels; overlapping patch embeddings use their stride.

use super::rollout::AttentionMap;
use super::tokens::TokenLayout;
use super::zoom::PixelBox;
use crate::preprocess::Placement;
use serde::{Deserialize, Serialize};

/// `[parts]` (and `edgevit infer --parts K`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartsConfig {
    /// How many parts to report, strongest first.
    #[serde(default = "default_count")]
    pub count: usize,
}

fn default_count() -> usize {
    4
}

impl Default for PartsConfig {
    fn default() -> Self {
        PartsConfig {
            count: default_count(),
        }
    }
}

/// One part: its box in frame pixels and its attention relative to the strongest cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    #[serde(rename = "box")]
    pub bounds: PixelBox,
    pub score: f32,
    /// The patch (row order) it comes from.
    pub patch: usize,
}

/// Parts from the selected token indices (class token = 0) of a TransFG-style output, in the
/// order given, without repeats; scored by `map` where there is one.
pub fn from_selected_tokens(
    tokens: &[f32],
    map: Option<&AttentionMap>,
    layout: &TokenLayout,
    placement: &Placement,
    frame: (u32, u32),
    count: usize,
) -> Vec<Part> {
    let mut patches: Vec<usize> = Vec::new();
    for &t in tokens {
        if !t.is_finite() || t < layout.prefix as f32 {
            continue;
        }
        let patch = t as usize - layout.prefix;
        if patch < layout.patches() && !patches.contains(&patch) {
            patches.push(patch);
        }
    }
    let max = map.map_or(1.0, |m| m.values.iter().copied().fold(f32::MIN, f32::max));
    patches
        .into_iter()
        .take(count)
        .map(|patch| {
            let score = map.map_or(1.0, |m| m.values[patch] / max);
            part(patch, score, layout, placement, frame)
        })
        .collect()
}

/// The `count` strongest cells of the map.
pub fn from_map(
    map: &AttentionMap,
    layout: &TokenLayout,
    placement: &Placement,
    frame: (u32, u32),
    count: usize,
) -> Vec<Part> {
    let mut order: Vec<usize> = (0..map.values.len()).collect();
    order.sort_by(|&a, &b| map.values[b].total_cmp(&map.values[a]));
    let max = order.first().map_or(1.0, |&i| map.values[i]);
    order
        .into_iter()
        .take(count)
        .map(|patch| part(patch, map.values[patch] / max, layout, placement, frame))
        .collect()
}

fn part(
    patch: usize,
    score: f32,
    layout: &TokenLayout,
    placement: &Placement,
    frame: (u32, u32),
) -> Part {
    let region = placement.to_source(layout.patch_region(patch));
    Part {
        bounds: PixelBox::covering(region, frame.0, frame.1),
        score,
        patch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ResizePolicy, TokenSpec};

    #[test]
    fn the_strongest_cells_become_boxes_in_frame_pixels() {
        let layout = TokenLayout::detect(17, 28, 28, &TokenSpec::default()).unwrap();
        let placement = Placement::new(ResizePolicy::Stretch, 280, 140, 28, 28);
        let mut values = vec![0.1; 16];
        values[5] = 0.8; // column 1, row 1
        values[14] = 0.4; // column 2, row 3
        let map = AttentionMap {
            grid_w: 4,
            grid_h: 4,
            values,
        };
        let parts = from_map(&map, &layout, &placement, (280, 140), 2);
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0].bounds,
            PixelBox {
                x0: 70,
                y0: 35,
                x1: 140,
                y1: 70
            }
        );
        assert_eq!((parts[0].score, parts[1].score), (1.0, 0.5));
        assert_eq!(
            parts[1].bounds,
            PixelBox {
                x0: 140,
                y0: 105,
                x1: 210,
                y1: 140
            }
        );
    }

    #[test]
    fn selected_tokens_skip_the_class_token_and_repeats() {
        // Overlapping patches: 16 wide every 12 on 448 (37 x 37).
        let spec = TokenSpec {
            registers: None,
            patch: Some(16),
            stride: Some(12),
        };
        let layout = TokenLayout::detect(1 + 37 * 37, 448, 448, &spec).unwrap();
        let placement = Placement::new(ResizePolicy::Stretch, 448, 448, 448, 448);
        let parts = from_selected_tokens(
            &[0.0, 2.0, 2.0, 39.0],
            None,
            &layout,
            &placement,
            (448, 448),
            5,
        );
        let boxes: Vec<[u32; 4]> = parts.iter().map(|p| p.bounds.into()).collect();
        // Token 2 is patch 1 (x 12..28); token 39 is patch 38 (row 1, column 1).
        assert_eq!(boxes, [[12, 0, 28, 16], [12, 12, 28, 28]]);
    }
}
