//! What an ONNX file declares about its graph, read without its weights: the inputs with
//! their dimensions and the operators it uses. The file is mapped and only those fields are
//! decoded, so a 100 MB model costs the few pages that hold them. ONNX Runtime needs the free
//! dimensions' names before it plans the graph, whether the graph quantizes its weights only,
//! and whether quantized activations are shared (`backend::ort`).

use std::path::{Path, PathBuf};
use tract_onnx::pb::tensor_shape_proto::dimension;
use tract_onnx::pb::{type_proto, ValueInfoProto};

/// One dimension of a declared input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Size(i64),
    /// A free dimension with a name (`batch_size`), which a runtime can be told the size of.
    Named(String),
    /// A free dimension without a name.
    Unnamed,
}

/// An input of the graph as the file declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredInput {
    pub name: String,
    /// `None` where the input is not a tensor or its shape is not declared.
    pub dims: Option<Vec<Dim>>,
}

/// The inputs and operators of a graph as its file declares them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphOutline {
    pub inputs: Vec<DeclaredInput>,
    /// The nodes of the main graph, in order.
    pub nodes: Vec<OutlineNode>,
}

/// A node's operator and the names of the tensors it reads and writes.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct OutlineNode {
    #[prost(string, repeated, tag = "1")]
    pub inputs: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub outputs: Vec<String>,
    /// `DequantizeLinear`, `MatMul`.
    #[prost(string, tag = "4")]
    pub operator: String,
}

impl GraphOutline {
    /// A weight-only int8 graph: int8 constants through DequantizeLinear into float
    /// operators, and nothing that quantizes an activation (no QuantizeLinear, no dynamic
    /// quantization, no QLinear or integer operators).
    pub fn quantizes_weights_only(&self) -> bool {
        let quantizes_activations = |op: &str| {
            matches!(
                op,
                "QuantizeLinear" | "DynamicQuantizeLinear" | "MatMulInteger" | "ConvInteger"
            ) || op.starts_with("QLinear")
        };
        self.nodes.iter().any(|n| n.operator == "DequantizeLinear")
            && !self
                .nodes
                .iter()
                .any(|n| quantizes_activations(&n.operator))
    }

    /// The QuantizeLinear -> DequantizeLinear pairs whose dequantized activation more than one
    /// node reads (a ViT's query, key and value matmuls reading the normalised tokens).
    pub fn shared_quantized_activations(&self) -> usize {
        crate::model::qdq_pairs::shared_pairs(self.nodes.iter().map(|n| {
            (
                n.operator.as_str(),
                n.inputs.as_slice(),
                n.outputs.as_slice(),
            )
        }))
        .len()
    }
}

/// Why the outline could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GraphOutlineError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an ONNX model")]
    Decode {
        path: PathBuf,
        #[source]
        source: prost::DecodeError,
    },
}

/// Only the fields on the way to the graph's inputs and operators; prost skips the rest (the
/// weights and the nodes' attributes included) without copying them.
#[derive(Clone, PartialEq, prost::Message)]
struct ModelOutline {
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphFields>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GraphFields {
    #[prost(message, repeated, tag = "1")]
    node: Vec<OutlineNode>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueInfoProto>,
}

/// The outline of the graph in the ONNX file at `path`.
pub fn read_outline(path: &Path) -> Result<GraphOutline, GraphOutlineError> {
    let read = |source| GraphOutlineError::Read {
        path: path.to_path_buf(),
        source,
    };
    let map = map_model(path).map_err(read)?;
    decode(&map).map_err(|source| GraphOutlineError::Decode {
        path: path.to_path_buf(),
        source,
    })
}

/// The ONNX file at `path`, mapped to be read while a model loads.
pub fn map_model(path: &Path) -> std::io::Result<memmap2::Mmap> {
    let file = std::fs::File::open(path)?;
    // SAFETY: the map is only read, while the model loads; a package's file that is
    // rewritten during a load gives wrong bytes here, which the decoder refuses or ONNX
    // Runtime's own read of the file then does.
    unsafe { memmap2::Mmap::map(&file) }
}

fn decode(bytes: &[u8]) -> Result<GraphOutline, prost::DecodeError> {
    let model = <ModelOutline as prost::Message>::decode(bytes)?;
    let graph = model.graph.unwrap_or_default();
    Ok(GraphOutline {
        inputs: graph
            .input
            .into_iter()
            .map(|input| DeclaredInput {
                dims: dims(&input),
                name: input.name,
            })
            .collect(),
        nodes: graph.node,
    })
}

fn dims(input: &ValueInfoProto) -> Option<Vec<Dim>> {
    let Some(type_proto::Value::TensorType(tensor)) = input.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    let shape = tensor.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(dimension::Value::DimValue(size)) => Dim::Size(*size),
                Some(dimension::Value::DimParam(name)) if !name.is_empty() => {
                    Dim::Named(name.clone())
                }
                _ => Dim::Unnamed,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::{read_outline, Dim, GraphOutlineError};
    use std::path::Path;

    #[test]
    fn the_bundled_models_inputs_are_read_from_the_file() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let inputs = read_outline(&models.join("vit-mnist/model.onnx"))
            .unwrap()
            .inputs;
        assert_eq!(inputs.len(), 1);
        assert_eq!(inputs[0].name, "input");
        assert_eq!(
            inputs[0].dims,
            Some(vec![
                Dim::Size(1),
                Dim::Size(1),
                Dim::Size(28),
                Dim::Size(28)
            ])
        );
        let reid = read_outline(&models.join("transreid-tiny/model.onnx"))
            .unwrap()
            .inputs;
        let names: Vec<&str> = reid.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["input", "camera", "view"]);
        assert_eq!(reid[1].dims, Some(vec![Dim::Size(1)]));
    }

    #[test]
    fn named_and_unnamed_free_dimensions_are_told_apart() {
        use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
        use tract_onnx::pb::{type_proto, GraphProto, ModelProto, TensorShapeProto, TypeProto};
        use tract_onnx::pb::{TensorProto, ValueInfoProto};
        let dim = |value| Dimension {
            value: Some(value),
            ..Default::default()
        };
        let input = ValueInfoProto {
            name: "pixels".into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: 1,
                    shape: Some(TensorShapeProto {
                        dim: vec![
                            dim(dimension::Value::DimParam("batch_size".into())),
                            dim(dimension::Value::DimValue(3)),
                            dim(dimension::Value::DimParam(String::new())),
                            Dimension::default(),
                        ],
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let weights = TensorProto {
            name: "w".into(),
            raw_data: vec![7; 4096],
            ..Default::default()
        };
        let model = ModelProto {
            graph: Some(GraphProto {
                initializer: vec![weights],
                input: vec![input],
                ..Default::default()
            }),
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        std::fs::write(&path, prost::Message::encode_to_vec(&model)).unwrap();
        let inputs = read_outline(&path).unwrap().inputs;
        assert_eq!(inputs.len(), 1);
        assert_eq!(
            inputs[0].dims,
            Some(vec![
                Dim::Named("batch_size".into()),
                Dim::Size(3),
                Dim::Unnamed,
                Dim::Unnamed
            ])
        );
    }

    #[test]
    fn weight_only_graphs_are_told_from_the_ones_that_quantize_activations() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let weights_only = |name: &str| {
            let outline = read_outline(&models.join(name).join("model.onnx")).unwrap();
            assert!(
                outline.nodes.iter().any(|n| n.operator == "MatMul"),
                "{name}: {:?}",
                outline.nodes
            );
            outline.quantizes_weights_only()
        };
        assert!(weights_only("vit-mnist"));
        assert!(weights_only("vit-tiny-int8"));
        assert!(
            !weights_only("vit-tiny-qdq"),
            "static QDQ quantizes activations"
        );
        assert!(
            !weights_only("vit-mnist-transfg"),
            "f32: nothing is quantized"
        );
    }

    #[test]
    fn a_file_that_is_not_onnx_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        std::fs::write(&path, [0xffu8; 64]).unwrap();
        let e = read_outline(&path).unwrap_err();
        assert!(matches!(e, GraphOutlineError::Decode { .. }), "{e:?}");
        assert!(e.to_string().contains("is not an ONNX model"), "{e}");
        let e = read_outline(&dir.path().join("absent.onnx")).unwrap_err();
        assert!(matches!(e, GraphOutlineError::Read { .. }), "{e:?}");
    }
}
