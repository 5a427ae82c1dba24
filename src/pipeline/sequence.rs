//! Per-camera record sequence numbers that keep increasing across restarts, so a consumer
//! can drop the duplicates that QoS 1 redelivery produces by `(camera, seq)`.
//!
//! A record's `seq` is the source's frame number plus a per-camera base. The base is the
//! value leased in the state file at start-up; the lease is moved forward in blocks, so the
//! file is written once per [`LEASE`] records (flash wear), and after a crash numbering
//! resumes past anything that can have been issued. A clean stop writes the exact next
//! value, so numbering continues without a gap.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Sequence numbers reserved per state-file write.
pub const LEASE: u64 = 1024;

#[derive(Debug, thiserror::Error)]
#[error("cannot persist the sequence number of camera {camera:?} in {path}")]
pub struct SequenceError {
    pub camera: String,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

#[derive(Debug)]
struct CameraSequence {
    /// Added to the source's frame number.
    base: u64,
    /// The next number to issue (all below it are used).
    next: u64,
    /// Numbers below this are reserved in the state file.
    leased: u64,
}

/// Issues record sequence numbers; persists them under `<state_dir>/seq/` when it has one.
#[derive(Debug, Default)]
pub struct Sequences {
    dir: Option<PathBuf>,
    cameras: HashMap<String, CameraSequence>,
}

/// A camera id as a file name: anything but `[A-Za-z0-9_.-]` is hex-escaped.
fn file_name(camera: &str) -> String {
    let mut name = String::new();
    for byte in camera.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => name.push(byte as char),
            b'.' if !name.is_empty() => name.push('.'),
            other => name.push_str(&format!("%{other:02x}")),
        }
    }
    format!("{name}.seq")
}

impl Sequences {
    /// Numbers start at 0 in every run.
    pub fn in_memory() -> Self {
        Sequences::default()
    }

    /// Numbers continue from what `state_dir` holds.
    pub fn persistent(state_dir: &Path) -> Self {
        Sequences {
            dir: Some(state_dir.join("seq")),
            cameras: HashMap::new(),
        }
    }

    fn path(&self, camera: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|dir| dir.join(file_name(camera)))
    }

    fn stored(&self, camera: &str) -> u64 {
        let Some(path) = self.path(camera) else {
            return 0;
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().unwrap_or_else(|_| {
                log::warn!(
                    "{} does not hold a sequence number; camera {camera:?} starts again at 0",
                    path.display()
                );
                0
            }),
            Err(_) => 0,
        }
    }

    fn write(&self, camera: &str, value: u64) -> Result<(), SequenceError> {
        let Some(path) = self.path(camera) else {
            return Ok(());
        };
        let error = |source| SequenceError {
            camera: camera.to_string(),
            path: path.clone(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(error)?;
        // Write aside and rename: a crash leaves the old value or the new one, never half.
        let temporary = path.with_extension("seq.tmp");
        let mut file = std::fs::File::create(&temporary).map_err(error)?;
        writeln!(file, "{value}").map_err(error)?;
        file.sync_all().map_err(error)?;
        std::fs::rename(&temporary, &path).map_err(error)
    }

    /// The record number for frame `frame_seq` of `camera`: never below one issued before,
    /// in this run or an earlier one.
    pub fn issue(&mut self, camera: &str, frame_seq: u64) -> Result<u64, SequenceError> {
        // The camera id is copied once, when the camera is first seen, not per record.
        if !self.cameras.contains_key(camera) {
            let start = self.stored(camera);
            self.cameras.insert(
                camera.to_string(),
                CameraSequence {
                    base: start,
                    next: start,
                    leased: start,
                },
            );
        }
        let state = self
            .cameras
            .get_mut(camera)
            .expect("the camera was inserted above");
        // A source that restarts its numbering (a replay loop) must not go backwards.
        let seq = state.base.saturating_add(frame_seq).max(state.next);
        state.base = seq - frame_seq;
        state.next = seq + 1;
        if state.next > state.leased {
            state.leased = state.next + LEASE;
            let leased = state.leased;
            self.write(camera, leased)?;
        }
        Ok(seq)
    }

    /// Records the exact next numbers, so a clean restart continues without a gap.
    pub fn close(&mut self) -> Result<(), SequenceError> {
        let exact: Vec<(String, u64)> = self
            .cameras
            .iter()
            .map(|(camera, state)| (camera.clone(), state.next))
            .collect();
        for (camera, next) in exact {
            self.write(&camera, next)?;
            if let Some(state) = self.cameras.get_mut(&camera) {
                state.leased = next;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_numbers_follow_the_frames() {
        let mut seqs = Sequences::in_memory();
        assert_eq!(seqs.issue("a", 0).unwrap(), 0);
        assert_eq!(seqs.issue("a", 3).unwrap(), 3);
        assert_eq!(seqs.issue("b", 0).unwrap(), 0);
    }

    #[test]
    fn numbering_never_goes_back_when_the_source_restarts_its_own() {
        let mut seqs = Sequences::in_memory();
        for frame in 0..5 {
            seqs.issue("a", frame).unwrap();
        }
        // A looping replay starts at frame 0 again.
        assert_eq!(seqs.issue("a", 0).unwrap(), 5);
        assert_eq!(seqs.issue("a", 1).unwrap(), 6);
    }

    #[test]
    fn a_clean_restart_continues_without_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = Sequences::persistent(dir.path());
        for frame in 0..10 {
            first.issue("door", frame).unwrap();
        }
        first.close().unwrap();
        let mut second = Sequences::persistent(dir.path());
        assert_eq!(second.issue("door", 0).unwrap(), 10);
        assert_eq!(second.issue("yard", 0).unwrap(), 0);
    }

    #[test]
    fn after_a_crash_numbering_resumes_past_everything_issued() {
        let dir = tempfile::tempdir().unwrap();
        let mut crashed = Sequences::persistent(dir.path());
        let mut last = 0;
        for frame in 0..(LEASE + 5) {
            last = crashed.issue("door", frame).unwrap();
        }
        drop(crashed); // no close(): as after SIGKILL
        let mut restarted = Sequences::persistent(dir.path());
        let first = restarted.issue("door", 0).unwrap();
        assert!(first > last, "{first} must be above {last}");
        assert!(first <= last + LEASE + 1, "the gap stays within one lease");
    }

    #[test]
    fn odd_camera_ids_are_safe_file_names() {
        assert_eq!(file_name("cam0"), "cam0.seq");
        assert_eq!(file_name("../x"), "%2e.%2fx.seq");
        assert_eq!(file_name("a b"), "a%20b.seq");
    }

    #[test]
    fn an_unwritable_state_dir_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let mut seqs = Sequences::persistent(&blocker);
        let error = seqs.issue("cam0", 0).unwrap_err();
        assert!(error.to_string().contains("cam0"), "{error}");
    }
}
