//! One model instance and the stages around it: a frame in, its records out. The loop runs
//! one or several of these (`[pipeline] workers`), each with its own backend.

use super::scene::{Models, SceneStage};
use super::{
    by_example, classifier_for, elapsed_ms, keep_read_outputs, Camera, FramePasses, LoadedModel,
    PipelineError, ReidStage, StageFailure, VitOptions, VitStage,
};
use crate::backend::InferenceBackend;
use crate::frame::Frame;
use crate::gallery::GalleryConfig;
use crate::interpret::{
    Classifier, ClassifyConfig, Interpret, InterpretError, Interpretation, ReidConfig,
};
use crate::model::{ModelPackage, Task};
use crate::preprocess::{Prepared, Preprocess, PreprocessError, Preprocessor, Raster};
use crate::sink::{ErrorDetail, ErrorRecord, FrameInfo, Latency, Record, ResultRecord};
use std::path::Path;
use std::time::Instant;

/// What turns the model's outputs into results.
pub(super) enum Stage {
    Classify {
        interpret: Box<dyn Interpret>,
        /// Zoom and parts, when asked for, with the classifier their passes use.
        vit: Option<Box<(VitStage, Classifier)>>,
    },
    Reid(Box<ReidStage>),
    /// A detector, and on each object the second model.
    Scene(Box<SceneStage>),
}

/// A loaded model with its preprocessing and interpretation.
pub(super) struct Worker {
    preprocess: Box<dyn Preprocess>,
    pub(super) backend: Box<dyn InferenceBackend>,
    pub(super) stage: Stage,
    /// The package, to rebuild the interpretation on a reload.
    pub(super) package: ModelPackage,
    model: String,
    task: Task,
}

impl Worker {
    /// A worker for a `classify` package.
    pub(super) fn classify_model(
        mut model: LoadedModel,
        classify: &ClassifyConfig,
        vit: &VitOptions,
    ) -> Result<Self, PipelineError> {
        let interpret = model.interpreter(classify, vit)?;
        let vit = match VitStage::new(&model.package, model.backend.as_ref(), vit)? {
            Some(stage) => Some(Box::new((stage, model.classifier(classify, vit)?))),
            None => None,
        };
        keep_read_outputs(&model.package, model.backend.as_mut(), vit.is_some())?;
        Ok(Self::assemble(model, Stage::Classify { interpret, vit }))
    }

    /// A worker for a `reid` package, matching in the gallery at `gallery_path`.
    pub(super) fn reid_model(
        model: LoadedModel,
        reid: &ReidConfig,
        gallery: &GalleryConfig,
        gallery_path: &Path,
    ) -> Result<Self, PipelineError> {
        let stage = ReidStage::new(
            &model.package,
            model.backend.as_ref(),
            reid,
            gallery,
            gallery_path,
        )?;
        Ok(Self::assemble(model, Stage::Reid(Box::new(stage))))
    }

    /// A worker for a scene: `model` is the detector, or the second model when `stage` has
    /// the detector's own.
    pub(super) fn scene_model(model: LoadedModel, stage: SceneStage) -> Self {
        Self::assemble(model, Stage::Scene(Box::new(stage)))
    }

    fn assemble(model: LoadedModel, stage: Stage) -> Self {
        Worker {
            preprocess: Box::new(Preprocessor::new(&model.package.manifest.input)),
            stage,
            package: model.package.clone(),
            model: model.package.name().to_string(),
            task: model.package.manifest.task,
            backend: model.backend,
        }
    }

    /// Rebuilds the interpretation (classification, attention, zoom, parts, token labels) with
    /// new settings; on an error the old ones stay.
    pub(super) fn reconfigure(
        &mut self,
        classify: &ClassifyConfig,
        vit: &VitOptions,
    ) -> Result<(), PipelineError> {
        if let Stage::Reid(_) | Stage::Scene(_) = self.stage {
            // [reid] and [gallery] are compared with the running ones before this (a
            // change needs a restart): nothing of a ReID run changes live.
            return Ok(());
        }
        if let Some(path) = &classify.classes {
            // Classes by example: a reload reads the examples enrolled since.
            let interpret = by_example(&self.package, self.backend.as_ref(), path, classify)?;
            self.stage = Stage::Classify {
                interpret: Box::new(interpret),
                vit: None,
            };
            return Ok(());
        }
        let classifier = classifier_for(&self.package, classify, vit)?;
        let stage = VitStage::new(&self.package, self.backend.as_ref(), vit)?;
        keep_read_outputs(&self.package, self.backend.as_mut(), stage.is_some())?;
        self.stage = Stage::Classify {
            interpret: Box::new(classifier.clone()),
            vit: stage.map(|s| Box::new((s, classifier))),
        };
        Ok(())
    }

    /// Whether a frame can be preprocessed apart from inference: no stage of this worker goes
    /// back to the frame's pixels (zoom, parts and ReID crops do).
    pub(super) fn preprocesses_apart(&self) -> bool {
        matches!(self.stage, Stage::Classify { vit: None, .. })
    }

    /// Runs one frame through the stages: one record, or one per crop for ReID.
    pub(super) fn process_frame(&mut self, frame: &Frame) -> Vec<Record> {
        match self.stage {
            Stage::Reid(_) => self.identify(frame),
            Stage::Scene(_) => vec![self.scene(frame)],
            Stage::Classify { .. } => vec![self.classify(frame)],
        }
    }

    /// Finds, tracks and looks at the objects of a frame (a detector first).
    fn scene(&mut self, frame: &Frame) -> Record {
        let info = FrameInfo::from_meta(&frame.meta);
        let start = Instant::now();
        let Stage::Scene(stage) = &mut self.stage else {
            let scene = Interpretation::Scene(Default::default());
            return Record::Result(self.result(info, scene, Latency::default()));
        };
        let size = (frame.meta.width, frame.meta.height);
        if let Some(scene) = stage.coast(&frame.meta.camera, size) {
            let latency = Latency {
                post: elapsed_ms(start),
                ..Latency::default()
            };
            return Record::Result(self.result(info, Interpretation::Scene(scene), latency));
        }
        let (raster, second) = match stage.decode(frame, self.preprocess.as_ref()) {
            Ok(decoded) => decoded,
            Err(e) => return self.error_record(info, "preprocess", &e),
        };
        let pre = elapsed_ms(start);
        let camera = Camera {
            id: &frame.meta.camera,
            index: frame.meta.camera_index,
        };
        let mut models = Models {
            preprocess: self.preprocess.as_mut(),
            backend: self.backend.as_mut(),
        };
        let found = stage.process(
            &raster,
            second.as_ref().unwrap_or(&raster),
            &camera,
            frame_time_ms(frame),
            &mut models,
        );
        match found {
            Ok(scene) => {
                let latency = Latency {
                    pre,
                    // Detection, the crops and the second model's looks, in turn.
                    infer: crate::numbers::round3(elapsed_ms(start) - pre),
                    post: 0.0,
                };
                Record::Result(self.result(info, Interpretation::Scene(scene), latency))
            }
            Err(failure) => {
                let (stage, error) = failure.parts();
                self.error_record(info, stage, error)
            }
        }
    }

    fn result(
        &self,
        frame: FrameInfo,
        result: Interpretation,
        latency_ms: Latency,
    ) -> ResultRecord {
        ResultRecord {
            frame,
            model: self.model.clone(),
            backend: self.backend.name(),
            task: self.task,
            result,
            latency_ms,
        }
    }

    /// Identifies each crop of a frame (a ReID model).
    fn identify(&mut self, frame: &Frame) -> Vec<Record> {
        let info = FrameInfo::from_meta(&frame.meta);
        let start = Instant::now();
        let raster = match self.preprocess.decode(frame) {
            Ok(r) => r,
            Err(e) => return vec![self.error_record(info, "preprocess", &e)],
        };
        let Stage::Reid(stage) = &mut self.stage else {
            return Vec::new();
        };
        let crops = stage.crops(&frame.meta.camera, raster.width, raster.height);
        let camera = Camera {
            id: &frame.meta.camera,
            index: frame.meta.camera_index,
        };
        let found = stage.identify(
            &raster,
            &crops,
            &camera,
            frame_time_ms(frame),
            self.preprocess.as_mut(),
            self.backend.as_mut(),
        );
        let each_ms = elapsed_ms(start) / found.len().max(1) as f64;
        found
            .into_iter()
            .map(|result| match result {
                Ok(identified) => Record::Result(ResultRecord {
                    frame: info.clone(),
                    model: self.model.clone(),
                    backend: self.backend.name(),
                    task: self.task,
                    result: Interpretation::Identification(identified),
                    // Crops go through preprocessing, inference and matching in turn: the
                    // frame's time is shared out among them, as inference.
                    latency_ms: Latency {
                        pre: 0.0,
                        infer: each_ms,
                        post: 0.0,
                    },
                }),
                Err(failure) => {
                    let (stage, error) = failure.parts();
                    self.error_record(info.clone(), stage, error)
                }
            })
            .collect()
    }

    /// Runs one frame through the stages of a classification model.
    fn classify(&mut self, frame: &Frame) -> Record {
        let info = FrameInfo::from_meta(&frame.meta);
        let start = Instant::now();
        // The native pixels are kept only for the stages that go back to them (zoom, parts).
        let prepared = if self.preprocesses_apart() {
            self.preprocess.prepare_frame(frame).map(|p| (p, None))
        } else {
            self.preprocess
                .decode(frame)
                .and_then(|raster| Ok((self.preprocess.prepare_raster(&raster)?, Some(raster))))
        };
        match prepared {
            Ok((prepared, native)) => {
                let record =
                    self.infer_and_interpret(info, elapsed_ms(start), &prepared, native.as_ref());
                self.preprocess.recycle(prepared);
                record
            }
            Err(e) => self.error_record(info, "preprocess", &e),
        }
    }

    /// A frame that the loop preprocessed apart, taking `pre_ms` (only when
    /// [`Worker::preprocesses_apart`]).
    pub(super) fn classify_prepared(
        &mut self,
        info: FrameInfo,
        prepared: &Result<Prepared, PreprocessError>,
        pre_ms: f64,
    ) -> Record {
        match prepared {
            Ok(prepared) => self.infer_and_interpret(info, pre_ms, prepared, None),
            Err(e) => self.error_record(info, "preprocess", e),
        }
    }

    /// Inference and interpretation of a prepared frame; `native` holds the frame's own
    /// pixels for the stages that go back to them.
    fn infer_and_interpret(
        &mut self,
        info: FrameInfo,
        pre_ms: f64,
        prepared: &Prepared,
        native: Option<&Raster>,
    ) -> Record {
        let preprocessed = Instant::now();
        let outputs = match self.backend.run(&prepared.tensor) {
            Ok(o) => o,
            Err(e) => return self.error_record(info, "infer", &e),
        };
        let inferred = Instant::now();
        let result = match (&self.stage, native) {
            (Stage::Reid(_) | Stage::Scene(_), _) => Err(InterpretError::Config(
                "a ReID model's or a scene's frames are not classified whole".into(),
            )),
            (
                Stage::Classify {
                    interpret,
                    vit: None,
                },
                _,
            ) => interpret.interpret(&outputs),
            (Stage::Classify { vit: Some(_), .. }, None) => Err(InterpretError::Config(
                "zoom and parts need the frame's own pixels, which were not kept".into(),
            )),
            (Stage::Classify { vit: Some(vit), .. }, Some(raster)) => {
                let (stage, classifier) = vit.as_ref();
                let extended = classifier
                    .probabilities(&outputs)
                    .map_err(StageFailure::from)
                    .and_then(|p| {
                        let frame = FramePasses {
                            raster,
                            prepared,
                            preprocess: self.preprocess.as_mut(),
                            backend: self.backend.as_mut(),
                            classifier,
                        };
                        stage.extend(&outputs, p, frame)
                    });
                match extended {
                    Ok(c) => Ok(Interpretation::Classification(c)),
                    Err(StageFailure::Interpret(e)) => Err(e),
                    Err(StageFailure::Preprocess(e)) => {
                        return self.error_record(info, "preprocess", &e)
                    }
                    Err(StageFailure::Infer(e)) => return self.error_record(info, "infer", &e),
                }
            }
        };
        let result = match result {
            Ok(r) => r,
            Err(e) => return self.error_record(info, "interpret", &e),
        };
        let done = Instant::now();
        let ms = |a: Instant, b: Instant| ((b - a).as_secs_f64() * 1e6).round() / 1e3;
        Record::Result(ResultRecord {
            frame: info,
            model: self.model.clone(),
            backend: self.backend.name(),
            task: self.task,
            result,
            latency_ms: Latency {
                pre: pre_ms,
                infer: ms(preprocessed, inferred),
                post: ms(inferred, done),
            },
        })
    }

    pub(super) fn error_record(
        &self,
        frame: FrameInfo,
        stage: &'static str,
        error: &(dyn std::error::Error + 'static),
    ) -> Record {
        Record::Error(ErrorRecord {
            frame,
            model: self.model.clone(),
            error: ErrorDetail {
                stage,
                message: crate::error::chain(error),
            },
        })
    }
}

/// A frame's capture time in milliseconds since 1970 (the gallery's clock).
fn frame_time_ms(frame: &Frame) -> i64 {
    frame
        .meta
        .captured_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
