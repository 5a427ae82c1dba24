//! Spool entries that can never be published, set aside so that they do not block the ones
//! behind them.
//!
//! An entry whose topic the client or the broker will never take (a wildcard or a control
//! character, left by an earlier version or a configuration that was then corrected), whose
//! packet is over the size limit, or which cannot be read back, is appended to
//! `dead-letters.jsonl` in the spool's folder, one JSON object a line (`entry`, `topic`,
//! `reason`, `payload`), and acknowledged in the spool. Each topic is logged once; the count is
//! exported (`edgevit_mqtt_set_aside`) and makes the run end with exit code 3 (records not
//! delivered).

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "dead-letters.jsonl";

#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    count: u64,
    logged: HashSet<String>,
}

impl DeadLetters {
    /// Dead letters of the spool in `spool_dir`.
    pub fn new(spool_dir: &Path) -> Self {
        DeadLetters {
            path: spool_dir.join(FILE_NAME),
            count: 0,
            logged: HashSet::new(),
        }
    }

    /// Entries set aside by this run.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry to the file. The entry counts as set aside even if the file cannot be
    /// written (logged as an error): the spool must not stay blocked behind it.
    pub fn set_aside(&mut self, id: &str, topic: &str, payload: &[u8], reason: &str) {
        self.count += 1;
        if self.logged.insert(topic.to_string()) {
            log::error!(
                "mqtt: results for topic {topic:?} can never be published ({reason}); they are set aside in {}",
                self.path.display()
            );
        }
        // The payload as the JSON it is, or as text where it is not JSON.
        let payload = serde_json::from_slice::<serde_json::Value>(payload).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(payload).into_owned())
        });
        let line = serde_json::json!({
            "entry": id,
            "topic": topic,
            "reason": reason,
            "payload": payload,
        });
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| writeln!(file, "{line}"));
        if let Err(e) = written {
            log::error!(
                "mqtt: cannot write the entry set aside to {}: {e}",
                self.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_kept_as_json_lines_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut letters = DeadLetters::new(dir.path());
        letters.set_aside("1:0", "a/b+/result", br#"{"seq":3}"#, "a wildcard");
        letters.set_aside("1:20", "a/b+/result", b"not json", "a wildcard");
        assert_eq!(letters.count(), 2);
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["payload"]["seq"], 3);
        assert_eq!(lines[0]["topic"], "a/b+/result");
        assert_eq!(lines[1]["payload"], "not json");
        assert_eq!(lines[1]["entry"], "1:20");
    }
}
