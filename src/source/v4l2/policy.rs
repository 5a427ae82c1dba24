//! Which captured frames go on to the model. Whatever the policy, a slow model never builds a
//! queue: the hand-over to the pipeline holds one frame per camera and a newer frame replaces
//! an unconsumed older one (counted as dropped).

use serde::Deserialize;
use std::time::{Duration, Instant};

/// `policy`: `latest` (every frame is offered, the newest wins), `every-nth` (offer one frame
/// in `every_nth`), `max-fps` (offer at most `max_fps` frames a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    #[default]
    Latest,
    EveryNth,
    MaxFps,
}

/// Decides, frame by frame, whether a captured frame is offered to the pipeline.
#[derive(Debug)]
pub enum FramePolicy {
    Latest,
    EveryNth {
        n: u64,
        seen: u64,
    },
    MaxFps {
        period: Duration,
        next: Option<Instant>,
    },
}

impl FramePolicy {
    pub fn new(kind: PolicyKind, every_nth: u32, max_fps: f64) -> Result<Self, String> {
        match kind {
            PolicyKind::Latest => Ok(FramePolicy::Latest),
            PolicyKind::EveryNth if every_nth >= 1 => Ok(FramePolicy::EveryNth {
                n: every_nth.into(),
                seen: 0,
            }),
            PolicyKind::EveryNth => Err("every_nth must be at least 1".into()),
            PolicyKind::MaxFps if max_fps.is_finite() && max_fps > 0.0 => Ok(FramePolicy::MaxFps {
                period: Duration::from_secs_f64(1.0 / max_fps),
                next: None,
            }),
            PolicyKind::MaxFps => Err(format!("max_fps must be positive, got {max_fps}")),
        }
    }

    /// Whether the frame captured at `now` is offered.
    pub fn admit(&mut self, now: Instant) -> bool {
        match self {
            FramePolicy::Latest => true,
            FramePolicy::EveryNth { n, seen } => {
                let admit = *seen % *n == 0;
                *seen += 1;
                admit
            }
            FramePolicy::MaxFps { period, next } => {
                if next.is_some_and(|due| now < due) {
                    return false;
                }
                // Keep the cadence (30 fps in, 5 out gives every 6th frame), but after a pause
                // start again from now instead of owing frames.
                let base = match *next {
                    Some(due) if now < due + *period => due,
                    _ => now,
                };
                *next = Some(base + *period);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(policy: &mut FramePolicy, frames: u32, interval: Duration) -> Vec<u32> {
        let start = Instant::now();
        (0..frames)
            .filter(|&i| policy.admit(start + interval * i))
            .collect()
    }

    #[test]
    fn latest_offers_every_frame() {
        let mut policy = FramePolicy::new(PolicyKind::Latest, 1, 0.0).unwrap();
        assert_eq!(admitted(&mut policy, 5, Duration::from_millis(33)).len(), 5);
    }

    #[test]
    fn every_nth_offers_the_first_of_each_n() {
        let mut policy = FramePolicy::new(PolicyKind::EveryNth, 3, 0.0).unwrap();
        assert_eq!(
            admitted(&mut policy, 10, Duration::from_millis(33)),
            [0, 3, 6, 9]
        );
    }

    #[test]
    fn max_fps_keeps_the_cadence() {
        // 30 fps in, 5 fps out: one frame in six, evenly spaced.
        let mut policy = FramePolicy::new(PolicyKind::MaxFps, 1, 5.0).unwrap();
        let frames = admitted(&mut policy, 60, Duration::from_micros(33_334));
        assert_eq!(frames.len(), 10, "{frames:?}");
        assert!(frames.windows(2).all(|w| w[1] - w[0] == 6), "{frames:?}");
    }

    #[test]
    fn max_fps_does_not_burst_after_a_pause() {
        let mut policy = FramePolicy::new(PolicyKind::MaxFps, 1, 10.0).unwrap();
        let start = Instant::now();
        assert!(policy.admit(start));
        let later = start + Duration::from_secs(5);
        assert!(policy.admit(later));
        assert!(!policy.admit(later + Duration::from_millis(10)));
        assert!(policy.admit(later + Duration::from_millis(100)));
    }

    #[test]
    fn bad_parameters_are_rejected() {
        assert!(FramePolicy::new(PolicyKind::EveryNth, 0, 0.0).is_err());
        assert!(FramePolicy::new(PolicyKind::MaxFps, 1, 0.0).is_err());
        assert!(FramePolicy::new(PolicyKind::MaxFps, 1, f64::NAN).is_err());
    }
}
