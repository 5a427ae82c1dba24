//! Boxes in model-input pixels back to the frame's own pixels, through the resize policy
//! that placed the frame in the input (letterbox padding, a centre crop, a stretch).

use super::Candidate;
use crate::interpret::PixelBox;
use crate::preprocess::{Placement, Region};

/// A box and its key points in frame pixels, clipped to the part of the frame the model saw; `None` when nothing of it
/// lies inside the frame (a box in the letterbox padding) or it is under `min_size` pixels.
pub fn to_frame(
    candidate: &Candidate,
    placement: &Placement,
    frame: (u32, u32),
    min_size: u32,
) -> Option<(PixelBox, Vec<[f32; 2]>)> {
    let [x0, y0, x1, y1] = candidate.bounds;
    let region = placement.to_source(Region {
        x: x0 as f64,
        y: y0 as f64,
        width: (x1 - x0) as f64,
        height: (y1 - y0) as f64,
    });
    // Clipped to what the model saw of the frame (a centre crop's sides it never saw).
    let seen = placement.source;
    let (width, height) = (frame.0 as f64, frame.1 as f64);
    let left = region.x.max(seen.x).max(0.0);
    let top = region.y.max(seen.y).max(0.0);
    let right = (region.x + region.width)
        .min(seen.x + seen.width)
        .min(width);
    let bottom = (region.y + region.height)
        .min(seen.y + seen.height)
        .min(height);
    // Less than a pixel inside the frame is nothing to crop.
    if !(right - left >= 1.0 && bottom - top >= 1.0) {
        return None;
    }
    let clipped = Region {
        x: left,
        y: top,
        width: right - left,
        height: bottom - top,
    };
    let bounds = PixelBox::covering(clipped, frame.0, frame.1);
    if bounds.width() < min_size || bounds.height() < min_size {
        return None;
    }
    let keypoints = candidate
        .keypoints
        .iter()
        .map(|&[x, y]| {
            let p = placement.to_source(Region {
                x: x as f64,
                y: y as f64,
                width: 0.0,
                height: 0.0,
            });
            [p.x as f32, p.y as f32]
        })
        .collect();
    Some((bounds, keypoints))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResizePolicy;
    use proptest::prelude::*;

    fn candidate(bounds: [f32; 4]) -> Candidate {
        Candidate {
            bounds,
            score: 1.0,
            class: 0,
            keypoints: vec![[bounds[0], bounds[1]]],
        }
    }

    #[test]
    fn a_letterboxed_box_maps_back_past_the_padding() {
        // 1280x720 into 512x512: scale 0.4, the picture at y 112..400.
        let placement = Placement::new(ResizePolicy::Letterbox, 1280, 720, 512, 512);
        let (b, keypoints) = to_frame(
            &candidate([40.0, 152.0, 80.0, 232.0]),
            &placement,
            (1280, 720),
            0,
        )
        .unwrap();
        assert_eq!([b.x0, b.y0, b.x1, b.y1], [100, 100, 200, 300]);
        assert_eq!(keypoints, [[100.0, 100.0]]);
        // Wholly in the padding: nothing.
        assert!(to_frame(
            &candidate([0.0, 0.0, 512.0, 100.0]),
            &placement,
            (1280, 720),
            0
        )
        .is_none());
        // Half in the padding: clipped to the frame.
        let (b, _) = to_frame(
            &candidate([0.0, 50.0, 100.0, 200.0]),
            &placement,
            (1280, 720),
            0,
        )
        .unwrap();
        assert_eq!([b.x0, b.y0, b.x1, b.y1], [0, 0, 250, 220]);
        // Under min_size: dropped.
        assert!(to_frame(
            &candidate([40.0, 152.0, 42.0, 232.0]),
            &placement,
            (1280, 720),
            8
        )
        .is_none());
    }

    proptest! {
        /// Through every policy, a box drawn in frame pixels, placed in the input and mapped
        /// back, is the same box within a pixel; the result always lies inside the frame.
        #[test]
        fn boxes_round_trip_through_every_policy(
            policy in prop::sample::select(vec![ResizePolicy::Stretch, ResizePolicy::Letterbox, ResizePolicy::CenterCrop]),
            (fw, fh) in (16u32..2000, 16u32..2000),
            (iw, ih) in (16u32..640, 16u32..640),
            (fx0, fy0, fx1, fy1) in (0f64..1.0, 0f64..1.0, 0f64..1.0, 0f64..1.0),
        ) {
            let placement = Placement::new(policy, fw, fh, iw, ih);
            let (x0, x1) = (fx0.min(fx1) * fw as f64, fx0.max(fx1) * fw as f64);
            let (y0, y1) = (fy0.min(fy1) * fh as f64, fy0.max(fy1) * fh as f64);
            let target = placement.to_target(Region { x: x0, y: y0, width: x1 - x0, height: y1 - y0 });
            let c = candidate([
                target.x as f32,
                target.y as f32,
                (target.x + target.width) as f32,
                (target.y + target.height) as f32,
            ]);
            if let Some((b, _)) = to_frame(&c, &placement, (fw, fh), 0) {
                prop_assert!(b.x0 < b.x1 && b.y0 < b.y1 && b.x1 <= fw && b.y1 <= fh);
                // A centre crop cuts what lies outside the crop; elsewhere the box comes back.
                let seen = placement.source;
                let expect = |v: f64, lo: f64, hi: f64| v.clamp(lo, hi);
                let tolerance = 1.0 + (seen.width / iw as f64).max(seen.height / ih as f64) * 0.01;
                prop_assert!((b.x0 as f64 - expect(x0, seen.x, seen.x + seen.width)).abs() <= tolerance + 0.5);
                prop_assert!((b.y1 as f64 - expect(y1, seen.y, seen.y + seen.height)).abs() <= tolerance + 0.5);
            }
        }
    }
}
