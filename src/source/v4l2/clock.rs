//! Driver timestamps (`CLOCK_MONOTONIC`, immune to NTP steps) mapped to wall-clock time for
//! result records.

use std::time::{Duration, SystemTime};

fn monotonic_now() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
        return None;
    }
    Some(Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

/// The wall-clock time of a monotonic driver timestamp: now, minus how long ago it was taken.
/// Falls back to now for timestamps that are missing, not monotonic, or in the future.
pub fn wall_time(timestamp: libc::timeval, monotonic: bool) -> SystemTime {
    let now = SystemTime::now();
    if !monotonic || timestamp.tv_sec < 0 || (timestamp.tv_sec == 0 && timestamp.tv_usec == 0) {
        return now;
    }
    let taken = Duration::new(
        timestamp.tv_sec as u64,
        (timestamp.tv_usec.clamp(0, 999_999) as u32) * 1000,
    );
    match monotonic_now().and_then(|mono| mono.checked_sub(taken)) {
        Some(age) => now.checked_sub(age).unwrap_or(now),
        None => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls `wall_time` between two readings of the wall clock.
    fn bracketed(ts: libc::timeval, monotonic: bool) -> (SystemTime, SystemTime, SystemTime) {
        let before = SystemTime::now();
        let mapped = wall_time(ts, monotonic);
        (before, mapped, SystemTime::now())
    }

    #[test]
    fn a_timestamp_taken_half_a_second_ago_maps_to_half_a_second_ago() {
        let half = Duration::from_millis(500);
        // The timeval keeps microseconds: the mapped time may be up to 1 us earlier.
        let slack = Duration::from_micros(2);
        let before = SystemTime::now();
        let mono = monotonic_now().unwrap() - half;
        let ts = libc::timeval {
            tv_sec: mono.as_secs() as libc::time_t,
            tv_usec: mono.subsec_micros() as libc::suseconds_t,
        };
        let (_, mapped, after) = bracketed(ts, true);
        assert!(
            mapped >= before - half - slack,
            "{mapped:?} < {before:?} - 500 ms"
        );
        assert!(
            mapped <= after - half + slack,
            "{mapped:?} > {after:?} - 500 ms"
        );
    }

    #[test]
    fn missing_future_or_foreign_timestamps_read_as_now() {
        let zero = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // Far beyond the monotonic clock: a timestamp "in the future".
        let future = libc::timeval {
            tv_sec: i32::MAX as libc::time_t,
            tv_usec: 0,
        };
        for (ts, monotonic) in [(zero, true), (future, true), (future, false)] {
            let (before, mapped, after) = bracketed(ts, monotonic);
            assert!(
                before <= mapped && mapped <= after,
                "{:?}/{monotonic}: {mapped:?} is not now ({before:?}..{after:?})",
                ts.tv_sec
            );
        }
    }
}
