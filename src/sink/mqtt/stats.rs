//! The periodic `<prefix>/<device>/stats` message: throughput and latency since the last one,
//! and the spool's state.

use crate::sink::Record;
use serde_json::{json, Value};
use std::time::Instant;

/// What the capture side saw since the last report.
#[derive(Debug)]
pub struct StatsWindow {
    since: Instant,
    results: u64,
    errors: u64,
    latency_sum: [f64; 3],
    /// The backend that ran the model, from the last result.
    backend: Option<&'static str>,
}

impl Default for StatsWindow {
    fn default() -> Self {
        StatsWindow {
            since: Instant::now(),
            results: 0,
            errors: 0,
            latency_sum: [0.0; 3],
            backend: None,
        }
    }
}

impl StatsWindow {
    pub fn record(&mut self, record: &Record) {
        match record {
            Record::Result(r) => {
                self.results += 1;
                self.backend = Some(r.backend);
                let l = r.latency_ms;
                for (sum, v) in self.latency_sum.iter_mut().zip([l.pre, l.infer, l.post]) {
                    *sum += v;
                }
            }
            Record::Error(_) => self.errors += 1,
        }
    }

    /// The report for this window, which then starts again.
    pub fn report(&mut self, connected: bool, spool_pending: u64, spool_dropped: u64) -> Value {
        let seconds = self.since.elapsed().as_secs_f64().max(1e-3);
        let frames = self.results + self.errors;
        let mean = |i: usize| {
            if self.results == 0 {
                0.0
            } else {
                crate::numbers::round3(self.latency_sum[i] / self.results as f64)
            }
        };
        let report = json!({
            "connected": connected,
            "interval_s": (seconds * 10.0).round() / 10.0,
            "frames": frames,
            "results": self.results,
            "errors": self.errors,
            "fps": (frames as f64 / seconds * 100.0).round() / 100.0,
            "latency_ms": {"pre": mean(0), "infer": mean(1), "post": mean(2)},
            "spool": {"pending": spool_pending, "dropped": spool_dropped},
            "backend": self.backend,
        });
        // The backend stays known through windows without results.
        *self = StatsWindow {
            backend: self.backend,
            ..StatsWindow::default()
        };
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{FrameInfo, Latency, ResultRecord};

    fn result(backend: &'static str) -> Record {
        Record::Result(ResultRecord {
            frame: FrameInfo {
                run: "r".into(),
                seq: 1,
                source: "s".into(),
                camera: "c".into(),
                ts: "t".into(),
                input: None,
            },
            model: "m".into(),
            backend,
            task: crate::model::Task::Classify,
            result: crate::interpret::Interpretation::Classification(Default::default()),
            latency_ms: Latency {
                pre: 1.0,
                infer: 4.0,
                post: 0.5,
            },
        })
    }

    #[test]
    fn the_report_names_the_backend_that_ran_and_keeps_it_across_windows() {
        let mut window = StatsWindow::default();
        assert_eq!(window.report(true, 0, 0)["backend"], Value::Null);
        window.record(&result("rknn"));
        let report = window.report(true, 2, 0);
        assert_eq!(report["backend"], "rknn");
        assert_eq!(report["results"], 1);
        assert_eq!(report["latency_ms"]["infer"], 4.0);
        assert_eq!(report["spool"]["pending"], 2);
        let empty = window.report(false, 0, 0);
        assert_eq!(empty["backend"], "rknn");
        assert_eq!(empty["results"], 0);
    }
}
