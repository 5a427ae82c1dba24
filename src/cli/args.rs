//! Checks of flag values, so that a bad value is reported against the flag that carried it,
//! and the backend flags that several commands share.

use anyhow::Context;
use edgevit::backend::{BackendConfig, Precision, TractConfig};
use std::path::{Path, PathBuf};

/// `--backend`, `--threads`, `--library`, or `--backend-config`.
#[derive(clap::Args, Clone)]
pub struct BackendArgs {
    /// Inference backend: `tract` (CPU, built in), `tract-f16` (tract in half precision, for
    /// ARMv8.2 cores; f32 where the self-test refuses it), `ort` (ONNX Runtime, in builds with
    /// `--features ort`; CPU provider) or `rknn` (Rockchip NPU, in builds with `--features
    /// rknn`; the package's `.rknn` file).
    #[arg(long, default_value = "tract", value_parser = ["tract", "tract-f16", "ort", "rknn"])]
    backend: String,
    /// Threads: tract's matrix products, or ONNX Runtime's CPU provider.
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    threads: usize,
    /// `--backend ort`: the ONNX Runtime library (default: $ORT_DYLIB_PATH, else the system's
    /// libonnxruntime.so); `--backend rknn`: the RKNN runtime (default: librknnrt.so).
    #[arg(long, value_name = "PATH")]
    library: Option<PathBuf>,
    /// The `[backend]` table of this TOML file, as in a run configuration, for what the flags
    /// above do not set (ONNX Runtime's memory settings and int8 kernels, a fallback list);
    /// instead of `--backend`, `--threads` and `--library`.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["backend", "threads", "library"])]
    backend_config: Option<PathBuf>,
}

impl BackendArgs {
    /// `--threads`; `None` when the threads come from `--backend-config`.
    pub fn threads(&self) -> Option<usize> {
        self.backend_config.is_none().then_some(self.threads)
    }

    pub fn config(&self) -> anyhow::Result<BackendConfig> {
        if let Some(path) = &self.backend_config {
            return backend_section(path);
        }
        match self.backend.as_str() {
            #[cfg(feature = "ort")]
            "ort" => Ok(BackendConfig::Ort(edgevit::backend::OrtConfig {
                library: self.library.clone(),
                threads: self.threads,
                ..Default::default()
            })),
            #[cfg(not(feature = "ort"))]
            "ort" => anyhow::bail!(
                "--backend ort: this edgevit was built without ONNX Runtime (build with --features ort)"
            ),
            #[cfg(feature = "rknn")]
            "rknn" => Ok(BackendConfig::Rknn(edgevit::backend::RknnConfig {
                library: self.library.clone(),
                ..Default::default()
            })),
            #[cfg(not(feature = "rknn"))]
            "rknn" => anyhow::bail!(
                "--backend rknn: this edgevit was built without the Rockchip NPU runtime (build with --features rknn)"
            ),
            "tract-f16" => Ok(BackendConfig::Tract(TractConfig {
                threads: self.threads,
                precision: Precision::F16,
                ..Default::default()
            })),
            _ => Ok(BackendConfig::Tract(TractConfig {
                threads: self.threads,
                ..Default::default()
            })),
        }
    }
}

/// The `[backend]` table of a TOML file.
fn backend_section(path: &Path) -> anyhow::Result<BackendConfig> {
    let context = || format!("--backend-config {}", path.display());
    let text = std::fs::read_to_string(path).with_context(context)?;
    let mut file: toml::Table = toml::from_str(&text).with_context(context)?;
    match file.remove("backend") {
        Some(toml::Value::Table(table)) => BackendConfig::try_from(table)
            .map_err(anyhow::Error::msg)
            .with_context(context),
        _ => Err(anyhow::anyhow!("the file has no [backend] table")).with_context(context),
    }
}

/// A whole number of at least 1.
pub fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// A probability: a number from 0 to 1.
pub fn probability(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        Ok(_) => Err("must be between 0 and 1".into()),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_probabilities_are_checked() {
        assert_eq!(at_least_one("3"), Ok(3));
        assert!(at_least_one("0").is_err());
        assert!(at_least_one("-1").is_err());
        assert!(at_least_one("two").is_err());
        assert_eq!(probability("0.5"), Ok(0.5));
        assert!(probability("1.5").is_err());
        assert!(probability("NaN").is_err());
    }

    #[test]
    fn a_backend_config_file_is_read_for_its_backend_table() {
        let dir = std::env::temp_dir().join(format!("edgevit-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let args = |path: &Path| BackendArgs {
            backend: "tract".into(),
            threads: 1,
            library: None,
            backend_config: Some(path.to_path_buf()),
        };
        let good = dir.join("good.toml");
        std::fs::write(&good, "[backend]\nkind = \"tract\"\nthreads = 2\n").unwrap();
        match args(&good).config().unwrap() {
            BackendConfig::Tract(tract) => assert_eq!(tract.threads, 2),
            other => panic!("expected tract, got {}", other.kind()),
        }
        assert_eq!(args(&good).threads(), None);

        let missing = dir.join("no-backend.toml");
        std::fs::write(&missing, "[sink]\nkind = \"stdout\"\n").unwrap();
        let error = format!("{:#}", args(&missing).config().unwrap_err());
        assert!(error.contains("no [backend] table"), "{error}");

        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[backend]\nkind = \"tract\"\nthreads = \"two\"\n").unwrap();
        let error = format!("{:#}", args(&bad).config().unwrap_err());
        assert!(error.contains("backend.threads"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
