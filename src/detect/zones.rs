//! `[[zones]]`: polygons in frame pixels per camera. Where a camera has zones, only objects
//! whose box's bottom centre (where a person stands) lies in one of them count.

use crate::interpret::PixelBox;
use serde::Deserialize;

/// `[[zones]]`: one polygon of one camera.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// The zone's name, reported in each object inside it.
    pub name: String,
    /// The camera id whose frames the zone is drawn on.
    pub camera: String,
    /// The corners, `[[x, y], ...]` in frame pixels, at least three, in order around the zone.
    pub points: Vec<[f64; 2]>,
}

impl ZoneConfig {
    /// Refuses a polygon that has no inside.
    pub fn check(&self) -> Result<(), String> {
        if self.points.len() < 3 {
            return Err(format!(
                "zone {:?} of camera {:?} has {} points: a zone needs at least 3 corners",
                self.name,
                self.camera,
                self.points.len()
            ));
        }
        if area(&self.points).abs() < 1.0 {
            return Err(format!(
                "zone {:?} of camera {:?} has no area (its corners lie on a line): nothing could be inside",
                self.name, self.camera
            ));
        }
        if self.points.iter().flatten().any(|v| !v.is_finite()) {
            return Err(format!("zone {:?}: its points must be numbers", self.name));
        }
        Ok(())
    }

    /// Whether an object with this box stands in the zone.
    pub fn holds(&self, bounds: PixelBox) -> bool {
        let x = (bounds.x0 as f64 + bounds.x1 as f64) / 2.0;
        let y = bounds.y1 as f64 - 0.5;
        contains(&self.points, x, y)
    }
}

/// Twice the signed area (shoelace).
fn area(points: &[[f64; 2]]) -> f64 {
    let n = points.len();
    (0..n)
        .map(|i| {
            let (a, b) = (points[i], points[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum()
}

/// Even-odd rule: a ray to the right crosses the edges an odd number of times.
pub fn contains(points: &[[f64; 2]], x: f64, y: f64) -> bool {
    let n = points.len();
    let mut inside = false;
    for i in 0..n {
        let (a, b) = (points[i], points[(i + n - 1) % n]);
        if (a[1] > y) != (b[1] > y) && x < (b[0] - a[0]) * (y - a[1]) / (b[1] - a[1]) + a[0] {
            inside = !inside;
        }
    }
    inside
}

/// The zones of `camera` an object stands in; `None` when it stands in none of them while the
/// camera has zones (the object does not count).
pub fn zones_of(zones: &[ZoneConfig], camera: &str, bounds: PixelBox) -> Option<Vec<String>> {
    let mut ours = zones.iter().filter(|z| z.camera == camera).peekable();
    if ours.peek().is_none() {
        return Some(Vec::new());
    }
    let inside: Vec<String> = ours
        .filter(|z| z.holds(bounds))
        .map(|z| z.name.clone())
        .collect();
    (!inside.is_empty()).then_some(inside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn zone(points: Vec<[f64; 2]>) -> ZoneConfig {
        ZoneConfig {
            name: "porch".into(),
            camera: "cam0".into(),
            points,
        }
    }

    #[test]
    fn a_person_counts_where_they_stand() {
        // An L-shaped zone: the square 0..100 without its top-right quarter.
        let l = zone(vec![
            [0.0, 0.0],
            [50.0, 0.0],
            [50.0, 50.0],
            [100.0, 50.0],
            [100.0, 100.0],
            [0.0, 100.0],
        ]);
        let standing = |x0, y1| PixelBox {
            x0,
            y0: 0,
            x1: x0 + 10,
            y1,
        };
        assert!(l.holds(standing(70, 80)));
        assert!(!l.holds(standing(70, 30)), "in the missing quarter");
        assert!(l.holds(standing(10, 30)));
        assert!(!l.holds(standing(200, 80)));
        let zones = vec![l];
        assert_eq!(
            zones_of(&zones, "cam0", standing(70, 80)),
            Some(vec!["porch".to_string()])
        );
        assert_eq!(zones_of(&zones, "cam0", standing(200, 80)), None);
        assert_eq!(zones_of(&zones, "cam1", standing(200, 80)), Some(vec![]));
    }

    #[test]
    fn zones_without_an_inside_are_refused() {
        assert!(zone(vec![]).check().is_err());
        assert!(zone(vec![[0.0, 0.0], [1.0, 1.0]]).check().is_err());
        assert!(zone(vec![[0.0, 0.0], [10.0, 10.0], [20.0, 20.0]])
            .check()
            .is_err());
        assert!(zone(vec![[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
            .check()
            .is_ok());
    }

    proptest! {
        /// For a rectangle the polygon test agrees with plain comparisons.
        #[test]
        fn rectangles_agree_with_comparisons(
            (x0, y0, w, h) in (0f64..100.0, 0f64..100.0, 1f64..100.0, 1f64..100.0),
            (x, y) in (-10f64..220.0, -10f64..220.0),
        ) {
            let rect = [[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]];
            let inside = x > x0 && x < x0 + w && y > y0 && y < y0 + h;
            let on_edge = [x - x0, x - x0 - w, y - y0, y - y0 - h].iter().any(|d| d.abs() < 1e-9);
            if !on_edge {
                prop_assert_eq!(contains(&rect, x, y), inside);
            }
        }
    }
}
