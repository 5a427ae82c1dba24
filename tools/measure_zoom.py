#!/usr/bin/env python3
"""Measure what the zoom buys on vit-mnist-canvas, through edgevit itself, and why it fails.

Runs `edgevit run` over held-out 84x84 frames that tools/train_canvas_vit.py wrote (never
trained on): tools/work/canvas-test/ (1,000 frames of the 1,500 held-out digits) and
tools/work/canvas-dev/ (the 300 digits of shared/reference/mnist-dev, 3 places each). Each
configuration runs once with `fuse = "mean"` and the ten classes of each pass in the record, so
one run gives the plain pass (the first pass), the zoom pass alone and the fused result.

Per frame it also finds why a zoom pass went wrong, first matching cause first:
  cut        the crop holds less than 95% of the digit's ink box
  stretched  the crop's aspect (width / height, with its padding) is outside 0.8..1.25
  too large  the crop's longer side is over 3x the ink box's longer side (the digit smaller
             in the crop than in a 56x56 training frame)
  model      none of these: a clean crop the model still gets wrong
and reports the box's IoU with the digit's 28x28 box (the figure the book quoted before) and
with the ink box, and the share of the ink box inside the crop.

  python3 tools/measure_zoom.py [--edgevit target/release/edgevit] [--model models/vit-mnist-canvas]
                                [--sweep] [--set canvas-test --set canvas-dev]
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The zoom as it was (a box crop stretched to the input) and as it is now (square crops).
BEFORE = 'crop_shape = "box"\nmargin = 0.1\nmin_size = 0.1\n'
CONFIGS = {
    "no zoom": None,
    "before: box crop, margin 0.1": BEFORE,
    "now: square crop (defaults)": "",
    "paper: square crop from the upscaled model input": 'crop_from = "input"\n',
}
# What the per-cause breakdown varies, one knob at a time from the defaults.
SWEEP = {
    "box crop, margin 0.25": 'crop_shape = "box"\nmargin = 0.25\n',
    "square, margin 0": "margin = 0.0\n",
    "square, margin 0.1": "margin = 0.1\n",
    "square, margin 0.2": "margin = 0.2\n",
    "square, margin 0.3": "margin = 0.3\n",
    "square, min_size 0.33": "min_size = 0.33\n",
    "square, alpha 1.0": "alpha = 1.0\n",
    "square, alpha 1.6": "alpha = 1.6\n",
    "square, alpha 2.0": "alpha = 2.0\n",
    "square, rollout of the last 3 blocks": "[attention]\nlayers = [3, 4, 5]\n",
    "square, the last block's map": '[attention]\nmap = "last"\n',
}


def ink_box(path, x, y):
    """The bounding box of the digit's lit pixels inside its 28x28 box at (x, y)."""
    a = np.asarray(Image.open(path).convert("L"))[y:y + 28, x:x + 28]
    ys, xs = np.nonzero(a > 0)
    return (x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1)


def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter), inter / area(b)


def cause(crop, pad, ink):
    """Why a zoom pass on this crop could go wrong (see the module's doc)."""
    _, held = iou(crop, ink)
    if held < 0.95:
        return "cut"
    w = crop[2] - crop[0] + pad[0] + pad[2]
    h = crop[3] - crop[1] + pad[1] + pad[3]
    if not 0.8 <= w / h <= 1.25:
        return "stretched"
    if max(w, h) > 3 * max(ink[2] - ink[0], ink[3] - ink[1]):
        return "too large"
    return "model"


def run(edgevit, model, frames, section, tmp):
    """One `edgevit run` over a folder; the records by file name."""
    out = os.path.join(tmp, "out.jsonl")
    if os.path.exists(out):
        os.remove(out)
    zoom, attention = "", ""
    if section is not None:
        zoom, _, attention = section.partition("[attention]\n")
        zoom = '[zoom]\nfuse = "mean"\n' + zoom
        attention = "[attention]\n" + attention if attention else ""
    config = os.path.join(tmp, "run.toml")
    with open(config, "w") as f:
        f.write(f'[source]\nkind = "image-dir"\npath = "{frames}"\ncamera = "canvas"\n'
                f'[model]\npath = "{os.path.abspath(model)}"\n[classify]\ntop_k = 10\n'
                f'{zoom}{attention}[sink]\nkind = "file"\npath = "{out}"\n')
    subprocess.run([edgevit, "run", "--config", config], check=True,
                   stderr=subprocess.DEVNULL, env=dict(os.environ, RUST_LOG="error"))
    return {os.path.basename(r["input"]): r for r in map(json.loads, open(out))}


def measure(records, truth):
    n = len(truth)
    right = {"plain": 0, "zoom alone": 0, "fused": 0}
    causes = {"cut": 0, "stretched": 0, "too large": 0, "model": 0}
    ious, ink_ious, held, latency = [], [], [], []
    for name, (label, box, ink) in truth.items():
        r = records[name]
        lat = r["latency_ms"]
        latency.append(lat["pre"] + lat["infer"] + lat["post"])
        right["fused"] += r["top"][0]["index"] == label
        passes = r.get("passes")
        if not passes:
            right["plain"] += r["top"][0]["index"] == label
            continue
        right["plain"] += passes[0]["top"][0]["index"] == label
        zoom_right = passes[-1]["top"][0]["index"] == label
        right["zoom alone"] += zoom_right
        region = r["region"]
        crop, pad = region["crop"]["box"], region["crop"].get("pad", [0, 0, 0, 0])
        ious.append(iou(region["box"], box)[0])
        ink_ious.append(iou(region["box"], ink)[0])
        held.append(iou(crop, ink)[1])
        if not zoom_right:
            causes[cause(crop, pad, ink)] += 1
    entry = {k: round(v / n, 4) for k, v in right.items()}
    entry["latency_ms_median"] = round(statistics.median(latency), 3)
    if ious:
        entry.update(box_iou_28=round(statistics.mean(ious), 3), box_iou_ink=round(statistics.mean(ink_ious), 3),
                     ink_inside_crop=round(statistics.mean(held), 4),
                     whole_ink_inside_crop=round(sum(h >= 0.999 for h in held) / n, 4),
                     zoom_errors_by_cause=causes)
    else:
        entry.pop("zoom alone")
    return entry


def crop_pixels(frame, crop):
    """The second pass's input as edgevit makes it: the crop's pixels, its black padding, the
    whole stretched to 28x28 (Pillow bilinear, which edgevit's resize matches)."""
    x0, y0, x1, y1 = crop["box"]
    left, top, right, bottom = crop.get("pad", [0, 0, 0, 0])
    part = np.asarray(frame)[y0:y1, x0:x1]
    padded = np.pad(part, ((top, bottom), (left, right)))
    return Image.fromarray(padded).resize((28, 28), Image.BILINEAR)


def native_picture(frames, path):
    """The book's first picture (docs/vit.md): a held-out frame's 28x28 model input, the digit's
    region cut from that input and upscaled to 28x28 (the paper's crop), and the same region cut
    from the native 84x84 frame and resized to 28x28 (edgevit's crop); enlarged 6x, nearest."""
    row = next(csv.DictReader(open(os.path.join(frames, "labels.csv"))))
    frame = Image.open(os.path.join(frames, row["file"]))
    x, y = int(row["x"]), int(row["y"])
    model_input = frame.resize((28, 28), Image.BILINEAR)
    box = [round(v) for v in (x / 3 - 2, y / 3 - 2, (x + 28) / 3 + 2, (y + 28) / 3 + 2)]
    upscaled = model_input.crop(box).resize((28, 28), Image.BILINEAR)
    native = frame.crop([v * 3 for v in box]).resize((28, 28), Image.BILINEAR)
    strip = Image.new("L", (28 * 3 + 8, 28))
    for i, im in enumerate((model_input, upscaled, native)):
        strip.paste(im, (i * 32, 0))
    strip.resize((strip.width * 6, strip.height * 6), Image.NEAREST).save(path)


def crops_picture(frames, before, after, path, count=4):
    """The book's picture (docs/vit.md): for the held-out frames whose old crop was furthest from
    square, the model's 28x28 input, the old crop (box, stretched) and the new (square), each as
    the model sees it, enlarged 4x."""
    def aspect(r):
        b = r["region"]["crop"]["box"]
        w, h = b[2] - b[0], b[3] - b[1]
        return max(w / h, h / w)
    chosen = sorted(before, key=lambda name: -aspect(before[name]))[:count]
    cell, gap = 28 * 4, 8
    strip = Image.new("L", (3 * cell + 2 * gap, count * cell + (count - 1) * gap), 64)
    for row, name in enumerate(sorted(chosen)):
        frame = Image.open(os.path.join(frames, name)).convert("L")
        views = [frame.resize((28, 28), Image.BILINEAR), crop_pixels(frame, before[name]["region"]["crop"]),
                 crop_pixels(frame, after[name]["region"]["crop"])]
        for col, view in enumerate(views):
            strip.paste(view.resize((cell, cell), Image.NEAREST), (col * (cell + gap), row * (cell + gap)))
    strip.save(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edgevit", default=os.path.join(ROOT, "target", "release", "edgevit"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "vit-mnist-canvas"))
    ap.add_argument("--set", action="append", help="frame folders under tools/work (default: both)")
    ap.add_argument("--sweep", action="store_true", help="also vary one knob at a time")
    ap.add_argument("--out", default=os.path.join(HERE, "work", "zoom-figures.json"))
    ap.add_argument("--picture", help="also write the native-against-upscaled crop picture here")
    ap.add_argument("--shapes-picture", help="also write the box-against-square crop picture here (first set)")
    args = ap.parse_args()
    sets = args.set or ["canvas-test", "canvas-dev"]
    configs = dict(CONFIGS, **(SWEEP if args.sweep else {}))
    report = {"edgevit": args.edgevit, "model": args.model}
    with tempfile.TemporaryDirectory() as tmp:
        for folder in sets:
            frames = os.path.join(HERE, "work", folder)
            truth = {}
            for row in csv.DictReader(open(os.path.join(frames, "labels.csv"))):
                x, y = int(row["x"]), int(row["y"])
                ink = ink_box(os.path.join(frames, row["file"]), x, y)
                truth[row["file"]] = (int(row["label"]), (x, y, x + 28, y + 28), ink)
            report[folder] = {"frames": len(truth)}
            kept = {}
            for name, section in configs.items():
                records = run(args.edgevit, args.model, frames, section, tmp)
                kept[section] = records
                entry = measure(records, truth)
                report[folder][name] = entry
                print(f"{folder} | {name}: {json.dumps(entry)}", flush=True)
            if args.shapes_picture and folder == sets[0]:
                crops_picture(frames, kept[BEFORE], kept[""], args.shapes_picture)
            if args.picture and folder == sets[0]:
                native_picture(frames, args.picture)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
