//! The `model.toml` manifest of a model package.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What the model's outputs mean, and so which interpretation runs after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Class logits -> labels.
    Classify,
    /// An embedding -> identities matched in a gallery.
    Reid,
    /// Boxes -> objects (a detector, see `[detect]`).
    Detect,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Classify => "classify",
            Task::Reid => "reid",
            Task::Detect => "detect",
        }
    }
}

/// Channel order (and count) the model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorOrder {
    Rgb,
    Bgr,
    Gray,
}

impl ColorOrder {
    /// The name as written in `model.toml`.
    pub fn name(self) -> &'static str {
        match self {
            ColorOrder::Rgb => "rgb",
            ColorOrder::Bgr => "bgr",
            ColorOrder::Gray => "gray",
        }
    }

    pub fn channels(self) -> usize {
        match self {
            ColorOrder::Rgb | ColorOrder::Bgr => 3,
            ColorOrder::Gray => 1,
        }
    }
}

/// How a frame of another aspect ratio is fitted to the model's input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResizePolicy {
    /// Resize the whole frame, distorting the aspect ratio.
    Stretch,
    /// Crop the largest centred region of the input's aspect ratio, then resize it.
    CenterCrop,
    /// Resize to fit inside the input, keeping the aspect ratio, and pad with black.
    Letterbox,
}

/// The order of the input tensor's dimensions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[N, C, H, W]`: PyTorch exports.
    #[default]
    Nchw,
    /// `[N, H, W, C]`: TensorFlow, TF.js and TFLite exports.
    Nhwc,
}

/// `[input]`: the tensor the model takes and how pixels become that tensor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Name of the graph input.
    pub name: String,
    /// The graph input's shape in `layout` order (`[N, C, H, W]` or `[N, H, W, C]`); N must be 1.
    pub shape: [usize; 4],
    /// `nchw` (the default) or `nhwc`.
    #[serde(default)]
    pub layout: Layout,
    pub color: ColorOrder,
    /// Pixels are divided by this first (255.0 maps 8-bit values to 0..1).
    #[serde(default = "default_scale")]
    pub scale: f32,
    /// Per-channel mean subtracted after scaling (one value, or one per channel).
    #[serde(default)]
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by after the mean (one value, or one per channel).
    #[serde(default)]
    pub std: Vec<f32>,
    #[serde(default = "default_resize")]
    pub resize: ResizePolicy,
}

fn default_scale() -> f32 {
    255.0
}

fn default_resize() -> ResizePolicy {
    ResizePolicy::Stretch
}

impl InputSpec {
    pub fn channels(&self) -> usize {
        self.nchw()[1]
    }
    pub fn height(&self) -> usize {
        self.nchw()[2]
    }
    pub fn width(&self) -> usize {
        self.nchw()[3]
    }
    /// The input's shape as `[N, C, H, W]`, whatever its layout.
    pub fn nchw(&self) -> [usize; 4] {
        match self.layout {
            Layout::Nchw => self.shape,
            Layout::Nhwc => {
                let [n, h, w, c] = self.shape;
                [n, c, h, w]
            }
        }
    }
}

/// `[outputs]`: which graph tensors play which role.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Class logits, `[1, classes]` (task `classify`).
    pub logits: Option<String>,
    /// Identity embedding, `[1, dim]` (task `reid`): one tensor, or several that are
    /// concatenated in this order (TransReID's JPM: the global feature, then the local ones).
    #[serde(default, deserialize_with = "one_or_many")]
    pub embedding: Option<Vec<String>>,
    /// The attention probabilities of each block, `[1, heads, tokens, tokens]`, first block
    /// first: tensor names (graph outputs or any node's output, made outputs at load), or
    /// `"auto"` to find the Softmax of every attention block.
    #[serde(default)]
    pub attention: AttentionSource,
    /// A class-token attention map rolled out inside the graph, `[1, patches]` (for backends
    /// that cannot read intermediate tensors).
    pub rollout: Option<String>,
    /// TransFG's selected tokens, `[1, k]` token indices (class token = 0): the parts.
    pub parts: Option<String>,
    /// LV-ViT's per-patch class scores, `[1, patches, classes]` (token labeling).
    pub patch_logits: Option<String>,
    /// A detector's boxes (task `detect`): their shape depends on `detect.format`.
    #[serde(alias = "boxes")]
    pub detections: Option<String>,
    /// A detector's scores, apart from its boxes (`detect.format = "anchors"`).
    pub scores: Option<String>,
}

/// A tensor name, or a list of them.
fn one_or_many<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(Some(match Raw::deserialize(deserializer)? {
        Raw::One(name) => vec![name],
        Raw::Many(names) => names,
    }))
}

/// `[embedding]`: how several embedding outputs become one vector (task `reid`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSpec {
    /// One factor per `outputs.embedding` tensor, applied before the concatenation
    /// (TransReID divides its local features by their count). Default: 1 for each.
    #[serde(default)]
    pub weights: Vec<f32>,
    /// Take this token of a `[1, tokens, dim]` output (0: a ViT's class token, for an
    /// embedding read inside a graph, such as DINOv2's final layer norm). Default: the output
    /// is `[1, dim]`.
    pub token: Option<usize>,
}

/// `[reid]` of a ReID package (task `reid`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReidSpec {
    /// How embeddings are compared: `cosine` (default) or `euclidean` (dlib's face
    /// descriptor).
    #[serde(default)]
    pub metric: crate::gallery::Metric,
    /// The package's match threshold in its metric; a run's `[gallery] threshold` overrides
    /// it. Default 0.6.
    pub threshold: Option<f32>,
    /// How a crop is made: `none` (the box, default) or `face` (aligned from the detector's
    /// eye and mouth key points to dlib's face chip; the box when there are none).
    #[serde(default)]
    pub align: Align,
}

/// `[reid] align`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Align {
    #[default]
    None,
    Face,
}

/// `[sie]`: TransReID's Side Information Embedding. The model takes the camera (and the
/// view) as extra int64 inputs of shape `[1]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SieSpec {
    /// The graph input that takes the camera index.
    pub camera: String,
    /// How many cameras the model knows: indexes 0 to `cameras - 1`.
    pub cameras: usize,
    /// The graph input that takes the view index, if the model has one.
    pub view: Option<String>,
    /// How many views the model knows.
    #[serde(default = "one")]
    pub views: usize,
}

fn one() -> usize {
    1
}

impl SieSpec {
    /// The side inputs' graph names: the camera's, then the view's.
    pub fn inputs(&self) -> Vec<&str> {
        std::iter::once(self.camera.as_str())
            .chain(self.view.as_deref())
            .collect()
    }
}

/// Where the attention maps come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AttentionSource {
    /// The model offers none.
    #[default]
    None,
    /// Found at load: the Softmax over the key axis of every attention block.
    Auto,
    /// These tensors, first block first.
    Named(Vec<String>),
}

impl AttentionSource {
    pub fn is_none(&self) -> bool {
        *self == AttentionSource::None
    }
}

impl<'de> Deserialize<'de> for AttentionSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Keyword(String),
            Names(Vec<String>),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Keyword(k) if k == "auto" => Ok(AttentionSource::Auto),
            Raw::Keyword(k) => Err(serde::de::Error::custom(format!(
                "expected \"auto\" or a list of tensor names, got {k:?}"
            ))),
            Raw::Names(names) if names.is_empty() => Ok(AttentionSource::None),
            Raw::Names(names) => Ok(AttentionSource::Named(names)),
        }
    }
}

impl OutputSpec {
    /// Every tensor the manifest names, in a stable order: logits, embedding, attention,
    /// rollout, parts, patch logits.
    pub fn graph_names(&self) -> Vec<&str> {
        let attention: &[String] = match &self.attention {
            AttentionSource::Named(names) => names,
            _ => &[],
        };
        self.logits
            .iter()
            .chain(self.embedding.iter().flatten())
            .chain(attention.iter())
            .chain(self.rollout.iter())
            .chain(self.parts.iter())
            .chain(self.patch_logits.iter())
            .chain(self.detections.iter())
            .chain(self.scores.iter())
            .map(String::as_str)
            .collect()
    }

    /// The outputs that every frame's result is made of: all but the attention's (maps, a
    /// rolled-out map, parts), which only zoom and parts read.
    pub fn per_frame_names(&self) -> Vec<String> {
        self.logits
            .iter()
            .chain(self.embedding.iter().flatten())
            .chain(self.patch_logits.iter())
            .chain(self.detections.iter())
            .chain(self.scores.iter())
            .cloned()
            .collect()
    }

    /// [`OutputSpec::graph_names`], owned.
    pub fn owned_graph_names(&self) -> Vec<String> {
        self.graph_names().into_iter().map(str::to_string).collect()
    }
}

/// `[tokens]`: the token layout, where detection from the attention's size is not enough.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Register tokens after the class token (DINOv2 with registers: 4). Default: detected.
    pub registers: Option<usize>,
    /// Patch size in input pixels. Default: input size / grid.
    pub patch: Option<u32>,
    /// Distance between patches in input pixels: less than `patch` for TransFG's overlapping
    /// patches. Default: `patch`.
    pub stride: Option<u32>,
}

/// `[selftest]`: a stored input and the outputs a reference runtime gave for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfTestSpec {
    /// `.npy` input, relative to the manifest.
    pub input: PathBuf,
    /// Graph output name -> expected `.npy`, relative to the manifest.
    pub outputs: BTreeMap<String, PathBuf>,
    /// Largest absolute difference accepted on any element.
    #[serde(default = "default_tolerance")]
    pub tolerance: f32,
    /// Values of the side inputs (`[sie]`) for the self-test, by input name; 0 when absent.
    #[serde(default)]
    pub side: BTreeMap<String, i64>,
    /// A tolerance per backend name (`{ ort = 0.1 }`) for backends that compute another,
    /// close function by design: ONNX Runtime's default optimisation runs DequantizeLinear ->
    /// MatMul as int8 kernels that quantize the activations too.
    #[serde(default)]
    pub backend_tolerance: BTreeMap<String, f32>,
}

impl SelfTestSpec {
    /// The tolerance for the backend called `backend`.
    pub fn tolerance_for(&self, backend: &str) -> f32 {
        self.backend_tolerance
            .get(backend)
            .copied()
            .unwrap_or(self.tolerance)
    }
}

fn default_tolerance() -> f32 {
    1e-4
}

/// The whole `model.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub task: Task,
    /// ONNX file, relative to the manifest (or absolute).
    pub onnx: PathBuf,
    /// Optional labels file, one label per line, relative to the manifest.
    pub labels: Option<PathBuf>,
    /// One line saying what the model is.
    #[serde(default)]
    pub description: String,
    pub input: InputSpec,
    pub outputs: OutputSpec,
    #[serde(default)]
    pub tokens: TokenSpec,
    #[serde(default)]
    pub embedding: EmbeddingSpec,
    pub sie: Option<SieSpec>,
    /// `[reid]`: how a ReID package's embeddings are compared and its crops made.
    #[serde(default)]
    pub reid: ReidSpec,
    /// `[detect]`: how a detector's outputs become boxes (task `detect`).
    pub detect: Option<crate::detect::DetectSpec>,
    pub selftest: Option<SelfTestSpec>,
    /// The model converted for Rockchip NPUs (`rknn = "model.rknn"`, or a table), used by
    /// the `rknn` backend.
    #[serde(default, deserialize_with = "file_or_table")]
    pub rknn: Option<RknnSpec>,
}

/// `rknn`: the `.rknn` file that rknn-toolkit2 made from this package's ONNX model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RknnSpec {
    /// The `.rknn` file, relative to the manifest.
    pub file: PathBuf,
    /// What the converted model takes; see [`RknnInput`].
    #[serde(default)]
    pub input: RknnInput,
}

/// The input a converted model takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RknnInput {
    /// 8-bit pixels, NHWC, with `input.mean` and `input.std` baked in at conversion
    /// (rknn-toolkit2's `mean_values` and `std_values`): the NPU normalises.
    #[default]
    Uint8,
    /// The normalised float tensor, NHWC (converted with mean 0 and std 1).
    Float,
}

/// `rknn = "file"`, or `[rknn]` with `file` and `input`.
fn file_or_table<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<RknnSpec>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        File(PathBuf),
        Table(RknnSpec),
    }
    Ok(Some(match Raw::deserialize(deserializer).map_err(|_| {
        serde::de::Error::custom(
            "expected a file name (rknn = \"model.rknn\") or a table with `file` and `input` (\"uint8\" or \"float\")",
        )
    })? {
        Raw::File(file) => RknnSpec {
            file,
            input: RknnInput::default(),
        },
        Raw::Table(spec) => spec,
    }))
}
