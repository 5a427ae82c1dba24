//! Small ONNX graphs written by the tests with tract-onnx's protobuf types.
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::ValueInfoProto;
use tract_onnx::pb::{type_proto, AttributeProto, GraphProto, ModelProto, NodeProto};
use tract_onnx::pb::{OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto};

// Not every test binary that includes `common` writes graphs.
#[allow(unused_imports)]
pub use dimension::Value::{DimParam as Named, DimValue as Size};

/// An f32 tensor of these dimensions.
pub fn tensor(name: &str, dims: Vec<dimension::Value>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .into_iter()
                        .map(|value| Dimension {
                            value: Some(value),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        input: inputs.iter().map(|i| i.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

/// A model of one graph at opset 13, written to `path`.
pub fn write(path: &std::path::Path, graph: GraphProto) {
    let model = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(graph),
        ..Default::default()
    };
    std::fs::write(path, prost::Message::encode_to_vec(&model)).unwrap();
}

/// A constant: an f32 tensor (`data_type` 1) or an int8 one (3, in `int32_data`).
pub fn constant(name: &str, dims: Vec<i64>, data_type: i32, values: Vec<f32>) -> TensorProto {
    let mut tensor = TensorProto {
        name: name.into(),
        dims,
        data_type,
        ..Default::default()
    };
    if data_type == 3 {
        tensor.int32_data = values.iter().map(|&v| v as i32).collect();
    } else {
        tensor.float_data = values;
    }
    tensor
}
