//! Checks of flag values, so that a bad value is reported against the flag that carried it,
//! and the backend flags that several commands share.

use edgevit::backend::{BackendConfig, Precision, TractConfig};
use std::path::PathBuf;

/// `--backend`, `--threads`, `--library`.
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
}

impl BackendArgs {
    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn config(&self) -> anyhow::Result<BackendConfig> {
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
            })),
            _ => Ok(BackendConfig::Tract(TractConfig {
                threads: self.threads,
                ..Default::default()
            })),
        }
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
}
