//! Quantized activations that several nodes read, and giving each reader its own
//! QuantizeLinear -> DequantizeLinear pair.
//!
//! ONNX Runtime fuses a DequantizeLinear -> MatMul -> QuantizeLinear group into one int8
//! kernel only where the DequantizeLinear has that one reader. A static QDQ export of a ViT
//! whose query, key and value are three matmuls (Hugging Face's ViT, DeiT, DINOv2) quantizes
//! the normalised tokens once, for all three: ONNX Runtime then runs those three matmuls on
//! float or per-block kernels instead. A copy of the pair per reader is the same arithmetic
//! (each copy rounds the same tensor the same way) in the form the fusion takes.

use std::collections::{HashMap, HashSet};
use tract_onnx::pb::{GraphProto, NodeProto};

/// A QuantizeLinear -> DequantizeLinear pair whose output more than one node reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedPair {
    /// Indices of the two nodes in the graph's node list.
    pub quantize: usize,
    pub dequantize: usize,
    /// Each reading: the reader's index and the input slot that reads the pair's output.
    pub readers: Vec<(usize, usize)>,
}

/// The shared pairs among nodes given as (operator, inputs, outputs), in the graph's order.
pub fn shared_pairs<'a>(
    nodes: impl IntoIterator<Item = (&'a str, &'a [String], &'a [String])>,
) -> Vec<SharedPair> {
    let nodes: Vec<_> = nodes.into_iter().collect();
    let mut producer: HashMap<&str, usize> = HashMap::new();
    let mut readers: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
    for (index, (_, inputs, outputs)) in nodes.iter().enumerate() {
        for output in outputs.iter() {
            producer.insert(output, index);
        }
        for (slot, input) in inputs.iter().enumerate().filter(|(_, i)| !i.is_empty()) {
            readers.entry(input).or_default().push((index, slot));
        }
    }
    nodes
        .iter()
        .enumerate()
        .filter(|(_, (operator, _, _))| *operator == "DequantizeLinear")
        .filter_map(|(dequantize, (_, inputs, outputs))| {
            let quantize = *producer.get(inputs.first()?.as_str())?;
            let readers = readers.get(outputs.first()?.as_str())?;
            (nodes[quantize].0 == "QuantizeLinear" && readers.len() > 1).then(|| SharedPair {
                quantize,
                dequantize,
                readers: readers.clone(),
            })
        })
        .collect()
}

/// The shared pairs of a decoded graph.
pub fn shared_pairs_in(graph: &GraphProto) -> Vec<SharedPair> {
    shared_pairs(
        graph
            .node
            .iter()
            .map(|n| (n.op_type.as_str(), n.input.as_slice(), n.output.as_slice())),
    )
}

/// Gives every reader of a shared pair but the first its own copy of the pair, placed right
/// after the original so that the node list stays in topological order. Returns how many
/// copies were added.
pub fn dedicate_pairs(graph: &mut GraphProto) -> usize {
    let pairs = shared_pairs_in(graph);
    if pairs.is_empty() {
        return 0;
    }
    let mut taken = names_in(graph);
    let mut copies_after: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    let mut renames = Vec::new();
    for pair in &pairs {
        for (copy, &(reader, slot)) in pair.readers.iter().enumerate().skip(1) {
            let mut quantize = graph.node[pair.quantize].clone();
            let mut dequantize = graph.node[pair.dequantize].clone();
            let quantized = fresh(&mut taken, &quantize.output[0], copy);
            let dequantized = fresh(&mut taken, &dequantize.output[0], copy);
            for node in [&mut quantize, &mut dequantize] {
                if !node.name.is_empty() {
                    node.name = fresh(&mut taken, &node.name, copy);
                }
            }
            quantize.output = vec![quantized.clone()];
            dequantize.input[0] = quantized;
            dequantize.output = vec![dequantized.clone()];
            renames.push((reader, slot, dequantized));
            copies_after
                .entry(pair.dequantize)
                .or_default()
                .extend([quantize, dequantize]);
        }
    }
    for (reader, slot, name) in renames.iter() {
        graph.node[*reader].input[*slot] = name.clone();
    }
    let nodes = std::mem::take(&mut graph.node);
    for (index, node) in nodes.into_iter().enumerate() {
        graph.node.push(node);
        graph
            .node
            .extend(copies_after.remove(&index).unwrap_or_default());
    }
    renames.len()
}

/// Every name of a tensor or node in the graph, which a copy's names must not take.
fn names_in(graph: &GraphProto) -> HashSet<String> {
    let nodes = graph.node.iter().flat_map(|n| {
        n.input
            .iter()
            .chain(&n.output)
            .chain(std::iter::once(&n.name))
    });
    let values = graph
        .input
        .iter()
        .chain(&graph.output)
        .chain(&graph.value_info)
        .map(|v| &v.name);
    let constants = graph.initializer.iter().map(|t| &t.name);
    nodes.chain(values).chain(constants).cloned().collect()
}

/// `base` with a suffix no name in the graph has.
fn fresh(taken: &mut HashSet<String>, base: &str, copy: usize) -> String {
    let mut attempt = 0;
    loop {
        let name = match attempt {
            0 => format!("{base}_reader{copy}"),
            n => format!("{base}_reader{copy}_{n}"),
        };
        if taken.insert(name.clone()) {
            return name;
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::{dedicate_pairs, shared_pairs_in};
    use std::collections::HashSet;
    use tract_onnx::pb::{GraphProto, NodeProto, TensorProto, ValueInfoProto};

    fn node(op: &str, name: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: name.into(),
            input: inputs.iter().map(|i| i.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        }
    }

    /// Normalised tokens quantized once and read by the query, key and value matmuls, whose
    /// int8 weights are dequantized constants; the value's weights are read twice.
    fn attention_inputs() -> GraphProto {
        let constant = |name: &str| TensorProto {
            name: name.into(),
            ..Default::default()
        };
        let value = |name: &str| ValueInfoProto {
            name: name.into(),
            ..Default::default()
        };
        GraphProto {
            input: vec![value("x")],
            output: vec![value("sum"), value("xd")],
            initializer: ["scale", "zero", "wq", "wk", "ws", "wz"]
                .map(constant)
                .to_vec(),
            node: vec![
                node("LayerNormalization", "norm", &["x"], "tokens"),
                node("QuantizeLinear", "q", &["tokens", "scale", "zero"], "xq"),
                node("DequantizeLinear", "dq", &["xq", "scale", "zero"], "xd"),
                node("DequantizeLinear", "wdq", &["wq", "ws", "wz"], "w"),
                node("MatMul", "query", &["xd", "w"], "query"),
                // A name a copy would take, already in the graph.
                node("MatMul", "xd_reader1", &["xd", "w"], "key"),
                node("MatMul", "value", &["xd", "w"], "value"),
                node("Sum", "sum", &["query", "key", "value"], "sum"),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_pair_read_by_three_matmuls_is_found_and_constants_are_not() {
        let pairs = shared_pairs_in(&attention_inputs());
        assert_eq!(pairs.len(), 1, "{pairs:?}");
        assert_eq!((pairs[0].quantize, pairs[0].dequantize), (1, 2));
        assert_eq!(pairs[0].readers, [(4, 0), (5, 0), (6, 0)]);
    }

    #[test]
    fn each_reader_gets_its_own_pair_in_topological_order() {
        let mut graph = attention_inputs();
        assert_eq!(dedicate_pairs(&mut graph), 2);
        assert!(shared_pairs_in(&graph).is_empty());

        // Each matmul reads its own dequantized tokens, each from its own QuantizeLinear of
        // the same tensor with the same scale and zero point.
        let producer = |tensor: &str| {
            graph
                .node
                .iter()
                .find(|n| n.output.iter().any(|o| o == tensor))
                .unwrap_or_else(|| panic!("nothing writes {tensor}"))
        };
        let mut read = HashSet::new();
        for matmul in ["query", "xd_reader1", "value"] {
            let reader = graph.node.iter().find(|n| n.name == matmul).unwrap();
            let dequantize = producer(&reader.input[0]);
            assert_eq!(dequantize.op_type, "DequantizeLinear");
            assert_eq!(dequantize.input[1..], ["scale", "zero"]);
            let quantize = producer(&dequantize.input[0]);
            assert_eq!(quantize.op_type, "QuantizeLinear");
            assert_eq!(quantize.input, ["tokens", "scale", "zero"]);
            assert!(read.insert(reader.input[0].clone()), "{read:?}");
            assert_eq!(reader.input[1], "w", "the constants' pair is not copied");
        }
        // The graph's output keeps the original pair.
        assert_eq!(producer("xd").name, "dq");

        // Every tensor is written before it is read, and no name is taken twice.
        let mut known: HashSet<String> = ["x", "scale", "zero", "wq", "ws", "wz"]
            .map(String::from)
            .into();
        let mut names = HashSet::new();
        for node in &graph.node {
            for input in &node.input {
                assert!(known.contains(input), "{} reads {input} first", node.name);
            }
            known.extend(node.output.iter().cloned());
            assert!(names.insert(node.name.clone()), "two nodes {}", node.name);
        }
        assert_eq!(graph.node.len(), 12);
        assert_eq!(dedicate_pairs(&mut graph), 0, "nothing left to copy");
    }
}
