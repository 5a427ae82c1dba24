//! Debounced events: a label becomes current for a camera when it is top-1 at or above a score
//! for `frames` consecutive frames (`start`); its best score rising is an `update`; it ends
//! (`end`) when it has not been top-1 above the score for `frames` consecutive frames, or when
//! another label becomes current. Like Frigate's events topic, consumers get changes only.

use crate::interpret::Interpretation;
use crate::sink::{Record, ResultRecord};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// `[sink.events]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventConfig {
    /// Top-1 score a label needs to count for a frame.
    #[serde(default = "default_min_score")]
    pub min_score: f32,
    /// Consecutive frames needed to start, and to end, an event.
    #[serde(default = "default_frames")]
    pub frames: u32,
    /// Smallest rise of the best score that is worth an `update`.
    #[serde(default = "default_update_step")]
    pub update_step: f32,
}

fn default_min_score() -> f32 {
    0.5
}
fn default_frames() -> u32 {
    3
}
fn default_update_step() -> f32 {
    0.05
}

impl Default for EventConfig {
    fn default() -> Self {
        EventConfig {
            min_score: default_min_score(),
            frames: default_frames(),
            update_step: default_update_step(),
        }
    }
}

/// One message on `<prefix>/<device>/<camera>/event` (classes) or `.../identity` (identities).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventMessage {
    /// `start`, `update` or `end` (`event_type` repeats it for Home Assistant's event entity).
    /// For identities: `start` when one appears at a camera's ROI, `end` when it has left.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event_type: &'static str,
    /// `<camera>-<run>-<seq of the frame that started it>` (with `-<roi>` for identities):
    /// unique across restarts.
    pub id: String,
    pub camera: String,
    /// The ROI (identities only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roi: Option<String>,
    /// The identity's id, `id-000042` (identities only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The class label; for an identity its name, else its id.
    pub label: String,
    /// The class index; for an identity its number.
    pub index: usize,
    /// Best score (similarity for identities) seen during the event.
    pub score: f32,
    /// The frame that caused this message.
    pub seq: u64,
    pub ts: String,
}

/// What a tracker follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Subject {
    /// The top-1 class of each camera.
    #[default]
    Classes,
    /// The confirmed identity in each ROI of each camera.
    Identities,
}

/// One frame's observation of one slot (a camera, or a camera's ROI).
struct Seen {
    index: usize,
    label: String,
    identity: Option<String>,
    score: f32,
}

#[derive(Debug, Clone)]
struct Current {
    id: String,
    label: String,
    identity: Option<String>,
    index: usize,
    best: f32,
    misses: u32,
}

#[derive(Debug, Default)]
struct SlotState {
    camera: String,
    roi: Option<String>,
    current: Option<Current>,
    /// The latest frame seen (`seq`, `ts`): an event ended by a stop ends there.
    last: Option<(u64, String)>,
    /// Label seen top-1 on the latest consecutive frames, and how many.
    candidate: Option<(usize, u32)>,
}

/// Per-slot event state.
#[derive(Debug, Default)]
pub struct EventTracker {
    config: EventConfig,
    subject: Subject,
    slots: HashMap<(String, Option<String>), SlotState>,
}

impl EventTracker {
    pub fn new(config: EventConfig) -> Self {
        Self::of(Subject::Classes, config)
    }

    pub fn of(subject: Subject, config: EventConfig) -> Self {
        EventTracker {
            config: EventConfig {
                frames: config.frames.max(1),
                ..config
            },
            subject,
            slots: HashMap::new(),
        }
    }

    /// What a record shows of its slot: `None` when it is not this tracker's kind of record.
    /// The inner `None` is a frame without the label (an error record counts as one for
    /// classes; an unconfirmed identity for identities).
    fn seen(&self, record: &Record) -> Option<(Option<String>, Option<Seen>)> {
        match (self.subject, record) {
            (
                Subject::Classes,
                Record::Result(ResultRecord {
                    result: Interpretation::Classification(c),
                    ..
                }),
            ) => Some((
                None,
                c.top
                    .first()
                    .filter(|t| t.score >= self.config.min_score)
                    .map(|t| Seen {
                        index: t.index,
                        label: t.label.clone(),
                        identity: None,
                        score: t.score,
                    }),
            )),
            (Subject::Classes, Record::Error(_)) => Some((None, None)),
            (
                Subject::Identities,
                Record::Result(ResultRecord {
                    result: Interpretation::Identification(i),
                    ..
                }),
            ) => Some((
                Some(i.roi.clone()),
                i.confirmed.then(|| Seen {
                    index: identity_number(&i.identity),
                    label: i.name.clone().unwrap_or_else(|| i.identity.clone()),
                    identity: Some(i.identity.clone()),
                    score: i.similarity,
                }),
            )),
            _ => None,
        }
    }

    /// The events one record causes.
    pub fn observe(&mut self, record: &Record) -> Vec<EventMessage> {
        let Some((roi, best)) = self.seen(record) else {
            return Vec::new();
        };
        let frame = record.frame();
        let config = &self.config;
        let state = self
            .slots
            .entry((frame.camera.clone(), roi.clone()))
            .or_insert_with(|| SlotState {
                camera: frame.camera.clone(),
                roi: roi.clone(),
                ..SlotState::default()
            });
        let message = |kind: &'static str, c: &Current| EventMessage {
            kind,
            event_type: kind,
            id: c.id.clone(),
            camera: frame.camera.clone(),
            roi: roi.clone(),
            identity: c.identity.clone(),
            label: c.label.clone(),
            index: c.index,
            score: c.best,
            seq: frame.seq,
            ts: frame.ts.clone(),
        };
        let mut out = Vec::new();
        state.last = Some((frame.seq, frame.ts.clone()));
        state.candidate = match (&best, state.candidate) {
            (Some(seen), Some((index, n))) if seen.index == index => Some((index, n + 1)),
            (Some(seen), _) => Some((seen.index, 1)),
            (None, _) => None,
        };
        if let Some(current) = &mut state.current {
            match &best {
                Some(seen) if seen.index == current.index => {
                    current.misses = 0;
                    // A renamed identity keeps its event; the name follows.
                    current.label.clone_from(&seen.label);
                    if seen.score >= current.best + config.update_step {
                        current.best = seen.score;
                        out.push(message("update", current));
                    }
                }
                _ => {
                    current.misses += 1;
                    let replaced = state.candidate.is_some_and(|(_, n)| n >= config.frames);
                    if current.misses >= config.frames || replaced {
                        out.push(message("end", current));
                        state.current = None;
                    }
                }
            }
        }
        if state.current.is_none() {
            if let (Some(seen), Some((_, n))) = (best, state.candidate) {
                if n >= config.frames {
                    let mut id = format!("{}-{}-{}", frame.camera, frame.run, frame.seq);
                    if let Some(roi) = &roi {
                        id = format!("{id}-{roi}");
                    }
                    let current = Current {
                        id,
                        label: seen.label,
                        identity: seen.identity,
                        index: seen.index,
                        best: seen.score,
                        misses: 0,
                    };
                    out.push(message("start", &current));
                    state.current = Some(current);
                }
            }
        }
        out
    }

    /// Ends every open event (a clean stop): subscribers see each `start` closed by an `end`,
    /// at the last frame its camera delivered.
    pub fn finish(&mut self) -> Vec<EventMessage> {
        let mut slots: Vec<_> = self.slots.iter_mut().collect();
        slots.sort_by(|a, b| a.0.cmp(b.0));
        slots
            .into_iter()
            .filter_map(|(_, state)| {
                let current = state.current.take()?;
                let (seq, ts) = state.last.clone().unwrap_or_default();
                state.candidate = None;
                Some(EventMessage {
                    kind: "end",
                    event_type: "end",
                    id: current.id,
                    camera: state.camera.clone(),
                    roi: state.roi.clone(),
                    identity: current.identity,
                    label: current.label,
                    index: current.index,
                    score: current.best,
                    seq,
                    ts,
                })
            })
            .collect()
    }
}

/// 42 for `id-000042`.
fn identity_number(identity: &str) -> usize {
    identity
        .trim_start_matches("id-")
        .parse()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interpret::{ClassScore, Classification};
    use crate::model::Task;
    use crate::sink::{FrameInfo, Latency};

    fn record(seq: u64, top: Option<(usize, f32)>) -> Record {
        Record::Result(ResultRecord {
            frame: FrameInfo {
                run: "r1".into(),
                seq,
                source: "s".into(),
                camera: "gate".into(),
                ts: format!("t{seq}"),
                input: None,
            },
            model: "m".into(),
            backend: "tract",
            task: Task::Classify,
            result: Interpretation::Classification(Classification {
                top: top
                    .map(|(index, score)| ClassScore {
                        index,
                        label: format!("L{index}"),
                        score,
                    })
                    .into_iter()
                    .collect(),
                ..Classification::default()
            }),
            latency_ms: Latency::default(),
        })
    }

    fn kinds(tracker: &mut EventTracker, frames: &[Option<(usize, f32)>]) -> Vec<String> {
        frames
            .iter()
            .enumerate()
            .flat_map(|(seq, top)| tracker.observe(&record(seq as u64, *top)))
            .map(|e| format!("{}:{}@{}", e.kind, e.label, e.seq))
            .collect()
    }

    #[test]
    fn start_needs_consecutive_frames_and_end_needs_consecutive_misses() {
        let mut t = EventTracker::new(EventConfig::default());
        let frames = [
            Some((1, 0.9)),
            Some((1, 0.9)),
            Some((2, 0.9)), // breaks the run
            Some((1, 0.9)),
            Some((1, 0.9)),
            Some((1, 0.9)),  // third in a row: start
            Some((1, 0.3)),  // below the score: a miss
            Some((1, 0.96)), // back, and better by 0.06: update
            None,
            None,
            None, // third miss: end
        ];
        assert_eq!(
            kinds(&mut t, &frames),
            ["start:L1@5", "update:L1@7", "end:L1@10"]
        );
    }

    #[test]
    fn a_new_label_ends_the_old_event_and_starts_its_own() {
        let mut t = EventTracker::new(EventConfig {
            frames: 2,
            ..EventConfig::default()
        });
        let frames = [
            Some((1, 0.9)),
            Some((1, 0.9)),
            Some((2, 0.8)),
            Some((2, 0.8)),
        ];
        assert_eq!(
            kinds(&mut t, &frames),
            ["start:L1@1", "end:L1@3", "start:L2@3"]
        );
    }

    #[test]
    fn a_stop_ends_the_open_event_once() {
        let mut t = EventTracker::new(EventConfig::default());
        let started = kinds(&mut t, &[Some((1, 0.9)), Some((1, 0.9)), Some((1, 0.9))]);
        assert_eq!(started, ["start:L1@2"]);
        t.observe(&record(3, Some((1, 0.9))));
        let ended: Vec<_> = t.finish();
        assert_eq!(ended.len(), 1);
        assert_eq!((ended[0].kind, ended[0].seq), ("end", 3));
        assert_eq!(ended[0].id, "gate-r1-2");
        assert!(t.finish().is_empty(), "a second stop sends nothing more");
    }

    fn sighting(seq: u64, roi: &str, identity: &str, confirmed: bool) -> Record {
        let Record::Result(mut r) = record(seq, None) else {
            unreachable!()
        };
        r.task = Task::Reid;
        r.result = Interpretation::Identification(crate::interpret::Identification {
            roi: roi.into(),
            bounds: crate::interpret::PixelBox {
                x0: 0,
                y0: 0,
                x1: 1,
                y1: 1,
            },
            identity: identity.into(),
            name: None,
            similarity: 0.9,
            distance: None,
            crop: None,
            new: false,
            confirmed,
            embedding: None,
        });
        Record::Result(r)
    }

    #[test]
    fn identities_start_when_confirmed_per_roi_and_end_when_gone() {
        let mut t = EventTracker::of(Subject::Identities, EventConfig::default());
        let mut out = Vec::new();
        let frames = [
            ("door", "id-000001", false),
            ("door", "id-000001", true),
            ("hall", "id-000002", true),
            ("door", "id-000001", true),
            ("door", "id-000001", true), // third confirmed frame at the door: start
            ("door", "id-000003", false),
            ("door", "id-000003", false),
            ("door", "id-000003", false), // third frame without it: end
        ];
        for (seq, (roi, id, confirmed)) in frames.iter().enumerate() {
            for e in t.observe(&sighting(seq as u64, roi, id, *confirmed)) {
                out.push(format!(
                    "{}:{}:{}@{}",
                    e.kind,
                    e.roi.unwrap_or_default(),
                    e.identity.unwrap_or_default(),
                    e.seq
                ));
            }
        }
        assert_eq!(out, ["start:door:id-000001@4", "end:door:id-000001@7"]);
        // Classification records mean nothing to it, and it means nothing to classes.
        assert!(t.observe(&record(9, Some((1, 0.9)))).is_empty());
        let mut classes = EventTracker::new(EventConfig::default());
        assert!((0..5)
            .flat_map(|seq| classes.observe(&sighting(seq, "door", "id-000001", true)))
            .next()
            .is_none());
    }
}
