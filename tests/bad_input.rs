//! Bad input gets a clear error naming what is wrong, never a panic; a bad frame never stops
//! the loop.

mod common;

use common::{assert_clean_failure, edgevit, edited_default_package, table};
use std::path::Path;

fn check(dir: &Path) -> std::process::Output {
    edgevit(&["models", "check", dir.to_str().unwrap()])
}

#[test]
fn missing_onnx_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = edited_default_package(tmp.path(), |m| {
        m.insert("onnx".into(), "nowhere.onnx".into());
    });
    assert_clean_failure(&check(&dir), &["cannot load model", "nowhere.onnx"]);
}

#[test]
fn corrupt_onnx_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = edited_default_package(tmp.path(), |m| {
        m.insert("onnx".into(), "corrupt.onnx".into());
    });
    std::fs::write(
        dir.join("corrupt.onnx"),
        b"\x08\x07this is not a protobuf model\xff\xff",
    )
    .unwrap();
    assert_clean_failure(&check(&dir), &["cannot load model", "corrupt.onnx"]);
}

/// ONNX Runtime's quantization tools declare the graph's inner shapes (`value_info`) with the
/// batch free (`batch_size`), where edgevit feeds a batch of 1, which tract refuses to unify
/// with the name. The model loads without those declarations, passes its self-test, and a
/// warning says so.
#[test]
fn inner_shapes_declared_with_a_free_batch_are_set_aside() {
    use tract_onnx::pb::tensor_shape_proto::{dimension::Value, Dimension};
    use tract_onnx::pb::{type_proto, ModelProto, TensorShapeProto, TypeProto, ValueInfoProto};
    let tmp = tempfile::tempdir().unwrap();
    let dir = edited_default_package(tmp.path(), |_| {});
    let path = dir.join("model.onnx");
    let mut model =
        <ModelProto as prost::Message>::decode(&*std::fs::read(&path).unwrap()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    // The patch embedding's output: [1, 64, 4, 4] for a 28x28 digit.
    let embedding = graph.node.iter().find(|n| n.op_type == "Conv").unwrap();
    let dims = [Value::DimParam("batch_size".into())]
        .into_iter()
        .chain([64, 4, 4].map(Value::DimValue))
        .map(|value| Dimension {
            value: Some(value),
            ..Default::default()
        })
        .collect();
    graph.value_info.push(ValueInfoProto {
        name: embedding.output[0].clone(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim: dims }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    });
    std::fs::write(&path, prost::Message::encode_to_vec(&model)).unwrap();
    let out = check(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("loaded without the inner shapes its file declares")
            && stderr.contains("batch_size"),
        "{stderr}"
    );
}

#[test]
fn manifest_input_name_that_the_graph_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = edited_default_package(tmp.path(), |m| {
        table(m, "input").insert("name".into(), "pixels".into());
    });
    assert_clean_failure(
        &check(&dir),
        &[
            "does not match its manifest",
            "\"pixels\"",
            "graph's inputs",
        ],
    );
}

#[test]
fn manifest_input_shape_that_the_graph_contradicts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = edited_default_package(tmp.path(), |m| {
        let shape = toml::Value::try_from([1, 1, 32, 32]).unwrap();
        table(m, "input").insert("shape".into(), shape);
    });
    assert_clean_failure(
        &check(&dir),
        &["input.shape is [1, 1, 32, 32]", "graph's input is"],
    );
}

#[test]
fn manifest_output_name_that_the_graph_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = edited_default_package(tmp.path(), |m| {
        table(m, "outputs").insert("logits".into(), "scores".into());
        m.remove("selftest");
    });
    assert_clean_failure(
        &check(&dir),
        &[
            "names output \"scores\"",
            "not among the model's outputs",
            "nor is it a tensor inside the graph",
        ],
    );
}

#[test]
fn unparseable_manifest_names_the_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = edited_default_package(tmp.path(), |m| {
        table(m, "input").insert("resize".into(), "squash".into());
    });
    assert_clean_failure(&check(&dir), &["model.toml", "unknown variant `squash`"]);
}

#[test]
fn failing_self_test_refuses_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = edited_default_package(tmp.path(), |_| {});
    // Corrupt the stored reference logits: the model now disagrees with its golden output.
    let manifest = edgevit::model::ModelPackage::open(&dir).unwrap().manifest;
    let selftest = manifest
        .selftest
        .expect("the default model has a self-test");
    let (name, file) = selftest.outputs.iter().next().unwrap();
    let reference = edgevit::tensor::Tensor::read_npy(&dir.join(file)).unwrap();
    let shifted: Vec<f32> = reference.data().iter().map(|v| v + 0.5).collect();
    let shifted = edgevit::tensor::Tensor::new(reference.shape().to_vec(), shifted).unwrap();
    std::fs::write(dir.join(file), shifted.to_npy()).unwrap();

    let output = check(&dir);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("FAIL") && stdout.contains(name.as_str()),
        "{stdout}"
    );

    let digit = common::default_model().join("samples");
    let image = std::fs::read_dir(digit)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let refused = edgevit(&[
        "infer",
        "--model",
        dir.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    assert_clean_failure(
        &refused,
        &["failed its self-test", "differs from the reference"],
    );
    assert!(refused.stdout.is_empty(), "no result from a refused model");
}

#[test]
fn wrongly_quantized_model_is_caught_by_its_self_test() {
    // tests/fixtures/bad-qdq: the MNIST ViT quantized with full QDQ (Softmax included), which
    // tract's optimiser computes wrongly; its self-test holds ONNX Runtime's outputs.
    let dir = common::repo().join("tests/fixtures/bad-qdq");
    let output = check(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        common::stderr(&output)
    );
    assert!(stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn image_that_does_not_decode_gives_an_error_record_and_the_rest_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let samples: Vec<_> = std::fs::read_dir(common::default_model().join("samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let corrupt = tmp.path().join("corrupt.png");
    let mut bytes = std::fs::read(&samples[0]).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&corrupt, bytes).unwrap();
    let text = tmp.path().join("text.png");
    std::fs::write(&text, "hello").unwrap();
    let model = common::default_model();
    let args = [
        "infer",
        "--model",
        model.to_str().unwrap(),
        samples[0].to_str().unwrap(),
        corrupt.to_str().unwrap(),
        text.to_str().unwrap(),
        samples[1].to_str().unwrap(),
    ];
    let output = edgevit(&args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "some inputs failed: {}",
        common::stderr(&output)
    );
    let lines = common::json_lines(&output);
    assert_eq!(lines.len(), 4, "one line per input");
    assert!(lines[0]["top"].is_array());
    assert_eq!(lines[1]["error"]["stage"], "preprocess");
    assert!(lines[1]["input"].as_str().unwrap().ends_with("corrupt.png"));
    assert_eq!(lines[2]["error"]["stage"], "source");
    assert!(lines[2]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("text.png"));
    assert!(lines[3]["top"].is_array());
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
}

#[test]
fn unknown_config_key_names_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let config = common::write_config(
        tmp.path(),
        "[source]\nkind = \"pattern\"\nframes = 1\n[model]\npath = \"{model}\"\n\
         [sink]\nkind = \"stdout\"\nformat = \"csv\"\n",
    );
    let output = edgevit(&["run", "--config", config.to_str().unwrap()]);
    assert_clean_failure(&output, &["edgevit.toml", "sink", "unknown field `format`"]);
}

#[test]
fn missing_config_file_is_named() {
    let output = edgevit(&["run", "--config", "/nonexistent/edgevit.toml"]);
    assert_clean_failure(
        &output,
        &["cannot read config file /nonexistent/edgevit.toml"],
    );
}
