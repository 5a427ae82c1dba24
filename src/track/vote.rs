//! What a track keeps between frames: the votes of the second model's looks at it (a label
//! or an identity), so that one odd crop does not rename it, and when to look next, on which
//! crop.

use crate::interpret::PixelBox;

/// How many of a track's latest looks vote: enough that one odd crop does not rename a
/// person, few enough that a real change (a door that opens) wins within a few looks.
pub const VOTES: usize = 5;

/// The votes of one track: its latest looks, each a value with a score.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vote {
    latest: std::collections::VecDeque<(String, f32)>,
}

impl Vote {
    /// Counts one look that gave `value` with `score` (a probability or a similarity); the
    /// oldest of more than [`VOTES`] looks leaves.
    pub fn add(&mut self, value: &str, score: f32) {
        if self.latest.len() == VOTES {
            self.latest.pop_front();
        }
        self.latest.push_back((value.to_string(), score));
    }

    /// The value most of the latest looks gave (ties: the higher summed score, then the latest
    /// given), and its share of them.
    pub fn leader(&self) -> Option<(&str, f32)> {
        let mut tally: Vec<(&str, u32, f32)> = Vec::new();
        for (value, score) in &self.latest {
            match tally.iter_mut().find(|t| t.0 == value) {
                Some(t) => {
                    t.1 += 1;
                    t.2 += score;
                }
                None => tally.push((value, 1, *score)),
            }
        }
        let total = self.latest.len().max(1) as f32;
        tally
            .into_iter()
            .reduce(|best, t| {
                if (t.1, t.2) >= (best.1, best.2) {
                    t
                } else {
                    best
                }
            })
            .map(|(value, count, _)| (value, count as f32 / total))
    }

    /// How many looks vote now.
    pub fn looks(&self) -> usize {
        self.latest.len()
    }
}

/// When a track's next look is due, and its best crop so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Looks {
    pub vote: Vote,
    /// Frames of this track seen so far.
    frames: u64,
    /// The frame (of this track) of the last look.
    last: Option<u64>,
    /// The best crop seen: its box and quality.
    pub best: Option<(PixelBox, f32)>,
}

impl Looks {
    /// Counts a frame in which the track was seen at `bounds` with `score` in a `frame`
    /// sized image, and says whether the second model should look at it now: due (never
    /// looked, or `every` frames since the last look), on a crop not cut by the frame's edge
    /// (after `every` frames a cut one does: a person standing close may never be whole).
    pub fn see(&mut self, bounds: PixelBox, score: f32, frame: (u32, u32), every: u32) -> bool {
        self.frames += 1;
        let cut = bounds.x0 == 0 || bounds.y0 == 0 || bounds.x1 >= frame.0 || bounds.y1 >= frame.1;
        let quality = if cut { 0.0 } else { 1.0 }
            + (bounds.width() as f32 * bounds.height() as f32).sqrt() * score;
        if self.best.is_none_or(|(_, q)| quality > q) {
            self.best = Some((bounds, quality));
        }
        let every = u64::from(every.max(1));
        let due = match self.last {
            None => !cut || self.frames >= every,
            Some(last) => self.frames - last >= every && (!cut || self.frames - last >= 2 * every),
        };
        if due {
            self.last = Some(self.frames);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real change wins once most of the latest looks say it.
    #[test]
    fn a_change_wins_within_the_window() {
        let mut vote = Vote::default();
        for _ in 0..20 {
            vote.add("closed", 0.9);
        }
        let mut leaders = Vec::new();
        for _ in 0..4 {
            vote.add("open", 0.9);
            leaders.push(vote.leader().unwrap().0.to_string());
        }
        assert_eq!(leaders, ["closed", "closed", "open", "open"]);
        assert_eq!(vote.looks(), VOTES);
    }

    #[test]
    fn one_odd_look_does_not_rename_a_track() {
        let mut vote = Vote::default();
        for value in ["id-1", "id-1", "id-7", "id-1"] {
            vote.add(value, 0.8);
        }
        assert_eq!(vote.leader(), Some(("id-1", 0.75)));
        let mut tie = Vote::default();
        tie.add("cat", 0.4);
        tie.add("dog", 0.9);
        assert_eq!(tie.leader().map(|l| l.0), Some("dog"));
        assert_eq!(Vote::default().leader(), None);
    }

    #[test]
    fn looks_come_every_n_frames_and_avoid_cut_crops() {
        let whole = PixelBox {
            x0: 10,
            y0: 10,
            x1: 50,
            y1: 110,
        };
        let cut = PixelBox {
            x0: 0,
            y0: 10,
            x1: 50,
            y1: 110,
        };
        let mut looks = Looks::default();
        let due: Vec<bool> = (0..25)
            .map(|_| looks.see(whole, 0.9, (640, 480), 10))
            .collect();
        let at: Vec<usize> = (0..25).filter(|&i| due[i]).collect();
        assert_eq!(at, [0, 10, 20]);
        let mut edge = Looks::default();
        let due: Vec<bool> = (0..12)
            .map(|_| edge.see(cut, 0.9, (640, 480), 10))
            .collect();
        assert_eq!(
            due.iter().position(|d| *d),
            Some(9),
            "a cut crop is looked at once it is all there is"
        );
        assert_eq!(edge.best.map(|b| b.0), Some(cut));
    }
}
