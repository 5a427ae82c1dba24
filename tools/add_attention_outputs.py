#!/usr/bin/env python3
"""Give an exported ViT its attention as graph outputs, for backends that cannot read tensors
inside a graph (an NPU file compiled ahead of time, ONNX Runtime without the intermediate
outputs).

Finds the attention probabilities of every block (a Softmax over the last axis whose output,
after ONNX shape inference, is [1, heads, T, T], in graph order), then either:

  --mode maps     adds them as outputs attn_0 .. attn_{L-1}: `[outputs] attention = [...]`
  --mode rollout  adds the rolled-out class-token map computed in the graph, output `rollout`
                  [1, patches] (heads averaged, + identity, rows renormalised, multiplied
                  through the blocks; the class token's row after `--prefix` tokens):
                  `[outputs] rollout = "rollout"`; a few hundred floats instead of L maps.

The result is checked with ONNX Runtime against the same rollout in numpy.

  tools/.venv/bin/python tools/add_attention_outputs.py IN.onnx OUT.onnx --mode rollout
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference


def attention_softmaxes(model):
    inferred = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    found = []
    for node in model.graph.node:
        if node.op_type != "Softmax":
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
        dims = shapes.get(node.output[0])
        if dims and len(dims) == 4 and axis in (-1, 3) and dims[2] == dims[3] and dims[2]:
            found.append((node.output[0], dims))
    if found:
        tokens = found[0][1][2]
        found = [f for f in found if f[1][2] == tokens]
    return found


def add_rollout(model, names, tokens, prefix):
    g = model.graph
    eye = numpy_helper.from_array(np.eye(tokens, dtype=np.float32), "rollout_eye")
    g.initializer.extend([
        eye,
        numpy_helper.from_array(np.array([1], dtype=np.int64), "rollout_axis1"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "rollout_zero"),
        numpy_helper.from_array(np.array([prefix], dtype=np.int64), "rollout_start"),
        numpy_helper.from_array(np.array([tokens], dtype=np.int64), "rollout_end"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "rollout_one"),
    ])
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    previous = None
    for n, name in enumerate(names):
        p = f"rollout_{n}"
        # ReduceMean takes its axes as an input from opset 18 on, as an attribute before.
        mean = (helper.make_node("ReduceMean", [name, "rollout_axis1"], [f"{p}_mean"], keepdims=0) if opset >= 18
                else helper.make_node("ReduceMean", [name], [f"{p}_mean"], axes=[1], keepdims=0))
        g.node.extend([
            mean,  # [1, T, T]
            helper.make_node("Add", [f"{p}_mean", "rollout_eye"], [f"{p}_res"]),
            helper.make_node("ReduceSum", [f"{p}_res", "rollout_axis1_last"], [f"{p}_sum"], keepdims=1),
            helper.make_node("Div", [f"{p}_res", f"{p}_sum"], [f"{p}_norm"]),
        ])
        if previous is None:
            previous = f"{p}_norm"
        else:
            g.node.append(helper.make_node("MatMul", [f"{p}_norm", previous], [f"{p}_joint"]))
            previous = f"{p}_joint"
    g.initializer.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "rollout_axis1_last"))
    g.node.extend([
        # [1, T, T] -> row 0 -> [1, 1, T] -> tokens after the prefix -> [1, patches]
        helper.make_node("Slice", [previous, "rollout_zero", "rollout_one", "rollout_axis1"], ["rollout_row"]),
        helper.make_node("Squeeze", ["rollout_row", "rollout_axis1"], ["rollout_flat"]),
        helper.make_node("Slice", ["rollout_flat", "rollout_start", "rollout_end", "rollout_axis1"], ["rollout"]),
    ])
    g.output.append(helper.make_tensor_value_info("rollout", TensorProto.FLOAT, [1, tokens - prefix]))


def numpy_rollout(attentions, prefix):
    tokens = attentions[0].shape[-1]
    joint = None
    for a in attentions:
        m = a[0].mean(0) + np.eye(tokens)
        m = m / m.sum(-1, keepdims=True)
        joint = m if joint is None else m @ joint
    return joint[0, prefix:]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--mode", choices=["maps", "rollout"], required=True)
    ap.add_argument("--prefix", type=int, default=1, help="class token + register tokens (default 1)")
    args = ap.parse_args()
    model = onnx.load(args.input)
    found = attention_softmaxes(model)
    if not found:
        sys.exit(f"{args.input}: no attention found (no Softmax over a [1, heads, T, T] tensor)")
    names = [name for name, _ in found]
    tokens = found[0][1][2]
    print(f"{len(names)} attention blocks, {found[0][1][1]} heads, {tokens} tokens")
    if args.mode == "maps":
        for n, name in enumerate(names):
            model.graph.node.append(helper.make_node("Identity", [name], [f"attn_{n}"]))
            model.graph.output.append(helper.make_tensor_value_info(f"attn_{n}", TensorProto.FLOAT, found[n][1]))
    else:
        add_rollout(model, names, tokens, args.prefix)
    onnx.checker.check_model(model)
    onnx.save(model, args.output)

    import onnxruntime as ort
    probe = onnx.load(args.output)
    for name in names:
        probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    shape = [d.dim_value or 1 for d in probe.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {probe.graph.input[0].name: x})))
    if args.mode == "rollout":
        expected = numpy_rollout([outputs[n] for n in names], args.prefix)
        worst = float(np.abs(outputs["rollout"][0] - expected).max())
        print(f"rollout in the graph vs numpy: worst {worst:.2e}")
        if worst > 1e-5:
            sys.exit("the in-graph rollout does not match numpy")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
