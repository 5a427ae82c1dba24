#!/usr/bin/env python3
"""Measure what the zoom buys on vit-mnist-canvas, through edgevit itself.

Runs `edgevit run` over the held-out 84x84 frames that tools/train_canvas_vit.py wrote
(tools/work/canvas-test/, never trained on) with four configurations: no zoom; the zoom cropping
from the native frame (edgevit's way); the zoom cropping from the 28x28 model input, upscaled
(RAMS-Trans's way on a fixed-size input); each zoom fused as the mean of the two passes and as
the zoom pass alone. Reports top-1, how well the zoom box covers the digit (IoU with the pasted
28x28 box, share of the digit inside), and the per-frame latency (median of `latency_ms`).

  python3 tools/measure_zoom.py [--edgevit target/release/edgevit] [--model models/vit-mnist-canvas]
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CONFIGS = {
    "no zoom": "",
    "zoom from the native frame, mean of passes": '[zoom]\ncrop_from = "frame"\nfuse = "mean"\n',
    "zoom from the native frame, zoom pass alone": '[zoom]\ncrop_from = "frame"\nfuse = "zoom"\n',
    "zoom from the upscaled model input, mean of passes": '[zoom]\ncrop_from = "input"\nfuse = "mean"\n',
    "zoom from the upscaled model input, zoom pass alone": '[zoom]\ncrop_from = "input"\nfuse = "zoom"\n',
}


def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter), inter / area(b)


def crops_picture(frames, path):
    """The book's picture (docs/vit.md): a held-out frame's 28x28 model input, the digit's region cut
    from that input and upscaled to 28x28 (the paper's crop), and the same region cut from the
    native 84x84 frame and resized to 28x28 (edgevit's crop); enlarged 6x, nearest."""
    from PIL import Image
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edgevit", default=os.path.join(ROOT, "target", "release", "edgevit"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "vit-mnist-canvas"))
    ap.add_argument("--frames", default=os.path.join(HERE, "work", "canvas-test"))
    ap.add_argument("--picture", help="also write the crops-compared picture here")
    args = ap.parse_args()
    if args.picture:
        crops_picture(args.frames, args.picture)
    truth = {}
    with open(os.path.join(args.frames, "labels.csv")) as f:
        for row in csv.DictReader(f):
            x, y = int(row["x"]), int(row["y"])
            truth[row["file"]] = (int(row["label"]), (x, y, x + 28, y + 28))
    report = {"frames": len(truth), "edgevit": args.edgevit}
    with tempfile.TemporaryDirectory() as tmp:
        for name, section in CONFIGS.items():
            out = os.path.join(tmp, "out.jsonl")
            if os.path.exists(out):
                os.remove(out)
            config = os.path.join(tmp, "run.toml")
            with open(config, "w") as f:
                f.write(f'[source]\nkind = "image-dir"\npath = "{args.frames}"\ncamera = "canvas"\n'
                        f'[model]\npath = "{os.path.abspath(args.model)}"\n[classify]\ntop_k = 1\n'
                        f'{section}[sink]\nkind = "file"\npath = "{out}"\n')
            subprocess.run([args.edgevit, "run", "--config", config], check=True,
                           stderr=subprocess.DEVNULL, env=dict(os.environ, RUST_LOG="error"))
            right, covers, ious, latency = 0, [], [], []
            for line in open(out):
                record = json.loads(line)
                label, box = truth[os.path.basename(record["input"])]
                right += record["top"][0]["index"] == label
                lat = record["latency_ms"]
                latency.append(lat["pre"] + lat["infer"] + lat["post"])
                if "region" in record:
                    overlap, covered = iou(record["region"]["box"], box)
                    ious.append(overlap)
                    covers.append(covered)
            entry = {"top1": right / len(truth), "latency_ms_median": statistics.median(latency)}
            if ious:
                entry["box_iou_mean"] = statistics.mean(ious)
                entry["digit_inside_box_mean"] = statistics.mean(covers)
            report[name] = entry
            print(f"{name}: {json.dumps(entry)}", flush=True)
    with open(os.path.join(HERE, "work", "zoom-figures.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
