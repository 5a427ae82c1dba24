//! Model packages: a folder with `model.toml`, the ONNX file, optional labels and a self-test.

#[cfg(feature = "ort")]
pub mod graph_outline;
mod manifest;
#[cfg(feature = "ort")]
pub mod qdq_pairs;
pub mod selftest;

pub use manifest::{
    Align, AttentionSource, ColorOrder, EmbeddingSpec, InputSpec, Layout, Manifest, OutputSpec,
    ReidSpec, ResizePolicy, RknnInput, RknnSpec, SelfTestSpec, SieSpec, Task, TokenSpec,
};

use std::path::{Path, PathBuf};

/// The manifest file name inside a package folder.
pub const MANIFEST_FILE: &str = "model.toml";

/// Why a model package cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model manifest {path}")]
    ReadManifest {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid model manifest {path}: {message}")]
    ParseManifest { path: PathBuf, message: String },
    #[error("model manifest {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "`{key}` names {name:?}, whose shape is {shape:?}: one vector per frame ([1, n]) is needed"
    )]
    OutputShape {
        key: &'static str,
        name: String,
        shape: Vec<usize>,
    },
    #[error("{path} is not a model package: expected a model folder with {MANIFEST_FILE}")]
    NotAPackage { path: PathBuf },
    #[error("labels file {path} has {lines} lines, but the model has {classes} classes (one label per line, in class order)")]
    LabelCount {
        path: PathBuf,
        lines: usize,
        classes: usize,
    },
    #[error("cannot read labels file {path}")]
    ReadLabels {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A parsed and checked model package; paths are resolved against its folder.
#[derive(Debug, Clone)]
pub struct ModelPackage {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub labels: Vec<String>,
}

impl ModelPackage {
    /// Opens a package folder, or a `model.toml` path directly.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let manifest_path = if path.is_dir() {
            path.join(MANIFEST_FILE)
        } else if path.extension().is_some_and(|e| e == "toml") {
            path.to_path_buf()
        } else if path.exists() {
            // An ONNX file (or anything else) where the package folder was expected.
            return Err(ModelError::NotAPackage {
                path: path.to_path_buf(),
            });
        } else {
            path.join(MANIFEST_FILE)
        };
        let text =
            std::fs::read_to_string(&manifest_path).map_err(|source| ModelError::ReadManifest {
                path: manifest_path.clone(),
                source,
            })?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| ModelError::ParseManifest {
            path: manifest_path.clone(),
            message: crate::config_parse::plain_words(&e.to_string()),
        })?;
        let dir = manifest_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        validate(&manifest).map_err(|message| ModelError::Invalid {
            path: manifest_path.clone(),
            message,
        })?;
        // tract would call it "a model proto without a graph"; say what it is.
        let onnx = dir.join(&manifest.onnx);
        if std::fs::metadata(&onnx).is_ok_and(|m| m.is_file() && m.len() == 0) {
            return Err(ModelError::Invalid {
                path: manifest_path,
                message: format!(
                    "its ONNX file {} is empty (0 bytes): a copy that was cut short?",
                    onnx.display()
                ),
            });
        }
        let labels = match &manifest.labels {
            Some(file) => {
                let path = dir.join(file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| ModelError::ReadLabels { path, source })?;
                text.lines().map(|l| l.trim_end().to_string()).collect()
            }
            None => Vec::new(),
        };
        Ok(ModelPackage {
            dir,
            manifest,
            labels,
        })
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Refuses a labels file whose line count is not the model's number of classes (a shifted
    /// file would give every class the wrong name).
    pub fn check_labels(&self, classes: usize) -> Result<(), ModelError> {
        match &self.manifest.labels {
            Some(file) if !self.labels.is_empty() && self.labels.len() != classes => {
                Err(ModelError::LabelCount {
                    path: self.dir.join(file),
                    lines: self.labels.len(),
                    classes,
                })
            }
            _ => Ok(()),
        }
    }

    pub fn onnx_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.onnx)
    }

    /// The path of a file named in the manifest.
    pub fn resolve(&self, relative: &Path) -> PathBuf {
        self.dir.join(relative)
    }
}

/// Parses and checks the text of a `model.toml` (what [`ModelPackage::open`] does before it
/// reads any other file).
pub fn parse_manifest(text: &str) -> Result<Manifest, String> {
    let manifest: Manifest =
        toml::from_str(text).map_err(|e| crate::config_parse::plain_words(&e.to_string()))?;
    validate(&manifest)?;
    Ok(manifest)
}

/// A detector names its boxes' output and says how to read it; the anchor format needs its
/// grid and its scores' output.
fn check_detect(manifest: &Manifest) -> Result<(), String> {
    let outputs = &manifest.outputs;
    let Some(spec) = &manifest.detect else {
        return Err(
            "task \"detect\" needs a [detect] table (format = \"boxes\", \"yolo\" or \"anchors\")"
                .into(),
        );
    };
    if outputs.detections.is_none() {
        return Err(
            "task \"detect\" needs outputs.detections (or outputs.boxes: the same key)".into(),
        );
    }
    if spec.format == crate::detect::DetectFormat::Anchors {
        spec.anchor_grid().map_err(|e| e.to_string())?;
        if outputs.scores.is_none() {
            return Err("detect.format = \"anchors\" needs outputs.scores".into());
        }
    }
    Ok(())
}

fn validate(manifest: &Manifest) -> Result<(), String> {
    let input = &manifest.input;
    let [n, c, h, w] = input.nchw();
    if n != 1 {
        return Err(format!("input.shape: batch must be 1, got {n}"));
    }
    if h == 0 || w == 0 {
        return Err(format!(
            "input.shape: height and width must be positive, got {h}x{w}"
        ));
    }
    if c != input.color.channels() {
        return Err(format!(
            "input.shape has {c} channels but input.color = \"{}\" has {}",
            input.color.name(),
            input.color.channels()
        ));
    }
    if !input.scale.is_finite() || input.scale == 0.0 {
        return Err(format!(
            "input.scale must be a non-zero number, got {}",
            input.scale
        ));
    }
    for (key, values) in [("mean", &input.mean), ("std", &input.std)] {
        if !(values.is_empty() || values.len() == 1 || values.len() == c) {
            let allowed = if c == 1 {
                "1 value".to_string()
            } else {
                format!("1 value or {c} (one per channel)")
            };
            return Err(format!(
                "input.{key} must have {allowed}, got {}",
                values.len()
            ));
        }
    }
    if input.std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
        return Err("input.std values must be non-zero numbers".into());
    }
    match manifest.task {
        Task::Classify if manifest.outputs.logits.is_none() => {
            return Err("task \"classify\" needs outputs.logits".into())
        }
        Task::Reid
            if manifest
                .outputs
                .embedding
                .as_ref()
                .is_none_or(Vec::is_empty) =>
        {
            return Err("task \"reid\" needs outputs.embedding".into())
        }
        Task::Detect => check_detect(manifest)?,
        _ => {}
    }
    let embeddings = manifest.outputs.embedding.as_ref().map_or(0, Vec::len);
    let weights = &manifest.embedding.weights;
    if !weights.is_empty() && weights.len() != embeddings {
        return Err(format!(
            "embedding.weights has {} values but outputs.embedding names {embeddings} tensors",
            weights.len()
        ));
    }
    if weights.iter().any(|w| !w.is_finite()) {
        return Err("embedding.weights must be numbers".into());
    }
    if let Some(sie) = &manifest.sie {
        if sie.cameras == 0 || sie.views == 0 {
            return Err("sie.cameras and sie.views must be at least 1".into());
        }
        if let Some(selftest) = &manifest.selftest {
            let inputs = sie.inputs();
            if let Some((name, value)) = selftest
                .side
                .iter()
                .find(|(name, _)| !inputs.contains(&name.as_str()))
            {
                return Err(format!(
                    "selftest.side names {name:?} = {value}, which is not one of the [sie] inputs ({inputs:?})"
                ));
            }
        }
    }
    if let Some(selftest) = &manifest.selftest {
        let tolerances =
            std::iter::once(selftest.tolerance).chain(selftest.backend_tolerance.values().copied());
        if tolerances.clone().any(|t| t.is_nan() || t < 0.0) {
            return Err(
                "selftest.tolerance and backend_tolerance must be non-negative numbers".into(),
            );
        }
        let known = manifest.outputs.graph_names();
        if let Some(unknown) = selftest
            .outputs
            .keys()
            .find(|k| !known.contains(&k.as_str()))
        {
            return Err(format!(
                "selftest.outputs names {unknown:?}, which is not one of the [outputs] ({known:?})"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "m"
task = "classify"
onnx = "m.onnx"
[input]
name = "input"
shape = [1, 1, 28, 28]
color = "gray"
mean = [0.5]
std = [0.5]
[outputs]
logits = "logits"
"#;

    fn parse(text: &str) -> Result<(), String> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
        validate(&manifest)
    }

    #[test]
    fn accepts_a_minimal_manifest_with_defaults() {
        let manifest: Manifest = toml::from_str(GOOD).unwrap();
        assert_eq!(manifest.input.scale, 255.0);
        assert_eq!(manifest.input.resize, ResizePolicy::Stretch);
        assert!(validate(&manifest).is_ok());
    }

    #[test]
    fn rejects_inconsistent_manifests() {
        let cases = [
            (
                GOOD.replace("[1, 1, 28, 28]", "[2, 1, 28, 28]"),
                "batch must be 1",
            ),
            (GOOD.replace("\"gray\"", "\"rgb\""), "channels"),
            (GOOD.replace("std = [0.5]", "std = [0.0]"), "non-zero"),
            (
                GOOD.replace("mean = [0.5]", "mean = [0.5, 0.5]"),
                "input.mean",
            ),
            (
                GOOD.replace("logits = \"logits\"", ""),
                "needs outputs.logits",
            ),
            (
                GOOD.replace("task = \"classify\"", "task = \"segment\""),
                "unknown variant",
            ),
            (format!("{GOOD}\nextra = 1"), "unknown field"),
            (
                format!("{GOOD}\n[selftest]\ninput = \"i.npy\"\noutputs = {{ probs = \"p.npy\" }}"),
                "not one of the [outputs]",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(&text).expect_err(expected);
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
    }
}
