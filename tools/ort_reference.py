#!/usr/bin/env python3
"""ONNX Runtime reference outputs for the third-party vit4mnist model.

Model: <shared>/reference/vit4mnist/vit4mnist.onnx (input `input` [batch,1,28,28],
output `logits` [batch,10]). Data: the 300 PNGs of <shared>/reference/mnist-dev/
(labels in labels.csv), in sorted file-name order, each run alone (batch 1).
Preprocessing: grey / 255, then (x - 0.1307) / 0.3081, no resize.

Writes (nothing from shared/ is copied):
  tests/fixtures/vit4mnist_ort/logits.npy     [300, 10] f32, ORT outputs
  tests/fixtures/vit4mnist_ort/files.txt      the file names, one per line, same order
  tests/fixtures/vit4mnist_ort/summary.json   ORT version, top-1 accuracy, tract check

Also runs the same inputs through tract (python binding, optimised) and reports
the max abs diff of its logits from ORT's (the Rust runtime uses the same engine).

  python tools/ort_reference.py [--shared /work/shared]
"""
import argparse
import csv
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import rt  # noqa: E402

MEAN, STD = 0.1307, 0.3081


def load_inputs(dev_dir):
    files = sorted(f for f in os.listdir(dev_dir) if f.lower().endswith(".png"))
    xs = []
    for f in files:
        a = np.asarray(Image.open(os.path.join(dev_dir, f)).convert("L"), dtype=np.float32)
        if a.shape != (28, 28):
            raise ValueError(f"{f}: {a.shape}, expected 28x28")
        xs.append(((a / 255.0 - MEAN) / STD)[None, None].astype(np.float32))
    return files, xs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.environ.get("EDGEVIT_SHARED", os.path.join(os.path.dirname(ROOT), "shared")))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "vit4mnist_ort"))
    args = ap.parse_args()
    ref = os.path.join(args.shared, "reference")
    model = os.path.join(ref, "vit4mnist", "vit4mnist.onnx")
    dev = os.path.join(ref, "mnist-dev")

    import onnxruntime as ort
    files, xs = load_inputs(dev)
    with open(os.path.join(dev, "labels.csv"), newline="") as f:
        labels = {r["file"]: int(r["label"]) for r in csv.DictReader(f)}
    y = np.array([labels[f] for f in files])

    sess = rt.ort_session(model, threads=1, level="basic")
    logits = np.concatenate([rt.ort_run(sess, x)["logits"] for x in xs]).astype(np.float32)
    acc = float((logits.argmax(1) == y).mean())

    tr = rt.tract_runnable(model, (1, 1, 28, 28))
    tl = np.concatenate([rt.tract_run(tr, x, ["logits"])["logits"] for x in xs])
    tract_diff = float(np.abs(tl - logits).max())
    tract_acc = float((tl.argmax(1) == y).mean())

    # ORT's default (level "all") for the record
    sess_all = rt.ort_session(model, threads=1, level="all")
    la = np.concatenate([rt.ort_run(sess_all, x)["logits"] for x in xs])

    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "logits.npy"), np.ascontiguousarray(logits))
    with open(os.path.join(args.out, "files.txt"), "w") as f:
        f.write("\n".join(files) + "\n")
    import tract
    summary = {
        "model": "vit4mnist.onnx (shared/reference/vit4mnist)",
        "data": "shared/reference/mnist-dev, sorted by file name, batch 1 each",
        "count": len(files),
        "preprocessing": "grey/255, (x-0.1307)/0.3081, no resize",
        "onnxruntime_version": ort.__version__,
        "onnxruntime_settings": "CPUExecutionProvider, 1 thread, graph_optimization_level ORT_ENABLE_BASIC",
        "top1_accuracy": acc,
        "correct": int((logits.argmax(1) == y).sum()),
        "tract_version": tract.version(),
        "tract_max_abs_diff_vs_ort": tract_diff,
        "tract_top1_accuracy": tract_acc,
        "ort_level_all_max_abs_diff_vs_stored": float(np.abs(la - logits).max()),
    }
    rt.write_summary(args.out, summary)


if __name__ == "__main__":
    main()
