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

    #[test]
    fn a_timestamp_taken_half_a_second_ago_maps_to_half_a_second_ago() {
        let mono = monotonic_now().unwrap() - Duration::from_millis(500);
        let ts = libc::timeval {
            tv_sec: mono.as_secs() as libc::time_t,
            tv_usec: mono.subsec_micros() as libc::suseconds_t,
        };
        let age = SystemTime::now()
            .duration_since(wall_time(ts, true))
            .unwrap();
        assert!(
            age >= Duration::from_millis(499) && age < Duration::from_millis(600),
            "{age:?}"
        );
    }

    #[test]
    fn missing_or_foreign_timestamps_read_as_now() {
        let zero = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        let far = libc::timeval {
            tv_sec: i32::MAX as libc::time_t,
            tv_usec: 0,
        };
        for (ts, mono) in [(zero, true), (far, true), (far, false)] {
            let skew = SystemTime::now()
                .duration_since(wall_time(ts, mono))
                .unwrap_or_default();
            assert!(skew < Duration::from_millis(50));
        }
    }
}
