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

/// One message on `<prefix>/<device>/<camera>/event`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventMessage {
    /// `start`, `update` or `end` (`event_type` repeats it for Home Assistant's event entity).
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event_type: &'static str,
    /// `<camera>-<run>-<seq of the frame that started it>`: unique across restarts.
    pub id: String,
    pub camera: String,
    pub label: String,
    pub index: usize,
    /// Best score seen during the event.
    pub score: f32,
    /// The frame that caused this message.
    pub seq: u64,
    pub ts: String,
}

#[derive(Debug, Clone)]
struct Current {
    id: String,
    label: String,
    index: usize,
    best: f32,
    misses: u32,
}

#[derive(Debug, Default)]
struct CameraState {
    current: Option<Current>,
    /// The latest frame seen (`seq`, `ts`): an event ended by a stop ends there.
    last: Option<(u64, String)>,
    /// Label seen top-1 on the latest consecutive frames, and how many.
    candidate: Option<(usize, u32)>,
}

/// Per-camera event state.
#[derive(Debug, Default)]
pub struct EventTracker {
    config: EventConfig,
    cameras: HashMap<String, CameraState>,
}

impl EventTracker {
    pub fn new(config: EventConfig) -> Self {
        EventTracker {
            config: EventConfig {
                frames: config.frames.max(1),
                ..config
            },
            cameras: HashMap::new(),
        }
    }

    /// The events one record causes (error records count as frames without the label).
    pub fn observe(&mut self, record: &Record) -> Vec<EventMessage> {
        let frame = record.frame();
        let best = match record {
            Record::Result(ResultRecord {
                result: Interpretation::Classification(c),
                ..
            }) => c
                .top
                .first()
                .filter(|t| t.score >= self.config.min_score)
                .map(|t| (t.index, t.label.clone(), t.score)),
            // Identities have events of their own (`identity_events`).
            Record::Result(_) | Record::Error(_) => None,
        };
        let config = &self.config;
        let state = self.cameras.entry(frame.camera.clone()).or_default();
        let message = |kind: &'static str, c: &Current| EventMessage {
            kind,
            event_type: kind,
            id: c.id.clone(),
            camera: frame.camera.clone(),
            label: c.label.clone(),
            index: c.index,
            score: c.best,
            seq: frame.seq,
            ts: frame.ts.clone(),
        };
        let mut out = Vec::new();
        state.last = Some((frame.seq, frame.ts.clone()));
        state.candidate = match (&best, state.candidate) {
            (Some((index, _, _)), Some((seen, n))) if seen == *index => Some((seen, n + 1)),
            (Some((index, _, _)), _) => Some((*index, 1)),
            (None, _) => None,
        };
        if let Some(current) = &mut state.current {
            match &best {
                Some((index, _, score)) if *index == current.index => {
                    current.misses = 0;
                    if *score >= current.best + config.update_step {
                        current.best = *score;
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
            if let (Some((index, label, score)), Some((_, n))) = (best, state.candidate) {
                if n >= config.frames {
                    let current = Current {
                        id: format!("{}-{}-{}", frame.camera, frame.run, frame.seq),
                        label,
                        index,
                        best: score,
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
        let mut cameras: Vec<_> = self.cameras.iter_mut().collect();
        cameras.sort_by(|a, b| a.0.cmp(b.0));
        cameras
            .into_iter()
            .filter_map(|(camera, state)| {
                let current = state.current.take()?;
                let (seq, ts) = state.last.clone().unwrap_or_default();
                state.candidate = None;
                Some(EventMessage {
                    kind: "end",
                    event_type: "end",
                    id: current.id,
                    camera: camera.clone(),
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
}
