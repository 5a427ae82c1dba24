//! The ViT-aware part of a frame's journey: from the first pass's attention, the parts, and
//! the zoom (RAMS-Trans): crop the attended region from the native-resolution frame, run the
//! same model on the crop, fuse the passes.

use super::PipelineError;
use crate::backend::BackendError;
use crate::backend::{InferenceBackend, Outputs};
use crate::interpret::rollout::{self, AttentionConfig, AttentionMap};
use crate::interpret::zoom::{self, CropFrom, Fuse, PixelBox, ZoomConfig};
use crate::interpret::{
    parts, Classification, Classifier, InterpretError, PartsConfig, Pass, TokenLabelConfig,
    TokenLayout, ZoomRegion,
};
use crate::model::ModelPackage;
use crate::preprocess::{Prepared, Preprocess, PreprocessError, Raster};

/// What to do with a ViT's attention; the run configuration's `[attention]`, `[zoom]`,
/// `[parts]` and `[token_labels]`, or `edgevit infer --zoom --parts K`.
#[derive(Debug, Clone, Default)]
pub struct VitOptions {
    pub attention: AttentionConfig,
    pub zoom: Option<ZoomConfig>,
    pub parts: Option<PartsConfig>,
    pub token_labels: TokenLabelConfig,
}

impl VitOptions {
    /// Whether a stage reads the attention: zoom or parts is on.
    pub fn reads_attention(&self) -> bool {
        self.zoom.is_some() || self.parts.is_some()
    }
}

/// A frame and the stages that further passes over it go through.
pub struct FramePasses<'a> {
    /// The decoded frame at its native resolution.
    pub raster: &'a Raster,
    /// The first pass's input (placement, model-input pixels).
    pub prepared: &'a Prepared,
    pub preprocess: &'a mut dyn Preprocess,
    pub backend: &'a mut dyn InferenceBackend,
    pub classifier: &'a Classifier,
}

/// Why a frame's zoom or parts failed, and in which stage.
#[derive(Debug)]
pub enum StageFailure {
    Preprocess(PreprocessError),
    Infer(BackendError),
    Interpret(InterpretError),
}

impl StageFailure {
    /// The stage's name in error records, and the error.
    pub fn parts(&self) -> (&'static str, &(dyn std::error::Error + 'static)) {
        match self {
            StageFailure::Preprocess(e) => ("preprocess", e),
            StageFailure::Infer(e) => ("infer", e),
            StageFailure::Interpret(e) => ("interpret", e),
        }
    }
}

impl From<InterpretError> for StageFailure {
    fn from(e: InterpretError) -> Self {
        StageFailure::Interpret(e)
    }
}

/// The attention-driven stages, set up for one model.
pub struct VitStage {
    layout: TokenLayout,
    attention: Vec<String>,
    rollout: Option<String>,
    selected: Option<String>,
    options: VitOptions,
    /// The model input's width over its height: the shape of a square zoom crop.
    aspect: f64,
}

impl VitStage {
    /// `None` when neither zoom nor parts is asked for. A model without attention is refused.
    pub fn new(
        package: &ModelPackage,
        backend: &dyn InferenceBackend,
        options: &VitOptions,
    ) -> Result<Option<Self>, PipelineError> {
        if !options.reads_attention() {
            return Ok(None);
        }
        if let Some(zoom) = &options.zoom {
            zoom.check().map_err(InterpretError::Config)?;
            if zoom.crop_from == CropFrom::Input && zoom.depth > 1 {
                return Err(InterpretError::Config(
                    "zoom.crop_from = \"input\" (the paper's upscaling, for comparison) works with depth 1 only".into(),
                )
                .into());
            }
        }
        let outputs = &package.manifest.outputs;
        let attention: Vec<String> = backend.attention().iter().map(|a| a.name.clone()).collect();
        let tokens = match (backend.attention().first(), &outputs.rollout) {
            (Some(first), _) => first.tokens,
            (None, Some(name)) => {
                let patches = backend
                    .output_shape(name)
                    .and_then(|s| s.last().copied())
                    .unwrap_or(0);
                patches + 1 + package.manifest.tokens.registers.unwrap_or(0)
            }
            (None, None) => {
                return Err(PipelineError::NoAttention {
                    model: package.name().to_string(),
                    backend: backend.name().to_string(),
                })
            }
        };
        let input = &package.manifest.input;
        let layout = TokenLayout::detect(
            tokens,
            input.width(),
            input.height(),
            &package.manifest.tokens,
        )
        .map_err(InterpretError::Config)?;
        Ok(Some(VitStage {
            layout,
            attention,
            rollout: outputs.rollout.clone(),
            selected: outputs.parts.clone(),
            options: options.clone(),
            aspect: input.width() as f64 / input.height().max(1) as f64,
        }))
    }

    pub fn layout(&self) -> &TokenLayout {
        &self.layout
    }

    /// The class-token attention map of one pass.
    pub fn map(&self, outputs: &Outputs) -> Result<AttentionMap, InterpretError> {
        rollout::class_token_map(
            outputs,
            &self.attention,
            self.rollout.as_deref(),
            &self.layout,
            &self.options.attention,
        )
    }

    /// Adds parts and the zoom to the first pass's result over `frame.raster`.
    pub fn extend(
        &self,
        first: &Outputs,
        probabilities: Vec<f32>,
        frame: FramePasses,
    ) -> Result<Classification, StageFailure> {
        let (raster, prepared) = (frame.raster, frame.prepared);
        let size = (raster.width, raster.height);
        let map = self.map(first)?;
        let found_parts = self.options.parts.as_ref().map(|config| {
            match self.selected.as_ref().and_then(|name| first.get(name)) {
                Some(selected) => parts::from_selected_tokens(
                    selected.data(),
                    Some(&map),
                    &self.layout,
                    &prepared.placement,
                    size,
                    config.count,
                ),
                None => {
                    parts::from_map(&map, &self.layout, &prepared.placement, size, config.count)
                }
            }
        });
        let top1 = probabilities.iter().copied().fold(0.0f32, f32::max);
        let mut result = match &self.options.zoom {
            Some(config) if config.wanted(top1) => self.zoom(config, map, probabilities, frame)?,
            _ => frame.classifier.top(&probabilities),
        };
        result.parts = found_parts;
        Ok(result)
    }

    /// RAMS-Trans's second pass (and more, with `depth`).
    fn zoom(
        &self,
        config: &ZoomConfig,
        mut map: AttentionMap,
        probabilities: Vec<f32>,
        frame: FramePasses,
    ) -> Result<Classification, StageFailure> {
        let FramePasses {
            raster,
            prepared,
            preprocess,
            backend,
            classifier,
        } = frame;
        let mut passes = vec![Pass {
            scale: "full",
            top: classifier.top(&probabilities).top,
        }];
        let mut all = vec![probabilities];
        let mut placement = prepared.placement;
        let mut view = (raster.width, raster.height);
        // Where the view's top-left pixel lies in the frame (negative where a crop is padded).
        let mut origin = (0i64, 0i64);
        let mut region = None;
        for depth in 0..config.depth {
            let (local, score) = zoom::region(&map, &self.layout, &placement, view, config);
            let local_crop = zoom::crop(local, view, self.aspect, config);
            let bounds = in_frame(local, origin, raster);
            let crop = zoom::Crop {
                inside: in_frame(local_crop.inside, origin, raster),
                pad: local_crop.pad,
            };
            region = Some(ZoomRegion {
                bounds,
                score,
                crop,
            });
            let pixels = match config.crop_from {
                CropFrom::Frame => {
                    let b = crop.inside;
                    raster.crop(b.x0, b.y0, b.x1, b.y1).padded(crop.pad)
                }
                CropFrom::Input => {
                    let input = &prepared.input;
                    let r = placement.to_target(crate::preprocess::Region {
                        x: local_crop.inside.x0 as f64,
                        y: local_crop.inside.y0 as f64,
                        width: local_crop.inside.width() as f64,
                        height: local_crop.inside.height() as f64,
                    });
                    let b = PixelBox::covering(r, input.width, input.height);
                    input.crop(b.x0, b.y0, b.x1, b.y1).padded(crop.pad)
                }
            };
            let next = preprocess
                .prepare_raster(&pixels)
                .map_err(StageFailure::Preprocess)?;
            let outputs = backend.run(&next.tensor).map_err(StageFailure::Infer)?;
            let p = classifier.probabilities(&outputs)?;
            passes.push(Pass {
                scale: "zoom",
                top: classifier.top(&p).top,
            });
            all.push(p);
            if depth + 1 < config.depth {
                map = self.map(&outputs)?;
                placement = next.placement;
                view = (pixels.width, pixels.height);
                origin = (
                    crop.inside.x0 as i64 - crop.pad[0] as i64,
                    crop.inside.y0 as i64 - crop.pad[1] as i64,
                );
            }
        }
        let fused = match config.fuse {
            Fuse::Mean => {
                let n = all.len() as f32;
                (0..all[0].len())
                    .map(|i| all.iter().map(|p| p[i]).sum::<f32>() / n)
                    .collect()
            }
            Fuse::Zoom => all.pop().unwrap_or_default(),
            Fuse::Both => all.swap_remove(0),
        };
        let mut result = classifier.top(&fused);
        result.region = region;
        result.passes = Some(passes);
        Ok(result)
    }
}

/// A box found in a view whose top-left pixel lies at `origin` in the frame, in the frame's
/// pixels (the part of it over a crop's padding dropped).
fn in_frame(b: PixelBox, origin: (i64, i64), frame: &Raster) -> PixelBox {
    let (w, h) = (frame.width.max(1) as i64, frame.height.max(1) as i64);
    let x0 = (b.x0 as i64 + origin.0).clamp(0, w - 1);
    let y0 = (b.y0 as i64 + origin.1).clamp(0, h - 1);
    let x1 = (b.x1 as i64 + origin.0).clamp(x0 + 1, w);
    let y1 = (b.y1 as i64 + origin.1).clamp(y0 + 1, h);
    PixelBox {
        x0: x0 as u32,
        y0: y0 as u32,
        x1: x1 as u32,
        y1: y1 as u32,
    }
}
