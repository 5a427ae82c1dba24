#!/usr/bin/env python3
"""What ONNX Runtime's Q/DQ cleanup (`[backend.ort] qdq_cleanup`, on by default) does to speed
and accuracy, on the ONNX Runtime build that edgevit's `ort` backend loads.

- Speed: the bundled static QDQ ViT-Tiny (`models/vit-tiny-qdq`), one thread, the pairs kept
  against dropped, in interleaved rounds (in a random order each round).
- Accuracy on real weights, each quantized here to the bundled QDQ form (`tools/quantize.py
  --form qdq-constb-pc-sym`: int8 weight matmuls, per channel, symmetric activations):
  - vit4mnist (../shared), calibrated on the first 100 mnist-dev digits: top-1 on all 300;
  - DINOv2 ViT-S (../shared), calibrated on ../shared's 7 images: its saliency map against the
    f32 model's on those images and their mirror images (correlation, largest difference).
- The optimised graphs: what the cleanup removes and what ONNX Runtime then fuses.

Not run in CI. Needs the venv of bench/compare (onnxruntime, onnx, OpenCV, numpy):

    bench/compare/.venv/bin/python bench/qdq_cleanup.py [--rounds 12] [--shared ../shared]
"""
import argparse
import collections
import csv
import glob
import os
import random
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime import quantization

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
from quantize import weight_nodes  # noqa: E402

CLEANUP = "session.enable_quant_qdq_cleanup"
IMAGENET = (np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32))


def session(path, cleanup, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL, save=None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = level
    options.add_session_config_entry(CLEANUP, "1" if cleanup else "0")
    if save:
        options.optimized_model_filepath = save
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def quantize_qdq(src, dst, name, calibration):
    """The bundled QDQ form (tools/quantize.py --form qdq-constb-pc-sym), calibrated on these."""
    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.inputs = iter({name: x} for x in calibration)

        def get_next(self):
            return next(self.inputs, None)

    with tempfile.TemporaryDirectory() as work:
        pre = os.path.join(work, "pre.onnx")
        quantization.quant_pre_process(src, pre, skip_symbolic_shape=True)
        quantization.quantize_static(
            pre, dst, Reader(), quant_format=quantization.QuantFormat.QDQ,
            activation_type=quantization.QuantType.QInt8, weight_type=quantization.QuantType.QInt8,
            calibrate_method=quantization.CalibrationMethod.MinMax, per_channel=True,
            op_types_to_quantize=["MatMul", "Gemm", "Conv"], nodes_to_quantize=weight_nodes(onnx.load(pre)),
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})


def speed(path, rounds):
    sessions = {"kept": session(path, False), "dropped": session(path, True)}
    name = sessions["kept"].get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal([1, 3, 224, 224]).astype(np.float32)
    for s in sessions.values():
        s.run(None, {name: x})
    times = {key: [] for key in sessions}
    order = list(sessions)
    random.seed(1)
    for _ in range(rounds):
        random.shuffle(order)
        for key in order:
            for _ in range(10):
                start = time.perf_counter()
                sessions[key].run(None, {name: x})
                times[key].append((time.perf_counter() - start) * 1000)
    kept, dropped = statistics.median(times["kept"]), statistics.median(times["dropped"])
    print(f"vit-tiny-qdq, 1 thread, {rounds} rounds x 10 runs: pairs kept {kept:.2f} ms, dropped "
          f"{dropped:.2f} ms (medians; {kept / dropped:.2f}x)")


def graphs(path, work):
    for level, label in ((ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, "basic"),
                         (ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "all")):
        for cleanup in (False, True):
            saved = os.path.join(work, f"{label}-{cleanup}.onnx")
            session(path, cleanup, level, save=saved)
            ops = collections.Counter(n.op_type for n in onnx.load(saved).graph.node)
            print(f"  {label:5s} pairs {'dropped' if cleanup else 'kept   '}: {sum(ops.values())} nodes, "
                  f"{ops['QuantizeLinear']} Q, {ops['DequantizeLinear']} DQ, {ops['Gelu']} Gelu, {ops['Erf']} Erf")


def vit4mnist(shared, work):
    digits = os.path.join(shared, "reference/mnist-dev")
    rows = list(csv.reader(open(os.path.join(digits, "labels.csv"))))[1:]
    xs = [((cv2.imread(os.path.join(digits, f), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255 - 0.1307)
           / 0.3081)[None, None] for f, _ in rows]
    labels = [int(label) for _, label in rows]
    src = os.path.join(shared, "reference/vit4mnist/vit4mnist.onnx")
    name = ort.InferenceSession(src).get_inputs()[0].name
    qdq = os.path.join(work, "vit4mnist-qdq.onnx")
    quantize_qdq(src, qdq, name, xs[:100])
    f32 = [session(src, False).run(None, {name: x})[0] for x in xs]
    print(f"vit4mnist on {len(xs)} mnist-dev digits: f32 {sum(o.argmax() == y for o, y in zip(f32, labels))} right")
    for cleanup in (False, True):
        s = session(qdq, cleanup)
        out = [s.run(None, {name: x})[0] for x in xs]
        right = sum(o.argmax() == y for o, y in zip(out, labels))
        same = sum(o.argmax() == r.argmax() for o, r in zip(out, f32))
        worst = max(float(np.abs(o - r).max()) for o, r in zip(out, f32))
        print(f"  QDQ, pairs {'dropped' if cleanup else 'kept   '}: {right} right, top-1 of f32 on {same}, "
              f"logits within {worst:.3f} of f32")


def dinov2(shared, work):
    def prepare(path):
        rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        rgb = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        return ((rgb - IMAGENET[0]) / IMAGENET[1]).transpose(2, 0, 1)[None].astype(np.float32)

    xs = [prepare(p) for p in sorted(glob.glob(os.path.join(shared, "reference/images/*")))]
    calibration = list(xs)
    xs += [np.ascontiguousarray(x[:, :, :, ::-1]) for x in xs]
    src = os.path.join(shared, "reference/dinov2-s-focus/vit_s_focus.onnx")
    name = ort.InferenceSession(src).get_inputs()[0].name
    qdq = os.path.join(work, "dinov2-qdq.onnx")
    quantize_qdq(src, qdq, name, calibration)
    f32 = [session(src, False).run(None, {name: x})[0] for x in xs]

    def correlation(a, b):
        a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
        return float(a @ b / np.sqrt((a @ a) * (b @ b)))

    print(f"DINOv2 ViT-S saliency on {len(xs)} images (../shared's and their mirror images), against f32:")
    for cleanup in (False, True):
        s = session(qdq, cleanup)
        out = [s.run(None, {name: x})[0] for x in xs]
        print(f"  QDQ, pairs {'dropped' if cleanup else 'kept   '}: correlation >= "
              f"{min(correlation(o, r) for o, r in zip(out, f32)):.4f}, largest difference "
              f"{max(float(np.abs(o - r).max()) for o, r in zip(out, f32)):.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--shared", default=os.environ.get("EDGEVIT_SHARED_DIR", os.path.join(ROOT, "../shared")))
    args = ap.parse_args()
    print(f"ONNX Runtime {ort.__version__}")
    bundled = os.path.join(ROOT, "models/vit-tiny-qdq/model.onnx")
    speed(bundled, args.rounds)
    with tempfile.TemporaryDirectory() as work:
        print("vit-tiny-qdq's optimised graph:")
        graphs(bundled, work)
        vit4mnist(args.shared, work)
        dinov2(args.shared, work)


if __name__ == "__main__":
    main()
