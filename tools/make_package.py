#!/usr/bin/env python3
"""Write an edgevit model package: model.toml, the ONNX file, labels.txt, selftest/.

  <out>/model.toml
  <out>/model.onnx                 copy of --onnx
  <out>/labels.txt                 --labels FILE, or --labels digits (0..9); omitted otherwise
  <out>/selftest/input.npy         a real sample, preprocessed as [input] says (f32, N,C,H,W)
  <out>/selftest/<output>.npy      what ONNX Runtime (CPU, 1 thread, graph optimisation
                                   level "basic" = the exact ONNX semantics) gives for it,
                                   one file per output listed in [outputs]

The self-test tolerance is chosen from measurement unless --tolerance is given:
max abs diff between tract (python binding, optimised: into_model -> into_runnable,
which is into_optimized -> into_runnable) and ORT over the self-test input and a few
more inputs, times --margin (default 20), rounded up to a power of ten, at least 1e-4.

The sample image (--image) is preprocessed here as the runtime is documented to do:
convert to `color`, resize to H x W (stretch | center-crop: resize the shorter side
to the target, crop the centre | letterbox: fit inside, pad with 0), x / scale, then
(x - mean) / std per channel. The runtime does not need to reproduce this exactly:
the self-test stores the preprocessed tensor.

Examples:
  python tools/make_package.py --name vit-mnist --onnx tools/work/vit-mnist-int8.onnx \\
      --out models/vit-mnist --labels digits --color gray --mean 0.1307 --std 0.3081 \\
      --image models/vit-mnist/samples/digit-7-3.png --description "..."
  python tools/make_package.py --name vit-tiny-f32 --onnx tools/work/vit-tiny-f32.onnx \\
      --out models/vit-tiny-f32 --color rgb --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225 \\
      --resize center-crop --synthetic-image --attention --description "..."
"""
import argparse
import json
import os
import shutil
import sys
import tomllib

import numpy as np
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rt  # noqa: E402


def synthetic_image(w=320, h=256, seed=0):
    """A deterministic RGB picture (gradient + shapes) for models without real data."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (w + h)], -1).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    d = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        x1, y1 = x0 + int(rng.integers(20, 120)), y0 + int(rng.integers(20, 120))
        col = tuple(int(c) for c in rng.integers(0, 256, 3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)([x0, y0, x1, y1], fill=col)
    return img


def preprocess(img, shape, color, scale, mean, std, resize):
    n, c, h, w = shape
    img = img.convert("L" if color == "gray" else "RGB")
    if img.size != (w, h):
        if resize == "stretch":
            img = img.resize((w, h), Image.BILINEAR)
        elif resize == "center-crop":
            s = max(w / img.width, h / img.height)
            img = img.resize((max(w, round(img.width * s)), max(h, round(img.height * s))), Image.BILINEAR)
            l, t = (img.width - w) // 2, (img.height - h) // 2
            img = img.crop((l, t, l + w, t + h))
        elif resize == "letterbox":
            s = min(w / img.width, h / img.height)
            r = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.BILINEAR)
            canvas = Image.new(img.mode, (w, h), 0)
            canvas.paste(r, ((w - r.width) // 2, (h - r.height) // 2))
            img = canvas
        else:
            raise ValueError(resize)
    a = np.asarray(img, dtype=np.float32)
    a = a[:, :, None] if a.ndim == 2 else a
    if color == "bgr":
        a = a[:, :, ::-1]
    a = a / scale
    a = (a - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    x = np.ascontiguousarray(a.transpose(2, 0, 1)[None].astype(np.float32))
    assert x.shape == (n, c, h, w), (x.shape, shape)
    return x


def toml_str(s):
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def toml_list(xs):
    return "[" + ", ".join(toml_str(x) if isinstance(x, str) else repr(x) for x in xs) + "]"


def choose_tolerance(onnx_path, x, names, margin, extra=6, seed=0):
    """Max abs diff tract vs ORT (over x and `extra` perturbed inputs) x margin, power of ten."""
    r = rt.tract_runnable(onnx_path, x.shape)
    sess = rt.ort_session(onnx_path, threads=1, level="basic")
    rng = np.random.default_rng(seed)
    worst = 0.0
    xs = [x] + [(x + 0.1 * rng.standard_normal(x.shape)).astype(np.float32) for _ in range(extra)]
    every = rt.output_names(onnx_path)  # tract returns every output, in the graph's order
    for xi in xs:
        o, t = rt.ort_run(sess, xi), rt.tract_run(r, xi, every)
        d = rt.max_abs_diff({k: o[k] for k in names}, t)
        worst = max(worst, max(d[k] for k in names))
    tol = max(1e-4, 10 ** np.ceil(np.log10(max(worst, 1e-12) * margin)))
    return float(tol), worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--task", default="classify", choices=["classify", "reid"])
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--description", required=True)
    ap.add_argument("--labels", help="labels file, or 'digits' for 0..9")
    ap.add_argument("--color", default="rgb", choices=["rgb", "bgr", "gray"])
    ap.add_argument("--scale", type=float, default=255.0)
    ap.add_argument("--mean", type=float, nargs="+", required=True)
    ap.add_argument("--std", type=float, nargs="+", required=True)
    ap.add_argument("--resize", default="stretch", choices=["stretch", "center-crop", "letterbox"])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", help="sample image for the self-test")
    src.add_argument("--synthetic-image", action="store_true", help="use a generated picture")
    ap.add_argument("--attention", action="store_true", help="list attn_* outputs in [outputs]")
    ap.add_argument("--attention-auto", action="store_true",
                    help='write `attention = "auto"`: edgevit finds the attention in the graph')
    ap.add_argument("--tolerance", type=float, help="self-test tolerance (default: measured)")
    ap.add_argument("--margin", type=float, default=20.0)
    args = ap.parse_args()

    import onnx
    m = onnx.load(args.onnx, load_external_data=False)
    inp = m.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    outs = [o.name for o in m.graph.output]
    if "logits" not in outs:
        sys.exit(f"{args.onnx}: no 'logits' output (has {outs})")
    attn = [o for o in outs if o.startswith("attn_")] if args.attention else []
    if args.attention and not attn:
        sys.exit(f"{args.onnx}: --attention but no attn_* outputs")
    # The self-test stores the logits and the first and last attention maps: enough to catch
    # a wrongly computed graph without committing megabytes of golden attention per package.
    names = ["logits"] + sorted(set(attn[:1] + attn[-1:]), key=attn.index)

    img = synthetic_image() if args.synthetic_image else Image.open(args.image)
    x = preprocess(img, shape, args.color, args.scale, args.mean, args.std, args.resize)

    os.makedirs(os.path.join(args.out, "selftest"), exist_ok=True)
    for f in os.listdir(os.path.join(args.out, "selftest")):
        if f.endswith(".npy"):
            os.remove(os.path.join(args.out, "selftest", f))
    shutil.copyfile(args.onnx, os.path.join(args.out, "model.onnx"))
    ref = rt.ort_run(os.path.join(args.out, "model.onnx"), x, threads=1, level="basic")
    np.save(os.path.join(args.out, "selftest", "input.npy"), x)
    for k in names:
        np.save(os.path.join(args.out, "selftest", f"{k}.npy"), np.ascontiguousarray(ref[k], dtype=np.float32))

    if args.tolerance is not None:
        tol, worst = args.tolerance, None
    else:
        tol, worst = choose_tolerance(os.path.join(args.out, "model.onnx"), x, names, args.margin)
    t = rt.tract_run(os.path.join(args.out, "model.onnx"), x)
    selftest_diff = max(float(np.abs(t[k] - ref[k]).max()) for k in names)

    labels_line = ""
    if args.labels:
        lab = [str(d) for d in range(10)] if args.labels == "digits" else \
            [l.rstrip("\n") for l in open(args.labels, encoding="utf-8")]
        with open(os.path.join(args.out, "labels.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(lab) + "\n")
        labels_line = 'labels = "labels.txt"\n'
    elif os.path.exists(os.path.join(args.out, "labels.txt")):
        os.remove(os.path.join(args.out, "labels.txt"))

    sel_outputs = ", ".join(f'{k} = "selftest/{k}.npy"' for k in names)
    toml = (
        f"name = {toml_str(args.name)}\n"
        f"task = {toml_str(args.task)}\n"
        f'onnx = "model.onnx"\n'
        f"{labels_line}"
        f"description = {toml_str(args.description)}\n"
        f"\n[input]\n"
        f"name = {toml_str(inp.name)}\n"
        f"shape = {toml_list(shape)}\n"
        f"color = {toml_str(args.color)}\n"
        f"scale = {args.scale!r}\n"
        f"mean = {toml_list(args.mean)}\n"
        f"std = {toml_list(args.std)}\n"
        f"resize = {toml_str(args.resize)}\n"
        f"\n[outputs]\n"
        f'logits = "logits"\n'
        + (f"attention = {toml_list(attn)}\n" if attn else "")
        + ('attention = "auto"\n' if args.attention_auto else "")
        + f"\n[selftest]\n"
        f'input = "selftest/input.npy"\n'
        f"outputs = {{ {sel_outputs} }}\n"
        f"tolerance = {tol!r}\n"
    )
    with open(os.path.join(args.out, "model.toml"), "w", encoding="utf-8") as f:
        f.write(toml)
    tomllib.loads(toml)  # must parse
    print(json.dumps({"package": args.out, "onnx_bytes": os.path.getsize(args.onnx),
                      "tolerance": tol, "measured_max_abs_diff_tract_vs_ort": worst,
                      "selftest_max_abs_diff_tract_vs_ort": selftest_diff,
                      "selftest_passes_in_tract": selftest_diff <= tol,
                      "top1": int(np.argmax(ref["logits"]))}, indent=2))


if __name__ == "__main__":
    main()
