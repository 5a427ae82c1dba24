//! Face alignment: the similarity transform (rotation, one scale, shift) that puts a face's eyes
//! and mouth where a face descriptor's training chips had them, and the warp that cuts that chip
//! from the native frame. The chip is dlib's (`get_face_chip_details` with padding 0.25): the
//! descriptor of the faces issue is dlib's ResNet, trained on such chips.

use super::Raster;

/// A face's eyes and mouth in frame pixels, from a face detector's key points. Right and left
/// are the person's own: their right eye is on the picture's left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FacePoints {
    pub right_eye: [f32; 2],
    pub left_eye: [f32; 2],
    pub mouth: [f32; 2],
}

/// Where dlib's mean face has the eyes and the mouth centre, in 0..1 of its landmark box
/// (the means of its points 36-41, 42-47 and 48-67).
const MEAN_FACE: FacePoints = FacePoints {
    right_eye: [0.22549, 0.21599],
    left_eye: [0.75476, 0.21599],
    mouth: [0.49013, 0.80422],
};

/// The padding of dlib's face chips: a quarter of the landmark box on each side.
const CHIP_PADDING: f32 = 0.25;

impl FacePoints {
    /// Where the points lie in a `width x height` chip.
    pub fn in_chip(width: u32, height: u32) -> FacePoints {
        let place = |[x, y]: [f32; 2]| {
            let scale = 1.0 + 2.0 * CHIP_PADDING;
            [
                (x + CHIP_PADDING) / scale * width as f32,
                (y + CHIP_PADDING) / scale * height as f32,
            ]
        };
        FacePoints {
            right_eye: place(MEAN_FACE.right_eye),
            left_eye: place(MEAN_FACE.left_eye),
            mouth: place(MEAN_FACE.mouth),
        }
    }

    fn all(&self) -> [[f32; 2]; 3] {
        [self.right_eye, self.left_eye, self.mouth]
    }
}

/// `(x, y) -> (a x - b y + tx, b x + a y + ty)`: a rotation and one scale, then a shift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    /// The least-squares similarity taking `from` onto `to` (Umeyama's, which has a closed form
    /// in two dimensions); `None` when the points of `from` coincide.
    pub fn fit(from: &[[f32; 2]], to: &[[f32; 2]]) -> Option<Similarity> {
        let n = from.len().min(to.len());
        if n < 2 {
            return None;
        }
        let mean = |points: &[[f32; 2]]| {
            let sum = points[..n]
                .iter()
                .fold([0.0f64; 2], |s, p| [s[0] + p[0] as f64, s[1] + p[1] as f64]);
            [sum[0] / n as f64, sum[1] / n as f64]
        };
        let (mf, mt) = (mean(from), mean(to));
        let (mut dot, mut cross, mut norm) = (0.0f64, 0.0f64, 0.0f64);
        for (p, q) in from[..n].iter().zip(&to[..n]) {
            let (px, py) = (p[0] as f64 - mf[0], p[1] as f64 - mf[1]);
            let (qx, qy) = (q[0] as f64 - mt[0], q[1] as f64 - mt[1]);
            dot += px * qx + py * qy;
            cross += px * qy - py * qx;
            norm += px * px + py * py;
        }
        if norm < 1e-9 {
            return None;
        }
        let (a, b) = (dot / norm, cross / norm);
        Some(Similarity {
            a: a as f32,
            b: b as f32,
            tx: (mt[0] - (a * mf[0] - b * mf[1])) as f32,
            ty: (mt[1] - (b * mf[0] + a * mf[1])) as f32,
        })
    }

    pub fn apply(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        [
            self.a * x - self.b * y + self.tx,
            self.b * x + self.a * y + self.ty,
        ]
    }

    /// The scale factor of the transform.
    pub fn scale(&self) -> f32 {
        self.a.hypot(self.b)
    }
}

/// The `width x height` chip of `raster` in which the face's points lie where dlib's chips have
/// them; `None` when the points do not make a face (its eyes in one place).
pub fn face_chip(raster: &Raster, face: &FacePoints, width: u32, height: u32) -> Option<Raster> {
    let chip_to_frame = Similarity::fit(&FacePoints::in_chip(width, height).all(), &face.all())?;
    Some(warp(raster, &chip_to_frame, width, height))
}

/// The `width x height` raster whose pixel (x, y) is `raster` at `chip_to_frame(x, y)`, sampled
/// bilinearly at pixel centres; outside the frame, the nearest edge pixel. When the chip is
/// much smaller than the face, the frame is first shrunk by whole factors (box filter), so
/// that bilinear sampling does not skip pixels.
pub fn warp(raster: &Raster, chip_to_frame: &Similarity, width: u32, height: u32) -> Raster {
    let factor = chip_to_frame.scale().floor().max(1.0) as u32;
    let shrunk;
    let (source, map) = if factor >= 2 {
        shrunk = shrink(raster, factor);
        let f = factor as f32;
        // Frame coordinates of pixel centres become those of the shrunk raster.
        let map = Similarity {
            a: chip_to_frame.a / f,
            b: chip_to_frame.b / f,
            tx: (chip_to_frame.tx + 0.5) / f - 0.5,
            ty: (chip_to_frame.ty + 0.5) / f - 0.5,
        };
        (&shrunk, map)
    } else {
        (raster, *chip_to_frame)
    };
    let channels = source.channels as usize;
    let mut data = Vec::with_capacity(width as usize * height as usize * channels);
    for y in 0..height {
        for x in 0..width {
            // Pixel centres: (x + 0.5) in the chip, back to indexes in the source.
            let [sx, sy] = map.apply([x as f32 + 0.5, y as f32 + 0.5]);
            sample(source, sx - 0.5, sy - 0.5, &mut data);
        }
    }
    Raster {
        width,
        height,
        channels: source.channels,
        data,
    }
}

/// The bilinear sample of `raster` at (x, y) (pixel indexes), its channels appended to `out`.
fn sample(raster: &Raster, x: f32, y: f32, out: &mut Vec<u8>) {
    let channels = raster.channels as usize;
    let (w, h) = (raster.width.max(1) as i64, raster.height.max(1) as i64);
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: i64, yi: i64, c: usize| -> f32 {
        let (xi, yi) = (xi.clamp(0, w - 1) as usize, yi.clamp(0, h - 1) as usize);
        raster
            .data
            .get((yi * w as usize + xi) * channels + c)
            .copied()
            .unwrap_or(0) as f32
    };
    let (x0, y0) = (x0 as i64, y0 as i64);
    for c in 0..channels {
        let top = at(x0, y0, c) * (1.0 - fx) + at(x0 + 1, y0, c) * fx;
        let bottom = at(x0, y0 + 1, c) * (1.0 - fx) + at(x0 + 1, y0 + 1, c) * fx;
        out.push((top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8);
    }
}

/// `raster` shrunk by `factor` in each direction, each pixel the mean of a `factor x factor`
/// block (the last blocks take what is left).
fn shrink(raster: &Raster, factor: u32) -> Raster {
    let channels = raster.channels as usize;
    let (width, height) = (
        raster.width.div_ceil(factor).max(1),
        raster.height.div_ceil(factor).max(1),
    );
    let mut data = Vec::with_capacity(width as usize * height as usize * channels);
    for by in 0..height {
        for bx in 0..width {
            let (x0, y0) = (bx * factor, by * factor);
            let (x1, y1) = (
                (x0 + factor).min(raster.width),
                (y0 + factor).min(raster.height),
            );
            let count = ((x1 - x0) * (y1 - y0)).max(1) as f32;
            for c in 0..channels {
                let mut sum = 0.0f32;
                for y in y0..y1 {
                    for x in x0..x1 {
                        let i = (y as usize * raster.width as usize + x as usize) * channels + c;
                        sum += raster.data.get(i).copied().unwrap_or(0) as f32;
                    }
                }
                data.push((sum / count).round() as u8);
            }
        }
    }
    Raster {
        width,
        height,
        channels: raster.channels,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_recovers_a_known_similarity() {
        let known = Similarity {
            a: 1.8 * 0.3f32.cos(),
            b: 1.8 * 0.3f32.sin(),
            tx: 40.0,
            ty: -12.0,
        };
        let from = [[10.0, 20.0], [60.0, 22.0], [35.0, 80.0]];
        let to: Vec<[f32; 2]> = from.iter().map(|p| known.apply(*p)).collect();
        let fitted = Similarity::fit(&from, &to).unwrap();
        for (p, q) in from.iter().zip(&to) {
            let r = fitted.apply(*p);
            assert!((r[0] - q[0]).abs() < 1e-3 && (r[1] - q[1]).abs() < 1e-3);
        }
        assert!((fitted.scale() - 1.8).abs() < 1e-4);
        assert!(Similarity::fit(&[[1.0, 1.0], [1.0, 1.0]], &from[..2]).is_none());
    }

    #[test]
    fn the_chip_puts_the_eyes_where_dlib_has_them() {
        let chip = FacePoints::in_chip(150, 150);
        // dlib's 150x150 chips with padding 0.25: eyes near (47.5, 46.6) and (100.5, 46.6).
        assert!((chip.right_eye[0] - 47.55).abs() < 0.01);
        assert!((chip.left_eye[0] - 100.48).abs() < 0.01);
        assert!((chip.right_eye[1] - 46.6).abs() < 0.01);
        assert!((chip.mouth[1] - 105.42).abs() < 0.01);
    }

    /// A frame with three marks (eyes and mouth) rotated and scaled: the chip has the marks
    /// where the template wants them.
    #[test]
    fn a_tilted_face_comes_out_upright() {
        let (w, h) = (400u32, 300u32);
        let mut raster = Raster {
            width: w,
            height: h,
            channels: 1,
            data: vec![0; (w * h) as usize],
        };
        let template = FacePoints::in_chip(150, 150);
        let tilt = Similarity {
            a: 1.6 * 0.4f32.cos(),
            b: 1.6 * 0.4f32.sin(),
            tx: 120.0,
            ty: 40.0,
        };
        let face = FacePoints {
            right_eye: tilt.apply(template.right_eye),
            left_eye: tilt.apply(template.left_eye),
            mouth: tilt.apply(template.mouth),
        };
        for p in face.all() {
            for dy in -4..=4i32 {
                for dx in -4..=4i32 {
                    let (x, y) = (p[0] as i32 + dx, p[1] as i32 + dy);
                    raster.data[(y as u32 * w + x as u32) as usize] = 255;
                }
            }
        }
        let chip = face_chip(&raster, &face, 150, 150).unwrap();
        for p in template.all() {
            let i = (p[1] as u32 * 150 + p[0] as u32) as usize;
            assert!(chip.data[i] > 150, "a mark at {p:?}: {}", chip.data[i]);
        }
        // And nothing bright half-way between the eyes.
        let between = [(template.right_eye[0] + template.left_eye[0]) / 2.0, 46.6];
        assert_eq!(
            chip.data[(between[1] as u32 * 150 + between[0] as u32) as usize],
            0
        );
    }
}
