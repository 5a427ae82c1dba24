#!/usr/bin/env python3
"""ONNX Runtime reference embeddings for the third-party OSNet ReID model.

Model: <shared>/reference/osnet/osnet_x0_25_msmt17.onnx (input `images` [1,3,256,128],
output `output` [1,512]). Images: <shared>/reference/images/astronaut.png and grace_hopper.bmp,
each converted to RGB and resized (Pillow, bilinear) to 128x256.

Writes (nothing from shared/ is copied; the inputs are 256x128 resamplings):
  tests/fixtures/osnet_ort/<name>.input.npy      [1,3,256,128] uint8, the RGB input, CHW
  tests/fixtures/osnet_ort/<name>.embedding.npy  [1,512] f32, ORT's output for it after
                                                 ImageNet normalisation (x/255-mean)/std
  tests/fixtures/osnet_ort/summary.json          ORT version, norms, cosine of the two people

  python tools/osnet_ort_reference.py [--shared /work/shared]
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import rt  # noqa: E402
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]
IMAGES = {"astronaut": "astronaut.png", "grace_hopper": "grace_hopper.bmp"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.environ.get("EDGEVIT_SHARED", os.path.join(os.path.dirname(ROOT), "shared")))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "osnet_ort"))
    args = ap.parse_args()
    ref = os.path.join(args.shared, "reference")
    import onnxruntime as ort

    session = rt.ort_session(os.path.join(ref, "osnet", "osnet_x0_25_msmt17.onnx"))
    os.makedirs(args.out, exist_ok=True)
    summary = {"onnxruntime": ort.__version__, "images": {}}
    embeddings = {}
    for name, file in IMAGES.items():
        image = Image.open(os.path.join(ref, "images", file)).convert("RGB").resize((128, 256), Image.BILINEAR)
        chw = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)[None].copy()
        x = ((chw.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32)
        (embedding,) = session.run(["output"], {"images": x})
        np.save(os.path.join(args.out, f"{name}.input.npy"), chw)
        np.save(os.path.join(args.out, f"{name}.embedding.npy"), embedding.astype("<f4"))
        embeddings[name] = embedding[0]
        summary["images"][name] = {"source": file, "norm": float(np.linalg.norm(embedding))}
    a, b = embeddings["astronaut"], embeddings["grace_hopper"]
    summary["cosine_astronaut_grace_hopper"] = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    rt.write_summary(args.out, summary)


if __name__ == "__main__":
    main()
