#!/usr/bin/env python3
"""What two of edgevit's ONNX Runtime settings do to speed and accuracy, on the ONNX Runtime
build that edgevit's `ort` backend loads, against ONNX Runtime's defaults (a plain script's).

`qdq_cleanup` (on by default): the Q -> DQ pairs that no int8 kernel takes are dropped.
- Speed: the bundled static QDQ ViT-Tiny (`models/vit-tiny-qdq`), one thread, the pairs kept
  against dropped, in interleaved rounds (in a random order each round).
- Accuracy on real weights, each quantized here to the bundled QDQ form (`tools/quantize.py
  --form qdq-constb-pc-sym`: int8 weight matmuls, per channel, symmetric activations):
  - vit4mnist (../shared), calibrated on the first 100 mnist-dev digits: top-1 on all 300;
  - DINOv2 ViT-S (../shared), calibrated on ../shared's 7 images: its saliency map against the
    f32 model's on those images and their mirror images (correlation, largest difference).
- The optimised graphs: what the cleanup removes and what ONNX Runtime then fuses.

`dequantize_weights` (on by default): a weight-only int8 graph runs with its weights
dequantized to f32 at load (`session.disable_quant_qdq`) instead of ONNX Runtime's int8
kernels. On the bundled weight-only vit-mnist and ViT-Tiny, and DINOv2 ViT-S made weight-only
here (`tools/quantize.py`'s default form): time per inference (one thread, interleaved rounds),
the largest difference from ONNX Runtime at `basic` (the graph's own arithmetic), and the
resident set of a process that loaded the model and ran it 10 times.

Not run in CI. Needs the venv of compare/pipeline (onnxruntime, onnx, OpenCV, numpy):

    compare/pipeline/.venv/bin/python compare/ort_settings.py [--rounds 12] [--shared ../shared]
"""
import argparse
import collections
import csv
import glob
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
from quantize import quantize_static, weight_only_int8  # noqa: E402

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


def interleaved_medians(sessions, name, x, rounds):
    """Each session's median time per run (ms), over rounds of 10 runs each, the sessions in a
    new random order every round, so that a slow spell of a shared machine falls on all."""
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
    return {key: statistics.median(t) for key, t in times.items()}


def speed(path, rounds):
    sessions = {"kept": session(path, False), "dropped": session(path, True)}
    name = sessions["kept"].get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal([1, 3, 224, 224]).astype(np.float32)
    medians = interleaved_medians(sessions, name, x, rounds)
    kept, dropped = medians["kept"], medians["dropped"]
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
    quantize_static(src, qdq, "qdq-constb-pc-sym", xs[:100])
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


def shared_photos(shared):
    """../shared's photographs as DINOv2's inputs: RGB, 224x224, ImageNet normalisation."""
    def prepare(path):
        rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        rgb = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        return ((rgb - IMAGENET[0]) / IMAGENET[1]).transpose(2, 0, 1)[None].astype(np.float32)

    return [prepare(p) for p in sorted(glob.glob(os.path.join(shared, "reference/images/*")))]


def dinov2(shared, work):
    xs = shared_photos(shared)
    calibration = list(xs)
    xs += [np.ascontiguousarray(x[:, :, :, ::-1]) for x in xs]
    src = os.path.join(shared, "reference/dinov2-s-focus/vit_s_focus.onnx")
    name = ort.InferenceSession(src).get_inputs()[0].name
    qdq = os.path.join(work, "dinov2-qdq.onnx")
    quantize_static(src, qdq, "qdq-constb-pc-sym", calibration)
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


def weight_session(path, dequantize):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if dequantize:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def model_input(s):
    declared = s.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in declared.shape]
    return declared.name, np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def resident_after_runs(path, dequantize):
    """This script again, in a new process: load, run 10 times, print the resident set."""
    out = subprocess.run([sys.executable, __file__, "--resident", path, "1" if dequantize else "0"],
                         capture_output=True, text=True, check=True).stdout
    return out.strip()


def print_resident(path, dequantize):
    s = weight_session(path, dequantize)
    name, x = model_input(s)
    for _ in range(10):
        s.run(None, {name: x})
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    print(f"RSS {int(status['VmRSS'].split()[0]) / 1024:.1f} MB")


def weights(path, label, rounds):
    sessions = {"int8 kernels": weight_session(path, False), "f32 weights": weight_session(path, True)}
    name, x = model_input(sessions["int8 kernels"])
    basic = session(path, False, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC).run(None, {name: x})[0]
    medians = interleaved_medians(sessions, name, x, rounds)
    for key, s in sessions.items():
        worst = float(np.abs(s.run(None, {name: x})[0] - basic).max())
        print(f"  {label:14s} {key:12s}: {medians[key]:8.3f} ms (median of {rounds} x 10), "
              f"{worst:.1e} from `basic`, {resident_after_runs(path, key == 'f32 weights')}")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--resident":
        print_resident(sys.argv[2], sys.argv[3] == "1")
        return
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
        print("Weight-only int8, ONNX Runtime's int8 kernels against the weights in f32, one thread:")
        weights(os.path.join(ROOT, "models/vit-mnist/model.onnx"), "vit-mnist", args.rounds)
        weights(os.path.join(ROOT, "models/vit-tiny-int8/model.onnx"), "vit-tiny-int8", args.rounds)
        dinov2_weight_only = os.path.join(work, "dinov2-weight-only.onnx")
        model, _ = weight_only_int8(onnx.load(os.path.join(args.shared, "reference/dinov2-s-focus/vit_s_focus.onnx")))
        onnx.save(model, dinov2_weight_only)
        weights(dinov2_weight_only, "DINOv2 ViT-S", max(2, args.rounds // 4))


if __name__ == "__main__":
    main()
