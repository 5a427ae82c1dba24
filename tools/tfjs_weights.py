"""Reading the weights of a TF.js model (a weights manifest and its .bin shards), shared by the
converters in tools/ (tfjs_detector.py, faceapi_descriptor.py).

TF.js stores a weight as float32, or quantized: float16, or uint8 with a per-tensor `scale`
and `min` (value = min + scale * q). `read_weights` gives float32 arrays; `read_stored` keeps
what is stored, so that a converter can write the same bytes into ONNX and dequantize in the
graph (lossless against the package, and as small).
"""
import os
import sys

import numpy as np


class Stored:
    """One weight as the package stores it: `values` (float32, float16 or uint8) and, for
    uint8, the `scale` and `min` that dequantize it."""

    def __init__(self, values, scale=None, minimum=None):
        self.values = values
        self.scale = scale
        self.minimum = minimum

    def dequantized(self):
        if self.values.dtype == np.uint8:
            return (self.minimum + self.scale * self.values.astype(np.float32)).astype(np.float32)
        return self.values.astype(np.float32) if self.values.dtype == np.float16 else self.values


def read_stored(folder, manifest):
    """Every weight of the manifest as stored (see `Stored`), by name."""
    weights = {}
    for group in manifest:
        data = b"".join(open(os.path.join(folder, path), "rb").read() for path in group["paths"])
        offset = 0
        for entry in group["weights"]:
            count = int(np.prod(entry["shape"])) if entry["shape"] else 1
            quantization = entry.get("quantization") or {}
            stored = quantization.get("dtype")
            if stored == "float16":
                values = np.frombuffer(data, np.float16, count, offset).copy()
                item = Stored(values)
            elif stored == "uint8":
                values = np.frombuffer(data, np.uint8, count, offset).copy()
                item = Stored(values, np.float32(quantization["scale"]), np.float32(quantization["min"]))
            elif stored is None:
                dtype = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}[entry["dtype"]]
                values = np.frombuffer(data, dtype, count, offset).copy()
                item = Stored(values)
            else:
                sys.exit(f"weight {entry['name']}: quantization {stored} is not supported")
            offset += values.nbytes
            item.values = item.values.reshape(entry["shape"])
            weights[entry["name"]] = item
    return weights


def read_weights(folder, manifest):
    """Every weight of the manifest, as numpy arrays (float16 and uint8 ones as float32)."""
    weights = {}
    for name, item in read_stored(folder, manifest).items():
        values = item.dequantized()
        if values.dtype == np.int32 or values.dtype == np.bool_:
            weights[name] = values
        else:
            weights[name] = values.astype(np.float32)
    return weights
