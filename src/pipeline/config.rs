//! The `edgevit run` configuration file: one TOML section per stage.

use crate::backend::BackendConfig;
use crate::config_parse as config;
use crate::gallery::GalleryConfig;
use crate::interpret::{
    AttentionConfig, ClassifyConfig, PartsConfig, ReidConfig, TokenLabelConfig, ZoomConfig,
};
use crate::sink::mqtt::NameKind;
use crate::sink::SinkConfig;
use crate::source::SourceConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[model]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The model package folder (holding `model.toml`).
    pub path: PathBuf,
}

/// `[pipeline]`: how the loop runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Model instances working on successive frames, each on its own thread with its own
    /// backend (and memory: one model each). More than one raises throughput where one
    /// instance cannot use the cores (tract runs best on one thread per instance); results
    /// stay in frame order. ReID models run with one.
    #[serde(default = "one_worker", deserialize_with = "at_least_one")]
    pub workers: usize,
    /// Once everything is loaded, hand the pages of code that only loading ran back to the
    /// kernel (`memory::release_cold_code`): a smaller resident set, for a read of the loop's
    /// own code from the disk during the first frames. False keeps every page mapped, for a
    /// board whose storage is too slow for that read.
    #[serde(default = "release_load_code")]
    pub release_load_code: bool,
}

fn release_load_code() -> bool {
    true
}

fn one_worker() -> usize {
    1
}

fn at_least_one<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(deserializer)?;
    if n == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(n)
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            workers: one_worker(),
            release_load_code: release_load_code(),
        }
    }
}

/// The whole configuration file. Relative paths are relative to the file's folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub source: SourceConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub backend: BackendConfig,
    /// Threads and model instances of the loop.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    #[serde(default)]
    pub classify: ClassifyConfig,
    /// How the attention map is made (for zoom and parts).
    #[serde(default)]
    pub attention: AttentionConfig,
    /// RAMS-Trans zoom: absent, no second pass.
    #[serde(default)]
    pub zoom: Option<ZoomConfig>,
    /// Part boxes: absent, none.
    #[serde(default)]
    pub parts: Option<PartsConfig>,
    /// LV-ViT token labeling (models with `outputs.patch_logits`).
    #[serde(default)]
    pub token_labels: TokenLabelConfig,
    /// Re-identification (models with `task = "reid"`): crops, flip, embedding outputs.
    #[serde(default)]
    pub reid: ReidConfig,
    /// The identity gallery of a ReID model.
    #[serde(default)]
    pub gallery: GalleryConfig,
    /// A detector that finds the objects `[model]` then looks at; absent, the model sees the
    /// whole frame (or the `[[reid.roi]]` regions).
    #[serde(default)]
    pub detector: Option<crate::pipeline::DetectorConfig>,
    /// Overrides of the detector package's `[detect]` settings.
    #[serde(default)]
    pub detect: crate::detect::DetectOverrides,
    /// Follows objects across frames; absent, each frame's objects stand alone.
    #[serde(default)]
    pub tracker: Option<crate::track::TrackerConfig>,
    /// Polygons per camera: only objects standing inside count.
    #[serde(default)]
    pub zones: Vec<crate::detect::ZoneConfig>,
    #[serde(default)]
    pub sink: SinkConfig,
    /// A Prometheus endpoint; absent, none.
    #[serde(default)]
    pub metrics: Option<crate::service::MetricsConfig>,
    /// The built-in web page; absent, none.
    #[serde(default)]
    pub web: Option<crate::web::WebConfig>,
    /// A trigger input and a status LED on GPIO lines; absent, none.
    #[serde(default)]
    pub gpio: Option<crate::gpio::GpioConfig>,
    /// Where edgevit keeps state across restarts (per-camera record sequence numbers). Unset:
    /// numbering starts at 0 in every run. The systemd unit uses `/var/lib/edgevit`.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl RunConfig {
    /// The ViT-aware options of `[attention]`, `[zoom]`, `[parts]` and `[token_labels]`.
    pub fn vit_options(&self) -> crate::pipeline::VitOptions {
        crate::pipeline::VitOptions {
            attention: self.attention.clone(),
            zoom: self.zoom.clone(),
            parts: self.parts.clone(),
            token_labels: self.token_labels.clone(),
        }
    }

    /// A reload (SIGHUP) may change the interpretation sections only. `Err` names the first
    /// other section that differs from the configuration the run started with: that one
    /// needs a restart.
    pub fn check_restart_sections(&self, started: &RunConfig) -> Result<(), String> {
        // Compared through their Debug form: every section is plain data, and this keeps
        // the comparison complete as sections gain fields.
        let fixed = |c: &RunConfig| {
            [
                ("source", format!("{:?}", c.source)),
                ("model", format!("{:?}", c.model)),
                ("backend", format!("{:?}", c.backend)),
                ("pipeline", format!("{:?}", c.pipeline)),
                ("sink", format!("{:?}", c.sink)),
                ("state_dir", format!("{:?}", c.state_dir)),
                ("metrics", format!("{:?}", c.metrics)),
                ("web", format!("{:?}", c.web)),
                ("gpio", format!("{:?}", c.gpio)),
                ("reid", format!("{:?}", c.reid)),
                ("gallery", format!("{:?}", c.gallery)),
                ("detector", format!("{:?}", c.detector)),
                ("detect", format!("{:?}", c.detect)),
                ("tracker", format!("{:?}", c.tracker)),
                ("zones", format!("{:?}", c.zones)),
            ]
        };
        for ((key, new), (_, old)) in fixed(self).iter().zip(fixed(started).iter()) {
            if new != old {
                return Err(format!(
                    "`{key}` cannot change while running: restart edgevit to apply it"
                ));
            }
        }
        Ok(())
    }

    /// The configuration of a run of the detector at `model` alone on images (`edgevit infer`).
    pub fn for_detector(model: &Path, detect: crate::detect::DetectOverrides) -> Self {
        let text = format!(
            "[source]\nkind = \"image-dir\"\npath = \".\"\n[model]\npath = {:?}\n",
            model.display().to_string()
        );
        let mut config: RunConfig = toml::from_str(&text)
            .unwrap_or_else(|e| unreachable!("the built-in configuration parses: {e}"));
        config.detect = detect;
        config
    }

    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses configuration text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        let deserializer = toml::Deserializer::new(text);
        let mut config: RunConfig =
            serde_path_to_error::deserialize(deserializer).map_err(|e| explain(text, e))?;
        config.source.resolve_paths(base);
        config.sink.resolve_paths(base);
        config.model.path = base.join(&config.model.path);
        config.state_dir = config.state_dir.map(|dir| base.join(dir));
        config.gallery.path = config.gallery.path.map(|path| base.join(path));
        config.classify.classes = config.classify.classes.map(|path| base.join(path));
        if let Some(web) = &mut config.web {
            web.resolve_paths(base);
        }
        if let Some(detector) = &mut config.detector {
            detector.path = base.join(&detector.path);
            detector.within = detector.within.as_ref().map(|w| base.join(w));
        }
        config.check_names(text)?;
        Ok(config)
    }

    /// Camera ids, and the MQTT sink's prefix and device, become topic levels (and camera ids
    /// file names and CSV fields): a name that would break a topic is refused here, pointing
    /// at its key, rather than when the broker drops the connection for it.
    fn check_names(&self, text: &str) -> Result<(), String> {
        let mut names: Vec<(String, &str, NameKind)> = self
            .source
            .camera_ids()
            .into_iter()
            .map(|(key, id)| (key, id, NameKind::Level))
            .collect();
        if let SinkConfig::Mqtt(mqtt) = &self.sink {
            names.extend(
                mqtt.topic_names()
                    .into_iter()
                    .map(|(key, name, kind)| (key.to_string(), name, kind)),
            );
        }
        for (key, name, kind) in names {
            if let Err(e) = kind.check(name) {
                let message = format!("`{key}`: {e}");
                return Err(match config::locate(text, &key, None) {
                    Some(span) => config::point_at(text, span, &message),
                    None => message,
                });
            }
        }
        Ok(())
    }
}

/// A parse error as toml renders it, but pointing at the bad key itself: sections with a `kind`
/// are parsed by hand, and toml alone would point at their header (see `crate::config_parse`).
fn explain(text: &str, error: serde_path_to_error::Error<toml::de::Error>) -> String {
    let outer = error.path().to_string();
    let inner = error.into_inner();
    // toml's value deserializer appends "in `key`" lines of its own: the key is named below.
    let message: Vec<&str> = inner
        .message()
        .lines()
        .filter(|line| !line.starts_with("in `") && !line.trim().is_empty())
        .collect();
    let message = config::plain_words(&message.join("\n"));
    // Errors from inside a section name their key first: "`source.fps`: invalid type ...".
    let (key, detail) = match message.strip_prefix('`').and_then(|m| m.split_once("`: ")) {
        Some((key, detail)) => (key.to_string(), detail.to_string()),
        None => (outer.clone(), message.clone()),
    };
    let unknown = detail
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field);
    // serde names an unknown key in the path as well: look it up in its table.
    let table = match unknown {
        Some(field) => key
            .strip_suffix(field)
            .map_or(key.as_str(), |t| t.trim_end_matches('.')),
        None => key.as_str(),
    };
    let located = (key != ".")
        .then(|| config::locate(text, table, unknown))
        .flatten();
    let message = if key == "." {
        detail
    } else {
        format!("`{key}`: {detail}")
    };
    match located.or(inner.span()) {
        Some(span) => config::point_at(text, span, &message),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[source]
kind = "image-dir"
path = "images"
[model]
path = "../models/m"
"#;

    #[test]
    fn minimal_config_gets_defaults_and_resolved_paths() {
        let config = RunConfig::parse(MINIMAL, Path::new("/etc/edgevit")).unwrap();
        match &config.source {
            SourceConfig::ImageDir(dir) => {
                assert_eq!(dir.path, Path::new("/etc/edgevit/images"));
                assert_eq!(dir.camera, "cam0");
            }
            other => panic!("unexpected source {other:?}"),
        }
        assert_eq!(config.model.path, Path::new("/etc/edgevit/../models/m"));
        assert_eq!(config.classify.top_k, 5);
        assert!(matches!(config.sink, SinkConfig::Stdout(_)));
        assert!(matches!(config.backend, BackendConfig::Tract(ref t) if t.threads == 1));
        assert_eq!(config.pipeline.workers, 1);
        assert!(config.pipeline.release_load_code);
        let kept = format!("{MINIMAL}\n[pipeline]\nrelease_load_code = false\n");
        let kept = RunConfig::parse(&kept, Path::new(".")).unwrap();
        assert!(!kept.pipeline.release_load_code);
    }

    #[test]
    fn errors_name_the_key_and_what_is_expected() {
        let cases = [
            (
                format!("{MINIMAL}\n[backend]\nkind = \"tract\"\nthread = 2\n"),
                "unknown field `thread`",
            ),
            (
                format!("{MINIMAL}\n[backend]\nkind = \"tract\"\nthreads = \"two\"\n"),
                "backend.threads",
            ),
            (
                MINIMAL.replace("image-dir", "webcam"),
                "unknown variant `webcam`",
            ),
            (
                MINIMAL.replace("path = \"images\"", ""),
                "missing field `path`",
            ),
            (
                format!("{MINIMAL}\n[classify]\ntop_k = -1\n"),
                "classify.top_k",
            ),
            ("[source\n".to_string(), "line 1"),
        ];
        for (text, expected) in cases {
            let err = RunConfig::parse(&text, Path::new(".")).expect_err(expected);
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
    }
}
