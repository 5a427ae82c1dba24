//! The token layout of a ViT: class token first, then register tokens (DINOv2 with registers),
//! then the patch grid in row order; and where each patch lies in the model input.

use crate::model::TokenSpec;
use crate::preprocess::Region;

/// Where the tokens of an attention map lie.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TokenLayout {
    /// Tokens before the patches: the class token and the registers.
    pub prefix: usize,
    pub registers: usize,
    pub grid_w: usize,
    pub grid_h: usize,
    /// Distance between patch origins, in input pixels (x, y).
    pub stride: (f64, f64),
    /// Patch size in input pixels (x, y); larger than the stride for overlapping patches.
    pub patch: (f64, f64),
}

impl TokenLayout {
    /// The layout of `tokens` tokens for an input of `width x height`: the patch grid has the
    /// input's aspect ratio, and the fewest register tokens that make that possible (unless the
    /// manifest's `[tokens]` says how many).
    pub fn detect(
        tokens: usize,
        width: usize,
        height: usize,
        spec: &TokenSpec,
    ) -> Result<Self, String> {
        // Register counts in use: none, DeiT's distillation token, DINOv2's 4, and 8 or 16.
        let registers: Vec<usize> = match spec.registers {
            Some(r) => vec![r],
            None => vec![0, 1, 4, 8, 16],
        };
        for r in registers {
            // At least a 2x2 grid: anything less is no image.
            let Some(patches) = tokens.checked_sub(1 + r).filter(|p| *p >= 4) else {
                continue;
            };
            if let Some((grid_w, grid_h)) = grid(patches, width, height, spec) {
                let (stride, patch) = match (spec.stride, spec.patch) {
                    (Some(s), Some(p)) => ((s as f64, s as f64), (p as f64, p as f64)),
                    (None, Some(p)) => ((p as f64, p as f64), (p as f64, p as f64)),
                    (Some(s), None) => ((s as f64, s as f64), (s as f64, s as f64)),
                    (None, None) => {
                        let step = (width as f64 / grid_w as f64, height as f64 / grid_h as f64);
                        (step, step)
                    }
                };
                return Ok(TokenLayout {
                    prefix: 1 + r,
                    registers: r,
                    grid_w,
                    grid_h,
                    stride,
                    patch,
                });
            }
        }
        Err(format!(
            "{tokens} tokens do not fit a patch grid of a {width}x{height} input after a class token (set [tokens] registers, patch and stride in model.toml)"
        ))
    }

    pub fn patches(&self) -> usize {
        self.grid_w * self.grid_h
    }

    /// The input pixels that patch `index` (row order) covers.
    pub fn patch_region(&self, index: usize) -> Region {
        let (col, row) = (index % self.grid_w, index / self.grid_w);
        Region {
            x: col as f64 * self.stride.0,
            y: row as f64 * self.stride.1,
            width: self.patch.0,
            height: self.patch.1,
        }
    }

    /// The input pixels that the cells `cols x rows` (end exclusive) cover.
    pub fn cells_region(&self, cols: (usize, usize), rows: (usize, usize)) -> Region {
        let first = self.patch_region(rows.0 * self.grid_w + cols.0);
        let last = self.patch_region((rows.1 - 1) * self.grid_w + cols.1 - 1);
        Region {
            x: first.x,
            y: first.y,
            width: last.x + last.width - first.x,
            height: last.y + last.height - first.y,
        }
    }
}

/// The `w x h` grid of `patches` cells for a `width x height` input.
fn grid(patches: usize, width: usize, height: usize, spec: &TokenSpec) -> Option<(usize, usize)> {
    if let (Some(stride), Some(patch)) = (spec.stride.or(spec.patch), spec.patch) {
        // Overlapping (or plain) patches of a known size: the grid follows from them.
        let cells = |side: usize| {
            side.checked_sub(patch as usize)
                .map(|rest| rest / stride.max(1) as usize + 1)
        };
        let (w, h) = (cells(width)?, cells(height)?);
        return (w * h == patches).then_some((w, h));
    }
    let ratio = width as f64 / height as f64;
    let h = ((patches as f64 / ratio).sqrt().round() as usize).max(1);
    [h, h + 1, h.saturating_sub(1)]
        .into_iter()
        .filter(|&h| h > 0 && patches.is_multiple_of(h))
        .find(|&h| ((patches / h) as f64 / h as f64 - ratio).abs() < 0.15)
        .map(|h| (patches / h, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_vits_are_recognised() {
        let plain = TokenSpec::default();
        // ViT-B/16 224, DINOv2 ViT-S/14 224, vit4mnist 7x7 on 28x28.
        for (tokens, side, grid, stride) in
            [(197, 224, 14, 16.0), (257, 224, 16, 14.0), (17, 28, 4, 7.0)]
        {
            let layout = TokenLayout::detect(tokens, side, side, &plain).unwrap();
            assert_eq!(
                (layout.prefix, layout.grid_w, layout.grid_h),
                (1, grid, grid)
            );
            assert_eq!(layout.stride, (stride, stride));
        }
        // DINOv2 with 4 registers.
        let layout = TokenLayout::detect(261, 224, 224, &plain).unwrap();
        assert_eq!((layout.registers, layout.grid_w), (4, 16));
        // A wide input: 256x128 with 16-pixel patches (TransReID) is 16 rows of 8.
        let layout = TokenLayout::detect(129, 128, 256, &plain).unwrap();
        assert_eq!((layout.grid_w, layout.grid_h), (8, 16));
        assert!(TokenLayout::detect(3, 224, 224, &plain).is_err());
    }

    #[test]
    fn overlapping_patches_follow_the_manifest() {
        // TransFG: 16-pixel patches every 12 pixels on 448: (448 - 16) / 12 + 1 = 37.
        let spec = TokenSpec {
            registers: None,
            patch: Some(16),
            stride: Some(12),
        };
        let layout = TokenLayout::detect(1 + 37 * 37, 448, 448, &spec).unwrap();
        assert_eq!(
            (layout.grid_w, layout.stride.0, layout.patch.0),
            (37, 12.0, 16.0)
        );
        let last = layout.patch_region(37 * 37 - 1);
        assert_eq!((last.x, last.x + last.width), (432.0, 448.0));
        let block = layout.cells_region((1, 3), (0, 1));
        assert_eq!((block.x, block.width, block.height), (12.0, 28.0, 16.0));
    }
}
