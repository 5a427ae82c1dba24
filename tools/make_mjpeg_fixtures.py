#!/usr/bin/env python3
"""Generate the MJPEG fixtures in tests/fixtures/mjpeg/.

Many UVC webcams send MJPEG frames without a DHT (Huffman table) segment: they rely on
the standard tables of ITU T.81 Annex K.3, as Motion-JPEG in AVI does. These fixtures
are ordinary baseline JPEGs encoded by Pillow (libjpeg-turbo) with those standard
tables (optimize=False), and the same bytes with every DHT segment cut out.

How to run (from the repository root; needs numpy and pillow, e.g. tools/.venv):

    tools/.venv/bin/python tools/make_mjpeg_fixtures.py

The images are computed, not random, so re-running writes the same files as long as
Pillow's libjpeg-turbo encodes and decodes the same bytes (checked with Pillow 13.0.0).

For each case NAME it writes:
  NAME.jpg        the JPEG as Pillow wrote it (JFIF APP0, DQT, SOF0, DHT x4, SOS...)
  NAME-nodht.jpg  the same bytes with the DHT segments removed
  NAME.rgb        Pillow's decode of NAME.jpg: packed 8-bit R, G, B, rows top to bottom
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures" / "mjpeg"

# name, width, height, Pillow subsampling (2 = 4:2:0, 1 = 4:2:2), restart interval in MCUs
CASES = [
    ("bars-64x48-420", 64, 48, 2, 0),
    ("bars-64x48-422", 64, 48, 1, 0),
    # Odd size: partial MCUs on the right and bottom edges.
    ("bars-50x30-420", 50, 30, 2, 0),
    # 4:2:2 with a restart interval (DRI + RSTn markers), as some cameras send.
    ("bars-50x30-422-dri", 50, 30, 1, 4),
]

BARS = [
    (255, 255, 255),
    (255, 255, 0),
    (0, 255, 255),
    (0, 255, 0),
    (255, 0, 255),
    (255, 0, 0),
    (0, 0, 255),
    (0, 0, 0),
]


def test_image(width: int, height: int) -> Image.Image:
    """Colour bars in the top half; below, a horizontal hue-ish gradient darkening downwards."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    top = height // 2
    for x in range(width):
        img[:top, x] = BARS[x * len(BARS) // width]
    xs = np.arange(width) / max(width - 1, 1)
    ys = np.arange(height - top) / max(height - top - 1, 1)
    r = np.outer(1 - 0.5 * ys, xs)
    g = np.outer(1 - 0.5 * ys, 1 - xs)
    b = np.outer(ys, np.full(width, 0.8))
    img[top:] = np.round(np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)
    return Image.fromarray(img, "RGB")


def segments(jpeg: bytes):
    """(start, end, marker) of each marker segment from SOI up to and including SOS."""
    assert jpeg[:2] == b"\xff\xd8", "not a JPEG"
    yield 0, 2, 0xD8
    pos = 2
    while True:
        assert jpeg[pos] == 0xFF, f"expected a marker at byte {pos}"
        marker = jpeg[pos + 1]
        length = int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
        yield pos, pos + 2 + length, marker
        if marker == 0xDA:
            return
        pos += 2 + length


def strip_dht(jpeg: bytes) -> bytes:
    """The JPEG without its DHT segments (all of them come before the first SOS here)."""
    out = bytearray()
    last = 0
    removed = 0
    for start, end, marker in segments(jpeg):
        if marker == 0xC4:
            out += jpeg[last:start]
            last = end
            removed += 1
    assert removed > 0, "Pillow wrote no DHT segment"
    out += jpeg[last:]
    return bytes(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    for name, width, height, subsampling, restart in CASES:
        buf = io.BytesIO()
        options = dict(quality=90, optimize=False, progressive=False, subsampling=subsampling)
        if restart:
            options["restart_marker_blocks"] = restart
        test_image(width, height).save(buf, "JPEG", **options)
        jpeg = buf.getvalue()
        markers = [m for _, _, m in segments(jpeg)]
        assert 0xC0 in markers, "expected a baseline SOF0"
        assert (0xDD in markers) == bool(restart), "DRI presence"
        nodht = strip_dht(jpeg)
        assert 0xC4 not in [m for _, _, m in segments(nodht)]

        decoded = Image.open(io.BytesIO(jpeg))
        decoded.load()
        assert decoded.size == (width, height) and decoded.mode == "RGB"
        rgb = decoded.tobytes()
        # libjpeg-turbo falls back to the Annex K tables when DHT is missing: if the two
        # decodes agree, the tables Pillow wrote are the standard ones.
        fallback = Image.open(io.BytesIO(nodht)).convert("RGB").tobytes()
        assert fallback == rgb, f"{name}: Pillow did not write the standard Huffman tables"

        (args.out / f"{name}.jpg").write_bytes(jpeg)
        (args.out / f"{name}-nodht.jpg").write_bytes(nodht)
        (args.out / f"{name}.rgb").write_bytes(rgb)
        print(f"{name}: {width}x{height}, {len(jpeg)} bytes, {len(nodht)} without DHT")


if __name__ == "__main__":
    main()
