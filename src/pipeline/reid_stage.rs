//! The ReID stage: each crop of a frame (the camera's ROIs, or the whole frame) is cut from the
//! native-resolution frame, embedded (with its mirror image when `flip` is on, with the
//! camera's SIE index when the model takes one) and matched in the board's gallery.

use super::vit_stage::StageFailure;
use super::PipelineError;
use crate::backend::InferenceBackend;
use crate::gallery::{Gallery, GalleryConfig, Metric, ModelStamp};
use crate::interpret::embedding::{check_rois, crops_for};
use crate::interpret::{Crop, Embedder, Identification, InterpretError, ReidConfig};
use crate::model::{Align, ModelPackage, SieSpec};
use crate::preprocess::align::face_chip;
use crate::preprocess::thumbnail::jpeg;
use crate::preprocess::{Preprocess, Raster};
use std::path::Path;

/// Thumbnails: at most this many pixels a side, JPEG quality 80 (a few kB each).
const THUMBNAIL_SIDE: u32 = 112;
const THUMBNAIL_QUALITY: u8 = 80;

/// Embeds crops and matches them in the gallery.
pub struct ReidStage {
    embedder: Embedder,
    gallery: Gallery,
    config: ReidConfig,
    sie: Option<SieSpec>,
    /// Faces are aligned to the descriptor's chip (`[reid] align = "face"`).
    align: Align,
    /// The model's input width and height (the size of an aligned chip).
    input: (u32, u32),
}

/// Where a frame came from, for the side inputs and the sightings.
pub struct Camera<'a> {
    pub id: &'a str,
    pub index: usize,
}

impl ReidStage {
    /// Sets up the stage for a `reid` package, opening (or creating) the gallery at `path`.
    pub fn new(
        package: &ModelPackage,
        backend: &dyn InferenceBackend,
        config: &ReidConfig,
        gallery: &GalleryConfig,
        path: &Path,
    ) -> Result<Self, PipelineError> {
        check_rois(&config.rois).map_err(InterpretError::Config)?;
        let spec = &package.manifest.reid;
        let gallery = gallery.for_package(spec.metric, spec.threshold);
        gallery.check().map_err(InterpretError::Config)?;
        let embedder = Embedder::new(package, config)?;
        let dim = embedder.dim(backend).ok_or_else(|| {
            InterpretError::Config(
                "the size of the model's embedding is not fixed in its graph".into(),
            )
        })?;
        let stamp = ModelStamp {
            name: package.name().to_string(),
            dim,
        };
        let gallery = Gallery::open(path, &stamp, &gallery).map_err(InterpretError::from)?;
        log::info!(
            "gallery {}: {} identities, {} exemplars ({}-number embeddings)",
            gallery.path().display(),
            gallery.identities().count(),
            gallery.exemplar_count(),
            dim
        );
        Ok(ReidStage {
            embedder,
            gallery,
            config: config.clone(),
            sie: package.manifest.sie.clone(),
            align: spec.align,
            input: (
                package.manifest.input.width() as u32,
                package.manifest.input.height() as u32,
            ),
        })
    }

    /// The crops of a frame of `camera` sized `width x height`.
    pub fn crops(&self, camera: &str, width: u32, height: u32) -> Vec<Crop> {
        crops_for(&self.config.rois, camera, width, height)
    }

    /// The embedding of one crop (unit length for cosine packages).
    pub fn embed(
        &self,
        raster: &Raster,
        crop: &Crop,
        camera: &Camera,
        preprocess: &mut dyn Preprocess,
        backend: &mut dyn InferenceBackend,
    ) -> Result<Vec<f32>, StageFailure> {
        let cut = cut(self.align, self.input, raster, crop);
        self.embed_cut(&cut, crop.view, camera, preprocess, backend)
    }

    /// The embedding of a crop's pixels as the model sees them ([`ReidStage::embed`]).
    fn embed_cut(
        &self,
        cut: &Raster,
        view: usize,
        camera: &Camera,
        preprocess: &mut dyn Preprocess,
        backend: &mut dyn InferenceBackend,
    ) -> Result<Vec<f32>, StageFailure> {
        let side = self.side_inputs(camera.index, view)?;
        let mirror = self.config.flip.then(|| cut.flipped());
        let embeddings = std::iter::once(cut)
            .chain(mirror.as_ref())
            .map(|view| {
                let prepared = preprocess
                    .prepare_raster(view)
                    .map_err(StageFailure::Preprocess)?;
                let outputs = backend
                    .run_with(&prepared.tensor, &side)
                    .map_err(StageFailure::Infer)?;
                Ok(self.embedder.concatenate(&outputs)?)
            })
            .collect::<Result<Vec<_>, StageFailure>>()?;
        Ok(self.embedder.finish(&embeddings)?)
    }

    /// Keeps the crop as one of the identity's thumbnails when it is among its best (the
    /// larger, the better). A thumbnail that cannot be stored is logged, not a failed frame.
    fn offer_thumbnail(&mut self, cut: &Raster, crop: &Crop, who: &str, camera: &str, now_ms: i64) {
        let b = crop.bounds;
        let quality = b.width().min(b.height()) as f32;
        let made = || jpeg(cut, THUMBNAIL_SIDE, THUMBNAIL_QUALITY);
        if let Err(e) = self
            .gallery
            .offer_thumbnail(who, quality, camera, now_ms, made)
        {
            log::warn!("thumbnail of {who}: {}", crate::error::chain(&e));
        }
    }

    /// A similarity as a distance, for packages that compare by Euclidean distance.
    pub fn distance(&self, similarity: f32) -> Option<f32> {
        let metric = self.gallery.config().metric;
        (metric == Metric::Euclidean).then(|| metric.from_similarity(similarity))
    }

    /// Identifies each crop of a frame; `now_ms` is the frame's time (ms since 1970).
    pub fn identify(
        &mut self,
        raster: &Raster,
        crops: &[Crop],
        camera: &Camera,
        now_ms: i64,
        preprocess: &mut dyn Preprocess,
        backend: &mut dyn InferenceBackend,
    ) -> Vec<Result<Identification, StageFailure>> {
        crops
            .iter()
            .map(|crop| {
                // Cut once: the model, the thumbnail and the snapshot see the same pixels.
                let cut = cut(self.align, self.input, raster, crop);
                let embedding = self.embed_cut(&cut, crop.view, camera, preprocess, backend)?;
                let found = self
                    .gallery
                    .observe(&embedding, camera.id, now_ms)
                    .map_err(InterpretError::from)?;
                self.offer_thumbnail(&cut, crop, &found.identity, camera.id, now_ms);
                Ok(Identification {
                    roi: crop.roi.clone(),
                    bounds: crop.bounds,
                    identity: found.identity,
                    name: found.name,
                    similarity: found.similarity,
                    distance: self.distance(found.similarity),
                    new: found.new,
                    confirmed: found.confirmed,
                    embedding: self.config.publish_embedding.then_some(embedding),
                    crop: Some(std::sync::Arc::new(cut)),
                })
            })
            .collect()
    }

    /// The SIE values for a camera and view, refused when the model does not know them.
    fn side_inputs(&self, camera: usize, view: usize) -> Result<Vec<i64>, InterpretError> {
        let Some(sie) = &self.sie else {
            return Ok(Vec::new());
        };
        if camera >= sie.cameras {
            return Err(InterpretError::Config(format!(
                "camera index {camera} is beyond the {} cameras the model's SIE knows (sie.cameras); the cameras are numbered in configuration order from 0",
                sie.cameras
            )));
        }
        if view >= sie.views {
            return Err(InterpretError::Config(format!(
                "view {view} is beyond the {} views the model's SIE knows (sie.views)",
                sie.views
            )));
        }
        let mut side = vec![camera as i64];
        if sie.view.is_some() {
            side.push(view as i64);
        }
        Ok(side)
    }

    pub fn gallery(&self) -> &Gallery {
        &self.gallery
    }

    pub fn gallery_mut(&mut self) -> &mut Gallery {
        &mut self.gallery
    }
}

/// The pixels of a crop: the face's chip (`input` sized), aligned from its eyes and mouth, with
/// `align = "face"` when the detector gave them; else the box.
fn cut(align: Align, input: (u32, u32), raster: &Raster, crop: &Crop) -> Raster {
    let aligned = match (align, &crop.face) {
        (Align::Face, Some(face)) => face_chip(raster, face, input.0, input.1),
        _ => None,
    };
    aligned.unwrap_or_else(|| {
        let b = crop.bounds;
        raster.crop(b.x0, b.y0, b.x1, b.y1)
    })
}

/// The gallery file of a run: `gallery.path`, else `gallery.sqlite` in `state_dir`.
pub fn gallery_path(
    gallery: &GalleryConfig,
    state_dir: Option<&Path>,
) -> Result<std::path::PathBuf, PipelineError> {
    let path = gallery
        .path
        .clone()
        .or_else(|| state_dir.map(|dir| dir.join("gallery.sqlite")))
        .ok_or_else(|| {
            PipelineError::from(InterpretError::Config(
                "a ReID model needs a gallery file: set `gallery.path`, or `state_dir` (the gallery is then state_dir/gallery.sqlite)".into(),
            ))
        })?;
    if path.is_dir() {
        return Err(PipelineError::from(InterpretError::Config(format!(
            "`gallery.path`: {} is a folder; name the gallery file, for example {}",
            path.display(),
            path.join("gallery.sqlite").display()
        ))));
    }
    Ok(path)
}
