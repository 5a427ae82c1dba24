#!/usr/bin/env python3
"""A numpy reference for attention rollout, on a real ViT's attention computed by ONNX Runtime.

Model: <shared>/reference/dinov2-s-focus/vit_s_focus.onnx (DINOv2 ViT-S/14, 224x224, 12 blocks,
6 heads, 257 tokens); its Softmax outputs `/backbone/encoder/layer.N/attention/attention/
Softmax_output_0` are added as graph outputs (in memory; nothing of shared/ is copied).
Image: <shared>/reference/images/chelsea.png, stretched to 224x224 (Pillow bilinear), ImageNet
normalisation.

Rollout (Abnar & Zuidema 2020): per block the heads averaged, + identity, rows renormalised;
R = A_12' ... A_1'; the class token's row over the 256 patches, as a 16x16 grid. Also the last
block's class-token attention alone (heads averaged).

Writes tests/fixtures/attention_ref/:
  input.npy    [1,3,224,224] uint8, the resized RGB input (CHW); the test normalises it
  rollout.npy  [16,16] f32, the rolled-out class-token map
  last.npy     [16,16] f32, the last block's class-token map
  summary.json ORT version, where the maps peak

  tools/.venv/bin/python tools/attention_reference.py [--shared ../shared]
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import rt  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]
BLOCKS = 12


def rollout(attentions):
    tokens = attentions[0].shape[-1]
    result = np.eye(tokens, dtype=np.float64)
    for a in attentions:
        mean = a[0].astype(np.float64).mean(axis=0) + np.eye(tokens)
        mean /= mean.sum(axis=1, keepdims=True)
        result = mean @ result
    return result[0, 1:]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.environ.get("EDGEVIT_SHARED", os.path.join(os.path.dirname(ROOT), "shared")))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "attention_ref"))
    args = ap.parse_args()
    ref = os.path.join(args.shared, "reference")
    import onnx
    import onnxruntime as ort

    model = onnx.load(os.path.join(ref, "dinov2-s-focus", "vit_s_focus.onnx"))
    names = [f"/backbone/encoder/layer.{n}/attention/attention/Softmax_output_0" for n in range(BLOCKS)]
    for name in names:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    image = Image.open(os.path.join(ref, "images", "chelsea.png")).convert("RGB").resize((224, 224), Image.BILINEAR)
    chw = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)[None].copy()
    x = ((chw.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32)
    attentions = session.run(names, {"input_image": x})
    row = rollout(attentions).reshape(16, 16).astype(np.float32)
    last = attentions[-1][0].mean(axis=0)[0, 1:].reshape(16, 16).astype(np.float32)

    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "input.npy"), chw)
    np.save(os.path.join(args.out, "rollout.npy"), row)
    np.save(os.path.join(args.out, "last.npy"), last)
    rt.write_summary(args.out, {
        "onnxruntime": ort.__version__,
        "image": "chelsea.png stretched to 224x224",
        "rollout_peak_cell": [int(i) for i in np.unravel_index(row.argmax(), row.shape)],
        "last_peak_cell": [int(i) for i in np.unravel_index(last.argmax(), last.shape)],
        "rollout_sum": float(row.sum()),
    })


if __name__ == "__main__":
    main()
