//! The package self-test: run the stored input and compare with the stored reference outputs.

use super::ModelPackage;
use crate::backend::{BackendError, InferenceBackend};
use crate::tensor::{Tensor, TensorError};

/// How one output compared with its reference.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputCheck {
    pub output: String,
    /// Largest absolute difference from the reference (NaN when the backend produced NaN).
    pub max_abs_diff: f32,
}

/// The result of a self-test that ran to the end.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SelfTestReport {
    pub model: String,
    pub tolerance: f32,
    pub checks: Vec<OutputCheck>,
}

impl SelfTestReport {
    /// The output that differs most, with its difference.
    pub fn worst(&self) -> Option<&OutputCheck> {
        self.checks.iter().max_by(|a, b| {
            a.max_abs_diff
                .partial_cmp(&b.max_abs_diff)
                .unwrap_or(std::cmp::Ordering::Greater)
        })
    }

    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.max_abs_diff <= self.tolerance)
    }
}

/// Why the self-test could not be run, or why it refused the model.
#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
    #[error("self-test file")]
    File(#[from] TensorError),
    #[error("self-test run")]
    Backend(#[from] BackendError),
    #[error("self-test: the backend gave no output {0:?}")]
    MissingOutput(String),
    #[error("self-test: output {output:?} has shape {actual:?}, the reference has {expected:?}")]
    Shape {
        output: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error(
        "model {model:?} failed its self-test: output {output:?} differs from the reference by {max_abs_diff} (tolerance {tolerance}); the backend computes this model wrongly"
    )]
    Failed {
        model: String,
        output: String,
        max_abs_diff: f32,
        tolerance: f32,
    },
}

/// Runs the package's `[selftest]` on `backend`. Returns `Ok(None)` when the package has none.
/// Differences beyond the tolerance are reported in the report, not as an error: see [`enforce`].
pub fn run(
    package: &ModelPackage,
    backend: &mut dyn InferenceBackend,
) -> Result<Option<SelfTestReport>, SelfTestError> {
    let Some(spec) = &package.manifest.selftest else {
        return Ok(None);
    };
    let (input, side) = stored_input(package, spec)?;
    let outputs = backend.run_with(&input, &side)?;
    let mut checks = Vec::new();
    for (name, file) in &spec.outputs {
        let expected = Tensor::read_npy(&package.resolve(file))?;
        let actual = outputs
            .get(name)
            .ok_or_else(|| SelfTestError::MissingOutput(name.clone()))?;
        let max_abs_diff = actual
            .max_abs_diff(&expected)
            .ok_or_else(|| SelfTestError::Shape {
                output: name.clone(),
                expected: expected.shape().to_vec(),
                actual: actual.shape().to_vec(),
            })?;
        checks.push(OutputCheck {
            output: name.clone(),
            max_abs_diff,
        });
    }
    Ok(Some(SelfTestReport {
        model: package.name().to_string(),
        tolerance: spec.tolerance_for(backend.name()),
        checks,
    }))
}

/// The self-test's stored input, and the values of the side inputs (`[sie]`, 0 where
/// `[selftest] side` gives none), in the order `run_with` takes them.
pub fn stored_input(
    package: &ModelPackage,
    spec: &crate::model::SelfTestSpec,
) -> Result<(Tensor, Vec<i64>), SelfTestError> {
    let input = Tensor::read_npy(&package.resolve(&spec.input))?;
    let side = package
        .manifest
        .sie
        .as_ref()
        .map(|sie| {
            sie.inputs()
                .iter()
                .map(|name| spec.side.get(*name).copied().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    Ok((input, side))
}

/// Runs the self-test and turns a difference beyond the tolerance into an error.
pub fn enforce(
    package: &ModelPackage,
    backend: &mut dyn InferenceBackend,
) -> Result<Option<SelfTestReport>, SelfTestError> {
    let report = run(package, backend)?;
    if let Some(report) = &report {
        if !report.passed() {
            if let Some(worst) = report.worst() {
                return Err(SelfTestError::Failed {
                    model: report.model.clone(),
                    output: worst.output.clone(),
                    max_abs_diff: worst.max_abs_diff,
                    tolerance: report.tolerance,
                });
            }
        }
    }
    Ok(report)
}
