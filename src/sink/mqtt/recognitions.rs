//! Who a scene's camera recognises, on `<prefix>/<device>/<camera>/identity` (and, for a named
//! person, `.../identity/<name>`): `recognized` once an identity has been in the camera's
//! frames for `[sink.events] frames` frames in a row, `left` once it has been missing as many
//! (or the run stops). With or without a tracker: faces at a door are often matched frame by
//! frame. The decisions are here; the sink only publishes them.

use crate::interpret::{Interpretation, PixelBox, SceneObject};
use crate::sink::{Record, ResultRecord};
use serde::Serialize;
use std::collections::HashMap;

/// One message on `<camera>/identity`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recognition {
    /// `recognized` or `left` (`event_type` repeats it for Home Assistant's event entities).
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event_type: &'static str,
    /// `<camera>-<run>-<seq of the frame that recognised it>-<identity>`.
    pub id: String,
    pub camera: String,
    pub identity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The name, else the identity.
    pub label: String,
    /// What the detector found (`face`, `person`): the snapshot's topic level.
    pub object: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track: Option<u64>,
    /// Its similarity at the latest look.
    pub similarity: f32,
    /// The same as a distance (packages compared by Euclidean distance: faces).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance: Option<f32>,
    /// Where it was in the latest frame that showed it.
    #[serde(rename = "box")]
    pub bounds: PixelBox,
    /// The frame that caused the message.
    pub seq: u64,
    pub ts: String,
    /// The best crop of the visit so far (a face's aligned chip; the largest box is the
    /// best), for the snapshot. Not sent.
    #[serde(skip)]
    pub crop: Option<std::sync::Arc<crate::preprocess::Raster>>,
    /// Whether `crop` is better than the one sent at `recognized` (`left` then sends it).
    #[serde(skip)]
    pub better_crop: bool,
}

/// One identity at one camera.
#[derive(Debug, Clone)]
struct Presence {
    /// Frames in a row it was in; frames in a row it was not.
    streak: u32,
    misses: u32,
    /// The latest look, as a message ready to send (with the visit's best crop).
    latest: Recognition,
    announced: bool,
    /// How good the best crop is (its box's smaller side).
    best: u32,
}

/// The identities present at each camera.
#[derive(Debug, Default)]
pub struct Recognitions {
    frames: u32,
    cameras: HashMap<String, HashMap<String, Presence>>,
}

impl Recognitions {
    /// Recognised after `frames` frames in a row, gone after as many without.
    pub fn new(frames: u32) -> Self {
        Recognitions {
            frames: frames.max(1),
            cameras: HashMap::new(),
        }
    }

    /// The messages one record causes (only scene records of a ReID model cause any).
    pub fn observe(&mut self, record: &Record) -> Vec<Recognition> {
        let Record::Result(ResultRecord {
            frame,
            result: Interpretation::Scene(scene),
            ..
        }) = record
        else {
            return Vec::new();
        };
        let frames = self.frames;
        let present = self.cameras.entry(frame.camera.clone()).or_default();
        let mut out = Vec::new();
        let mut seen_now = Vec::new();
        for object in &scene.objects {
            let Some(identity) = &object.identity else {
                continue;
            };
            if seen_now.contains(identity) {
                continue;
            }
            seen_now.push(identity.clone());
            let latest = message(object, identity, &frame.camera, frame.seq, &frame.ts);
            let presence = present.entry(identity.clone()).or_insert_with(|| Presence {
                streak: 0,
                misses: 0,
                latest: latest.clone(),
                announced: false,
                best: 0,
            });
            presence.streak += 1;
            presence.misses = 0;
            let id = presence.latest.id.clone();
            let (best_crop, better) = (presence.latest.crop.clone(), presence.latest.better_crop);
            let quality = object
                .object
                .bounds
                .width()
                .min(object.object.bounds.height());
            presence.latest = latest;
            if object.crop.is_some() && quality > presence.best {
                presence.best = quality;
                presence.latest.better_crop = presence.announced;
            } else {
                presence.latest.crop = best_crop;
                presence.latest.better_crop = better;
            }
            if presence.announced {
                presence.latest.id = id;
            } else {
                presence.latest.id =
                    format!("{}-{}-{}-{identity}", frame.camera, frame.run, frame.seq);
                if presence.streak >= frames {
                    presence.announced = true;
                    out.push(presence.latest.clone());
                }
            }
        }
        present.retain(|identity, presence| {
            if seen_now.contains(identity) {
                return true;
            }
            presence.streak = 0;
            presence.misses += 1;
            if presence.misses < frames {
                return true;
            }
            if presence.announced {
                out.push(left(&presence.latest, frame.seq, &frame.ts));
            }
            false
        });
        out
    }

    /// `left` for everyone still recognised (a clean stop), at the last frame that showed them.
    pub fn finish(&mut self) -> Vec<Recognition> {
        let mut out: Vec<Recognition> = self
            .cameras
            .drain()
            .flat_map(|(_, present)| present.into_values())
            .filter(|p| p.announced)
            .map(|p| left(&p.latest, p.latest.seq, &p.latest.ts))
            .collect();
        out.sort_by(|a, b| (&a.camera, &a.identity).cmp(&(&b.camera, &b.identity)));
        out
    }
}

fn message(object: &SceneObject, identity: &str, camera: &str, seq: u64, ts: &str) -> Recognition {
    Recognition {
        kind: "recognized",
        event_type: "recognized",
        id: String::new(),
        camera: camera.to_string(),
        identity: identity.to_string(),
        name: object.name.clone(),
        label: object.name.clone().unwrap_or_else(|| identity.to_string()),
        object: object.object.label.clone(),
        track: object.track,
        similarity: object.similarity.unwrap_or(0.0),
        distance: object.distance,
        bounds: object.object.bounds,
        seq,
        ts: ts.to_string(),
        crop: object.crop.clone(),
        better_crop: false,
    }
}

fn left(latest: &Recognition, seq: u64, ts: &str) -> Recognition {
    Recognition {
        kind: "left",
        event_type: "left",
        seq,
        ts: ts.to_string(),
        ..latest.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::mqtt::object_events::tests::{object, record};

    fn face(identity: &str, name: Option<&str>) -> SceneObject {
        let mut face = object(0, 10, Some(identity));
        face.track = None;
        face.name = name.map(String::from);
        face
    }

    /// Recognised at the third frame in a row, not re-announced while present, gone after
    /// three frames without; a one-frame glimpse of someone else is never announced; a stop
    /// says `left` for whoever is still there.
    #[test]
    fn a_person_is_recognised_once_and_leaves_once() {
        let mut r = Recognitions::new(3);
        let grace = || face("id-000002", Some("Grace Hopper"));
        let mut kinds = Vec::new();
        let script: Vec<Vec<SceneObject>> = vec![
            vec![grace()],
            vec![grace(), face("id-000009", None)],
            vec![grace()],
            vec![grace()],
            vec![],
            vec![grace()],
            vec![],
            vec![],
            vec![],
            vec![grace()],
            vec![grace()],
            vec![grace()],
        ];
        for (seq, faces) in script.into_iter().enumerate() {
            for m in r.observe(&record(seq as u64, faces, Vec::new())) {
                assert_eq!(m.identity, "id-000002");
                kinds.push((seq, m.kind));
            }
        }
        let ends = r.finish();
        assert_eq!(ends.len(), 1);
        assert_eq!(
            (ends[0].kind, ends[0].label.as_str(), ends[0].seq),
            ("left", "Grace Hopper", 11)
        );
        assert_eq!(kinds, [(2, "recognized"), (8, "left"), (11, "recognized")]);
    }

    /// The snapshot is the visit's best crop (the largest box): at `recognized` the best of
    /// the frames so far, at `left` a better one when it came after.
    #[test]
    fn the_snapshot_is_the_best_crop_of_the_visit() {
        let mut r = Recognitions::new(2);
        let look = |side: u32| {
            let mut face = face("id-000002", Some("Grace Hopper"));
            face.object.bounds.x1 = face.object.bounds.x0 + side;
            face.object.bounds.y1 = face.object.bounds.y0 + side;
            face.crop = Some(std::sync::Arc::new(crate::preprocess::Raster {
                width: side,
                height: side,
                channels: 3,
                data: vec![0; (side * side * 3) as usize],
            }));
            face
        };
        let width = |m: &Recognition| m.crop.as_ref().map(|c| c.width);
        let mut sent = Vec::new();
        for (seq, side) in [(0, 80), (1, 60), (2, 120), (3, 90)] {
            sent.extend(r.observe(&record(seq, vec![look(side)], Vec::new())));
        }
        for seq in 4..6 {
            sent.extend(r.observe(&record(seq, Vec::new(), Vec::new())));
        }
        let summary: Vec<(&str, Option<u32>, bool)> = sent
            .iter()
            .map(|m| (m.kind, width(m), m.better_crop))
            .collect();
        assert_eq!(
            summary,
            [("recognized", Some(80), false), ("left", Some(120), true)]
        );
    }
}
