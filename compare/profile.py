#!/usr/bin/env python3
"""Where ONNX Runtime's time goes in one model, by the op classes of `edgevit bench --profile`
(tract's side), from ONNX Runtime's own profiler (`enable_profiling`).

    python3 compare/profile.py MODEL.onnx [--threads 1] [--runs 20] [--level all]

Prints one JSON line: the median per run of each class's time (each node's kernel time summed
over the class), and the median of whole runs. Needs onnx, onnxruntime and numpy (pip).
Weight matmuls are told from attention matmuls by the original graph: a MatMul or Gemm with a
weight (an initializer, or a chain of DequantizeLinear/Cast/Transpose from one) is a weight
matmul; nodes ONNX Runtime made by fusion are classed by their op type.
"""
import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
MATMULS = ("MatMul", "Gemm", "MatMulInteger", "QLinearMatMul", "FusedMatMul", "MatMulNBits")


def weighted(graph):
    """Names of the tensors that are weights: initializers, and what only they feed through
    DequantizeLinear, Cast, Transpose, Reshape or Constant."""
    known = {i.name for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            known.update(node.output)
    changed = True
    while changed:
        changed = False
        for node in graph.node:
            if node.op_type in ("DequantizeLinear", "Cast", "Transpose", "Reshape", "Unsqueeze") and node.input:
                if node.input[0] in known and not set(node.output) <= known:
                    known.update(node.output)
                    changed = True
    return known


def classes(graph):
    """Node name -> class, for the nodes of the original graph."""
    weights = weighted(graph)
    out = {}
    for node in graph.node:
        if node.op_type in MATMULS:
            out[node.name] = "weight matmul" if any(i in weights for i in node.input) else "attention matmul"
    return out


def class_of(op, name, known):
    if name in known:
        return known[name]
    o = op.lower()
    if "quantize" in o:
        return "quantize / dequantize"
    if op in ("Attention", "MultiHeadAttention", "FusedMatMul"):
        return "attention matmul"
    if op in MATMULS:
        return "weight matmul"
    if "softmax" in o:
        return "softmax"
    if "norm" in o or "reduce" in o or op in ("Sqrt", "Pow"):
        return "norm"
    if "gelu" in o or op == "Erf":
        return "gelu / erf"
    if "conv" in o:
        return "conv"
    if op in ("Transpose", "Reshape", "Concat", "Slice", "Gather", "Split", "Squeeze", "Unsqueeze", "Flatten", "Expand"):
        return "copies"
    return "element-wise, other"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--level", choices=LEVELS, default="all")
    args = ap.parse_args()
    graph = onnx.load(args.model).graph
    known = classes(graph)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = LEVELS[args.level]
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.mkdtemp(prefix="ort-profile-"), "p")
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in first.shape]
    feed = {first.name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    for _ in range(args.warmup):
        session.run(None, feed)
    whole = []
    for _ in range(args.runs):
        start = time.perf_counter()
        session.run(None, feed)
        whole.append((time.perf_counter() - start) * 1e3)
    trace = json.load(open(session.end_profiling()))
    runs = [e for e in trace if e.get("name") == "model_run"]
    kernels = [e for e in trace if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    timed = runs[args.warmup:]
    per_run = []
    for run in timed:
        lo, hi = run["ts"], run["ts"] + run["dur"]
        sums = {}
        for k in kernels:
            if lo <= k["ts"] <= hi:
                name = k["name"][: -len("_kernel_time")]
                c = class_of(k["args"].get("op_name", ""), name, known)
                sums[c] = sums.get(c, 0.0) + k["dur"] / 1e3
        per_run.append(sums)
    names = sorted({c for s in per_run for c in s})
    table = {c: statistics.median(s.get(c, 0.0) for s in per_run) for c in names}
    print(json.dumps({"model": os.path.basename(args.model), "threads": args.threads, "level": args.level,
                      "run_ms": statistics.median(whole), "classes_ms": table}))


if __name__ == "__main__":
    main()
