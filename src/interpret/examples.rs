//! Classes by example: a model's embedding (a ReID package, or a ViT's class token through
//! `[embedding] token`) and a few labelled images per class make a classifier without a
//! training run (`edgevit classes enroll`, then `[classify] classes`). A frame's class is the
//! one whose examples its embedding is closest to (cosine): their mean (`prototype`, the
//! default) or the nearest single example (`nearest`); below `unknown_below`, the answer is
//! `unknown`.
//!
//! The examples live in one JSON file, replaced whole at each change (written beside it, then
//! renamed): a crash leaves the old file or the new one, never a torn one.

use super::{ClassScore, Classification, Embedder, Interpret, InterpretError, Interpretation};
use crate::backend::Outputs;
use crate::model::ModelPackage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How a frame is compared with a class's examples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchBy {
    /// The mean of the class's examples (its prototype).
    #[default]
    Prototype,
    /// The class's nearest example (1-nearest neighbour).
    Nearest,
}

/// The examples file: `{"format": "edgevit-classes", "model": ..., "dim": ..., "classes":
/// {"name": [[...], ...]}}`, unit-length embeddings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassExamples {
    pub format: String,
    pub model: String,
    pub dim: usize,
    pub classes: BTreeMap<String, Vec<Vec<f32>>>,
}

const FORMAT: &str = "edgevit-classes";

impl ClassExamples {
    pub fn new(model: &str, dim: usize) -> Self {
        ClassExamples {
            format: FORMAT.into(),
            model: model.into(),
            dim,
            classes: BTreeMap::new(),
        }
    }

    /// Reads a file, refusing one that is not ours, is damaged, or holds embeddings of
    /// another size.
    pub fn load(path: &Path) -> Result<Self, InterpretError> {
        let bad =
            |why: String| InterpretError::Config(format!("classes file {}: {why}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let examples: ClassExamples = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "not a classes file edgevit wrote, or damaged ({e})"
            ))
        })?;
        if examples.format != FORMAT {
            return Err(bad(format!("its format is {:?}", examples.format)));
        }
        for (name, rows) in &examples.classes {
            if rows.is_empty() || rows.iter().any(|r| r.len() != examples.dim) {
                return Err(bad(format!(
                    "class {name:?} has no examples or ones not of {} numbers",
                    examples.dim
                )));
            }
        }
        Ok(examples)
    }

    /// Writes the file whole: beside it first, then renamed over it.
    pub fn save(&self, path: &Path) -> Result<(), InterpretError> {
        let failed = |e: std::io::Error| {
            InterpretError::Config(format!("cannot write {}: {e}", path.display()))
        };
        let mut part = path.as_os_str().to_owned();
        part.push(".part");
        let part = PathBuf::from(part);
        let text = serde_json::to_string(self)
            .map_err(|e| InterpretError::Config(format!("cannot encode the classes: {e}")))?;
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&part).map_err(failed)?;
            file.write_all(text.as_bytes()).map_err(failed)?;
            file.sync_all().map_err(failed)?;
        }
        std::fs::rename(&part, path).map_err(failed)
    }

    /// Refuses examples made by another model than `package`'s.
    pub fn check_model(&self, package: &ModelPackage, dim: Option<usize>) -> Result<(), String> {
        if self.model != package.name() || dim.is_some_and(|d| d != self.dim) {
            return Err(format!(
                "the classes were made with model {:?} ({}-number embeddings), the model in use is {:?}{}",
                self.model,
                self.dim,
                package.name(),
                dim.map(|d| format!(" ({d}-number embeddings)")).unwrap_or_default()
            ));
        }
        Ok(())
    }
}

/// Classifies a frame by its embedding's closeness to each class's examples.
pub struct ExampleClassifier {
    embedder: Embedder,
    names: Vec<String>,
    /// Per class: its prototype (one row) or all its examples.
    rows: Vec<Vec<Vec<f32>>>,
    unknown_below: f32,
    top_k: usize,
}

impl ExampleClassifier {
    pub fn new(
        package: &ModelPackage,
        examples: &ClassExamples,
        by: MatchBy,
        unknown_below: f32,
        top_k: usize,
    ) -> Result<Self, InterpretError> {
        let embedder = Embedder::new(package, &super::ReidConfig::default())?;
        examples
            .check_model(package, None)
            .map_err(InterpretError::Config)?;
        if examples.classes.is_empty() {
            return Err(InterpretError::Config(
                "the classes file holds no class yet: enrol some with `edgevit classes enroll`"
                    .into(),
            ));
        }
        let names = examples.classes.keys().cloned().collect();
        let rows = examples
            .classes
            .values()
            .map(|rows| match by {
                MatchBy::Nearest => rows.clone(),
                MatchBy::Prototype => vec![prototype(rows)],
            })
            .collect();
        Ok(ExampleClassifier {
            embedder,
            names,
            rows,
            unknown_below,
            top_k: top_k.max(1),
        })
    }

    /// The classes by closeness of `embedding` (unit length), best first, `unknown` first
    /// when the best is below `unknown_below`.
    pub fn classify(&self, embedding: &[f32]) -> Classification {
        let mut top: Vec<ClassScore> = self
            .rows
            .iter()
            .enumerate()
            .map(|(index, rows)| ClassScore {
                index,
                label: self.names[index].clone(),
                score: rows
                    .iter()
                    .map(|row| crate::gallery::index::dot(row, embedding))
                    .fold(f32::NEG_INFINITY, f32::max),
            })
            .collect();
        top.sort_by(|a, b| b.score.total_cmp(&a.score));
        top.truncate(self.top_k);
        if top
            .first()
            .is_none_or(|best| best.score < self.unknown_below)
        {
            let score = top.first().map_or(0.0, |b| b.score);
            top.insert(
                0,
                ClassScore {
                    index: self.names.len(),
                    label: "unknown".into(),
                    score,
                },
            );
            top.truncate(self.top_k);
        }
        Classification {
            top,
            ..Classification::default()
        }
    }
}

impl ExampleClassifier {
    /// The classes of the model's outputs for one image.
    pub fn classify_outputs(&self, outputs: &Outputs) -> Result<Classification, InterpretError> {
        let one = self.embedder.concatenate(outputs)?;
        let embedding = self.embedder.finish(&[one])?;
        Ok(self.classify(&embedding))
    }
}

impl Interpret for ExampleClassifier {
    fn interpret(&self, outputs: &Outputs) -> Result<Interpretation, InterpretError> {
        Ok(Interpretation::Classification(
            self.classify_outputs(outputs)?,
        ))
    }
}

/// The mean of unit vectors, made unit length again.
fn prototype(rows: &[Vec<f32>]) -> Vec<f32> {
    let mut mean = vec![0.0f32; rows.first().map_or(0, Vec::len)];
    for row in rows {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    crate::gallery::normalize(&mean).unwrap_or(mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_or_foreign_file_is_refused_and_a_saved_one_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("classes.json");
        let mut examples = ClassExamples::new("m", 2);
        examples
            .classes
            .insert("open".into(), vec![vec![1.0, 0.0], vec![0.8, 0.6]]);
        examples.save(&path).unwrap();
        assert_eq!(ClassExamples::load(&path).unwrap(), examples);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let torn = ClassExamples::load(&path).unwrap_err().to_string();
        assert!(torn.contains("damaged"), "{torn}");
        std::fs::write(
            &path,
            "{\"format\":\"other\",\"model\":\"m\",\"dim\":2,\"classes\":{}}",
        )
        .unwrap();
        assert!(ClassExamples::load(&path).is_err());
        std::fs::write(
            &path,
            "{\"format\":\"edgevit-classes\",\"model\":\"m\",\"dim\":2,\"classes\":{\"a\":[[1.0]]}}",
        )
        .unwrap();
        assert!(ClassExamples::load(&path)
            .unwrap_err()
            .to_string()
            .contains("2 numbers"));
    }

    #[test]
    fn prototypes_are_unit_means() {
        let p = prototype(&[vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert!((p[0] - p[1]).abs() < 1e-6 && (p[0] * p[0] + p[1] * p[1] - 1.0).abs() < 1e-5);
    }
}
