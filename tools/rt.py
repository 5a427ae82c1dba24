"""Shared helpers: run an ONNX file with ONNX Runtime or with tract (python binding),
and time it. Used by quantize.py, make_package.py, ort_reference.py, osnet_ort_reference.py, bench_ort.py.

tract path: tract.onnx().load(path) -> into_model() -> into_runnable().
In tract 0.23 `into_runnable()` prepares the model with the DefaultRuntime, which is
`model.into_optimized()?.into_runnable()`: the same optimised path as the Rust
runtime's `model_for_path -> into_optimized -> into_runnable`.
"""
import json
import os
import statistics
import time

import numpy as np


ORT_LEVELS = ("none", "basic", "extended", "all")


def ort_session(path, threads=1, level="basic"):
    """ONNX Runtime CPU session.

    level: graph optimisation level. "basic" (the default here, and what the
    package self-tests store) only folds constants and removes redundancies, so
    it computes exactly what the ONNX graph says. "extended"/"all" (ORT's own
    default is "all") also fuse DequantizeLinear->MatMul into ORT-specific int8
    kernels that quantize activations too: faster or not, but a different
    function from the one the graph describes.
    """
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_run(path_or_sess, x, threads=1, level="basic"):
    sess = ort_session(path_or_sess, threads, level) if isinstance(path_or_sess, str) else path_or_sess
    names = [o.name for o in sess.get_outputs()]
    outs = sess.run(None, {sess.get_inputs()[0].name: x})
    return dict(zip(names, outs))


def output_names(path):
    import onnx
    return [o.name for o in onnx.load(path, load_external_data=False).graph.output]


def tract_runnable(path, input_shape=None):
    """Optimised tract runnable for an ONNX file (input fact fixed when input_shape given)."""
    import tract
    m = tract.onnx().load(path)
    if input_shape is not None:
        m.set_input_fact(0, ",".join(str(d) for d in input_shape) + ",f32")
    return m.into_model().into_runnable()


def tract_run(runnable_or_path, x, names=None):
    r = runnable_or_path
    if isinstance(r, str):
        names = names or output_names(r)
        r = tract_runnable(r, x.shape)
    outs = r.run([np.ascontiguousarray(x, dtype=np.float32)])
    arrs = [o.to_numpy() for o in outs]
    return dict(zip(names, arrs)) if names else arrs


def median_ms(fn, runs=30, warmup=3):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts), ts


def max_abs_diff(a, b):
    return {k: float(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)).max()) for k in a}


def write_summary(out_dir, summary):
    """Writes summary.json into out_dir and prints it."""
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    print(json.dumps(summary, indent=2))
