//! An optional Prometheus endpoint (`[metrics] listen = "127.0.0.1:9464"`): frames and results
//! per camera, errors per stage, per-stage latency histograms, frames the camera or the
//! latest-frame policy dropped, camera state, the MQTT spool and broker connection, the backend
//! in use. Loopback by default: a board's metrics are for its own network's Prometheus.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use std::sync::Arc;

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address to serve `/metrics` on (default `127.0.0.1:9464`, Prometheus's port for edge
    /// exporters). `0.0.0.0:9464` exposes it to the network.
    #[serde(default = "default_listen")]
    pub listen: String,
}

fn default_listen() -> String {
    "127.0.0.1:9464".into()
}

type Labels = Vec<(String, String)>;

fn camera(name: &str) -> Labels {
    vec![("camera".into(), name.into())]
}

/// The metrics, updated by the loop and read by the endpoint.
pub struct Metrics {
    registry: Registry,
    frames: Family<Labels, Counter>,
    results: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    dropped: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    camera_online: Family<Labels, Gauge>,
    spool_pending: Gauge,
    spool_dropped: Gauge,
    spool_set_aside: Gauge,
    broker_connected: Gauge,
    fleet_ignored: Family<Labels, Counter>,
}

/// The stages of `stage_latency_seconds`, in the order of a record's latencies.
const LATENCY_STAGES: [&str; 3] = ["pre", "infer", "post"];
/// The stages an error record can name.
const ERROR_STAGES: [&str; 4] = ["source", "preprocess", "infer", "interpret"];

fn latency_histogram() -> Histogram {
    // 0.1 ms to about 3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

impl Metrics {
    /// The metrics of a pipeline running `model` on `backend`.
    pub fn new(model: &str, backend: &str) -> Self {
        let mut registry = Registry::with_prefix("edgevit");
        let metrics = Metrics {
            frames: Family::default(),
            results: Family::default(),
            errors: Family::default(),
            dropped: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            camera_online: Family::default(),
            spool_pending: Gauge::default(),
            spool_dropped: Gauge::default(),
            spool_set_aside: Gauge::default(),
            broker_connected: Gauge::default(),
            fleet_ignored: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "frames",
            "Frames processed, per camera",
            metrics.frames.clone(),
        );
        registry.register(
            "results",
            "Result records, per camera",
            metrics.results.clone(),
        );
        registry.register("errors", "Error records, per stage", metrics.errors.clone());
        registry.register(
            "frames_dropped",
            "Frames captured but not processed (driver drops, replaced by a newer frame), per camera",
            metrics.dropped.clone(),
        );
        registry.register(
            "stage_latency_seconds",
            "Time per frame in each stage (pre, infer, post)",
            metrics.latency.clone(),
        );
        registry.register(
            "camera_online",
            "1 while the camera streams, 0 while it is offline and reconnecting",
            metrics.camera_online.clone(),
        );
        registry.register(
            "spool_pending",
            "MQTT records waiting in the spool for the broker",
            metrics.spool_pending.clone(),
        );
        registry.register(
            "spool_dropped",
            "MQTT records dropped because the spool was full",
            metrics.spool_dropped.clone(),
        );
        registry.register(
            "spool_set_aside",
            "MQTT records set aside in the spool's dead-letters.jsonl: the broker can never take them",
            metrics.spool_set_aside.clone(),
        );
        registry.register(
            "broker_connected",
            "1 while the MQTT sink is connected to its broker",
            metrics.broker_connected.clone(),
        );
        registry.register(
            "fleet_messages_ignored",
            "Fleet gallery messages ignored, by reason (malformed, oversized, lane, topic, format, model)",
            metrics.fleet_ignored.clone(),
        );
        registry.register(
            "model",
            "The model and the backend running it",
            Info::new(vec![
                ("model".to_string(), model.to_string()),
                ("backend".to_string(), backend.to_string()),
            ]),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Creates every series the run will have, at 0, before the first frame: Prometheus's
    /// guidance, so that an alert on absence or a rate works from the first scrape.
    pub fn prime(&self, cameras: &[&str]) {
        for cam in cameras {
            let _ = self.frames.get_or_create(&camera(cam));
            let _ = self.results.get_or_create(&camera(cam));
            let _ = self.dropped.get_or_create(&camera(cam));
        }
        for stage in LATENCY_STAGES {
            let labels = vec![("stage".to_string(), stage.to_string())];
            let _ = self.latency.get_or_create(&labels);
        }
        for stage in ERROR_STAGES {
            let labels = vec![("stage".to_string(), stage.to_string())];
            let _ = self.errors.get_or_create(&labels);
        }
    }

    /// One record: a result with its stage latencies (milliseconds), or an error in `stage`.
    pub fn record(&self, cam: &str, latency_ms: Option<[f64; 3]>, error_stage: Option<&str>) {
        self.frames.get_or_create(&camera(cam)).inc();
        match (latency_ms, error_stage) {
            (Some(ms), _) => {
                self.results.get_or_create(&camera(cam)).inc();
                for (stage, ms) in LATENCY_STAGES.into_iter().zip(ms) {
                    let labels = vec![("stage".to_string(), stage.to_string())];
                    self.latency.get_or_create(&labels).observe(ms / 1e3);
                }
            }
            (None, Some(stage)) => {
                let labels = vec![("stage".to_string(), stage.to_string())];
                self.errors.get_or_create(&labels).inc();
            }
            (None, None) => {}
        }
    }

    pub fn dropped(&self, cam: &str, frames: u64) {
        self.dropped.get_or_create(&camera(cam)).inc_by(frames);
    }

    pub fn camera(&self, cam: &str, online: bool) {
        self.camera_online
            .get_or_create(&camera(cam))
            .set(i64::from(online));
    }

    /// What the sink says about its delivery (MQTT only).
    pub fn delivery(&self, state: &crate::sink::DeliveryState) {
        self.broker_connected.set(i64::from(state.connected));
        self.spool_pending.set(state.pending as i64);
        self.spool_dropped.set(state.dropped as i64);
        self.spool_set_aside.set(state.set_aside as i64);
        for (reason, total) in crate::sink::mqtt::fleet_refusals()
            .into_iter()
            .zip(state.fleet_ignored)
        {
            let counter = self
                .fleet_ignored
                .get_or_create(&vec![("reason".to_string(), reason.to_string())]);
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// The exposition (text format).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Serves `metrics` on `config.listen` from a thread of its own.
pub fn serve(config: &MetricsConfig, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let server = tiny_http::Server::http(&config.listen).map_err(|e| {
        std::io::Error::other(format!(
            "cannot listen on {} (metrics.listen): {e}",
            config.listen
        ))
    })?;
    log::info!("metrics on http://{}/metrics", config.listen);
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let response = if request.url() == "/metrics" {
                    let header = tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        &b"application/openmetrics-text; version=1.0.0; charset=utf-8"[..],
                    )
                    .expect("a valid header");
                    tiny_http::Response::from_string(metrics.render()).with_header(header)
                } else {
                    tiny_http::Response::from_string("see /metrics\n").with_status_code(404)
                };
                if let Err(e) = request.respond(response) {
                    log::debug!("metrics: {e}");
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_there_at_zero_before_the_first_frame() {
        let metrics = Metrics::new("vit-mnist", "tract");
        metrics.prime(&["door", "yard"]);
        let text = metrics.render();
        for line in [
            "edgevit_frames_total{camera=\"door\"} 0",
            "edgevit_results_total{camera=\"yard\"} 0",
            "edgevit_frames_dropped_total{camera=\"door\"} 0",
            "edgevit_errors_total{stage=\"preprocess\"} 0",
            "edgevit_errors_total{stage=\"source\"} 0",
            "edgevit_stage_latency_seconds_count{stage=\"infer\"} 0",
            "edgevit_spool_pending 0",
            "edgevit_spool_set_aside 0",
            "edgevit_broker_connected 0",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn the_exposition_carries_every_metric() {
        let metrics = Metrics::new("vit-mnist", "tract");
        metrics.record("door", Some([0.5, 2.0, 0.1]), None);
        metrics.record("door", None, Some("preprocess"));
        metrics.dropped("door", 3);
        metrics.camera("door", true);
        let mut state = crate::sink::DeliveryState {
            connected: true,
            pending: 7,
            dropped: 1,
            set_aside: 2,
            fleet_ignored: [0, 0, 4, 0, 0, 1],
        };
        metrics.delivery(&state);
        // Totals, not increments: the same state twice counts once; a later total adds the rest.
        metrics.delivery(&state);
        state.fleet_ignored[2] = 5;
        metrics.delivery(&state);
        let text = metrics.render();
        for line in [
            "edgevit_frames_total{camera=\"door\"} 2",
            "edgevit_results_total{camera=\"door\"} 1",
            "edgevit_errors_total{stage=\"preprocess\"} 1",
            "edgevit_frames_dropped_total{camera=\"door\"} 3",
            "edgevit_stage_latency_seconds_count{stage=\"infer\"} 1",
            "edgevit_camera_online{camera=\"door\"} 1",
            "edgevit_spool_pending 7",
            "edgevit_spool_set_aside 2",
            "edgevit_broker_connected 1",
            "edgevit_fleet_messages_ignored_total{reason=\"lane\"} 5",
            "edgevit_fleet_messages_ignored_total{reason=\"model\"} 1",
            "edgevit_fleet_messages_ignored_total{reason=\"malformed\"} 0",
            "edgevit_model_info{model=\"vit-mnist\",backend=\"tract\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
