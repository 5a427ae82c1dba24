//! The motion model of a track: a constant-velocity Kalman filter on the box's centre, width
//! and height, as SORT and ByteTrack use. Their 8-state filter never couples one coordinate
//! with another (the transition, the measurement and both noises are per coordinate), so it
//! is four independent 2-state filters (value, velocity), which is what this is.

/// Noise scales relative to the box's height, ByteTrack's values.
const POSITION_NOISE: f32 = 1.0 / 20.0;
const VELOCITY_NOISE: f32 = 1.0 / 160.0;

/// One coordinate: its value and velocity, with their covariance `[pp, pv, vv]`.
#[derive(Debug, Clone, Copy)]
struct Axis {
    value: f32,
    velocity: f32,
    cov: [f32; 3],
}

impl Axis {
    fn predict(&mut self, q_pos: f32, q_vel: f32) {
        self.value += self.velocity;
        let [pp, pv, vv] = self.cov;
        self.cov = [pp + 2.0 * pv + vv + q_pos, pv + vv, vv + q_vel];
    }

    fn update(&mut self, measured: f32, r: f32) {
        let [pp, pv, vv] = self.cov;
        let s = pp + r;
        let (k0, k1) = (pp / s, pv / s);
        let residual = measured - self.value;
        self.value += k0 * residual;
        self.velocity += k1 * residual;
        self.cov = [(1.0 - k0) * pp, (1.0 - k0) * pv, vv - k1 * pv];
    }
}

/// A box's motion: centre x, centre y, width, height.
#[derive(Debug, Clone)]
pub struct Motion {
    axes: [Axis; 4],
}

impl Motion {
    /// Starts at a measured box `[x0, y0, x1, y1]`, at rest, uncertain about its speed.
    pub fn new(bounds: [f32; 4]) -> Self {
        let z = measurement(bounds);
        let h = z[3].max(1.0);
        let axes = z.map(|value| Axis {
            value,
            velocity: 0.0,
            cov: [
                (2.0 * POSITION_NOISE * h).powi(2),
                0.0,
                (10.0 * VELOCITY_NOISE * h).powi(2),
            ],
        });
        Motion { axes }
    }

    /// One frame ahead.
    pub fn predict(&mut self) {
        let h = self.axes[3].value.max(1.0);
        let (q_pos, q_vel) = ((POSITION_NOISE * h).powi(2), (VELOCITY_NOISE * h).powi(2));
        for axis in &mut self.axes {
            axis.predict(q_pos, q_vel);
        }
    }

    /// Corrects with a measured box.
    pub fn update(&mut self, bounds: [f32; 4]) {
        let h = self.axes[3].value.max(1.0);
        let r = (POSITION_NOISE * h).powi(2);
        for (axis, z) in self.axes.iter_mut().zip(measurement(bounds)) {
            axis.update(z, r);
        }
    }

    /// The estimated box `[x0, y0, x1, y1]`.
    pub fn bounds(&self) -> [f32; 4] {
        let [cx, cy, w, h] = self.axes.map(|a| a.value);
        let (w, h) = (w.max(1.0), h.max(1.0));
        [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
    }
}

fn measurement(b: [f32; 4]) -> [f32; 4] {
    [
        (b[0] + b[2]) / 2.0,
        (b[1] + b[3]) / 2.0,
        b[2] - b[0],
        b[3] - b[1],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A box moving 5 px a frame: after a few updates the prediction leads it by 5 px.
    #[test]
    fn the_filter_learns_a_steady_motion() {
        let at = |t: f32| [100.0 + 5.0 * t, 50.0, 140.0 + 5.0 * t, 150.0];
        let mut motion = Motion::new(at(0.0));
        for t in 1..20 {
            motion.predict();
            motion.update(at(t as f32));
        }
        motion.predict();
        let predicted = motion.bounds();
        let expected = at(20.0);
        for (p, e) in predicted.iter().zip(expected) {
            assert!((p - e).abs() < 0.5, "{predicted:?} vs {expected:?}");
        }
    }
}
