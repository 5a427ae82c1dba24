//! Object events, like Frigate's: a tracked object's `new` when its track is confirmed,
//! `update` when what the model said of it changes (identity, name, fine label, zones), `end`
//! when its track ends (or the run stops), each with the box of its best crop so far (the largest and best scored); and a
//! per-camera count of objects by label, sent when it changes. The tracker already debounces
//! (a track is confirmed after `min_hits` frames, a label or identity is a vote), so every
//! change is worth a message.

use crate::interpret::{Interpretation, PixelBox, Scene, SceneObject};
use crate::sink::{Record, ResultRecord};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One message on `<prefix>/<device>/<camera>/objects/<track>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectEvent {
    /// `new`, `update` or `end` (`event_type` repeats it for Home Assistant's event entity).
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event_type: &'static str,
    /// `<camera>-<run>-<track>`: unique across restarts.
    pub id: String,
    pub camera: String,
    pub track: u64,
    pub label: String,
    /// The best detection score seen.
    pub score: f32,
    /// The best crop's box so far (the largest and best scored).
    #[serde(rename = "box")]
    pub bounds: PixelBox,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fine_label: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// The frame that caused the message.
    pub seq: u64,
    pub ts: String,
}

/// What a camera's objects count, by label: `{"person": 2, "car": 0}` on
/// `<prefix>/<device>/<camera>/objects`. A label once seen stays, at 0 when gone.
pub type Counts = BTreeMap<String, usize>;

/// An open event: the object as last announced, its best crop, and its last frame.
#[derive(Debug, Clone)]
struct Open {
    event: ObjectEvent,
    quality: f32,
}

/// The events and counts of every camera.
#[derive(Debug, Default)]
pub struct ObjectEvents {
    open: HashMap<(String, u64), Open>,
    counts: HashMap<String, Counts>,
}

/// How good a crop is: larger and better scored is better.
fn quality(object: &SceneObject) -> f32 {
    let b = object.object.bounds;
    (b.width() as f32 * b.height() as f32).sqrt() * object.object.score
}

impl ObjectEvents {
    /// The events and the count change one record causes (nothing for other records).
    pub fn observe(&mut self, record: &Record) -> (Vec<ObjectEvent>, Option<Counts>) {
        let Record::Result(ResultRecord {
            frame,
            result: Interpretation::Scene(scene),
            ..
        }) = record
        else {
            return (Vec::new(), None);
        };
        let mut out = Vec::new();
        for object in &scene.objects {
            let Some(track) = object.track else {
                continue;
            };
            let key = (frame.camera.clone(), track);
            let q = quality(object);
            let current = ObjectEvent {
                kind: "new",
                event_type: "new",
                id: format!("{}-{}-{track}", frame.camera, frame.run),
                camera: frame.camera.clone(),
                track,
                label: object.object.label.clone(),
                score: object.object.score,
                bounds: object.object.bounds,
                identity: object.identity.clone(),
                name: object.name.clone(),
                fine_label: object.fine_label.clone(),
                zones: object.zones.clone(),
                seq: frame.seq,
                ts: frame.ts.clone(),
            };
            match self.open.get_mut(&key) {
                None => {
                    out.push(current.clone());
                    self.open.insert(
                        key,
                        Open {
                            event: current,
                            quality: q,
                        },
                    );
                }
                Some(open) => {
                    let before = &open.event;
                    let changed = before.identity != current.identity
                        || before.name != current.name
                        || before.fine_label != current.fine_label
                        || before.zones != current.zones;
                    let e = &mut open.event;
                    if q > open.quality {
                        open.quality = q;
                        e.bounds = current.bounds;
                    }
                    e.score = e.score.max(current.score);
                    e.identity = current.identity;
                    e.name = current.name;
                    e.fine_label = current.fine_label;
                    e.zones = current.zones;
                    e.seq = current.seq;
                    e.ts = current.ts;
                    if changed {
                        out.push(ObjectEvent {
                            kind: "update",
                            event_type: "update",
                            ..e.clone()
                        });
                    }
                }
            }
        }
        for track in &scene.ended {
            if let Some(open) = self.open.remove(&(frame.camera.clone(), *track)) {
                out.push(ended(open.event, frame.seq, &frame.ts));
            }
        }
        (out, self.count(&frame.camera, scene))
    }

    /// The camera's counts by label, when they changed (and at its first frame).
    fn count(&mut self, camera: &str, scene: &Scene) -> Option<Counts> {
        let previous = self.counts.get(camera);
        let mut now: Counts = previous
            .map(|c| c.keys().map(|label| (label.clone(), 0)).collect())
            .unwrap_or_default();
        for object in &scene.objects {
            *now.entry(object.object.label.clone()).or_default() += 1;
        }
        if previous == Some(&now) {
            return None;
        }
        self.counts.insert(camera.to_string(), now.clone());
        Some(now)
    }

    /// Ends every open event (a clean stop), at the last frame each was seen in.
    pub fn finish(&mut self) -> Vec<ObjectEvent> {
        let mut open: Vec<Open> = self.open.drain().map(|(_, o)| o).collect();
        open.sort_by(|a, b| {
            (&a.event.camera, a.event.track).cmp(&(&b.event.camera, b.event.track))
        });
        open.into_iter()
            .map(|o| {
                let (seq, ts) = (o.event.seq, o.event.ts.clone());
                ended(o.event, seq, &ts)
            })
            .collect()
    }
}

fn ended(event: ObjectEvent, seq: u64, ts: &str) -> ObjectEvent {
    ObjectEvent {
        kind: "end",
        event_type: "end",
        seq,
        ts: ts.to_string(),
        ..event
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::detect::Object;
    use crate::model::Task;
    use crate::sink::{FrameInfo, Latency};

    /// A tracked person at `x` with `identity` (a scene record's object).
    pub(in crate::sink::mqtt) fn object(track: u64, x: u32, identity: Option<&str>) -> SceneObject {
        let object = Object {
            bounds: PixelBox {
                x0: x,
                y0: 10,
                x1: x + 40,
                y1: 110,
            },
            label: "person".into(),
            class: 0,
            score: 0.7,
            keypoints: Vec::new(),
            face: None,
        };
        SceneObject {
            track: Some(track),
            identity: identity.map(String::from),
            similarity: identity.map(|_| 0.9),
            ..SceneObject::of(object)
        }
    }

    /// A ReID scene record of `cam0`.
    pub(in crate::sink::mqtt) fn record(
        seq: u64,
        objects: Vec<SceneObject>,
        ended: Vec<u64>,
    ) -> Record {
        Record::Result(ResultRecord {
            frame: FrameInfo {
                run: "r".into(),
                seq,
                source: "s".into(),
                camera: "cam0".into(),
                ts: format!("t{seq}"),
                input: None,
            },
            model: "m".into(),
            backend: "tract",
            task: Task::Reid,
            result: Interpretation::Scene(Scene { objects, ended }),
            latency_ms: Latency::default(),
        })
    }

    fn kinds(events: &[ObjectEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| format!("{}:{}", e.kind, e.track))
            .collect()
    }

    /// A track's life: `new`, an `update` only when its identity changes, `end` when its
    /// track ends, with the best crop's box; counts by label when they change.
    #[test]
    fn a_track_is_new_updated_on_a_change_and_ended() {
        let mut events = ObjectEvents::default();
        let (first, counts) = events.observe(&record(0, vec![object(1, 10, None)], vec![]));
        assert_eq!(kinds(&first), ["new:1"]);
        assert_eq!(counts, Some(Counts::from([("person".into(), 1)])));
        let (same, counts) = events.observe(&record(1, vec![object(1, 12, None)], vec![]));
        assert!(same.is_empty() && counts.is_none(), "no change, no message");
        let mut bigger = object(1, 14, Some("id-000003"));
        bigger.object.bounds.y1 = 210;
        let (named, _) = events.observe(&record(2, vec![bigger, object(2, 300, None)], vec![]));
        assert_eq!(kinds(&named), ["update:1", "new:2"]);
        assert_eq!(named[0].identity.as_deref(), Some("id-000003"));
        let (gone, counts) = events.observe(&record(3, vec![object(2, 300, None)], vec![1]));
        assert_eq!(kinds(&gone), ["end:1"]);
        assert_eq!(
            gone[0].bounds.y1, 210,
            "the end carries the best crop's box"
        );
        assert_eq!(counts, Some(Counts::from([("person".into(), 1)])));
        let (_, counts) = events.observe(&record(4, vec![], vec![]));
        assert_eq!(counts, Some(Counts::from([("person".into(), 0)])));
        assert_eq!(kinds(&events.finish()), ["end:2"]);
        assert!(events.finish().is_empty());
    }
}
