#!/usr/bin/env python3
"""Builds the face descriptor package from face-api.js's FaceRecognitionNet weights.

    npm pack @vladmandic/face-api@1.7.15 && tar xzf vladmandic-face-api-1.7.15.tgz
    python3 tools/faceapi_descriptor.py --weights package/model --package models/face-descriptor \\
        [--selftest face.png] [--reference face_descriptor_resnet.onnx]

FaceRecognitionNet is face-api.js's port of dlib's ResNet face model
(dlib_face_recognition_resnet_model_v1, public domain weights): a 29-layer ResNet on 150x150
RGB chips, 128 numbers out. The npm package holds only its weights (a TF.js weights manifest,
most tensors quantized to uint8 with a scale and a minimum each); the network is code in
face-api.js. This script writes that network as ONNX, layer by layer, in NCHW:

- a convolution layer is Conv (+ bias), then the per-channel scale (Mul, Add), then Relu
  where face-api.js has one; `same` padding (stride 1) is a symmetric pad of 1;
- a residual block is two such layers (the second without Relu), plus its input, then Relu;
- a down block starts with a 3x3 stride-2 `valid` convolution; its shortcut is a 2x2 average
  pool, zero-padded to the block's channels, and where the two sizes differ by one the
  convolution's output gets a row and a column of zeros at the end (as face-api.js does);
- then the mean over the spatial positions and a 256x128 matrix product.

The uint8 weights go into the ONNX file as they are stored, dequantized in the graph
(Cast, Mul by the scale, Add the minimum): the same values as the package, in about its size
(tract and ONNX Runtime fold these constants at load). The input is the normalized chip
((RGB - [122.782, 117.001, 104.298]) / 256), which the package's manifest asks edgevit for.

With --reference, the ONNX written is compared with another conversion through ONNX Runtime on
--selftest's chip (or a seeded random one). Needs: onnx, numpy, onnxruntime (for --reference
and --selftest), pillow (for --selftest): tools/requirements.txt.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnx_writing import finish_model, ort_outputs
from tfjs_weights import read_stored
MEAN = np.array([122.782, 117.001, 104.298], np.float32)


class Graph:
    """The nodes and initializers of the ONNX graph being written."""

    def __init__(self, weights):
        self.weights = weights
        self.nodes = []
        self.initializers = []
        self.count = 0

    def name(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def constant(self, array, base="c"):
        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, base=None, **attributes):
        output = self.name(base or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [output], **attributes))
        return output

    def weight(self, key, layout=None, shape=None):
        """A weight as a float tensor: stored bytes dequantized in the graph where uint8.
        `layout` transposes it (conv filters: HWIO to OIHW), `shape` reshapes it."""
        stored = self.weights[key]
        values = stored.values
        if layout is not None:
            values = np.ascontiguousarray(values.transpose(layout))
        if shape is not None:
            values = values.reshape(shape)
        if values.dtype != np.uint8:
            return self.constant(values.astype(np.float32), key.replace("/", "_"))
        q = self.constant(values, key.replace("/", "_") + "_q")
        as_float = self.op("Cast", [q], to=TensorProto.FLOAT)
        scaled = self.op("Mul", [as_float, self.constant(np.float32(stored.scale))])
        return self.op("Add", [scaled, self.constant(np.float32(stored.minimum))])

    def conv_layer(self, x, prefix, stride, relu, padding):
        """face-api.js's convLayer: conv + bias, per-channel scale, optional Relu."""
        filters = self.weight(f"{prefix}/conv/filters", layout=(3, 2, 0, 1))
        bias = self.weight(f"{prefix}/conv/bias")
        size = self.weights[f"{prefix}/conv/filters"].values.shape[0]
        pads = [size // 2] * 4 if padding == "same" else [0] * 4
        y = self.op("Conv", [x, filters, bias], strides=[stride, stride], pads=pads,
                    kernel_shape=[size, size])
        channels = self.weights[f"{prefix}/scale/weights"].values.shape[0]
        scale = self.weight(f"{prefix}/scale/weights", shape=(1, channels, 1, 1))
        shift = self.weight(f"{prefix}/scale/biases", shape=(1, channels, 1, 1))
        y = self.op("Add", [self.op("Mul", [y, scale]), shift])
        return self.op("Relu", [y]) if relu else y

    def residual(self, x, prefix):
        y = self.conv_layer(x, f"{prefix}/conv1", 1, True, "same")
        y = self.conv_layer(y, f"{prefix}/conv2", 1, False, "same")
        return self.op("Relu", [self.op("Add", [y, x])])

    def residual_down(self, x, prefix, size, channels_in):
        """A down block on an `size x size` input of `channels_in` channels; returns the
        output and its size."""
        y = self.conv_layer(x, f"{prefix}/conv1", 2, True, "valid")
        y = self.conv_layer(y, f"{prefix}/conv2", 1, False, "same")
        channels_out = self.weights[f"{prefix}/conv2/conv/filters"].values.shape[3]
        conv_size, pooled_size = (size - 3) // 2 + 1, size // 2
        pooled = self.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
        if conv_size != pooled_size:
            grow = pooled_size - conv_size
            y = self.op("Pad", [y, self.constant(np.array([0, 0, 0, 0, 0, 0, grow, grow], np.int64))],
                        mode="constant")
        if channels_out != channels_in:
            more = channels_out - channels_in
            pooled = self.op("Pad", [pooled, self.constant(np.array([0, 0, 0, 0, 0, more, 0, 0], np.int64))],
                             mode="constant")
        return self.op("Relu", [self.op("Add", [pooled, y])]), pooled_size


def build(weights):
    g = Graph(weights)
    x = g.conv_layer("input", "conv32_down", 2, True, "valid")  # 150 -> 72
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2])  # 72 -> 35
    size = 35
    for block in ["conv32_1", "conv32_2", "conv32_3"]:
        x = g.residual(x, block)
    stages = [
        ("conv64_down", 32, ["conv64_1", "conv64_2", "conv64_3"]),
        ("conv128_down", 64, ["conv128_1", "conv128_2"]),
        ("conv256_down", 128, ["conv256_1", "conv256_2"]),
        ("conv256_down_out", 256, []),
    ]
    for down, channels_in, blocks in stages:
        x, size = g.residual_down(x, down, size, channels_in)
        for block in blocks:
            x = g.residual(x, block)
    pooled = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    fc = g.weight("fc")
    g.nodes.append(helper.make_node("MatMul", [pooled, fc], ["descriptor"]))
    graph = helper.make_graph(
        g.nodes, "faceapi_face_recognition_net",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 150, 150])],
        [helper.make_tensor_value_info("descriptor", TensorProto.FLOAT, [1, 128])],
        g.initializers)
    return finish_model(graph, "tools/faceapi_descriptor.py")


def chip(path):
    """A 150x150 RGB image (stretched), normalized as the descriptor wants, NCHW."""
    from PIL import Image
    pixels = np.asarray(Image.open(path).convert("RGB").resize((150, 150), Image.BILINEAR), np.float32)
    return ((pixels - MEAN) / 256.0).transpose(2, 0, 1)[None].astype(np.float32)


def run(model_bytes, tensor):
    return ort_outputs(model_bytes, {"input": tensor}, ["descriptor"])["descriptor"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True,
                        help="the npm package's model/ folder (face_recognition_model-weights_manifest.json)")
    parser.add_argument("--package", required=True, help="the package folder: writes its ONNX file there")
    parser.add_argument("--onnx-name", default="face_descriptor_resnet.onnx")
    parser.add_argument("--selftest", metavar="IMAGE",
                        help="writes selftest/input.npy (this image as a normalized chip) and "
                             "selftest/descriptor.npy (what ONNX Runtime gives for it)")
    parser.add_argument("--reference", help="an ONNX conversion to compare with")
    args = parser.parse_args()

    manifest_path = os.path.join(args.weights, "face_recognition_model-weights_manifest.json")
    manifest = json.load(open(manifest_path))
    model = build(read_stored(args.weights, manifest))
    os.makedirs(args.package, exist_ok=True)
    target = os.path.join(args.package, args.onnx_name)
    onnx.save(model, target)
    print(f"{target}: {len(model.graph.node)} nodes, {os.path.getsize(target) / 1e6:.1f} MB")
    if args.selftest or args.reference:
        tensor = chip(args.selftest) if args.selftest else \
            np.random.default_rng(7).normal(0, 0.3, (1, 3, 150, 150)).astype(np.float32)
        ours = run(model.SerializeToString(), tensor)
        print(f"descriptor norm {np.linalg.norm(ours):.3f}")
        if args.selftest:
            folder = os.path.join(args.package, "selftest")
            os.makedirs(folder, exist_ok=True)
            np.save(os.path.join(folder, "input.npy"), tensor)
            np.save(os.path.join(folder, "descriptor.npy"), ours)
        if args.reference:
            theirs = run(open(args.reference, "rb").read(), tensor)
            diff = float(np.abs(ours - theirs).max())
            print(f"against {args.reference}: largest difference {diff:.3g}, "
                  f"distance {float(np.linalg.norm(ours - theirs)):.3g}")
            if diff > 1e-4:
                sys.exit("the conversions differ")


if __name__ == "__main__":
    main()
