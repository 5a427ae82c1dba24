//! Where a scene's objects come from: a detector, or fixed regions (`[[reid.roi]]` with a
//! classify model: Frigate's state classification, each region an object with a stable track).

use super::Models;
use crate::backend::InferenceBackend;
use crate::detect::{zones, Decoder, DetectError, Object, ZoneConfig};
use crate::frame::Frame;
use crate::interpret::embedding::crops_for;
use crate::interpret::RoiConfig;
use crate::model::{ColorOrder, ModelPackage};
use crate::pipeline::StageFailure;
use crate::preprocess::{Preprocess, PreprocessError, Preprocessor, Raster};

/// The detector's own model, when the worker's backend runs the second one.
pub(super) struct OwnModel {
    pub(super) preprocess: Preprocessor,
    pub(super) backend: Box<dyn InferenceBackend>,
    pub(super) color: ColorOrder,
    /// The second model decodes frames in the detector's colour order: one decode serves both.
    same_color: bool,
}

impl OwnModel {
    pub(super) fn new(package: &ModelPackage, backend: Box<dyn InferenceBackend>) -> Self {
        OwnModel {
            preprocess: Preprocessor::new(&package.manifest.input),
            backend,
            color: package.manifest.input.color,
            same_color: true,
        }
    }
}

/// One object a frame shows, before tracking.
#[derive(Debug, Clone)]
pub(super) struct Found {
    pub object: Object,
    pub zones: Vec<String>,
    /// A fixed region's track (its place in the configuration, from 1).
    pub track: Option<u64>,
    /// The view index a ReID model with SIE views is fed (fixed regions).
    pub view: usize,
}

/// A detector whose objects the scene's detector then searches (`[detector] within`).
pub(super) struct Within {
    pub decoder: Decoder,
    pub model: OwnModel,
    /// Only its objects of these labels; `None`, all.
    pub labels: Option<Vec<String>>,
}

/// A second search inside an object is widened by this share of its size a side (a face at
/// the top of a person box).
const WITHIN_MARGIN: f32 = 0.1;
/// Objects found inside two overlapping regions overlap by more than this: one is kept.
const WITHIN_DUPLICATE_IOU: f64 = 0.5;

/// What finds the objects.
pub(super) enum Finder {
    Detector {
        decoder: Box<Decoder>,
        own: Option<Box<OwnModel>>,
        zones: Vec<ZoneConfig>,
        within: Option<Box<Within>>,
    },
    Regions(Vec<RoiConfig>),
}

impl Finder {
    /// The second model takes `color`: one decode serves both when the detector's is the same.
    pub(super) fn second_takes(&mut self, color: ColorOrder) {
        if let Finder::Detector { own: Some(own), .. } = self {
            own.same_color = own.color == color;
        }
    }

    /// Refuses, at load, a detector whose outputs the worker's backend gives in shapes the
    /// decoder cannot read.
    pub(super) fn check(&self, worker: &dyn InferenceBackend) -> Result<(), DetectError> {
        match self {
            Finder::Detector { decoder, own, .. } => {
                decoder.check(own.as_ref().map_or(worker, |o| o.backend.as_ref()))
            }
            Finder::Regions(_) => Ok(()),
        }
    }

    /// The frame as the finder decodes it, and as the second model does where its colour
    /// order differs.
    pub(super) fn decode(
        &self,
        frame: &Frame,
        worker: &dyn Preprocess,
    ) -> Result<(Raster, Option<Raster>), PreprocessError> {
        match self {
            Finder::Detector { own: Some(own), .. } => {
                let raster = own.preprocess.decode(frame)?;
                let second = match own.same_color {
                    true => None,
                    false => Some(worker.decode(frame)?),
                };
                Ok((raster, second))
            }
            _ => Ok((worker.decode(frame)?, None)),
        }
    }

    /// The objects of a decoded frame of `camera` that count (inside its zones).
    pub(super) fn find(
        &mut self,
        raster: &Raster,
        camera: &str,
        worker: &mut Models,
    ) -> Result<Vec<Found>, StageFailure> {
        let (decoder, own, zones, within) = match self {
            Finder::Regions(rois) => return Ok(regions(rois, camera, raster)),
            Finder::Detector {
                decoder,
                own,
                zones,
                within,
            } => (decoder, own, zones, within),
        };
        let (preprocess, backend): (&mut dyn Preprocess, &mut dyn InferenceBackend) = match own {
            Some(own) => (&mut own.preprocess, own.backend.as_mut()),
            None => (&mut *worker.preprocess, &mut *worker.backend),
        };
        let objects = match within {
            None => detect(decoder, preprocess, backend, raster)?,
            Some(within) => detect_within(within, decoder, preprocess, backend, raster)?,
        };
        Ok(objects
            .into_iter()
            .filter_map(|object| {
                let zones = zones::zones_of(zones, camera, object.bounds)?;
                Some(Found {
                    object,
                    zones,
                    track: None,
                    view: 0,
                })
            })
            .collect())
    }
}

/// The objects a detector finds in a decoded frame: suppressed, in frame pixels, best first.
pub fn detect(
    decoder: &Decoder,
    preprocess: &mut dyn Preprocess,
    backend: &mut dyn InferenceBackend,
    raster: &Raster,
) -> Result<Vec<Object>, StageFailure> {
    let prepared = preprocess
        .prepare_raster(raster)
        .map_err(StageFailure::Preprocess)?;
    let outputs = backend.run(&prepared.tensor).map_err(StageFailure::Infer)?;
    let objects = decoder.objects(&outputs, &prepared.placement, (raster.width, raster.height))?;
    preprocess.recycle(prepared);
    Ok(objects)
}

/// The objects `decoder` finds inside each object of `within` (widened), in frame pixels; of
/// two that overlap (found from two overlapping regions), the better scored is kept.
fn detect_within(
    within: &mut Within,
    decoder: &Decoder,
    preprocess: &mut dyn Preprocess,
    backend: &mut dyn InferenceBackend,
    raster: &Raster,
) -> Result<Vec<Object>, StageFailure> {
    let outer = detect(
        &within.decoder,
        &mut within.model.preprocess,
        within.model.backend.as_mut(),
        raster,
    )?;
    let mut found: Vec<Object> = Vec::new();
    for region in outer
        .iter()
        .filter(|o| (within.labels.as_ref()).is_none_or(|labels| labels.contains(&o.label)))
    {
        let b = super::looks::widen(region.bounds, WITHIN_MARGIN, raster.width, raster.height);
        let crop = raster.crop(b.x0, b.y0, b.x1, b.y1);
        for object in detect(decoder, preprocess, backend, &crop)? {
            let object = shifted(object, b.x0, b.y0);
            let duplicate = found.iter_mut().find(|f| {
                f.class == object.class && f.bounds.iou(&object.bounds) > WITHIN_DUPLICATE_IOU
            });
            match duplicate {
                Some(kept) if kept.score >= object.score => {}
                Some(kept) => *kept = object,
                None => found.push(object),
            }
        }
    }
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(found)
}

/// An object found in a crop whose corner is at (`dx`, `dy`), in the frame's pixels.
fn shifted(mut object: Object, dx: u32, dy: u32) -> Object {
    let (fx, fy) = (dx as f32, dy as f32);
    object.bounds = object.bounds.moved_by(dx, dy);
    for point in &mut object.keypoints {
        *point = [point[0] + fx, point[1] + fy];
    }
    if let Some(face) = &mut object.face {
        for point in [&mut face.right_eye, &mut face.left_eye, &mut face.mouth] {
            *point = [point[0] + fx, point[1] + fy];
        }
    }
    object
}

/// The camera's fixed regions as objects: labelled by name, each with its own track (its
/// place among all the regions, from 1; a camera without regions is one region, the frame,
/// after them).
fn regions(rois: &[RoiConfig], camera: &str, raster: &Raster) -> Vec<Found> {
    let frame_track = rois.len() as u64 + 1;
    crops_for(rois, camera, raster.width, raster.height)
        .into_iter()
        .map(|crop| {
            let index = rois
                .iter()
                .position(|r| r.camera == camera && r.name == crop.roi);
            Found {
                object: Object {
                    bounds: crop.bounds,
                    label: crop.roi,
                    class: index.unwrap_or(rois.len()),
                    score: 1.0,
                    keypoints: Vec::new(),
                    face: None,
                },
                zones: Vec::new(),
                track: Some(index.map_or(frame_track, |i| i as u64 + 1)),
                view: crop.view,
            }
        })
        .collect()
}
