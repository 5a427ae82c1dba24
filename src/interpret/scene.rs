//! What a frame of a scene produced: its objects, each with its track, and what the second
//! model made of it (`"objects": [...]` in the record; see docs/output.md).

use super::{ClassScore, Part};
use crate::detect::Object;
use crate::interpret::PixelBox;
use serde::Serialize;

/// One object of a frame record: `{"track": 7, "box": [...], "label": "person", "score": s,
/// "identity": "id-000003", "similarity": s}`, fields present as the stages give them.
#[derive(Debug, Clone, Serialize)]
pub struct SceneObject {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track: Option<u64>,
    #[serde(flatten)]
    pub object: Object,
    /// The zones the object stands in (cameras with `[[zones]]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// ReID: the identity the track's looks voted for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// ReID: the similarity of the last look that gave `identity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
    /// ReID with a Euclidean package (faces): the same as a distance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance: Option<f32>,
    /// Classify: the label the track's looks voted for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fine_label: Option<String>,
    /// Classify: the classes of the last look, best first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<ClassScore>,
    /// Classify with `[zoom]`: the attended region of the last look, in frame pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<PixelBox>,
    /// Classify with `[parts]`: the part boxes of the last look, in frame pixels.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    /// ReID: the crop the last look described (for a face, its aligned chip): what an MQTT
    /// snapshot shows. Not in the record.
    #[serde(skip)]
    pub crop: Option<std::sync::Arc<crate::preprocess::Raster>>,
    /// Share of the track's looks that agree with its label or identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f32>,
}

impl SceneObject {
    /// An object as the detector gave it: no track, zones or looks yet.
    pub fn of(object: Object) -> SceneObject {
        SceneObject {
            track: None,
            object,
            zones: Vec::new(),
            identity: None,
            name: None,
            similarity: None,
            distance: None,
            fine_label: None,
            top: Vec::new(),
            region: None,
            parts: Vec::new(),
            crop: None,
            agreement: None,
        }
    }
}

/// The objects of one frame: `"objects": [...]` in the record.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scene {
    pub objects: Vec<SceneObject>,
    /// Tracks that ended with this frame.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ended: Vec<u64>,
}
