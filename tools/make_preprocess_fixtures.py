#!/usr/bin/env python3
"""Generate reference fixtures for edgevit's image preprocessing.

How to run (from the repository root; needs numpy, pillow, opencv-python-headless):

    python3 -m venv /tmp/fixvenv
    /tmp/fixvenv/bin/pip install numpy pillow opencv-python-headless
    /tmp/fixvenv/bin/python tools/make_preprocess_fixtures.py

Everything is seeded, so re-running reproduces the same files (as long as the
Pillow / libjpeg / OpenCV versions do not change the decoded or converted bytes).

What it writes into tests/fixtures/preprocess/:

  A. Source images
     src_rgb.png   37x23 RGB, smooth gradients + seeded noise
     src_rgb.jpg   same pixels, JPEG quality 95, 4:4:4 (no chroma subsampling)
     src_rgb.bmp   same pixels, 24-bit BMP
     src_gray.png  29x31 8-bit greyscale

  B. Preprocessing cases: cases.json (a JSON array) + one <name>.npy per case
     Each entry: {"name", "image", "color": "rgb|bgr|gray", "width", "height",
                  "resize": "stretch|center-crop|letterbox", "scale",
                  "mean": [...], "std": [...], "expected": "<name>.npy"}
     The .npy files are float32, C order, shape [1, C, H, W] (C = 3 or 1).

     Pipeline (what the Rust side must implement):
       1. decode with PIL and convert FIRST: 'RGB' for rgb/bgr, 'L' for gray
          (PIL's ITU-R 601-2 luma, integer form
           L = (19595*R + 38470*G + 7471*B + 0x8000) >> 16; asserted below).
          A greyscale source converted to 'RGB' replicates L into R, G, B.
       2. resize in that 8-bit colour space with Image.BILINEAR (Pillow's
          separable convolution, horizontal pass first, 8-bit rounding in
          between; re-implemented in numpy below and asserted bit-exact):
          - stretch:     resize whole image to (W, H)
          - center-crop: if src_w*H > src_h*W: crop_w = round(src_h*W/H),
                         crop_h = src_h, x0 = (src_w-crop_w)//2, y0 = 0
                         else: crop_h = round(src_w*H/W), crop_w = src_w,
                         y0 = (src_h-crop_h)//2, x0 = 0;
                         img.resize((W,H), BILINEAR, box=(x0,y0,x0+crop_w,y0+crop_h))
          - letterbox:   s = min(W/src_w, H/src_h); new_w = max(1, round(src_w*s)),
                         new_h = max(1, round(src_h*s)); resize whole image to
                         (new_w, new_h); paste on a black (pixel 0) WxH canvas at
                         x0 = (W-new_w)//2, y0 = (H-new_h)//2.  The padding is 0
                         BEFORE normalisation, so it becomes (0 - mean[c]) / std[c].
          No rounding argument is ever exactly .5 (asserted), so Python's
          round() and Rust's f64::round agree.
       3. x = pixel / scale; x = (x - mean[c]) / std[c]   (computed in float32)
          c is the OUTPUT channel index: for "bgr" the channel order is B,G,R and
          mean[0]/std[0] apply to B.
       4. layout NCHW with N = 1.
     JPEG/BMP cases use PIL's own decode of that file (the JPEG decode of the Rust
     side may differ from libjpeg by a level or so).

  C. Raw camera frames: raw_cases.json + files
     yuyv_16x8.raw       YUYV 4:2:2 packed (Y0 U Y1 V), 16x8, 256 bytes
     nv12_16x8.raw       NV12: Y plane (16x8) then interleaved UV plane (16x4), 192 bytes
     yuyv_16x8_rgb.npy   uint8 [8,16,3] HWC RGB from cv2.COLOR_YUV2RGB_YUYV
     nv12_16x8_rgb.npy   uint8 [8,16,3] HWC RGB from cv2.COLOR_YUV2RGB_NV12
     (BT.601 limited range).  The script also evaluates the integer formula
       C=Y-16, D=U-128, E=V-128
       R=clip((298C+409E+128)>>8) G=clip((298C-100D-208E+128)>>8) B=clip((298C+516D+128)>>8)
     (>> is an arithmetic shift, i.e. floor division, as for Rust i32) and stores
     the max abs difference vs OpenCV as "max_diff_formula_vs_opencv".  Note that
     OpenCV clamps C = max(0, Y-16) before multiplying, so the plain formula
     differs a lot for Y < 16 (the fixtures contain Y = 0); raw_cases.json also
     records the difference restricted to Y >= 16 and the difference of the
     formula with C clamped at 0.
"""

import json
import math
import os
import sys

import cv2
import numpy as np
from PIL import Image

SEED = 20240531
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "preprocess")

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def checked_round(v, what):
    """Python round(), asserting we are never near an exact .5 tie."""
    frac = v - math.floor(v)
    assert abs(frac - 0.5) > 1e-6, f"{what}: {v} is (nearly) a .5 tie"
    return round(v)


def center_crop_box(src_w, src_h, w, h):
    if src_w * h > src_h * w:
        crop_w = checked_round(src_h * w / h, "crop_w")
        crop_h = src_h
        x0, y0 = (src_w - crop_w) // 2, 0
    else:
        crop_h = checked_round(src_w * h / w, "crop_h")
        crop_w = src_w
        x0, y0 = 0, (src_h - crop_h) // 2
    return (x0, y0, x0 + crop_w, y0 + crop_h)


def letterbox_geometry(src_w, src_h, w, h):
    s = min(w / src_w, h / src_h)
    new_w = max(1, checked_round(src_w * s, "new_w"))
    new_h = max(1, checked_round(src_h * s, "new_h"))
    return new_w, new_h, (w - new_w) // 2, (h - new_h) // 2


def resize_pil(img, w, h, policy):
    src_w, src_h = img.size
    if policy == "stretch":
        return img.resize((w, h), Image.BILINEAR), None
    if policy == "center-crop":
        box = center_crop_box(src_w, src_h, w, h)
        return img.resize((w, h), Image.BILINEAR, box=box), box
    if policy == "letterbox":
        new_w, new_h, x0, y0 = letterbox_geometry(src_w, src_h, w, h)
        small = img.resize((new_w, new_h), Image.BILINEAR)
        canvas = Image.new(img.mode, (w, h), 0)
        canvas.paste(small, (x0, y0))
        return canvas, (new_w, new_h, x0, y0)
    raise ValueError(policy)


# ---- independent numpy re-implementation of Pillow's 8-bit BILINEAR -------
# (mirrors libImaging/Resample.c: precompute_coeffs / normalize_coeffs_8bpc /
#  ImagingResampleHorizontal_8bpc / ImagingResampleVertical_8bpc)

PRECISION_BITS = 32 - 8 - 2


def _coeffs(in_size, in0, in1, out_size):
    scale = (in1 - in0) / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale  # bilinear support = 1
    bounds, kernels = [], []
    for xx in range(out_size):
        center = in0 + (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = max(int(center - support + 0.5), 0)  # C cast truncates
        xmax = min(int(center + support + 0.5), in_size) - xmin
        k = []
        for x in range(xmax):
            t = abs((x + xmin - center + 0.5) * ss)
            k.append(1.0 - t if t < 1.0 else 0.0)
        ww = sum(k)
        if ww != 0.0:
            k = [v / ww for v in k]
        ki = [int(-0.5 + v * (1 << PRECISION_BITS)) if v < 0
              else int(0.5 + v * (1 << PRECISION_BITS)) for v in k]
        bounds.append((xmin, xmax))
        kernels.append(ki)
    return bounds, kernels


def _apply(arr, bounds, kernels, axis):
    # arr: int64 [H, W, C]; convolve along axis (1 = horizontal, 0 = vertical)
    arr = np.moveaxis(arr, axis, 0)
    out = np.empty((len(bounds),) + arr.shape[1:], dtype=np.int64)
    for i, ((xmin, n), k) in enumerate(zip(bounds, kernels)):
        acc = np.full(arr.shape[1:], 1 << (PRECISION_BITS - 1), dtype=np.int64)
        for j in range(n):
            acc += arr[xmin + j] * k[j]
        out[i] = np.clip(acc >> PRECISION_BITS, 0, 255)
    return np.moveaxis(out, 0, axis)


def resize_numpy(a, w, h, box=None):
    """a: uint8 [H, W, C]; returns uint8 [h, w, C] like Pillow BILINEAR."""
    src_h, src_w = a.shape[:2]
    if box is None:
        box = (0, 0, src_w, src_h)
    if (w, h) == (src_w, src_h) and tuple(box) == (0, 0, src_w, src_h):
        return a.copy()
    need_h = w != src_w or box[0] != 0 or box[2] != w
    need_v = h != src_h or box[1] != 0 or box[3] != h
    bh, kh = _coeffs(src_w, box[0], box[2], w)
    bv, kv = _coeffs(src_h, box[1], box[3], h)
    x = a.astype(np.int64)
    if need_h:
        # Pillow only computes the rows the vertical pass needs; same result.
        x = _apply(x, bh, kh, axis=1)
    if need_v:
        x = _apply(x, bv, kv, axis=0)
    return x.astype(np.uint8)


def resize_numpy_policy(a, w, h, policy):
    src_h, src_w = a.shape[:2]
    if policy == "stretch":
        return resize_numpy(a, w, h)
    if policy == "center-crop":
        return resize_numpy(a, w, h, center_crop_box(src_w, src_h, w, h))
    new_w, new_h, x0, y0 = letterbox_geometry(src_w, src_h, w, h)
    canvas = np.zeros((h, w, a.shape[2]), dtype=np.uint8)
    canvas[y0:y0 + new_h, x0:x0 + new_w] = resize_numpy(a, new_w, new_h)
    return canvas


# --------------------------------------------------------------------------
# A. source images
# --------------------------------------------------------------------------

def make_sources(rng):
    w, h = 37, 23
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255.0 * xx / (w - 1)
    g = 255.0 * yy / (h - 1)
    b = 127.5 + 110.0 * np.sin(xx / 4.0) * np.cos(yy / 3.0)
    rgb = np.stack([r, g, b], axis=-1) + rng.normal(0.0, 14.0, (h, w, 3))
    # a few hard edges / extremes so the filter sees 0 and 255
    rgb[5:8, 10:14] = [255, 0, 255]
    rgb[15:18, 25:29] = [0, 0, 0]
    rgb[0, 0] = [255, 255, 255]
    rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)

    gw, gh = 29, 31
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float64)
    gray = 128 + 90 * np.cos((xx + yy) / 5.0) * np.sin(xx / 7.0 + 0.3) + 60 * (yy / gh - 0.5)
    gray = gray + rng.normal(0.0, 10.0, (gh, gw))
    gray[10:13, 3:6] = 255
    gray[20:22, 20:25] = 0
    gray = np.clip(np.rint(gray), 0, 255).astype(np.uint8)

    im = Image.fromarray(rgb, "RGB")
    im.save(os.path.join(OUT, "src_rgb.png"), optimize=True)
    im.save(os.path.join(OUT, "src_rgb.jpg"), quality=95, subsampling=0)
    im.save(os.path.join(OUT, "src_rgb.bmp"))
    Image.fromarray(gray, "L").save(os.path.join(OUT, "src_gray.png"), optimize=True)

    # lossless round trips
    assert np.array_equal(np.asarray(Image.open(os.path.join(OUT, "src_rgb.png")).convert("RGB")), rgb)
    assert np.array_equal(np.asarray(Image.open(os.path.join(OUT, "src_rgb.bmp")).convert("RGB")), rgb)
    assert np.array_equal(np.asarray(Image.open(os.path.join(OUT, "src_gray.png"))), gray)


# --------------------------------------------------------------------------
# B. preprocessing cases
# --------------------------------------------------------------------------

ID = dict(scale=1.0, mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0])

CASES = [
    # resize policies on src_rgb.png, raw pixel values (scale 1, mean 0, std 1)
    dict(name="rgb_stretch_up_40x30", image="src_rgb.png", color="rgb", width=40, height=30, resize="stretch", **ID),
    dict(name="rgb_stretch_down_16x12", image="src_rgb.png", color="rgb", width=16, height=12, resize="stretch", **ID),
    dict(name="rgb_crop_up_40x30", image="src_rgb.png", color="rgb", width=40, height=30, resize="center-crop", **ID),
    dict(name="rgb_crop_down_16x12", image="src_rgb.png", color="rgb", width=16, height=12, resize="center-crop", **ID),
    dict(name="rgb_letterbox_up_40x30", image="src_rgb.png", color="rgb", width=40, height=30, resize="letterbox", **ID),
    dict(name="rgb_letterbox_down_16x12", image="src_rgb.png", color="rgb", width=16, height=12, resize="letterbox", **ID),
    # channel order: mean/std follow OUTPUT channel order (B,G,R); distinct values catch mixups
    dict(name="bgr_stretch_down_16x12", image="src_rgb.png", color="bgr", width=16, height=12, resize="stretch",
         scale=255.0, mean=[0.1, 0.2, 0.3], std=[0.5, 0.25, 0.125]),
    dict(name="bgr_crop_down_16x12", image="src_rgb.png", color="bgr", width=16, height=12, resize="center-crop",
         scale=255.0, mean=[0.1, 0.2, 0.3], std=[0.5, 0.25, 0.125]),
    # gray
    dict(name="gray_from_rgb_stretch_down_16x12", image="src_rgb.png", color="gray", width=16, height=12,
         resize="stretch", scale=255.0, mean=[0.5], std=[0.5]),
    dict(name="gray_from_rgb_crop_up_40x30", image="src_rgb.png", color="gray", width=40, height=30,
         resize="center-crop", scale=1.0, mean=[0.0], std=[1.0]),
    dict(name="gray_src_crop_down_16x12", image="src_gray.png", color="gray", width=16, height=12,
         resize="center-crop", scale=1.0, mean=[0.0], std=[1.0]),
    dict(name="gray_src_letterbox_up_32x36", image="src_gray.png", color="gray", width=32, height=36,
         resize="letterbox", scale=255.0, mean=[0.5], std=[0.25]),
    dict(name="rgb_from_gray_stretch_down_16x12", image="src_gray.png", color="rgb", width=16, height=12,
         resize="stretch", scale=255.0, mean=IMAGENET_MEAN, std=IMAGENET_STD),
    # ImageNet normalisation
    dict(name="imagenet_crop_down_16x12", image="src_rgb.png", color="rgb", width=16, height=12,
         resize="center-crop", scale=255.0, mean=IMAGENET_MEAN, std=IMAGENET_STD),
    # other decoders
    dict(name="jpg_stretch_down_16x12", image="src_rgb.jpg", color="rgb", width=16, height=12,
         resize="stretch", scale=255.0, mean=IMAGENET_MEAN, std=IMAGENET_STD),
    dict(name="bmp_letterbox_down_16x12", image="src_rgb.bmp", color="rgb", width=16, height=12,
         resize="letterbox", scale=255.0, mean=IMAGENET_MEAN, std=IMAGENET_STD),
]


def luma_601(rgb):
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return ((19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16).astype(np.uint8)


def run_case(c):
    img = Image.open(os.path.join(OUT, c["image"]))
    img.load()
    mode = "L" if c["color"] == "gray" else "RGB"
    src_mode = img.mode
    img = img.convert(mode)
    w, h = c["width"], c["height"]
    out, geom = resize_pil(img, w, h, c["resize"])
    px = np.asarray(out, dtype=np.uint8)
    if px.ndim == 2:
        px = px[:, :, None]

    # independent check of colour conversion + resize
    src = np.asarray(img, dtype=np.uint8)
    if src.ndim == 2:
        src = src[:, :, None]
    if mode == "L" and src_mode == "RGB":
        rgb = np.asarray(Image.open(os.path.join(OUT, c["image"])).convert("RGB"))
        assert np.array_equal(luma_601(rgb), src[:, :, 0]), "PIL luma formula mismatch"
    ref = resize_numpy_policy(src, w, h, c["resize"])
    assert np.array_equal(ref, px), f"{c['name']}: numpy Pillow-bilinear re-implementation differs"

    if c["color"] == "bgr":
        px = px[:, :, ::-1]
    nch = px.shape[2]
    assert len(c["mean"]) == nch and len(c["std"]) == nch
    x = px.astype(np.float32) / np.float32(c["scale"])
    x = (x - np.asarray(c["mean"], dtype=np.float32)) / np.asarray(c["std"], dtype=np.float32)
    t = np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
    assert t.shape == (1, nch, h, w)
    np.save(os.path.join(OUT, c["expected"]), t)
    return geom


# --------------------------------------------------------------------------
# C. raw camera formats
# --------------------------------------------------------------------------

def yuv_formula(y, u, v, clamp_c=False):
    y, u, v = (a.astype(np.int32) for a in (y, u, v))
    C, D, E = y - 16, u - 128, v - 128
    if clamp_c:  # what OpenCV does: max(0, Y - 16)
        C = np.maximum(C, 0)
    r = np.clip((298 * C + 409 * E + 128) >> 8, 0, 255)
    g = np.clip((298 * C - 100 * D - 208 * E + 128) >> 8, 0, 255)
    b = np.clip((298 * C + 516 * D + 128) >> 8, 0, 255)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def maxdiff(a, b, mask=None):
    d = np.abs(a.astype(int) - b.astype(int)).max(axis=-1)
    return int(d[mask].max() if mask is not None else d.max())


def make_raw(rng):
    w, h = 16, 8
    Y = rng.integers(16, 236, (h, w)).astype(np.uint8)
    U = rng.integers(16, 241, (h, w // 2)).astype(np.uint8)   # YUYV: per row, per pixel pair
    V = rng.integers(16, 241, (h, w // 2)).astype(np.uint8)
    # extremes
    Y[0, 0:4] = [0, 255, 0, 255]
    Y[1, 0:2] = [16, 235]
    U[0, 0], V[0, 0] = 0, 255
    U[0, 1], V[0, 1] = 255, 0
    U[2, 3], V[2, 3] = 255, 255
    U[3, 4], V[3, 4] = 0, 0
    U[4, 5], V[4, 5] = 128, 128

    yuyv = np.empty((h, w * 2), dtype=np.uint8)
    yuyv[:, 0::4] = Y[:, 0::2]
    yuyv[:, 1::4] = U
    yuyv[:, 2::4] = Y[:, 1::2]
    yuyv[:, 3::4] = V
    yuyv_rgb = cv2.cvtColor(yuyv.reshape(h, w, 2), cv2.COLOR_YUV2RGB_YUYV)
    assert yuyv_rgb.shape == (h, w, 3) and yuyv_rgb.dtype == np.uint8
    f_yuyv = yuv_formula(Y, np.repeat(U, 2, axis=1), np.repeat(V, 2, axis=1))
    d_yuyv = int(np.abs(f_yuyv.astype(int) - yuyv_rgb.astype(int)).max())
    d_yuyv_clamp = maxdiff(yuv_formula(Y, np.repeat(U, 2, axis=1), np.repeat(V, 2, axis=1), clamp_c=True),
                           yuyv_rgb)
    d_yuyv_ok = maxdiff(f_yuyv, yuyv_rgb, Y >= 16)

    # NV12: independent Y plane; UV per 2x2 block
    Y2 = rng.integers(16, 236, (h, w)).astype(np.uint8)
    Y2[0, 0:4] = [255, 0, 255, 0]
    Y2[h - 1, w - 2:] = [0, 255]
    U2 = rng.integers(16, 241, (h // 2, w // 2)).astype(np.uint8)
    V2 = rng.integers(16, 241, (h // 2, w // 2)).astype(np.uint8)
    U2[0, 0], V2[0, 0] = 0, 255
    U2[0, 1], V2[0, 1] = 255, 0
    U2[1, 2], V2[1, 2] = 255, 255
    U2[2, 3], V2[2, 3] = 0, 0
    U2[3, 7], V2[3, 7] = 128, 128
    uv = np.empty((h // 2, w), dtype=np.uint8)
    uv[:, 0::2] = U2
    uv[:, 1::2] = V2
    nv12 = np.concatenate([Y2, uv], axis=0)  # (h*3/2, w)
    nv12_rgb = cv2.cvtColor(nv12, cv2.COLOR_YUV2RGB_NV12)
    assert nv12_rgb.shape == (h, w, 3) and nv12_rgb.dtype == np.uint8
    up = lambda p: np.repeat(np.repeat(p, 2, axis=0), 2, axis=1)
    f_nv12 = yuv_formula(Y2, up(U2), up(V2))
    d_nv12 = int(np.abs(f_nv12.astype(int) - nv12_rgb.astype(int)).max())
    d_nv12_clamp = maxdiff(yuv_formula(Y2, up(U2), up(V2), clamp_c=True), nv12_rgb)
    d_nv12_ok = maxdiff(f_nv12, nv12_rgb, Y2 >= 16)

    yuyv.tofile(os.path.join(OUT, "yuyv_16x8.raw"))
    nv12.tofile(os.path.join(OUT, "nv12_16x8.raw"))
    np.save(os.path.join(OUT, "yuyv_16x8_rgb.npy"), np.ascontiguousarray(yuyv_rgb))
    np.save(os.path.join(OUT, "nv12_16x8_rgb.npy"), np.ascontiguousarray(nv12_rgb))

    raw_cases = [
        dict(name="yuyv_16x8", format="yuyv", width=w, height=h, file="yuyv_16x8.raw",
             expected="yuyv_16x8_rgb.npy", max_diff_formula_vs_opencv=d_yuyv,
             max_diff_formula_vs_opencv_where_y_ge_16=d_yuyv_ok,
             max_diff_formula_clamped_c_vs_opencv=d_yuyv_clamp),
        dict(name="nv12_16x8", format="nv12", width=w, height=h, file="nv12_16x8.raw",
             expected="nv12_16x8_rgb.npy", max_diff_formula_vs_opencv=d_nv12,
             max_diff_formula_vs_opencv_where_y_ge_16=d_nv12_ok,
             max_diff_formula_clamped_c_vs_opencv=d_nv12_clamp),
    ]
    with open(os.path.join(OUT, "raw_cases.json"), "w") as f:
        json.dump(raw_cases, f, indent=2)
        f.write("\n")
    return raw_cases, (f_yuyv, yuyv_rgb), (f_nv12, nv12_rgb)


# --------------------------------------------------------------------------

def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    make_sources(rng)

    out_cases = []
    for c in CASES:
        c = dict(c)
        c["expected"] = c["name"] + ".npy"
        geom = run_case(c)
        out_cases.append({k: c[k] for k in ("name", "image", "color", "width", "height", "resize",
                                              "scale", "mean", "std", "expected")})
        print(f"{c['name']:36s} {c['image']:13s} {c['color']:4s} {c['resize']:11s} "
              f"{c['width']}x{c['height']} geom={geom}")
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(out_cases, f, indent=2)
        f.write("\n")

    raw_cases, _, _ = make_raw(rng)
    for r in raw_cases:
        print(f"{r['name']}: max |formula - OpenCV| = {r['max_diff_formula_vs_opencv']} "
              f"(pixels with Y>=16: {r['max_diff_formula_vs_opencv_where_y_ge_16']}, "
              f"formula with C=max(Y-16,0): {r['max_diff_formula_clamped_c_vs_opencv']})")

    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"total fixture size: {total} bytes")
    assert total < 100 * 1024


if __name__ == "__main__":
    sys.exit(main())
