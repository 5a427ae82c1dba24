//! Synthetic scenes: people cut from the reference photos, pasted at known places into frames
//! with a seeded noise background, so that the truth of each frame is known.

use std::collections::BTreeMap;
use std::path::Path;

/// A person pasted into a frame: who, and the box (frame pixels).
#[derive(Debug, Clone)]
pub struct Placed {
    pub who: &'static str,
    pub bounds: [f64; 4],
}

/// The two people, cut from the photos where the hand-drawn boxes are, scaled to `height`.
pub fn people(shared: &Path, height: u32) -> BTreeMap<&'static str, image::RgbImage> {
    let cut = |name: &str, b: [u32; 4]| {
        let photo = image::open(shared.join("reference/images").join(name))
            .unwrap()
            .to_rgb8();
        let crop =
            image::imageops::crop_imm(&photo, b[0], b[1], b[2] - b[0], b[3] - b[1]).to_image();
        let width = crop.width() * height / crop.height();
        image::imageops::resize(&crop, width, height, image::imageops::FilterType::Triangle)
    };
    BTreeMap::from([
        ("astronaut", cut("astronaut.png", [18, 14, 365, 512])),
        ("grace", cut("grace_hopper.bmp", [12, 20, 512, 600])),
    ])
}

/// A grey, noisy background (a fixed seed: the same frames every run).
fn background(width: u32, height: u32, seed: u64) -> image::RgbImage {
    let mut state = seed;
    image::RgbImage::from_fn(width, height, |_, _| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v = 110 + (state >> 59) as u8;
        image::Rgb([v, v, v + 8])
    })
}

/// Writes the frames of a camera: `at(t)` says where each person stands in frame `t`
/// (top-left corner), absent when out of sight.
pub fn film(
    dir: &Path,
    size: (u32, u32),
    frames: usize,
    cast: &BTreeMap<&'static str, image::RgbImage>,
    at: impl Fn(usize) -> Vec<(&'static str, i64, i64)>,
) -> Vec<Vec<Placed>> {
    std::fs::create_dir_all(dir).unwrap();
    let mut truth = Vec::new();
    for t in 0..frames {
        let mut frame = background(size.0, size.1, 7 + t as u64);
        let mut placed = Vec::new();
        for (who, x, y) in at(t) {
            let person = &cast[who];
            image::imageops::overlay(&mut frame, person, x, y);
            let clip = |v: i64, max: u32| v.clamp(0, max as i64) as f64;
            placed.push(Placed {
                who,
                bounds: [
                    clip(x, size.0),
                    clip(y, size.1),
                    clip(x + person.width() as i64, size.0),
                    clip(y + person.height() as i64, size.1),
                ],
            });
        }
        frame.save(dir.join(format!("{t:04}.png"))).unwrap();
        truth.push(placed);
    }
    truth
}
