#!/usr/bin/env python3
"""Export a TransReID-style ViT to an edgevit `reid` model package, with RANDOM weights.

What it has of TransReID (He et al., ICCV 2021), at a small size (width 64, 4 blocks, 4 heads):
  - overlapping patches: 16x16 with stride 12 on a 256x128 (H x W) person crop: 21 x 10 tokens;
  - a class token and learned position embeddings;
  - Side Information Embedding (SIE): a learned table of cameras x views vectors; the row of the
    frame's camera and view, times lambda (3.0 in the paper), is added to every token. The camera
    and the view come in as two int64 inputs of shape [1] (`camera`, `view`);
  - Jigsaw Patch Module (JPM): the last block is run twice: once on all tokens (the global
    branch, output `global`), and once per group of shifted and shuffled patch tokens (shift 5,
    2 shuffle groups, 4 groups), each with the class token, giving `local_1` .. `local_4`.
    At test time TransReID concatenates the global feature with the local ones divided by 4;
    the manifest says so (`[embedding] weights = [1, 0.25, 0.25, 0.25, 0.25]`).

The weights are random (seeded): the embeddings identify nothing. This model proves that the
plumbing (two side inputs, five outputs, concatenation, SIE from the camera's index) runs;
real-model checks use OSNet from ../shared.

  python tools/export_transreid.py --out models/transreid-tiny
"""
import argparse
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rt  # noqa: E402

H, W, PATCH, STRIDE = 256, 128, 16, 12
DIM, DEPTH, HEADS = 64, 4, 4
CAMERAS, VIEWS, SIE_LAMBDA = 4, 2, 3.0
SHIFT, SHUFFLE_GROUPS, LOCAL_GROUPS = 5, 2, 4
MEAN, STD = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]  # TransReID's normalisation
OUTPUTS = ["global"] + [f"local_{i + 1}" for i in range(LOCAL_GROUPS)]
WEIGHTS = [1.0] + [1.0 / LOCAL_GROUPS] * LOCAL_GROUPS


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM)
        self.qkv = nn.Linear(DIM, DIM * 3)
        self.proj = nn.Linear(DIM, DIM)
        self.norm2 = nn.LayerNorm(DIM)
        self.mlp = nn.Sequential(nn.Linear(DIM, DIM * 2), nn.GELU(), nn.Linear(DIM * 2, DIM))

    def forward(self, x):
        b, n, _ = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * (DIM // HEADS) ** -0.5).softmax(dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, n, DIM))
        return x + self.mlp(self.norm2(x))


def shuffle_unit(features, shift, group):
    """TransReID's shift and patch shuffle over the patch tokens (the class token is left out)."""
    b, _, d = features.shape
    shifted = torch.cat([features[:, shift:], features[:, 1:shift]], dim=1)
    x = shifted.view(b, group, -1, d).transpose(1, 2).contiguous()
    return x.view(b, -1, d)


class TransReIDTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, DIM, PATCH, STRIDE)
        gh, gw = (H - PATCH) // STRIDE + 1, (W - PATCH) // STRIDE + 1
        self.tokens = gh * gw
        self.cls = nn.Parameter(torch.randn(1, 1, DIM) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, self.tokens + 1, DIM) * 0.02)
        self.sie = nn.Parameter(torch.randn(CAMERAS * VIEWS, 1, DIM) * 0.02)
        self.blocks = nn.ModuleList([Block() for _ in range(DEPTH - 1)])
        self.last = Block()
        self.jpm = Block()
        self.norm = nn.LayerNorm(DIM)
        self.jpm_norm = nn.LayerNorm(DIM)

    def forward(self, x, camera, view):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        side = self.sie[camera * VIEWS + view]  # [1, 1, DIM]
        x = x + self.pos + SIE_LAMBDA * side
        for block in self.blocks:
            x = block(x)
        global_feat = self.norm(self.last(x))[:, 0]
        cls = x[:, :1]
        shuffled = shuffle_unit(x, SHIFT, SHUFFLE_GROUPS)
        length = shuffled.shape[1] // LOCAL_GROUPS
        locals_ = []
        for i in range(LOCAL_GROUPS):
            part = shuffled[:, i * length:(i + 1) * length]
            locals_.append(self.jpm_norm(self.jpm(torch.cat([cls, part], dim=1)))[:, 0])
        return (global_feat, *locals_)


def person_like_input(seed):
    """A deterministic 256x128 picture, normalised as the manifest says."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([xx * 255 / W, yy * 255 / H, (xx + yy) * 255 / (W + H)], -1)
    img[60:200, 30:100] = rng.integers(0, 256, 3)
    x = (img / 255.0 - np.asarray(MEAN)) / np.asarray(STD)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    model = TransReIDTiny().eval()
    x = person_like_input(args.seed)
    camera, view = np.array([2], np.int64), np.array([1], np.int64)
    os.makedirs(os.path.join(args.out, "selftest"), exist_ok=True)
    onnx_path = os.path.join(args.out, "model.onnx")
    with torch.no_grad():
        torch.onnx.export(model, (torch.from_numpy(x), torch.from_numpy(camera), torch.from_numpy(view)),
                          onnx_path, input_names=["input", "camera", "view"], output_names=OUTPUTS,
                          opset_version=17, do_constant_folding=True, dynamo=False)
        ref_torch = [t.numpy() for t in model(torch.from_numpy(x), torch.from_numpy(camera),
                                              torch.from_numpy(view))]
    sess = rt.ort_session(onnx_path, threads=1, level="basic")
    ref = dict(zip(OUTPUTS, sess.run(OUTPUTS, {"input": x, "camera": camera, "view": view})))
    for name, t in zip(OUTPUTS, ref_torch):
        assert np.abs(ref[name] - t).max() < 1e-4, name
    # SIE must matter: another camera gives another embedding.
    other = sess.run(["global"], {"input": x, "camera": np.array([0], np.int64), "view": view})[0]
    assert np.abs(other - ref["global"]).max() > 1e-3, "SIE has no effect"
    np.save(os.path.join(args.out, "selftest", "input.npy"), x)
    for name in OUTPUTS:
        np.save(os.path.join(args.out, "selftest", f"{name}.npy"), ref[name].astype(np.float32))
    list_ = lambda xs: "[" + ", ".join(f'"{v}"' if isinstance(v, str) else repr(v) for v in xs) + "]"
    selftest_outputs = ", ".join(f'{n} = "selftest/{n}.npy"' for n in OUTPUTS)
    toml = f'''name = "transreid-tiny"
task = "reid"
onnx = "model.onnx"
description = "TransReID-style ViT (overlapping 16x16 patches at stride 12, SIE over {CAMERAS} cameras x {VIEWS} views, JPM with 4 local groups; width {DIM}, {DEPTH} blocks) with RANDOM seeded weights (seed {args.seed}, not trained: its identities mean nothing); for plumbing tests"

[input]
name = "input"
shape = [1, 3, {H}, {W}]
color = "rgb"
scale = 255.0
mean = {list_(MEAN)}
std = {list_(STD)}
resize = "stretch"

[outputs]
# TransReID at test time: the global feature, then the JPM's local ones.
embedding = {list_(OUTPUTS)}

[embedding]
# The local features are divided by their count before the concatenation (TransReID's test).
weights = {list_(WEIGHTS)}

[sie]
# Side Information Embedding: the camera's index in the configuration and the view.
camera = "camera"
cameras = {CAMERAS}
view = "view"
views = {VIEWS}

[selftest]
input = "selftest/input.npy"
side = {{ camera = {int(camera[0])}, view = {int(view[0])} }}
outputs = {{ {selftest_outputs} }}
tolerance = 0.0001
'''
    with open(os.path.join(args.out, "model.toml"), "w") as f:
        f.write(toml)
    print(f"wrote {args.out}: {os.path.getsize(onnx_path)} bytes of ONNX")


if __name__ == "__main__":
    main()
