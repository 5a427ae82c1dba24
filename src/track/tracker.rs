//! ByteTrack-style association: each frame, the tracks' predicted boxes are matched to the
//! detections by IoU, high-scoring detections first, then the low-scoring ones to the tracks
//! still unmatched (a person half hidden keeps their track). Matching is greedy, best overlap
//! first, within one class.

use super::config::TrackerConfig;
use super::kalman::Motion;
use crate::detect::nms::iou;

/// A detection as the tracker sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    pub bounds: [f32; 4],
    pub score: f32,
    pub class: usize,
}

/// What became of one detection in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    /// The detection's index in the frame's list.
    pub detection: usize,
    pub track: u64,
    /// The track has been seen `min_hits` times: report it.
    pub confirmed: bool,
}

/// What one frame did to the tracks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    pub assigned: Vec<Assigned>,
    /// Confirmed tracks that ended this frame (not seen for `max_age` frames).
    pub ended: Vec<u64>,
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    class: usize,
    motion: Motion,
    hits: u32,
    missed: u32,
    confirmed: bool,
}

/// The tracks of one camera.
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    tracks: Vec<Track>,
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            config,
            tracks: Vec::new(),
        }
    }

    /// How many tracks are alive (confirmed or not).
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// One frame's detections; `next_id` hands out new track ids (shared among cameras).
    pub fn step(&mut self, seen: &[Seen], next_id: &mut impl FnMut() -> u64) -> Step {
        for track in &mut self.tracks {
            track.motion.predict();
        }
        let high: Vec<usize> = (0..seen.len())
            .filter(|&i| seen[i].score >= self.config.high_score)
            .collect();
        let low: Vec<usize> = (0..seen.len())
            .filter(|&i| seen[i].score < self.config.high_score)
            .collect();
        let all_tracks: Vec<usize> = (0..self.tracks.len()).collect();
        let mut pairs = self.greedy(seen, &high, &all_tracks, self.config.match_iou);
        let matched: Vec<usize> = pairs.iter().map(|&(_, t)| t).collect();
        // Only tracks seen last frame take low detections: a lost track coming back on a
        // weak box is more likely a false match.
        let recent: Vec<usize> = all_tracks
            .into_iter()
            .filter(|t| !matched.contains(t) && self.tracks[*t].missed == 0)
            .collect();
        pairs.extend(self.greedy(seen, &low, &recent, self.config.low_match_iou));

        let mut step = Step::default();
        let mut updated = vec![false; self.tracks.len()];
        for &(d, t) in &pairs {
            let track = &mut self.tracks[t];
            track.motion.update(seen[d].bounds);
            track.hits += 1;
            track.missed = 0;
            track.confirmed |= track.hits >= self.config.min_hits;
            updated[t] = true;
            step.assigned.push(Assigned {
                detection: d,
                track: track.id,
                confirmed: track.confirmed,
            });
        }
        for (track, _) in self.tracks.iter_mut().zip(&updated).filter(|(_, u)| !**u) {
            track.missed += 1;
            // A track not yet confirmed that misses a frame was a flicker.
            if !track.confirmed {
                track.missed = u32::MAX;
            }
        }
        let max_age = self.config.max_age;
        self.tracks.retain(|t| {
            let alive = t.missed <= max_age;
            if !alive && t.confirmed {
                step.ended.push(t.id);
            }
            alive
        });
        let taken: Vec<usize> = pairs.iter().map(|&(d, _)| d).collect();
        for &d in high.iter().filter(|d| !taken.contains(d)) {
            let track = Track {
                id: next_id(),
                class: seen[d].class,
                motion: Motion::new(seen[d].bounds),
                hits: 1,
                missed: 0,
                confirmed: self.config.min_hits <= 1,
            };
            step.assigned.push(Assigned {
                detection: d,
                track: track.id,
                confirmed: track.confirmed,
            });
            self.tracks.push(track);
        }
        step.assigned.sort_by_key(|a| a.detection);
        step
    }

    /// Pairs (detection, track) by IoU of the detection with the track's predicted box, best
    /// overlap first, at least `min_iou`, same class.
    fn greedy(
        &self,
        seen: &[Seen],
        detections: &[usize],
        tracks: &[usize],
        min_iou: f32,
    ) -> Vec<(usize, usize)> {
        let mut scored = Vec::new();
        for &d in detections {
            for &t in tracks {
                let track = &self.tracks[t];
                if track.class != seen[d].class {
                    continue;
                }
                let overlap = iou(&seen[d].bounds, &track.motion.bounds());
                if overlap >= min_iou {
                    scored.push((overlap, d, t));
                }
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for (_, d, t) in scored {
            if !pairs.iter().any(|&(pd, pt)| pd == d || pt == t) {
                pairs.push((d, t));
            }
        }
        pairs
    }

    /// A frame the detector skipped: every track moves on by its motion model. The confirmed
    /// tracks seen at the last detection, with their predicted boxes.
    pub fn coast(&mut self) -> Vec<(u64, [f32; 4])> {
        for track in &mut self.tracks {
            track.motion.predict();
        }
        self.tracks
            .iter()
            .filter(|t| t.confirmed && t.missed == 0)
            .map(|t| (t.id, t.motion.bounds()))
            .collect()
    }

    /// Ends every confirmed track (the run is stopping): their ids.
    pub fn end_all(&mut self) -> Vec<u64> {
        self.tracks
            .drain(..)
            .filter(|t| t.confirmed)
            .map(|t| t.id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(x: f32, y: f32, score: f32) -> Seen {
        Seen {
            bounds: [x, y, x + 40.0, y + 100.0],
            score,
            class: 0,
        }
    }

    fn counter() -> impl FnMut() -> u64 {
        let mut n = 0;
        move || {
            n += 1;
            n
        }
    }

    fn ids(step: &Step) -> Vec<(u64, bool)> {
        step.assigned
            .iter()
            .map(|a| (a.track, a.confirmed))
            .collect()
    }

    /// Two people walk towards each other and cross: each keeps their track id, and tracks
    /// are reported from the third frame (min_hits).
    #[test]
    fn two_people_crossing_keep_their_tracks() {
        let mut tracker = Tracker::new(TrackerConfig::default());
        let mut next = counter();
        let mut last = Vec::new();
        for t in 0..40 {
            let a = person(100.0 + 8.0 * t as f32, 50.0, 0.9);
            let b = person(420.0 - 8.0 * t as f32, 60.0, 0.8);
            let step = tracker.step(&[a, b], &mut next);
            if t == 1 {
                assert_eq!(ids(&step), [(1, false), (2, false)]);
            }
            last = ids(&step);
        }
        assert_eq!(last, [(1, true), (2, true)]);
    }

    /// A low-scoring detection (partly hidden) keeps a track alive; a track unseen for
    /// max_age frames ends, and the person coming back gets a new track.
    #[test]
    fn weak_boxes_keep_tracks_and_long_absences_end_them() {
        let config = TrackerConfig {
            max_age: 5,
            ..TrackerConfig::default()
        };
        let mut tracker = Tracker::new(config);
        let mut next = counter();
        for _ in 0..3 {
            tracker.step(&[person(100.0, 50.0, 0.9)], &mut next);
        }
        let weak = tracker.step(&[person(101.0, 50.0, 0.2)], &mut next);
        assert_eq!(ids(&weak), [(1, true)]);
        let mut ended = Vec::new();
        for _ in 0..6 {
            ended.extend(tracker.step(&[], &mut next).ended);
        }
        assert_eq!(ended, [1]);
        assert!(tracker.is_empty());
        let back = tracker.step(&[person(100.0, 50.0, 0.9)], &mut next);
        assert_eq!(ids(&back), [(2, false)]);
    }

    /// Between detections a track coasts on its motion: a person walking 8 px a frame is
    /// predicted where they are, and is matched again at the next detection.
    #[test]
    fn tracks_coast_between_detections() {
        let mut tracker = Tracker::new(TrackerConfig::default());
        let mut next = counter();
        for t in 0..10 {
            tracker.step(&[person(100.0 + 8.0 * t as f32, 50.0, 0.9)], &mut next);
        }
        let predicted = tracker.coast();
        assert_eq!(predicted.len(), 1);
        assert!((predicted[0].1[0] - 180.0).abs() < 2.0, "{predicted:?}");
        tracker.coast();
        let back = tracker.step(&[person(196.0, 50.0, 0.9)], &mut next);
        assert_eq!(ids(&back), [(1, true)]);
    }

    /// A single false detection never becomes a reported track; a weak box alone starts none.
    #[test]
    fn flickers_are_not_tracks() {
        let mut tracker = Tracker::new(TrackerConfig::default());
        let mut next = counter();
        tracker.step(&[person(300.0, 300.0, 0.9)], &mut next);
        tracker.step(&[], &mut next);
        assert!(tracker.is_empty());
        let weak = tracker.step(&[person(10.0, 10.0, 0.3)], &mut next);
        assert!(weak.assigned.is_empty());
        assert_eq!(tracker.end_all(), Vec::<u64>::new());
    }
}
