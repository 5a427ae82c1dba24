#!/usr/bin/env python3
"""Export a timm Vision Transformer to ONNX (opset 17) for edgevit.

Input `input` [1, C, H, W] (batch fixed to 1), output `logits` [1, classes].
With --attention the post-softmax attention map of every block is exported
too, as outputs `attn_0` .. `attn_{L-1}`, each [1, heads, T, T] (T = tokens,
class token first), for TransFG-style part selection / RAMS-Trans zoom.

The model comes from either
  --checkpoint tools/work/vit-mnist.pt   (written by train_mnist_vit.py), or
  --timm vit_tiny_patch16_224 --seed 0   (timm architecture, random seeded weights;
                                          nothing is downloaded: pretrained=False).

Attention is always computed unfused (explicit MatMul -> Softmax -> MatMul,
the same graph with or without --attention), so tract and ONNX Runtime see
plain ops rather than a decomposed SDPA.

Examples:
  python tools/export_vit.py --checkpoint tools/work/vit-mnist.pt -o tools/work/vit-mnist-f32.onnx
  python tools/export_vit.py --timm vit_tiny_patch16_224 --seed 0 --attention -o tools/work/vit-tiny-f32.onnx
"""
import argparse
import json
import os
import sys
import types

import numpy as np
import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def _attn_forward(self, x, attn_mask=None, is_causal=False):
    """timm Attention.forward, unfused, keeping the post-softmax map in self.captured."""
    if attn_mask is not None or is_causal:
        raise NotImplementedError("attention masks are not supported by this export")
    B, N, _ = x.shape
    gate = self.gate(x).sigmoid() if getattr(self, "gate", None) is not None else None
    qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = self.q_norm(q), self.k_norm(k)
    attn = (q * self.scale) @ k.transpose(-2, -1)
    attn = attn.softmax(dim=-1)
    self.captured = attn
    x = attn @ v
    x = x.transpose(1, 2).reshape(B, N, self.attn_dim if hasattr(self, "attn_dim") else -1)
    x = self.norm(x)
    if gate is not None:
        x = x * gate
    return self.proj(x)


class WithAttention(torch.nn.Module):
    """Returns (logits, attn_0, ..., attn_{L-1})."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        logits = self.model(x)
        return (logits,) + tuple(b.attn.captured for b in self.model.blocks)


def patch_attention(model):
    from timm.layers.attention import Attention
    n = 0
    for blk in model.blocks:
        if not isinstance(blk.attn, Attention):
            raise TypeError(f"unsupported attention module {type(blk.attn).__name__}")
        blk.attn.fused_attn = False
        blk.attn.forward = types.MethodType(_attn_forward, blk.attn)
        n += 1
    return n


def load_model(args):
    import timm
    if args.checkpoint:
        sys.path.insert(0, HERE)
        from train_mnist_vit import build_model
        ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
        model = build_model(**ck["model_kwargs"])
        model.load_state_dict(ck["state_dict"])
    else:
        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
        model = timm.create_model(args.timm, pretrained=False)
    return model.eval()


def export(model, out, attention, opset=17):
    n_layers = patch_attention(model)
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    c = model.patch_embed.proj.in_channels
    h, w = model.patch_embed.img_size
    x = torch.randn(1, c, h, w, generator=torch.Generator().manual_seed(1234))
    module = WithAttention(model).eval() if attention else model
    names = ["logits"] + ([f"attn_{i}" for i in range(n_layers)] if attention else [])
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with torch.no_grad():
        ref = module(x)
        torch.onnx.export(module, (x,), out, input_names=["input"], output_names=names,
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    m = onnx.load(out)
    onnx.checker.check_model(m)
    # check the export against torch with ONNX Runtime
    import onnxruntime as ort
    sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})
    refs = ref if isinstance(ref, tuple) else (ref,)
    diffs = {n: float(np.abs(g - r.numpy()).max()) for n, g, r in zip(names, got, refs)}
    info = {"onnx": out, "input": [1, c, h, w], "outputs": names,
            "output_shapes": {n: list(g.shape) for n, g in zip(names, got)},
            "max_abs_diff_torch_vs_ort": diffs, "bytes": os.path.getsize(out),
            "mean": list(cfg.get("mean", [])), "std": list(cfg.get("std", []))}
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint from train_mnist_vit.py")
    src.add_argument("--timm", help="timm model name, random seeded weights (no download)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attention", action="store_true", help="also export attn_0..attn_{L-1}")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    info = export(load_model(args), args.out, args.attention, args.opset)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
