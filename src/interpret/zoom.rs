//! RAMS-Trans's Dynamic Patch Proposal Module, on the host: threshold the attention map at
//! `alpha` times its mean, keep the largest 8-connected component, and turn it into a box in
//! the pixels of the original frame (every resize policy undone). The crop around that box
//! gets a margin and a minimum size and, by default, the model input's aspect, so that the
//! second pass never sees the object stretched. The second pass itself is the pipeline's
//! (`pipeline::vit_stage`).

use super::rollout::AttentionMap;
use super::tokens::TokenLayout;
use crate::preprocess::{Placement, Region};
use serde::{Deserialize, Serialize};

/// `[zoom]` (and `edgevit infer --zoom`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoomConfig {
    /// When the second pass runs: `always` (default), `never`, or `below` (only when the
    /// first pass's top-1 score is under `below`, so the second pass is paid where it helps).
    #[serde(default)]
    pub when: ZoomWhen,
    /// The top-1 score under which `when = "below"` zooms.
    #[serde(default = "default_below")]
    pub below: f32,
    /// Cells above `alpha` x the map's mean are kept (RAMS-Trans: about 1.3).
    #[serde(default = "default_alpha")]
    pub alpha: f32,
    /// Added on each side of the box to make the crop, as a fraction of the box's width and
    /// height (of the square's side for a square crop): the map's cells are coarse, and a
    /// cell just under the threshold may still hold part of the object.
    #[serde(default = "default_margin")]
    pub margin: f32,
    /// Smallest side of the crop, as a fraction of the frame's shorter side (the crop grows
    /// about its centre to reach it).
    #[serde(default = "default_min_size")]
    pub min_size: f32,
    /// The crop's shape: `square` (default: the model input's aspect, shifted to stay inside
    /// the frame, black beyond its edges, never stretched) or `box` (the box and margin as
    /// they are, clipped to the frame, stretched by the model's resize policy).
    #[serde(default)]
    pub crop_shape: CropShape,
    /// How the passes make the result: `mean` of their probabilities (default), `zoom` (the
    /// last pass alone) or `both` (the first pass's result, the zoom's reported beside it).
    #[serde(default)]
    pub fuse: Fuse,
    /// Zoom passes after the first (each zooms into the previous crop).
    #[serde(default = "default_depth")]
    pub depth: u32,
    /// Where the crop is taken: `frame` (default: the native-resolution frame) or `input`
    /// (the model input, upscaled: the paper's way, for comparison).
    #[serde(default)]
    pub crop_from: CropFrom,
}

fn default_below() -> f32 {
    0.6
}
fn default_alpha() -> f32 {
    1.3
}
fn default_margin() -> f32 {
    0.1
}
fn default_min_size() -> f32 {
    0.1
}
fn default_depth() -> u32 {
    1
}

impl Default for ZoomConfig {
    fn default() -> Self {
        ZoomConfig {
            when: ZoomWhen::default(),
            below: default_below(),
            alpha: default_alpha(),
            margin: default_margin(),
            min_size: default_min_size(),
            crop_shape: CropShape::default(),
            fuse: Fuse::default(),
            depth: default_depth(),
            crop_from: CropFrom::default(),
        }
    }
}

impl ZoomConfig {
    /// Refuses values that cannot work.
    pub fn check(&self) -> Result<(), String> {
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(format!("zoom.alpha must be above 0, got {}", self.alpha));
        }
        if !(0.0..=2.0).contains(&self.margin) {
            return Err(format!("zoom.margin must be 0 to 2, got {}", self.margin));
        }
        if !(0.0..=1.0).contains(&self.min_size) {
            return Err(format!(
                "zoom.min_size must be 0 to 1, got {}",
                self.min_size
            ));
        }
        if !(0.0..=1.0).contains(&self.below) {
            return Err(format!("zoom.below must be 0 to 1, got {}", self.below));
        }
        if self.depth == 0 || self.depth > 4 {
            return Err(format!("zoom.depth must be 1 to 4, got {}", self.depth));
        }
        Ok(())
    }

    /// Whether a first pass whose best score is `top1` gets a second one.
    pub fn wanted(&self, top1: f32) -> bool {
        match self.when {
            ZoomWhen::Always => true,
            ZoomWhen::Never => false,
            ZoomWhen::Below => top1 < self.below,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZoomWhen {
    #[default]
    Always,
    Never,
    Below,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fuse {
    #[default]
    Mean,
    Zoom,
    Both,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CropShape {
    #[default]
    Square,
    Box,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CropFrom {
    #[default]
    Frame,
    Input,
}

/// A box in frame pixels, `x1`/`y1` exclusive; serialised as `[x0, y0, x1, y1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "[u32; 4]")]
pub struct PixelBox {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl From<PixelBox> for [u32; 4] {
    fn from(b: PixelBox) -> Self {
        [b.x0, b.y0, b.x1, b.y1]
    }
}

impl PixelBox {
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }

    /// The whole pixels a region touches, clamped to a `width x height` frame (never empty).
    pub fn covering(r: Region, width: u32, height: u32) -> PixelBox {
        let clamp = |v: f64, max: u32| (v.max(0.0) as u32).min(max);
        // A coordinate a rounding error away from a whole pixel is that pixel.
        let (down, up) = (|v: f64| (v + 1e-6).floor(), |v: f64| (v - 1e-6).ceil());
        let x0 = clamp(down(r.x), width.saturating_sub(1));
        let y0 = clamp(down(r.y), height.saturating_sub(1));
        let x1 = clamp(up(r.x + r.width), width).max(x0 + 1);
        let y1 = clamp(up(r.y + r.height), height).max(y0 + 1);
        PixelBox { x0, y0, x1, y1 }
    }

    /// The same box `dx` right and `dy` down: a box found on a crop, in the frame's pixels.
    pub fn moved_by(self, dx: u32, dy: u32) -> PixelBox {
        PixelBox {
            x0: self.x0 + dx,
            y0: self.y0 + dy,
            x1: self.x1 + dx,
            y1: self.y1 + dy,
        }
    }

    pub fn whole(width: u32, height: u32) -> PixelBox {
        PixelBox {
            x0: 0,
            y0: 0,
            x1: width.max(1),
            y1: height.max(1),
        }
    }

    /// Intersection over union with another box.
    pub fn iou(&self, other: &PixelBox) -> f64 {
        let ix = self.x1.min(other.x1).saturating_sub(self.x0.max(other.x0)) as f64;
        let iy = self.y1.min(other.y1).saturating_sub(self.y0.max(other.y0)) as f64;
        let inter = ix * iy;
        let area = |b: &PixelBox| b.width() as f64 * b.height() as f64;
        inter / (area(self) + area(other) - inter)
    }
}

/// The cells of the largest component, as a grid rectangle, and its share of the map's mass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Component {
    /// Columns `[c0, c1)` and rows `[r0, r1)`.
    pub cols: (usize, usize),
    pub rows: (usize, usize),
    pub cells: usize,
    pub mass: f32,
}

/// The largest 8-connected set of cells above `alpha` x the mean (ties: the one with more
/// mass); `None` when no cell is above it (a uniform map).
pub fn largest_component(map: &AttentionMap, alpha: f32) -> Option<Component> {
    let (w, h) = (map.grid_w, map.grid_h);
    let total: f32 = map.values.iter().sum();
    let threshold = alpha * total / map.values.len().max(1) as f32;
    let above: Vec<bool> = map.values.iter().map(|v| *v > threshold).collect();
    let mut seen = vec![false; w * h];
    let mut best: Option<Component> = None;
    for start in 0..w * h {
        if !above[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![start];
        let (mut c0, mut c1, mut r0, mut r1) = (usize::MAX, 0, usize::MAX, 0);
        let (mut cells, mut mass) = (0, 0.0f32);
        while let Some(i) = stack.pop() {
            let (c, r) = (i % w, i / w);
            (c0, c1, r0, r1) = (c0.min(c), c1.max(c + 1), r0.min(r), r1.max(r + 1));
            cells += 1;
            mass += map.values[i];
            for dr in -1i64..=1 {
                for dc in -1i64..=1 {
                    let (nc, nr) = (c as i64 + dc, r as i64 + dr);
                    if nc < 0 || nr < 0 || nc >= w as i64 || nr >= h as i64 {
                        continue;
                    }
                    let j = nr as usize * w + nc as usize;
                    if above[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        let candidate = Component {
            cols: (c0, c1),
            rows: (r0, r1),
            cells,
            mass: if total > 0.0 { mass / total } else { 0.0 },
        };
        let better = best.is_none_or(|b| (candidate.cells, candidate.mass) > (b.cells, b.mass));
        if better {
            best = Some(candidate);
        }
    }
    best
}

/// The zoom region in frame pixels: the component's cells in input pixels, clipped to where
/// the frame lies in the input (letterbox bars are not frame), mapped back through the resize
/// policy, clamped to the frame. A map with no component gives the whole frame with score 0.
pub fn region(
    map: &AttentionMap,
    layout: &TokenLayout,
    placement: &Placement,
    frame: (u32, u32),
    config: &ZoomConfig,
) -> (PixelBox, f32) {
    let Some(component) = largest_component(map, config.alpha) else {
        return (PixelBox::whole(frame.0, frame.1), 0.0);
    };
    let cells = layout.cells_region(component.cols, component.rows);
    let inside = intersect(cells, placement.target).unwrap_or(placement.target);
    let r = placement.to_source(inside);
    (PixelBox::covering(r, frame.0, frame.1), component.mass)
}

/// What the second pass sees: `inside`, the part of the frame it holds, and `pad`, black
/// columns and rows (left, top, right, bottom) that give it the model's aspect where the frame
/// ends before the square does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Crop {
    #[serde(rename = "box")]
    pub inside: PixelBox,
    #[serde(skip_serializing_if = "Crop::unpadded")]
    pub pad: [u32; 4],
}

impl Crop {
    fn unpadded(pad: &[u32; 4]) -> bool {
        *pad == [0; 4]
    }

    /// The crop's size with its padding.
    pub fn size(&self) -> (u32, u32) {
        let [l, t, r, b] = self.pad;
        (self.inside.width() + l + r, self.inside.height() + t + b)
    }
}

/// The crop around the zoom box in a `frame` of pixels for a model input of `aspect` (width /
/// height): the margin, the minimum size, and the shape `config.crop_shape` asks for. A square
/// crop is padded only where the box itself is wider (or taller) than the frame allows.
pub fn crop(bounds: PixelBox, frame: (u32, u32), aspect: f64, config: &ZoomConfig) -> Crop {
    let (w, h) = (bounds.width() as f64, bounds.height() as f64);
    let centre = (bounds.x0 as f64 + w / 2.0, bounds.y0 as f64 + h / 2.0);
    let min_side = frame.0.min(frame.1) as f64 * config.min_size as f64;
    let grow = 1.0 + 2.0 * config.margin as f64;
    match config.crop_shape {
        CropShape::Box => {
            let (cw, ch) = ((w * grow).max(min_side), (h * grow).max(min_side));
            let r = Region {
                x: centre.0 - cw / 2.0,
                y: centre.1 - ch / 2.0,
                width: cw,
                height: ch,
            };
            Crop {
                inside: PixelBox::covering(r, frame.0, frame.1),
                pad: [0; 4],
            }
        }
        CropShape::Square => {
            let aspect = if aspect.is_finite() && aspect > 0.0 {
                aspect
            } else {
                1.0
            };
            // The smallest rectangle of the model's aspect that holds the box; the margin and
            // the minimum size grow it only as far as the frame allows (padding there would
            // shrink the object, not show more of it).
            let base = w.max(h * aspect);
            let fits = (frame.0 as f64).min(frame.1 as f64 * aspect);
            let wanted = (base * grow).max(min_side.max(min_side * aspect));
            let cw = base.max(wanted.min(fits));
            let ch = cw / aspect;
            let (x0, x1, left, right) = place(centre.0 - cw / 2.0, cw, frame.0);
            let (y0, y1, top, bottom) = place(centre.1 - ch / 2.0, ch, frame.1);
            Crop {
                inside: PixelBox { x0, y0, x1, y1 },
                pad: [left, top, right, bottom],
            }
        }
    }
}

/// One axis of a square crop: `len` pixels from `start`, shifted to lie inside `0..extent`
/// where they fit; where they do not, the whole axis with the rest as padding on the sides the
/// crop overhangs. Returns the inside span and the padding before and after it.
fn place(start: f64, len: f64, extent: u32) -> (u32, u32, u32, u32) {
    let extent = extent.max(1) as i64;
    // The whole pixels the span touches (a rounding error away from a pixel is that pixel).
    let end = (start + len - 1e-6).ceil() as i64;
    let start = (start + 1e-6).floor() as i64;
    let len = (end - start).max(1);
    if len <= extent {
        let s = start.clamp(0, extent - len);
        (s as u32, (s + len) as u32, 0, 0)
    } else {
        let s = start.clamp(extent - len, 0);
        (0, extent as u32, (-s) as u32, (s + len - extent) as u32)
    }
}

fn intersect(a: Region, b: Region) -> Option<Region> {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (a.x + a.width).min(b.x + b.width);
    let y1 = (a.y + a.height).min(b.y + b.height);
    (x1 > x0 && y1 > y0).then_some(Region {
        x: x0,
        y: y0,
        width: x1 - x0,
        height: y1 - y0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ResizePolicy, TokenSpec};
    use crate::preprocess::Raster;
    use proptest::prelude::*;

    fn map(w: usize, h: usize, hot: &[(usize, usize, f32)]) -> AttentionMap {
        let mut values = vec![1.0; w * h];
        for &(c, r, v) in hot {
            values[r * w + c] = v;
        }
        AttentionMap {
            grid_w: w,
            grid_h: h,
            values,
        }
    }

    #[test]
    fn the_policy_decides_when_the_second_pass_is_paid() {
        let below = ZoomConfig {
            when: ZoomWhen::Below,
            below: 0.6,
            ..ZoomConfig::default()
        };
        assert!(below.wanted(0.59) && !below.wanted(0.6));
        assert!(ZoomConfig::default().wanted(0.99));
        let never = ZoomConfig {
            when: ZoomWhen::Never,
            ..ZoomConfig::default()
        };
        assert!(!never.wanted(0.0));
        for bad in [
            "alpha = 0.0",
            "margin = 3.0",
            "depth = 0",
            "below = 1.5",
            "min_size = -1.0",
        ] {
            let config: ZoomConfig = toml::from_str(bad).unwrap();
            assert!(config.check().is_err(), "{bad}");
        }
    }

    #[test]
    fn one_blob_gives_its_box() {
        let m = map(8, 8, &[(2, 3, 9.0), (3, 3, 9.0), (3, 4, 9.0), (2, 4, 8.0)]);
        let c = largest_component(&m, 1.3).unwrap();
        assert_eq!((c.cols, c.rows, c.cells), ((2, 4), (3, 5), 4));
        assert!((c.mass - 35.0 / (60.0 + 35.0)).abs() < 1e-6, "{}", c.mass);
    }

    #[test]
    fn of_two_blobs_the_larger_wins_and_diagonals_connect() {
        // A diagonal line of 3 cells (8-connected) against a bright pair.
        let m = map(
            8,
            8,
            &[
                (0, 0, 5.0),
                (1, 1, 5.0),
                (2, 2, 5.0),
                (6, 6, 50.0),
                (7, 6, 50.0),
            ],
        );
        let c = largest_component(&m, 1.3).unwrap();
        assert_eq!((c.cols, c.rows, c.cells), ((0, 3), (0, 3), 3));
    }

    #[test]
    fn a_uniform_map_zooms_to_the_whole_frame() {
        let m = map(4, 4, &[]);
        assert!(largest_component(&m, 1.3).is_none());
        let layout = TokenLayout::detect(17, 28, 28, &TokenSpec::default()).unwrap();
        let placement = Placement::new(ResizePolicy::Stretch, 640, 480, 28, 28);
        let (b, score) = region(&m, &layout, &placement, (640, 480), &ZoomConfig::default());
        assert_eq!((b, score), (PixelBox::whole(640, 480), 0.0));
    }

    #[test]
    fn the_box_is_in_frame_pixels_for_every_policy() {
        // 224 input, 16x16 grid of 14-pixel patches; the hot cell is column 8, row 4.
        let layout = TokenLayout::detect(257, 224, 224, &TokenSpec::default()).unwrap();
        let m = map(16, 16, &[(8, 4, 100.0)]);
        let config = ZoomConfig {
            margin: 0.0,
            min_size: 0.0,
            ..ZoomConfig::default()
        };
        let cases = [
            // Stretch 1280x720: x scale 1280/224, y scale 720/224.
            (
                ResizePolicy::Stretch,
                PixelBox {
                    x0: 640,
                    y0: 180,
                    x1: 720,
                    y1: 225,
                },
            ),
            // Centre crop: a 720x720 square from x = 280, scale 720/224.
            (
                ResizePolicy::CenterCrop,
                PixelBox {
                    x0: 640,
                    y0: 180,
                    x1: 685,
                    y1: 225,
                },
            ),
            // Letterbox: 224x126 at y = 49, scale 1280/224; row 4 (y 56..70) is frame rows 7..21.
            (
                ResizePolicy::Letterbox,
                PixelBox {
                    x0: 640,
                    y0: 40,
                    x1: 720,
                    y1: 120,
                },
            ),
        ];
        for (policy, expected) in cases {
            let placement = Placement::new(policy, 1280, 720, 224, 224);
            let (b, _) = region(&m, &layout, &placement, (1280, 720), &config);
            assert_eq!(b, expected, "{policy:?}");
        }
    }

    #[test]
    fn margin_and_minimum_size_widen_the_crop() {
        let layout = TokenLayout::detect(17, 28, 28, &TokenSpec::default()).unwrap();
        let placement = Placement::new(ResizePolicy::Stretch, 84, 84, 28, 28);
        let m = map(4, 4, &[(1, 1, 9.0)]);
        // The cell is 21x21 frame pixels at (21, 21); the box is the cell, margins or not.
        let (b, _) = region(&m, &layout, &placement, (84, 84), &ZoomConfig::default());
        assert_eq!(<[u32; 4]>::from(b), [21, 21, 42, 42]);
        // A half-box margin, or a minimum side of half the frame: both give 42 px about the
        // cell's centre (31.5, 31.5), in either shape.
        for shape in [CropShape::Box, CropShape::Square] {
            for (margin, min_size) in [(0.5, 0.0), (0.0, 0.5)] {
                let config = ZoomConfig {
                    margin,
                    min_size,
                    crop_shape: shape,
                    ..ZoomConfig::default()
                };
                let c = crop(b, (84, 84), 1.0, &config);
                assert_eq!(
                    (<[u32; 4]>::from(c.inside), c.pad),
                    ([10, 10, 53, 53], [0; 4]),
                    "{shape:?}, margin {margin}, min_size {min_size}"
                );
            }
        }
    }

    fn boxed(x0: u32, y0: u32, x1: u32, y1: u32) -> PixelBox {
        PixelBox { x0, y0, x1, y1 }
    }

    #[test]
    fn a_square_crop_holds_a_tall_box_unstretched() {
        let square = ZoomConfig {
            margin: 0.0,
            min_size: 0.0,
            ..ZoomConfig::default()
        };
        let tall = boxed(100, 50, 120, 110);
        // The box shape stretches 20x60 to the input; the square holds it at 60x60.
        let as_box = ZoomConfig {
            crop_shape: CropShape::Box,
            ..square.clone()
        };
        assert_eq!(crop(tall, (400, 300), 1.0, &as_box).inside, tall);
        let c = crop(tall, (400, 300), 1.0, &square);
        assert_eq!((c.inside, c.pad), (boxed(80, 50, 140, 110), [0; 4]));
        // A 2:1 model input: 120x60.
        let c = crop(tall, (400, 300), 2.0, &square);
        assert_eq!(c.inside, boxed(50, 50, 170, 110));
        // With a margin of 0.25 of the side: 90x90 about the centre (110, 80).
        let margin = ZoomConfig {
            margin: 0.25,
            ..square.clone()
        };
        assert_eq!(
            crop(tall, (400, 300), 1.0, &margin).inside,
            boxed(65, 35, 155, 125)
        );
    }

    #[test]
    fn a_square_crop_moves_inside_the_frame_and_pads_only_past_it() {
        let square = ZoomConfig {
            margin: 0.0,
            min_size: 0.0,
            ..ZoomConfig::default()
        };
        // A wide box at the top-left corner: the 60x60 square slides down to row 0, not cut.
        let c = crop(boxed(0, 0, 60, 20), (400, 300), 1.0, &square);
        assert_eq!((c.inside, c.pad), (boxed(0, 0, 60, 60), [0; 4]));
        // The margin and minimum size never pad: a box as large as the frame is the frame.
        let c = crop(
            boxed(0, 0, 300, 300),
            (300, 300),
            1.0,
            &ZoomConfig::default(),
        );
        assert_eq!((c.inside, c.pad), (boxed(0, 0, 300, 300), [0; 4]));
        // A box wider than the frame is tall: the whole height, black above and below it.
        let c = crop(boxed(0, 20, 200, 60), (200, 100), 1.0, &square);
        assert_eq!(
            (c.inside, c.pad, c.size()),
            (boxed(0, 0, 200, 100), [0, 60, 0, 40], (200, 200))
        );
    }

    #[test]
    fn padding_is_black_around_the_pixels() {
        let r = Raster {
            width: 2,
            height: 1,
            channels: 1,
            data: vec![7, 9],
        };
        let p = r.padded([1, 1, 0, 2]);
        assert_eq!((p.width, p.height), (3, 4));
        assert_eq!(p.data, vec![0, 0, 0, 0, 7, 9, 0, 0, 0, 0, 0, 0]);
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: None,
            rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
            rng_seed: proptest::test_runner::RngSeed::Fixed(8),
            ..ProptestConfig::default()
        })]

        /// Components: every kept cell is above the threshold, the box holds exactly the
        /// component's cells' bounding box, and no other component is larger.
        #[test]
        fn components_are_maximal_and_above_the_threshold(
            w in 1usize..12, h in 1usize..12,
            values in proptest::collection::vec(0.0f32..10.0, 144),
            alpha in 0.5f32..2.0,
        ) {
            let m = AttentionMap { grid_w: w, grid_h: h, values: values[..w * h].to_vec() };
            let threshold = alpha * m.values.iter().sum::<f32>() / (w * h) as f32;
            let above = m.values.iter().filter(|v| **v > threshold).count();
            match largest_component(&m, alpha) {
                None => prop_assert_eq!(above, 0),
                Some(c) => {
                    prop_assert!(c.cells >= 1 && c.cells <= above);
                    prop_assert!(c.cols.0 < c.cols.1 && c.cols.1 <= w);
                    prop_assert!(c.rows.0 < c.rows.1 && c.rows.1 <= h);
                    prop_assert!(c.cells <= (c.cols.1 - c.cols.0) * (c.rows.1 - c.rows.0));
                    prop_assert!(c.mass >= 0.0 && c.mass <= 1.0 + 1e-5);
                }
            }
        }

        /// Square crops: the model's aspect (within a pixel of rounding), the whole box inside
        /// them, their pixels inside the frame, padding only where the frame is too small.
        #[test]
        fn square_crops_hold_the_box_at_the_models_aspect(
            fw in 16u32..2000, fh in 16u32..2000,
            x in 0.0f64..1.0, y in 0.0f64..1.0, w in 0.0f64..1.0, h in 0.0f64..1.0,
            aspect in prop_oneof![Just(1.0f64), Just(4.0 / 3.0), Just(0.5)],
            margin in 0.0f32..0.5, min_size in 0.0f32..0.5,
        ) {
            let x0 = (x * (fw - 1) as f64) as u32;
            let y0 = (y * (fh - 1) as f64) as u32;
            let b = PixelBox {
                x0, y0,
                x1: x0 + 1 + (w * (fw - x0 - 1) as f64) as u32,
                y1: y0 + 1 + (h * (fh - y0 - 1) as f64) as u32,
            };
            let config = ZoomConfig { margin, min_size, ..ZoomConfig::default() };
            let c = crop(b, (fw, fh), aspect, &config);
            let i = c.inside;
            prop_assert!(i.x0 < i.x1 && i.x1 <= fw && i.y0 < i.y1 && i.y1 <= fh, "{:?}", c);
            let (cw, ch) = c.size();
            prop_assert!((cw as f64 - ch as f64 * aspect).abs() <= 1.0 + aspect, "{:?} {}", c, aspect);
            prop_assert!(cw as f64 >= b.width() as f64 - 1.0 && ch as f64 >= b.height() as f64 - 1.0);
            prop_assert!(i.x0 <= b.x0 + 1 && i.x1 + 1 >= b.x1 && i.y0 <= b.y0 + 1 && i.y1 + 1 >= b.y1, "{:?} {:?}", c, b);
            let [l, t, r, bo] = c.pad;
            prop_assert!((l + r == 0 || i.width() == fw) && (t + bo == 0 || i.height() == fh), "{:?}", c);
        }

        /// Boxes: for any frame size and policy, the box lies inside the frame, is not empty,
        /// and contains where the hot cell's centre lands in the frame.
        #[test]
        fn boxes_stay_in_the_frame_and_cover_the_hot_cell(
            fw in 16u32..2000, fh in 16u32..2000,
            policy in prop_oneof![
                Just(ResizePolicy::Stretch), Just(ResizePolicy::CenterCrop), Just(ResizePolicy::Letterbox)
            ],
            col in 0usize..16, row in 0usize..16,
            margin in 0.0f32..0.5, min_size in 0.0f32..0.5,
        ) {
            let layout = TokenLayout::detect(257, 224, 224, &TokenSpec::default()).unwrap();
            let m = map(16, 16, &[(col, row, 100.0)]);
            let placement = Placement::new(policy, fw, fh, 224, 224);
            let config = ZoomConfig { margin, min_size, ..ZoomConfig::default() };
            let (b, score) = region(&m, &layout, &placement, (fw, fh), &config);
            let _ = crop(b, (fw, fh), 1.0, &config);
            prop_assert!(b.x0 < b.x1 && b.x1 <= fw && b.y0 < b.y1 && b.y1 <= fh, "{:?}", b);
            prop_assert!(score > 0.0);
            let cell = layout.patch_region(row * 16 + col);
            let centre = Region { x: cell.x + cell.width / 2.0, y: cell.y + cell.height / 2.0, width: 0.0, height: 0.0 };
            let t = placement.target;
            let on_frame = centre.x >= t.x && centre.x <= t.x + t.width && centre.y >= t.y && centre.y <= t.y + t.height;
            if on_frame {
                let p = placement.to_source(centre);
                prop_assert!(p.x >= b.x0 as f64 - 1.0 && p.x <= b.x1 as f64 + 1.0, "{:?} {:?}", p, b);
                prop_assert!(p.y >= b.y0 as f64 - 1.0 && p.y <= b.y1 as f64 + 1.0, "{:?} {:?}", p, b);
            }
        }
    }
}
